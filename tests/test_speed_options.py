"""Training speed options (issue 15): train.channels_last and train.autocast, off by default, recorded."""

import copy

import torch
import torch.nn.functional as F

from lbhessian.core.models import build_model
from lbhessian.training import speed_options, train_step

INFO = {"name": "x", "classes": 10, "shape": [3, 32, 32], "mean": [0.5] * 3, "std": [0.25] * 3}


def one_step(run: dict, device="cpu"):
    torch.manual_seed(0)
    model = build_model("C1", INFO).to(device)
    fmt, _ = speed_options(run)
    model = model.to(memory_format=fmt)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    g = torch.Generator().manual_seed(1)
    x, y = torch.rand(16, 3, 32, 32, generator=g).to(device), torch.randint(0, 10, (16,), generator=g).to(device)
    loss = train_step(model, opt, x, y, micro_batch=None, speed=speed_options(run))
    return float(loss), model


def test_defaults_are_float32_standard_format():
    """Off by default: the step equals a plain float32 step bit for bit (catches an option on by default)."""
    assert speed_options({}) == (torch.contiguous_format, None)
    assert speed_options({"channels_last": False, "autocast": "none"}) == (torch.contiguous_format, None)
    loss, model = one_step({"channels_last": False, "autocast": "none"})
    torch.manual_seed(0)
    ref = build_model("C1", INFO)
    opt = torch.optim.SGD(ref.parameters(), lr=0.1)
    g = torch.Generator().manual_seed(1)
    x, y = torch.rand(16, 3, 32, 32, generator=g), torch.randint(0, 10, (16,), generator=g)
    opt.zero_grad()
    ref_loss = F.cross_entropy(ref(x), y, reduction="sum") / 16
    ref_loss.backward()
    opt.step()
    assert loss == float(ref_loss.detach())
    for a, b in zip(model.parameters(), ref.parameters(), strict=True):
        assert torch.equal(a, b)


def test_channels_last_and_bf16_autocast_take_effect_and_stay_close():
    """channels_last gives the float32 step up to summation order; bf16 autocast really runs in bfloat16.

    Catches an autocast flag that is ignored (loss bit-identical to float32) and a memory format that
    changes the maths (large differences)."""
    base, m0 = one_step({"channels_last": False, "autocast": "none"})
    cl, m1 = one_step({"channels_last": True, "autocast": "none"})
    bf, _ = one_step({"channels_last": False, "autocast": "bfloat16"})
    assert abs(cl - base) <= 1e-5 * abs(base)
    for a, b in zip(m0.parameters(), m1.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-4)
    conv = next(p for p in m1.parameters() if p.dim() == 4)
    assert conv.is_contiguous(memory_format=torch.channels_last)
    assert bf != base and abs(bf - base) <= 0.05 * abs(base)


def test_options_recorded_in_metrics_and_checkpoint(tmp_path):
    """train_run writes both options into metrics.json and the checkpoint's run, and saves weights in the
    standard format (catches options that are silently dropped from the record)."""
    from lbhessian.core.checkpoint import load_checkpoint
    from lbhessian.core.config import load, run_config
    from lbhessian.core.data import Split
    from lbhessian.core.io import read_json
    from lbhessian.training import TrainFiles, train_run

    cfg = load("config/smoke.yaml")
    cfg = copy.deepcopy(cfg)
    cfg["train"]["channels_last"], cfg["train"]["autocast"] = True, "bfloat16"
    cfg["train"]["stop"]["epochs"] = 1
    cfg["train"]["track"]["every"] = 0
    run = run_config(cfg, "mnist5k", "M1", mode="clean", batch_size="16", seed=0)
    g = torch.Generator().manual_seed(0)
    split = Split(torch.randint(0, 256, (32, 1, 28, 28), generator=g, dtype=torch.uint8), torch.arange(32) % 10)
    info = {"name": "mnist5k", "classes": 10, "shape": [1, 28, 28], "mean": [0.13], "std": [0.31]}
    m = train_run(run, split, split, info, files=TrainFiles.in_dir(tmp_path), device=torch.device("cpu"))
    assert m["channels_last"] is True and m["autocast"] == "bfloat16"
    assert read_json(tmp_path / "metrics.json")["autocast"] == "bfloat16"
    model, saved_run, _, _ = load_checkpoint(tmp_path / "checkpoint.pt")
    assert saved_run["channels_last"] is True and saved_run["autocast"] == "bfloat16"
    assert all(p.is_contiguous() for p in model.parameters())
