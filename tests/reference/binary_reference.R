# Reference values for allotrack.stats.binary: a binary outcome in two groups (and by stratum).
#   Rscript tests/reference/binary_reference.R   (R >= 4.2, jsonlite; base R "stats" only)
#
# Per two-group case (rows = groups A, B; columns = event, no event):
#   * proportions with the Wilson score interval: prop.test(x, n, correct = FALSE)$conf.int, one group at a time;
#   * risk difference p_A - p_B with Newcombe's hybrid-score interval (Newcombe 1998, Stat Med 17:873-890,
#     method 10), written out below from the two Wilson intervals (prop.test's own interval for a difference is
#     the Wald one, which is not used);
#   * relative risk with the Katz log interval (Katz et al. 1978, Biometrics 34:469-474), written out below;
#     zero events give the limits scipy.stats.contingency.relative_risk gives (documented in binary.py);
#   * the conditional maximum-likelihood odds ratio with its exact interval (fisher.test) and the sample odds
#     ratio ad/bc;
#   * Pearson's chi-square with and without Yates' correction (chisq.test, and prop.test for the same numbers)
#     and Fisher's exact two-sided p (fisher.test).
# Per stratified case (k 2 x 2 tables): mantelhaen.test with correct = TRUE (default) and FALSE, and exact = TRUE.
#
# fisher.test and mantelhaen.test(exact = TRUE) find the conditional MLE and the exact limits with uniroot() at
# its default tolerance, .Machine$double.eps^0.25 (about 1.2e-4 on the (0, 1) scale they solve on: the odds
# ratio below 1, its reciprocal above), so their printed values can be off by 1e-3 relative or more. The
# reference ("*_tight") values run the very same R functions with uniroot's tolerance tightened to 1e-15; the
# default-tolerance values are stored too ("*_r") and the tests check them to uniroot's own tolerance.
library(jsonlite)

tight <- function(f) {
  env <- new.env(parent = environment(f))
  assign("uniroot", function(f, interval, ...) stats::uniroot(f, interval, ..., tol = 1e-15, maxiter = 10000L),
         envir = env)
  environment(f) <- env
  f
}
fisher_tight <- tight(fisher.test)
mantelhaen_tight <- tight(mantelhaen.test)

wilson <- function(x, n, conf.level) {
  as.numeric(suppressWarnings(prop.test(x, n, correct = FALSE, conf.level = conf.level))$conf.int)
}

newcombe <- function(x1, n1, x2, n2, conf.level) {
  p1 <- x1 / n1
  p2 <- x2 / n2
  w1 <- wilson(x1, n1, conf.level)
  w2 <- wilson(x2, n2, conf.level)
  d <- p1 - p2
  c(d, d - sqrt((p1 - w1[1])^2 + (w2[2] - p2)^2), d + sqrt((w1[2] - p1)^2 + (p2 - w2[1])^2))
}

katz <- function(x1, n1, x2, n2, conf.level) {
  rr <- (x1 / n1) / (x2 / n2)
  if (x1 == 0 && x2 == 0) return(c(NaN, NaN, NaN))
  if (x1 == 0) return(c(rr, 0, NaN))
  if (x2 == 0) return(c(rr, NaN, Inf))
  z <- qnorm((1 + conf.level) / 2)
  se <- sqrt(1 / x1 - 1 / n1 + 1 / x2 - 1 / n2)
  c(rr, rr * exp(-z * se), rr * exp(z * se))
}

na_if_null <- function(x) if (is.null(x) || length(x) == 0) NA_real_ else unname(x)

