"""benchmarks/bench_grid.py's hardware-independent half: product counts read from a results folder's
spectrum.json files, and the work of every step of config/paper.yaml (steps, products) from the config."""

import importlib.util
import json

import pytest

from helpers.workflow import ROOT
from lbhessian.core.config import load

spec = importlib.util.spec_from_file_location("bench_grid", ROOT / "benchmarks" / "bench_grid.py")
bench_grid = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench_grid)


def spectrum_json(path, power):
    path.parent.mkdir(parents=True)
    parts = {"lanczos": 40, "power": power, "trace": 20, "density": 128}
    doc = {
        split: {"eigenvalues": [3.0, 2.0], "matvecs_by_part": parts, "matvecs_total": sum(parts.values())}
        for split in ("train", "test")
    }
    path.write_text(json.dumps(doc))


def test_product_counts_come_from_the_results_folder(tmp_path):
    assert bench_grid.products_from_results(tmp_path) is None
    spectrum_json(tmp_path / "runs" / "a" / "spectrum.json", power=90)
    spectrum_json(tmp_path / "runs" / "b" / "spectrum.json", power=0)  # a run without the power check
    counts, origin = bench_grid.products_from_results(tmp_path)
    assert counts == {"lanczos": 40, "power": 90, "trace": 20, "density": 128, "min": 0}
    assert str(tmp_path) in origin and "2 spectrum.json" in origin and "(top-2)" in origin
    assert bench_grid.parse_products("lanczos=5,power=7")["power"] == 7
    with pytest.raises(SystemExit, match="--products"):
        bench_grid.parse_products("lanczos5")


def test_paper_work_counts_follow_the_config():
    """Per step of paper.yaml: 270 jobs each; a full CIFAR batch trains min_steps gradient-descent steps (the
    step budget); the power check runs on the first seed only (paper.yaml: check_power first_seed)."""
    cfg = load(ROOT / "config" / "paper.yaml")
    one = dict.fromkeys(("train_128", "train_large_true", "train_large_acc", "forward", "gradient"), 1e-6)
    costs = {m: {**one, "hvp": 1e-6, "hvp_cached": 1e-6, "hvp_used": 1e-6} for m in bench_grid.MODELS}
    counts = {"lanczos": 60, "power": 100, "trace": 20, "density": 128, "min": 0}
    est = bench_grid.estimate(cfg, costs, counts)
    assert {k: w["jobs"] for k, w in est["work"].items()} == dict.fromkeys(bench_grid.STEPS, 270)
    spec = {**cfg["spectrum"], "check_power": True}
    run = {"batch_size": "full", "stop": {"epochs": 90, "min_steps": 10000}, "eval_every": 1, "track": {}}
    work = bench_grid.run_work(run, cfg, spec, counts, n_train=50000, n_test=10000, d=3072)
    assert work["train"]["steps"] == 10000 and work["train"]["samples"] == 10000 * 50000
    assert work["spectrum"]["products"] == 2 * (60 + 100 + 20 + 128)  # train and test splits
    unchecked = bench_grid.run_work(
        run, cfg, {**spec, "check_power": False}, counts, n_train=50000, n_test=10000, d=3072
    )
    assert unchecked["spectrum"]["products"] == 2 * (60 + 20 + 128)
    assert sum(est["hours"].values()) > 0
