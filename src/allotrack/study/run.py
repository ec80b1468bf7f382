"""Run a study plan: load the records, build the analysis dataset, run every analysis, and write the report
(HTML, DOCX) with the analysis dataset and a methods paragraph generated from what actually ran."""

from __future__ import annotations

import platform
from collections.abc import Callable
from dataclasses import dataclass, replace
from importlib.metadata import version
from pathlib import Path

import pandas as pd

from allotrack.errors import InputError, ModelError
from allotrack.records.dates import DAYS_PER_UNIT
from allotrack.records.dictionary import DataDictionary
from allotrack.records.safe_csv import write_csv
from allotrack.records.schema import Records
from allotrack.records.validate import validate_records
from allotrack.report.document import Document, Section, TableBlock
from allotrack.report.table_one import table_one
from allotrack.study.analyses import RUNNERS, Context
from allotrack.study.dataset import analysis_dataset
from allotrack.study.plan import BinaryAnalysis, CompetingAnalysis, CoxAnalysis, StudyPlan, TrendAnalysis

METHOD_TEXT = {
    "km": "Survival was estimated by the Kaplan–Meier method with log-transformed 95% confidence intervals and "
          "compared between groups by the log-rank test.",
    "landmarks": "Estimates at chosen times were read from the Kaplan–Meier survival curves or, for endpoints with "
                 "competing events, from the Aalen–Johansen cumulative incidence.",
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
                    "(REML), reporting estimated means per visit (and group) with the Wald test of the visit × group "
                    "interaction where groups were compared, else of the visit terms together with Friedman's test "
                    "on the patients measured at every visit.",
    "trend": "Dose–response trends were tested by the Cochran–Armitage test (binary outcomes) or the "
             "Jonckheere–Terpstra test (measurements) across ordered dose levels.",
    "response": "Rates are given with exact (Clopper–Pearson) 95% confidence intervals.",
    "consort": "The flow of patients is reported as CONSORT 2010 recommends, counted from the study-design "
               "records.",
    "balance": "Controls were matched to treated patients by greedy nearest-neighbour matching (MatchIt's rules, "
               "as stated with the balance table); balance is shown as standardised mean differences, variance "
               "ratios and eCDF statistics before and after matching.",
    "recovery": "Hematopoietic recovery was counted from daily blood counts by the rule named in its table; where "
                "a patient had several courses, each patient's median was summarised (courses are correlated).",
    "adverse_events": "Adverse events are summarised as the number of patients by their worst CTCAE grade per "
                      "term.",
    "chimerism": "Donor chimerism is shown per patient over time on a log scale, with the last day it was detected "
                 "above the assay's limit of detection.",
    "swimmer": "",
    "sample_size": "The sample size was calculated as stated with its table.",
    "dose_finding": "The dose-limiting toxicities recorded per dose level were evaluated by the dose-finding rules "
                    "named with their table (3 + 3, or BOIN with its decision boundaries; Liu & Yuan 2015), and the "
                    "maximum tolerated dose selected from the isotonic estimates of the DLT rates.",
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
        from allotrack.study.five_studies import EXAMPLES, example_records

        code = plan.data.source.split(":", 1)[1]
        if code not in EXAMPLES:
            raise InputError(f"unknown example study {code!r}; the examples are {list(EXAMPLES)}", table="plan",
                             column="data.source")  # fmt: skip
        return example_records(code)
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
    data = analysis_dataset(recs, plan, validate=False, dictionary=dictionary)
    ctx = Context(data, recs, plan, dictionary)
    sections: list[Section] = []
    if plan.baseline:
        say("baseline table")
        b = plan.baseline
        scoped, who = ctx.restricted(b)
        t1 = table_one(scoped.data, by=b.by, variables=b.variables, labels=b.labels, normal=b.normal,
                       levels=b.levels, digits=b.digits, missing_text=b.missing_text, overall=b.overall)  # fmt: skip
        if not b.tests:  # the p-value column and the footnotes naming tests go; the summary footnote stays
            t1 = replace(t1, table=t1.table.drop(columns="p-value"), footnotes=t1.footnotes[:1])
        donor = any(v.startswith("donor") or "hla" in v or v == "sex_pair" for v in b.variables)
        caption = f"Table 1. Patient{' and donor' if donor else ''} characteristics" + (f" [{who}]" if who else "")
        sections.append(Section("Baseline characteristics", (), (TableBlock(caption, t1),)))
    for i, a in enumerate(plan.analyses):
        say(f"analysis: {a.kind}")
        try:
            scoped, who = ctx.restricted(a)
            section = RUNNERS[a.kind](scoped, a)
        except InputError as err:  # say which analysis of the plan could not run
            raise InputError(f"analyses[{i}] ({_describe(a)}): {err.rule}", table=err.table, column=err.column,
                             rows=err.rows, values=err.values, n_bad=err.n_bad) from None  # fmt: skip
        except ModelError as err:
            raise ModelError(f"analyses[{i}] ({_describe(a)}): {err}") from None
        if a.title is not None:
            section = replace(section, title=a.title)
        if who is not None:  # the report says whom each analysis and each of its tables and figures covers
            section = replace(section, paragraphs=(f"Analysed: {who}.", *section.paragraphs),
                              tables=tuple(replace(t, caption=f"{t.caption} [{who}]") for t in section.tables),
                              figures=tuple(replace(f, caption=f"{f.caption} [{who}]") for f in section.figures))
        sections.append(section)
    document = Document(plan.study.title, plan.study.description, tuple(sections), methods_text(plan, data),
                        software())  # fmt: skip
    return StudyResult(document, data, plan)


def _describe(a: object) -> str:
    said = [f"kind = {getattr(a, 'kind', '?')!r}"]
    for key in ("title", "endpoint", "item"):
        if getattr(a, key, None):
            said.append(f"{key} = {getattr(a, key)!r}")
    return ", ".join(said)


def software() -> dict[str, str]:
    names = ("allotrack", "numpy", "scipy", "pandas", "matplotlib", "formulaic")
    return {"Python": platform.python_version(), **{n: version(n) for n in names}}


def methods_text(plan: StudyPlan, data: pd.DataFrame | None = None) -> str:
    """A methods paragraph built from the analyses that ran and the software that ran them: the tests, each
    endpoint's time origin, the follow-up (reverse Kaplan–Meier median of overall survival, from ``data``) and the
    variance of each model."""
    parts = []
    if plan.baseline and not plan.baseline.tests:
        parts.append("Baseline characteristics are summarised as n (%) and median (Q1, Q3)"
                     + (" or mean (SD)" if plan.baseline.normal else "") + ", without tests between the groups.")
    elif plan.baseline:
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
    parts += [_kind_text(plan, k) for k in kinds if METHOD_TEXT[k]]
    parts += list(dict.fromkeys(_selection_text(plan, a) for a in plan.analyses if isinstance(a, CoxAnalysis)
                                and a.multivariate is None and len(a.univariate) > 1))  # fmt: skip
    parts += _restriction_text(plan)
    unit = plan.study.time_unit
    scale = f" (days / {DAYS_PER_UNIT[unit]:g})" if unit != "days" else ""
    parts.append(f"Times are from the dated records, in {unit}{scale}.")
    parts += _origins(plan)
    survival = [n for n in plan.endpoints.use if plan.endpoint(n).events == ("death",)
                and not plan.endpoint(n).is_competing]  # fmt: skip
    if data is not None and survival:
        name = "os" if "os" in survival else survival[0]
        if f"{name}_time" in data.columns and data[f"{name}_time"].notna().any():
            parts.append(_follow_up(data, unit, name, plan.endpoint(name).origin_label))
    sw = software()
    parts.append("All analyses were run with allotrack " + sw["allotrack"] + " (Python " + sw["Python"] + "; numpy "
                 + sw["numpy"] + ", scipy " + sw["scipy"] + ", pandas " + sw["pandas"] + "), whose estimators are "
                 "checked against R's survival and cmprsk packages. Two-sided p < 0.05 was considered significant.")
    return " ".join(parts)


def _kind_text(plan: StudyPlan, kind: str) -> str:
    """The methods sentence of one analysis kind, naming only what its analyses ran (Fine–Gray, strata, the trend
    test of each outcome type)."""
    mine = [a for a in plan.analyses if a.kind == kind]
    strata = sorted({s.replace("_", " ") for a in mine if (s := getattr(a, "strata", None))})
    within = (f" (stratified where stated by {', '.join(strata)}: comparisons within strata)" if strata else "")
    if kind == "km":
        compared = any(getattr(a, "by", None) for a in mine)
        return ("Survival was estimated by the Kaplan–Meier method with log-transformed 95% confidence intervals"
                + (f" and compared between groups by the log-rank test{within}." if compared else "."))
    if kind == "competing":
        fine_gray = any(isinstance(a, CompetingAnalysis) and a.fine_gray for a in mine)
        clusters = sorted({a.cluster.replace("_", " ") for a in mine
                           if isinstance(a, CompetingAnalysis) and a.fine_gray and a.cluster})  # fmt: skip
        clustered = (f", clustered where stated by {', '.join(clusters)} (Zhou, Fine, Latouche & Labopin 2012)"
                     if clusters else "")  # fmt: skip
        return ("Cumulative incidences were estimated with competing risks (Aalen–Johansen) and compared by "
                f"Gray's test{within}" + (f"; subdistribution hazards by Fine–Gray regression with the sandwich "
                                          f"(robust) variance{clustered}." if fine_gray else "."))  # fmt: skip
    if kind == "cox":
        strata = sorted({a.strata for a in mine if isinstance(a, CoxAnalysis) and a.strata})
        cox = [a for a in mine if isinstance(a, CoxAnalysis)]
        clusters = sorted({a.cluster.replace("_", " ") for a in cox if a.cluster})
        weights = sorted({a.weights.replace("_", " ") for a in cox if a.weights})
        said = ("Hazard ratios were estimated by Cox proportional-hazards regression (Efron ties)" +
                (f", stratified where stated by {', '.join(s.replace('_', ' ') for s in strata)} (a baseline hazard "
                 "per stratum: conditional on it)" if strata else "")
                + (f", weighted where stated by {', '.join(weights)}" if weights else "")
                + (f", with a robust variance clustered where stated by {', '.join(clusters)} and the robust score "
                   "test" if clusters else "") + ".")  # fmt: skip
        return said
    if kind == "binary" and any(isinstance(a, BinaryAnalysis) and a.matched_sets for a in mine):
        return (METHOD_TEXT[kind] + " Where patients were matched, the odds ratio within matched sets was estimated "
                "by conditional logistic regression (exact conditional likelihood, R survival clogit).")
    if kind == "trend":
        tests = {"the Cochran–Armitage test (binary outcome)" if isinstance(a, TrendAnalysis) and a.event else
                 "the Jonckheere–Terpstra test (measurements)" for a in mine}  # fmt: skip
        return f"Dose–response trends across ordered dose levels were tested by {' and '.join(sorted(tests))}."
    return METHOD_TEXT[kind]


def _selection_text(plan: StudyPlan, a: CoxAnalysis) -> str:
    label = plan.endpoint(a.endpoint).label
    return (f"For {label[0].lower() + label[1:]}, variables entered the multivariate Cox model when their "
            f"univariate likelihood-ratio test gave p < {a.select_p:g} (the p-value shown with them); each term is "
            "shown with its Wald p-value.")  # fmt: skip


def _restriction_text(plan: StudyPlan) -> list[str]:
    """One sentence naming the analysis populations and subsets used, if any."""
    pops = list(dict.fromkeys(a.population for a in plan.analyses if a.population))
    subsets = list(dict.fromkeys(a.subset for a in plan.analyses if a.subset))
    if not pops and not subsets:
        return []
    said = ([f"the {', '.join(pops)} population{'s' if len(pops) > 1 else ''} of the study-design records"]
            if pops else []) + ([f"the subset{'s' if len(subsets) > 1 else ''} {'; '.join(subsets)}"]
                                if subsets else [])  # fmt: skip
    return [f"Analyses restricted to {' and to '.join(said)} say so with each table, with the number of patients."]


def _origins(plan: StudyPlan) -> list[str]:
    """One sentence naming the time origin of each endpoint an analysis uses."""
    used = dict.fromkeys(n for a in plan.analyses for n in (getattr(a, "endpoints", None)
                                                          or [getattr(a, "endpoint", None)]) if n)  # fmt: skip
    if not used:
        return []
    said = []
    for n in (n for n in used if n in plan.endpoints.use):
        ep = plan.endpoint(n)
        label = ep.label.split(" (")[0]
        said.append(label if " from " in label else f"{label} from {ep.origin_label}")
    return ["Time origins: " + "; ".join(said) + "."]


def _follow_up(data: pd.DataFrame, unit: str, endpoint: str = "os", origin: str = "diagnosis") -> str:
    """The median follow-up by the reverse Kaplan–Meier method (Schemper & Smith 1996) of a survival endpoint
    (death the only event: OS by preference)."""
    from allotrack.stats.follow_up import median_follow_up

    d = data.dropna(subset=[f"{endpoint}_time", f"{endpoint}_status"])
    fu = median_follow_up(None, d[f"{endpoint}_time"].astype(float) / DAYS_PER_UNIT[unit],
                          d[f"{endpoint}_status"].astype(int)).table  # fmt: skip
    row = fu.iloc[0]
    ci = f" (95% CI {row['lower']:.1f}–{row['upper']:.1f})" if row["upper"] == row["upper"] else ""
    return (f"Median follow-up from {origin}, by the reverse Kaplan–Meier method (deaths censored), was "
            f"{row['median']:.1f} {unit}{ci}.")


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
