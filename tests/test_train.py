import copy
import math

import pytest
import torch
import torch.nn.functional as F

from lbhessian.core import config
from lbhessian.core.checkpoint import load_checkpoint, save_checkpoint
from lbhessian.core.data import Split
from lbhessian.core.errors import LbhError
from lbhessian.core.models import build_model
from lbhessian.training import lr_at, read_history, run_epoch, scaled_lr, train_run, train_step
from lbhessian.training.sgd import SGD

MNIST = {"classes": 10, "shape": [1, 28, 28], "mean": [0.13], "std": [0.31]}


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
    run = config.run_config(cfg, "mnist5k", model, mode=mode, batch_size=batch, seed=seed)
    run["train_size"], run["test_size"] = 256, 128
    return run


def weights(path):
    return load_checkpoint(path)[0].state_dict()


def test_loss_decreases_and_outputs_written(mnist5k, tmp_path):
    train, test, info = mnist5k
    run = run_of(small_run(stop={"rule": "epochs", "epochs": 3, "target_loss": 0.1}))
    m = train_run(run, train, test, info, files=tmp_path, device=torch.device("cpu"))
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
    m = train_run(run, train, test, info, files=tmp_path, device=torch.device("cpu"))
    hist = read_history(tmp_path / "history.csv")
    assert m["reached_target"] and m["epochs"] < 30 and hist[-1]["train_loss"] <= 0.5 < hist[-2]["train_loss"]


def test_micro_batch_accumulation_equals_one_large_batch():
    """For a BatchNorm-free net the accumulated gradient is the full-batch gradient: identical updates.

    Catches a micro-batch loss scaled by 1/micro instead of 1/n (updates n/micro times too large). The final
    guard compares against the same seed-0 initial weights: a step that never updated would pass otherwise."""
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
    torch.manual_seed(0)  # the initial weights again: the guard compares like with like
    start = build_model("M2", info).double()
    assert all(torch.equal(p, q) for p, q in zip(start.parameters(), copy.deepcopy(start).parameters(), strict=True))
    moved = [(pa - p0).abs().max().item() for pa, p0 in zip(a.parameters(), start.parameters(), strict=True)]
    assert min(moved) > 1e-4, moved  # every parameter tensor moved: three real updates happened


def _bn_net():
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 3, 3),
        torch.nn.BatchNorm2d(3),
        torch.nn.ReLU(),
        torch.nn.Flatten(),
        torch.nn.Linear(3 * 4 * 4, 4),
    ).double()
    return net.train()


