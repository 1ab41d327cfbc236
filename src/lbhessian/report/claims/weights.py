"""Claims about the weight Hessian: 1 (sharpness rises), 2 (the whole top moves), 3 (not saddles), 8 (solvers)."""

from pathlib import Path

import numpy as np
import pandas as pd

from lbhessian.core.results import file_column
from lbhessian.report.claims.common import Context, extremes, g, lambda_columns, mean_by_batch, with_values
from lbhessian.report.stats import FAILS, HOLDS, INCONCLUSIVE, Estimate, difference, mean, share, trend, verdict

HISTORY = file_column("history")


def claim1(ctx: Context, clean: pd.DataFrame) -> list[dict]:
    """1b: the ratio at the extreme batch sizes; 1a, the slope over every batch size, only with at least three
    (with two it is the same comparison as 1b)."""
    d = with_values(clean, "lambda_1", positive=True)
    sizes_ = sorted(set(d["batch_size"]))
    rows = []
    if len(sizes_) >= 3:
        est = trend(np.log2(d["batch_size"]), np.log2(d["lambda_1"].astype(float)), ctx.level, "greater")
        detail = f"{len(d)} runs at batch sizes {', '.join(map(str, sizes_))}; " + mean_by_batch(d, "lambda_1")
        rows.append(
            ctx.slope_row(
                "1",
                "1a",
                "clean",
                statistic="slope of log lambda_1 on log batch size (exponent of a power law)",
                est=est,
                direction=+1,
                detail=detail,
                figure="lambda1_vs_batch",
            )
        )
    lo, hi, blo, bhi = extremes(d, "lambda_1", positive=True)
    bar = ctx.t["min_ratio"] or 1.0
    est = difference(hi, lo, ctx.level, "greater", log=True, bar=bar)
    threshold = f"95% interval above {g(bar)}" + ("" if ctx.t["min_ratio"] else " (no >= 2x bar: min_ratio unset)")
    rows.append(
        ctx.row(
            "1",
            "1b",
            "clean",
            statistic="lambda_1 at the largest / at the smallest batch (ratio of geometric means)",
            est=est,
            threshold=threshold,
            verdict=verdict(est, bar, +1),
            bar=bar,
            direction=+1,
            detail=f"bs{bhi} ({len(hi)} runs) / bs{blo} ({len(lo)} runs)",
            figure="lambda1_vs_batch",
            unit="x",
        )
    )
    return rows


def claim2(ctx: Context, clean: pd.DataFrame) -> list[dict]:
    """lambda_2 .. lambda_k and the trace at the extreme batch sizes (lambda_1 is claim 1's)."""
    cols = [c for c in lambda_columns(clean) if c != "lambda_1"]
    if not cols and with_values(clean, "trace").empty:
        need = "eigenvalues beyond lambda_1 or the trace (spectrum.top_k >= 2, spectrum.trace_samples)"
        return [ctx.missing_row("2", "2a.2", "clean", statistic="top-k eigenvalues", threshold="-", missing=need)]
    rows = []
    for col in cols + ["trace"]:
        check, name = (f"2a.{col[7:]}", col) if col != "trace" else ("2b", "Hutchinson trace")
        if col == "trace" and with_values(clean, "trace").empty:
            continue  # trace_samples: 0 switches the trace off; the eigenvalues still decide
        positive = bool((with_values(clean, col)[col] > 0).all())
        lo, hi, blo, bhi = extremes(clean, col)
        bar, what = (1.0, "ratio of geometric means") if positive else (0.0, "difference of means")
        est = difference(hi, lo, ctx.level, "greater", log=positive, bar=bar)
        rows.append(
            ctx.row(
                "2",
                check,
                "clean",
                statistic=f"{name} at the largest / smallest batch ({what})",
                est=est,
                threshold=f"95% interval above {g(bar)}",
                verdict=verdict(est, bar, +1),
                bar=bar,
                direction=+1,
                detail=f"bs{bhi} ({len(hi)} runs) vs bs{blo} ({len(lo)} runs)",
                figure="topk_eigenvalues",
                unit="x" if positive else "",
            )
        )
    return rows


def _tracked_grad_norms(path) -> tuple[float, float, float]:
    """(first tracked full-gradient norm, last tracked one, epoch of the last) from a run's history.csv:
    both on the same tracked sample, so their ratio compares like with like. NaNs when absent."""
    if not isinstance(path, str) or not path or not Path(path).exists():
        return np.nan, np.nan, np.nan
    h = pd.read_csv(path)
    h = h[pd.to_numeric(h["grad_norm"], errors="coerce").notna()] if "grad_norm" in h else h.iloc[0:0]
    if len(h) < 2:
        return np.nan, np.nan, np.nan
    return float(h["grad_norm"].iloc[0]), float(h["grad_norm"].iloc[-1]), float(h["epoch"].iloc[-1])


