"""Packed GPUs and grouped jobs (issue 15), shown by Snakemake dry runs (`-n`) of the real workflow."""

import re
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = Path(sys.executable).parent / "snakemake"


def dry_run(tmp_path, config: dict, profile: str, *extra: str) -> str:
    cfg = tmp_path / "config.yaml"
    cfg.write_text(yaml.safe_dump(config))
    out = subprocess.run(
        [
            str(SNAKEMAKE),
            "-s",
            str(ROOT / "Snakefile"),
            "-d",
            str(tmp_path),
            "--configfile",
            str(cfg),
            "--profile",
            str(ROOT / "profiles" / profile),
            "-n",
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    return out.stdout + out.stderr


def smoke(**runtime) -> dict:
    cfg = yaml.safe_load((ROOT / "config" / "smoke.yaml").read_text())
    cfg["runtime"].update(runtime)
    return cfg


def test_slurm_profile_groups_the_measurement_steps_of_each_run(tmp_path):
    """One group job per run holding exactly its spectrum, inputs and attack; only spectrum asks for a GPU.

    Catches a group name without the run's wildcards (components of different runs merged, as a plain
    `--groups ... --group-components measure=3` does) and grouped steps that each ask for a GPU."""
    # The grouping that profiles/slurm documents (commented out there: opt-in).
    group = "measure_{dataset}_{model}_{mode}_bs{batch}_seed{seed}"
    grouping = [
        "--groups",
        *(f"{rule}={group}" for rule in ("spectrum", "inputs", "attack")),
        "--group-components",
        f"{group}=3",
        "--set-resources",
        "inputs:gpu=0",
        "attack:gpu=0",
    ]
    text = dry_run(tmp_path, smoke(gpus=1), "slurm", *grouping)
    groups = text.split("Group job ")[1:]
    assert len(groups) == 4  # smoke.yaml: 4 runs
    for g in groups:
        seg = g.split("\n[", 1)[0]  # members are indented; the next unindented job ends the group
        rules = re.findall(r"^\s+rule (\w+):", seg, re.M)
        wildcards = re.findall(r"^\s+wildcards: (.*)$", seg, re.M)
        gpus = [int(g) for g in re.findall(r"^\s+resources: .*\bgpu=(\d+)", seg, re.M)]
        assert rules == ["attack", "inputs", "spectrum"], seg[:800]
        assert len(set(wildcards)) == 1  # one run
        assert dict(zip(rules, gpus, strict=True)) == {"attack": 0, "inputs": 0, "spectrum": 1}


def test_local_profile_packs_small_models_on_one_gpu(tmp_path):
    """gpu_slots: an M1 job takes 1 of the local profile's 4 slots, a ResNet job all 4, CPU configs none.

    Catches slots that ignore the model (no packing, or ResNets packed four to a GPU) and slots taken by
    CPU-only configs (which would serialise them for nothing)."""
    cfg = smoke(gpus=1)
    cfg["train"]["experiments"].append({"dataset": "mnist5k", "model": "ResNet20", "train_size": 64})
    text = dry_run(tmp_path, cfg, "local")
    slots = re.findall(
        r"rule train:\n(?:.*\n)*?\s+wildcards: dataset=\w+, model=(\w+).*\n\s+resources: .*gpu_slots=(\d+)", text
    )
    assert {m: int(s) for m, s in slots} == {"M1": 1, "ResNet20": 4}
    (tmp_path / "cpu").mkdir()
    cpu = dry_run(tmp_path / "cpu", smoke(gpus=0), "local")
    assert set(re.findall(r"gpu_slots=(\d+)", cpu)) == {"0"}
