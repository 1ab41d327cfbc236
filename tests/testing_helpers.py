"""Helpers shared by the tests (the one helpers module): running the real workflow, checking a report, tiny nets
and data, explicit Hessians, and a synthetic grid of run files with known values."""

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from lbhessian.core.data import Split

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ROOT / "config" / "smoke.yaml"


def run_dir(workdir, cfg, r):
    """The folder of run ``r`` (an item of config.runs) of ``cfg`` under ``workdir``: the layout of common.smk."""
    return (
        workdir
        / cfg["results"]
        / "runs"
        / r["dataset"]
        / r["model"]
        / r["mode"]
        / f"bs{r['batch']}"
        / f"seed{r['seed']}"
    )


def snakemake(workdir, *args, timeout=900, check=True):
    """Run the project's real Snakefile on workdir with the venv's snakemake; returns the CompletedProcess."""
    cmd = [str(Path(sys.executable).parent / "snakemake"), "-s", str(ROOT / "Snakefile"), "-d", str(workdir), *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(
            f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
        )
    return proc


def check_report(html: str):
    """What a finished report must hold: every figure, the tables and claims, captions, nothing fetched."""
    from lbhessian.report import figures

    for kind in figures.FIGURES:
        assert f'"{kind}.png"' in html, kind
    assert '"all.html"' in html and '"claims.html"' in html
    assert html.count("Made by config <tt") == len(figures.FIGURES) + 1  # every figure and the tables name it
    assert "problematic" not in html  # no caption failed to render
    assert not re.search(r"<(script|link|img)[^>]+(src|href)=.https?:", html)  # offline: nothing fetched


def fit_sgd(model, x, y, epochs=8, lr=0.05, batch=50, seed=0):
    """A few epochs of plain SGD with momentum: a really trained net for attack and curvature tests."""
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    g = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        for idx in torch.randperm(len(y), generator=g).split(batch):
            opt.zero_grad()
            F.cross_entropy(model(x[idx]), y[idx]).backward()
            opt.step()
    return model.eval()


# --- tiny nets and data, explicit references -----------------------------------------------------------


def tiny_net(bn: bool, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    layers = [nn.Conv2d(1, 2, 3), nn.Tanh()]
    if bn:
        layers.append(nn.BatchNorm2d(2))
    layers += [nn.Flatten(), nn.Linear(2 * 4 * 4, 5)]
    net = nn.Sequential(*layers).double()
    if bn:  # non-trivial running statistics, then leave the net in train mode
        with torch.no_grad():
            for _ in range(3):
                net(torch.rand(16, 1, 6, 6, dtype=torch.float64) * 2)
    return net


def tiny_data(n: int = 30, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 1, 6, 6, generator=g, dtype=torch.float64), torch.randint(0, 5, (n,), generator=g)


def explicit_weight_hessian(net, x, y):
    """Independent reference: the Hessian of the mean eval-mode loss over a flat parameter vector."""
    names = [n for n, _ in net.named_parameters()]
    shapes = [p.shape for _, p in net.named_parameters()]
    flat = torch.cat([p.detach().reshape(-1) for p in net.parameters()])
    sizes = [s.numel() for s in shapes]

    def f(theta):
        parts = dict(
            zip(names, [t.view(s) for t, s in zip(torch.split(theta, sizes), shapes, strict=False)], strict=False)
        )
        return F.cross_entropy(functional_call(net, parts, (x,)), y)

    training = net.training
    net.eval()
    h = torch.autograd.functional.hessian(f, flat)
    net.train(training)
    return h


def state(net):
    return [m.training for m in net.modules()], {k: v.clone() for k, v in net.state_dict().items()}


def assert_same_state(net, before):
    flags, sd = before
    assert [m.training for m in net.modules()] == flags
    for k, v in net.state_dict().items():
        assert torch.equal(v, sd[k]), k


MNIST_INFO = {"classes": 10, "shape": [1, 28, 28], "mean": [0.1307], "std": [0.3081]}


def mnist_like(n: int, seed: int = 0):
    """Ten noisy class prototypes: learnable in a few steps, uint8 like prepared data."""
    g = torch.Generator().manual_seed(seed)
    proto = torch.rand(10, 1, 28, 28, generator=torch.Generator().manual_seed(99))
    y = torch.randint(0, 10, (n,), generator=g)
    x = (0.7 * proto[y] + 0.3 * torch.rand(n, 1, 28, 28, generator=g)).clamp(0, 1)
    return Split((x * 255).round().to(torch.uint8), y)


def relu_bn_net(classes=4):
    """ReLU + max-pool + BatchNorm (eval: affine): piecewise linear in the image."""
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(1, 3, 3), nn.ReLU(), nn.BatchNorm2d(3), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(12, 16), nn.ReLU(), nn.Linear(16, classes),
    )  # fmt: skip
    with torch.no_grad():
        for _ in range(3):
            net(torch.rand(32, 1, 6, 6))
    return net


def small_split(n, seed, classes=4):
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 256, (n, 1, 6, 6), generator=g, dtype=torch.uint8)
    return Split(x, torch.randint(0, classes, (n,), generator=g))


