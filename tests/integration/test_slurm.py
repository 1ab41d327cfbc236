"""Workflows through a real single-node SLURM cluster with profiles/slurm (issue 7).

The cluster (fixture `slurm_cluster`, tests/integration/conftest.py) is started by .ci/slurm/up.sh
and stopped by .ci/slurm/down.sh; these tests skip only where SLURM cannot be installed.
"""

from __future__ import annotations

import json
import os
import re
import textwrap
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml
from slurm_cluster import PROFILE_SLURM, REPO, SlurmCluster, run_snakemake, venv_bin

from helpers.workflow import run_dir as run_folder
from helpers.workflow import without_timings
from lbhessian.core import config as lbconfig
from lbhessian.core.checkpoint import load_checkpoint
from lbhessian.core.results import RUN_FILES

SMOKE = REPO / "config" / "smoke.yaml"

# Marked cluster: `make test` runs these in its cluster lane (tests/lanes.sh), beside the rest of the suite.
pytestmark = [pytest.mark.slow, pytest.mark.cluster]

# Two independent rules, a GPU rule after one of them, a local target rule.
TOY_SNAKEFILE = textwrap.dedent(
    """
    rule all:
        input: "gpu.txt", "other.txt"
        localrule: True

    rule first:
        output: "first.txt"
        shell: "echo $SLURM_JOB_ID > {output}"

    rule gpu:
        input: "first.txt"
        output: "gpu.txt"
        resources: gpu=1
        shell: "echo $SLURM_JOB_ID $CUDA_VISIBLE_DEVICES > {output}"

    rule other:
        output: "other.txt"
        shell: "echo $SLURM_JOB_ID > {output}"
    """
)


def _slurm_args(*extra: str) -> list[str]:
    return ["--profile", str(PROFILE_SLURM), *extra]


def test_toy_workflow_every_job_goes_through_sbatch(slurm_cluster: SlurmCluster, tmp_path: Path):
    (tmp_path / "Snakefile").write_text(TOY_SNAKEFILE)
    run = run_snakemake(_slurm_args(), tmp_path, slurm_cluster.env(), timeout=600)
    assert run.returncode == 0 and not run.timed_out, run.log[-4000:] + slurm_cluster.log_tail()

    submitted = {rule: slurm_id for rule, _, slurm_id in run.submissions()}
    assert sorted(submitted) == ["first", "gpu", "other"], run.log[-4000:]
    assert sorted(run.remote_rules()) == ["first", "gpu", "other"]
    # Each output was written inside the SLURM job the log names.
    for rule in ("first", "other"):
        assert (tmp_path / f"{rule}.txt").read_text().split() == [str(submitted[rule])]
    job_id, visible = (tmp_path / "gpu.txt").read_text().split()
    assert job_id == str(submitted["gpu"])
    assert visible == "0", "the GPU job should see the one fake GPU it was given"

    # The scheduler granted a GPU to the GPU job only, and the memory and time from the profile.
    gpu_job = slurm_cluster.job(submitted["gpu"])
    assert "gpu" in gpu_job.get("TresPerJob", ""), gpu_job
    assert gpu_job["JobState"] == "COMPLETED"
    assert gpu_job["TimeLimit"] == "00:30:00", gpu_job  # default-resources runtime: 30
    assert "mem=2000M" in gpu_job["TRES"], gpu_job  # default-resources mem_mb: 2000
    assert "gpu" not in slurm_cluster.job(submitted["first"]).get("TresPerJob", "")


# --- The real workflow (config/smoke.yaml) ---------------------------------------------------------------
# One run of the smoke grid goes through SLURM: every per-run step (data, train, spectrum, inputs, attack)
# as its own sbatch job, in about two minutes. Its outputs are compared with the same targets run locally
# (fixture `local_smoke`: the whole smoke grid of tests/conftest.py would cost this lane twice as much).

PER_RUN_STEPS = ["train", *lbconfig.MEASUREMENTS]  # GPU steps in profiles/slurm
MEASURED = [RUN_FILES[kind] for kind in ("metrics", *lbconfig.MEASUREMENTS)]


def _chosen_run() -> str:
    """The run directory (relative to the workdir) that goes through SLURM: a clean, mini-batch run."""
    cfg = lbconfig.load(SMOKE)
    runs = lbconfig.runs(cfg)
    minibatch = [r for r in runs if r["mode"] == "clean" and r["batch"] != "full"]
    r = max(minibatch, key=lambda r: int(r["batch"])) if minibatch else runs[0]  # fewest steps: fastest
    return str(run_folder(Path("."), cfg, r))


