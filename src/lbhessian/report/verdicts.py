"""The report's first screen: what was run (one line of scale and stand-ins), the paper's findings and the
sanity checks in two groups, each claim's verdict with its key effect and interval in plain units (and the way
an inconclusive claim leans), the verdict over replications, and the runs whose end point had not settled.

Everything here is read from claims.json, summary.csv, the resolved config and replications.json (written by
``lbhessian replications``); nothing is judged again."""

import re

import pandas as pd

from lbhessian.report import experiment as ex
from lbhessian.report import numbers as nb
from lbhessian.report import writer
from lbhessian.report.summary import unsettled_runs
from lbhessian.report.writer import esc

FINDINGS = ("1", "2", "4", "5", "7")  # the paper's findings about batch size and robust training
SANITY = ("3", "6", "8")  # checks that the measurements mean what they say
WHY_SANITY = {
    "3": "premise: the end point is a minimum",
    "6": "holds by construction for a ReLU net under softmax cross-entropy",
    "8": "the eigenvalues are the Hessian's, not the solver's",
}
# The check that carries each claim's effect, in order of preference (check id prefixes).
KEY_CHECKS = {
    "1": ("1b", "1a"),
    "2": ("2b", "2a"),
    "3": ("3a", "3b", "3c"),
    "4": ("4",),
    "5": ("5a", "5b", "5c"),
    "6": ("6a", "6b"),
    "7": ("7a", "7b", "7c"),
    "8": ("8",),
}
LEANS = {"toward": "leans toward the paper", "against": "leans against the paper", "mixed": "leans both ways"}
REPLICATE = 'make replicate SEEDS="210 211 212 213 214 215"'


def _eps_of(check: dict):
    m = re.search(r"eps ([\d.]+)\)", str(check.get("statistic") or ""))
    return float(m.group(1)) if m else None


def key_check(claim: str, verdict: str, checks: list[dict], headline_eps=None) -> dict | None:
    """The check whose effect stands for the claim: the first of the preferred kind that shares the claim's
    verdict (the one that decided it), else the first of the preferred kind; for claim 5 the FGSM check at
    the headline eps comes first."""
    mine = [c for c in checks if str(c.get("claim")) == claim]
    if not mine:
        return None
    order = KEY_CHECKS.get(claim, ())

    def rank(c):
        cid = str(c.get("check") or "")
        kind = next((i for i, p in enumerate(order) if cid == p or cid.startswith(p + ".")), len(order))
        at_headline = headline_eps is not None and _eps_of(c) is not None and abs(_eps_of(c) - headline_eps) < 1e-9
        return (kind, not at_headline)

    ranked = sorted(mine, key=rank)
    same = [c for c in ranked if c.get("verdict") == verdict and nb.finite(c.get("effect"))]
    with_effect = [c for c in ranked if nb.finite(c.get("effect"))]
    return (same or with_effect or ranked)[0]


def short_statistic(check: dict) -> str:
    """The statistic without its parenthesised method: "lambda_1 at the largest / at the smallest batch"."""
    text = re.sub(r"\s*\((ratio|difference|geometric|mean over|same stopping)[^)]*\)", "", str(check["statistic"]))
    return text


def _settings(cfg: dict) -> dict:
    return cfg.get("train") or {}


def scale_line(cfg: dict, df: pd.DataFrame) -> str:
    """One line: data (sizes from the resolved config) and network, which stand in for the paper's, batch
    sizes, seeds, lr and the stop rule, how many runs finished."""
    train = _settings(cfg)
    parts = []
    for e in train.get("experiments") or []:
        d, m = ex.DATASETS.get(str(e.get("dataset"))), ex.MODELS.get(str(e.get("model")))
        tr, te = ex.data_sizes(cfg, e)
        size = f"{tr:,} train / {te:,} test images" if tr is not None and te is not None else "sizes unknown"
        data = f"{e.get('dataset')} ({d[0] if d else 'unknown data'}, {size}"
        data += ", stand-in for the paper's data)" if d and d[3] != "paper" else ")"
        net = f"{e.get('model')} ({m[0].split(':')[0] if m else 'unknown network'}"
        net += ", stand-in)" if m and m[1] != "paper" else ")"
        parts.append(f"{data} · network {net}")
    seeds = train.get("seeds") or []
    parts.append(f"batch sizes {', '.join(str(b) for b in train.get('batch_sizes') or [])}")
    parts.append(f"{len(seeds)} seed(s) ({', '.join(str(s) for s in seeds)})")
    opt = train.get("optimizer") or {}
    lr = f"SGD lr {nb.sig(opt.get('lr'))}" if nb.finite(opt.get("lr")) else "lr ?"
    if nb.finite(opt.get("momentum")) and opt.get("momentum"):
        lr += f", momentum {nb.sig(opt['momentum'])}"
    scaling = train.get("lr_scaling")
    lr += ", same lr at every batch size" if scaling == "none" else f", {scaling} lr scaling" if scaling else ""
    parts.append(lr)
    stop = train.get("stop") or {}
    if stop.get("rule") == "target_loss":
        parts.append(f"stop at training loss {nb.sig(stop.get('target_loss'))} (cap {stop.get('epochs')} epochs)")
    elif stop.get("rule"):
        parts.append(f"stop after {stop.get('epochs')} epochs")
    robust = [m.get("name") for m in train.get("robust") or [] if isinstance(m, dict)]
    if robust:
        parts.append(f"robust training: {', '.join(str(r) for r in robust)}")
    ok = int((df["status"].astype(str) == "ok").sum()) if "status" in df else 0
    parts.append(f"{len(df)} runs, {ok} finished")
    return " · ".join(parts)


