# Reference for allotrack's counting-process datasets: R survival::tmerge on the myeloid AML trial, with
# transplant as a time-dependent covariate and cumulative counts (as the survival "compete" vignette does).
# Run from the repository root: Rscript tests/reference/records_reference.R
suppressPackageStartupMessages(library(survival))
m <- tmerge(myeloid[, c("id", "trt", "sex")], myeloid, id = id, death = event(futime, death),
            transplant = tdc(txtime), crs = cumtdc(crtime), rls = cumtdc(rltime))
write.csv(m[, c("id", "tstart", "tstop", "death", "transplant", "crs", "rls")],
          "tests/reference/data/myeloid_tmerge.csv", row.names = FALSE)
f <- coxph(Surv(tstart, tstop, death) ~ trt + transplant, data = m, ties = "efron",
           control = coxph.control(eps = 1e-12, toler.chol = 1e-13))
write.csv(data.frame(term = names(coef(f)), coef = unname(coef(f)), se = unname(sqrt(diag(f$var)))),
          "tests/reference/data/myeloid_tmerge_cox.csv", row.names = FALSE)
cat("wrote myeloid_tmerge.csv and myeloid_tmerge_cox.csv\n")
