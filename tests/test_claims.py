"""claims: each statistic against a hand-computed case; planted effects hold, reversed ones fail (every
check's fails branch), missing data is inconclusive and says what is missing; claims.json's contract."""

import json
import math

import numpy as np
import pytest

from helpers.claims import synthetic, thresholds
from lbhessian.core.config import attack_settings, modes_for, run_config, validate
from lbhessian.core.errors import LbhError
from lbhessian.report import figures, stats
from lbhessian.report.claims import FAILS, HOLDS, INCONCLUSIVE, TITLES, evaluate, to_html, to_markdown

FIGURES = {*figures.FIGURES, None}  # a check names a figure the report draws, or none


def by_check(result):
    return {r["check"]: r for r in result["checks"]}


def test_trend_interval_equals_the_hand_computed_one():
    """x = 0,0,1,1,2,2, y = 0,2 | 1,5 | 3,5: level means 1, 3, 4, variances 2, 8, 2. Contrast weights
    n(x - 1) / 4 = -0.5, 0, 0.5: slope 1.5 (the least-squares slope), variance 0.25 + 0 + 0.25, Welch-
    Satterthwaite df 0.5^2 / (0.25^2 + 0.25^2) = 2, t(0.975, 2) = 4.302653. Catches pooled variances (OLS gives
    a narrower interval with df 4), a z quantile and a wrong df; the one-sided p-value is against the bar."""
    est = stats.trend([0, 0, 1, 1, 2, 2], [0, 2, 1, 5, 3, 5])
    half = 4.302653 * math.sqrt(0.5)
    assert est.effect == pytest.approx(1.5)
    assert (est.ci_low, est.ci_high) == pytest.approx((1.5 - half, 1.5 + half), rel=1e-6)
    t = 1.5 / math.sqrt(0.5)
    assert est.p_value == pytest.approx(0.5 * (1 - t / math.sqrt(2 + t * t)), rel=1e-6)  # t(2) tail, closed form
    barred = stats.trend([0, 0, 1, 1, 2, 2], [0, 2, 1, 5, 3, 5], bar=1.5)
    assert barred.p_value == pytest.approx(0.5) and barred.ci_low == est.ci_low
    one = stats.trend([0, 1, 1], [0, 1, 2])
    assert one.ci_low is None and "needs >= 2 runs at each of >= 2 levels" in one.why


def test_trend_with_two_levels_is_welchs_t():
    """With two batch sizes the slope is the difference of means over the distance of the levels, and its
    interval and df are Welch's (scipy.stats.ttest_ind with equal_var=False, an independent implementation),
    also with variances that differ 15-fold, where ordinary least squares would pool them."""
    from scipy.stats import ttest_ind

    lo, hi = [1.0, 1.2, 0.9, 1.1], [3.0, 7.0, 1.5, 5.5]
    est = stats.trend([4] * 4 + [8] * 4, lo + hi, alternative="greater")
    ci = ttest_ind(hi, lo, equal_var=False).confidence_interval(0.95)
    assert (est.effect, est.ci_low, est.ci_high) == pytest.approx(
        ((np.mean(hi) - np.mean(lo)) / 4, ci.low / 4, ci.high / 4), rel=1e-9
    )
    assert est.p_value == pytest.approx(ttest_ind(hi, lo, equal_var=False, alternative="greater").pvalue, rel=1e-9)


def test_one_sided_p_value_agrees_with_the_verdict(tmp_path):
    """Every check's p-value is one-sided against its own bar and labelled so: it is below 0.025 exactly when
    the check holds (95% two-sided intervals). Catches a p-value against 0 beside a ratio bar of 2."""
    res = evaluate(synthetic(tmp_path, effect=0.6, noise=0.3, rng=3), thresholds(min_ratio=2.0))
    tested = [r for r in res["checks"] if r["p_value"] is not None]
    assert len(tested) >= 8
    for r in tested:
        assert r["p_alternative"].startswith("one-sided, H1: "), r["check"]
        assert (r["p_value"] < 0.025) == (r["verdict"] == HOLDS), (r["check"], r["p_value"], r["verdict"])
    assert by_check(res)["1b"]["p_alternative"] == "one-sided, H1: > 2"


