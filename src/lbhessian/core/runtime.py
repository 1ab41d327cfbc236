"""Device, threads and seeds: the knobs that decide whether a CPU run is bit-reproducible."""

import ctypes
import os
import random

import numpy as np
import torch

from lbhessian.core.errors import LbhError
from lbhessian.core.kernels import PORTABLE_ENV


def get_device(runtime_cfg=None):
    want = (runtime_cfg or {}).get("device", "auto")
    if want == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if want == "cuda" and not torch.cuda.is_available():
        raise LbhError("runtime.device: 'cuda' requested but no CUDA device is available")
    return torch.device(want)


def setup_runtime(runtime_cfg=None, seed=0, threads=None):
    """Fix threads and seeds; same thread count + same seed gives identical weights on the CPU.

    Threads: the step's allocation (``threads``, e.g. Snakemake's {threads}), else runtime.threads, else
    SLURM's CPUs per task, else every core."""
    cfg = runtime_cfg or {}
    threads = threads or cfg.get("threads") or int(os.environ.get("SLURM_CPUS_PER_TASK", "0")) or os.cpu_count()
    torch.set_num_threads(int(threads))
    keep_freed_memory()
    check_kernels(cfg.get("kernels", "native"))
    seed_everything(seed)
    if cfg.get("deterministic", True):
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
    return get_device(cfg)


# glibc's mallopt parameters (malloc.h) and the size up to which freed memory stays in the process.
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
KEEP_BYTES = 1 << 30


def keep_freed_memory() -> bool:
    """Serve large tensors from the heap and keep freed memory in the process (glibc only; elsewhere a no-op).

    By default glibc maps every block over 32 MiB (a 600-image conv activation) afresh and returns it on free, so
    each forward pass pays page faults for zeroed pages: on this project's CPU steps 18% of all CPU time was
    system time (benchmarks/bench_default.py measures it). Where memory comes from never changes a number.
    Returns whether the settings took."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (macOS, musl): its allocator stays as it is
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, KEEP_BYTES)) and bool(mallopt(M_TRIM_THRESHOLD, KEEP_BYTES))


def check_kernels(kind):
    """Apply and verify runtime.kernels: "portable" must have been pinned before torch was imported (the CLI
    does it; core/kernels.py); oneDNN convolutions are switched off here."""
    torch.backends.mkldnn.enabled = kind != "portable"
    if kind != "portable":
        return
    wrong = {k: os.environ.get(k) for k, v in PORTABLE_ENV.items() if os.environ.get(k) != v}
    if wrong or torch.backends.cpu.get_cpu_capability() != "DEFAULT":
        raise LbhError(
            "runtime.kernels: portable needs its pins set before torch is imported (run steps through `python -m "
            f"lbhessian` or call lbhessian.core.kernels.pin first); found {wrong or 'ATen loops of this CPU'}"
        )


def kernels_in_use() -> str:
    """What the kernels of this process are, for metrics.json: ATen's CPU capability, oneDNN on/off, MKL CBWR."""
    mkl = os.environ.get("MKL_CBWR", "auto")
    onednn = "on" if torch.backends.mkldnn.enabled else "off"
    return f"aten {torch.backends.cpu.get_cpu_capability()}, onednn {onednn}, mkl_cbwr {mkl}"


def seed_everything(seed):
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
