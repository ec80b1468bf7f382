# Reference values for allotrack.design.power:
#   * two proportions, 1:1: stats::power.prop.test itself (solve n, solve power, one-sided, strict = TRUE, an
#     interval extension of its uniroot search);
#   * two proportions, unequal groups: the Fleiss, Tytun & Ury (1980) formula written out below, solved with the
#     same uniroot call as power.prop.test (its value at ratio = 1 is checked against power.prop.test here);
#   * log-rank events: Schoenfeld (1981) and Freedman (1982) formulas written out, and power given events;
#   * the probability of an event under exponential survival, uniform accrual and further follow-up, in closed
#     form and checked here against numerical integration;
#   * competing risks: Latouche, Porcher & Chevret (2004): Schoenfeld's formula with the subdistribution hazard
#     ratio and N = d / psi, psi = p (1 - (1 - F0)^theta) + (1 - p) F0.
# Each case stores the Python call (function name and keyword arguments) with R's results, so the tests never
# need R.   Rscript tests/reference/power_reference.R   (R >= 4.2, jsonlite)
library(jsonlite)

# ------------------------------------------------------------------------------------------ power.prop.test
prop_case <- function(name, p1, p2, n = NULL, power = NULL, sig.level = 0.05, alternative = "two.sided",
                      strict = FALSE) {
  r <- power.prop.test(n = n, p1 = p1, p2 = p2, power = power, sig.level = sig.level,
                       alternative = alternative, strict = strict)
  args <- list(p1 = p1, p2 = p2, alpha = sig.level,
               alternative = if (alternative == "two.sided") "two-sided" else "one-sided", strict = strict)
  if (!is.null(n)) args$n <- n
  if (!is.null(power)) args$power <- power
  list(name = name, fun = "two_proportions", args = args, n = r$n, power = r$power)
}
prop_cases <- list(
  prop_case("doc_solve_n", 0.50, 0.75, power = 0.90),                      # ?power.prop.test examples
  prop_case("doc_solve_power", 0.50, 0.75, n = 50),
  prop_case("one_sided_n", 0.50, 0.75, power = 0.90, alternative = "one.sided"),
  prop_case("one_sided_power", 0.20, 0.30, n = 150, alternative = "one.sided", sig.level = 0.025),
  prop_case("strict_n", 0.50, 0.75, power = 0.90, strict = TRUE),
  prop_case("strict_power", 0.50, 0.75, n = 12, strict = TRUE),
  prop_case("small_difference_n", 0.10, 0.15, power = 0.80, sig.level = 0.01),
  prop_case("decrease_n", 0.65, 0.45, power = 0.80),
  prop_case("gvhd_n", 0.40, 0.20, power = 0.85, sig.level = 0.05),
  prop_case("alpha_10_power", 0.20, 0.30, n = 100, sig.level = 0.10),
  prop_case("fractional_n_power", 0.35, 0.55, n = 47.5),
  prop_case("extend_lower_n", 0.05, 0.95, power = 0.05)                    # power at n = 1 exceeds 0.05
)

