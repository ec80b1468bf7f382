"""SDTM-like exports: a study's records as long tables shaped like CDISC SDTM domains (one row per record, SDTM
variable names), for reviewers and tools that read SDTM. They follow the variable meanings of the CDISC SDTM
Implementation Guide (SDTMIG v3.x; the variable labels quoted below are SDTMIG's) but are not a submission
package: there is no DM, TS or Define-XML, and the deviations are listed at the end.

Domains and sources
-------------------

**LB** (laboratory test results, a findings domain) from ``observations``:

=========  =====================================================  ==================================================
Variable   SDTMIG meaning                                         allotrack source
=========  =====================================================  ==================================================
STUDYID    Study Identifier                                       the ``study_id`` argument (column left out if none)
DOMAIN     Domain Abbreviation                                    ``"LB"``
USUBJID    Unique Subject Identifier                              ``patient_id``
LBSEQ      Sequence Number (unique within a subject)              1, 2, ... per subject, in date order (below)
LBTESTCD   Lab Test or Examination Short Name (≤ 8 characters)    item code upper-cased (:func:`test_code`)
LBTEST     Lab Test or Examination Name                           the dictionary item's label
LBORRES    Result or Finding in Original Units                    as reported: the number of ``reported`` when the
                                                                  value was converted on import, else the value
                                                                  (or the coded ``value_text``) as stored
LBORRESU   Original Units                                         the unit of ``reported``, else the stored unit
LBSTRESC   Character Result/Finding in Std Format                 the coded ``value_text``, else the stored number
                                                                  as text
LBSTRESN   Numeric Result/Finding in Standard Units               the stored ``value`` (the dictionary's unit)
LBSTRESU   Standard Units                                         the stored unit (the dictionary's unit)
LBSTAT     Completion Status                                      empty (no not-done records are stored)
LBREASND   Reason Test Not Done                                   empty
LBSPEC     Specimen Type                                          ``specimen``
LBMETHOD   Method of Test or Examination                          ``method`` (the assay, e.g. qPCR chimerism)
LBLLOQ     Lower Limit of Quantitation                            ``lod``, as stored
VISIT      Visit Name                                             ``visit``
LBDTC      Date/Time of Specimen Collection                       ``date`` (ISO 8601 date)
LBDY       Study Day of Specimen Collection                       ``study_day`` as recorded
=========  =====================================================  ==================================================

Results below or above the limit of detection (``below_lod`` / ``above_lod``) follow SDTMIG's rule for results
that are not exact numbers: LBORRES and LBSTRESC hold ``"<x"`` (x the stored ``lod``, else the value) or
``">x"`` (x the value) and LBSTRESN is empty.

**EX** (exposure, an interventions domain) from ``interventions`` and the typed core's ``infusions``: EXSEQ
(date order), EXGRPID "Group ID" (``course_id``: the administrations of one course), EXREFID "Reference ID"
(``infusion_id``), EXTRT "Name of Treatment" (the agent's dictionary label; infusions: the ``product``),
EXDOSE "Dose", EXDOSU "Dose Units", EXROUTE "Route of Administration" (CDISC route terms: INTRAVENOUS,
SUBCUTANEOUS, ORAL, INTRATHECAL, TOPICAL; ``other`` is written OTHER; infusions are INTRAVENOUS), VISIT, EXSTDTC /
EXENDTC "Start / End Date/Time of Treatment" (an infusion starts and ends on its ``date``).

* Interventions: EXDOSE is ``dose``, EXDOSU the stored unit (the dictionary's), with ``/kg`` appended when
  ``per_kg`` is true and the unit is not already per kg.
* Infusions carry up to four cell doses per kg (``mnc_per_kg``, ``cd34_per_kg``, ``cd3_per_kg``,
  ``nk_per_kg``), in 10^6 cells/kg as the schema states. EXDOSE is the product's defining dose
  (:data:`INFUSION_DOSE`: CD34+ cells for G-PBSC and HSCT, CD3+ cells for DLI, NK cells for NK, mononuclear cells
  for MSC and IMAK) with EXDOSU ``10^6/kg``; every cell dose given (the defining one included) is also in
  **SUPPEX**, as below.

**SUPPEX** (supplemental qualifiers for EX, SDTMIG's SUPPQUAL structure): RDOMAIN "Related Domain Abbreviation"
``"EX"``, USUBJID, IDVAR "Identifying Variable" ``"EXSEQ"``, IDVARVAL "Identifying Variable Value" (the EXSEQ),
QNAM "Qualifier Variable Name", QLABEL "Qualifier Variable Label", QVAL "Data Value": ``DOSELVL`` (an
intervention's ``dose_level``), ``DONORID`` (an infusion's ``donor_id``) and ``MNCDOSE``, ``CD34DOSE``,
``CD3DOSE``, ``NKDOSE`` (an infusion's cell doses, 10^6/kg).

**RS** (disease response and clinical classification, a findings domain) from the ``assessments`` whose item is
a response (its code contains ``response``: ``response_eln``, ``response_imwg``, ``disease_response``,
``gvhd_response`` ...): RSSEQ, RSTESTCD "Assessment Short Name" (as LBTESTCD), RSTEST "Assessment Name" (the
item's label), RSCAT "Category for
Assessment" (the assessment's ``rule``, the response criterion), RSORRES "Result or Finding in Original Units"
(the label of the coded answer, as a case report form shows it), RSSTRESC "Character
Result/Finding in Std Format" (the answer's code, e.g. ``VGPR``: the standard form),
VISIT, RSDTC "Date/Time of Assessment", RSDY "Study Day of Assessment" (``study_day``).

**AE** (adverse events, an events domain) from ``adverse_events``: AESEQ, AETERM "Reported Term for the Adverse
Event" (``term``), AEBODSYS "Body System or Organ Class" (``soc``), AETOXGR "Standard Toxicity Grade" (``grade``,
CTCAE), AESTDTC "Start Date/Time of Adverse Event" (``start_date``).

Sequence numbers
----------------
--SEQ numbers a subject's records 1, 2, ... in date order; records without a date come after the dated ones; ties
are ordered by test code (LB, RS), treatment (EX) or term (AE), then by source (interventions
before infusions) and the order of the records.

Test codes
----------
SDTMIG's --TESTCD is at most 8 characters, letters, digits and underscores, not starting with a digit. Item codes
(lowercase letters, digits and underscores, starting with a letter) are upper-cased; a code longer than 8
characters keeps its first 5 characters and gets a 3-character suffix in base 36 (0-9, A-Z) of the SHA-256
digest of the whole code (``mprot_serum`` -> ``MPROT`` + 3 characters): the same code always gives the same test
code, whatever else the study holds. Two items of one export that would share a test code are refused.

Deviations from SDTM
--------------------
* STUDYID only when a study id is given; USUBJID is the store's ``patient_id`` as it is (not prefixed with the
  study and site).
* Dates (--DTC) are ISO 8601 dates (``YYYY-MM-DD``): the store keeps calendar dates, no times.
* --DY is the study day recorded with the observation or assessment (allotrack has no DM domain and so no
  RFSTDTC to derive it from); it is empty for the typed core's tables. There is no VISITNUM.
* Units are UCUM codes as the data dictionary stores them, with powers of ten written ``10^9/L`` (UCUM's other
  spelling of ``10*9/L``, the form CDISC's UNIT terms use); other units are not mapped to CDISC terms. LBORRESU
  is the unit as it was typed.
* LBTEST, EXTRT and RSTEST are the dictionary's labels, not truncated to SDTM's 40 characters; EXTRT of an
  intervention is the dictionary item's label (e.g. "Basiliximab dose").
* All observations go to LB, including cytokines, immune subsets, chimerism and DSA MFI (a submission would put
  some in other findings domains such as IS).
* ``lod`` (LBLLOQ) is exported as stored; the importer converts ``value`` to the dictionary's unit, not ``lod``.
* Not exported: observations' ``transfused`` flag, assessments' ``inputs``, attributes, graded assessments that
  are not responses (GVHD, CRS);
  SUPPEX has no QORIG or QEVAL.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from allotrack.errors import InputError
from allotrack.records.dictionary import DataDictionary
from allotrack.records.schema import TABLES, Records
from allotrack.records.tables import typed_frame

__all__ = ["DOMAINS", "INFUSION_DOSE", "SOURCE_TABLES", "sdtm_domains", "test_code", "write_domains", "write_sdtm"]

DOMAINS = ("LB", "EX", "SUPPEX", "RS", "AE")
ALWAYS_WRITTEN = ("LB", "EX", "RS", "AE")
# the tables the domains are built from (what to load from a store)
SOURCE_TABLES = ("observations", "interventions", "infusions", "assessments", "adverse_events")
ROUTES = {"iv": "INTRAVENOUS", "sc": "SUBCUTANEOUS", "oral": "ORAL", "intrathecal": "INTRATHECAL",
          "topical": "TOPICAL", "other": "OTHER"}  # fmt: skip
# infusions: the per-kg cell dose that is EXDOSE, by product (others: mononuclear cells)
INFUSION_DOSE = {"G-PBSC": "cd34_per_kg", "HSCT": "cd34_per_kg", "DLI": "cd3_per_kg", "NK": "nk_per_kg",
                 "MSC": "mnc_per_kg", "IMAK": "mnc_per_kg"}  # fmt: skip
CELL_DOSES = {"mnc_per_kg": ("MNCDOSE", "Mononuclear cells per kg (10^6/kg)"),
              "cd34_per_kg": ("CD34DOSE", "CD34+ cells per kg (10^6/kg)"),
              "cd3_per_kg": ("CD3DOSE", "CD3+ cells per kg (10^6/kg)"),
              "nk_per_kg": ("NKDOSE", "NK cells per kg (10^6/kg)")}  # fmt: skip
CELL_DOSE_UNIT = "10^6/kg"
INTEGERS = frozenset({"LBSEQ", "LBDY", "EXSEQ", "RSSEQ", "RSDY", "AESEQ", "AETOXGR"})
NUMERIC = INTEGERS | {"LBSTRESN", "LBLLOQ", "EXDOSE"}
_BASE36 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_LAST = np.iinfo(np.int64).max  # the sort key of a missing date: after every date

COLUMNS = {
    "LB": ("DOMAIN", "USUBJID", "LBSEQ", "LBTESTCD", "LBTEST", "LBORRES", "LBORRESU", "LBSTRESC", "LBSTRESN",
           "LBSTRESU", "LBSTAT", "LBREASND", "LBSPEC", "LBMETHOD", "LBLLOQ", "VISIT", "LBDTC", "LBDY"),
    "EX": ("DOMAIN", "USUBJID", "EXSEQ", "EXGRPID", "EXREFID", "EXTRT", "EXDOSE", "EXDOSU", "EXROUTE", "VISIT",
           "EXSTDTC", "EXENDTC"),
    "SUPPEX": ("RDOMAIN", "USUBJID", "IDVAR", "IDVARVAL", "QNAM", "QLABEL", "QVAL"),
    "RS": ("DOMAIN", "USUBJID", "RSSEQ", "RSTESTCD", "RSTEST", "RSCAT", "RSORRES", "RSSTRESC", "VISIT", "RSDTC",
           "RSDY"),
    "AE": ("DOMAIN", "USUBJID", "AESEQ", "AETERM", "AEBODSYS", "AETOXGR", "AESTDTC"),
}  # fmt: skip


def test_code(code: str) -> str:
    """The SDTM --TESTCD of an item code: upper-cased; longer than 8 characters, its first 5 characters and a
    3-character base-36 suffix of the SHA-256 digest of the code (see the module docstring)."""
    upper = code.upper()
    if len(upper) <= 8:
        return upper
    number = int.from_bytes(hashlib.sha256(code.encode()).digest()[:8], "big") % 36**3
    return upper[:5] + "".join(_BASE36[number // 36**k % 36] for k in (2, 1, 0))


test_code.__test__ = False  # type: ignore[attr-defined]  # not a pytest test when imported into a test module


# --- vectorised helpers -----------------------------------------------------------------------------------------


def _table(records: Records, name: str) -> pd.DataFrame:
    """The table typed as the schema says (hand-made frames may lack columns or hold date objects)."""
    frame = records[name]
    spec = TABLES[name]
    missing = [c.name for c in spec.columns if c.name not in frame.columns]
    if missing:
        frame = frame.assign(**dict.fromkeys(missing))
    return typed_frame(frame.reset_index(drop=True), spec)


def _objects(series: pd.Series) -> np.ndarray:
    """Text values as an object array, None for missing (typed text columns already hold None)."""
    values = series.to_numpy(dtype=object)
    if series.dtype != object:  # Arrow-backed or nullable columns: NaN / NA to None
        values = values.copy()
        values[pd.isna(values)] = None
    return values


def _floats(series: pd.Series) -> np.ndarray:
    return series.to_numpy(dtype="float64", na_value=np.nan)


def _flags(series: pd.Series) -> np.ndarray:
    return series.fillna(False).to_numpy(dtype=bool)


def _per_value(values: np.ndarray, function: Any) -> np.ndarray:
    """``function`` applied once per distinct non-missing value, gathered back (None where missing)."""
    codes, uniques = pd.factorize(pd.Series(values, dtype=object), use_na_sentinel=True)
    mapped = np.array([*(function(u) for u in uniques), None], dtype=object)
    return mapped[codes]


def _where(condition: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.where(condition, a, b).astype(object)


def _number_text(values: np.ndarray) -> np.ndarray:
    """Numbers as text, None where missing: whole numbers below 10^15 as integers (``35``, not ``35.0``), others
    in the shortest form that reads back to the same float (Arrow's cast: ``0.9997686``, ``1e-7``)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    finite = np.isfinite(values)
    safe = np.where(finite, values, 0.0)
    whole = finite & (np.abs(safe) < 1e15) & (np.floor(safe) == safe)
    ints = pc.cast(pa.array(safe.astype(np.int64), mask=~whole), pa.string())
    floats = pc.cast(pa.array(safe, mask=~(finite & ~whole)), pa.string())
    return np.asarray(pc.coalesce(ints, floats).to_numpy(zero_copy_only=False), dtype=object)


def _concat(*parts: np.ndarray) -> np.ndarray:
    """Element-wise text concatenation of object arrays; None where any part is None."""
    missing = np.zeros(len(parts[0]), bool)
    for part in parts:
        missing |= pd.isna(part)
    out = np.full(len(parts[0]), None, dtype=object)
    if (~missing).any():
        joined = parts[0][~missing]
        for part in parts[1:]:
            joined = joined + part[~missing]  # object arrays: str concatenation in C
        out[~missing] = joined
    return out


def _unit_text(units: np.ndarray) -> np.ndarray:
    """UCUM codes with powers of ten as ``10^`` (UCUM's other spelling of ``10*``; CDISC's UNIT form)."""
    return _per_value(units, lambda u: str(u).replace("10*", "10^"))


def _iso_dates(series: pd.Series) -> np.ndarray:
    """ISO 8601 dates (``YYYY-MM-DD``), None where missing: formatted once per distinct date."""
    codes, uniques = pd.factorize(series.to_numpy(dtype="datetime64[ns]"), use_na_sentinel=True)
    text = np.array([*np.datetime_as_string(np.asarray(uniques, dtype="datetime64[ns]"), unit="D"), None],
                    dtype=object)  # fmt: skip
    return text[codes]


def _date_ranks(series: pd.Series) -> np.ndarray:
    """Integer codes that sort like the dates (missing dates last)."""
    values = series.to_numpy(dtype="datetime64[ns]")
    keys = values.astype(np.int64)
    keys[np.isnat(values)] = _LAST
    codes, _ = pd.factorize(keys, sort=True)
    return codes


def _sort_codes(values: np.ndarray) -> np.ndarray:
    """Integer codes that sort like the values (missing values last)."""
    codes, uniques = pd.factorize(pd.Series(values, dtype=object), sort=True, use_na_sentinel=True)
    return np.where(codes < 0, len(uniques), codes)


def _labels(dictionary: DataDictionary) -> dict[str, str]:
    return {item.code: item.label or item.code for item in dictionary}


def _test_codes(codes: np.ndarray, domain: str) -> np.ndarray:
    """The test code of every row's item code; refused if two distinct item codes would share one."""
    distinct = [c for c in pd.unique(pd.Series(codes, dtype=object)) if c is not None and not pd.isna(c)]
    seen: dict[str, str] = {}
    for code in distinct:
        short = test_code(str(code))
        if short in seen and seen[short] != code:
            raise InputError(f"{domain}: items '{seen[short]}' and '{code}' would share the test code {short}; "
                             "rename one of them in the data dictionary", column="item")  # fmt: skip
        seen[short] = str(code)
    return _per_value(codes, lambda c: test_code(str(c)))


class _Part:
    """Rows of one domain from one source: columns (arrays of equal length) and the keys that order them."""

    def __init__(self, columns: dict[str, np.ndarray], date: pd.Series, tie: np.ndarray) -> None:
        self.columns = columns
        self.date = date
        self.tie = tie


def _assemble(domain: str, parts: list[_Part], study_id: str | None, seq: str,
              extra: tuple[str, ...] = ()) -> pd.DataFrame:  # fmt: skip
    """One domain's frame: the parts stacked, ordered per subject by date, tie and source, numbered ``seq``
    (``extra`` columns are kept after the domain's own). Columns are gathered as arrays: no per-row work."""
    parts = [p for p in parts if len(p.tie)]
    if not parts:
        return _empty(domain, study_id)
    sizes = [len(p.tie) for p in parts]
    n = sum(sizes)
    subject = _sort_codes(np.concatenate([p.columns["USUBJID"] for p in parts]))
    day = _date_ranks(pd.concat([p.date for p in parts], ignore_index=True))
    tie = _sort_codes(np.concatenate([np.asarray(p.tie, dtype=object) for p in parts]))
    source = np.repeat(np.arange(len(parts)), sizes)
    # one int64 key (subject, date, tie, source) sorted stably keeps the records' order among equal keys
    widths = [int(k.max()) + 1 for k in (day, tie, source)]
    if (int(subject.max()) + 1) * widths[0] * widths[1] * widths[2] < 2**62:
        key = ((subject.astype(np.int64) * widths[0] + day) * widths[1] + tie) * widths[2] + source
        order = np.argsort(key, kind="stable")
    else:
        order = np.lexsort((np.arange(n), source, tie, day, subject))
    sorted_subject = subject[order]
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_subject)) + 1]
    data: dict[str, Any] = {}
    for name in (*COLUMNS[domain], *extra):
        if name == "DOMAIN":
            data[name] = pd.Series(np.full(n, domain, dtype=object), dtype=object)
        elif name == seq:
            data[name] = pd.Series(np.arange(n) - np.repeat(starts, np.diff(np.r_[starts, n])) + 1, dtype="Int64")
        else:
            fill = (lambda k: np.full(k, np.nan)) if name in NUMERIC else (lambda k: np.full(k, None, dtype=object))
            column = np.concatenate([p.columns.get(name, fill(size)) for p, size in zip(parts, sizes, strict=True)])
            column = column[order]
            data[name] = pd.Series(column, dtype="Int64" if name in INTEGERS else "float64" if name in NUMERIC
                                   else object)  # fmt: skip
    return _finish(pd.DataFrame(data), study_id)


