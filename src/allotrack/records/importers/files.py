"""Reading one source file into text tables, strictly: every cell stays text (validation types it), each row keeps
the line it was read from, and a file that cannot be read is refused with its name and the place of the fault.

- CSV files are decoded as UTF-8 (a byte-order mark is allowed) unless an ``encoding`` is named. An undecodable
  byte is reported with the file, line and byte offset; a file with NUL bytes is not a text file. Memory stays
  bounded by the table itself: one streaming pass checks the encoding (a block at a time), then pandas parses the
  file in chunks of ``CHUNK_ROWS`` rows (never the whole text, or a copy of it, in memory), and a row limit
  (``max_rows``) is checked chunk by chunk. A :class:`ReadProgress` is told each file and the rows read so far.
- Line numbers are the file's own: the header is line 1, so the first data row is line 2; blank lines keep their
  numbers and a quoted cell spanning several lines moves the next row's line on accordingly.
- Excel workbooks give one table per sheet; a row's line is its spreadsheet row number (pandas opens them with
  openpyxl's ``read_only`` mode, which streams the sheets' XML). A workbook whose members
  (the sheets' XML) would unpack to more than ``MAX_XLSX_BYTES`` (50 MB; ``ALLOTRACK_MAX_XLSX_BYTES``) is refused
  before it is parsed: a small file can hold gigabytes of XML.
- SPSS / Stata / SAS files (pyreadstat) give one table; a row's "line" is its case number + 1 (as if a header
  row came first), so the numbering matches the same data saved as CSV.
- An empty file is refused; a header without rows, or an empty sheet, is a warning (a template of a table with no
  records yet).
"""

from __future__ import annotations

import codecs
import csv
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn, Protocol

import numpy as np
import pandas as pd

from allotrack.errors import InputError

DEFAULT_ENCODING = "utf-8-sig"
MAX_XLSX_BYTES = int(os.environ.get("ALLOTRACK_MAX_XLSX_BYTES") or 50 * 2**20)
CHUNK_ROWS = 50_000  # CSV rows parsed at a time
BLOCK = 2**20  # bytes decoded at a time by the encoding check


@dataclass(frozen=True)
class SourceTable:
    """One table read from a file: text cells, each row's line in the file, and where it came from."""

    name: str  # file stem or sheet name (what the mapping's [tables] section maps)
    label: str  # how problems name the source: "labs.csv" or "study.xlsx, sheet labs"
    frame: pd.DataFrame
    lines: np.ndarray


class ReadProgress(Protocol):
    """Told how reading goes (a background check shows it): each file as it starts, and the rows read so far."""

    def file(self, index: int, count: int, name: str) -> None: ...  # index counts from 1

    def rows(self, read: int, total: int | None) -> None: ...  # total: an estimate (the file's lines), if known


def read_source(path: Path, encoding: str | None = None, progress: ReadProgress | None = None,
                max_rows: int | None = None) -> tuple[list[SourceTable], list[str]]:  # fmt: skip
    """The tables in one file and the warnings about it (empty sheets, header-only files). A CSV file with more
    than ``max_rows`` rows is refused while it is read."""
    if not path.exists():
        raise InputError(f"no such file: {path}")
    if path.is_dir():
        raise InputError(f"{path} is a folder, not a file")
    suffix = path.suffix.lower()
    if suffix in (".csv", ".txt", ".tsv"):
        return _read_csv(path, encoding or DEFAULT_ENCODING, "\t" if suffix == ".tsv" else ",", progress, max_rows)
    if suffix in (".xlsx", ".xlsm"):
        return _read_excel(path)
    if suffix in (".sav", ".dta", ".sas7bdat", ".xpt"):
        return _read_statistical(path, suffix)
    raise InputError(f"cannot read {path.name}: use .csv, .tsv, .xlsx, .sav, .dta, .sas7bdat or .xpt")


