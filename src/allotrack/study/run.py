"""Run a study plan: load the records, build the analysis dataset, run every analysis, and write the report
(HTML, DOCX) with the analysis dataset and a methods paragraph generated from what actually ran."""

from __future__ import annotations

import platform
from collections.abc import Callable
from dataclasses import dataclass, replace
from importlib.metadata import version
from pathlib import Path

import pandas as pd

from allotrack.errors import InputError
from allotrack.records.dates import DAYS_PER_UNIT
from allotrack.records.dictionary import DataDictionary
from allotrack.records.safe_csv import write_csv
from allotrack.records.schema import Records
from allotrack.records.validate import validate_records
from allotrack.report.document import Document, Section, TableBlock
from allotrack.report.table_one import table_one
from allotrack.study.analyses import RUNNERS, Context
from allotrack.study.dataset import analysis_dataset
from allotrack.study.plan import StudyPlan

METHOD_TEXT = {
    "km": "Survival was estimated by the Kaplan–Meier method with log-transformed 95% confidence intervals and "
          "compared between groups by the log-rank test.",
    "landmarks": "Survival probabilities at landmark times were read from the Kaplan–Meier estimates.",
    "cox": "Hazard ratios were estimated by Cox proportional-hazards regression (Efron ties); variables for the "
           "multivariate model were chosen as the plan states.",
    "time_dependent_cox": "The number of courses was analysed as a time-dependent covariate in a counting-process "
                          "Cox model to avoid immortal-time bias.",
    "competing": "Cumulative incidences were estimated with competing risks (Aalen–Johansen) and compared by "
                 "Gray's test; subdistribution hazards by Fine–Gray regression with the sandwich (robust) variance.",
    "binary": "Binary outcomes were compared between two groups by the risk difference with Newcombe's hybrid score "
              "interval, the relative risk (Katz log interval) and the odds ratio (conditional maximum-likelihood "
              "estimate with its exact interval), each group's proportion with a Wilson interval; the test of each "
              "comparison is named in its table.",
    "paired": "Measurements at two visits of the same patients were compared by the paired test named in each table "
              "(Wilcoxon signed-rank with the Hodges–Lehmann estimate, or the paired t-test).",
    "longitudinal": "Repeated measurements were analysed by a linear mixed model with a random intercept per patient "
                    "(REML), reporting estimated means per visit and group and the Wald test of the visit × group "
                    "interaction.",
    "trend": "Dose–response trends were tested by the Cochran–Armitage test (binary outcomes) or the "
             "Jonckheere–Terpstra test (measurements) across ordered dose levels.",
    "response": "Rates are given with exact (Clopper–Pearson) 95% confidence intervals.",
    "recovery": "Hematopoietic recovery was counted from daily blood counts by the rule named in its table; where "
                "a patient had several courses, each patient's median was summarised (courses are correlated).",
    "adverse_events": "Adverse events are summarised as the worst CTCAE grade per patient and term.",
    "chimerism": "Donor chimerism is shown per patient over time on a log scale.",
    "swimmer": "",
}  # fmt: skip


@dataclass(frozen=True)
class StudyResult:
    document: Document
    dataset: pd.DataFrame
    plan: StudyPlan


def load_records(plan: StudyPlan, base_dir: Path | None = None) -> Records:
    """The records the plan's ``[data]`` names: the bundled demo, a database URL, or files (with a mapping)."""
    if plan.data.source == "demo":
        from allotrack.study.demo import demo_records

        return demo_records()
    if plan.data.source and plan.data.source.startswith("example:"):  # a reference study's synthetic records
        from allotrack.study.five_studies import STUDIES, five_study_records

        code = plan.data.source.split(":", 1)[1]
        if code not in STUDIES:
            raise InputError(f"unknown example study {code!r}; the examples are {list(STUDIES)}", table="plan",
                             column="data.source")  # fmt: skip
        return five_study_records()[code]
    if plan.data.source:
        from allotrack.records.store import Store

        return Store(plan.data.source).load()
    from allotrack.records.importers import read_tables

    base = base_dir or Path.cwd()
    mapping = base / plan.data.mapping if plan.data.mapping else None
    return read_tables([base / f for f in plan.data.files], mapping)


