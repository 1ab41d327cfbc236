"""The ``figures`` step: every figure kind of each experiment, as PNG and PDF, from summary.csv."""

import sys

from lbhessian.core.config import attack_settings, load
from lbhessian.core.names import by_experiment, split_experiment
from lbhessian.report.figures import make_figures
from lbhessian.report.summary import read_summary


def main(*, config, summary, experiment, kind, png, pdf):
    """``png`` and ``pdf`` list one file per (experiment, kind), experiment-major."""
    cfg = load(config)
    pngs = by_experiment(experiment, kind, png, "PNG files")
    pdfs = by_experiment(experiment, kind, pdf, "PDF files")
    df = read_summary(summary)
    for exp in experiment:
        dataset, model = split_experiment(exp)
        settings = {
            "headline_eps": attack_settings(cfg, dataset, model)["headline_eps"],  # the experiment's own grid
            "claims": cfg["report"]["claims"],  # thresholds (input_psd_tol for the tolerance band)
            "config": cfg,
            "path": str(config),
        }
        make_figures(df, exp, kind, png=list(pngs[exp].values()), pdf=list(pdfs[exp].values()), settings=settings)
    print(f"{len(png)} figures", file=sys.stderr)
