"""collect: per-run files -> summary.csv, headline metrics and plot data; plus the synthetic run writer
that the figure and claim tests share (known values, so every assertion can be checked by hand)."""

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lbhessian.report.summary import acc_column, collect, headline_metrics, parse_acc_column, read_summary, write_plot_data
from lbhessian.core.errors import LbhError

K = 5  # eigenvalues per run
EPS = {"fgsm_linf": [0.05, 0.1, 0.2], "fgsm_l2": [1.0], "pgd_linf": [0.1]}


def lam1(bs, mode="clean", rising=True):
    """Known lambda_1: x4 from batch 32 to 1024 (or /4 when not rising); robust training halves it."""
    r = (bs / 32) ** 0.4 if rising else (32 / bs) ** 0.4
    return 2.0 * r * (0.5 if mode != "clean" else 1.0)


def make_run(run_dir: Path, dataset, model, mode, bs, seed, rising=True, status="ok", label=None, **over):
    """Write the five per-run files with values that follow from (bs, mode, seed, rising)."""
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
            "rank_tol": 1e-6,
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
) -> Path:
    """A grid of runs under results/runs; returns the runs directory. labels: batch size -> directory label
    (e.g. {512: "full"} for the full-batch run, as the workflow names it)."""
    runs = results / "runs"
    labels = labels or {}
    for bs in batch_sizes:
        for mode in ["clean"] + (["fgsm"] if bs in robust_bs else []):
            for seed in seeds:
                make_run(
                    runs / dataset / model / mode / f"bs{labels.get(bs, bs)}" / f"seed{seed}",
                    dataset,
                    model,
                    mode,
                    bs,
                    seed,
                    rising=rising,
                    label=labels.get(bs),
                    **over,
                )
    return runs


def test_collect_one_row_per_run_with_the_known_values(tmp_path):
    runs = make_runs(tmp_path / "results")
    df = collect(runs, relative_to=tmp_path)
    assert len(df) == 3 * 2 + 2 * 2  # clean at 3 batch sizes, fgsm at 2, two seeds each
    row = df[(df["mode"] == "clean") & (df["batch_size"] == 1024) & (df["seed"] == 0)].iloc[0]
    assert row["lambda_1"] == pytest.approx(8.0)  # 2 * 32**0.4
    assert row["lambda_5"] == pytest.approx(8.0 * 0.4)
    assert row["power_max_rel_diff"] == pytest.approx(1e-5)
    assert row["landscape_argmin_alpha"] == pytest.approx(0.0)
    assert row["landscape_alpha_step"] == pytest.approx(0.1)
    assert row["input_exact_rank_excess"] == 0
    assert row["input_exact_min_rel"] == pytest.approx(-1e-7 / (3.0 * 32**0.3))
    assert row[acc_column("fgsm_linf", "0.1", "test")] == pytest.approx(row["test_acc"] * math.exp(-0.5 * 32**0.3))
    assert row["total_seconds"] == pytest.approx(10 + 3 + 1 + 2)
    assert row["run_dir"] == "results/runs/mnist5k/M1/clean/bs1024/seed0"
    robust = df[df["mode"] == "fgsm"]
    assert (
        robust["robust"].all()
        and (robust["robust_eps"] == 0.1).all()
        and not df.loc[df["mode"] == "clean", "robust"].any()
    )
    # Columns in a readable order: keys first, eigenvalues in numeric order, run_dir last.
    assert list(df.columns[:5]) == ["dataset", "model", "mode", "batch_size", "seed"]
    assert df.columns[-1] == "run_dir"


def test_summary_round_trip_metrics_and_plot_data(tmp_path):
    runs = make_runs(tmp_path / "results", batch_sizes=(32, 1024), seeds=(0,), robust_bs=())
    df = collect(runs, relative_to=tmp_path)
    df.to_csv(tmp_path / "summary.csv", index=False)
    back = read_summary(tmp_path / "summary.csv")
    assert back["batch_size"].tolist() == [32, 1024] and back["robust"].dtype == bool
    m = headline_metrics(back, headline_eps=0.1)
    assert m["runs"] == 2 and m["diverged"] == 0 and m["fgsm_eps"] == 0.1
    assert m["mnist5k/M1/clean"]["bs1024"]["lambda_1"] == pytest.approx(8.0)
    paths = write_plot_data(back, tmp_path / "plots", base=tmp_path, headline_eps=0.1)
    curves = pd.read_csv(paths["training_curves"])
    assert len(curves) == 2 * 5 and {"batch_size", "epoch", "lambda1", "grad_norm"} <= set(curves.columns)
    acc = pd.read_csv(paths["accuracy_vs_batch"])
    assert acc["fgsm_acc_test"].iloc[0] > acc["fgsm_acc_test"].iloc[1]
    assert pd.read_csv(paths["lambda1_vs_batch"])["lambda_1"].tolist() == pytest.approx([2.0, 8.0])


def test_missing_optional_files_and_diverged_runs_leave_empty_cells(tmp_path):
    runs = make_runs(tmp_path / "results", batch_sizes=(32, 1024), seeds=(0,), robust_bs=())
    small = runs / "mnist5k/M1/clean/bs32/seed0"
    (small / "attack.json").unlink()
    (small / "inputs.json").unlink()
    big = runs / "mnist5k/M1/clean/bs1024/seed0"
    metrics = json.loads((big / "metrics.json").read_text())
    (big / "metrics.json").write_text(json.dumps({**metrics, "status": "diverged", "test_acc": None}))
    (big / "spectrum.json").write_text(json.dumps({"status": "skipped", "reason": "training diverged"}))
    df = collect(runs).set_index("batch_size")
    assert math.isnan(df.loc[32, "input_lambda1_test"]) and math.isnan(df.loc[32, "clean_acc_test"])
    assert df.loc[1024, "status"] == "diverged" and math.isnan(df.loc[1024, "lambda_1"])
    assert math.isnan(df.loc[1024, "test_acc"])
    assert headline_metrics(df.reset_index())["diverged"] == 1


def test_bad_inputs_give_one_line_errors(tmp_path):
    with pytest.raises(LbhError, match="runs directory not found"):
        collect(tmp_path / "nope")
    (tmp_path / "runs").mkdir()
    with pytest.raises(LbhError, match="no runs found"):
        collect(tmp_path / "runs")
    runs = make_runs(tmp_path / "results", batch_sizes=(32,), seeds=(0,), robust_bs=())
    (runs / "mnist5k/M1/clean/bs32/seed0/spectrum.json").write_text("{not json")
    with pytest.raises(LbhError, match=r"spectrum.json: not valid JSON"):
        collect(runs)
    summary = tmp_path / "summary.csv"
    summary.write_text("")
    with pytest.raises(LbhError, match="summary table is empty"):
        read_summary(summary)
    summary.write_text("dataset,model,mode,batch_size,seed,status,run_dir\n")
    with pytest.raises(LbhError, match="has no rows"):
        read_summary(summary)
    summary.write_text("dataset,model,batch_size,seed\nmnist5k,M1,32,0\n")
    with pytest.raises(LbhError, match="missing column.*mode.*status"):
        read_summary(summary)


def test_acc_column_names_round_trip():
    assert acc_column("fgsm_linf", "0.10", "test") == "acc_fgsm_linf_eps0.1_test"
    assert parse_acc_column("acc_pgd_linf_eps0.0313725_train") == ("pgd_linf", 0.0313725, "train")
    assert parse_acc_column("clean_acc_test") is None
