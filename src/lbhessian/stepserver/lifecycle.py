"""Snakemake's side: start the server before the first job (the Snakefile's onstart) and stop it after the last
(onsuccess, onerror)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time

from lbhessian.core.kernels import pin
from lbhessian.stepserver.protocol import ENV, OFF, THREAD_ENV

READY_SECONDS = 60  # the longest start waits for the server to accept

_started: list[tuple[subprocess.Popen, str]] = []


def start(*, kernels: str, threads: int) -> None:
    """Start the server for this process's jobs (the Snakefile's onstart) with the kernels and thread counts its
    jobs will have, and wait until it accepts: its socket then goes into the environment that jobs inherit."""
    if os.environ.get(ENV) == OFF:  # the user's choice: every job imports torch itself
        return
    if not sys.platform.startswith("linux"):  # fork after importing torch is only known safe there
        return
    folder = tempfile.mkdtemp(prefix="lbh-steps-")
    path = os.path.join(folder, "server.sock")
    env = {**os.environ, **dict.fromkeys(THREAD_ENV, str(threads))}  # what Snakemake gives each job
    pin(kernels, env)  # the jobs pin the same before they ask (cli.main)
    cmd = [sys.executable, "-m", "lbhessian.stepserver.server", path, str(os.getpid())]
    proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    _started.append((proc, folder))
    deadline = time.monotonic() + READY_SECONDS  # its imports take what one job's would (~2 s)
    while not os.path.exists(path) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    if os.path.exists(path):
        os.environ[ENV] = path
    else:  # every job then imports torch itself, as without a server
        print(f"lbhessian: the step server did not start (exit status {proc.poll()}); jobs run alone", file=sys.stderr)


def stop() -> None:
    """Stop the server (the Snakefile's onsuccess and onerror) and remove its socket."""
    if _started:
        os.environ.pop(ENV, None)
    while _started:
        proc, folder = _started.pop()
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(folder, ignore_errors=True)
