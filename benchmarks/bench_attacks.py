"""Adversarial-evaluation throughput against a plain forward+backward over the same images.

    .venv/bin/python benchmarks/bench_attacks.py --device cpu --quick
    .venv/bin/python benchmarks/bench_attacks.py --device cuda --model ResNet20

Prints images/s for: forward+backward (the unit), FGSM accuracy at one eps (attack + evaluation forward),
PGD-k, and the whole `attack` step (measure.robustness on the default eps grid). Target: FGSM costs at
most 2.5x one forward+backward. Random pixels suffice: the cost does not depend on image content.
"""

import argparse
import json
import statistics
import sys
import time

import torch
import torch.nn.functional as F

from lbhessian import attacks
from lbhessian.core.data import Split
from lbhessian.core.models import build_model
from lbhessian.measure import robustness

TARGET = 2.5
SHAPES = {"M1": [1, 28, 28], "M2": [1, 28, 28]}  # everything else is a CIFAR net


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--model", default=None, help="M1, M2, C1, C2, ResNet20 (default: M1 on cpu, ResNet20 on cuda)")
    p.add_argument("--images", type=int, default=None, help="images per measurement (default 2000, quick 500)")
    p.add_argument("--batch", type=int, default=500, help="images per batch (the attack step's default)")
    p.add_argument("--repeats", type=int, default=None, help="timed repeats, median reported (default 5, quick 2)")
    p.add_argument("--threads", type=int, default=1, help="CPU threads (1 keeps comparisons fair on a shared box)")
    p.add_argument("--quick", action="store_true", help="small and fast: a smoke run")
    p.add_argument("--check", action="store_true", help=f"exit 1 if FGSM costs more than {TARGET}x fwd+bwd")
    p.add_argument("--out", default=None, help="also write the figures as JSON here")
    return p.parse_args(argv)


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, batches, device, repeats):
    """Median seconds of one pass of fn over all batches (after one warm-up pass)."""
    times = []
    for i in range(repeats + 1):
        sync(device)
        t0 = time.perf_counter()
        for x, y in batches:
            fn(x, y)
        sync(device)
        if i:  # the first pass warms caches, cuDNN autotuning and the allocator
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main(argv=None):
    args = parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit("bench_attacks: --device cuda but CUDA is not available")
    device = torch.device(args.device)
    torch.set_num_threads(args.threads)
    name = args.model or ("M1" if device.type == "cpu" else "ResNet20")
    n = args.images or (500 if args.quick else 2000)
    repeats = args.repeats or (2 if args.quick else 5)
    shape = SHAPES.get(name, [3, 32, 32])
    info = {"classes": 10, "shape": shape, "mean": [0.5] * shape[0], "std": [0.25] * shape[0]}

    torch.manual_seed(0)
    model = build_model(name, info).to(device).eval()
    g = torch.Generator().manual_seed(0)
    split = Split(
        torch.randint(0, 256, (n, *shape), generator=g, dtype=torch.uint8), torch.randint(0, 10, (n,), generator=g)
    )
    x_all, y_all = split.x_float().to(device), split.y.to(device)
    batches = [(x_all[i : i + args.batch], y_all[i : i + args.batch]) for i in range(0, n, args.batch)]

    def fwd_bwd(x, y):
        model.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()

    def fgsm_eval(x, y):
        adv = attacks.fgsm(model, x, y, 0.1)
        with torch.no_grad():
            return (model(adv).argmax(1) == y).sum()

    pgd_steps = 3 if args.quick else 10

    def pgd_eval(x, y):
        adv = attacks.pgd(model, x, y, 0.1, steps=pgd_steps, step_size=0.025)
        with torch.no_grad():
            return (model(adv).argmax(1) == y).sum()

    rows = {
        "forward+backward": timed(fwd_bwd, batches, device, repeats),
        "fgsm (attack + eval forward)": timed(fgsm_eval, batches, device, repeats),
        f"pgd-{pgd_steps} (attack + eval forward)": timed(pgd_eval, batches, device, 1 if args.quick else repeats),
    }
    # The whole attack step on the default grid (3 FGSM l-inf, 2 FGSM l2, 1 PGD eps): one split of n images.
    grid = {
        "samples": None,
        "splits": ["test"],
        "fgsm_linf": [0.05, 0.1, 0.2],
        "fgsm_l2": [1.0, 2.0],
        "pgd": {"eps": [0.1], "steps": pgd_steps, "step_size": 0.025, "random_start": True},
        "batch_size": args.batch,
    }
    robustness(model, split, split, dict(grid, samples=min(n, args.batch)))  # warm-up
    rows["attack step (default grid)"] = robustness(model, split, split, grid)["seconds"]

    unit = rows["forward+backward"]
    ratio = rows["fgsm (attack + eval forward)"] / unit
    dev_name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu x{args.threads} threads"
    print(f"model {name} {shape}, {n} images, batch {args.batch}, {dev_name}, torch {torch.__version__}")
    print(f"{'measurement':<34}{'images/s':>12}{'x fwd+bwd':>11}")
    for label, sec in rows.items():
        print(f"{label:<34}{n / sec:>12.0f}{sec / unit:>11.2f}")
    verdict = "PASS" if ratio <= TARGET else "FAIL"
    print(f"FGSM cost {ratio:.2f}x forward+backward (target <= {TARGET}): {verdict}")
    if args.out:
        figures = {
            "model": name,
            "images": n,
            "batch": args.batch,
            "device": dev_name,
            "fgsm_ratio": ratio,
            "images_per_second": {k: n / v for k, v in rows.items()},
        }
        with open(args.out, "w") as f:
            json.dump(figures, f, indent=1)
    return 1 if args.check and ratio > TARGET else 0


if __name__ == "__main__":
    sys.exit(main())
