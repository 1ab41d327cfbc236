import copy
import math

import pytest
import torch

from lbhessian.core import config
from lbhessian.core.checkpoint import load_checkpoint, save_checkpoint
from lbhessian.core.data import Split
from lbhessian.core.errors import LbhError
from lbhessian.core.models import build_model
from lbhessian.steps.train import read_history, train_run
from lbhessian.training import scaled_lr, train_step


def small_run(**train):
    cfg = config.load("config/smoke.yaml")
    cfg = copy.deepcopy(cfg)
    cfg["train"]["track"]["every"] = 0
    for k, v in train.items():
        cfg["train"][k] = v
    config.validate(cfg)
    return cfg


def run_of(cfg, mode="clean", batch="32", seed=0, model="M1"):
    cfg["train"]["experiments"][0]["model"] = model
    run = config.run_config(cfg, "mnist5k", model, mode, batch, seed)
    run["train_size"], run["test_size"] = 256, 128
    return run


def weights(path):
    return load_checkpoint(path)[0].state_dict()


def test_loss_decreases_and_outputs_written(mnist5k, tmp_path):
    train, test, info = mnist5k
    run = run_of(small_run(stop={"rule": "epochs", "epochs": 3, "target_loss": 0.1}))
    m = train_run(run, train, test, info, tmp_path, torch.device("cpu"))
    hist = read_history(tmp_path / "history.csv")
    assert [h["epoch"] for h in hist] == [1, 2, 3]
    assert hist[-1]["train_loss"] < hist[0]["train_loss"] < math.log(10)
    assert m["status"] == "ok" and m["epochs"] == 3 and m["train_size"] == 256
    model, saved_run, _, meta = load_checkpoint(tmp_path / "checkpoint.pt", expect_model="M1")
    assert saved_run == run and meta["torch"] == torch.__version__ and not model.training
    assert not (tmp_path / "resume.pt").exists()


def test_target_loss_rule_stops_early(mnist5k, tmp_path):
    train, test, info = mnist5k
    run = run_of(small_run(stop={"rule": "target_loss", "epochs": 30, "target_loss": 0.5}))
    m = train_run(run, train, test, info, tmp_path, torch.device("cpu"))
    hist = read_history(tmp_path / "history.csv")
    assert m["reached_target"] and m["epochs"] < 30 and hist[-1]["train_loss"] <= 0.5 < hist[-2]["train_loss"]


def test_micro_batch_accumulation_equals_one_large_batch():
    # For a BatchNorm-free net the accumulated gradient is the full-batch gradient: identical updates.
    info = {"classes": 10, "shape": [1, 28, 28], "mean": [0.1], "std": [0.3]}
    torch.manual_seed(0)
    a = build_model("M2", info).double()
    b = copy.deepcopy(a)
    x, y = torch.rand(64, 1, 28, 28, dtype=torch.float64), torch.randint(0, 10, (64,))
    opt_a = torch.optim.SGD(a.parameters(), lr=0.1, momentum=0.9)
    opt_b = torch.optim.SGD(b.parameters(), lr=0.1, momentum=0.9)
    for _ in range(3):
        la = train_step(a, opt_a, x, y)
        lb = train_step(b, opt_b, x, y, micro_batch=16)
        assert torch.allclose(la, lb, rtol=1e-12)
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.allclose(pa, pb, rtol=1e-10, atol=1e-12)
    assert not torch.equal(a[1][1].weight, build_model("M2", info).double()[1][1].weight)


def test_same_seed_twice_gives_identical_weights(mnist5k, tmp_path):
    train, test, info = mnist5k
    run = run_of(small_run(stop={"rule": "epochs", "epochs": 2, "target_loss": 0.1}))
    train_run(run, train, test, info, tmp_path / "a", torch.device("cpu"))
    train_run(run, train, test, info, tmp_path / "b", torch.device("cpu"))
    wa, wb = weights(tmp_path / "a/checkpoint.pt"), weights(tmp_path / "b/checkpoint.pt")
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    other = dict(run, seed=1)
    train_run(other, train, test, info, tmp_path / "c", torch.device("cpu"))
    assert not torch.equal(weights(tmp_path / "c/checkpoint.pt")["net.0.weight"], wa["net.0.weight"])


