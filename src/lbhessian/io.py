"""Atomic file writes: a crash mid-write never leaves a half-written output behind."""

import json
import math
import os
import tempfile
from pathlib import Path

import torch

from .errors import LbhError

_UMASK = os.umask(0)  # os.umask can only be read by setting it: restore at once
os.umask(_UMASK)


def _atomic(path, write):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600 files; outputs are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
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
    _atomic(path, lambda f: f.write(data))


def write_text(path, text):
    _atomic(path, lambda f: f.write(text.encode()))


def read_json(path):
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise LbhError(f"{path}: file not found") from None
    except json.JSONDecodeError as e:
        raise LbhError(f"{path}: not valid JSON ({e.msg} at line {e.lineno})") from None


def save_torch(path, obj):
    _atomic(path, lambda f: torch.save(obj, f))


def load_torch(path, what="file"):
    """torch.load with weights_only=True and one clear line for a missing, truncated or foreign file."""
    path = Path(path)
    if not path.exists():
        raise LbhError(f"{path}: {what} not found")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated zip, pickle of arbitrary objects, not a torch file at all
        raise LbhError(f"{path}: not a readable {what} (truncated or corrupt?): {type(e).__name__}") from None
