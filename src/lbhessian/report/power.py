"""How often a design decides each claim, from pilot runs (issue: power by design, shown).

Two views, both from scipy.stats and the claim code itself, never a formula by hand:
- ``welch_power``: the probability that Welch's interval clears a bar, from the noncentral t distribution
  (scipy.stats.nct) with Welch-Satterthwaite degrees of freedom: the sample size of one two-group check.
- ``verdict_rates``: a whole design (seeds per setting, batch sizes) judged many times over: synthetic summaries
  resampled from the pilots' runs, each judged by ``report.claims.evaluate`` exactly as a real run would be, give
  the share of holds / fails / inconclusive of every claim. Claims combine several checks, which a per-check
  formula cannot; resampling keeps each run's measurements together (their correlations).

Resampling: within each setting (dataset, model, mode, batch size) a synthetic run is the pilots' mean plus the
residual of a randomly drawn pilot run, inflated by sqrt(n / (n - 1)) so that the spread is not understated; on
the log scale for columns that are positive in every pilot run (eigenvalues, norms), else as they are.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

from lbhessian.report.claims import FAILS, HOLDS, INCONCLUSIVE, evaluate

SETTING = ["dataset", "model", "mode", "batch_size"]
KEEP = {"dataset", "model", "mode", "batch_size", "seed", "status", "robust", "batch_label"}


def welch_power(delta, sd_a, sd_b, n_a, n_b, *, confidence=0.95, bar=0.0) -> float:
    """P(Welch's two-sided ``confidence`` interval of mean(a) - mean(b) lies above ``bar``) when the true
    difference is ``delta`` and the groups' standard deviations are ``sd_a``, ``sd_b``."""
    va, vb = sd_a**2 / n_a, sd_b**2 / n_b
    se = math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / (n_a - 1) + vb**2 / (n_b - 1))
    critical = stats.t.ppf(0.5 + confidence / 2, df)
    return float(stats.nct.sf(critical, df, (delta - bar) / se))


def _numeric(df: pd.DataFrame) -> list[str]:
    return [c for c in df.columns if c not in KEEP and pd.api.types.is_numeric_dtype(df[c]) and df[c].notna().any()]


def resample(pilot: pd.DataFrame, seeds: int, rng: np.random.Generator, batches=None) -> pd.DataFrame:
    """One synthetic summary with ``seeds`` runs per setting of ``pilot`` (only ``batches`` if given)."""
    cols = _numeric(pilot)
    positive = [c for c in cols if (pilot[c].dropna() > 0).all()]
    rows = []
    for _, group in pilot.groupby(SETTING, sort=True):
        if batches is not None and int(group["batch_size"].iloc[0]) not in batches:
            continue
        values = group[cols].astype(float).copy()
        values[positive] = np.log(values[positive])
        n = len(group)
        center = values.mean()
        inflate = math.sqrt(n / (n - 1)) if n > 1 else 1.0
        for seed in range(seeds):
            pick = int(rng.integers(n))
            row = group.iloc[pick].copy()
            drawn = center + (values.iloc[pick] - center) * inflate
            drawn[positive] = np.exp(drawn[positive])
            row[cols] = drawn.to_numpy()
            row["seed"] = seed
            rows.append(row)
    return pd.DataFrame(rows).reset_index(drop=True)


def verdict_rates(pilot: pd.DataFrame, seeds: int, thresholds: dict, *, simulations=400, batches=None, seed=0) -> dict:
    """{claim: {"holds", "fails", "inconclusive"} shares} of a design over ``simulations`` resampled summaries."""
    rng = np.random.default_rng(seed)
    counts: dict[str, dict[str, int]] = {}
    for _ in range(simulations):
        result = evaluate(resample(pilot, seeds, rng, batches), thresholds)
        for claim, c in result["claims"].items():
            tally = counts.setdefault(claim, {HOLDS: 0, FAILS: 0, INCONCLUSIVE: 0})
            tally[c["verdict"]] += 1
    return {claim: {k: v / simulations for k, v in tally.items()} for claim, tally in counts.items()}


def decided(rates: dict) -> dict:
    """P(decided) = P(holds) + P(fails) per claim."""
    return {claim: r[HOLDS] + r[FAILS] for claim, r in rates.items()}


def two_group_power(clean: pd.DataFrame, column: str, *, log: bool, seeds, confidence=0.95, batches=None):
    """(pilot effect, [power at n seeds per group]) of the largest-minus-smallest batch difference of ``column``
    (of its log if ``log``), with the pilot's group means and standard deviations taken as the truth."""
    sizes = sorted(set(clean["batch_size"]) if batches is None else batches)
    groups = [clean.loc[clean["batch_size"] == b, column].astype(float).dropna() for b in (sizes[-1], sizes[0])]
    if log:
        groups = [np.log(g) for g in groups]
    large, small = groups
    # claim 4 runs the other way (the small batch tests better): the effect's sign says which side the bar is on
    effect = float(large.mean() - small.mean())
    sign = 1.0 if effect >= 0 else -1.0
    powers = [
        welch_power(sign * effect, large.std(ddof=1), small.std(ddof=1), n, n, confidence=confidence) for n in seeds
    ]
    return effect, powers
