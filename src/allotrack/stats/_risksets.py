"""Risk-set bookkeeping shared by the Cox engine, its residuals and the PH test: data sorted once.

Subjects are sorted by (stratum, exit time). A *death block* is the set of events sharing one stratum and
one exit time. The risk set of block k holds the subjects of its stratum with entry < t_k ≤ exit.
Sums over a risk set are differences of reverse cumulative sums (exit order minus entry order), and sums
over the blocks a subject is at risk in are differences of forward cumulative sums over blocks — so every
pass is O(n) (O(n·p) for vectors) after the one sort; no n × (event times) matrix is ever formed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from allotrack.stats._ties import merge_near_ties_sorted


@dataclass(frozen=True)
class RiskSets:
    order: np.ndarray  # original row -> position: x_sorted = x[order]
    stop: np.ndarray  # sorted exit times
    event: np.ndarray  # sorted 0/1
    weight: np.ndarray  # sorted case weights
    stratum: np.ndarray  # sorted stratum codes
    # death blocks (ordered by stratum, time)
    block_time: np.ndarray
    block_stratum: np.ndarray
    block_first: np.ndarray  # first sorted position with exit == t_k (start of the exit tie group)
    block_end: np.ndarray  # one past the last sorted position of the block's stratum
    death_block: np.ndarray  # for each death (sorted order of deaths), its block index
    death_pos: np.ndarray  # sorted positions of the deaths
    # delayed entry (None for right-censored data)
    entry_order: np.ndarray | None  # sorted position -> position in entry order
    block_entry_first: np.ndarray | None  # first entry-order position with entry >= t_k in the stratum
    block_entry_end: np.ndarray | None
    # for each sorted subject: blocks in its risk set are (lo, hi] in global block index
    block_hi: np.ndarray  # last block index with t_k <= exit (same stratum), -1 if none
    block_lo: np.ndarray  # last block index with t_k <= entry (same stratum), or last block of previous strata
    subject_block: np.ndarray  # block of a death subject, -1 for others

    @property
    def n_blocks(self) -> int:
        return int(self.block_time.size)

    def risk_sum(self, values: np.ndarray) -> np.ndarray:
        """Σ over each block's risk set of ``values`` (sorted order; 1-d or 2-d with rows = subjects)."""
        reverse = np.cumsum(values[::-1], axis=0)
        total = _tail_at(reverse, self.block_first)
        if self.block_end.size and self.block_end.min() < values.shape[0]:  # several strata
            total -= _tail_at(reverse, self.block_end)
        if self.entry_order is not None:
            assert self.block_entry_first is not None and self.block_entry_end is not None
            in_entry_order = np.empty_like(values)
            in_entry_order[self.entry_order] = values
            reverse = np.cumsum(in_entry_order[::-1], axis=0)
            total -= _tail_at(reverse, self.block_entry_first) - _tail_at(reverse, self.block_entry_end)
        return total

    def over_blocks(self, per_block: np.ndarray) -> np.ndarray:
        """For each sorted subject, Σ of ``per_block`` over the blocks whose risk set holds it."""
        shape = (1, *per_block.shape[1:])
        cum = np.concatenate((np.zeros(shape), np.cumsum(per_block, axis=0)))
        return cum[self.block_hi + 1] - cum[self.block_lo + 1]


def _tail_at(reverse: np.ndarray, index: np.ndarray) -> np.ndarray:
    """Σ_{j ≥ i} values[j] for each i in ``index`` (i = n gives 0), from ``reverse = cumsum(values[::-1])``:
    accumulated from the end, so small late risk sets keep full precision."""
    n = reverse.shape[0]
    out = reverse[np.clip(n - 1 - index, 0, None)]
    out[index >= n] = 0.0
    return out


