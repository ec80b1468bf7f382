# Reference values for allotrack's competing-risks module, from R's cmprsk (cuminc, timepoints, crr,
# predict.crr) and survival (Aalen-Johansen survfit).
#
# Run from the repository root:  Rscript tests/reference/competing_reference.R
# Writes tests/reference/data/{mgus2_cr,myeloid_cir,crtoy}.csv and tests/reference/competing_reference.json.
# crr is run with gtol = 1e-12 so that its coefficients are converged well below the 1e-6 test tolerance.
suppressPackageStartupMessages({library(survival); library(cmprsk); library(jsonlite)})
out_dir <- "tests/reference"
dat_dir <- file.path(out_dir, "data")
num <- function(x) { x <- as.numeric(x); x[is.nan(x)] <- NA; x }
save_csv <- function(df, name) write.csv(df, file.path(dat_dir, paste0(name, ".csv")), row.names = FALSE, na = "")

# ---------------------------------------------------------------- data sets
# MGUS: progression to plasma-cell malignancy (1) with death (2) competing; months
mg <- mgus2
mg$etime <- ifelse(mg$pstat == 0, mg$futime, mg$ptime)
mg$cause <- ifelse(mg$pstat == 0, 2 * mg$death, 1)
mg <- na.omit(mg[, c("id", "age", "sex", "hgb", "creat", "mspike", "etime", "cause")])
mg$sex <- as.character(mg$sex)
mg$agegrp <- cut(mg$age, c(0, 60, 70, 80, 120), labels = c("<60", "60-69", "70-79", "80+"))
mg$agegrp <- as.character(mg$agegrp)
save_csv(mg, "mgus2_cr")

# AML trial: relapse (1) with death without relapse (2) competing, from randomisation; days
my <- myeloid
my$cir_time <- ifelse(!is.na(my$rltime), my$rltime, my$futime)
my$cir_cause <- ifelse(!is.na(my$rltime), 1, 2 * my$death)
my$trt <- as.character(my$trt); my$sex <- as.character(my$sex)
my$transplanted <- as.integer(!is.na(my$txtime))
save_csv(my[, c("id", "trt", "sex", "transplanted", "cir_time", "cir_cause")], "myeloid_cir")

# hand-made: ties between cause 1, cause 2 and censorings at the same times; two groups
toy <- data.frame(time = c(1, 1, 1, 2, 2, 3, 3, 3, 4, 5, 5, 6, 7, 7, 8, 9),
                  cause = c(1, 2, 0, 1, 1, 0, 2, 1, 0, 1, 2, 0, 1, 0, 2, 0),
                  grp = c("a", "b", "a", "b", "a", "a", "b", "b", "a", "b", "a", "b", "a", "b", "a", "b"),
                  x = c(0.5, -1, 1.2, 0.3, 0, -0.7, 2, 0.1, -0.4, 1.1, 0.9, -1.5, 0.2, 0.6, -0.2, 1.4),
                  cg = c(1, 1, 2, 2, 1, 2, 1, 2, 1, 2, 1, 2, 1, 2, 1, 2))
save_csv(toy, "crtoy")
pbc2 <- read.csv(file.path(dat_dir, "pbc.csv"))

# ---------------------------------------------------------------- cumulative incidence + Gray
ci_case <- function(name, data_name, d, time, cause, group = NULL, strata = NULL, rho = 0, times) {
  args <- list(time = time, cause = cause, by = group, strata = strata, rho = rho)
  ft <- d[[time]]; fs <- d[[cause]]
  fit <- if (is.null(group)) cuminc(ft, fs) else if (is.null(strata)) cuminc(ft, fs, d[[group]], rho = rho) else
    cuminc(ft, fs, d[[group]], d[[strata]], rho = rho)
  curves <- list()
  for (nm in setdiff(names(fit), "Tests")) {
    z <- fit[[nm]]
    curves[[length(curves) + 1]] <- list(name = nm, time = num(z$time), est = num(z$est), var = num(z$var))
  }
  tp <- timepoints(fit, times)
  res <- list(name = name, data = data_name, args = args, curves = curves,
              timepoints = list(times = sort(unique(times)), rows = rownames(tp$est),
                                est = lapply(seq_len(nrow(tp$est)), function(i) num(tp$est[i, ])),
                                var = lapply(seq_len(nrow(tp$var)), function(i) num(tp$var[i, ]))))
  if (!is.null(fit$Tests)) {
    res$tests <- list(causes = rownames(fit$Tests), stat = num(fit$Tests[, "stat"]), pv = num(fit$Tests[, "pv"]),
                      df = num(fit$Tests[, "df"]))
  }
  res
}
ci <- list()
ci[[1]] <- ci_case("mgus2_sex", "mgus2_cr", mg, "etime", "cause", "sex", times = c(12, 60, 120, 240, 400))
ci[[2]] <- ci_case("mgus2_agegrp_strata_sex", "mgus2_cr", mg, "etime", "cause", "agegrp", "sex", times = c(24, 120, 300))
ci[[3]] <- ci_case("mgus2_sex_rho1", "mgus2_cr", mg, "etime", "cause", "sex", rho = 1, times = c(60, 120))
ci[[4]] <- ci_case("myeloid_cir_trt", "myeloid_cir", my, "cir_time", "cir_cause", "trt", times = c(100, 365, 730, 1825, 5000))
ci[[5]] <- ci_case("myeloid_cir_trt_strata_sex", "myeloid_cir", my, "cir_time", "cir_cause", "trt", "sex", times = c(365))
ci[[6]] <- ci_case("pbc_trt", "pbc", pbc2, "time", "cause", "trt", times = c(365, 1826, 3652))
ci[[7]] <- ci_case("toy", "crtoy", toy, "time", "cause", "grp", times = c(0.5, 1, 2.5, 3, 7, 8, 9, 10))
ci[[8]] <- ci_case("toy_nogroup", "crtoy", toy, "time", "cause", NULL, times = c(1, 3, 9))
ci[[9]] <- ci_case("toy_rho2_strata", "crtoy", toy, "time", "cause", "grp", "cg", rho = 2, times = c(5))

