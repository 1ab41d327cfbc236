"""Figures of scalar measurements against batch size (and the top-k spectrum per batch), from summary.csv."""

import matplotlib.pyplot as plt
import pandas as pd

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


def vs_batch(ax, d: pd.DataFrame, y: str, ylabel: str, title: str, split: str | None = None, log=True):
    """Every mode (and split, when the frame has one) of ``y`` against batch size, on one panel."""
    d = d.dropna(subset=[y])
    ax.set_title(title)
    if d.empty:
        st.no_data(ax, f"no {ylabel}")
        return
    grid = sorted(d["batch_size"].unique())
    colours, styles = st.mode_colours(d["mode"]), st.mode_styles(d["mode"])
    is_log = st.log_y(ax, d[y]) if log else False
    for mode in st.mode_order(d["mode"]):
        dm = d[d["mode"] == mode]
        for sp in sorted(dm[split].unique(), reverse=True) if split else [None]:
            ds = dm if sp is None else dm[dm[split] == sp]
            ls = styles[mode] if sp in (None, "test") else "--"
            label = mode if sp is None else f"{mode}, {sp}"
            st.series(ax, ds, "batch_size", y, label, colours[mode], ls, is_log, grid, "o" if sp != "train" else "s")
    st.log_x_batch(ax, d)
    ax.set(xlabel="batch size", ylabel=ylabel)
    ax.legend(title="training", loc="best")
    st.one_seed_note(ax, d)
    _missing_note(ax, d, "mode", grid)


def fig_lambda1_vs_batch(g, ctx):
    fig, ax = plt.subplots(figsize=(st.WIDTH / 2 + 0.4, 3.0))
    d = g if "lambda_1" in g else g.assign(lambda_1=float("nan"))
    vs_batch(ax, d, "lambda_1", "λ₁ of weight Hessian", "Top Hessian eigenvalue vs batch size")
    return fig


def fig_accuracy_vs_batch(g, ctx):
    fig, axes = plt.subplots(1, 2, figsize=(st.WIDTH, 3.0))
    eps, col = pick_eps(g, "fgsm_linf", "test", ctx["headline_eps"])
    d = g.assign(test_pct=100 * g["test_acc"], fgsm_pct=100 * g[col] if col else float("nan"))
    vs_batch(axes[0], d, "test_pct", "test accuracy (%)", "Clean test accuracy", log=False)
    title = f"FGSM (ℓ∞, ε = {eps:g}) test accuracy" if col else "FGSM test accuracy"
    vs_batch(axes[1], d, "fgsm_pct", "FGSM test accuracy (%)", title, log=False)
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
        vs_batch(ax, d, "value", ylabel, title, split="split")
    return fig


def fig_topk_eigenvalues(g, ctx):
    lam = sorted((c for c in g.columns if c.startswith("lambda_") and c[7:].isdigit()), key=lambda c: int(c[7:]))
    long = g.melt(id_vars=["mode", "batch_size", "seed"], value_vars=lam, var_name="i", value_name="eig")
    long = long.dropna(subset=["eig"]).assign(i=lambda x: x["i"].str[7:].astype(int))
    names, colours = st.bs_names(g), st.bs_colours(g)
    title = lambda mode, d: f"top-{d['i'].max() if len(d) else '?'} spectrum ({mode})"  # noqa: E731
    fig, panels = st.mode_panels(g, long, "eig", title, "no eigenvalues")
    for ax, _, d, is_log in panels:
        for bs, db in d.groupby("batch_size"):
            st.series(ax, db, "i", "eig", names[int(bs)], colours[int(bs)], "-", is_log)
        ax.set_xticks(sorted(d["i"].unique()))
        ax.set(xlabel="eigenvalue index i", ylabel="λᵢ of weight Hessian")
        ax.legend(title="batch size", fontsize=7)
        st.one_seed_note(ax, d, keys=("batch_size", "i"))
    return fig
