"""Figures of curves: loss along v1 and training history (per-run files), adversarial accuracy against eps."""

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.ticker import MaxNLocator

from lbhessian.core.io import read_json
from lbhessian.core.results import attack_label, attack_rank, file_column, parse_acc_column
from lbhessian.report.figures import style as st


def run_file(ctx, row, name: str):
    """The run's ``name`` file (history, spectrum, inputs) that summary.csv names, or None when absent."""
    path = ctx["base"] / str(row[file_column(name)])
    return path if str(row[file_column(name)]) not in ("", "nan") and path.is_file() else None


def seed_lines(ax, d: pd.DataFrame, x: str, y: str, *, colour, style, label: str, key: str):
    """One thin line per seed (no band: a band over seeds on a log axis hides what each seed did)."""
    first = True
    for seed, ds in d.groupby("seed"):
        ds = ds.dropna(subset=[y]).sort_values(x)
        ax.plot(
            ds[x],
            ds[y],
            style,
            color=colour,
            lw=1.1,
            alpha=0.85,
            marker=".",
            ms=4,
            label=label if first else None,
            gid=f"seed:{key}:{seed}",
        )
        first = False


def fig_landscape_1d(g, ctx):
    rows = []
    for _, r in g.iterrows():
        path = run_file(ctx, r, "spectrum")
        land = ((read_json(path) if path else {}).get("train") or {}).get("landscape_1d") or {}
        for split in ("train", "test"):
            loss, alpha = land.get(f"{split}_loss") or [], land.get("alpha") or []
            if alpha and len(loss) == len(alpha):
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
    d = pd.concat(rows).dropna(subset=["loss"]) if rows else pd.DataFrame(columns=["mode", "loss"])
    names, colours = st.bs_names(g), st.bs_colours(g)
    title = lambda mode, _: f"Loss along v₁ ({mode})"  # noqa: E731
    fig, panels = st.mode_panels(g, d, "loss", title=title, reason="no 1-D landscape (spectrum step)")
    for ax, mode, dd, is_log in panels:
        for (bs, split), db in dd.groupby(["batch_size", "split"]):
            label = f"{names[int(bs)]}, {split}"
            seed_lines(
                ax,
                db,
                "alpha",
                "loss",
                colour=colours[int(bs)],
                style="-" if split == "train" else "--",
                label=label,
                key=f"{mode}:{int(bs)}:{split}",
            )
        if not is_log:
            ax.set_yscale("linear")
        ax.axvline(0, color="0.5", lw=0.6)
        ax.set(xlabel="α (step along v₁)", ylabel="cross-entropy loss")
        ax.legend(fontsize=6.5)
    return fig


def fig_training_dynamics(g, ctx):
    rows = []
    for _, r in g.iterrows():
        path = run_file(ctx, r, "history")
        if path:
            rows.append(pd.read_csv(path).assign(mode=r["mode"], batch_size=r["batch_size"], seed=r["seed"]))
    d = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=["mode", "batch_size", "seed", "epoch"])
    fig, axes = plt.subplots(1, 2, figsize=(st.WIDTH, 3.2))
    names, colours, styles = st.bs_names(g), st.bs_colours(g), st.mode_styles(g["mode"])
    panels = [
        ("lambda1", "λ₁ of weight Hessian", "Sharpness during training"),
        ("grad_norm", "full-gradient norm ‖∇J‖", "Gradient norm during training"),
    ]
    for ax, (c, ylabel, title) in zip(axes, panels, strict=True):
        ax.set_title(title)
        dd = d.dropna(subset=[c]) if c in d else d.iloc[0:0]
        if dd.empty:
            st.no_data(ax, "no tracked values in history.csv\n(train.track.every = 0?)")
            continue
        st.log_y(ax, dd[c])
        for (mode, bs), db in dd.groupby(["mode", "batch_size"]):
            seed_lines(
                ax,
                db,
                "epoch",
                c,
                colour=colours[int(bs)],
                style=styles[mode],
                label=f"{names[int(bs)]}, {mode}",
                key=f"{mode}:{bs}",
            )
        # Every batch size is promised: say which have no tracked point and why (they stopped early).
        lost = []
        for (mode, bs), gb in g.groupby(["mode", "batch_size"]):
            if dd[(dd["mode"] == mode) & (dd["batch_size"] == bs)].empty:
                stop = f" (stopped after {gb['epochs'].max():g} epochs)" if "epochs" in gb else ""
                lost.append(f"{mode} bs {bs}{stop}")
        if lost:
            st.note(ax, "no tracked point: " + ", ".join(lost))
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set(xlabel="epoch", ylabel=ylabel)
        ax.legend(fontsize=6.5)
    return fig


def fig_adversarial_vs_eps(g, ctx):
    cols = [(c, parse_acc_column(c)) for c in g.columns if parse_acc_column(c) and g[c].notna().any()]
    attacks = sorted({p[0] for _, p in cols}, key=lambda a: (attack_rank(a), a))
    modes = st.mode_order(g["mode"])
    ncol = max(len(attacks), 1)
    fig, axes = plt.subplots(
        len(modes), ncol, figsize=(min(st.WIDTH, 2.6 * ncol + 0.6), 2.6 * len(modes)), squeeze=False
    )
    if not attacks:
        for ax in axes.flat:
            st.no_data(ax, "no adversarial accuracies (attack step)")
        return fig
    keys = g[["mode", "batch_size", "seed"]]
    rows = []
    for c, (attack, eps, split) in cols:
        # eps = 0 is the clean accuracy on the same images: the curve's starting point.
        if f"clean_acc_{split}" in g:
            rows.append(keys.assign(attack=attack, eps=0.0, split=split, acc=100 * g[f"clean_acc_{split}"]))
        rows.append(keys.assign(attack=attack, eps=eps, split=split, acc=100 * g[c]))
    d = pd.concat(rows).dropna(subset=["acc"]).drop_duplicates()
    names, colours = st.bs_names(g), st.bs_colours(g)
    for r, mode in enumerate(modes):
        for k, attack in enumerate(attacks):
            ax, dd = axes[r, k], d[(d["mode"] == mode) & (d["attack"] == attack)]
            ax.set_title(f"{attack_label(attack)}, {mode} training")
            if dd.empty:
                st.no_data(ax, f"no {attack} for {mode}")
                continue
            grid = sorted(dd["eps"].unique())
            for (bs, split), db in dd.groupby(["batch_size", "split"]):
                label = f"{names[int(bs)]}, {split}"
                st.series(
                    ax,
                    db,
                    "eps",
                    "acc",
                    label=label,
                    colour=colours[int(bs)],
                    style="-" if split == "test" else "--",
                    grid=grid,
                    marker="o" if split == "test" else "s",
                )
            xlabel = "ε (ℓ2 norm of δ)" if attack.endswith("l2") else "ε (ℓ∞, pixels in [0, 1])"
            ax.set(xlabel=xlabel, ylabel="accuracy (%)" if k == 0 else "", ylim=(-2, 102))
            ax.legend(fontsize=6.5, loc="upper right")
    return fig
