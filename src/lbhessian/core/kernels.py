"""Which CPU kernels a step computes with (``runtime.kernels``), set before torch is imported.

Training amplifies rounding differences into a different run, so numbers are bit-identical only where every
kernel is the same. ``native`` lets PyTorch pick the fastest kernels of this CPU (oneDNN's JIT at the CPU's best
ISA, MKL's CPU-specific code paths, ATen's AVX2/AVX-512 loops): bit-identical reruns on one CPU kind only.
``portable`` pins every one of them to code that any x86-64 CPU runs alike: ATen's baseline loops
(ATEN_CPU_CAPABILITY=default), MKL's conditional numerical reproducibility (MKL_CBWR=COMPATIBLE,STRICT) and
oneDNN off for convolutions (``torch.backends.mkldnn``), capped at SSE4.1 wherever it is still used. It costs
speed (benchmarks/bench_kernels.py measures how much). Where identity holds is in README ("Reproducibility").

This module imports no torch: ``pin`` must run before torch reads these variables (the CLI calls it first).
"""

import os

import yaml

PORTABLE_ENV = {
    "ATEN_CPU_CAPABILITY": "default",
    "MKL_CBWR": "COMPATIBLE,STRICT",
    "ONEDNN_MAX_CPU_ISA": "SSE41",
}
KINDS = ("native", "portable")


def pin(kind: str, env=None) -> None:
    """Set the environment of ``kind`` in ``env`` (default: this process's; portable overrides whatever the
    machine's environment says)."""
    if kind == "portable":
        (os.environ if env is None else env).update(PORTABLE_ENV)


def configured(config_path) -> str:
    """runtime.kernels of a config file, read without validating it (validation imports torch); the step then
    validates the whole file, and ``core.runtime.setup_runtime`` checks that the pins took effect."""
    try:
        with open(config_path) as f:
            cfg = yaml.safe_load(f)
        kind = cfg["runtime"]["kernels"]
    except (OSError, yaml.YAMLError, KeyError, TypeError):
        return "native"  # the schema default; a broken file is reported by the step's own validation
    return kind if kind in KINDS else "native"
