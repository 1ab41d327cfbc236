"""Names of result fields that one step writes and another reads back: one spelling, defined once."""

import re

from lbhessian.core.errors import LbhError

# The CIFAR ResNet family by depth (6n + 2), e.g. ResNet20: config validation and the model builder read it.
RESNET = re.compile(r"ResNet(\d+)$")
# acc_{attack}_eps{eps}_{split}, e.g. acc_fgsm_linf_eps0.1_test
ACC_COLUMN = re.compile(r"^acc_(?P<attack>[a-z0-9]+(?:_[a-z0-9]+)*?)_eps(?P<eps>[0-9.eE+-]+)_(?P<split>[a-z]+)$")


def eps_key(eps) -> str:
    """One spelling per eps value ("0.1", "1", "0.0392157") so that columns from different runs match."""
    try:
        return format(float(eps), "g")
    except (TypeError, ValueError):
        raise LbhError(f"attack eps {eps!r}: expected a number") from None


def acc_column(attack: str, eps, split: str) -> str:
    return f"acc_{attack}_eps{eps_key(eps)}_{split}"


def parse_acc_column(name: str):
    """(attack, eps, split) of an adversarial-accuracy column, or None for any other column."""
    m = ACC_COLUMN.match(name)
    if m is None:
        return None
    return m["attack"], float(m["eps"]), m["split"]
