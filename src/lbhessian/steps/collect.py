"""The ``collect`` step: every run's files -> summary.csv, headline metrics and plot data for DVC."""

import sys

from lbhessian.core.config import load, runs
from lbhessian.core.errors import LbhError
from lbhessian.core.io import read_json, write_json, write_text, write_together
from lbhessian.core.names import describe, metrics_identity, run_identity
from lbhessian.report.dvc import headline_metrics, write_plot_data
from lbhessian.report.summary import FILES, collect


def check_grid(config, cfg, metrics):
    """The metrics files must be those of the config's grid, one per run, in its order."""
    grid = runs(cfg)
    if len(metrics) != len(grid):
        raise LbhError(f"collect: {config} has {len(grid)} runs, got {len(metrics)} metrics files")
    for path, run in zip(metrics, grid, strict=True):
        found = metrics_identity(read_json(path))
        if found != run_identity(run):
            raise LbhError(
                f"{path}: is of run {describe(found)}, but its place in the grid of {config} is run "
                f"{describe(run_identity(run))}"
            )


def main(config, metrics, history, spectrum, inputs, attack, out, headline, plots):
    """Lists ``metrics``, ``history``, ... hold one file per run, in the grid's order (core.config.runs):
    each metrics.json must say it is of the run at its place, or nothing is written."""
    cfg = load(config)
    lists = {"metrics": metrics, "history": history, "spectrum": spectrum, "inputs": inputs, "attack": attack}
    lengths = {name: len(files) for name, files in lists.items()}
    if len(set(lengths.values())) != 1:
        raise LbhError(f"collect: expected one file of each kind per run, got {lengths}")
    check_grid(config, cfg, metrics)
    files = [dict(zip(FILES, files, strict=True)) for files in zip(*(lists[f] for f in FILES), strict=True)]
    df = collect(files)
    headline_eps = cfg["attack"]["headline_eps"]
    write_together(  # all or nothing: a failed write leaves no summary without its metrics and plot data
        (out, lambda p: write_text(p, df.to_csv(index=False))),
        (headline, lambda p: write_json(p, headline_metrics(df, headline_eps))),
        (plots, lambda p: write_plot_data(df, p, headline_eps=headline_eps)),
    )
    print(f"{out}: {len(df)} runs", file=sys.stderr)
