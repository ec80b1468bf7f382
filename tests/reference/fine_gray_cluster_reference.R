# Reference values for allotrack's cluster-robust Fine–Gray variance (fine_gray(..., cluster=)), from
# crrSC::crrc (Zhou, Fine, Latouche & Labopin, Biometrics 2012;68:1-19), with cmprsk::crr alongside.
#
# crrSC is not in Debian and CRAN was unreachable when this was written. It was obtained from the GitHub
# mirror of CRAN (https://github.com/cran/crrSC, version 1.1.2, 2022-06-10) and installed locally:
#   git clone https://github.com/cran/crrSC /tmp/crrSC        (or: git archive of the mirror into /tmp/crrSC)
#   mkdir -p /tmp/rlib && R CMD INSTALL -l /tmp/rlib /tmp/crrSC
# Then run from the repository root:
#   Rscript tests/reference/fine_gray_cluster_reference.R [/tmp/rlib]
# Writes tests/reference/fine_gray_cluster_reference.json (data included; the tests never need R).
#
# crrc (R/crrcc.r, C crrvvoo in src/crrcc.c): same estimating equation, censoring KM at ftime*(1 - eps) and
# per-subject influence terms eta_i + psi_i as crr's crrvv (one censoring group only); the middle of the
# sandwich is sum over clusters of (sum_{i in c} (eta_i + psi_i)) (...)', no n/(n-1)-type factor.
# Both are run with gtol = 1e-12, maxiter = 100 so the coefficients are converged far below the test tolerance.
args <- commandArgs(trailingOnly = TRUE)
lib <- if (length(args) >= 1) args[1] else "/tmp/rlib"
suppressPackageStartupMessages({
  library(survival); library(cmprsk); library(jsonlite); library(crrSC, lib.loc = lib)
})
out_dir <- "tests/reference"
num <- function(x) as.numeric(x)
rows <- function(m) lapply(seq_len(nrow(m)), function(i) num(m[i, ]))

# ---------------------------------------------------------------- data sets
set.seed(20240611)
# 1. 40 clusters of sizes 1-8 sharing a gamma frailty (mean 1, variance 0.5); x1 binary, x2 continuous;
#    cause 1 / cause 2 / censored (0); times rounded to 0.1 so that failures, competing events and
#    censorings tie.
n_cl <- 40
size <- sample(1:8, n_cl, replace = TRUE)
cl <- rep(seq_len(n_cl), size)
n <- length(cl)
frail <- rgamma(n_cl, shape = 2, rate = 2)[cl]
x1 <- rbinom(n, 1, 0.45)
x2 <- round(rnorm(n) + 0.3 * rnorm(n_cl)[cl], 3)
p1 <- plogis(-0.2 + 0.6 * x1 - 0.3 * x2)
is1 <- runif(n) < p1
rate <- frail * exp(0.4 * x1 + 0.25 * x2)
ev <- rexp(n, ifelse(is1, 0.5, 0.35) * rate)
cens <- runif(n, 0.5, 6)
time <- round(pmin(ev, cens), 1) + 0.1
cause <- ifelse(ev <= cens, ifelse(is1, 1, 2), 0)
# cluster labels are strings in shuffled order, so label order differs from first-appearance order
labels <- sprintf("c%02d", sample(n_cl))
clustered <- data.frame(time = time, cause = cause, x1 = x1, x2 = x2, cluster = labels[cl])

# 2. matched sets: one treated patient and 1-7 controls per set, a set-level frailty (matching factors),
#    covariate = treated; integer months so that times tie heavily.
n_set <- 35
k <- sample(1:7, n_set, replace = TRUE)
set <- rep(seq_len(n_set), k + 1)
treated <- unlist(lapply(k, function(kk) c(1, rep(0, kk))))
m <- length(set)
fr <- exp(rnorm(n_set, 0, 0.7))[set]
is1 <- runif(m) < plogis(0.1 + 0.5 * treated)
ev <- rexp(m, ifelse(is1, 0.04, 0.03) * fr * exp(0.3 * treated))
cens <- runif(m, 6, 60)
matched <- data.frame(time = ceiling(pmin(ev, cens)), cause = ifelse(ev <= cens, ifelse(is1, 1, 2), 0),
                      treated = treated, set = set)

# ---------------------------------------------------------------- fits
fg_case <- function(name, d, covariates, cluster, failcode = 1) {
  X <- as.matrix(d[, covariates, drop = FALSE])
  fc <- crrc(d$time, d$cause, cov1 = X, cluster = d[[cluster]], failcode = failcode, cencode = 0,
             gtol = 1e-12, maxiter = 100)
  fr <- crr(d$time, d$cause, X, failcode = failcode, cencode = 0, gtol = 1e-12, maxiter = 100)
  stopifnot(fc$converged, fr$converged)
  list(name = name, covariates = covariates, cluster = cluster, failcode = failcode,
       data = lapply(as.list(d), function(v) if (is.numeric(v)) num(v) else as.character(v)),
       n = nrow(d), n_clusters = length(unique(d[[cluster]])),
       coef = num(fc$coef), var = rows(fc$var), se = num(sqrt(diag(fc$var))),
       crr_coef = num(fr$coef), crr_var = rows(fr$var), crr_se = num(sqrt(diag(fr$var))))
}
cases <- list(
  fg_case("clustered_cause1", clustered, c("x1", "x2"), "cluster"),
  fg_case("clustered_cause2", clustered, c("x1", "x2"), "cluster", failcode = 2),
  fg_case("matched_sets", matched, c("treated"), "set")
)
ref <- list(r_version = R.version.string, crrSC_version = as.character(packageVersion("crrSC", lib.loc = lib)),
            cmprsk_version = as.character(packageVersion("cmprsk")),
            survival_version = as.character(packageVersion("survival")), fine_gray_cluster = cases)
writeLines(toJSON(ref, digits = NA, auto_unbox = TRUE, na = "null", null = "null", pretty = TRUE),
           file.path(out_dir, "fine_gray_cluster_reference.json"))
cat("wrote", file.path(out_dir, "fine_gray_cluster_reference.json"), "\n")
