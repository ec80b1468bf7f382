"""Word tables a reader can use: the header row repeats on every page a table spans, and column widths follow
their content (a column of long labels is wider than a column of short numbers) within the page's 6.5 inches."""

from __future__ import annotations

import docx
import pandas as pd
from docx.oxml.ns import qn

from allotrack.report.document import Document, Section, TableBlock
from allotrack.report.docx import write_docx


def _written(tmp_path, frame: pd.DataFrame):
    doc = Document("T", "", (Section("S", (), (TableBlock("Table", frame, ()),), ()),), "methods", {"allotrack": "x"})
    path = write_docx(doc, tmp_path / "t.docx")
    return docx.Document(str(path)).tables[0]


def test_header_row_repeats_and_long_label_column_is_widest(tmp_path):
    frame = pd.DataFrame({"Covariate": ["Disease status at transplant: second or later complete remission"] * 60,
                          "SMD": ["0.000"] * 60, "Mean": ["0.760"] * 60})  # fmt: skip
    table = _written(tmp_path, frame)
    header = table.rows[0]._tr
    assert header.trPr is not None and header.trPr.find(qn("w:tblHeader")) is not None
    widths = [table.columns[i].cells[1].width for i in range(3)]
    assert widths[0] > 2 * widths[1] and widths[1] == widths[2]
    assert abs(sum(widths) - 6.5 * 914400) < 914400 * 0.05  # EMU per inch
