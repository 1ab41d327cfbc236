"""M1 as built against the same network in plain torch.nn, on the CPU, same run.

``stock`` is LeNet as usually written (nn.Conv2d, ReLU, nn.MaxPool2d); ``m1`` pools before its ReLU and uses
core.layers' first convolution and pooling. Both compute the same numbers bit for bit (tests/test_models.py).
Prints CPU milliseconds per forward pass over 600 images (the stop rule's evaluation), per training step at batch
256 and per Hessian-vector product over 600 images (the spectrum step), and the ratio m1 / stock. Best of
interleaved repeats, so machine noise hits both alike.

    python benchmarks/bench_models.py [--threads 1] [--repeats 7] [--quick]
"""

import argparse
import copy
import time

import torch
from torch import nn
from torch.nn import functional as F

from lbhessian.core.models import build_model
from lbhessian.core.runtime import keep_freed_memory
from lbhessian.curvature.operators import WeightHessian

MNIST = {"classes": 10, "shape": [1, 28, 28], "mean": [0.13], "std": [0.31]}


def variants():
    torch.manual_seed(0)
    m1 = build_model("M1", MNIST).eval()
    stock = copy.deepcopy(m1)
    first = nn.Conv2d(1, 20, 5)
    first.load_state_dict(m1.net[0].state_dict())
    stock.net[0] = first
    for pool, relu in ((1, 2), (4, 5)):
        stock.net[pool], stock.net[relu] = nn.ReLU(), nn.MaxPool2d(2)
    return {"stock": stock, "m1": m1}


def tasks(model, x, y):
    op = WeightHessian(model, x, y)
    v = torch.randn(1, op.size, generator=torch.Generator().manual_seed(1))
    trained = copy.deepcopy(model).train()  # its steps must not touch the operator's cached graph
    opt = torch.optim.SGD(trained.parameters(), lr=0.0)

    def forward():
        with torch.no_grad():
            model(x)

    def train_step():
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(trained(x[:256]), y[:256]).backward()
        opt.step()

    return {"forward 600": forward, "train step 256": train_step, "Hessian product 600": lambda: op.matvec(v)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--quick", action="store_true", help="3 repeats")
    args = ap.parse_args()
    args.repeats = 3 if args.quick else args.repeats
    torch.set_num_threads(args.threads)
    keep_freed_memory()  # as every step runs (core.runtime.setup_runtime): no page faults hiding the kernels
    g = torch.Generator().manual_seed(0)
    x = torch.rand(600, 1, 28, 28, generator=g) * (torch.rand(600, 1, 28, 28, generator=g) > 0.8)  # MNIST-like
    y = torch.randint(0, 10, (600,), generator=g)
    work = {name: tasks(model, x, y) for name, model in variants().items()}
    best = {(name, task): float("inf") for name in work for task in work[name]}
    for _ in range(args.repeats):
        for name, fns in work.items():
            for task, fn in fns.items():
                fn()  # warm
                t = time.process_time()
                fn()
                best[name, task] = min(best[name, task], time.process_time() - t)
    print(f"threads {args.threads}, best of {args.repeats}, CPU ms (ratio to stock)")
    for task in work["stock"]:
        cells = [
            f"{name} {best[name, task] * 1e3:7.1f} ({best[name, task] / best['stock', task]:.2f})" for name in work
        ]
        print(f"{task:>20}: " + "   ".join(cells))


if __name__ == "__main__":
    main()
