"""A study's data dictionary (REDCap's data dictionary + CDISC SDTM record kinds): the model, its TOML form, REDCap's
data-dictionary CSV in and out (exact round trips), and allotrack's bundled default dictionary."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import replace
from datetime import date

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from allotrack.errors import InputError
from allotrack.records.dictionary import (
    KINDS,
    REDCAP_COLUMNS,
    TYPES,
    Choice,
    DataDictionary,
    Item,
    default_dictionary,
)

THREE = """\
name = "pilot"
version = "2"

[items.anc]
label = "Absolute neutrophil count"
type = "number"
kind = "observation"
unit = "10*9/L"
low = 0
plausible_high = 100
molar_mass = 1.5

[items.sex_pair]
type = "choice"
choices = [["FM", "female donor to male recipient"], ["MF", "male donor to female recipient"]]
required = true
condition = "[cd20_tested] = '1'"

[items.visit]
label = "Visit date"
type = "date"
kind = "design"
low = 2020-01-01
high = 2030-12-31
form = "visits"
note = "ISO date"

[items.visit.redcap]
"Text Validation Type OR Show Slider Number" = "date_dmy"
"Section Header" = "Visits"
"""


def test_toml_three_items_by_hand():
    d = DataDictionary.from_toml(THREE)
    assert (d.name, d.version, d.codes) == ("pilot", "2", ("anc", "sex_pair", "visit"))
    assert d.item("anc") == Item("anc", "Absolute neutrophil count", "number", "observation", unit="10*9/L", low=0,
                                 plausible_high=100, molar_mass=1.5)  # fmt: skip
    sex = d.item("sex_pair")
    assert (sex.label, sex.type, sex.kind, sex.required, sex.condition) == ("", "choice", "attribute", True,
                                                                           "[cd20_tested] = '1'")  # fmt: skip
    assert sex.choices == (Choice("FM", "female donor to male recipient"), Choice("MF", "male donor to female recipient"))
    assert sex.choice_label("MF") == "male donor to female recipient" and sex.choice_codes == ("FM", "MF")
    visit = d.item("visit")
    assert (visit.low, visit.high, visit.form, visit.note) == (date(2020, 1, 1), date(2030, 12, 31), "visits", "ISO date")
    # normalised to REDCap's column order
    assert visit.redcap == (("Section Header", "Visits"), ("Text Validation Type OR Show Slider Number", "date_dmy"))
    assert visit.unit is None and visit.plausible_low is None and visit.choices == ()
    assert "anc" in d and "ANC" not in d and [i.code for i in d] == list(d.codes) and len(d) == 3
    assert d.of_kind("observation") == (d.item("anc"),) and d.of_kind("intervention") == ()
    assert DataDictionary.from_toml(d.to_toml()) == d


def _problem(text: str) -> str:
    with pytest.raises(InputError) as info:
        DataDictionary.from_toml(text, source="study.toml")
    return str(info.value)


@pytest.mark.parametrize("body, expected", [
    ('[items.anc]\nlabel = "ANC"\ntype = "num"\n', r"^study\.toml: 1 problem\(s\) in the data dictionary:\n  line 3, item 'anc', key 'type': unknown type 'num'"),
    ('[items.anc]\ntype = "number"\nkind = "lab"\n', r"line 3, item 'anc', key 'kind': unknown kind 'lab'"),
    ('\n[items.sex]\ntype = "choice"\n', r"line 2, item 'sex', key 'choices': a choice item needs choices"),
    ('[items.anc]\ntype = "number"\nlow = 5\nhigh = 1\n', r"line 3, item 'anc', key 'low': low 5 > high 1"),
    ('[items.anc]\ntype = "number"\nlow = 0\nplausible_low = -1\n',
     r"line 4, item 'anc', key 'plausible_low': .* inside the allowed range"),
    ('[items.2abc]\ntype = "text"\n', r"line 1, item '2abc', key 'code': '2abc' is not a valid code"),
    ('[items.ANC]\ntype = "number"\n', r"line 1, item 'ANC', key 'code': 'ANC' is not a valid code: lowercase"),
    ('[items.anc]\ntype = "number"\nlable = "x"\n', r"line 3, item 'anc', key 'lable': unknown key 'lable' \(did you "
                                                    r"mean 'label'\?\)"),
    ('[items.anc]\ntype = "text"\nunit = "g/L"\n', r"line 3, item 'anc', key 'unit': a text item has no unit"),
    ('[items.anc]\ntype = "number"\nchoices = [["1"]]\n', r"line 3, item 'anc', key 'choices': must be a list of"),
    ('[items.anc]\ntype = "number"\n[items.anc.redcap]\n"Field Type" = "radio"\n',
     r"line 3, item 'anc', key 'redcap': 'Field Type' 'radio' does not fit a number item"),
    ('colour = "red"\n', r"line 1: unknown key 'colour'"),
    ('[items.anc]\ntype = "number"\n\n[items.anc]\ntype = "text"\n', r"not valid TOML: .*\('items', 'anc'\).*line 4"),
    ('[items.anc\n', r"not valid TOML: .*line 1"),
])  # fmt: skip
def test_toml_errors_name_line_item_and_key(body, expected):
    assert re.search(expected, _problem(body)), _problem(body)


def test_toml_reports_every_problem_at_once():
    message = _problem('[items.a]\ntype = "x"\nkind = "y"\n\n[items.B]\ntype = "text"\n')
    assert "3 problem(s)" in message
    assert "line 2, item 'a', key 'type'" in message and "line 3, item 'a', key 'kind'" in message
    assert "line 5, item 'B', key 'code'" in message


def test_item_and_dictionary_rules():
    with pytest.raises(InputError, match=r"item 'x_1': type: .*; kind: "):
        Item("x_1", type="float", kind="lab")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="choice 'a' label 'b|c'"):
        Item("x", type="choice", choices=(Choice("a", "b|c"),))
    with pytest.raises(InputError, match="'a' appears twice"):
        Item("x", type="choice", choices=(("a", "one"), ("a", "two")))  # type: ignore[arg-type]
    with pytest.raises(InputError, match="must be a date"):
        Item("x", type="date", low=5)
    with pytest.raises(InputError, match="a choice item has no range"):
        Item("x", type="choice", choices=(Choice("1", "a"),), high=3)
    with pytest.raises(InputError, match="codes appear more than once: anc"):
        DataDictionary((Item("anc"), Item("plt"), Item("anc")))
    d = DataDictionary((Item("anc", "ANC", "number"), Item("plt")), "d")
    with pytest.raises(KeyError, match=r"no item 'anx' in data dictionary 'd'; close matches: anc"):
        d.item("anx")
    with pytest.raises(InputError, match="unknown kind"):
        d.of_kind("finding")
    newer = d.with_items(Item("anc", "ANC", "integer"), Item("wbc"))
    assert newer.codes == ("anc", "plt", "wbc") and newer.item("anc").type == "integer" and d.item("anc").type == "number"
    assert Item("ok", type="yesno").choice_label("1") == "Yes"
    assert Item("ok", type="yesno", redcap=(("Field Type", "truefalse"),)).choice_label("0") == "False"
    with pytest.raises(KeyError, match="its codes are 1, 0"):
        Item("ok", type="yesno").choice_label("2")


# --- REDCap ---------------------------------------------------------------------------------------------------

HEADER = ",".join(f'"{c}"' if "," in c else c for c in REDCAP_COLUMNS)
REDCAP = HEADER + '''
record_id,baseline,,text,Record ID,,,,,,,,,,,,,
initials,baseline,Demographics,text,Patient initials,,,,,,y,,,,,,,@HIDDEN-SURVEY @ALLOTRACK-KIND=attribute
email,baseline,,text,Contact e-mail,,,email,,,y,,,,,,,@ALLOTRACK-KIND=attribute
comments,baseline,,notes,Comments,,"Free text,
no identifiers",,,,,,,,,,,@ALLOTRACK-KIND=attribute
dob,baseline,,text,Date of birth,,DD-MM-YYYY,date_dmy,1920-01-01,today,y,,y,,,,,@ALLOTRACK-KIND=attribute
sex,baseline,,dropdown,Sex,"F, Female | M, Male",,,,,,,y,,,,,@ALLOTRACK-KIND=attribute
cd20_tested,baseline,,yesno,CD20 tested?,,,,,,,,,,,,,@ALLOTRACK-KIND=attribute
cd20_status,baseline,,radio,CD20 status,"1, positive | 0, negative",,,,,,[cd20_tested] = '1',,RH,,,,@ALLOTRACK-KIND=attribute
prior_allo,baseline,,text,Prior allogeneic transplants,,,integer,0,10,,,y,,,,,"@ALLOTRACK-KIND=attribute @ALLOTRACK-PLAUSIBLE="",3"""
lab_date,labs,Laboratory values,text,Date of sampling,,,date_ymd,2000-01-01,2035-12-31,,,y,,,,,@TODAY @ALLOTRACK-KIND=observation
anc,labs,,text,Absolute neutrophil count,,x10^9/L,number,0,1000,,,y,,,,,"@ALLOTRACK-KIND=observation @ALLOTRACK-UNIT=""10*9/L"" @ALLOTRACK-PLAUSIBLE="",100"""
hb,labs,,text,Haemoglobin,,g/dL,number_1dp,0.0,30.00,,,,,,,,"@READONLY @DEFAULT='12.0' @ALLOTRACK-KIND=observation @ALLOTRACK-UNIT=""g/dL"" @ALLOTRACK-PLAUSIBLE=""2,22"""
bili,labs,,text,Total bilirubin,,,number,-0,100,,[anc] <> '',,,,,,"@ALLOTRACK-KIND=observation @ALLOTRACK-UNIT=""mg/dL"" @ALLOTRACK-MOLAR-MASS=584.66"
transfused,labs,,truefalse,Transfused in the last 7 days,,,,,,,,,,,,,@ALLOTRACK-KIND=intervention
agvhd_grade,gvhd,Acute GVHD,dropdown,Acute GVHD grade (MAGIC),"0, grade 0 | 1, grade I | 2, grade II | 3, grade III | 4, grade IV",,,,,,,,,,,,@ALLOTRACK-KIND=assessment
skin_stage,gvhd,,radio,Skin stage,"0, stage 0 | 1, stage 1 | 2, stage 2 | 3, stage 3 | 4, stage 4",,,,,,[agvhd_grade] <> '0',,LV,2a,stages,y,@ALLOTRACK-KIND=assessment
gut_stage,gvhd,,radio,Lower GI stage,"0, stage 0|1, stage 1|2, stage 2|3, stage 3|4, stage 4",,,,,,[agvhd_grade] <> '0',,LV,2b,stages,y,@ALLOTRACK-KIND=assessment
response,gvhd,,dropdown,GVHD response,"CR, complete response | PR, partial response | NR, no response | PROG, progression",,autocomplete,,,,,,,,,,@ALLOTRACK-KIND=assessment
arm,design,,radio,Randomised arm,"-1, not randomised | 1, A | 2, B",,,,,,,,,,,,@ALLOTRACK-KIND=design
'''


def _rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))


def test_redcap_csv_round_trip_is_exact():
    d = DataDictionary.from_redcap_csv(REDCAP)
    assert _rows(d.to_redcap_csv()) == _rows(REDCAP)
    assert DataDictionary.from_toml(d.to_toml()) == d  # the REDCap details survive TOML too
    assert _rows(DataDictionary.from_toml(d.to_toml()).to_redcap_csv()) == _rows(REDCAP)


def test_redcap_csv_read_by_hand():
    d = DataDictionary.from_redcap_csv(REDCAP)
    rid = d.item("record_id")
    assert (rid.type, rid.kind, rid.redcap) == ("text", "attribute", (("Record ID", "y"),))
    assert d.item("initials").redcap == (("Section Header", "Demographics"), ("Identifier?", "y"),
                                         ("Field Annotation", "@HIDDEN-SURVEY"))  # fmt: skip
    assert d.item("email").type == "text" and d.item("email").extras["Text Validation Type OR Show Slider Number"] == "email"
    assert d.item("comments").note == "Free text,\nno identifiers"
    dob = d.item("dob")
    assert (dob.type, dob.low, dob.high, dob.required) == ("date", date(1920, 1, 1), None, True)
    assert dob.extras["Text Validation Max"] == "today"
    sex = d.item("sex")
    assert sex.type == "choice" and sex.choices == (Choice("F", "Female"), Choice("M", "Male")) and sex.redcap == ()
    status = d.item("cd20_status")
    assert status.condition == "[cd20_tested] = '1'" and status.extras["Field Type"] == "radio"
    prior = d.item("prior_allo")
    assert (prior.type, prior.low, prior.high, prior.plausible_low, prior.plausible_high) == ("integer", 0, 10, None, 3)
    anc = d.item("anc")
    assert (anc.kind, anc.unit, anc.type, anc.low, anc.high, anc.note) == ("observation", "10*9/L", "number", 0, 1000,
                                                                            "x10^9/L")  # fmt: skip
    hb = d.item("hb")
    assert (hb.low, hb.high, hb.plausible_low, hb.plausible_high) == (0.0, 30.0, 2, 22)
    assert hb.extras == {"Text Validation Type OR Show Slider Number": "number_1dp", "Text Validation Max": "30.00",
                         "Field Annotation": "@READONLY @DEFAULT='12.0'"}  # fmt: skip
    assert d.item("bili").molar_mass == 584.66 and d.item("bili").low == 0
    assert d.item("transfused").type == "yesno" and d.item("transfused").choice_label("1") == "True"
    assert d.item("gut_stage").choices[4] == Choice("4", "stage 4")
    assert d.item("arm").choice_label("-1") == "not randomised" and d.item("arm").kind == "design"
    assert [i.kind for i in d.of_kind("assessment")] == ["assessment"] * 4


def test_redcap_without_tags_and_default_kind():
    plain = HEADER + "\nstudy_id,base,,text,Study ID,,,,,,,,,,,,,\nanc,base,,text,ANC,,,number,0,,,,,,,,,\n"
    d = DataDictionary.from_redcap_csv(plain)
    assert [(i.kind, i.unit) for i in d] == [("attribute", None), ("attribute", None)]
    assert DataDictionary.from_redcap_csv(plain, default_kind="observation").item("anc").kind == "observation"
    assert DataDictionary.from_redcap_csv(plain, default_kind="observation").item("study_id").kind == "attribute"
    # written back with the kind tag that says so
    assert _rows(d.to_redcap_csv())[2][-1] == "@ALLOTRACK-KIND=attribute"
    with pytest.raises(InputError, match="unknown default kind"):
        DataDictionary.from_redcap_csv(plain, default_kind="finding")


def test_unsupported_field_types_are_listed_at_once():
    text = HEADER + """
record_id,base,,text,Record ID,,,,,,,,,,,,,
meds,base,,checkbox,Medications,"1, a | 2, b",,,,,,,,,,,,
bmi,base,,calc,BMI,[weight]/([height]^2),,,,,,,,,,,,
ok,base,,text,Fine,,,,,,,,,,,,,
consent,base,,file,Consent form,,,,,,,,,,,,,
intro,base,,descriptive,Intro,,,,,,,,,,,,,
pain,base,,slider,Pain,,,,,,,,,,,,,
lookup,base,,sql,Lookup,select 1,,,,,,,,,,,,
"""
    with pytest.raises(InputError) as info:
        DataDictionary.from_redcap_csv(text, source="dd.csv")
    message = str(info.value)
    assert message.startswith("dd.csv: 6 problem(s)")
    for line, name, ftype in [(3, "meds", "checkbox"), (4, "bmi", "calc"), (6, "consent", "file"),
                              (7, "intro", "descriptive"), (8, "pain", "slider"), (9, "lookup", "sql")]:
        assert f"line {line}, field '{name}': field type '{ftype}' is not supported" in message
    assert "'ok'" not in message


def test_redcap_other_problems():
    with pytest.raises(InputError, match=r"line 1: not a REDCap data dictionary header \(column 1 is 'name'"):
        DataDictionary.from_redcap_csv("name,form\nx,y\n")
    bad = HEADER + """
record_id,base,,text,Record ID,,,,,,,,,,,,,
ANC,base,,text,ANC,,,number,5,1,,,,,,,,@ALLOTRACK-KIND=lab
sex,base,,dropdown,Sex,"F Female | M Male",,,,,,,maybe,,,,,@ALLOTRACK-COLOUR=red
sex,base,,text,Sex again,,,,,,,,,,,,,
"""
    with pytest.raises(InputError) as info:
        DataDictionary.from_redcap_csv(bad)
    message = str(info.value)
    assert "line 3, field 'ANC': @ALLOTRACK-KIND 'lab' is not a kind" in message
    assert "line 4, field 'sex': unknown tag @ALLOTRACK-COLOUR" in message
    assert "line 4, field 'sex': choices 'F Female | M Male' are not 'code, label | code, label'" in message
    assert "line 4, field 'sex': Required Field? is 'maybe'" in message
    assert "line 5, field 'sex': the field is defined again (first on line 4)" in message
    bad_code = HEADER + "\nrecord_id,base,,text,Record ID,,,,,,,,,,,,,\nANC,base,,text,ANC,,,number,5,1,,,,,,,,\n"
    with pytest.raises(InputError, match=r"line 3, field 'ANC': code: 'ANC' is not a valid code(.|\n)*line 3, field 'ANC': low: low 5 > high 1"):
        DataDictionary.from_redcap_csv(bad_code)


def test_redcap_csv_is_spreadsheet_safe():
    d = DataDictionary((Item("x", "=HYPERLINK(\"http://e\")", note="+1", condition="@SUM(1)", form="f"),
                        Item("y", "'=already quoted", "choice", choices=(Choice("-1", "@no"),), form="f")))
    rows = _rows(d.to_redcap_csv())
    assert rows[2][4] == "'=HYPERLINK(\"http://e\")" and rows[2][6] == "'+1" and rows[2][11] == "'@SUM(1)"
    assert rows[3][4] == "''=already quoted" and rows[3][5] == "-1, @no"  # REDCap's negative code stays
    assert DataDictionary.from_redcap_csv(d.to_redcap_csv()) == d


def test_added_record_id_and_metadata():
    d = DataDictionary((Item("record_id", "mine", form="a"), Item("b", form="z"), Item("c", form="a")), "n \"q\"", "v1")
    rows = _rows(d.to_redcap_csv())
    assert rows[1][:2] == ["record_id_1", "a"] and rows[1][-1].startswith("@ALLOTRACK-RECORD-ID")
    assert [r[0] for r in rows[2:]] == ["record_id", "c", "b"]  # grouped by form, REDCap needs that
    back = DataDictionary.from_redcap_csv(d.to_redcap_csv())
    assert (back.name, back.version, back.codes) == ('n "q"', "v1", ("record_id", "c", "b"))
    assert back.item("b").form == "z" and DataDictionary((Item("x"),)).to_redcap_csv().splitlines()[2].startswith(
        "x,attribute,")


def test_save_and_load(tmp_path):
    d = DataDictionary.from_redcap_csv(REDCAP)
    for name in ("d.toml", "d.csv"):
        d.save(tmp_path / name)
        assert DataDictionary.load(tmp_path / name) == d
    (tmp_path / "bom.csv").write_bytes(b"\xef\xbb\xbf" + REDCAP.encode())
    assert DataDictionary.load(tmp_path / "bom.csv") == d
    with pytest.raises(InputError, match=r"must end in \.toml or \.csv"):
        d.save(tmp_path / "d.json")


# --- property: any valid item round-trips -----------------------------------------------------------------------

TEXT = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=12)
LABEL = st.text(st.characters(codec="utf-8", exclude_characters="\x00|\r\n"), min_size=1,
                max_size=8).map(str.strip).filter(bool)  # fmt: skip
UNITS = ["10*9/L", "mg/dL", "g/L", "pg/mL", "U/L", "mmol/L", "%", "/uL", "{MFI}", "mg/(24.h)"]
FORMS = ["baseline", "labs", "follow_up_2"]
NUMBER = st.one_of(st.integers(-10**6, 10**6), st.floats(-1e12, 1e12, allow_nan=False, allow_infinity=False))
ALT_TYPE = {"text": ["notes"], "choice": ["radio"], "yesno": ["truefalse"]}
ALT_VALIDATION = {"number": ["number_1dp", "number_comma_decimal"], "date": ["date_dmy", "date_mdy"],
                  "text": ["email", "datetime_ymd", "alpha_only"]}  # fmt: skip


@st.composite
def items(draw):
    item_type = draw(st.sampled_from(TYPES))
    kw = {"kind": draw(st.sampled_from(KINDS)), "label": draw(TEXT), "note": draw(TEXT), "form": draw(st.sampled_from(FORMS)),
          "required": draw(st.booleans()),
          "condition": draw(st.sampled_from([None, "[x] = '1'", "[age] > 18 and [sex] = 'F'", "=1+2"]))}
    if item_type in ("number", "integer", "date"):
        values = sorted(draw(st.lists(st.dates() if item_type == "date" else NUMBER, min_size=4, max_size=4)))
        for key, value in zip(("low", "plausible_low", "plausible_high", "high"), values, strict=True):
            if draw(st.booleans()):
                kw[key] = value
    if item_type in ("number", "integer"):
        kw["unit"] = draw(st.sampled_from([None, *UNITS]))
        kw["molar_mass"] = draw(st.none() | st.floats(0.001, 1e6))
    if item_type == "choice":
        codes = draw(st.lists(st.from_regex(r"-?[A-Za-z0-9_.]{1,4}", fullmatch=True), min_size=1, max_size=4, unique=True))
        kw["choices"] = tuple(Choice(c, draw(LABEL)) for c in codes)
    extras = {}
    if draw(st.booleans()):
        extras["Section Header"] = draw(TEXT.filter(bool))
    if draw(st.booleans()):
        extras["Field Annotation"] = draw(st.sampled_from(["@HIDDEN", "@READONLY @DEFAULT='1'", "see protocol"]))
    if draw(st.booleans()):
        extras["Identifier?"] = "y"
    if item_type in ALT_TYPE and draw(st.booleans()):
        extras["Field Type"] = draw(st.sampled_from(ALT_TYPE[item_type]))
    if item_type in ALT_VALIDATION and draw(st.booleans()):
        extras["Text Validation Type OR Show Slider Number"] = draw(st.sampled_from(ALT_VALIDATION[item_type]))
    code = draw(st.from_regex(r"[a-z][a-z0-9_]{0,12}", fullmatch=True))
    return Item(code, type=item_type, redcap=tuple(extras.items()), **kw)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(items(), max_size=6, unique_by=lambda i: i.code), TEXT, TEXT)
def test_any_valid_dictionary_round_trips(found, name, version):
    found.sort(key=lambda i: FORMS.index(i.form))  # REDCap keeps an instrument's fields together
    d = DataDictionary(tuple(found), name, version)
    assert DataDictionary.from_toml(d.to_toml()) == d
    assert DataDictionary.from_redcap_csv(d.to_redcap_csv()) == d


# --- the default dictionary ---------------------------------------------------------------------------------------

def test_default_dictionary_round_trips():
    d = default_dictionary()
    assert DataDictionary.from_toml(d.to_toml()) == d
    assert DataDictionary.from_redcap_csv(d.to_redcap_csv()) == d


@pytest.mark.parametrize("code, kind, unit", [
    ("anc", "observation", "10*9/L"), ("plt", "observation", "10*9/L"), ("wbc", "observation", "10*9/L"),
    ("hb", "observation", "g/dL"), ("bili", "observation", "mg/dL"), ("chimerism_pct", "observation", "%"),
    ("mprot_serum", "observation", "g/L"), ("mprot_urine", "observation", "mg/(24.h)"),
    ("flc_kappa", "observation", "mg/L"), ("flc_lambda", "observation", "mg/L"), ("b2m", "observation", "mg/L"),
    ("albumin", "observation", "g/L"), ("ldh", "observation", "U/L"), ("calcium", "observation", "mmol/L"),
    ("il6", "observation", "pg/mL"), ("tnfa", "observation", "pg/mL"), ("ifng", "observation", "pg/mL"),
    ("sil2r", "observation", "U/mL"), ("nk_abs", "observation", "/uL"), ("nk_pct", "observation", "%"),
    ("treg_abs", "observation", "/uL"), ("th17_pct", "observation", "%"), ("dsa_mfi", "observation", "{MFI}"),
    ("marrow_blasts_pct", "observation", "%"), ("nk_infusion", "intervention", "10*6/kg"),
    ("rituximab", "intervention", "mg/m2"), ("basiliximab", "intervention", "mg"), ("dli", "intervention", "10*6/kg"),
    ("agvhd_grade", "assessment", None), ("gvhd_response", "assessment", None), ("crs_grade", "assessment", None),
    ("dlt", "assessment", None), ("cd20_status", "attribute", None), ("eln2022_risk", "attribute", None),
    ("prior_allo_hct", "attribute", None), ("del17p", "attribute", None), ("pop_itt", "design", None),
    ("arm", "design", None), ("case_control", "design", None),
])  # fmt: skip
def test_default_dictionary_items(code, kind, unit):
    item = default_dictionary().item(code)
    assert (item.kind, item.unit) == (kind, unit)


def test_default_dictionary_details():
    d = default_dictionary()
    assert d.name == "allotrack default" and len(set(d.codes)) == len(d.codes) > 80
    assert all(re.fullmatch(r"[a-z][a-z0-9_]*", c) for c in d.codes)
    anc = d.item("anc")
    assert (anc.low, anc.high, anc.plausible_high) == (0, 1000, 100)
    assert d.item("bili").molar_mass == 584.66
    assert [c.code for c in d.item("gvhd_response").choices] == ["CR", "PR", "NR", "PROG"]
    assert [c.label for c in d.item("cd20_status").choices] == ["positive", "negative", "not tested"]
    assert "antigen" in d.item("dsa_mfi").note
    assert {i.type for i in d.of_kind("observation")} == {"number"}
    assert all(i.unit for i in d.of_kind("observation")) and all(i.form for i in d)
    for kind in KINDS:
        assert d.of_kind(kind), kind
    assert replace(anc, low=None) != anc  # items are values
