"""Figures (PNG and PDF) from summary.csv, plus the per-run curve files it names.

One file per figure kind and experiment (core.names.experiment_name): {out}/{experiment}/{kind}.png|.pdf. Every
figure is drawn for any subset of the grid: a panel without its data says "not enough data" instead of failing, and a
series with a gap says which batch sizes it lacks. Modules: style (the look and the one series pattern),
batch (against batch size), curves (landscape along v1, training history, adversarial accuracy), maps
(2-D landscape, input-Hessian eigenvalues).
"""

from pathlib import Path

import matplotlib.pyplot as plt

from lbhessian.core.errors import LbhError
from lbhessian.core.io import write_with
from lbhessian.core.names import experiment_mask
from lbhessian.report.figures import batch, curves, maps
from lbhessian.report.figures.style import WIDTH, no_data, theme
from lbhessian.report.summary import ok_runs

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
    "robust_vs_train_eps",
]
DRAW = {name: getattr(m, f"fig_{name}") for m in (batch, curves, maps) for name in FIGURES if hasattr(m, f"fig_{name}")}


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
        fig.legend(
            best[0], best[1], title=best[2] or None, loc="upper left", bbox_to_anchor=(1.02, 0.95), frameon=False
        )


def _footer(fig, name, g, ctx):
    train = ctx["config"].get("train") or {}
    stop = sorted(set(g["stop_rule"].dropna().astype(str))) if "stop_rule" in g else []
    parts = [
        name,
        f"config: {ctx['path']}" if ctx.get("path") else "config: (none given)",
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


def draw(df, experiment: str, kind: str, settings: dict, base="."):
    """The figure of one kind for one experiment, not saved (the caller closes it)."""
    if kind not in DRAW:
        raise LbhError(f"figure kind {kind}: unknown (known: {', '.join(FIGURES)})")
    ctx = {"base": Path(base), **settings}
    ok = ok_runs(df)
    g = ok[experiment_mask(ok, experiment)]
    if g.empty:
        fig, ax = plt.subplots(figsize=(WIDTH / 2, 2.5))
        no_data(ax, f"no finished runs for {experiment}")
    else:
        fig = DRAW[kind](g, ctx)
    if fig.get_layout_engine() is None:
        fig.tight_layout()
    _figure_legend(fig)
    _footer(fig, experiment, g, ctx)
    return fig


def make_figures(df, experiment: str, kinds, *, png, pdf, settings: dict, base=".") -> None:
    """Draw each figure kind of one experiment (core.names.experiment_name) to the given PNG and PDF files.

    settings: {"headline_eps", "claims" (thresholds), "config" (the validated config), "path"}."""
    if not (len(kinds) == len(png) == len(pdf)):
        raise LbhError(f"figures: {len(kinds)} kinds but {len(png)} PNG and {len(pdf)} PDF files")
    for kind in kinds:  # every kind checked before the first is drawn
        if kind not in DRAW:
            raise LbhError(f"figure kind {kind}: unknown (known: {', '.join(FIGURES)})")
    with theme():
        for kind, png_path, pdf_path in zip(kinds, png, pdf, strict=True):
            fig = draw(df, experiment, kind, settings, base)
            _save(fig, png_path, pdf_path)
            plt.close(fig)