def _workflow_args(run_dir: str, *extra: str) -> list[str]:
    targets = [f"{run_dir}/{name}" for name in MEASURED]
    return ["-s", str(REPO / "Snakefile"), "--configfile", str(SMOKE), *_slurm_args(*extra), *targets]


@pytest.fixture(scope="module")
def slurm_smoke(slurm_cluster: SlurmCluster, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("slurm_smoke")
    run_dir = _chosen_run()
    run = run_snakemake(_workflow_args(run_dir), workdir, slurm_cluster.env(), timeout=1200)
    assert run.returncode == 0 and not run.timed_out, (
        f"smoke run through SLURM failed after {run.seconds:.0f} s:\n{run.log[-6000:]}\n{slurm_cluster.log_tail()}"
    )
    return workdir, run_dir, run


def _local_env() -> dict[str, str]:
    """The venv first on PATH, no profile from the environment (Snakemake runs on this host)."""
    env = {**os.environ, "PATH": f"{venv_bin()}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.pop("SNAKEMAKE_PROFILE", None)
    return env


@pytest.fixture(scope="module")
def local_smoke(tmp_path_factory):
    """The same run's targets, made locally with the same Snakefile and config (no profile)."""
    workdir = tmp_path_factory.mktemp("local_smoke")
    run_dir = _chosen_run()
    targets = [f"{run_dir}/{name}" for name in MEASURED]
    run = run_snakemake(
        ["-s", str(REPO / "Snakefile"), "--configfile", str(SMOKE), "--cores", "2", *targets],
        workdir,
        _local_env(),
        timeout=1200,
    )
    assert run.returncode == 0 and not run.timed_out, run.log[-6000:]
    return workdir


def test_smoke_every_job_went_through_sbatch(slurm_cluster: SlurmCluster, slurm_smoke):
    workdir, _, run = slurm_smoke
    submissions = run.submissions()
    rules = sorted(rule for rule, _, _ in submissions)
    assert rules == sorted(["data", *PER_RUN_STEPS]), run.log[-4000:]
    assert sorted(run.remote_rules()) == rules, "a job ran outside SLURM"
    assert len({slurm_id for _, _, slurm_id in submissions}) == len(submissions)
    for rule, _, slurm_id in submissions:
        job = slurm_cluster.job(slurm_id)
        assert job["JobState"] == "COMPLETED", (rule, job)
        assert job["WorkDir"] == str(workdir)
        # Resources from profiles/slurm: a GPU and the memory and time limits of each step.
        has_gpu = "gpu" in job.get("TresPerJob", "")
        assert has_gpu == (rule in PER_RUN_STEPS), (rule, job)
        expected_mem = {"data": "8000M", "spectrum": "16000M"}.get(rule, "8000M")
        assert f"mem={expected_mem}" in job["TRES"], (rule, job)
        # The executor kept every job's SLURM log (slurm-keep-successful-logs).
        assert list((workdir / ".snakemake" / "slurm_logs" / f"rule_{rule}").rglob(f"{slurm_id}.log")), rule
    limits = {rule: slurm_cluster.job(slurm_id)["TimeLimit"] for rule, _, slurm_id in submissions}
    assert limits["train"] == "12:00:00" and limits["spectrum"] == "06:00:00", limits


def test_smoke_outputs_equal_a_local_run(slurm_smoke, local_smoke):
    slurm_dir, run_dir, _ = slurm_smoke
    local_dir = local_smoke
    for name in MEASURED:
        via_slurm = json.loads((slurm_dir / run_dir / name).read_text())
        local = json.loads((local_dir / run_dir / name).read_text())
        assert without_timings(via_slurm) == without_timings(local), name
    history = [pd.read_csv(d / run_dir / "history.csv").drop(columns="seconds") for d in (slurm_dir, local_dir)]
    pd.testing.assert_frame_equal(*history, check_exact=True)
    weights = [load_checkpoint(d / run_dir / "checkpoint.pt")[0].state_dict() for d in (slurm_dir, local_dir)]
    assert weights[0].keys() == weights[1].keys()
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])


