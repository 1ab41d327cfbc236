"""The job's side: ``python -m lbhessian <step>`` hands its step to the server and waits for it (cli.main)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sys

from lbhessian.stepserver.protocol import ENV, FORWARDED, OFF, fingerprint, read_line


def run_served(argv: list[str]) -> int | None:
    """Run ``lbhessian <argv>`` in the step server; its exit status, or None where this process must run the step
    itself (no server, a SLURM job, a server of other kernels or code)."""
    path = os.environ.get(ENV)
    if not path or path == OFF or "SLURM_JOB_ID" in os.environ:
        return None
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.connect(path)
        request = {"key": fingerprint(os.environ), "argv": argv, "cwd": os.getcwd(), "env": dict(os.environ)}
        socket.send_fds(conn, [json.dumps(request).encode() + b"\n"], [0, 1, 2])
        reply, rest = read_line(conn)
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
    end, _ = read_line(conn, rest)
    if end is None:
        print("lbhessian: error: the step server stopped before the step ended (a rerun resumes)", file=sys.stderr)
        return 1
    if "signal" in end:  # end as the step's process did, so that the caller sees the same status
        signal.signal(end["signal"], signal.SIG_DFL)
        os.kill(os.getpid(), end["signal"])
    return end["exit"]
