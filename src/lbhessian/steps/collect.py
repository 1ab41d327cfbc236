"""The ``collect`` step: every run's files -> summary.csv, headline metrics and plot data for DVC."""

import sys

from lbhessian.core.config import load
from lbhessian.core.errors import LbhError
from lbhessian.core.io import write_json, write_text
from lbhessian.report.dvc import headline_metrics, write_plot_data
from lbhessian.report.summary import FILES, collect


def main(config, metrics, history, spectrum, inputs, attack, out, headline, plots):
    """Lists ``metrics``, ``history``, ... hold one file per run, in the same order."""
    cfg = load(config)
    lists = {"metrics": metrics, "history": history, "spectrum": spectrum, "inputs": inputs, "attack": attack}
    lengths = {name: len(files) for name, files in lists.items()}
    if len(set(lengths.values())) != 1:
        raise LbhError(f"collect: expected one file of each kind per run, got {lengths}")
    runs = [dict(zip(FILES, files, strict=True)) for files in zip(*(lists[f] for f in FILES), strict=True)]
    df = collect(runs)
    write_text(out, df.to_csv(index=False))
    headline_eps = cfg["attack"]["headline_eps"]
    write_json(headline, headline_metrics(df, headline_eps))
    write_plot_data(df, plots, headline_eps=headline_eps)
    print(f"{out}: {len(df)} runs", file=sys.stderr)
