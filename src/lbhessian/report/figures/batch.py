"""Figures of scalar measurements against batch size (and the top-k spectrum per batch), from summary.csv."""

import matplotlib.pyplot as plt
import pandas as pd

from lbhessian.core.results import lambda_columns, lambda_index
from lbhessian.report.figures import style as st
from lbhessian.report.summary import pick_eps


def _missing_note(ax, d: pd.DataFrame, by: str, grid):
    """Name each series that lacks a batch size of the panel: its line stops there instead of bridging it."""
    gaps = []
    for name, dm in d.groupby(by):
        lost = [str(b) for b in grid if b not in set(dm["batch_size"])]
        if lost:
            gaps.append(f"{name}: no data at batch {', '.join(lost)}")
    if gaps:
        st.note(ax, "; ".join(gaps))


def vs_batch(ax, d: pd.DataFrame, y: str, *, ylabel: str, title: str, split: str | None = None, log=True):
    """Every mode (and split, when the frame has one) of ``y`` against batch size, on one panel."""
    d = d.dropna(subset=[y])
    ax.set_title(title)
    if d.empty:
        st.no_data(ax, f"no {ylabel}")
        return
    grid = sorted(d["batch_size"].unique())
    colours, styles = st.mode_colours(d["mode"]), st.mode_styles(d["mode"])
    is_log = st.log_y(ax, d[y]) if log else False
    # Robust modes a hair right of clean (x 2^0.06 per mode on the log2 axis): beside their batch size, never
    # halfway to the next one; clean stays at the batch size itself.
    shift = {m: 2.0 ** (0.06 * i) for i, m in enumerate(st.mode_order(d["mode"]))}
    for mode in st.mode_order(d["mode"]):
        dm = d[d["mode"] == mode].assign(batch_size=lambda x, f=shift[mode]: x["batch_size"] * f)
        for sp in sorted(dm[split].unique(), reverse=True) if split else [None]:
            ds = dm if sp is None else dm[dm[split] == sp]
            ls = styles[mode] if sp in (None, "test") else "--"
            label = mode if sp is None else f"{mode}, {sp}"
            on = [b * shift[mode] for b in grid]
            st.series(
                ax,
                ds,
                "batch_size",
                y,
                label=label,
                colour=colours[mode],
                style=ls,
                log=is_log,
                grid=on,
                marker="o" if sp != "train" else "s",
            )
    st.log_x_batch(ax, d)
    ax.set(xlabel="batch size", ylabel=ylabel)
    ax.legend(title="training", loc="best")
    st.one_seed_note(ax, d)
    _missing_note(ax, d, "mode", grid)


def fig_lambda1_vs_batch(g, ctx):
    """Left: lambda_1 (claim 1); right: lambda_min / lambda_1 (check 3a) with its threshold, symlog (signed)."""
    fig, axes = plt.subplots(1, 2, figsize=(st.WIDTH, 3.0))
    d = g if "lambda_1" in g else g.assign(lambda_1=float("nan"))
    vs_batch(axes[0], d, "lambda_1", ylabel="λ₁ of weight Hessian", title="Sharpness λ₁ (claim 1)")
    lam = pd.to_numeric(d["lambda_1"], errors="coerce")
    mn = pd.to_numeric(d["min_eigenvalue"], errors="coerce") if "min_eigenvalue" in d else lam * float("nan")
    r = d.assign(neg_ratio=mn / lam.where(lam > 0))
    vs_batch(axes[1], r, "neg_ratio", ylabel="λmin / λ₁", title="Negative curvature λmin / λ₁ (check 3a)", log=False)
    delta = (ctx.get("claims") or {}).get("max_negative_ratio")
    vals = r["neg_ratio"].dropna()
    if len(vals):
        bar = [-float(delta)] if delta is not None else []
        st.symlog_y(axes[1], [*vals, *bar, 0.0], linthresh=max(1e-3, float(delta or 0) / 10))
        if delta is not None:
            axes[1].axhline(-float(delta), color="tab:red", ls="--", lw=0.9, label=f"−{float(delta):g} (threshold)")
        axes[1].axhline(0, color="k", lw=0.6)
    return fig


def _train_eps(g: pd.DataFrame) -> pd.Series:
    eps = pd.to_numeric(g.get("robust_eps", pd.Series(float("nan"), index=g.index)), errors="coerce")
    robust = g.get("robust", pd.Series(False, index=g.index)).astype(str).str.lower().isin(["true", "1", "1.0"])
    return eps.where(robust, 0.0)


