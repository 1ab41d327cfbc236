"""The real Snakemake workflow on config/smoke.yaml, end to end, in a temporary directory."""

import json
import subprocess
import sys

import pandas as pd
import pytest
import torch
import yaml

from helpers.workflow import SMOKE, check_report, run_dir, run_flags, snakemake, without_timings
from lbhessian.core import config
from lbhessian.core.checkpoint import load_checkpoint

pytestmark = pytest.mark.slow


def run_dirs(workdir):
    cfg = config.load(SMOKE)
    return [run_dir(workdir, cfg, r) for r in config.runs(cfg)]


def test_every_expected_output(smoke_run):
    workdir, _ = smoke_run
    dirs = run_dirs(workdir)
    assert len(dirs) == 4  # bs 16, 128, full clean + fgsm at bs 16
    for d in dirs:
        for name in ("checkpoint.pt", "history.csv", "metrics.json", "spectrum.json", "inputs.json", "attack.json"):
            assert (d / name).stat().st_size > 0, d / name
        metrics = json.loads((d / "metrics.json").read_text())
        assert metrics["status"] == "ok" and metrics["epochs"] == 3
        spectrum = json.loads((d / "spectrum.json").read_text())
        assert len(spectrum["train"]["eigenvalues"]) == 2 and spectrum["train"]["eigenvalues"][0] > 0
        attack = json.loads((d / "attack.json").read_text())
        assert 0 <= attack["test"]["fgsm_linf"]["0.1"] <= attack["test"]["clean_acc"] <= 1
        model, run, _, _ = load_checkpoint(d / "checkpoint.pt")
        assert run["mode"] == d.parts[-3] and str(run["batch_size"]) == d.parts[-2][2:]
    # The full batch is gradient descent on the 512-image training subset.
    runs = workdir / "results" / "runs" / "mnist5k" / "M1"
    full = json.loads((runs / "clean" / "bsfull" / "seed0" / "metrics.json").read_text())
    assert full["batch_size"] == 512 and full["steps"] == 3
    # Training dynamics were tracked every epoch (config: train.track.every = 1).
    hist = pd.read_csv(runs / "clean" / "bs16" / "seed0" / "history.csv")
    assert hist["lambda1"].notna().all() and (hist["lambda1"] > 0).all()
    # Logs and benchmarks for every job.
    results = workdir / "results"
    for step in ("train", "spectrum", "inputs", "attack"):
        assert len(list((results / "logs" / step).rglob("*.log"))) == 4
        assert len(list((results / "benchmarks" / step).rglob("*.tsv"))) == 4
    summary = pd.read_csv(results / "summary.csv")
    assert len(summary) == 4 and set(summary["mode"]) == {"clean", "fgsm"}
    assert (results / "claims.json").exists() and (results / "metrics.json").exists()


def test_second_run_has_nothing_to_do(smoke_run):
    workdir, _ = smoke_run
    proc = snakemake(workdir, "--configfile", str(SMOKE), "--cores", "2", "-n")
    assert "Nothing to be done" in proc.stdout + proc.stderr


def test_report_is_self_contained_with_every_figure(smoke_run):
    workdir, _ = smoke_run
    snakemake(workdir, "--configfile", str(SMOKE), "--cores", "1", "--report", str(workdir / "report.html"))
    check_report((workdir / "report.html").read_text())


def test_param_change_reruns_only_affected_jobs(smoke_run, tmp_path):
    workdir, _ = smoke_run
    cfg = yaml.safe_load(SMOKE.read_text())
    cfg["attack"]["fgsm_linf"] = [0.05, 0.1, 0.2]  # headline_eps 0.1 must stay in the grid
    changed = tmp_path / "changed.yaml"
    changed.write_text(yaml.safe_dump(cfg))
    proc = snakemake(workdir, "--configfile", str(changed), "--cores", "2", "-n", "--quiet", "rules")
    out = proc.stdout
    assert "attack" in out and "train " not in out and "spectrum" not in out


def test_bad_config_fails_before_any_job_with_one_clear_line(tmp_path):
    cfg = yaml.safe_load(SMOKE.read_text())
    cfg["train"]["batch_sizes"] = [16, -1]
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(cfg))
    proc = snakemake(tmp_path, "--configfile", str(bad), "--cores", "1", check=False)
    assert proc.returncode != 0
    assert "train.batch_sizes[1]: -1 is less than the minimum of 1" in proc.stderr
    assert not (tmp_path / "results").exists()


