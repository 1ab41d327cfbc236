"""The report page (results/report.html): one self-contained file answering "does the paper reproduce here?".

Views, reached by links (no script): Verdicts (the landing view, report.verdicts: the scale of the experiment,
the paper's findings and the sanity checks with verdict, key effect, lean and replication status), Checks,
Figures per experiment (what each shows, from report.figtext, and its caption under it), Tables (per setting
and every run) and Experiment (settings, data sets and networks, thresholds with their reasons, versions,
commit, the full resolved config)."""

import re
from types import SimpleNamespace

import jinja2
import pandas as pd

from lbhessian.core.names import experiment_mask, experiment_name, table_experiments
from lbhessian.report import experiment as ex
from lbhessian.report import figtext, tables, verdicts, writer
from lbhessian.report import numbers as nb
from lbhessian.report.writer import esc


def show(value, unit) -> str:
    """A number in the report's units, 3 significant digits: accuracies (fractions in claims.json) as %."""
    if not nb.finite(value):
        return "-" if value is None or isinstance(value, int | float) else str(value)  # a phrase (">= 0.5")
    unit = str(unit or "")
    if "fraction" in unit or "accuracy" in unit:
        return nb.pct(value)
    return nb.sig(value) + (f" {unit}" if unit else "")


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


CHECK_COLUMNS = [
    "check",
    "experiment",
    "mode",
    "verdict",
    "effect [95% interval]",
    "threshold",
    "figure",
    "statistic",
    "test",
    "detail",
]


def checks_view(claims: dict) -> str:
    """Per claim (its title once, in the heading) one row per check: verdict, effect and threshold in plain
    units and the figure first, the statistic, test with its one-sided p-value and the detail after."""
    parts = []
    for key, c in (claims.get("claims") or {}).items():
        rows = []
        for k in (x for x in claims.get("checks") or [] if str(x.get("claim")) == str(key)):
            row = {col: esc(k.get(col) if k.get(col) is not None else "-") for col in CHECK_COLUMNS}
            row["verdict"] = writer.badge(k.get("verdict", "?"))
            if k.get("leans"):
                row["verdict"] += f" <span class='lean'>{esc(verdicts.LEANS.get(k['leans'], k['leans']))}</span>"
            row["effect [95% interval]"] = esc(nb.effect(k))
            row["threshold"] = esc(nb.threshold(k))
            p = nb.check_p(k)
            row["test"] = esc(str(k.get("test") or "-") + (f"; {p}" if p else ""))
            detail = str(k.get("detail") or "")
            means = nb.means_by_batch(detail, k)
            detail += f" ({means})" if means else ""
            detail += (". " if detail else "") + f"Missing: {k['missing']}" if k.get("missing") else ""
            row["detail"] = esc(detail or "-")
            if k.get("figure") and k.get("experiment"):
                title = figtext.title(k["figure"])
                row["figure"] = f'<a href="#{esc(_fig_id(k["experiment"], k["figure"]))}">{esc(title)}</a>'
            rows.append(row)
        body = (
            writer.html_table(
                pd.DataFrame(rows, columns=CHECK_COLUMNS), raw=tuple(CHECK_COLUMNS), text=True, cls="checks"
            )
            if rows
            else ""
        )
        parts.append(
            f"<h3 id='checks-{esc(key)}'>Claim {esc(key)}: {esc(c.get('title', ''))} "
            f"{writer.badge(c.get('verdict', '?'))}</h3>{body or '<p>no checks</p>'}"
        )
    note = (
        "<p class='note'>Effects in the units of the quantity (factors as x, accuracies in percentage points, "
        "slopes per doubling of the batch or per 0.1 training eps); intervals two-sided 95%; p-values one-sided, "
        "H1 in the direction the paper claims.</p>"
    )
    return writer.view("checks", "Checks behind each verdict", note + "".join(parts))


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


def _finalize(value):
    """No "None" to a reader: an unset setting reads "(unset: the default)"."""
    return "(unset: the default)" if value is None else value