def test_ghost_batch_norm_sees_micro_batches():
    """With BatchNorm, micro_batch=8 on a batch of 24 must equal a hand-written loop where BN normalises each
    8-image chunk with that chunk's statistics and the gradients of sum-losses / 24 are accumulated.

    Catches: micro-batching ignored (BN sees all 24 images: different gradient), a loss scaled by 1/8 instead
    of 1/24, and running statistics updated from the whole batch (BN must see three micro-batches)."""
    g = torch.Generator().manual_seed(3)
    x, y = torch.rand(24, 1, 6, 6, generator=g, dtype=torch.float64) * 3, torch.randint(0, 4, (24,), generator=g)
    a, ref = _bn_net(), _bn_net()
    opt = torch.optim.SGD(a.parameters(), lr=0.5)
    loss = train_step(a, opt, x, y, micro_batch=8)

    # Reference: explicit per-chunk batch norm in a functional forward, gradients summed by hand.
    conv, bn, lin = ref[0], ref[1], ref[4]
    params = [conv.weight, conv.bias, bn.weight, bn.bias, lin.weight, lin.bias]
    grads, total = [torch.zeros_like(p) for p in params], 0.0
    mean_run, var_run = bn.running_mean.clone(), bn.running_var.clone()
    for i in range(0, 24, 8):
        h = F.conv2d(x[i : i + 8], conv.weight, conv.bias)
        mu, var = h.mean((0, 2, 3)), h.var((0, 2, 3), unbiased=False)
        h = (h - mu[None, :, None, None]) / torch.sqrt(var[None, :, None, None] + bn.eps)
        h = F.relu(h * bn.weight[None, :, None, None] + bn.bias[None, :, None, None])
        chunk_loss = F.cross_entropy(F.linear(h.flatten(1), lin.weight, lin.bias), y[i : i + 8], reduction="sum") / 24
        for acc, gr in zip(grads, torch.autograd.grad(chunk_loss, params), strict=True):
            acc += gr
        total += chunk_loss.item()
        n = h[:, 0].numel()
        mean_run = 0.9 * mean_run + 0.1 * mu.detach()
        var_run = 0.9 * var_run + 0.1 * var.detach() * n / (n - 1)
    assert loss.item() == pytest.approx(total, rel=1e-12)
    with torch.no_grad():
        expected = [p - 0.5 * gr for p, gr in zip(params, grads, strict=True)]
    got = [a[0].weight, a[0].bias, a[1].weight, a[1].bias, a[4].weight, a[4].bias]
    for e, o in zip(expected, got, strict=True):
        torch.testing.assert_close(o, e, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(a[1].running_mean, mean_run, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(a[1].running_var, var_run, rtol=1e-10, atol=1e-12)
    assert int(a[1].num_batches_tracked) == 3

    # The whole-batch step (no micro_batch) really differs here: BatchNorm couples the images.
    b = _bn_net()
    train_step(b, torch.optim.SGD(b.parameters(), lr=0.5), x, y)
    assert (b[0].weight - a[0].weight).abs().max() > 1e-6


def test_lr_schedule_against_a_hand_computed_table():
    """lr_at: linear warm-up over 2 epochs to peak 0.4, then x0.1 at epochs 5 and 8 (values by hand).

    Catches warm-up off or not linear, a milestone applied one epoch late (> instead of >=), gamma applied
    once instead of per milestone, and warm-up counted after milestones (a run without warm-up differs)."""
    run = {"warmup_epochs": 2, "lr_milestones": [5, 8], "lr_gamma": 0.1}
    table = {0.5: 0.1, 1.0: 0.2, 1.5: 0.3, 2.0: 0.4, 4.999: 0.4, 5.0: 0.04, 7.5: 0.04, 8.0: 0.004, 20.0: 0.004}
    for progress, lr in table.items():
        assert lr_at(run, 0.4, progress) == pytest.approx(lr, rel=1e-9), progress
    assert 0 < lr_at(run, 0.4, 0.0) < 1e-9  # the first step of warm-up is (almost) zero
    plain = dict(run, warmup_epochs=0)
    assert [lr_at(plain, 0.4, p) for p in (0.0, 1.0, 4.9, 5.0, 9.0)] == pytest.approx([0.4, 0.4, 0.4, 0.04, 0.004])


def test_run_epoch_sets_the_scheduled_lr_at_every_step():
    """run_epoch sets lr_at(epoch + step/steps) before each step: epoch 1 of 4 steps with a 2-epoch warm-up
    gives 0.2, 0.25, 0.3, 0.35 (peak 0.4). Catches the lr set once per epoch or from the wrong progress."""
    net = _bn_net().float()
    opt = torch.optim.SGD(net.parameters(), lr=99.0)
    split = Split(torch.randint(0, 256, (32, 1, 6, 6), dtype=torch.uint8), torch.randint(0, 4, (32,)))
    run = {"warmup_epochs": 2, "lr_milestones": [], "lr_gamma": 0.1}
    seen = []
    run_epoch(
        net,
        opt,
        split,
        run,
        batch_size=8,
        peak_lr=0.4,
        epoch=1,
        generator=torch.Generator().manual_seed(0),
        on_step=lambda position: seen.append(opt.param_groups[0]["lr"]),
    )
    assert seen == pytest.approx([0.2, 0.25, 0.3, 0.35])


def test_paper_config_schedules_resolve_per_experiment():
    """config/paper.yaml relies on per-experiment milestones: ResNet-20 on CIFAR-10 decays x0.1 at 60 and 120,
    C1 takes the section's x0.2 at 30 and 60, M1 x0.2 at 15 and 25. Catches experiment overrides of the
    schedule keys being dropped when a run's config is resolved."""
    cfg = config.load("config/paper.yaml")
    resnet = config.run_config(cfg, "cifar10", "ResNet20", mode="clean", batch_size="128", seed=0)
    c1 = config.run_config(cfg, "cifar10", "C1", mode="clean", batch_size="128", seed=0)
    m1 = config.run_config(cfg, "mnist", "M1", mode="clean", batch_size="128", seed=0)
    assert [lr_at(resnet, 0.1, e) for e in (59, 60, 119, 120)] == pytest.approx([0.1, 0.01, 0.01, 0.001])
    assert [lr_at(c1, 0.02, e) for e in (29, 30, 60)] == pytest.approx([0.02, 0.004, 0.0008])
    assert [lr_at(m1, 0.01, e) for e in (14, 15, 25)] == pytest.approx([0.01, 0.002, 0.0004])


def test_same_seed_twice_gives_identical_weights(mnist5k, tmp_path):
    train, test, info = mnist5k
    run = run_of(small_run(stop={"rule": "epochs", "epochs": 2, "target_loss": 0.1}))
    train_run(run, train, test, info, files=tmp_path / "a", device=torch.device("cpu"))
    train_run(run, train, test, info, files=tmp_path / "b", device=torch.device("cpu"))
    wa, wb = weights(tmp_path / "a/checkpoint.pt"), weights(tmp_path / "b/checkpoint.pt")
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    other = dict(run, seed=1)
    train_run(other, train, test, info, files=tmp_path / "c", device=torch.device("cpu"))
    assert not torch.equal(weights(tmp_path / "c/checkpoint.pt")["net.0.weight"], wa["net.0.weight"])


class Interrupt(Exception):
    pass


def test_interrupted_run_resumes_to_the_same_weights(mnist5k, tmp_path):
    train, test, info = mnist5k
    cfg = small_run(stop={"rule": "epochs", "epochs": 4, "target_loss": 0.1}, augment=True)
    run = run_of(cfg, mode="fgsm", batch="64")  # robust mode and augmentation: all RNG streams resume
    train_run(run, train, test, info, files=tmp_path / "full", device=torch.device("cpu"))

    def stop_after_two(epoch, model):
        if epoch == 2:
            raise Interrupt

    with pytest.raises(Interrupt):
        train_run(run, train, test, info, files=tmp_path / "cut", device=torch.device("cpu"), callback=stop_after_two)
    assert (tmp_path / "cut/resume.pt").exists() and not (tmp_path / "cut/checkpoint.pt").exists()
    m = train_run(run, train, test, info, files=tmp_path / "cut", device=torch.device("cpu"))
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
    m = train_run(run, train, test, info, files=tmp_path, device=torch.device("cpu"))
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
    m = train_run(run, train, test, info, files=tmp_path, device=torch.device("cpu"))
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


@pytest.mark.parametrize("momentum, decay", [(0.9, 0.0), (0.9, 5e-4), (0.0, 0.0)])
def test_sgd_is_torch_sgd_bit_for_bit(momentum, decay):
    """The project's SGD (no compiler import) makes torch.optim.SGD's updates exactly, through lr changes and a
    state handed from one to the other mid-run (a resume state written by either loads in both)."""
    torch.manual_seed(0)
    ours = build_model("M1", MNIST)
    theirs = copy.deepcopy(ours)
    opt_ours = SGD(ours.parameters(), lr=0.05, momentum=momentum, weight_decay=decay)
    opt_theirs = torch.optim.SGD(theirs.parameters(), lr=0.05, momentum=momentum, weight_decay=decay)
    x, y = torch.rand(32, 1, 28, 28), torch.randint(0, 10, (32,))
    for step in range(6):
        for model, opt in ((ours, opt_ours), (theirs, opt_theirs)):
            opt.param_groups[0]["lr"] = 0.05 / (1 + step)
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(model(x[step::2]), y[step::2]).backward()
            opt.step()
        if step == 2:  # swap states both ways, as a resume across the change would
            mine, torchs = opt_ours.state_dict(), opt_theirs.state_dict()
            opt_ours.load_state_dict(copy.deepcopy(torchs))
            opt_theirs.load_state_dict(copy.deepcopy(mine))
    assert all(torch.equal(a, b) for a, b in zip(ours.parameters(), theirs.parameters(), strict=True))
    assert not torch.equal(next(ours.parameters()), next(build_model("M1", MNIST).parameters()))
