"""Bad input gets a clear allotrack.errors exception naming column, rows and rule."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import allotrack as at
from allotrack.errors import ConvergenceWarning, InputError, ModelError

GOOD = pd.DataFrame(
    {
        "time": [5.0, 8, 12, 3, 9, 14, 2, 7],
        "event": [1, 0, 1, 1, 0, 1, 1, 0],
        "arm": ["A", "B", "A", "B", "A", "B", "A", "B"],
        "age": [61, 70, 55, 66, 72, 59, 64, 68.0],
        "start": [0, 1, 2, 0, 0, 3, 0, 1.0],
    }
)


def frame(**changes):
    out = GOOD.copy()
    for col, (row, value) in changes.items():
        out[col] = out[col].astype(object) if isinstance(value, str) else out[col]
        out.loc[row, col] = value
    return out


@pytest.mark.parametrize(
    ("data", "column", "rows", "rule"),
    [
        (frame(time=(2, -1.0)), "time", (2,), "non-negative"),
        (frame(time=(5, np.nan)), "time", (5,), "must not be missing"),
        (frame(time=(1, "abc")), "time", (1,), "numeric"),
        (frame(time=(0, np.inf)), "time", (0,), "finite"),
        (frame(event=(3, 2)), "event", (3,), "0 (censored) or 1"),
        (frame(event=(4, np.nan)), "event", (4,), "must not be missing"),
    ],
)
def test_kaplan_meier_names_column_rows_and_rule(data, column, rows, rule):
    with pytest.raises(InputError) as info:
        at.kaplan_meier(data, "time", "event")
    err = info.value
    assert err.column == column
    assert err.rows == rows
    assert rule in str(err) and f"column '{column}'" in str(err) and f"row {rows[0]}" in str(err)


def test_many_bad_rows_are_counted():
    data = GOOD.assign(time=[-1.0, -2, -3, -4, -5, -6, -7, 1])
    with pytest.raises(InputError, match=r"row 0 \(value -1.0\), 1 .*\(and 2 more\)"):
        at.kaplan_meier(data, "time", "event")


def test_missing_column_is_named():
    with pytest.raises(InputError, match="no column 'os_time'"):
        at.kaplan_meier(GOOD, "os_time", "event")


def test_dates_are_refused_with_advice():
    data = GOOD.assign(time=pd.date_range("2020-01-01", periods=8))
    with pytest.raises(InputError, match="not dates"):
        at.kaplan_meier(data, "time", "event")


def test_missing_group_label_is_an_error():
    data = frame(arm=(6, None))
    with pytest.raises(InputError, match="column 'arm'.*row 6"):
        at.kaplan_meier(data, "time", "event", by="arm")


def test_stop_not_after_start():
    data = GOOD.assign(start=[0, 1, 12, 0, 0, 3, 0, 1.0])  # row 2: start == stop
    for call in (
        lambda: at.kaplan_meier(data, "time", "event", entry="start"),
        lambda: at.cox_ph(data, "time", "event", covariates=["age"], entry="start"),
    ):
        with pytest.raises(InputError, match="column 'start'.*row 2.*before the exit time"):
            call()


def test_one_level_group_and_all_censored():
    with pytest.raises(InputError, match="1 level"):
        at.logrank_test(GOOD.assign(arm="A"), "time", "event", by="arm")
    with pytest.raises(ModelError, match="no events"):
        at.logrank_test(GOOD.assign(event=0), "time", "event", by="arm")
    with pytest.raises(ModelError, match="no events"):
        at.cox_ph(GOOD.assign(event=0), "time", "event", covariates=["age"])


def test_all_censored_kaplan_meier_is_flat_not_an_error():
    fit = at.kaplan_meier(GOOD.assign(event=0), "time", "event")
    assert (fit.table["survival"] == 1).all()
    assert np.isnan(fit.median()["median"].iloc[0])  # never reached, as R's NA


def test_collinear_and_constant_covariates():
    data = GOOD.assign(age2=GOOD["age"] * 2 + 1, const=1.0)
    with pytest.raises(ModelError, match="'age2' is a linear combination of \\['age'\\]"):
        at.cox_ph(data, "time", "event", covariates=["age", "age2"])
    with pytest.raises(ModelError, match="'const'.*constant"):
        at.cox_ph(data, "time", "event", covariates=["age", "const"])


def test_missing_covariate_is_an_error_not_a_dropped_row():
    data = frame(age=(3, np.nan))
    with pytest.raises(InputError, match="column 'age'.*row 3.*must not be missing"):
        at.cox_ph(data, "time", "event", covariates=["age"])


def test_bad_weights_and_options():
    with pytest.raises(InputError, match="weights must be finite and greater than 0"):
        at.kaplan_meier(GOOD, "time", "event", weights=[1, 1, 0, 1, 1, 1, 1, 1])
    with pytest.raises(InputError, match="conf_type"):
        at.kaplan_meier(GOOD, "time", "event", conf_type="logit")
    with pytest.raises(InputError, match="ties"):
        at.cox_ph(GOOD, "time", "event", covariates=["age"], ties="exact")
    with pytest.raises(InputError, match="either covariates"):
        at.cox_ph(GOOD, "time", "event")


def test_monotone_likelihood_is_reported_not_silent():
    # every death has age above every survivor at risk: the coefficient runs to +infinity
    data = pd.DataFrame({"time": [1, 2, 3, 4, 5, 6.0], "event": [1, 1, 1, 0, 0, 0], "age": [9, 8, 7, 1, 2, 3.0]})
    with pytest.warns(ConvergenceWarning, match="coefficient may be infinite"):
        m = at.cox_ph(data, "time", "event", covariates=["age"])
    assert any("infinite" in w for w in m.warnings)


def test_non_convergence_is_reported():
    with pytest.warns(ConvergenceWarning, match="did not converge"):
        m = at.cox_ph(GOOD, "time", "event", covariates=["age"], max_iter=1)
    assert not m.converged


def test_errors_never_echo_other_columns():
    # messages show the offending column's values only (no identifiers from other columns)
    data = frame(time=(2, -1.0)).assign(patient_id=[f"MRN{i:06d}" for i in range(8)])
    with pytest.raises(InputError) as info:
        at.kaplan_meier(data, "time", "event")
    assert "MRN" not in str(info.value)


def test_unused_category_is_not_an_empty_group():
    data = GOOD.assign(arm=pd.Categorical(GOOD["arm"], categories=["A", "B", "C"]))
    fit = at.kaplan_meier(data, "time", "event", by="arm")
    assert fit.groups == ["A", "B"]
    res = at.logrank_test(data, "time", "event", by="arm")
    assert list(res.table["group"]) == ["A", "B"] and res.dof == 1


def test_arrays_of_different_lengths():
    with pytest.raises(InputError, match="different lengths"):
        at.kaplan_meier(None, [1.0, 2.0, 3.0], [1, 0])
