"""What a report holds, independent of its format: sections of text, tables and figures. The HTML and DOCX
writers (:mod:`allotrack.report.html`, :mod:`allotrack.report.docx`) render the same document."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd
from matplotlib.figure import Figure

from allotrack.report.table_one import TableOne


@dataclass(frozen=True)
class TableBlock:
    """A report table: the formatted ``table`` shown, its footnotes, and optionally ``data``, the same numbers
    unrounded (written beside the report as CSV/JSON, as gtsummary's ``as_tibble``; the shown table otherwise)."""

    caption: str
    table: pd.DataFrame | TableOne
    footnotes: tuple[str, ...] = ()
    data: pd.DataFrame | None = None

    @property
    def frame(self) -> pd.DataFrame:
        return self.table.table if isinstance(self.table, TableOne) else self.table

    @property
    def notes(self) -> tuple[str, ...]:
        return self.table.footnotes if isinstance(self.table, TableOne) else self.footnotes


@dataclass(frozen=True)
class FigureBlock:
    caption: str
    figure: Figure


@dataclass(frozen=True)
class Section:
    title: str
    paragraphs: tuple[str, ...] = ()
    tables: tuple[TableBlock, ...] = ()
    figures: tuple[FigureBlock, ...] = ()

    @property
    def anchor(self) -> str:
        return "".join(ch if ch.isalnum() else "-" for ch in self.title.lower()).strip("-")


@dataclass(frozen=True)
class Document:
    title: str
    subtitle: str
    sections: tuple[Section, ...]
    methods: str
    software: dict[str, str] = field(default_factory=dict)
