"""Importers: files to :class:`allotrack.records.Records` (validation happens when the records are stored or
derived). CSV files named after their table, an Excel workbook with one sheet per table, SPSS/Stata/SAS files
(pyreadstat, optional), a REDCap raw export with its data dictionary; a TOML mapping file renames tables and
columns and recodes values."""

from allotrack.records.importers.redcap import read_redcap
from allotrack.records.importers.tabular import ImportMapping, load_mapping, read_tables

__all__ = ["ImportMapping", "load_mapping", "read_redcap", "read_tables"]