# --- a synthetic grid of run files (collect, claims, figures) ----------------------------------------------

K = 5  # eigenvalues per run
EPS = {"fgsm_linf": [0.05, 0.1, 0.2], "fgsm_l2": [1.0], "pgd_linf": [0.1]}


def lam1(bs, mode="clean", rising=True):
    """Known lambda_1: x4 from batch 32 to 1024 (or /4 when not rising); robust training halves it."""
    r = (bs / 32) ** 0.4 if rising else (32 / bs) ** 0.4
    return 2.0 * r * (0.5 if mode != "clean" else 1.0)


RUN_FILES = {"metrics": "metrics.json", "history": "history.csv", "spectrum": "spectrum.json", "inputs": "inputs.json",
             "attack": "attack.json"}  # fmt: skip


def make_run(run_dir: Path, dataset, model, mode, bs, seed, rising=True, status="ok", label=None, **over) -> dict:
    """Write the five per-run files with values that follow from (bs, mode, seed, rising); returns their paths
    as collect takes them."""
    run_dir.mkdir(parents=True, exist_ok=True)
    jitter = 1.0 + 0.02 * seed  # seed spread, smaller than any batch-size effect
    l1 = lam1(bs, mode, rising) * jitter
    eig = [l1 * (1 - 0.15 * i) for i in range(K)]
    grow = (bs / 32) ** 0.3 if rising else (32 / bs) ** 0.3
    test_acc = over.get("test_acc", 0.98 - (0.01 if rising else -0.01) * math.log2(bs / 32) / 5)
    robust = (
        {"name": mode, "attack": "fgsm", "norm": "linf", "eps": [0.1], "fraction": 0.5} if mode != "clean" else None
    )
    metrics = {
        "status": status,
        "dataset": dataset,
        "model": model,
        "mode": mode,
        "robust": robust,
        "batch_size": bs,
        "batch_label": label or str(bs),
        "seed": seed,
        "stop_rule": "target_loss",
        "epochs": 5,
        "train_loss": 0.05,
        "train_acc": 0.99,
        "test_loss": 0.1,
        "test_acc": test_acc,
        "seconds": 10.0,
        "lr": 0.02,
    }
    (run_dir / "metrics.json").write_text(json.dumps(metrics))
    epochs = np.arange(1, 6)
    pd.DataFrame(
        {
            "epoch": epochs,
            "lr": 0.02,
            "train_loss": 1 / epochs,
            "train_acc": 0.9,
            "test_loss": 1 / epochs,
            "test_acc": 0.9,
            "seconds": 2.0,
            "lambda1": l1 * epochs / 5,
            "grad_norm": 0.5 / epochs,
        }
    ).to_csv(run_dir / "history.csv", index=False)
    alpha = np.linspace(-1, 1, 21)
    a2, b2 = np.meshgrid(np.linspace(-1, 1, 7), np.linspace(-1, 1, 5), indexing="ij")
    spectrum = {
        "train": {
            "samples": 1000,
            "method": "lanczos",
            "eigenvalues": eig,
            "residuals": [1e-4] * K,
            "matvecs": 60,
            "power": {
                "eigenvalues": eig,
                "residuals": [1e-4] * K,
                "matvecs": 100,
                "max_rel_diff": over.get("max_rel_diff", 1e-5),
            },
            "min_eigenvalue": -0.01,
            "grad_norm": over.get("grad_norm", 0.02),
            "loss": 0.05,
            "trace": 10 * l1,
            "landscape_1d": {
                "alpha": alpha.tolist(),
                "train_loss": (0.05 + 0.5 * l1 * alpha**2).tolist(),
                "test_loss": (0.1 + 0.5 * l1 * alpha**2).tolist(),
            },
            "landscape_2d": {
                "alpha": a2[:, 0].tolist(),
                "beta": b2[0].tolist(),
                "loss": (0.05 + 0.5 * (l1 * a2**2 + eig[1] * b2**2)).tolist(),
            },
        },
        "seconds": 3.0,
    }
    (run_dir / "spectrum.json").write_text(json.dumps(spectrum))
    inputs = {
        split: {
            "samples": 100,
            "grad_norm_mean": 0.1 * grow * jitter,
            "grad_norm_std": 0.01,
            "lambda1_mean": 1.0 * grow * jitter,
            "lambda1_std": 0.1,
        }
        for split in ("train", "test")
    }
    inputs["exact"] = [
        {
            "split": "test",
            "index": i,
            "classes": 10,
            "eigenvalues_top": [3.0 * grow, 1.0, 0.2],
            "min_eig": over.get("min_eig", -1e-7),
            "max_eig": 3.0 * grow,
            "rank": over.get("rank", 9),
            "rank_tol": over.get("rank_tol", 1e-9),
        }
        for i in range(2)
    ]
    inputs["seconds"] = 1.0
    (run_dir / "inputs.json").write_text(json.dumps(inputs))
    robust_gain = 1.5 if mode != "clean" else 1.0
    attack = {"seconds": 2.0, "images_per_second": 500.0}
    for split in ("train", "test"):
        block = {"samples": 100, "clean_acc": test_acc}
        for att, epss in EPS.items():
            block[att] = {str(e): min(1.0, test_acc * math.exp(-5 * e * grow) * robust_gain) for e in epss}
        attack[split] = block
    (run_dir / "attack.json").write_text(json.dumps(attack))
    return {name: run_dir / file for name, file in RUN_FILES.items()}


