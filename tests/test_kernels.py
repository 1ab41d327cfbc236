"""runtime.kernels: with ``portable`` kernels a training run gives bit-identical weights whatever ISA the CPU
(simulated by capping oneDNN, MKL and ATen at different instruction sets) offers; with ``native`` it does not."""

import copy
import hashlib
import os
import subprocess
import sys

import pytest
import torch
import yaml

from helpers.workflow import ROOT, SMOKE, run_flags
from lbhessian.core.data import prepare

# What differs between x86-64 machines, imitated on this one: the best ISA each library may use.
MACHINES = {
    "as is": {},
    "older CPU": {"ONEDNN_MAX_CPU_ISA": "SSE41", "MKL_ENABLE_INSTRUCTIONS": "SSE4_2", "ATEN_CPU_CAPABILITY": "default"},
}


def _train(tmp_path, kernels, machine):
    cfg = copy.deepcopy(yaml.safe_load(SMOKE.read_text()))
    cfg["runtime"]["kernels"] = kernels
    cfg["train"]["experiments"][0].update(train_size=64, test_size=32)
    cfg["train"]["stop"] = {"rule": "epochs", "epochs": 1, "target_loss": 0.1}
    cfg["train"]["track"]["every"] = 0
    path = tmp_path / f"{kernels}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    out = tmp_path / f"{kernels}-{machine}"
    data = tmp_path / "mnist5k.pt"
    if not data.exists():
        prepare("mnist5k", data)
    env = {k: v for k, v in os.environ.items() if k not in MACHINES["older CPU"] and k != "MKL_CBWR"}
    env.update(MACHINES[machine], PYTHONPATH=str(ROOT / "src"))
    files = [f"--{k}={out / v}" for k, v in (("checkpoint", "c.pt"), ("history", "h.csv"), ("metrics", "m.json"))]
    cmd = [
        sys.executable,
        "-m",
        "lbhessian",
        "train",
        "--config",
        str(path),
        "--data",
        str(data),
        *run_flags(16),
        *files,
        f"--resume={out / 'r.pt'}",
        "--threads",
        "1",
    ]
    subprocess.run(cmd, check=True, env=env, capture_output=True, text=True)
    state = torch.load(out / "c.pt", weights_only=True)["state_dict"]
    return hashlib.sha256(b"".join(state[k].numpy().tobytes() for k in sorted(state))).hexdigest()


@pytest.mark.slow
def test_portable_kernels_give_the_same_weights_on_every_isa_and_native_do_not(tmp_path):
    portable = {m: _train(tmp_path, "portable", m) for m in MACHINES}
    native = {m: _train(tmp_path, "native", m) for m in MACHINES}
    assert portable["as is"] == portable["older CPU"]
    assert native["as is"] != native["older CPU"], "the machines this test imitates no longer differ here"
