"""The real Snakemake workflow on config/smoke.yaml, end to end, in a temporary directory."""

import json
import subprocess
import sys

import pandas as pd
import pytest
import torch
import yaml

from lbhessian.core import config
from lbhessian.core.checkpoint import load_checkpoint
from testing_helpers import SMOKE, check_report, snakemake

pytestmark = pytest.mark.slow


def run_dirs(workdir):
    cfg = config.load(SMOKE)
    return [
        workdir
        / cfg["results"]
        / "runs"
        / r["dataset"]
        / r["model"]
        / r["mode"]
        / f"bs{r['batch']}"
        / f"seed{r['seed']}"
        for r in config.runs(cfg)
    ]


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
    cfg["attack"]["fgsm_linf"] = [0.05, 0.2]
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
    # The same command twice on the CPU gives the same numbers: retrain one run by hand and compare.
    workdir, _ = smoke_run
    d = workdir / "results" / "runs" / "mnist5k" / "M1" / "clean" / "bs128" / "seed0"
    again = tmp_path / "again"
    files = [f"--{k}={again / name}" for k, name in (("checkpoint", "checkpoint.pt"), ("history", "history.csv"),
                                                     ("metrics", "metrics.json"), ("resume", "resume.pt"))]  # fmt: skip
    subprocess.run(
        [sys.executable, "-m", "lbhessian", "train", "--config", str(SMOKE), "--data", "data/prepared/mnist5k.pt",
         "--dataset", "mnist5k", "--model", "M1", "--mode", "clean", "--batch", "128", "--seed", "0", *files],
        cwd=workdir, check=True, capture_output=True,
    )  # fmt: skip
    a = load_checkpoint(d / "checkpoint.pt")[0].state_dict()
    b = load_checkpoint(tmp_path / "again" / "checkpoint.pt")[0].state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
