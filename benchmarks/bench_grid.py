"""A cost model of a whole config from measurements on this machine (issue 15): device-hours per step.

Measures, on the device it runs on (CUDA when present, else this CPU at --threads):
(a) per model (M1, M2, C1, C2, ResNet-20): one training step's time per sample at batch 128 and at a
    large batch, true and accumulated from 128-sample micro-batches; one eval forward, one gradient and
    one Hessian-vector product per sample over a training set (fewer images than CIFAR's 50,000 on a CPU:
    the time is scaled linearly in the sample count, which the chunked operators are);
(b) Hessian-vector products per spectrum split, by part (Lanczos with both ends from one run under
    spectrum.bottom joint, the power-iteration check, trace, density): given with --products, else read
    from the spectrum.json files (matvecs_by_part) of a results folder (--results, default the config's
    own), else counted on an M1 trained briefly here (each said in the output);
then prints, for every step of --config (default config/paper.yaml), the figures that do not depend on the
hardware (optimizer steps, sample gradients, Hessian-vector products times samples) and the estimated
device-hours from the throughput measured in (a), naming the device it was measured on.
Images are random tensors of the datasets' shapes (CIFAR cannot be downloaded offline): timings do not
depend on pixel values. Usage: python benchmarks/bench_grid.py [--quick] [--device cpu|cuda] [--config F]
[--results DIR | --products lanczos=N,power=N,trace=N,density=N]
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from lbhessian.core.config import load, run_config, runs, spectrum_settings
from lbhessian.core.models import build_model
from lbhessian.core.names import RunId
from lbhessian.curvature import WeightHessian, lanczos, min_eigenvalue, power_iteration
from lbhessian.training import train_step

SHAPES = {"mnist": [1, 28, 28], "cifar": [3, 32, 32]}
MODELS = {"M1": "mnist", "M2": "mnist", "C1": "cifar", "C2": "cifar", "ResNet20": "cifar"}
# Training / test images per dataset (train_size / test_size of a config override them).
SIZES = {
    "mnist": (60000, 10000),
    "fashion_mnist": (60000, 10000),
    "cifar10": (50000, 10000),
    "cifar100": (50000, 10000),
    "mnist5k": (4000, 1000),
    "digits": (1437, 360),
}
PARTS = ("lanczos", "power", "trace", "density", "min")  # spectrum.json matvecs_by_part (min: bottom separate)


def info_for(kind: str, classes: int = 10) -> dict:
    c = SHAPES[kind][0]
    return {"name": kind, "classes": classes, "shape": SHAPES[kind], "mean": [0.5] * c, "std": [0.25] * c}


def sync(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device, repeats: int, warm: bool = True) -> float:
    """Median wall time of ``repeats`` calls (after one warm-up call when ``warm``)."""
    if warm:
        fn()
    times = []
    for _ in range(repeats):
        sync(device)
        t = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def model_costs(name: str, *, n: int, large: int, device, repeats: int, warm: bool) -> dict:
    """Seconds per sample of training (bs 128, large true, large accumulated), forward, gradient, HVP."""

    def clock(fn) -> float:
        return timed(fn, device, repeats, warm)

    torch.manual_seed(0)
    kind = MODELS[name]
    model = build_model(name, info_for(kind)).to(device)
    x = torch.rand(max(n, large), *SHAPES[kind], device=device)
    y = torch.randint(0, 10, (len(x),), device=device)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)

    def epoch(batch: int, micro) -> None:
        for i in range(0, len(x), batch):
            train_step(model, opt, x[i : i + batch], y[i : i + batch], micro_batch=micro)

    out = {
        "train_128": clock(lambda: epoch(128, None)) / len(x),
        "train_large_true": clock(lambda: epoch(large, None)) / len(x),
        "train_large_acc": clock(lambda: epoch(large, 128)) / len(x),
    }
    model.eval()
    with torch.no_grad():
        out["forward"] = clock(lambda: [model(x[i : i + 1024]) for i in range(0, n, 1024)]) / n
    op = WeightHessian(model, x[:n], y[:n])

    def gradient():
        op._loss_grad, op._graphs = None, None  # recompute: forward + backward over every chunk
        return op.loss_and_gradient()

    cache = op.cache
    op.cache = False
    out["gradient"] = clock(gradient) / n
    v = torch.randn(1, op.size, device=device)
    out["hvp"] = clock(lambda: op.matvec(v)) / n
    op.cache = True
    gradient()
    out["hvp_cached"] = clock(lambda: op.matvec(v)) / n
    op.release()
    out.update(params=op.size, chunk=op.chunk_size, bytes_per_sample=op.bytes_per_sample, cache_here=cache)
    return out


def products_from_results(results: Path) -> tuple[dict, str] | None:
    """Mean Hessian-vector products per spectrum split, by part, from the spectrum.json files under ``results``
    (matvecs_by_part); the power check's mean over the runs that made it."""
    files = sorted(Path(results).glob("runs/**/spectrum.json"))
    by_part: dict = {k: [] for k in PARTS}
    ks = set()
    for path in files:
        doc = json.loads(path.read_text())
        for split in ("train", "test"):
            ks.add(len((doc.get(split) or {}).get("eigenvalues") or []))
            parts = (doc.get(split) or {}).get("matvecs_by_part")
            for k in PARTS if parts else ():
                if k != "power" or parts.get(k):
                    by_part[k].append(parts.get(k, 0))
    if not by_part["lanczos"]:
        return None
    counts = {k: statistics.mean(v) if v else 0.0 for k, v in by_part.items()}
    tops = "/".join(str(k) for k in sorted(ks - {0}))
    return counts, f"matvecs_by_part of {len(files)} spectrum.json file(s) in {results} (top-{tops})"


