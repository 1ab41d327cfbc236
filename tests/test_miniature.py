"""The miniature of config/paper.yaml (core/miniature.py, `lbhessian miniature`): the paper's grid kept, only
sizes shrunk, derived from paper.yaml each time; and the offline data path it runs on (data.local_dirs with
data.checksums) for MNIST, CIFAR-10 and CIFAR-100."""

import copy
import subprocess
import sys

import pytest
import yaml

from helpers.datasets import write_cifar, write_mnist
from helpers.workflow import ROOT
from lbhessian.core import config, miniature
from lbhessian.core.data import load_prepared, prepare
from lbhessian.core.errors import LbhError

PAPER = ROOT / "config" / "paper.yaml"


def paper():
    return yaml.safe_load(PAPER.read_text())


def grid(cfg):
    """What the miniature must keep: per experiment, its network, data, modes, eps grids and stop rule shape."""
    out = {}
    for exp in cfg["train"]["experiments"]:
        key = (exp["dataset"], exp["model"])
        run = config.run_config(
            cfg, *key, mode="clean", batch_size=cfg["train"]["batch_sizes"][0], seed=cfg["train"]["seeds"][0]
        )
        attack = config.attack_settings(cfg, *key)
        out[key] = {
            "augment": run["augment"],
            "optimizer": run["optimizer"],
            "lr_scaling": run["lr_scaling"],
            "stop": (run["stop"]["rule"], run["stop"].get("target_loss"), bool(run["stop"].get("min_steps"))),
            "accumulates": bool(run["micro_batch"]),
            "modes": [(r["name"], r["attack"], r["norm"], r["eps"]) for r in config.robust_modes(cfg, exp)],
            "eps": (attack["fgsm_linf"], attack["fgsm_l2"], attack["pgd"]["eps"], attack["headline_eps"]),
        }
    return out


def test_the_miniature_keeps_the_papers_grid_and_shrinks_only_sizes():
    source = config.validate(paper())
    mini = miniature.miniature(paper(), str(PAPER))
    assert grid(mini) == grid(source)
    assert len(mini["train"]["experiments"]) == 6
    assert {e["dataset"] for e in mini["train"]["experiments"]} == {"mnist", "cifar10", "cifar100"}
    # Both ends of the batch grid: the smallest (the micro-batch) and full, accumulated from micro-batches.
    assert mini["train"]["batch_sizes"] == [miniature.MICRO, "full"] and mini["train"]["micro_batch"] == miniature.MICRO
    runs = config.runs(mini)
    assert {(r["dataset"], r["model"], r["mode"], r["batch"]) for r in runs} >= {
        (e["dataset"], e["model"], mode, b)
        for e in source["train"]["experiments"]
        for mode in ("clean", "fgsm_small", "fgsm_large")
        for b in (str(miniature.MICRO), "full")
    }
    assert mini["train"]["seeds"] == source["train"]["seeds"][:1]
    assert (mini["train"]["train_size"], mini["train"]["test_size"]) == (miniature.TRAIN_SIZE, miniature.TEST_SIZE)
    for key in ("check_power", "bottom", "density", "splits", "method"):
        assert mini["spectrum"][key] == source["spectrum"][key], key
    assert mini["spectrum"]["top_k"] < source["spectrum"]["top_k"]
    assert mini["results"] == "results/miniature"
    assert all(e["stop"]["epochs"] == miniature.EPOCHS for e in mini["train"]["experiments"] if "stop" in e)


