"""The one home of the names every step and the workflow share: a run's identity (``RunId``: dataset, model,
mode, batch label, seed), an experiment's name ("{dataset}_{model}") and the digest of a run's resolved settings.
Nothing else builds or parses them (tests/test_names.py checks). Torch- and pandas-free: the workflow imports it
while parsing, and the report steps check run files without loading torch."""

import hashlib
import json
from collections.abc import Mapping
from typing import NamedTuple

from lbhessian.core.errors import LbhError


class RunId(NamedTuple):
    """A run's place in the grid (core.config.runs): what every step checks its inputs against."""

    dataset: str
    model: str
    mode: str
    batch: str  # the batch label: "16", ..., or "full"
    seed: int

    @classmethod
    def of(cls, run) -> "RunId":
        """From a grid entry, a run config (``batch_size``), Snakemake wildcards or a step's arguments."""
        if not isinstance(run, Mapping):  # Snakemake's wildcards: a named list
            run = dict(run.items())
        batch = run["batch"] if "batch" in run else run.get("batch_size")
        seed = run.get("seed")
        seed = int(seed) if isinstance(seed, str) and seed.isdigit() else seed
        return cls(run.get("dataset"), run.get("model"), run.get("mode"), str(batch), seed)

    @classmethod
    def of_metrics(cls, metrics: Mapping) -> "RunId":
        """The place in the grid that a metrics.json says it belongs to."""
        return cls.of({**metrics, "batch": metrics.get("batch_label", metrics.get("batch_size"))})

    def describe(self) -> str:
        return f"{self.dataset}/{self.model}/{self.mode}/batch {self.batch}/seed {self.seed}"

    @property
    def experiment(self) -> str:
        return experiment_name(self.dataset, self.model)


# What names a run: the workflow's wildcards, the measurement steps' flags (--dataset ... --seed).
RUN_KEYS = RunId._fields


def run_digest(run):
    """A short digest of every resolved setting of a run: equal digests, equal training."""
    return hashlib.sha256(json.dumps(run, sort_keys=True, default=str).encode()).hexdigest()[:16]


# --- experiments: one (dataset, model) of train.experiments, one figure and table set each ------------------


def experiment_name(dataset, model) -> str:
    """The one spelling of an experiment across the workflow and the report, e.g. "mnist5k_M1"."""
    return f"{dataset}_{model}"


def split_experiment(name: str) -> tuple[str, str]:
    """(dataset, model) of an experiment name: model names have no underscore (the schema), dataset names may."""
    dataset, model = name.rsplit("_", 1)
    return dataset, model


def config_experiments(cfg) -> list[str]:
    """The experiments of a config (train.experiments), sorted: the report's figure and table sets."""
    return sorted({experiment_name(e["dataset"], e["model"]) for e in cfg["train"]["experiments"]})


def table_experiments(df) -> list[str]:
    """The experiments that have rows in a summary table, in (dataset, model) order."""
    return [experiment_name(d, m) for d, m in sorted(set(zip(df["dataset"], df["model"], strict=True)))]


def experiment_mask(df, name: str) -> list[bool]:
    """Which rows of a summary table belong to experiment ``name`` (for ``df[...]``)."""
    return [experiment_name(d, m) == name for d, m in zip(df["dataset"], df["model"], strict=True)]


def by_experiment(experiments, kinds, files, what="files") -> dict[str, dict[str, str]]:
    """{experiment: {kind: file}} from one file per (experiment, kind), experiment-major: the order in which the
    workflow's expand() lists them (workflow/rules/report.smk)."""
    n = len(kinds)
    if len(files) != len(experiments) * n:
        raise LbhError(f"{len(experiments)} experiments x {n} kinds, but {len(files)} {what}")
    return {e: dict(zip(kinds, files[i * n : (i + 1) * n], strict=True)) for i, e in enumerate(experiments)}