def make_runs(
    results: Path,
    batch_sizes=(32, 256, 1024),
    seeds=(0, 1),
    robust_bs=(32, 1024),
    rising=True,
    dataset="mnist5k",
    model="M1",
    labels=None,
    **over,
) -> list[dict]:
    """A grid of runs under results/runs; returns each run's files (collect's input). labels: batch size ->
    directory label (e.g. {512: "full"} for the full-batch run, as the workflow names it)."""
    runs, files = results / "runs", []
    labels = labels or {}
    for bs in batch_sizes:
        for mode in ["clean"] + (["fgsm"] if bs in robust_bs else []):
            for seed in seeds:
                files.append(make_run(
                    runs / dataset / model / mode / f"bs{labels.get(bs, bs)}" / f"seed{seed}",
                    dataset,
                    model,
                    mode,
                    bs,
                    seed,
                    rising=rising,
                    label=labels.get(bs),
                    **over,
                ))  # fmt: skip
    return files


# --- config sections with the schema's defaults -----------------------------------------------------------


def section(name, **over):
    """One config section as a step receives it: the schema's defaults, some keys replaced (dicts merged)."""
    from lbhessian.core.config import defaults

    out = defaults(name)
    for key, value in over.items():
        merge = isinstance(value, dict) and isinstance(out.get(key), dict)
        out[key] = {**out[key], **value} if merge else value
    return out


def smoke_config(**sections):
    """config/smoke.yaml with some sections' keys replaced, validated (defaults filled, LbhError if bad)."""
    import yaml

    from lbhessian.core.config import validate

    cfg = yaml.safe_load(SMOKE.read_text())
    for name, changes in sections.items():
        cfg[name] = {**cfg.get(name, {}), **changes}
    return validate(cfg, "smoke.yaml")


# --- a synthetic experiment with known values, for the report tests (figures, tables, page) ---------------

REPORT_EPS = (0.05, 0.1)


