"""What every claim check shares: the row of claims.json, plain number formatting, the groups compared."""

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from lbhessian.core import results
from lbhessian.report.stats import INCONCLUSIVE, Estimate, lean, verdict

TITLES = {
    "1": "Sharpness (lambda_1) grows with batch size",
    "2": "The whole top-k spectrum (and the trace) is larger at the largest batch",
    "3": "Not saddle points: little negative curvature, 1-D minimum at 0, small gradient",
    "4": "Generalization gap: the largest batch tests worse (same stopping point)",
    "5": "Robustness falls with batch size",
    "6": "Input Hessian is saddle-free (PSD, rank <= C-1) on train and test images",
    "7": "Robust training flattens and is more robust, more so as its eps grows",
    "8": "Power iteration agrees with Lanczos",
}
NO_ESTIMATE = Estimate(None, None, None, None, 0, "")


def g(v) -> str:
    """A number as plain text (4 significant digits), never a numpy repr."""
    if v is None or (isinstance(v, float | np.floating) and not math.isfinite(float(v))):
        return "-"
    if isinstance(v, int | np.integer):
        return str(int(v))
    return f"{float(v):.4g}"


def sizes(values) -> str:
    return ", ".join(str(int(v)) for v in sorted(set(values)))


def interval(lo, hi) -> str:
    return "-" if lo is None else f"[{g(lo)}, {g(hi)}]"


@dataclass(frozen=True)
class Context:
    """One experiment's checks: its name (core.names.experiment_name) and the thresholds (report.claims)."""

    experiment: str
    t: dict

    @property
    def level(self) -> float:
        return float(self.t["confidence"])

    def row(
        self,
        claim,
        check,
        mode,
        *,
        statistic,
        est,
        threshold,
        verdict,
        bar=None,
        direction=None,
        detail="",
        figure=None,
        unit="",
        missing="",
    ):
        """One check of claims.json. ``bar`` and ``direction`` (+1: the claim says above, -1: below) name what
        the one-sided p-value tests and which way an inconclusive estimate leans."""
        if verdict == INCONCLUSIVE and not missing:
            if est.why:
                missing = est.why
            elif est.ci_low is not None:
                ci = interval(est.ci_low, est.ci_high)
                missing = f"the interval {ci} straddles the threshold: more seeds would narrow it"
            else:
                missing = "no data for this check"
        alternative = ""
        if est.p_value is not None and direction:
            alternative = f"one-sided, H1: {'>' if direction > 0 else '<'} {g(bar)}"
        return {
            "claim": claim,
            "check": check,
            "title": TITLES[claim],
            "experiment": self.experiment,
            "mode": mode,
            "statistic": statistic,
            "effect": est.effect,
            "ci_low": est.ci_low,
            "ci_high": est.ci_high,
            "test": est.test,
            "p_value": est.p_value,
            "p_alternative": alternative,
            "threshold": threshold,
            "verdict": verdict,
            "leans": lean(est, bar, direction) if verdict == INCONCLUSIVE and direction else "",
            "detail": detail,
            "missing": missing if verdict == INCONCLUSIVE else "",
            "figure": figure,
            "unit": unit,
        }

    def slope_row(self, claim, check, mode, *, statistic, est, direction, detail="", figure=None, unit=""):
        """A check that a trend's slope lies above 0 (``direction`` +1) or below it (-1)."""
        side = "above" if direction > 0 else "below"
        return self.row(
            claim,
            check,
            mode,
            statistic=statistic,
            est=est,
            threshold=f"95% interval {side} 0",
            verdict=verdict(est, 0.0, direction),
            bar=0.0,
            direction=direction,
            detail=detail,
            figure=figure,
            unit=unit,
        )

    def missing_row(self, claim, check, mode, *, statistic, threshold, missing, figure=None, unit=""):
        return self.row(
            claim,
            check,
            mode,
            statistic=statistic,
            est=NO_ESTIMATE,
            threshold=threshold,
            verdict=INCONCLUSIVE,
            missing=missing,
            figure=figure,
            unit=unit,
        )


def with_values(df: pd.DataFrame, col: str, positive=False) -> pd.DataFrame:
    """Rows with a finite value in col (and > 0 when positive); none when the column is absent."""
    if col not in df:
        return df.iloc[0:0]
    v = pd.to_numeric(df[col], errors="coerce")
    keep = np.isfinite(v) & ((v > 0) if positive else True)
    return df[keep]


def extremes(df: pd.DataFrame, col: str, positive=False):
    """(values at the smallest batch size, values at the largest, smallest, largest) among runs with col."""
    d = with_values(df, col, positive)
    if d.empty:
        return np.array([]), np.array([]), None, None
    lo, hi = d["batch_size"].min(), d["batch_size"].max()
    pick = lambda b: d.loc[d["batch_size"] == b, col].to_numpy(float)  # noqa: E731
    return pick(lo), pick(hi), int(lo), int(hi)


def mean_by_batch(df: pd.DataFrame, col: str) -> str:
    """'bs32 7.1 -> bs1024 13' (means over seeds at the extreme batch sizes) for details."""
    d = with_values(df, col)
    if d.empty:
        return ""
    m = d.groupby("batch_size")[col].mean().sort_index()
    return f"mean bs{m.index[0]} {g(m.iloc[0])} -> bs{m.index[-1]} {g(m.iloc[-1])}"


def lambda_columns(df: pd.DataFrame) -> list[str]:
    """The lambda_i columns that hold data, in the order of i."""
    return [c for c in results.lambda_columns(df.columns) if df[c].notna().any()]
