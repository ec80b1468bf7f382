# Reference values for allotrack.design.dose_finding: the BOIN design of Liu & Yuan (2015, J R Stat Soc C
# 64:507) written out from its definition:
#   * boundaries  lambda_e = log((1 - phi1)/(1 - phi)) / log(phi (1 - phi1) / (phi1 (1 - phi))),
#                 lambda_d = log((1 - phi)/(1 - phi2)) / log(phi2 (1 - phi) / (phi (1 - phi2))),
#     escalate if y <= floor(lambda_e n), de-escalate if y >= ceiling(lambda_d n) (lambda_d n + 1 when lambda_d n
#     is an integer to within 1e-12, as BOIN 2.7.2), eliminate if n >= 3 and 1 - pbeta(phi, y + 1, n - y + 1) >
#     cutoff.eli (Beta(1, 1) prior), the de-escalation boundary lowered to the elimination boundary if above it;
#   * MTD selection as BOIN's select.mtd: doses from the first eliminated one upwards are out; on the treated,
#     admissible doses (y + 0.05)/(n + 0.1) is made non-decreasing by weighted PAVA (weights 1/var of that
#     estimate), j * 1e-10 is added to the j-th, and the dose closest to the target is the MTD (first on ties).
#     Also the patient-weighted PAVA of y/n (the isotonic MLE).
# The BOIN package is not in Debian. If it is installed, or if BOIN_SRC names a directory with its sources
# get.boundary.R and select.mtd.R (e.g. from the CRAN GitHub mirror cran/BOIN, version 2.7.2), every table and
# every selected MTD (and the printed isotonic estimates, 2 decimals) is also compared with BOIN's own functions
# and the script stops on any difference; the JSON records whether that check ran ("boin_check").
#   Rscript tests/reference/dose_finding_reference.R        (R >= 4.2, jsonlite)
#   BOIN_SRC=/path/to/BOIN/R Rscript tests/reference/dose_finding_reference.R
library(jsonlite)
set.seed(20260310)

boin <- NULL
if (requireNamespace("BOIN", quietly = TRUE)) {
  boin <- list(get.boundary = BOIN::get.boundary, select.mtd = BOIN::select.mtd,
               version = paste("BOIN", packageVersion("BOIN"), "(installed package)"))
} else if (nzchar(Sys.getenv("BOIN_SRC"))) {
  env <- new.env()
  sys.source(file.path(Sys.getenv("BOIN_SRC"), "get.boundary.R"), envir = env)
  sys.source(file.path(Sys.getenv("BOIN_SRC"), "select.mtd.R"), envir = env)
  boin <- list(get.boundary = env$get.boundary, select.mtd = env$select.mtd,
               version = paste("BOIN sources from", Sys.getenv("BOIN_SRC_LABEL", Sys.getenv("BOIN_SRC"))))
}

# ------------------------------------------------------------------------------------------------ boundaries
boundaries <- function(target, max_n = 18, p.saf = 0.6 * target, p.tox = 1.4 * target, cutoff.eli = 0.95) {
  lambda_e <- log((1 - p.saf) / (1 - target)) / log(target * (1 - p.saf) / (p.saf * (1 - target)))
  lambda_d <- log((1 - target) / (1 - p.tox)) / log(p.tox * (1 - target) / (target * (1 - p.tox)))
  n <- seq_len(max_n)
  b_e <- floor(lambda_e * n)
  x <- lambda_d * n
  b_d <- ifelse(abs(round(x) - x) < 1e-12, round(x) + 1, ceiling(x))
  elim <- sapply(n, function(m) {
    if (m < 3) return(NA_integer_)
    y <- seq_len(m)
    hit <- which(1 - pbeta(target, y + 1, m - y + 1) > cutoff.eli)
    if (length(hit)) as.integer(y[hit[1]]) else NA_integer_
  })
  b_d <- ifelse(!is.na(elim) & b_d > elim, elim, b_d)
  out <- list(target = target, p_saf = p.saf, p_tox = p.tox, cutoff_eli = cutoff.eli, lambda_e = lambda_e,
              lambda_d = lambda_d, n = n, escalate_max = b_e, deescalate_min = b_d, eliminate_min = elim)
  if (!is.null(boin)) {
    ref <- boin$get.boundary(target, ncohort = max_n, cohortsize = 1, p.saf = p.saf, p.tox = p.tox,
                             cutoff.eli = cutoff.eli)
    tab <- ref$boundary_tab
    stopifnot(isTRUE(all.equal(ref$lambda_e, lambda_e, tolerance = 1e-14)),
              isTRUE(all.equal(ref$lambda_d, lambda_d, tolerance = 1e-14)),
              identical(as.numeric(tab[1, ]), as.numeric(n)), identical(as.numeric(tab[2, ]), as.numeric(b_e)),
              identical(as.numeric(tab[3, ]), as.numeric(b_d)), identical(as.numeric(tab[4, ]), as.numeric(elim)))
  }
  out
}
boundary_cases <- c(
  lapply(c(0.15, 0.20, 0.25, 0.30, 0.35, 0.40), boundaries),
  list(boundaries(1 / 3), boundaries(0.10, max_n = 30), boundaries(0.50, max_n = 30),
       boundaries(0.25, p.saf = 0.15, p.tox = 0.35, cutoff.eli = 0.90))
)

