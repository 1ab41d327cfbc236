"""What free memory decides for the operators, written once for all of them: whether every chunk's graph is
kept for reuse (cached or rebuilt, the numbers are identical), and a one-line stop when one chunk cannot fit.

It never decides a chunk's size: that sets the order of floating-point sums, so a chunk comes from the config,
or is the device's fixed default (``MAX_CHUNK``).
"""

from __future__ import annotations

from collections.abc import Callable

import torch


def free_memory_bytes(device: torch.device) -> int:
    """Free memory on ``device``: the CUDA allocator's view, or MemAvailable of the host."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free + torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device))
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except ImportError:  # pragma: no cover - psutil ships with snakemake
        return 2 * 1024**3


def saved_bytes(fn: Callable[[], object]) -> int:
    """Bytes autograd saves for backward while ``fn`` runs (forward and create_graph backward)."""
    total = 0

    def pack(t: torch.Tensor) -> torch.Tensor:
        nonlocal total
        total += t.numel() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        keep = fn()
    del keep
    return total


# Share of free memory that cached chunk graphs may take (caching only; never a chunk's size): the CPU hosts are
# shared by several jobs.
MEMORY_FRACTION = {"cpu": 0.2, "cuda": 0.6}
# Default chunk (fixed per device type, never from free memory): on a CPU, chunks beyond a few hundred
# images only lose cache locality (LeNet HVP/gradient: 1.83x at 250, 2.18x at 1000); a GPU wants large chunks.
MAX_CHUNK = {"cpu": 256, "cuda": 8192}


def budget_bytes(device: torch.device, fraction: float | None = None) -> float:
    """The share of free memory on ``device`` that cached chunk graphs may use (whether to cache, not how much
    to put in a chunk)."""
    frac = fraction if fraction is not None else MEMORY_FRACTION.get(device.type, 0.2)
    return free_memory_bytes(device) * frac


def check_fits(what: str, items: int, per_item: float, device: torch.device) -> None:
    """Stop with one line when ``items`` graphs of ``per_item`` bytes exceed all free memory of ``device``."""
    from lbhessian.core.errors import LbhError

    need, free = items * per_item, free_memory_bytes(device)
    if need > free:
        raise LbhError(
            f"{what}: {items} per chunk needs about {need / 2**30:.1f} GiB, {free / 2**30:.1f} GiB free on {device};"
            f" set a smaller {what} in the config"
        )
