"""The server process: imports the torch steps once, then forks a child per job that runs the job's step as the job
would (``python -m lbhessian.stepserver.server SOCKET PARENT_PID``; lifecycle.start runs it)."""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import select
import signal
import socket
import sys
import time
from dataclasses import dataclass, field

from lbhessian.stepserver.protocol import FORWARDED, LOG_ENV, SERVED, fingerprint, read_line, send


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
    except SystemExit as e:  # as the interpreter ends on it: a number (or None) is the status, anything else printed
        if e.code is None or isinstance(e.code, int):
            code = e.code or 0
        else:
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
            request, _ = read_line(conn, data)
        except (OSError, ValueError):
            conn.close()
            return
        conn.settimeout(None)
        if request is None or request.get("key") != self.key or len(fds) != 3:
            send(conn, {"refused": "another interpreter, kernel setting or code"})
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
        send(conn, {"pid": pid})

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
            send(job.conn, {"signal": -code} if code < 0 else {"exit": code})
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
    for step in SERVED:
        importlib.import_module(f"lbhessian.steps.{step}")
    server = _Server(path, parent)

    def stop(_signum, _frame):
        server.stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    server.loop()


if __name__ == "__main__":
    serve(sys.argv[1], int(sys.argv[2]))
