"""Training throughput (samples/s) of the project's epoch loop against a bare PyTorch loop, same run.

Both loops see the same in-memory uint8 tensors, the same model and the same optimizer settings; the bare
loop is the minimum a hand-written script would do (shuffle, gather, scale to [0, 1], forward, backward,
step). Target: ratio >= 0.9 at batch 128 and 2048 on the CPU.

    python benchmarks/bench_train.py [--device cpu|cuda] [--quick] [--threads N]
"""

import argparse
import copy
import time
from pathlib import Path

import torch
from torch.nn import functional as F

from lbhessian.core.data import load_prepared, prepare
from lbhessian.core.models import build_model
from lbhessian.training import run_epoch, scaled_lr


def bare_epoch(model, opt, x_u8, y, *, batch_size, generator):
    n = len(y)
    perm = torch.randperm(n, generator=generator).to(y.device)
    for i in range(0, n, batch_size):
        idx = perm[i : i + batch_size]
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x_u8[idx].float() / 255.0), y[idx]).backward()
        opt.step()


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def best_times(fns, device, repeats):
    """Best wall time of each function; runs interleaved so that machine noise hits both alike."""
    best = {name: float("inf") for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            sync(device)
            t0 = time.perf_counter()
            fn()
            sync(device)
            best[name] = min(best[name], time.perf_counter() - t0)
    return best


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--quick", action="store_true", help="fewer samples and repeats")
    p.add_argument("--data-root", default="data")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    train, _, info = load_prepared(prepare("mnist5k", Path(args.data_root) / "prepared" / "mnist5k.pt"))
    train = train.subset(2048 if args.quick else 4000).to(device)
    repeats = 2 if args.quick else 3
    run = {
        "base_batch_size": 128,
        "optimizer": {"lr": 0.01, "momentum": 0.9, "weight_decay": 0.0},
        "lr_scaling": "none",
        "warmup_epochs": 0,
        "lr_milestones": [],
        "lr_gamma": 0.1,
        "augment": False,
        "robust": None,
        "micro_batch": None,
    }
    print(f"device {device}, threads {args.threads}, model M1, {len(train)} samples per epoch, best of {repeats}")
    print(f"{'batch':>6} {'bare samples/s':>15} {'project samples/s':>18} {'ratio':>6}")
    for batch in (128, 2048):
        torch.manual_seed(0)
        base = build_model("M1", info).to(device)
        fns = {}
        for name in ("bare", "project"):
            model = copy.deepcopy(base)
            opt = torch.optim.SGD(model.parameters(), lr=scaled_lr(run, batch), momentum=0.9)
            gen = torch.Generator().manual_seed(0)
            if name == "bare":
                fns[name] = lambda m=model, o=opt, g=gen, b=batch: bare_epoch(
                    m, o, train.x, train.y, batch_size=b, generator=g
                )
            else:
                fns[name] = lambda m=model, o=opt, g=gen, b=batch: run_epoch(
                    m, o, train, run, batch_size=b, peak_lr=scaled_lr(run, b), epoch=0, generator=g
                )
            fns[name]()  # warm-up (allocator, oneDNN primitives)
        results = {name: len(train) / t for name, t in best_times(fns, device, repeats).items()}
        ratio = results["project"] / results["bare"]
        print(f"{batch:>6} {results['bare']:>15.0f} {results['project']:>18.0f} {ratio:>6.2f}")


if __name__ == "__main__":
    main()