class Interrupt(Exception):
    pass


def test_interrupted_run_resumes_to_the_same_weights(mnist5k, tmp_path):
    train, test, info = mnist5k
    cfg = small_run(stop={"rule": "epochs", "epochs": 4, "target_loss": 0.1}, augment=True)
    run = run_of(cfg, mode="fgsm", batch="64")  # robust mode and augmentation: all RNG streams resume
    train_run(run, train, test, info, tmp_path / "full", torch.device("cpu"))

    def stop_after_two(epoch, model):
        if epoch == 2:
            raise Interrupt

    with pytest.raises(Interrupt):
        train_run(run, train, test, info, tmp_path / "cut", torch.device("cpu"), callback=stop_after_two)
    assert (tmp_path / "cut/resume.pt").exists() and not (tmp_path / "cut/checkpoint.pt").exists()
    m = train_run(run, train, test, info, tmp_path / "cut", torch.device("cpu"))
    assert m["epochs"] == 4
    wa, wb = weights(tmp_path / "full/checkpoint.pt"), weights(tmp_path / "cut/checkpoint.pt")
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert (
        read_history(tmp_path / "full/history.csv")[3]["train_loss"]
        == read_history(tmp_path / "cut/history.csv")[3]["train_loss"]
    )


def test_divergence_is_recorded_not_raised(mnist5k, tmp_path):
    train, test, info = mnist5k
    run = run_of(small_run(optimizer={"lr": 1.0e6, "momentum": 0.9, "weight_decay": 0.0}))
    m = train_run(run, train, test, info, tmp_path, torch.device("cpu"))
    assert m["status"] == "diverged" and m["epochs"] == 1
    assert (tmp_path / "metrics.json").exists() and (tmp_path / "checkpoint.pt").exists()


def test_lr_scaling_rules():
    run = {"base_batch_size": 32, "optimizer": {"lr": 0.1}, "lr_scaling": "sqrt"}
    assert scaled_lr(run, 128) == pytest.approx(0.2)
    assert scaled_lr(dict(run, lr_scaling="linear"), 128) == pytest.approx(0.4)
    assert scaled_lr(dict(run, lr_scaling="none"), 128) == pytest.approx(0.1)


def test_full_batch_is_gradient_descent(mnist5k, tmp_path):
    train, test, info = mnist5k
    run = run_of(small_run(stop={"rule": "epochs", "epochs": 2, "target_loss": 0.1}), batch="full")
    m = train_run(run, train, test, info, tmp_path, torch.device("cpu"))
    assert m["batch_size"] == 256 and m["steps"] == 2


def test_checkpoint_errors_name_the_file(mnist5k, tmp_path):
    train, test, info = mnist5k
    model = build_model("M1", info)
    save_checkpoint(tmp_path / "ok.pt", model, {"model": "M1"}, info)
    with pytest.raises(LbhError, match=r"ok.pt: checkpoint is of model M1, expected C1"):
        load_checkpoint(tmp_path / "ok.pt", expect_model="C1")
    blob = (tmp_path / "ok.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(blob[: len(blob) // 2])
    with pytest.raises(LbhError, match=r"cut.pt: not a readable checkpoint"):
        load_checkpoint(tmp_path / "cut.pt")
    # Weights of another architecture under this model's name.
    save_checkpoint(tmp_path / "alien.pt", build_model("M2", info), {"model": "M1"}, info)
    with pytest.raises(LbhError, match=r"alien.pt: weights do not match model M1"):
        load_checkpoint(tmp_path / "alien.pt")
    with pytest.raises(LbhError, match=r"absent.pt: checkpoint not found"):
        load_checkpoint(tmp_path / "absent.pt")


def test_split_subset_and_float():
    s = Split(torch.full((5, 1, 2, 2), 255, dtype=torch.uint8), torch.arange(5))
    assert len(s.subset(3)) == 3 and s.subset(None) is s and s.x_float().max() == 1.0
