"""Preemption-safe training (issue 13, point 5): a training job told to stop by SIGTERM mid-epoch saves its
state within one step and exits 75; the rerun resumes there and ends with bit-identical weights.

Three ways in: the step as a real subprocess, the real Snakefile locally (profiles/local retries it), and
the real one-node SLURM cluster (`scancel --signal=TERM` on the running job; profiles/slurm retries it).
Each compares with one uninterrupted run of the same training (fixture `reference`).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch
from slurm_cluster import PROFILE_LOCAL, PROFILE_SLURM, REPO, SlurmCluster, run_snakemake

from helpers.configs import one_run_yaml
from helpers.workflow import run_flags
from lbhessian.core.checkpoint import load_checkpoint

pytestmark = pytest.mark.slow

# One run with epochs of 128 steps: a signal sent when the log shows epoch 1 lands mid-epoch 2 or 3.
CONFIG = one_run_yaml(epochs=3, train={"augment": True, "track": {"every": 0}}, spectrum={"top_k": 1, "max_iter": 10})
RUN = "results/runs/mnist5k/M1/clean/bs8/seed0"
STEPS = 1024 // 8
FILES = ("checkpoint.pt", "history.csv", "metrics.json", "resume.pt")
STOPPED = re.compile(r"SIGTERM in epoch (\d) after step (\d+) of 128: state saved")


def _train_cmd(workdir: Path, out: Path) -> list[str]:
    args = ["--config", str(workdir / "cfg.yaml"), "--data", str(workdir / "data/prepared/mnist5k.pt")]
    args += [*run_flags(8), "--threads", "1"]
    args += [x for name in FILES for x in (f"--{name.split('.')[0]}", str(out / name))]
    return [sys.executable, "-m", "lbhessian", "train", *args]


def _env() -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": str(REPO / "src"),
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
    }


def _workdir(tmp_path: Path, data_from: Path | None = None) -> Path:
    (tmp_path / "cfg.yaml").write_text(CONFIG)
    if data_from:  # the prepared data already there: the workflow runs the training job only
        (tmp_path / "data/prepared").mkdir(parents=True)
        shutil.copy(data_from / "data/prepared/mnist5k.pt", tmp_path / "data/prepared/mnist5k.pt")
    return tmp_path


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """The training run uninterrupted (the step as the workflow calls it); its data is reused below."""
    workdir = _workdir(tmp_path_factory.mktemp("reference"))
    subprocess.run(
        [
            sys.executable,
            "-m",
            "lbhessian",
            "data",
            "--config",
            str(workdir / "cfg.yaml"),
            "--dataset",
            "mnist5k",
            "--out",
            str(workdir / "data/prepared/mnist5k.pt"),
        ],
        env=_env(),
        check=True,
    )
    subprocess.run(_train_cmd(workdir, workdir / RUN), env=_env(), check=True, capture_output=True)
    return workdir


def _same_training(run_dir: Path, reference: Path):
    """Bit-identical weights, and the same history and metrics but for wall-clock seconds."""
    a, b = (
        load_checkpoint(run_dir / "checkpoint.pt")[0].state_dict(),
        load_checkpoint(reference / RUN / "checkpoint.pt")[0].state_dict(),
    )
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)

    def no_seconds(csv: str):
        rows = [line.split(",") for line in csv.splitlines()]
        col = rows[0].index("seconds")
        return [r[:col] + r[col + 1 :] for r in rows]

    assert no_seconds((run_dir / "history.csv").read_text()) == no_seconds(
        (reference / RUN / "history.csv").read_text()
    )
    ma, mb = (json.loads((d / "metrics.json").read_text()) for d in (run_dir, reference / RUN))
    assert {k: v for k, v in ma.items() if k != "seconds"} == {k: v for k, v in mb.items() if k != "seconds"}
    assert not (run_dir / "resume.pt").exists()


def _wait_for(path: Path, text: str, timeout: float, alive=lambda: True) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and alive():
        if path.exists() and text in path.read_text(errors="replace"):
            return
        time.sleep(0.1)
    raise AssertionError(f"{path} never showed {text!r}")


def test_sigterm_mid_epoch_then_rerun_gives_identical_weights(reference, tmp_path):
    """Catches: SIGTERM killing the step (exit -15, no resume state), a stop only at the end of the epoch
    (step 256), a resume that redoes the cut epoch with a fresh permutation or generator (weights differ)."""
    out = tmp_path / "run"
    log = tmp_path / "train.log"
    with open(log, "w") as fh:
        proc = subprocess.Popen(_train_cmd(reference, out), env=_env(), stderr=fh, stdout=fh)
        _wait_for(log, "epoch 1/3", 120, alive=lambda: proc.poll() is None)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 75, log.read_text()
    stopped = STOPPED.search(log.read_text())
    assert stopped and 0 < int(stopped.group(2)) < STEPS, log.read_text()
    assert (out / "resume.pt").exists() and not (out / "checkpoint.pt").exists()
    rerun = subprocess.run(_train_cmd(reference, out), env=_env(), capture_output=True, text=True, check=True)
    assert f"from epoch {int(stopped.group(1)) - 1}, step {stopped.group(2)}" in rerun.stderr
    _same_training(out, reference)


def _train_pid(workdir: Path) -> int:
    """The pid of the workflow's training step: `python -m lbhessian train` running in this workdir."""
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            cwd = os.readlink(f"/proc/{pid}/cwd")
        except OSError:
            continue
        if cmd[1:4] == [b"-m", b"lbhessian", b"train"] and Path(cwd) == workdir:
            return int(pid)
    raise AssertionError(f"no training step running in {workdir}")


