"""The figures step: seaborn figures (PNG and PDF) from summary.csv, plus the per-run curve files it names.

One file per figure kind and experiment: {out}/{dataset}_{model}/{kind}.png|.pdf. Every figure is
written for any subset of the grid: where the data for a panel is missing (one batch size, tracking
off, no robust runs) the panel says "not enough data" instead of failing.
"""

import contextlib
import warnings
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.colors import LogNorm
from matplotlib.ticker import FuncFormatter, MaxNLocator

from lbhessian.core.errors import LbhError
from lbhessian.core.io import read_json, write_with
from lbhessian.core.results import parse_acc_column
from lbhessian.report.summary import ok_runs, pick_eps

FIGURES = [
    "lambda1_vs_batch",
    "topk_eigenvalues",
    "landscape_1d",
    "landscape_2d",
    "training_dynamics",
    "accuracy_vs_batch",
    "input_measures_vs_batch",
    "input_hessian_spectrum",
    "adversarial_vs_eps",
]
ATTACK_LABEL = {"fgsm_linf": "FGSM (ℓ∞)", "fgsm_l2": "FGSM (ℓ2)", "pgd_linf": "PGD (ℓ∞)"}
WIDTH = 7.0  # inches: a two-column paper's text width


@contextlib.contextmanager
def _theme():
    """The figures' look, for the figures only: the caller's matplotlib settings stay as they were."""
    rc = {"figure.dpi": 100, "savefig.dpi": 200, "legend.fontsize": 7.5, "legend.title_fontsize": 8}
    with plt.rc_context(), sns.axes_style("whitegrid"), sns.plotting_context("paper", font_scale=1.05):
        plt.rcParams.update(rc)
        sns.set_palette("deep")
        yield


def no_data(ax, reason: str):
    """Mark a panel that cannot be drawn; keep the axes so the figure's layout stays the same."""
    ax.text(
        0.5,
        0.5,
        f"not enough data:\n{reason}",
        ha="center",
        va="center",
        transform=ax.transAxes,
        fontsize=9,
        color="0.35",
        wrap=True,
    )
    ax.set_xticks([])
    ax.set_yticks([])


def _log_y(ax, values):
    """Log y axis when every value is positive, with plain tick labels (0.5, 2, 10) instead of 2x10^0."""
    if len(values) and (np.asarray(values, float) > 0).all():
        ax.set_yscale("log")
        plain = FuncFormatter(lambda v, _: f"{v:g}")
        ax.yaxis.set_major_formatter(plain)
        ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _: f"{v:g}" if f"{v:.0e}"[0] in "125" else ""))


def _figure_legend(fig):
    """One legend per figure, right of the panels: per-panel legends hide the curves they explain."""
    best = None
    for ax in fig.axes:
        leg = ax.get_legend()
        if leg is not None:
            if best is None or len(leg.legend_handles) > len(best[0]):
                best = (leg.legend_handles, [t.get_text() for t in leg.get_texts()], leg.get_title().get_text())
            leg.remove()
    if best is not None:
        fig.legend(best[0], best[1], title=best[2] or None, loc="upper left", bbox_to_anchor=(1.0, 0.95), frameon=False)


def _bs_names(g: pd.DataFrame) -> dict:
    """Batch size -> legend label: "bs 128", and "bs 512 (full)" for the full-batch run."""
    labels = dict(zip(g["batch_size"], g["batch_label"].astype(str), strict=True)) if "batch_label" in g else {}
    return {
        int(b): f"bs {int(b)}" + (f" ({labels[b]})" if labels.get(b, str(b)) != str(b) else "")
        for b in sorted(set(g["batch_size"]))
    }


def _bs_palette(g: pd.DataFrame) -> dict:
    """Legend label -> colour, darker = larger, the same in every figure of an experiment."""
    names = _bs_names(g)
    colours = sns.color_palette("viridis_r", max(len(names), 2))
    return {name: colours[i] for i, name in enumerate(names.values())}


