"""What portable CPU kernels cost (runtime.kernels, core/kernels.py): native vs portable, side by side.

Each setting runs in its own process (the kernels are chosen before torch is imported), one thread, the same
work, alternating native / portable ``--repeats`` times: one training epoch of M1 on 600 real MNIST images at
batch 16 and at batch 256, and 10 weight-Hessian-vector products over those images. Prints the median seconds
of each and the ratio portable / native.

Usage: python benchmarks/bench_kernels.py [--repeats N] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

WORK = r"""
import json, sys, time
from lbhessian.core.kernels import pin
pin(sys.argv[1])
import torch
from lbhessian.core.data import load_prepared, prepare
from lbhessian.core.models import build_model
from lbhessian.core.runtime import check_kernels
from lbhessian.curvature import WeightHessian
from lbhessian.training import train_step
torch.set_num_threads(1)
check_kernels(sys.argv[1])
path = sys.argv[2]
train, _, info = load_prepared(path)
x, y = train.tensors(600)
out = {}
for batch in (16, 256):
    torch.manual_seed(0)
    model = build_model("M1", info)
    opt = torch.optim.SGD(model.parameters(), lr=0.02, momentum=0.9)
    t = time.perf_counter()
    for i in range(0, 600, batch):
        train_step(model, opt, x[i : i + batch], y[i : i + batch])
    out[f"epoch_bs{batch}"] = time.perf_counter() - t
op = WeightHessian(model.eval(), x, y)
op.loss_and_gradient()
v = torch.randn(1, op.size)
t = time.perf_counter()
for _ in range(10):
    op.matvec(v)
out["hvp_x10"] = time.perf_counter() - t
print(json.dumps(out))
"""


def measure(kind: str, data: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    for k in ("ATEN_CPU_CAPABILITY", "MKL_CBWR", "ONEDNN_MAX_CPU_ISA"):
        env.pop(k, None)
    proc = subprocess.run([sys.executable, "-c", WORK, kind, str(data)], env=env, check=True, capture_output=True)
    return json.loads(proc.stdout.decode().strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--quick", action="store_true", help="2 repeats")
    p.add_argument("--data", default=str(ROOT / "data" / "prepared" / "mnist5k.pt"))
    args = p.parse_args()
    data = Path(args.data)
    if not data.exists():
        from lbhessian.core.data import prepare

        prepare("mnist5k", data)
    repeats = 2 if args.quick else args.repeats
    runs = {"native": [], "portable": []}
    for _ in range(repeats):
        for kind in runs:
            runs[kind].append(measure(kind, data))
    print(f"one thread, median of {repeats} alternating runs; M1 on 600 MNIST images")
    print("work | native s | portable s | portable / native")
    for key in runs["native"][0]:
        nat = statistics.median(r[key] for r in runs["native"])
        por = statistics.median(r[key] for r in runs["portable"])
        print(f"{key} | {nat:.3f} | {por:.3f} | {por / nat:.2f}")


if __name__ == "__main__":
    main()
