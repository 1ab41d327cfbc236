"""The ``data`` step: fetch a dataset once and store it as one compact file of uint8 tensors."""

import sys

from lbhessian.core.config import load
from lbhessian.core.data import prepare


def main(*, config, dataset, out, threads=None):
    cfg = load(config)
    data = cfg["data"]
    written = prepare(
        dataset, out, data["local_dirs"].get(dataset), data["root"], checksums=data["checksums"].get(dataset)
    )
    print(f"prepared {dataset} -> {written}", file=sys.stderr)
