"""The step server: one process per Snakemake run that has imported torch and the steps, and forks a child for each
step a job asks for, so that a job no longer spends ~2 s of CPU importing torch (96 jobs in the default run).

Snakemake starts it before the first job and stops it after the last (the Snakefile's onstart/onsuccess/onerror)
and puts its socket in the jobs' environment (``LBH_STEP_SERVER``; ``off`` there before Snakemake starts: no
server). ``python -m lbhessian <step>`` then sends its arguments, working directory, environment and standard
streams to the server (``run_served``), which forks; the child runs the step exactly as the job's own process would
(``cli.main``), and the job waits for it, forwards the signals it gets (SIGTERM still makes training save its resume
point) and exits with the child's status. A job runs the step itself when there is no server, when it is a SLURM
job (its CPUs and memory are the allocation's), or when the server's torch was imported under other kernel
settings or from other code (``fingerprint``): the numbers are the same either way (tests/test_stepserver.py).

The server never computes anything itself, so the children fork from a process with no thread pool of torch's.
``LBH_STEP_SERVER_LOG``: a file to which the server appends, per child, its command, status and CPU seconds (a job's
own resource figures in Snakemake's benchmark files cover only the waiting process; benchmarks/bench_default.py
reads this file). This module imports no torch: the job's side must stay cheap.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ENV = "LBH_STEP_SERVER"
LOG_ENV = "LBH_STEP_SERVER_LOG"
SERVED = ("data", "train", "spectrum", "inputs", "attack")  # the steps that import torch; they are imported up front
FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)
# What torch, its BLAS and OpenMP read when they load: a server imported under other values would compute otherwise.
KERNEL_ENV_PREFIXES = ("ATEN_", "MKL_", "ONEDNN_", "DNNL_", "OMP_", "KMP_", "GOMP_", "OPENBLAS_", "CUDA_", "PYTORCH_")
KERNEL_ENV_PREFIXES += ("TORCH_", "LD_", "PYTHONHASHSEED")
# Thread counts are not part of it: Snakemake sets them per job, and every step sets its own (core.runtime).
THREAD_ENV = ("OMP_NUM_THREADS", "GOTO_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
THREAD_ENV += ("VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")
PACKAGE = Path(__file__).resolve().parent
READY_SECONDS = 60


def fingerprint(env) -> str:
    """What must be equal between the server and a job for the child to compute what the job would: the
    interpreter, the kernel settings of ``env`` and this package's code (every file's size and modification time)."""
    h = hashlib.sha256()
    h.update(f"{sys.prefix}\n{sys.base_prefix}\n{sys.version}\n{PACKAGE}\n".encode())
    for key in sorted(k for k in env if k.startswith(KERNEL_ENV_PREFIXES) and k not in THREAD_ENV):
        h.update(f"{key}={env[key]}\n".encode())
    for path in sorted(PACKAGE.rglob("*")):
        if path.suffix in (".py", ".json"):
            st = path.stat()
            h.update(f"{path.relative_to(PACKAGE)} {st.st_size} {st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def _send(conn: socket.socket, message: dict) -> None:
    with contextlib.suppress(OSError):  # the other side has gone: nothing to tell
        conn.sendall(json.dumps(message).encode() + b"\n")


def _read_line(conn: socket.socket, buffer: bytes = b"") -> tuple[dict | None, bytes]:
    """One JSON message (a line) and what was read beyond it; None at the end of the stream."""
    while b"\n" not in buffer:
        chunk = conn.recv(1 << 16)
        if not chunk:
            return None, buffer
        buffer += chunk
    line, _, rest = buffer.partition(b"\n")
    return json.loads(line), rest


# ---------------------------------------------------------------------------------------------------------- job side
def run_served(argv: list[str]) -> int | None:
    """Run ``lbhessian <argv>`` in the step server; its exit status, or None where this process must run the step
    itself (no server, a SLURM job, a server of other kernels or code)."""
    path = os.environ.get(ENV)
    if not path or path == "off" or "SLURM_JOB_ID" in os.environ:
        return None
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.connect(path)
        request = {"key": fingerprint(os.environ), "argv": argv, "cwd": os.getcwd(), "env": dict(os.environ)}
        socket.send_fds(conn, [json.dumps(request).encode() + b"\n"], [0, 1, 2])
        reply, rest = _read_line(conn)
    except OSError:  # no server listening (not yet started, or gone): run here
        conn.close()
        return None
    if reply is None or "pid" not in reply:
        conn.close()
        return None
    return _wait(conn, reply["pid"], rest)


def _wait(conn: socket.socket, pid: int, rest: bytes) -> int:
    """Forward this job's signals to the step's process until the server reports how it ended."""

    def forward(signum, _frame):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)

    for sig in FORWARDED:
        signal.signal(sig, forward)
    end, _ = _read_line(conn, rest)
    if end is None:
        print("lbhessian: error: the step server stopped before the step ended (a rerun resumes)", file=sys.stderr)
        return 1
    if "signal" in end:  # end as the step's process did, so that the caller sees the same status
        signal.signal(end["signal"], signal.SIG_DFL)
        os.kill(os.getpid(), end["signal"])
    return end["exit"]


# ------------------------------------------------------------------------------------------------------ server side
def _child(request: dict, fds: list[int], server_sockets: list[socket.socket]) -> None:
    """In the forked child: become the job's process (streams, directory, environment, default signal handlers) and
    run the step as ``python -m lbhessian`` would; never returns. ``server_sockets``: the server's own (its
    listener, every job's connection), closed here."""
    code = 1
    try:
        for sock in server_sockets:
            sock.close()
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
            os.close(fd)
        # As the job's interpreter would buffer its streams (Snakemake sets PYTHONUNBUFFERED): progress shows live.
        line = os.isatty(1) or bool(request["env"].get("PYTHONUNBUFFERED"))
        sys.stdout.reconfigure(line_buffering=line)
        for sig in FORWARDED:
            signal.signal(sig, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        sys.argv = [sys.argv[0], *request["argv"]]
        from lbhessian.cli import main

        main(request["argv"])
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        if e.code is not None and not isinstance(e.code, int):
            print(e.code, file=sys.stderr)
    except BaseException:  # what the interpreter would print and exit with
        import traceback

        traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(code)


@dataclass
class _Job:
    conn: socket.socket
    argv: list[str]
    start: float = field(default_factory=time.perf_counter)
    hung_up: bool = False  # the job's process has gone; the step was told to stop


class _Server:
    """The accept loop: one connection per job; each job's child is reaped and its status sent back."""

    def __init__(self, path: str, parent: int):
        self.path, self.parent, self.key = path, parent, fingerprint(os.environ)
        self.jobs: dict[int, _Job] = {}  # by the child's pid
        self.stopping = False
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(f"{path}.new")
        self.listener.listen(64)
        os.rename(f"{path}.new", path)  # the path appears when it accepts (start waits for it)

    def accept(self) -> None:
        conn, _ = self.listener.accept()
        conn.settimeout(10)  # a job sends its request at once; never let one block the others
        try:
            data, fds, _, _ = socket.recv_fds(conn, 1 << 20, 3)
            request, _ = _read_line(conn, data)
        except (OSError, ValueError):
            conn.close()
            return
        conn.settimeout(None)
        if request is None or request.get("key") != self.key or len(fds) != 3:
            _send(conn, {"refused": "another interpreter, kernel setting or code"})
            for fd in fds:
                os.close(fd)
            conn.close()
            return
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        pid = os.fork()
        if pid == 0:
            _child(request, fds, [self.listener, conn, *(job.conn for job in self.jobs.values())])
        for fd in fds:
            os.close(fd)
        self.jobs[pid] = _Job(conn, request["argv"])
        _send(conn, {"pid": pid})

    def reap(self) -> None:
        while self.jobs:
            try:
                pid, status, usage = os.wait4(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0 or pid not in self.jobs:
                return
            job = self.jobs.pop(pid)
            code = os.waitstatus_to_exitcode(status)  # -N: ended by signal N
            _send(job.conn, {"signal": -code} if code < 0 else {"exit": code})
            job.conn.close()
            log = os.environ.get(LOG_ENV)
            if log:
                row = {"argv": job.argv, "status": code, "wall": time.perf_counter() - job.start}
                row.update(user=usage.ru_utime, system=usage.ru_stime)
                with open(log, "a") as f:
                    f.write(json.dumps(row) + "\n")

    def hang_up(self, pid: int) -> None:
        """A job's connection closed before its step ended (the job was killed): stop the step as the job's own
        process would have been stopped (SIGTERM: training saves its resume point), once."""
        self.jobs[pid].hung_up = True
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)

    def loop(self) -> None:
        while not self.stopping and os.getppid() == self.parent:
            waiting = {job.conn: pid for pid, job in self.jobs.items() if not job.hung_up}
            ready, _, _ = select.select([self.listener, *waiting], [], [], 0.05)
            for r in ready:
                if r is self.listener:
                    self.accept()
                elif not r.recv(1, socket.MSG_PEEK):  # a job sends nothing after its request: this is its end
                    self.hang_up(waiting[r])
            self.reap()
        self.close()

    def close(self) -> None:
        self.listener.close()
        with contextlib.suppress(OSError):
            os.unlink(self.path)
            os.rmdir(os.path.dirname(self.path))  # start's folder, if nothing else is in it
        for pid in list(self.jobs):
            self.hang_up(pid)
        deadline = time.monotonic() + 30
        while self.jobs and time.monotonic() < deadline:
            self.reap()
            time.sleep(0.05)


def serve(path: str, parent: int) -> None:
    """Import the steps, listen on ``path`` and serve until SIGTERM or until process ``parent`` (Snakemake) ends."""
    import importlib

    for step in SERVED:
        importlib.import_module(f"lbhessian.steps.{step}")
    server = _Server(path, parent)

    def stop(_signum, _frame):
        server.stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    server.loop()


# ---------------------------------------------------------------------------------------------- Snakemake's side
_started: list[tuple[subprocess.Popen, str]] = []


def start(*, kernels: str, threads: int) -> None:
    """Start the server for this process's jobs (the Snakefile's onstart) with the kernels and thread counts its
    jobs will have, and wait until it accepts: its socket then goes into the environment that jobs inherit."""
    from lbhessian.core.kernels import pin

    if os.environ.get(ENV) == "off":  # the user's choice: every job imports torch itself
        return
    if not sys.platform.startswith("linux"):  # fork after importing torch is only known safe there
        return
    folder = tempfile.mkdtemp(prefix="lbh-steps-")
    path = os.path.join(folder, "server.sock")
    env = {**os.environ, **dict.fromkeys(THREAD_ENV, str(threads))}  # what Snakemake gives each job
    pin(kernels, env)  # the jobs pin the same before they ask (cli.main)
    cmd = [sys.executable, "-m", "lbhessian.stepserver", path, str(os.getpid())]
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


if __name__ == "__main__":
    serve(sys.argv[1], int(sys.argv[2]))
