"""The ``claims`` step: a verdict for each claim of the paper, from summary.csv (JSON, Markdown, HTML)."""

import sys

from lbhessian.core.config import load
from lbhessian.core.io import write_json, write_text
from lbhessian.report.claims import evaluate, to_html, to_markdown
from lbhessian.report.summary import read_summary


def main(*, config, summary, out, markdown, html):
    cfg = load(config)
    result = evaluate(read_summary(summary), cfg["report"]["claims"])
    write_json(out, result)
    write_text(markdown, to_markdown(result))
    write_text(html, to_html(result))
    verdicts = ", ".join(f"{k}: {v['verdict']}" for k, v in result["claims"].items())
    print(f"{out}: {verdicts}", file=sys.stderr)
