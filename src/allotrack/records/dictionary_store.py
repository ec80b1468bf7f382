"""The data dictionary a store is validated against: the newest saved version (table ``data_dictionary``, each
version kept as its TOML text with who saved it, when and why), or allotrack's bundled default while none was
saved. A new version may add items and change labels, ranges or choices; it may not drop an item, or change its
kind or type, while stored records use it (that would strand them)."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime
from functools import lru_cache

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from allotrack.errors import InputError
from allotrack.records.dictionary import DataDictionary, default_dictionary
from allotrack.records.schema import DICTIONARY_TABLES
from allotrack.records.tables import AUDIT_LOG, DATA_DICTIONARY, METADATA


def stored_dictionary(bind: Engine | Connection) -> DataDictionary:
    """The dictionary in force for the store (its newest saved version, else the bundled default).

    Versions are only ever added (:func:`save_dictionary`), so a version is identified by its row — the store's
    URL, ``dictionary_id`` and ``created_at`` (the time tells apart a database dropped and created again, whose ids
    start over) — and each is parsed once per process: a request reads only that identity (a primary-key lookup),
    the content only the first time, and a new version (saved by any process) is seen by the next request."""
    if isinstance(bind, Engine):
        with bind.connect() as conn:
            return _in_force(conn)
    return _in_force(bind)


_VERSIONS: dict[tuple[str, int, str], DataDictionary] = {}  # (store URL, dictionary_id, created_at) -> parsed


def _in_force(conn: Connection) -> DataDictionary:
    d = DATA_DICTIONARY
    row = conn.execute(sa.select(d.c.dictionary_id, d.c.created_at).order_by(d.c.dictionary_id.desc()).limit(1)).first()
    if row is None:
        return default_dictionary()
    version = (conn.engine.url.render_as_string(hide_password=True), int(row.dictionary_id), str(row.created_at))
    found = _VERSIONS.get(version)
    if found is None:
        content = conn.execute(sa.select(d.c.content).where(d.c.dictionary_id == row.dictionary_id)).scalar_one()
        found = _parsed(content)
        if len(_VERSIONS) >= 64:  # a long-running process sees few versions; tests see many stores
            _VERSIONS.clear()
        _VERSIONS[version] = found
    return found


@lru_cache(maxsize=8)
def _parsed(content: str) -> DataDictionary:
    """A saved version parsed once (web pages and imports read the dictionary in force on every request)."""
    return DataDictionary.from_toml(content, source="stored dictionary")


def items_in_use(conn: Connection) -> dict[str, set[str]]:
    """The item codes stored records use, per dictionary-driven table."""
    out = {}
    for table, column in DICTIONARY_TABLES.items():
        t = METADATA.tables[table]
        out[table] = {str(c) for c in conn.execute(sa.select(t.c[column]).where(t.c.deleted == sa.false()).distinct())
                      .scalars()}  # fmt: skip
    return out


def save_dictionary(engine: Engine, dictionary: DataDictionary, user: str, reason: str | None = None) -> int:
    """Save a new version of the store's dictionary (audited); returns its id. Refused, naming every item, when
    stored records use an item the new version drops, re-kinds, re-types or gives another unit (stored values
    would be read in the wrong unit), when a condition is outside the branching logic allotrack checks
    (:mod:`allotrack.records.branching`) or names an item the dictionary lacks, and when stored records break a
    new or changed condition."""
    problems = _condition_problems(dictionary)
    if not problems:
        problems = _stored_rows_breaking(engine, dictionary)
    if problems:
        raise InputError("the dictionary was not saved: " + "; ".join(problems), table="data dictionary")
    with engine.begin() as conn:
        current = stored_dictionary(conn)
        problems = []
        for table, codes in items_in_use(conn).items():
            for code in sorted(codes):
                if code not in dictionary:
                    problems.append(f"'{code}' is used by stored {table} but missing from the new dictionary")
                    continue
                old, new = current.item(code) if code in current else None, dictionary.item(code)
                if old is not None and (old.kind, old.type) != (new.kind, new.type):
                    problems.append(f"'{code}' is used by stored {table}: its kind/type cannot change from "
                                    f"{old.kind}/{old.type} to {new.kind}/{new.type}")  # fmt: skip
                elif old is not None and old.unit != new.unit:
                    problems.append(f"'{code}' is used by stored {table}: its unit cannot change from {old.unit} "
                                    f"to {new.unit} (the stored values are in {old.unit})")  # fmt: skip
        if problems:
            raise InputError("the dictionary was not saved: " + "; ".join(problems), table="data dictionary")
        now = datetime.now(UTC)
        result = conn.execute(DATA_DICTIONARY.insert().values(
            name=dictionary.name or "study dictionary", version=dictionary.version or now.strftime("%Y%m%d%H%M%S"),
            content=dictionary.to_toml(), created_by=user, created_at=now, reason=reason))  # fmt: skip
        added = sorted(set(dictionary.codes) - set(current.codes))
        conn.execute(AUDIT_LOG.insert().values(at=now, username=user, action="dictionary", table_name="data_dictionary",
                                               row_id=None, patient_id=None, centre_code=None, old_values=None,
                                               new_values=json.dumps({"added": added, "items": len(dictionary)}),
                                               reason=reason))  # fmt: skip
        return int(result.inserted_primary_key[0])  # type: ignore[index]


def _condition_problems(dictionary: DataDictionary) -> list[str]:
    """Conditions allotrack cannot check, or that name an item the dictionary lacks."""
    from allotrack.records.branching import UnsupportedLogic, items_of, parse

    out = []
    for item in dictionary:
        if item.condition is None:
            continue
        try:
            unknown = sorted(items_of(parse(item.condition)) - set(dictionary.codes))
        except UnsupportedLogic as err:
            out.append(f"the condition of '{item.code}' cannot be checked ({err}); allotrack reads [item] = 'value' "
                       "comparisons (=, <>, !=, <, <=, >, >=) joined by and / or with parentheses")  # fmt: skip
            continue
        if unknown:
            out.append(f"the condition of '{item.code}' ({item.condition}) names {', '.join(map(repr, unknown))}, "
                       "which the dictionary does not have")  # fmt: skip
    return out


def _stored_rows_breaking(engine: Engine, dictionary: DataDictionary) -> list[str]:
    """Stored rows that a new or changed condition (or a newly required attribute) would refuse."""
    from allotrack.records.store import load_records
    from allotrack.records.validate_items import KIND_OF_TABLE, check_conditions

    current = stored_dictionary(engine)
    changed = [item for item in dictionary if (item.condition is not None or item.required) and (
        item.code not in current or (current.item(item.code).condition, current.item(item.code).required)
        != (item.condition, item.required))]  # fmt: skip
    if not changed:
        return []
    kinds = {t for t, k in KIND_OF_TABLE.items() if any(item.kind == k for item in changed)}
    records = load_records(engine, tables={"patients", "attributes", *kinds})
    tables = {name: records[name] for name in ("patients", "attributes", *kinds)}
    found = check_conditions(tables, dictionary, only={item.code for item in changed}).problems
    counts = Counter(_item_of(p.rule) for p in found)
    return [f"{n} stored record(s) break the new condition or requirement of '{code}' (correct them first, or "
            "change the condition)" for code, n in sorted(counts.items())]  # fmt: skip


def _item_of(rule: str) -> str:
    """The item a condition problem names (its rule starts "item 'x'" or "required attribute 'x'")."""
    return rule.split("'")[1]
