# Reference values for allotrack.design.matching: greedy nearest-neighbour matching of controls to treated units
# and the balance statistics of MatchIt's summary(), on MatchIt's `lalonde` data (614 rows, written to the JSON).
#   Rscript tests/reference/matching_reference.R   (R >= 4.2, MatchIt 4.5.x, jsonlite; run from the repository root)
#
# Every case is matchit(treat ~ age + educ + race + married + nodegree + re74 + re75, data = lalonde,
# method = "nearest", ...) followed by summary(m, un = TRUE). The JSON keeps per case: the propensity score
# (m$distance: glm logit, fitted by glm with family quasibinomial, which has the binomial coefficients), the
# caliper in distance units (m$caliper), the match matrix (treated id -> control ids in match order), the weights,
# MatchIt's sample sizes (summary()$nn) and the balance tables sum.all / sum.matched (Means Treated, Means
# Control, Std. Mean Diff., Var. Ratio, eCDF Mean, eCDF Max; one row per factor level, "distance" first).
#
# HOW MATCHIT 4.5.1'S NEAREST-NEIGHBOUR BUG IS KEPT OUT OF THESE VALUES
# Debian ships MatchIt 4.5.1. For method = "nearest" with a propensity score (no mahvars, no distance matrix) its
# matchit2nearest() calls nn_matchC_dispatch(), which sends the match to the "fast" C++ routine nn_matchC_vec().
# That routine compares distances with an unqualified abs() on doubles, which on some platforms is the integer
# abs(): every propensity-score difference below 1 becomes 0, so calipers never bind and the left neighbour is
# always taken (MatchIt issue #163, fixed in 4.5.4 by writing std::abs: "calipers would not work properly on some
# systems"). On this machine the fast routine ignores caliper = 0.1 entirely (every treated unit matched instead
# of 111 of 185).
# Two independent safeguards:
#   1. the general routine is forced. nn_matchC_dispatch() is replaced in MatchIt's namespace by a function that
#      always calls MatchIt:::nn_matchC(), the general C++ routine that 4.5.1 already uses for Mahalanobis and
#      distance-matrix matching. It computes |d_c - d_t| with Rcpp's vectorised sugar abs() on doubles, keeps the
#      controls with difference <= caliper, and takes which_min() (the first control in data order among equal
#      distances). A counter checks that the replacement was really called for every case.
#   2. every match matrix is recomputed by greedy() below: nearest-neighbour matching written out in plain R,
#      which shares no code with MatchIt (its own Newton-Raphson logistic fit for the score, its own Mahalanobis
#      distance, its own variable-ratio allocation written from ?method_nearest): treated units in m.order
#      ("largest" propensity score first for a propensity score, ties in data order; "data" order otherwise),
#      ratio > 1 in rounds (every treated unit gets its first control, then its second, ...), eligible controls:
#      unused (without replacement), in the same exact stratum, within every caliper (|difference| <= width); the
#      nearest eligible control is taken, ties broken by data order. With replacement each treated unit takes its
#      `ratio` nearest eligible controls. The script stop()s if MatchIt's (forced general) match differs from
#      greedy() in any case. (greedy()'s score is its own Newton
#      fit, within 3.2e-9 of glm's, which stops at a 1e-8 relative change in deviance; the matches agree anyway.)
# The JSON also records, per case, whether the fast 4.5.1 routine would have given the same matches
# ("fast_routine_agrees"): it does not for any propensity-score case here, which is the bug (the Mahalanobis case
# never goes through the fast routine, so there it trivially agrees).
library(jsonlite)
library(MatchIt)

data(lalonde, package = "MatchIt")
stopifnot(nrow(lalonde) == 614, identical(levels(lalonde$race), c("black", "hispan", "white")))
f <- treat ~ age + educ + race + married + nodegree + re74 + re75
covs <- c("age", "educ", "race", "married", "nodegree", "re74", "re75")

