"""One self-contained HTML file: navigation, tables as HTML tables, figures embedded as inline SVG, the methods
paragraph and the software versions. No external files, scripts or fonts: it opens anywhere, offline."""

from __future__ import annotations

import io
from html import escape

import pandas as pd
from matplotlib.figure import Figure

from allotrack.report.document import Document, TableBlock
from allotrack.report.table_one import TableOne

STYLE = """
body { font-family: -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif; margin: 0; color: #1b1b1b; }
nav { position: fixed; top: 0; left: 0; width: 15rem; height: 100vh; overflow-y: auto; background: #f4f6f8;
      padding: 1rem; box-sizing: border-box; font-size: 0.85rem; }
nav a { display: block; color: #1f4e79; text-decoration: none; margin: 0.3rem 0; }
main { margin-left: 15rem; padding: 1.5rem 2.5rem; max-width: 62rem; }
h1 { font-size: 1.5rem; } h2 { font-size: 1.2rem; border-bottom: 1px solid #ccd; padding-bottom: 0.2rem; }
table { border-collapse: collapse; margin: 0.8rem 0; font-size: 0.85rem; max-width: 100%; }
caption { text-align: left; font-weight: 600; padding-bottom: 0.3rem; }
th { border-bottom: 2px solid #333; border-top: 2px solid #333; padding: 0.3rem 0.6rem; text-align: left; }
td { padding: 0.2rem 0.6rem; border-bottom: 1px solid #e3e3e3; vertical-align: top; }
td.level { padding-left: 1.6rem; } td.label { font-weight: 600; }
.table-wrap { overflow-x: auto; }
ol.footnotes, ul.notes { font-size: 0.78rem; color: #444; margin-top: 0; list-style: none; padding-left: 0; }
figure { margin: 1rem 0; } figure svg { max-width: 100%; height: auto; }
figcaption { font-size: 0.85rem; color: #333; }
.methods { font-size: 0.9rem; line-height: 1.5; }
"""


def figure_svg(fig: Figure) -> str:
    """The figure as an inline SVG element (the XML prolog and DOCTYPE dropped)."""
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    text = buf.getvalue()
    return text[text.index("<svg") :]


def _frame_html(frame: pd.DataFrame) -> str:
    head = "".join(f"<th>{escape(str(c))}</th>" for c in frame.columns)
    body = "".join("<tr>" + "".join(f"<td>{escape('' if v is None or v != v else str(v))}</td>" for v in row) + "</tr>"
                   for row in frame.itertuples(index=False))  # fmt: skip
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def table_html(block: TableBlock) -> str:
    if isinstance(block.table, TableOne):
        inner = block.table.to_html(caption=block.caption)
        return f'<div class="table-wrap">{inner}</div>'
    notes = "".join(f"<li>{escape(n)}</li>" for n in block.footnotes)
    table = _frame_html(block.frame).replace("<table>", f"<table><caption>{escape(block.caption)}</caption>", 1)
    return f'<div class="table-wrap">{table}</div><ul class="notes">{notes}</ul>'


def render_html(doc: Document) -> str:
    nav = "".join(f'<a href="#{s.anchor}">{escape(s.title)}</a>' for s in doc.sections)
    nav += '<a href="#methods">Methods</a>'
    parts = [f"<h1>{escape(doc.title)}</h1>"]
    if doc.subtitle:
        parts.append(f"<p>{escape(doc.subtitle)}</p>")
    for s in doc.sections:
        parts.append(f'<section id="{s.anchor}"><h2>{escape(s.title)}</h2>')
        parts += [f"<p>{escape(p)}</p>" for p in s.paragraphs]
        parts += [table_html(t) for t in s.tables]
        parts += [f"<figure>{figure_svg(f.figure)}<figcaption>{escape(f.caption)}</figcaption></figure>"
                  for f in s.figures]  # fmt: skip
        parts.append("</section>")
    versions = ", ".join(f"{k} {v}" for k, v in doc.software.items())
    parts.append(f'<section id="methods"><h2>Methods</h2><p class="methods">{escape(doc.methods)}</p>'
                 f"<p class=\"methods\">Software: {escape(versions)}.</p></section>")  # fmt: skip
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{escape(doc.title)}</title>'
            f'<meta name="viewport" content="width=device-width, initial-scale=1"><style>{STYLE}</style></head>'
            f"<body><nav><strong>Contents</strong>{nav}</nav><main>{''.join(parts)}</main></body></html>")  # fmt: skip