# Aalen-Johansen from survfit (its default robust SE) for the optional survfit-style CI
aj <- survfit(Surv(etime, factor(cause)) ~ sex, data = mg)
s <- summary(aj, times = c(12, 60, 120, 240))
aj_ref <- list(times = c(12, 60, 120, 240), strata = as.character(s$strata), states = aj$states,
               pstate = lapply(seq_len(ncol(s$pstate)), function(j) num(s$pstate[, j])),
               std_err = lapply(seq_len(ncol(s$std.err)), function(j) num(s$std.err[, j])),
               lower = lapply(seq_len(ncol(s$lower)), function(j) num(s$lower[, j])),
               upper = lapply(seq_len(ncol(s$upper)), function(j) num(s$upper[, j])))

# ---------------------------------------------------------------- Fine-Gray
fg_case <- function(name, data_name, d, time, cause, covariates, failcode = 1, cengroup = NULL, newx = NULL) {
  X <- as.matrix(d[, covariates, drop = FALSE])
  fit <- if (is.null(cengroup)) crr(d[[time]], d[[cause]], X, failcode = failcode, cencode = 0, gtol = 1e-12, maxiter = 100) else
    crr(d[[time]], d[[cause]], X, failcode = failcode, cencode = 0, cengroup = d[[cengroup]], gtol = 1e-12, maxiter = 100)
  res <- list(name = name, data = data_name,
              args = list(time = time, cause = cause, covariates = covariates, failcode = failcode, cengroup = cengroup),
              coef = num(fit$coef), se = num(sqrt(diag(fit$var))), var = lapply(seq_len(nrow(fit$var)), function(i) num(fit$var[i, ])),
              loglik = num(fit$loglik), loglik_null = num(fit$loglik.null), converged = fit$converged, n = fit$n,
              uftime = num(fit$uftime), bfitj = num(fit$bfitj))
  if (!is.null(newx)) {
    p <- predict(fit, cov1 = newx)
    res$predict <- list(newx = lapply(seq_len(nrow(newx)), function(i) num(newx[i, ])), time = num(p[, 1]),
                        cif = lapply(2:ncol(p), function(j) num(p[, j])))
  }
  res
}
fg <- list()
fg[[1]] <- fg_case("mgus2_age_sex_hgb", "mgus2_cr", transform(mg, male = as.integer(sex == "M")), "etime", "cause",
                   c("age", "male", "hgb"), newx = rbind(c(60, 0, 13), c(75, 1, 11)))
fg[[2]] <- fg_case("mgus2_death", "mgus2_cr", transform(mg, male = as.integer(sex == "M")), "etime", "cause",
                   c("age", "male", "creat"), failcode = 2)
fg[[3]] <- fg_case("myeloid_cir", "myeloid_cir", transform(my, trtB = as.integer(trt == "B"), male = as.integer(sex == "m")),
                   "cir_time", "cir_cause", c("trtB", "male"), newx = rbind(c(0, 0), c(1, 1)))
fg[[4]] <- fg_case("pbc_death", "pbc", pbc2, "time", "cause", c("age", "logbili", "albumin", "edema"), failcode = 2)
fg[[5]] <- fg_case("toy", "crtoy", toy, "time", "cause", c("x"), newx = rbind(c(0), c(1)))
fg[[6]] <- fg_case("toy_cengroup", "crtoy", toy, "time", "cause", c("x"), cengroup = "cg")
fg[[7]] <- fg_case("mgus2_cengroup_sex", "mgus2_cr", transform(mg, male = as.integer(sex == "M"), cg = as.integer(sex == "M") + 1),
                   "etime", "cause", c("age", "hgb"), cengroup = "cg")

ref <- list(r_version = R.version.string, cmprsk_version = as.character(packageVersion("cmprsk")),
            survival_version = as.character(packageVersion("survival")),
            cuminc = ci, aalen_johansen = aj_ref, fine_gray = fg)
writeLines(toJSON(ref, digits = NA, auto_unbox = TRUE, na = "null", null = "null", pretty = TRUE),
           file.path(out_dir, "competing_reference.json"))
cat("wrote", file.path(out_dir, "competing_reference.json"), "\n")
