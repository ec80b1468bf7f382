"""Spreadsheet-safe CSV writing: every CSV file allotrack writes goes through :func:`write_csv` or :func:`csv_text`.

A CSV file is data, but a spreadsheet that opens it (Excel, LibreOffice Calc, Google Sheets) reads a cell that
begins with ``=``, ``+``, ``-`` or ``@`` as a formula, and so will run ``=HYPERLINK(...)``, ``=cmd|' /C calc'!A0``
or ``=WEBSERVICE(...)`` typed into a free-text field of a record or a patient id ("CSV Injection", OWASP:
https://owasp.org/www-community/attacks/CSV_Injection). OWASP's rule is applied here: a *text* cell that begins
with one of ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is written with a single quote ``'`` in front,
which the spreadsheet shows as text and never evaluates. Column names are text cells too and get the same rule.

Numbers are left alone: integer, float, boolean and date/datetime columns are never changed, so a negative number
such as ``-1.5`` is written as ``-1.5``, unquoted, and still reads back as a number (a number is not a formula:
the spreadsheet parses it as a value). Only object / string columns are looked at, and in them only ``str``
values; a text cell such as ``"-5"`` in a text column is text and does get the quote. Missing values stay empty.

One more case needs care: a lone carriage return inside a cell. Python's ``csv`` writer quotes a field only for
the characters of the line terminator, and pandas ends lines with ``\\n``, so ``"a\\r=1+2"`` would be written
unquoted and a spreadsheet (or ``pandas.read_csv``) would start a new row at the ``\\r`` whose first cell is the
formula ``=1+2``. When a text cell or a column name holds a ``\\r``, :func:`write_csv` therefore ends lines with
``\\r\\n`` (RFC 4180's line end), which makes the writer quote such cells; other files keep pandas' line ends.

The work is vectorised: pandas ``.str.startswith`` with a tuple on string columns (Arrow kernels for pandas'
default Arrow-backed ``str`` dtype) and one Arrow regex kernel for object columns holding only strings; no Python
loop runs per row (only object columns that mix strings with other values use pandas' element-wise ``.str``).
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pandas as pd

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
QUOTE = "'"

__all__ = ["FORMULA_PREFIXES", "csv_text", "neutralise", "neutralise_cell", "write_csv"]


def neutralise_cell(value: Any) -> Any:
    """``value`` with a leading ``'`` if it is a string that begins with a formula prefix; otherwise unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return QUOTE + value
    return value


def _is_text(series: pd.Series) -> bool:
    dtype = series.dtype
    return pd.api.types.is_object_dtype(dtype) or pd.api.types.is_string_dtype(dtype)


_PREFIX_PATTERN = "^[" + "".join("\\" + p if p in "-\\]^" else p for p in FORMULA_PREFIXES) + "]"
_MIXED = ("mixed", "mixed-integer")  # infer_dtype's names for object columns that may hold str among other values


def _text_mask(series: pd.Series, regex: str, method: str, arg: Any) -> np.ndarray | None:
    """Boolean mask of the ``str`` cells matching (``regex`` for Arrow; ``series.str.<method>(arg)`` for pandas),
    or None when the column holds no strings. Object columns of str (and missing values) go through one Arrow
    kernel instead of one Python call per cell; string dtypes use pandas' own (Arrow-backed) string methods."""
    if pd.api.types.is_object_dtype(series.dtype):
        kind = pd.api.types.infer_dtype(series, skipna=True)
        if kind == "string":
            import pyarrow as pa
            import pyarrow.compute as pc

            found = pc.match_substring_regex(pa.array(series.to_numpy(), from_pandas=True), regex)
            return np.asarray(pc.fill_null(found, False).to_numpy(zero_copy_only=False), dtype=bool)
        if kind not in _MIXED:  # numbers, dates, bytes, nothing but missing values: no text
            return None
    try:
        mask = getattr(series.str, method)(arg, na=False)
    except AttributeError:  # an object column without strings: nothing to match
        return None
    # mixed object columns may answer NaN for non-strings even with na=False
    return np.asarray(mask.fillna(False), dtype=bool)


def _starts_with_prefix(series: pd.Series) -> np.ndarray | None:
    return _text_mask(series, _PREFIX_PATTERN, "startswith", FORMULA_PREFIXES)


def _holds_carriage_return(series: pd.Series) -> bool:
    if isinstance(series.dtype, pd.CategoricalDtype):
        series = series.cat.categories.to_series()
    if not _is_text(series):
        return False
    mask = _text_mask(series, "\r", "contains", "\r")
    return mask is not None and bool(mask.any())


