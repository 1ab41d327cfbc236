"""The tables step: one table per dataset and model in the paper's layout, as CSV, Markdown and HTML.

Rows: training mode and batch size (mean and standard deviation over seeds). Columns: seeds, train and
test accuracy, lambda_1..k of the weight Hessian, full-gradient norm, ||grad_x J||, lambda_1(H_x), and
the adversarial accuracy at each eps (train, test).
"""

import math
import re

import pandas as pd

from lbhessian.core.errors import LbhError
from lbhessian.core.io import write_text
from lbhessian.core.results import parse_acc_column
from lbhessian.report.summary import ok_runs

ATTACK_LABEL = {"fgsm_linf": "FGSM", "fgsm_l2": "FGSM-l2", "pgd_linf": "PGD"}


def _value_columns(df: pd.DataFrame) -> list[tuple[str, str]]:
    """(column, display label) in the paper's order, only for columns holding data."""
    cols = [("train_acc", "train acc"), ("test_acc", "test acc")]
    lam = sorted((c for c in df.columns if re.fullmatch(r"lambda_\d+", c)), key=lambda c: int(c[7:]))
    cols += [(c, f"λ{c[7:]}(H)") for c in lam]
    cols += [("grad_norm", "‖∇J‖"), ("trace", "tr(H)")]
    for split in ("train", "test"):
        cols += [(f"input_grad_norm_{split}", f"‖∇ₓJ‖ {split}"), (f"input_lambda1_{split}", f"λ1(Hₓ) {split}")]
    acc = [(c, parse_acc_column(c)) for c in df.columns if parse_acc_column(c)]
    acc.sort(
        key=lambda a: (
            list(ATTACK_LABEL).index(a[1][0]) if a[1][0] in ATTACK_LABEL else 99,
            a[1][0],
            a[1][1],
            a[1][2] != "train",
        )
    )
    cols += [(c, f"{ATTACK_LABEL.get(a, a)} ε={e:g} {s}") for c, (a, e, s) in acc]
    return [(c, label) for c, label in cols if c in df.columns and df[c].notna().any()]


def experiment_table(g: pd.DataFrame) -> pd.DataFrame:
    """Numeric table of one experiment: per (mode, batch size) the mean and sd of each measurement."""
    cols = _value_columns(g)
    rows = []
    order = sorted(g["mode"].unique(), key=lambda m: (m != "clean", m))
    for mode in order:
        for bs, gb in g[g["mode"] == mode].groupby("batch_size", sort=True):
            row = {
                "mode": mode,
                "batch_size": int(bs),
                "seeds": ",".join(str(s) for s in sorted(gb["seed"].unique())),
                "runs": len(gb),
            }
            for c, _ in cols:
                row[f"{c}_mean"] = gb[c].mean()
                row[f"{c}_sd"] = gb[c].std(ddof=1) if gb[c].notna().sum() > 1 else math.nan
            rows.append(row)
    return pd.DataFrame(rows)


def _fmt(mean, sd, col) -> str:
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "-"
    # Accuracies read best as percentages; everything else with 3-4 significant digits.
    if col.endswith("_acc") or col.startswith("acc_"):
        s = f"{100 * mean:.1f}"
        return s + (f" ± {100 * sd:.1f}" if not math.isnan(sd) else "")
    s = f"{mean:.3g}"
    return s + (f" ± {sd:.2g}" if not math.isnan(sd) else "")


def display_table(g: pd.DataFrame) -> pd.DataFrame:
    """The same table with "mean ± sd" strings and readable headers (accuracies in %)."""
    num = experiment_table(g)
    out = num[["mode", "batch_size", "seeds"]].rename(columns={"batch_size": "batch size", "seeds": "seed(s)"})
    for c, label in _value_columns(g):
        unit = " %" if (c.endswith("_acc") or c.startswith("acc_")) else ""
        out[label + unit] = [_fmt(m, s, c) for m, s in zip(num[f"{c}_mean"], num[f"{c}_sd"], strict=False)]
    return out


def to_markdown(frame: pd.DataFrame) -> str:
    head = "| " + " | ".join(frame.columns) + " |"
    sep = "| " + " | ".join("---" for _ in frame.columns) + " |"
    body = ["| " + " | ".join(str(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([head, sep, *body]) + "\n"


STYLE = (
    "body{font-family:sans-serif;font-size:13px;margin:1em}table{border-collapse:collapse;margin-bottom:1.5em}"
    "td,th{border:1px solid #bbb;padding:3px 6px;text-align:right;white-space:nowrap}th{background:#f3f3f3}"
)


def html_page(title: str, sections: list[tuple[str, pd.DataFrame, str]]) -> str:
    """A self-contained page: inline CSS, no scripts, no external links."""
    body = "".join(
        f"<h3>{name}</h3><p>{note}</p>{frame.to_html(index=False, border=0)}" for name, frame, note in sections
    )
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{title}</title><style>{STYLE}</style></head>"
        f"<body><h2>{title}</h2>{body}</body></html>\n"
    )


def experiments(df: pd.DataFrame) -> list[str]:
    return [f"{d}_{m}" for d, m in sorted(set(zip(df["dataset"], df["model"], strict=False)))]


def write_tables(df: pd.DataFrame, experiments, csv, md, all_md, all_html) -> None:
    """Per experiment ("{dataset}_{model}", in the order of the ``csv`` and ``md`` files) a numeric CSV and a
    Markdown table, plus all of them in one Markdown and one HTML page. An experiment without finished runs
    still gets its files (the workflow declares them), saying so."""
    if not experiments:
        raise LbhError("summary table: no (dataset, model) to tabulate")
    if not (len(experiments) == len(csv) == len(md)):
        raise LbhError(f"tables: {len(experiments)} experiments but {len(csv)} CSV and {len(md)} Markdown files")
    ok = ok_runs(df)
    md_all, sections = [], []
    for name, csv_path, md_path in zip(experiments, csv, md, strict=True):
        g = ok[(ok["dataset"] + "_" + ok["model"]) == name]
        n_div = int(((df["dataset"] + "_" + df["model"]) == name).sum() - len(g))
        note = "mean ± sd over seeds; accuracies in %" + (f"; {n_div} diverged run(s) left out" if n_div else "")
        if g.empty:
            num = pd.DataFrame(columns=["mode", "batch_size", "seeds", "runs"])
            disp = pd.DataFrame({"note": ["no finished runs"]})
        else:
            num, disp = experiment_table(g), display_table(g)
        write_text(csv_path, num.to_csv(index=False))
        text = f"### {name}\n\n{note}\n\n" + to_markdown(disp)
        write_text(md_path, text)
        md_all.append(text)
        sections.append((name, disp, note))
    write_text(all_md, "\n".join(md_all))
    write_text(all_html, html_page("Results per dataset and model", sections))
