"""What the job and the server share: the environment's names, the fingerprint of a process's torch, and the
messages (one JSON object a line)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import signal
import socket
import sys
from pathlib import Path

ENV = "LBH_STEP_SERVER"
OFF = "off"  # ENV's value for no server (set before Snakemake starts)
LOG_ENV = "LBH_STEP_SERVER_LOG"
SERVED = ("data", "train", "spectrum", "inputs", "attack")  # the steps that import torch; they are imported up front
FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)
# What torch, its BLAS and OpenMP read when they load: a server imported under other values would compute otherwise.
KERNEL_ENV_PREFIXES = ("ATEN_", "MKL_", "ONEDNN_", "DNNL_", "OMP_", "KMP_", "GOMP_", "OPENBLAS_", "CUDA_", "PYTORCH_")
KERNEL_ENV_PREFIXES += ("TORCH_", "LD_", "PYTHONHASHSEED")
# Thread counts are not part of it: Snakemake sets them per job, and every step sets its own (core.runtime).
THREAD_ENV = ("OMP_NUM_THREADS", "GOTO_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
THREAD_ENV += ("VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")
PACKAGE = Path(__file__).resolve().parents[1]  # lbhessian/


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


def send(conn: socket.socket, message: dict) -> None:
    with contextlib.suppress(OSError):  # the other side has gone: nothing to tell
        conn.sendall(json.dumps(message).encode() + b"\n")


def read_line(conn: socket.socket, buffer: bytes = b"") -> tuple[dict | None, bytes]:
    """One JSON message (a line) and what was read beyond it; None at the end of the stream."""
    while b"\n" not in buffer:
        chunk = conn.recv(1 << 16)
        if not chunk:
            return None, buffer
        buffer += chunk
    line, _, rest = buffer.partition(b"\n")
    return json.loads(line), rest
