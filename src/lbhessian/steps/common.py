"""What every per-run measurement step (spectrum, inputs, attack) shares: load the run's checkpoint and data, check
that they belong together and to the run measured, call the step's measurement (lbhessian.measure), write JSON."""

import sys
import time

from lbhessian.core.checkpoint import load_checkpoint
from lbhessian.core.config import load, measurement_params, result_runtime, run_config
from lbhessian.core.data import load_prepared
from lbhessian.core.errors import LbhError
from lbhessian.core.io import read_json, write_json
from lbhessian.core.names import RUN_KEYS, RunId, run_digest
from lbhessian.core.runtime import setup_runtime


def _differences(a, b, prefix=""):
    """Dotted keys whose values differ between two nested dicts."""
    out = []
    for key in sorted(set(a) | set(b), key=str):
        va, vb = a.get(key), b.get(key)
        if isinstance(va, dict) and isinstance(vb, dict):
            out += _differences(va, vb, f"{prefix}{key}.")
        elif va != vb:
            out.append(f"{prefix}{key}")
    return out


def check_metrics(metrics_path, metrics, expected):
    """metrics.json must be of the run the rule measures (``expected``: a RunId, or None)."""
    found = RunId.of_metrics(metrics)
    if expected is not None and found != expected:
        raise LbhError(
            f"{metrics_path}: is of run {found.describe()}, but this job measures run "
            f"{expected.describe()}: a file from another run was put here; rerun its training"
        )


def check_checkpoint(cfg, *, config_path, checkpoint, run, info, data_path, data_info, metrics_path, metrics):
    """The checkpoint's run must be the metrics' run, trained with the settings the config resolves for it
    now, on the dataset of the data file."""
    ident = RunId.of(run)
    if ident != RunId.of_metrics(metrics):
        raise LbhError(
            f"{checkpoint} (run {ident.describe()}) and {metrics_path} (run {RunId.of_metrics(metrics).describe()})"
            " do not belong together: rerun the training of this run"
        )
    if "run_digest" in metrics and metrics["run_digest"] != run_digest(run):
        raise LbhError(f"{checkpoint} and {metrics_path} come from different trainings: rerun the training")
    expected = run_config(cfg, ident.dataset, ident.model, mode=ident.mode, batch_size=ident.batch, seed=ident.seed)
    for key in ("train_size", "test_size"):  # set by library users on the run itself; not part of the config
        if key in run and key not in expected:
            expected[key] = run[key]
    changed = _differences(run, expected)
    if changed:
        raise LbhError(
            f"{checkpoint}: trained with settings other than {config_path} gives this run now "
            f"(differ: {', '.join(changed[:5])}): rerun its training"
        )
    if data_info.get("name") != info.get("name") or list(data_info["shape"]) != list(info["shape"]):
        raise LbhError(
            f"{checkpoint} (dataset {info.get('name')}) and {data_path} (dataset {data_info.get('name')}) do not"
            " belong together"
        )


def measure_run(
    *,
    step,
    measure,
    config,
    data,
    checkpoint,
    metrics,
    out,
    threads=None,
    dataset=None,
    model=None,
    mode=None,
    batch=None,
    seed=None,
):
    """Measure one trained run with ``measure(model, train, test, settings)`` (one of lbhessian.measure) -> ``out``;
    the model is loaded on the runtime's device and the measurement moves the data to it. Settings and runtime are
    what ``core.config.measurement_params`` gives measurement ``step`` for this run (the rule's params come from the
    same function). The measurement steps' ``main`` is this function with its ``step`` and ``measure`` bound.

    ``dataset`` .. ``seed``: the run the rule measures (its wildcards); its metrics.json and checkpoint must be of
    that run (a mismatch is one line naming both files, and nothing is written).
    A run that did not train to the end (status other than "ok") gets a "skipped" marker instead of a crash
    that would stop the other jobs of the grid.
    """
    expected = expected_run(dataset, model, mode, batch, seed)
    cfg = load(config)
    found = read_json(metrics)
    check_metrics(metrics, found, expected)
    status = found.get("status")
    if status != "ok":
        write_json(out, {"status": "skipped", "reason": f"training {status}"})
        print(f"{out}: skipped (training {status})", file=sys.stderr)
        return
    device = setup_runtime(result_runtime(cfg), seed=0, threads=threads)
    net, run, info, _ = load_checkpoint(checkpoint, device=device)
    train, test, data_info = load_prepared(data)
    check_checkpoint(
        cfg,
        config_path=config,
        checkpoint=checkpoint,
        run=run,
        info=info,
        data_path=data,
        data_info=data_info,
        metrics_path=metrics,
        metrics=found,
    )
    train, test = train.subset(run.get("train_size")), test.subset(run.get("test_size"))
    t0 = time.perf_counter()
    result = measure(net, train, test, measurement_params(cfg, step, RunId.of(run))["settings"])
    result.setdefault("seconds", time.perf_counter() - t0)
    write_json(out, {"status": "ok", **result})
    print(f"{out}: written", file=sys.stderr)


def expected_run(dataset, model, mode, batch, seed):
    """The RunId a measurement rule names with its wildcards (None when called without them)."""
    given = RunId(dataset, model, mode, batch, seed)
    if all(v is None for v in given):
        return None
    if any(v is None for v in given):
        raise LbhError(f"give all of {', '.join(f'--{k}' for k in RUN_KEYS)}, or none of them")
    return given._replace(batch=str(batch), seed=int(seed))
