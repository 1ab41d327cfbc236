"""The figures' shared look and the one way every figure draws a series: seeds as dots, their mean as a line
that never bridges a missing x, and an interval that stays meaningful on a log axis."""

import contextlib
import math
import textwrap

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.ticker import MaxNLocator

WIDTH = 7.0  # inches: a two-column paper's text width
NO_DATA = "not enough data"


@contextlib.contextmanager
def theme():
    """The figures' look, for the figures only: the caller's matplotlib settings stay as they were."""
    rc = {"figure.dpi": 100, "savefig.dpi": 200, "legend.fontsize": 7.5, "legend.title_fontsize": 8}
    with plt.rc_context(), sns.axes_style("whitegrid"), sns.plotting_context("paper", font_scale=1.05):
        plt.rcParams.update(rc)
        yield


def no_data(ax, reason: str):
    """Mark a panel that cannot be drawn; keep the axes so the figure's layout stays the same."""
    ax.text(
        0.5,
        0.5,
        f"{NO_DATA}:\n" + textwrap.fill(reason, 28),
        ha="center",
        va="center",
        transform=ax.transAxes,
        fontsize=9,
        color="0.35",
    )
    ax.set_xticks([])
    if len(ax.get_shared_y_axes().get_siblings(ax)) < 2:  # a shared y axis keeps the other panels' ticks
        ax.set_yticks([])


def mode_panels(g: pd.DataFrame, d: pd.DataFrame, y: str, *, title, reason: str, sharey: bool = False):
    """One panel per training mode, side by side, each titled title(mode, rows of d for it); a mode without
    rows says "not enough data: reason ({mode})". Returns (figure, [(axes, mode, rows, log y?)] with data).
    ``sharey``: one y axis for every panel (ticks from all of d), for panels that are compared."""
    modes = mode_order(g["mode"])
    # 3 inches a panel: three modes side by side get a figure wider than a page column, not squeezed panels.
    fig, axes = plt.subplots(
        1, len(modes), figsize=(max(WIDTH / 2, 3.0 * len(modes) + 0.6), 3.0), squeeze=False, sharey=sharey
    )
    panels = []
    shared_log = sharey and len(d) and log_y(axes[0, 0], d[y])
    for ax, mode in zip(axes[0], modes, strict=True):
        dm = d[d["mode"] == mode] if len(d) else d
        ax.set_title(title(mode, dm))
        if dm.empty:
            no_data(ax, f"{reason} ({mode})")
        else:
            panels.append((ax, mode, dm, bool(shared_log) if sharey else log_y(ax, dm[y])))
    return fig, panels


def note(ax, text: str):
    """A visible remark under the panel's title (inside the axes it would hide data points)."""
    ax.set_title(f"{ax.get_title()}\n" + textwrap.fill(f"({text})", 48), fontsize=8)


def nice_log_ticks(lo: float, hi: float) -> list[float]:
    """Ticks for a log axis that bracket [lo, hi]: 1-2-5 per decade, 1..9 when that leaves fewer than 3, and
    linear steps for a narrow range (13-14)."""
    decades = range(math.floor(math.log10(lo)) - 1, math.ceil(math.log10(hi)) + 2)
    for cand in (
        [s * 10.0**k for k in decades for s in (1, 2, 5)],
        [s * 10.0**k for k in decades for s in range(1, 10)],
        list(MaxNLocator(nbins=4).tick_values(lo, hi)),
    ):
        below = [c for c in cand if 0 < c <= lo * (1 + 1e-9)]
        above = [c for c in cand if c >= hi * (1 - 1e-9)]
        if below and above:
            ticks = sorted(c for c in cand if max(below) <= c <= min(above))
            if len(ticks) >= 3:
                return ticks
    return [lo, hi]