def _workflow(workdir: Path, profile: Path) -> list[str]:
    return [
        "-s",
        str(REPO / "Snakefile"),
        "--configfile",
        str(workdir / "cfg.yaml"),
        "--profile",
        str(profile),
        f"{RUN}/metrics.json",
    ]


def test_sigterm_to_a_workflow_training_job_is_retried_to_the_same_weights(reference, tmp_path):
    """Through the real Snakefile and profiles/local: catches a profile without retries (the workflow would
    fail; tried by hand with `retries: 0`) and a resume state that does not survive the failed attempt
    (a mid-epoch resume would not be logged)."""
    workdir = _workdir(tmp_path, data_from=reference)
    log = workdir / "results/logs/train/mnist5k/M1/clean/bs8/seed0.log"

    def stop_training():
        _wait_for(log, "epoch 1/3", 300)
        os.kill(_train_pid(workdir), signal.SIGTERM)

    killer = threading.Thread(target=stop_training, daemon=True)
    killer.start()
    run = run_snakemake([*_workflow(workdir, PROFILE_LOCAL), "--cores", "1"], workdir, _env(), timeout=1200)
    killer.join(timeout=1)
    assert run.returncode == 0 and not run.timed_out, run.log[-4000:]
    assert "Trying to restart job" in run.log or run.log.count("rule train:") == 2, run.log[-4000:]
    assert re.search(r"from epoch \d, step \d+", log.read_text()), log.read_text()
    _same_training(workdir / RUN, reference)


@pytest.mark.cluster  # make test's cluster lane: the one SLURM cluster of the host (tests/lanes.sh)
def test_scancel_sigterm_on_slurm_is_retried_to_the_same_weights(slurm_cluster: SlurmCluster, reference, tmp_path):
    """The real one-node SLURM cluster: `scancel --signal=TERM` on the running training job (as SLURM does
    at a time limit or a preemption). Catches a signal that does not reach the step through sbatch, srun and
    Snakemake's job-step process, and a profile that does not resubmit the failed job."""
    workdir = _workdir(tmp_path, data_from=reference)
    log = workdir / "results/logs/train/mnist5k/M1/clean/bs8/seed0.log"
    cancelled: list[str] = []

    def stop_training():
        _wait_for(log, "epoch 1/3", 240)
        running = slurm_cluster.run("squeue", "-h", "-t", "R", "-o", "%i").split()
        for job in running:
            slurm_cluster.run("scancel", "--signal=TERM", job)
        cancelled.extend(running)

    killer = threading.Thread(target=stop_training, daemon=True)
    killer.start()
    run = run_snakemake(_workflow(workdir, PROFILE_SLURM), workdir, slurm_cluster.env(), timeout=1200)
    killer.join(timeout=1)
    assert run.returncode == 0 and not run.timed_out, run.log[-6000:] + slurm_cluster.log_tail()
    trains = [slurm_id for rule, _, slurm_id in run.submissions() if rule == "train"]
    assert len(trains) == 2 and cancelled == [str(trains[0])], (trains, cancelled, run.log[-4000:])
    assert ("train", trains[0]) in run.failed_jobs()
    assert slurm_cluster.job(trains[1])["JobState"] == "COMPLETED"
    assert re.search(r"from epoch \d, step \d+", log.read_text()), log.read_text()
    _same_training(workdir / RUN, reference)