def check_text(path: Path, encoding: str) -> tuple[int, bool]:
    """Read the file once, a block at a time, refusing it at the first undecodable byte (with its line and
    offset) or when it holds NUL bytes; answer its number of lines and whether it holds more than white space."""
    with path.open("rb") as raw:
        if b"\x00" in raw.read(65536):
            raise InputError(f"{path.name} is not a text file (it holds NUL bytes); save the table as CSV (UTF-8)")
        raw.seek(0)
        try:
            decoder = codecs.getincrementaldecoder(encoding)()
        except LookupError:
            raise InputError(f"unknown encoding {encoding!r} named for {path.name}") from None
        offset = lines = 0  # bytes and line ends before the block
        content, last = False, b""
        for block in iter(lambda: raw.read(BLOCK), b""):
            pending = decoder.getstate()[0]
            try:
                content = bool(decoder.decode(block).strip()) or content
            except UnicodeDecodeError as err:
                _undecodable(path, encoding, pending + block, err.start, offset - len(pending),
                             lines - pending.count(b"\n"))  # fmt: skip
            offset, lines, last = offset + len(block), lines + block.count(b"\n"), block[-1:]
        pending = decoder.getstate()[0]
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError as err:
            _undecodable(path, encoding, pending, err.start, offset - len(pending), lines - pending.count(b"\n"))
    return lines + (last not in (b"", b"\n")), content


def _undecodable(path: Path, encoding: str, data: bytes, at: int, start: int, lines: int) -> NoReturn:
    line = lines + data.count(b"\n", 0, at) + 1
    shown = "utf-8 (a byte-order mark is allowed)" if encoding == DEFAULT_ENCODING else encoding
    raise InputError(
        f"{path.name} line {line}: byte 0x{data[at]:02x} at offset {start + at} is not valid {shown}; "
        "save the file as UTF-8 or name its encoding in the mapping file (encoding = \"latin-1\")"
    ) from None


def _read_csv(path: Path, encoding: str, sep: str, progress: ReadProgress | None = None,
              max_rows: int | None = None) -> tuple[list[SourceTable], list[str]]:  # fmt: skip
    """Read in chunks of ``CHUNK_ROWS`` rows straight from the file (never the whole text in memory), after one
    pass that checks the encoding; the row limit is checked as the chunks come."""
    lines, content = check_text(path, encoding)
    if not content:
        raise InputError(f"{path.name} is empty: a table file needs a header line with its column names")
    chunks: list[pd.DataFrame] = []
    read = 0
    try:
        with pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False, na_values=[""], skip_blank_lines=False,
                         encoding=encoding, chunksize=CHUNK_ROWS) as reader:  # fmt: skip
            for chunk in reader:
                read += len(chunk)
                if max_rows is not None and read > max_rows:
                    raise InputError(f"{path.name} has more than {max_rows:,} rows: split it into smaller files")
                chunks.append(chunk)
                if progress is not None:
                    progress.rows(read, max(lines - 1, read))
    except InputError:
        raise
    except (pd.errors.ParserError, ValueError) as err:
        raise InputError(f"{path.name} is not a readable CSV table: {err}") from None
    frame = chunks[0] if len(chunks) == 1 else pd.concat(chunks, ignore_index=True)
    del chunks
    blank_header = [str(c) for c in frame.columns if str(c).startswith("Unnamed: ")]
    if blank_header:
        raise InputError(f"{path.name} line 1: {len(blank_header)} column(s) have no name in the header")
    if _spans_lines(frame):
        starts = _record_start_lines(path, encoding, sep, len(frame) + 1)
        lines_of = np.asarray(starts[1 : len(frame) + 1], dtype=np.int64)
    else:
        lines_of = np.arange(2, len(frame) + 2, dtype=np.int64)
    keep = frame.notna().any(axis=1).to_numpy()  # blank lines are skipped, their numbers kept
    frame, lines_of = frame[keep].reset_index(drop=True), lines_of[keep]
    warnings = [f"{path.name} has a header but no rows"] if not len(frame) else []
    return [SourceTable(path.stem, path.name, frame, lines_of)], warnings


