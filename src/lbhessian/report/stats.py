"""The interval estimates behind the claim verdicts, all from scipy.stats, and the one verdict rule.

Groups are small (2-8 seeds per batch size), so intervals come from t distributions (Welch's two-sample
t, the slope as a Welch-Satterthwaite contrast of level means, the one-sample t) and Clopper-Pearson for
shares: a percentile bootstrap of 2-3 values per group is far narrower than the truth, and the calibration
test (batch labels shuffled) would catch it. No interval assumes equal variances across groups. Intervals are
two-sided at ``confidence``; p-values are one-sided, against the check's bar in the claimed direction, so a
check holds exactly when its p-value is below (1 - confidence) / 2. Every function is deterministic, so
reruns give identical verdicts.
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


def _flat(v: np.ndarray) -> bool:
    """No spread beyond float round-off (identical runs): a t statistic would be noise over noise."""
    return bool(np.allclose(v, v[0], rtol=1e-12, atol=0.0))


def _p(t_stat: float, df: float, alternative: str) -> float | None:
    """One-sided p-value of a t statistic: H1 is ``effect > bar`` ("greater") or ``effect < bar`` ("less")."""
    dist = stats.t(df)
    return _finite(dist.sf(t_stat) if alternative == "greater" else dist.cdf(t_stat))


def trend(x, y, confidence=0.95, alternative="greater", bar=0.0) -> Estimate:
    """Least-squares slope of y on x (runs at a few levels of x, e.g. batch sizes) with an interval that does not
    assume equal variances: the slope is the linear contrast sum_i c_i mean_i of the level means, its variance
    sum_i c_i^2 s_i^2 / n_i, and its degrees of freedom Welch-Satterthwaite's. With two levels this is Welch's
    t (difference of means over the distance of the levels) exactly; with more it is the heteroskedastic
    trend contrast. Ordinary least squares pools the variances, which differed 15-fold between batch sizes
    here and made its interval too narrow where the noisy group is small. One-sided p-value against ``bar``."""
    test = "slope, Welch-Satterthwaite contrast (scipy.stats.t)"
    x, y = np.asarray(x, float), np.asarray(y, float)
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    levels = np.unique(x)
    counts = [int((x == lv).sum()) for lv in levels]
    if len(levels) < 2 or min(counts, default=0) < 2:
        found = ", ".join(f"{n} at {lv:g}" for lv, n in zip(levels, counts, strict=True)) or "no runs"
        return _none(len(x), test, f"a slope interval needs >= 2 runs at each of >= 2 levels; found {found}")
    n = np.array(counts, float)
    means = np.array([y[x == lv].mean() for lv in levels])
    var = np.array([y[x == lv].var(ddof=1) for lv in levels])
    center = (n * levels).sum() / n.sum()
    c = n * (levels - center) / (n * (levels - center) ** 2).sum()
    effect = float((c * means).sum())
    terms = c**2 * var / n
    se = math.sqrt(float(terms.sum()))
    if se <= 1e-12 * max(abs(effect), 1e-300):  # no spread (identical runs): the interval is the point
        return Estimate(effect, effect, effect, None, len(x), test)
    df = terms.sum() ** 2 / (terms**2 / (n - 1)).sum()
    half = float(stats.t.ppf(0.5 + confidence / 2, df)) * se
    return Estimate(effect, effect - half, effect + half, _p((effect - bar) / se, df, alternative), len(x), test)


def difference(a, b, confidence=0.95, alternative="greater", *, log=False, bar=None) -> Estimate:
    """mean(a) - mean(b) with Welch's t interval; ``log``: on log values, reported as the ratio of
    geometric means exp(mean log a - mean log b) with the interval transformed alike. One-sided p-value
    against ``bar`` (default: no difference, i.e. 0, or a ratio of 1)."""
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
        shift = 0.0 if bar is None else (math.log(bar) if log else bar)
        se = math.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b))  # Welch's standard error
        p = _p((effect - shift) / se, res.df, alternative)
    if log:
        effect, lo, hi = math.exp(effect), math.exp(lo), math.exp(hi)
    return Estimate(effect, lo, hi, p, len(a) + len(b), test)


def mean(values, confidence=0.95, alternative="greater", popmean=0.0, log=False) -> Estimate:
    """Mean of the values with the one-sample t interval (``log``: geometric mean); one-sided p against popmean
    (the check's bar)."""
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
        p = _p(res.statistic, res.df, alternative)
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


def lean(est: Estimate, bar: float, direction: int) -> str:
    """Which way an estimate points relative to the bar: "toward" the claim, "against" it, or "" (none)."""
    if est.effect is None:
        return ""
    return "toward" if (est.effect - bar) * direction > 0 else "against"


def combine(verdicts) -> str:
    """One verdict from several: any failure fails; all must hold to hold; else inconclusive."""
    verdicts = list(verdicts)
    if FAILS in verdicts:
        return FAILS
    if verdicts and all(v == HOLDS for v in verdicts):
        return HOLDS
    return INCONCLUSIVE
