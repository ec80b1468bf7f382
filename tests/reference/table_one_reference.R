# Reference values for allotrack.stats.contingency and report.table_one: the tests gtsummary::add_p() runs by
# default (chisq.test without correction when all expected counts >= 5, else fisher.test; wilcox.test for two
# groups, kruskal.test for more; t.test / aov for variables declared normal). gtsummary calls exactly these
# base-R functions, so their values are the reference.
#   Rscript tests/reference/table_one_reference.R   (R >= 4.2, jsonlite)
library(jsonlite)
set.seed(20261125)

tables <- list(
  chisq_2x2 = matrix(c(20, 15, 10, 25), 2),
  chisq_3x2 = matrix(c(30, 22, 18, 12, 25, 20), 3),
  fisher_2x2 = matrix(c(3, 1, 1, 3), 2),
  fisher_2x2_skew = matrix(c(9, 2, 4, 7), 2),
  fisher_3x2 = matrix(c(3, 4, 8, 5, 0, 2), 3),
  fisher_2x4 = matrix(c(5, 1, 2, 3, 0, 4, 6, 2), 2),
  fisher_3x3 = matrix(c(2, 0, 3, 1, 4, 0, 3, 1, 2), 3),
  fisher_mst_sexpair = matrix(c(5, 5, 4, 0, 6, 2, 5, 2), 2)  # the demo study's donor/patient sex pairs by age group
)
table_cases <- lapply(names(tables), function(nm) {
  t <- tables[[nm]]
  e <- suppressWarnings(chisq.test(t, correct = FALSE))$expected
  chosen <- if (all(e >= 5)) "chisq.test" else "fisher.test"
  out <- list(name = nm, table = unname(split(t, row(t))), chosen = chosen,
              chisq_statistic = unname(suppressWarnings(chisq.test(t, correct = FALSE))$statistic),
              chisq_p = suppressWarnings(chisq.test(t, correct = FALSE))$p.value,
              fisher_p = fisher.test(t)$p.value)
  out
})

x_small <- c(1.2, 3.4, 2.2, 5.1, 4.4, 0.7, 2.9)
y_small <- c(6.3, 4.8, 7.7, 5.5, 3.9, 8.1)
x_ties <- c(1, 2, 2, 3, 4, 4, 4, 5)
y_ties <- c(3, 4, 5, 5, 6, 7, 7)
x_big <- round(rnorm(60, 10, 3), 3)
y_big <- round(rnorm(55, 11, 3), 3)
g3 <- list(c(1, 3, 3, 5, 8, 9), c(2, 4, 6, 6, 10, 11, 12), c(7, 8, 13, 14, 15))
continuous_cases <- list(
  list(name = "wilcox_exact", groups = list(x_small, y_small), test = "wilcox.test",
       statistic = unname(wilcox.test(x_small, y_small)$statistic), p = wilcox.test(x_small, y_small)$p.value),
  list(name = "wilcox_ties", groups = list(x_ties, y_ties), test = "wilcox.test",
       statistic = unname(suppressWarnings(wilcox.test(x_ties, y_ties))$statistic),
       p = suppressWarnings(wilcox.test(x_ties, y_ties))$p.value),
  list(name = "wilcox_large", groups = list(x_big, y_big), test = "wilcox.test",
       statistic = unname(wilcox.test(x_big, y_big)$statistic), p = wilcox.test(x_big, y_big)$p.value),
  list(name = "kruskal_3", groups = g3, test = "kruskal.test",
       statistic = unname(kruskal.test(g3)$statistic), p = kruskal.test(g3)$p.value),
  list(name = "t_welch", groups = list(x_small, y_small), test = "t.test",
       statistic = unname(t.test(x_small, y_small)$statistic), p = t.test(x_small, y_small)$p.value),
  list(name = "anova_3", groups = g3, test = "aov",
       statistic = summary(aov(v ~ g, data.frame(v = unlist(g3), g = factor(rep(1:3, lengths(g3))))))[[1]]$`F value`[1],
       p = summary(aov(v ~ g, data.frame(v = unlist(g3), g = factor(rep(1:3, lengths(g3))))))[[1]]$`Pr(>F)`[1])
)

# Descriptive statistics as gtsummary computes them: median and quartiles with quantile(type = 2).
q <- quantile(x_ties, c(0.25, 0.5, 0.75), type = 2)
summaries <- list(values = x_ties, q1 = unname(q[1]), median = unname(q[2]), q3 = unname(q[3]),
                  mean = mean(x_ties), sd = sd(x_ties))

out <- list(r_version = R.version.string, tables = table_cases, continuous = continuous_cases, summaries = summaries)
write_json(out, "tests/reference/table_one_reference.json", digits = NA, auto_unbox = TRUE, pretty = TRUE)