def _mode_order(modes) -> list[str]:
    return sorted(set(modes), key=lambda m: (m != "clean", m))


def _mode_dashes(modes) -> dict:
    # Clean training solid, robust training dotted (and further robust modes dashed variants).
    styles = [(1, 1.5), (4, 1.5), (4, 1.5, 1, 1.5)]
    out, i = {}, 0
    for m in _mode_order(modes):
        if m == "clean":
            out[m] = ""
        else:
            out[m] = styles[i % len(styles)]
            i += 1
    return out


def _spread(d: pd.DataFrame):
    """Error bars of one standard deviation, or none when every point has one seed (nothing to show,
    and seaborn's error bars of a lone NaN trip a pandas deprecation)."""
    return "sd" if d.groupby(["mode", "batch_size"])["seed"].nunique().max() > 1 else None


def _lineplot_bars(data, **kw):
    """sns.lineplot with error bars; hides a pandas deprecation that seaborn 0.13 trips inside matplotlib
    when a line has a single point (the plot itself is right)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Calling float on a single element Series", FutureWarning)
        return sns.lineplot(data, err_style="bars", **kw)


def _log_x_batch(ax, d: pd.DataFrame):
    """Batch sizes on a log2 axis, ticked at the sizes run; the full-batch run reads "512 (full)"."""
    bs = sorted(set(int(b) for b in d["batch_size"]))
    labels = dict(zip(d["batch_size"], d["batch_label"].astype(str), strict=True)) if "batch_label" in d else {}
    ax.set_xscale("log", base=2)
    ax.set_xticks(bs)
    ax.set_xticklabels([f"{b}\n({labels[b]})" if labels.get(b, str(b)) != str(b) else str(b) for b in bs])
    ax.minorticks_off()


def _trend_note(ax, d: pd.DataFrame):
    """Say on the panel why a trend cannot be read (one batch size) or has no spread (one seed)."""
    notes = []
    if d["batch_size"].nunique() < 2:
        notes.append("not enough data for a trend: one batch size")
    if d.groupby(["mode", "batch_size"])["seed"].nunique().max() < 2:
        notes.append("one seed per point: no spread")
    if notes:  # under the title: inside the axes it would hide data points
        ax.set_title(f"{ax.get_title()}\n({'; '.join(notes)})", fontsize=8)


def _read_json(path: Path):
    return read_json(path) if path.is_file() else None


def _run_file(base: Path, row, name: str) -> Path:
    """The run's ``name`` file (history, spectrum, inputs) that summary.csv names."""
    return base / str(row[f"{name}_file"])


# --- figures from summary.csv alone -------------------------------------------------------------------


def fig_lambda1_vs_batch(g, ctx):
    fig, ax = plt.subplots(figsize=(WIDTH / 2, 2.8))
    d = g.dropna(subset=["lambda_1"]) if "lambda_1" in g else g.iloc[0:0]
    if d.empty:
        no_data(ax, "no lambda_1 (spectrum step not run)")
        return fig
    modes = _mode_order(d["mode"])
    _lineplot_bars(
        d,
        x="batch_size",
        y="lambda_1",
        hue="mode",
        hue_order=modes,
        style="mode",
        style_order=modes,
        dashes=_mode_dashes(modes),
        markers=True,
        errorbar=_spread(d),
        ax=ax,
    )
    colours = dict(zip(modes, sns.color_palette(n_colors=len(modes)), strict=False))
    for mode, dm in d.groupby("mode"):  # the individual seeds behind each mean
        ax.scatter(dm["batch_size"], dm["lambda_1"], s=10, alpha=0.5, color=colours[mode], zorder=3)
    _log_x_batch(ax, d)
    _log_y(ax, d["lambda_1"])
    ax.set(xlabel="batch size", ylabel="λ₁ of weight Hessian", title="Top Hessian eigenvalue vs batch size")
    ax.legend(title="training", loc="upper left")
    _trend_note(ax, d)
    return fig


