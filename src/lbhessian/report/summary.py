"""The collect step: every run's outputs -> one tidy table (summary.csv), headline metrics, plot data.

summary.csv is the single source of the tables, the claims and the scalar figures. Figures that need
curves (landscapes, training history, input-Hessian spectra) follow its `*_file` columns back to the
per-run files. Every per-run file except metrics.json is optional: a missing one leaves empty cells.
"""

import math
from pathlib import Path

import numpy as np
import pandas as pd

from lbhessian.core.errors import LbhError
from lbhessian.core.io import read_json
from lbhessian.core.names import experiment_name
from lbhessian.core.results import (
    KEY_COLUMNS,
    RUN_FILES,
    acc_column,
    file_column,
    lambda_column,
    lambda_index,
    parse_acc_column,
)

# Columns every consumer (tables, claims, figures) may rely on; the rest depend on the grid. The "{kind}_file"
# columns name the per-run files a row was made from: the steps that need curves follow these back.
REQUIRED_COLUMNS = KEY_COLUMNS + ["status"] + [file_column(kind) for kind in RUN_FILES]


def _read(path, required: bool):
    if path is None or (not required and not Path(path).exists()):
        return None
    return read_json(path)


def _num(x):
    """A float, or NaN for null / missing / non-numeric (a diverged run writes null)."""
    try:
        v = float(x)
    except (TypeError, ValueError):
        return math.nan
    return v


def _robust_fields(robust) -> dict:
    if not robust:
        return {
            "robust": False,
            "robust_attack": "",
            "robust_norm": "",
            "robust_eps": math.nan,
            "robust_fraction": math.nan,
        }
    if not isinstance(robust, dict):
        raise LbhError(f"metrics.json 'robust': expected an object or null, got {type(robust).__name__}")
    eps = robust.get("eps")
    eps_list = eps if isinstance(eps, list) else [eps]
    eps_vals = [_num(e) for e in eps_list if e is not None]
    # Several eps in one mode means training mixed them; the largest is the strength that matters.
    return {
        "robust": True,
        "robust_attack": str(robust.get("attack", "")),
        "robust_norm": str(robust.get("norm", "")),
        "robust_eps": max(eps_vals) if eps_vals else math.nan,
        "robust_fraction": _num(robust.get("fraction")),
    }


def _spectrum_fields(spec: dict | None, path: Path) -> dict:
    if spec is None or spec.get("status") == "skipped":  # the step's marker for a diverged run
        return {}
    train = spec.get("train")
    if not isinstance(train, dict):
        raise LbhError(f"{path}: expected a 'train' object with the weight-Hessian measurements")
    row = {}
    eig = train.get("eigenvalues") or []
    for i, v in enumerate(eig, start=1):
        row[lambda_column(i)] = _num(v)
    res = [_num(r) for r in (train.get("residuals") or [])]
    row["residual_max"] = max(res) if res else math.nan
    row["hessian_method"] = train.get("method", "")
    row["hessian_samples"] = _num(train.get("samples"))
    row["hessian_matvecs"] = _num(train.get("matvecs"))
    # The cross-check solver's block: "power" when the main method is Lanczos, "lanczos" when it is power.
    check = train.get("power") or train.get("lanczos") or {}
    row["power_max_rel_diff"] = _num(check.get("max_rel_diff"))
    row["min_eigenvalue"] = _num(train.get("min_eigenvalue"))
    row["grad_norm"] = _num(train.get("grad_norm"))
    row["hessian_loss"] = _num(train.get("loss"))
    row["trace"] = _num(train.get("trace"))
    row["trace_stderr"] = _num(train.get("trace_stderr"))
    land = train.get("landscape_1d") or {}
    alpha, loss = land.get("alpha"), land.get("train_loss")
    if alpha and loss and len(alpha) == len(loss):
        a = np.asarray([_num(x) for x in alpha])
        lo = np.asarray([_num(x) for x in loss])
        if np.isfinite(lo).any():
            row["landscape_argmin_alpha"] = float(a[np.nanargmin(lo)])
            # One grid step: the resolution at which "minimum at 0" can be judged.
            row["landscape_alpha_step"] = float(np.min(np.diff(np.sort(a)))) if len(a) > 1 else math.nan
    for split, block in spec.items():
        if split in ("train", "seconds") or not isinstance(block, dict):
            continue
        eig = block.get("eigenvalues") or []
        row[f"{split}_lambda_1"] = _num(eig[0]) if eig else math.nan
        row[f"{split}_grad_norm"] = _num(block.get("grad_norm"))
    row["spectrum_seconds"] = _num(spec.get("seconds"))
    return row


