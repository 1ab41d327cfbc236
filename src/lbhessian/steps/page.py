"""The ``page`` step: the report page results/report.html (one self-contained file) from summary.csv,
claims.json, the figures' PNGs, the captions of workflow/report and, when ``lbhessian replications`` has
written it, replications.json."""

import sys
from pathlib import Path

from lbhessian.core.config import load
from lbhessian.core.errors import LbhError
from lbhessian.core.io import read_json, write_text
from lbhessian.core.names import by_experiment
from lbhessian.report.page import build
from lbhessian.report.summary import read_summary


def main(*, config, summary, claims, experiment, kind, png, caption, out, replications=()):
    """``png`` lists one file per (experiment, kind), experiment-major; ``caption`` one file per kind;
    ``replications``: replications.json, or nothing where no replication has been run."""
    cfg = load(config)
    if len(caption) != len(kind):
        raise LbhError(f"page: {len(kind)} kinds, but {len(caption)} captions")
    pngs = by_experiment(experiment, kind, png, "PNG files")
    captions = {k: Path(c).read_text(encoding="utf-8") for k, c in zip(kind, caption, strict=True)}
    reps = read_json(replications[0]) if replications else None
    write_text(
        out,
        build(
            read_summary(summary), read_json(claims), cfg, str(config), pngs=pngs, captions=captions, replications=reps
        ),
    )
    print(f"{out}: report page", file=sys.stderr)