def fig_topk_eigenvalues(g, ctx):
    lam = sorted((c for c in g.columns if c.startswith("lambda_") and c[7:].isdigit()), key=lambda c: int(c[7:]))
    modes = _mode_order(g["mode"])
    fig, axes = plt.subplots(1, len(modes), figsize=(min(WIDTH, 3.6 * len(modes)), 2.8), squeeze=False, sharey=True)
    long = g.melt(id_vars=["mode", "batch_size", "seed"], value_vars=lam, var_name="i", value_name="eig").dropna()
    long["i"] = long["i"].str[7:].astype(int)
    long["batch"] = long["batch_size"].map(_bs_names(g))
    pal = _bs_palette(g)
    for ax, mode in zip(axes[0], modes, strict=False):
        d = long[long["mode"] == mode]
        if d.empty:
            no_data(ax, f"no eigenvalues ({mode})")
            continue
        order = [k for k in pal if k in set(d["batch"])]
        _lineplot_bars(
            d,
            x="i",
            y="eig",
            hue="batch",
            hue_order=order,
            palette=pal,
            marker="o",
            errorbar=_spread(d),
            ax=ax,
        )
        _log_y(ax, d["eig"])
        ax.set_xticks(sorted(d["i"].unique()))
        ax.set(
            xlabel="eigenvalue index i", ylabel="λᵢ of weight Hessian", title=f"top-{d['i'].max()} spectrum ({mode})"
        )
        ax.legend(title="batch size", fontsize=7)
    return fig


def fig_accuracy_vs_batch(g, ctx):
    fig, axes = plt.subplots(1, 2, figsize=(WIDTH, 2.8))
    eps, col = pick_eps(g, "fgsm_linf", "test", ctx["headline_eps"])
    modes = _mode_order(g["mode"])
    panels = [("test_acc", "test accuracy (%)", "Clean test accuracy")]
    panels.append((col, "FGSM accuracy (%)", f"FGSM (ℓ∞, ε = {eps:g}) test accuracy" if col else "FGSM accuracy"))
    for ax, (c, ylabel, title) in zip(axes, panels, strict=False):
        d = g.dropna(subset=[c]).copy() if c and c in g else g.iloc[0:0]
        if d.empty:
            no_data(ax, "no FGSM accuracies (attack step)" if c != "test_acc" else "no test accuracy")
            continue
        d["pct"] = 100 * d[c]
        _lineplot_bars(
            d,
            x="batch_size",
            y="pct",
            hue="mode",
            hue_order=modes,
            style="mode",
            style_order=modes,
            dashes=_mode_dashes(modes),
            markers=True,
            errorbar=_spread(d),
            ax=ax,
        )
        _log_x_batch(ax, d)
        ax.set(xlabel="batch size", ylabel=ylabel, title=title)
        ax.legend(title="training")
        _trend_note(ax, d)
    return fig


def fig_input_measures_vs_batch(g, ctx):
    fig, axes = plt.subplots(1, 2, figsize=(WIDTH, 2.8))
    modes = _mode_order(g["mode"])
    panels = [
        ("input_grad_norm", "‖∇ₓJ‖ (mean over images)", "Input-gradient norm"),
        ("input_lambda1", "λ₁(Hₓ) (mean over images)", "Top input-Hessian eigenvalue"),
    ]
    for ax, (prefix, ylabel, title) in zip(axes, panels, strict=False):
        parts = []
        for split in ("train", "test"):
            c = f"{prefix}_{split}"
            if c in g:
                keys = [k for k in ("mode", "batch_size", "seed", "batch_label") if k in g]
                parts.append(g[keys].assign(value=g[c], split=split))
        d = pd.concat(parts).dropna(subset=["value"]) if parts else pd.DataFrame()
        if d.empty:
            no_data(ax, "no input-side measurements (inputs step)")
            continue
        _lineplot_bars(
            d,
            x="batch_size",
            y="value",
            hue="mode",
            hue_order=modes,
            style="split",
            style_order=["test", "train"],
            markers=True,
            errorbar=_spread(d),
            ax=ax,
        )
        _log_x_batch(ax, d)
        _log_y(ax, d["value"])
        ax.set(xlabel="batch size", ylabel=ylabel, title=title)
        ax.legend(fontsize=7)
        _trend_note(ax, d)
    return fig


