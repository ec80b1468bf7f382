"""What a user may download of a study run's analysis dataset (``dataset.csv``), by their export rights
(:mod:`allotrack.web.rights`, REDCap's "Data Exports"): ``export_identified`` gets it as computed;
``export_deidentified`` only gets a de-identified copy — patient and other record ids replaced by random study
codes (not derived from any patient data, as :mod:`allotrack.records.deidentify` does), calendar dates and the free
text of death causes dropped, ages above 89 as "90+"; neither right: no dataset (the report itself stays readable
with the right ``report``). Intervals (event times) are kept: they are what the analyses use."""

from __future__ import annotations

import secrets
from pathlib import Path

import pandas as pd

from allotrack.records.deidentify import ID_COLUMNS
from allotrack.web.auth import User
from allotrack.web.rights import Forbidden

FREE_TEXT_COLUMNS = ("death_cause", "cause", "regimen", "inputs")
AGE_COLUMNS = ("age_at_diagnosis", "donor_age", "age")


def may_export(user: User) -> bool:
    return bool({"export_identified", "export_deidentified"} & user.rights)


def dataset_for(user: User, dataset: pd.DataFrame) -> pd.DataFrame:
    """The analysis dataset as ``user`` may download it (see the module); :class:`Forbidden` without an export
    right."""
    if "export_identified" in user.rights:
        return dataset
    if "export_deidentified" not in user.rights:
        raise Forbidden("your account lacks the rights 'export_identified' and 'export_deidentified' (download data)")
    out = dataset.drop(columns=[c for c in dataset.columns if c in FREE_TEXT_COLUMNS
                                or pd.api.types.is_datetime64_any_dtype(dataset[c])])  # fmt: skip
    for column in ID_COLUMNS:
        if column in out.columns:
            values = out[column].astype(object)
            distinct = pd.unique(values.dropna())
            codes = dict(zip(distinct, (f"S{secrets.token_hex(5).upper()}" for _ in distinct), strict=True))
            out[column] = values.map(codes)
    for column in AGE_COLUMNS:
        if column in out.columns:
            age = pd.to_numeric(out[column], errors="coerce")
            out[column] = out[column].astype(object).where(~(age > 89), "90+")
    return out


def replace_dataset(user: User, dataset: pd.DataFrame, path: Path) -> None:
    """Rewrite a run's ``dataset.csv`` at ``path`` as ``user`` may download it, or remove it (no export right)."""
    from allotrack.records.safe_csv import write_csv

    if not may_export(user):
        path.unlink(missing_ok=True)
    elif "export_identified" not in user.rights:
        write_csv(dataset_for(user, dataset), path)