def fig_robust_vs_train_eps(g, ctx):
    """Claim 7: lambda_1 and FGSM accuracy against the eps each model was trained at, per batch size that has
    clean and robust runs (a line per batch size; eps 0 is clean training)."""
    fig, axes = plt.subplots(1, 2, figsize=(st.WIDTH, 3.0))
    eps, col = pick_eps(g, "fgsm_linf", "test", ctx.get("headline_eps"))
    d = g.assign(train_eps=_train_eps(g)).dropna(subset=["train_eps"])
    keep = [b for b, gb in d.groupby("batch_size") if gb["train_eps"].nunique() >= 2]
    d = d[d["batch_size"].isin(keep)]
    names, colours = st.bs_names(g), st.bs_colours(g)
    panels = [
        ("lambda_1", "λ₁ of weight Hessian", "Sharpness λ₁ against training ε", True),
        ("fgsm_pct", "FGSM test accuracy (%)", f"FGSM (ℓ∞, ε = {eps:g}) accuracy" if col else "FGSM accuracy", False),
    ]
    d = d.assign(fgsm_pct=100 * d[col] if col else float("nan"))
    for ax, (y, ylabel, title, log) in zip(axes, panels, strict=True):
        ax.set_title(title)
        dd = d.dropna(subset=[y]) if y in d else d.iloc[0:0]
        if dd.empty:
            st.no_data(ax, "no batch size with clean and robust runs" if not keep else f"no {ylabel}")
            continue
        is_log = st.log_y(ax, dd[y]) if log else False
        grid = sorted(dd["train_eps"].unique())
        for bs, db in dd.groupby("batch_size"):
            st.series(
                ax, db, "train_eps", y, label=names[int(bs)], colour=colours[int(bs)], style="-", log=is_log, grid=grid
            )
        ax.set_xticks(grid, [f"{e:g}" for e in grid])
        ax.set(xlabel="training ε (0 = clean training)", ylabel=ylabel)
        ax.legend(title="batch size", fontsize=7)
        st.one_seed_note(ax, dd, keys=("train_eps",))
    return fig


def fig_accuracy_vs_batch(g, ctx):
    fig, axes = plt.subplots(1, 2, figsize=(st.WIDTH, 3.0))
    eps, col = pick_eps(g, "fgsm_linf", "test", ctx["headline_eps"])
    d = g.assign(test_pct=100 * g["test_acc"], fgsm_pct=100 * g[col] if col else float("nan"))
    vs_batch(axes[0], d, "test_pct", ylabel="test accuracy (%)", title="Clean test accuracy", log=False)
    title = f"FGSM (ℓ∞, ε = {eps:g}) test accuracy" if col else "FGSM test accuracy"
    vs_batch(axes[1], d, "fgsm_pct", ylabel="FGSM test accuracy (%)", title=title, log=False)
    return fig


def fig_input_measures_vs_batch(g, ctx):
    fig, axes = plt.subplots(1, 2, figsize=(st.WIDTH, 3.0))
    panels = [
        ("input_grad_norm", "‖∇ₓJ‖ (mean over images)", "Input-gradient norm"),
        ("input_lambda1", "λ₁(Hₓ) (mean over images)", "Top input-Hessian eigenvalue"),
    ]
    keys = [k for k in ("mode", "batch_size", "seed", "batch_label") if k in g]
    for ax, (prefix, ylabel, title) in zip(axes, panels, strict=True):
        parts = [g[keys].assign(value=g[f"{prefix}_{s}"], split=s) for s in ("train", "test") if f"{prefix}_{s}" in g]
        d = pd.concat(parts) if parts else g[keys].assign(value=float("nan"), split="test")
        vs_batch(ax, d, "value", ylabel=ylabel, title=title, split="split")
    return fig


def fig_topk_eigenvalues(g, ctx):
    """One panel per training mode on one shared y axis (clean and robust compared at a glance)."""
    lam = lambda_columns(g.columns)
    long = g.melt(id_vars=["mode", "batch_size", "seed"], value_vars=lam, var_name="i", value_name="eig")
    long = long.dropna(subset=["eig"]).assign(i=lambda x: x["i"].map(lambda_index).astype(int))
    names, colours = st.bs_names(g), st.bs_colours(g)
    fig, panels = st.mode_panels(g, long, "eig", title=lambda mode, _: mode, reason="no eigenvalues", sharey=True)
    for ax, _, d, is_log in panels:
        for bs, db in d.groupby("batch_size"):
            st.series(ax, db, "i", "eig", label=names[int(bs)], colour=colours[int(bs)], style="-", log=is_log)
        ax.set_xticks(sorted(d["i"].unique()))
        ax.set(xlabel="eigenvalue index i")
        ax.legend(title="batch size", fontsize=7)
        st.one_seed_note(ax, d, keys=("batch_size", "i"), trend=False)
    fig.axes[0].set_ylabel("λᵢ of weight Hessian")
    if len(long):
        fig.suptitle(f"Top-{long['i'].max()} eigenvalues of the weight Hessian, per training mode", fontsize=10)
    return fig
