"""README's promise: outputs are written atomically. A writer that fails mid-way, or a process killed with SIGKILL
in the middle of a write, leaves the previous file (or none), never part of the new one."""

import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest
import torch

from lbhessian.core.io import load_torch, save_torch, write_json, write_with

OLD = b'{"old": true}\n'


class Boom(Exception):
    pass


@pytest.mark.parametrize("existing", [True, False])
def test_writer_raising_midway_leaves_old_file_or_none(tmp_path, existing):
    """Catches a write_with that opens the target itself (half a file stays), one that renames before the
    writer finished, and one that leaves its temporary file behind after the error."""
    path = tmp_path / "metrics.json"
    if existing:
        path.write_bytes(OLD)

    def writer(f):
        f.write(b'{"new": [1, 2, 3')  # half a JSON document, then the crash
        raise Boom

    with pytest.raises(Boom):
        write_with(path, writer)
    assert (path.read_bytes() == OLD) if existing else not path.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == (["metrics.json"] if existing else [])


def test_torch_save_failing_midway_keeps_the_old_checkpoint(tmp_path):
    """torch.save fails while pickling (a lambda after a large tensor has been written): the old checkpoint is
    intact and still loads. Catches save_torch writing straight to the target."""
    path = tmp_path / "checkpoint.pt"
    save_torch(path, {"w": torch.arange(5.0)})
    with pytest.raises(Exception):  # noqa: B017 - pickling error type depends on the torch version
        save_torch(path, {"big": torch.zeros(200_000), "bad": lambda: None})
    assert torch.equal(load_torch(path)["w"], torch.arange(5.0))
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]


KILLED_WRITER = textwrap.dedent(
    """
    import sys, time
    from lbhessian.core.io import write_with

    def writer(f):
        f.write(b'{"new": [' + b'1, ' * 100000)
        f.flush()
        print("writing", flush=True)
        time.sleep(60)  # killed here, mid-write
        f.write(b'0]}')

    write_with(sys.argv[1], writer)
    """
)


@pytest.mark.parametrize("existing", [True, False])
def test_sigkill_mid_write_leaves_old_file_or_none(tmp_path, existing):
    """A process killed with SIGKILL (no cleanup runs) halfway through a write: the target holds the old bytes or
    does not exist; only a hidden temporary file may remain. Catches a non-atomic write (open target, write)."""
    path = tmp_path / "attack.json"
    if existing:
        path.write_bytes(OLD)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED_WRITER, str(path)], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        assert proc.stdout.readline().strip() == "writing"
        leftovers = [p for p in tmp_path.iterdir() if p.name != "attack.json"]
        assert len(leftovers) == 1 and leftovers[0].stat().st_size > 100_000  # really mid-write
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    if existing:
        assert path.read_bytes() == OLD and json.loads(path.read_text()) == {"old": True}
    else:
        assert not path.exists()
    assert all(p.name.startswith(".") for p in tmp_path.iterdir() if p.name != "attack.json")


def test_write_json_replaces_whole_file(tmp_path):
    path = tmp_path / "x.json"
    path.write_bytes(b"x" * 10_000)  # a longer old file: no tail of it may survive
    write_json(path, {"a": float("nan"), "b": [1, 2]})
    assert json.loads(path.read_text()) == {"a": None, "b": [1, 2]}