def parse_products(text: str) -> dict:
    out = dict.fromkeys(PARTS, 0.0)
    for item in text.split(","):
        key, _, value = item.partition("=")
        if key.strip() not in PARTS or not value:
            raise SystemExit(f"bench_grid: --products: expected {'|'.join(PARTS)}=N, comma-separated; got {item!r}")
        out[key.strip()] = float(value)
    return out


def product_counts(paths: list[str], samples: int, spec: dict, device) -> tuple[dict, str]:
    """Products by part of the spectrum step's solves, counted on checkpoints (no results folder at hand)."""
    from lbhessian.core.checkpoint import load_checkpoint

    counts = {k: [] for k in PARTS}
    k, kc, tol, it = spec["top_k"], spec["power_k"] or spec["top_k"], spec["tol"], spec["max_iter"]
    for path in paths:
        model = load_checkpoint(path, device=device)[0]
        x, y = torch.rand(samples, 1, 28, 28, device=device), torch.randint(0, 10, (samples,), device=device)
        op = WeightHessian(model, x, y)
        counts["lanczos"].append(lanczos(op, k, tol=tol, max_iter=it, seed=0, vectors=False).total_matvecs)
        counts["power"].append(power_iteration(op, kc, tol=tol, max_iter=it, seed=1).total_matvecs)
        separate = spec.get("bottom") == "separate"
        counts["min"].append(min_eigenvalue(op, tol=tol, max_iter=it, seed=2).total_matvecs if separate else 0)
        counts["trace"].append(spec["trace_samples"])
        counts["density"].append(2 * min(spec["max_iter"], 64) if spec["density"] else 0)
        op.release()
    return {k: statistics.mean(v) for k, v in counts.items()}, f"{len(paths)} checkpoint(s), {samples} samples each"


def trained_m1(device) -> list[str]:
    """No default run at hand: an M1 trained 200 steps on random MNIST-shaped images, saved like the pipeline."""
    import tempfile

    from lbhessian.core.checkpoint import save_checkpoint

    torch.manual_seed(0)
    model = build_model("M1", info_for("mnist")).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.02, momentum=0.9)
    x, y = torch.rand(2048, 1, 28, 28, device=device), torch.randint(0, 10, (2048,), device=device)
    for s in range(200):
        i = slice(64 * (s % 32), 64 * (s % 32 + 1))
        opt.zero_grad()
        F.cross_entropy(model(x[i]), y[i]).backward()
        opt.step()
    path = tempfile.mkdtemp() + "/checkpoint.pt"
    save_checkpoint(path, model, {"model": "M1", "dataset": "mnist"}, info_for("mnist"), epoch=1, status="ok")
    return [path]


