"""Randomisation: allocation lists by stratified permuted blocks of random sizes, and Pocock–Simon minimisation
with a random element.

* :func:`randomisation_list` — within each stratum, a sequence of blocks whose sizes are drawn at random from
  ``block_sizes`` (each a multiple of the ratio's sum); every block holds each arm in proportion to the ratio, in
  random order (Matts & Lachin 1988; blockrand's ``block.sizes``/``levels`` semantics). At the end of each block the
  arms are exactly in ratio, so after any prefix of a stratum's list the imbalance is at most that of one partial
  block. Reproducible: stratum ``s`` uses a generator seeded by ``(seed, crc32(s))``, so the list of one stratum does
  not change when strata are added.
* :func:`minimisation` — Pocock & Simon (1975): for each candidate arm, the patient is added to that arm's
  counts at the patient's level of every factor; the imbalance of a factor is the range across arms of the counts
  divided by the arm's ratio weight; the total is the factor-weighted sum. The arm with the smallest total is taken
  with probability ``p_best`` (ties broken at random), any other arm otherwise (uniformly). Its random draws come
  from a generator seeded by ``(seed, allocation number)``, so the sequence is reproducible from the seed.

Nothing here touches the store: :mod:`allotrack.records.allocation` keeps the list concealed and the log
append-only.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from allotrack.errors import InputError
from allotrack.stats.results import Result

__all__ = ["AllocationList", "MinimisationChoice", "RandomisationDesign", "minimisation", "randomisation_list"]


@dataclass(frozen=True)
class RandomisationDesign:
    """Arms with their allocation ratio (``{"MSC + basiliximab": 1, "basiliximab": 1}``), the stratification
    factors (patient attributes such as ``centre``), the method ("blocks" or "minimisation"), the block sizes of
    permuted blocks, and the probability of the minimising arm."""

    arms: Mapping[str, int]
    stratify_by: tuple[str, ...] = ()
    method: str = "blocks"
    block_sizes: tuple[int, ...] | None = None  # None: 2 and 3 times the ratio's sum (4 and 6 for 1:1)
    p_best: float = 0.8

    def __post_init__(self) -> None:
        if len(self.arms) < 2:
            raise InputError(f"a randomisation needs at least two arms, not {list(self.arms)}", column="arms")
        bad = {a: r for a, r in self.arms.items() if not isinstance(r, int | np.integer) or r < 1}
        if bad:
            raise InputError(f"allocation ratios must be whole numbers ≥ 1, not {bad}", column="arms")
        if self.method not in ("blocks", "minimisation"):
            raise InputError(f"method must be 'blocks' or 'minimisation', not {self.method!r}", column="method")
        total = sum(self.arms.values())
        wrong = [b for b in self.sizes if b % total or b <= 0]
        if wrong:
            raise InputError(f"block sizes {wrong} are not multiples of the ratio's sum {total}", column="block_sizes")
        if self.method == "minimisation" and not self.stratify_by:
            raise InputError("minimisation needs at least one factor (stratify_by)", column="stratify_by")
        if not 1 / len(self.arms) <= self.p_best <= 1:
            raise InputError(f"p_best must be between 1/{len(self.arms)} and 1, not {self.p_best}", column="p_best")

    @property
    def sizes(self) -> tuple[int, ...]:
        total = sum(self.arms.values())
        return self.block_sizes if self.block_sizes is not None else (2 * total, 3 * total)


@dataclass(frozen=True, repr=False)
class AllocationList(Result):
    """An allocation list: per stratum, list positions 1, 2, … with their block, block size and arm."""

    table: pd.DataFrame  # stratum, position, block, block_size, arm
    seed: int

    def to_frame(self) -> pd.DataFrame:
        return self.table.copy()


def _stratum_rng(seed: int, stratum: str) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(seed), zlib.crc32(stratum.encode("utf-8"))]))


def randomisation_list(design: RandomisationDesign, strata: Sequence[str], n_per_stratum: int,
                    seed: int) -> AllocationList:  # fmt: skip
    """The allocation list of ``design`` (method "blocks"): at least ``n_per_stratum`` positions per stratum (whole
    blocks), reproducible from ``seed``."""
    if n_per_stratum < 1:
        raise InputError(f"n_per_stratum must be at least 1, not {n_per_stratum}", column="n_per_stratum")
    if len(set(strata)) != len(strata) or not strata:
        raise InputError(f"strata must be distinct and not empty: {list(strata)}", column="strata")
    arms = np.asarray(list(design.arms), dtype=object)
    ratio = np.asarray(list(design.arms.values()))
    total = int(ratio.sum())
    sizes = np.asarray(design.sizes)
    frames = []
    for stratum in strata:
        rng = _stratum_rng(seed, stratum)
        # enough blocks for n positions even if every block were the smallest; cut after the covering block
        n_blocks = -(-n_per_stratum // int(sizes.min()))
        chosen = rng.choice(sizes, size=n_blocks)
        ends = np.cumsum(chosen)
        keep = int(np.searchsorted(ends, n_per_stratum) + 1)
        chosen = chosen[:keep]
        blocks = [rng.permutation(np.repeat(arms, ratio * (size // total))) for size in chosen]
        arm = np.concatenate(blocks)
        frames.append(pd.DataFrame({
            "stratum": stratum, "position": np.arange(1, arm.size + 1),
            "block": np.repeat(np.arange(1, keep + 1), chosen), "block_size": np.repeat(chosen, chosen), "arm": arm,
        }))  # fmt: skip
    return AllocationList(pd.concat(frames, ignore_index=True), int(seed))


@dataclass(frozen=True, repr=False)
class MinimisationChoice(Result):
    """One minimisation step: the arm chosen, each arm's total imbalance if chosen, and whether the minimising
    arm was taken (False: the random element chose another)."""

    arm: str
    imbalance: Mapping[str, float]
    took_best: bool

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame({"arm": list(self.imbalance), "imbalance": list(self.imbalance.values()),
                             "chosen": [a == self.arm for a in self.imbalance]})  # fmt: skip


def minimisation(design: RandomisationDesign, allocated: pd.DataFrame, patient: Mapping[str, object],
                        seed: int, number: int,
                        weights: Mapping[str, float] | None = None) -> MinimisationChoice:  # fmt: skip
    """The arm of the ``number``-th patient (1-based) by Pocock–Simon minimisation, given the patients
    ``allocated`` so far (a frame with the factors of ``design.stratify_by`` and ``arm``) and this ``patient``'s
    factor levels. Range imbalance over arms, counts divided by each arm's ratio weight."""
    missing = [f for f in design.stratify_by if f not in patient or patient[f] is None]
    if missing:
        raise InputError(f"the patient has no value for the minimisation factor(s) {missing}", column=missing[0])
    arms = list(design.arms)
    ratio = np.asarray([design.arms[a] for a in arms], dtype=float)
    w = weights or {}
    totals = np.zeros(len(arms))
    for factor in design.stratify_by:
        same = allocated[allocated[factor].astype(str) == str(patient[factor])] if len(allocated) else allocated
        counts = np.asarray([(same["arm"] == a).sum() if len(same) else 0 for a in arms], dtype=float)
        for k in range(len(arms)):
            trial = counts.copy()
            trial[k] += 1
            scaled = trial / ratio
            totals[k] += float(w.get(factor, 1.0)) * (scaled.max() - scaled.min())
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), int(number)]))
    best = np.flatnonzero(np.isclose(totals, totals.min()))
    best_arm = int(rng.choice(best))
    others = [k for k in range(len(arms)) if k != best_arm]
    take_best = bool(rng.random() < design.p_best)
    k = best_arm if take_best else int(rng.choice(others))
    return MinimisationChoice(arms[k], dict(zip(arms, totals.tolist(), strict=True)), take_best)
