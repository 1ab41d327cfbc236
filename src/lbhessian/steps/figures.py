"""The ``figures`` step: every figure kind of each experiment, as PNG and PDF, from summary.csv."""

import sys

from lbhessian.core.config import attack_settings, load
from lbhessian.core.errors import LbhError
from lbhessian.report.figures import make_figures
from lbhessian.report.summary import read_summary


def main(config, summary, experiment, kind, png, pdf):
    """``png`` and ``pdf`` list one file per (experiment, kind), experiment-major."""
    cfg = load(config)
    n = len(kind)
    if not (len(png) == len(pdf) == n * len(experiment)):
        raise LbhError(f"figures: {len(experiment)} experiments x {n} kinds, but {len(png)} PNG, {len(pdf)} PDF files")
    df = read_summary(summary)
    for i, exp in enumerate(experiment):
        dataset, model = exp.rsplit("_", 1)  # model names have no underscore; dataset names may
        settings = {
            "headline_eps": attack_settings(cfg, dataset, model)["headline_eps"],  # the experiment's own grid
            "claims": cfg["report"]["claims"],  # thresholds (input_psd_tol for the tolerance band)
            "config": cfg,
            "path": str(config),
        }
        make_figures(df, exp, kind, png[i * n : (i + 1) * n], pdf[i * n : (i + 1) * n], settings)
    print(f"{len(png)} figures", file=sys.stderr)
