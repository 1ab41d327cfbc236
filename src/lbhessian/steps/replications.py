"""``lbhessian replications``: every replication's verdicts beside the design's own (report.replication), as
Markdown on stdout and in ``<results>/replications.md`` / ``.json``."""

import sys
from pathlib import Path

from lbhessian.core.config import load
from lbhessian.core.errors import LbhError
from lbhessian.core.io import write_json, write_text
from lbhessian.report.replication import compare, to_markdown


def main(*, config):
    results = Path(load(config)["results"])
    found = {"design": results / "claims.json"}
    for path in sorted((results / "replications").glob("*/claims.json")):
        found[path.parent.name] = path
    if not found["design"].exists():
        print(f"{found.pop('design')}: not found (the design itself has not run): replications only", file=sys.stderr)
    if not found:
        raise LbhError(f"{results}: no claims.json of the design or of any replication: run them first")
    result = compare(found)
    text = to_markdown(result)
    write_json(results / "replications.json", result)
    write_text(results / "replications.md", text)
    print(text, end="")
