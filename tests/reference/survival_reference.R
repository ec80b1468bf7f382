# Reference values for allotrack's survival core (KM, log-rank, Cox), from R's survival package.
#
# Run from the repository root:  Rscript tests/reference/survival_reference.R
# Writes tests/reference/data/*.csv (the inputs, exactly as R used them) and
# tests/reference/survival_reference.json (the outputs). Tests read both and never need R.
# Cox fits use eps = 1e-12 so coefficients are converged well below the 1e-6 test tolerance.
suppressPackageStartupMessages({library(survival); library(jsonlite)})
out_dir <- "tests/reference"
dat_dir <- file.path(out_dir, "data")
dir.create(dat_dir, showWarnings = FALSE, recursive = TRUE)
num <- function(x) { x <- as.numeric(x); x[is.nan(x)] <- NA; x }
save_csv <- function(df, name) write.csv(df, file.path(dat_dir, paste0(name, ".csv")), row.names = FALSE, na = "")

# ---------------------------------------------------------------- data sets
lung2 <- na.omit(lung[, c("inst", "time", "status", "age", "sex", "ph.ecog", "ph.karno", "wt.loss")])
lung2$event <- as.integer(lung2$status == 2)
lung2$status <- NULL
names(lung2) <- sub("ph.ecog", "ph_ecog", sub("ph.karno", "ph_karno", sub("wt.loss", "wt_loss", names(lung2))))
lung2$wt <- (1 + (seq_len(nrow(lung2)) %% 4)) / 2          # non-integer case weights
save_csv(lung2, "lung")

vet <- veteran
vet$celltype <- factor(as.character(vet$celltype))          # alphabetical levels, as pandas/formulaic sort them
vet$prior <- as.integer(vet$prior == 10)
names(vet)[names(vet) == "status"] <- "event"
save_csv(vet, "veteran")

pbc2 <- pbc[1:312, c("id", "time", "status", "trt", "age", "sex", "edema", "bili", "albumin", "protime", "stage")]
pbc2 <- na.omit(pbc2)
pbc2$event <- as.integer(pbc2$status == 2)
pbc2$cause <- pbc2$status                                    # 0 censor, 1 transplant, 2 death
pbc2$status <- NULL
pbc2$logbili <- log(pbc2$bili)
pbc2$sex <- as.character(pbc2$sex)
save_csv(pbc2, "pbc")

my <- myeloid
my$trt <- as.character(my$trt); my$sex <- as.character(my$sex)
save_csv(my, "myeloid")

hrt <- heart; hrt$transplant <- as.integer(as.character(hrt$transplant))
save_csv(hrt, "heart")

# Therneau's hand-worked validation cases (survival vignette "validate", tests/book1-7.R)
book1 <- data.frame(time = c(9, 1, 1, 6, 6, 8), event = c(1, 1, 0, 1, 1, 0), x = c(0, 1, 1, 1, 0, 0))
save_csv(book1, "book1")
book2 <- data.frame(start = c(1, 2, 5, 2, 1, 7, 3, 4, 8, 8),
                    stop  = c(2, 3, 6, 7, 8, 9, 9, 9, 14, 17),
                    event = c(1, 1, 1, 1, 1, 1, 1, 0, 0, 0),
                    x     = c(1, 0, 0, 1, 0, 1, 1, 1, 0, 0))
save_csv(book2, "book2")
book3 <- data.frame(time = c(1, 1, 2, 2, 2, 2, 3, 4), event = c(1, 0, 1, 1, 1, 0, 0, 1),
                    x = c(2, 0, 1, 1, 0, 1, 0, 1), wt = c(1, 2, 3, 4, 3, 2, 1, 2))
save_csv(book3, "book3")
# near-tied times: aeqSurv must merge 1.1 and 1.1 + 1e-15 (values as doubles, written with 17 digits)
neartie <- data.frame(time = c(1.1, 1.1 + 1e-15, 2.2, 3.3, 3.3 + 4e-16, 4.4, 5.5, 0.3 * 3, 0.9),
                      event = c(1, 1, 0, 1, 1, 0, 1, 1, 0), grp = c(1, 2, 1, 2, 1, 2, 1, 2, 2))
write.csv(format(neartie, digits = 17), file.path(dat_dir, "neartie.csv"), row.names = FALSE, quote = FALSE)
neartie <- read.csv(file.path(dat_dir, "neartie.csv"))

