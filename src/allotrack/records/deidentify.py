"""De-identified copies of a study's records for sharing (``reference/clinical-definitions.md`` §10.3).

* Patient identifiers are replaced by random study codes (not derived from any patient data, as HIPAA allows for
  a re-identification code whose key is not disclosed); donor, course and infusion ids likewise.
* All dates of a patient are shifted by one secret per-patient offset (HMAC-SHA256 of the patient id under the
  caller's secret, within ±``max_shift_days``): intervals between a patient's events — every endpoint — are
  unchanged, calendar dates are not disclosed.
* Birth dates are dropped; ages above 89 become "90+" (and the age of a 90+ patient is not recoverable from a
  date). Free-text fields (cause of death, regimen, text items of the data dictionary, assessments' raw inputs)
  are dropped; date items of the dictionary are shifted with the patient's other dates.

Note: shifted dates are not HIPAA Safe Harbor's "year only" rule; they suit an expert-determination or limited
data set release. The key table (returned separately) must stay with the data custodian.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd

from allotrack.errors import InputError
from allotrack.records.dates import completed_years
from allotrack.records.schema import DICTIONARY_TABLES, TABLES, Records

if TYPE_CHECKING:
    from allotrack.records.dictionary import DataDictionary

FREE_TEXT = {"deaths": ["cause"], "courses": ["regimen"], "patients": ["birth_date"], "donors": ["birth_date"],
             "assessments": ["inputs"]}  # fmt: skip
ID_COLUMNS = ("patient_id", "donor_id", "course_id", "infusion_id")


@dataclass(frozen=True)
class Deidentified:
    records: Records
    key: pd.DataFrame  # patient_id, study_code, shift_days — keep it private


def _shift(secret: bytes, patient_id: str, max_shift_days: int) -> int:
    digest = hmac.new(secret, str(patient_id).encode(), hashlib.sha256).digest()
    return int.from_bytes(digest[:8], "big") % (2 * max_shift_days + 1) - max_shift_days


def deidentify(records: Records, secret: str, max_shift_days: int = 182,
               dictionary: DataDictionary | None = None) -> Deidentified:  # fmt: skip
    """A de-identified copy of validated records and the private key table. In the dictionary-driven kinds
    (``dictionary``: allotrack's bundled one unless given) a date item's value is shifted like every other date of
    its patient, a text item's value is dropped (free text), and an assessment's raw ``inputs`` are dropped."""
    from allotrack.records.dictionary import default_dictionary

    dictionary = dictionary or default_dictionary()
    if len(secret) < 16:
        raise InputError("the date-shift secret must have at least 16 characters", column="secret")
    key_bytes = secret.encode()
    pats = records["patients"]["patient_id"].dropna().unique()
    codes = {p: f"S{secrets.token_hex(5).upper()}" for p in pats}
    shifts = {p: _shift(key_bytes, p, max_shift_days) for p in pats}
    other_codes: dict[str, dict[str, str]] = {c: {} for c in ID_COLUMNS[1:]}
    out = {}
    for name, spec in TABLES.items():
        frame = records[name].copy()
        if not len(frame):
            continue
        for col in ID_COLUMNS[1:]:
            if col in frame.columns:
                mapping = other_codes[col]
                for v in frame[col].dropna().unique():
                    mapping.setdefault(v, f"{col[0].upper()}{secrets.token_hex(4).upper()}")
                frame[col] = frame[col].map(mapping)
        offset = pd.to_timedelta(frame["patient_id"].map(shifts), unit="D")
        for c in spec.columns:
            if c.kind == "date" and c.name in frame.columns:
                frame[c.name] = pd.to_datetime(frame[c.name]) + offset
        if name in DICTIONARY_TABLES and "value_text" in frame.columns:
            frame["value_text"] = _item_text(frame, DICTIONARY_TABLES[name], offset, dictionary)
        if name == "patients":
            given = (
                frame["age_at_diagnosis"]
                if "age_at_diagnosis" in frame.columns
                else pd.Series(pd.NA, index=frame.index)
            )
            age = pd.to_numeric(given, errors="coerce").astype("Float64")
            born = pd.to_datetime(records["patients"].get("birth_date", pd.Series(pd.NaT, index=frame.index)))
            diag = pd.to_datetime(records["patients"]["diagnosis_date"])
            age = age.fillna(completed_years(born, diag))
            frame["age_at_diagnosis"] = [("90+" if a > 89 else int(a)) if pd.notna(a) else None for a in age]
        if name == "donors" and "age" in frame.columns:
            frame["age"] = [("90+" if a > 89 else a) if pd.notna(a) else None for a in frame["age"]]
        frame = frame.drop(columns=[c for c in FREE_TEXT.get(name, []) if c in frame.columns])
        frame["patient_id"] = frame["patient_id"].map(codes)
        out[name] = frame
    key = pd.DataFrame({"patient_id": list(codes), "study_code": list(codes.values()),
                        "shift_days": [shifts[p] for p in codes]})  # fmt: skip
    return Deidentified(Records(out), key)


def _item_text(frame: pd.DataFrame, code_column: str, offset: pd.Series, dictionary: DataDictionary) -> pd.Series:
    """``value_text`` with date items shifted by the patient's offset and text items dropped; codes stay."""
    text = frame["value_text"].astype(object).copy()
    kinds = frame[code_column].map(lambda c: dictionary.item(c).type if c in dictionary else "text")
    dates = (kinds == "date").to_numpy()
    if dates.any():
        shifted = pd.to_datetime(text[dates], errors="coerce", format="%Y-%m-%d") + offset[dates]
        text[dates] = shifted.dt.strftime("%Y-%m-%d").where(shifted.notna(), None)
    text[(kinds == "text").to_numpy()] = None
    return text