def test_corrupt_checkpoint_fails_fast_keeps_outputs_and_rerun_resumes(slurm_cluster: SlurmCluster, slurm_smoke):
    workdir, run_dir, _ = slurm_smoke
    run_path = workdir / run_dir
    checkpoint = run_path / "checkpoint.pt"
    good_bytes = checkpoint.read_bytes()
    stamp = checkpoint.stat()
    # Two steps lose their outputs and the checkpoint they read is truncated; its mtime is kept so that
    # Snakemake sees no newer input (it would otherwise rerun every step after train).
    for name in ("inputs.json", "attack.json"):
        (run_path / name).unlink()
    checkpoint.write_bytes(good_bytes[: len(good_bytes) // 3])
    os.utime(checkpoint, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))
    failing = ("inputs", "attack")
    rewritten = {workdir / "results" / kind / step for kind in ("logs", "benchmarks") for step in failing}
    kept = {
        p: p.read_bytes()
        for top in ("results", "data")
        for p in sorted((workdir / top).rglob("*"))
        if p.is_file() and p != checkpoint and not any(p.is_relative_to(d) for d in rewritten)
    }
    assert len(kept) >= 8, kept.keys()
    env = slurm_cluster.env()

    # One retry instead of the profile's two (the command line overrides a profile, as for a user): the same
    # paths run, one SLURM round-trip fewer for the suite. Resubmission itself is also tested by the
    # preemption test (test_preemption.py).
    retries = 1
    assert yaml.safe_load(PROFILE_SLURM.joinpath("config.yaml").read_text())["retries"] != retries
    failed = run_snakemake(_workflow_args(run_dir, "--retries", str(retries)), workdir, env, timeout=600)
    assert failed.returncode != 0 and not failed.timed_out, failed.log[-4000:]
    # How soon failures are reported is not asserted: SLURM's polling makes it depend on the host's load
    # (speed belongs in benchmarks); that every attempt's failure is reported is, below.
    # Only the two steps ran, each 1 + retries times, and each failure was reported with its SLURM job id, the
    # job's state and the step's own error message.
    attempts = 1 + retries
    submitted = failed.submissions()
    expected = ["attack"] * attempts + ["inputs"] * attempts
    assert sorted(rule for rule, _, _ in submitted) == expected, failed.log[-4000:]
    assert sorted(failed.failed_jobs()) == sorted((rule, slurm_id) for rule, _, slurm_id in submitted)
    assert all(slurm_cluster.job(slurm_id)["JobState"] == "FAILED" for _, _, slurm_id in submitted)
    assert "not a readable checkpoint" in failed.log
    # No other output was lost or changed, and the failed steps left no partial output.
    assert {p: p.read_bytes() for p in kept} == kept
    assert not (run_path / "inputs.json").exists() and not (run_path / "attack.json").exists()

    # Restore the checkpoint: the rerun submits exactly the two missing steps.
    checkpoint.write_bytes(good_bytes)
    os.utime(checkpoint, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))
    rerun = run_snakemake(_workflow_args(run_dir), workdir, env, timeout=900)
    assert rerun.returncode == 0 and not rerun.timed_out, rerun.log[-4000:]
    assert sorted(rule for rule, _, _ in rerun.submissions()) == ["attack", "inputs"]
    for name in ("inputs.json", "attack.json"):
        assert json.loads((run_path / name).read_text())["status"] == "ok"
    assert {p: p.read_bytes() for p in kept} == kept


@pytest.mark.parametrize("profile", ["local", "slurm"])
def test_profiles_plan_the_smoke_workflow(profile: str, tmp_path: Path):
    """Both profiles work with the real workflow (dry run: needs no cluster); the SLURM one asks for a GPU
    and the profile's memory and time for the per-run steps only."""
    args = ["-s", str(REPO / "Snakefile"), "--configfile", str(SMOKE), "--profile", str(REPO / "profiles" / profile)]
    run = run_snakemake([*args, "-n"], tmp_path, _local_env(), timeout=120)
    assert run.returncode == 0, run.log[-4000:]
    # Rules inside a group job are printed indented.
    resources = dict(re.findall(r"^ *rule (\w+):\n(?: +.*\n)*? +resources: (.*)$", run.log, re.MULTILINE))
    assert set(resources) >= {"data", *PER_RUN_STEPS}, run.log[-3000:]
    for rule, line in resources.items():
        if profile == "slurm" and rule in PER_RUN_STEPS:
            assert "gpu=1" in line, (rule, line)
        else:
            assert "gpu=1" not in line, (rule, line)
    if profile == "slurm":
        assert "runtime=720" in resources["train"] and "mem_mb=16000" in resources["spectrum"]
