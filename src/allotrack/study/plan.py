"""The study plan: a TOML file that says where the records are, which grouping variables to derive, which
endpoints and which analyses to run. Validated by pydantic; every error names the key path and the line of the
file it is on.

Example (the demo study's plan is ``allotrack/study/demo_plan.toml``)::

    [study]
    title = "MST in older AML"
    time_unit = "months"            # days | months (days / 30.4375) | years (days / 365.25)

    [data]
    source = "demo"                 # "demo", a database URL, or files = ["patients.csv", ...]

    [[variables]]                   # per-patient variables from the records
    name = "dsa"
    item = "dsa_mfi"                #   a dictionary item (or table = "matched_sets", column = "role")
    visit = "before transplant"
    summary = "max"
    cut = [1000]
    labels = ["negative", "positive"]

    [[groups]]                      # derived grouping variables
    name = "age_group"
    variable = "age_at_diagnosis"
    cut = [70]                      # right-closed: ≤ 70 | > 70; or cut = "median"
    labels = ["60–70", "> 70"]

    [endpoints]
    use = ["os", "lfs", "cir", "nrm"]
    landmark_years = [1, 3, 5]

    [baseline]
    by = "age_group"
    variables = ["sex", "donor_age"]
    normal = ["donor_age"]

    [[analyses]]
    kind = "km"                     # km | cox | competing | time_dependent_cox | landmarks | binary | paired
    endpoint = "os"                 #   | longitudinal | trend | response | recovery | adverse_events | chimerism
                                    #   | swimmer | balance | consort | sample_size | dose_finding
    by = ["age_group"]
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from allotrack.endpoints.definitions import ENDPOINTS, Endpoint
from allotrack.errors import AllotrackError, InputError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StudyInfo(_Strict):
    title: str
    time_unit: Literal["days", "months", "years"] = "months"
    description: str = ""


class DataSource(_Strict):
    source: str | None = None  # "demo" or a database URL
    files: list[str] = []
    mapping: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> DataSource:
        if bool(self.source) == bool(self.files):
            raise ValueError("give either source (\"demo\" or a database URL) or files, not both or neither")
        return self


class GroupVariable(_Strict):
    name: str
    variable: str
    cut: list[float] | Literal["median"]
    labels: list[str]

    @model_validator(mode="after")
    def _labels_match(self) -> GroupVariable:
        n_groups = 2 if self.cut == "median" else len(self.cut) + 1
        if len(self.labels) != n_groups:
            raise ValueError(f"{n_groups} labels are needed for {self.cut!r}, not {len(self.labels)}")
        return self


class VariableSpec(_Strict):
    """A per-patient variable of the analysis dataset taken from the records (REDCap's calculated field, computed
    once per patient), to group, subset or adjust by:

    * ``item`` (a data-dictionary observation, assessment, attribute or intervention item), at ``visit`` if given,
      summarised by ``summary`` when a patient has several values there ("max" of the donor-specific antibody MFI
      over HLA antigens); without ``summary`` a patient must have one value;
    * or ``table`` and ``column`` of a study-design or treatment table (``matched_sets.role``,
      ``interventions.dose_level``): the patient's first non-missing value;
    * ``cut`` and ``labels`` turn a number into labelled groups (right-closed, as [[groups]]);
    * ``from_case``: in a matched design every member of a matched set takes the value of its case (the subgroup
      "cases without DSA and their controls").

    A value dated after an endpoint's origin cannot group or adjust a time-to-event analysis of it (immortal time:
    the run refuses it and names the variable)."""

    name: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]
    label: str | None = None
    item: str | None = None
    visit: str | None = None
    summary: Literal["first", "last", "min", "max"] | None = None
    table: Literal["patients", "donors", "enrolments", "populations", "matched_sets", "interventions", "infusions",
                   "courses", "attributes"] | None = None  # fmt: skip
    column: str | None = None
    cut: list[float] | None = None
    labels: list[str] | None = None
    from_case: bool = False

    @model_validator(mode="after")
    def _one_source(self) -> VariableSpec:
        if (self.item is None) == (self.table is None):
            raise ValueError("give either item (a data-dictionary item) or table and column")
        if self.table is not None and (self.column is None or self.visit is not None or self.summary is not None):
            raise ValueError("a table variable takes column (and no visit or summary)")
        if self.item is not None and self.column is not None:
            raise ValueError("column goes with table, not with item")
        if (self.cut is None) != (self.labels is None):
            raise ValueError("cut and labels go together")
        if self.cut is not None and self.labels is not None and len(self.labels) != len(self.cut) + 1:
            raise ValueError(f"{len(self.cut) + 1} labels are needed for cut = {self.cut}, not {len(self.labels)}")
        return self


class MatchingSpec(_Strict):
    """Controls matched to the treated patients of the analysis dataset before any analysis runs
    (:func:`allotrack.design.match_controls`, MatchIt's nearest-neighbour semantics): ``treated`` is a condition in
    branching-logic syntax (``[cohort] = 'case'``), ``among`` optionally limits the candidates; the set of each
    matched patient goes into the dataset column ``set_column``, its MatchIt weight into ``<set_column>_weight``
    and its side into ``<set_column>_group`` (``groups``: the treated patients' name, then the controls'; "not
    matched" for everyone else), so that
    analyses can compare the matched groups (``by = ["matched_set_group"]``) within sets (``strata``, ``cluster``
    or ``matched_sets = "matched_set"``); ``kind = "balance"`` reports the balance before and after."""

    treated: str
    among: str | None = None
    covariates: list[str] = []
    exact: list[str] = []
    distance: Literal["glm", "mahalanobis", "euclidean"] = "glm"
    ratio: Annotated[int, Field(ge=1)] = 1
    max_ratio: Annotated[int, Field(ge=1)] | None = None
    caliper: float | dict[str, float] | None = None
    replace: bool = False
    m_order: Literal["largest", "smallest", "random", "data"] | None = None
    seed: int | None = None
    set_column: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")] = "matched_set"
    groups: Annotated[list[str], Field(min_length=2, max_length=2)] = ["treated", "control"]

    def columns(self) -> list[str]:
        """The dataset columns the matching adds: set, weight and group."""
        return [self.set_column, f"{self.set_column}_weight", f"{self.set_column}_group"]


class EndpointSpec(_Strict):
    """A study's own endpoint: its time origin (see :mod:`allotrack.endpoints.definitions`: diagnosis, hsct,
    randomization, enrolment, first_course, first_infusion, first_infusion:<product>,
    first_intervention:<agent>, first_remission), the event kinds that end it, the competing kinds, and an
    optional horizon (administrative censoring, in days from the origin)."""

    name: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]
    label: str
    origin: str
    events: list[str]
    competing: list[str] = []
    horizon_days: Annotated[float, Field(gt=0)] | None = None
    time_points: list[Annotated[float, Field(gt=0)]] = []  # in the plan's time unit: estimates shown in tables

    @model_validator(mode="after")
    def _definable(self) -> EndpointSpec:
        self.endpoint()  # the definition's own checks (origin and event kinds)
        return self

    def endpoint(self) -> Endpoint:
        return Endpoint(self.name, self.label, self.origin, tuple(self.events), tuple(self.competing),
                        horizon_days=self.horizon_days)  # fmt: skip


class EndpointChoice(_Strict):
    define: list[EndpointSpec] = []  # first: ``use`` may name these
    use: list[str] = ["os"]
    early_death_days: Annotated[int, Field(ge=1, le=365)] = 28
    landmark_years: list[float] = []
    # in the plan's time unit: where the tables of every endpoint without time_points of its own show estimates
    # (Kaplan–Meier survival or cumulative incidence); none: 1, 3 and 5 years for competing risks and landmarks
    time_points: list[Annotated[float, Field(gt=0)]] = []

    @field_validator("use")
    @classmethod
    def _known(cls, names: list[str], info: ValidationInfo) -> list[str]:
        if "define" not in info.data:  # the definitions themselves are invalid (reported there)
            return names
        defined = {d.name for d in info.data["define"]}
        unknown = [n for n in names if n not in ENDPOINTS and n not in defined]
        if unknown:
            raise ValueError(f"unknown endpoint(s) {unknown}; known: {sorted(ENDPOINTS)} and those defined in "
                             "[[endpoints.define]]")  # fmt: skip
        return names


class Baseline(_Strict):
    """The baseline table (gtsummary ``tbl_summary() |> add_p()``): ``subset`` restricts it (branching logic, e.g.
    the matched cohort ``[matched_set] <> ''``), ``overall = false`` drops the all-patients column and ``tests =
    false`` the p-values (a matched cohort's balance is shown by standardised differences, not tests)."""

    by: str | None = None
    subset: str | None = None
    overall: bool = True
    tests: bool = True
    variables: list[str]
    normal: list[str] = []
    labels: dict[str, str] = {}
    digits: dict[str, int] = {}
    levels: dict[str, list[str]] = {}
    missing_text: dict[str, str] = {}  # the missing-value row's label per variable (default "Unknown")


class _Analysis(_Strict):
    """What every analysis may take: ``population``, a named analysis population of the study-design records
    (``populations`` rows with ``included = yes``, e.g. "ITT", "per-protocol", "safety"), and ``subset``, a
    condition on the analysis dataset in REDCap's branching-logic syntax (``[diagnosis] = 'AML' and
    [dsa] = '0'``; :mod:`allotrack.records.branching`). The report names both with the number of patients."""

    population: str | None = None
    subset: str | None = None
    title: str | None = None  # the report section's title (default: from the endpoint or item)


class KaplanMeierAnalysis(_Analysis):
    """Kaplan–Meier estimates overall and by each ``by`` variable with the log-rank test, stratified by
    ``strata`` (e.g. the matched set of a matched-cohort design) if given."""

    kind: Literal["km"]
    endpoint: str
    by: list[str] = []
    strata: str | None = None


class CoxAnalysis(_Analysis):
    """Univariate Cox models of each variable, then a multivariate one. ``strata``: a baseline hazard per level
    (R ``strata()``), e.g. the matched set of a matched-cohort design (conditional on the set); ``cluster``: the
    robust (sandwich) variance summed by this variable's levels instead (R ``cluster()``, e.g. the matched set, a
    marginal comparison); ``weights``: case weights from a dataset column (e.g. ``matched_set_weight``, MatchIt's
    weights for variable-ratio matching)."""

    kind: Literal["cox"]
    endpoint: str
    univariate: list[str]
    multivariate: list[str] | None = None  # None: the univariate terms with p below `select_p`
    select_p: Annotated[float, Field(gt=0, le=1)] = 0.1
    strata: str | None = None
    cluster: str | None = None
    weights: str | None = None
    reference: dict[str, str] = {}  # the comparator level of a categorical variable, e.g. { arm = "basiliximab" }


class CompetingAnalysis(_Analysis):
    """Cumulative incidence of the endpoint's event with its competing events. ``both_causes`` also tabulates
    the competing event's cumulative incidence from the same fit (same origin and population: e.g. relapse and
    non-relapse mortality from first remission, which add up with leukaemia-free survival)."""

    kind: Literal["competing"]
    endpoint: str
    by: list[str] = []
    fine_gray: list[str] = []
    both_causes: bool = False
    strata: str | None = None  # Gray's test stratified by this variable (e.g. the matched set)
    cluster: str | None = None  # Fine–Gray variance robust to correlation within its levels (e.g. the matched set)
    reference: dict[str, str] = {}  # the Fine–Gray comparator level, e.g. { matched_set_group = "Registry controls" }


class TimeDependentCoxAnalysis(_Analysis):
    kind: Literal["time_dependent_cox"]
    endpoint: str
    courses_above: Annotated[int, Field(ge=1)] = 3  # "more than N courses" switches on at the start of course N + 1


class LandmarkAnalysis(_Analysis):
    """Estimates at chosen times of one or more endpoints: Kaplan–Meier survival, or the cumulative incidence of
    an endpoint with competing events. The times: ``times`` (the plan's unit), else ``years``, else each
    endpoint's ``time_points``, else [endpoints] ``time_points``, else 1, 3 and 5 years."""

    kind: Literal["landmarks"]
    endpoints: list[str]
    years: list[Annotated[float, Field(gt=0)]] = []
    times: list[Annotated[float, Field(gt=0)]] = []
    by: str | None = None


class BinaryAnalysis(_Analysis):
    """A binary outcome at a visit by two groups: the patients whose item ``item`` at ``visit`` is one of the
    ``event`` codes, against those with another value. ``reference`` is the comparator group (group B); ``test``
    the p-value shown (all three are in the table's data); ``missing`` says whether a patient without a value at
    the visit is left out ("exclude", the default; their number is shown) or counted as a failure."""

    kind: Literal["binary"]
    item: str
    visit: str
    event: list[str]
    by: str
    reference: str | None = None
    test: Literal["chisq", "chisq_yates", "fisher"] = "chisq"
    missing: Literal["exclude", "failure"] = "exclude"
    subgroups: list[str] = []  # dataset variables: odds ratio per level (forest plot) and the interaction test
    strata: str | None = None  # a dataset variable (e.g. the randomisation stratum): Cochran–Mantel–Haenszel
    adjust: list[str] = []  # dataset variables: a logistic regression of the outcome on the arm and these
    matched_sets: str | None = None  # a dataset variable of matched sets: conditional logistic regression within them


class PairedAnalysis(_Analysis):
    """A dictionary item at two visits of the same patients (see :mod:`allotrack.study.analyses.repeated`)."""

    kind: Literal["paired"]
    item: str
    before: str
    after: str
    method: Literal["wilcoxon", "t"] = "wilcoxon"
    by: str | None = None


class LongitudinalAnalysis(_Analysis):
    """A dictionary item at several visits by group, as a linear mixed model (random intercept per patient)."""

    kind: Literal["longitudinal"]
    item: str
    visits: Annotated[list[str], Field(min_length=2)]
    by: str | None = None  # without a group: the course over visits of all patients


class TrendAnalysis(_Analysis):
    """A dose–response trend of an item at a visit across ordered dose levels of an intervention (see
    :func:`allotrack.study.analyses.repeated.trend_section`): Cochran–Armitage when ``event`` codes are given,
    else Jonckheere–Terpstra."""

    kind: Literal["trend"]
    item: str
    visit: str
    agent: str
    levels: Annotated[list[str], Field(min_length=2)]
    event: list[str] = []


class RecoveryAnalysis(_Analysis):
    """Hematopoietic recovery (see :mod:`allotrack.study.analyses.recovery`): the rule ("mst": onset of cytopenia
    to ANC > 0.5 and platelets > 30; "cibmtr": engraftment after infusion) and the courses ("induction": each
    patient's first; "all": every course, summarised per patient)."""

    kind: Literal["recovery"]
    rule: Literal["mst", "cibmtr"] = "cibmtr"
    courses: Literal["induction", "all"] = "all"


class BalanceAnalysis(_Analysis):
    """The balance of the plan's [matching] before and after (MatchIt's summary: standardised mean differences,
    variance ratios, eCDF statistics) with a Love plot."""

    kind: Literal["balance"]


class ConsortAnalysis(_Analysis):
    """The CONSORT flow of a randomised trial from the study-design records (``study``: the enrolments of one
    study, default all): analysis ``populations`` per arm with their exclusions, follow-up to ``horizon_days``."""

    kind: Literal["consort"]
    study: str | None = None
    populations: list[str] = []
    horizon_days: Annotated[float, Field(gt=0)] = 365


class SampleSizeAnalysis(_Analysis):
    """A sample size or power calculation of the design (:mod:`allotrack.design.power`): ``method``
    ``two_proportions`` (R ``power.prop.test``), ``logrank`` (Schoenfeld or Freedman) or ``competing_risks``
    (Latouche), ``inputs`` the function's arguments, e.g. ``{ p1 = 0.55, p2 = 0.83, power = 0.8 }``; checked when
    the plan is read."""

    kind: Literal["sample_size"]
    method: Literal["two_proportions", "logrank", "competing_risks"]
    inputs: dict[str, float | int | str | bool]

    def calculate(self) -> Any:
        from allotrack.design import power

        function = getattr(power, self.method)
        try:
            return function(**self.inputs)
        except TypeError as err:  # an argument the function does not take, or one missing
            raise InputError(f"sample_size {self.method}: {err}".replace(f"{self.method}() ", ""), table="plan",
                             column="inputs") from None  # fmt: skip

    @model_validator(mode="after")
    def _computable(self) -> SampleSizeAnalysis:
        try:
            self.calculate()
        except InputError as err:
            raise ValueError(f"inputs: {err.rule}") from None
        return self


class DoseFindingAnalysis(_Analysis):
    """Dose-finding decisions from the records (:func:`allotrack.design.dose_finding.dose_decisions`): each
    patient's dose level is the ``dose_level`` of their first intervention of ``agent``, their DLT the yes/no
    assessment ``item`` (any yes); ``design`` "boin" (with the ``target`` DLT rate) or "3+3"; ``levels`` lowest
    first; ``current_level`` (optional) gives the next cohort's level."""

    kind: Literal["dose_finding"]
    agent: str
    levels: Annotated[list[str], Field(min_length=1)]
    design: Literal["boin", "3+3"] = "boin"
    target: Annotated[float, Field(gt=0, lt=1)] | None = None
    item: str = "dlt"
    current_level: str | None = None

    @model_validator(mode="after")
    def _target_for_boin(self) -> DoseFindingAnalysis:
        if self.design == "boin" and self.target is None:
            raise ValueError("a BOIN design needs the target DLT rate (target = 0.3)")
        if self.current_level is not None and self.current_level not in self.levels:
            raise ValueError(f"current_level {self.current_level!r} is not one of the levels {self.levels}")
        return self


class SimpleAnalysis(_Analysis):
    kind: Literal["adverse_events", "swimmer"]
    by: str | None = None


class ResponseAnalysis(_Analysis):
    """Response and early-death rates: complete remission, or a best response among ``responders``."""

    kind: Literal["response"]
    by: str | None = None
    responders: list[str] = []


class ChimerismAnalysis(_Analysis):
    """Donor chimerism over time since diagnosis, or in days since the latest infusion before each test."""

    kind: Literal["chimerism"]
    time_from: Literal["diagnosis", "infusion"] = "diagnosis"


Analysis = Annotated[
    KaplanMeierAnalysis | CoxAnalysis | CompetingAnalysis | TimeDependentCoxAnalysis | LandmarkAnalysis
    | BinaryAnalysis | PairedAnalysis | LongitudinalAnalysis | TrendAnalysis | RecoveryAnalysis | SimpleAnalysis
    | ChimerismAnalysis | ResponseAnalysis | BalanceAnalysis | ConsortAnalysis | SampleSizeAnalysis
    | DoseFindingAnalysis,
    Field(discriminator="kind"),
]


class StudyPlan(_Strict):
    """A whole study plan (see the module docstring for the file format)."""

    def endpoint(self, name: str) -> Endpoint:
        """An endpoint by name: one the plan defines, else a built-in one."""
        for spec in self.endpoints.define:
            if spec.name == name:
                return spec.endpoint()
        return ENDPOINTS[name]

    def time_points(self, name: str) -> list[float]:
        """The times (in the plan's unit) at which the tables of endpoint ``name`` show estimates: its own
        ``time_points``, else [endpoints] ``time_points`` (empty: none declared)."""
        own = next((spec.time_points for spec in self.endpoints.define if spec.name == name), [])
        return list(own or self.endpoints.time_points)

    study: StudyInfo
    data: DataSource
    variables: list[VariableSpec] = []  # derived first: [[groups]] may cut them
    groups: list[GroupVariable] = []
    matching: MatchingSpec | None = None  # derived last: it may match on variables and groups
    endpoints: EndpointChoice = EndpointChoice()
    baseline: Baseline | None = None
    analyses: list[Analysis] = []


def plan_problems(plan: StudyPlan) -> list[tuple[tuple[str | int, ...], str]]:
    """What a valid-looking plan could not run, as (key path, message), checked before anything runs: an
    analysis on an endpoint [endpoints] does not derive; a Kaplan–Meier or Cox analysis of an endpoint
    with competing events (their complement of the cumulative incidence is not a probability of the event: use
    ``kind = "competing"``); a competing-risks analysis of an endpoint without competing events; a grouping by a
    variable that is neither a [[groups]] variable nor a column of the analysis dataset; a survival, cumulative
    incidence or Cox comparison by a variable known only after the time origin (immortal-time bias)."""
    from allotrack.study.dataset import DATASET_COLUMNS, KNOWN_LATER

    out: list[tuple[tuple[str | int, ...], str]] = []
    groups = {g.name for g in plan.groups} | {v.name for v in plan.variables}
    if plan.matching is not None:
        out += _matching_problems(plan, set(groups))
        groups |= set(plan.matching.columns())
    elif any(isinstance(a, BalanceAnalysis) for a in plan.analyses):
        i = next(i for i, a in enumerate(plan.analyses) if isinstance(a, BalanceAnalysis))
        out.append((("analyses", i, "kind"), "a balance analysis needs the plan's [matching]"))
    later = set(KNOWN_LATER) | {g.name for g in plan.groups if g.variable in KNOWN_LATER}
    for i, spec in enumerate(plan.endpoints.define):
        if spec.name in ENDPOINTS:
            out.append((("endpoints", "define", i, "name"), f"{spec.name!r} is a built-in endpoint "
                        f"({ENDPOINTS[spec.name].label}); give yours another name"))  # fmt: skip
    for i, v in enumerate(plan.variables):
        if v.name in DATASET_COLUMNS or v.name in {g.name for g in plan.groups} or v.name in _endpoint_columns(plan):
            out.append((("variables", i, "name"), f"{v.name!r} is already a column of the analysis dataset or a "
                        "[[groups]] name"))  # fmt: skip
    for i, a in enumerate(plan.analyses):
        if a.subset is not None:
            from allotrack.records.branching import UnsupportedLogic, items_of, parse

            try:
                unknown = sorted(items_of(parse(a.subset)) - groups - DATASET_COLUMNS - _endpoint_columns(plan))
            except UnsupportedLogic as err:
                out.append((("analyses", i, "subset"), f"cannot read the subset: {err}"))
                continue
            if unknown:
                out.append((("analyses", i, "subset"), f"the subset names {', '.join(map(repr, unknown))}, which "
                            "the analysis dataset does not have"))  # fmt: skip
    timed = KaplanMeierAnalysis | LandmarkAnalysis | CoxAnalysis | CompetingAnalysis
    for i, a in enumerate(plan.analyses):
        if not isinstance(a, timed):
            continue
        fields = {"by": a.by} if isinstance(a, KaplanMeierAnalysis | LandmarkAnalysis | CompetingAnalysis) else {}
        if isinstance(a, CoxAnalysis):
            fields = {"univariate": a.univariate, "multivariate": a.multivariate or [],
                      "strata": [a.strata] if a.strata else []}  # fmt: skip
        if isinstance(a, CompetingAnalysis):
            fields["fine_gray"] = a.fine_gray
        for key, given in fields.items():
            for name in [given] if isinstance(given, str) else (given or []):
                if name in later:
                    out.append((("analyses", i, key), f"{name!r} is known only after the time origin (courses, "
                                "infusions, response or GVHD so far): comparing by it credits the survival needed "
                                "to reach it (immortal-time bias); use kind = \"time_dependent_cox\" or a "
                                "landmark"))  # fmt: skip
    for i, a in enumerate(plan.analyses):
        key = "endpoints" if isinstance(a, LandmarkAnalysis) else "endpoint"
        names = a.endpoints if isinstance(a, LandmarkAnalysis) else ([a.endpoint] if hasattr(a, "endpoint") else [])
        for name in names:
            if name not in plan.endpoints.use:
                out.append((("analyses", i, key), f"uses endpoint {name!r}, which [endpoints] use does not list"))
            elif plan.endpoint(name).is_competing and isinstance(
                    a, KaplanMeierAnalysis | CoxAnalysis | TimeDependentCoxAnalysis):
                out.append((("analyses", i, key), f"{name!r} has competing events: a {a.kind} analysis would treat "
                            "them as censoring; use kind = \"competing\" (cumulative incidence, Gray's test, "
                            "Fine–Gray)"))  # fmt: skip
        if (isinstance(a, CompetingAnalysis) and a.endpoint in plan.endpoints.use
                and not plan.endpoint(a.endpoint).is_competing):  # fmt: skip
            out.append((("analyses", i, "endpoint"), f"{a.endpoint!r} is not a competing-risk endpoint"))
        named: dict[str, list[str]] = {}
        given = getattr(a, "by", None)
        named["by"] = given if isinstance(given, list) else [given] if isinstance(given, str) else []
        if isinstance(a, CoxAnalysis):
            named |= {"univariate": a.univariate, "multivariate": a.multivariate or [],
                      "strata": [a.strata] if a.strata else [], "cluster": [a.cluster] if a.cluster else [],
                      "weights": [a.weights] if a.weights else []}  # fmt: skip
        if isinstance(a, CompetingAnalysis):
            named["fine_gray"] = a.fine_gray
            named["cluster"] = [a.cluster] if a.cluster else []
        if isinstance(a, BinaryAnalysis) and a.matched_sets:
            named["matched_sets"] = [a.matched_sets]
        if isinstance(a, KaplanMeierAnalysis | CompetingAnalysis) and a.strata:
            named["strata"] = [a.strata]
        for key, names in named.items():
            for name in names:
                if name not in groups and name not in DATASET_COLUMNS:
                    verb = "groups by" if key == "by" else f"{key} names"
                    out.append((("analyses", i, key), f"{verb} {name!r}, which is neither a [[groups]] or "
                                "[[variables]] name nor a column of the analysis dataset"))  # fmt: skip
    if plan.baseline is not None and plan.baseline.by is not None:
        if plan.baseline.by not in groups and plan.baseline.by not in DATASET_COLUMNS:
            out.append((("baseline", "by"), f"groups by {plan.baseline.by!r}, which is neither a [[groups]] "
                        "or [[variables]] name nor a column of the analysis dataset"))  # fmt: skip
    return out


def _matching_problems(plan: StudyPlan, known: set[str]) -> list[tuple[tuple[str | int, ...], str]]:
    """The [matching] table's names: conditions that parse and columns the analysis dataset has."""
    from allotrack.records.branching import UnsupportedLogic, items_of, parse
    from allotrack.study.dataset import DATASET_COLUMNS

    m = plan.matching
    assert m is not None
    out: list[tuple[tuple[str | int, ...], str]] = []
    columns = known | DATASET_COLUMNS
    for key in ("treated", "among"):
        text = getattr(m, key)
        if text is None:
            continue
        try:
            unknown = sorted(items_of(parse(text)) - columns)
        except UnsupportedLogic as err:
            out.append((("matching", key), f"cannot read the condition: {err}"))
            continue
        if unknown:
            out.append((("matching", key), f"names {', '.join(map(repr, unknown))}, which the analysis dataset "
                        "does not have"))  # fmt: skip
    caliper_names = list(m.caliper) if isinstance(m.caliper, dict) else []
    for key, names in (("covariates", m.covariates), ("exact", m.exact), ("caliper", caliper_names)):
        for name in names:
            if name not in columns and not (key == "caliper" and name == "distance"):
                out.append((("matching", key), f"{name!r} is not a column of the analysis dataset"))
    for name in m.columns():
        if name in columns:
            out.append((("matching", "set_column"), f"{name!r} is already a column of the analysis dataset"))
    if m.distance == "glm" and not m.covariates:
        out.append((("matching", "covariates"), "a propensity score (distance = \"glm\") needs covariates"))
    return out


def _endpoint_columns(plan: StudyPlan) -> set[str]:
    return {f"{name}_{part}" for name in plan.endpoints.use for part in ("time", "status")}


def _missing_files(plan: StudyPlan, base: Path) -> list[tuple[tuple[str | int, ...], str]]:
    """Data files and the mapping the plan names that do not exist (relative to the plan's folder)."""
    out: list[tuple[tuple[str | int, ...], str]] = []
    for i, name in enumerate(plan.data.files):
        if not (base / name).is_file():
            out.append((("data", "files", i), f"{name!r} does not exist (paths are relative to the plan's folder)"))
    if plan.data.mapping is not None and not (base / plan.data.mapping).is_file():
        out.append((("data", "mapping"), f"{plan.data.mapping!r} does not exist"))
    return out


class PlanError(AllotrackError, ValueError):
    """The plan file is not valid; ``problems`` lists (line, key path, message)."""

    def __init__(self, path: str, problems: list[tuple[int | None, str, str]]) -> None:
        self.problems = problems
        lines = [f"  {path}:{line or '?'}: {key}: {msg}" for line, key, msg in problems]
        super().__init__(f"{len(problems)} problem(s) in the study plan:\n" + "\n".join(lines))


def load_plan(path: str | Path) -> StudyPlan:
    """Read and validate a plan file; raise :class:`PlanError` with every problem and its line (and with one
    problem when the file cannot be read: missing, a directory, unreadable, not UTF-8 text)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise PlanError(str(path), [(None, "(file)", f"not UTF-8 text (invalid byte at offset {exc.start})")]) from None
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise PlanError(str(path), [(None, "(file)", f"cannot read the file: {reason}")]) from None
    plan = parse_plan(text, str(path))
    missing = _missing_files(plan, Path(path).parent)
    if missing:
        raise PlanError(str(path), [(_line_of(text, loc), _dotted(loc), msg) for loc, msg in missing])
    return plan


def parse_plan(text: str, name: str = "<plan>") -> StudyPlan:
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line = re.search(r"line (\d+)", str(exc))
        raise PlanError(name, [(int(line.group(1)) if line else None, "(file)", str(exc))]) from None
    try:
        plan = StudyPlan.model_validate(raw)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = tuple(err["loc"])
            problems.append((_line_of(text, loc), _dotted(loc), err["msg"].removeprefix("Value error, ")))
        raise PlanError(name, problems) from None
    found = plan_problems(plan)
    if found:
        raise PlanError(name, [(_line_of(text, loc), _dotted(loc), msg) for loc, msg in found])
    return plan


def _dotted(loc: tuple[object, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in ("km", "cox", "competing", "time_dependent_cox", "landmarks", "binary", "paired",
                      "longitudinal", "trend", "response", "recovery", "adverse_events", "chimerism",
                      "swimmer") and out.endswith("]"):  # fmt: skip
            continue  # pydantic's discriminator tag
        else:
            out += ("." if out else "") + str(part)
    return out or "(plan)"


def _line_of(text: str, loc: tuple[object, ...]) -> int | None:
    """The line of the key a validation error points at: walk the table headers ([x] / [[x]] occurrences) and
    then the key inside that table; the table's header line when the key itself is missing."""
    lines = text.splitlines()
    keys = [p for p in loc if isinstance(p, str)]
    if not keys:
        return None
    table, index, depth = keys[0], next((p for p in loc[1:2] if isinstance(p, int)), 0), 1
    if len(keys) >= 2:  # a nested array of tables such as [[endpoints.define]]
        nested = f"{keys[0]}.{keys[1]}"
        position = loc.index(keys[1])
        if any(re.match(rf"^\s*\[\[\s*{re.escape(nested)}\s*\]\]", line) for line in lines):
            table, depth = nested, 2
            index = next((p for p in loc[position + 1:position + 2] if isinstance(p, int)), 0)
    header = re.compile(rf"^\s*\[\[?\s*{re.escape(table)}\s*\]\]?\s*$")
    starts = [i for i, line in enumerate(lines) if header.match(line)]
    if not starts:
        key = re.compile(rf"^\s*{re.escape(table)}\s*=")
        return next((i + 1 for i, line in enumerate(lines) if key.match(line)), None)
    start = starts[min(index, len(starts) - 1)]
    end = next((i for i in range(start + 1, len(lines)) if lines[i].lstrip().startswith("[")), len(lines))
    for part in reversed(keys[depth:]):
        key = re.compile(rf"^\s*{re.escape(part)}\s*=")
        hit = next((i for i in range(start + 1, end) if key.match(lines[i])), None)
        if hit is not None:
            return hit + 1
    return start + 1
