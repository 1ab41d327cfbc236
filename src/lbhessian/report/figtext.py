"""What each figure shows, in words computed from the numbers it plots: the figures' human titles and one
"Shown:" line per figure for the report page, from the same summary.csv rows (finished runs of one experiment)
and the same means (geometric on the log axes, arithmetic on accuracy axes) that the figures draw.

No sentence here states a result the data may not show: a direction ("rises", "falls") is read off the means,
and a figure without its data says what is missing. Pure pandas: the page step imports no plotting library."""

import math

import numpy as np
import pandas as pd

from lbhessian.report import numbers as nb
from lbhessian.report.summary import pick_eps

FIGURE_TITLES = {
    "lambda1_vs_batch": "Sharpness and negative curvature against batch size",
    "topk_eigenvalues": "Top-k Hessian eigenvalues per batch size",
    "landscape_1d": "Loss along the top eigenvector",
    "landscape_2d": "Loss on the plane of the top two eigenvectors",
    "training_dynamics": "Sharpness and gradient norm during training",
    "accuracy_vs_batch": "Clean and FGSM test accuracy against batch size",
    "input_measures_vs_batch": "Input gradient and input-Hessian curvature against batch size",
    "input_hessian_spectrum": "Input-Hessian eigenvalues and the saddle-free check",
    "adversarial_vs_eps": "Adversarial accuracy against the attack radius",
    "robust_vs_train_eps": "Sharpness and robustness against the training eps",
}
MIN_2D_POINTS = 11  # a coarser 2-D grid cannot carry contour lines: the figure says so instead of drawing them


def title(kind: str) -> str:
    return FIGURE_TITLES.get(kind, kind.replace("_", " "))


def means(d: pd.DataFrame, col: str, by: str = "batch_size", geometric=None) -> pd.Series:
    """Mean of col per value of ``by`` over finite values: geometric when every value is positive (the
    figures' log axes) unless ``geometric`` says otherwise."""
    if col not in d:
        return pd.Series(dtype=float)
    v = pd.to_numeric(d[col], errors="coerce")
    keep = np.isfinite(v)
    v, key = v[keep], d.loc[keep, by]
    if v.empty:
        return pd.Series(dtype=float)
    geo = bool((v > 0).all()) if geometric is None else geometric
    out = np.exp(np.log(v).groupby(key).mean()) if geo else v.groupby(key).mean()
    return out.sort_index()


def direction(first: float, last: float, rel: float = 1e-3) -> str:
    """ "rises", "falls" or "stays level" (within ``rel`` of the larger value: 0.1 pp of a 95 % accuracy) from
    first to last: what the plotted means do, their uncertainty being the verdicts' business."""
    if not (math.isfinite(first) and math.isfinite(last)):
        return "cannot be read"
    scale = max(abs(first), abs(last), 1e-300)
    if abs(last - first) <= rel * scale:
        return "stays level"
    return "rises" if last > first else "falls"


def trend_text(m: pd.Series, show=nb.sig, factor=True) -> str:
    """ "rises from 2.1 at batch 16 to 9.3 at 256 (x4.4)" from means by batch size."""
    if len(m) < 2:
        return f"has one batch size only ({show(m.iloc[0])} at batch {m.index[0]})" if len(m) else "has no data"
    a, b = float(m.iloc[0]), float(m.iloc[-1])
    text = f"{direction(a, b)} from {show(a)} at batch {m.index[0]} to {show(b)} at {m.index[-1]}"
    if factor and a > 0 and b > 0:
        text += f" ({nb.sig(b / a, 2)}x)"
    return text


def _modes(d: pd.DataFrame) -> list[str]:
    return sorted(set(d["mode"].astype(str)), key=lambda m: (m != "clean", m))


