# 1 thread = N threads, bit for bit, for the parallel families without such a test in
# their own file (issue 15): every comparison method and the RSA inference for all of
# them, the fiber-bundle windows, exact kNN, superposition geometry, spectra and CKA
# over layers. Threads 1 and 3 (more threads than this machine may have is fine:
# block boundaries never depend on the count).

same_for_threads <- function(expr) {
  f <- function(n) {
    old <- ts_threads(n)
    on.exit(ts_threads(old))
    force(n)
    eval.parent(expr, 2)
  }
  expr <- substitute(expr)
  one <- f(1)
  expect_identical(f(3), one, label = paste(deparse(expr, width.cutoff = 200L), collapse = " "))
}

test_that("compare_rdms and rsa (permutations, stimulus and subject bootstrap) are thread-independent for every method", {
  set.seed(31)
  z <- matrix(rnorm(14 * 6), 14)
  models <- rdm(ts_reps(list(a = z, b = z^2, c = abs(z))))
  subj <- lapply(1:3, function(s) as.matrix(rdm(z + matrix(rnorm(84), 14))))
  for (m in c("spearman", "pearson", "kendall_tau_a", "rho_a", "cosine", "corr_cov", "cosine_cov", "bures")) {
    same_for_threads(compare_rdms(models, subj, method = m))
    boot <- if (m %in% c("corr_cov", "cosine_cov", "bures")) "subjects" else "both"
    same_for_threads(rsa(models, subj, method = m, n_perm = 300, n_boot = 80, boot = boot))
  }
})

test_that("fiber_bundle_test, nearest_neighbors and superposition are thread-independent", {
  set.seed(32)
  x <- matrix(rnorm(400 * 3), 400)
  same_for_threads(fiber_bundle_test(x, k_range = c(1, 80), window = 8, step = 3))
  same_for_threads(nearest_neighbors(x, k = 7))
  W <- matrix(rnorm(60 * 8), 60)
  same_for_threads(superposition(W))
})

test_that("spectra, CKA and RDMs over layers are thread-independent", {
  set.seed(33)
  x <- matrix(rnorm(90 * 12), 90)
  reps <- list(a = x, b = x %*% matrix(rnorm(12 * 5), 12), c = tanh(x))
  same_for_threads(effective_rank(reps))
  same_for_threads(participation_ratio(reps))
  same_for_threads(cka_layers(reps))
  same_for_threads(cka_layers(reps, kernel = "rbf", estimator = "debiased"))
  for (m in c("correlation", "euclidean", "sqeuclidean", "cosine")) same_for_threads(rdm(ts_reps(reps), m))
})
