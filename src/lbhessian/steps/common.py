"""What every per-run measurement step shares: load the run's checkpoint and data, measure, write JSON."""

import sys
import time

from lbhessian.core.checkpoint import load_checkpoint
from lbhessian.core.config import load
from lbhessian.core.data import load_prepared
from lbhessian.core.io import read_json, write_json
from lbhessian.core.runtime import setup_runtime


def measure_run(config, data, checkpoint, metrics, out, threads, section, measure):
    """Measure one trained run with ``measure(model, train, test, cfg[section], device)`` -> ``out``.

    A run that did not train to the end (status other than "ok") gets a "skipped" marker instead of a crash
    that would stop the other jobs of the grid.
    """
    cfg = load(config)
    status = read_json(metrics).get("status")
    if status != "ok":
        write_json(out, {"status": "skipped", "reason": f"training {status}"})
        print(f"{out}: skipped (training {status})", file=sys.stderr)
        return
    device = setup_runtime(cfg["runtime"], seed=0, threads=threads)
    model, run, _, _ = load_checkpoint(checkpoint, device=device)
    train, test, _ = load_prepared(data)
    train, test = train.subset(run.get("train_size")), test.subset(run.get("test_size"))
    t0 = time.perf_counter()
    result = measure(model, train, test, cfg[section], device)
    result.setdefault("seconds", time.perf_counter() - t0)
    write_json(out, {"status": "ok", **result})
    print(f"{out}: written", file=sys.stderr)
