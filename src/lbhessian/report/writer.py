"""The one HTML/Markdown writer of the report layer: tables, pages and escaping, used by the tables, the claims
pages and the report page. Pages are self-contained: inline CSS, images as data URIs, no scripts, no fetches."""

import base64
import html
from pathlib import Path

import pandas as pd

STYLE = """
body{font-family:system-ui,sans-serif;font-size:14px;line-height:1.4;margin:0;color:#222}
nav{position:sticky;top:0;background:#23395d;padding:.4em 1em;z-index:5}
nav a{color:#fff;margin-right:1.2em;text-decoration:none;font-weight:600}
nav a:hover{text-decoration:underline}
main{padding:0 1.2em 2em;max-width:1200px}
.view{display:none}.view:target,.view:has(:target){display:block}
.view.home{display:block}.view:target~.home,.view:has(:target)~.home{display:none}
.scroll{overflow-x:auto;max-width:100%;margin-bottom:1.2em}
table{border-collapse:collapse;font-size:13px}
td,th{border:1px solid #ccc;padding:3px 7px;text-align:right;white-space:nowrap;background:#fff}
th{background:#eef1f5}table.text td,table.text th{text-align:left;white-space:normal;max-width:40em}
section,h3,h4,figure{scroll-margin-top:3em}
td.key,th.key{position:sticky;left:0;text-align:left;background:#f7f7f2;z-index:1}
.holds{background:#d7f0d8}.fails{background:#f8d5d2}.inconclusive{background:#fbefc8}
.badge{padding:1px 7px;border-radius:8px;font-weight:600}
figure{margin:1em 0 2em;border-top:1px solid #ddd;padding-top:.6em}
figure img{max-width:100%;height:auto}
figcaption{font-size:13px;color:#333;max-width:60em}
pre{background:#f6f6f6;padding:.6em;overflow-x:auto;font-size:12px}
.note{color:#555;font-size:13px}
.scale{margin:.3em 0;font-size:13px}.tally{margin:.3em 0}
h2{margin:.5em 0 .3em}h3{margin:.6em 0 .3em}
main{max-width:1340px}
table.verdicts{table-layout:fixed;width:100%}table.verdicts td,table.verdicts th{padding:2px 6px;font-size:12.5px;
line-height:1.3;max-width:none}table.verdicts th:nth-child(1){width:3em}table.verdicts th:nth-child(2){width:27%}
table.verdicts th:nth-child(3){width:10.5em}table.verdicts th:nth-child(5){width:13%}
.lean{font-size:12px;color:#6b4e00;white-space:nowrap}
.links{font-size:12px;white-space:nowrap}.links a{margin-left:.2em}
table.checks td{font-size:12.5px}table.checks td.wide{min-width:22em}
"""


def esc(value) -> str:
    return html.escape(str(value), quote=True)


def md_table(frame: pd.DataFrame) -> str:
    head = "| " + " | ".join(str(c) for c in frame.columns) + " |"
    sep = "| " + " | ".join("---" for _ in frame.columns) + " |"
    body = ["| " + " | ".join(str(v).replace("|", "\\|") for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([head, sep, *body]) + "\n"


def html_table(
    frame: pd.DataFrame, *, key: bool = True, raw: tuple = (), id_: str | None = None, text=False, cls: str = ""
) -> str:
    """A table in a horizontal scroller; with ``key`` its first column stays in view while the rest scroll.
    Columns named in ``raw`` hold HTML already (links, badges); everything else is escaped. ``text``: cells
    left-aligned (prose), else right-aligned (numbers)."""
    cols = list(frame.columns)

    def cell(tag, i, v, c):
        cls = ' class="key"' if key and i == 0 else ""
        return f"<{tag}{cls}>{v if c in raw else esc(v)}</{tag}>"

    head = "".join(cell("th", i, c, None) for i, c in enumerate(cols))
    rows = "".join(
        "<tr>" + "".join(cell("td", i, v, c) for i, (v, c) in enumerate(zip(row, cols, strict=True))) + "</tr>"
        for row in frame.itertuples(index=False)
    )
    ident = f' id="{esc(id_)}"' if id_ else ""
    classes = " ".join(c for c in ("text" if text else "", cls) if c)
    tcls = f' class="{esc(classes)}"' if classes else ""
    return f'<div class="scroll"{ident}><table{tcls}><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table></div>'


def view(id_: str, title: str, body: str, home: bool = False) -> str:
    """One view of a page: shown when the address names it (#id) or anything inside it; no script needed.
    The ``home`` view is shown while the address names no other view."""
    cls = "view home" if home else "view"
    return f'<section class="{cls}" id="{esc(id_)}"><h2>{esc(title)}</h2>{body}</section>'


def page(title: str, nav: list[tuple[str, str]], views: list[str], home: str) -> str:
    """A page of views; ``home`` (made with view(..., home=True)) comes last: CSS hides it when another is shown."""
    links = "".join(f'<a href="#{esc(i)}">{esc(t)}</a>' for i, t in nav)
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>'
        f"<style>{STYLE}</style></head><body><nav>{links}</nav><main>{''.join(views)}{home}</main></body></html>\n"
    )


def png_uri(path) -> str:
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


def badge(verdict: str) -> str:
    return f'<span class="badge {esc(verdict)}">{esc(verdict)}</span>'
