"""A throwaway single-node SLURM cluster for the integration tests, and helpers to run Snakemake on it.

The cluster is started by `.ci/slurm/up.sh STATE_DIR` (installs Debian's slurm and munge with apt-get
when missing, starts munged, slurmctld and slurmd with a fake GPU gres) and stopped by
`.ci/slurm/down.sh STATE_DIR` (by pid files). Only one such cluster runs on a host at a time: a file
lock serialises test sessions that want one.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
UP = REPO / ".ci" / "slurm" / "up.sh"
DOWN = REPO / ".ci" / "slurm" / "down.sh"
PROFILE_SLURM = REPO / "profiles" / "slurm"
PROFILE_LOCAL = REPO / "profiles" / "local"
LOCK_PATH = Path(tempfile.gettempdir()) / "lbhessian-slurm.lock"
EXIT_CANNOT_INSTALL = 3  # up.sh: SLURM cannot be installed here

# "Job 3 has been submitted with SLURM jobid 17 (log: /x/.snakemake/slurm_logs/rule_train/.../17.log)."
SUBMITTED = re.compile(r"Job (\d+) has been submitted with SLURM jobid (\d+) \(log: (\S+)\)")
RULE_HEADER = re.compile(r"^(local)?rule (\w+):$", re.MULTILINE)
# Snakemake's report of a failed SLURM job: "Error in rule bad:\n    message: SLURM-job '12' failed, ..."
FAILED_JOB = re.compile(r"^Error in rule (\w+):\n\s+message: SLURM-job '(\d+)' failed", re.MULTILINE)


class ClusterUnavailable(RuntimeError):
    """SLURM cannot be installed on this host (the tests that need it skip)."""


def venv_bin() -> Path:
    """The bin directory of the Python running the tests (the project's venv)."""
    return Path(sys.executable).parent


@dataclass
class SlurmCluster:
    state: Path
    startup_seconds: float = 0.0
    _lock: object = field(default=None, repr=False)

    @property
    def conf(self) -> Path:
        return self.state / "slurm.conf"

    def env(self, **extra: str) -> dict[str, str]:
        """Environment for clients of this cluster: SLURM_CONF, and the venv first on PATH (sbatch
        exports the environment, so jobs find `lbhessian` and the venv's Python too)."""
        env = dict(os.environ)
        env["SLURM_CONF"] = str(self.conf)
        env["PATH"] = f"{venv_bin()}{os.pathsep}{env.get('PATH', '')}"
        env.update(extra)
        return env

    def run(self, *cmd: str, timeout: float = 30) -> str:
        """Run a SLURM client command (squeue, scontrol, ...) against this cluster."""
        out = subprocess.run(cmd, env=self.env(), capture_output=True, text=True, timeout=timeout, check=True)
        return out.stdout

    def job(self, jobid: int | str) -> dict[str, str]:
        """`scontrol show job` as a dict (finished jobs stay known for MinJobAge = 10 min)."""
        text = self.run("scontrol", "show", "job", "--oneliner", str(jobid))
        return dict(re.findall(r"(\w+)=(\S*)", text))

    def log_tail(self, lines: int = 40) -> str:
        parts = []
        for name in ("slurmctld.log", "slurmd.log"):
            path = self.state / name
            if path.exists():
                parts.append(f"--- {path}\n" + "\n".join(path.read_text(errors="replace").splitlines()[-lines:]))
        return "\n".join(parts)


def _acquire_lock(timeout: float):
    LOCK_PATH.touch(exist_ok=True)
    handle = LOCK_PATH.open("r+")
    deadline = time.monotonic() + timeout
    while True:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return handle
        except BlockingIOError:
            if time.monotonic() > deadline:
                handle.close()
                raise RuntimeError(
                    f"another test session has held {LOCK_PATH} (a SLURM cluster) for {timeout:.0f} s"
                ) from None
            time.sleep(1)


def start_cluster(timeout: float = 600, lock_timeout: float = 1200) -> SlurmCluster:
    """Start a cluster in a fresh state dir under /tmp (user munge must reach it).

    Raises ClusterUnavailable when up.sh says SLURM cannot be installed, RuntimeError on any other
    failure (with up.sh's output and the daemon logs)."""
    if shutil.which("bash") is None:
        raise ClusterUnavailable("bash is not available")
    lock = _acquire_lock(lock_timeout)
    state = Path(tempfile.mkdtemp(prefix="lbh-slurm-", dir="/tmp"))
    started = time.monotonic()
    try:
        proc = subprocess.run(["bash", str(UP), str(state)], capture_output=True, text=True, timeout=timeout)
    except BaseException:
        _down(state, purge=True)
        lock.close()
        raise
    if proc.returncode != 0:
        _down(state, purge=True)
        lock.close()
        message = f"{UP.relative_to(REPO)} exited {proc.returncode}:\n{proc.stdout}{proc.stderr}"
        if proc.returncode == EXIT_CANNOT_INSTALL:
            raise ClusterUnavailable(message)
        raise RuntimeError(message)
    return SlurmCluster(state=state, startup_seconds=time.monotonic() - started, _lock=lock)


def _down(state: Path, purge: bool) -> subprocess.CompletedProcess:
    args = ["bash", str(DOWN), str(state)] + (["--purge"] if purge else [])
    return subprocess.run(args, capture_output=True, text=True, timeout=120)


def stop_cluster(cluster: SlurmCluster, keep_state: bool = False) -> None:
    """Cancel the cluster's jobs and stop its daemons by pid; remove its state dir unless keep_state."""
    try:
        proc = _down(cluster.state, purge=not keep_state)
        if proc.returncode != 0:
            raise RuntimeError(f"down.sh exited {proc.returncode}:\n{proc.stdout}{proc.stderr}")
    finally:
        if cluster._lock is not None:
            cluster._lock.close()


@dataclass
class SnakemakeRun:
    returncode: int
    lines: list[tuple[float, str]]  # (seconds since start, line) of Snakemake's stdout and stderr
    seconds: float
    timed_out: bool = False

    @property
    def log(self) -> str:
        return "".join(line for _, line in self.lines)

    def seconds_until(self, pattern: str) -> list[float]:
        """When (seconds since start) each line matching the regex `pattern` was printed."""
        regex = re.compile(pattern)
        return [t for t, line in self.lines if regex.search(line)]

    def submissions(self) -> list[tuple[str, int, int]]:
        """(rule, snakemake job id, SLURM job id) for every sbatch submission in the log."""
        found = []
        for job, slurm_id, logfile in SUBMITTED.findall(self.log):
            rule = re.search(r"/rule_([^/]+)/", logfile)
            found.append((rule.group(1) if rule else "?", int(job), int(slurm_id)))
        return found

    def remote_rules(self) -> list[str]:
        """Rules of the jobs Snakemake started that are not local rules (one entry per job start)."""
        return [rule for local, rule in RULE_HEADER.findall(self.log) if not local]

    def failed_jobs(self) -> list[tuple[str, int]]:
        """(rule, SLURM job id) of every job Snakemake reported as failed."""
        return [(rule, int(slurm_id)) for rule, slurm_id in FAILED_JOB.findall(self.log)]


def run_snakemake(args: list[str], cwd: Path, env: dict[str, str], timeout: float) -> SnakemakeRun:
    """Run `snakemake ARGS` from the venv with a hard timeout (its process group is killed then),
    noting when each line of its output appeared."""
    cmd = [str(venv_bin() / "snakemake"), *args]
    started = time.monotonic()
    proc = subprocess.Popen(
        cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    lines: list[tuple[float, str]] = []

    def read():
        for line in proc.stdout:
            lines.append((time.monotonic() - started, line))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        proc.wait(timeout=timeout)
        timed_out = False
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        timed_out = True
    reader.join(timeout=10)
    return SnakemakeRun(proc.returncode, lines, time.monotonic() - started, timed_out)