def _neutralise_series(series: pd.Series) -> pd.Series:
    if isinstance(series.dtype, pd.CategoricalDtype):
        categories = series.cat.categories
        if not _is_text(categories.to_series()):
            return series
        renamed = _neutralise_series(categories.to_series()).array
        if pd.Index(renamed).is_unique:
            return series.cat.rename_categories(renamed)
        # "=x" and "'=x" both present: the categories would collide, so write the column as plain text
        return _neutralise_series(series.astype(object))
    if not _is_text(series):
        return series
    mask = _starts_with_prefix(series)
    if mask is None or not mask.any():
        return series
    if pd.api.types.is_object_dtype(series.dtype):
        values = series.to_numpy(copy=True)
        where = np.flatnonzero(mask)
        values[where] = QUOTE + values[where]  # object arrays: element-wise str concatenation in C
        return pd.Series(values, index=series.index, name=series.name, dtype=object)
    out = series.copy()
    out[mask] = (QUOTE + series[mask]).array  # by position: no alignment on a (possibly duplicated) index
    return out


def _neutralise_labels(labels: pd.Index) -> pd.Index:
    """Column names (or index labels): flat labels vectorised, tuples of a MultiIndex level by level."""
    if isinstance(labels, pd.MultiIndex):
        levels = [_neutralise_series(labels.get_level_values(i).to_series()) for i in range(labels.nlevels)]
        names = [neutralise_cell(n) for n in labels.names]
        return pd.MultiIndex.from_arrays([pd.Index(level.array) for level in levels], names=names)
    flat = labels.to_series()
    safe = _neutralise_series(flat)
    name = neutralise_cell(labels.name)
    if safe is flat:
        return labels if name is labels.name else labels.rename(name)
    return pd.Index(safe.array, name=name)


def neutralise(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` whose text cells and column names that begin with a formula prefix get a leading ``'``.
    Only object / string (and categorical text) columns change; numbers, booleans and dates never do."""
    out = frame.copy(deep=False)
    for i in range(frame.shape[1]):  # by position: duplicate column names stay apart
        column = frame.iloc[:, i]
        safe = _neutralise_series(column)
        if safe is not column:
            out.isetitem(i, safe)  # type: ignore[arg-type]  # a Series (an array would turn None into NaN)
    out.columns = _neutralise_labels(frame.columns)
    return out


def _has_carriage_return(frame: pd.DataFrame, with_index: bool) -> bool:
    parts = [frame.iloc[:, i] for i in range(frame.shape[1])]
    parts.append(pd.Series(frame.columns.to_flat_index().map(str), dtype=object))
    if with_index:
        parts += [frame.index.get_level_values(i).to_series() for i in range(frame.index.nlevels)]
    return any(_holds_carriage_return(part) for part in parts)


def _safe_frame(frame: pd.DataFrame, to_csv_kwargs: dict[str, Any]) -> pd.DataFrame:
    """The neutralised frame and the ``to_csv`` options (index off by default) that keep every cell in its row."""
    to_csv_kwargs.setdefault("index", False)
    safe = neutralise(frame)
    if to_csv_kwargs["index"]:
        safe.index = _neutralise_labels(safe.index)
    header = to_csv_kwargs.get("header", True)
    if not isinstance(header, bool):  # column aliases given by the caller: they are the header row
        safe = safe.set_axis(_neutralise_labels(pd.Index(list(header))), axis=1)
        to_csv_kwargs["header"] = True
    label = to_csv_kwargs.get("index_label")
    if label is not None and label is not False:
        to_csv_kwargs["index_label"] = neutralise_cell(label) if isinstance(label, str) else [
            neutralise_cell(x) for x in label]
    if _has_carriage_return(safe, bool(to_csv_kwargs["index"])):
        terminator = to_csv_kwargs.setdefault("lineterminator", "\r\n")
        if "\r" not in terminator:
            raise ValueError("a text cell holds a carriage return: it would start a new row unless quoted, and the "
                             "csv writer quotes it only when the line terminator holds '\\r' (use '\\r\\n')")
    return safe


def write_csv(frame: pd.DataFrame, path_or_buffer: Any, **to_csv_kwargs: Any) -> None:
    """``frame.to_csv(path_or_buffer, ...)`` after :func:`neutralise` (``index=False`` unless given)."""
    safe = _safe_frame(frame, to_csv_kwargs)
    safe.to_csv(path_or_buffer, **to_csv_kwargs)


def csv_text(frame: pd.DataFrame, **to_csv_kwargs: Any) -> str:
    """The spreadsheet-safe CSV text of ``frame`` (for an HTTP download), as :func:`write_csv` would write it."""
    buffer = io.StringIO()
    write_csv(frame, buffer, **to_csv_kwargs)
    return buffer.getvalue()
