"""Content hashes of record rows: what makes a re-import idempotent (a row whose hash is stored is skipped)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from allotrack.records.schema import Column, table_spec


def row_hashes(frame: pd.DataFrame, table: str) -> pd.Series:
    """Content hash of each (typed) row over the table's schema columns, as 16 hex digits.

    Definition (unchanged since the first schema, so stored hashes stay comparable): every column is written as
    text (numbers as float64, missing as ``"\\x00"``) and the row is hashed with
    :func:`pandas.util.hash_pandas_object` (SipHash, ``index=False``). Each column is first reduced to its
    distinct values and hashed as a categorical (pandas hashes a categorical exactly as its values), so ten
    million lab rows cost a few thousand string conversions."""
    return pd.Series(hex_digits(hash_values(frame, table)), index=frame.index)


def hash_values(frame: pd.DataFrame, table: str, columns: tuple[str, ...] | None = None) -> np.ndarray:
    """The content hashes of :func:`row_hashes` as unsigned 64-bit integers (over ``columns`` when given, in the
    table's column order)."""
    spec = table_spec(table)
    chosen = [c for c in spec.columns if columns is None or c.name in columns]
    parts = {c.name: _as_text_categorical(frame, c) for c in chosen}
    return pd.util.hash_pandas_object(pd.DataFrame(parts, index=frame.index), index=False).to_numpy(dtype=np.uint64)


def content_and_key_values(frame: pd.DataFrame, table: str) -> tuple[np.ndarray, np.ndarray]:
    """:func:`hash_values` and :func:`key_values` at once, bit for bit: each column is hashed once (pandas hashes a
    frame as its columns' hashes combined by ``combine_hash_arrays``, which is what is done here for both column
    sets)."""
    try:  # pandas' own combiner (internal API: fall back to two separate passes if it ever moves)
        from pandas.core.util.hashing import combine_hash_arrays  # type: ignore[attr-defined]
    except ImportError:  # pragma: no cover
        return hash_values(frame, table), key_values(frame, table)
    spec = table_spec(table)
    columns = {c.name: pd.util.hash_pandas_object(pd.Series(_as_text_categorical(frame, c)), index=False)
               .to_numpy(dtype=np.uint64) for c in spec.columns}  # fmt: skip
    key_names = [c.name for c in spec.columns if c.name in spec.natural_key]
    content = combine_hash_arrays(iter(columns.values()), len(columns))
    key = combine_hash_arrays(iter([columns[n] for n in key_names]), len(key_names))
    return np.asarray(content, dtype=np.uint64), np.asarray(key, dtype=np.uint64)


def key_values(frame: pd.DataFrame, table: str) -> np.ndarray:
    """Hash of each row's natural key (:attr:`allotrack.records.schema.Table.natural_key`), the same definition as
    the content hash restricted to the key columns; the store keeps it as ``key_hash`` under a unique index."""
    return hash_values(frame, table, table_spec(table).natural_key)


def hex_digits(hashes: np.ndarray) -> np.ndarray:
    """16 lower-case hex digits per hash (big-endian), vectorised: a Python object per row only at the end."""
    digits = _HEX_PAIRS[np.asarray(hashes, dtype=np.uint64).astype(">u8").view(np.uint8).reshape(-1, 8)]
    return np.ascontiguousarray(digits).view("S16").ravel().astype(str).astype(object)


_HEX_PAIRS = np.array([f"{i:02x}".encode() for i in range(256)], dtype="S2")


def _as_text_categorical(frame: pd.DataFrame, col: Column) -> pd.Categorical:
    values = frame[col.name] if col.name in frame.columns else pd.Series([None] * len(frame), index=frame.index)
    if col.kind in ("number", "integer"):
        floats = pd.to_numeric(values, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
        codes, bits = pd.factorize(floats.view(np.int64))  # by bit pattern: -0.0 and 0.0 read differently
        uniques: Any = np.asarray(bits).view(np.float64)
    else:
        codes, uniques = pd.factorize(values, use_na_sentinel=True)
    text = [*pd.Series(uniques).astype("string").fillna("\x00").tolist(), "\x00"]  # last entry: missing
    codes = np.where(codes < 0, len(text) - 1, codes)
    text_codes, categories = pd.factorize(pd.Series(text, dtype=object))  # 1 and "1" both read "1"
    return pd.Categorical.from_codes(text_codes[codes], categories=pd.Index(categories, dtype=object))