# ---- safeguard 1: force MatchIt's general nearest-neighbour routine ------------------------------------------
fast_dispatch <- MatchIt:::nn_matchC_dispatch
general_calls <- 0L
general_dispatch <- function(treat, ord, ratio, discarded, reuse.max, distance, distance_mat, ex, caliper.dist,
                             caliper.covs, caliper.covs.mat, mahcovs, antiexactcovs, unit.id, verbose) {
  general_calls <<- general_calls + 1L
  MatchIt:::nn_matchC(treat, ord, ratio, discarded, reuse.max, distance, distance_mat, ex, caliper.dist,
                      caliper.covs, caliper.covs.mat, mahcovs, antiexactcovs, unit.id, verbose)
}

run_matchit <- function(args, general) {
  assignInNamespace("nn_matchC_dispatch", if (general) general_dispatch else fast_dispatch, ns = "MatchIt")
  on.exit(assignInNamespace("nn_matchC_dispatch", fast_dispatch, ns = "MatchIt"))
  suppressWarnings(do.call(matchit, c(list(formula = f, data = lalonde, method = "nearest"), args)))
}

# ---- safeguard 2: an independent greedy nearest-neighbour match in plain R -----------------------------------
own_pscore <- function() {
  X <- cbind(1, lalonde$age, lalonde$educ, lalonde$race == "hispan", lalonde$race == "white", lalonde$married,
             lalonde$nodegree, lalonde$re74, lalonde$re75)
  y <- lalonde$treat
  b <- rep(0, ncol(X))
  for (it in 1:100) {  # Newton-Raphson on the binomial log-likelihood
    p <- 1 / (1 + exp(-drop(X %*% b)))
    step <- solve(crossprod(X, X * (p * (1 - p))), crossprod(X, y - p))
    b <- b + drop(step)
    if (max(abs(step)) < 1e-12) break
  }
  1 / (1 + exp(-drop(X %*% b)))
}

own_mahalanobis <- function() {
  # MatchIt's definition (?distance): factors as one column per level divided by sqrt(2), columns standardised,
  # the pooled within-group covariance (divisor n - 2); singular here (the race columns add up to a constant),
  # so a Moore-Penrose inverse (the distances do not depend on which generalised inverse is used).
  X <- cbind(lalonde$age, lalonde$educ, outer(as.character(lalonde$race), c("black", "hispan", "white"), "==") /
               sqrt(2), lalonde$married, lalonde$nodegree, lalonde$re74, lalonde$re75)
  X <- scale(X)
  t <- lalonde$treat
  Xc <- X
  for (g in 0:1) Xc[t == g, ] <- sweep(X[t == g, ], 2, colMeans(X[t == g, ]))
  S <- crossprod(Xc) / (nrow(X) - 2)
  e <- eigen(S, symmetric = TRUE)
  keep <- e$values > 1e-8 * e$values[1]
  G <- e$vectors[, keep] %*% (t(e$vectors[, keep]) / e$values[keep])
  function(i, js) {
    D <- sweep(X[js, , drop = FALSE], 2, X[i, ])
    sqrt(pmax(rowSums((D %*% G) * D), 0))
  }
}

variable_ratios <- function(ps, treat, ratio, min_c, max_c) {
  # ?method_nearest: m = round(ratio * n1) controls in all; kmax treated units get max.controls, kmin get
  # min.controls and one gets the rest; the treated units with the most extreme scores (furthest from the
  # controls) get the fewest controls; a zero count becomes 1, taken from the next unit (matchit2nearest).
  n1 <- sum(treat == 1)
  m <- round(ratio * n1)
  kmax <- floor((m - min_c * (n1 - 1)) / (max_c - min_c))
  kmin <- n1 - kmax - 1
  kmed <- m - (min_c * kmin + max_c * kmax)
  r0 <- c(rep(min_c, kmin), kmed, rep(max_c, kmax))
  zero <- which(r0 == 0)  # a middle unit left with no control takes one from the next unit
  r0[zero] <- 1
  r0[zero + 1] <- r0[zero + 1] - 1
  out <- integer(n1)
  out[order(ps[treat == 1], decreasing = mean(ps[treat == 1]) > mean(ps[treat == 0]))] <- r0
  out
}

