"""HLA typing and donor–recipient mismatch counting (``reference/clinical-definitions.md`` §7).

Typings follow WHO nomenclature: allele level ``A*02:01`` (fields beyond the second are ignored for matching),
antigen level ``A2`` or ``A*02``. Ambiguity strings (``A*02:01/02:02``) and NMDP allele codes (``A*02:AB``)
are rejected: they cannot be matched at allele level without resolving them first.

Directions: GvH counts recipient alleles absent in the donor (seen by donor T cells), HvG donor alleles absent
in the recipient (rejection); bidirectional = max(GvH, HvG) per locus. A homozygous typing (one allele given,
or the same allele twice) counts a mismatch twice by default (``homozygous="twice"``), as immunogenetr's
``HLA_match_summary_HCT``; ``"once"`` counts it once.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from allotrack.clinical import _check
from allotrack.errors import InputError

LOCI = ("A", "B", "C", "DRB1", "DQB1", "DPB1")
GRADES = {("A", "B", "DRB1"): 6, ("A", "B", "C", "DRB1"): 8, ("A", "B", "C", "DRB1", "DQB1"): 10,
          ("A", "B", "C", "DRB1", "DQB1", "DPB1"): 12}  # fmt: skip
_ALLELE = re.compile(r"^(?:HLA-)?(A|B|C|DRB1|DQB1|DPB1)\*(\d{2,3})(?::(\d{2,4}))?(?::\d{2,4}){0,2}[NLSQ]?$")
_ANTIGEN = re.compile(r"^(?:HLA-)?(A|B|Cw|C|DR|DQ|DP|DRB1|DQB1|DPB1)(\d{1,3})$")
_ANTIGEN_LOCUS = {"A": "A", "B": "B", "C": "C", "Cw": "C", "DR": "DRB1", "DRB1": "DRB1", "DQ": "DQB1",
                  "DQB1": "DQB1", "DP": "DPB1", "DPB1": "DPB1"}  # fmt: skip


@dataclass(frozen=True)
class HlaAllele:
    locus: str
    group: str  # first field (allele group / antigen)
    protein: str | None  # second field, None at antigen level

    def key(self, allele_level: bool) -> tuple[str, str | None]:
        return (self.group, self.protein if allele_level else None)

    def __str__(self) -> str:
        return f"{self.locus}*{self.group}" + (f":{self.protein}" if self.protein else "")


def parse_hla(typing: str) -> HlaAllele:
    """Parse one typing string; raise InputError for ambiguity strings, NMDP codes or unknown loci."""
    if not isinstance(typing, str) or not typing.strip():
        raise InputError(f"an HLA typing must be a non-empty string, got {typing!r}", column="hla")
    text = typing.strip()
    if "/" in text:
        raise InputError(f"ambiguous HLA typing {text!r}: resolve the ambiguity string first", column="hla")
    m = _ALLELE.match(text)
    if m:
        return HlaAllele(m.group(1), m.group(2).zfill(2), m.group(3))
    if re.match(r"^(?:HLA-)?[A-Z0-9]+\*\d{2,3}:[A-Z]{2,}", text):
        raise InputError(f"NMDP allele code in {text!r}: expand it to alleles first", column="hla")
    m = _ANTIGEN.match(text)
    if m:
        return HlaAllele(_ANTIGEN_LOCUS[m.group(1)], m.group(2).zfill(2), None)
    raise InputError(f"unrecognised HLA typing {text!r} (expected e.g. A*02:01 or A2)", column="hla")


@dataclass(frozen=True)
class HlaMismatch:
    """Mismatch counts per locus and in total, by direction, with the match grade (e.g. 6/8)."""

    loci: tuple[str, ...]
    gvh: Mapping[str, int]
    hvg: Mapping[str, int]
    bidirectional: Mapping[str, int]
    total_gvh: int
    total_hvg: int
    total_bidirectional: int
    matched: int
    out_of: int
    resolution: Mapping[str, str]
    rule: str

    @property
    def grade(self) -> str:
        return f"{self.matched}/{self.out_of}"


def _alleles(side: str, locus: str, typing: Sequence[str] | str) -> list[HlaAllele]:
    items = [typing] if isinstance(typing, str) else list(typing)
    if not 1 <= len(items) <= 2:
        raise InputError(f"{side} {locus} needs one or two typings, got {len(items)}", column=f"{side}_{locus}")
    alleles = [parse_hla(t) for t in items]
    for a in alleles:
        if a.locus != locus:
            raise InputError(f"{side} typing {a} is given under locus {locus}", column=f"{side}_{locus}")
    return alleles * 2 if len(alleles) == 1 else alleles


def hla_mismatches(
    recipient: Mapping[str, Sequence[str] | str],
    donor: Mapping[str, Sequence[str] | str],
    loci: Sequence[str] = ("A", "B", "C", "DRB1"),
    homozygous: str = "twice",
) -> HlaMismatch:
    """Count HLA mismatches per locus in the GvH, HvG and bidirectional directions.

    Alleles are compared at allele level (2 fields) when both sides are typed at allele level at that locus,
    otherwise at antigen level (first field). ``loci`` A, B, DRB1 give x/6; adding C x/8, DQB1 x/10, DPB1 x/12.
    """
    homozygous = _check.choice("homozygous", homozygous, ("twice", "once"))
    for locus in loci:
        if locus not in LOCI:
            raise InputError(f"unknown locus {locus!r}; loci are {LOCI}", column="loci")
        for side, typing in (("recipient", recipient), ("donor", donor)):
            if locus not in typing:
                raise InputError(f"{side} has no typing at locus {locus}", column=f"{side}_{locus}")
    gvh, hvg, bi, res = {}, {}, {}, {}
    for locus in loci:
        r = _alleles("recipient", locus, recipient[locus])
        d = _alleles("donor", locus, donor[locus])
        allele_level = all(a.protein is not None for a in r + d)
        res[locus] = "allele" if allele_level else "antigen"
        rk = [a.key(allele_level) for a in r]
        dk = [a.key(allele_level) for a in d]
        g = sum(1 for k in rk if k not in set(dk))  # recipient alleles the donor lacks
        h = sum(1 for k in dk if k not in set(rk))  # donor alleles the recipient lacks
        if homozygous == "once":
            g = min(g, 1) if len(set(rk)) == 1 else g
            h = min(h, 1) if len(set(dk)) == 1 else h
        gvh[locus], hvg[locus], bi[locus] = g, h, max(g, h)
    out_of = 2 * len(loci)
    total_bi = sum(bi.values())
    return HlaMismatch(
        loci=tuple(loci), gvh=gvh, hvg=hvg, bidirectional=bi, total_gvh=sum(gvh.values()),
        total_hvg=sum(hvg.values()), total_bidirectional=total_bi, matched=out_of - total_bi, out_of=out_of,
        resolution=res, rule=f"homozygous mismatches counted {homozygous}; bidirectional = max(GvH, HvG) per locus",
    )  # fmt: skip


@dataclass(frozen=True)
class DsaStatus:
    status: str  # negative, positive, strong
    mfi: float
    rule: str


def dsa_status(mfi: float, positive: float = 1000.0, strong: float = 5000.0) -> DsaStatus:
    """Donor-specific antibody classification from the MFI with laboratory thresholds (defaults 1,000 / 5,000,
    the commonly used EBMT figures; set them to your laboratory's)."""
    value = _check.number("mfi", mfi, 0, 50000)
    if not 0 < positive < strong:
        raise InputError(f"thresholds must satisfy 0 < positive < strong, got {positive} and {strong}")
    status = "strong" if value >= strong else "positive" if value >= positive else "negative"
    return DsaStatus(status, value, f"MFI ≥ {positive:g} positive, ≥ {strong:g} strong")
