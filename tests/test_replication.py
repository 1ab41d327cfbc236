"""Replications: the derived config of a replication, and verdicts compared across replications."""

import json
import os
import subprocess
import sys

import pytest
import yaml

from helpers.workflow import ROOT, SMOKE, snakemake
from lbhessian.core.config import load
from lbhessian.core.errors import LbhError
from lbhessian.report.replication import UNSTABLE, compare, overall, to_markdown
from lbhessian.steps.replicate import derive


def test_a_replication_changes_only_the_seeds_results_and_kernels():
    raw = yaml.safe_load(SMOKE.read_text())
    rep = derive(raw, [7, 8], "portable")
    assert rep["train"]["seeds"] == [7, 8] and rep["runtime"]["kernels"] == "portable"
    assert rep["results"] == "results/replications/seeds-7-8-portable"
    for key in ("train", "runtime", "results"):
        rep.pop(key), raw.pop(key)
    assert rep == raw and derive(yaml.safe_load(SMOKE.read_text()), [7])["results"] == "results/replications/seeds-7"
    with pytest.raises(LbhError, match="overlaps the design's own seeds"):
        derive(yaml.safe_load(SMOKE.read_text()), [0, 1])
    with pytest.raises(LbhError, match="distinct seeds"):
        derive(yaml.safe_load(SMOKE.read_text()), [3, 3])


def test_a_claim_whose_verdict_differs_between_replications_is_unstable(tmp_path):
    base = {"checks": [{"claim": "1", "check": "1b", "effect": 4.4, "ci_low": 3.2, "ci_high": 6.0}]}
    paths = {}
    for name, verdict in (("design", "holds"), ("seeds-20-23", "holds"), ("seeds-30-33", "inconclusive")):
        claims = {c: {"verdict": "holds"} for c in "12345678"}
        claims["1"] = {"verdict": verdict}
        paths[name] = tmp_path / f"{name}.json"
        paths[name].write_text(json.dumps({**base, "claims": claims}))
    result = compare(paths)
    assert result["claims"]["1"]["overall"] == UNSTABLE and result["claims"]["2"]["overall"] == "holds"
    assert result["claims"]["1"]["effects"]["design"] == "1b 4.4 [3.2, 6]"
    assert overall(["fails", "fails"]) == "fails" and overall([]) == UNSTABLE
    table = to_markdown(result)
    assert "| design | seeds-20-23 | seeds-30-33 |" in table and "**unstable**" in table


@pytest.mark.slow
def test_replicate_reruns_the_design_on_other_seeds_in_its_own_folder(smoke_run):
    """`make replicate`'s three commands on the smoke design: the replication's runs train seed 1 into
    results/replications/seeds-1/ (the design's own run files untouched), and `lbhessian replications` puts
    both sets of verdicts side by side, every claim a row."""
    workdir, _ = smoke_run
    design = sorted((workdir / "results" / "runs").rglob("checkpoint.pt"))
    before = {p: p.stat().st_mtime_ns for p in design}

    def lbhessian(*args):
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
        cmd = [sys.executable, "-m", "lbhessian", *args]
        return subprocess.run(cmd, cwd=workdir, text=True, capture_output=True, check=True, env=env).stdout

    rep = workdir / lbhessian("replicate", "--config", str(SMOKE), "--seeds", "1").strip()
    assert rep == workdir / "results/replications/seeds-1/config.yaml" and load(rep)["train"]["seeds"] == [1]
    snakemake(workdir, "--configfile", str(rep), "--cores", "2")
    runs = sorted((workdir / "results/replications/seeds-1/runs").rglob("metrics.json"))
    assert runs and all(json.loads(p.read_text())["seed"] == 1 for p in runs)
    assert {p: p.stat().st_mtime_ns for p in design} == before
    table = lbhessian("replications", "--config", str(SMOKE))
    assert "| design | seeds-1 |" in table and all(f"| {c} " in table for c in "12345678")
    assert (workdir / "results/replications.json").exists()
