"""config/paper.yaml end to end, in miniature: `lbhessian miniature` derives the paper's grid with only the sizes
shrunk, the real Snakefile runs it to results/report.html on small local copies of MNIST, CIFAR-10 and CIFAR-100
(torchvision's formats, checksums stated in data.checksums), and the SLURM profile's plan of the full paper.yaml
asks a GPU for exactly the per-run steps. About 150 jobs: a few minutes on 2 cores."""

import json
import re
import subprocess
import sys

import pandas as pd
import pytest
import torch
import yaml

from helpers.datasets import write_cifar, write_mnist
from helpers.workflow import ROOT, run_dir, snakemake
from lbhessian.core import config, miniature
from lbhessian.core.checkpoint import load_checkpoint
from lbhessian.core.data import load_prepared
from lbhessian.core.results import eps_key
from lbhessian.report import figures

pytestmark = pytest.mark.slow

PAPER = ROOT / "config" / "paper.yaml"
PER_RUN_STEPS = {"train", "spectrum", "inputs", "attack"}
REPORT_STEPS = {"data", "collect", "figures", "tables", "claims", "page"}


@pytest.fixture(scope="module")
def paper_miniature(tmp_path_factory):
    """The miniature of config/paper.yaml run once through the real Snakefile; returns (workdir, config)."""
    workdir = tmp_path_factory.mktemp("paper_miniature")
    local = workdir / "local"
    sums = {
        "mnist": write_mnist(local / "mnist", miniature.TRAIN_SIZE, miniature.TEST_SIZE),
        "cifar10": write_cifar(local / "cifar10", 10, miniature.TRAIN_SIZE, miniature.TEST_SIZE),
        "cifar100": write_cifar(local / "cifar100", 100, miniature.TRAIN_SIZE, miniature.TEST_SIZE),
    }
    out = workdir / "miniature.yaml"
    dirs = [f"--local-dir={name}={local / name}" for name in sums]
    cmd = [sys.executable, "-m", "lbhessian", "miniature", "--config", str(PAPER), "--out", str(out), *dirs]
    subprocess.run(cmd, check=True, cwd=workdir, capture_output=True)
    cfg = yaml.safe_load(out.read_text())
    cfg["data"]["checksums"] = sums  # what a user states for their own copies
    out.write_text(yaml.safe_dump(cfg, sort_keys=False))
    snakemake(workdir, "--configfile", str(out), "--cores", "2", timeout=1800)
    return workdir, config.load(out)


def experiments(cfg):
    return sorted({f"{e['dataset']}_{e['model']}" for e in cfg["train"]["experiments"]})


def test_every_experiment_has_its_runs_rows_figures_tables_and_claim_checks(paper_miniature):
    workdir, cfg = paper_miniature
    results = workdir / cfg["results"]
    runs = config.runs(cfg)
    assert len(experiments(cfg)) == 6 and len(runs) == 36  # 6 experiments x (clean + 2 modes) x (micro, full)
    for r in runs:
        d = run_dir(workdir, cfg, r)
        for name in ("checkpoint.pt", "metrics.json", "spectrum.json", "inputs.json", "attack.json"):
            assert (d / name).stat().st_size > 0, d / name
        assert json.loads((d / "metrics.json").read_text())["status"] == "ok", d
    summary = pd.read_csv(results / "summary.csv")
    rows = summary.groupby(["dataset", "model", "mode", "batch_label"]).size()
    assert len(summary) == len(runs) and (rows == 1).all()
    for exp in experiments(cfg):
        dataset, model = exp.split("_")
        assert set(summary.query("dataset == @dataset and model == @model")["mode"]) == {
            "clean",
            "fgsm_small",
            "fgsm_large",
        }
        for kind in figures.FIGURES:
            assert (results / "figures" / exp / f"{kind}.png").stat().st_size > 0, (exp, kind)
        table = pd.read_csv(results / "tables" / f"{exp}.csv")
        assert len(table) > 0, exp
    claims = json.loads((results / "claims.json").read_text())
    assert claims["runs"] == claims["runs_ok"] == len(runs)
    for claim, verdict in claims["claims"].items():
        assert set(verdict["per_experiment"]) == set(experiments(cfg)), claim
    html = (results / "report.html").read_text()
    for exp in experiments(cfg):
        assert exp in html, exp


