"""REDCap branching logic (a data-dictionary item's ``condition``) parsed into a small expression tree and evaluated
against one patient's values, without ``eval``.

Supported, as REDCap writes it: ``[item] op value`` with ``op`` one of ``=``, ``<>``, ``!=``, ``>``, ``>=``, ``<``,
``<=`` and ``value`` a quoted text (``'1'`` or ``"1"``) or a number; ``and`` / ``or`` (any case); parentheses.
``[item] = ''`` is true when the item has no value, ``[item] <> ''`` when it has one. Comparisons are numeric when
both sides are numbers (``'1'`` = 1.0), else between texts; a comparison with a missing value other than ``''`` is
false, as REDCap hides a field whose logic refers to an empty one. Anything else (events ``[event][item]``,
checkbox codes ``[item(2)]``, functions such as ``datediff``) raises :class:`UnsupportedLogic`, and the caller says
the condition was not checked.

Reference: REDCap Help & FAQ, "Branching Logic" (syntax of field references, operators and ``and``/``or``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

_TOKEN = re.compile(r"""\s*(?:(?P<field>\[[a-z][a-z0-9_]*\])|(?P<op><>|!=|>=|<=|=|>|<)|(?P<text>'[^']*'|"[^"]*")|"""
                    r"""(?P<number>-?\d+(?:\.\d+)?)|(?P<word>and|or)\b|(?P<paren>[()]))""", re.IGNORECASE)  # fmt: skip


class UnsupportedLogic(ValueError):
    """Branching logic outside the supported subset (see the module documentation)."""


@dataclass(frozen=True)
class Comparison:
    item: str
    op: str
    value: str | float


@dataclass(frozen=True)
class Either:
    """``left or right`` (``any``) / ``left and right`` (``all``)."""

    how: str
    parts: tuple[Any, ...]


Values = Mapping[str, Any]  # item code -> the patient's value (None when missing)


@cache
def parse(logic: str) -> Comparison | Either:
    """The expression tree of ``logic``; :class:`UnsupportedLogic` if it is outside the subset."""
    tokens = _tokens(logic)
    tree, rest = _or(tokens)
    if rest:
        raise UnsupportedLogic(f"unexpected {rest[0][1]!r} in {logic!r}")
    return tree


def items_of(tree: Comparison | Either) -> set[str]:
    """The items an expression refers to."""
    if isinstance(tree, Comparison):
        return {tree.item}
    return set().union(*(items_of(p) for p in tree.parts))


def holds(tree: Comparison | Either, values: Values) -> bool:
    """Whether the expression is true for one patient's ``values``."""
    if isinstance(tree, Either):
        test: Callable[[Any], bool] = any if tree.how == "or" else all
        return test(holds(p, values) for p in tree.parts)
    given = values.get(tree.item)
    missing = given is None or given == "" or (isinstance(given, float) and given != given)
    if tree.value == "":
        return missing if tree.op == "=" else (not missing if tree.op in ("<>", "!=") else False)
    if missing:
        return False
    left, right = _comparable(given, tree.value)
    return {"=": left == right, "<>": left != right, "!=": left != right, ">": left > right, ">=": left >= right,
            "<": left < right, "<=": left <= right}[tree.op]  # fmt: skip


def _comparable(given: Any, wanted: str | float) -> tuple[Any, Any]:
    try:
        return float(given), float(wanted)
    except (TypeError, ValueError):
        return str(given), str(wanted)


def _tokens(logic: str) -> list[tuple[str, str]]:
    out, position = [], 0
    text = logic.strip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise UnsupportedLogic(f"cannot read {text[position:position + 20]!r} in {logic!r}")
        kind = match.lastgroup
        assert kind is not None
        out.append((kind, match.group(kind)))
        position = match.end()
        while position < len(text) and text[position].isspace():
            position += 1
    return out


def _or(tokens: list[tuple[str, str]]) -> tuple[Any, list[tuple[str, str]]]:
    return _joined(tokens, "or", _and)


def _and(tokens: list[tuple[str, str]]) -> tuple[Any, list[tuple[str, str]]]:
    return _joined(tokens, "and", _term)


def _joined(tokens: list[tuple[str, str]], word: str, inner: Callable[[Any], Any]) -> tuple[Any, list[Any]]:
    first, rest = inner(tokens)
    parts = [first]
    while rest and rest[0][0] == "word" and rest[0][1].lower() == word:
        nxt, rest = inner(rest[1:])
        parts.append(nxt)
    return (parts[0] if len(parts) == 1 else Either(word, tuple(parts))), rest


def _term(tokens: list[tuple[str, str]]) -> tuple[Any, list[tuple[str, str]]]:
    if not tokens:
        raise UnsupportedLogic("the logic ends too early")
    if tokens[0] == ("paren", "("):
        tree, rest = _or(tokens[1:])
        if not rest or rest[0] != ("paren", ")"):
            raise UnsupportedLogic("a parenthesis is not closed")
        return tree, rest[1:]
    if len(tokens) < 3 or tokens[0][0] != "field" or tokens[1][0] != "op" or tokens[2][0] not in ("text", "number"):
        raise UnsupportedLogic("expected [item] operator value")
    value: str | float = tokens[2][1][1:-1] if tokens[2][0] == "text" else float(tokens[2][1])
    return Comparison(tokens[0][1][1:-1].lower(), tokens[1][1], value), tokens[3:]