def _per_mode(d: pd.DataFrame, col: str, label: str, show=nb.sig, factor=True) -> list[str]:
    out = []
    for mode in _modes(d):
        m = means(d[d["mode"].astype(str) == mode], col, geometric=None if factor else False)
        if len(m):
            out.append(f"{label} ({mode}) {trend_text(m, show, factor)}")
    return out


def _lambda1(d, ctx):
    lines = _per_mode(d, "lambda_1", "mean lambda_1")
    if {"min_eigenvalue", "lambda_1"} <= set(d.columns):
        r = d.assign(neg=pd.to_numeric(d["min_eigenvalue"], errors="coerce") / pd.to_numeric(d["lambda_1"]))
        r = r[np.isfinite(r["neg"])]
        if len(r):
            lines.append(
                f"lambda_min / lambda_1 lies between {nb.sig(r['neg'].min(), 2)} and "
                f"{nb.sig(r['neg'].max(), 2)} over {len(r)} runs"
            )
    return lines


def _topk(d, ctx):
    clean = d[d["mode"].astype(str) == _modes(d)[0]] if len(d) else d
    cols = sorted(
        (c for c in d.columns if c.startswith("lambda_") and c[7:].isdigit() and d[c].notna().any()),
        key=lambda c: int(c[7:]),
    )
    ratios = []
    for c in cols:
        m = means(clean, c)
        if len(m) >= 2 and m.iloc[0] > 0:
            ratios.append(nb.sig(m.iloc[-1] / m.iloc[0], 2) + "x")
    if not ratios:
        return []
    lo, hi = clean["batch_size"].min(), clean["batch_size"].max()
    return [f"lambda_1 .. lambda_{len(ratios)} at batch {hi} / at {lo} ({_modes(d)[0]}): {', '.join(ratios)}"]


def _landscape_1d(d, ctx):
    if not {"landscape_argmin_alpha", "landscape_alpha_step"} <= set(d.columns):
        return []
    r = d.dropna(subset=["landscape_argmin_alpha", "landscape_alpha_step"])
    if r.empty:
        return []
    at0 = r["landscape_argmin_alpha"].abs() <= 1e-9
    line = f"the train loss is lowest at alpha = 0 in {int(at0.sum())} of {len(r)} runs"
    off = r[~at0]
    if len(off):
        where = sorted({nb.sig(a, 2) for a in off["landscape_argmin_alpha"]}, key=float)
        line += f"; elsewhere at alpha = {', '.join(where)} ({', '.join(_run_names(off))})"
    return [line]


def _run_names(r: pd.DataFrame, limit: int = 6) -> list[str]:
    names = [f"{m} bs{int(b)} seed{s}" for m, b, s in zip(r["mode"], r["batch_size"], r["seed"], strict=True)]
    return names[:limit] + ([f"{len(names) - limit} more"] if len(names) > limit else [])


def _landscape_2d(d, ctx):
    n = landscape_2d_points(ctx.get("config") or {})
    if n is not None and n < MIN_2D_POINTS:
        return [
            f"no contour map: the 2-D landscape was sampled on a {n} x {n} grid (spectrum.landscape.points_2d), "
            f"too coarse for contours (at least {MIN_2D_POINTS} x {MIN_2D_POINTS})"
        ]
    return []


def landscape_2d_points(cfg: dict):
    v = ((cfg.get("spectrum") or {}).get("landscape") or {}).get("points_2d")
    return int(v) if v is not None else None


def _accuracy(d, ctx):
    lines = _per_mode(d, "test_acc", "clean test accuracy", nb.pct, factor=False)
    eps, col = pick_eps(d, "fgsm_linf", "test", ctx.get("headline_eps"))
    if col:
        lines += _per_mode(d, col, f"FGSM accuracy at eps {nb.sig(eps)}", nb.pct, factor=False)
    return lines


def _inputs(d, ctx):
    lines = []
    for split in ("test", "train"):
        lines += _per_mode(d, f"input_grad_norm_{split}", f"||grad_x J|| {split}")
        lines += _per_mode(d, f"input_lambda1_{split}", f"lambda_1(H_x) {split}")
    return lines