def test_full_and_accumulated_batches_trained_with_the_sizes_they_claim(paper_miniature):
    """The full batch is gradient descent on the whole (miniature) training set, accumulated from micro-batches
    with ghost BatchNorm as paper.yaml says (micro_batch), for every experiment and mode; the step budget
    (stop.min_steps) gives it more steps than its epochs."""
    workdir, cfg = paper_miniature
    for r in config.runs(cfg):
        metrics = json.loads((run_dir(workdir, cfg, r) / "metrics.json").read_text())
        assert metrics["train_size"] == miniature.TRAIN_SIZE and metrics["micro_batch"] == miniature.MICRO
        if r["batch"] == "full":
            assert metrics["batch_size"] == miniature.TRAIN_SIZE and metrics["batch_label"] == "full"
            assert metrics["steps"] == max(miniature.EPOCHS, miniature.MIN_STEPS), r
        else:
            assert metrics["batch_size"] == int(r["batch"]) == miniature.MICRO
            assert metrics["steps"] == miniature.EPOCHS * miniature.TRAIN_SIZE // miniature.MICRO, r
        _, run, _, _ = load_checkpoint(run_dir(workdir, cfg, r) / "checkpoint.pt")
        # the checkpoint keeps the run's config as the grid names it ("full"); metrics.json the size it resolved to
        assert str(run["batch_size"]) == metrics["batch_label"] and run["micro_batch"] == miniature.MICRO


def test_each_data_sets_attacks_used_its_own_eps_grid(paper_miniature):
    workdir, cfg = paper_miniature
    grids = set()
    for r in config.runs(cfg):
        want = config.attack_settings(cfg, r["dataset"], r["model"])
        attack = json.loads((run_dir(workdir, cfg, r) / "attack.json").read_text())
        for split in ("train", "test"):
            assert set(attack[split]["fgsm_linf"]) == {eps_key(e) for e in want["fgsm_linf"]}, r
            assert set(attack[split]["fgsm_l2"]) == {eps_key(e) for e in want["fgsm_l2"]}, r
        grids.add((r["dataset"], tuple(want["fgsm_linf"])))
        robust = json.loads((run_dir(workdir, cfg, r) / "metrics.json").read_text())["robust"]
        exp = next(e for e in cfg["train"]["experiments"] if (e["dataset"], e["model"]) == (r["dataset"], r["model"]))
        modes = {m["name"]: m["eps"] for m in config.robust_modes(cfg, exp)}
        assert (robust or {}).get("eps") == modes.get(r["mode"]), r
    assert len({g for _, g in grids}) == 2  # MNIST's grid and CIFAR's, each from paper.yaml


def test_cifar100_keeps_its_100_classes_through_data_training_and_report(paper_miniature):
    workdir, cfg = paper_miniature
    train, test, info = load_prepared(workdir / cfg["data"]["root"] / "prepared" / "cifar100.pt")
    assert info["classes"] == 100 and int(train.y.max()) == 99
    for r in config.runs(cfg):
        if r["dataset"] != "cifar100":
            continue
        model, _, data_info, _ = load_checkpoint(run_dir(workdir, cfg, r) / "checkpoint.pt")
        with torch.no_grad():
            logits = model(torch.zeros(2, *data_info["shape"]))
        assert data_info["classes"] == 100 and logits.shape == (2, 100), r
    summary = pd.read_csv(workdir / cfg["results"] / "summary.csv")
    assert (summary["dataset"] == "cifar100").sum() == 6


def test_slurm_plan_of_paper_yaml_asks_a_gpu_for_every_per_run_job_and_none_for_the_report(tmp_path):
    """The SLURM profile's dry run of the full paper.yaml (1,088 jobs): every train, spectrum, inputs and attack
    job asks a GPU; data and the report steps none."""
    profile = ROOT / "profiles" / "slurm"
    proc = snakemake(tmp_path, "--configfile", str(PAPER), "--profile", str(profile), "-n", timeout=900)
    log = proc.stdout + proc.stderr
    jobs = re.findall(r"^ *rule (\w+):\n(?: +.*\n)*? +resources: (.*)$", log, re.MULTILINE)
    counts = pd.Series([rule for rule, _ in jobs]).value_counts().to_dict()
    n_runs = len(config.runs(config.load(PAPER)))
    assert n_runs == 270 and {s: counts.get(s) for s in PER_RUN_STEPS} == dict.fromkeys(PER_RUN_STEPS, n_runs)
    assert {s: counts.get(s) for s in REPORT_STEPS} == {"data": 3, **dict.fromkeys(REPORT_STEPS - {"data"}, 1)}
    for rule, resources in jobs:
        if rule in PER_RUN_STEPS:
            assert re.search(r"\bgpu=1\b", resources), (rule, resources)
        elif rule in REPORT_STEPS:
            assert "gpu=" not in resources.replace("gpu_slots=0", ""), (rule, resources)
