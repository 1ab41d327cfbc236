"""The attack step's measurement (measure.robustness) and robust training, on scikit-learn's 8x8 digits."""

import copy
import time
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import yaml
from torch import nn

from helpers.configs import section, smoke_config
from helpers.nets import fit_sgd
from lbhessian.core.data import Split
from lbhessian.core.errors import LbhError
from lbhessian.core.results import eps_key
from lbhessian.measure import robustness

ROOT = Path(__file__).resolve().parents[1]
CFG = section(
    "attack",
    samples=300,
    splits=["train", "test"],
    fgsm_linf=[0.0, 0.05, 0.1, 0.3],
    fgsm_l2=[0, 1.0],
    pgd={"eps": [0.1], "steps": 10, "step_size": 0.025, "random_start": True},
    headline_eps=0.1,
    batch_size=128,
)


def digit_splits():
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.tensor(d.images * (255.0 / 16.0)).round().to(torch.uint8).unsqueeze(1)
    y = torch.tensor(d.target, dtype=torch.int64)
    return Split(x[:1400], y[:1400]), Split(x[1400:], y[1400:])


@pytest.fixture(scope="module")
def trained():
    train, test = digit_splits()
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 64, 10)
    )
    return fit_sgd(model, train.x_float()[:600], train.y[:600]), train, test


def manual_fgsm_accuracy(model, x, y, eps, batch):
    """Independent FGSM accuracy: the textbook formula, batch by batch as robustness() does."""
    correct = 0
    for i in range(0, len(y), batch):
        xb = x[i : i + batch].clone().requires_grad_(True)
        yb = y[i : i + batch]
        (g,) = torch.autograd.grad(F.cross_entropy(model(xb), yb), xb)
        with torch.no_grad():
            correct += (model((xb + eps * g.sign()).clamp(0, 1)).argmax(1) == yb).sum().item()
    return correct / len(y)


def test_evaluate_layout_and_numbers(trained):
    """Accuracies against the textbook FGSM; throughput against a clock read outside robustness().

    The throughput check catches an inverted rate (seconds per image), images counted once per attack or eps
    instead of once per split image (600 = 2 splits x 300), and seconds that include time outside the call."""
    model, train, test = trained
    started = time.perf_counter()
    out = robustness(model, train, test, CFG)
    elapsed = time.perf_counter() - started
    assert set(out) == {"train", "test", "seconds", "images_per_second"}
    assert 0 < out["seconds"] <= elapsed
    assert out["images_per_second"] >= 600 / elapsed  # an independent lower bound: the outer clock
    assert out["images_per_second"] * out["seconds"] == pytest.approx(600)
    for name, split in (("train", train), ("test", test)):
        res = out[name]
        assert res["samples"] == 300
        assert set(res["fgsm_linf"]) == {"0", "0.05", "0.1", "0.3"}
        assert set(res["fgsm_l2"]) == {"0", "1"} and set(res["pgd_linf"]) == {"0.1"}
        x, y = split.x_float()[:300], split.y[:300]  # the first n images
        with torch.no_grad():
            assert res["clean_acc"] == (model(x).argmax(1) == y).sum().item() / 300
        assert res["clean_acc"] > 0.85
        # eps = 0 is the clean set, for both norms.
        assert res["fgsm_linf"]["0"] == res["clean_acc"] == res["fgsm_l2"]["0"]
        assert res["fgsm_linf"]["0.1"] == manual_fgsm_accuracy(model, x, y, 0.1, CFG["batch_size"])
        assert res["fgsm_linf"]["0.3"] < res["fgsm_linf"]["0.05"] < res["clean_acc"]
        assert res["pgd_linf"]["0.1"] <= res["fgsm_linf"]["0.1"]
        assert res["fgsm_l2"]["1"] < res["clean_acc"]
    assert not model.training


def test_evaluate_is_reproducible_and_batch_independent(trained):
    model, train, test = trained
    cfg = dict(CFG, splits=["test"], samples=None)
    a = robustness(model, train, test, cfg)
    b = robustness(model, train, test, cfg)
    assert "train" not in a and a["test"]["samples"] == len(test)
    assert a["test"] == b["test"]  # PGD's random start is seeded
    # A different batching changes only the 1/B loss scale, not the signs: allow one image of rounding.
    c = robustness(model, train, test, dict(cfg, batch_size=64))
    assert c["test"]["clean_acc"] == a["test"]["clean_acc"]
    for key, acc in a["test"]["fgsm_linf"].items():
        assert abs(c["test"]["fgsm_linf"][key] - acc) <= 1 / len(test)


