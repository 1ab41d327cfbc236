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