# ------------------------------------------------------------------------------------------- MTD selection
pava <- function(x, w) {                     # pool adjacent violators with a stack of blocks
  val <- numeric(0); wt <- numeric(0); len <- integer(0)
  for (i in seq_along(x)) {
    val <- c(val, x[i]); wt <- c(wt, w[i]); len <- c(len, 1L)
    while (length(val) > 1 && val[length(val) - 1] > val[length(val)]) {
      k <- length(val)
      val[k - 1] <- (val[k - 1] * wt[k - 1] + val[k] * wt[k]) / (wt[k - 1] + wt[k])
      wt[k - 1] <- wt[k - 1] + wt[k]; len[k - 1] <- len[k - 1] + len[k]
      val <- val[-k]; wt <- wt[-k]; len <- len[-k]
    }
  }
  rep(val, len)
}
select_case <- function(name, n, y, target, cutoff.eli = 0.95) {
  k <- length(n)
  elim <- rep(FALSE, k)
  for (i in seq_len(k)) if (n[i] >= 3 && 1 - pbeta(target, y[i] + 1, n[i] - y[i] + 1) > cutoff.eli) {
    elim[i:k] <- TRUE; break
  }
  est <- function(idx) {
    phat <- (y[idx] + 0.05) / (n[idx] + 0.1)
    v <- (y[idx] + 0.05) * (n[idx] - y[idx] + 0.05) / ((n[idx] + 0.1)^2 * (n[idx] + 0.1 + 1))
    pava(phat, 1 / v)
  }
  treated <- n > 0
  iso_boin <- rep(NA_real_, k); iso_mle <- rep(NA_real_, k)
  if (any(treated)) {
    iso_boin[treated] <- est(which(treated))
    iso_mle[treated] <- pava(y[treated] / n[treated], n[treated])
  }
  adm <- which(treated & !elim)
  mtd <- NA_integer_
  if (!elim[1] && length(adm)) {
    p <- est(adm) + seq_along(adm) * 1e-10
    mtd <- adm[which.min(abs(p - target))]
  }
  if (!is.null(boin)) {
    ref <- boin$select.mtd(target, n, y, cutoff.eli = cutoff.eli)
    stopifnot(identical(as.numeric(ref$MTD), as.numeric(if (is.na(mtd)) 99 else mtd)))
    printed <- ifelse(treated, formatC(iso_boin, digits = 2, format = "f"), "----")
    stopifnot(identical(as.character(ref$p_est$phat), printed))
  }
  list(name = name, target = target, cutoff_eli = cutoff.eli, n = n, y = y, mtd = mtd, eliminated = elim,
       isotonic_boin = iso_boin, isotonic = iso_mle)
}
select_cases <- list(
  select_case("boin_doc_example", c(3, 3, 15, 9, 0), c(0, 0, 4, 4, 0), 0.3),   # ?select.mtd
  select_case("pooled_below_target", c(6, 6, 6, 3), c(2, 1, 0, 0), 0.3),
  select_case("pooled_above_target", c(3, 9, 6, 0), c(0, 4, 2, 0), 0.25),
  select_case("middle_untreated", c(3, 0, 6, 3), c(0, 0, 1, 1), 0.3),
  select_case("eliminated_middle", c(3, 6, 3, 0), c(0, 1, 3, 0), 0.3),
  select_case("lowest_eliminated", c(3, 0, 0), c(3, 0, 0), 0.3),
  select_case("nobody_treated", c(0, 0, 0), c(0, 0, 0), 0.3),
  select_case("all_safe", c(3, 3, 3, 12), c(0, 0, 0, 1), 0.2),
  select_case("cutoff_0.9", c(3, 6, 6), c(0, 1, 3), 0.25, cutoff.eli = 0.90)
)
for (i in 1:25) {
  k <- sample(3:6, 1)
  n <- sample(c(0, 3, 3, 6, 6, 9, 12), k, replace = TRUE)
  target <- sample(c(0.2, 0.25, 0.3, 1 / 3), 1)
  y <- rbinom(k, n, pmin(0.9, sort(runif(k, 0.02, 0.6))))
  select_cases[[length(select_cases) + 1]] <- select_case(sprintf("random_%02d", i), n, y, target)
}

out <- list(r_version = R.version.string, boin_check = if (is.null(boin)) "not run" else boin$version,
            boundaries = boundary_cases, select_mtd = select_cases)
write_json(out, "tests/reference/dose_finding_reference.json", digits = NA, auto_unbox = TRUE, pretty = TRUE,
           na = "null")