greedy <- function(dist_fun, ord, ratios, replace = FALSE, exact = NULL, calipers = list()) {
  treat <- lalonde$treat
  tr <- which(treat == 1)
  ctl <- which(treat == 0)
  used <- rep(FALSE, nrow(lalonde))
  mm <- matrix(NA_integer_, length(tr), max(ratios))
  eligible <- function(i) {
    ok <- !used[ctl]
    if (!is.null(exact)) ok <- ok & exact[ctl] == exact[i]
    for (cal in calipers) ok <- ok & abs(cal$x[ctl] - cal$x[i]) <= cal$width
    ctl[ok]
  }
  if (replace) {
    for (a in ord) {
      el <- eligible(tr[a])
      if (!length(el)) next
      d <- dist_fun(tr[a], el)
      pick <- el[order(d)][seq_len(min(ratios[a], length(el)))]
      mm[a, seq_along(pick)] <- pick
    }
    return(mm)
  }
  for (r in seq_len(max(ratios))) {
    for (a in ord) {
      if (ratios[a] < r) next
      el <- eligible(tr[a])
      if (!length(el)) next
      d <- dist_fun(tr[a], el)
      j <- el[which(d == min(d))[1]]
      mm[a, r] <- j
      used[j] <- TRUE
    }
  }
  mm
}

same_matches <- function(mm_r, mm_own, replace) {
  ids <- rownames(lalonde)
  own <- matrix(ids[mm_own], nrow(mm_own))
  if (ncol(mm_r) != ncol(own)) return(FALSE)
  r <- unname(mm_r)
  if (replace) {  # the set, not the order (MatchIt takes the k nearest by an unstable partial sort)
    return(all(vapply(seq_len(nrow(r)), function(a) identical(sort(na.omit(r[a, ])), sort(na.omit(own[a, ]))),
                      logical(1))))
  }
  identical(is.na(r), is.na(own)) && all(r[!is.na(r)] == own[!is.na(own)])
}

# ---- the cases -------------------------------------------------------------------------------------------------
own_ps <- own_pscore()
ps_dist <- function(i, js) abs(own_ps[js] - own_ps[i])
largest <- order(own_ps[lalonde$treat == 1], decreasing = TRUE)
smallest <- order(own_ps[lalonde$treat == 1], decreasing = FALSE)
n1 <- sum(lalonde$treat == 1)
sd_ps <- sd(own_ps)

cases_spec <- list(
  list(name = "nearest_1to1", args = list(),
       own = list(dist = ps_dist, ord = largest, ratios = rep(1L, n1))),
  list(name = "nearest_1to2_caliper", args = list(ratio = 2, caliper = 0.1),
       own = list(dist = ps_dist, ord = largest, ratios = rep(2L, n1),
                  calipers = list(list(x = own_ps, width = 0.1 * sd_ps)))),
  list(name = "nearest_1to1_exact_race", args = list(exact = ~race),
       own = list(dist = ps_dist, ord = largest, ratios = rep(1L, n1), exact = as.character(lalonde$race))),
  list(name = "raw_caliper_age_exact_married", args = list(caliper = c(age = 10), std.caliper = FALSE,
                                                           exact = ~married),
       own = list(dist = ps_dist, ord = largest, ratios = rep(1L, n1), exact = lalonde$married,
                  calipers = list(list(x = lalonde$age, width = 10)))),
  list(name = "smallest_1to1_caliper_raw_ps", args = list(m.order = "smallest", caliper = 0.02,
                                                          std.caliper = FALSE),
       own = list(dist = ps_dist, ord = smallest, ratios = rep(1L, n1),
                  calipers = list(list(x = own_ps, width = 0.02)))),
  list(name = "variable_ratio_2_max3", args = list(ratio = 2, max.controls = 3),
       own = list(dist = ps_dist, ord = largest, ratios = variable_ratios(own_ps, lalonde$treat, 2, 1, 3))),
  list(name = "replace_1to2", args = list(ratio = 2, replace = TRUE),
       own = list(dist = ps_dist, ord = seq_len(n1), ratios = rep(2L, n1), replace = TRUE)),
  list(name = "mahalanobis_1to1_caliper_age", args = list(distance = "mahalanobis", caliper = c(age = 5),
                                                          std.caliper = FALSE),
       own = list(dist = own_mahalanobis(), ord = seq_len(n1), ratios = rep(1L, n1),
                  calipers = list(list(x = lalonde$age, width = 5))))
)