def test_inconclusive_checks_say_which_way_they_lean(tmp_path):
    """lambda_1 of 1, 4 at the smallest batch and 2, 6 at the largest: the ratio of geometric means is 1.73
    with an interval far too wide to decide; it leans toward the claim, and against it with the groups swapped."""
    df = synthetic(tmp_path, seeds=range(2), batches=(32, 2048), robust_eps=())
    small, large = df["batch_size"] == 32, df["batch_size"] == 2048
    for lo, hi, way in (([1.0, 4.0], [2.0, 6.0], "toward"), ([2.0, 6.0], [1.0, 4.0], "against")):
        df.loc[small, "lambda_1"], df.loc[large, "lambda_1"] = lo, hi
        res = evaluate(df, thresholds())
        c = by_check(res)["1b"]
        assert c["verdict"] == INCONCLUSIVE and c["leans"] == way, (way, c)
    assert all(r["leans"] == "" for r in res["checks"] if r["verdict"] != INCONCLUSIVE)


def test_no_check_repeats_another(tmp_path):
    """Claim 2 leaves lambda_1 to claim 1; with two batch sizes the slope 1a (the same comparison as the
    ratio 1b) is not reported."""
    res = evaluate(synthetic(tmp_path), thresholds())
    assert "2a.1" not in by_check(res) and {"2a.2", "2a.3", "2b"} <= set(by_check(res))
    two = evaluate(synthetic(tmp_path, batches=(32, 2048)), thresholds())
    assert "1a" not in by_check(two) and by_check(two)["1b"]["verdict"] == HOLDS


def test_welch_and_one_sample_intervals_equal_the_hand_computed_ones():
    """Welch: a = 1,2,3, b = 4,6: difference -3, se^2 = 1/3 + 2/2, Welch-Satterthwaite df = 1.6842;
    one-sample 1..4: mean 2.5, se 0.6455, t(0.975, 3) = 3.182446. Catches pooled variances, a wrong df, a
    log ratio left in log space."""
    from scipy.stats import t  # the quantile only; the formula is written out here

    se2 = 1 / 3 + 2 / 2
    df = se2**2 / ((1 / 3) ** 2 / 2 + 1.0**2 / 1)
    half = t.ppf(0.975, df) * math.sqrt(se2)
    est = stats.difference([1, 2, 3], [4, 6])
    assert df == pytest.approx(1.684211, rel=1e-6)
    assert (est.effect, est.ci_low, est.ci_high) == pytest.approx((-3, -3 - half, -3 + half))
    one = stats.mean([1, 2, 3, 4])
    half = 3.182446 * math.sqrt(5 / 3) / 2  # sd of 1..4 is sqrt(5/3), over sqrt(4)
    assert (one.effect, one.ci_low, one.ci_high) == pytest.approx((2.5, 2.5 - half, 2.5 + half), rel=1e-6)
    ratio = stats.difference([2, 8], [1, 1], log=True)  # geometric means 4 and 1
    assert ratio.effect == pytest.approx(4.0) and ratio.ci_low < 4 < ratio.ci_high
    assert stats.difference([1], [2, 3]).ci_low is None  # one run: no interval, never a verdict


def test_share_interval_and_verdict_rule():
    """Clopper-Pearson for 6 of 6: lower bound 0.025^(1/6). The verdict rule: beyond the bar in the claimed
    direction holds, wholly on the other side fails, straddling is inconclusive (catches a one-sided rule
    that turns 'no evidence' into 'fails')."""
    est = stats.share(6, 6)
    assert est.ci_low == pytest.approx(0.025 ** (1 / 6)) and est.ci_high == 1.0
    e = lambda lo, hi: stats.Estimate(0.0, lo, hi, None, 4, "")  # noqa: E731
    assert stats.verdict(e(0.1, 2), 0, +1) == HOLDS and stats.verdict(e(-2, -0.1), 0, +1) == FAILS
    assert stats.verdict(e(-1, 1), 0, +1) == INCONCLUSIVE and stats.verdict(e(-2, -0.1), 0, -1) == HOLDS
    assert stats.verdict(e(2.1, 3), 2, +1) == HOLDS and stats.verdict(e(1.1, 1.9), 2, +1) == FAILS
    assert stats.verdict(stats.Estimate(1.0, None, None, None, 1, ""), 0, +1) == INCONCLUSIVE
    assert stats.combine([HOLDS, INCONCLUSIVE]) == INCONCLUSIVE and stats.combine([HOLDS, FAILS]) == FAILS


