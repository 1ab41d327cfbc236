"""What DVC tracks from the summary: headline metrics (`dvc metrics`) and tidy plot data (`dvc plots`)."""

from pathlib import Path

import pandas as pd

from lbhessian.core.errors import LbhError
from lbhessian.core.io import write_text
from lbhessian.core.results import KEY_COLUMNS, file_column
from lbhessian.report.summary import ok_runs, pick_eps


def headline_metrics(df: pd.DataFrame, headline_eps=None) -> dict:
    """Mean over seeds per experiment / mode / batch size: the numbers `dvc metrics show` tracks."""
    out = {"runs": int(len(df)), "diverged": int((df["status"].astype(str) != "ok").sum())}
    ok = ok_runs(df)
    split = "test" if any(c.endswith("_test") and c.startswith("acc_fgsm_linf") for c in df.columns) else "train"
    eps, fgsm_col = pick_eps(df, "fgsm_linf", split, headline_eps)
    if fgsm_col:
        out["fgsm_eps"] = eps
    for (dataset, model, mode), g in ok.groupby(["dataset", "model", "mode"], sort=True):
        block = {}
        for bs, gb in g.groupby("batch_size", sort=True):
            m = {"seeds": int(gb["seed"].nunique())}
            for col, name in [
                ("train_acc", "train_acc"),
                ("test_acc", "test_acc"),
                ("lambda_1", "lambda_1"),
                ("grad_norm", "grad_norm"),
                ("input_grad_norm_test", "input_grad_norm"),
                ("input_lambda1_test", "input_lambda1"),
                (fgsm_col, "fgsm_acc"),
            ]:
                if col and col in gb and gb[col].notna().any():
                    m[name] = float(gb[col].mean())
            block[f"bs{bs}"] = m
        out[f"{dataset}/{model}/{mode}"] = block
    return out


PLOTS = ["lambda1_vs_batch", "accuracy_vs_batch", "training_curves"]


def write_plot_data(df: pd.DataFrame, files, base=".", headline_eps=None) -> None:
    """Tidy CSVs for `dvc plots`, one row per point: ``files`` are the paths of the PLOTS, in that order."""
    if len(files) != len(PLOTS):
        raise LbhError(f"plot data: expected {len(PLOTS)} files ({', '.join(PLOTS)}), got {len(files)}")
    keys = KEY_COLUMNS
    ok = ok_runs(df)
    out = {}
    cols = keys + [c for c in ("lambda_1", "grad_norm", "trace") if c in ok]
    out["lambda1_vs_batch"] = ok[cols]
    acc = ok[keys + [c for c in ("train_acc", "test_acc") if c in ok]].copy()
    for split in ("train", "test"):
        eps, col = pick_eps(ok, "fgsm_linf", split, headline_eps)
        if col:
            acc[f"fgsm_acc_{split}"] = ok[col]
            acc["fgsm_eps"] = eps
    out["accuracy_vs_batch"] = acc
    curves = []
    for _, r in ok.iterrows():
        h = Path(base) / str(r[file_column("history")])
        if r[file_column("history")] and h.exists():
            hist = pd.read_csv(h)
            for k in keys:
                hist.insert(keys.index(k), k, r[k])
            curves.append(hist)
    history_cols = keys + ["epoch", "lr", "train_loss", "train_acc", "test_loss", "test_acc", "lambda1", "grad_norm"]
    out["training_curves"] = pd.concat(curves, ignore_index=True) if curves else pd.DataFrame(columns=history_cols)
    for name, path in zip(PLOTS, files, strict=True):
        write_text(path, out[name].to_csv(index=False))
