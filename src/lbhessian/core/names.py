"""How a run of the grid is named and fingerprinted: its identity (dataset, model, mode, batch label, seed) and the
digest of its resolved settings. Torch-free, so the report steps can check run files without loading torch."""

import hashlib
import json

# What names a run of the grid (core.config.runs): the identity every step checks its inputs against.
RUN_KEYS = ("dataset", "model", "mode", "batch", "seed")


def run_identity(run):
    """A run config's (or a grid entry's) place in the grid: dataset, model, mode, batch label, seed."""
    batch = run["batch"] if "batch" in run else run.get("batch_size")
    return {"dataset": run.get("dataset"), "model": run.get("model"), "mode": run.get("mode"),
            "batch": str(batch), "seed": run.get("seed")}  # fmt: skip


def metrics_identity(metrics):
    """The place in the grid that a metrics.json says it belongs to."""
    return {**run_identity(metrics), "batch": str(metrics.get("batch_label", metrics.get("batch_size")))}


def describe(identity):
    return "{dataset}/{model}/{mode}/batch {batch}/seed {seed}".format(**identity)


def run_digest(run):
    """A short digest of every resolved setting of a run: equal digests, equal training."""
    return hashlib.sha256(json.dumps(run, sort_keys=True, default=str).encode()).hexdigest()[:16]
