"""Replications of one design side by side: the same claims judged on disjoint seed sets (and other kernels).

A conclusion is stated once it holds in every replication: a claim whose verdict differs between replications
is ``unstable``, not holding (DEVELOPERS: a reproduction whose conclusion flips with the hardware has not
reproduced anything).
"""

from __future__ import annotations

from pathlib import Path

from lbhessian.core.io import read_json
from lbhessian.report.claims import TITLES
from lbhessian.report.claims.common import g

UNSTABLE = "unstable"


def lead_effect(claims: dict, claim: str) -> str:
    """The claim's first check's effect and interval as text, e.g. "4.4 [3.2, 6.0]"."""
    rows = [r for r in claims.get("checks", []) if r["claim"] == claim]
    if not rows or rows[0]["effect"] is None:
        return "-"
    r = rows[0]
    ci = f" [{g(r['ci_low'])}, {g(r['ci_high'])}]" if r["ci_low"] is not None else ""
    return f"{r['check']} {g(r['effect'])}{ci}"


def overall(verdicts: list[str]) -> str:
    """One verdict over replications: the common one, or unstable where they differ."""
    return verdicts[0] if verdicts and all(v == verdicts[0] for v in verdicts) else UNSTABLE


def compare(replications: dict[str, Path]) -> dict:
    """{name: claims.json path} -> {"replications": names, "claims": {claim: {"title", "verdicts": {name: v},
    "effects": {name: text}, "overall"}}}; a missing claims.json is an error of its own line."""
    loaded = {name: read_json(path) for name, path in replications.items()}
    out = {}
    for claim, title in TITLES.items():
        verdicts = {n: c["claims"][claim]["verdict"] for n, c in loaded.items() if claim in c.get("claims", {})}
        effects = {n: lead_effect(c, claim) for n, c in loaded.items()}
        out[claim] = {
            "title": title,
            "verdicts": verdicts,
            "effects": effects,
            "overall": overall(list(verdicts.values())),
        }
    return {"replications": list(loaded), "claims": out}


def to_markdown(result: dict) -> str:
    names = result["replications"]
    lines = ["| claim | " + " | ".join(names) + " | over all |", "|" + " --- |" * (len(names) + 2)]
    for claim, c in result["claims"].items():
        cells = [f"{c['verdicts'].get(n, '-')} ({c['effects'].get(n, '-')})" for n in names]
        lines.append(f"| {claim} {c['title']} | " + " | ".join(cells) + f" | **{c['overall']}** |")
    return "\n".join(lines) + "\n"