table_rows <- function(tab) {
  data.frame(term = rownames(tab), means_treated = unname(tab[, "Means Treated"]),
             means_control = unname(tab[, "Means Control"]), smd = unname(tab[, "Std. Mean Diff."]),
             var_ratio = unname(tab[, "Var. Ratio"]), ecdf_mean = unname(tab[, "eCDF Mean"]),
             ecdf_max = unname(tab[, "eCDF Max"]))
}

cases <- lapply(cases_spec, function(spec) {
  before <- general_calls
  m <- run_matchit(spec$args, general = TRUE)
  stopifnot(general_calls > before)  # the general routine really ran
  m_fast <- run_matchit(spec$args, general = FALSE)
  o <- spec$own
  own_mm <- greedy(o$dist, o$ord, o$ratios, replace = isTRUE(o$replace), exact = o$exact,
                   calipers = if (is.null(o$calipers)) list() else o$calipers)
  replace <- isTRUE(spec$args$replace)
  if (!same_matches(m$match.matrix, own_mm, replace)) {
    stop(sprintf("case %s: MatchIt's matches differ from the independent greedy implementation", spec$name))
  }
  if (!is.null(m$distance)) stopifnot(max(abs(m$distance - own_ps)) < 1e-7)  # glm stops at a 1e-8 deviance change
  s <- summary(m, un = TRUE)
  mm <- unname(m$match.matrix)
  list(
    name = spec$name,
    args = lapply(spec$args, function(a) {
      if (inherits(a, "formula")) all.vars(a) else if (!is.null(names(a))) as.list(a) else a
    }),
    distance = if (is.null(m$distance)) NULL else unname(m$distance),
    caliper = if (is.null(m$caliper)) NULL else as.list(setNames(unname(m$caliper),
                                                                  ifelse(names(m$caliper) == "", "distance",
                                                                         names(m$caliper)))),
    treated_ids = rownames(m$match.matrix),
    match_matrix = mm,
    weights = unname(m$weights),
    subclass = as.character(m$subclass),
    fast_routine_agrees = same_matches(m_fast$match.matrix, own_mm, replace),
    nn = list(matched_control = s$nn["Matched", "Control"], matched_treated = s$nn["Matched", "Treated"],
              unmatched_control = s$nn["Unmatched", "Control"], unmatched_treated = s$nn["Unmatched", "Treated"]),
    sum_all = table_rows(s$sum.all),
    sum_matched = table_rows(s$sum.matched)
  )
})
names(cases) <- NULL
for (cs in cases) cat(sprintf("%-32s matched treated %3d  fast 4.5.1 routine agrees: %s\n", cs$name,
                              cs$nn$matched_treated, cs$fast_routine_agrees))

data_out <- data.frame(id = rownames(lalonde), lalonde[, c("treat", covs)], stringsAsFactors = FALSE)
data_out$race <- as.character(data_out$race)
rownames(data_out) <- NULL
out <- list(
  r_version = R.version.string, matchit_version = as.character(packageVersion("MatchIt")),
  formula = deparse(f), race_levels = levels(lalonde$race),
  data = data_out,
  cases = cases
)
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, na = "null", null = "null", pretty = TRUE,
                  dataframe = "columns", matrix = "rowmajor"),
           "tests/reference/matching_reference.json")
