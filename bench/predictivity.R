# Benchmark: neural predictivity (PERFORMANCE.md W3 and W3b).
#   W3  ridge CV, 5000 stimuli x 4096 features -> 2000 targets, 17 alphas, 5 folds
#   W3b Brain-Score PLS(25), 10 shuffle splits, 2880 x 4096 -> 256 targets
# For each: time, ratio to a naive R implementation, and ratio to the time of the dense
# algebra the method needs (its SVD/eigendecomposition and GEMMs) measured in this run.
# Also: peak memory for 2, 17 and 65 alphas (separate processes), which must not grow
# with the number of alphas.
# Sizes scale with TS_BENCH_SCALE (default 1 = the full workloads).
#   Rscript bench/predictivity.R            (R_LIBS pointing at an installed tensorscope)
suppressPackageStartupMessages(library(tensorscope))
ts_threads(parallel::detectCores())  # all cores, as the peers' BLAS uses them

args <- commandArgs(trailingOnly = TRUE)
scale <- as.numeric(Sys.getenv("TS_BENCH_SCALE", "1"))
tm <- function(expr) unname(system.time(expr)[["elapsed"]])

# ---- memory probe (child process): peak RSS of one predictivity() run -------------------
if (length(args) && args[1] == "--memory") {
  n <- as.integer(args[2]); p <- as.integer(args[3]); q <- as.integer(args[4]); na <- as.integer(args[5])
  set.seed(1)
  X <- matrix(rnorm(n * p), n); Y <- X[, 1:50] %*% matrix(rnorm(50 * q), 50) + matrix(rnorm(n * q), n)
  before <- as.numeric(sub("kB", "", grep("VmHWM", readLines("/proc/self/status"), value = TRUE) |> sub(pattern = "VmHWM:", replacement = "")))
  invisible(predictivity(X, Y, alphas = 10^seq(-2, 6, length.out = na), folds = 5))
  after <- as.numeric(sub("kB", "", grep("VmHWM", readLines("/proc/self/status"), value = TRUE) |> sub(pattern = "VmHWM:", replacement = "")))
  cat(after / 1024, before / 1024, "\n")
  quit(save = "no")
}

info <- ts_build_info()
cat(sprintf("tensorscope %s, BLAS %s (%d threads), OpenMP threads %d; load: %s\n", info$version, info$blas,
            info$blas_threads, ts_threads(), paste(readLines("/proc/loadavg"), collapse = "")))

# ---- W3: ridge ----------------------------------------------------------------------
n <- round(5000 * scale); p <- round(4096 * scale); q <- round(2000 * scale); k <- 5
alphas <- 10^seq(-2, 6, length.out = 17)
set.seed(1)
Z <- matrix(rnorm(n * 64), n)
X <- Z %*% matrix(rnorm(64 * p), 64) + matrix(rnorm(n * p, sd = 2), n)
Y <- Z %*% matrix(rnorm(64 * q), 64) + matrix(rnorm(n * q, sd = 8), n)
cat(sprintf("\nW3 ridge: %d x %d -> %d targets, %d alphas, %d folds (GCV, alpha per target)\n", n, p, q,
            length(alphas), k))
t_ours <- tm(res <- predictivity(X, Y, alphas = alphas, folds = k))
cat(sprintf("  tensorscope predictivity():  %7.2f s   (median r = %.3f)\n", t_ours, median(res$r)))
if (ts_torch_available()) {
  # the LibTorch path on this machine's device (the CPU unless LibTorch has CUDA)
  t_torch <- tm(res_t <- predictivity(X, Y, alphas = alphas, folds = k, backend = "torch"))
  stopifnot(max(abs(res_t$r - res$r)) < 1e-8)
  cat(sprintf("  same, backend = \"torch\" (LibTorch, %s): %7.2f s\n",
              if (isTRUE(ts_build_info()$cuda)) "cuda" else "cpu", t_torch))
}

# The dense algebra it needs, per fold (all folds have the same shape; one fold x k):
# p > n_train: kernel Xc Xc' (syrk), its eigendecomposition, X_test Xc', (X_test Xc') U,
# U' Y_train, and one prediction product; p <= n_train: X'X, its eigendecomposition,
# X'Y, V' (X'Y), X_test V and the prediction product.
te <- seq(1, n, by = k)
Xc <- sweep(X[-te, ], 2, colMeans(X[-te, ])); Yc <- sweep(Y[-te, ], 2, colMeans(Y[-te, ]))
Xt <- sweep(X[te, ], 2, colMeans(X[-te, ]))
t_bound <- k * tm({
  if (p > nrow(Xc)) {
    e <- eigen(tcrossprod(Xc), symmetric = TRUE)
    A <- tcrossprod(Xt, Xc) %*% e$vectors
    B <- crossprod(e$vectors, Yc)
  } else {
    e <- eigen(crossprod(Xc), symmetric = TRUE)
    B <- crossprod(e$vectors, crossprod(Xc, Yc))
    A <- Xt %*% e$vectors
  }
  P <- A %*% B
})
t_eig <- k * tm(eigen(if (p > nrow(Xc)) tcrossprod(Xc) else crossprod(Xc), symmetric = TRUE))
cat(sprintf("  bound (eigendecomposition + GEMMs, R/LAPACK): %7.2f s (of which the Gram + eigen %.2f s)  ratio %.2f\n",
            t_bound, t_eig, t_ours / t_bound))