def _finish(frame: pd.DataFrame, study_id: str | None) -> pd.DataFrame:
    """STUDYID first when given."""
    if study_id is not None:
        frame.insert(0, "STUDYID", pd.Series(np.full(len(frame), study_id, dtype=object), index=frame.index,
                                             dtype=object))  # fmt: skip
    return frame


def _empty(domain: str, study_id: str | None) -> pd.DataFrame:
    return _finish(pd.DataFrame({c: pd.Series(dtype="Int64" if c in INTEGERS else "float64" if c in NUMERIC
                                              else object) for c in COLUMNS[domain]}), study_id)  # fmt: skip


# --- domains ----------------------------------------------------------------------------------------------------


def _lb(records: Records, dictionary: DataDictionary, study_id: str | None) -> pd.DataFrame:
    labels = _labels(dictionary)
    units = {item.code: item.unit for item in dictionary if item.unit}
    parts = []
    obs = _table(records, "observations")
    if len(obs):
        item = _objects(obs["item"])
        value, lod = _floats(obs["value"]), _floats(obs["lod"])
        text = _objects(obs["value_text"])
        below, above = _flags(obs["below_lod"]), _flags(obs["above_lod"])
        censored = below | above
        prefix = np.where(below, "<", np.where(above, ">", "")).astype(object)
        number = _number_text(value)
        bound = _number_text(np.where(below & np.isnan(value), lod, value))
        stored_unit = _objects(obs["unit"])
        stored_unit = _unit_text(_where(pd.isna(stored_unit), _per_value(item, units.get), stored_unit))
        rep_number, rep_unit = _split_reported(_objects(obs["reported"]))
        has_reported = ~pd.isna(rep_number)
        has_text = ~pd.isna(text)
        has_number = ~np.isnan(value) | censored
        stresc = _where(has_text, text, _where(censored, _concat(prefix, bound), number))
        orres = _where(has_reported, _where(censored, _concat(prefix, rep_number), rep_number), stresc)
        stresu = _where(has_number & ~has_text, stored_unit, np.full(len(obs), None, dtype=object))
        parts.append(_Part({
            "USUBJID": _objects(obs["patient_id"]), "LBTESTCD": _test_codes(item, "LB"),
            "LBTEST": _per_value(item, lambda c: labels.get(c, c)), "LBORRES": orres,
            "LBORRESU": _where(has_reported, rep_unit, stresu), "LBSTRESC": stresc,
            "LBSTRESN": np.where(censored, np.nan, value), "LBSTRESU": stresu,
            "LBSPEC": _objects(obs["specimen"]), "LBMETHOD": _objects(obs["method"]), "LBLLOQ": lod,
            "VISIT": _objects(obs["visit"]),
            "LBDTC": _iso_dates(obs["date"]), "LBDY": (_floats(obs["study_day"])),
        }, obs["date"], item))  # fmt: skip
    return _assemble("LB", parts, study_id, "LBSEQ")