def tally(cl: dict) -> str:
    """ "Of the paper's 5 findings 1 holds, 0 fail, 4 are inconclusive; sanity checks: 2 of 3 hold." """

    def count(keys):
        v = [cl[k].get("verdict") for k in keys if k in cl]
        return len(v), v.count("holds"), v.count("fails"), len(v) - v.count("holds") - v.count("fails")

    n, held, failed, open_ = count(FINDINGS)
    s_n, s_held, s_failed, _ = count(SANITY)
    line = f"Of the paper's {n} findings {held} hold here, {failed} fail, {open_} inconclusive; "
    return line + f"sanity checks: {s_held} of {s_n} hold" + (f", {s_failed} fail." if s_failed else ".")


def verdict_cell(c: dict) -> str:
    lean = LEANS.get(str(c.get("leans") or ""), "")
    return writer.badge(c.get("verdict", "?")) + (f" <span class='lean'>{esc(lean)}</span>" if lean else "")


def effect_cell(k: dict | None, links) -> str:
    if k is None:
        return "no checks"
    text = f"{esc(short_statistic(k))}: <b>{esc(nb.effect(k))}</b>"
    if not nb.finite(k.get("effect")) and k.get("missing"):
        why = str(k["missing"])
        text += f" <span class='note'>(no estimate: {esc(why if len(why) < 90 else why[:87] + '...')})</span>"
    means = nb.means_by_batch(str(k.get("detail") or ""), k)
    if means:
        text += f" ({esc(means)})"
    p = nb.check_p(k)
    if p:
        text += f", {esc(p)}"
    if k.get("verdict") == "inconclusive" and k.get("leans") in LEANS:
        text += f" <span class='lean'>(this check {esc(LEANS[k['leans']])})</span>"
    return f"{text} <span class='links'>{links(k)}</span>"


def replication_cell(claim: str, reps: dict | None) -> str:
    if not reps:
        return "-"
    c = (reps.get("claims") or {}).get(claim) or {}
    seen = c.get("verdicts") or {}
    overall = c.get("overall") or "-"
    each = ", ".join(f"{n}: {v}" for n, v in seen.items())
    return f"{writer.badge(overall)} <span class='note'>{esc(each)}</span>"


def replication_line(reps: dict | None) -> str:
    if not reps:
        return (
            "No replication has been run: <code>" + esc(REPLICATE) + "</code> reruns this design on other seeds "
            "and shows each claim's verdict over every replication here."
        )
    names = reps.get("replications") or []
    unstable = [k for k, c in (reps.get("claims") or {}).items() if c.get("overall") == "unstable"]
    line = f"Replications: {len(names)} ({', '.join(esc(n) for n in names)}); the last column is the verdict over all."
    return line + (
        f" Unstable (the verdict differs between replications): claim {', '.join(unstable)}." if unstable else ""
    )


def unsettled_line(claims: dict, df: pd.DataFrame) -> str:
    runs = list(claims.get("unsettled") or [])
    if not runs:
        runs = unsettled_runs(df)
    if runs:
        return (
            f"<b>{len(runs)} run(s) had not settled</b> at their end point (lambda_1 or the loss still moving; "
            f"claims 1-5 and 7 compare them): {esc(', '.join(runs))}."
        )
    if "settled" not in df:
        return "Whether the runs' end points settled was not recorded (summary.csv has no settled column)."
    return "Every run's end point settled (lambda_1 and the loss stopped moving before the stop)."


def group_table(keys, cl: dict, checks: list[dict], *, reps, headline_eps, links, why=None) -> str:
    rows = []
    for key in keys:
        if key not in cl:
            continue
        c = cl[key]
        row = {"claim": f"<a href='#checks-{esc(key)}'>{esc(key)}</a>", "the paper says": esc(c.get("title", ""))}
        if why:
            row["the paper says"] += f" <span class='note'>({esc(why.get(key, ''))})</span>"
        row["verdict here"] = verdict_cell(c)
        row["key effect [95% interval]"] = effect_cell(key_check(key, c.get("verdict"), checks, headline_eps), links)
        row["over replications"] = replication_cell(key, reps)
        rows.append(row)
    if not rows:
        return "<p class='note'>none judged</p>"
    frame = pd.DataFrame(rows)
    return writer.html_table(frame, raw=tuple(frame.columns), text=True, cls="verdicts")


def view(claims: dict, df: pd.DataFrame, cfg: dict, replications: dict | None, links) -> str:
    """The landing view. ``links(check)``: the HTML links of one check (to the check, its figure, its table)."""
    cl, checks = claims.get("claims") or {}, claims.get("checks") or []
    headline = (cfg.get("attack") or {}).get("headline_eps")
    body = (
        f"<p class='scale'><b>Scale:</b> {esc(scale_line(cfg, df))}</p>"
        f"<p class='tally'>{esc(tally(cl))} {replication_line(replications)}</p>"
        "<h3>The paper's findings</h3>"
        + group_table(FINDINGS, cl, checks, reps=replications, headline_eps=headline, links=links)
        + "<h3>Sanity checks</h3>"
        + group_table(SANITY, cl, checks, reps=replications, headline_eps=headline, links=links, why=WHY_SANITY)
        + f"<p class='note'>{unsettled_line(claims, df)} Effects: factors as x, accuracies in percentage points "
        "(pp); intervals are two-sided 95%, p-values one-sided in the direction the paper claims. "
        "<a href='#checks'>Every check</a> · <a href='#thresholds'>thresholds</a>.</p>"
    )
    return writer.view("verdicts", "Does the paper reproduce here?", body, home=True)