def _claim3_gradient(ctx: Context, clean: pd.DataFrame) -> dict:
    cap = ctx.t["max_grad_ratio"]
    stat = "full-gradient norm at the end / at the first tracked epoch (geometric mean over runs)"
    thr = f"95% interval below {g(cap)}"
    files = clean[HISTORY] if HISTORY in clean else pd.Series("", index=clean.index)
    tracked = np.array([_tracked_grad_norms(p) for p in files]).reshape(-1, 3)
    # The last tracked value must be the final one, or the ratio says nothing about the end of training.
    usable = np.isfinite(tracked[:, 0]) & (tracked[:, 2] == clean["epochs"].to_numpy(float))
    if not usable.any():
        need = "history.csv with the gradient norm tracked at the last epoch and before it (train.track.every: 1)"
        return ctx.missing_row(
            "3", "3c", "clean", statistic=stat, threshold=thr, missing=need, figure="training_dynamics", unit="x"
        )
    ratio = tracked[usable, 1] / tracked[usable, 0]
    est = mean(ratio, ctx.level, "less", popmean=cap, log=True)
    detail = f"{usable.sum()} of {len(clean)} runs tracked to the end; largest ratio {g(ratio.max())}"
    return ctx.row(
        "3",
        "3c",
        "clean",
        statistic=stat,
        est=est,
        threshold=thr,
        verdict=verdict(est, cap, -1),
        bar=cap,
        direction=-1,
        detail=detail,
        figure="training_dynamics",
        unit="x",
    )


def claim3(ctx: Context, clean: pd.DataFrame) -> list[dict]:
    delta = ctx.t["max_negative_ratio"]
    stat, thr = "lambda_min / lambda_1 (mean over runs)", f"95% interval above -{g(delta)}"
    d = with_values(with_values(clean, "min_eigenvalue"), "lambda_1", positive=True)
    r = d["min_eigenvalue"].to_numpy(float) / d["lambda_1"].to_numpy(float)
    est = mean(r, ctx.level, "greater", popmean=-delta)
    if len(r):
        worst = d.iloc[int(np.argmin(r))]
        detail = f"{len(r)} runs; most negative {g(r.min())} (bs{worst['batch_size']} seed{worst['seed']})"
    else:
        detail = "no measured lambda_min (spectrum step)"
    rows = [
        ctx.row(
            "3",
            "3a",
            "clean",
            statistic=stat,
            est=est,
            threshold=thr,
            verdict=verdict(est, -delta, +1),
            bar=-delta,
            direction=+1,
            detail=detail,
            figure="lambda1_vs_batch",
        )
    ]
    tol = ctx.t["landscape_argmin_steps"]
    stat, thr = "share of runs whose 1-D train loss is lowest at 0", f"every run within {tol} grid step(s) of 0"
    d = with_values(with_values(clean, "landscape_argmin_alpha"), "landscape_alpha_step", positive=True)
    steps = (d["landscape_argmin_alpha"].abs() / d["landscape_alpha_step"]).to_numpy(float)
    ok = int((steps <= tol + 1e-9).sum())
    est = share(ok, len(steps), ctx.level)
    v = INCONCLUSIVE if not len(steps) else (HOLDS if ok == len(steps) else FAILS)
    detail = f"{ok} of {len(steps)} runs; farthest minimum {g(steps.max() if len(steps) else None)} steps from 0"
    rows.append(
        ctx.row(
            "3",
            "3b",
            "clean",
            statistic=stat,
            est=est,
            threshold=thr,
            verdict=v,
            detail=detail,
            figure="landscape_1d",
            missing="no 1-D landscapes",
        )
    )
    rows.append(_claim3_gradient(ctx, clean))
    return rows


def claim8(ctx: Context, runs: pd.DataFrame) -> list[dict]:
    tol = ctx.t["lanczos_power_tol"]
    stat, thr = "max over runs of |lambda_i(power) - lambda_i(Lanczos)| / |lambda_i|", f"<= {g(tol)}"
    d = with_values(runs, "power_max_rel_diff")
    if d.empty:
        return [
            ctx.missing_row(
                "8",
                "8",
                "all",
                statistic=stat,
                threshold=thr,
                missing="no power-iteration check (spectrum.check_power)",
            )
        ]
    v = float(d["power_max_rel_diff"].max())
    est = Estimate(v, None, None, None, len(d), "none: two deterministic solvers on the same Hessian")
    return [
        ctx.row(
            "8",
            "8",
            "all",
            statistic=stat,
            est=est,
            threshold=thr,
            verdict=HOLDS if v <= tol else FAILS,
            detail=f"{len(d)} runs",
        )
    ]
