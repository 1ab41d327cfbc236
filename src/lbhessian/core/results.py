"""Names of result fields that one step writes and another reads back: one spelling, defined once."""

import re

from lbhessian.core.errors import LbhError

# The CIFAR ResNet family by depth (6n + 2), e.g. ResNet20: config validation and the model builder read it.
RESNET = re.compile(r"ResNet(\d+)$")
# The per-run files collect reads, by kind (the flag each is passed with, e.g. --spectrum): the workflow's targets,
# the collect step's arguments and summary.csv's "{kind}_file" columns.
RUN_FILES = {
    "metrics": "metrics.json",
    "history": "history.csv",
    "spectrum": "spectrum.json",
    "inputs": "inputs.json",
    "attack": "attack.json",
}
# What names a run in summary.csv (the metrics.json keys it comes from), in the table's order.
KEY_COLUMNS = ["dataset", "model", "mode", "batch_size", "seed"]


def file_column(kind: str) -> str:
    """summary.csv's column holding the path of a run's file of this kind (e.g. "history_file")."""
    return f"{kind}_file"


# lambda_1, lambda_2, ...: the top eigenvalues of the weight Hessian, one column each.
LAMBDA_COLUMN = re.compile(r"lambda_(\d+)")


def lambda_column(i: int) -> str:
    return f"lambda_{i}"


def lambda_index(name: str) -> int | None:
    """i of a "lambda_i" column, None for any other column."""
    m = LAMBDA_COLUMN.fullmatch(name)
    return int(m[1]) if m else None


def lambda_columns(columns) -> list[str]:
    """The lambda_i columns among ``columns``, in the order of i."""
    return sorted((c for c in columns if lambda_index(c) is not None), key=lambda_index)


# The attacks by their result name: the method and its norm. Tables name the l-inf ones by method alone (the
# paper's default), figures always with the norm.
ATTACKS = {"fgsm_linf": ("FGSM", "ℓ∞"), "fgsm_l2": ("FGSM", "ℓ2"), "pgd_linf": ("PGD", "ℓ∞")}


def attack_label(attack: str, short: bool = False) -> str:
    """ "FGSM (ℓ∞)" (short: "FGSM", and "FGSM-ℓ2" for another norm); an unknown attack keeps its name."""
    if attack not in ATTACKS:
        return attack
    method, norm = ATTACKS[attack]
    if short:
        return method if norm == "ℓ∞" else f"{method}-{norm}"
    return f"{method} ({norm})"


def attack_rank(attack: str) -> int:
    """The attacks' order in tables and figures (FGSM l-inf, FGSM l2, PGD; unknown ones last)."""
    return list(ATTACKS).index(attack) if attack in ATTACKS else len(ATTACKS)


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