# Naive: refit per alpha and fold with solve(); too slow to run in full, so two refits of
# one fold are timed and the time is scaled to the k * length(alphas) refits.
t_two <- tm(for (a in alphas[c(1, 9)]) {
  b <- solve(crossprod(Xc) + a * diag(p), crossprod(Xc, Yc))
  P <- Xt %*% b
})
t_naive <- t_two / 2 * k * length(alphas)
cat(sprintf("  naive R (solve per alpha and fold; %d refits, extrapolated from 2): %7.1f s  ratio %.1f\n",
            k * length(alphas), t_naive, t_naive / t_ours))
rm(Xc, Yc, Xt, e, A, B, P, b, X, Y, Z, res); invisible(gc())

# ---- memory vs number of alphas ----------------------------------------------------------
mn <- round(2000 * scale); mp <- round(1024 * scale); mq <- round(500 * scale)
cat(sprintf("\nMemory (peak RSS of a fresh process, %d x %d -> %d, 5 folds):\n", mn, mp, mq))
script <- normalizePath(sub("--file=", "", grep("--file=", commandArgs(FALSE), value = TRUE)[1]))
for (na in c(2, 17, 65)) {
  out <- system2(file.path(R.home("bin"), "Rscript"), c(script, "--memory", mn, mp, mq, na), stdout = TRUE)
  v <- as.numeric(strsplit(trimws(out[length(out)]), " ")[[1]])
  cat(sprintf("  %2d alphas: peak %6.0f MB (after the data: %6.0f MB)\n", na, v[1], v[2]))
}

# ---- W3b: Brain-Score PLS ----------------------------------------------------------------
n <- round(2880 * scale); p <- round(4096 * scale); q <- round(256 * scale)
set.seed(2)
Z <- matrix(rnorm(n * 32), n)
X <- Z %*% matrix(rnorm(32 * p), 32) + matrix(rnorm(n * p, sd = 2), n)
Y <- Z %*% matrix(rnorm(32 * q), 32) + matrix(rnorm(n * q, sd = 4), n)
labels <- rep_len(1:64, n)
cat(sprintf("\nW3b Brain-Score PLS(25): %d x %d -> %d targets, 10 stratified splits\n", n, p, q))
t_pls <- tm(res <- predictivity(X, Y, protocol = "brainscore", stratify = labels))
cat(sprintf("  tensorscope predictivity(protocol = \"brainscore\"): %6.2f s   (median r = %.3f)\n", t_pls,
            summary(res)$median_r))
te <- seq(1, n, by = 10)
# bound: X'Y, and per component one product of X with the 10 splits' weight vectors and
# one of X' with their score vectors (what the batched algorithm needs)
Rb <- matrix(rnorm(p * 10), p)
t_pbound <- tm({
  S <- crossprod(X, Y)
  for (a in 1:25) {
    Tb <- X %*% Rb
    Pb <- crossprod(X, Tb)
  }
})
cat(sprintf("  bound (X'Y + 25 x 2 GEMMs with X and 10 vectors, R/BLAS): %6.2f s  ratio %.2f\n",
            t_pbound, t_pls / t_pbound))
if (requireNamespace("pls", quietly = TRUE)) {
  d <- data.frame(y = I(Y[-te, ]), x = I(X[-te, ]))
  t_one <- tm({
    m <- pls::plsr(y ~ x, ncomp = 25, data = d, method = "kernelpls", scale = FALSE)
    pr <- predict(m, newdata = data.frame(x = I(X[te, ])), ncomp = 25)
  })
  cat(sprintf("  pls::plsr(kernelpls) in R, 10 splits (1 timed x 10): %6.1f s  ratio %.1f\n", 10 * t_one,
              10 * t_one / t_pls))
  # NIPALS costs about the same per component: 5 components timed, scaled to 25 x 10 splits
  t_one <- tm(m <- suppressWarnings(pls::plsr(y ~ x, ncomp = 5, data = d, method = "oscorespls", scale = FALSE)))
  cat(sprintf("  pls::plsr(oscorespls = NIPALS) in R, 10 splits (5 components of 1 split timed, x 50): %6.1f s  ratio %.1f\n",
              50 * t_one, 50 * t_one / t_pls))
}
cat(sprintf("\nload after: %s\n", paste(readLines("/proc/loadavg"), collapse = "")))
