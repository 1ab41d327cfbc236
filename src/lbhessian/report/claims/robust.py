"""Claims about accuracy and the inputs: 4 (generalization gap), 5 (robustness falls), 6 (input Hessian
saddle-free), 7 (robust training flattens)."""

import numpy as np
import pandas as pd

from lbhessian.core.results import eps_key, parse_acc_column
from lbhessian.report.claims.common import Context, extremes, g, mean_by_batch, with_values
from lbhessian.report.stats import FAILS, HOLDS, INCONCLUSIVE, Estimate, difference, trend, verdict


def _reached(df: pd.DataFrame) -> pd.Series:
    return df.get("reached_target", pd.Series("", index=df.index)).astype(str).str.lower().isin(["true", "1", "1.0"])


def same_stopping_point(clean: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """The runs that stopped for the same reason: under target_loss, those that reached the target
    (a run stopped by the epoch cap is under-trained, not comparable); under epochs, all."""
    rules = sorted(set(clean["stop_rule"].dropna().astype(str))) if "stop_rule" in clean else []
    if len(rules) > 1:
        return clean.iloc[0:0], f"runs used different stopping rules ({', '.join(rules)})"
    if rules == ["target_loss"]:
        keep = _reached(clean)
        dropped = clean[~keep]
        note = "; not at the target loss (left out): " + ", ".join(
            f"bs{r.batch_size} seed{r.seed}" for r in dropped.itertuples()
        )
        return clean[keep], "stop rule target_loss, runs that reached it" + (note if len(dropped) else "")
    return clean, f"stop rule {rules[0] if rules else 'unknown'}: the same budget for every run"


def claim4(ctx: Context, clean: pd.DataFrame) -> list[dict]:
    d, note = same_stopping_point(clean)
    lo, hi, blo, bhi = extremes(d, "test_acc")
    gap = ctx.t["min_acc_gap"]
    est = difference(lo, hi, ctx.level, "greater", bar=gap)
    detail = f"bs{blo} ({len(lo)} runs) - bs{bhi} ({len(hi)} runs); {note}"
    missing = "" if est.ci_low is not None else f"{est.why}: more seeds at both extreme batch sizes reaching the target"
    return [
        ctx.row(
            "4",
            "4",
            "clean",
            statistic="test accuracy at the smallest batch - at the largest (same stopping point)",
            est=est,
            threshold=f"95% interval above {g(gap)}",
            verdict=verdict(est, gap, +1),
            bar=gap,
            direction=+1,
            detail=detail,
            figure="accuracy_vs_batch",
            unit="fraction",
            missing=missing,
        )
    ]


def acc_columns(df: pd.DataFrame, attack: str, split: str) -> list[tuple[float, str]]:
    """(eps, column) of one attack and split with any value, by eps."""
    cols = []
    for c in df.columns:
        p = parse_acc_column(c)
        if p and p[0] == attack and p[2] == split and df[c].notna().any():
            cols.append((p[1], c))
    return sorted(cols)


def claim5(ctx: Context, clean: pd.DataFrame) -> list[dict]:
    split = ctx.t["split"]
    rows = []
    cols = acc_columns(clean, "fgsm_linf", split)
    if not cols:
        rows.append(
            ctx.missing_row(
                "5",
                "5a.1",
                "clean",
                statistic=f"FGSM accuracy ({split})",
                threshold="-",
                missing="no FGSM l-inf eps grid",
            )
        )
    for i, (eps, col) in enumerate(cols, start=1):
        d = with_values(clean, col)
        est = trend(np.log2(d["batch_size"]), d[col].astype(float), ctx.level, "less")
        rows.append(
            ctx.slope_row(
                "5",
                f"5a.{i}",
                "clean",
                statistic=f"slope of FGSM accuracy ({split}, eps {g(eps)}) per doubling of batch",
                est=est,
                direction=-1,
                detail=mean_by_batch(d, col),
                figure="adversarial_vs_eps",
                unit="fraction",
            )
        )
    for check, col, label in (
        ("5b", f"input_grad_norm_{split}", "||grad_x J||"),
        ("5c", f"input_lambda1_{split}", "lambda_1(H_x)"),
    ):
        d = with_values(clean, col, positive=True)
        est = trend(np.log2(d["batch_size"]), np.log2(d[col].astype(float)), ctx.level, "greater")
        rows.append(
            ctx.slope_row(
                "5",
                check,
                "clean",
                statistic=f"slope of log {label} ({split}) on log batch size",
                est=est,
                direction=+1,
                detail=mean_by_batch(d, col),
                figure="input_measures_vs_batch",
            )
        )
    return rows


def claim6(ctx: Context, runs: pd.DataFrame) -> list[dict]:
    tol = ctx.t["input_psd_tol"]
    counts = {
        s: int(runs.get(f"input_exact_images_{s}", pd.Series(dtype=float)).fillna(0).sum()) for s in ("train", "test")
    }
    images = f"{counts['train']} train + {counts['test']} test images"
    lacking = [s for s, n in counts.items() if n == 0]
    missing = f"exact input Hessians of {' and '.join(lacking)} images (inputs.exact_images)" if lacking else ""
    test = "none: exact float64 eigendecomposition of every sampled image"
    rows = []
    for check, col, stat, thr, bad in (
        (
            "6a",
            "input_exact_min_rel",
            "min over images of min eig(H_x) / max eig(H_x)",
            f">= -{g(tol)}",
            lambda v: v.min() < -tol,
        ),
        ("6b", "input_exact_rank_excess", "max over images of rank(H_x) - (C - 1)", "<= 0", lambda v: v.max() > 0),
    ):
        v = with_values(runs, col)[col].astype(float) if col in runs else pd.Series(dtype=float)
        effect = (v.min() if check == "6a" else v.max()) if len(v) else None
        est = Estimate(None if effect is None else float(effect), None, None, None, len(v), test)
        # One counterexample fails; holding needs both splits.
        verdict_ = INCONCLUSIVE if effect is None else FAILS if bad(v) else INCONCLUSIVE if lacking else HOLDS
        rows.append(
            ctx.row(
                "6",
                check,
                "all",
                statistic=stat,
                est=est,
                threshold=thr,
                verdict=verdict_,
                detail=images,
                figure="input_hessian_spectrum",
                missing=missing or "no exact input Hessians",
            )
        )
    return rows


def _train_eps(runs: pd.DataFrame) -> pd.Series:
    eps = pd.to_numeric(runs.get("robust_eps", pd.Series(np.nan, index=runs.index)), errors="coerce")
    return pd.Series(np.where(runs["robust"], eps, 0.0), index=runs.index)


def claim7(ctx: Context, runs: pd.DataFrame) -> list[dict]:
    split = ctx.t["split"]
    d = runs.assign(train_eps=_train_eps(runs)).dropna(subset=["train_eps"])
    levels = {int(b): sorted(set(gb["train_eps"])) for b, gb in d.groupby("batch_size")}
    judged = {b: lv for b, lv in levels.items() if len(lv) >= 3}
    if not judged:
        found = "; ".join(f"bs{b}: {', '.join(g(e) for e in lv)}" for b, lv in levels.items()) or "no runs"
        need = f"at least 3 training eps (clean = 0 plus two robust modes) at one batch size; found {found}"
        return [
            ctx.missing_row("7", c, "all", statistic=s, threshold="-", missing=need, figure=f)
            for c, s, f in (
                ("7a", "slope of log lambda_1 on training eps", "robust_vs_train_eps"),
                ("7b", "slope of FGSM accuracy on training eps", "robust_vs_train_eps"),
                ("7c", "slope of PGD accuracy on training eps", "adversarial_vs_eps"),
            )
        ]
    rows = []
    for b, lv in judged.items():
        gb = d[d["batch_size"] == b]
        lam = with_values(gb, "lambda_1", positive=True)
        est = trend(lam["train_eps"], np.log2(lam["lambda_1"].astype(float)), ctx.level, "less")
        detail = f"bs{b}, training eps {', '.join(g(e) for e in lv)}, {len(lam)} runs"
        rows.append(
            ctx.slope_row(
                "7",
                f"7a.bs{b}",
                "all",
                statistic="slope of log2 lambda_1 on the training eps",
                est=est,
                direction=-1,
                detail=detail,
                figure="robust_vs_train_eps",
            )
        )
        trained = {eps_key(e) for e in lv}
        for check, attack, name in (("7b", "fgsm_linf", "FGSM"), ("7c", "pgd_linf", "PGD")):
            cols = [(e, c) for e, c in acc_columns(gb, attack, split) if eps_key(e) not in trained]
            if not cols:
                need = f"a {name} eps other than the training eps ({', '.join(g(e) for e in lv)}) in the attack grid"
                stat = f"slope of {name} accuracy on training eps"
                rows.append(
                    ctx.missing_row(
                        "7",
                        f"{check}.bs{b}",
                        "all",
                        statistic=stat,
                        threshold="-",
                        missing=need,
                        figure="adversarial_vs_eps",
                    )
                )
            for i, (eps, col) in enumerate(cols, start=1):
                a = with_values(gb, col)
                est = trend(a["train_eps"], a[col].astype(float), ctx.level, "greater")
                rows.append(
                    ctx.slope_row(
                        "7",
                        f"{check}.bs{b}.{i}",
                        "all",
                        statistic=f"slope of {name} accuracy ({split}, eps {g(eps)}) on the training eps",
                        est=est,
                        direction=+1,
                        detail=f"bs{b}, {len(a)} runs",
                        figure="robust_vs_train_eps" if attack == "fgsm_linf" else "adversarial_vs_eps",
                        unit="fraction",
                    )
                )
    return rows
