"""figures and tables from a summary with known values: every kind is drawn, any subset of the grid works."""

import re
import shutil
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import pytest
from test_collect import make_runs

from lbhessian.core.errors import LbhError
from lbhessian.report import figures
from lbhessian.report.summary import collect, read_summary
from lbhessian.report.tables import experiment_table, write_tables
from testing_helpers import SMOKE, check_report, snakemake

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
REPO = Path(__file__).resolve().parents[1]


def _summary(tmp_path, **kw):
    df = collect(make_runs(tmp_path / "results", **kw), relative_to=tmp_path)
    df.to_csv(tmp_path / "summary.csv", index=False)
    return read_summary(tmp_path / "summary.csv")


def _texts(fig):
    return " ".join([t.get_text() for ax in fig.axes for t in ax.texts] + [ax.get_title() for ax in fig.axes])


def _ctx(tmp_path):
    return {"base": tmp_path, "headline_eps": 0.1, "claims": {"input_psd_tol": 1e-3}, "config": {}, "path": None}


def test_every_figure_is_written_as_png_and_pdf(tmp_path):
    df = _summary(tmp_path, batch_sizes=(32, 1024), seeds=(0, 1), robust_bs=(1024,))
    written = figures.make_figures(df, tmp_path / "fig", base=tmp_path, names=["mnist5k_M1", "cifar10_C1"])
    assert len(written) == 2 * 2 * len(figures.FIGURES)
    for kind in figures.FIGURES:
        png = tmp_path / "fig" / "mnist5k_M1" / f"{kind}.png"
        assert png.read_bytes()[:8] == PNG_MAGIC, kind
        assert (tmp_path / "fig" / "mnist5k_M1" / f"{kind}.pdf").read_bytes()[:4] == b"%PDF"
    # A declared experiment without runs still gets its files (the workflow's outputs must exist).
    assert (tmp_path / "fig" / "cifar10_C1" / "lambda1_vs_batch.png").exists()


def test_figures_show_the_data_they_are_given(tmp_path):
    df = _summary(tmp_path, batch_sizes=(32, 1024), seeds=(0, 1), robust_bs=())
    fig = figures.fig_lambda1_vs_batch(df, _ctx(tmp_path))
    # The mean line passes through the seed means of lambda_1: 2 * 1.01 and 8 * 1.01.
    ys = [line.get_ydata() for line in fig.axes[0].get_lines() if len(line.get_ydata()) == 2]
    assert any(pytest.approx([2.02, 8.08]) == list(y) for y in ys)
    assert "not enough data" not in _texts(fig)
    plt.close(fig)
    fig = figures.fig_landscape_2d(df, _ctx(tmp_path))
    titles = [ax.get_title() for ax in fig.axes]
    assert any("batch 32" in t for t in titles) and any("batch 1024" in t for t in titles)
    plt.close(fig)


def test_one_batch_size_one_seed_says_not_enough_data(tmp_path):
    df = _summary(tmp_path, batch_sizes=(256,), seeds=(0,), robust_bs=())
    ctx = _ctx(tmp_path)
    for kind in ("lambda1_vs_batch", "accuracy_vs_batch", "landscape_2d"):
        fig = figures.DRAW[kind](df, ctx)
        assert "not enough data" in _texts(fig), kind
        plt.close(fig)
    # Tracking off: history.csv without lambda1 -> the dynamics panels say so instead of failing.
    hist = tmp_path / df["run_dir"].iloc[0] / "history.csv"
    pd.read_csv(hist).drop(columns=["lambda1", "grad_norm"]).to_csv(hist, index=False)
    fig = figures.fig_training_dynamics(df, ctx)
    assert _texts(fig).count("not enough data") == 2
    plt.close(fig)
    with pytest.raises(LbhError, match="figure kind"):
        figures.make_figures(df, tmp_path / "fig", kinds=["pie_chart"])


def test_tables_in_paper_layout(tmp_path):
    df = _summary(tmp_path, batch_sizes=(32, 1024), seeds=(0, 1), robust_bs=(1024,))
    num = experiment_table(df)
    assert list(num[["mode", "batch_size"]].itertuples(index=False, name=None)) == [
        ("clean", 32),
        ("clean", 1024),
        ("fgsm", 1024),
    ]
    clean_big = num[(num["mode"] == "clean") & (num["batch_size"] == 1024)].iloc[0]
    assert clean_big["seeds"] == "0,1" and clean_big["lambda_1_mean"] == pytest.approx(8.08)
    assert clean_big["lambda_1_sd"] == pytest.approx(pd.Series([8.0, 8.16]).std())
    assert "acc_fgsm_linf_eps0.1_test_mean" in num.columns
    write_tables(df, tmp_path / "tables")
    md = (tmp_path / "tables" / "mnist5k_M1.md").read_text()
    assert "| clean | 1024 | 0,1 |" in md and "8.08 ± 0.11" in md and "FGSM ε=0.1 test %" in md
    assert "<table" in (tmp_path / "tables" / "all.html").read_text()
    back = pd.read_csv(tmp_path / "tables" / "mnist5k_M1.csv")
    assert back["test_acc_mean"].iloc[0] == pytest.approx(0.98)


def test_workflow_lists_every_figure_kind():
    smk = (REPO / "workflow/rules/report.smk").read_text()
    listed = re.search(r"FIGURE_KINDS = \[(.*?)\]", smk, re.S).group(1)
    assert re.findall(r'"(\w+)"', listed) == figures.FIGURES
    for kind in figures.FIGURES:
        assert (REPO / f"workflow/report/fig_{kind}.rst").exists(), kind


@pytest.mark.slow
def test_snakemake_report_holds_every_figure_table_and_claim(tmp_path):
    """The report rules on runs shaped like the smoke grid, then `snakemake --report`: one offline HTML file."""
    shutil.copy(SMOKE, tmp_path / "smoke.yaml")
    # The smoke grid: batches 16, 128 and full (512 training images), fgsm at 16, one seed.
    make_runs(tmp_path / "results", batch_sizes=(16, 128, 512), seeds=(0,), robust_bs=(16,), labels={512: "full"})
    # Files for the upstream rules' inputs, so the DAG resolves without retraining.
    (tmp_path / "data/prepared").mkdir(parents=True)
    (tmp_path / "data/prepared/mnist5k.pt").write_bytes(b"")
    for p in (tmp_path / "results/runs").rglob("metrics.json"):
        (p.parent / "checkpoint.pt").write_bytes(b"")
    config = ("--configfile", str(tmp_path / "smoke.yaml"))
    snakemake(tmp_path, *config, "-c1", "--allowed-rules", "collect", "figures", "tables", "claims", timeout=600)
    snakemake(tmp_path, *config, "--report", "report.html", timeout=600)
    check_report((tmp_path / "report.html").read_text())
    assert "| 1 | **holds** |" in (tmp_path / "results/claims.md").read_text()