STEPS = ("train", "spectrum", "inputs", "attack")


def run_work(run: dict, cfg: dict, spec: dict, counts: dict, *, n_train: int, n_test: int, d: int) -> dict:
    """What one run's steps compute, independent of the hardware: optimizer steps, training samples, extra
    sample gradients, Hessian-vector products (``products``; ``hvps``: times the samples they run over) and
    evaluation forwards, by step."""
    b = n_train if run["batch_size"] == "full" else min(int(run["batch_size"]), n_train)
    per_epoch = math.ceil(n_train / b)
    stop = run["stop"]  # target_loss: the epoch cap (an upper bound); min_steps: the step budget
    epochs = max(stop["epochs"], math.ceil(stop["min_steps"] / per_epoch)) if stop.get("min_steps") else stop["epochs"]
    robust, adv = run.get("robust"), 0.0
    if robust:  # an input gradient (FGSM) or `steps` of them (PGD) on the adversarial fraction
        adv = robust["fraction"] * ((robust.get("steps") or 1) if robust["attack"] == "pgd" else 1)
    track = run.get("track") or {}
    tracked = epochs // track["every"] if track.get("every") else 0
    t_n, t_it = min(track.get("samples") or n_train, n_train), track.get("iters", 20)
    work = {
        "train": {
            "steps": epochs * per_epoch,
            "samples": epochs * n_train,
            "grads": epochs * n_train * adv + tracked * t_n,
            "products": tracked * t_it,
            "hvps": tracked * t_n * t_it,
            "forwards": epochs / run["eval_every"] * (n_train + n_test),
        },
    }
    sp = dict.fromkeys(("steps", "samples", "grads", "products", "hvps", "forwards"), 0.0)
    per_split = counts["lanczos"] + counts["min"] + counts["trace"] + counts["density"]
    per_split += counts["power"] if spec["check_power"] else 0
    for split in spec["splits"]:
        n = min(spec["samples"] or 10**12, n_train if split == "train" else n_test)
        sp["grads"] += n
        sp["products"] += per_split
        sp["hvps"] += n * per_split
        if split == "train":  # loss landscapes: forward passes over train (1-D: also test) at every point
            land = spec["landscape"]
            sp["forwards"] += land["points_1d"] * (n + n_test) + land["points_2d"] ** 2 * n
    work["spectrum"] = sp
    # Input Hessians: a product per image costs about a weight-Hessian product per sample (same graph); the
    # exact Hessian of one image is d products.
    inp = cfg["inputs"]
    s = sum(min(inp["samples"] or 10**12, n) for n in (n_train, n_test))
    work["inputs"] = {
        "steps": 0,
        "samples": 0,
        "grads": s,
        "products": inp["iters"] + inp["exact_images"] * d,
        "hvps": s * inp["iters"] + inp["exact_images"] * d,
        "forwards": 0,
    }
    att = cfg["attack"]
    n = sum(min(att["samples"] or 10**12, m) for m in ((n_train, n_test) if len(att["splits"]) == 2 else (n_train,)))
    work["attack"] = {
        "steps": 0,
        "samples": 0,
        "products": 0,
        "hvps": 0,
        "grads": n * (1 + len(att["pgd"]["eps"]) * att["pgd"]["steps"]),
        "forwards": n * (1 + len(att["fgsm_linf"]) + len(att["fgsm_l2"]) + len(att["pgd"]["eps"])),
    }
    return work


def seconds(step: str, w: dict, c: dict, per_train_sample: float) -> float:
    hvp = c["hvp"] if step == "inputs" else c["hvp_used"]
    return w["samples"] * per_train_sample + w["grads"] * c["gradient"] + w["hvps"] * hvp + w["forwards"] * c["forward"]


