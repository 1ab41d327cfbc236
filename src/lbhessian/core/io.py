"""Atomic file writes: a crash mid-write never leaves a half-written output behind."""

import contextlib
import json
import math
import os
import uuid
from pathlib import Path

import torch

from lbhessian.core.errors import LbhError


def write_with(path, write):
    """Write through a temporary file in the same directory, then rename: readers never see half a file."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # os.open with mode 0o666 lets the umask decide the permissions, as for any other output.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        with contextlib.suppress(OSError):  # nothing to clean up when the directory itself failed
            tmp.unlink()
        if isinstance(e, OSError):
            raise LbhError(f"{path}: cannot write ({e.strerror or e})") from None
        raise


def _jsonable(obj):
    # NaN/inf are not valid JSON; null keeps files readable by every tool (DVC, pandas, browsers).
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, torch.Tensor):
        return _jsonable(obj.tolist())
    if hasattr(obj, "item") and callable(obj.item):  # numpy scalars
        return _jsonable(obj.item())
    return obj


def write_json(path, obj):
    data = json.dumps(_jsonable(obj), indent=2, sort_keys=False).encode() + b"\n"
    write_with(path, lambda f: f.write(data))


def write_text(path, text):
    write_with(path, lambda f: f.write(text.encode()))


def read_json(path):
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise LbhError(f"{path}: file not found") from None
    except json.JSONDecodeError as e:
        raise LbhError(f"{path}: not valid JSON ({e.msg} at line {e.lineno})") from None


def save_torch(path, obj):
    write_with(path, lambda f: torch.save(obj, f))


def load_torch(path, what="file"):
    """torch.load with weights_only=True and one clear line for a missing, truncated or foreign file."""
    path = Path(path)
    if not path.exists():
        raise LbhError(f"{path}: {what} not found")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated zip, pickle of arbitrary objects, not a torch file at all
        raise LbhError(f"{path}: not a readable {what} (truncated or corrupt?): {type(e).__name__}") from None
