"""The claims step's judge: each claim of the paper (docs/paper.md) -> checks -> verdict.

Every check reports an effect, its 95% interval over seeds (report/stats.py, scipy.stats), the test, the
threshold (config report.claims, declared with a reason before results are seen) and one of three
verdicts: holds (the interval lies beyond the threshold in the claimed direction), fails (it lies wholly
on the other side), inconclusive (it straddles it, or data are missing: then "missing" says what would
decide it). Everything is computed from summary.csv (and, for claim 3, the runs' history.csv).
"""

import json
import math

import pandas as pd

from lbhessian.core.config import schema
from lbhessian.core.names import experiment_name
from lbhessian.report import writer
from lbhessian.report.claims.common import TITLES, Context, g, interval
from lbhessian.report.claims.robust import claim4, claim5, claim6, claim7
from lbhessian.report.claims.weights import claim1, claim2, claim3, claim8
from lbhessian.report.stats import FAILS, HOLDS, INCONCLUSIVE, combine
from lbhessian.report.summary import ok_runs, unsettled_runs

__all__ = ["FAILS", "HOLDS", "INCONCLUSIVE", "TITLES", "evaluate", "experiment_checks", "to_html", "to_markdown"]
# Claims about batch size (the calibration test shuffles batch labels and expects them not to hold).
BATCH_CLAIMS = ("1", "2", "4", "5")


def experiment_checks(ctx: Context, runs: pd.DataFrame, claims=tuple(TITLES)) -> list[dict]:
    """The checks of the given claims for one experiment's finished runs."""
    clean = runs[~runs["robust"]]
    judges = {
        "1": lambda: claim1(ctx, clean),
        "2": lambda: claim2(ctx, clean),
        "3": lambda: claim3(ctx, clean),
        "4": lambda: claim4(ctx, clean),
        "5": lambda: claim5(ctx, clean),
        "6": lambda: claim6(ctx, runs),
        "7": lambda: claim7(ctx, runs),
        "8": lambda: claim8(ctx, runs),
    }
    return [row for claim in claims for row in judges[claim]()]


def thresholds_with_reasons(t: dict) -> dict:
    """{key: {"value", "reason"}}: the reason is the schema's description of the key."""
    props = schema()["properties"]["report"]["properties"]["claims"]["properties"]
    return {k: {"value": v, "reason": props.get(k, {}).get("description", "")} for k, v in t.items()}


def _summary(rows: list[dict]) -> str:
    """One plain line: the lead check's effect and interval, and how many checks hold."""
    lead = rows[0]
    held = sum(r["verdict"] == HOLDS for r in rows)
    effect = f"{lead['statistic']} = {g(lead['effect'])}"
    if lead["ci_low"] is not None:
        effect += f", 95% interval [{g(lead['ci_low'])}, {g(lead['ci_high'])}]"
    return f"{lead['experiment']}: {effect}; {held} of {len(rows)} checks hold"


END_POINT_FREE = ("6", "8")


def _claim_lean(rows: list[dict]) -> str:
    """The way an inconclusive claim leans: its inconclusive checks all toward it, all against it, or mixed."""
    ways = {r["leans"] for r in rows if r["verdict"] == INCONCLUSIVE and r["leans"]}
    return ways.pop() if len(ways) == 1 else ("mixed" if ways else "")


def evaluate(df: pd.DataFrame, thresholds: dict, claims=tuple(TITLES)) -> dict:
    """The given claims for every (dataset, model) in df, judged with ``thresholds`` (config report.claims)."""
    ok = ok_runs(df)
    groups = list(ok.groupby(["dataset", "model"], sort=True))
    if not groups:  # every run diverged: still one row per check, none can be judged
        groups = [(("-", "-"), ok)]
    checks = []
    for (dataset, model), runs in groups:
        checks += experiment_checks(Context(experiment_name(dataset, model), thresholds), runs, claims)
    unsettled = unsettled_runs(ok)
    out = {}
    for claim in claims:
        rows = [r for r in checks if r["claim"] == claim]
        experiments = sorted({r["experiment"] for r in rows})
        per = {e: combine(r["verdict"] for r in rows if r["experiment"] == e) for e in experiments}
        lines = [_summary([r for r in rows if r["experiment"] == e]) for e in experiments]
        verdict = combine(per.values())
        out[claim] = {
            "title": TITLES[claim],
            "verdict": verdict,
            "leans": _claim_lean(rows) if verdict == INCONCLUSIVE else "",
            "per_experiment": per,
            "summary": " | ".join(lines),
            # the runs whose end point had not settled, among those the claim compares (not 6 and 8: they
            # hold at any point of training)
            "unsettled": unsettled if claim not in END_POINT_FREE else [],
        }
    return {
        "claims": out,
        "unsettled": unsettled,
        "checks": checks,
        "thresholds": thresholds_with_reasons(thresholds),
        "runs": int(len(df)),
        "runs_ok": int(len(ok)),
    }


def _cell(v) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return g(v) if isinstance(v, float | int) and not isinstance(v, bool) else str(v)


COLUMNS = ["check", "experiment", "mode", "statistic", "effect", "interval", "p", "threshold", "verdict", "detail"]


def _cells(r: dict) -> list[str]:
    ci = interval(r["ci_low"], r["ci_high"])
    detail = r["detail"] + (f" Missing: {r['missing']}" if r["missing"] else "")
    return [
        r["check"],
        r["experiment"],
        r["mode"],
        r["statistic"],
        _cell(r["effect"]),
        ci,
        _cell(r["p_value"]),
        r["threshold"],
        r["verdict"],
        detail,
    ]


def to_markdown(result: dict) -> str:
    lines = ["| claim | verdict | title | summary |", "| --- | --- | --- | --- |"]
    for claim, c in result["claims"].items():
        lines.append(f"| {claim} | **{c['verdict']}** | {c['title']} | {c['summary']} |")
    lines += ["", "| " + " | ".join(COLUMNS) + " |", "|" + " --- |" * len(COLUMNS)]
    for r in result["checks"]:
        cells = _cells(r)
        cells[8] = f"**{cells[8]}**"
        lines.append("| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |")
    lines += ["", "Thresholds (report.claims):", ""]
    lines += [f"- `{k}` = {json.dumps(v['value'])}: {v['reason']}" for k, v in result["thresholds"].items()]
    return "\n".join(lines) + "\n"


def to_html(result: dict, title="Claim verdicts") -> str:
    """results/claims.html: the verdicts and every check on one self-contained page (``report.writer``, like the
    tables and the report page)."""
    summary = pd.DataFrame([{"claim": k, **v} for k, v in result["claims"].items()]).drop(columns="per_experiment")
    checks = pd.DataFrame([_cells(r) for r in result["checks"]], columns=COLUMNS)
    for frame in (summary, checks):
        frame["verdict"] = frame["verdict"].map(writer.badge)
    body = (
        writer.html_table(summary, raw=("verdict",), text=True)
        + "<h3>Checks</h3>"
        + writer.html_table(checks, raw=("verdict",), text=True, cls="checks")
    )
    return writer.page(title, [("claims", "Claims")], [], writer.view("claims", title, body, home=True))
