"""Convert clinical measurement values between units given as UCUM codes, vectorised over a column.

Clinical records arrive with units as the laboratory typed them ("µmol/L", "x10^9/L", "G/L", "IU/L", "mg/24h");
the study's data dictionary names the unit each item is stored in as a UCUM code (Unified Code for Units of
Measure: ``10*9/L``, ``umol/L``, ``[iU]/L``, ``mg/(24.h)``). Three functions:

- :func:`normalise_unit` turns what people type into a UCUM code by the documented rewrite rules below; text it
  cannot turn into a code it knows is returned unchanged, for :func:`convert` to reject.
- :func:`conversion_factor` gives the factor ``f`` with ``value_in_to = f * value_in_from``, or raises
  :class:`~allotrack.errors.InputError` with the rule that forbids the conversion.
- :func:`convert` converts a column: one factor per *distinct* unit (never a per-row call), then one gather and
  one multiplication in numpy.

Library choice
--------------
pint (>= 0.25; 0.26 needs Python >= 3.12, and this package supports 3.11) does the dimensional analysis and
holds the definitions of the base units (gram, litre, mole, hour, katal, enzyme unit, percent); a small parser
in this module reads the UCUM subset clinical laboratories use and hands pint only full pint unit names, never a
UCUM symbol for pint to interpret. ``ucumvert`` (0.3.2, the one UCUM parser for pint on PyPI) was tried and not
taken:

- it defines UCUM's arbitrary ``[iU]`` as the number 1, so ``[iU]/L`` silently converts to ``10*9/L`` (factor
  1e-9): exactly the mistake this module must refuse (UCUM: arbitrary units are not comparable to any other unit);
- ``PintUcumRegistry.from_ucum`` returns quantities of pint's *application* registry, not of the registry it is
  called on, and loads its definitions into that process-wide registry as a side effect;
- a code made only of an annotation (``{MFI}``) comes back as a lark token, not a quantity;
- its test suite checks that every UCUM atom parses, not that any conversion factor is right; it has one
  maintainer and ~100 commits, and it brings ``lark`` and a 1.1 s registry build.

The subset parsed here is small and fully tested: prefixes (``Y`` … ``y``, ``da``, ``u`` for micro), the factors
``10*N`` / ``10^N`` and positive integers (``24`` in ``mg/(24.h)``), integer exponents (``m2``, ``cm-2``), the
operators ``.`` and ``/`` (left-associative, equal precedence, a leading ``/`` for a reciprocal), parentheses,
curly-brace annotations, and the atoms ``g m L l s min h d wk a mol kat U [iU] [IU] m[Hg] %``. Magnitudes are
computed exactly (a pint registry with ``non_int_type=Fraction``) and rounded once to float64, so
``10*9/L -> /uL`` is exactly 1000 and ``pg/mL -> ng/L`` exactly 1. Not read, so rejected as unknown units:
``eq`` (``mEq/L`` ↔ ``mmol/L`` needs the ion's valence), units with an offset (``Cel``, ``[degF]``), ``[pH]``.

Rules beyond plain dimensional analysis
---------------------------------------
- Annotations ``{cells}`` are unity, as UCUM says: ``{cells}/uL`` is ``/uL``. A code made *only* of annotations
  (``{MFI}``, ``{index}``) is taken as an arbitrary unit that converts only to the identical code (UCUM would make
  every such code equal to 1, so ``{MFI}`` would convert to ``%``: meaningless).
- ``[iU]`` (international unit; ``[IU]`` is the same unit) is arbitrary: it converts to other ``[iU]`` units
  (``m[iU]/mL`` = ``[iU]/L``) and to nothing else, with one exception, the **clinical-laboratory convention
  for enzyme activities**: laboratories report enzyme activities in "IU/L" and "U/L" interchangeably (the IUB
  1961 international unit of enzyme activity *is* 1 µmol/min, UCUM's ``U``), so ``[iU]`` is read as ``U`` when
  the other unit is a catalytic activity (``U/L``, ``ukat/L``): ``[iU]/L -> U/L`` is 1. Hormone and vitamin IU
  (insulin, vitamin D) are not enzyme activities; they convert only to ``[iU]`` units, never to mass.
- ``U`` is UCUM's enzyme unit, 1 µmol/min: it converts to ``kat`` (``U/L -> ukat/L`` is 1/60).
- Mass and substance concentrations (``mg/dL`` ↔ ``umol/L``, and any pair differing by [mass]/[substance],
  e.g. ``mg/(24.h)`` ↔ ``mmol/(24.h)``) convert only given the substance's molar mass in g/mol.
- ``m[Hg]`` is 133.3220 kPa as UCUM defines it; ``a`` is the Julian year (365.25 d).

pint is imported lazily (a 0.4 s import plus a 0.35 s registry build), one registry per process, and factors
are cached with :func:`functools.lru_cache`.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import TYPE_CHECKING, Any, SupportsInt, cast

import numpy as np
import numpy.typing as npt

from allotrack.errors import InputError

if TYPE_CHECKING:
    import pint

__all__ = ["conversion_factor", "convert", "describe_unit", "normalise_unit"]


# --------------------------------------------------------------------------------------------------------------
# The UCUM subset
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Atom:
    key: str  # the canonical UCUM atom ("l" and "L" are both "L")
    pint_name: str  # the unit's full name in the registry of _registry()
    metric: bool  # UCUM allows a prefix


_ATOM_LIST = [
    _Atom("g", "gram", True),
    _Atom("m", "meter", True),
    _Atom("L", "liter", True),
    _Atom("s", "second", True),
    _Atom("mol", "mole", True),
    _Atom("kat", "katal", True),
    _Atom("U", "enzyme_unit", True),  # pint: micromole / minute, as UCUM
    _Atom("[iU]", "ucum_international_unit", True),  # arbitrary: its own dimension
    _Atom("m[Hg]", "ucum_meter_of_mercury", True),
    _Atom("min", "minute", False),
    _Atom("h", "hour", False),
    _Atom("d", "day", False),
    _Atom("wk", "week", False),
    _Atom("a", "ucum_julian_year", False),
    _Atom("%", "percent", False),
]
_ATOMS: dict[str, _Atom] = {a.key: a for a in _ATOM_LIST}
_ATOMS["l"] = _ATOMS["L"]
_ATOMS["[IU]"] = _ATOMS["[iU]"]

_PREFIXES: dict[str, int] = {
    "Y": 24, "Z": 21, "E": 18, "P": 15, "T": 12, "G": 9, "M": 6, "k": 3, "h": 2, "da": 1,
    "d": -1, "c": -2, "m": -3, "u": -6, "n": -9, "p": -12, "f": -15, "a": -18, "z": -21, "y": -24,
}  # fmt: skip

# Definitions added to pint's defaults. [international_unit] is a base dimension of its own, so nothing but
# another [iU] unit shares it.
_EXTRA_DEFINITIONS = (
    "ucum_international_unit = [international_unit]",
    "ucum_meter_of_mercury = 133.3220 * kilopascal",
    "ucum_julian_year = 365.25 * day",
)

_OPERATORS = "./(){}"


class _UcumSyntaxError(ValueError):
    """Text that is not a code of the UCUM subset this module reads (message: why)."""


@dataclass
class _Term:
    """A parsed UCUM term: an exact numeric factor times a product of atoms with integer exponents."""

    factor: Fraction = Fraction(1)
    atoms: dict[str, int] = field(default_factory=dict)
    has_unit: bool = False  # an atom or a numeric factor appears (not only annotations)
    has_annotation: bool = False

    def times(self, other: _Term, sign: int) -> _Term:
        atoms = dict(self.atoms)
        for key, exp in other.atoms.items():
            atoms[key] = atoms.get(key, 0) + sign * exp
        return _Term(
            self.factor * other.factor**sign,
            {k: e for k, e in atoms.items() if e},
            self.has_unit or other.has_unit,
            self.has_annotation or other.has_annotation,
        )


@dataclass(frozen=True)
class _Unit:
    """A parsed code, hashable: what _factor needs."""

    code: str
    factor: Fraction
    atoms: tuple[tuple[str, int], ...]
    arbitrary: bool  # only annotations: converts only to the identical code

    @property
    def uses_iu(self) -> bool:
        return any(key == "[iU]" for key, _ in self.atoms)


class _Parser:
    """Recursive descent over the UCUM grammar (subset): main = ['/'] term; term = component {('.'|'/') component};
    component = '(' term ')' | annotatable [annotation] | factor [annotation] | annotation."""

    def __init__(self, text: str) -> None:
        self.s = text
        self.i = 0

    def parse(self) -> _Term:
        if not self.s:
            raise _UcumSyntaxError("empty code")
        if self._peek() == "/":
            self.i += 1
            term = _Term().times(self._term(), -1)
        else:
            term = self._term()
        if self.i != len(self.s):
            raise _UcumSyntaxError(f"unexpected {self.s[self.i]!r} at position {self.i + 1}")
        return term

    def _peek(self) -> str:
        return self.s[self.i] if self.i < len(self.s) else ""

    def _term(self) -> _Term:
        term = self._component()
        while self._peek() in (".", "/"):
            sign = 1 if self.s[self.i] == "." else -1
            self.i += 1
            term = term.times(self._component(), sign)
        return term

    def _component(self) -> _Term:
        c = self._peek()
        if c == "(":
            self.i += 1
            term = self._term()
            if self._peek() != ")":
                raise _UcumSyntaxError(f"missing ')' at position {self.i + 1}")
            self.i += 1
            return self._annotation_after(term)
        if c == "{":
            self._annotation()
            return _Term(has_annotation=True)
        if c.isdigit():
            return self._annotation_after(self._factor())
        if not c or c in _OPERATORS or c in "+-":
            raise _UcumSyntaxError(f"a unit is missing at position {self.i + 1}")
        symbol = self._symbol()
        exponent = self._exponent(default=1)
        return self._annotation_after(_atom_term(symbol, exponent))

    def _factor(self) -> _Term:
        start = self.i
        while self._peek().isdigit():
            self.i += 1
        digits = self.s[start : self.i]
        if digits == "10" and self._peek() in ("*", "^"):
            self.i += 1  # the UCUM atoms 10* and 10^: a power of ten, the exponent follows
            return _Term(Fraction(10) ** self._exponent(default=1), has_unit=True)
        if int(digits) == 0:
            raise _UcumSyntaxError("a factor of 0")
        return _Term(Fraction(int(digits)), has_unit=True)

    def _exponent(self, default: int) -> int:
        start = self.i
        if self._peek() in ("+", "-"):
            self.i += 1
        while self._peek().isdigit():
            self.i += 1
        text = self.s[start : self.i]
        if not text:
            return default
        if text in ("+", "-"):
            raise _UcumSyntaxError(f"a sign without an exponent at position {start + 1}")
        return int(text)

    def _symbol(self) -> str:
        start = self.i
        while self.i < len(self.s):
            c = self.s[self.i]
            if c == "[":
                end = self.s.find("]", self.i)
                if end < 0:
                    raise _UcumSyntaxError(f"missing ']' after position {self.i + 1}")
                self.i = end + 1
            elif c in _OPERATORS or c in "+-" or c.isdigit() or c.isspace():
                break
            else:
                self.i += 1
        return self.s[start : self.i]

    def _annotation(self) -> None:
        end = self.s.find("}", self.i)
        if end < 0 or "{" in self.s[self.i + 1 : end]:
            raise _UcumSyntaxError(f"unclosed annotation at position {self.i + 1}")
        self.i = end + 1

    def _annotation_after(self, term: _Term) -> _Term:
        if self._peek() == "{":
            self._annotation()
            term.has_annotation = True
        return term


def _atom_term(symbol: str, exponent: int) -> _Term:
    """A unit symbol with its exponent: an atom, or a prefix and a metric atom."""
    atom = _ATOMS.get(symbol)
    prefix_exp = 0
    if atom is None:
        for prefix in ("da", symbol[:1]):
            rest = symbol[len(prefix) :]
            if symbol.startswith(prefix) and prefix in _PREFIXES and rest in _ATOMS and _ATOMS[rest].metric:
                atom, prefix_exp = _ATOMS[rest], _PREFIXES[prefix]
                break
    if atom is None:
        raise _UcumSyntaxError(f"{symbol!r} is not a UCUM unit this module knows")
    if exponent == 0:
        raise _UcumSyntaxError(f"exponent 0 on {symbol!r}")
    return _Term(Fraction(10) ** (prefix_exp * exponent), {atom.key: exponent}, has_unit=True)


@functools.lru_cache(maxsize=4096)
def _parse(code: str) -> _Unit:
    """Parse a UCUM code (exact text, no synonyms); _UcumSyntaxError if it is not one of the subset."""
    term = _Parser(code).parse()
    return _Unit(
        code=code,
        factor=term.factor,
        atoms=tuple(sorted(term.atoms.items())),
        arbitrary=not term.has_unit and term.has_annotation,
    )


# --------------------------------------------------------------------------------------------------------------
# normalise_unit: what people type -> UCUM
# --------------------------------------------------------------------------------------------------------------

_SUPERSCRIPTS = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹⁻⁺", "0123456789-+")

# Whole-text synonyms, looked up after the character rules (spaces removed, µ/μ -> u, superscripts, powers of ten
# written 10*N). The shorthand letters are the haematology analysers' (G/L = giga per litre, K/µL = thousands per
# microlitre, M/µL = millions per microlitre).
UNIT_SYNONYMS: dict[str, str] = {
    "G/L": "10*9/L",
    "G/l": "10*9/L",
    "T/L": "10*12/L",
    "T/l": "10*12/L",
    "K/uL": "10*3/uL",
    "k/uL": "10*3/uL",
    "K/ul": "10*3/uL",
    "k/ul": "10*3/uL",
    "K/mm3": "10*3/uL",
    "M/uL": "10*6/uL",
    "M/ul": "10*6/uL",
    "percent": "%",
    "pct": "%",
    "mmHg": "mm[Hg]",
}

# Token rewrites (a token is what lies between the operators / . ( ) ), in this order:
_TOKEN_RULES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^cells?$", re.IGNORECASE), ""),  # "cells/uL" -> "/uL": a count of cells is unity in UCUM
    (re.compile(r"^(10\*[+-]?\d+)cells?$", re.IGNORECASE), r"\1"),  # "10^9cells/L" -> "10*9/L"
    (re.compile(r"^mm3$|^cmm$"), "uL"),  # 1 mm³ = 1 µL exactly; the dictionary's code is /uL
    (re.compile(r"^mc(g|mol|L|l|kat)$"), r"u\1"),  # mcg -> ug, mcmol -> umol
    (re.compile(r"^(da|[YZEPTGMkhdcmunpfazy])?l(-?\d*)$"), r"\1L\2"),  # l -> L: dl -> dL, ml -> mL, l -> L
    (re.compile(r"^([YZEPTGMkhdcmunpfazy]?)(?:IU|iu|\[IU\]|\[iu\]|iU)$"), r"\1[iU]"),  # IU -> [iU], mIU -> m[iU]
    (re.compile(r"^(\d+)(?:h|hr|hrs|hour|hours)$"), r"(\1.h)"),  # mg/24h -> mg/(24.h)
    (re.compile(r"^(?:hr|hrs|hour|hours)$"), "h"),
    (re.compile(r"^(?:day|days)$"), "d"),
]


def normalise_unit(text: str) -> str:
    """The UCUM code for a unit as people type it; text it cannot read is returned unchanged.

    The rules, in order (annotations ``{...}`` are left untouched throughout):

    1. Spaces are removed; ``µ`` (micro sign) and ``μ`` (Greek mu) become ``u``; superscript digits become
       digits (``10⁹`` -> ``10^9``, ``mm³`` -> ``mm3``).
    2. Powers of ten: a leading ``x``, ``X``, ``×`` or ``*`` before ``10`` is dropped, and ``10^N``, ``10**N``,
       ``10EN``, ``10eN`` become UCUM's ``10*N`` (``x10^9/L``, ``10^9/l``, ``10E9/L`` -> ``10*9/L``). A unit
       exponent written ``^N`` loses its caret (``mm^3`` -> ``mm3``).
    3. Whole-text synonyms, :data:`UNIT_SYNONYMS`: ``G/L`` -> ``10*9/L``, ``T/L`` -> ``10*12/L``, ``K/µL`` ->
       ``10*3/uL``, ``M/µL`` -> ``10*6/uL``, ``percent`` -> ``%``, ``mmHg`` -> ``mm[Hg]``.
    4. Token rules, each token between the operators ``/ . ( )``: ``cells`` is dropped (``cells/µL`` -> ``/uL``,
       ``10^9 cells/L`` -> ``10*9/L``); ``mm3`` and ``cmm`` -> ``uL`` (``/mm3`` -> ``/uL``, exact); ``mc`` as a
       prefix -> ``u`` (``mcg`` -> ``ug``); litre ``l`` -> ``L`` with any prefix (``mg/dl`` -> ``mg/dL``);
       ``IU`` -> ``[iU]`` with any prefix (``IU/L`` -> ``[iU]/L``, ``mIU/mL`` -> ``m[iU]/mL``); ``24h``/``24hr``
       -> ``(24.h)`` (``mg/24h`` -> ``mg/(24.h)``); ``hr`` -> ``h``; ``day`` -> ``d``.
    5. The result is returned if it is a UCUM code this module reads; otherwise ``text`` itself, unchanged.
    """
    if not isinstance(text, str):
        return text
    s = "".join(text.split()).replace("\u00b5", "u").replace("\u03bc", "u")
    s = re.sub(r"10([⁰¹²³⁴⁵⁶⁷⁸⁹⁻⁺]+)", lambda m: "10^" + m.group(1), s).translate(_SUPERSCRIPTS)
    annotations: list[str] = []

    def _hide(m: re.Match[str]) -> str:
        annotations.append(m.group(0))
        return f"\x00{len(annotations) - 1}\x00"

    s = re.sub(r"\{[^{}]*\}", _hide, s)
    s = re.sub(r"^[xX×*]+(?=10)", "", s)
    s = re.sub(r"(?:(?<=^)|(?<=[/.(]))[xX×](?=10)", "", s)
    s = re.sub(r"(?<![0-9])10(?:\^|\*\*|\*|E|e)([+-]?\d+)", r"10*\1", s)
    s = re.sub(r"([A-Za-z\]])\^([+-]?\d+)", r"\1\2", s)
    s = UNIT_SYNONYMS.get(s, s)
    parts = re.split(r"([/.()])", s)
    for n, part in enumerate(parts):
        if part in ("", "/", ".", "(", ")") or "\x00" in part:
            continue
        for pattern, replacement in _TOKEN_RULES:
            new = pattern.sub(replacement, part)
            if new != part:
                parts[n] = new
                break
    s = "".join(parts)
    s = re.sub(r"\x00(\d+)\x00", lambda m: annotations[int(m.group(1))], s)
    s = UNIT_SYNONYMS.get(s, s)
    try:
        _parse(s)
    except _UcumSyntaxError:
        return text
    return s


# --------------------------------------------------------------------------------------------------------------
# Factors
# --------------------------------------------------------------------------------------------------------------


@functools.cache
def _registry() -> pint.UnitRegistry:
    """The one pint registry of this process (exact magnitudes: Fraction)."""
    import pint

    ureg: pint.UnitRegistry = pint.UnitRegistry(non_int_type=Fraction)
    for definition in _EXTRA_DEFINITIONS:
        ureg.define(definition)
    return ureg


def _quantity(unit: _Unit, iu_as_enzyme_unit: bool = False) -> pint.Quantity:
    ureg = _registry()
    q = ureg.Quantity(unit.factor, "dimensionless")
    for key, exp in unit.atoms:
        name = _ATOMS[key].pint_name
        if iu_as_enzyme_unit and key == "[iU]":
            name = "enzyme_unit"
        q = q * ureg.Quantity(Fraction(1), name) ** exp
    return q


def _dims(q: pint.Quantity) -> frozenset[tuple[str, int]]:
    return frozenset((str(k), int(cast("SupportsInt", v))) for k, v in dict(q.dimensionality).items() if v)


def _d(**exps: int) -> frozenset[tuple[str, int]]:
    return frozenset((f"[{k}]", v) for k, v in exps.items())


_KINDS: dict[frozenset[tuple[str, int]], str] = {
    _d(): "dimensionless quantity (a ratio or fraction)",
    _d(mass=1, length=-3): "mass concentration",
    _d(substance=1, length=-3): "substance concentration",
    _d(length=-3): "number concentration",
    _d(substance=1, time=-1, length=-3): "catalytic concentration (enzyme activity)",
    _d(international_unit=1, length=-3): "concentration in international units (arbitrary)",
    _d(international_unit=1): "amount in international units (arbitrary)",
    _d(international_unit=1, mass=-1): "international units per mass (arbitrary)",
    _d(mass=1): "mass",
    _d(substance=1): "amount of substance",
    _d(length=3): "volume",
    _d(length=1): "length",
    _d(length=2): "area",
    _d(time=1): "time",
    _d(time=-1): "rate",
    _d(mass=-1): "number per mass",
    _d(mass=1, time=-1): "mass rate",
    _d(substance=1, time=-1): "substance rate (catalytic activity)",
    _d(length=3, time=-1): "volume rate",
    _d(mass=1, length=-2): "mass per area",
    _d(substance=1, mass=-1): "substance content",
    _d(mass=1, length=-1, time=-2): "pressure",
}

_MASS_PER_SUBSTANCE = _d(mass=1, substance=-1)
_SUBSTANCE_PER_MASS = _d(mass=-1, substance=1)


def _kind(unit: _Unit) -> str:
    if unit.arbitrary:
        return "arbitrary unit"
    dims = _dims(_quantity(unit))
    if dims in _KINDS:
        return _KINDS[dims]
    shown = " ".join(f"{k}^{v}" if v != 1 else k for k, v in sorted(dims))
    return f"quantity of dimension {shown}"


def describe_unit(code: str) -> str:
    """What a unit measures, in words ("mass concentration", "number concentration", "arbitrary unit", ...)."""
    return _kind(_unit_or_raise(normalise_unit(code), code))


def _unit_or_raise(code: str, shown: str) -> _Unit:
    try:
        return _parse(code)
    except _UcumSyntaxError as exc:
        raise InputError(f"unknown unit {shown!r}: {exc}") from None


def _article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"


@functools.lru_cache(maxsize=4096)
def _factor(from_code: str, to_code: str, molar_mass: float | None) -> float:
    """conversion_factor for normalised codes; the one place pint is asked."""
    a = _unit_or_raise(from_code, from_code)
    b = _unit_or_raise(to_code, to_code)
    if a.arbitrary or b.arbitrary:
        if a.code == b.code:
            return 1.0
        if a.arbitrary and b.arbitrary:
            why = "different arbitrary units, each converts only to itself"
        else:
            why = f"{a.code if a.arbitrary else b.code} is an arbitrary unit, which converts only to itself"
        raise InputError(f"cannot convert {a.code} to {b.code}: {why}")
    qa, qb = _quantity(a), _quantity(b)
    ratio = qa / qb
    dims = _dims(ratio)
    if dims and a.uses_iu != b.uses_iu:
        # clinical-laboratory convention: IU of enzyme activity == U (see the module docstring)
        alt = (_quantity(a, True) / qb) if a.uses_iu else (qa / _quantity(b, True))
        if not _dims(alt):
            ratio, dims = alt, frozenset()
    if dims in (_MASS_PER_SUBSTANCE, _SUBSTANCE_PER_MASS):
        if molar_mass is None:
            raise InputError(
                f"cannot convert {a.code} to {b.code} without the substance's molar mass (g/mol): {a.code} is "
                f"{_article(_kind(a))} {_kind(a)} and {b.code} {_article(_kind(b))} {_kind(b)}"
            )
        m = _registry().Quantity(Fraction(molar_mass), "gram / mole")
        ratio = ratio / m if dims == _MASS_PER_SUBSTANCE else ratio * m
        dims = _dims(ratio)
    if dims:
        ka, kb = _kind(a), _kind(b)
        raise InputError(f"{a.code} is {_article(ka)} {ka} and {b.code} {_article(kb)} {kb}: not convertible")
    return float(Fraction(ratio.to("dimensionless").magnitude))


def _check_molar_mass(molar_mass: float | None) -> float | None:
    if molar_mass is None:
        return None
    try:
        value = float(molar_mass)
    except (TypeError, ValueError):
        raise InputError(f"molar mass must be a positive number of g/mol, got {molar_mass!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise InputError(f"molar mass must be a positive number of g/mol, got {molar_mass!r}")
    return value


def conversion_factor(from_unit: str, to_unit: str, molar_mass: float | None = None) -> float:
    """The factor ``f`` with ``value_in_to_unit = f * value_in_from_unit``.

    Both units are UCUM codes or any spelling :func:`normalise_unit` reads. ``molar_mass`` (g/mol) is needed,
    and used, only between mass and substance units (``mg/dL`` ↔ ``umol/L``). Raises
    :class:`~allotrack.errors.InputError` naming the rule when the conversion is impossible: an unknown unit
    ("unknown unit 'foo'"), different kinds ("g/L is a mass concentration and 10*9/L a number concentration: not
    convertible"), a missing molar mass ("cannot convert mg/dL to umol/L without the substance's molar mass"),
    or an arbitrary unit (``{MFI}``) to anything but itself.
    """
    return _factor(normalise_unit(from_unit), normalise_unit(to_unit), _check_molar_mass(molar_mass))


# --------------------------------------------------------------------------------------------------------------
# convert: a column
# --------------------------------------------------------------------------------------------------------------


def _as_float_array(values: Any) -> npt.NDArray[np.float64]:
    to_numpy: Callable[..., Any] | None = getattr(values, "to_numpy", None)
    if to_numpy is not None:  # pandas, nullable dtypes included (pd.NA -> NaN)
        return np.asarray(to_numpy(dtype=np.float64, na_value=np.nan), dtype=np.float64)
    try:
        return np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"values must be numbers: {exc}") from None


def _factorize(units: Any) -> tuple[npt.NDArray[np.intp], list[Any]]:
    """Integer codes (-1 for a missing unit) and the distinct units, hash-based: one pass over the rows."""
    import pandas as pd

    if isinstance(units, (pd.Series, pd.Index)) and isinstance(units.dtype, pd.CategoricalDtype):
        units = units.array
    if isinstance(units, pd.Categorical):
        return np.asarray(units.codes, dtype=np.intp), list(units.categories)
    if not isinstance(units, (pd.Series, pd.Index, pd.api.extensions.ExtensionArray)):
        units = np.asarray(units, dtype=object)
        if units.ndim != 1:
            raise InputError(f"per-row units must be one-dimensional, got shape {units.shape}")
    codes, uniques = pd.factorize(units, use_na_sentinel=True)
    return np.asarray(codes, dtype=np.intp), list(uniques)


def convert(
    values: npt.ArrayLike,
    from_units: str | Sequence[str | None] | npt.ArrayLike,
    to_unit: str,
    molar_mass: float | None = None,
) -> npt.NDArray[np.float64]:
    """``values`` (a column) in ``to_unit``, as float64.

    ``from_units`` is one unit for every row or one unit per row (a list, numpy array, pandas Series or
    Categorical the length of ``values``). Units are UCUM codes or any spelling :func:`normalise_unit` reads.
    One factor is computed per distinct unit (:func:`conversion_factor`), then applied by a numpy gather, so
    the cost per row is that of hashing its unit. Missing values stay NaN; a row with a missing unit is NaN if
    its value is missing too. Rows whose unit is unknown or not convertible to ``to_unit`` (a missing unit
    under a value among them) raise :class:`~allotrack.errors.InputError` listing each offending unit, how many
    rows carry it and why, with the positions of the first such rows.
    """
    vals = _as_float_array(values)
    target = normalise_unit(to_unit)
    _unit_or_raise(target, to_unit)
    molar_mass = _check_molar_mass(molar_mass)
    if isinstance(from_units, str):
        return vals * conversion_factor(from_units, target, molar_mass)

    codes, uniques = _factorize(from_units)
    if vals.ndim != 1 or len(codes) != len(vals):
        raise InputError(
            f"values and units differ in length: {vals.size} values (shape {vals.shape}), {len(codes)} units"
        )
    counts_all = np.bincount(codes + 1, minlength=len(uniques) + 1)  # slot 0: rows without a unit
    counts = counts_all[1:]
    factors = np.full(len(uniques) + 1, np.nan)  # the last slot serves code -1 (no unit): NaN
    bad: list[tuple[int, str, str]] = []  # (code, unit as shown, why)
    for k, unit in enumerate(uniques):
        if counts[k] == 0:  # an unused category
            continue
        if not isinstance(unit, str):
            bad.append((k, repr(unit), "a unit must be text"))
            continue
        try:
            factors[k] = conversion_factor(unit, target, molar_mass)
        except InputError as exc:
            bad.append((k, repr(unit), exc.rule))
    missing_with_value = (codes < 0) & ~np.isnan(vals) if counts_all[0] else np.zeros(len(codes), dtype=bool)
    n_missing = int(np.count_nonzero(missing_with_value))
    if bad or n_missing:
        bad_rows = np.isin(codes, [k for k, _, _ in bad]) | missing_with_value
        parts = [f"{shown} in {int(counts[k])} row{'s' if counts[k] != 1 else ''} ({why})" for k, shown, why in bad]
        if n_missing:
            parts.append(f"no unit in {n_missing} row{'s' if n_missing != 1 else ''} with a value")
        rows = np.flatnonzero(bad_rows)
        shown_units = [uniques[c] if c >= 0 else None for c in codes[rows[:5]]]
        raise InputError(
            f"units not convertible to {target}: " + "; ".join(parts),
            rows=rows[:5].tolist(),
            values=shown_units,
            n_bad=len(rows),
        )
    return vals * factors[codes]
