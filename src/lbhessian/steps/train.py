"""The ``train`` step: one run of the grid (resolved from the config) -> checkpoint, history, metrics."""

import sys
from pathlib import Path

from lbhessian.core.config import load, run_config
from lbhessian.core.data import load_prepared
from lbhessian.core.runtime import setup_runtime
from lbhessian.training import TrainFiles, train_run


def main(*, config, data, dataset, model, mode, batch, seed, checkpoint, history, metrics, resume, threads=None):
    cfg = load(config)
    run = run_config(cfg, dataset, model, mode=mode, batch_size=batch, seed=seed)
    device = setup_runtime(cfg["runtime"], run["seed"], threads=threads)
    train, test, info = load_prepared(data)
    files = TrainFiles(Path(checkpoint), Path(history), Path(metrics), Path(resume))
    result = train_run(run, train, test, info, files=files, device=device)
    print(f"{checkpoint}: {result['status']} after {result['epochs']} epochs", file=sys.stderr)
