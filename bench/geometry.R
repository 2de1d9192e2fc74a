# Geometry benchmarks (issue #4; PERFORMANCE.md W6). Prints time, the ratio to a naive R
# version on a subset (scaled by the work ratio), and the ratio to the GEMM the kNN
# search needs, measured in the same run.
#   Rscript bench/geometry.R            (R_LIBS pointing at an installed tensorscope)
# Sizes: kNN + TwoNN on 20,000 x 512 (and W6: 10,000 x 768); Ollivier-Ricci on the
# kNN(10) graph of 5,000 points (and W6: 2,000 points); fiber-bundle test on 5,000 x 768.
suppressPackageStartupMessages(library(tensorscope))
ts_threads(parallel::detectCores())  # all cores, as the peers' BLAS uses them
cat(sprintf("tensorscope %s, threads %d, BLAS %s; load: %s\n", ts_build_info()$version, ts_threads(),
            ts_build_info()$blas, paste(readLines("/proc/loadavg", warn = FALSE), collapse = "")))
tm <- function(expr) unname(system.time(expr)["elapsed"])
line <- function(what, t, naive = NA, limit = NA) {
  cat(sprintf("%-48s %8.2f s", what, t))
  if (!is.na(naive)) cat(sprintf("   naive R (extrapolated) %8.1f s, x%.0f", naive, naive / t))
  if (!is.na(limit)) cat(sprintf("   GEMM limit %.2f s, ratio %.2f", limit, t / limit))
  cat("\n")
}

naive_twonn <- function(x) {
  D <- as.matrix(stats::dist(x))
  diag(D) <- Inf
  r <- t(apply(D, 1, function(v) sort(v)[1:2]))
  mu <- sort(r[, 2] / r[, 1])
  N <- length(mu)
  m <- floor(0.9 * N)
  xx <- log(mu[1:m])
  yy <- -log(1 - (1:m) / N)
  sum(xx * yy) / sum(xx^2)
}

set.seed(1)
for (shape in list(c(20000, 512), c(10000, 768))) {
  n <- shape[1]
  p <- shape[2]
  x <- matrix(rnorm(n * p), n)
  g <- tm(tcrossprod(x[1:(n / 2), ], x))              # half of X X^T: what the kNN search multiplies
  t_knn <- tm(nn <- nearest_neighbors(x, k = 10))
  t_id <- tm(d <- intrinsic_dim(x))
  sub <- x[1:2000, ]
  t_naive <- tm(naive_twonn(sub)) * (n / 2000)^2
  line(sprintf("kNN (k = 10) %d x %d", n, p), t_knn, limit = g)
  line(sprintf("TwoNN %d x %d (d = %.1f)", n, p, d), t_id, naive = t_naive, limit = g)
}

naive_ricci_subset <- function(x, k, n_edges) {
  # GraphRicciCurvature's recipe in R: igraph kNN graph, all-pairs shortest paths,
  # W1 by a dense LP would need an LP solver; time the shortest paths alone (a lower
  # bound on the naive cost).
  D <- as.matrix(stats::dist(x))
  nn <- t(apply(D, 1, function(v) order(v)[2:(k + 1)]))
  el <- cbind(rep(seq_len(nrow(x)), k), as.vector(nn))
  g <- igraph::simplify(igraph::graph_from_edgelist(el, directed = FALSE))
  igraph::E(g)$weight <- D[igraph::as_edgelist(g)]
  igraph::distances(g)
}
for (n in c(2000, 5000)) {
  y <- matrix(rnorm(n * 20), n)
  t_r <- tm(rc <- ricci_curvature(y, k = 10))
  t_naive <- if (requireNamespace("igraph", quietly = TRUE)) tm(naive_ricci_subset(y[1:1000, ], 10)) * (n / 1000)^2 else NA
  line(sprintf("Ollivier-Ricci kNN(10) %d x 20 (%d edges)", n, nrow(rc)), t_r, naive = t_naive)
}

z <- matrix(rnorm(5000 * 768), 5000)
t_fb <- tm(fb <- fiber_bundle_test(z))
naive_fb <- function(x) {
  D <- as.matrix(stats::dist(x))
  for (i in seq_len(nrow(x))) sort(D[i, -i])[1:201]
}
t_naive <- tm(naive_fb(z[1:1000, ])) * 25
line(sprintf("fiber-bundle test 5000 x 768 (%d rejecting)", sum(fb$points$reject_fiber)), t_fb, naive = t_naive,
     limit = tm(tcrossprod(z[1:2500, ], z)))
