"""ASTCT CRS/ICANS grades and HLA mismatch counting."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from allotrack.clinical import crs, hla
from allotrack.errors import InputError


@pytest.mark.parametrize(
    ("kwargs", "grade"),
    [
        ({"temperature_c": 37.9}, 0), ({"temperature_c": 38.0}, 1), ({"fever": True, "hypotension": True}, 2),
        ({"fever": True, "oxygen_l_min": 6}, 2), ({"fever": True, "oxygen_l_min": 6.5}, 3),
        ({"fever": True, "high_flow": True}, 3), ({"fever": True, "vasopressors": 1}, 3),
        ({"fever": True, "vasopressors": 1, "vasopressin": True}, 3), ({"fever": True, "vasopressors": 2}, 4),
        ({"fever": True, "positive_pressure": True}, 4),
        ({"fever": True, "vasopressors": 1, "oxygen_l_min": 2}, 3),  # the Lee 2019 worked example
        ({"temperature_c": 37.0, "vasopressors": 1}, 0), ({"temperature_c": 37.0, "fever_masked": True, "vasopressors": 1}, 3),
    ],
)  # fmt: skip
def test_astct_crs(kwargs, grade):
    assert crs.astct_crs_grade(**kwargs).grade == grade


def test_crs_errors_and_worst():
    with pytest.raises(InputError, match="temperature_c must be ≤ 45"):
        crs.astct_crs_grade(temperature_c=101.3)  # Fahrenheit entered as Celsius
    with pytest.raises(InputError, match="contradicts"):
        crs.astct_crs_grade(temperature_c=37.0, fever=True)
    with pytest.raises(InputError, match="give temperature_c"):
        crs.astct_crs_grade()
    grades = [crs.astct_crs_grade(fever=True), crs.astct_crs_grade(fever=True, vasopressors=1)]
    assert crs.worst_crs_grade(grades) == 3 and crs.worst_crs_grade([]) == 0


def test_ice_and_icans():
    assert crs.ice_score(4, 3, 1, 1, 1) == 10
    assert [crs.astct_icans_grade(v).grade for v in (10, 9, 7, 6, 3, 2, 0)] == [0, 1, 1, 2, 2, 3, 3]
    assert crs.astct_icans_grade(None, consciousness="unarousable").grade == 4
    assert crs.astct_icans_grade(8, seizure="rapidly resolving").grade == 3
    assert crs.astct_icans_grade(3, seizure="rapidly resolving").grade == 3  # ICE 3 + seizure (Lee 2019 example)
    assert crs.astct_icans_grade(10, edema="diffuse").grade == 4
    assert crs.astct_icans_grade(10, consciousness="awakens spontaneously").grade == 1
    with pytest.raises(InputError, match="only valid for an unarousable"):
        crs.astct_icans_grade(None)
    with pytest.raises(InputError, match="naming must be an integer stage"):
        crs.ice_score(4, 4, 1, 1, 1)


def test_hla_parsing():
    assert str(hla.parse_hla("A*02:01:01:02L")) == "A*02:01"
    assert hla.parse_hla("HLA-DRB1*15:01").locus == "DRB1"
    assert hla.parse_hla("A2") == hla.HlaAllele("A", "02", None)
    assert hla.parse_hla("Cw7").locus == "C"
    for bad, msg in [
        ("A*02:01/02:02", "ambiguous"),
        ("A*02:AB", "NMDP"),
        ("X*01:01", "unrecognised"),
        ("", "non-empty"),
    ]:
        with pytest.raises(InputError, match=msg):
            hla.parse_hla(bad)


def test_hla_directions_and_grades():
    # worked example: recipient A*01:01, A*02:01; donor A*01:01 homozygous -> 1 GvH, 0 HvG
    m = hla.hla_mismatches({"A": ["A*01:01", "A*02:01"]}, {"A": ["A*01:01", "A*01:01"]}, loci=["A"])
    assert (m.gvh["A"], m.hvg["A"], m.bidirectional["A"], m.grade) == (1, 0, 1, "1/2")
    r = {"A": ["A*01:01", "A*02:01"], "B": ["B*07:02", "B*08:01"], "C": ["C*07:01", "C*07:02"],
         "DRB1": ["DRB1*15:01", "DRB1*03:01"], "DQB1": ["DQB1*06:02", "DQB1*02:01"], "DPB1": ["DPB1*04:01"]}  # fmt: skip
    d = {"A": ["A*01:01", "A*03:01"], "B": ["B*07:02", "B*44:02"], "C": ["C*07:01", "C*05:01"],
         "DRB1": ["DRB1*15:01", "DRB1*04:01"], "DQB1": ["DQB1*06:02", "DQB1*03:01"], "DPB1": ["DPB1*04:01", "DPB1*02:01"]}  # fmt: skip
    # a haploidentical pair: one haplotype shared
    assert hla.hla_mismatches(r, d, loci=["A", "B", "DRB1"]).grade == "3/6"
    assert hla.hla_mismatches(r, d).grade == "4/8"
    assert hla.hla_mismatches(r, d, loci=["A", "B", "C", "DRB1", "DQB1"]).grade == "5/10"
    m12 = hla.hla_mismatches(r, d, loci=hla.LOCI)
    assert m12.gvh["DPB1"] == 0 and m12.hvg["DPB1"] == 1 and m12.grade == "6/12"
    # homozygous recipient mismatch counted twice (default) or once
    rr = {"A": ["A*01:01"]}
    dd = {"A": ["A*02:01", "A*03:01"]}
    assert hla.hla_mismatches(rr, dd, loci=["A"]).gvh["A"] == 2
    assert hla.hla_mismatches(rr, dd, loci=["A"], homozygous="once").gvh["A"] == 1
    # antigen level: A2 matches A*02:05 when one side is antigen-level only
    mixed = hla.hla_mismatches({"A": ["A2", "A1"]}, {"A": ["A*02:05", "A*01:01"]}, loci=["A"])
    assert mixed.total_bidirectional == 0 and mixed.resolution["A"] == "antigen"


alleles = st.sampled_from(["A*01:01", "A*02:01", "A*02:05", "A*03:01", "A*11:01"])


@given(st.lists(alleles, min_size=1, max_size=2), st.lists(alleles, min_size=1, max_size=2))
def test_swapping_donor_and_recipient_swaps_directions(r, d):
    a = hla.hla_mismatches({"A": r}, {"A": d}, loci=["A"])
    b = hla.hla_mismatches({"A": d}, {"A": r}, loci=["A"])
    assert (a.gvh, a.hvg) == (b.hvg, b.gvh)
    assert a.bidirectional == b.bidirectional
    assert 0 <= a.total_bidirectional <= 2


def test_hla_errors_and_dsa():
    with pytest.raises(InputError, match="donor has no typing at locus C"):
        hla.hla_mismatches({"A": ["A1"], "C": ["C7"]}, {"A": ["A1"]}, loci=["A", "C"])
    with pytest.raises(InputError, match="given under locus A"):
        hla.hla_mismatches({"A": ["B*07:02"]}, {"A": ["A1"]}, loci=["A"])
    assert [hla.dsa_status(v).status for v in (500, 1000, 4999, 5000, 22000)] == [
        "negative", "positive", "positive", "strong", "strong"
    ]  # fmt: skip
    assert hla.dsa_status(1500, positive=2000, strong=10000).status == "negative"