def known(bs, seed, mode="clean"):
    """The values every synthetic run carries: each follows from (batch size, seed, mode) by a formula the
    report tests recompute independently. Train and test differ everywhere, so a figure that plots the wrong
    split is caught."""
    g = math.log2(bs / 32)
    lam1 = 2.0 * (bs / 32) ** 0.4 * (1 + 0.1 * seed) * (0.5 if mode != "clean" else 1.0)
    test_acc = 0.95 - 0.01 * g + 0.002 * seed
    return {
        "lambda": [lam1 * (1 - 0.15 * i) for i in range(4)],
        "train_acc": 0.99 - 0.001 * g,
        "test_acc": test_acc,
        "epochs": 3 if bs == 32 else 12,  # batch 32 stops before the first tracked epoch (5)
        "grad_x": {"test": 0.5 * (bs / 32) ** 0.3 * (1 + 0.05 * seed), "train": 0.4 * (bs / 32) ** 0.3},
        "acc": {
            (e, s): test_acc - 0.1 * (1 + g) * e * (1 if s == "test" else 0.5)
            for e in REPORT_EPS
            for s in ("train", "test")
        },
    }


def synthetic_results(
    root: Path, batch_sizes=(32, 256, 1024), seeds=(0, 1), robust_bs=(32, 1024), diverged=(), robust=("fgsm",)
):
    """Write every per-run file of a small mnist5k_M1 grid under root/results/runs and collect summary.csv
    (relative file paths, as the pipeline writes them); ``diverged``: (bs, seed) runs with status diverged;
    ``robust``: the names of the robust modes (each at ``robust_bs``; the default config has two)."""
    from lbhessian.report.summary import collect

    runs = []
    for mode, sizes in (("clean", batch_sizes), *((r, robust_bs) for r in robust)):
        for bs in sizes:
            for seed in seeds:
                k = known(bs, seed, mode)
                rel = Path("results/runs/mnist5k/M1") / mode / f"bs{bs}" / f"seed{seed}"
                d = root / rel
                d.mkdir(parents=True, exist_ok=True)
                status = "diverged" if (bs, seed) in diverged and mode == "clean" else "ok"
                metrics = {
                    "status": status,
                    "dataset": "mnist5k",
                    "model": "M1",
                    "mode": mode,
                    "batch_size": bs,
                    "seed": seed,
                    "robust": {"attack": "fgsm", "norm": "linf", "eps": [0.1], "fraction": 0.5}
                    if mode != "clean"
                    else None,
                    "stop_rule": "target_loss",
                    "epochs": k["epochs"],
                    "steps": k["epochs"] * 4000 // bs,
                    "train_loss": 0.05,
                    "train_acc": k["train_acc"],
                    "test_loss": 0.2,
                    "test_acc": k["test_acc"],
                    "seconds": 1.0,
                    "lr": 0.02,
                    "reached_target": True,
                }
                (d / "metrics.json").write_text(json.dumps(metrics))
                ep = np.arange(1, k["epochs"] + 1)
                tracked = ep % 5 == 0
                pd.DataFrame(
                    {
                        "epoch": ep,
                        "train_loss": 1 / ep,
                        "test_loss": 1.2 / ep,
                        "lambda1": np.where(tracked, k["lambda"][0] * ep / 10, np.nan),
                        "grad_norm": np.where(tracked, 1 / ep, np.nan),
                    }
                ).to_csv(d / "history.csv", index=False)
                alpha = np.linspace(-1, 1, 11)
                # 11 x 11: the coarsest grid the 2-D figure draws contours for (figures.maps.MIN_POINTS)
                a2, b2 = np.meshgrid(np.linspace(-1, 1, 11), np.linspace(-1, 1, 11), indexing="ij")
                spec = {
                    "train": {
                        "eigenvalues": k["lambda"],
                        "residuals": [1e-4] * 4,
                        "method": "lanczos",
                        "samples": 100,
                        "matvecs": 40,
                        "grad_norm": 0.01,
                        "loss": 0.05,
                        "min_eigenvalue": -0.01 * k["lambda"][0],
                        "trace": 10 * k["lambda"][0],
                        "landscape_1d": {
                            "alpha": alpha.tolist(),
                            "train_loss": (0.1 + k["lambda"][0] * alpha**2 / 2).tolist(),
                            "test_loss": (0.3 + k["lambda"][0] * alpha**2 / 2).tolist(),
                        },
                        "landscape_2d": {
                            "alpha": np.linspace(-1, 1, 11).tolist(),
                            "beta": np.linspace(-1, 1, 11).tolist(),
                            "loss": (0.1 + k["lambda"][0] * (a2**2 + b2**2)).tolist(),
                        },
                    },
                    "seconds": 1.0,
                }
                (d / "spectrum.json").write_text(json.dumps(spec))
                inputs = {
                    s: {
                        "grad_norm_mean": k["grad_x"][s],
                        "grad_norm_std": 0.1,
                        "lambda1_mean": 2 * k["grad_x"][s],
                        "lambda1_std": 0.1,
                        "samples": 100,
                    }
                    for s in ("train", "test")
                }
                inputs["exact"] = [
                    {
                        "eigenvalues_top": [3.0 * (i + 1), 1.0],
                        "max_eig": 3.0 * (i + 1),
                        "min_eig": -1e-6,
                        "rank": 9,
                        "classes": 10,
                    }
                    for i in range(2)
                ]
                (d / "inputs.json").write_text(json.dumps(inputs))
                attack = {
                    s: {
                        "clean_acc": k["test_acc"] if s == "test" else k["train_acc"],
                        "fgsm_linf": {str(e): k["acc"][(e, s)] for e in REPORT_EPS},
                    }
                    for s in ("train", "test")
                }
                (d / "attack.json").write_text(json.dumps(attack))
                runs.append(
                    {
                        f: rel / f"{f}.{'csv' if f == 'history' else 'json'}"
                        for f in ("metrics", "history", "spectrum", "inputs", "attack")
                    }
                )
    cwd = os.getcwd()
    os.chdir(root)  # collect reads the relative paths, as the pipeline does from its working directory
    try:
        df = collect(runs)
    finally:
        os.chdir(cwd)
    (root / "results").mkdir(exist_ok=True)
    df.to_csv(root / "results/summary.csv", index=False)
    return df


