"""Run files with known values, written with the project's own writers (core.io) under the names of
core.results.RUN_FILES: a grid for the collect tests (``make_runs``) and a small experiment for the report
tests (``synthetic_results``, values from ``known``), both through ``write_run``."""

import math
import os
from pathlib import Path

import numpy as np
import pandas as pd

from lbhessian.core.io import write_json, write_text
from lbhessian.core.results import RUN_FILES
from lbhessian.report.summary import collect


def write_run(directory: Path, *, metrics: dict, history: pd.DataFrame, spectrum: dict, inputs: dict, attack: dict):
    """A run's five files, as the train and measurement steps write them; returns {kind: path} as collect takes
    them."""
    files = {kind: Path(directory) / name for kind, name in RUN_FILES.items()}
    write_json(files["metrics"], metrics)
    write_text(files["history"], history.to_csv(index=False))
    for kind, content in (("spectrum", spectrum), ("inputs", inputs), ("attack", attack)):
        write_json(files[kind], content)
    return files


# --- a grid of runs for the collect tests -------------------------------------------------------------------

K = 5  # eigenvalues per run
EPS = {"fgsm_linf": [0.05, 0.1, 0.2], "fgsm_l2": [1.0], "pgd_linf": [0.1]}


def lam1(bs, mode="clean", rising=True):
    """Known lambda_1: x4 from batch 32 to 1024 (or /4 when not rising); robust training halves it."""
    r = (bs / 32) ** 0.4 if rising else (32 / bs) ** 0.4
    return 2.0 * r * (0.5 if mode != "clean" else 1.0)


def make_run(run_dir: Path, *, dataset, model, mode, bs, seed, rising=True, status="ok", label=None, **over) -> dict:
    """Write the five per-run files with values that follow from (bs, mode, seed, rising); returns their paths
    as collect takes them."""
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
    epochs = np.arange(1, 6)
    history = pd.DataFrame(
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
    )
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
    robust_gain = 1.5 if mode != "clean" else 1.0
    attack = {"seconds": 2.0, "images_per_second": 500.0}
    for split in ("train", "test"):
        block = {"samples": 100, "clean_acc": test_acc}
        for att, epss in EPS.items():
            block[att] = {str(e): min(1.0, test_acc * math.exp(-5 * e * grow) * robust_gain) for e in epss}
        attack[split] = block
    return write_run(run_dir, metrics=metrics, history=history, spectrum=spectrum, inputs=inputs, attack=attack)


def make_runs(
    results: Path,
    *,
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
                files.append(
                    make_run(
                        runs / dataset / model / mode / f"bs{labels.get(bs, bs)}" / f"seed{seed}",
                        dataset=dataset,
                        model=model,
                        mode=mode,
                        bs=bs,
                        seed=seed,
                        rising=rising,
                        label=labels.get(bs),
                        **over,
                    )
                )
    return files


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
    root: Path, *, batch_sizes=(32, 256, 1024), seeds=(0, 1), robust_bs=(32, 1024), diverged=(), robust=("fgsm",)
):
    """Write every per-run file of a small mnist5k_M1 grid under root/results/runs and collect summary.csv
    (relative file paths, as the pipeline writes them); ``diverged``: (bs, seed) runs with status diverged;
    ``robust``: the names of the robust modes (each at ``robust_bs``; the default config has two)."""
    runs = []
    for mode, sizes in (("clean", batch_sizes), *((r, robust_bs) for r in robust)):
        for bs in sizes:
            for seed in seeds:
                k = known(bs, seed, mode)
                rel = Path("results/runs/mnist5k/M1") / mode / f"bs{bs}" / f"seed{seed}"
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
                ep = np.arange(1, k["epochs"] + 1)
                tracked = ep % 5 == 0
                history = pd.DataFrame(
                    {
                        "epoch": ep,
                        "train_loss": 1 / ep,
                        "test_loss": 1.2 / ep,
                        "lambda1": np.where(tracked, k["lambda"][0] * ep / 10, np.nan),
                        "grad_norm": np.where(tracked, 1 / ep, np.nan),
                    }
                )
                alpha = np.linspace(-1, 1, 11)
                # 11 x 11: the coarsest grid the 2-D figure draws contours for (figures.maps.MIN_POINTS)
                a2, b2 = np.meshgrid(np.linspace(-1, 1, 11), np.linspace(-1, 1, 11), indexing="ij")
                spectrum = {
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
                attack = {
                    s: {
                        "clean_acc": k["test_acc"] if s == "test" else k["train_acc"],
                        "fgsm_linf": {str(e): k["acc"][(e, s)] for e in REPORT_EPS},
                    }
                    for s in ("train", "test")
                }
                files = write_run(
                    root / rel, metrics=metrics, history=history, spectrum=spectrum, inputs=inputs, attack=attack
                )
                runs.append({kind: path.relative_to(root) for kind, path in files.items()})
    cwd = os.getcwd()
    os.chdir(root)  # collect reads the relative paths, as the pipeline does from its working directory
    try:
        df = collect(runs)
    finally:
        os.chdir(cwd)
    write_text(root / "results/summary.csv", df.to_csv(index=False))
    return df
