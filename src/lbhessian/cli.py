"""`lbhessian <step>`: every pipeline step as a command that reads and writes files only."""

import argparse
import os
import sys
import time
from pathlib import Path

from .errors import LbhError


def _config(path):
    from . import config

    return config.load(path)


def cmd_data(args):
    from .data import prepare

    cfg = _config(args.config)
    out = prepare(args.dataset, cfg["data"]["root"], cfg["data"].get("local_dirs"))
    print(f"prepared {args.dataset} -> {out}", file=sys.stderr)


def _load_data(cfg, dataset):
    from .data import load_prepared, prepared_path

    return load_prepared(prepared_path(cfg["data"]["root"], dataset))


def cmd_train(args):
    from .config import run_config
    from .runtime import setup_runtime
    from .train import train_run

    cfg = _config(args.config)
    run = run_config(cfg, args.dataset, args.model, args.mode, args.batch, args.seed)
    device = setup_runtime(cfg["runtime"], run["seed"])
    train, test, info = _load_data(cfg, args.dataset)
    metrics = train_run(run, train, test, info, args.out, device)
    print(f"{args.out}: {metrics['status']} after {metrics['epochs']} epochs", file=sys.stderr)


def _measure_step(args, section, measure):
    """Shared body of the per-run measurement steps: load run + data, measure, write JSON atomically."""
    from .checkpoint import load_checkpoint
    from .io import read_json, write_json
    from .runtime import setup_runtime

    cfg = _config(args.config)
    run_dir = Path(args.run_dir)
    metrics = read_json(run_dir / "metrics.json")
    if metrics.get("status") != "ok":
        # Keep the grid going: a diverged run gets a marker instead of a crash that stops other jobs.
        write_json(args.out, {"status": "skipped", "reason": f"training {metrics.get('status')}"})
        return
    device = setup_runtime(cfg["runtime"], seed=0)
    model, run, info, _ = load_checkpoint(run_dir / "checkpoint.pt", device=device)
    train, test, _ = _load_data(cfg, run["dataset"])
    train, test = train.subset(run.get("train_size")), test.subset(run.get("test_size"))
    t0 = time.perf_counter()
    result = measure(model, train, test, cfg[section], device)
    result.setdefault("seconds", time.perf_counter() - t0)
    write_json(args.out, {"status": "ok", **result})


def cmd_spectrum(args):
    from .spectrum import measure

    _measure_step(args, "spectrum", measure)


def cmd_inputs(args):
    from .inputs import measure

    _measure_step(args, "inputs", measure)


def cmd_attack(args):
    from .robustness import evaluate

    _measure_step(args, "attack", evaluate)


def cmd_validate(args):
    from . import config

    cfg = _config(args.config)
    print(f"{args.config}: valid, {len(config.runs(cfg))} runs")


def build_parser():
    p = argparse.ArgumentParser(prog="lbhessian", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    def add(name, func, help_):
        s = sub.add_parser(name, help=help_)
        s.add_argument(
            "--config",
            default=os.environ.get("LBH_CONFIG", "params.yaml"),
            help="experiment config (default: $LBH_CONFIG, set by the workflow, else params.yaml)",
        )
        s.set_defaults(func=func)
        return s

    add("validate", cmd_validate, "check a config file against the schema")
    s = add("data", cmd_data, "download/prepare a dataset into <data.root>/prepared/<name>.pt")
    s.add_argument("--dataset", required=True)
    s = add("train", cmd_train, "train one run of the grid")
    for a in ("--dataset", "--model", "--mode", "--batch"):
        s.add_argument(a, required=True)
    s.add_argument("--seed", type=int, required=True)
    s.add_argument("--out", required=True, help="run directory")
    for name, func, help_ in (
        ("spectrum", cmd_spectrum, "weight-Hessian spectrum, gradient norm, trace and loss landscape of a run"),
        ("inputs", cmd_inputs, "input-gradient norms and input-Hessian spectra of a run"),
        ("attack", cmd_attack, "adversarial accuracy (FGSM, PGD) of a run over the eps grid"),
    ):
        s = add(name, func, help_)
        s.add_argument("--run-dir", required=True)
        s.add_argument("--out", required=True)
    try:
        from . import cli_report
    except ImportError:  # report steps not installed in this checkout
        cli_report = None
    if cli_report is not None:
        cli_report.register(sub)
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except LbhError as e:
        print(f"lbhessian {args.command}: error: {e}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print(f"lbhessian {args.command}: interrupted (a rerun resumes)", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    main()