def _split_reported(reported: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``reported`` (``"17.1 umol/L"``: the number, a space, the unit as typed) split in two (Arrow kernels)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    pieces = pc.split_pattern(pa.array(reported, type=pa.string(), from_pandas=True), " ", max_splits=1)
    number = pc.list_element(pieces, 0)
    has_unit = pc.greater(pc.list_value_length(pieces), 1)
    unit = pc.if_else(has_unit, pc.list_element(pc.if_else(has_unit, pieces, pa.scalar([""], pieces.type)), 1),
                      pa.nulls(len(pieces), pa.string()))  # fmt: skip
    return (np.asarray(number.to_numpy(zero_copy_only=False), dtype=object),
            np.asarray(unit.to_numpy(zero_copy_only=False), dtype=object))  # fmt: skip


def _ex(records: Records, dictionary: DataDictionary, study_id: str | None) -> tuple[pd.DataFrame, pd.DataFrame]:
    labels = _labels(dictionary)
    units = {item.code: item.unit for item in dictionary if item.unit}
    parts = []
    supp: list[tuple[int, dict[str, np.ndarray]]] = []  # (part, QNAM -> value per row)
    iv = _table(records, "interventions")
    if len(iv):
        agent = _objects(iv["agent"])
        unit = _objects(iv["unit"])
        unit = _where(pd.isna(unit), _per_value(agent, units.get), unit)
        per_kg = _flags(iv["per_kg"]) & ~pd.isna(unit)
        not_per_kg = ~pd.Series(unit, dtype=object).str.endswith("/kg").fillna(False).to_numpy(dtype=bool)
        unit = _where(per_kg & not_per_kg, _concat(unit, np.full(len(iv), "/kg", dtype=object)), unit)
        dose = _floats(iv["dose"])
        parts.append(_Part({
            "USUBJID": _objects(iv["patient_id"]), "EXGRPID": _objects(iv["course_id"]),
            "EXTRT": _per_value(agent, lambda c: labels.get(c, c)), "EXDOSE": dose,
            "EXDOSU": _where(np.isnan(dose), np.full(len(iv), None, dtype=object), _unit_text(unit)),
            "EXROUTE": _per_value(_objects(iv["route"]), lambda r: ROUTES.get(str(r), str(r).upper())),
            "VISIT": _objects(iv["visit"]), "EXSTDTC": _iso_dates(iv["start_date"]),
            "EXENDTC": _iso_dates(iv["end_date"]),
        }, iv["start_date"], agent))  # fmt: skip
        supp.append((len(parts) - 1, {"DOSELVL": _objects(iv["dose_level"])}))
    inf = _table(records, "infusions")
    if len(inf):
        product = _objects(inf["product"])
        doses = {name: _floats(inf[name]) for name in CELL_DOSES}
        chosen = _per_value(product, lambda p: INFUSION_DOSE.get(str(p), "mnc_per_kg"))
        dose = np.full(len(inf), np.nan)
        for name, values in doses.items():
            dose = np.where(chosen == name, values, dose)
        date = _iso_dates(inf["date"])
        parts.append(_Part({
            "USUBJID": _objects(inf["patient_id"]), "EXGRPID": _objects(inf["course_id"]),
            "EXREFID": _objects(inf["infusion_id"]), "EXTRT": product, "EXDOSE": dose,
            "EXDOSU": _where(np.isnan(dose), np.full(len(inf), None, dtype=object),
                             np.full(len(inf), CELL_DOSE_UNIT, dtype=object)),
            "EXROUTE": np.full(len(inf), "INTRAVENOUS", dtype=object), "EXSTDTC": date, "EXENDTC": date,
        }, inf["date"], product))  # fmt: skip
        qualifiers = {"DONORID": _objects(inf["donor_id"])}
        qualifiers.update({CELL_DOSES[name][0]: _number_text(values) for name, values in doses.items()})
        supp.append((len(parts) - 1, qualifiers))
    # the SUPPEX rows need each EX row's EXSEQ: carry every part's qualifiers as hidden columns through the sort
    for index, qualifiers in supp:
        parts[index].columns.update({f"_Q_{name}": values for name, values in qualifiers.items()})
    hidden = tuple(sorted({c for p in parts for c in p.columns if c.startswith("_Q_")}))
    ex = _assemble("EX", parts, study_id, "EXSEQ", hidden)
    qualifiers_frame = ex[["USUBJID", "EXSEQ", *hidden]]
    return ex.drop(columns=list(hidden)), _suppex(qualifiers_frame, study_id)


_QLABELS = {"DOSELVL": "Dose level", "DONORID": "Donor identifier",
            **{qnam: label for qnam, label in CELL_DOSES.values()}}  # fmt: skip


def _suppex(frame: pd.DataFrame, study_id: str | None) -> pd.DataFrame:
    """SUPPEX rows from the EX rows' hidden qualifier columns (``_Q_<QNAM>``): one row per value given."""
    hidden = [c for c in frame.columns if c.startswith("_Q_")]
    subject, seq = _objects(frame["USUBJID"]), frame["EXSEQ"].to_numpy(dtype="int64")
    rows, names = [], []
    for column in hidden:
        given = np.flatnonzero(~pd.isna(frame[column].to_numpy(dtype=object)))
        rows.append(given)
        names.append(np.full(len(given), column.removeprefix("_Q_"), dtype=object))
    if not hidden or not sum(len(r) for r in rows):
        return _empty("SUPPEX", study_id)
    row, qnam = np.concatenate(rows), np.concatenate(names)
    value = np.concatenate([frame[c].to_numpy(dtype=object)[r] for c, r in zip(hidden, rows, strict=True)])
    order = np.lexsort((_sort_codes(qnam), seq[row], _sort_codes(subject[row])))
    row, qnam, value = row[order], qnam[order], value[order]
    n = len(row)
    data = {"RDOMAIN": np.full(n, "EX", dtype=object), "USUBJID": subject[row],
            "IDVAR": np.full(n, "EXSEQ", dtype=object), "IDVARVAL": seq[row].astype(str).astype(object),
            "QNAM": qnam, "QLABEL": _per_value(qnam, _QLABELS.get), "QVAL": value}  # fmt: skip
    return _finish(pd.DataFrame({k: pd.Series(v, dtype=object) for k, v in data.items()}), study_id)


def _rs(records: Records, dictionary: DataDictionary, study_id: str | None) -> pd.DataFrame:
    labels = _labels(dictionary)
    parts = []
    ass = _table(records, "assessments")
    is_response = _per_value(_objects(ass["item"]), lambda c: "response" in str(c))
    ass = ass[np.equal(is_response, True)].reset_index(drop=True)
    if len(ass):
        item = _objects(ass["item"])
        text = _objects(ass["value_text"])
        code = _where(pd.isna(text), _number_text(_floats(ass["value"])), text)
        answer_label = _answer_labels(item, code, dictionary)
        parts.append(_Part({
            "USUBJID": _objects(ass["patient_id"]), "RSTESTCD": _test_codes(item, "RS"),
            "RSTEST": _per_value(item, lambda c: labels.get(c, c)), "RSCAT": _objects(ass["rule"]),
            "RSORRES": answer_label, "RSSTRESC": code, "VISIT": _objects(ass["visit"]),
            "RSDTC": _iso_dates(ass["date"]), "RSDY": (_floats(ass["study_day"])),
        }, ass["date"], item))  # fmt: skip
    return _assemble("RS", parts, study_id, "RSSEQ")


def _answer_labels(item: np.ndarray, code: np.ndarray, dictionary: DataDictionary) -> np.ndarray:
    """The label of each row's coded answer (the code itself when the item has no such choice)."""
    pairs = pd.DataFrame({"item": item, "code": code}, dtype=object)
    group = pairs.groupby(["item", "code"], dropna=False, sort=False).ngroup().to_numpy()
    first = pairs.drop_duplicates().reset_index(drop=True)
    out = []
    for i, c in zip(first["item"], first["code"], strict=True):
        label = c
        if i in dictionary and c is not None and not pd.isna(c):
            try:
                label = dictionary.item(i).choice_label(str(c))
            except (KeyError, InputError):
                pass
        out.append(label)
    return np.array(out, dtype=object)[group]


def _ae(records: Records, study_id: str | None) -> pd.DataFrame:
    ae = _table(records, "adverse_events")
    parts = []
    if len(ae):
        term = _objects(ae["term"])
        parts.append(_Part({
            "USUBJID": _objects(ae["patient_id"]), "AETERM": term, "AEBODSYS": _objects(ae["soc"]),
            "AETOXGR": (_floats(ae["grade"])), "AESTDTC": _iso_dates(ae["start_date"]),
        }, ae["start_date"], term))  # fmt: skip
    return _assemble("AE", parts, study_id, "AESEQ")


def _all_domains(records: Records, dictionary: DataDictionary, study_id: str | None) -> dict[str, pd.DataFrame]:
    if study_id is not None and (not isinstance(study_id, str) or not study_id.strip()):
        raise InputError("the study id must be a non-empty text", column="study_id")
    ex, suppex = _ex(records, dictionary, study_id)
    return {"LB": _lb(records, dictionary, study_id), "EX": ex, "SUPPEX": suppex,
            "RS": _rs(records, dictionary, study_id), "AE": _ae(records, study_id)}  # fmt: skip


def sdtm_domains(records: Records, dictionary: DataDictionary, study_id: str | None = None) -> dict[str, pd.DataFrame]:
    """The SDTM-like domains of ``records`` (see the module docstring): domain name (LB, EX, SUPPEX, RS, AE) ->
    frame, one row per record; domains without rows are left out. ``dictionary`` gives the test codes' labels,
    the coded answers' labels and the units."""
    return {name: frame for name, frame in _all_domains(records, dictionary, study_id).items() if len(frame)}


def write_domains(domains: Mapping[str, pd.DataFrame], out_dir: str | Path,
                  study_id: str | None = None) -> dict[str, Path]:  # fmt: skip
    """Write each domain of ``domains`` (as :func:`sdtm_domains` returns them) to ``out_dir/<domain>.csv`` in
    lower case, spreadsheet-safe (:func:`~allotrack.records.safe_csv.write_csv`); LB, EX, RS and AE are always
    written (header only when they have no rows, so that no earlier export's file is left behind)."""
    from allotrack.records.safe_csv import write_csv

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = {}
    for name in DOMAINS:
        frame = domains.get(name)
        if frame is None and name in ALWAYS_WRITTEN:
            frame = _empty(name, study_id)
        if frame is not None:
            written[name] = out / f"{name.lower()}.csv"
            write_csv(frame, written[name])
    return written


def write_sdtm(records: Records, dictionary: DataDictionary, out_dir: str | Path,
               study_id: str | None = None) -> dict[str, Path]:  # fmt: skip
    """Write the domains of :func:`sdtm_domains` to ``out_dir`` (``lb.csv``, ``ex.csv``, ``rs.csv``, ``ae.csv``,
    and ``suppex.csv`` when EX has supplemental qualifiers; see :func:`write_domains`); returns domain -> path."""
    return write_domains(sdtm_domains(records, dictionary, study_id), out_dir, study_id)
