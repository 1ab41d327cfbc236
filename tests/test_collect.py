"""collect: per-run files -> summary.csv, headline metrics and plot data, on the synthetic grid of
helpers.runs.make_runs (known values, so every assertion can be checked by hand)."""

import json
import math

import pandas as pd
import pytest

from helpers.runs import make_runs
from lbhessian.core.errors import LbhError
from lbhessian.core.io import write_json
from lbhessian.core.results import acc_column, parse_acc_column
from lbhessian.report.dvc import PLOTS, headline_metrics, write_plot_data
from lbhessian.report.summary import collect, read_summary


def test_collect_one_row_per_run_with_the_known_values(tmp_path):
    runs = make_runs(tmp_path / "results")
    df = collect(runs)
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
    assert row["spectrum_file"] == str(tmp_path / "results/runs/mnist5k/M1/clean/bs1024/seed0/spectrum.json")
    robust = df[df["mode"] == "fgsm"]
    assert (
        robust["robust"].all()
        and (robust["robust_eps"] == 0.1).all()
        and not df.loc[df["mode"] == "clean", "robust"].any()
    )
    # Columns in a readable order: keys first, eigenvalues in numeric order, the run's files last.
    assert list(df.columns[:5]) == ["dataset", "model", "mode", "batch_size", "seed"]
    assert all(c.endswith("_file") for c in df.columns[-5:])


def test_summary_round_trip_metrics_and_plot_data(tmp_path):
    runs = make_runs(tmp_path / "results", batch_sizes=(32, 1024), seeds=(0,), robust_bs=())
    df = collect(runs)
    df.to_csv(tmp_path / "summary.csv", index=False)
    back = read_summary(tmp_path / "summary.csv")
    assert back["batch_size"].tolist() == [32, 1024] and back["robust"].dtype == bool
    m = headline_metrics(back, headline_eps=0.1)
    assert m["runs"] == 2 and m["diverged"] == 0 and m["fgsm_eps"] == 0.1
    assert m["mnist5k/M1/clean"]["bs1024"]["lambda_1"] == pytest.approx(8.0)
    paths = {name: tmp_path / "plots" / f"{name}.csv" for name in PLOTS}
    write_plot_data(back, list(paths.values()), headline_eps=0.1)
    curves = pd.read_csv(paths["training_curves"])
    assert len(curves) == 2 * 5 and {"batch_size", "epoch", "lambda1", "grad_norm"} <= set(curves.columns)
    acc = pd.read_csv(paths["accuracy_vs_batch"])
    assert acc["fgsm_acc_test"].iloc[0] > acc["fgsm_acc_test"].iloc[1]
    assert pd.read_csv(paths["lambda1_vs_batch"])["lambda_1"].tolist() == pytest.approx([2.0, 8.0])


def test_missing_optional_files_and_diverged_runs_leave_empty_cells(tmp_path):
    runs = make_runs(tmp_path / "results", batch_sizes=(32, 1024), seeds=(0,), robust_bs=())
    small, big = runs
    small["attack"].unlink()
    small["inputs"].unlink()
    metrics = json.loads(big["metrics"].read_text())
    write_json(big["metrics"], {**metrics, "status": "diverged", "test_acc": None})
    write_json(big["spectrum"], {"status": "skipped", "reason": "training diverged"})
    df = collect(runs).set_index("batch_size")
    assert math.isnan(df.loc[32, "input_lambda1_test"]) and math.isnan(df.loc[32, "clean_acc_test"])
    assert df.loc[1024, "status"] == "diverged" and math.isnan(df.loc[1024, "lambda_1"])
    assert math.isnan(df.loc[1024, "test_acc"])
    assert headline_metrics(df.reset_index())["diverged"] == 1


def test_bad_inputs_give_one_line_errors(tmp_path):
    with pytest.raises(LbhError, match="empty list of runs"):
        collect([])
    runs = make_runs(tmp_path / "results", batch_sizes=(32,), seeds=(0,), robust_bs=())
    with pytest.raises(LbhError, match="metrics.json: file not found"):
        collect([{**runs[0], "metrics": tmp_path / "nope" / "metrics.json"}])
    runs[0]["spectrum"].write_text("{not json")
    with pytest.raises(LbhError, match=r"spectrum.json: not valid JSON"):
        collect(runs)
    summary = tmp_path / "summary.csv"
    summary.write_text("")
    with pytest.raises(LbhError, match="summary table is empty"):
        read_summary(summary)
    summary.write_text(
        "dataset,model,mode,batch_size,seed,status,metrics_file,history_file,spectrum_file,inputs_file,attack_file\n"
    )
    with pytest.raises(LbhError, match="has no rows"):
        read_summary(summary)
    summary.write_text("dataset,model,batch_size,seed\nmnist5k,M1,32,0\n")
    with pytest.raises(LbhError, match="missing column.*mode.*status"):
        read_summary(summary)


def test_acc_column_names_round_trip():
    assert acc_column("fgsm_linf", "0.10", "test") == "acc_fgsm_linf_eps0.1_test"
    assert parse_acc_column("acc_pgd_linf_eps0.0313725_train") == ("pgd_linf", 0.0313725, "train")
    assert parse_acc_column("clean_acc_test") is None


def test_negative_eigenvalues_within_the_noise_floor_count_as_zero(tmp_path):
    """An exact input Hessian at a saturated softmax has max_eig near float64's floor (rank_tol); a min_eig inside
    that floor is round-off, not negative curvature (claim 6a would otherwise fail on noise). One beyond it counts."""
    inside = collect(make_runs(tmp_path / "a", batch_sizes=(32,), seeds=(0,), robust_bs=(), rank_tol=1e-6))
    assert inside.loc[0, "input_exact_min_rel"] == 0.0
    beyond = collect(make_runs(tmp_path / "b", batch_sizes=(32,), seeds=(0,), robust_bs=(), rank_tol=1e-8))
    assert beyond.loc[0, "input_exact_min_rel"] == pytest.approx(-1e-7 / 3.0)
