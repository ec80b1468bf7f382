"""allotrack.records.units: UCUM unit conversion of clinical measurements, every expected number worked by hand
in the comment beside it."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from allotrack.errors import InputError
from allotrack.records import units
from allotrack.records.units import conversion_factor, convert, describe_unit, normalise_unit

BILIRUBIN = 584.66  # g/mol
CREATININE = 113.12  # g/mol
CALCIUM = 40.078  # g/mol


# ---------------------------------------------------------------------------------------------- normalise_unit


@pytest.mark.parametrize(
    ("typed", "code"),
    [
        ("mg/dL", "mg/dL"),
        ("mg/dl", "mg/dL"),
        ("g/dl", "g/dL"),
        ("µmol/L", "umol/L"),  # micro sign U+00B5
        ("μmol/L", "umol/L"),  # Greek mu U+03BC
        ("umol/l", "umol/L"),
        ("x10^9/L", "10*9/L"),
        ("×10^9/L", "10*9/L"),
        ("10^9/L", "10*9/L"),
        ("10^9/l", "10*9/L"),
        ("10E9/L", "10*9/L"),
        ("10⁹/L", "10*9/L"),
        ("10^9 cells/L", "10*9/L"),
        ("G/L", "10*9/L"),
        ("T/L", "10*12/L"),
        ("/µL", "/uL"),
        ("cells/µL", "/uL"),
        ("cells/uL", "/uL"),
        ("/mm3", "/uL"),
        ("/mm³", "/uL"),
        ("10^3/µL", "10*3/uL"),
        ("K/µL", "10*3/uL"),
        ("pg/ml", "pg/mL"),
        ("ng/l", "ng/L"),
        ("U/l", "U/L"),
        ("IU/L", "[iU]/L"),
        ("IU", "[iU]"),
        ("[IU]/L", "[iU]/L"),
        ("mIU/mL", "m[iU]/mL"),
        ("mcg/L", "ug/L"),
        ("mg/24h", "mg/(24.h)"),
        ("mg/24 h", "mg/(24.h)"),
        ("g/24hr", "g/(24.h)"),
        ("mg/day", "mg/d"),
        ("mL/hr", "mL/h"),
        ("10^6/kg", "10*6/kg"),
        ("x10^6/kg", "10*6/kg"),
        ("%", "%"),
        ("percent", "%"),
        ("mmHg", "mm[Hg]"),
        ("{MFI}", "{MFI}"),
        ("mL/min/{1.73_m2}", "mL/min/{1.73_m2}"),  # the annotation is left as it is
        ("10*9/L", "10*9/L"),  # UCUM codes are already normal
        ("mg/(24.h)", "mg/(24.h)"),
    ],
)
def test_normalise_unit(typed, code):
    assert normalise_unit(typed) == code


@pytest.mark.parametrize("text", ["foo", "mg/dx", "  weird unit  ", "MFI", "mEq/L", ""])
def test_normalise_unit_returns_unknown_text_unchanged(text):
    assert normalise_unit(text) == text


# ---------------------------------------------------------------------------------------------- conversion_factor


def test_bilirubin_mass_to_substance_concentration():
    # 1 mg/dL = 10 mg/L = 0.01 g/L; / 584.66 g/mol = 1.7104e-5 mol/L = 17.104 umol/L (10000 / 584.66)
    f = conversion_factor("mg/dL", "umol/L", molar_mass=BILIRUBIN)
    assert f == pytest.approx(10_000 / 584.66, rel=1e-15)
    assert f == pytest.approx(17.104, abs=5e-4)
    # 17.1 umol/L = 17.1e-6 mol/L * 584.66 g/mol = 9.997686e-3 g/L = 9.997686 mg/L = 0.9997686 mg/dL
    assert convert(17.1, "µmol/L", "mg/dL", molar_mass=BILIRUBIN) == pytest.approx(0.9997686, rel=1e-12)


def test_bilirubin_without_molar_mass_is_refused():
    with pytest.raises(InputError, match=r"cannot convert mg/dL to umol/L without the substance's molar mass"):
        conversion_factor("mg/dL", "umol/L")
    with pytest.raises(InputError, match=r"cannot convert umol/L to mg/dL without the substance's molar mass"):
        convert([17.1], "µmol/L", "mg/dL")


@pytest.mark.parametrize("bad", [0, -584.66, float("nan"), float("inf"), "heavy"])
def test_molar_mass_must_be_positive(bad):
    with pytest.raises(InputError, match="molar mass must be a positive number of g/mol"):
        conversion_factor("mg/dL", "umol/L", molar_mass=bad)


def test_m_protein_g_per_dl_and_g_per_l():
    # 1 dL = 0.1 L, so 3.2 g/dL = 3.2 g / 0.1 L = 32 g/L, and 15 g/L = 1.5 g / 0.1 L = 1.5 g/dL
    assert convert(3.2, "g/dL", "g/L") == pytest.approx(32.0, rel=1e-15)
    assert convert(15.0, "g/L", "g/dL") == pytest.approx(1.5, rel=1e-15)
    assert conversion_factor("g/dL", "g/L") == 10.0  # exact
    assert conversion_factor("g/L", "g/dL") == 0.1


def test_counts():
    # 1 L = 10^6 uL: 1.5 x 10^9 /L = 1.5e9 / 1e6 = 1500 /uL
    assert convert(1.5, "10*9/L", "/uL") == pytest.approx(1500.0, rel=1e-15)
    assert conversion_factor("10*9/L", "/uL") == 1000.0  # exact, no 999.9999999999999
    # 10^3 /uL = 10^3 * 10^6 /L = 10^9 /L
    assert conversion_factor("10*3/uL", "10*9/L") == 1.0
    # every typed spelling of the same count gives the same number
    for typed in ["x10^9/L", "G/L", "10^9/l", "10^9 cells/L"]:
        assert convert(1.5, typed, "/uL") == pytest.approx(1500.0, rel=1e-15)
    for typed in ["cells/µL", "/mm3", "/µL", "{cells}/uL"]:
        assert conversion_factor(typed, "/uL") == 1.0  # 1 mm³ = 1 uL; {cells} is unity in UCUM


def test_creatinine():
    # 1 mg/dL = 10 mg/L; / 113.12 g/mol = 0.088402 mmol/L = 88.402 umol/L (10 / 113.12 * 1000 = 88.40)
    assert convert(1.0, "mg/dL", "umol/L", molar_mass=CREATININE) == pytest.approx(10 / 113.12 * 1000, rel=1e-15)
    assert convert(1.0, "mg/dL", "umol/L", molar_mass=CREATININE) == pytest.approx(88.40, abs=5e-3)


def test_calcium():
    # 10 mg/dL = 100 mg/L; / 40.078 g/mol = 2.4951 mmol/L (100 / 40.078 = 2.49513)
    assert convert(10.0, "mg/dL", "mmol/L", molar_mass=CALCIUM) == pytest.approx(100 / 40.078, rel=1e-15)
    assert convert(10.0, "mg/dL", "mmol/L", molar_mass=CALCIUM) == pytest.approx(2.495, abs=5e-4)


def test_cytokines_pg_per_ml_equal_ng_per_l():
    # 1 pg/mL = 1e-12 g / 1e-3 L = 1e-9 g/L = 1 ng/L
    assert conversion_factor("pg/mL", "ng/L") == 1.0
    assert conversion_factor("ng/L", "pg/mL") == 1.0
    assert convert([3.5, 120.0], "pg/mL", "ng/L").tolist() == [3.5, 120.0]


def test_enzyme_activity_iu_equals_u_by_the_clinical_convention():
    # U = 1 umol/min (UCUM); IU of enzyme activity = U (the documented clinical-laboratory convention)
    assert conversion_factor("U/L", "[iU]/L") == 1.0
    assert conversion_factor("IU/L", "U/L") == 1.0
    # 1 U = 1 umol / 60 s = 1/60 umol/s = 1/60 ukat, so 1 U/L = 0.016667 ukat/L
    assert conversion_factor("U/L", "ukat/L") == pytest.approx(1 / 60, rel=1e-15)
    assert conversion_factor("[iU]/L", "ukat/L") == pytest.approx(1 / 60, rel=1e-15)
    # [iU] to [iU]: 1 m[iU]/mL = 1e-3 [iU] / 1e-3 L = 1 [iU]/L
    assert conversion_factor("mIU/mL", "[iU]/L") == 1.0


def test_international_units_are_arbitrary_otherwise():
    with pytest.raises(
        InputError,
        match=r"\[iU\]/L is a concentration in international units \(arbitrary\) and "
        r"10\*9/L a number concentration: not convertible",
    ):
        conversion_factor("[iU]/L", "10*9/L")
    with pytest.raises(InputError, match="not convertible"):  # no molar mass turns hormone IU into mass
        conversion_factor("[iU]/L", "ug/L", molar_mass=500.0)


def test_arbitrary_units_convert_only_to_themselves():
    assert conversion_factor("{MFI}", "{MFI}") == 1.0
    assert convert([812.0, 1044.0], "{MFI}", "{MFI}").tolist() == [812.0, 1044.0]
    with pytest.raises(InputError, match=r"cannot convert \{MFI\} to \{ratio\}: different arbitrary units"):
        conversion_factor("{MFI}", "{ratio}")
    for other in ["%", "1", "/uL", "10*9/L"]:
        with pytest.raises(InputError, match=r"\{MFI\} is an arbitrary unit, which converts only to itself"):
            conversion_factor("{MFI}", other)
        with pytest.raises(InputError, match=r"\{MFI\} is an arbitrary unit, which converts only to itself"):
            conversion_factor(other, "{MFI}")


def test_percent():
    assert conversion_factor("%", "%") == 1.0
    assert conversion_factor("%", "1") == 0.01  # 1 % = 1/100 (UCUM)
    with pytest.raises(InputError, match=r"% is a dimensionless quantity .* and g/L a mass concentration"):
        conversion_factor("%", "g/L")


def test_cell_doses_per_kg():
    # 2 x 10^8 /kg = 2e8 / 1e6 = 200 x 10^6 /kg
    assert convert(2.0, "10*8/kg", "10*6/kg") == pytest.approx(200.0, rel=1e-15)
    assert convert(2.0, "x10^8/kg", "10^6/kg") == pytest.approx(200.0, rel=1e-15)


def test_urine_m_protein_per_24_hours():
    # 1500 mg/(24.h) = 1.5 g/(24.h): 1 mg = 1e-3 g, the same 24 h
    assert convert(1500.0, "mg/(24.h)", "g/(24.h)") == pytest.approx(1.5, rel=1e-15)
    assert convert(1.5, "g/24h", "mg/(24.h)") == pytest.approx(1500.0, rel=1e-15)
    # 24 h = 1 d, so mg/(24.h) = mg/d
    assert conversion_factor("mg/(24.h)", "mg/d") == 1.0
    # 1 mg/h = 24 mg/(24.h)
    assert conversion_factor("mg/h", "mg/(24.h)") == 24.0


def test_blood_pressure_uses_the_ucum_mercury_column():
    # UCUM: m[Hg] = 133.3220 kPa, a column height: 1 cm = 10 mm, so 1 cm[Hg] = 10 mm[Hg]
    assert conversion_factor("cm[Hg]", "mmHg") == 10.0


@pytest.mark.parametrize(
    ("a", "b", "rule"),
    [
        ("g/L", "10*9/L", "g/L is a mass concentration and 10*9/L a number concentration: not convertible"),
        ("10*9/L", "mg/dL", "10*9/L is a number concentration and mg/dL a mass concentration: not convertible"),
        (
            "U/L",
            "g/L",
            "U/L is a catalytic concentration (enzyme activity) and g/L a mass concentration: not convertible",
        ),
        ("mmol/L", "10*6/kg", "mmol/L is a substance concentration and 10*6/kg a number per mass: not convertible"),
        ("mg/(24.h)", "mg/L", "mg/(24.h) is a mass rate and mg/L a mass concentration: not convertible"),
    ],
)
def test_incompatible_kinds_raise_with_the_rule(a, b, rule):
    with pytest.raises(InputError) as info:
        conversion_factor(a, b, molar_mass=100.0)  # a molar mass does not bridge kinds other than mass/substance
    assert info.value.rule == rule


@pytest.mark.parametrize(
    ("a", "b", "unknown"), [("foo", "g/L", "foo"), ("g/L", "foo", "foo"), ("mg/dx", "mg/dL", "mg/dx")]
)
def test_unknown_unit_is_named(a, b, unknown):
    with pytest.raises(InputError, match=f"unknown unit '{unknown}'"):
        conversion_factor(a, b)


@pytest.mark.parametrize("code", ["mg//L", "(mg/L", "10*/", "mg{x", "m+", "g.0"])
def test_malformed_codes_are_unknown_units(code):
    with pytest.raises(InputError, match="unknown unit"):
        conversion_factor(code, "mg/L")


def test_describe_unit():
    assert describe_unit("mg/dL") == "mass concentration"
    assert describe_unit("µmol/L") == "substance concentration"
    assert describe_unit("x10^9/L") == "number concentration"
    assert describe_unit("{MFI}") == "arbitrary unit"


def test_factors_are_cached():
    units._factor.cache_clear()
    conversion_factor("mg/dL", "umol/L", molar_mass=BILIRUBIN)
    conversion_factor("mg/dl", "µmol/L", molar_mass=BILIRUBIN)  # the same codes once normalised
    info = units._factor.cache_info()
    assert (info.misses, info.hits) == (1, 1)
    assert units._registry() is units._registry()  # one pint registry per process


def test_importing_the_module_does_not_import_pint():
    code = "import sys, allotrack.records.units; print('pint' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


# ---------------------------------------------------------------------------------------------- convert


def test_convert_column_with_mixed_units():
    # rows: 1 mg/dL -> 17.104 umol/L (10000/584.66); 17.1 umol/L stays; 2 mg/dL -> 34.208; 0.5 mg/dL -> 8.552
    values = [1.0, 17.1, 2.0, 0.5, 20.0]
    rows_units = ["mg/dL", "umol/L", "mg/dL", "mg/dl", "µmol/L"]
    out = convert(values, rows_units, "umol/L", molar_mass=BILIRUBIN)
    per_mg_dl = 10_000 / 584.66
    assert out.dtype == np.float64
    np.testing.assert_allclose(out, [per_mg_dl, 17.1, 2 * per_mg_dl, 0.5 * per_mg_dl, 20.0], rtol=1e-15)


def test_convert_accepts_pandas_columns():
    s = pd.Series([1.5, None, 3000.0], dtype="Float64")
    u = pd.Series(["G/L", "G/L", "/uL"], dtype="category")
    # 1.5 G/L = 1500 /uL; missing stays NaN; 3000 /uL stays
    out = convert(s, u, "/uL")
    np.testing.assert_array_equal(out, [1500.0, np.nan, 3000.0])
    out = convert(s, u.astype("string"), "/uL")
    np.testing.assert_array_equal(out, [1500.0, np.nan, 3000.0])


def test_convert_keeps_shape_with_one_unit():
    out = convert(np.array([[1.0, 2.0], [3.0, 4.0]]), "g/dL", "g/L")
    np.testing.assert_array_equal(out, [[10.0, 20.0], [30.0, 40.0]])


def test_convert_lists_offending_units_with_row_counts():
    values = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    rows_units = ["g/L", "foo", "10*9/L", "foo", "g/L", "foo"]
    with pytest.raises(InputError) as info:
        convert(values, rows_units, "g/dL")
    err = info.value
    assert "'foo' in 3 rows (unknown unit 'foo'" in err.rule
    assert (
        "'10*9/L' in 1 row (10*9/L is a number concentration and g/dL a mass concentration: not convertible)"
        in err.rule
    )
    assert "g/L'" not in err.rule  # g/L converts
    assert err.rows == (1, 2, 3, 5)
    assert err.values == ("foo", "10*9/L", "foo", "foo")
    assert err.n_bad == 4


def test_convert_rows_without_unit():
    # a row with neither value nor unit is NaN; a value without a unit is refused
    out = convert([1.0, np.nan], ["g/dL", None], "g/L")
    np.testing.assert_array_equal(out, [10.0, np.nan])
    with pytest.raises(InputError, match=r"no unit in 1 row with a value") as info:
        convert([1.0, 2.0], ["g/dL", None], "g/L")
    assert info.value.rows == (1,)


def test_convert_checks_lengths_and_target():
    with pytest.raises(InputError, match="values and units differ in length"):
        convert([1.0, 2.0], ["g/L"], "g/dL")
    with pytest.raises(InputError, match="unknown unit 'bar'"):
        convert([1.0], ["g/L"], "bar")


def test_convert_computes_one_factor_per_distinct_unit(monkeypatch):
    calls: list[tuple[str, str]] = []
    real = units.conversion_factor

    def spy(from_unit, to_unit, molar_mass=None):
        calls.append((from_unit, to_unit))
        return real(from_unit, to_unit, molar_mass)

    monkeypatch.setattr(units, "conversion_factor", spy)
    n = 1_000_000
    pattern = np.array(["mg/dL", "umol/L", "µmol/L"], dtype=object)
    rows_units = pattern[np.arange(n) % 3]
    values = np.ones(n)
    out = convert(values, rows_units, "umol/L", molar_mass=BILIRUBIN)
    assert sorted(calls) == [("mg/dL", "umol/L"), ("umol/L", "umol/L"), ("µmol/L", "umol/L")]
    # 1 mg/dL = 10000/584.66 umol/L; 1 umol/L (either spelling) = 1 umol/L
    np.testing.assert_allclose(out[:3], [10_000 / 584.66, 1.0, 1.0], rtol=1e-15)
    assert out.shape == (n,)


# ---------------------------------------------------------------------------------------------- round trip

COMPATIBLE = [
    ["mg/dL", "g/L", "g/dL", "mg/L", "ug/L", "ng/L", "pg/mL", "ng/mL", "ug/dL"],
    ["umol/L", "mmol/L", "nmol/L", "mol/L", "pmol/L"],
    ["10*9/L", "/uL", "10*3/uL", "10*6/L", "/L", "10*12/L", "{cells}/uL", "/mm3", "x10^9/L", "G/L"],
    ["10*6/kg", "10*8/kg", "/kg", "10*3/g"],
    ["mg/(24.h)", "g/(24.h)", "mg/d", "g/d", "ug/min", "mg/h"],
    ["U/L", "[iU]/L", "ukat/L", "mU/mL", "m[iU]/mL"],
    ["%", "1", "10*-2", "mg/g"],
]
MASS = COMPATIBLE[0]
SUBSTANCE = COMPATIBLE[1]


@st.composite
def compatible_pairs(draw):
    if draw(st.booleans()):
        group = draw(st.sampled_from(COMPATIBLE))
        return draw(st.sampled_from(group)), draw(st.sampled_from(group)), None
    a, b = draw(st.sampled_from(MASS)), draw(st.sampled_from(SUBSTANCE))
    if draw(st.booleans()):
        a, b = b, a
    return a, b, draw(st.floats(min_value=1.0, max_value=1e6, allow_nan=False))


@settings(max_examples=300, deadline=None)
@given(pair=compatible_pairs(), values=st.lists(st.floats(min_value=1e-6, max_value=1e9), min_size=1, max_size=8))
def test_round_trip_returns_the_original(pair, values):
    a, b, molar_mass = pair
    there = convert(values, a, b, molar_mass=molar_mass)
    back = convert(there, b, a, molar_mass=molar_mass)
    np.testing.assert_allclose(back, values, rtol=1e-12)
