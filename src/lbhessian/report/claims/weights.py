"""Claims about the weight Hessian: 1 (sharpness rises), 2 (the whole top moves), 3 (not saddles), 8 (solvers)."""

from pathlib import Path

import numpy as np
import pandas as pd

from lbhessian.report.claims.common import Context, extremes, g, lambda_columns, mean_by_batch, with_values
from lbhessian.report.stats import FAILS, HOLDS, INCONCLUSIVE, Estimate, difference, mean, share, slope, verdict


def claim1(ctx: Context, clean: pd.DataFrame) -> list[dict]:
    d = with_values(clean, "lambda_1", positive=True)
    est = slope(np.log2(d["batch_size"]), np.log2(d["lambda_1"].astype(float)), ctx.level, "greater")
    detail = f"{len(d)} runs at batch sizes {', '.join(map(str, sorted(set(d['batch_size']))))}; "
    rows = [
        ctx.row("1", "1a", "clean", "slope of log lambda_1 on log batch size (exponent of a power law)", est,
                "95% interval above 0", verdict(est, 0.0, +1), detail + mean_by_batch(d, "lambda_1"),
                "lambda1_vs_batch")
    ]  # fmt: skip
    lo, hi, blo, bhi = extremes(d, "lambda_1", positive=True)
    est = difference(hi, lo, ctx.level, "greater", log=True)
    bar = ctx.t["min_ratio"]
    threshold = f"95% interval above {g(bar)}" if bar else "95% interval above 1 (no >= 2x bar: min_ratio unset)"
    rows.append(
        ctx.row("1", "1b", "clean", "lambda_1 at the largest / at the smallest batch (ratio of geometric means)",
                est, threshold, verdict(est, bar or 1.0, +1), f"bs{bhi} ({len(hi)} runs) / bs{blo} ({len(lo)} runs)",
                "lambda1_vs_batch", "x")
    )  # fmt: skip
    return rows


def claim2(ctx: Context, clean: pd.DataFrame) -> list[dict]:
    cols = lambda_columns(clean)
    if not cols:
        return [ctx.missing_row("2", "2a.1", "clean", "top-k eigenvalues", "-", "no eigenvalues (spectrum step)")]
    rows = []
    for i, col in enumerate(cols + ["trace"], start=1):
        check, name = (f"2a.{i}", col) if col != "trace" else ("2b", "Hutchinson trace")
        if col == "trace" and with_values(clean, "trace").empty:
            continue  # trace_samples: 0 switches the trace off; the eigenvalues still decide
        positive = (with_values(clean, col)[col] > 0).all()
        lo, hi, blo, bhi = extremes(clean, col)
        est = difference(hi, lo, ctx.level, "greater", log=bool(positive))
        bar, what = (1.0, "ratio of geometric means") if positive else (0.0, "difference of means")
        rows.append(
            ctx.row("2", check, "clean", f"{name} at the largest / smallest batch ({what})", est,
                    f"95% interval above {g(bar)}", verdict(est, bar, +1),
                    f"bs{bhi} ({len(hi)} runs) vs bs{blo} ({len(lo)} runs)", "topk_eigenvalues",
                    "x" if positive else "")
        )  # fmt: skip
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
    files = clean["history_file"] if "history_file" in clean else pd.Series("", index=clean.index)
    tracked = np.array([_tracked_grad_norms(p) for p in files]).reshape(-1, 3)
    # The last tracked value must be the final one, or the ratio says nothing about the end of training.
    usable = np.isfinite(tracked[:, 0]) & (tracked[:, 2] == clean["epochs"].to_numpy(float))
    if not usable.any():
        need = "history.csv with the gradient norm tracked at the last epoch and before it (train.track.every: 1)"
        return ctx.missing_row("3", "3c", "clean", stat, thr, need, "training_dynamics", "x")
    ratio = tracked[usable, 1] / tracked[usable, 0]
    est = mean(ratio, ctx.level, "less", popmean=cap, log=True)
    detail = f"{usable.sum()} of {len(clean)} runs tracked to the end; largest ratio {g(ratio.max())}"
    return ctx.row("3", "3c", "clean", stat, est, thr, verdict(est, cap, -1), detail, "training_dynamics", "x")


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
    rows = [ctx.row("3", "3a", "clean", stat, est, thr, verdict(est, -delta, +1), detail, "topk_eigenvalues")]
    tol = ctx.t["landscape_argmin_steps"]
    stat, thr = "share of runs whose 1-D train loss is lowest at 0", f"every run within {tol} grid step(s) of 0"
    d = with_values(with_values(clean, "landscape_argmin_alpha"), "landscape_alpha_step", positive=True)
    steps = (d["landscape_argmin_alpha"].abs() / d["landscape_alpha_step"]).to_numpy(float)
    ok = int((steps <= tol + 1e-9).sum())
    est = share(ok, len(steps), ctx.level)
    v = INCONCLUSIVE if not len(steps) else (HOLDS if ok == len(steps) else FAILS)
    detail = f"{ok} of {len(steps)} runs; farthest minimum {g(steps.max() if len(steps) else None)} steps from 0"
    rows.append(ctx.row("3", "3b", "clean", stat, est, thr, v, detail, "landscape_1d", "", "no 1-D landscapes"))
    rows.append(_claim3_gradient(ctx, clean))
    return rows


def claim8(ctx: Context, runs: pd.DataFrame) -> list[dict]:
    tol = ctx.t["lanczos_power_tol"]
    stat, thr = "max over runs of |lambda_i(power) - lambda_i(Lanczos)| / |lambda_i|", f"<= {g(tol)}"
    d = with_values(runs, "power_max_rel_diff")
    if d.empty:
        return [ctx.missing_row("8", "8", "all", stat, thr, "no power-iteration check (spectrum.check_power)")]
    v = float(d["power_max_rel_diff"].max())
    est = Estimate(v, None, None, None, len(d), "none: two deterministic solvers on the same Hessian, every run")
    return [ctx.row("8", "8", "all", stat, est, thr, HOLDS if v <= tol else FAILS, f"{len(d)} runs", None)]
