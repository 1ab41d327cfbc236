"""``lbhessian validate``: check a config file before any job runs (the workflow runs the same checks)."""

from lbhessian.core.config import load, runs


def main(config):
    cfg = load(config)
    print(f"{config}: valid, {len(runs(cfg))} runs")
