"""The interval estimates behind the claim verdicts, all from scipy.stats, and the one verdict rule.

Groups are small (2-5 seeds per batch size), so intervals come from t distributions (Welch's two-sample
t, the regression slope's t interval, the one-sample t) and Clopper-Pearson for shares: a percentile
bootstrap of 2-3 values per group is far narrower than the truth, and the calibration test (batch labels
shuffled) would catch it. Every function is deterministic, so reruns give identical verdicts.
"""

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

HOLDS, FAILS, INCONCLUSIVE = "holds", "fails", "inconclusive"


@dataclass(frozen=True)
class Estimate:
    """An effect with its two-sided interval; ``ci_low``/``ci_high`` None when none can be formed."""

    effect: float | None
    ci_low: float | None
    ci_high: float | None
    p_value: float | None
    n: int
    test: str
    why: str = ""  # when no interval: what is missing


def _finite(v):
    return None if v is None or not math.isfinite(float(v)) else float(v)


def _none(n, test, why) -> Estimate:
    return Estimate(None, None, None, None, n, test, why)


def _clean(values) -> np.ndarray:
    a = np.asarray(values, dtype=float)
    return a[np.isfinite(a)]


def _one_sided(res, alternative) -> float | None:
    """The one-sided p-value of a two-sided t-test result (one scipy call instead of two)."""
    dist = stats.t(res.df)
    return _finite(dist.sf(res.statistic) if alternative == "greater" else dist.cdf(res.statistic))


def _flat(v: np.ndarray) -> bool:
    """No spread beyond float round-off (identical runs): a t statistic would be noise over noise."""
    return bool(np.allclose(v, v[0], rtol=1e-12, atol=0.0))


def slope(x, y, confidence=0.95, alternative="greater") -> Estimate:
    """Least-squares slope of y on x with its t interval (n - 2 degrees of freedom) and one-sided p-value."""
    test = "scipy.stats.linregress slope, t interval"
    x, y = np.asarray(x, float), np.asarray(y, float)
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    n = len(x)
    if n < 3 or len(np.unique(x)) < 2:
        return _none(n, test, f"{n} run(s) at {len(np.unique(x))} level(s): a slope interval needs >= 3 runs at >= 2")
    res = stats.linregress(x, y, alternative=alternative)
    half = stats.t.ppf(0.5 + confidence / 2, n - 2) * res.stderr
    return Estimate(float(res.slope), float(res.slope - half), float(res.slope + half), _finite(res.pvalue), n, test)


def difference(a, b, confidence=0.95, alternative="greater", log=False) -> Estimate:
    """mean(a) - mean(b) with Welch's t interval; ``log``: on log values, reported as the ratio of
    geometric means exp(mean log a - mean log b) with the interval transformed alike."""
    a, b = _clean(a), _clean(b)
    test = "scipy.stats.ttest_ind (Welch)" + (" on log values" if log else "")
    if len(a) < 2 or len(b) < 2:
        return _none(len(a) + len(b), test, f"{len(a)} and {len(b)} runs: an interval needs >= 2 in each group")
    if log:
        if (a <= 0).any() or (b <= 0).any():
            return _none(len(a) + len(b), test, "a ratio needs positive values")
        a, b = np.log(a), np.log(b)
    effect = float(a.mean() - b.mean())
    if _flat(a) and _flat(b):  # no spread: t is undefined; the interval is the point
        lo = hi = effect
        p = None
    else:
        res = stats.ttest_ind(a, b, equal_var=False)
        ci = res.confidence_interval(confidence)
        lo, hi = float(ci.low), float(ci.high)
        p = _one_sided(res, alternative)
    if log:
        effect, lo, hi = math.exp(effect), math.exp(lo), math.exp(hi)
    return Estimate(effect, lo, hi, p, len(a) + len(b), test)


def mean(values, confidence=0.95, alternative="greater", popmean=0.0, log=False) -> Estimate:
    """Mean of the values with the one-sample t interval (``log``: geometric mean); p against popmean."""
    v = _clean(values)
    test = "scipy.stats.ttest_1samp" + (" on log values" if log else "")
    if len(v) < 2:
        return _none(len(v), test, f"{len(v)} run(s): an interval needs >= 2")
    if log:
        if (v <= 0).any():
            return _none(len(v), test, "a geometric mean needs positive values")
        v, popmean = np.log(v), math.log(popmean)
    if _flat(v):
        lo = hi = effect = float(v.mean())
        p = None
    else:
        res = stats.ttest_1samp(v, popmean)
        ci = res.confidence_interval(confidence)
        effect, lo, hi = float(v.mean()), float(ci.low), float(ci.high)
        p = _one_sided(res, alternative)
    if log:
        effect, lo, hi = math.exp(effect), math.exp(lo), math.exp(hi)
    return Estimate(effect, lo, hi, p, len(v), test)


def share(k: int, n: int, confidence=0.95) -> Estimate:
    """k of n with the exact (Clopper-Pearson) interval."""
    test = "scipy.stats.binomtest, Clopper-Pearson interval"
    if n < 1:
        return _none(0, test, "no runs")
    ci = stats.binomtest(int(k), int(n)).proportion_ci(confidence, method="exact")
    return Estimate(k / n, float(ci.low), float(ci.high), None, n, test)


def verdict(est: Estimate, bar: float, direction: int) -> str:
    """holds: the interval lies beyond ``bar`` in the claimed ``direction`` (+1 above, -1 below);
    fails: it lies wholly on the other side; inconclusive: it straddles the bar, or there is none."""
    if est.ci_low is None or est.ci_high is None:
        return INCONCLUSIVE
    lo, hi = (est.ci_low, est.ci_high) if direction > 0 else (-est.ci_high, -est.ci_low)
    b = bar * direction
    if lo > b:
        return HOLDS
    if hi < b:
        return FAILS
    return INCONCLUSIVE


def combine(verdicts) -> str:
    """One verdict from several: any failure fails; all must hold to hold; else inconclusive."""
    verdicts = list(verdicts)
    if FAILS in verdicts:
        return FAILS
    if verdicts and all(v == HOLDS for v in verdicts):
        return HOLDS
    return INCONCLUSIVE
