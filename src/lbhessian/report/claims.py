"""The claims step: each claim of the paper (docs: shared/notes/paper-spec.md) -> statistic, threshold, verdict.

Everything is computed from summary.csv; thresholds come from the config's `report.claims` section
(defaults below). A check without the data it needs (one batch size, no robust runs, a measurement
switched off) says "not enough data" instead of guessing.
"""

import math

import numpy as np
import pandas as pd

from lbhessian.report.summary import ok_runs, pick_eps

HOLDS, FAILS, NO_DATA = "holds", "fails", "not enough data"

TITLES = {
    "1": "Sharpness (lambda_1) grows with batch size",
    "2": "The whole top-k spectrum moves up at the largest batch",
    "3": "Not saddle points: positive top-k, 1-D minimum at 0, small gradient",
    "4": "Generalization gap: large batch tests worse",
    "5": "Robustness falls with batch size",
    "6": "Input Hessian is saddle-free (PSD, rank <= C-1)",
    "7": "Robust training flattens and is more robust",
    "8": "Power iteration agrees with Lanczos",
}


def spearman(x, y) -> float:
    """Spearman rank correlation; NaN when either side is constant (no trend can be measured)."""
    x, y = pd.Series(np.asarray(x, float)), pd.Series(np.asarray(y, float))
    if x.nunique() < 2 or y.nunique() < 2:
        return math.nan
    return float(x.rank().corr(y.rank()))


def _row(claim, check, exp, mode, statistic, value, threshold, verdict, detail=""):
    return {
        "claim": claim,
        "check": check,
        "title": TITLES[claim],
        "experiment": exp,
        "mode": mode,
        "statistic": statistic,
        "value": value,
        "threshold": threshold,
        "verdict": verdict,
        "detail": detail,
    }


def _means(g: pd.DataFrame, col: str) -> pd.Series:
    """Mean over seeds per batch size, batch sizes with no value dropped."""
    if col not in g:
        return pd.Series(dtype=float)
    return g.dropna(subset=[col]).groupby("batch_size")[col].mean().sort_index()


def _trend(claim, check, exp, mode, g, col, label, sign, t):
    """Spearman rho of batch size and col over all runs; sign +1: must rise, -1: must fall."""
    stat = f"Spearman rho(batch size, {label}) over all seeds"
    thr = f">= {t['min_spearman']}" if sign > 0 else f"<= -{t['min_spearman']}"
    d = g.dropna(subset=[col]) if col in g else g.iloc[0:0]
    nb = d["batch_size"].nunique()
    if nb < 2 or len(d) < 3:
        detail = f"{len(d)} runs, {nb} batch size(s) with {label}: need >= 2 batch sizes and >= 3 runs"
        return _row(claim, check, exp, mode, stat, math.nan, thr, NO_DATA, detail)
    rho = spearman(d["batch_size"], d[col])
    if math.isnan(rho):
        return _row(claim, check, exp, mode, stat, rho, thr, NO_DATA, f"{label} is constant over {len(d)} runs")
    m = _means(d, col)
    verdict = HOLDS if sign * rho >= t["min_spearman"] else FAILS
    detail = f"{len(d)} runs; mean {label}: bs{m.index[0]} {m.iloc[0]:.4g} -> bs{m.index[-1]} {m.iloc[-1]:.4g}"
    return _row(claim, check, exp, mode, stat, rho, thr, verdict, detail)


def _claim1(exp, clean, t):
    rows = [_trend("1", "1a", exp, "clean", clean, "lambda_1", "lambda_1", +1, t)]
    m = _means(clean, "lambda_1")
    stat, thr = "mean lambda_1(largest batch) / mean lambda_1(smallest batch)", f">= {t['min_ratio']}"
    if len(m) < 2:
        rows.append(_row("1", "1b", exp, "clean", stat, math.nan, thr, NO_DATA, f"{len(m)} batch size(s)"))
    elif m.iloc[0] <= 0:
        rows.append(_row("1", "1b", exp, "clean", stat, math.nan, thr, NO_DATA, "lambda_1 <= 0 at smallest batch"))
    else:
        ratio = float(m.iloc[-1] / m.iloc[0])
        verdict = HOLDS if ratio >= t["min_ratio"] else FAILS
        rows.append(_row("1", "1b", exp, "clean", stat, ratio, thr, verdict, f"bs{m.index[-1]} / bs{m.index[0]}"))
    return rows


def _lambda_cols(df):
    cols = [c for c in df.columns if c.startswith("lambda_") and c[7:].isdigit()]
    return sorted(cols, key=lambda c: int(c[7:]))


