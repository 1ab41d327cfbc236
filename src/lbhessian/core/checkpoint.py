"""Checkpoints: weights + the run config that made them + library versions, loadable with weights_only=True."""

import platform
from importlib import metadata

import torch

from lbhessian import __version__
from lbhessian.core.errors import LbhError
from lbhessian.core.io import load_torch, save_torch
from lbhessian.core.models import build_model


def versions():
    return {
        "lbhessian": __version__,
        "torch": str(torch.__version__),  # TorchVersion is not loadable with weights_only=True
        "torchvision": metadata.version("torchvision"),  # importing torchvision costs as much as torch
        "python": platform.python_version(),
    }


def save_checkpoint(path, model, run, info, **meta):
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    save_torch(path, {"state_dict": state, "run": run, "info": info, "meta": {**versions(), **meta}})


def load_checkpoint(path, expect_model=None, device="cpu"):
    """-> (model in eval mode on device, run config, info, meta); one clear line for a bad or foreign file."""
    blob = load_torch(path, what="checkpoint")
    if not isinstance(blob, dict) or not {"state_dict", "run", "info"} <= blob.keys():
        raise LbhError(f"{path}: not an lbhessian checkpoint (expected keys state_dict, run, info)")
    name = blob["run"].get("model")
    if expect_model is not None and name != expect_model:
        raise LbhError(f"{path}: checkpoint is of model {name}, expected {expect_model}")
    model = build_model(name, blob["info"])
    try:
        model.load_state_dict(blob["state_dict"])
    except RuntimeError as e:
        first = str(e).splitlines()[1].strip() if len(str(e).splitlines()) > 1 else str(e)
        raise LbhError(f"{path}: weights do not match model {name} ({first})") from None
    return model.to(device).eval(), blob["run"], blob["info"], blob.get("meta", {})