binary_case <- function(name, x1, n1, x2, n2, conf.level = 0.95, source = "") {
  m <- matrix(c(x1, x2, n1 - x1, n2 - x2), 2)  # rows: groups; columns: event, no event
  chi0 <- suppressWarnings(chisq.test(m, correct = FALSE))
  chi1 <- suppressWarnings(chisq.test(m, correct = TRUE))
  pt0 <- suppressWarnings(prop.test(c(x1, x2), c(n1, n2), correct = FALSE))
  pt1 <- suppressWarnings(prop.test(c(x1, x2), c(n1, n2), correct = TRUE))
  ft <- fisher.test(m, conf.level = conf.level)
  ftt <- fisher_tight(m, conf.level = conf.level)
  wa <- wilson(x1, n1, conf.level)
  wb <- wilson(x2, n2, conf.level)
  rd <- newcombe(x1, n1, x2, n2, conf.level)
  rr <- katz(x1, n1, x2, n2, conf.level)
  list(
    name = name, source = source, events_a = x1, n_a = n1, events_b = x2, n_b = n2, conf_level = conf.level,
    table = unname(split(m, row(m))),
    prop_a = x1 / n1, prop_a_lower = wa[1], prop_a_upper = wa[2],
    prop_b = x2 / n2, prop_b_lower = wb[1], prop_b_upper = wb[2],
    rd = rd[1], rd_lower = rd[2], rd_upper = rd[3],
    rr = rr[1], rr_lower = rr[2], rr_upper = rr[3],
    or_tight = unname(ftt$estimate), or_lower_tight = ftt$conf.int[1], or_upper_tight = ftt$conf.int[2],
    or_r = unname(ft$estimate), or_lower_r = ft$conf.int[1], or_upper_r = ft$conf.int[2],
    or_sample = (m[1, 1] * m[2, 2]) / (m[1, 2] * m[2, 1]),
    chisq = na_if_null(chi0$statistic), chisq_p = na_if_null(chi0$p.value),
    chisq_yates = na_if_null(chi1$statistic), chisq_yates_p = na_if_null(chi1$p.value),
    prop_test = na_if_null(pt0$statistic), prop_test_p = na_if_null(pt0$p.value),
    prop_test_yates = na_if_null(pt1$statistic), prop_test_yates_p = na_if_null(pt1$p.value),
    fisher_p = ft$p.value
  )
}

smokers <- c(83, 90, 129, 70)   # ?prop.test
patients <- c(86, 93, 136, 82)
tea <- matrix(c(3, 1, 1, 3), 2)                  # ?fisher.test TeaTasting
convictions <- matrix(c(2, 10, 15, 3), 2)         # ?fisher.test Convictions (dizygotic / monozygotic)
esoph$alc_high <- esoph$alcgp %in% c("80-119", "120+")
esoph_crude <- with(esoph, c(sum(ncases[alc_high]), sum(ncases[alc_high] + ncontrols[alc_high]),
                             sum(ncases[!alc_high]), sum(ncases[!alc_high] + ncontrols[!alc_high])))

binary <- list(
  binary_case("msc_rct_primary", 54, 65, 36, 65, source = "MSC RCT: GVHD complete response at week 4"),
  binary_case("msc_rct_primary_90", 54, 65, 36, 65, conf.level = 0.90, source = "the same at 90%"),
  binary_case("smokers_1_vs_4", smokers[1], patients[1], smokers[4], patients[4], source = "?prop.test smokers"),
  binary_case("smokers_3_vs_4", smokers[3], patients[3], smokers[4], patients[4], source = "?prop.test smokers"),
  binary_case("smokers_1_vs_2", smokers[1], patients[1], smokers[2], patients[2], source = "?prop.test smokers"),
  binary_case("tea_tasting", tea[1, 1], sum(tea[1, ]), tea[2, 1], sum(tea[2, ]), source = "?fisher.test TeaTasting"),
  binary_case("convictions", convictions[1, 1], sum(convictions[1, ]), convictions[2, 1], sum(convictions[2, ]),
              source = "?fisher.test Convictions"),
  binary_case("esoph_alcohol_crude", esoph_crude[1], esoph_crude[2], esoph_crude[3], esoph_crude[4],
              source = "esoph: cases among >= 80 g/day vs < 80 g/day alcohol"),
  binary_case("zero_cell", 0, 20, 7, 20, source = "edge: no events in group A"),
  binary_case("zero_cell_b", 9, 14, 0, 11, source = "edge: no events in group B"),
  binary_case("all_events_one_group", 12, 12, 10, 15, source = "edge: every patient in A has the event"),
  binary_case("all_events_both", 5, 5, 7, 7, source = "edge: everyone has the event (chi-square undefined)"),
  binary_case("no_events_both", 0, 10, 0, 12, source = "edge: nobody has the event"),
  binary_case("large_or", 83, 86, 2, 3, source = "edge: large odds ratio, few in B"),
  binary_case("tiny", 1, 2, 1, 3, source = "edge: tiny groups")
)