def _input_spectrum(d, ctx):
    if "input_exact_min_rel" not in d:
        return []
    v = pd.to_numeric(d["input_exact_min_rel"], errors="coerce").dropna()
    if v.empty:
        return []
    n = sum(
        int(pd.to_numeric(d.get(f"input_exact_images_{s}"), errors="coerce").fillna(0).sum())
        for s in ("train", "test")
        if f"input_exact_images_{s}" in d
    )
    tol = (ctx.get("claims") or {}).get("input_psd_tol")
    line = f"over {n} images (train and test) the smallest min eig / max eig is {nb.sig(v.min(), 2)}"
    if tol is not None:
        below = int((v < -float(tol)).sum())
        line += f"; {below} of {len(v)} runs below the tolerance -{nb.sig(tol)}"
    return [line]


def _adversarial(d, ctx):
    eps, col = pick_eps(d, "fgsm_linf", "test", ctx.get("headline_eps"))
    return _per_mode(d, col, f"FGSM accuracy at eps {nb.sig(eps)}", nb.pct, factor=False) if col else []


def train_eps(d: pd.DataFrame) -> pd.Series:
    """The eps each run was trained at: 0 for clean training."""
    eps = pd.to_numeric(d.get("robust_eps", pd.Series(np.nan, index=d.index)), errors="coerce")
    robust = d.get("robust", pd.Series(False, index=d.index)).astype(str).str.lower().isin(["true", "1", "1.0"])
    return pd.Series(np.where(robust, eps, 0.0), index=d.index)


def robust_batches(d: pd.DataFrame) -> list[int]:
    """Batch sizes with at least two training eps (clean = 0 and a robust mode): claim 7's comparisons."""
    e = d.assign(train_eps=train_eps(d)).dropna(subset=["train_eps"])
    return sorted(int(b) for b, gb in e.groupby("batch_size") if gb["train_eps"].nunique() >= 2)


def _robust(d, ctx):
    e = d.assign(train_eps=train_eps(d))
    lines = []
    eps, col = pick_eps(d, "fgsm_linf", "test", ctx.get("headline_eps"))
    for b in robust_batches(d):
        gb = e[e["batch_size"] == b]
        m = means(gb, "lambda_1", by="train_eps")
        if len(m) >= 2:
            steps = " -> ".join(f"{nb.sig(v)} (eps {nb.sig(k)})" for k, v in m.items())
            lines.append(f"batch {b}: mean lambda_1 {direction(m.iloc[0], m.iloc[-1])} with the training eps: {steps}")
        if col:
            a = means(gb, col, by="train_eps", geometric=False)
            if len(a) >= 2:
                steps = " -> ".join(f"{nb.pct(v)} (eps {nb.sig(k)})" for k, v in a.items())
                lines.append(f"FGSM accuracy at eps {nb.sig(eps)} {direction(a.iloc[0], a.iloc[-1])}: {steps}")
    return lines


SHOWN = {
    "lambda1_vs_batch": _lambda1,
    "topk_eigenvalues": _topk,
    "landscape_1d": _landscape_1d,
    "landscape_2d": _landscape_2d,
    "accuracy_vs_batch": _accuracy,
    "input_measures_vs_batch": _inputs,
    "input_hessian_spectrum": _input_spectrum,
    "adversarial_vs_eps": _adversarial,
    "robust_vs_train_eps": _robust,
}


def shown(kind: str, runs: pd.DataFrame, ctx: dict) -> list[str]:
    """What the figure of ``kind`` shows for one experiment's finished runs, one sentence per series; [] when
    the figure has no summary in numbers (its caption describes it neutrally)."""
    if runs.empty or kind not in SHOWN:
        return []
    return [s + "." for s in SHOWN[kind](runs, ctx) if s]