def test_evaluate_restores_train_mode(trained):
    model, train, test = trained
    model.train()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    robustness(model, train, test, dict(CFG, samples=50, pgd=section("attack")["pgd"]))
    assert model.training
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
    model.eval()


def test_eps_keys():
    assert [eps_key(e) for e in (0.05, 0.1, 1.0, 2, 8 / 255, 0)] == [
        "0.05",
        "0.1",
        "1",
        "2",
        "0.0313725",
        "0",
    ]


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"samples": 0}, "attack.samples"),
        ({"splits": ["val"]}, "attack.splits"),
        ({"fgsm_linf": [0.1, 0.10]}, "attack.fgsm_linf"),
        ({"fgsm_l2": [-1]}, "attack.fgsm_l2"),
        ({"headline_eps": 0.2}, "attack.headline_eps"),
        ({"pgd": {"eps": [0.1], "steps": 0}}, "attack.pgd.steps"),
        ({"batch_size": 0}, "attack.batch_size"),
    ],
)
def test_bad_config_raises_lbherror(change, words):
    """The config schema and its cross-checks (distinct eps, headline eps in the grid) reject bad attack settings
    before any step runs."""
    with pytest.raises(LbhError) as err:
        smoke_config(attack=dict(CFG, **change))
    assert words in str(err.value) and "\n" not in str(err.value)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_evaluate_on_cuda_matches_cpu(trained):
    model, train, test = trained
    cfg = dict(CFG, splits=["test"])
    cpu = robustness(copy.deepcopy(model), train, test, cfg)["test"]
    gpu = robustness(copy.deepcopy(model).to("cuda"), train, test, cfg)["test"]
    assert gpu["clean_acc"] == cpu["clean_acc"]
    for attack in ("fgsm_linf", "fgsm_l2", "pgd_linf"):
        for key, acc in cpu[attack].items():
            assert abs(gpu[attack][key] - acc) <= 0.02, (attack, key)


def test_robust_training_raises_fgsm_accuracy(tmp_path):
    """Same seed, same data, same epochs: FGSM-trained M2 beats the clean-trained one under FGSM."""
    from lbhessian.core import config, data
    from lbhessian.core.checkpoint import load_checkpoint
    from lbhessian.training import train_run

    train, test, info = data.load_prepared(data.prepare("digits", tmp_path / "digits.pt"))
    train = train.subset(600)
    cfg = yaml.safe_load((ROOT / "params.yaml").read_text())
    cfg["train"].update(
        experiments=[{"dataset": "digits", "model": "M2"}],
        batch_sizes=[32],
        seeds=[0],
        optimizer={"lr": 0.05, "momentum": 0.9, "weight_decay": 0.0},
        base_batch_size=32,
        stop={"rule": "epochs", "epochs": 6, "target_loss": 0.05},
        track={"every": 0},
        robust=[{"name": "fgsm", "attack": "fgsm", "norm": "linf", "eps": [0.1], "fraction": 0.5}],
    )
    cfg["runtime"] = {"device": "cpu", "threads": 1, "deterministic": True}
    config.validate(cfg)
    attack_cfg = section("attack", samples=None, splits=["test"], fgsm_linf=[0.1], fgsm_l2=[], headline_eps=None)
    acc = {}
    for mode in ("clean", "fgsm"):
        run = config.run_config(cfg, dataset="digits", model="M2", mode=mode, batch_size=32, seed=0)
        out = tmp_path / mode
        metrics = train_run(run, train, test, info, files=out, device=torch.device("cpu"))
        assert metrics["status"] == "ok"
        model = load_checkpoint(out / "checkpoint.pt")[0]
        acc[mode] = robustness(model, train, test, attack_cfg)["test"]
    assert acc["clean"]["clean_acc"] > 0.8 and acc["fgsm"]["clean_acc"] > 0.8
    assert acc["fgsm"]["fgsm_linf"]["0.1"] > acc["clean"]["fgsm_linf"]["0.1"] + 0.05, acc
