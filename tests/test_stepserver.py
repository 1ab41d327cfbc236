"""The step server (lbhessian/stepserver/): a step a job hands to it computes bit for bit what the job's own
process computes, ends with the same status and message, stops on the job's signals as the job's own process would,
and is not used where it must not be (SLURM jobs, other kernel settings). Every job here is a real `python -m
lbhessian` process; the server's log (LBH_STEP_SERVER_LOG) tells which ones it ran."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from helpers.configs import one_run_yaml
from helpers.workflow import run_flags, without_timings
from lbhessian import stepserver
from lbhessian.core.checkpoint import load_checkpoint

ROOT = Path(__file__).resolve().parents[1]
CONFIG = one_run_yaml(
    epochs=2,
    train={"track": {"every": 1, "samples": 64, "iters": 5}},
    spectrum={"top_k": 2, "max_iter": 20, "samples": 128, "trace_samples": 2, "check_power": "all"},
)


def _env(**extra) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "SLURM_JOB_ID"}  # this test may itself run under SLURM
    return {**env, "PYTHONPATH": str(ROOT / "src"), **extra}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    """A config and its prepared data (by the data step, run alone)."""
    w = tmp_path_factory.mktemp("steps")
    (w / "cfg.yaml").write_text(CONFIG)
    data = ["data", "--config", "cfg.yaml", "--dataset", "mnist5k", "--out", "data/prepared/mnist5k.pt"]
    subprocess.run([sys.executable, "-m", "lbhessian", *data], cwd=w, env=_env(), check=True)
    return w


@pytest.fixture
def server(tmp_path, monkeypatch):
    """A step server as the Snakefile starts it, this test process standing in for Snakemake; yields its log."""
    log = tmp_path / "served.jsonl"
    monkeypatch.setenv(stepserver.LOG_ENV, str(log))
    monkeypatch.setenv("PYTHONPATH", str(ROOT / "src"))
    monkeypatch.delenv(stepserver.ENV, raising=False)
    stepserver.start(kernels="native", threads=1)
    assert os.path.exists(os.environ[stepserver.ENV])  # start waits until it accepts
    yield log
    stepserver.stop()


def _log_rows(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def _served(log: Path) -> list[list[str]]:
    return [row["argv"] for row in _log_rows(log)]


def _train_args(out: Path) -> list[str]:
    files = ["--checkpoint", out / "checkpoint.pt", "--history", out / "history.csv", "--metrics", out / "metrics.json"]
    files += ["--resume", out / "resume.pt"]
    return ["train", "--config", "cfg.yaml", "--data", "data/prepared/mnist5k.pt", *run_flags(8), *map(str, files)]


def _spectrum_args(run: Path, out: Path) -> list[str]:
    files = ["--checkpoint", str(run / "checkpoint.pt"), "--metrics", str(run / "metrics.json"), "--out", str(out)]
    return ["spectrum", "--config", "cfg.yaml", "--data", "data/prepared/mnist5k.pt", *files, *run_flags(8)]


def _job(workdir: Path, args: list[str], **env) -> subprocess.CompletedProcess:
    """One job as Snakemake runs it: `python -m lbhessian ...` with the environment it inherits."""
    cmd = [sys.executable, "-m", "lbhessian", *args]
    return subprocess.run(cmd, cwd=workdir, env=_env(**env), capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_a_served_step_computes_what_the_job_alone_computes(workdir, server, tmp_path):
    """Training (with lambda_1 tracking) and the spectrum of its checkpoint, once through the server and once with
    LBH_STEP_SERVER=off: bit-identical weights, the same history, metrics and spectrum but for wall-clock fields.
    Catches a child that inherits the server's thread count, kernels or random state, and a job that silently ran
    alone (the server's log must list exactly the served ones)."""
    runs = {}
    for side in ("served", "alone"):
        run = tmp_path / side
        env = {} if side == "served" else {stepserver.ENV: "off"}
        for args in (_train_args(run), _spectrum_args(run, run / "spectrum.json")):
            done = _job(workdir, args, **env)
            assert done.returncode == 0, done.stderr
        runs[side] = run
    assert [a[0] for a in _served(server)] == ["train", "spectrum"]
    served, alone = (load_checkpoint(runs[s] / "checkpoint.pt")[0].state_dict() for s in ("served", "alone"))
    assert served.keys() == alone.keys() and all(torch.equal(served[k], alone[k]) for k in served)
    for name in ("metrics.json", "spectrum.json"):
        a, b = (json.loads((runs[s] / name).read_text()) for s in ("served", "alone"))
        assert without_timings(a) == without_timings(b), name
    history = [(runs[s] / "history.csv").read_text().splitlines() for s in ("served", "alone")]
    assert history[0][0] == history[1][0] and len(history[0]) == len(history[1])


def test_a_served_step_fails_with_the_same_status_and_line(workdir, server, tmp_path):
    """A spectrum job whose checkpoint does not exist: exit status 2 and the one-line error, through the server
    as alone. Catches a job that reports success for a failed child, or loses the child's stderr."""
    args = _spectrum_args(tmp_path / "nowhere", tmp_path / "spectrum.json")
    served, alone = _job(workdir, args), _job(workdir, args, **{stepserver.ENV: "off"})
    assert len(_served(server)) == 1
    assert served.returncode == alone.returncode == 2
    assert served.stderr == alone.stderr and served.stderr.count("\n") == 1, served.stderr
    assert "nowhere" in served.stderr


def _wait_for(path: Path, text: str, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if path.exists() and text in path.read_text():
            return
        time.sleep(0.05)
    raise AssertionError(f"{path} never showed {text!r}: {path.read_text() if path.exists() else ''}")


@pytest.mark.slow
@pytest.mark.parametrize("how", ["SIGTERM to the job", "SIGKILL to the job"])
def test_a_stopped_job_stops_its_step_which_saves_its_resume_point(workdir, server, tmp_path, how):
    """SIGTERM to the job reaches the step (forwarded): training saves its state mid-epoch and the job exits 75, as
    the step alone does. A job killed outright (SIGKILL: nothing forwarded) hangs up, and the server stops the step
    with SIGTERM: the state is saved too. Catches a child that outlives its job or dies without saving."""
    out, log = tmp_path / "run", tmp_path / "train.log"
    with open(log, "w") as fh:
        cmd = [sys.executable, "-m", "lbhessian", *_train_args(out)]
        proc = subprocess.Popen(cmd, cwd=workdir, env=_env(), stdout=fh, stderr=fh)
        _wait_for(log, "epoch 1/2", proc)
        proc.send_signal(signal.SIGTERM if how.startswith("SIGTERM") else signal.SIGKILL)
        status = proc.wait(timeout=60)
    deadline = time.monotonic() + 60
    while not _served(server) and time.monotonic() < deadline:  # the server logs the step once it has ended
        time.sleep(0.05)
    assert [row["status"] for row in _log_rows(server)] == [75], log.read_text()  # stopped, not run to the end
    assert (out / "resume.pt").exists() and not (out / "checkpoint.pt").exists(), log.read_text()
    if how.startswith("SIGTERM"):
        assert status == 75, log.read_text()
        assert "SIGTERM in epoch" in log.read_text() and "state saved" in log.read_text()
    rerun = _job(workdir, _train_args(out))
    assert rerun.returncode == 0 and "from epoch" in rerun.stderr, rerun.stderr


def test_jobs_it_must_not_run_run_alone(workdir, server, tmp_path):
    """A SLURM job (its allocation's CPUs and memory) and a job under other kernel settings than the server's
    torch was imported with (ATEN_CPU_CAPABILITY) run their step themselves and still succeed; a job like the
    server's is served. Catches a server that computes under kernels the job did not ask for."""
    args = _spectrum_args(tmp_path / "nowhere", tmp_path / "spectrum.json")  # fails fast after the config
    for env in ({"SLURM_JOB_ID": "1"}, {"ATEN_CPU_CAPABILITY": "default"}, {stepserver.ENV: "off"}):
        assert _job(workdir, args, **env).returncode == 2
    assert _served(server) == []
    assert _job(workdir, args).returncode == 2 and len(_served(server)) == 1


def test_the_server_ends_with_the_process_that_started_it(tmp_path):
    """Snakemake killed outright (no onerror): the server notices its parent is gone, ends and removes its
    socket. Catches a server left behind after every interrupted run."""
    starter = (
        "import os, sys, time\n"
        "from lbhessian import stepserver\n"
        "stepserver.start(kernels='native', threads=1)\n"
        "print(os.environ[stepserver.ENV], flush=True)\n"
        "time.sleep(600)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", starter], env=_env(), stdout=subprocess.PIPE, text=True)
    path = Path(proc.stdout.readline().strip())
    assert path.exists()
    proc.kill()
    proc.wait()
    deadline = time.monotonic() + 30
    while path.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not path.exists() and not path.parent.exists()
