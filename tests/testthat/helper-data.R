# Shared test helpers: small random data and the 92-image RDMs when available.

rand_mat <- function(n, p, seed = 1) {
  set.seed(seed)
  matrix(stats::rnorm(n * p), n, p)
}

rand_orth <- function(p, seed = 2) {
  set.seed(seed)
  qr.Q(qr(matrix(stats::rnorm(p * p), p)))
}

# Brute-force HSIC estimators from their definitions, on full Gram matrices.
hsic_biased_bf <- function(K, L) {
  n <- nrow(K)
  H <- diag(n) - 1 / n
  sum(diag(K %*% H %*% L %*% H)) / (n - 1)^2
}
hsic_debiased_bf <- function(K, L) {
  n <- nrow(K)
  diag(K) <- 0
  diag(L) <- 0
  one <- rep(1, n)
  (sum(diag(K %*% L)) + sum(K) * sum(L) / ((n - 1) * (n - 2)) -
    2 / (n - 2) * drop(t(one) %*% K %*% L %*% one)) / (n * (n - 3))
}
cka_bf <- function(K, L, hsic = hsic_biased_bf) hsic(K, L) / sqrt(hsic(K, K) * hsic(L, L))

kriegeskorte_dir <- function() {
  cands <- c(file.path("..", "..", "..", "shared", "data", "kriegeskorte2008"),
             file.path("..", "..", "shared", "data", "kriegeskorte2008"),
             Sys.getenv("TS_KRIEGESKORTE_DIR"))
  for (d in cands) if (nzchar(d) && file.exists(file.path(d, "92_brainRDMs.mat"))) return(normalizePath(d))
  ""
}

# Human IT RDMs (4 subjects, the two sessions averaged) and the 8 model RDMs.
kriegeskorte_rdms <- function() {
  d <- kriegeskorte_dir()
  testthat::skip_if(!nzchar(d), "Kriegeskorte 2008 RDMs not found (../shared/data/kriegeskorte2008)")
  testthat::skip_if_not_installed("R.matlab")
  b <- R.matlab::readMat(file.path(d, "92_brainRDMs.mat"))$RDMs
  m <- R.matlab::readMat(file.path(d, "92_modelRDMs.mat"))$Models
  hit <- lapply(1:4, function(s) (b[["RDM", 1, s, 1]] + b[["RDM", 1, s, 2]]) / 2)
  names(hit) <- vapply(1:4, function(s) sub("hIT \\| ([A-Z]+).*", "\\1", b[["name", 1, s, 1]]), "")
  mods <- lapply(seq_len(dim(m)[3]), function(i) m[["RDM", 1, i]])
  names(mods) <- vapply(seq_len(dim(m)[3]), function(i) m[["name", 1, i]][1], "")
  list(hit = hit, models = mods)
}