def estimate(cfg: dict, costs: dict, counts: dict) -> dict:
    hours = dict.fromkeys(STEPS, 0.0)
    totals = {
        k: dict.fromkeys(("jobs", "steps", "samples", "grads", "products", "hvps", "forwards"), 0.0) for k in STEPS
    }
    by_model: dict = {}
    for r in runs(cfg):
        run = run_config(cfg, r["dataset"], r["model"], mode=r["mode"], batch_size=r["batch"], seed=r["seed"])
        c = costs[r["model"]]
        n_train, n_test = SIZES[r["dataset"]]
        n_train, n_test = min(run.get("train_size") or n_train, n_train), min(run.get("test_size") or n_test, n_test)
        d = 784 if MODELS[r["model"]] == "mnist" else 3072
        b = n_train if run["batch_size"] == "full" else int(run["batch_size"])
        micro = run.get("micro_batch")
        per = c["train_128"] if b <= 128 else c["train_large_acc"] if micro and micro < b else c["train_large_true"]
        cfg_run = {**cfg, "attack": {**cfg["attack"], **_attack_of(cfg, r)}}
        work = run_work(run, cfg_run, spectrum_settings(cfg, RunId.of(r)), counts, n_train=n_train, n_test=n_test, d=d)
        for step, w in work.items():
            t = seconds(step, w, c, per)
            hours[step] += t / 3600
            by_model.setdefault(f"{r['dataset']}/{r['model']}", dict.fromkeys(hours, 0.0))[step] += t / 3600
            totals[step]["jobs"] += 1
            for k, v in w.items():
                totals[step][k] += v
    return {"hours": hours, "by_model": by_model, "runs": len(runs(cfg)), "work": totals}


def _attack_of(cfg: dict, r: dict) -> dict:
    from lbhessian.core.config import attack_settings

    return attack_settings(cfg, r["dataset"], r["model"])


def measured_costs(n: int, *, large: int, device, repeats: int, warm: bool) -> dict:
    """(a) seconds per sample of each network's training, forward, gradient and Hessian-vector product."""
    costs = {}
    print(
        "\n(a) seconds per 1,000 samples   train@128  large-true  large-acc   forward  gradient       HVP"
        "  HVP-cached  HVP/grad  cached/grad  params"
    )
    for m in MODELS:
        c = model_costs(m, n=n, large=large, device=device, repeats=repeats, warm=warm)
        # The operator caches graphs when all samples' graphs fit its memory share: assume it on a GPU
        # when they fit there, as measured here otherwise.
        fits = (
            device.type == "cuda"
            and c["bytes_per_sample"] * 50000 <= 0.6 * torch.cuda.get_device_properties(device).total_memory
        )
        c["hvp_used"] = c["hvp_cached"] if (fits or c["cache_here"]) else c["hvp"]
        costs[m] = c
        k = 1000
        print(
            f"    {m:9s} {c['train_128'] * k:10.3f} {c['train_large_true'] * k:11.3f}"
            f" {c['train_large_acc'] * k:10.3f}"
            f" {c['forward'] * k:9.3f} {c['gradient'] * k:9.3f} {c['hvp'] * k:9.3f} {c['hvp_cached'] * k:11.3f}"
            f" {c['hvp'] / c['gradient']:9.2f} {c['hvp_cached'] / c['gradient']:12.2f} {c['params']:7d}"
        )
    return costs


def spectrum_products(cfg: dict, args, device) -> dict:
    """(b) Hessian-vector products per spectrum split: given, read from a results folder, or counted here."""
    sp = cfg["spectrum"]
    found = None if args.products else products_from_results(Path(args.results or cfg["results"]))
    if args.products:
        counts, origin = parse_products(args.products), "given with --products"
    elif found:
        counts, origin = found
        if f"(top-{sp['top_k']})" not in origin:
            origin += f": runs with other spectrum settings than top-{sp['top_k']}; give --results of a matching run"
    else:
        counts, what = product_counts(trained_m1(device), 64 if args.quick else 2000, sp, device)
        where = args.results or cfg["results"]
        origin = f"counted on an M1 trained 200 steps here on random images (no spectrum.json in {where}), {what}"
    print(
        f"\n(b) Hessian-vector products per spectrum split (top-{sp['top_k']}, tol {sp['tol']:g},"
        f" max_iter {sp['max_iter']}, bottom {sp['bottom']}, check_power {sp['check_power']}), {origin}:"
    )
    print("    " + ", ".join(f"{k} {v:.0f}" for k, v in counts.items()) + " (the same counts stand for every model)")
    return counts