def fig_adversarial_vs_eps(g, ctx):
    cols = [(c, parse_acc_column(c)) for c in g.columns if parse_acc_column(c) and g[c].notna().any()]
    attacks = sorted(
        {p[0] for _, p in cols}, key=lambda a: (list(ATTACK_LABEL).index(a) if a in ATTACK_LABEL else 9, a)
    )
    modes = _mode_order(g["mode"])
    ncol = max(len(attacks), 1)
    fig, axes = plt.subplots(len(modes), ncol, figsize=(min(WIDTH, 2.6 * ncol + 0.6), 2.5 * len(modes)), squeeze=False)
    if not attacks:
        for ax in axes.flat:
            no_data(ax, "no adversarial accuracies (attack step)")
        return fig
    pal = _bs_palette(g)
    rows = []
    for c, (attack, eps, split) in cols:
        for key in ("clean_acc_" + split,):
            # eps = 0 is the clean accuracy on the same images: the curve's starting point.
            if key in g:
                rows.append(g[["mode", "batch_size", "seed"]].assign(attack=attack, eps=0.0, split=split, acc=g[key]))
        rows.append(g[["mode", "batch_size", "seed"]].assign(attack=attack, eps=eps, split=split, acc=g[c]))
    d = pd.concat(rows).dropna(subset=["acc"]).drop_duplicates()
    d["acc"] *= 100
    d["batch"] = d["batch_size"].map(_bs_names(g))
    for r, mode in enumerate(modes):
        for k, attack in enumerate(attacks):
            ax = axes[r, k]
            dd = d[(d["mode"] == mode) & (d["attack"] == attack)]
            if dd.empty:
                no_data(ax, f"no {attack} for {mode}")
                continue
            order = [b for b in pal if b in set(dd["batch"])]
            sns.lineplot(
                dd,
                x="eps",
                y="acc",
                hue="batch",
                hue_order=order,
                palette=pal,
                style="split",
                style_order=["test", "train"],
                markers=True,
                errorbar="sd",
                ax=ax,
                legend=(k == len(attacks) - 1),
            )
            xlabel = "ε (ℓ2 norm of δ)" if attack.endswith("l2") else "ε (ℓ∞, pixels in [0, 1])"
            ax.set(
                xlabel=xlabel,
                ylabel="accuracy (%)" if k == 0 else "",
                title=f"{ATTACK_LABEL.get(attack, attack)}, {mode} training",
                ylim=(-2, 102),
            )
            if k == len(attacks) - 1:
                ax.legend(fontsize=6.5, loc="upper right")
    return fig


# --- figures that read per-run curve files --------------------------------------------------------------


