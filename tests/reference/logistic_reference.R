# Reference values for allotrack.stats.logistic: logistic regression of a 0/1 outcome.
#   Rscript tests/reference/logistic_reference.R   (R >= 4.2, jsonlite, MASS)
#
# Per model: glm(family = binomial) at its default control (epsilon = 1e-8, maxit = 25): coefficients, standard
# errors, z, Wald p (summary.glm), Wald limits (confint.default), null / residual deviance with their df, AIC and
# the number of IRLS iterations; and profile-likelihood limits two ways:
#   * "profile_r": confint(fit) as R prints it. In R 4.2 this is MASS:::confint.glm, which profiles the deviance
#     on a coarse grid (profile.glm: steps of about zeta/5, at most 10 each side) and then interpolates the
#     signed root deviance with an interpolating spline (spline + approx), so its limits are interpolated, not
#     solved. R >= 4.4 moved the very same code to stats::confint.glm.
#   * "profile_tight": the exact limits, solved here with uniroot (tol 1e-14) on the constrained deviance
#     D(b) = deviance of the model y ~ other columns + offset(b * x_j), i.e. the b at which
#     D(b) - D(beta_hat) = qnorm((1 + level) / 2)^2 on each side of beta_hat (dispersion 1). D(b) is minimised
#     by newton_dev below, not glm.fit: glm.fit has no step-halving on a rising deviance and far out on a steep
#     profile (mtcars) stops "converged" at a deviance of 855 instead of 11. Each root is checked:
#     |D(root) - D(beta_hat) - z^2| < 1e-8. confint()'s interpolated limits differ from these by up to
#     1.3e-3 relative (mtcars, where the profiles are strongly curved), 2.7e-4 for infert and birthwt.
# The data are written to the JSON too, so that the tests never need R.
library(jsonlite)
library(MASS)

tight_ctl <- glm.control(epsilon = 1e-15, maxit = 200)

# Deviance of a logistic model with a fixed offset, minimised by Newton's method with step-halving (the
# log-likelihood is concave, so this cannot stall); log(mu) and log(1 - mu) from plogis(log.p = TRUE).
newton_dev <- function(X, y, w, off, start) {
  devf <- function(b) {
    eta <- drop(X %*% b) + off
    -2 * sum(w * (y * plogis(eta, log.p = TRUE) + (1 - y) * plogis(-eta, log.p = TRUE)))
  }
  b <- start
  dev <- devf(b)
  for (it in 1:500) {
    mu <- plogis(drop(X %*% b) + off)
    step <- solve(crossprod(X, X * (w * mu * (1 - mu))), crossprod(X, w * (y - mu)))
    t <- 1
    while (devf(b + t * step) > dev && t > 1e-12) t <- t / 2
    b <- b + t * step
    dev <- devf(b)
    if (max(abs(t * step)) < 1e-13 * (1 + max(abs(b)))) break
  }
  dev
}

profile_tight <- function(fit, level) {
  X <- model.matrix(fit)
  y <- fit$y
  w <- fit$prior.weights
  tfit <- glm.fit(X, y, weights = w, family = binomial(), control = tight_ctl)
  bhat <- tfit$coefficients
  dhat <- newton_dev(X, y, w, 0, bhat)
  se <- sqrt(diag(chol2inv(qr.R(qr(X * sqrt(tfit$weights))))))
  z2 <- qnorm((1 + level) / 2)^2
  lims <- matrix(NA_real_, ncol(X), 2, dimnames = list(colnames(X), c("lower", "upper")))
  for (j in seq_len(ncol(X))) {
    g <- function(b) newton_dev(X[, -j, drop = FALSE], y, w, b * X[, j], bhat[-j]) - dhat - z2
    for (s in c(-1, 1)) {
      far <- bhat[j] + s * 2 * sqrt(z2) * se[j]
      while (g(far) < 0) far <- bhat[j] + 2 * (far - bhat[j])
      r <- uniroot(g, sort(c(bhat[j], far)), tol = 1e-14, maxiter = 1000)$root
      stopifnot(abs(g(r)) < 1e-8)
      lims[j, if (s < 0) 1 else 2] <- r
    }
  }
  lims
}

logit_case <- function(name, formula, data, level = 0.95, source = "") {
  fit <- glm(formula, family = binomial, data = data)
  s <- summary(fit)$coefficients
  wald <- confint.default(fit, level = level)
  prof <- suppressMessages(confint(fit, level = level))
  tight <- profile_tight(fit, level)
  vars <- all.vars(formula)
  list(
    name = name, source = source, formula = deparse(formula), conf_level = level,
    data = data[, vars],
    terms = rownames(s),
    coef = unname(s[, 1]), se = unname(s[, 2]), z = unname(s[, 3]), p = unname(s[, 4]),
    wald_lower = unname(wald[, 1]), wald_upper = unname(wald[, 2]),
    profile_r_lower = unname(prof[, 1]), profile_r_upper = unname(prof[, 2]),
    profile_tight_lower = unname(tight[, 1]), profile_tight_upper = unname(tight[, 2]),
    null_deviance = fit$null.deviance, deviance = fit$deviance,
    df_null = fit$df.null, df_residual = fit$df.residual, aic = fit$aic,
    iterations = fit$iter, converged = fit$converged
  )
}

data(birthwt, package = "MASS")
bw <- birthwt
bw$race <- factor(bw$race, labels = c("white", "black", "other"))
inf <- infert
inf$education <- factor(as.character(inf$education), levels = levels(infert$education))

# the 2 x 2 table of binary_reference.R's msc_rct_primary: 54/65 responders on arm 1, 36/65 on arm 0
msc <- data.frame(arm = rep(c(1, 0), each = 65), response = c(rep(1, 54), rep(0, 11), rep(1, 36), rep(0, 29)))

cases <- list(
  logit_case("mtcars_am", am ~ wt + hp, mtcars, source = "mtcars: am ~ wt + hp"),
  logit_case("mtcars_am_90", am ~ wt + hp, mtcars, level = 0.90, source = "the same at 90%"),
  logit_case("infert_case", case ~ spontaneous + induced + education, inf,
             source = "infert: case ~ spontaneous + induced + education (factor, reference 0-5yrs)"),
  logit_case("birthwt_low", low ~ age + lwt + race + smoke, bw,
             source = "MASS birthwt: low ~ age + lwt + race (factor, reference white) + smoke"),
  logit_case("mtcars_vs_single", vs ~ am, mtcars, source = "mtcars: vs ~ am (a 2 x 2 table)"),
  logit_case("msc_2x2", response ~ arm, msc, source = "MSC RCT primary endpoint 54/65 vs 36/65 as a 2 x 2 table")
)

out <- list(r_version = R.version.string, mass_version = as.character(packageVersion("MASS")), cases = cases)
write_json(out, "tests/reference/logistic_reference.json", digits = NA, auto_unbox = TRUE, pretty = TRUE,
           dataframe = "columns", factor = "string")
