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

# Human IT RDMs (4 subjects, the two sessions averaged) and the 8 model RDMs, read
# with read_mat() + mat_rdms() (the RDMs struct is 1 x 4 x 2: subject x session).
kriegeskorte_rdms <- function() {
  d <- kriegeskorte_dir()
  testthat::skip_if(!nzchar(d), "Kriegeskorte 2008 RDMs not found (../shared/data/kriegeskorte2008)")
  testthat::skip_if_not_installed("R.matlab")
  b <- mat_rdms(read_mat(file.path(d, "92_brainRDMs.mat"))$RDMs)
  m <- mat_rdms(read_mat(file.path(d, "92_modelRDMs.mat"))$Models)
  one <- function(r, i) unname(as.matrix(r, i))
  hit <- lapply(1:4, function(s) {
    (one(b, which(b$descriptors$dim2 == s & b$descriptors$dim3 == 1)) +
       one(b, which(b$descriptors$dim2 == s & b$descriptors$dim3 == 2))) / 2
  })
  names(hit) <- sub("hIT \\| ([A-Z]+).*", "\\1", b$descriptors$name[b$descriptors$dim3 == 1])
  mods <- lapply(seq_along(m), function(i) one(m, i))
  names(mods) <- m$descriptors$name
  list(hit = hit, models = mods)
}
