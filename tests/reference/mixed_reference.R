# Reference values for allotrack.stats.mixed: linear mixed models for repeated measures fitted by REML.
#   Rscript tests/reference/mixed_reference.R   (R >= 4.2, jsonlite, lme4; nlme only for its Orthodont data)
#
# Per case: lme4::lmer(formula, data, REML = TRUE) and, from the fit,
#   * fixef() and sqrt(diag(vcov())) (the fixed-effect covariance given the variance parameters, sigma^2 (X'V^-1 X)^-1);
#   * VarCorr(): random-intercept variance, random-slope variance and their correlation, residual variance sigma^2;
#   * REMLcrit() (-2 x REML log-likelihood) and logLik() (the REML log-likelihood), n observations and groups.
# The fits use nloptwrap (lme4's default optimiser) with tolerances tightened far below its defaults, so that the
# reference is the REML optimum itself rather than wherever the default stopping rule happens to stop; the
# default-tolerance REML criterion is stored too ("reml_crit_default") to show how little that moves it.
# Each case ships its data (columns as used by the fit: factors as character, so levels sort alphabetically in R
# and in Python alike and the first is the reference level) so the tests never run R.
suppressPackageStartupMessages({
  library(jsonlite)
  library(lme4)
})

tight <- lmerControl(optimizer = "nloptwrap",
                     optCtrl = list(xtol_abs = 1e-14, ftol_abs = 1e-15, xtol_rel = 1e-14, ftol_rel = 1e-15,
                                    maxeval = 100000))

mixed_case <- function(name, formula, data, outcome, fixed, group, random, time = NULL, source = "") {
  fit <- lmer(formula, data = data, REML = TRUE, control = tight)
  fit0 <- lmer(formula, data = data, REML = TRUE)
  vc <- as.data.frame(VarCorr(fit))
  grp <- vc[vc$grp == group, ]
  resid <- vc[vc$grp == "Residual", "vcov"]
  intercept_var <- grp[grp$var1 == "(Intercept)" & is.na(grp$var2), "vcov"]
  slope_var <- if (random == "slope") grp[grp$var1 == time & is.na(grp$var2), "vcov"] else NA_real_
  corr <- if (random == "slope") grp[!is.na(grp$var2), "sdcor"] else NA_real_
  cols <- unique(c(outcome, all.vars(as.formula(paste("~", fixed))), group, time))
  list(
    name = name, source = source, formula = deparse(formula), outcome = outcome, fixed = fixed, group = group,
    random = random, time = if (is.null(time)) NA else time,
    coef_names = names(fixef(fit)), coef = unname(fixef(fit)),
    se = unname(sqrt(diag(as.matrix(vcov(fit))))),
    vcov = unname(split(as.matrix(vcov(fit)), row(as.matrix(vcov(fit))))),
    intercept_var = intercept_var, slope_var = slope_var, corr = corr, residual_var = resid,
    reml_crit = unname(REMLcrit(fit)), loglik = as.numeric(logLik(fit)),
    reml_crit_default = unname(REMLcrit(fit0)),
    n_obs = nobs(fit), n_groups = unname(ngrps(fit)[group]),
    data = data[, cols]
  )
}

data(sleepstudy, package = "lme4")
sleep <- data.frame(Reaction = sleepstudy$Reaction, Days = sleepstudy$Days,
                    Subject = as.character(sleepstudy$Subject))

chick <- data.frame(weight = ChickWeight$weight, Time = ChickWeight$Time, Diet = as.character(ChickWeight$Diet),
                    Chick = as.character(ChickWeight$Chick))

data(Orthodont, package = "nlme")
ortho <- data.frame(distance = Orthodont$distance, age = Orthodont$age, Sex = as.character(Orthodont$Sex),
                    Subject = as.character(Orthodont$Subject))

# A simulated trial: IL-6 (log scale) on day 0, 1 and 7 in two arms, 40 patients, some visits missed (unbalanced).
set.seed(20240611)
n <- 40
il6 <- expand.grid(visit_day = c(0, 1, 7), patient = sprintf("P%02d", seq_len(n)), stringsAsFactors = FALSE)
il6$arm <- ifelse(as.integer(sub("P", "", il6$patient)) %% 2 == 0, "MSC", "Control")
u0 <- rnorm(n, 0, 0.6)
u1 <- rnorm(n, 0, 0.05)
pid <- as.integer(sub("P", "", il6$patient))
il6$visit <- paste0("day", il6$visit_day)
il6$log_il6 <- 2 + 0.8 * (il6$visit == "day1") - 0.4 * (il6$visit == "day7") -
  0.3 * (il6$arm == "MSC") * (il6$visit != "day0") + u0[pid] + u1[pid] * il6$visit_day + rnorm(nrow(il6), 0, 0.4)
il6 <- il6[-sample(nrow(il6), 14), ]  # missed visits
rownames(il6) <- NULL

cases <- list(
  mixed_case("sleepstudy_intercept", Reaction ~ Days + (1 | Subject), sleep, "Reaction", "Days", "Subject",
             "intercept", source = "lme4 sleepstudy, random intercept"),
  mixed_case("sleepstudy_slope", Reaction ~ Days + (Days | Subject), sleep, "Reaction", "Days", "Subject",
             "slope", time = "Days", source = "lme4 sleepstudy, correlated random intercept and slope"),
  mixed_case("chickweight", weight ~ Time * Diet + (1 | Chick), chick, "weight", "Time * Diet", "Chick",
             "intercept", source = "datasets ChickWeight (unbalanced: some chicks drop out)"),
  mixed_case("chickweight_slope", weight ~ Time * Diet + (Time | Chick), chick, "weight", "Time * Diet", "Chick",
             "slope", time = "Time", source = "datasets ChickWeight with a random slope on Time"),
  mixed_case("orthodont", distance ~ age * Sex + (1 | Subject), ortho, "distance", "age * Sex", "Subject",
             "intercept", source = "nlme Orthodont (Sex as character: Female is the reference level)"),
  mixed_case("orthodont_slope", distance ~ age + Sex + (age | Subject), ortho, "distance", "age + Sex", "Subject",
             "slope", time = "age", source = "nlme Orthodont with a random slope on age"),
  mixed_case("il6_visit_arm", log_il6 ~ visit * arm + (1 | patient), il6, "log_il6", "visit * arm", "patient",
             "intercept", source = "simulated IL-6 by visit (factor) and arm, missed visits"),
  mixed_case("il6_visit_arm_slope", log_il6 ~ visit * arm + (visit_day | patient), il6, "log_il6", "visit * arm",
             "patient", "slope", time = "visit_day", source = "the same with a random slope on day")
)

out <- list(r_version = R.version.string, lme4_version = as.character(packageVersion("lme4")), cases = cases)
write_json(out, "tests/reference/mixed_reference.json", digits = NA, auto_unbox = TRUE, pretty = TRUE,
           dataframe = "columns")
