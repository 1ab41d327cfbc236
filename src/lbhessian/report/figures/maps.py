"""Figures of per-run arrays: the 2-D loss surface and the exact input-Hessian eigenvalues."""

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.colors import LogNorm

from lbhessian.core.io import read_json
from lbhessian.report.figures import style as st
from lbhessian.report.figures.curves import run_file


def _surface(ctx, rows):
    """Mean 2-D loss grid over the given runs as (alpha, beta, loss[beta, alpha], seeds), or None."""
    grids, alpha, beta = [], None, None
    for _, r in rows.iterrows():
        path = run_file(ctx, r, "spectrum")
        land = ((read_json(path) if path else {}).get("train") or {}).get("landscape_2d") or {}
        if land.get("loss"):
            grids.append(np.asarray(land["loss"], float))
            alpha, beta = land.get("alpha"), land.get("beta")
    if not grids or len({x.shape for x in grids}) != 1 or not alpha or not beta:
        return None
    loss = np.nanmean(np.stack(grids), axis=0)
    # loss[i][j] is the loss at (alpha[i], beta[j]); contourf wants rows along beta.
    if loss.shape == (len(alpha), len(beta)):
        loss = loss.T
    return (np.asarray(alpha), np.asarray(beta), loss, len(grids)) if loss.shape == (len(beta), len(alpha)) else None


def fig_landscape_2d(g, ctx):
    mode = st.mode_order(g["mode"])[0]  # clean where present: the surface the paper shows
    gm = g[g["mode"] == mode]
    bs = sorted(gm["batch_size"].unique())
    # constrained layout: it keeps the shared colour bar beside the panels (tight_layout cannot).
    fig, axes = plt.subplots(1, 2, figsize=(st.WIDTH, 3.0), squeeze=False, layout="constrained")
    surfaces = [
        (b, s) for b in ([bs[0], bs[-1]] if len(bs) > 1 else bs) if (s := _surface(ctx, gm[gm["batch_size"] == b]))
    ]
    if not surfaces:
        for ax in axes.flat:
            st.no_data(ax, "no 2-D landscapes (spectrum step)")
        return fig
    finite = np.concatenate([s[2][np.isfinite(s[2])].ravel() for _, s in surfaces])
    lo, hi = max(finite.min(), 1e-6), finite.max()
    log = hi / lo > 20 and lo > 0
    levels = np.geomspace(lo, hi, 16) if log else np.linspace(finite.min(), hi, 16)
    cs = None
    for ax, (b, (alpha, beta, loss, n)) in zip(axes[0], surfaces, strict=False):
        z = np.clip(loss, lo, hi) if log else loss
        cs = ax.contourf(alpha, beta, z, levels=levels, norm=LogNorm(lo, hi) if log else None, cmap="magma_r")
        ax.contour(alpha, beta, z, levels=levels[::3], colors="k", linewidths=0.3)
        ax.plot([0], [0], marker="+", color="cyan", ms=8)
        ax.set(xlabel="α (along v₁)", ylabel="β (along v₂)", title=f"{mode}, batch {b} (mean of {n} seed(s))")
    if len(surfaces) < 2:
        st.no_data(axes[0, 1], "one batch size with a surface: nothing to compare")
    bar = fig.colorbar(cs, ax=axes[0].tolist(), label="train loss (shared scale)", shrink=0.9)
    bar.set_ticks(levels[::3], labels=[f"{v:.3g}" for v in levels[::3]])
    bar.minorticks_off()
    return fig


def _exact(g, ctx):
    eig, rel = [], []
    for _, r in g.iterrows():
        path = run_file(ctx, r, "inputs")
        for img in ((read_json(path) if path else {}) or {}).get("exact") or []:
            key = {"mode": r["mode"], "batch_size": int(r["batch_size"]), "seed": r["seed"]}
            eig += [{**key, "eig": v} for v in img.get("eigenvalues_top") or [] if v is not None]
            mx, mn = img.get("max_eig"), img.get("min_eig")
            if mx is not None and mn is not None:
                rel.append({**key, "rel": mn / max(abs(mx), 1e-300)})
    return pd.DataFrame(eig), pd.DataFrame(rel)


def fig_input_hessian_spectrum(g, ctx):
    eig, rel = _exact(g, ctx)
    fig, axes = plt.subplots(1, 2, figsize=(st.WIDTH, 3.0))
    modes = st.mode_order(g["mode"])
    strip = {"x": "batch_size", "hue_order": modes, "hue": "mode", "dodge": True, "jitter": 0.25}
    axes[0].set_title("Input-Hessian eigenvalues")
    if eig.empty:
        st.no_data(axes[0], "no exact input Hessians (inputs.exact_images = 0?)")
    else:
        sns.stripplot(eig, y="eig", size=3, alpha=0.6, ax=axes[0], **strip)
        if not st.log_y(axes[0], eig["eig"]):  # negative eigenvalues: symlog keeps them beside the positive
            axes[0].set_yscale("symlog", linthresh=max(1e-3 * float(eig["eig"].abs().max()), 1e-12))
        axes[0].axhline(0, color="k", lw=0.6)
        axes[0].set(xlabel="batch size", ylabel="top eigenvalues of Hₓ (per image)")
        axes[0].legend(title="training", fontsize=7)
    axes[1].set_title("Saddle-free check: min eigenvalue ≥ 0")
    if rel.empty:
        st.no_data(axes[1], "no exact input Hessians")
    else:
        sns.stripplot(rel, y="rel", size=4, ax=axes[1], **strip)
        tol = (ctx.get("claims") or {}).get("input_psd_tol")
        if tol is not None:
            axes[1].axhspan(-tol, tol, color="tab:green", alpha=0.15, label=f"±{tol:g} (tolerance)")
        axes[1].axhline(0, color="k", lw=0.6)
        axes[1].set(xlabel="batch size", ylabel="min eig(Hₓ) / max eig(Hₓ)")
        axes[1].legend(fontsize=7)
    return fig
