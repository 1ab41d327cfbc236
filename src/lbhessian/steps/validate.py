"""``lbhessian validate``: check a config file before any job runs (the workflow runs the same checks):
the schema, the grid, and the limits that depend on each network's size and on memory (core.limits)."""

from lbhessian.core import limits
from lbhessian.core.config import load, runs


def main(*, config):
    cfg = load(config)
    notes = limits.check(cfg, str(config))
    print(f"{config}: valid, {len(runs(cfg))} runs")
    for line in notes:
        print(f"  {line}")