def run_study(plan: StudyPlan, records: Records | None = None, base_dir: Path | None = None,
              progress: Callable[[str], None] | None = None, validated: bool = False,
              dictionary: DataDictionary | None = None) -> StudyResult:  # fmt: skip
    """Run every analysis of ``plan`` (on ``records`` if given) and return the report document and dataset.
    ``validated``: the records come from the store, which validated and typed them at import. ``dictionary``:
    the data dictionary the records follow (a database source's own; else allotrack's bundled one)."""
    say = progress or (lambda _msg: None)
    say("loading records")
    if records is None:
        records = load_records(plan, base_dir)
        validated = plan.data.source not in (None, "demo") and not plan.data.source.startswith("example:")
        if validated and dictionary is None:
            from allotrack.records.store import Store

            dictionary = Store(plan.data.source).dictionary()
    if not validated:
        say("validating records")
    recs = records if validated else validate_records(records)  # typed once
    say("deriving endpoints")
    data = analysis_dataset(recs, plan, validate=False)
    ctx = Context(data, recs, plan, dictionary)
    sections: list[Section] = []
    if plan.baseline:
        say("baseline table")
        b = plan.baseline
        t1 = table_one(data, by=b.by, variables=b.variables, labels=b.labels, normal=b.normal, levels=b.levels,
                       digits=b.digits, missing_text=b.missing_text)  # fmt: skip
        sections.append(Section("Baseline characteristics", (), (TableBlock("Table 1. Patient and donor "
                                                                           "characteristics", t1),)))  # fmt: skip
    for a in plan.analyses:
        say(f"analysis: {a.kind}")
        scoped, who = ctx.restricted(a)
        section = RUNNERS[a.kind](scoped, a)
        if who is not None:  # the report says whom each analysis and each of its tables and figures covers
            section = replace(section, paragraphs=(f"Analysed: {who}.", *section.paragraphs),
                              tables=tuple(replace(t, caption=f"{t.caption} [{who}]") for t in section.tables),
                              figures=tuple(replace(f, caption=f"{f.caption} [{who}]") for f in section.figures))
        sections.append(section)
    document = Document(plan.study.title, plan.study.description, tuple(sections), methods_text(plan, data),
                        software())  # fmt: skip
    return StudyResult(document, data, plan)


def software() -> dict[str, str]:
    names = ("allotrack", "numpy", "scipy", "pandas", "matplotlib", "formulaic")
    return {"Python": platform.python_version(), **{n: version(n) for n in names}}


def methods_text(plan: StudyPlan, data: pd.DataFrame | None = None) -> str:
    """A methods paragraph built from the analyses that ran and the software that ran them: the tests, each
    endpoint's time origin, the follow-up (reverse Kaplan–Meier median of overall survival, from ``data``) and the
    variance of each model."""
    parts = []
    if plan.baseline:
        parts.append("Baseline characteristics are summarised as n (%) and median (Q1, Q3) or mean (SD), and compared "
                     "by Pearson's chi-square test without continuity correction when all expected counts were at "
                     "least 5, otherwise Fisher's exact test, and by the Wilcoxon rank-sum or Kruskal–Wallis test "
                     "(Welch's t-test or ANOVA for variables declared normally distributed), as gtsummary "
                     "does.")  # fmt: skip
        for var, text in plan.baseline.missing_text.items():
            label = plan.baseline.labels.get(var, var.replace("_", " "))
            parts.append(f"{label} is summarised and compared among the patients it applies to (the others are "
                         f"shown as “{text}”).")  # fmt: skip
    kinds = list(dict.fromkeys(a.kind for a in plan.analyses))
    parts += [METHOD_TEXT[k] for k in kinds if METHOD_TEXT[k]]
    for a in plan.analyses:
        if a.kind == "cox" and getattr(a, "multivariate", None) is None:
            parts.append(f"For {a.endpoint.upper()}, variables entered the multivariate Cox model when their "
                         f"univariate likelihood-ratio test gave p < {a.select_p:g} (the p-value shown with "
                         "them); each term is shown with its Wald p-value.")  # fmt: skip
    unit = plan.study.time_unit
    scale = f" (days / {DAYS_PER_UNIT[unit]:g})" if unit != "days" else ""
    parts.append(f"Times are from the dated records, in {unit}{scale}.")
    parts += _origins(plan)
    if data is not None and "os_time" in data.columns and data["os_time"].notna().any():
        parts.append(_follow_up(data, unit))
    sw = software()
    parts.append("All analyses were run with allotrack " + sw["allotrack"] + " (Python " + sw["Python"] + "; numpy "
                 + sw["numpy"] + ", scipy " + sw["scipy"] + ", pandas " + sw["pandas"] + "), whose estimators are "
                 "checked against R's survival and cmprsk packages. Two-sided p < 0.05 was considered significant.")
    return " ".join(parts)