def log_y(ax, values) -> bool:
    """Log y axis when every value is positive, with plain labels and ticks at or beyond both ends of the
    data (matplotlib's default leaves a log axis spanning 2-3.6 without a single labelled tick)."""
    v = np.asarray(values, float)
    v = v[np.isfinite(v)]
    if not len(v) or (v <= 0).any():
        return False
    ax.set_yscale("log")
    ticks = nice_log_ticks(v.min(), v.max())
    ax.set_yticks(ticks, [f"{t:.3g}" for t in ticks])
    ax.minorticks_off()
    ax.set_ylim(ticks[0] / 1.05, ticks[-1] * 1.05)
    return True


def log_x_batch(ax, d: pd.DataFrame):
    """Batch sizes on a log2 axis, ticked at the sizes run; the full-batch run reads "512 (full)"."""
    bs = sorted({int(b) for b in d["batch_size"]})
    labels = dict(zip(d["batch_size"], d["batch_label"].astype(str), strict=False)) if "batch_label" in d else {}
    ax.set_xscale("log", base=2)
    ax.set_xticks(bs, [f"{b}\n({labels[b]})" if labels.get(b, str(b)) != str(b) else str(b) for b in bs])
    ax.minorticks_off()


def mode_order(modes) -> list[str]:
    return sorted(set(modes), key=lambda m: (m != "clean", m))


def mode_styles(modes) -> dict:
    """Clean training solid, robust modes dotted / dashed: the same in every figure."""
    styles = ["-", ":", "--", "-."]
    return {m: styles[i % len(styles)] for i, m in enumerate(mode_order(modes))}


def mode_colours(modes) -> dict:
    return dict(zip(mode_order(modes), sns.color_palette("deep", max(len(set(modes)), 1)), strict=False))


def bs_names(g: pd.DataFrame) -> dict:
    """Batch size -> legend label: "bs 128", and "bs 512 (full)" for the full-batch run."""
    labels = dict(zip(g["batch_size"], g["batch_label"].astype(str), strict=False)) if "batch_label" in g else {}
    return {
        int(b): f"bs {int(b)}" + (f" ({labels[b]})" if labels.get(b, str(b)) != str(b) else "")
        for b in sorted(set(g["batch_size"]))
    }


def bs_colours(g: pd.DataFrame) -> dict:
    """Batch size -> colour, darker = larger, the same in every figure of an experiment."""
    sizes = sorted({int(b) for b in g["batch_size"]})
    return dict(zip(sizes, sns.color_palette("viridis_r", max(len(sizes), 2)), strict=False))


def _segments(xs, grid):
    """Split sorted xs into runs of neighbours on ``grid``: a line must not bridge an x with no data."""
    pos = {x: i for i, x in enumerate(grid)}
    out, cur = [], []
    for x in xs:
        if cur and pos[x] != pos[cur[-1]] + 1:
            out.append(cur)
            cur = []
        cur.append(x)
    return [*out, cur] if cur else out


def series(ax, d: pd.DataFrame, x: str, y: str, *, label: str, colour, style="-", log=False, grid=None, marker="o"):
    """One series: every seed as a dot, the mean over seeds as a line (geometric on a log axis), and +-1 sd
    over seeds as a bar (computed on log y when ``log``, so it stays positive and symmetric on the axis).
    ``grid``: every x of the panel; the line breaks where this series has no point at a grid x.
    Artists carry gids "seeds:", "mean:", "sd:" + label so that tests can read the drawn data back."""
    d = d[[x, y]].dropna()
    if d.empty:
        return
    v = np.log(d[y]) if log else d[y]
    stats = v.groupby(d[x]).agg(["mean", "std", "count"]).sort_index()
    centre = np.exp(stats["mean"]) if log else stats["mean"]
    ax.scatter(d[x], d[y], s=9, alpha=0.55, color=colour, zorder=3, linewidths=0, gid=f"seeds:{label}")
    grid = sorted(set(grid if grid is not None else stats.index))
    first = True
    for seg in _segments(list(stats.index), grid):
        (line,) = ax.plot(
            seg,
            centre[seg],
            style,
            marker=marker,
            ms=4,
            color=colour,
            lw=1.4,
            label=label if first else None,
            gid=f"mean:{label}",
        )
        first = False
    spread = stats[stats["count"] > 1]
    if not spread.empty:
        lo = spread["mean"] - spread["std"]
        hi = spread["mean"] + spread["std"]
        lo, hi = (np.exp(lo), np.exp(hi)) if log else (lo, hi)
        ax.vlines(spread.index, lo, hi, color=colour, lw=1.0, alpha=0.8, gid=f"sd:{label}")


