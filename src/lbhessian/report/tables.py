"""The tables: per experiment the paper's summary (mean ± sd per training mode and batch size) and every run
(status, epochs, steps, every scalar), each split by topic so that no table is wider than a screen.
Accuracies are shown in % everywhere; the CSV keeps summary.csv's fractions (numbers for machines)."""

import math

import pandas as pd

from lbhessian.core.errors import LbhError
from lbhessian.core.io import write_text
from lbhessian.core.names import experiment_mask
from lbhessian.core.results import attack_label, attack_rank, lambda_columns, lambda_index, parse_acc_column
from lbhessian.report import writer
from lbhessian.report.summary import ok_runs

TOPICS = ["training", "weight Hessian", "input side", "adversarial"]


def is_accuracy(col: str) -> bool:
    return col.endswith("_acc") or col.startswith(("acc_", "clean_acc_"))


def value_columns(df: pd.DataFrame) -> list[tuple[str, str, str]]:
    """(column, label, topic) in the paper's order, only for columns holding data; labels carry the unit."""
    cols = [("epochs", "epochs", "training"), ("steps", "steps", "training"), ("train_loss", "train loss", "training")]
    cols += [("train_acc", "train acc %", "training"), ("test_acc", "test acc %", "training")]
    cols += [(c, f"λ{lambda_index(c)}(H)", "weight Hessian") for c in lambda_columns(df.columns)]
    cols += [("min_eigenvalue", "λmin(H)", "weight Hessian"), ("trace", "tr(H)", "weight Hessian")]
    cols += [("grad_norm", "‖∇J‖", "weight Hessian")]
    for split in ("train", "test"):
        cols += [(f"input_grad_norm_{split}", f"‖∇ₓJ‖ {split}", "input side")]
        cols += [(f"input_lambda1_{split}", f"λ1(Hₓ) {split}", "input side")]
    acc = [(c, parse_acc_column(c)) for c in df.columns if parse_acc_column(c)]
    acc.sort(key=lambda a: (attack_rank(a[1][0]), a[1][0], a[1][1], a[1][2] != "train"))
    cols += [(c, f"{attack_label(a, short=True)} ε={e:g} {s} %", "adversarial") for c, (a, e, s) in acc]
    return [(c, label, t) for c, label, t in cols if c in df.columns and df[c].notna().any()]


def experiment_table(g: pd.DataFrame) -> pd.DataFrame:
    """Numeric table of one experiment: per (mode, batch size) the mean and sd over seeds of each measurement."""
    cols = value_columns(g)
    rows = []
    for mode in sorted(g["mode"].unique(), key=lambda m: (m != "clean", m)):
        for bs, gb in g[g["mode"] == mode].groupby("batch_size", sort=True):
            row = {"mode": mode, "batch_size": int(bs), "seeds": ",".join(str(s) for s in sorted(gb["seed"].unique()))}
            row["runs"] = len(gb)
            for c, _, _ in cols:
                row[f"{c}_mean"] = gb[c].mean()
                row[f"{c}_sd"] = gb[c].std(ddof=1) if gb[c].notna().sum() > 1 else math.nan
            rows.append(row)
    return pd.DataFrame(rows)


def fmt(value, col: str, sd=math.nan) -> str:
    """One number as the report shows it: accuracies in % with one decimal, the rest with 3 significant digits."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if col in ("epochs", "steps"):
        return f"{value:g}" if math.isnan(sd) else f"{value:.1f} ± {sd:.1f}"
    if is_accuracy(col):
        return f"{100 * value:.1f}" + (f" ± {100 * sd:.1f}" if not math.isnan(sd) else "")
    return f"{value:.3g}" + (f" ± {sd:.2g}" if not math.isnan(sd) else "")


def setting_label(mode, bs) -> str:
    return f"{mode} · bs {int(bs)}"


def summary_tables(g: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Per topic: one row per (mode, batch size), "mean ± sd" over seeds; the first column names the setting."""
    num = experiment_table(g)
    out = {}
    for topic in TOPICS:
        cols = [(c, label) for c, label, t in value_columns(g) if t == topic]
        if not cols:
            continue
        frame = pd.DataFrame(
            {"setting": [setting_label(m, b) for m, b in zip(num["mode"], num["batch_size"], strict=True)]}
        )
        frame["seeds"] = num["seeds"]
        for c, label in cols:
            frame[label] = [fmt(m, c, s) for m, s in zip(num[f"{c}_mean"], num[f"{c}_sd"], strict=True)]
        out[topic] = frame
    return out