def exact_images(inp: dict | None) -> list[dict]:
    """Every image with an exact input Hessian in a run's inputs.json, train and test (older files: test only)."""
    return ((inp or {}).get("exact") or []) + ((inp or {}).get("exact_train") or [])


def exact_min_rel(exact: list[dict]) -> np.ndarray:
    """Per image, min eig(H_x) / max eig(H_x) as claim 6a judges it: eigenvalues within the float64 noise floor
    of forming H_x (rank_tol: the floor the rank also uses) are zero, not negative curvature (at a saturated
    softmax max_eig itself is near that floor); relative to the largest, as round-off scales with it."""
    min_eig = np.array([_num(e.get("min_eig")) for e in exact], float)
    max_eig = np.array([_num(e.get("max_eig")) for e in exact], float)
    scale = np.maximum(np.abs(max_eig), np.finfo(float).tiny)
    floor = np.array([_num(e.get("rank_tol")) for e in exact], float)
    return np.where(np.abs(min_eig) <= np.nan_to_num(floor, nan=0.0), 0.0, min_eig) / scale


def _inputs_fields(inp: dict | None) -> dict:
    if inp is None:
        return {}
    row = {}
    for split, block in inp.items():
        if split.startswith("exact") or not isinstance(block, dict):
            continue
        row[f"input_grad_norm_{split}"] = _num(block.get("grad_norm_mean"))
        row[f"input_grad_norm_{split}_std"] = _num(block.get("grad_norm_std"))
        row[f"input_lambda1_{split}"] = _num(block.get("lambda1_mean"))
        row[f"input_lambda1_{split}_std"] = _num(block.get("lambda1_std"))
        row[f"input_samples_{split}"] = _num(block.get("samples"))
    exact = exact_images(inp)
    for split in ("train", "test"):  # claim 6 needs both splits (older inputs.json: test images only)
        row[f"input_exact_images_{split}"] = sum(e.get("split", "test") == split for e in exact)
    if exact:
        min_eig = np.array([_num(e.get("min_eig")) for e in exact])
        excess = [_num(e.get("rank")) - (_num(e.get("classes")) - 1) for e in exact]
        row["input_exact_images"] = len(exact)
        row["input_exact_min_eig"] = float(np.nanmin(min_eig)) if np.isfinite(min_eig).any() else math.nan
        rel = exact_min_rel(exact)
        row["input_exact_min_rel"] = float(np.nanmin(rel)) if np.isfinite(rel).any() else math.nan
        row["input_exact_rank_excess"] = float(np.nanmax(excess)) if np.isfinite(excess).any() else math.nan
    row["inputs_seconds"] = _num(inp.get("seconds"))
    return row


def _attack_fields(att: dict | None) -> dict:
    if att is None:
        return {}
    row = {}
    for split, block in att.items():
        if not isinstance(block, dict):
            continue
        row[f"clean_acc_{split}"] = _num(block.get("clean_acc"))
        for attack, by_eps in block.items():
            if isinstance(by_eps, dict):
                for eps, acc in by_eps.items():
                    row[acc_column(attack, eps, split)] = _num(acc)
    row["attack_seconds"] = _num(att.get("seconds"))
    row["attack_images_per_second"] = _num(att.get("images_per_second"))
    return row


def collect_run(files: dict) -> dict:
    """One summary row from one run's files ({"metrics": path, "history": ..., "spectrum": ..., ...});
    metrics is required, a missing other file leaves empty cells."""
    path = Path(files["metrics"])
    metrics = _read(path, required=True)
    if not isinstance(metrics, dict):
        raise LbhError(f"{path}: expected a JSON object")
    row = {}
    for key in KEY_COLUMNS:
        if metrics.get(key) is None:
            raise LbhError(f"{path}: missing '{key}'")
        row[key] = metrics[key]
    try:
        row["batch_size"] = int(row["batch_size"])
        row["seed"] = int(row["seed"])
    except (TypeError, ValueError):
        raise LbhError(f"{path}: 'batch_size' and 'seed' must be integers") from None
    row["status"] = metrics.get("status", "ok")
    row["batch_label"] = str(metrics.get("batch_label", row["batch_size"]))  # "full" for gradient descent
    row.update(_robust_fields(metrics.get("robust")))
    row["stop_rule"] = metrics.get("stop_rule", "")
    row["lr_scaling"] = metrics.get("lr_scaling", "")
    row["reached_target"] = metrics.get("reached_target")  # null under the epochs rule
    row["steps"] = _num(metrics.get("steps"))
    row["train_size"] = _num(metrics.get("train_size"))
    row["epochs"] = _num(metrics.get("epochs"))
    row["lr"] = _num(metrics.get("lr"))
    for key in ("train_loss", "train_acc", "test_loss", "test_acc"):
        row[key] = _num(metrics.get(key))
    # Whether the end point had settled (training.stopping.settledness): None when too little was tracked.
    row["settled"] = metrics.get("settled")
    row["settle_lambda1_change"] = _num(metrics.get("settle_lambda1_change"))
    row["settle_loss_change"] = _num(metrics.get("settle_loss_change"))
    row["settle_steps"] = _num(metrics.get("settle_steps"))
    row["settling_from_step"] = _num(metrics.get("settling_from_step"))
    row["train_seconds"] = _num(metrics.get("seconds"))
    spec_path = files.get("spectrum")
    row.update(_spectrum_fields(_read(spec_path, required=False), spec_path))
    row.update(_inputs_fields(_read(files.get("inputs"), required=False)))
    row.update(_attack_fields(_read(files.get("attack"), required=False)))
    secs = [row.get(k, math.nan) for k in ("train_seconds", "spectrum_seconds", "inputs_seconds", "attack_seconds")]
    row["total_seconds"] = float(np.nansum(secs)) if np.isfinite(secs).any() else math.nan
    for kind in RUN_FILES:
        row[file_column(kind)] = str(files[kind]) if files.get(kind) else ""
    return row