# ---------------------------------------------------------------- Kaplan-Meier
km_case <- function(name, fit, times, rmean_tau, data_name, args) {
  s <- summary(fit, censored = TRUE)
  grp <- if (is.null(s$strata)) rep("all", length(s$time)) else as.character(s$strata)
  tab <- list(group = grp, time = num(s$time), n_risk = num(s$n.risk), n_event = num(s$n.event),
              n_censor = num(s$n.censor), survival = num(s$surv), std_err = num(s$std.err),
              lower = num(s$lower), upper = num(s$upper))
  a <- summary(fit, times = times, extend = TRUE)
  agrp <- if (is.null(a$strata)) rep("all", length(a$time)) else as.character(a$strata)
  at <- list(group = agrp, time = num(a$time), n_risk = num(a$n.risk), n_event = num(a$n.event),
             n_censor = num(a$n.censor), survival = num(a$surv), std_err = num(a$std.err),
             lower = num(a$lower), upper = num(a$upper))
  q <- quantile(fit, probs = 0.5)
  med <- list(median = num(q$quantile), lower = num(q$lower), upper = num(q$upper))
  rm <- summary(fit, rmean = rmean_tau)$table
  rm <- if (is.matrix(rm)) rm else t(as.matrix(rm))
  rmean <- list(tau = rmean_tau, rmean = num(rm[, "rmean"]), se = num(rm[, "se(rmean)"]))
  list(name = name, data = data_name, args = args, table = tab, at = list(times = times, values = at),
       median = med, rmean = rmean)
}
km <- list()
f <- survfit(Surv(time, event) ~ 1, data = lung2)
km[[1]] <- km_case("lung_log", f, c(0, 100, 365, 500.5, 1000, 2000), 730, "lung", list(time = "time", event = "event", conf_type = "log"))
f <- survfit(Surv(time, event) ~ sex, data = lung2, conf.type = "log-log")
km[[2]] <- km_case("lung_sex_loglog", f, c(30, 180, 365, 900), 600, "lung", list(time = "time", event = "event", by = "sex", conf_type = "log-log"))
f <- survfit(Surv(time, event) ~ sex, data = lung2, conf.type = "plain")
km[[3]] <- km_case("lung_sex_plain", f, c(30, 180, 365, 900), 600, "lung", list(time = "time", event = "event", by = "sex", conf_type = "plain"))
f <- survfit(Surv(time, event) ~ celltype, data = vet)
km[[4]] <- km_case("veteran_celltype", f, c(10, 50, 100, 200, 1000), 365, "veteran", list(time = "time", event = "event", by = "celltype", conf_type = "log"))
f <- survfit(Surv(futime, death) ~ trt, data = my, conf.int = 0.90)
km[[5]] <- km_case("myeloid_trt_90", f, c(100, 365, 730, 1825), 1825, "myeloid", list(time = "futime", event = "death", by = "trt", conf_type = "log", conf_level = 0.90))
f <- survfit(Surv(time, event) ~ 1, data = lung2, weights = wt, robust = FALSE)
km[[6]] <- km_case("lung_weighted", f, c(100, 365, 700), 730, "lung", list(time = "time", event = "event", weights = "wt", conf_type = "log"))
f <- survfit(Surv(start, stop, event) ~ 1, data = hrt)
km[[7]] <- km_case("heart_entry", f, c(10, 100, 365, 1000), 1000, "heart", list(time = "stop", event = "event", entry = "start", conf_type = "log"))
f <- survfit(Surv(time, event) ~ 1, data = book1)
km[[8]] <- km_case("book1", f, c(0, 1, 5, 6, 8, 9, 10), 9, "book1", list(time = "time", event = "event", conf_type = "log"))
f <- survfit(Surv(time, event) ~ 1, data = book3, weights = wt, conf.type = "log-log", robust = FALSE)
km[[9]] <- km_case("book3_weighted_loglog", f, c(1, 2, 3, 4), 4, "book3", list(time = "time", event = "event", weights = "wt", conf_type = "log-log"))
f <- survfit(Surv(time, event) ~ grp, data = neartie)
km[[10]] <- km_case("neartie", f, c(1, 3.3, 6), 5, "neartie", list(time = "time", event = "event", by = "grp", conf_type = "log"))
f <- survfit(Surv(time, event) ~ 1, data = pbc2, conf.type = "log-log")
km[[11]] <- km_case("pbc_loglog", f, c(365.25, 1826.25, 3652.5), 3652.5, "pbc", list(time = "time", event = "event", conf_type = "log-log"))