def _spans_lines(frame: pd.DataFrame) -> bool:
    for col in frame.columns:
        values = frame[col].dropna()
        if len(values) and values.str.contains("[\r\n]", regex=True).any():
            return True
    return False


def _record_start_lines(path: Path, encoding: str, sep: str, records: int) -> list[int]:
    """The line each of the first ``records`` CSV records starts on (1-based), quoted line breaks taken into
    account; the file is read as a stream."""
    starts, previous = [], 0
    with path.open(encoding=encoding, newline="") as text:
        reader = csv.reader(text, delimiter=sep)
        for _ in reader:
            starts.append(previous + 1)
            previous = reader.line_num
            if len(starts) >= records:
                break
    return starts


def check_workbook_size(path: Path, limit: int | None = None) -> None:
    """Refuse a workbook whose members would unpack to more than ``limit`` bytes (the zip directory's sizes; a
    file that is no zip archive is left to the reader to refuse)."""
    limit = MAX_XLSX_BYTES if limit is None else limit
    try:
        with zipfile.ZipFile(path) as archive:
            size = sum(member.file_size for member in archive.infolist())
    except (zipfile.BadZipFile, OSError, ValueError):
        return
    if size > limit:
        raise InputError(f"{path.name} would unpack to {size / 2**20:,.0f} MB of sheet data (uncompressed), more than "
                         f"the limit of {limit / 2**20:,.0f} MB: split the workbook or save its sheets as CSV files")


def _read_excel(path: Path) -> tuple[list[SourceTable], list[str]]:
    check_workbook_size(path)
    try:
        sheets = pd.read_excel(path, sheet_name=None, dtype=str, header=None)
    except Exception as err:  # openpyxl raises many kinds (BadZipFile, KeyError, ValueError) for a broken workbook
        raise InputError(f"{path.name} is not a readable Excel workbook ({type(err).__name__})") from None
    tables, warnings = [], []
    for sheet, raw in sheets.items():
        label = f"{path.name}, sheet {sheet}"
        raw = raw.dropna(how="all")
        if raw.empty:
            warnings.append(f"{label} is empty")
            continue
        header_row = raw.index[0]
        names = raw.loc[header_row]
        if names.isna().any():
            raise InputError(f"{label} row {header_row + 1}: {int(names.isna().sum())} column(s) have no name")
        body = raw.loc[raw.index > header_row]
        frame = pd.DataFrame(body.to_numpy(dtype=object), columns=[str(n).strip() for n in names])
        frame = frame.where(frame.notna(), None)
        lines = body.index.to_numpy(dtype=np.int64) + 1  # spreadsheet rows count from 1
        if not len(frame):
            warnings.append(f"{label} has a header but no rows")
        tables.append(SourceTable(str(sheet), label, frame, lines))
    return tables, warnings


def _read_statistical(path: Path, suffix: str) -> tuple[list[SourceTable], list[str]]:
    try:
        import pyreadstat
    except ImportError as err:
        raise InputError("reading SPSS/Stata/SAS files needs pyreadstat: pip install pyreadstat") from err
    reader = {".sav": pyreadstat.read_sav, ".dta": pyreadstat.read_dta, ".sas7bdat": pyreadstat.read_sas7bdat,
              ".xpt": pyreadstat.read_xport}[suffix]  # fmt: skip
    try:
        frame, _ = reader(str(path))
    except Exception as err:  # pyreadstat.ReadstatError and friends
        raise InputError(f"{path.name} is not a readable {suffix[1:]} file ({type(err).__name__})") from None
    frame = frame.astype("string").astype(object)
    frame = frame.where(frame.notna(), None)
    warnings = [f"{path.name} has no cases"] if not len(frame) else []
    return [SourceTable(path.stem, path.name, frame, np.arange(2, len(frame) + 2, dtype=np.int64))], warnings
