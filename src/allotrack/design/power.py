"""Sample size and power for the comparative designs of the studies: two proportions, the log-rank test and a
competing-risks (Fine–Gray) comparison. Every function solves for the sample size given the power, or for the
power given the sample size (or number of events), and returns a :class:`SampleSize`.

* :func:`two_proportions` — exactly R ``stats::power.prop.test`` for equal groups (``ratio=1``): the normal
  approximation

      power = Φ( (√n |p1 − p2| − z · √((p1 + p2)(1 − (p1 + p2)/2))) / √(p1(1 − p1) + p2(1 − p2)) ),

  ``z = z_{1−α/2}`` (two-sided) or ``z_{1−α}`` (one-sided); with ``strict=True`` (two-sided) the probability of
  rejecting in the wrong direction, Φ((−√n |p1 − p2| − z √(2 p̄ q̄)) / √(p1q1 + p2q2)), is added. The group size
  n is solved as R does, by ``uniroot(…, c(1, 1e7), tol = .Machine$double.eps^0.25, extendInt = "upX")``:
  :func:`_uniroot_up` is a transcription of R's ``uniroot`` interval extension and of Brent's zero finder as in
  R's ``R_zeroin2`` (Forsythe, Malcolm & Moler 1977, §7.2), so the fractional n agrees with R to machine precision
  rather than to uniroot's tolerance. For unequal groups (``ratio = n2/n1 ≠ 1``) the formula is Fleiss, Tytun &
  Ury (1980) without continuity correction (Fleiss, Levin & Paik 2003, eq. 4.19):

      power = Φ( (√(r n1) |p1 − p2| − z √((r + 1) p̄ q̄)) / √(r p1 q1 + p2 q2) ),  p̄ = (p1 + r p2)/(r + 1),

  i.e. n1 = [z √((r+1) p̄ q̄) + z_{1−β} √(r p1q1 + p2q2)]² / (r (p1 − p2)²), n2 = r n1, which is R's formula at
  r = 1; it is solved by the same root finder.
* :func:`logrank` — the number of events for the log-rank test: Schoenfeld (1981)
  ``d = (z_{1−α/2} + z_{1−β})² / (p(1 − p) (log HR)²)`` with p the proportion allocated to group 1, or
  Freedman (1982) ``d = (z_{1−α/2} + z_{1−β})² (1 + HR)² / (1 − HR)²`` (1:1 only); given d, the power is
  ``Φ(√(d p(1−p)) |log HR| − z_{1−α/2})`` respectively ``Φ(√d |1 − HR| / (1 + HR) − z_{1−α/2})`` (the
  rejection in the wrong direction is ignored, as in the events formulas). Patients = events / P(event), with
  P(event) given or from exponential survival (:func:`exponential_event_probability`).
* :func:`competing_risks` — Latouche, Porcher & Chevret (2004, Stat Med 23:3263): the number of events of the
  cause of interest for a subdistribution hazard ratio θ by Schoenfeld's formula, ``d = (z_{1−α/2} + z_{1−β})² /
  (p(1−p)(log θ)²)``, and patients ``N = d / ψ`` with ψ the probability of an event of the cause of interest by
  the end of follow-up, averaged over the groups: ``ψ = p F₁(τ) + (1 − p) F₀(τ)``, where under proportional
  subdistribution hazards ``F₁(τ) = 1 − (1 − F₀(τ))^θ`` (F₀ the cumulative incidence in the control group).

Group 1 is the experimental group, group 2 the control group: ``p1``/``p2`` are their proportions, ``HR`` and
θ compare group 1 with group 2 (DESIGN.md: effects are first / second). The R reference values (``power.prop.test``
and the formulas written out in R) are in tests/reference/power_reference.R → .json.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd
from scipy import special

from allotrack.errors import InputError
from allotrack.stats.results import Result

__all__ = [
    "SampleSize",
    "competing_risks",
    "exponential_event_probability",
    "logrank",
    "two_proportions",
]

_ALTERNATIVES = ("two-sided", "one-sided")
_EPS = 2.220446049250313e-16  # .Machine$double.eps
_R_TOL = _EPS**0.25  # uniroot's default tol
_DBL_MAX = 1.7976931348623157e308


@dataclass(frozen=True, repr=False)
class SampleSize(Result):
    """A sample size or power calculation.

    ``n_exact`` are the group sizes (group 1, group 2) as solved, fractional (for :func:`two_proportions` with
    ``ratio=1`` the ``n`` of R ``power.prop.test``); ``n_per_group`` rounds each up; ``None`` when patients
    cannot be computed (a log-rank calculation without an event probability). ``events_exact`` / ``events``
    are the required events (rounded up) for the survival designs, ``None`` for two proportions. ``power`` is
    the requested power when the size was solved, else the computed power. ``inputs`` holds the other inputs
    as (name, value) pairs.
    """

    design: str
    method: str
    n_exact: tuple[float, float] | None
    n_per_group: tuple[int, int] | None
    events_exact: float | None
    events: int | None
    power: float
    alpha: float
    alternative: str
    solved_for: str
    inputs: tuple[tuple[str, Any], ...]

    @property
    def n_total(self) -> int | None:
        """Patients in both groups (the rounded-up group sizes added)."""
        return None if self.n_per_group is None else sum(self.n_per_group)

    def input(self, name: str) -> Any:
        """The value of input ``name`` (e.g. ``"hazard_ratio"``)."""
        for key, value in self.inputs:
            if key == name:
                return value
        raise KeyError(name)

    def __repr__(self) -> str:
        lines = [f"<SampleSize: {self.method}; solved for {self.solved_for}>"]
        if self.events is not None:
            lines.append(f"  events {self.events} ({self.events_exact:.4f})")
        if self.n_per_group is not None and self.n_exact is not None:
            lines.append(f"  patients {self.n_total} = {self.n_per_group[0]} + {self.n_per_group[1]} "
                         f"({self.n_exact[0]:.4f} + {self.n_exact[1]:.4f})")  # fmt: skip
        lines.append(f"  power {self.power:.4f}, alpha {self.alpha:g} ({self.alternative})")
        lines.append("  " + ", ".join(f"{k} = {v:.6g}" if isinstance(v, float) else f"{k} = {v}"
                                      for k, v in self.inputs))  # fmt: skip
        return "\n".join(lines)

    def to_frame(self) -> pd.DataFrame:
        nan = float("nan")
        row: dict[str, Any] = {
            "design": self.design,
            "method": self.method,
            "solved_for": self.solved_for,
            "n1": self.n_per_group[0] if self.n_per_group else pd.NA,
            "n2": self.n_per_group[1] if self.n_per_group else pd.NA,
            "n_total": self.n_total if self.n_total is not None else pd.NA,
            "n1_exact": self.n_exact[0] if self.n_exact else nan,
            "n2_exact": self.n_exact[1] if self.n_exact else nan,
            "events": self.events if self.events is not None else pd.NA,
            "events_exact": self.events_exact if self.events_exact is not None else nan,
            "power": self.power,
            "alpha": self.alpha,
            "alternative": self.alternative,
        }
        for key, value in self.inputs:
            row[key] = value
        return pd.DataFrame({k: [v] for k, v in row.items()})


# ------------------------------------------------------------------------------------------------ validation


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(float(value)):
        raise InputError(f"{name} must be a finite number, not {value!r}", column=name, values=[value])
    return float(value)


def _open_unit(value: Any, name: str) -> float:
    x = _number(value, name)
    if not 0.0 < x < 1.0:
        raise InputError(f"{name} must lie strictly between 0 and 1, not {value!r}", column=name, values=[value])
    return x


def _positive(value: Any, name: str, *, allow_zero: bool = False) -> float:
    x = _number(value, name)
    if x < 0 or (x == 0 and not allow_zero):
        rule = "non-negative" if allow_zero else "positive"
        raise InputError(f"{name} must be {rule}, not {value!r}", column=name, values=[value])
    return x


def _alternative(alternative: str) -> int:
    if alternative not in _ALTERNATIVES:
        raise InputError(f"alternative must be one of {_ALTERNATIVES}, not {alternative!r}", column="alternative",
                         values=[alternative])  # fmt: skip
    return 2 if alternative == "two-sided" else 1


def _exactly_one_missing(**values: Any) -> str:
    missing = [name for name, value in values.items() if value is None]
    if len(missing) != 1:
        names = ", ".join(values)
        got = f"None were given for {', '.join(missing)}" if missing else "all were given"
        raise InputError(f"leave exactly one of {names} as None (that one is solved for); {got}",
                         column=missing[0] if missing else None)  # fmt: skip
    return missing[0]


def _z_alpha(alpha: float, tside: int) -> float:
    """``qnorm(alpha / tside, lower.tail = FALSE)``."""
    return float(-special.ndtri(alpha / tside))


def _pnorm(x: float) -> float:
    return float(special.ndtr(x))


def _ceil(x: float) -> int:
    """Round a size up, ignoring floating-point noise just above an integer (100.00000000001 is 100)."""
    nearest = round(x)
    return int(nearest) if abs(x - nearest) <= 1e-9 * max(1.0, abs(x)) else math.ceil(x)


# ---------------------------------------------------------------------------------------- R's uniroot / zeroin


def _zeroin2(f: Callable[[float], float], ax: float, bx: float, fa: float, fb: float, tol: float,
             maxit: int) -> float:  # fmt: skip
    """Brent's zero finder exactly as R's ``R_zeroin2`` (src/library/stats/src/zeroin.c): bisection combined
    with linear or inverse quadratic interpolation, stopping when half the bracket is within
    ``2 ε |b| + tol/2``. Returns the last iterate ``b`` (R warns and returns it too if ``maxit`` is reached)."""
    a, b = ax, bx
    c, fc = a, fa
    if fa == 0.0:
        return a
    if fb == 0.0:
        return b
    for _ in range(maxit + 1):
        prev_step = b - a
        if abs(fc) < abs(fb):  # b is the best approximation so far
            a, b, c = b, c, b
            fa, fb, fc = fb, fc, fb
        tol_act = 2 * _EPS * abs(b) + tol / 2
        new_step = (c - b) / 2
        if abs(new_step) <= tol_act or fb == 0.0:
            return b
        if abs(prev_step) >= tol_act and abs(fa) > abs(fb):  # interpolation may be tried
            cb = c - b
            if a == c:  # two distinct points: linear interpolation
                t1 = fb / fa
                p = cb * t1
                q = 1.0 - t1
            else:  # inverse quadratic interpolation
                q = fa / fc
                t1 = fb / fc
                t2 = fb / fa
                p = t2 * (cb * q * (q - t1) - (b - a) * (t1 - 1.0))
                q = (q - 1.0) * (t1 - 1.0) * (t2 - 1.0)
            if p > 0:
                q = -q
            else:
                p = -p
            if p < (0.75 * cb * q - abs(tol_act * q) / 2) and p < abs(prev_step * q / 2):
                new_step = p / q
        if abs(new_step) < tol_act:
            new_step = tol_act if new_step > 0 else -tol_act
        a, fa = b, fb
        b += new_step
        fb = f(b)
        if (fb > 0 and fc > 0) or (fb < 0 and fc < 0):
            c, fc = a, fa
    return b


def _sign(x: float) -> float:
    return 0.0 if x == 0 else math.copysign(1.0, x)


def _uniroot_up(f: Callable[[float], float], lower: float, upper: float, what: str) -> float:
    """R ``uniroot(f, c(lower, upper), tol = .Machine$double.eps^0.25, extendInt = "upX")$root`` for an
    increasing ``f``: the interval is first extended (lower end down, upper end up, in steps of 1% of the end
    that double each time) until f changes sign, as R does."""
    maxiter = 1000
    f_lower, f_upper = f(lower), f(upper)

    def truncate(x: float) -> float:
        return max(min(x, _DBL_MAX), -_DBL_MAX)

    if truncate(f_lower) > 0 or truncate(f_upper) < 0:
        delta = 0.01 * max(1e-4, abs(lower))
        it = 0
        while f_lower > 0:  # NaN ends the loop, as isTRUE(NaN > 0) does in R
            it += 1
            if it > maxiter:
                break
            lower -= delta
            f_lower = f(lower)
            delta *= 2
        delta = 0.01 * max(1e-4, abs(upper))
        while f_upper < 0:
            it += 1
            if it > maxiter:
                break
            upper += delta
            f_upper = f(upper)
            delta *= 2
    if math.isnan(f_lower) or math.isnan(f_upper) or _sign(f_lower) * _sign(f_upper) > 0:
        raise InputError(f"no {what} achieves the requested power (R uniroot finds no sign change)",
                         column=what)  # fmt: skip
    return _zeroin2(f, lower, upper, f_lower, f_upper, _R_TOL, maxiter)


# -------------------------------------------------------------------------------------------- two proportions


def _prop_power_function(p1: float, p2: float, alpha: float, tside: int, ratio: float,
                         strict: bool) -> Callable[[float], float]:  # fmt: skip
    """Power as a function of the size n of group 1 (``nan`` for n < 0, as ``sqrt`` gives in R)."""
    qu = _z_alpha(alpha, tside)
    d = abs(p1 - p2)
    if ratio == 1.0:  # R's expressions, operation for operation
        null_sd = math.sqrt((p1 + p2) * (1 - (p1 + p2) / 2))
        alt_sd = math.sqrt(p1 * (1 - p1) + p2 * (1 - p2))
        strict_sd = math.sqrt(2 * (((p1 + p2) / 2) * (1 - (p1 + p2) / 2)))
        strict_alt = math.sqrt(p1 * (1 - p1) + p2 * (1 - p2))

        def power(n: float) -> float:
            if n < 0:
                return math.nan
            if strict and tside == 2:
                return _pnorm((math.sqrt(n) * d - qu * strict_sd) / strict_alt) + _pnorm(
                    -((math.sqrt(n) * d + qu * strict_sd) / strict_alt)
                )
            return _pnorm((math.sqrt(n) * d - (qu * null_sd)) / alt_sd)

        return power
    pbar = (p1 + ratio * p2) / (ratio + 1)
    null_sd = math.sqrt((ratio + 1) * pbar * (1 - pbar))
    alt_sd = math.sqrt(ratio * p1 * (1 - p1) + p2 * (1 - p2))

    def power_r(n: float) -> float:
        if n < 0:
            return math.nan
        shift = math.sqrt(ratio * n) * d
        out = _pnorm((shift - qu * null_sd) / alt_sd)
        if strict and tside == 2:
            out += _pnorm((-shift - qu * null_sd) / alt_sd)
        return out

    return power_r


def two_proportions(
    p1: float,
    p2: float,
    alpha: float = 0.05,
    power: float | None = None,
    n: float | None = None,
    alternative: str = "two-sided",
    ratio: float = 1,
    *,
    strict: bool = False,
) -> SampleSize:
    """Group size or power to compare two proportions with the (uncorrected) chi-square / z test.

    Give ``power`` to solve for ``n`` (the size of group 1; group 2 has ``ratio · n``), or ``n`` to compute the
    power. With ``ratio=1`` this is R ``power.prop.test(n, p1, p2, sig.level = alpha, power, alternative =
    "two.sided" / "one.sided", strict)``, root finding included; ``n_exact`` is R's fractional n and
    ``n_per_group`` rounds it up. ``ratio ≠ 1`` uses the Fleiss formula (see the module docstring).
    """
    p1 = _open_unit(p1, "p1")
    p2 = _open_unit(p2, "p2")
    alpha = _open_unit(alpha, "alpha")
    tside = _alternative(alternative)
    ratio = _positive(ratio, "ratio")
    solve = _exactly_one_missing(power=power, n=n)
    if p1 == p2:
        raise InputError(f"p1 and p2 are equal ({p1!r}): there is no difference to detect", column="p2",
                         values=[p2])  # fmt: skip
    f = _prop_power_function(p1, p2, alpha, tside, ratio, bool(strict))
    if solve == "n":
        target = _open_unit(power, "power")
        n1 = _uniroot_up(lambda size: f(size) - target, 1.0, 1e7, "n")
        achieved = target
    else:
        n1 = _positive(n, "n")
        achieved = f(n1)
    n2 = ratio * n1
    method = "Two-sample comparison of proportions, normal approximation"
    method += " (R power.prop.test)" if ratio == 1 else " (Fleiss, Tytun & Ury 1980, unequal groups)"
    return SampleSize(
        design="two proportions", method=method, n_exact=(n1, n2), n_per_group=(_ceil(n1), _ceil(n2)),
        events_exact=None, events=None, power=achieved, alpha=alpha, alternative=alternative, solved_for=solve,
        inputs=(("p1", p1), ("p2", p2), ("ratio", ratio), ("strict", bool(strict))),
    )  # fmt: skip


# ------------------------------------------------------------------------------------------------- log-rank


def exponential_event_probability(hazard: float, accrual: float = 0.0, follow_up: float = 0.0) -> float:
    """Probability that a patient's event is observed by the end of the study under exponential survival with
    rate ``hazard``, uniform entry over ``[0, accrual]`` and a further ``follow_up`` after accrual closes
    (administrative censoring only; Lachin & Foulkes 1986; Collett 2015, §10.2):

        P = 1 − [exp(−λ f) − exp(−λ (a + f))] / (λ a)    (a > 0),    P = 1 − exp(−λ f)    (a = 0).

    Each patient is followed between ``follow_up`` and ``accrual + follow_up``; P is the average of
    ``1 − exp(−λ t)`` over that uniform range of follow-up times.
    """
    lam = _positive(hazard, "hazard")
    a = _positive(accrual, "accrual", allow_zero=True)
    f = _positive(follow_up, "follow_up", allow_zero=True)
    if a + f <= 0:
        raise InputError("accrual + follow_up must be positive: nobody can be followed for no time",
                         column="follow_up", values=[follow_up])  # fmt: skip
    x = lam * a  # exp(−λf) − exp(−λ(a + f)) = exp(−λf) (1 − exp(−λa)), computed without cancellation
    ratio = -math.expm1(-x) / x if x > 0 else 1.0
    return -math.expm1(-lam * f) if a == 0 else 1.0 - math.exp(-lam * f) * ratio


def _survival_event_probability(
    hr: float,
    allocation: float,
    event_probability: float | None,
    median_control: float | None,
    hazard_control: float | None,
    accrual: float,
    follow_up: float | None,
) -> tuple[float | None, tuple[tuple[str, Any], ...]]:
    """The overall probability of an event, ``p P₁ + (1 − p) P₀`` with hazards ``HR λ₀`` and ``λ₀``, or the one
    given; plus the inputs to record."""
    given = [name for name, v in (("event_probability", event_probability), ("median_control", median_control),
                                  ("hazard_control", hazard_control)) if v is not None]  # fmt: skip
    if len(given) > 1:
        raise InputError(f"give at most one of event_probability, median_control and hazard_control, not {given}",
                         column=given[1])  # fmt: skip
    if event_probability is not None:
        prob = _number(event_probability, "event_probability")
        if not 0 < prob <= 1:
            raise InputError(f"event_probability must lie in (0, 1], not {event_probability!r}",
                             column="event_probability", values=[event_probability])  # fmt: skip
        return prob, (("event_probability", prob),)
    if not given:
        return None, ()
    if median_control is not None:
        lam0 = math.log(2) / _positive(median_control, "median_control")
    else:
        lam0 = _positive(hazard_control, "hazard_control")
    if follow_up is None:
        raise InputError("follow_up (after the end of accrual) is needed to turn the hazard into an event "
                         "probability", column="follow_up")  # fmt: skip
    p_exp = exponential_event_probability(hr * lam0, accrual, follow_up)
    p_ctl = exponential_event_probability(lam0, accrual, follow_up)
    prob = allocation * p_exp + (1 - allocation) * p_ctl
    inputs: tuple[tuple[str, Any], ...] = (
        ("hazard_control", lam0), ("accrual", float(accrual)), ("follow_up", float(follow_up)),
        ("event_probability_group1", p_exp), ("event_probability_group2", p_ctl), ("event_probability", prob),
    )  # fmt: skip
    if median_control is not None:
        inputs = (("median_control", float(median_control)), *inputs)
    return prob, inputs


def _events_design(
    design: str,
    method: str,
    effect: float,
    alpha: float,
    power: float | None,
    events: float | None,
    n: float | None,
    allocation: float,
    alternative: str,
    prob: float | None,
    inputs: tuple[tuple[str, Any], ...],
) -> SampleSize:
    """Shared solve step of the event-driven designs. ``effect`` is the standardised effect per event:
    ``√(p(1−p)) |log HR|`` (Schoenfeld) or ``|1 − HR| / (1 + HR)`` (Freedman), so that
    ``d = (z_α + z_β)² / effect²`` and ``power = Φ(√d · effect − z_α)``."""
    tside = _alternative(alternative)
    z_a = _z_alpha(alpha, tside)
    if power is None:
        if (events is None) == (n is None):
            raise InputError("to compute the power give exactly one of events and n (patients)", column="events",
                             values=[events, n])  # fmt: skip
        if n is not None:
            if prob is None:
                raise InputError("n (patients) needs an event probability (event_probability, median_control "
                                 "or hazard_control, or cif_control) to give the number of events",
                                 column="n", values=[n])  # fmt: skip
            patients = _positive(n, "n")
            d = patients * prob
            n_all: float | None = patients
        else:
            d = _positive(events, "events")
            n_all = None if prob is None else d / prob
        if d <= 0:
            raise InputError(f"the number of events must be positive, not {d!r}", column="events", values=[d])
        achieved = _pnorm(math.sqrt(d) * effect - z_a)
    else:
        if events is not None or n is not None:
            raise InputError("power is given, so the events are solved for: leave events and n as None (or leave "
                             "power as None to compute it)", column="power", values=[power])  # fmt: skip
        achieved = _open_unit(power, "power")
        z_b = float(-special.ndtri(1 - achieved))
        d = (z_a + z_b) ** 2 / effect**2
        n_all = None if prob is None else d / prob
    n_exact = None if n_all is None else (allocation * n_all, (1 - allocation) * n_all)
    n_per_group = None if n_exact is None else (_ceil(n_exact[0]), _ceil(n_exact[1]))
    return SampleSize(
        design=design, method=method, n_exact=n_exact, n_per_group=n_per_group, events_exact=d, events=_ceil(d),
        power=achieved, alpha=alpha, alternative=alternative,
        solved_for="power" if power is None else "events", inputs=inputs,
    )  # fmt: skip


def logrank(
    hazard_ratio: float,
    alpha: float = 0.05,
    power: float | None = None,
    events: float | None = None,
    n: float | None = None,
    *,
    method: str = "schoenfeld",
    allocation: float = 0.5,
    alternative: str = "two-sided",
    event_probability: float | None = None,
    median_control: float | None = None,
    hazard_control: float | None = None,
    accrual: float = 0.0,
    follow_up: float | None = None,
) -> SampleSize:
    """Events (and patients) or power for the log-rank test of a hazard ratio (group 1 / group 2).

    Leave exactly one of ``power``, ``events``, ``n`` as None: with ``power`` given the required events are
    solved; with ``events`` (or ``n`` patients, turned into events by the event probability) the power is
    computed. ``method="schoenfeld"`` (Schoenfeld 1981; any ``allocation`` p = share of patients in group 1) or
    ``"freedman"`` (Freedman 1982; 1:1 only). Patients are ``events / P(event)``, split p : 1 − p and each
    rounded up, when the probability of an event is known: ``event_probability`` directly, or from exponential
    survival with control median ``median_control`` (λ₀ = log 2 / median) or hazard ``hazard_control``, group 1
    hazard HR·λ₀, uniform ``accrual`` and further ``follow_up`` (:func:`exponential_event_probability`), averaged
    over the groups with weights p and 1 − p. Without any of them only events are given.
    """
    hr = _positive(hazard_ratio, "hazard_ratio")
    if hr == 1:
        raise InputError("hazard_ratio is 1: there is no difference to detect", column="hazard_ratio", values=[hr])
    alpha = _open_unit(alpha, "alpha")
    p = _open_unit(allocation, "allocation")
    acc = _positive(accrual, "accrual", allow_zero=True)
    if method == "schoenfeld":
        effect = math.sqrt(p * (1 - p)) * abs(math.log(hr))
        label = "Schoenfeld (1981)"
    elif method == "freedman":
        if p != 0.5:
            raise InputError(f"Freedman's formula is for 1:1 allocation; allocation={allocation!r} needs "
                             "method='schoenfeld'", column="allocation", values=[allocation])  # fmt: skip
        effect = abs(1 - hr) / (1 + hr)
        label = "Freedman (1982)"
    else:
        raise InputError(f"method must be 'schoenfeld' or 'freedman', not {method!r}", column="method",
                         values=[method])  # fmt: skip
    prob, prob_inputs = _survival_event_probability(hr, p, event_probability, median_control, hazard_control,
                                                    acc, follow_up)  # fmt: skip
    inputs = (("hazard_ratio", hr), ("allocation", p), *prob_inputs)
    return _events_design("log-rank", f"log-rank test, {label}", effect, alpha, power, events, n, p, alternative,
                          prob, inputs)  # fmt: skip


# -------------------------------------------------------------------------------------------- competing risks


def competing_risks(
    subdistribution_hr: float,
    cif_control: float,
    alpha: float = 0.05,
    power: float | None = None,
    events: float | None = None,
    n: float | None = None,
    *,
    allocation: float = 0.5,
    alternative: str = "two-sided",
) -> SampleSize:
    """Events of the cause of interest (and patients) or power to detect a Fine–Gray subdistribution hazard
    ratio θ = ``subdistribution_hr`` (group 1 / group 2), Latouche, Porcher & Chevret (2004).

    ``cif_control`` is F₀(τ), the cumulative incidence of the cause of interest in group 2 (control) at the end
    of follow-up τ (every patient followed to τ). Events: Schoenfeld's formula with θ; patients: ``N = d / ψ``,
    ``ψ = p (1 − (1 − F₀(τ))^θ) + (1 − p) F₀(τ)`` (proportional subdistribution hazards give group 1's incidence
    ``1 − (1 − F₀)^θ``). Leave exactly one of ``power``, ``events``, ``n`` as None.
    """
    theta = _positive(subdistribution_hr, "subdistribution_hr")
    if theta == 1:
        raise InputError("subdistribution_hr is 1: there is no difference to detect", column="subdistribution_hr",
                         values=[theta])  # fmt: skip
    f0 = _open_unit(cif_control, "cif_control")
    alpha = _open_unit(alpha, "alpha")
    p = _open_unit(allocation, "allocation")
    f1 = -math.expm1(theta * math.log1p(-f0))
    psi = p * f1 + (1 - p) * f0
    effect = math.sqrt(p * (1 - p)) * abs(math.log(theta))
    inputs: tuple[tuple[str, Any], ...] = (
        ("subdistribution_hr", theta), ("allocation", p), ("cif_control", f0), ("cif_group1", f1),
        ("event_probability", psi),
    )  # fmt: skip
    return _events_design("competing risks", "Fine–Gray subdistribution hazards, Latouche, Porcher & Chevret "
                          "(2004)", effect, alpha, power, events, n, p, alternative, psi, inputs)  # fmt: skip
