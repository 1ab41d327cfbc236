"""The ``collect`` step: every run's files -> summary.csv, headline metrics and plot data for DVC."""

import sys

from lbhessian.core.config import load, runs
from lbhessian.core.errors import LbhError
from lbhessian.core.io import read_json, write_json, write_text, write_together
from lbhessian.core.names import RunId
from lbhessian.core.results import RUN_FILES
from lbhessian.report.dvc import headline_metrics, write_plot_data
from lbhessian.report.summary import collect


def check_grid(config, cfg, metrics):
    """The metrics files must be those of the config's grid, one per run, in its order."""
    grid = runs(cfg)
    if len(metrics) != len(grid):
        raise LbhError(f"collect: {config} has {len(grid)} runs, got {len(metrics)} metrics files")
    for path, run in zip(metrics, grid, strict=True):
        found, place = RunId.of_metrics(read_json(path)), RunId.of(run)
        if found != place:
            raise LbhError(
                f"{path}: is of run {found.describe()}, but its place in the grid of {config} is run {place.describe()}"
            )


def main(*, config, out, headline, plots, **files):
    """``files``: per kind of core.results.RUN_FILES (metrics, history, ...) one file per run, in the grid's order
    (core.config.runs): each metrics.json must say it is of the run at its place, or nothing is written."""
    cfg = load(config)
    if set(files) != set(RUN_FILES):
        raise LbhError(f"collect: expected the files {', '.join(RUN_FILES)}, got {', '.join(files)}")
    lengths = {kind: len(files[kind]) for kind in RUN_FILES}
    if len(set(lengths.values())) != 1:
        raise LbhError(f"collect: expected one file of each kind per run, got {lengths}")
    check_grid(config, cfg, files["metrics"])
    per_run = [dict(zip(RUN_FILES, one, strict=True)) for one in zip(*(files[k] for k in RUN_FILES), strict=True)]
    df = collect(per_run)
    headline_eps = cfg["attack"]["headline_eps"]
    write_together(  # all or nothing: a failed write leaves no summary without its metrics and plot data
        (out, lambda p: write_text(p, df.to_csv(index=False))),
        (headline, lambda p: write_json(p, headline_metrics(df, headline_eps))),
        (plots, lambda p: write_plot_data(df, p, headline_eps=headline_eps)),
    )
    print(f"{out}: {len(df)} runs", file=sys.stderr)
