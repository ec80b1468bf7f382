"""The baseline-characteristics table ("Table 1") with gtsummary's rules (``tbl_summary() |> add_p()``).

Computation (counts, quantiles, tests) is kept in :attr:`TableOne.stats`; presentation (text, footnotes) is
derived from it, so the numbers can be checked and re-used without parsing strings.

Rules, as gtsummary 2.x applies them by default:

* Categorical variables: a label row, then one row per level with ``n (%)``; the percentage's denominator is the
  group's non-missing count, formatted by ``style_percent``. Two-level yes/no variables (booleans, 0/1) are
  *dichotomous*: one row with the count of "yes".
* Continuous variables: ``median (Q1, Q3)`` with R ``quantile(type = 2)``, or ``mean (SD)`` for variables declared
  normal; integers are shown without decimals, other values with one (gtsummary guesses digits from the data;
  this fixed rule is documented, not guessed).
* Missing values: an "Unknown" row with the count, never silently dropped into a category.
* Tests (:mod:`allotrack.stats.contingency`): chi-square without correction when every expected count is ≥ 5,
  else Fisher's exact test; Wilcoxon rank-sum / Kruskal–Wallis; Welch t-test / ANOVA for normal variables. p-values
  are formatted by ``style_pvalue``; a footnote names each test used.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from html import escape

import numpy as np
import pandas as pd

from allotrack.errors import InputError
from allotrack.report.format import format_percent, format_pvalue, round5
from allotrack.stats.contingency import GroupTest, categorical_test, continuous_test

CATEGORICAL_STAT = "n (%)"
MEDIAN_STAT = "Median (Q1, Q3)"
MEAN_STAT = "Mean (SD)"


@dataclass(frozen=True)
class TableOne:
    """A baseline table: ``stats`` (numbers, one row per table row), ``table`` (text), ``footnotes``."""

    stats: pd.DataFrame
    table: pd.DataFrame
    footnotes: tuple[str, ...]
    tests: Mapping[str, GroupTest] = field(default_factory=dict)

    def to_frame(self) -> pd.DataFrame:
        return self.table.copy()

    def to_html(self, caption: str | None = None) -> str:
        """An HTML table (label rows bold, levels indented, footnote markers as superscripts)."""
        head = "".join(f"<th>{escape(str(c))}</th>" for c in self.table.columns)
        body = []
        for (_, row), kind in zip(self.table.iterrows(), self.stats["row_type"], strict=True):
            cells = []
            for i, value in enumerate(row):
                text = escape(str(value)) if value is not None and value == value else ""
                if i == 0:
                    cls = "label" if kind == "label" else "level"
                    cells.append(f'<td class="{cls}">{text}</td>')
                else:
                    cells.append(f"<td>{text}</td>")
            body.append("<tr>" + "".join(cells) + "</tr>")
        cap = f"<caption>{escape(caption)}</caption>" if caption else ""
        notes = "".join(f"<li>{escape(n)}</li>" for n in self.footnotes)
        return (f'<table class="table-one">{cap}<thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'
                f'<ol class="footnotes">{notes}</ol>')  # fmt: skip

    def __repr__(self) -> str:
        return f"TableOne({len(self.tests)} variables, {len(self.table)} rows)\n{self.table.to_string(index=False)}"


def _is_dichotomous(values: pd.Series) -> bool:
    present = values.dropna()
    return bool(pd.api.types.is_bool_dtype(values)) or (
        pd.api.types.is_numeric_dtype(values) and set(present.unique()) <= {0, 1} and len(present) > 0
    )


def _is_continuous(values: pd.Series) -> bool:
    return (pd.api.types.is_numeric_dtype(values) and not _is_dichotomous(values)
            and values.dropna().nunique() > 2)  # fmt: skip


def _number(x: float, digits: int) -> str:
    return f"{round5(float(x), digits):.{digits}f}"


def _continuous_text(v: np.ndarray, normal: bool, digits: int) -> tuple[str, dict[str, float]]:
    if not len(v):
        return "—", {}
    if normal:
        sd = float(np.std(v, ddof=1)) if len(v) > 1 else float("nan")
        text = f"{_number(v.mean(), digits)} ({_number(sd, digits) if sd == sd else 'NA'})"
        return text, {"mean": float(v.mean()), "sd": sd}
    q1, med, q3 = quantile_type2(v, [0.25, 0.5, 0.75])
    return f"{_number(med, digits)} ({_number(q1, digits)}, {_number(q3, digits)})", {
        "median": med, "q1": q1, "q3": q3}  # fmt: skip


def quantile_type2(values: np.ndarray, probs: Sequence[float]) -> list[float]:
    """R ``quantile(x, probs, type = 2)``: the inverse of the empirical CDF, averaging at discontinuities."""
    x = np.sort(np.asarray(values, dtype=float))
    n = len(x)
    out = []
    for p in probs:
        np_ = n * p
        j = int(np.floor(np_ + 4 * np.finfo(float).eps * max(1.0, np_)))
        g = np_ - j
        lo = x[max(j - 1, 0)]
        hi = x[min(j, n - 1)]
        out.append(float((lo + hi) / 2 if abs(g) < 1e-12 and 0 < j < n else (hi if j < n else x[-1])))
    return out


def table_one(
    data: pd.DataFrame,
    by: str | None = None,
    variables: Sequence[str] | None = None,
    *,
    labels: Mapping[str, str] | None = None,
    normal: Sequence[str] = (),
    levels: Mapping[str, Sequence[object]] | None = None,
    digits: Mapping[str, int] | None = None,
    overall: bool = True,
    missing_text: Mapping[str, str] | None = None,
) -> TableOne:
    """Summarise ``variables`` of ``data`` overall and by the groups in column ``by`` with a p-value per variable.

    ``labels`` names variables for the table; ``normal`` lists continuous variables shown as mean (SD) and tested
    with t-test/ANOVA; ``levels`` fixes the order of a categorical variable's levels; ``digits`` sets the decimals
    of a continuous variable's statistics (default: 0 for whole numbers, else 1); ``missing_text`` names a
    variable's missing-value row (default "Unknown", gtsummary's ``missing_text``) — e.g. "Alive (not
    applicable)" for the cause of death, which is then summarised and tested among the patients who have one."""
    labels, levels, decimals = dict(labels or {}), dict(levels or {}), dict(digits or {})
    variables = list(variables) if variables is not None else [c for c in data.columns if c != by]
    missing_cols = [v for v in [*variables, *([by] if by else [])] if v not in data.columns]
    if missing_cols:
        raise InputError("column not found", table="data", column=", ".join(map(str, missing_cols)))
    frame = data.reset_index(drop=True)
    if by is not None:
        if frame[by].isna().any():
            raise InputError("the grouping column has missing values (drop or recode them first)", table="data",
                             column=by, rows=np.flatnonzero(frame[by].isna().to_numpy()).tolist())  # fmt: skip
        group_values = list(levels.get(by, sorted(frame[by].unique(), key=str)))
    else:
        group_values = []
    columns: list[tuple[str, pd.Series]] = []
    if overall or by is None:
        columns.append(("Overall", pd.Series(True, index=frame.index)))
    columns += [(str(g), frame[by] == g) for g in group_values]
    headers = [f"{name} (N = {int(mask.sum())})" for name, mask in columns]

    rows: list[dict[str, object]] = []
    tests: dict[str, GroupTest] = {}
    used_stats: list[str] = []
    for var in variables:
        values = frame[var]
        label = labels.get(var, var)
        is_normal = var in normal
        groups = [values[frame[by] == g] for g in group_values] if by else []
        if _is_continuous(values):
            stat = MEAN_STAT if is_normal else MEDIAN_STAT
            places = decimals.get(var, 0 if np.allclose(values.dropna() % 1, 0) else 1)
            row: dict[str, object] = {"variable": var, "label": f"{label}", "level": None, "row_type": "label",
                                      "statistic": stat}  # fmt: skip
            for (name, mask), header in zip(columns, headers, strict=True):
                text, numbers = _continuous_text(values[mask].dropna().to_numpy(float), is_normal, places)
                row[header] = text
                row.update({f"{name}:{k}": v for k, v in numbers.items()})
            if len(groups) >= 2:
                tests[var] = continuous_test([g.to_numpy(float) for g in groups], normal=is_normal)
            rows.append(row)
        else:
            stat = CATEGORICAL_STAT
            dichotomous = _is_dichotomous(values)
            present = values.dropna()
            cats = [True] if dichotomous else list(levels.get(var, sorted(present.unique(), key=str)))
            if dichotomous:
                present = present.astype(bool)
            head: dict[str, object] = {"variable": var, "label": label, "level": None, "row_type": "label",
                                       "statistic": stat}  # fmt: skip
            if not dichotomous:
                rows.append(head)
            for cat in cats:
                row = dict(head) if dichotomous else {"variable": var, "label": _level_text(cat), "level": cat,
                                                      "row_type": "level", "statistic": stat}  # fmt: skip
                for (name, mask), header in zip(columns, headers, strict=True):
                    sub = present[mask[present.index]]
                    n, denom = int((sub == cat).sum()), len(sub)
                    row[header] = f"{n} ({format_percent(n / denom)}%)" if denom else "0 (NA)"
                    row[f"{name}:n"], row[f"{name}:N"] = n, denom
                rows.append(row)
            if len(groups) >= 2:
                keys = [True, False] if dichotomous else cats
                counts = np.array([[int((g.dropna().astype(bool) if dichotomous else g.dropna()).eq(k).sum())
                                    for g in groups] for k in keys])  # fmt: skip
                tests[var] = categorical_test(counts)
        if values.isna().any():  # every kind of variable: an "Unknown" row with the count of missing values
            row = {"variable": var, "label": (missing_text or {}).get(var, "Unknown"), "level": None,
                   "row_type": "missing", "statistic": "n"}  # fmt: skip
            for (name, mask), header in zip(columns, headers, strict=True):
                n_missing = int(values[mask].isna().sum())
                row[header], row[f"{name}:n"] = str(n_missing), n_missing
            rows.append(row)
        if stat not in used_stats:
            used_stats.append(stat)

    stats = pd.DataFrame(rows)
    stats["p_value"] = [tests[v].p_value if v in tests and t == "label" else np.nan  # one p per variable, on its
                        for v, t in zip(stats["variable"], stats["row_type"], strict=True)]  # label row  # fmt: skip
    stats["test"] = [tests[v].method if v in tests and p == p else None
                     for v, p in zip(stats["variable"], stats["p_value"], strict=True)]  # fmt: skip
    methods = list(dict.fromkeys(t.method for t in tests.values()))
    marks = {m: i + 2 for i, m in enumerate(methods)}
    table = stats[["label", *headers]].rename(columns={"label": "Characteristic"}).fillna("")
    if tests:
        table["p-value"] = [f"{format_pvalue(p)}{_sup(marks[m])}" if p == p else ""
                            for p, m in zip(stats["p_value"], stats["test"], strict=True)]  # fmt: skip
    table.columns = [f"{c}{_sup(1)}" if c in headers else c for c in table.columns]
    footnotes = ("1 " + "; ".join(used_stats), *(f"{marks[m]} {m}" for m in methods))
    return TableOne(stats, table.reset_index(drop=True), footnotes, tests)


def _level_text(level: object) -> str:
    """A level as the table shows it: whole-number floats without ".0" (5.0 -> "5")."""
    if isinstance(level, float | np.floating) and float(level).is_integer():
        return str(int(level))
    return str(level)


def _sup(i: int) -> str:
    return str(i).translate(str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹"))