# ---------------------------------------------------------------- log-rank / G-rho
lr_case <- function(name, fit, data_name, args, trend_scores = NULL) {
  obs <- fit$obs; exp <- fit$exp
  if (is.matrix(obs)) { obs <- rowSums(obs); exp <- rowSums(exp) }
  res <- list(name = name, data = data_name, args = args, statistic = fit$chisq,
              dof = length(fit$n) - 1 - sum(exp == 0), p_value = pchisq(fit$chisq, length(fit$n) - 1 - sum(exp == 0), lower.tail = FALSE),
              groups = names(fit$n), observed = num(obs), expected = num(exp))
  if (!is.null(trend_scores)) {
    u <- sum(trend_scores * (obs - exp))
    v <- as.numeric(t(trend_scores) %*% fit$var %*% trend_scores)
    res$trend <- list(scores = trend_scores, statistic = u^2 / v, p_value = pchisq(u^2 / v, 1, lower.tail = FALSE))
  }
  res
}
lr <- list()
lr[[1]] <- lr_case("lung_sex", survdiff(Surv(time, event) ~ sex, data = lung2), "lung", list(by = "sex", rho = 0))
lr[[2]] <- lr_case("lung_sex_peto", survdiff(Surv(time, event) ~ sex, data = lung2, rho = 1), "lung", list(by = "sex", rho = 1))
lr[[3]] <- lr_case("veteran_celltype", survdiff(Surv(time, event) ~ celltype, data = vet), "veteran", list(by = "celltype", rho = 0))
lr[[4]] <- lr_case("veteran_celltype_strata", survdiff(Surv(time, event) ~ celltype + strata(trt), data = vet), "veteran", list(by = "celltype", strata = "trt", rho = 0))
lr[[5]] <- lr_case("lung_ecog_trend", survdiff(Surv(time, event) ~ ph_ecog, data = lung2), "lung", list(by = "ph_ecog", rho = 0), trend_scores = c(0, 1, 2, 3))
lr[[6]] <- lr_case("pbc_stage_trend_strata", survdiff(Surv(time, event) ~ stage + strata(sex), data = pbc2), "pbc", list(by = "stage", strata = "sex", rho = 0), trend_scores = c(1, 2, 3, 4))
lr[[7]] <- lr_case("myeloid_trt", survdiff(Surv(futime, death) ~ trt, data = my), "myeloid", list(by = "trt", rho = 0))
lr[[8]] <- lr_case("veteran_trt_rho05_strata", survdiff(Surv(time, event) ~ trt + strata(prior), data = vet, rho = 0.5), "veteran", list(by = "trt", strata = "prior", rho = 0.5))
lr[[9]] <- lr_case("neartie", survdiff(Surv(time, event) ~ grp, data = neartie), "neartie", list(by = "grp", rho = 0))
lr[[10]] <- lr_case("book1", survdiff(Surv(time, event) ~ x, data = book1), "book1", list(by = "x", rho = 0))

# ---------------------------------------------------------------- Cox
cox_case <- function(name, fit, data_name, args, newdata = NULL, times = NULL, zph = TRUE) {
  s <- summary(fit)
  co <- s$coefficients
  res <- list(name = name, data = data_name, args = args,
              terms = rownames(co), coef = num(co[, "coef"]),
              se = num(if ("robust se" %in% colnames(co)) sqrt(diag(fit$naive.var)) else co[, "se(coef)"]),
              robust_se = if ("robust se" %in% colnames(co)) num(co[, "robust se"]) else NULL,
              z = num(co[, "z"]), p = num(co[, "Pr(>|z|)"]),
              hr_lower = num(s$conf.int[, "lower .95"]), hr_upper = num(s$conf.int[, "upper .95"]),
              loglik = num(fit$loglik), n = fit$n, n_events = fit$nevent,
              lr_test = num(s$logtest), wald_test = num(c(fit$wald.test, length(fit$coefficients), pchisq(fit$wald.test, length(fit$coefficients), lower.tail = FALSE))), score_test = num(s$sctest),
              robust_score_test = if (!is.null(s$robscore)) num(s$robscore) else NULL,
              concordance = num(fit$concordance["concordance"]), iter = fit$iter)
  if (zph) {
    z <- cox.zph(fit)
    res$zph <- list(rows = rownames(z$table), chisq = num(z$table[, "chisq"]), df = num(z$table[, "df"]), p = num(z$table[, "p"]))
  }
  if (!is.null(newdata)) {
    sf <- survfit(fit, newdata = newdata)
    sm <- summary(sf, times = times, extend = TRUE)
    res$predict <- list(newdata = as.list(newdata), times = times,
                        survival = num(sm$surv), std_err = num(sm$std.err), lower = num(sm$lower), upper = num(sm$upper))
  }
  res
}
ctl <- coxph.control(eps = 1e-12, iter.max = 100, toler.chol = 1e-13)
cx <- list()
f <- coxph(Surv(time, event) ~ age + sex + ph_ecog + ph_karno + wt_loss, data = lung2, control = ctl)
cx[[1]] <- cox_case("lung_efron", f, "lung", list(covariates = c("age", "sex", "ph_ecog", "ph_karno", "wt_loss"), ties = "efron"),
                    newdata = data.frame(age = c(60, 70), sex = c(1, 2), ph_ecog = c(0, 2), ph_karno = c(90, 70), wt_loss = c(0, 10)), times = c(100, 365, 700))