def fig_landscape_1d(g, ctx):
    rows = []
    for _, r in g.iterrows():
        spec = _read_json(_run_file(ctx["base"], r, "spectrum"))
        land = ((spec or {}).get("train") or {}).get("landscape_1d") or {}
        alpha = land.get("alpha") or []
        for split in ("train", "test"):
            loss = land.get(f"{split}_loss") or []
            if len(loss) == len(alpha) and alpha:
                rows.append(
                    pd.DataFrame(
                        {
                            "alpha": alpha,
                            "loss": loss,
                            "split": split,
                            "mode": r["mode"],
                            "batch_size": r["batch_size"],
                            "seed": r["seed"],
                        }
                    )
                )
    modes = _mode_order(g["mode"])
    fig, axes = plt.subplots(1, len(modes), figsize=(min(WIDTH, 3.6 * len(modes)), 2.8), squeeze=False, sharey=True)
    if not rows:
        for ax in axes.flat:
            no_data(ax, "no 1-D landscapes (spectrum step)")
        return fig
    d = pd.concat(rows).dropna(subset=["loss"])
    d["batch"] = d["batch_size"].map(_bs_names(g))
    pal = _bs_palette(g)
    for ax, mode in zip(axes[0], modes, strict=False):
        dd = d[d["mode"] == mode]
        if dd.empty:
            no_data(ax, f"no 1-D landscape ({mode})")
            continue
        order = [b for b in pal if b in set(dd["batch"])]
        sns.lineplot(
            dd,
            x="alpha",
            y="loss",
            hue="batch",
            hue_order=order,
            palette=pal,
            style="split",
            style_order=["train", "test"],
            errorbar="sd",
            ax=ax,
        )
        _log_y(ax, dd["loss"])
        ax.axvline(0, color="0.5", lw=0.6)
        ax.set(xlabel="α (step along top eigenvector v₁)", ylabel="cross-entropy loss", title=f"Loss along v₁ ({mode})")
        ax.legend(fontsize=6.5)
    return fig


def _mean_grid(grids):
    shapes = {np.shape(x) for x in grids}
    if len(shapes) != 1:
        return None
    return np.nanmean(np.stack([np.asarray(x, float) for x in grids]), axis=0)


def fig_landscape_2d(g, ctx):
    modes = _mode_order(g["mode"])
    mode = modes[0]  # clean where present: the surface the paper shows
    gm = g[g["mode"] == mode]
    bs = sorted(gm["batch_size"].unique())
    chosen = [bs[0], bs[-1]] if len(bs) > 1 else bs
    # constrained layout: it keeps the shared colour bar beside the panels (tight_layout cannot).
    fig, axes = plt.subplots(1, 2, figsize=(WIDTH, 3.0), squeeze=False, layout="constrained")
    surfaces = []
    for b in chosen:
        grids, alpha, beta = [], None, None
        for _, r in gm[gm["batch_size"] == b].iterrows():
            spec = _read_json(_run_file(ctx["base"], r, "spectrum"))
            land = ((spec or {}).get("train") or {}).get("landscape_2d") or {}
            if land.get("loss"):
                grids.append(land["loss"])
                alpha, beta = land.get("alpha"), land.get("beta")
        loss = _mean_grid(grids) if grids else None
        if loss is not None and alpha and beta:
            # loss[i][j] is the loss at (alpha[i], beta[j]); accept the transposed layout too.
            if loss.shape == (len(alpha), len(beta)):
                loss = loss.T
            if loss.shape == (len(beta), len(alpha)):
                surfaces.append((b, np.asarray(alpha), np.asarray(beta), loss, len(grids)))
    if not surfaces:
        for ax in axes.flat:
            no_data(ax, "no 2-D landscapes (spectrum step)")
        return fig
    finite = np.concatenate([s[3][np.isfinite(s[3])].ravel() for s in surfaces])
    lo, hi = max(finite.min(), 1e-6), finite.max()
    log = hi / lo > 20 and lo > 0
    levels = np.geomspace(lo, hi, 16) if log else np.linspace(finite.min(), hi, 16)
    norm = LogNorm(lo, hi) if log else None
    cs = None
    for ax, (b, alpha, beta, loss, n) in zip(axes[0], surfaces, strict=False):
        cs = ax.contourf(alpha, beta, np.clip(loss, lo, hi) if log else loss, levels=levels, norm=norm, cmap="magma_r")
        ax.contour(alpha, beta, np.clip(loss, lo, hi) if log else loss, levels=levels[::3], colors="k", linewidths=0.3)
        ax.plot([0], [0], marker="+", color="cyan", ms=8)
        ax.set(xlabel="α (along v₁)", ylabel="β (along v₂)", title=f"{mode}, batch {b} (mean of {n} seed(s))")
    if len(surfaces) < 2:
        no_data(axes[0, 1], "one batch size: nothing to compare")
    bar = fig.colorbar(cs, ax=axes[0].tolist(), label="train loss (shared scale)", shrink=0.9)
    bar.set_ticks(levels[::3])
    bar.set_ticklabels([f"{v:.3g}" for v in levels[::3]])
    bar.minorticks_off()
    return fig


