"""Workflows through a real single-node SLURM cluster with profiles/slurm (issue 7).

The cluster (fixture `slurm_cluster`, tests/integration/conftest.py) is started by .ci/slurm/up.sh
and stopped by .ci/slurm/down.sh; these tests skip only where SLURM cannot be installed.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from slurm_cluster import PROFILE_SLURM, SlurmCluster, run_snakemake

pytestmark = pytest.mark.slow

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

# `good` and `bad` are independent; `bad` fails while its input says "corrupt".
FAILING_SNAKEFILE = textwrap.dedent(
    """
    rule all:
        input: "good.txt", "bad.txt"
        localrule: True

    rule good:
        output: "good.txt"
        shell: "sleep 3; echo $SLURM_JOB_ID > {output}"

    rule bad:
        input: "bad_input.txt"
        output: "bad.txt"
        shell: "if grep -q corrupt {input}; then echo 'corrupt input' >&2; exit 1; fi; cp {input} {output}"
    """
)


def _slurm_args(*extra: str) -> list[str]:
    return ["--profile", str(PROFILE_SLURM), *extra]


def test_toy_workflow_every_job_goes_through_sbatch(slurm_cluster: SlurmCluster, tmp_path: Path):
    (tmp_path / "Snakefile").write_text(TOY_SNAKEFILE)
    run = run_snakemake(_slurm_args(), tmp_path, slurm_cluster.env(), timeout=180)
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


def test_failing_job_reported_quickly_others_kept_rerun_resumes(slurm_cluster: SlurmCluster, tmp_path: Path):
    (tmp_path / "Snakefile").write_text(FAILING_SNAKEFILE)
    (tmp_path / "bad_input.txt").write_text("corrupt\n")
    env = slurm_cluster.env()

    failed = run_snakemake(_slurm_args(), tmp_path, env, timeout=180)
    assert failed.returncode != 0 and not failed.timed_out, failed.log[-4000:]
    # Reported within a minute, including the profile's one retry.
    assert failed.seconds < 60, f"failure took {failed.seconds:.0f} s to be reported"
    bad_ids = [slurm_id for rule, _, slurm_id in failed.submissions() if rule == "bad"]
    assert len(bad_ids) == 2, "the profile retries a failed job once"
    assert failed.failed_jobs() == [("bad", i) for i in bad_ids]
    assert all(slurm_cluster.job(i)["JobState"] == "FAILED" for i in bad_ids)
    assert "corrupt input" in failed.log, "the failed job's log is shown"
    # The independent job finished and kept its output; the failed one left none.
    good_id = [slurm_id for rule, _, slurm_id in failed.submissions() if rule == "good"]
    assert (tmp_path / "good.txt").read_text().split() == [str(good_id[0])]
    assert not (tmp_path / "bad.txt").exists()

    # Repair the input: the rerun submits only the missing job.
    (tmp_path / "bad_input.txt").write_text("fine\n")
    rerun = run_snakemake(_slurm_args(), tmp_path, env, timeout=180)
    assert rerun.returncode == 0, rerun.log[-4000:]
    assert [rule for rule, _, _ in rerun.submissions()] == ["bad"]
    assert (tmp_path / "good.txt").read_text().split() == [str(good_id[0])]
    assert (tmp_path / "bad.txt").read_text() == "fine\n"
