"""Atomic file writes and checked reads: a crash or a full disk never leaves a half-written output behind,
and every failure of the operating system is one line naming the path and what was attempted."""

import contextlib
import errno
import json
import math
import os
import uuid
from pathlib import Path

from lbhessian.core.errors import LbhError


def os_error(path, attempted, error):
    """The one-line LbhError for an OSError: the path, what was attempted, the system's reason."""
    return LbhError(f"{path}: cannot {attempted} ({error.strerror or error})")


def make_dir(directory):
    """mkdir -p with one clear line for a file in the way, a read-only file system or no permission."""
    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        # mkdir reports a file in the way as "File exists"; say what is wrong with which path.
        where = Path(e.filename) if e.filename else directory
        reason = "a file is in the way" if isinstance(e, FileExistsError) and not where.is_dir() else None
        raise LbhError(f"{where}: cannot create directory ({reason or e.strerror or e})") from None


class _Sink:
    """A binary file that remembers the OSError of a failed write, which torch.save would hide."""

    def __init__(self, f):
        self.f, self.error = f, None

    def write(self, data):
        try:
            return self.f.write(data)
        except OSError as e:
            self.error = e
            raise

    def __getattr__(self, name):  # everything else (seek, tell, flush, ...) is the file's own
        return getattr(self.f, name)


def write_with(path, write):
    """Write through a temporary file in the same directory, then rename: readers never see half a file."""
    path = Path(path)
    make_dir(path.parent)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")
    sink = None
    try:
        # os.open with mode 0o666 lets the umask decide the permissions, as for any other output.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with os.fdopen(fd, "wb") as f:
            sink = _Sink(f)
            write(sink)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        with contextlib.suppress(OSError):  # nothing to clean up when the file was never created
            tmp.unlink()
        # torch.save turns a failed write (e.g. no space left) into a RuntimeError: the sink kept the cause.
        cause = e if isinstance(e, OSError) else getattr(sink, "error", None)
        if cause is not None:
            raise os_error(path, "write", cause) from None
        raise


def write_together(*writes):
    """Run ``(path or list of paths, write_function(path))`` pairs in order, all or nothing: when one fails,
    the files written so far (those of the failing write too) are removed, so a failed step leaves no partial
    set of outputs."""
    written = []
    try:
        for paths, write in writes:
            written += [Path(p) for p in paths] if isinstance(paths, (list, tuple)) else [Path(paths)]
            write(paths)
    except BaseException:
        for path in written:
            with contextlib.suppress(OSError):
                path.unlink()
        raise


def _jsonable(obj):
    # NaN/inf are not valid JSON; null keeps files readable by every tool (DVC, pandas, browsers).
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if hasattr(obj, "tolist") and getattr(obj, "ndim", 0):  # tensors and arrays (never importing torch here)
        return _jsonable(obj.tolist())
    if hasattr(obj, "item") and callable(obj.item):  # numpy scalars
        return _jsonable(obj.item())
    return obj


def write_json(path, obj):
    data = json.dumps(_jsonable(obj), indent=2, sort_keys=False).encode() + b"\n"
    write_with(path, lambda f: f.write(data))


def write_text(path, text):
    write_with(path, lambda f: f.write(text.encode()))


def read_text(path, what="file"):
    """A text file's content; one clear line when it is missing or cannot be read."""
    path = Path(path)
    try:
        return path.read_text()
    except FileNotFoundError:
        raise LbhError(f"{path}: {what} not found") from None
    except OSError as e:
        raise os_error(path, f"read {what}", e) from None


def read_json(path):
    path = Path(path)
    text = read_text(path)
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise LbhError(f"{path}: not valid JSON ({e.msg} at line {e.lineno})") from None


def save_torch(path, obj):
    import torch  # here, not at the top: the report steps use this module and never load torch

    write_with(path, lambda f: torch.save(obj, f))


def load_torch(path, what="file"):
    """torch.load with weights_only=True and one clear line for a missing, unreadable, truncated or foreign
    file."""
    path = Path(path)
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        raise LbhError(f"{path}: {what} not found") from None
    except OSError as e:  # permission, a directory where a file is expected
        raise os_error(path, f"read {what}", e) from None
    with f:
        try:
            import torch

            return torch.load(f, map_location="cpu", weights_only=True)
        except OSError as e:
            if e.errno != errno.EINVAL:  # an I/O error while reading
                raise os_error(path, f"read {what}", e) from None
            # EINVAL: torch seeks past the end of a truncated zip, i.e. a corrupt file, not a failing disk
            raise LbhError(f"{path}: not a readable {what} (truncated or corrupt?): {e.strerror}") from None
        except Exception as e:  # truncated zip, pickle of arbitrary objects, not a torch file at all
            raise LbhError(f"{path}: not a readable {what} (truncated or corrupt?): {type(e).__name__}") from None
