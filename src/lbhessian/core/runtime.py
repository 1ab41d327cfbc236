"""Device, threads and seeds: the knobs that decide whether a CPU run is bit-reproducible."""

import os
import random

import numpy as np
import torch

from lbhessian.core.errors import LbhError


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
    seed_everything(seed)
    if cfg.get("deterministic", True):
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
    return get_device(cfg)


def seed_everything(seed):
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