def caption(template: str, cfg: dict, config_path: str) -> str:
    """A workflow/report caption rendered as Snakemake's report would, then as HTML."""
    smk = SimpleNamespace(config=cfg, input=SimpleNamespace(config=config_path))
    return rst_html(jinja2.Environment(finalize=_finalize).from_string(template).render(snakemake=smk))


def figures_view(exp: str, pngs: dict, *, captions: dict, cfg: dict, config_path: str, runs=None, ctx=None) -> str:
    """Each figure under its human title, with what it shows (figtext, from the same numbers it plots) and its
    caption under it."""
    items = []
    runs = runs if runs is not None else pd.DataFrame()
    for kind, png in pngs.items():
        text = caption(captions[kind], cfg, config_path) if kind in captions else ""
        said = figtext.shown(kind, runs, ctx or {})
        if said:
            text = f"<p class='shown'><b>Shown:</b> {esc(' '.join(said))}</p>" + text
        items.append(
            f'<figure id="{esc(_fig_id(exp, kind))}"><h3>{esc(figtext.title(kind))}</h3>'
            f'<img src="{writer.png_uri(png)}" alt="{esc(figtext.title(kind))}, {esc(exp)}" '
            'loading="eager" decoding="sync">'
            f"<figcaption>{text}</figcaption></figure>"
        )
    toc = " · ".join(f'<a href="#{esc(_fig_id(exp, k))}">{esc(figtext.title(k))}</a>' for k in pngs)
    return writer.view(f"figures-{exp}", f"Figures: {exp}", f"<p>{toc}</p>{''.join(items)}")


def experiment_view(cfg: dict, config_path: str, claims: dict) -> str:
    value = lambda v: "unset" if v is None else str(v)  # noqa: E731 (never "None" to a reader)
    thr = [
        {"threshold": k, "value": value(v.get("value")), "reason": v.get("reason", "")}
        for k, v in (claims.get("thresholds") or {}).items()
        if isinstance(v, dict)
    ]
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


def _runs_of(df: pd.DataFrame, exp: str) -> pd.DataFrame:
    ok = df[df["status"].astype(str) == "ok"] if "status" in df else df
    return ok[experiment_mask(ok, exp)] if len(ok) else ok


def _headline_eps(cfg: dict, exp: str):
    for e in (cfg.get("train") or {}).get("experiments") or []:
        own = e.get("attack", {}).get("headline_eps")
        if experiment_name(e.get("dataset"), e.get("model")) == exp and own is not None:
            return e["attack"]["headline_eps"]
    return (cfg.get("attack") or {}).get("headline_eps")


def build(
    df: pd.DataFrame,
    claims: dict,
    cfg: dict,
    config_path: str,
    *,
    pngs: dict,
    captions: dict,
    replications: dict | None = None,
) -> str:
    """The whole page. ``pngs``: {experiment: {kind: png path}}; ``captions``: {kind: caption template};
    ``replications``: replications.json (``lbhessian replications``) when one has been run."""
    exps = list(pngs) or table_experiments(df)
    title = (cfg.get("report") or {}).get("title") or "lbhessian report"
    thresholds = (cfg.get("report") or {}).get("claims") or {}
    views = [checks_view(claims)]
    for e in exps:
        ctx = {"headline_eps": _headline_eps(cfg, e), "claims": thresholds, "config": cfg}
        views.append(
            figures_view(
                e,
                pngs.get(e, {}),
                captions=captions,
                cfg=cfg,
                config_path=config_path,
                runs=_runs_of(df, e),
                ctx=ctx,
            )
        )
    views.append(writer.view("tables", "Tables", "".join(tables.experiment_html(df, e) for e in exps)))
    views.append(experiment_view(cfg, config_path, claims))
    nav = [("verdicts", "Verdicts"), ("checks", "Checks")]
    nav += [(f"figures-{e}", f"Figures {e}" if len(exps) > 1 else "Figures") for e in exps]
    nav += [("tables", "Tables")] + [(f"runs-{e}", f"Runs {e}" if len(exps) > 1 else "Every run") for e in exps]
    nav.append(("experiment", "Experiment"))
    home = verdicts.view(claims, df, cfg, replications, _check_links)
    return writer.page(title, nav, views, home)
