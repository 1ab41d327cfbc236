"""The default run's cost, before and after, side by side on this machine (issue 20).

"Before" is the code and params.yaml of a git ref (default: the commit at which issue 20 was filed), run from a
worktree of it; "after" is this checkout's code on the same design (that params.yaml, its keys carried over to
today's schema; today's defaults for everything it does not set: the joint Lanczos run for both ends of the
spectrum from Hutchinson's first vector, the power-iteration check on the first seed's clean runs at every batch
size, tracking warm-started, the step server). Both run through Snakemake with the same cores, one after the other,
and the benchmark prints the wall and CPU seconds of each whole run (Snakemake and all its jobs, user + system time)
and, per step of the pipeline: jobs, wall seconds and CPU seconds per job (Snakemake's benchmark files, plus the
step server's log for the steps it ran), Hessian-vector products per run (the spectrum step's products, counted;
training's tracking products), and the start-up time of the step's process (importing its module, median of 3),
each as after / before.

Usage: python benchmarks/bench_default.py [--before REF] [--cores N] [--quick] [--keep DIR]
--quick: one seed (the first) of the design: a quarter of the runs, for a check in a few minutes.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
BEFORE = "e0182aa"  # main when issue 20 was filed: its params.yaml is the design both sides run
STEPS = ("train", "spectrum", "inputs", "attack")
SERVED = "step-server.jsonl"  # the step server's log of the after side (lbhessian/stepserver/)


def sh(*cmd, cwd=ROOT, **kw):
    return subprocess.run(cmd, cwd=cwd, check=True, text=True, capture_output=True, **kw)


def design(ref: str, quick: bool) -> tuple[dict, dict]:
    """(before's config, after's config) for the design of params.yaml at ``ref``."""
    old = yaml.safe_load(sh("git", "show", f"{ref}:params.yaml").stdout)
    if quick:
        old["train"]["seeds"] = old["train"]["seeds"][:1]
    new = json.loads(json.dumps(old))
    spec = new["spectrum"]
    if isinstance(spec.get("check_power"), bool):  # today: all / first_seed / first_seed_clean / none
        spec.pop("check_power")
    return old, new


def run(code: Path, cfg: dict, work: Path, cores: int) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one Snakemake run of ``cfg`` with ``code``. The CPU seconds are user + system
    time of Snakemake and every job (the children's rusage): Snakemake's benchmark files sample a job's CPU time
    and miss system time and the last interval, about a third of the total on this project's CPU steps."""
    work.mkdir(parents=True, exist_ok=True)
    config = work / "config.yaml"
    config.write_text(yaml.safe_dump(cfg, sort_keys=False))
    env = {**os.environ, "PYTHONPATH": str(code / "src"), "LBH_STEP_SERVER_LOG": str(work / SERVED)}
    t0, c0 = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
    snakemake = Path(sys.executable).parent / "snakemake"
    subprocess.run(
        [
            str(snakemake),
            "-s",
            str(code / "Snakefile"),
            "-d",
            str(work),
            "--configfile",
            str(config),
            "--cores",
            str(cores),
            "--quiet",
        ],
        check=True,
        env=env,
    )
    c1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.perf_counter() - t0, (c1.ru_utime - c0.ru_utime) + (c1.ru_stime - c0.ru_stime)


def job_seconds(work: Path) -> dict:
    """{step: (jobs, wall seconds, CPU seconds)} from Snakemake's benchmark files, plus the CPU seconds of the steps
    the step server ran for those jobs (its log: a job's own figures cover only the process that waited)."""
    served = {step: 0.0 for step in STEPS}
    if (work / SERVED).exists():
        for line in (work / SERVED).read_text().splitlines():
            row = json.loads(line)
            if row["argv"][0] in served:
                served[row["argv"][0]] += row["user"] + row["system"]
    out = {}
    for step in STEPS:
        rows = []
        for tsv in (work / "results" / "benchmarks" / step).rglob("*.tsv"):
            with open(tsv) as f:
                rows.append(next(csv.DictReader(f, delimiter="\t")))
        cpu = sum(float(r["cpu_time"]) for r in rows) + served[step]
        out[step] = (len(rows), sum(float(r["s"]) for r in rows), cpu)
    return out


def products(work: Path) -> dict:
    """Mean Hessian-vector products per run: the spectrum step's, and training's tracking (counted where the
    history records it, else the tracking budget of iters per tracked epoch: an upper bound, marked ~)."""
    spec, track, exact = [], [], True
    for path in (work / "results" / "runs").rglob("spectrum.json"):
        blob = json.loads(path.read_text())
        if blob.get("status") == "ok":
            spec.append(blob["train"]["matvecs_total"])
        with open(path.with_name("history.csv")) as f:
            rows = list(csv.DictReader(f))
        if rows and "track_matvecs" in rows[0]:
            track.append(sum(float(r["track_matvecs"] or 0) for r in rows))
        else:
            exact = False
            iters = yaml.safe_load((work / "config.yaml").read_text())["train"]["track"]["iters"]
            track.append(iters * sum(1 for r in rows if r.get("lambda1")))
    mean = lambda v: statistics.fmean(v) if v else float("nan")  # noqa: E731
    return {"spectrum": mean(spec), "train": mean(track), "train_exact": exact}


