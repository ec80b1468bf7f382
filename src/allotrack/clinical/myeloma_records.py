"""IMWG myeloma response from stored observations: a patient's M-protein and free-light-chain series, read from the
``observations`` table, handed to :func:`allotrack.clinical.myeloma_response.imwg_response`.

Items read (codes of allotrack's default data dictionary) and the unit each is converted to, the unit
:class:`~allotrack.clinical.myeloma_response.MyelomaLabs` expects:

==============  ============================  =====================  ============================================
item            stored in (default unit)      converted to           MyelomaLabs field
==============  ============================  =====================  ============================================
``mprot_serum`` g/L                           g/dL (÷ 10)            ``serum_m``
``mprot_urine`` mg/(24.h)                     mg/(24.h) (mg/24 h)    ``urine_m``
``flc_kappa``   mg/L                          mg/dL (÷ 10)           ``flc_involved`` / ``flc_uninvolved``
``flc_lambda``  mg/L                          mg/dL (÷ 10)           ``flc_uninvolved`` / ``flc_involved``
``flc_ratio``   1                             1                      ``flc_ratio_normal`` (when kappa or lambda
                                                                     is missing that day)
==============  ============================  =====================  ============================================

Each row is converted from the unit stored with it (the ``unit`` column; the default unit above when it is
empty) by :func:`allotrack.records.units.convert`, so a study whose dictionary stores M-protein in g/dL gives the
same result. A value flagged below the limit of detection (``below_lod``) is 0: no measurable M-protein.

One assessment per date: the values of the four items observed that day (an item observed twice on one day is
refused; rows without a date are not used). The involved light chain is ``involved`` when given, else the chain
that is higher on the first day, from the baseline on, with both chains measured (kappa/lambda > 1: kappa; < 1:
lambda). The FLC ratio is normal within ``flc_normal_ratio``, 0.26–1.65 by default (Katzmann et al., Clin Chem
2002; the IMWG reference range), computed from kappa/lambda when both were measured that day, else from a stored
``flc_ratio``.

Immunofixation, marrow plasma cells, plasmacytomas, bone lesions and calcium are not dictionary observations:
give them per date in ``other`` (``{date: {"serum_ife_negative": True, "marrow_plasma_cells": 3.0}}``), which is
merged into that date's assessment (and adds an assessment on a date without M-protein or FLC values); without
them IMWG CR and sCR cannot be reached (CR needs negative immunofixation and < 5 % marrow plasma cells).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields, replace
from datetime import date
from typing import Any, Literal

import numpy as np
import pandas as pd

from allotrack.clinical.myeloma_response import MyelomaLabs, MyelomaResponse, imwg_response
from allotrack.errors import InputError

__all__ = ["FLC_NORMAL_RATIO", "MYELOMA_ITEMS", "imwg_from_observations", "myeloma_assessments"]

FLC_NORMAL_RATIO = (0.26, 1.65)
# item -> (unit MyelomaLabs expects, the default dictionary's unit: assumed for rows stored without a unit)
MYELOMA_ITEMS: Mapping[str, tuple[str, str]] = {
    "mprot_serum": ("g/dL", "g/L"), "mprot_urine": ("mg/(24.h)", "mg/(24.h)"), "flc_kappa": ("mg/dL", "mg/L"),
    "flc_lambda": ("mg/dL", "mg/L"), "flc_ratio": ("1", "1"),
}  # fmt: skip
_LAB_FIELDS = frozenset(f.name for f in fields(MyelomaLabs))


def _as_date(value: Any, name: str) -> date:
    try:
        stamp = pd.Timestamp(value)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a date, not {value!r}", column=name) from None
    if pd.isna(stamp):
        raise InputError(f"{name} must be a date, not {value!r}", column=name)
    return stamp.date()


def _values_by_date(observations: pd.DataFrame, patient_id: str) -> dict[date, dict[str, float]]:
    """{date: {item: value in the unit MyelomaLabs expects}} of one patient (vectorised per item)."""
    from allotrack.records.units import convert

    missing = [c for c in ("patient_id", "item", "date", "value") if c not in observations.columns]
    if missing:
        raise InputError(f"observations need the columns {', '.join(missing)}", table="observations")
    chosen = observations[(observations["patient_id"] == patient_id).to_numpy(dtype=bool)
                          & observations["item"].isin(list(MYELOMA_ITEMS)).to_numpy(dtype=bool)]  # fmt: skip
    dates = pd.to_datetime(chosen["date"])
    chosen = chosen[dates.notna().to_numpy()]
    dates = dates[dates.notna()]
    out: dict[date, dict[str, float]] = {}
    for item, (target, default_unit) in MYELOMA_ITEMS.items():
        mask = (chosen["item"] == item).to_numpy(dtype=bool)
        if not mask.any():
            continue
        rows = chosen[mask]
        values = rows["value"].to_numpy(dtype="float64", na_value=np.nan)
        if "below_lod" in rows.columns and item != "flc_ratio":
            values = np.where(rows["below_lod"].fillna(False).to_numpy(dtype=bool), 0.0, values)
        units = (rows["unit"].astype(object).where(rows["unit"].notna(), default_unit).to_numpy(dtype=object)
                 if "unit" in rows.columns else default_unit)  # fmt: skip
        converted = convert(values, units, target)
        days = [d.date() for d in dates[mask]]
        if len(set(days)) != len(days):
            twice = sorted({d for d in days if days.count(d) > 1})
            raise InputError(f"'{item}' is observed more than once on {', '.join(map(str, twice))}: one value per "
                             "day is needed for an IMWG assessment", table="observations", column="item")  # fmt: skip
        for day, value in zip(days, converted, strict=True):
            if not np.isnan(value):
                out.setdefault(day, {})[item] = float(value)
    return out


def _labs(values: Mapping[str, float], involved: str | None, normal: tuple[float, float]) -> MyelomaLabs:
    kappa, lam = values.get("flc_kappa"), values.get("flc_lambda")
    ratio = kappa / lam if kappa is not None and lam else values.get("flc_ratio")
    both = kappa is not None and lam is not None
    return MyelomaLabs(
        serum_m=values.get("mprot_serum"), urine_m=values.get("mprot_urine"),
        flc_involved=(kappa if involved == "kappa" else lam) if both and involved else None,
        flc_uninvolved=(lam if involved == "kappa" else kappa) if both and involved else None,
        flc_ratio_normal=None if ratio is None else bool(normal[0] <= ratio <= normal[1]),
    )  # fmt: skip


def _other(other: Mapping[Any, Mapping[str, Any]] | None) -> dict[date, dict[str, Any]]:
    extra = {_as_date(d, "other"): dict(v) for d, v in (other or {}).items()}
    for fields_given in extra.values():
        unknown = sorted(set(fields_given) - _LAB_FIELDS)
        if unknown:
            raise InputError(f"other: unknown MyelomaLabs field(s) {', '.join(unknown)}; known: "
                             f"{', '.join(sorted(_LAB_FIELDS))}", column="other")  # fmt: skip
    return extra


def _involved(by_date: Mapping[date, Mapping[str, float]], start: date | None) -> str | None:
    """The chain that is higher on the first day (from ``start`` on) with both chains measured."""
    for day in sorted(by_date):
        kappa, lam = by_date[day].get("flc_kappa"), by_date[day].get("flc_lambda")
        if (start is None or day >= start) and kappa is not None and lam and kappa != lam:
            return "kappa" if kappa > lam else "lambda"
    return None


def _series(by_date: Mapping[date, Mapping[str, float]], extra: Mapping[date, Mapping[str, Any]],
            involved: str | None, normal: tuple[float, float]) -> list[tuple[date, MyelomaLabs]]:  # fmt: skip
    return [(day, replace(_labs(by_date.get(day, {}), involved, normal), **extra.get(day, {})))
            for day in sorted(set(by_date) | set(extra))]  # fmt: skip


def _check_options(involved: str | None, flc_normal_ratio: tuple[float, float]) -> None:
    if involved not in (None, "kappa", "lambda"):
        raise InputError(f"involved must be 'kappa' or 'lambda', not {involved!r}", column="involved")
    low, high = flc_normal_ratio
    if not 0 < low < high:
        raise InputError(f"flc_normal_ratio must be (low, high) with 0 < low < high, not {flc_normal_ratio!r}",
                         column="flc_normal_ratio")  # fmt: skip


def myeloma_assessments(observations: pd.DataFrame, patient_id: str, *,
                        involved: Literal["kappa", "lambda"] | None = None,
                        other: Mapping[Any, Mapping[str, Any]] | None = None,
                        flc_normal_ratio: tuple[float, float] = FLC_NORMAL_RATIO) -> list[tuple[date, MyelomaLabs]]:
    """The patient's dated assessments, in date order, in the units :class:`MyelomaLabs` expects (see the module
    docstring; the involved chain, unless given, from the first day with both chains)."""
    _check_options(involved, flc_normal_ratio)
    by_date = _values_by_date(observations, patient_id)
    return _series(by_date, _other(other), involved or _involved(by_date, None), flc_normal_ratio)


def imwg_from_observations(observations: pd.DataFrame, patient_id: str, *, baseline_date: Any = None,
                           until: Any = None, involved: Literal["kappa", "lambda"] | None = None,
                           other: Mapping[Any, Mapping[str, Any]] | None = None,
                           flc_normal_ratio: tuple[float, float] = FLC_NORMAL_RATIO) -> MyelomaResponse:  # fmt: skip
    """IMWG best confirmed response and confirmed progression of one patient from the ``observations`` table
    (typed as the store loads it, or any frame with ``patient_id``, ``item``, ``date``, ``value`` and optionally
    ``unit`` and ``below_lod``), by :func:`~allotrack.clinical.myeloma_response.imwg_response`.

    The baseline is the latest assessment on or before ``baseline_date`` (e.g. the start of therapy; default:
    the first assessment); the assessments after it and before ``until`` (the start of a new therapy, excluded)
    are the follow-up. ``involved``, ``other`` and ``flc_normal_ratio``: see the module docstring.
    """
    _check_options(involved, flc_normal_ratio)
    start = None if baseline_date is None else _as_date(baseline_date, "baseline_date")
    end = None if until is None else _as_date(until, "until")
    by_date = _values_by_date(observations, patient_id)
    extra = _other(other)
    days = sorted(set(by_date) | set(extra))
    if not days:
        raise InputError("no dated M-protein or free light chain observations for this patient: IMWG response not "
                         "assessable", table="observations")  # fmt: skip
    before = [day for day in days if start is None or day <= start]
    if not before:
        raise InputError(f"no M-protein or free light chain assessment on or before the baseline date {start}",
                         column="baseline_date")  # fmt: skip
    base = before[0] if start is None else before[-1]
    series = _series(by_date, extra, involved or _involved(by_date, base), flc_normal_ratio)
    baseline = next(labs for day, labs in series if day == base)
    follow_up = [(day, labs) for day, labs in series if day > base and (end is None or day < end)]
    return imwg_response(baseline, follow_up)
