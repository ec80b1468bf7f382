# Reference values for allotrack.stats.paired, .trend and .follow_up:
#   wilcox.test(x, y, paired = TRUE) (exact and normal, with conf.int), t.test(x, y, paired = TRUE),
#   friedman.test (matrix and groups/blocks forms), prop.trend.test, the reverse Kaplan-Meier median follow-up
#   (survfit(Surv(time, 1 - status) ~ g) with quantile.survfit), and the Jonckheere-Terpstra test written out
#   from its definition (no Debian R package implements it): the statistic, the normal approximation with the
#   Hollander & Wolfe (1999, eq. 6.19) tie-corrected variance, and the exact p-value by enumerating every
#   assignment of the group labels to the pooled values.
# The inputs are written into the JSON with the results, so the tests never need R.
#   Rscript tests/reference/paired_trend_reference.R   (R >= 4.2, jsonlite, survival; MASS optional)
library(jsonlite)
library(survival)
set.seed(20261127)

# ---------------------------------------------------------------------------------------- paired Wilcoxon
wilcox_case <- function(name, x, y, exact = NULL, correct = TRUE, conf.level = 0.95, conf.int = TRUE) {
  w <- suppressWarnings(wilcox.test(x, y, paired = TRUE, exact = exact, correct = correct,
                                    conf.int = conf.int, conf.level = conf.level))
  list(name = name, x = x, y = y, exact = if (is.null(exact)) NA else exact, correct = correct,
       conf_level = conf.level, method = w$method, statistic = unname(w$statistic), p = w$p.value,
       estimate = unname(w$estimate), conf_int = as.numeric(w$conf.int),
       achieved_conf_level = attr(w$conf.int, "conf.level"))
}

# ?wilcox.test: Hollander & Wolfe (1973), p. 29 -- depression scale before (x) and after (y) therapy
depr_x <- c(1.83, 0.50, 1.62, 2.48, 1.68, 1.88, 1.55, 3.06, 1.30)
depr_y <- c(0.878, 0.647, 0.598, 2.05, 1.06, 1.29, 1.06, 3.14, 1.29)
sleep1 <- sleep$extra[sleep$group == 1]
sleep2 <- sleep$extra[sleep$group == 2]
big_x <- round(rnorm(60, 10, 2), 4)
big_y <- round(big_x - rnorm(60, 0.4, 1), 4)           # 60 pairs, no ties: normal approximation
tz_x <- round(rnorm(80, 5, 1), 1)
tz_y <- round(tz_x - rnorm(80, 0.2, 0.5), 1)           # 80 pairs, one decimal: ties and zeros
ties_x <- c(5, 7, 3, 8, 6, 9, 4, 7, 6, 5, 8, 10)
ties_y <- c(3, 5, 4, 5, 4, 6, 2, 8, 3, 6, 5, 7)         # |d| tied, no zeros
wilcox_cases <- list(
  wilcox_case("depression_exact", depr_x, depr_y),
  wilcox_case("depression_normal", depr_x, depr_y, exact = FALSE),
  wilcox_case("depression_normal_nocorrect", depr_x, depr_y, exact = FALSE, correct = FALSE),
  wilcox_case("depression_exact_90", depr_x, depr_y, conf.level = 0.90),
  wilcox_case("sleep_ties_zero", sleep1, sleep2),
  wilcox_case("sleep_ties_zero_nocorrect", sleep1, sleep2, correct = FALSE),
  wilcox_case("big_normal", big_x, big_y),
  wilcox_case("big_forced_exact", big_x, big_y, exact = TRUE),
  wilcox_case("ties_zeros_80", tz_x, tz_y),
  wilcox_case("ties_no_zero", ties_x, ties_y),
  wilcox_case("n3_level_not_achievable", c(1.5, 2.25, 3.1), c(0, 0, 0)),
  wilcox_case("normal_level_not_achievable", c(1, 2, 0, 2, 5), c(0, 0, 0, 0, 0)),
  wilcox_case("normal_level_zero", c(1, 1, 2), c(0, 0, 0)),           # alpha doubles past 1: median twice
  wilcox_case("all_tied_no_interval", c(1, 1), c(0, 0))              # no root: NaN limits, midrange
)
if (requireNamespace("MASS", quietly = TRUE)) {
  immer <- MASS::immer
  wilcox_cases[[length(wilcox_cases) + 1]] <- wilcox_case("immer", immer$Y1, immer$Y2)
}

# ------------------------------------------------------------------------------------------------ paired t
t_case <- function(name, x, y, conf.level = 0.95) {
  tt <- t.test(x, y, paired = TRUE, conf.level = conf.level)
  list(name = name, x = x, y = y, conf_level = conf.level, statistic = unname(tt$statistic),
       df = unname(tt$parameter), p = tt$p.value, estimate = unname(tt$estimate), std_err = tt$stderr,
       conf_int = as.numeric(tt$conf.int))
}
t_cases <- list(
  t_case("sleep", sleep1, sleep2),
  t_case("sleep_99", sleep1, sleep2, conf.level = 0.99),
  t_case("depression", depr_x, depr_y),
  t_case("big", big_x, big_y)
)
if (requireNamespace("MASS", quietly = TRUE))
  t_cases[[length(t_cases) + 1]] <- t_case("immer", MASS::immer$Y1, MASS::immer$Y2)