def test_planted_effect_holds_for_every_claim(tmp_path):
    """A planted effect of known size, 4 seeds x 4 batch sizes, 3 training eps: every claim holds, and the
    reported effects match what was planted (catches a slope on the wrong scale, a flipped difference)."""
    res = evaluate(synthetic(tmp_path), thresholds())
    assert {k: v["verdict"] for k, v in res["claims"].items()} == {k: HOLDS for k in TITLES}
    c = by_check(res)
    assert c["1a"]["effect"] == pytest.approx(0.3, abs=0.03)  # lambda_1 ~ batch^0.3: the log-log slope
    assert c["1b"]["effect"] == pytest.approx(2 ** (0.3 * 6), rel=0.1) and c["1b"]["unit"] == "x"
    assert c["4"]["effect"] == pytest.approx(0.06, abs=0.005) and c["4"]["unit"] == "fraction"
    assert c["5a.1"]["effect"] == pytest.approx(-0.05, abs=0.005)
    assert c["7a.bs32"]["effect"] == pytest.approx(-10, rel=0.15)  # log2 lambda_1 per unit eps
    assert c["3c"]["effect"] == pytest.approx(0.05)  # last tracked 0.05 / first tracked 1.0


def test_reversed_effect_reaches_every_fails_branch(tmp_path):
    """Every trend reversed and every measurement out of bounds: each check of each claim fails."""
    df = synthetic(tmp_path, effect=-1.0, robust_eps=(0.05, 0.1))
    # robust training made sharper and less robust: reverse the planted eps effects too
    robust = df["robust"]
    df.loc[robust, "lambda_1"] *= 8
    for col in ("acc_fgsm_linf_eps0.2_test", "acc_pgd_linf_eps0.2_test"):
        df.loc[robust, col] -= 6 * df.loc[robust, "robust_eps"]
    df["min_eigenvalue"] = -0.3 * df["lambda_1"]
    df["landscape_argmin_alpha"] = 0.3  # 3 grid steps from 0
    (tmp_path / "history.csv").write_text("epoch,grad_norm\n1,1.0\n2,0.8\n3,0.9\n")  # not stationary
    df["input_exact_min_rel"], df["input_exact_rank_excess"] = -0.1, 1.0
    df["power_max_rel_diff"] = 0.01
    res = evaluate(df, thresholds())
    not_failed = [(r["check"], r["verdict"]) for r in res["checks"] if r["verdict"] != FAILS]
    assert not_failed == []
    assert {v["verdict"] for v in res["claims"].values()} == {FAILS}


def test_the_paper_ratio_bar_applies_only_where_configured(tmp_path):
    """Ratio ~1.5 with a tight interval: above 1 (holds) without a bar, below the configured 2x bar (fails)."""
    df = synthetic(tmp_path, effect=0.3 / 0.3 * math.log2(1.5) / 1.8, noise=0.01)
    assert by_check(evaluate(df, thresholds()))["1b"]["verdict"] == HOLDS
    barred = by_check(evaluate(df, thresholds(min_ratio=2.0)))["1b"]
    assert barred["verdict"] == FAILS and barred["threshold"] == "95% interval above 2"


def test_missing_data_is_inconclusive_and_says_what_would_decide(tmp_path):
    """One seed at one batch size, no robust runs, no history: nothing about batch size or eps can be
    judged; every inconclusive check names what is missing (catches a verdict from too little data)."""
    df = synthetic(tmp_path, seeds=(0,), batches=(256,), robust_eps=())
    df["history_file"] = str(tmp_path / "absent.csv")
    res = evaluate(df, thresholds())
    for claim in ("1", "2", "3", "4", "5", "7"):
        assert res["claims"][claim]["verdict"] == INCONCLUSIVE, claim
    assert all(r["missing"] for r in res["checks"] if r["verdict"] == INCONCLUSIVE)
    assert "3 training eps" in by_check(res)["7a"]["missing"]
    df = synthetic(tmp_path)
    df["input_exact_images_train"] = 0  # claim 6 is about train and test images
    assert "train images" in by_check(evaluate(df, thresholds()))["6a"]["missing"]