def one_seed_note(ax, d: pd.DataFrame, keys=("mode", "batch_size"), trend=True):
    """Say on the panel why a trend cannot be read (one batch size) or has no spread (one seed); ``trend``:
    whether the panel reads a trend over batch size at all (not the top-k spectrum, whose x is the index)."""
    notes = []
    if trend and "batch_size" in keys and d["batch_size"].nunique() < 2:
        notes.append(f"{NO_DATA} for a trend: one batch size")
    if "train_eps" in keys and d["train_eps"].nunique() < 2:
        notes.append(f"{NO_DATA} for a trend: one training eps")
    if d.groupby(list(keys))["seed"].nunique().max() < 2:
        notes.append("one seed per point: no spread")
    if notes:
        note(ax, "; ".join(notes))


def symlog_y(ax, values, linthresh: float, max_ticks: int = 7):
    """A symmetric-log y axis for a signed quantity: linear within +-linthresh, logarithmic beyond, with at most
    ``max_ticks`` labelled ticks (0 and every k-th decade, both signs only where the data has them)."""
    v = np.asarray(values, float)
    v = v[np.isfinite(v)]
    linthresh = float(linthresh)
    ax.set_yscale("symlog", linthresh=linthresh, linscale=0.5)
    top = max(float(v.max()) if len(v) else linthresh, linthresh)
    bottom = min(float(v.min()) if len(v) else 0.0, 0.0)
    # Decades above the linear region only: a tick at +-linthresh would sit on the label of 0.
    lo_dec = math.floor(math.log10(linthresh)) + 1
    pos = list(range(lo_dec, max(math.ceil(math.log10(top)), lo_dec) + 1))
    neg = list(range(lo_dec, max(math.ceil(math.log10(-bottom)), lo_dec) + 1)) if bottom < -linthresh else []
    ticks_per_side = max((max_ticks - 1) // (2 if neg else 1), 1)
    pick = lambda decs: decs[::-1][:: max(math.ceil(len(decs) / ticks_per_side), 1)]  # noqa: E731 (top kept)
    ticks = sorted({0.0, *[10.0**k for k in pick(pos)], *[-(10.0**k) for k in pick(neg)]})
    ax.set_yticks(ticks, [tick_text(t) for t in ticks])
    ax.yaxis.set_minor_locator(plt.NullLocator())
    ax.set_ylim(-(10.0 ** (neg[-1])) * 1.5 if neg else -linthresh, 10.0 ** pos[-1] * 1.5)


def tick_text(t: float) -> str:
    """0, 1e-6, -1e-3, 10: a power of ten as 1eK outside 0.01..100."""
    if t == 0:
        return "0"
    k = round(math.log10(abs(t)))
    text = f"{10.0**k:g}" if -2 <= k <= 2 else f"1e{k}"
    return ("-" if t < 0 else "") + text


def dodge(modes, width: float = 0.12) -> dict:
    """x offset per training mode on a categorical batch axis: small, so that a point stays by its batch size
    (one category is 1 wide; seaborn's default dodge moved robust points halfway to the next batch size)."""
    order = mode_order(modes)
    mid = (len(order) - 1) / 2
    return {m: (i - mid) * width for i, m in enumerate(order)}