# ------------------------------------------------------------- unequal groups: Fleiss, Tytun & Ury (1980)
fleiss_power <- function(n1, p1, p2, ratio, sig.level, tside, strict) {
  qu <- qnorm(sig.level / tside, lower.tail = FALSE)
  pbar <- (p1 + ratio * p2) / (ratio + 1)
  null_sd <- sqrt((ratio + 1) * pbar * (1 - pbar))
  alt_sd <- sqrt(ratio * p1 * (1 - p1) + p2 * (1 - p2))
  shift <- sqrt(ratio * n1) * abs(p1 - p2)
  out <- pnorm((shift - qu * null_sd) / alt_sd)
  if (strict && tside == 2) out <- out + pnorm((-shift - qu * null_sd) / alt_sd)
  out
}
fleiss_closed_n <- function(p1, p2, ratio, sig.level, tside, power) {   # non-strict closed form
  pbar <- (p1 + ratio * p2) / (ratio + 1)
  (qnorm(sig.level / tside, lower.tail = FALSE) * sqrt((ratio + 1) * pbar * (1 - pbar)) +
     qnorm(power) * sqrt(ratio * p1 * (1 - p1) + p2 * (1 - p2)))^2 / (ratio * (p1 - p2)^2)
}
ratio_case <- function(name, p1, p2, ratio, n = NULL, power = NULL, sig.level = 0.05, alternative = "two.sided",
                       strict = FALSE) {
  tside <- if (alternative == "two.sided") 2 else 1
  if (is.null(n)) {
    n <- uniroot(function(n) fleiss_power(n, p1, p2, ratio, sig.level, tside, strict) - power, c(1, 1e7),
                 tol = .Machine$double.eps^0.25, extendInt = "upX")$root
    solved <- "n"
    if (!strict) stopifnot(abs(n - fleiss_closed_n(p1, p2, ratio, sig.level, tside, power)) < 1e-3)
  } else {
    power <- fleiss_power(n, p1, p2, ratio, sig.level, tside, strict)
    solved <- "power"
  }
  args <- list(p1 = p1, p2 = p2, alpha = sig.level, ratio = ratio,
               alternative = if (alternative == "two.sided") "two-sided" else "one-sided", strict = strict)
  if (solved == "n") args$power <- power else args$n <- n
  list(name = name, fun = "two_proportions", args = args, n = n, n2 = ratio * n, power = power)
}
# at ratio = 1 the written-out formula is power.prop.test's
stopifnot(abs(ratio_case("x", 0.5, 0.75, 1, power = 0.9)$n - power.prop.test(p1 = .5, p2 = .75, power = .9)$n) < 1e-6)
ratio_cases <- list(
  ratio_case("ratio_2_n", 0.30, 0.50, ratio = 2, power = 0.80),
  ratio_case("ratio_half_one_sided_n", 0.20, 0.35, ratio = 0.5, power = 0.90, alternative = "one.sided"),
  ratio_case("ratio_1.5_power", 0.25, 0.45, ratio = 1.5, n = 80),
  ratio_case("ratio_3_strict_n", 0.50, 0.70, ratio = 3, power = 0.85, strict = TRUE)
)

# ----------------------------------------------------------------------------------------------- log-rank
z <- function(alpha, tside) qnorm(alpha / tside, lower.tail = FALSE)
# exponential survival, uniform entry on [0, a], further follow-up f: P(event observed)
p_event <- function(lambda, a, f) if (a == 0) 1 - exp(-lambda * f) else
  1 - (exp(-lambda * f) - exp(-lambda * (a + f))) / (lambda * a)
for (pars in list(c(0.05, 24, 12), c(0.2, 10, 0), c(0.01, 0, 36), c(1.3, 2, 0.5))) {
  num <- integrate(function(t) 1 - exp(-pars[1] * t), pars[3], pars[2] + pars[3])$value / pars[2]
  if (pars[2] == 0) num <- 1 - exp(-pars[1] * pars[3])
  stopifnot(abs(p_event(pars[1], pars[2], pars[3]) - num) < 1e-10)
}
event_prob_cases <- lapply(list(c(0.05, 24, 12), c(0.2, 10, 0), c(0.01, 0, 36), c(1.3, 2, 0.5)), function(p)
  list(hazard = p[1], accrual = p[2], follow_up = p[3], probability = p_event(p[1], p[2], p[3])))