# ------------------------------------------------------------------------------------------------ Friedman
# ?friedman.test: Hollander & Wolfe (1973), p. 140ff -- times to round first base by three methods
RoundingTimes <- matrix(c(5.40, 5.50, 5.55, 5.85, 5.70, 5.75, 5.20, 5.60, 5.50, 5.55, 5.50, 5.40,
                          5.90, 5.85, 5.70, 5.45, 5.55, 5.60, 5.40, 5.40, 5.35, 5.45, 5.50, 5.35,
                          5.25, 5.15, 5.00, 5.85, 5.80, 5.70, 5.25, 5.20, 5.10, 5.65, 5.55, 5.45,
                          5.60, 5.35, 5.45, 5.05, 5.00, 4.95, 5.50, 5.50, 5.40, 5.45, 5.55, 5.50,
                          5.55, 5.55, 5.35, 5.45, 5.50, 5.55, 5.50, 5.45, 5.25, 5.65, 5.60, 5.40,
                          5.70, 5.65, 5.55, 6.30, 6.30, 6.25),
                        nrow = 22, byrow = TRUE)
ratings <- matrix(sample(1:5, 15 * 4, replace = TRUE), nrow = 15)     # heavy ties within subjects
with_na <- RoundingTimes
with_na[c(3, 10), c(2, 1)] <- NA                                        # two incomplete subjects dropped
friedman_matrix_case <- function(name, m) {
  f <- friedman.test(m)
  list(name = name, form = "matrix", matrix = unname(split(m, row(m))), statistic = unname(f$statistic),
       df = unname(f$parameter), p = f$p.value, n_subjects = sum(complete.cases(m)))
}
# ?friedman.test: warpbreaks means, wool (k = 2 groups) within tension (blocks), long form
wb <- aggregate(warpbreaks$breaks, by = list(w = warpbreaks$wool, t = warpbreaks$tension), FUN = mean)
fwb <- friedman.test(wb$x, wb$w, wb$t)
friedman_cases <- list(
  friedman_matrix_case("RoundingTimes", RoundingTimes),
  friedman_matrix_case("ratings_ties", ratings),
  friedman_matrix_case("RoundingTimes_na", with_na),
  list(name = "warpbreaks_long", form = "long", value = wb$x, condition = as.character(wb$w),
       subject = as.character(wb$t), statistic = unname(fwb$statistic), df = unname(fwb$parameter),
       p = fwb$p.value, n_subjects = 3L)
)

# ------------------------------------------------------------------------------------ prop.trend.test
# ?prop.trend.test: smokers among lung-cancer patients in four age groups
smokers <- c(83, 90, 129, 70)
patients <- c(86, 93, 136, 82)
dose_events <- c(2, 5, 9, 14, 11)
dose_totals <- c(40, 41, 38, 43, 25)
trend_case <- function(name, x, n, score = seq_along(x)) {
  r <- prop.trend.test(x, n, score)
  list(name = name, events = x, totals = n, scores = score, statistic = unname(r$statistic), p = r$p.value)
}
trend_cases <- list(
  trend_case("smokers", smokers, patients),
  trend_case("smokers_last_group", smokers, patients, c(0, 0, 0, 1)),
  trend_case("dose", dose_events, dose_totals, c(0, 1, 2, 4, 8)),
  trend_case("decreasing", rev(dose_events), dose_totals)
)