def _origins(plan: StudyPlan) -> list[str]:
    """One sentence naming the time origin of each endpoint an analysis uses."""
    used = dict.fromkeys(n for a in plan.analyses for n in (getattr(a, "endpoints", None)
                                                          or [getattr(a, "endpoint", None)]) if n)  # fmt: skip
    if not used:
        return []
    said = [f"{plan.endpoint(n).label.split(' (')[0]} from {plan.endpoint(n).origin.replace('_', ' ')}"
            for n in used if n in plan.endpoints.use]  # fmt: skip
    return ["Time origins: " + "; ".join(said) + "."]


def _follow_up(data: pd.DataFrame, unit: str) -> str:
    """The median follow-up by the reverse Kaplan–Meier method (Schemper & Smith 1996) for overall survival."""
    from allotrack.stats.follow_up import median_follow_up

    d = data.dropna(subset=["os_time", "os_status"])
    fu = median_follow_up(None, d["os_time"].astype(float) / DAYS_PER_UNIT[unit], d["os_status"].astype(int)).table
    row = fu.iloc[0]
    ci = f" (95% CI {row['lower']:.1f}–{row['upper']:.1f})" if row["upper"] == row["upper"] else ""
    return (f"Median follow-up, by the reverse Kaplan–Meier method (deaths censored), was {row['median']:.1f} "
            f"{unit}{ci}.")


FORMATS = ("html", "docx")


def write_report(result: StudyResult, out_dir: str | Path, formats: tuple[str, ...] = FORMATS) -> dict[str, Path]:
    """Write ``report.html`` / ``report.docx``, the analysis dataset (``dataset.csv``) and every table as CSV
    (``tables/``, see :func:`write_tables`) into ``out_dir``."""
    import matplotlib.pyplot as plt

    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise ValueError(f"unknown report format(s) {unknown}; choose from {list(FORMATS)}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    if "html" in formats:
        from allotrack.report.html import render_html

        written["html"] = out / "report.html"
        written["html"].write_text(render_html(result.document), encoding="utf-8")
    if "docx" in formats:
        from allotrack.report.docx import write_docx

        written["docx"] = write_docx(result.document, out / "report.docx")
    written["dataset"] = out / "dataset.csv"
    write_csv(result.dataset, written["dataset"])
    written["tables"] = write_tables(result.document, out / "tables")
    for section in result.document.sections:
        for fig in section.figures:
            plt.close(fig.figure)
    return written


def write_tables(document: Document, folder: Path) -> Path:
    """Every report table as a CSV file — its unrounded ``data`` where the analysis gives it, else the table as
    shown — and ``index.json`` naming each file with its section, caption and footnotes (gtsummary's
    ``as_tibble``: numbers that can be checked and reused). Returns the index's path."""
    import json

    folder.mkdir(parents=True, exist_ok=True)
    index = []
    for i, section in enumerate(document.sections, start=1):
        for j, block in enumerate(section.tables, start=1):
            name = f"{i:02d}-{j}-{section.anchor}.csv"[:120]
            unrounded = block.data is not None
            write_csv(block.data if block.data is not None else block.frame, folder / name)
            index.append({"file": name, "section": section.title, "caption": block.caption,
                          "unrounded": unrounded, "footnotes": list(block.notes)})  # fmt: skip
    path = folder / "index.json"
    path.write_text(json.dumps(index, ensure_ascii=False, indent=1), encoding="utf-8")
    return path


def build_demo_store(path: str | Path) -> Records:
    """The demo cohort imported into an embedded SQLite store at ``path`` (re-running is idempotent); returns the
    stored records."""
    from allotrack.records.store import Store
    from allotrack.study.demo import demo_records

    store = Store(f"sqlite:///{Path(path)}")
    store.init()
    store.import_records(demo_records(), user="demo")
    return store.load()


def example_plan_path(code: str) -> Path:
    """The bundled plan of a reference study (``allotrack/study/plans/<code>.toml``)."""
    from importlib.resources import files

    return Path(str(files("allotrack.study") / "plans" / f"{code}.toml"))


def demo_plan_path() -> Path:
    from importlib.resources import files

    return Path(str(files("allotrack.study") / "demo_plan.toml"))
