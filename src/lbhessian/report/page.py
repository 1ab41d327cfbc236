"""The report page (results/report.html): one self-contained file answering "does the paper reproduce here?".

Views, reached by links (no script): Verdicts (the landing view: each claim's verdict, the effect and interval
of its checks, links to the check, the figure and the table), Checks, Figures per experiment (captions shown
under each figure), Tables (per setting and every run) and Experiment (settings, data sets and networks,
thresholds with their reasons, versions, commit, the full resolved config)."""

import math
import re
from types import SimpleNamespace

import jinja2
import pandas as pd

from lbhessian.report import experiment as ex
from lbhessian.report import tables, writer
from lbhessian.report.writer import esc

_CLAIM_LINE = "{n} run(s), {ok} finished; {holds} of {total} claims hold, {fails} fail, {inc} inconclusive."


def show(value, unit) -> str:
    """A check's number in the report's units: accuracies (fractions in claims.json) as %."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    if not isinstance(value, int | float):  # a threshold may be a phrase (">= 0.5")
        return str(value)
    unit = str(unit or "")
    if "fraction" in unit or "accuracy" in unit:
        return f"{100 * float(value):.3g} %"
    return f"{float(value):.3g}" + (f" {unit}" if unit else "")


def interval(check) -> str:
    lo, hi, unit = check.get("ci_low"), check.get("ci_high"), check.get("unit")
    if lo is None and hi is None:
        return "-"
    return f"[{show(lo, unit)}, {show(hi, unit)}]"


def one_spelling(claims: dict) -> dict:
    """Experiments spelled "{dataset}_{model}" (mnist5k_M1) everywhere, whatever claims.json used."""
    fix = lambda e: str(e).replace("/", "_")  # noqa: E731
    out = {**claims, "checks": [{**c, "experiment": fix(c["experiment"])} if c.get("experiment") else c
                                for c in claims.get("checks") or []]}  # fmt: skip
    out["claims"] = {k: {**c, "per_experiment": {fix(e): v for e, v in (c.get("per_experiment") or {}).items()}}
                     for k, c in (claims.get("claims") or {}).items()}  # fmt: skip
    return out


def _fig_id(exp, kind):
    return f"fig-{exp}-{kind}"


def _check_links(c) -> str:
    exp = str(c.get("experiment") or "")
    links = [f'<a href="#checks-{esc(c.get("claim"))}">check {esc(c.get("check"))}</a>']
    if c.get("figure"):
        links.append(f'<a href="#{esc(_fig_id(exp, c["figure"]))}">figure</a>')
    if exp:
        links.append(f'<a href="#tables-{esc(exp)}">table</a>')
    return " · ".join(links)


def verdicts_view(claims: dict, df: pd.DataFrame) -> str:
    cl, checks = claims.get("claims") or {}, claims.get("checks") or []
    count = {v: sum(c.get("verdict") == v for c in cl.values()) for v in ("holds", "fails", "inconclusive")}
    line = _CLAIM_LINE.format(n=len(df), ok=int((df["status"].astype(str) == "ok").sum()), total=len(cl),
                              holds=count["holds"], fails=count["fails"], inc=count["inconclusive"])  # fmt: skip
    rows = []
    for key, c in cl.items():
        mine = [k for k in checks if str(k.get("claim")) == str(key)]
        lines = "<br>".join(
            f"{esc(k.get('check'))} {esc(k.get('experiment') or '')}, {esc(k.get('statistic') or 'effect')}: "
            f"{esc(show(k.get('effect'), k.get('unit')))} "
            f"{esc(interval(k))} {writer.badge(k.get('verdict', '?'))} ({_check_links(k)})"
            for k in mine
        )
        per = ", ".join(f"{esc(e)}: {esc(v)}" for e, v in (c.get("per_experiment") or {}).items())
        rows.append({"claim": esc(key), "verdict": writer.badge(c.get("verdict", "?")),
                     "what the paper says": esc(c.get("title", "")), "here": esc(c.get("summary", "")) or per,
                     "effect [95% interval] per check": lines or "no checks"})  # fmt: skip
    table = writer.html_table(pd.DataFrame(rows), raw=("claim", "verdict", "what the paper says", "here",
                                                       "effect [95% interval] per check"), text=True)  # fmt: skip
    return writer.view("verdicts", "Does the paper reproduce here?", f"<p>{esc(line)}</p>{table}", home=True)


CHECK_COLUMNS = ["check", "experiment", "mode", "title", "statistic", "effect", "95% interval", "test", "p_value",
                 "threshold", "verdict", "detail", "missing", "figure"]  # fmt: skip


def checks_view(claims: dict) -> str:
    parts = []
    for key, c in (claims.get("claims") or {}).items():
        rows = []
        for k in (x for x in claims.get("checks") or [] if str(x.get("claim")) == str(key)):
            row = {col: esc(k.get(col) if k.get(col) is not None else "-") for col in CHECK_COLUMNS}
            row["effect"], row["95% interval"] = esc(show(k.get("effect"), k.get("unit"))), esc(interval(k))
            row["threshold"] = esc(show(k.get("threshold"), k.get("unit")))
            row["verdict"] = writer.badge(k.get("verdict", "?"))
            if k.get("figure") and k.get("experiment"):
                row["figure"] = f'<a href="#{esc(_fig_id(k["experiment"], k["figure"]))}">{esc(k["figure"])}</a>'
            rows.append(row)
        body = (
            writer.html_table(pd.DataFrame(rows, columns=CHECK_COLUMNS), raw=tuple(CHECK_COLUMNS), text=True)
            if rows
            else ""
        )
        parts.append(f"<h3 id='checks-{esc(key)}'>Claim {esc(key)}: {esc(c.get('title', ''))} "
                     f"{writer.badge(c.get('verdict', '?'))}</h3>{body or '<p>no checks</p>'}")  # fmt: skip
    return writer.view("checks", "Checks behind each verdict", "".join(parts))


def rst_html(text: str) -> str:
    """The little reStructuredText the captions use: paragraphs, ``literal``, **strong**, *emphasis*."""
    out = []
    for para in re.split(r"\n\s*\n", text.strip()):
        s = esc(" ".join(para.split()))
        s = re.sub(r"``(.+?)``", r"<code>\1</code>", s)
        s = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", s)
        s = re.sub(r"\*(.+?)\*", r"<em>\1</em>", s)
        out.append(f"<p>{s}</p>")
    return "".join(out)


def caption(template: str, cfg: dict, config_path: str) -> str:
    """A workflow/report caption rendered as Snakemake's report would, then as HTML."""
    smk = SimpleNamespace(config=cfg, input=SimpleNamespace(config=config_path))
    return rst_html(jinja2.Template(template).render(snakemake=smk))


