"""Count recovery (CIBMTR worked example, MST window) and chimerism formulas."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from allotrack.clinical import chimerism as ch
from allotrack.clinical import recovery as rc
from allotrack.errors import InputError


def test_cibmtr_platelet_worked_example():
    # CIBMTR forms manual: days 0-10, last transfusion day 0 -> recovery reported on day 7 (23 x10^3/µL)
    plt = [10, 35, 30, 25, 10, 15, 19, 23, 25, 40, 50]
    res = rc.platelet_engraftment(list(range(11)), plt, transfusion_days=[0])
    assert (res.status, res.day, res.run_days) == ("reached", 7.0, (7.0, 8.0, 9.0))
    # a transfusion inside the run disqualifies it as well
    assert rc.platelet_engraftment(list(range(11)), plt, transfusion_days=[0, 8]).day is None
    # never below 20 and never transfused: not applicable
    assert rc.platelet_engraftment([0, 1, 2], [150, 140, 160]).status == "not applicable"


def test_neutrophil_engraftment_after_nadir():
    anc = [3.0, 1.2, 0.6, 0.7, 0.55, 0.0, 0.2, 0.4, 0.6, 0.7, 0.45, 0.8, 0.9, 1.1]
    res = rc.neutrophil_engraftment(list(range(14)), anc)
    # early values above 0.5 (days 2-4, before the nadir on day 5) are ignored; day 8-9 run broken on day 10
    assert (res.status, res.day, res.nadir_day) == ("reached", 11.0, 5.0)
    # several values on one day: the lowest counts
    res2 = rc.neutrophil_engraftment([0, 1, 2, 2, 3, 4], [0.1, 0.6, 0.7, 0.4, 0.8, 0.9])
    assert res2.day is None and res2.status == "not reached"
    # dates with an origin
    origin = date(2025, 1, 1)
    res3 = rc.neutrophil_engraftment([origin + timedelta(days=k) for k in range(6)], [0.0, 0.2, 0.6, 0.6, 0.7, 1.0],
                                     origin=origin)  # fmt: skip
    assert res3.day == 2.0
    # a gap above max_gap_days breaks the run
    assert rc.neutrophil_engraftment([0, 1, 2, 5, 6], [0.0, 0.6, 0.7, 0.8, 0.9], max_gap_days=2).status == "not reached"
    assert rc.neutrophil_engraftment([0, 1, 2, 5, 6], [0.0, 0.6, 0.7, 0.8, 0.9]).day == 1.0


def test_units_and_errors():
    with pytest.raises(InputError, match="look like cells/µL"):
        rc.neutrophil_engraftment([0, 1, 2], [400, 600, 900])
    with pytest.raises(InputError, match="anc must be ≥ 0"):
        rc.neutrophil_engraftment([0, 1], [0.2, -0.1])
    with pytest.raises(InputError, match="3 days but 2 values"):
        rc.neutrophil_engraftment([0, 1, 2], [0.2, 0.1])
    with pytest.raises(InputError, match="need an origin"):
        rc.neutrophil_engraftment([date(2025, 1, 1)], [0.2])


def test_mst_recovery_window():
    # chemotherapy ends day 0; aplasia from day 3 (3 days ANC<2 & PLT<100); recovery from day 15
    anc = [3.0, 2.5, 2.1, 1.5, 0.8, 0.2, 0.1, 0.1, 0.1, 0.2, 0.3, 0.4, 0.4, 0.5, 0.55, 0.7, 0.9, 1.2]
    plt = [150, 120, 110, 90, 60, 40, 25, 20, 18, 22, 25, 28, 31, 33, 35, 40, 45, 60]
    res = rc.hematopoietic_recovery(list(range(18)), anc, plt, chemotherapy_end=0)
    assert (res.status, res.start_day, res.end_day, res.duration_days) == ("recovered", 3.0, 14.0, 11.0)
    # a missing day inside the recovery run breaks "consecutive days"
    days = [*range(14), 15, 16, 17, 18]
    assert rc.hematopoietic_recovery(days, anc, plt).end_day == 15.0
    assert rc.hematopoietic_recovery([0, 1, 2], [3, 3, 3], [200, 200, 200]).status == "no aplasia"


def test_str_patterns():
    loci = [
        ch.StrLocus("TH01", ["6", "9.3"], ["6", "7"], {"6": 400, "9.3": 50, "7": 350}),  # one shared: 350/400
        ch.StrLocus("vWA", ["16"], ["16", "18"], {"16": 500, "18": 300}),  # recipient homozygous: 2*300/800
        ch.StrLocus("FGA", ["20", "22"], ["20"], {"20": 900, "22": 50}),  # donor homozygous: 100 - 2*50/950
        ch.StrLocus("D5", ["11", "12"], ["11", "12"], {"11": 1, "12": 1}),  # not informative
        ch.StrLocus("D8", ["10", "12"], ["13", "14"], {"10": 100, "12": 100, "13": 300, "14": 300}),  # stutter
    ]
    res = ch.str_donor_percent(loci)
    assert res.detail["loci"]["TH01"]["donor_percent"] == pytest.approx(87.5)
    assert res.detail["loci"]["vWA"]["donor_percent"] == pytest.approx(75.0)
    assert res.detail["loci"]["FGA"]["donor_percent"] == pytest.approx(100 - 100 * 2 * 50 / 950)
    assert res.detail["loci"]["D5"]["donor_percent"] is None
    assert "stutter" in res.detail["loci"]["D8"]["pattern"]
    no_stutter = ch.str_donor_percent(loci, exclude_stutter=False)
    assert no_stutter.detail["loci"]["D8"]["donor_percent"] == pytest.approx(75.0)  # type I: 600/800
    assert res.detail["n_informative"] == 3
    assert res.donor_percent == pytest.approx((87.5 + 75.0 + 100 - 100 * 2 * 50 / 950) / 3)


def test_str_outlier_locus_is_left_out():
    loci = [
        ch.StrLocus(f"L{i}", ["10", "12"], ["14", "16"], {"10": 10, "12": 10, "14": 90, "16": 90}) for i in range(5)
    ]
    loci.append(ch.StrLocus("odd", ["10", "12"], ["14", "16"], {"10": 90, "12": 90, "14": 10, "16": 10}))
    res = ch.str_donor_percent(loci)
    assert res.detail["outliers"] == ["odd"] and res.donor_percent == pytest.approx(90.0)


areas = st.floats(0.0, 1e4)


@given(areas, areas, areas)
def test_str_symmetric_under_swapping_donor_and_recipient(a, b, c):
    # genotype pairs: (R a,b / D a,c), (R a,a / D a,c), (R a,b / D a,a); swapping roles gives 100 - %D
    for r, d in ((["6", "8"], ["6", "10"]), (["6"], ["6", "10"]), (["6", "8"], ["6"])):
        peak = {"6": a, "8": b, "10": c}
        if sum(peak[k] for k in set(r) | set(d)) == 0:
            continue
        one = ch._locus_donor_percent(ch.StrLocus("x", r, d, peak), exclude_stutter=False)[0]
        two = ch._locus_donor_percent(ch.StrLocus("x", d, r, peak), exclude_stutter=False)[0]
        if one is None or two is None:
            continue
        assert 0 <= one <= 100
        assert one + two == pytest.approx(100.0, abs=1e-9) or min(one, two) == 0


def test_qpcr_and_fish_and_categories():
    res = ch.qpcr_donor_percent(30.0, 25.0, 26.0, 25.0)  # ddCt = 4 -> recipient 6.25 %
    assert res.donor_percent == pytest.approx(93.75) and ch.classify_chimerism(res) == "mixed"
    donor_marker = ch.qpcr_donor_percent(33.0, 25.0, 26.0, 25.0, marker_owner="donor")  # ddCt 7 -> 0.78 % donor
    assert donor_marker.donor_percent == pytest.approx(100 / 128)
    assert ch.classify_chimerism(donor_marker) == "low-level"
    undetected = ch.qpcr_donor_percent(None, 25.0, 26.0, 25.0, marker_owner="donor")
    assert undetected.below_lod and ch.classify_chimerism(undetected) == "not detected"
    fish = ch.fish_donor_percent(xx_nuclei=480, xy_nuclei=20, recipient_sex="F", donor_sex="M")
    assert fish.donor_percent == pytest.approx(4.0) and fish.lod_percent == pytest.approx(0.6)
    full = ch.Chimerism(95.0, "STR", lod_percent=5)
    assert ch.classify_chimerism(full) == "full" and ch.classify_chimerism(full, full_inclusive=False) == "mixed"
    with pytest.raises(InputError, match="sex-mismatched"):
        ch.fish_donor_percent(400, 100, "F", "F")


def test_mst_alert():
    assert ch.mst_gvhd_alert(2.5, 7, ["fever", "rash"]).alert
    assert not ch.mst_gvhd_alert(0.8, 7, ["fever"]).alert
    assert not ch.mst_gvhd_alert(2.5, 21, ["fever"]).alert
    assert not ch.mst_gvhd_alert(2.5, 7, []).alert
    with pytest.raises(InputError, match="unknown symptom"):
        ch.mst_gvhd_alert(2.5, 7, ["cough"])


def test_kinetics_per_patient():
    origin = date(2025, 3, 1)
    results = [
        (date(2025, 3, 8), ch.qpcr_donor_percent(33.0, 25.0, 26.0, 25.0, marker_owner="donor")),
        (date(2025, 3, 2), ch.qpcr_donor_percent(None, 25.0, 26.0, 25.0, marker_owner="donor")),
        (date(2025, 3, 15), ch.Chimerism(12.0, "STR", "CD3", 5.0)),
        (date(2025, 3, 29), ch.Chimerism(3.0, "STR", "CD3", 5.0)),
    ]
    rows = ch.chimerism_kinetics(results, origin=origin)
    assert [r["day"] for r in rows] == [1.0, 7.0, 14.0, 28.0]
    assert [r["category"] for r in rows] == ["not detected", "low-level", "mixed", "not detected"]
    assert rows[0]["below_lod"] and rows[1]["change"] == pytest.approx(100 / 128 - 0.0)
    assert rows[2]["change"] is None and rows[3]["change"] == pytest.approx(-9.0)
    with pytest.raises(InputError, match="need an origin"):
        ch.chimerism_kinetics(results)

def test_platelet_recovery_is_sought_after_the_nadir_of_a_chemotherapy_course():
    from allotrack.clinical.recovery import platelet_engraftment

    days = list(range(20))
    counts = [150, 120, 90, 60, 30, 15, 10, 8, 8, 9, 12, 15, 18, 25, 30, 40, 55, 70, 90, 110]
    out = platelet_engraftment(days, counts)
    assert out.status == "reached" and out.day == 13 and out.nadir_day == 7


def test_mst_recovery_is_searched_after_the_counts_fall_below_the_recovery_cut():
    """Counts that enter aplasia (ANC < 2, PLT < 100) while still above the recovery cut (ANC > 0.5, PLT > 30)
    used to end the window on its first day. Worked by hand: aplasia from day 1 (ANC 1.5, PLT 80 for 3 days);
    ANC ≤ 0.5 from day 4 (the nadir); ANC > 0.5 and PLT > 30 on days 9, 10, 11 → recovered on day 9, 8 days."""
    anc = [3.0, 1.5, 1.4, 1.2, 0.4, 0.2, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0]
    plt = [150, 80, 75, 70, 50, 40, 35, 33, 32, 35, 40, 50]
    res = rc.hematopoietic_recovery(list(range(12)), anc, plt)
    assert (res.status, res.start_day, res.end_day, res.duration_days) == ("recovered", 1.0, 9.0, 8.0)
    # aplasia that never reaches the recovery cut has no recovery to measure
    mild = rc.hematopoietic_recovery(list(range(6)), [3.0, 1.5, 1.4, 1.3, 1.5, 2.5], [150, 80, 75, 70, 90, 120])
    assert (mild.status, mild.start_day, mild.end_day) == ("not below the recovery cut", 1.0, None)
