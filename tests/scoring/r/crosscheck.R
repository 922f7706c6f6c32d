# Reference figures from R's survey package for tests/scoring/test_against_r.py.
# Usage: Rscript crosscheck.R data.csv lonely_policy clustered(0/1) out.csv
suppressMessages(library(survey))
args <- commandArgs(trailingOnly = TRUE)
d <- read.csv(args[1])
options(survey.lonely.psu = args[2])
ids <- if (args[3] == "1") ~psu else ~1
des <- svydesign(ids = ids, strata = ~strata, weights = ~w, fpc = ~N, data = d, nest = TRUE)
out <- data.frame()
for (k in 1:3) {
  y <- as.formula(paste0("~y", k)); v <- as.formula(paste0("~v", k))
  r <- svyby(y, by = ~dom, denominator = v, design = des, FUN = svyratio)
  out <- rbind(out, data.frame(what = paste0("ratio", k), dom = r$dom, est = r[[2]], se = r[[3]]))
}
# element-style contrast: the mean of the three ratios, by domain (covariances included)
for (g in sort(unique(d$dom))) {
  sub <- subset(des, dom == g)
  rr <- svyratio(~y1 + y2 + y3, ~v1 + v2 + v3, sub, covmat = TRUE)
  keep <- c(1, 5, 9)  # y1/v1, y2/v2, y3/v3 in the cross table
  cc <- rep(0, 9); cc[keep] <- 1 / 3
  con <- svycontrast(rr, cc)
  out <- rbind(out, data.frame(what = "mean3", dom = g, est = coef(con)[[1]], se = SE(con)[[1]]))
  out <- rbind(out, data.frame(what = "degf", dom = g, est = degf(sub), se = NA))
  ci <- svyciprop(~I(y1 == 1), subset(sub, v1 == 1), method = "beta")
  out <- rbind(out, data.frame(what = "kg_lower", dom = g, est = attr(ci, "ci")[[1]], se = NA))
  out <- rbind(out, data.frame(what = "kg_upper", dom = g, est = attr(ci, "ci")[[2]], se = NA))
  ci <- svyciprop(~I(y1 == 1), subset(sub, v1 == 1), method = "xlogit")
  out <- rbind(out, data.frame(what = "logit_lower", dom = g, est = attr(ci, "ci")[[1]], se = NA))
  out <- rbind(out, data.frame(what = "logit_upper", dom = g, est = attr(ci, "ci")[[2]], se = NA))
  out <- rbind(out, data.frame(what = "kg_df", dom = g, est = degf(subset(sub, v1 == 1)), se = NA))
  out <- rbind(out, data.frame(what = "kg_n", dom = g, est = nrow(subset(sub, v1 == 1)), se = NA))
}
write.csv(out, args[4], row.names = FALSE)