def figures_view(exp: str, pngs: dict, captions: dict, cfg: dict, config_path: str) -> str:
    items = []
    for kind, png in pngs.items():
        text = caption(captions[kind], cfg, config_path) if kind in captions else ""
        items.append(f'<figure id="{esc(_fig_id(exp, kind))}"><h3>{esc(kind)}</h3>'
                     f'<img src="{writer.png_uri(png)}" alt="{esc(kind)} of {esc(exp)}">'
                     f"<figcaption>{text}</figcaption></figure>")  # fmt: skip
    toc = " · ".join(f'<a href="#{esc(_fig_id(exp, k))}">{esc(k)}</a>' for k in pngs)
    return writer.view(f"figures-{exp}", f"Figures: {exp}", f"<p>{toc}</p>{''.join(items)}")


def experiment_view(cfg: dict, config_path: str, claims: dict) -> str:
    thr = [{"threshold": k, "value": str(v.get("value")), "reason": v.get("reason", "")}
           for k, v in (claims.get("thresholds") or {}).items() if isinstance(v, dict)]  # fmt: skip
    body = (
        f"<p>Config file <code>{esc(config_path)}</code>, every default filled in; code commit "
        f"<code>{esc(ex.commit())}</code>.</p><h3>Key settings</h3>"
        + writer.html_table(ex.settings_table(cfg), text=True)
        + "<h3>Data sets and networks</h3>"
        + writer.html_table(ex.descriptions(cfg), text=True)
        + "<h3 id='thresholds'>Thresholds of the verdicts</h3>"
        + (writer.html_table(pd.DataFrame(thr), text=True) if thr else "<p>claims.json names no thresholds</p>")
        + "<h3>Libraries</h3>"
        + writer.html_table(ex.versions())
        + f"<h3>Resolved config</h3><pre>{esc(ex.config_yaml(cfg))}</pre>"
    )
    return writer.view("experiment", "The experiment", body)


def build(df: pd.DataFrame, claims: dict, cfg: dict, config_path: str, pngs: dict, captions: dict) -> str:
    """The whole page. ``pngs``: {experiment: {kind: png path}}; ``captions``: {kind: caption template}."""
    claims = one_spelling(claims)
    exps = list(pngs) or tables.experiments(df)
    title = (cfg.get("report") or {}).get("title") or "lbhessian report"
    views = [checks_view(claims)]
    views += [figures_view(e, pngs.get(e, {}), captions, cfg, config_path) for e in exps]
    views.append(writer.view("tables", "Tables", "".join(tables.experiment_html(df, e) for e in exps)))
    views.append(experiment_view(cfg, config_path, claims))
    nav = [("verdicts", "Verdicts"), ("checks", "Checks")]
    nav += [(f"figures-{e}", f"Figures {e}" if len(exps) > 1 else "Figures") for e in exps]
    nav += [("tables", "Tables")] + [(f"runs-{e}", f"Runs {e}" if len(exps) > 1 else "Every run") for e in exps]
    nav.append(("experiment", "Experiment"))
    return writer.page(title, nav, views, verdicts_view(claims, df))