def fig_training_dynamics(g, ctx):
    bs = sorted(g["batch_size"].unique())
    chosen = {bs[0], bs[-1]}
    rows = []
    for _, r in g[g["batch_size"].isin(chosen)].iterrows():
        path = _run_file(ctx["base"], r, "history")
        if path.is_file():
            h = pd.read_csv(path)
            rows.append(h.assign(mode=r["mode"], batch_size=r["batch_size"], seed=r["seed"]))
    fig, axes = plt.subplots(1, 2, figsize=(WIDTH, 2.8))
    d = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()
    modes = _mode_order(g["mode"])
    pal = _bs_palette(g)
    for ax, (c, ylabel, title) in zip(
        axes,
        [
            ("lambda1", "λ₁ of weight Hessian", "Sharpness during training"),
            ("grad_norm", "full-gradient norm ‖∇J‖", "Gradient norm during training"),
        ],
        strict=False,
    ):
        dd = d.dropna(subset=[c]) if c in d else pd.DataFrame()
        if dd.empty:
            no_data(ax, "no tracked values in history.csv\n(train.track.every = 0?)")
            continue
        dd = dd.assign(batch=dd["batch_size"].map(_bs_names(g)))
        m = _mode_order(dd["mode"])
        sns.lineplot(
            dd,
            x="epoch",
            y=c,
            hue="batch",
            hue_order=[b for b in pal if b in set(dd["batch"])],
            palette=pal,
            style="mode",
            style_order=m,
            dashes={k: v for k, v in _mode_dashes(modes).items() if k in m},
            errorbar="sd",
            ax=ax,
        )
        _log_y(ax, dd[c])
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set(xlabel="epoch", ylabel=ylabel, title=title)
        ax.legend(fontsize=6.5)
    return fig


def fig_input_hessian_spectrum(g, ctx):
    eig_rows, min_rows = [], []
    for _, r in g.iterrows():
        inp = _read_json(_run_file(ctx["base"], r, "inputs"))
        for img in (inp or {}).get("exact") or []:
            top = [v for v in (img.get("eigenvalues_top") or []) if v is not None]
            for v in top:
                eig_rows.append({"mode": r["mode"], "batch_size": r["batch_size"], "eig": v})
            mx, mn = img.get("max_eig"), img.get("min_eig")
            if mx is not None and mn is not None:
                min_rows.append({"mode": r["mode"], "batch_size": r["batch_size"], "rel": mn / max(abs(mx), 1e-300)})
    fig, axes = plt.subplots(1, 2, figsize=(WIDTH, 2.9))
    modes = _mode_order(g["mode"])
    tol = ctx["claims"]["input_psd_tol"]
    if not eig_rows:
        no_data(axes[0], "no exact input Hessians (inputs.exact_images = 0?)")
    else:
        d = pd.DataFrame(eig_rows)
        sns.stripplot(
            d,
            x="batch_size",
            y="eig",
            hue="mode",
            hue_order=[m for m in modes if m in set(d["mode"])],
            dodge=True,
            size=3,
            alpha=0.6,
            jitter=0.25,
            ax=axes[0],
        )
        if (d["eig"] > 0).all():
            _log_y(axes[0], d["eig"])
        else:  # negative eigenvalues: symlog keeps them visible beside the positive ones
            axes[0].set_yscale("symlog", linthresh=max(1e-3 * float(d["eig"].abs().max()), 1e-12))
        axes[0].axhline(0, color="k", lw=0.6)
        axes[0].set(xlabel="batch size", ylabel="top eigenvalues of Hₓ (per image)", title="Input-Hessian eigenvalues")
        axes[0].legend(title="training", fontsize=7)
    if not min_rows:
        no_data(axes[1], "no exact input Hessians")
    else:
        d = pd.DataFrame(min_rows)
        sns.stripplot(
            d,
            x="batch_size",
            y="rel",
            hue="mode",
            hue_order=[m for m in modes if m in set(d["mode"])],
            dodge=True,
            size=4,
            jitter=0.25,
            ax=axes[1],
        )
        axes[1].axhspan(-tol, tol, color="tab:green", alpha=0.15, label=f"±{tol:g} (tolerance)")
        axes[1].axhline(0, color="k", lw=0.6)
        axes[1].set(
            xlabel="batch size", ylabel="min eig(Hₓ) / max eig(Hₓ)", title="Saddle-free check: min eigenvalue ≥ 0"
        )
        axes[1].legend(fontsize=7)
    return fig