NUMBERS = (
    "train_loss",
    "test_acc",
    "epochs",
    "lambda_1",
    "lambda_2",
    "lambda_3",
    "min_eigenvalue",
    "trace",
    "grad_norm",
    "input_grad_norm_test",
    "input_lambda1_test",
    "acc_fgsm_linf_eps0.1_test",
)


def numbers(work: Path) -> dict:
    """{(run keys): {column: value}} of summary.csv for the columns both sides measure."""
    with open(work / "results" / "summary.csv") as f:
        rows = list(csv.DictReader(f))
    key = ("dataset", "model", "mode", "batch_size", "seed")
    return {tuple(r[k] for k in key): {c: float(r[c]) for c in NUMBERS if r.get(c) not in (None, "")} for r in rows}


def largest_differences(before: dict, after: dict) -> dict:
    """{column: largest relative difference over the runs both sides have}: every number of a run should be
    unchanged within the solver tolerance (the issue's bar) except product counts, which are not listed."""
    out = {}
    for run in before.keys() & after.keys():
        for c in before[run].keys() & after[run].keys():
            b, a = before[run][c], after[run][c]
            out[c] = max(out.get(c, 0.0), abs(a - b) / max(abs(b), 1e-12))
    return out


def _median_seconds(code: Path, module: str) -> float:
    env = {**os.environ, "PYTHONPATH": str(code / "src")}
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", f"import {module}"], check=True, env=env)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def startup(code: Path) -> dict:
    """Median seconds to import each step's module in a fresh process (3 runs): a job's fixed start-up when it
    runs its step itself (without a step server, or its steps not served)."""
    return {step: _median_seconds(code, f"lbhessian.steps.{step}") for step in (*STEPS, "collect", "claims", "page")}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--before", default=BEFORE, help="git ref of the 'before' code and design")
    p.add_argument("--cores", type=int, default=2)
    p.add_argument("--quick", action="store_true", help="the first seed only")
    p.add_argument("--keep", help="run in this directory and keep it (default: a temporary one)")
    args = p.parse_args()
    base = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench_default_"))
    old_code = base / "before-code"
    if not old_code.exists():
        sh("git", "worktree", "add", "--detach", str(old_code), args.before)
    old_cfg, new_cfg = design(args.before, args.quick)
    try:
        measured = {
            "before": run(old_code, old_cfg, base / "before", args.cores),
            "after": run(ROOT, new_cfg, base / "after", args.cores),
        }
        wall = {k: w for k, (w, _) in measured.items()}
        cpu = {k: c for k, (_, c) in measured.items()}
        jobs = {k: job_seconds(base / k) for k in wall}
        prods = {k: products(base / k) for k in wall}
        diffs = largest_differences(numbers(base / "before"), numbers(base / "after"))
        starts = {"before": startup(old_code), "after": startup(ROOT)}
    finally:
        if not args.keep:
            sh("git", "worktree", "remove", "--force", str(old_code))
    print(f"default design of {args.before}{' (first seed only)' if args.quick else ''}, {args.cores} cores")
    print(
        f"snakemake wall time: before {wall['before']:.0f} s, after {wall['after']:.0f} s, "
        f"ratio {wall['after'] / wall['before']:.2f}"
    )
    print(
        f"CPU seconds of the whole run (Snakemake and every job, user + system): before {cpu['before']:.0f}, "
        f"after {cpu['after']:.0f}, ratio {cpu['after'] / cpu['before']:.2f}"
    )
    print("step | jobs | wall s/job before -> after (ratio) | CPU s/job before -> after (ratio)")
    print("(CPU s/job: Snakemake's samples, short of system time, except steps the step server ran: exact)")
    total = {"before": 0.0, "after": 0.0}
    for step in STEPS:
        (nb, wb, cb), (na, wa, ca) = jobs["before"][step], jobs["after"][step]
        total["before"] += wb
        total["after"] += wa
        print(
            f"{step} | {nb} -> {na} | {wb / nb:.1f} -> {wa / na:.1f} ({wa / wb:.2f}) | "
            f"{cb / nb:.1f} -> {ca / na:.1f} ({ca / cb:.2f})"
        )
    print(
        f"total job-seconds of these steps: {total['before']:.0f} -> {total['after']:.0f} "
        f"(ratio {total['after'] / total['before']:.2f})"
    )
    for part in ("spectrum", "train"):
        b, a = prods["before"][part], prods["after"][part]
        mark = "" if prods["before"]["train_exact"] or part == "spectrum" else " (before: ~ upper bound)"
        print(f"Hessian-vector products per run, {part}: {b:.1f} -> {a:.1f} (ratio {a / b:.2f}){mark}")
    print(
        "largest relative difference, after vs before, over the runs: "
        + ", ".join(f"{c} {d:.1e}" for c, d in sorted(diffs.items()))
    )
    print(
        "start-up (import) seconds of a job that runs its step itself: "
        + ", ".join(f"{s} {starts['before'][s]:.2f} -> {starts['after'][s]:.2f}" for s in starts["after"])
    )
    served = sum(1 for _ in (base / "after" / SERVED).open()) if (base / "after" / SERVED).exists() else 0
    print(
        f"after: {served} jobs ran their step in the step server; such a job's own process imports lbhessian.cli "
        f"only: {_median_seconds(ROOT, 'lbhessian.cli'):.2f} s"
    )


if __name__ == "__main__":
    main()