def _claim2(exp, clean, t):
    stat, thr = "share of lambda_1..k larger at the largest than at the smallest batch", "= 1 (all k)"
    cols = [c for c in _lambda_cols(clean) if clean[c].notna().any()]
    bs = sorted(clean["batch_size"].unique())
    if not cols or len(bs) < 2:
        return [
            _row(
                "2", "2", exp, "clean", stat, math.nan, thr, NO_DATA, f"{len(cols)} eigenvalues, {len(bs)} batch sizes"
            )
        ]
    lo, hi = clean[clean["batch_size"] == bs[0]], clean[clean["batch_size"] == bs[-1]]
    larger = [float(hi[c].mean() > lo[c].mean()) for c in cols if hi[c].notna().any() and lo[c].notna().any()]
    if not larger:
        return [_row("2", "2", exp, "clean", stat, math.nan, thr, NO_DATA, "no eigenvalues at both extremes")]
    share = float(np.mean(larger))
    ratios = [hi[c].mean() / lo[c].mean() for c in cols if lo[c].mean() > 0]
    detail = f"k={len(larger)}, bs{bs[-1]} vs bs{bs[0]}" + (f"; min ratio {min(ratios):.3g}" if ratios else "")
    return [_row("2", "2", exp, "clean", stat, share, thr, HOLDS if share == 1.0 else FAILS, detail)]


def _claim3(exp, g, t):
    rows = []
    cols = [c for c in _lambda_cols(g) if g[c].notna().any()]
    stat = "min over runs of the top-k eigenvalues"
    if not cols:
        rows.append(_row("3", "3a", exp, "all", stat, math.nan, "> 0", NO_DATA, "no eigenvalues"))
    else:
        v = float(np.nanmin(g[cols].to_numpy(float)))
        rows.append(
            _row("3", "3a", exp, "all", stat, v, "> 0", HOLDS if v > 0 else FAILS, f"{len(g)} runs, k={len(cols)}")
        )
    stat, thr = (
        "max over runs of |argmin alpha| of the 1-D train loss, in grid steps",
        f"<= {t['landscape_argmin_steps']}",
    )
    if "landscape_argmin_alpha" in g and g["landscape_argmin_alpha"].notna().any():
        d = g.dropna(subset=["landscape_argmin_alpha", "landscape_alpha_step"])
        v = float((d["landscape_argmin_alpha"].abs() / d["landscape_alpha_step"]).max())
        verdict = HOLDS if v <= t["landscape_argmin_steps"] + 1e-9 else FAILS
        rows.append(_row("3", "3b", exp, "all", stat, v, thr, verdict, f"{len(d)} runs"))
    else:
        rows.append(_row("3", "3b", exp, "all", stat, math.nan, thr, NO_DATA, "no 1-D landscapes"))
    stat, thr = "max over runs of the full-gradient norm", f"<= {t['max_grad_norm']}"
    if "grad_norm" in g and g["grad_norm"].notna().any():
        v = float(g["grad_norm"].max())
        bs = sorted(g.dropna(subset=["grad_norm"])["batch_size"].unique())
        verdict = HOLDS if v <= t["max_grad_norm"] else FAILS
        rows.append(_row("3", "3c", exp, "all", stat, v, thr, verdict, f"batch sizes {bs}"))
    else:
        rows.append(_row("3", "3c", exp, "all", stat, math.nan, thr, NO_DATA, "no gradient norms"))
    return rows


def _claim4(exp, clean, t):
    m = _means(clean, "test_acc")
    stat, thr = "mean test acc(smallest batch) - mean test acc(largest batch)", f"> {t['min_acc_gap']}"
    if len(m) < 2:
        return [_row("4", "4", exp, "clean", stat, math.nan, thr, NO_DATA, f"{len(m)} batch size(s)")]
    gap = float(m.iloc[0] - m.iloc[-1])
    rules = ",".join(sorted(set(clean["stop_rule"].dropna().astype(str)))) if "stop_rule" in clean else ""
    detail = f"bs{m.index[0]} {m.iloc[0]:.4f} vs bs{m.index[-1]} {m.iloc[-1]:.4f}; stop rule: {rules or 'unknown'}"
    return [_row("4", "4", exp, "clean", stat, gap, thr, HOLDS if gap > t["min_acc_gap"] else FAILS, detail)]


def _claim5(exp, clean, t, headline_eps):
    split = t["split"]
    eps, col = pick_eps(clean, "fgsm_linf", split, headline_eps)
    label = f"FGSM acc ({split}, eps {eps:g})" if col else f"FGSM acc ({split})"
    rows = [_trend("5", "5a", exp, "clean", clean, col or "_none_", label, -1, t)]
    rows.append(_trend("5", "5b", exp, "clean", clean, f"input_grad_norm_{split}", f"||grad_x J|| ({split})", +1, t))
    rows.append(_trend("5", "5c", exp, "clean", clean, f"input_lambda1_{split}", f"lambda_1(H_x) ({split})", +1, t))
    return rows


