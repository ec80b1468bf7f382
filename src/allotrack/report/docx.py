"""The report as a Word document (python-docx): the same tables as editable Word tables, figures as PNG,
headings, footnotes under each table, the methods paragraph."""

from __future__ import annotations

import io
from pathlib import Path

from docx import Document as new_word_document
from docx.document import Document as WordDocument
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.shared import Inches, Pt

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
    for note in block.notes:
        p = word.add_paragraph(note)
        p.runs[0].font.size = Pt(8)


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