def test_a_change_to_paper_yaml_changes_the_miniature():
    """Derived, not copied: a new eps, a new robust mode, a new experiment and a smaller top_k in the source
    all appear in the miniature."""
    changed = paper()
    changed["train"]["experiments"][5]["attack"] = copy.deepcopy(changed["train"]["experiments"][5]["attack"])
    changed["train"]["experiments"][5]["attack"]["fgsm_l2"] = [0.125, 0.25]
    changed["train"]["experiments"][0]["robust"] = [
        {"name": "pgd_small", "attack": "pgd", "eps": [0.1], "fraction": 0.5, "steps": 7, "batch_sizes": ["full"]}
    ]
    changed["train"]["experiments"].append({"dataset": "fashion_mnist", "model": "M2"})
    changed["spectrum"]["top_k"] = 2
    mini = miniature.miniature(changed)
    exps = mini["train"]["experiments"]
    assert config.attack_settings(mini, "cifar100", "ResNet20")["fgsm_l2"] == [0.125, 0.25]
    assert exps[0]["robust"] == [
        {
            "name": "pgd_small",
            "attack": "pgd",
            "norm": "linf",
            "eps": [0.1],
            "fraction": 0.5,
            "steps": 2,
            "batch_sizes": ["full"],
            "random_start": True,
        }
    ]
    assert (exps[-1]["dataset"], exps[-1]["model"]) == ("fashion_mnist", "M2")
    assert mini["spectrum"]["top_k"] == 2
    assert grid(mini) == grid(config.validate(changed))


def test_miniature_cli_writes_a_config_that_validates(tmp_path):
    out = tmp_path / "mini.yaml"
    cmd = [
        sys.executable,
        "-m",
        "lbhessian",
        "miniature",
        "--config",
        str(PAPER),
        "--out",
        str(out),
        "--local-dir",
        f"cifar100={tmp_path}",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    cfg = config.load(out)
    assert cfg["data"]["local_dirs"] == {"cifar100": str(tmp_path)}
    assert cfg == miniature.miniature({**paper(), "data": {"root": "data", "local_dirs": {"cifar100": str(tmp_path)}}})
    bad = subprocess.run([*cmd[:-1], "cifar100"], capture_output=True, text=True, cwd=tmp_path)
    assert bad.returncode == 2 and bad.stderr.strip().splitlines() == [
        "lbhessian miniature: error: miniature --local-dir: expected DATASET=DIR, got 'cifar100'"
    ]


@pytest.mark.parametrize(("name", "classes"), [("mnist", 10), ("cifar10", 10), ("cifar100", 100)])
def test_local_copies_with_stated_checksums(tmp_path, name, classes):
    """Small local copies in torchvision's formats load through the user's path (data.local_dirs) with the
    checksums a user states; CIFAR-100 keeps its 100 classes. Without stated checksums torchvision's published
    ones apply, which these copies cannot match."""
    src = tmp_path / name
    sums = write_mnist(src, 120, 40) if name == "mnist" else write_cifar(src, classes, 120, 40)
    train, test, info = load_prepared(prepare(name, tmp_path / "p.pt", str(src), checksums=sums))
    assert (len(train), len(test), info["classes"]) == (120, 40, classes)
    assert int(train.y.max()) == classes - 1
    if name != "mnist":  # MNIST's published checksums are of the .gz files; these are uncompressed
        with pytest.raises(LbhError, match="torchvision's published checksum"):
            prepare(name, tmp_path / "q.pt", str(src))


def test_a_bad_checksum_fails_the_data_step_with_one_line_naming_the_file(tmp_path):
    sums = write_cifar(tmp_path / "c100", 100, 120, 40)
    wrong = {**sums, "cifar-100-python/test": "0" * 32}
    cfg = yaml.safe_load((ROOT / "config" / "smoke.yaml").read_text())
    cfg["data"] = {"root": "data", "local_dirs": {"cifar100": str(tmp_path / "c100")}, "checksums": {"cifar100": wrong}}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    cmd = [sys.executable, "-m", "lbhessian", "data", "--config", "c.yaml", "--dataset", "cifar100", "--out", "p.pt"]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path)
    lines = proc.stderr.strip().splitlines()
    path = tmp_path / "c100" / "cifar-100-python" / "test"
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert lines[0] == (
        f"lbhessian data: error: {path}: MD5 {sums['cifar-100-python/test']} differs from {'0' * 32}"
        " (data.checksums.cifar100): a corrupt or different copy"
    )
    del wrong["cifar-100-python/test"]
    with pytest.raises(LbhError, match=r"data.checksums.cifar100: no checksum for .*cifar-100-python/test"):
        prepare("cifar100", tmp_path / "p.pt", str(tmp_path / "c100"), checksums=wrong)
    assert not (tmp_path / "p.pt").exists()
