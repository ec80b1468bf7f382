"""Permuted blocks and minimisation (allotrack.design.randomisation): reproducible from the seed, balanced at
every block end, never more unbalanced than one block within it, strata independent; minimisation worked by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from allotrack.design.randomisation import RandomisationDesign, minimisation, randomisation_list
from allotrack.errors import InputError

MSC = RandomisationDesign({"MSC + basiliximab": 1, "basiliximab": 1}, stratify_by=("centre",))


def test_the_same_seed_gives_the_same_list_and_another_seed_another():
    a = randomisation_list(MSC, ["C1", "C2"], 65, seed=20210201).table
    b = randomisation_list(MSC, ["C1", "C2"], 65, seed=20210201).table
    c = randomisation_list(MSC, ["C1", "C2"], 65, seed=20210202).table
    assert a.equals(b)
    assert list(a["arm"].iloc[:40]) != list(c["arm"].iloc[:40])
    assert set(a["block_size"]) <= {4, 6} and (a.groupby("stratum")["position"].max() >= 65).all()


def test_a_stratum_list_does_not_change_when_strata_are_added():
    one = randomisation_list(MSC, ["C1"], 40, seed=7).table
    three = randomisation_list(MSC, ["C0", "C1", "C2"], 40, seed=7).table
    assert three[three["stratum"] == "C1"].reset_index(drop=True).equals(one)


@settings(max_examples=60, deadline=None)
@given(ratio=st.tuples(st.integers(1, 3), st.integers(1, 3)), multiples=st.lists(st.integers(1, 4), min_size=1,
       max_size=3, unique=True), n=st.integers(1, 120), seed=st.integers(0, 2**32 - 1))  # fmt: skip
def test_every_prefix_is_within_one_block_of_the_ratio_and_every_block_end_is_exact(ratio, multiples, n, seed):
    total = sum(ratio)
    design = RandomisationDesign({"A": ratio[0], "B": ratio[1]}, block_sizes=tuple(m * total for m in multiples))
    table = randomisation_list(design, ["s"], n, seed).table
    assert len(table) >= n and set(table["block_size"]) <= set(design.sizes)
    a = np.cumsum(table["arm"].to_numpy() == "A")
    b = np.cumsum(table["arm"].to_numpy() == "B")
    ends = np.cumsum(table.drop_duplicates("block")["block_size"].to_numpy()) - 1
    assert np.array_equal(a[ends] * ratio[1], b[ends] * ratio[0])  # exactly in ratio at each block end
    deviation = np.abs(a * ratio[1] - b * ratio[0]) / total  # in patients, relative to the ratio
    assert deviation.max() <= max(design.sizes) * max(ratio) / total


def test_designs_that_cannot_be_balanced_are_refused_by_name():
    with pytest.raises(InputError, match=r"block sizes \[5\] are not multiples of the ratio's sum 2"):
        RandomisationDesign({"A": 1, "B": 1}, block_sizes=(4, 5))
    with pytest.raises(InputError, match="at least two arms"):
        RandomisationDesign({"A": 1})
    with pytest.raises(InputError, match="minimisation needs at least one factor"):
        RandomisationDesign({"A": 1, "B": 1}, method="minimisation")


def test_minimisation_by_hand_pocock_simon():
    """Allocated so far: centre C1 has A, A, B; sex F has A, B, B. A new patient from C1, F: if A, centre counts
    (3, 1) range 2 and sex (2, 2) range 0, total 2; if B, centre (2, 2) range 0 and sex (1, 3) range 2, total 2 —
    a tie, broken at random; with a second factor level the minimising arm is forced (p_best = 1)."""
    design = RandomisationDesign({"A": 1, "B": 1}, stratify_by=("centre", "sex"), method="minimisation", p_best=1.0)
    allocated = pd.DataFrame({"centre": ["C1", "C1", "C1", "C2"], "sex": ["F", "M", "F", "F"],
                              "arm": ["A", "A", "B", "B"]})  # fmt: skip
    choice = minimisation(design, allocated, {"centre": "C1", "sex": "F"}, seed=1, number=5)
    assert choice.imbalance == {"A": 2.0, "B": 2.0} and choice.took_best
    forced = minimisation(design, allocated, {"centre": "C1", "sex": "M"}, seed=1, number=5)
    # if A: centre (3, 1) → 2, sex M (2, 0) → 2, total 4; if B: centre (2, 2) → 0, sex M (1, 1) → 0, total 0
    assert forced.imbalance == {"A": 4.0, "B": 0.0} and forced.arm == "B"


def test_minimisation_is_reproducible_and_takes_the_best_arm_about_p_best_of_the_time():
    design = RandomisationDesign({"A": 1, "B": 1}, stratify_by=("centre",), method="minimisation", p_best=0.8)
    allocated = pd.DataFrame({"centre": ["C1"] * 3, "arm": ["A", "A", "B"]})
    runs = [minimisation(design, allocated, {"centre": "C1"}, seed=3, number=k) for k in range(1, 2001)]
    again = [minimisation(design, allocated, {"centre": "C1"}, seed=3, number=k).arm for k in range(1, 2001)]
    assert [r.arm for r in runs] == again
    share = np.mean([r.arm == "B" for r in runs])
    assert abs(share - 0.8) < 4 * np.sqrt(0.8 * 0.2 / 2000)