def test_accuracy_gap_only_between_runs_at_the_same_stopping_point(tmp_path):
    """Large-batch runs that hit the epoch cap before the target loss are left out of claim 4 (an
    under-trained run would fake a generalization gap)."""
    df = synthetic(tmp_path, effect=0.0, noise=0.01)
    capped = (df["batch_size"] == 2048) & (df["seed"] < 2)
    df.loc[capped, ["reached_target", "test_acc"]] = [False, 0.5]
    c = by_check(evaluate(df, thresholds()))["4"]
    assert "bs2048 (2 runs)" in c["detail"] and "bs2048 seed0" in c["detail"]
    assert abs(c["effect"]) < 0.02  # with the capped runs in, the gap would be about 0.24


def test_claims_json_contract_is_plain_and_reproducible(tmp_path):
    """The shape the report renders: plain JSON values, plain text, experiment spelled dataset_model,
    every threshold with its reason; the same input twice gives the same bytes."""
    df = synthetic(tmp_path)
    res = evaluate(df, thresholds())
    text = json.dumps(res, sort_keys=True)
    assert text == json.dumps(evaluate(df, thresholds()), sort_keys=True)
    assert "np." not in text and "nan" not in text.lower().replace("inconclusive", "")
    keys = set(
        "claim check title experiment mode statistic effect ci_low ci_high test p_value p_alternative threshold "
        "verdict leans detail missing figure unit".split()
    )
    for r in res["checks"]:
        assert set(r) == keys and r["experiment"] == "mnist5k_M1" and r["figure"] in FIGURES
        assert all(r[k] is None or type(r[k]) is float for k in ("effect", "ci_low", "ci_high", "p_value"))
    assert set(res["claims"]["1"]) == {"title", "verdict", "leans", "per_experiment", "summary", "unsettled"}
    assert res["claims"]["1"]["per_experiment"] == {"mnist5k_M1": HOLDS}
    assert all(v["reason"] for v in res["thresholds"].values()) and res["runs"] == res["runs_ok"] == len(df)
    assert "| 1a | mnist5k_M1 |" in to_markdown(res) and "<table" in to_html(res)


def test_diverged_runs_are_left_out(tmp_path):
    df = synthetic(tmp_path)
    df.loc[df["batch_size"] == 2048, "status"] = "diverged"
    res = evaluate(df, thresholds())
    assert res["runs_ok"] == len(df) - 4 and "bs512" in by_check(res)["1b"]["detail"]
    df["status"] = "diverged"  # nothing finished: every claim still has its checks, none can be judged
    res = evaluate(df, thresholds())
    assert {v["verdict"] for v in res["claims"].values()} == {INCONCLUSIVE} and res["runs_ok"] == 0


def test_experiments_carry_their_own_attack_and_robust_settings():
    """Claims 5 and 7 are judged on each experiment's own eps grid: the attack step and the grid must see
    the per-experiment settings (catches an override that is validated but never used)."""
    cfg = {
        "results": "r",
        "data": {"root": "d"},
        "train": {
            "batch_sizes": [64],
            "seeds": [0],
            "robust": [{"name": "fgsm", "attack": "fgsm", "eps": [0.0078], "fraction": 0.5}],
            "experiments": [
                {"dataset": "cifar10", "model": "C1"},
                {
                    "dataset": "mnist",
                    "model": "M1",
                    "attack": {"fgsm_linf": [0.1, 0.3], "headline_eps": 0.1},
                    "robust": [
                        {"name": "fgsm_a", "attack": "fgsm", "eps": [0.1], "fraction": 0.5},
                        {"name": "fgsm_b", "attack": "fgsm", "eps": [0.3], "fraction": 0.5},
                    ],
                },
            ],
        },
        "attack": {"fgsm_linf": [0.0078], "headline_eps": 0.0078},
    }
    validate(cfg)
    assert attack_settings(cfg, "mnist", "M1")["fgsm_linf"] == [0.1, 0.3]
    assert attack_settings(cfg, "mnist", "M1")["pgd"]["steps"] == 10  # defaults kept under the override
    assert attack_settings(cfg, "cifar10", "C1")["fgsm_linf"] == [0.0078]
    assert modes_for(cfg, cfg["train"]["experiments"][1], 64) == ["clean", "fgsm_a", "fgsm_b"]
    assert run_config(cfg, "mnist", "M1", mode="fgsm_b", batch_size=64, seed=0)["robust"]["eps"] == [0.3]
    cfg["train"]["experiments"][1]["attack"]["headline_eps"] = 0.2
    with pytest.raises(LbhError, match=r"train.experiments\[1\].attack.headline_eps"):
        validate(cfg)
