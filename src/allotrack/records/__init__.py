"""Clinical records: the table definitions (``schema``) and their validation (``validate``). The store and the
importers build on these."""

from allotrack.records.schema import TABLES, Column, Records, Table
from allotrack.records.validate import Problem, ValidationError, validate_records

__all__ = ["TABLES", "Column", "Problem", "Records", "Table", "ValidationError", "validate_records"]