def _claim6(exp, g, t):
    rows = []
    stat, thr = "min over images of min eig(H_x) / max eig(H_x)", f">= -{t['input_psd_tol']}"
    if "input_exact_min_rel" in g and g["input_exact_min_rel"].notna().any():
        v = float(g["input_exact_min_rel"].min())
        n = int(g["input_exact_images"].sum()) if "input_exact_images" in g else 0
        verdict = HOLDS if v >= -t["input_psd_tol"] else FAILS
        rows.append(_row("6", "6a", exp, "all", stat, v, thr, verdict, f"{n} images"))
    else:
        rows.append(_row("6", "6a", exp, "all", stat, math.nan, thr, NO_DATA, "no exact input Hessians"))
    stat = "max over images of rank(H_x) - (C - 1)"
    if "input_exact_rank_excess" in g and g["input_exact_rank_excess"].notna().any():
        v = float(g["input_exact_rank_excess"].max())
        rows.append(_row("6", "6b", exp, "all", stat, v, "<= 0", HOLDS if v <= 0 else FAILS, ""))
    else:
        rows.append(_row("6", "6b", exp, "all", stat, math.nan, "<= 0", NO_DATA, "no exact input Hessians"))
    return rows


def _claim7(exp, g, t, headline_eps):
    rows = []
    clean = g[~g["robust"]]
    robust_modes = sorted(g.loc[g["robust"], "mode"].unique())
    split = t["split"]
    eps, fgsm = pick_eps(g, "fgsm_linf", split, headline_eps)
    if not robust_modes:
        for check in ("7a", "7b"):
            rows.append(
                _row(
                    "7",
                    check,
                    exp,
                    "-",
                    "robust vs clean at the same batch size",
                    math.nan,
                    "-",
                    NO_DATA,
                    "no robust-training runs",
                )
            )
    for mode in robust_modes:
        rob = g[g["mode"] == mode]
        lc, lr = _means(clean, "lambda_1"), _means(rob, "lambda_1")
        shared = sorted(set(lc.index) & set(lr.index))
        stat = "max over shared batch sizes of lambda_1(robust) / lambda_1(clean)"
        if not shared or (lc[shared] <= 0).any():
            rows.append(
                _row(
                    "7",
                    "7a",
                    exp,
                    mode,
                    stat,
                    math.nan,
                    "< 1",
                    NO_DATA,
                    "no batch size with both clean and robust lambda_1",
                )
            )
        else:
            v = float((lr[shared] / lc[shared]).max())
            rows.append(_row("7", "7a", exp, mode, stat, v, "< 1", HOLDS if v < 1 else FAILS, f"batch sizes {shared}"))
        stat = (
            f"min over shared batch sizes of FGSM acc(robust) - FGSM acc(clean) ({split}, eps {eps:g})"
            if fgsm
            else "FGSM acc(robust) - FGSM acc(clean)"
        )
        ac, ar = (_means(clean, fgsm), _means(rob, fgsm)) if fgsm else (pd.Series(dtype=float),) * 2
        shared = sorted(set(ac.index) & set(ar.index))
        if not shared:
            rows.append(
                _row(
                    "7",
                    "7b",
                    exp,
                    mode,
                    stat,
                    math.nan,
                    "> 0",
                    NO_DATA,
                    "no batch size with both clean and robust FGSM accuracy",
                )
            )
        else:
            v = float((ar[shared] - ac[shared]).min())
            rows.append(_row("7", "7b", exp, mode, stat, v, "> 0", HOLDS if v > 0 else FAILS, f"batch sizes {shared}"))
    # 7c: lambda_1 falls as the training eps grows (clean counts as eps 0), within one batch size.
    stat, thr = "max over batch sizes of Spearman rho(training eps, lambda_1)", f"<= -{t['min_spearman']}"
    d = g.dropna(subset=["lambda_1"]).copy() if "lambda_1" in g else g.iloc[0:0]
    d["eps"] = np.where(d["robust"], d.get("robust_eps", np.nan), 0.0)
    rhos = {}
    for bs, gb in d.dropna(subset=["eps"]).groupby("batch_size"):
        if gb["eps"].nunique() >= 3:
            rhos[bs] = spearman(gb["eps"], gb["lambda_1"])
    rhos = {k: v for k, v in rhos.items() if not math.isnan(v)}
    if not rhos:
        rows.append(
            _row(
                "7", "7c", exp, "all", stat, math.nan, thr, NO_DATA, "no batch size with >= 3 training eps (clean = 0)"
            )
        )
    else:
        v = float(max(rhos.values()))
        rows.append(
            _row(
                "7",
                "7c",
                exp,
                "all",
                stat,
                v,
                thr,
                HOLDS if v <= -t["min_spearman"] else FAILS,
                f"batch sizes {sorted(rhos)}",
            )
        )
    return rows


