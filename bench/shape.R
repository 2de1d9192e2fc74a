# Benchmark of shape metrics (issue 13): all pairs of 12 layers x 5000 stimuli x 768 units,
# Procrustes (alpha = 1) and CCA (alpha = 0), angular distance.
# Each line: our time, the ratio to a naive R implementation (netrep's algorithm per pair,
# timed on a few pairs and extrapolated to all 66), and the ratio to the GEMM/SVD work the
# algorithm needs, timed in the same run with the same BLAS/LAPACK.
# Usage: Rscript bench/shape.R [scale]   (scale < 1 shrinks the problem)
source(file.path(dirname(sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE)[1])), "common.R"))

n <- round(5000 * scale); p <- round(768 * scale); L <- 12
layers <- layer_stack(n, p, L)
reps <- ts_reps(layers)
pairs <- L * (L - 1) / 2

# naive: netrep's LinearMetric per pair (centre, eigh-whiten both sides, full SVD of the
# cross product, transform, angular distance), as a user would loop it in R
naive_pair <- function(x, y, alpha) {
  whiten <- function(X) {
    if (alpha > 1 - 1e-7) return(X)
    e <- eigen(crossprod(X), symmetric = TRUE)
    lam <- pmax(e$values, 1e-7)
    d <- alpha + (1 - alpha) / sqrt(lam)
    d <- d * sqrt(sum(lam) / sum(alpha^2 * lam + 2 * alpha * (1 - alpha) * sqrt(lam) + (1 - alpha)^2))
    X %*% (e$vectors %*% (d * t(e$vectors)))
  }
  xw <- whiten(scale(x, scale = FALSE)); yw <- whiten(scale(y, scale = FALSE))
  s <- svd(crossprod(xw, yw))
  tx <- xw %*% s$u; ty <- yw %*% s$v
  acos(min(1, sum(tx * ty) / (norm(tx, "F") * norm(ty, "F"))))
}
k_naive <- 3
sample_pairs <- list(c(1, 2), c(5, 9), c(11, 12))

for (alpha in c(1, 0)) {
  what <- if (alpha == 1) "Procrustes" else "CCA"
  t_ours <- tm(res <- shape_layers(reps, alpha = alpha))
  m <- as.matrix(res)
  t_naive1 <- tm(ref <- vapply(sample_pairs, function(ij) naive_pair(layers[[ij[1]]], layers[[ij[2]]], alpha), 0))
  got <- vapply(sample_pairs, function(ij) m[ij[1], ij[2]], 0)
  stopifnot(max(abs(got - ref)) < 1e-6)
  t_naive <- t_naive1 * pairs / k_naive
  # the dense work the algorithm needs: per layer the centring (+ for CCA one thin SVD and
  # the scaling of U); per pair one cross product of the prepared layers and one SVD
  # without vectors of the p x p result
  t_bound <- tm({
    prep <- lapply(layers, function(x) {
      xc <- x - rep(colMeans(x), each = nrow(x))
      if (alpha < 1) { s <- La.svd(xc, nu = ncol(xc), nv = 0); xc <- s$u } # U (times a diagonal)
      xc
    })
    for (i in 1:(L - 1)) for (j in (i + 1):L) La.svd(crossprod(prep[[i]], prep[[j]]), nu = 0, nv = 0)
  })
  t_gemm <- tm(for (i in 1:(L - 1)) for (j in (i + 1):L) crossprod(layers[[i]], layers[[j]]))
  row("", sprintf("shape_layers %s, %d layers x %d x %d", what, L, n, p), t_ours, t_naive, t_bound,
      sprintf("(naive: netrep per pair, %d pairs extrapolated to %d; %d GEMMs alone %.2f s)", k_naive, pairs, pairs, t_gemm))
}
t_cv <- tm(shape_layers(reps, alpha = 0, test = seq_len(n %/% 5)))
row("", sprintf("shape_layers CCA cross-validated (%d train / %d test)", n - n %/% 5, n %/% 5), t_cv)

# ---- stochastic shape metrics: one pair of systems with single trials -------------------
# naive: netrep's algorithms in R (Gaussian: per-round stacked Procrustes with one
# Procrustes problem per stimulus; energy: reweighted Procrustes on all trial pairs), run
# for the same number of rounds as ours.
ns <- max(20, round(500 * scale)); ps <- 20; ts_ <- 20
sig <- matrix(rnorm(ns * ps), ns)
noise_of <- function(sd) array(rnorm(ns * ps * ts_, sd = sd), c(ns, ps, ts_))
xa <- array(sig, c(ns, ps, ts_)) + noise_of(0.5)
ya <- array(sig %*% qr.Q(qr(matrix(rnorm(ps * ps), ps))), c(ns, ps, ts_)) + noise_of(0.8)
procrustes <- function(a, b) { s <- svd(crossprod(a, b)); s$u %*% t(s$v) }
naive_gaussian <- function(x, y, rounds) {
  mx <- apply(x, c(1, 2), mean); my <- apply(y, c(1, 2), mean)
  root <- function(a) lapply(seq_len(ns), function(s) { e <- eigen(stats::cov(t(a[s, , ])), symmetric = TRUE)
    e$vectors %*% (sqrt(pmax(e$values, 0)) * t(e$vectors)) })
  sx <- root(x); sy <- root(y)
  T <- procrustes(my, mx)
  for (i in seq_len(rounds)) {
    B <- rbind(my, do.call(rbind, lapply(seq_len(ns), function(s) t(procrustes(t(T) %*% sy[[s]], sx[[s]])) %*% sy[[s]])))
    T <- procrustes(B, rbind(mx, do.call(rbind, sx)))
  }
  T
}
naive_energy <- function(x, y, rounds) {
  X <- do.call(rbind, lapply(seq_len(ns), function(s) t(x[s, , rep(seq_len(ts_), each = ts_)])))
  Y <- do.call(rbind, lapply(seq_len(ns), function(s) t(y[s, , rep(seq_len(ts_), times = ts_)])))
  w <- rep(1, nrow(X))
  for (i in seq_len(rounds)) {
    Q <- procrustes(w * Y, w * X)
    w <- 1 / pmax(sqrt(sqrt(rowSums((X - Y %*% Q)^2))), 1e-6)
  }
  Q
}
for (m in c("gaussian", "energy")) {
  t_ours <- tm(d <- stochastic_shape_distance(xa, ya, method = m))
  rounds <- attr(d, "iterations")
  t_naive <- tm(if (m == "gaussian") naive_gaussian(xa, ya, rounds) else naive_energy(xa, ya, rounds))
  row("", sprintf("stochastic_shape_distance %s, %d x %d x %d trials", m, ns, ps, ts_), t_ours, t_naive, NA,
      sprintf("(%d rounds; naive: netrep's algorithm in R, same rounds)", rounds))
}
