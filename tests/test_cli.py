"""The CLI as the rules call it: one clear line and exit code 2 for bad input, nothing computed is lost."""

import json
import subprocess
import sys

import torch

from helpers.workflow import SMOKE, run_flags
from lbhessian.core.data import prepare
from lbhessian.core.io import write_json


def lbh(*args, cwd):
    return subprocess.run([sys.executable, "-m", "lbhessian", *args], cwd=cwd, capture_output=True, text=True)


def test_corrupt_data_file_gives_one_line_naming_it(tmp_path):
    path = tmp_path / "data" / "prepared" / "mnist5k.pt"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"PK\x03\x04 not really a zip")
    run = [f"--{k}=run/{k}" for k in ("checkpoint", "history", "metrics", "resume")]
    p = lbh(
        "train",
        "--config",
        str(SMOKE),
        "--data",
        str(path),
        *run_flags(16),
        *run,
        cwd=tmp_path,
    )
    assert p.returncode == 2
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"lbhessian train: error: {path}: not a readable prepared dataset")
    assert not (tmp_path / "run").exists()


def test_measurement_of_a_diverged_run_is_skipped_not_crashed(tmp_path):
    run = tmp_path / "run"
    write_json(run / "metrics.json", {"status": "diverged"})
    files = ["--data", "absent.pt", "--checkpoint", "absent.pt", "--metrics", str(run / "metrics.json")]
    p = lbh("spectrum", "--config", str(SMOKE), *files, "--out", str(run / "spectrum.json"), cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert json.loads((run / "spectrum.json").read_text()) == {"status": "skipped", "reason": "training diverged"}


def test_checkpoint_of_another_model_is_refused(tmp_path):
    from lbhessian.core.checkpoint import save_checkpoint
    from lbhessian.core.models import build_model

    data = prepare("mnist5k", tmp_path / "mnist5k.pt")
    info = torch.load(data, weights_only=True)["info"]
    run = tmp_path / "run"
    save_checkpoint(run / "checkpoint.pt", build_model("M2", info), {"model": "M1", "dataset": "mnist5k"}, info)
    write_json(run / "metrics.json", {"status": "ok"})
    files = ["--data", str(data), "--checkpoint", "run/checkpoint.pt", "--metrics", "run/metrics.json"]
    p = lbh("attack", "--config", str(SMOKE), *files, "--out", "run/attack.json", cwd=tmp_path)
    assert p.returncode == 2
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lbhessian attack: error: run/checkpoint.pt: weights do not match")
    assert not (run / "attack.json").exists()


def test_validate_command(tmp_path):
    p = lbh("validate", "--config", str(SMOKE), cwd=tmp_path)
    assert p.returncode == 0 and "valid, 4 runs" in p.stdout
