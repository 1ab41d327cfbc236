"""Limits checked before any job runs (`lbhessian validate`, and the workflow when it parses the config):
what depends on a network's size or on memory, which the schema cannot see. Each message says what to set."""

import os

import torch

from lbhessian.core.data import DATASETS, SHAPES
from lbhessian.core.errors import LbhError
from lbhessian.core.models import build_model, param_count

GB = 1024**3
ITEMSIZE = {"float32": 4, "float64": 8}
# The exact input Hessian: the d x d float64 matrix, its eigenvectors and eigh's workspace.
EXACT_COPIES = 3


def physical_memory():
    """Bytes of RAM of this machine (None where the OS does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def weights_of(dataset, model):
    """Number of weights of ``model`` built for ``dataset``'s image shape: no data needed."""
    if dataset not in SHAPES:
        raise LbhError(f"dataset {dataset!r} is unknown; known: {', '.join(DATASETS)}")
    c = SHAPES[dataset][0]
    info = {
        "name": dataset,
        "classes": 100 if dataset == "cifar100" else 10,
        "shape": list(SHAPES[dataset]),
        "mean": [0.0] * c,
        "std": [1.0] * c,
    }
    return param_count(build_model(model, info))


def lanczos_bytes(cfg, weights):
    """Memory of the largest Lanczos basis the spectrum step builds: (steps + 1 + k) vectors of the weights."""
    s = cfg["spectrum"]
    k = min(s["top_k"], weights)
    steps = min(s["max_iter"], weights)
    return (steps + 1 + k) * weights * ITEMSIZE[s["dtype"]]


def check(cfg, source="config", memory=None):
    """Raise LbhError for the first setting that cannot work; return one line per experiment with the
    estimates (weights, memory). ``memory``: bytes available to a job (default: this machine's RAM)."""
    memory = memory if memory is not None else physical_memory()
    s, notes = cfg["spectrum"], []
    # Lanczos runs when it is the method, and as the check of power iteration: it needs top_k steps.
    k_lanczos = s["top_k"] if s["method"] == "lanczos" else min(s["power_k"] or s["top_k"], s["top_k"])
    if (s["method"] == "lanczos" or s["check_power"] != "none") and s["max_iter"] < k_lanczos:
        raise LbhError(
            f"{source}: spectrum.max_iter: {s['max_iter']} Lanczos steps cannot give {k_lanczos} eigenpairs: "
            f"set spectrum.max_iter >= {k_lanczos} (or lower spectrum.top_k)"
        )
    for i, exp in enumerate(cfg["train"]["experiments"]):
        where = f"{exp['dataset']}/{exp['model']} (train.experiments[{i}])"
        weights = weights_of(exp["dataset"], exp["model"])
        for key in ("top_k", "power_k"):
            if (s[key] or 0) > weights:
                raise LbhError(
                    f"{source}: spectrum.{key}: {s[key]} eigenpairs asked, but {where} has only {weights:,} "
                    f"weights: set spectrum.{key} <= {weights}"
                )
        need = lanczos_bytes(cfg, weights)
        if memory and need > memory:
            fit = int(memory // (weights * ITEMSIZE[s["dtype"]]))
            raise LbhError(
                f"{source}: spectrum: a Lanczos basis of max_iter + 1 + top_k vectors of {where}'s {weights:,} "
                f"weights ({s['dtype']}) needs {need / GB:.1f} GB, more than the {memory / GB:.1f} GB of this "
                f"machine: set spectrum.max_iter + spectrum.top_k <= {max(fit - 1, 0)}"
                + ("" if s["dtype"] == "float32" else ", or spectrum.dtype: float32 (half the memory)")
            )
        d = SHAPES[exp["dataset"]][0] * SHAPES[exp["dataset"]][1] * SHAPES[exp["dataset"]][2]
        exact = EXACT_COPIES * d * d * torch.finfo(torch.float64).bits // 8
        if cfg["inputs"]["exact_images"] and memory and exact > memory:
            raise LbhError(
                f"{source}: inputs.exact_images: the exact input Hessian of one {where} image is a {d} x {d} "
                f"float64 matrix (with its eigenvectors {exact / GB:.1f} GB), more than the {memory / GB:.1f} GB "
                "of this machine: set inputs.exact_images: 0 (the Lanczos estimates remain)"
            )
        notes.append(f"{where}: {weights:,} weights, Lanczos basis {need / GB:.2f} GB, exact H_x {exact / GB:.3f} GB")
    return notes
