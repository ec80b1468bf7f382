# Reference values for allotrack.stats.conditional_logistic: conditional logistic regression for matched sets.
#   Rscript tests/reference/clogit_reference.R   (R >= 4.2, survival >= 3.5, jsonlite)
#
# Per model: survival::clogit(y ~ covariates + strata(set), method = "exact") at its default control
# (coxph.control(): eps = 1e-9 on the relative change of the log-likelihood, iter.max = 20): coefficients,
# standard errors, z, Wald p, Wald limits of the odds ratio (summary(fit)$conf.int), the null and fitted
# conditional log-likelihoods, the likelihood-ratio, Wald and score tests (summary(fit)$logtest, $waldtest,
# $sctest; summary() rounds the Wald statistic to 2 decimals, so "wald_test" is the unrounded fit$wald.test and
# "wald_test_summary" the rounded one; summary's p-value comes from the unrounded statistic) and the number of
# Newton-Raphson iterations. The same model refitted at eps = 1e-13 ("tight") gives the maximum-likelihood
# estimates to full precision. The data are written to the JSON too, so that the tests never
# need R.
library(jsonlite)
library(survival)

clogit_case <- function(name, formula, data, level = 0.95, source = "") {
  fit <- clogit(formula, data = data, method = "exact")
  tight <- clogit(formula, data = data, method = "exact",
                  control = coxph.control(eps = 1e-13, toler.chol = 1e-15, iter.max = 100))
  s <- summary(fit, conf.int = level)
  co <- s$coefficients
  ci <- s$conf.int
  vars <- all.vars(formula)
  outcome <- vars[1]
  set <- data[[tail(vars, 1)]]
  y <- data[[outcome]]
  cases_per_set <- tapply(y, set, sum)
  size_per_set <- tapply(y, set, length)
  list(
    name = name, source = source, formula = deparse(formula), conf_level = level,
    outcome = outcome, covariates = I(vars[-c(1, length(vars))]), strata = tail(vars, 1),
    data = data[, vars],
    terms = I(rownames(co)),
    coef = unname(co[, "coef"]), se = unname(co[, "se(coef)"]), z = unname(co[, "z"]),
    p = unname(co[, "Pr(>|z|)"]),
    or_lower = unname(ci[, 3]), or_upper = unname(ci[, 4]),
    var = unname(fit$var),
    loglik_null = fit$loglik[1], loglik = fit$loglik[2],
    lr_test = unname(s$logtest["test"]), lr_df = unname(s$logtest["df"]), lr_p = unname(s$logtest["pvalue"]),
    wald_test = unname(fit$wald.test), wald_test_summary = unname(s$waldtest["test"]),
    wald_df = unname(s$waldtest["df"]), wald_p = unname(s$waldtest["pvalue"]),
    score_test = unname(s$sctest["test"]), score_df = unname(s$sctest["df"]), score_p = unname(s$sctest["pvalue"]),
    n = fit$n, n_events = fit$nevent, iterations = fit$iter,
    n_sets = length(cases_per_set),
    n_informative_sets = sum(cases_per_set > 0 & cases_per_set < size_per_set),
    tight_coef = unname(coef(tight)), tight_se = unname(sqrt(diag(tight$var))), tight_loglik = tight$loglik[2]
  )
}

# (a) 1:1 matched pairs: one case and one control per pair, a binary and a continuous covariate
set.seed(20240611)
n_pairs <- 60
pairs <- data.frame(pair = rep(seq_len(n_pairs), each = 2), case = rep(c(1, 0), n_pairs))
pairs$smoker <- rbinom(nrow(pairs), 1, ifelse(pairs$case == 1, 0.45, 0.3))
pairs$bmi <- round(rnorm(nrow(pairs), 26 + 1.2 * pairs$case, 4), 1)

# (b) matched sets of 2 to 8 members with 1 to size - 1 cases (often more cases than controls, so the exact
# likelihood sums over many subsets) and a 3-level factor covariate (reference level "low")
set.seed(7)
n_sets <- 40
sizes <- sample(2:8, n_sets, replace = TRUE)
sets <- do.call(rbind, lapply(seq_len(n_sets), function(s) {
  k <- sizes[s]
  m <- sample(seq_len(k - 1), 1)
  data.frame(set = s, y = sample(rep(c(1, 0), c(m, k - m))))
}))
sets$dose <- round(rnorm(nrow(sets), 0.6 * sets$y, 1), 2)
sets$exposure <- factor(sample(c("low", "mid", "high"), nrow(sets), replace = TRUE, prob = c(0.4, 0.35, 0.25)),
                        levels = c("low", "mid", "high"))
sets$exposure[sets$y == 1 & runif(nrow(sets)) < 0.3] <- "high"

# (d) 1:3 matched sets plus one set whose members are all cases and one with no case (both uninformative)
set.seed(99)
n_q <- 30
quads <- data.frame(set = rep(seq_len(n_q), each = 4), case = rep(c(1, 0, 0, 0), n_q))
quads$x <- round(rnorm(nrow(quads), 0.5 * quads$case, 1), 3)
quads <- rbind(quads,
               data.frame(set = n_q + 1, case = c(1, 1, 1), x = c(-2.5, 0.3, 4.1)),
               data.frame(set = n_q + 2, case = c(0, 0, 0, 0, 0), x = c(3.3, -1.2, 0.7, 5.0, -4.4)))

inf <- infert[, c("case", "spontaneous", "induced", "stratum")]

cases <- list(
  clogit_case("pairs_1to1", case ~ smoker + bmi + strata(pair), pairs,
              source = "simulated 1:1 matched pairs (seed 20240611): a binary and a continuous covariate"),
  clogit_case("sets_2to8_factor", y ~ dose + exposure + strata(set), sets,
              source = "simulated sets of 2-8 with 1..size-1 cases (seed 7); exposure a factor (reference low)"),
  clogit_case("sets_2to8_factor_90", y ~ dose + exposure + strata(set), sets, level = 0.90,
              source = "the same at 90%"),
  clogit_case("infert", case ~ spontaneous + induced + strata(stratum), inf,
              source = "R datasets::infert: clogit(case ~ spontaneous + induced + strata(stratum))"),
  clogit_case("uninformative_sets", case ~ x + strata(set), quads,
              source = "simulated 1:3 sets (seed 99) plus an all-case set and a no-case set")
)

out <- list(r_version = R.version.string, survival_version = as.character(packageVersion("survival")),
            cases = cases)
write_json(out, "tests/reference/clogit_reference.json", digits = NA, auto_unbox = TRUE, pretty = TRUE,
           dataframe = "columns", factor = "string")