# ---- stratified 2 x 2 x k ----------------------------------------------------------------------------------
esoph_tab <- with(esoph, sapply(levels(agegp), function(a) {
  s <- agegp == a
  c(sum(ncases[s & alc_high]), sum(ncases[s & !alc_high]), sum(ncontrols[s & alc_high]), sum(ncontrols[s & !alc_high]))
}))
esoph_arr <- array(esoph_tab, dim = c(2, 2, ncol(esoph_tab)))  # [exposure high/low, case/control, agegp]
Rabbits <- array(c(0, 0, 6, 5, 3, 0, 3, 6, 6, 2, 0, 4, 5, 6, 1, 0, 2, 5, 0, 0), dim = c(2, 2, 5))  # ?mantelhaen.test
small_delta <- array(c(3, 3, 3, 4, 2, 2, 2, 2), dim = c(2, 2, 2))  # |sum(a - E(a))| < 0.5: R applies no correction
sparse <- array(c(1, 0, 0, 1, 2, 1, 0, 3, 0, 2, 1, 1), dim = c(2, 2, 3))

cmh_case <- function(name, x, conf.level = 0.95, source = "") {
  x <- unname(x)
  m1 <- mantelhaen.test(x, conf.level = conf.level)
  m0 <- mantelhaen.test(x, correct = FALSE, conf.level = conf.level)
  ex <- mantelhaen.test(x, exact = TRUE, conf.level = conf.level)
  ext <- mantelhaen_tight(x, exact = TRUE, conf.level = conf.level)
  s.x <- apply(x, c(1L, 3L), sum)
  s.y <- apply(x, c(2L, 3L), sum)
  n <- apply(x, 3L, sum)
  list(
    name = name, source = source, conf_level = conf.level,
    tables = lapply(seq_len(dim(x)[3]), function(k) unname(split(x[, , k], row(x[, , k])))),
    delta = sum(x[1, 1, ] - s.x[1, ] * s.y[1, ] / n),
    chisq_corrected = unname(m1$statistic), chisq_corrected_p = m1$p.value,
    chisq = unname(m0$statistic), chisq_p = m0$p.value,
    or_mh = unname(m0$estimate), or_mh_lower = m0$conf.int[1], or_mh_upper = m0$conf.int[2],
    exact_p = ex$p.value,
    or_exact_tight = unname(ext$estimate), or_exact_lower_tight = ext$conf.int[1],
    or_exact_upper_tight = ext$conf.int[2],
    or_exact_r = unname(ex$estimate), or_exact_lower_r = ex$conf.int[1], or_exact_upper_r = ex$conf.int[2]
  )
}

cmh <- list(
  cmh_case("ucb_admissions", UCBAdmissions, source = "UCBAdmissions: Admit x Gender by Dept"),
  cmh_case("esoph_alcohol_by_age", esoph_arr, source = "esoph: case/control x alcohol >= 80 g/day by age group"),
  cmh_case("rabbits", Rabbits, source = "?mantelhaen.test Penicillin and Rabbits (strata with empty margins)"),
  cmh_case("rabbits_90", Rabbits, conf.level = 0.90, source = "the same at 90%"),
  cmh_case("small_delta", small_delta, source = "edge: |DELTA| < 0.5, R applies no continuity correction"),
  cmh_case("sparse", sparse, source = "edge: sparse strata")
)  # mantelhaen.test refuses a single stratum ("each dimension in table must be >= 2")

out <- list(r_version = R.version.string, binary = binary, cmh = cmh)
write_json(out, "tests/reference/binary_reference.json", digits = NA, auto_unbox = TRUE, pretty = TRUE)
