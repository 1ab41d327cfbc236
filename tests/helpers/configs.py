"""Config sections and whole configs with the schema's defaults filled in, some keys replaced."""

import yaml

from helpers.workflow import SMOKE
from lbhessian.core.config import defaults, validate


def section(name, **over):
    """One config section as a step receives it: the schema's defaults, some keys replaced (dicts merged)."""
    out = defaults(name)
    for key, value in over.items():
        merge = isinstance(value, dict) and isinstance(out.get(key), dict)
        out[key] = {**out[key], **value} if merge else value
    return out


def smoke_config(**sections):
    """config/smoke.yaml with some sections' keys replaced, validated (defaults filled, LbhError if bad)."""
    cfg = yaml.safe_load(SMOKE.read_text())
    for name, changes in sections.items():
        cfg[name] = {**cfg.get(name, {}), **changes}
    return validate(cfg, "smoke.yaml")


def one_run_yaml(*, epochs, train=None, spectrum=None) -> str:
    """The config file of one training run: M1 on 1,024 MNIST images at batch 8, seed 0, so an epoch is 128 steps
    (a second or more each on one thread): a signal sent when the log shows an epoch lands mid-epoch, never on a
    boundary by chance. ``train``, ``spectrum``: keys of those sections."""
    cfg = {
        "results": "results",
        "runtime": {"threads": 1},
        "data": {"root": "data"},
        "train": {
            "experiments": [{"dataset": "mnist5k", "model": "M1", "train_size": 1024, "test_size": 64}],
            "batch_sizes": [8],
            "seeds": [0],
            "optimizer": {"lr": 0.01, "momentum": 0.9},
            "stop": {"rule": "epochs", "epochs": epochs, "target_loss": 0.1},
            **(train or {}),
        },
        "spectrum": spectrum or {},
    }
    return yaml.safe_dump(cfg, sort_keys=False)