def test_cpu_runs_are_reproducible(smoke_run, tmp_path):
    """The same commands twice on the CPU give the same numbers: one run's train, spectrum, inputs and attack
    steps rerun by hand (same CLI as the rules, same thread count) into another directory; weights, history and
    every number of the four JSON files equal the workflow's bit for bit (timings aside).

    Catches an unseeded random source in any step (PGD's random start, the Lanczos/Hutchinson start vectors,
    the sample of images for the input Hessians, the data shuffle), which makes two runs differ."""
    workdir, _ = smoke_run
    d = workdir / "results" / "runs" / "mnist5k" / "M1" / "clean" / "bs128" / "seed0"
    again = tmp_path / "again"

    def step(*args):
        cmd = [sys.executable, "-m", "lbhessian", *args, "--config", str(SMOKE), "--threads", "1"]
        proc = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]

    data = "data/prepared/mnist5k.pt"
    run = run_flags(128)
    step(
        "train",
        "--data",
        data,
        *run,
        "--checkpoint",
        again / "checkpoint.pt",
        "--history",
        again / "history.csv",
        "--metrics",
        again / "metrics.json",
        "--resume",
        again / "resume.pt",
    )
    for name in ("spectrum", "inputs", "attack"):
        step(
            name,
            "--data",
            data,
            *run,
            "--checkpoint",
            again / "checkpoint.pt",
            "--metrics",
            again / "metrics.json",
            "--out",
            again / f"{name}.json",
        )
    a = load_checkpoint(d / "checkpoint.pt")[0].state_dict()
    b = load_checkpoint(again / "checkpoint.pt")[0].state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    history = [pd.read_csv(x / "history.csv").drop(columns="seconds") for x in (d, again)]
    pd.testing.assert_frame_equal(*history, check_exact=True)
    for name in ("metrics.json", "spectrum.json", "inputs.json", "attack.json"):
        ours, theirs = (without_timings(json.loads((x / name).read_text())) for x in (d, again))
        assert ours == theirs, name
    spectrum = json.loads((again / "spectrum.json").read_text())
    assert spectrum["train"]["eigenvalues"][0] > 0  # real numbers were compared, not two empty files


def test_a_diverged_run_is_recorded_while_the_others_finish(tmp_path):
    """A real workflow where one experiment's lr is absurd (M2, lr 1e6) and the other's is sane (M1): the run
    completes (exit 0), the diverged run has status "diverged" and "skipped" measurement markers, the sane run
    is measured, and the summary, claims, tables and figures are made from what finished.

    Catches a diverged training that raises (Snakemake would stop or leave the report undone), measurement
    steps that crash on a diverged checkpoint, and report steps that count a diverged run as a result."""
    cfg = yaml.safe_load(SMOKE.read_text())
    small = {"train_size": 256, "test_size": 128}
    cfg["train"].update(
        experiments=[
            {"dataset": "mnist5k", "model": "M1", **small},
            {
                "dataset": "mnist5k",
                "model": "M2",
                **small,
                "optimizer": {"lr": 1.0e6, "momentum": 0.9, "weight_decay": 0.0},
            },
        ],
        batch_sizes=[64],
        robust=[],
        track={"every": 0, "samples": 128, "iters": 5},
        stop={"rule": "epochs", "epochs": 2, "target_loss": 0.1},
    )
    path = tmp_path / "diverge.yaml"
    path.write_text(yaml.safe_dump(cfg))
    workdir = tmp_path / "work"
    snakemake(workdir, "--configfile", str(path), "--cores", "2")
    runs = workdir / "results" / "runs" / "mnist5k"
    bad, good = runs / "M2" / "clean" / "bs64" / "seed0", runs / "M1" / "clean" / "bs64" / "seed0"
    assert json.loads((bad / "metrics.json").read_text())["status"] == "diverged"
    assert json.loads((good / "metrics.json").read_text())["status"] == "ok"
    for name in ("spectrum.json", "inputs.json", "attack.json"):
        assert json.loads((bad / name).read_text())["status"] == "skipped", name
    assert json.loads((good / "spectrum.json").read_text())["train"]["eigenvalues"][0] > 0
    assert json.loads((good / "attack.json").read_text())["test"]["clean_acc"] > 0
    summary = pd.read_csv(workdir / "results" / "summary.csv").set_index("model")
    assert summary.loc["M2", "status"] == "diverged" and summary.loc["M1", "status"] == "ok"
    metrics = json.loads((workdir / "results" / "metrics.json").read_text())
    assert metrics["runs"] == 2 and metrics["diverged"] == 1
    assert (workdir / "results" / "claims.json").exists()
    assert list((workdir / "results" / "figures" / "mnist5k_M1").glob("*.png"))