def _claim8(exp, g, t):
    stat, thr = "max over runs of |lambda_i(power) - lambda_i(Lanczos)| / |lambda_i|", f"<= {t['lanczos_power_tol']}"
    if "power_max_rel_diff" not in g or g["power_max_rel_diff"].isna().all():
        return [
            _row("8", "8", exp, "all", stat, math.nan, thr, NO_DATA, "no power-iteration check (spectrum.check_power)")
        ]
    v = float(g["power_max_rel_diff"].max())
    n = int(g["power_max_rel_diff"].notna().sum())
    return [_row("8", "8", exp, "all", stat, v, thr, HOLDS if v <= t["lanczos_power_tol"] else FAILS, f"{n} runs")]


def combine(verdicts) -> str:
    """One verdict from several checks: any failure fails; all must hold to hold."""
    verdicts = list(verdicts)
    if FAILS in verdicts:
        return FAILS
    if verdicts and all(v == HOLDS for v in verdicts):
        return HOLDS
    return NO_DATA


def evaluate(df: pd.DataFrame, thresholds: dict, headline_eps=None) -> dict:
    """All claims for every (dataset, model) in df, judged with ``thresholds`` (config report.claims).
    Returns {"checks": [...], "claims": {...}, ...}."""
    t = thresholds
    ok = ok_runs(df)
    checks = []
    groups = list(ok.groupby(["dataset", "model"], sort=True))
    if not groups:  # every run diverged: still one row per claim, none can be judged
        groups = [(("-", "-"), ok)]
    for (dataset, model), g in groups:
        exp = f"{dataset}/{model}"
        clean = g[~g["robust"]]
        checks += _claim1(exp, clean, t) + _claim2(exp, clean, t) + _claim3(exp, g, t) + _claim4(exp, clean, t)
        checks += _claim5(exp, clean, t, headline_eps) + _claim6(exp, g, t) + _claim7(exp, g, t, headline_eps)
        checks += _claim8(exp, g, t)
    table = pd.DataFrame(checks)
    claims = {}
    for claim, title in TITLES.items():
        rows = table[table["claim"] == claim]
        per_exp = {e: combine(r["verdict"]) for e, r in rows.groupby("experiment", sort=True)}
        claims[claim] = {"title": title, "verdict": combine(per_exp.values()), "per_experiment": per_exp}
    return {
        "claims": claims,
        "checks": checks,
        "thresholds": t,
        "headline_eps": headline_eps,
        "runs": int(len(df)),
        "runs_ok": int(len(ok)),
    }


def _fmt(v) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def to_markdown(result: dict) -> str:
    lines = ["| claim | verdict | title |", "| --- | --- | --- |"]
    for claim, c in result["claims"].items():
        lines.append(f"| {claim} | **{c['verdict']}** | {c['title']} |")
    lines += [
        "",
        "| check | experiment | mode | statistic | value | threshold | verdict | detail |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in result["checks"]:
        cells = [
            r["check"],
            r["experiment"],
            r["mode"],
            r["statistic"],
            _fmt(r["value"]),
            r["threshold"],
            f"**{r['verdict']}**",
            r["detail"],
        ]
        lines.append("| " + " | ".join(str(c).replace("|", "/") for c in cells) + " |")
    return "\n".join(lines) + "\n"


def to_html(result: dict, title="Claim verdicts") -> str:
    """A self-contained page (inline style, no scripts) for the Snakemake report."""
    colours = {HOLDS: "#d8f0d8", FAILS: "#f6d5d5", NO_DATA: "#eeeeee"}
    summary = pd.DataFrame(
        [{"claim": k, "verdict": v["verdict"], "title": v["title"]} for k, v in result["claims"].items()]
    )
    checks = pd.DataFrame(result["checks"]).drop(columns=["title"])
    checks["value"] = checks["value"].map(_fmt)

    def styled(frame):
        html = frame.to_html(index=False, escape=True, border=0)
        for verdict, colour in colours.items():
            html = html.replace(f"<td>{verdict}</td>", f'<td style="background:{colour}">{verdict}</td>')
        return html

    style = (
        "body{font-family:sans-serif;font-size:14px;margin:1em}table{border-collapse:collapse;margin-bottom:1.5em}"
        "td,th{border:1px solid #bbb;padding:3px 6px;text-align:left}th{background:#f3f3f3}"
    )
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{title}</title><style>{style}</style></head>"
        f"<body><h2>{title}</h2>{styled(summary)}<h3>Checks</h3>{styled(checks)}</body></html>\n"
    )
