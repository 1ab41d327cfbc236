"""The ``tables`` step: per dataset and model the paper's table (CSV, Markdown), and all of them in one page."""

import sys

from lbhessian.core.config import load
from lbhessian.report.summary import read_summary
from lbhessian.report.tables import write_tables


def main(*, config, summary, experiment, csv, md, all_md, html):
    load(config)  # a bad config stops here too, with the same one line as every other step
    write_tables(read_summary(summary), experiment, csv=csv, md=md, all_md=all_md, all_html=html)
    print(f"{html}: {len(experiment)} tables", file=sys.stderr)