def build_risk_sets(
    stop: np.ndarray,
    event: np.ndarray,
    weight: np.ndarray,
    stratum: np.ndarray,
    entry: np.ndarray | None,
) -> RiskSets:
    """Sort once by (stratum, exit) and index the death blocks and each subject's blocks."""
    n = stop.size
    # integer ranks make (stratum, time) composite keys exact
    all_times = stop if entry is None else np.concatenate((stop, entry))
    by_time = np.argsort(all_times)
    # R's aeqSurv on the sorted times: near-tied values take the value (and rank) of the smallest
    sorted_times = merge_near_ties_sorted(all_times[by_time])
    is_new = np.empty(sorted_times.size, dtype=bool)
    is_new[0] = True
    np.not_equal(sorted_times[1:], sorted_times[:-1], out=is_new[1:])
    uniq = sorted_times[is_new]
    inv = np.empty(all_times.size, dtype=np.int64)
    inv[by_time] = np.cumsum(is_new) - 1
    rank_stop = inv[:n].astype(np.int64)
    rank_entry = inv[n:].astype(np.int64) if entry is not None else None
    if rank_entry is not None and (rank_entry >= rank_stop).any():
        from allotrack.errors import InputError

        bad = np.flatnonzero(rank_entry >= rank_stop)
        raise InputError(
            "entry and exit times are equal once near-tied times are merged (R aeqSurv)",
            column="entry",
            rows=bad[:5].tolist(),
            n_bad=bad.size,
        )
    stop = uniq[rank_stop]
    width = np.int64(uniq.size + 1)
    key_stop = stratum.astype(np.int64) * width + rank_stop
    single = entry is None and (n == 0 or stratum.max() == 0)
    order = by_time if single else np.argsort(key_stop)
    ks = key_stop[order]
    st = stop[order]
    ev = event[order]
    wt = weight[order]
    sg = stratum[order]
    n_strata = int(stratum.max()) + 1 if n else 0
    stratum_end = np.searchsorted(sg, np.arange(n_strata), side="right")
    death_pos = np.flatnonzero(ev > 0)
    death_keys = ks[death_pos]
    is_new = np.concatenate(([True], death_keys[1:] != death_keys[:-1])) if death_pos.size else np.zeros(0, bool)
    block_of_death = np.cumsum(is_new) - 1
    bkeys = death_keys[is_new]
    block_first = np.searchsorted(ks, bkeys, side="left")
    block_stratum = sg[block_first]
    block_end = stratum_end[block_stratum]
    subject_block = np.full(n, -1, dtype=np.intp)
    subject_block[death_pos] = block_of_death
    block_hi = np.searchsorted(bkeys, ks, side="right") - 1
    if entry is None:
        lo_keys = sg.astype(np.int64) * width - 1
        entry_order = block_entry_first = block_entry_end = None
    else:
        assert rank_entry is not None
        key_entry = stratum.astype(np.int64) * width + rank_entry
        ke_sorted_pos = np.argsort(key_entry[order], kind="stable")
        ke = key_entry[order][ke_sorted_pos]
        entry_order = np.empty(n, dtype=np.intp)
        entry_order[ke_sorted_pos] = np.arange(n)
        block_entry_first = np.searchsorted(ke, bkeys, side="left")  # first entry >= t_k (ranks equal -> >=)
        esg = sg[ke_sorted_pos]
        estratum_end = np.searchsorted(esg, np.arange(n_strata), side="right")
        block_entry_end = estratum_end[block_stratum]
        lo_keys = key_entry[order]
    block_lo = np.searchsorted(bkeys, lo_keys, side="right") - 1
    return RiskSets(
        order=order,
        stop=st,
        event=ev,
        weight=wt,
        stratum=sg,
        block_time=st[block_first],
        block_stratum=block_stratum,
        block_first=block_first,
        block_end=block_end,
        death_block=block_of_death,
        death_pos=death_pos,
        entry_order=entry_order,
        block_entry_first=block_entry_first,
        block_entry_end=block_entry_end,
        block_hi=block_hi,
        block_lo=block_lo,
        subject_block=subject_block,
    )
