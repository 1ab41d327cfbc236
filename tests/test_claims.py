"""claims: verdicts computed from a summary with known values; flipping the numbers flips the verdicts."""

import json

import pytest
from test_collect import make_runs

from lbhessian.core.errors import LbhError
from lbhessian.report.claims import FAILS, HOLDS, NO_DATA, evaluate, load_report_config, spearman, to_markdown
from lbhessian.report.summary import collect, read_summary


def _summary(tmp_path, **kw):
    df = collect(make_runs(tmp_path / "results", **kw), relative_to=tmp_path)
    df.to_csv(tmp_path / "summary.csv", index=False)
    return read_summary(tmp_path / "summary.csv")


def _checks(result):
    return {(r["check"], r["mode"]): r for r in result["checks"]}


def test_rising_sharpness_holds_and_flipped_numbers_fail(tmp_path):
    res = evaluate(_summary(tmp_path / "up"))
    verdicts = {k: v["verdict"] for k, v in res["claims"].items()}
    assert verdicts["1"] == verdicts["2"] == verdicts["3"] == verdicts["4"] == verdicts["5"] == HOLDS
    assert verdicts["6"] == verdicts["8"] == HOLDS
    assert verdicts["7"] == NO_DATA  # one robust eps: the eps trend (7c) cannot be judged, 7a/7b hold
    c = _checks(res)
    assert c[("1b", "clean")]["value"] == pytest.approx(4.0)  # 32**0.4; the seed jitter cancels
    assert c[("1a", "clean")]["value"] == pytest.approx(spearman([32, 32, 256, 256, 1024, 1024], [1, 2, 3, 4, 5, 6]))
    assert c[("7a", "fgsm")]["verdict"] == HOLDS and c[("7a", "fgsm")]["value"] == pytest.approx(0.5)
    assert c[("7b", "fgsm")]["verdict"] == HOLDS

    flipped = evaluate(_summary(tmp_path / "down", rising=False))
    verdicts = {k: v["verdict"] for k, v in flipped["claims"].items()}
    assert verdicts["1"] == verdicts["2"] == verdicts["4"] == verdicts["5"] == FAILS
    assert _checks(flipped)[("1a", "clean")]["value"] < 0


def test_measurement_checks_flip_with_their_numbers(tmp_path):
    bad = evaluate(_summary(tmp_path, max_rel_diff=1e-2, min_eig=-0.5, rank=12, grad_norm=3.0))
    c = _checks(bad)
    assert c[("8", "all")]["verdict"] == FAILS and c[("8", "all")]["value"] == pytest.approx(1e-2)
    assert c[("6a", "all")]["verdict"] == FAILS and c[("6b", "all")]["verdict"] == FAILS
    assert c[("3c", "all")]["verdict"] == FAILS and c[("3a", "all")]["verdict"] == HOLDS
    assert bad["claims"]["6"]["verdict"] == FAILS


def test_one_batch_size_one_seed_is_not_enough_data(tmp_path):
    res = evaluate(_summary(tmp_path, batch_sizes=(256,), seeds=(0,), robust_bs=()))
    for claim in ("1", "2", "4", "5", "7"):
        assert res["claims"][claim]["verdict"] == NO_DATA, claim
    assert res["claims"]["8"]["verdict"] == HOLDS  # per-run checks still work on a single run


def test_thresholds_come_from_the_config(tmp_path):
    df = _summary(tmp_path)
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("attack: {headline_eps: 0.05}\nreport:\n  claims: {min_ratio: 10.0, lanczos_power_tol: 1.0e-6}\n")
    settings = load_report_config(cfg)
    res = evaluate(df, settings)
    c = _checks(res)
    assert c[("1b", "clean")]["verdict"] == FAILS and c[("1b", "clean")]["threshold"] == ">= 10.0"
    assert c[("8", "all")]["verdict"] == FAILS
    assert "eps 0.05" in c[("5a", "clean")]["statistic"]
    assert res["thresholds"]["min_spearman"] == 0.5  # default kept for keys the config leaves out
    md = to_markdown(res)
    assert "| 1b | mnist5k/M1 | clean |" in md and "**fails**" in md


def test_bad_config_and_all_diverged(tmp_path):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("report:\n  claims: {min_ratoi: 2}\n")
    with pytest.raises(LbhError, match=r"report.claims.min_ratoi: unknown key"):
        load_report_config(cfg)
    cfg.write_text("report:\n  claims: {min_ratio: two}\n")
    with pytest.raises(LbhError, match=r"report.claims.min_ratio: expected a number"):
        load_report_config(cfg)
    df = _summary(
        tmp_path,
        batch_sizes=(32, 1024),
        seeds=(0,),
        robust_bs=(),
    )
    df["status"] = "diverged"
    res = evaluate(df)
    assert {v["verdict"] for v in res["claims"].values()} == {NO_DATA}


def test_cli_collect_claims_tables(tmp_path, monkeypatch):
    from lbhessian.cli import main

    make_runs(tmp_path / "results", batch_sizes=(32, 1024), seeds=(0,), robust_bs=())
    monkeypatch.chdir(tmp_path)
    main(
        [
            "collect",
            "--runs",
            "results/runs",
            "--out",
            "results/summary.csv",
            "--metrics",
            "results/metrics.json",
            "--plots",
            "results/plots",
        ]
    )
    assert json.loads((tmp_path / "results/metrics.json").read_text())["runs"] == 2
    main(
        [
            "claims",
            "--summary",
            "results/summary.csv",
            "--out",
            "results/claims.json",
            "--markdown",
            "results/claims.md",
            "--html",
            "results/claims.html",
        ]
    )
    claims = json.loads((tmp_path / "results/claims.json").read_text())
    assert claims["claims"]["2"]["verdict"] == HOLDS
    assert claims["claims"]["1"]["verdict"] == NO_DATA  # two runs: a rank correlation needs >= 3
    assert "<table" in (tmp_path / "results/claims.html").read_text()
    main(["tables", "--summary", "results/summary.csv", "--out", "results/tables"])
    md = (tmp_path / "results/tables/mnist5k_M1.md").read_text()
    assert "| clean | 1024 | 0 |" in md
    (tmp_path / "results/empty.csv").write_text("")
    with pytest.raises(SystemExit) as e:
        main(["claims", "--summary", "results/empty.csv", "--out", "results/x.json"])
    assert e.value.code == 2
