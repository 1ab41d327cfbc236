"""The ``data`` step: fetch a dataset once and store it as one compact file of uint8 tensors."""

import sys

from lbhessian.core.config import load
from lbhessian.core.data import prepare


def main(config, dataset, out, threads=None):
    cfg = load(config)
    written = prepare(dataset, out, cfg["data"]["local_dirs"].get(dataset), download_root=cfg["data"]["root"])
    print(f"prepared {dataset} -> {written}", file=sys.stderr)