def run_tables(runs: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Per topic: every run (diverged ones too), with its status; the first column names the run."""
    runs = runs.sort_values(["mode", "batch_size", "seed"], key=lambda s: s if s.name != "mode" else s != "clean")
    label = [
        f"{m} · bs {int(b)} · seed {s}" for m, b, s in zip(runs["mode"], runs["batch_size"], runs["seed"], strict=True)
    ]
    out = {}
    for topic in TOPICS:
        cols = [(c, lab) for c, lab, t in value_columns(runs) if t == topic]
        if not cols:
            continue
        frame = pd.DataFrame({"run": label})
        if topic == "training":
            frame["status"] = list(runs["status"].astype(str))
            if "reached_target" in runs:
                frame["reached target"] = [("-" if pd.isna(v) else str(v)) for v in runs["reached_target"]]
        for c, lab in cols:
            frame[lab] = [fmt(v, c) for v in runs[c]]
        out[topic] = frame
    return out


def _sections(name, tables, prefix) -> str:
    return "".join(
        f"<h4>{writer.esc(t)}</h4>" + writer.html_table(f, id_=f"{prefix}-{name}-{t.replace(' ', '-')}")
        for t, f in tables.items()
    )


def experiment_html(df: pd.DataFrame, name: str) -> str:
    """Both views of one experiment: the per-setting summary, then every run."""
    all_runs = df[experiment_mask(df, name)]
    g = ok_runs(all_runs)
    n_div = len(all_runs) - len(g)
    note = "mean ± sd over seeds; accuracies in %" + (f"; {n_div} unfinished/diverged run(s) left out" if n_div else "")
    if g.empty:
        return f"<p class='note'>{name}: no finished runs</p>"
    return (
        f"<h3 id='tables-{name}'>{name}: per setting</h3><p class='note'>{note}</p>"
        + _sections(name, summary_tables(g), "setting")
        + f"<h3 id='runs-{name}'>{name}: every run</h3><p class='note'>one row per run, diverged ones included; "
        "accuracies in %</p>" + _sections(name, run_tables(all_runs), "run")
    )


def write_tables(df: pd.DataFrame, experiments, *, csv, md, all_md, all_html) -> None:
    """Per experiment (core.names.experiment_name, in the order of the ``csv`` and ``md`` files) a numeric CSV and a
    Markdown file, plus all of them in one Markdown and one HTML page. An experiment without finished runs
    still gets its files (the workflow declares them), saying so."""
    if not experiments:
        raise LbhError("summary table: no (dataset, model) to tabulate")
    if not (len(experiments) == len(csv) == len(md)):
        raise LbhError(f"tables: {len(experiments)} experiments but {len(csv)} CSV and {len(md)} Markdown files")
    ok = ok_runs(df)
    md_all, html = [], []
    for name, csv_path, md_path in zip(experiments, csv, md, strict=True):
        g = ok[experiment_mask(ok, name)]
        num = experiment_table(g) if not g.empty else pd.DataFrame(columns=["mode", "batch_size", "seeds", "runs"])
        write_text(csv_path, num.to_csv(index=False))
        text = f"### {name}\n\nmean ± sd over seeds; accuracies in %\n\n"
        text += (
            "\n".join(f"#### {t}\n\n" + writer.md_table(f) for t, f in summary_tables(g).items())
            if len(g)
            else "no finished runs\n"
        )
        write_text(md_path, text)
        md_all.append(text)
        html.append(experiment_html(df, name))
    write_text(all_md, "\n".join(md_all))
    body = writer.view("tables", "Results per dataset and model", "".join(html), home=True)
    write_text(all_html, writer.page("Results per dataset and model", [("tables", "Tables")], [], body))