DRAW = {name: globals()[f"fig_{name}"] for name in FIGURES}


def _footer(fig, name, g, ctx):
    cfg = ctx["config"]
    train = cfg.get("train") or {}
    stop = sorted(set(g["stop_rule"].dropna().astype(str))) if "stop_rule" in g else []
    parts = [
        name,
        f"config: {ctx['path']}" if ctx["path"] else "config: (none given)",
        f"runs: {len(g)} ({g['seed'].nunique()} seed(s), {g['batch_size'].nunique()} batch size(s))",
        f"stop rule: {','.join(stop) or '?'}",
        f"lr scaling: {train.get('lr_scaling', '?')}",
    ]
    fig.text(0.0, -0.01, " · ".join(parts), ha="left", va="top", fontsize=5.5, color="0.4")


def _save(fig, png, pdf):
    # No timestamps in the files: the same summary gives byte-identical figures.
    write_with(png, lambda f: fig.savefig(f, format="png", bbox_inches="tight", metadata={"Software": None}))
    meta = {"CreationDate": None, "Creator": None}
    write_with(pdf, lambda f: fig.savefig(f, format="pdf", bbox_inches="tight", metadata=meta))
    plt.close(fig)


def make_figures(df: pd.DataFrame, experiment: str, kinds, png, pdf, settings: dict, base=".") -> None:
    """Draw each figure kind of one experiment ("{dataset}_{model}") to the given PNG and PDF files.

    settings: {"headline_eps", "claims" (thresholds), "config" (the validated config), "path"}."""
    if not (len(kinds) == len(png) == len(pdf)):
        raise LbhError(f"figures: {len(kinds)} kinds but {len(png)} PNG and {len(pdf)} PDF files")
    unknown = [k for k in kinds if k not in DRAW]
    if unknown:
        raise LbhError(f"figure kind(s) {', '.join(unknown)}: unknown (known: {', '.join(FIGURES)})")
    ctx = {"base": Path(base), **settings}
    ok = ok_runs(df)
    g = ok[(ok["dataset"].astype(str) + "_" + ok["model"].astype(str)) == experiment]
    with _theme():
        for kind, png_path, pdf_path in zip(kinds, png, pdf, strict=True):
            if g.empty:
                fig, ax = plt.subplots(figsize=(WIDTH / 2, 2.5))
                no_data(ax, f"no finished runs for {experiment}")
            else:
                fig = DRAW[kind](g, ctx)
            if fig.get_layout_engine() is None:
                fig.tight_layout()
            _figure_legend(fig)
            _footer(fig, experiment, g, ctx)
            _save(fig, png_path, pdf_path)