survival_case <- function(name, hr, method = "schoenfeld", power = NULL, events = NULL, alpha = 0.05,
                          alternative = "two-sided", allocation = 0.5, median_control = NULL, accrual = 0,
                          follow_up = NULL, event_probability = NULL) {
  tside <- if (alternative == "two-sided") 2 else 1
  effect <- if (method == "schoenfeld") sqrt(allocation * (1 - allocation)) * abs(log(hr)) else
    abs(1 - hr) / (1 + hr)
  if (is.null(events)) {
    # Schoenfeld: d = (z_a + z_b)^2 / (p (1 - p) log(HR)^2); Freedman: d = (z_a + z_b)^2 (1 + HR)^2 / (1 - HR)^2
    d <- if (method == "schoenfeld") (z(alpha, tside) + qnorm(power))^2 / (allocation * (1 - allocation) * log(hr)^2)
         else (z(alpha, tside) + qnorm(power))^2 * (1 + hr)^2 / (1 - hr)^2
  } else {
    d <- events
    power <- pnorm(sqrt(d) * effect - z(alpha, tside))
  }
  prob <- event_probability
  if (!is.null(median_control)) {
    lambda0 <- log(2) / median_control
    prob <- allocation * p_event(hr * lambda0, accrual, follow_up) + (1 - allocation) * p_event(lambda0, accrual, follow_up)
  }
  args <- list(hazard_ratio = hr, method = method, alpha = alpha, alternative = alternative, allocation = allocation)
  if (is.null(events)) args$power <- power else args$events <- events
  if (!is.null(median_control)) { args$median_control <- median_control; args$accrual <- accrual; args$follow_up <- follow_up }
  if (!is.null(event_probability)) args$event_probability <- event_probability
  out <- list(name = name, fun = "logrank", args = args, events = d, power = power)
  if (!is.null(prob)) { out$event_probability <- prob; out$n_total <- d / prob }
  out
}
survival_cases <- list(
  survival_case("schoenfeld_hr0.6", 0.6, power = 0.8),
  survival_case("schoenfeld_hr0.7_2to1", 0.7, power = 0.9, allocation = 2 / 3),
  survival_case("schoenfeld_hr1.5_one_sided", 1.5, power = 0.8, alpha = 0.025, alternative = "one-sided"),
  survival_case("schoenfeld_power", 0.7, events = 150),
  survival_case("schoenfeld_exponential", 0.6, power = 0.8, median_control = 12, accrual = 24, follow_up = 12),
  survival_case("schoenfeld_given_probability", 0.75, power = 0.85, event_probability = 0.55, allocation = 0.4),
  survival_case("freedman_hr0.6", 0.6, method = "freedman", power = 0.8),
  survival_case("freedman_hr0.75", 0.75, method = "freedman", power = 0.9, alpha = 0.01),
  survival_case("freedman_power", 0.7, method = "freedman", events = 200),
  survival_case("freedman_exponential_no_accrual", 0.65, method = "freedman", power = 0.8, median_control = 18,
                accrual = 0, follow_up = 24)
)

# ------------------------------------------------------------------------ competing risks: Latouche et al.
latouche_case <- function(name, shr, cif0, power = NULL, events = NULL, n = NULL, alpha = 0.05,
                          alternative = "two-sided", allocation = 0.5) {
  tside <- if (alternative == "two-sided") 2 else 1
  cif1 <- 1 - (1 - cif0)^shr                       # proportional subdistribution hazards
  psi <- allocation * cif1 + (1 - allocation) * cif0
  effect <- sqrt(allocation * (1 - allocation)) * abs(log(shr))
  if (!is.null(power)) {
    d <- (z(alpha, tside) + qnorm(power))^2 / (allocation * (1 - allocation) * log(shr)^2)
  } else {
    d <- if (!is.null(events)) events else n * psi
    power <- pnorm(sqrt(d) * effect - z(alpha, tside))
  }
  args <- list(subdistribution_hr = shr, cif_control = cif0, alpha = alpha, alternative = alternative,
               allocation = allocation)
  if (!is.null(events)) args$events <- events
  if (!is.null(n)) args$n <- n
  if (is.null(events) && is.null(n)) args$power <- power
  list(name = name, fun = "competing_risks", args = args, events = d, power = power, cif_group1 = cif1,
       event_probability = psi, n_total = d / psi)
}
latouche_cases <- list(
  latouche_case("shr0.6_cif0.3", 0.6, 0.3, power = 0.8),
  latouche_case("shr1.5_cif0.2_unequal", 1.5, 0.2, power = 0.9, allocation = 0.4),
  latouche_case("shr0.7_one_sided", 0.7, 0.35, power = 0.8, alpha = 0.025, alternative = "one-sided"),
  latouche_case("power_given_n", 0.65, 0.25, n = 400),
  latouche_case("power_given_events", 0.65, 0.25, events = 90)
)

out <- list(r_version = R.version.string, two_proportions = c(prop_cases, ratio_cases),
            survival = c(survival_cases, latouche_cases), event_probability = event_prob_cases)
write_json(out, "tests/reference/power_reference.json", digits = NA, auto_unbox = TRUE, pretty = TRUE, na = "null")
