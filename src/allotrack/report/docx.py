"""The report as a Word document (python-docx): the same tables as editable Word tables, figures as PNG,
headings, footnotes under each table, the methods paragraph."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from docx import Document as new_word_document
from docx.document import Document as WordDocument
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.oxml import OxmlElement
from docx.oxml.ns import qn
from docx.shared import Emu, Inches, Pt

from allotrack.report.document import Document, TableBlock
from allotrack.report.table_one import TableOne


def _add_table(word: WordDocument, block: TableBlock) -> None:
    cap = word.add_paragraph()
    cap.add_run(block.caption).bold = True
    frame = block.frame
    kinds = list(block.table.stats["row_type"]) if isinstance(block.table, TableOne) else ["level"] * len(frame)
    table = word.add_table(rows=1, cols=len(frame.columns))
    table.style = "Table Grid"
    for cell, name in zip(table.rows[0].cells, frame.columns, strict=True):
        cell.text = str(name)
        cell.paragraphs[0].runs[0].bold = True
    for row, kind in zip(frame.itertuples(index=False), kinds, strict=True):
        cells = table.add_row().cells
        for i, (cell, value) in enumerate(zip(cells, row, strict=True)):
            cell.text = "" if value is None or value != value else str(value)
            if i == 0 and kind == "label" and isinstance(block.table, TableOne):
                cell.paragraphs[0].runs[0].bold = True
            elif i == 0 and isinstance(block.table, TableOne):
                cell.paragraphs[0].paragraph_format.left_indent = Inches(0.2)
    for row_cells in table.rows:  # 9-point tables, as journals set them
        for cell in row_cells.cells:
            for run in cell.paragraphs[0].runs:
                run.font.size = Pt(9)
    _repeat_header(table.rows[0])
    _fit_columns(table, frame)
    for note in block.notes:
        p = word.add_paragraph(note)
        p.runs[0].font.size = Pt(8)


PAGE_WIDTH = Inches(6.5)  # Letter/A4 with Word's default 1-inch margins


def _repeat_header(row: Any) -> None:
    """Mark the header row to repeat at the top of every page the table continues on (Word's "Repeat as header
    row", ``w:tblHeader``)."""
    tr_pr = row._tr.get_or_add_trPr()
    flag = OxmlElement("w:tblHeader")
    flag.set(qn("w:val"), "true")
    tr_pr.append(flag)


def _fit_columns(table: Any, frame: Any) -> None:
    """Column widths from each column's content at about 0.08 inch per 9-point character plus 0.2 inch of cell
    margins:
    a column's natural width is its longest cell (up to 40 characters) or its header's longest word (at least 4
    characters). Columns that fit keep their natural width; when the table would be wider than the page, only the
    widest columns (labels) give up width, down to an equal share of what is left."""
    natural = []
    for j, name in enumerate(frame.columns):
        cells = [str(v) for v in frame.iloc[:, j] if v is not None and v == v]
        longest = max((len(c) for c in cells), default=0)
        chars = max(min(longest, 40), max((len(w) for w in str(name).split()), default=0), 4)
        natural.append(chars * 0.08 + 0.2)
    budget = PAGE_WIDTH / Inches(1)
    widths = list(natural)
    if sum(widths) > budget:  # cap the widest columns at a common width that makes the table fit
        order = sorted(widths)
        cap = order[-1]
        for k in range(len(order)):
            rest = sum(order[:k])
            share = (budget - rest) / (len(order) - k)
            if share <= order[k]:
                cap = share
                break
        widths = [min(w, cap) for w in widths]
    else:
        widths = [w * budget / sum(widths) for w in widths]  # fill the page in proportion
    table.autofit = False
    for j, w in enumerate(widths):
        width = Emu(int(Inches(1) * w))
        table.columns[j].width = width  # the grid LibreOffice reads; Word reads the cells'
        for cell in table.columns[j].cells:
            cell.width = width


def write_docx(doc: Document, path: str | Path) -> Path:
    word = new_word_document()
    word.styles["Normal"].font.size = Pt(10)
    word.add_heading(doc.title, level=0)
    if doc.subtitle:
        word.add_paragraph(doc.subtitle)
    for s in doc.sections:
        word.add_heading(s.title, level=1)
        for text in s.paragraphs:
            word.add_paragraph(text)
        for t in s.tables:
            _add_table(word, t)
        for f in s.figures:
            buf = io.BytesIO()
            f.figure.savefig(buf, format="png", dpi=150, bbox_inches="tight")
            buf.seek(0)
            word.add_picture(buf, width=Inches(6.0))
            cap = word.add_paragraph(f.caption)
            cap.alignment = WD_ALIGN_PARAGRAPH.CENTER
            cap.runs[0].italic = True
    word.add_heading("Methods", level=1)
    word.add_paragraph(doc.methods)
    word.add_paragraph("Software: " + ", ".join(f"{k} {v}" for k, v in doc.software.items()) + ".")
    out = Path(path)
    word.save(str(out))
    return out