def synthetic_claims() -> dict:
    """A claims.json in the format of report.claims: two claims, three checks, one threshold with its reason."""
    check = {
        "claim": "1",
        "check": "1a",
        "title": "log lambda_1 rises with log batch size",
        "experiment": "mnist5k_M1",
        "mode": "clean",
        "statistic": "slope",
        "effect": 0.4,
        "ci_low": 0.3,
        "ci_high": 0.5,
        "test": "bootstrap",
        "p_value": 0.01,
        "threshold": 0.0,
        "verdict": "holds",
        "detail": "slope 0.4",
        "missing": None,
        "figure": "lambda1_vs_batch",
        "unit": "",
    }
    gap = {
        **check,
        "claim": "4",
        "check": "4",
        "title": "test accuracy gap",
        "statistic": "difference",
        "effect": -0.05,
        "ci_low": -0.07,
        "ci_high": -0.03,
        "unit": "fraction",
        "figure": "accuracy_vs_batch",
        "verdict": "inconclusive",
        "missing": "runs at equal loss",
    }
    return {
        "claims": {
            "1": {
                "title": "Sharpness grows with batch size",
                "verdict": "holds",
                "per_experiment": {"mnist5k_M1": "holds"},
                "summary": "lambda_1 x4 from 32 to 1024",
            },
            "4": {
                "title": "Large batch tests worse",
                "verdict": "inconclusive",
                "per_experiment": {"mnist5k_M1": "inconclusive"},
                "summary": "gap -5 %, interval crosses 0",
            },
        },
        "checks": [
            check,
            {
                **check,
                "check": "1b",
                "statistic": "ratio",
                "effect": 4.0,
                "ci_low": 3.5,
                "ci_high": 4.6,
                "figure": None,
            },
            gap,
        ],
        "thresholds": {"min_ratio": {"value": 2.0, "reason": "the paper's 'at least twice as sharp'"}},
        "runs": 10,
        "runs_ok": 10,
    }


# --- comparing two runs ------------------------------------------------------------------------------------


def without_timings(value):
    """JSON content minus wall-clock fields (seconds, images_per_second): the only things allowed to differ
    between two runs of the same command."""
    if isinstance(value, dict):
        return {k: without_timings(v) for k, v in value.items() if "second" not in k and "time" not in k}
    if isinstance(value, list):
        return [without_timings(v) for v in value]
    return value