f <- coxph(Surv(time, event) ~ age + sex + ph_ecog + ph_karno + wt_loss, data = lung2, ties = "breslow", control = ctl)
cx[[2]] <- cox_case("lung_breslow", f, "lung", list(covariates = c("age", "sex", "ph_ecog", "ph_karno", "wt_loss"), ties = "breslow"),
                    newdata = data.frame(age = c(60), sex = c(2), ph_ecog = c(1), ph_karno = c(80), wt_loss = c(5)), times = c(100, 365, 700))
f <- coxph(Surv(time, event) ~ age + sex + ph_ecog, data = lung2, cluster = inst, control = ctl)
cx[[3]] <- cox_case("lung_cluster", f, "lung", list(covariates = c("age", "sex", "ph_ecog"), ties = "efron", cluster = "inst"))
f <- coxph(Surv(time, event) ~ age + sex + ph_ecog, data = lung2, weights = wt, robust = FALSE, control = ctl)
cx[[4]] <- cox_case("lung_weights", f, "lung", list(covariates = c("age", "sex", "ph_ecog"), ties = "efron", weights = "wt"))
f <- coxph(Surv(time, event) ~ trt + celltype + karno + age + prior, data = vet, control = ctl)
cx[[5]] <- cox_case("veteran_formula", f, "veteran", list(formula = "trt + celltype + karno + age + prior", ties = "efron"),
                    newdata = data.frame(trt = c(1, 2), celltype = c("adeno", "squamous"), karno = c(60, 80), age = c(60, 65), prior = c(0, 1)), times = c(30, 90, 180))
f <- coxph(Surv(time, event) ~ age + logbili + albumin + edema + strata(trt), data = pbc2, control = ctl)
cx[[6]] <- cox_case("pbc_strata", f, "pbc", list(covariates = c("age", "logbili", "albumin", "edema"), strata = "trt", ties = "efron"))
f <- coxph(Surv(start, stop, event) ~ age + year + surgery + transplant, data = hrt, control = ctl)
cx[[7]] <- cox_case("heart_counting", f, "heart", list(covariates = c("age", "year", "surgery", "transplant"), entry = "start", time = "stop", ties = "efron"))
f <- coxph(Surv(start, stop, event) ~ age + surgery + transplant, data = hrt, cluster = id, ties = "breslow", control = ctl)
cx[[8]] <- cox_case("heart_counting_cluster_breslow", f, "heart", list(covariates = c("age", "surgery", "transplant"), entry = "start", time = "stop", ties = "breslow", cluster = "id"))
f <- coxph(Surv(time, event) ~ x, data = book1, control = ctl)
cx[[9]] <- cox_case("book1_efron", f, "book1", list(covariates = c("x"), ties = "efron"), newdata = data.frame(x = 0), times = c(1, 6, 8, 9))
f <- coxph(Surv(time, event) ~ x, data = book1, ties = "breslow", control = ctl)
cx[[10]] <- cox_case("book1_breslow", f, "book1", list(covariates = c("x"), ties = "breslow"), newdata = data.frame(x = 0), times = c(1, 6, 8, 9))
f <- coxph(Surv(start, stop, event) ~ x, data = book2, control = ctl)
cx[[11]] <- cox_case("book2_efron", f, "book2", list(covariates = c("x"), entry = "start", time = "stop", ties = "efron"))
f <- coxph(Surv(start, stop, event) ~ x, data = book2, ties = "breslow", control = ctl)
cx[[12]] <- cox_case("book2_breslow", f, "book2", list(covariates = c("x"), entry = "start", time = "stop", ties = "breslow"))
f <- coxph(Surv(time, event) ~ x, data = book3, weights = wt, control = ctl)
cx[[13]] <- cox_case("book3_weighted_efron", f, "book3", list(covariates = c("x"), ties = "efron", weights = "wt"))
f <- coxph(Surv(futime, death) ~ trt + sex, data = my, control = ctl)
cx[[14]] <- cox_case("myeloid", f, "myeloid", list(formula = "trt + sex", time = "futime", event = "death", ties = "efron"),
                     newdata = data.frame(trt = c("A", "B"), sex = c("f", "m")), times = c(180, 365, 1095))
f <- coxph(Surv(time, event) ~ age + sex + ph_ecog, data = lung2, weights = wt, cluster = inst, control = ctl)
cx[[15]] <- cox_case("lung_weights_cluster", f, "lung", list(covariates = c("age", "sex", "ph_ecog"), ties = "efron", weights = "wt", cluster = "inst"))

ref <- list(r_version = R.version.string, survival_version = as.character(packageVersion("survival")),
            kaplan_meier = km, logrank = lr, cox = cx)
writeLines(toJSON(ref, digits = NA, auto_unbox = TRUE, na = "null", null = "null", pretty = TRUE),
           file.path(out_dir, "survival_reference.json"))
cat("wrote", file.path(out_dir, "survival_reference.json"), "\n")