def _column_order(columns) -> list[str]:
    def rank(c):
        if c in KEY_COLUMNS:
            return (0, KEY_COLUMNS.index(c), 0.0, c)
        if (i := lambda_index(c)) is not None:
            return (2, 0, float(i), c)
        if p := parse_acc_column(c):
            return (3, 0, p[1], c)
        if c.endswith("_file"):
            return (9, 0, 0.0, c)
        return (1, 0, 0.0, c) if not c.endswith("seconds") else (4, 0, 0.0, c)

    return sorted(columns, key=rank)


def collect(runs: list[dict]) -> pd.DataFrame:
    """The summary table, one row per run; ``runs`` lists each run's files (see ``collect_run``)."""
    if not runs:
        raise LbhError("collect: empty list of runs")
    df = pd.DataFrame([collect_run(files) for files in runs])
    df = df[_column_order(df.columns)]
    return df.sort_values(KEY_COLUMNS, kind="stable").reset_index(drop=True)


def read_summary(path, required=REQUIRED_COLUMNS) -> pd.DataFrame:
    """summary.csv with its key columns checked; an empty table is an error (nothing to report)."""
    path = Path(path)
    if not path.exists():
        raise LbhError(f"{path}: summary table not found (run `lbhessian collect` first)")
    try:
        df = pd.read_csv(path, keep_default_na=True, na_values=[""])
    except pd.errors.EmptyDataError:
        raise LbhError(f"{path}: summary table is empty (no header, no runs)") from None
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise LbhError(f"{path}: missing column(s) {', '.join(missing)}")
    if df.empty:
        raise LbhError(f"{path}: summary table has no rows (no runs collected)")
    df["robust"] = df.get("robust", False)
    df["robust"] = df["robust"].fillna(False).astype(bool)
    for c in ("batch_size", "seed"):
        if not pd.api.types.is_integer_dtype(df[c]):
            raise LbhError(f"{path}: column '{c}' must hold integers")
    df["mode"] = df["mode"].astype(str)
    return df


def ok_runs(df: pd.DataFrame) -> pd.DataFrame:
    """Runs that finished (a diverged run has no meaningful curvature or accuracy)."""
    return df[df["status"].astype(str) == "ok"]


def pick_eps(df: pd.DataFrame, attack: str, split: str, wanted=None):
    """The eps column to use for attack/split: wanted if present, else the nearest one; None if none."""
    cols = {}
    for c in df.columns:
        p = parse_acc_column(c)
        if p and p[0] == attack and p[2] == split and df[c].notna().any():
            cols[p[1]] = c
    if not cols:
        return None, None
    if wanted is None:
        eps = sorted(cols)[len(cols) // 2]
    else:
        eps = min(cols, key=lambda e: (abs(e - float(wanted)), e))
    return eps, cols[eps]


def unsettled_runs(runs: pd.DataFrame) -> list[str]:
    """Labels ("mnist5k_M1 clean bs16 seed3") of runs whose metrics say their end point had not settled."""
    if "settled" not in runs:
        return []
    flag = runs["settled"].astype(str).str.lower().isin(["false", "0", "0.0"])
    return [
        f"{experiment_name(r.dataset, r.model)} {r.mode} bs{r.batch_size} seed{r.seed}" for r in runs[flag].itertuples()
    ]