def print_estimate(cfg: dict, args, *, costs: dict, counts: dict, device, name: str) -> None:
    """(c) what each step of the config computes and (d) its device-hours from the measured throughput."""
    est = estimate(cfg, costs, counts)
    print(f"\n(c) what each step of {args.config} computes ({est['runs']} runs; independent of the hardware):")
    columns = {
        "jobs": "jobs",
        "steps": "opt. steps",
        "samples": "train samples",
        "grads": "gradients",
        "products": "HVPs",
        "hvps": "HVP x samples",
        "forwards": "forwards",
    }
    print("    step      " + " ".join(f"{title:>14s}" for title in columns.values()))
    for step, w in est["work"].items():
        print(f"    {step:9s} " + " ".join(f"{w[k]:14.4g}" for k in columns))
    h = est["hours"]
    total = sum(h.values())
    print(f"\n(d) estimated device-hours of {args.config}, from the throughput measured in (a) on {device} ({name}):")
    for k, v in h.items():
        print(f"    {k:9s} {v:12.1f} h  ({v / total:5.1%})")
    print(f"    {'total':9s} {total:12.1f} h   goal {args.goal_hours:g} h: {total / args.goal_hours:.1f}x the goal")
    print("    by dataset/model (train, spectrum, inputs, attack hours):")
    for key, parts in est["by_model"].items():
        print(f"      {key:18s} " + "  ".join(f"{parts[k]:10.1f}" for k in h))
    worst = max(h, key=h.get)
    rest = total - h[worst]
    print(
        f"    the largest step is {worst} ({h[worst]:.1f} h); even without it the rest is {rest:.1f} h"
        f" ({'within' if rest <= args.goal_hours else 'over'} the goal)"
    )
    print("    data/collect/report steps are not counted (minutes); GPU packing shares a device, not its hours")


def main() -> None:
    wall0 = time.perf_counter()
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", choices=["cpu", "cuda"])
    ap.add_argument("--quick", action="store_true", help="few images and one checkpoint: ~2 minutes on 2 CPU cores")
    ap.add_argument("--config", default="config/paper.yaml")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    ap.add_argument("--samples", type=int, default=None, help="images per cost measurement (scaled linearly)")
    ap.add_argument(
        "--results", help="results folder whose spectrum.json files give the product counts (default: the config's)"
    )
    ap.add_argument(
        "--products", help="products per spectrum split instead: lanczos=N,power=N,trace=N,density=N[,min=N]"
    )
    ap.add_argument("--goal-hours", type=float, default=24.0)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    gpu = device.type == "cuda"
    n = args.samples or (10000 if gpu else 64 if args.quick else 1024)
    large, repeats = (4096 if gpu else 256 if args.quick else 2048), (3 if gpu or not args.quick else 1)
    name = torch.cuda.get_device_name(device) if gpu else f"CPU, {args.threads} thread(s)"
    print(f"device {device} ({name}), torch {torch.__version__}; wall times, median of {repeats}")
    print(f"images: random tensors of MNIST/CIFAR shape (no download); {n} per measurement, large batch {large}")
    if n < 50000:
        print(f"  per-sample times are scaled linearly to the full sets ({n} images measured, not 50,000)")
    cfg = load(args.config)
    costs = measured_costs(n, large=large, device=device, repeats=repeats, warm=gpu or not args.quick)
    counts = spectrum_products(cfg, args, device)
    print_estimate(cfg, args, costs=costs, counts=counts, device=device, name=name)
    print(f"\ntotal wall time {time.perf_counter() - wall0:.0f} s")


if __name__ == "__main__":
    main()