# ------------------------------------------------------------------------------------- Jonckheere-Terpstra
# J = sum over pairs of groups i < j of #{a in i, b in j: a < b} + 1/2 #{a == b}
jt_stat <- function(x, g) {                       # g: integer group codes 1..k in the stated order
  k <- max(g); s <- 0
  for (i in 1:(k - 1)) for (j in (i + 1):k) {
    a <- x[g == i]; b <- x[g == j]
    s <- s + sum(outer(a, b, "<")) + 0.5 * sum(outer(a, b, "=="))
  }
  s
}
# Hollander & Wolfe (1999), eq. 6.19: null mean and tie-corrected variance
jt_moments <- function(x, g) {
  n <- as.numeric(table(g)); N <- sum(n); t <- as.numeric(table(x))
  mean <- (N^2 - sum(n^2)) / 4
  v <- (N * (N - 1) * (2 * N + 5) - sum(n * (n - 1) * (2 * n + 5)) - sum(t * (t - 1) * (2 * t + 5))) / 72 +
    sum(n * (n - 1) * (n - 2)) * sum(t * (t - 1) * (t - 2)) / (36 * N * (N - 1) * (N - 2)) +
    sum(n * (n - 1)) * sum(t * (t - 1)) / (8 * N * (N - 1))
  c(mean = mean, var = v)
}
# every distinct assignment of the group labels to the N values (N! / prod(n_i!) of them)
assignments <- function(n) {
  if (length(n) == 1) return(matrix(1L, nrow = 1, ncol = n))
  N <- sum(n); first <- combn(N, n[1]); rest <- assignments(n[-1]) + 1L
  out <- matrix(0L, nrow = ncol(first) * nrow(rest), ncol = N); r <- 0
  for (c in seq_len(ncol(first))) {
    free <- setdiff(seq_len(N), first[, c])
    for (q in seq_len(nrow(rest))) {
      r <- r + 1; out[r, first[, c]] <- 1L; out[r, free] <- rest[q, ]
    }
  }
  out
}
jt_case <- function(name, x, g, exact_enum = TRUE) {
  j <- jt_stat(x, g); m <- jt_moments(x, g); z <- (j - m[["mean"]]) / sqrt(m[["var"]])
  out <- list(name = name, values = x, groups = g, statistic = j, mean = m[["mean"]], variance = m[["var"]],
              z = z, p_normal_two_sided = 2 * pnorm(-abs(z)), p_normal_increasing = pnorm(z, lower.tail = FALSE),
              p_normal_decreasing = pnorm(z))
  if (exact_enum) {
    labels <- assignments(as.numeric(table(g)))
    perm <- apply(labels, 1, function(lab) jt_stat(x, lab))
    upper <- mean(perm >= j - 1e-9); lower <- mean(perm <= j + 1e-9)
    out$n_assignments <- nrow(labels)
    out$perm_variance <- mean((perm - mean(perm))^2)   # exact permutation variance: checks eq. 6.19
    if (!any(duplicated(x))) {                         # exact p-values are offered only without ties
      out$p_exact_increasing <- upper
      out$p_exact_decreasing <- lower
      out$p_exact_two_sided <- min(1, 2 * min(upper, lower))
    }
  }
  out
}
jt_x1 <- c(40, 35, 38, 43, 44, 41, 38.5, 40.5, 42, 45.5, 47, 46, 44.5)   # no ties
jt_g1 <- c(1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 3)
jt_x2 <- c(2, 3, 3, 5, 4, 5, 5, 6, 3, 6, 7, 7)                            # ties
jt_g2 <- c(1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3)
jt_x3 <- round(c(rnorm(15, 10), rnorm(15, 10.5), rnorm(15, 11), rnorm(15, 11.2)), 3)
jt_g3 <- rep(1:4, each = 15)
jt_x4 <- c(1.1, 2.3, 0.7, 3.3, 2.9, 4.1, 3.9, 5.2, 4.4)
jt_g4 <- c(1, 1, 1, 2, 2, 2, 3, 3, 3)
jt_cases <- list(
  jt_case("no_ties_4_4_5", jt_x1, jt_g1),
  jt_case("ties_4_4_4", jt_x2, jt_g2),
  jt_case("no_ties_3_3_3", jt_x4, jt_g4),
  jt_case("normal_4x15", jt_x3, jt_g3, exact_enum = FALSE)
)

# -------------------------------------------------------------------------- reverse Kaplan-Meier follow-up
follow_case <- function(name, time, status, group = NULL, conf.type = "log") {
  fit <- if (is.null(group)) survfit(Surv(time, 1 - status) ~ 1, conf.type = conf.type)
         else survfit(Surv(time, 1 - status) ~ group, conf.type = conf.type)
  q <- quantile(fit, probs = c(0.25, 0.5, 0.75))
  tab <- summary(fit)$table
  if (is.null(dim(tab))) tab <- t(as.matrix(tab))
  grp <- if (is.null(group)) "all" else sub("^group=", "", rownames(tab))
  mat <- function(v) if (is.null(dim(v))) t(as.matrix(v)) else v
  out <- list(name = name, time = time, status = status,
       conf_type = conf.type, groups = I(grp), n = unname(tab[, "records"]), n_censored = unname(tab[, "events"]),
       median = unname(tab[, "median"]), lower = unname(tab[, grep("LCL", colnames(tab))]),
       upper = unname(tab[, grep("UCL", colnames(tab))]),
       quantile = unname(split(mat(q$quantile), row(mat(q$quantile)))),
       quantile_lower = unname(split(mat(q$lower), row(mat(q$lower)))),
       quantile_upper = unname(split(mat(q$upper), row(mat(q$upper)))))
  if (!is.null(group)) out$group <- as.character(group)
  out
}
lung_status <- survival::lung$status - 1        # lung codes 1 = censored, 2 = dead
follow_cases <- list(
  follow_case("lung", survival::lung$time, lung_status),
  follow_case("lung_by_sex", survival::lung$time, lung_status, survival::lung$sex),
  follow_case("aml", survival::aml$time, survival::aml$status),
  follow_case("aml_by_x", survival::aml$time, survival::aml$status, survival::aml$x),
  follow_case("aml_loglog", survival::aml$time, survival::aml$status, conf.type = "log-log")
)

out <- list(r_version = R.version.string, survival_version = as.character(packageVersion("survival")),
            wilcox = wilcox_cases, t_test = t_cases, friedman = friedman_cases, trend = trend_cases,
            jonckheere = jt_cases, follow_up = follow_cases)
write_json(out, "tests/reference/paired_trend_reference.json", digits = NA, auto_unbox = TRUE, pretty = TRUE,
           na = "null")
