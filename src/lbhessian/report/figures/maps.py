"""Figures of per-run arrays: the 2-D loss surface and the exact input-Hessian eigenvalues."""

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.colors import LogNorm

from lbhessian.core.io import read_json
from lbhessian.report.figures import style as st
from lbhessian.report.figures.curves import run_file
from lbhessian.report.summary import exact_images, exact_min_rel


def _surface(ctx, rows):
    """Mean 2-D loss grid over the given runs as (alpha, beta, loss[beta, alpha], seeds), or None."""
    grids, alpha, beta = [], None, None
    for _, r in rows.iterrows():
        path = run_file(ctx, r, "spectrum")
        land = ((read_json(path) if path else {}).get("train") or {}).get("landscape_2d") or {}
        if land.get("loss"):
            grids.append(np.asarray(land["loss"], float))
            alpha, beta = land.get("alpha"), land.get("beta")
    if not grids or len({x.shape for x in grids}) != 1 or not alpha or not beta or min(len(alpha), len(beta)) < 11:
        return None  # a grid coarser than 11 x 11 cannot carry contours (MIN_POINTS)
    loss = np.nanmean(np.stack(grids), axis=0)
    # loss[i][j] is the loss at (alpha[i], beta[j]); contourf wants rows along beta.
    if loss.shape == (len(alpha), len(beta)):
        loss = loss.T
    return (np.asarray(alpha), np.asarray(beta), loss, len(grids)) if loss.shape == (len(beta), len(alpha)) else None


MIN_POINTS = 11  # report.figtext.MIN_2D_POINTS: a coarser grid cannot carry contour lines


def fig_landscape_2d(g, ctx):
    mode = st.mode_order(g["mode"])[0]  # clean where present: the surface the paper shows
    gm = g[g["mode"] == mode]
    points = ((ctx.get("config") or {}).get("spectrum") or {}).get("landscape", {}).get("points_2d")
    if points is not None and int(points) < MIN_POINTS:
        fig, ax = plt.subplots(figsize=(st.WIDTH, 1.0))
        ax.axis("off")
        ax.text(
            0.5,
            0.5,
            f"No contour map: the 2-D landscape was sampled on a {points} x {points} grid "
            f"(spectrum.landscape.points_2d),\ntoo coarse for contours (at least {MIN_POINTS} x {MIN_POINTS}).",
            ha="center",
            va="center",
            fontsize=9,
            color="0.3",
            transform=ax.transAxes,
        )
        return fig
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
    """Per image (train and test, as claim 6a reads them): its top eigenvalues and min/max after the noise floor."""
    eig, rel = [], []
    for _, r in g.iterrows():
        path = run_file(ctx, r, "inputs")
        images = exact_images(read_json(path) if path else {})
        key = {"mode": r["mode"], "batch_size": int(r["batch_size"]), "seed": r["seed"]}
        for img, v in zip(images, exact_min_rel(images), strict=True):
            split = img.get("split", "test")
            eig += [{**key, "split": split, "eig": e} for e in img.get("eigenvalues_top") or [] if e is not None]
            if np.isfinite(v):
                rel.append({**key, "split": split, "rel": float(v), "floor": img.get("rank_tol")})
    return pd.DataFrame(eig), pd.DataFrame(rel)


def _strip(ax, d: pd.DataFrame, y: str, *, sizes: list[int], modes: list[str], seed: int = 0):
    """Points per batch size (categorical x), modes side by side by a small dodge, splits by marker."""
    colours, off = st.mode_colours(modes), st.dodge(modes)
    jitter = np.random.default_rng(seed)
    for (mode, split), dm in d.groupby(["mode", "split"]):
        x = np.array([sizes.index(int(b)) for b in dm["batch_size"]], float) + off[mode]
        x += jitter.uniform(-0.04, 0.04, len(x))
        ax.scatter(
            x,
            dm[y],
            s=10,
            alpha=0.6,
            color=colours[mode],
            marker="o" if split == "test" else "s",
            linewidths=0,
            label=f"{mode}, {split}",
            gid=f"points:{mode}:{split}",
        )
    ax.set_xticks(range(len(sizes)), [str(b) for b in sizes])
    ax.set_xlim(-0.5, len(sizes) - 0.5)


def fig_input_hessian_spectrum(g, ctx):
    eig, rel = _exact(g, ctx)
    fig, axes = plt.subplots(1, 2, figsize=(st.WIDTH, 3.0), layout="constrained")
    modes, sizes = st.mode_order(g["mode"]), sorted({int(b) for b in g["batch_size"]})
    axes[0].set_title("Top eigenvalues of Hₓ, per image")
    if eig.empty:
        st.no_data(axes[0], "no exact input Hessians (inputs.exact_images = 0?)")
    else:
        _strip(axes[0], eig, "eig", sizes=sizes, modes=modes)
        floor = pd.to_numeric(rel.get("floor", pd.Series(dtype=float)), errors="coerce").dropna()
        big = float(eig["eig"].abs().max())
        st.symlog_y(axes[0], eig["eig"], linthresh=max(float(floor.max()) if len(floor) else 1e-12 * big, 1e-300))
        axes[0].axhline(0, color="k", lw=0.6)
        axes[0].set(xlabel="batch size", ylabel="eigenvalue of Hₓ")
    tol = float((ctx.get("claims") or {}).get("input_psd_tol") or 1e-3)
    axes[1].set_title("Check 6a: min eig / max eig ≥ −tolerance")
    if rel.empty:
        st.no_data(axes[1], "no exact input Hessians")
    else:
        _strip(axes[1], rel, "rel", sizes=sizes, modes=modes, seed=1)
        st.symlog_y(axes[1], [*rel["rel"], -10 * tol, tol], linthresh=tol / 10)
        axes[1].axhline(-tol, color="tab:red", lw=0.9, ls="--", label=f"−{tol:g} (claim 6a tolerance)")
        axes[1].axhline(0, color="k", lw=0.6)
        axes[1].set(xlabel="batch size", ylabel="min eig / max eig (after the floor)")
        axes[1].legend(title="training, split", fontsize=6.5)
    return fig
