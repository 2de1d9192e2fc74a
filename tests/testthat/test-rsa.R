all_perms <- function(n) {
  if (n == 1) return(matrix(1L, 1, 1))
  p <- all_perms(n - 1)
  do.call(rbind, lapply(seq_len(n), function(i) cbind(i, ifelse(p >= i, p + 1L, p))))
}

permute_rdm <- function(m, p) m[p, p]

test_that("every permutation-null value is the similarity of a relabelled model RDM", {
  ns <- asNamespace("tensorscope")
  n <- 5
  model <- as.matrix(rdm(rand_mat(n, 4, 1)))
  neural <- list(as.matrix(rdm(rand_mat(n, 4, 2))), as.matrix(rdm(rand_mat(n, 4, 3), "euclidean")))
  N <- as_rdm(neural)$dissimilarities
  perms <- all_perms(n)
  for (m in c("spearman", "pearson", "kendall_tau_a", "rho_a", "cosine", "corr_cov", "cosine_cov", "bures")) {
    null <- ns$cpp_permutation_null(as_rdm(model)$dissimilarities[1, ], N, n, m, 300, 7, 1)
    expect_equal(dim(null), c(300L, 2L))
    for (j in 1:2) {
      exact <- apply(perms, 1, function(p) compare_rdms(permute_rdm(model, p), neural[[j]], m))
      hit <- vapply(null[, j], function(v) min(abs(exact - v)), 0)
      expect_lt(max(hit), 1e-9, label = paste(m, "subject", j))
      # 300 draws from 120 permutations reach most of them
      expect_gt(length(unique(round(null[, j], 9))), 0.5 * length(unique(round(exact, 9))))
    }
  }
})

test_that("permutation p-values: a planted model is significant, an unrelated one is not", {
  set.seed(5)
  z <- matrix(rnorm(30 * 8), 30)
  reps <- ts_reps(list(signal = z, noise = matrix(rnorm(30 * 8), 30)))
  subjects <- lapply(1:5, function(s) as.matrix(rdm(z + matrix(rnorm(30 * 8, sd = 1.5), 30))))
  res <- rsa(reps, subjects, n_perm = 2000, n_boot = 200)
  sm <- summary(res)
  expect_equal(sm$p_value[sm$layer == "signal"], 1 / 2001)
  expect_gt(sm$p_value[sm$layer == "noise"], 0.01)
  expect_true(all(res$p_value[res$layer == "signal"] < 0.01))
  # observed values equal compare_rdms
  expect_equal(res$similarity[res$layer == "signal" & res$subject == "rdm2"],
               compare_rdms(rdm(z), subjects[[2]], "spearman"))
  # CIs bracket the estimate, noise ceiling is ordered
  expect_true(all(sm$ci_lower <= sm$similarity & sm$similarity <= sm$ci_upper))
  expect_lt(sm$ceiling_lower[1], sm$ceiling_upper[1])
  expect_s3_class(res, "ts_rsa")
  expect_named(res, c("layer", "subject", "similarity", "p_value", "ci_lower", "ci_upper"))
})

test_that("the noise ceiling equals its brute-force definition", {
  set.seed(6)
  z <- matrix(rnorm(12 * 5), 12)
  subj <- lapply(1:4, function(s) as.matrix(rdm(z + matrix(rnorm(60), 12))))
  vecs <- t(vapply(subj, function(m) as.vector(as.dist(m)), numeric(66)))
  res <- rsa(list(a = z), subj, method = "spearman", n_perm = 0, boot = "none")
  ranks <- t(apply(vecs, 1, rank))
  upper <- mean(sapply(1:4, function(j) cor(vecs[j, ], colMeans(ranks), method = "spearman")))
  lower <- mean(sapply(1:4, function(j) cor(vecs[j, ], colMeans(ranks[-j, ]), method = "spearman")))
  expect_equal(summary(res)$ceiling_upper, upper, tolerance = 1e-12)
  expect_equal(summary(res)$ceiling_lower, lower, tolerance = 1e-12)
  res_p <- rsa(list(a = z), subj, method = "pearson", n_perm = 0, boot = "none")
  zs <- t(apply(vecs, 1, function(v) (v - mean(v)) / sd(v)))
  expect_equal(summary(res_p)$ceiling_upper, mean(sapply(1:4, function(j) cor(vecs[j, ], colMeans(zs)))),
               tolerance = 1e-12)
})

test_that("stimulus bootstrap resamples conditions and drops self-pairs (brute force for one sample)", {
  # With a bootstrap that happens to keep all conditions once the value equals the
  # observed one; in general every bootstrap value equals the similarity on some
  # subset of distinct-condition pairs. Check the spread shrinks with more conditions.
  set.seed(7)
  small <- rsa(list(a = matrix(rnorm(8 * 4), 8)), as.matrix(rdm(matrix(rnorm(8 * 4), 8))),
               n_perm = 0, n_boot = 400, boot = "stimuli")
  z <- matrix(rnorm(60 * 4), 60)
  big <- rsa(list(a = z), as.matrix(rdm(z + matrix(rnorm(240, sd = 2), 60))), n_perm = 0, n_boot = 400,
             boot = "stimuli")
  expect_gt(summary(small)$se, summary(big)$se)
  expect_true(is.na(summary(rsa(list(a = z), as.matrix(rdm(z)), n_perm = 0, boot = "none"))$se))
})

test_that("results are reproducible, seed-dependent and independent of threads", {
  set.seed(8)
  z <- matrix(rnorm(20 * 5), 20)
  reps <- ts_reps(list(a = z, b = z^2))
  subj <- lapply(1:3, function(s) as.matrix(rdm(z + matrix(rnorm(100), 20))))
  for (m in c("spearman", "kendall_tau_a")) {
    old <- ts_threads(1)
    r1 <- rsa(reps, subj, method = m, n_perm = 500, n_boot = 100)
    ts_threads(2)
    r2 <- rsa(reps, subj, method = m, n_perm = 500, n_boot = 100)
    ts_threads(old)
    expect_identical(r1, r2)
    r3 <- rsa(reps, subj, method = m, n_perm = 500, n_boot = 100, seed = 99)
    expect_false(identical(summary(r1)$ci_lower, summary(r3)$ci_lower))
  }
  # seed = NULL follows set.seed()
  set.seed(1)
  a <- rsa(reps, subj, n_perm = 200, n_boot = 50, seed = NULL)
  set.seed(1)
  b <- rsa(reps, subj, n_perm = 200, n_boot = 50, seed = NULL)
  expect_identical(a, b)
})

test_that("rsa accepts model RDMs and reports the settings", {
  set.seed(9)
  x <- matrix(rnorm(15 * 4), 15)
  models <- as_rdm(list(m1 = as.matrix(rdm(x)), m2 = as.matrix(rdm(x^2))))
  res <- rsa(models, as.matrix(rdm(x + matrix(rnorm(60), 15))), method = "cosine_cov", n_perm = 100)
  expect_equal(levels(res$layer), c("m1", "m2"))
  expect_equal(attr(res, "settings")$boot, "none")
  expect_true(all(is.na(res$ci_lower)))
})

test_that("bad input gives classed errors", {
  set.seed(10)
  x <- matrix(rnorm(10 * 3), 10)
  neural <- as.matrix(rdm(x))
  expect_error(rsa(list(a = x[1:9, ]), neural), class = "tensorscope_error_mismatch")
  expect_error(rsa(list(a = x), neural, method = "cosine_cov", boot = "stimuli"), class = "tensorscope_error_argument")
  expect_error(rsa(list(a = x), neural, boot = "subjects"), class = "tensorscope_error_too_few")
  expect_error(rsa(list(a = x), neural, n_perm = -1), class = "tensorscope_error_argument")
  expect_error(rsa(list(a = x), neural, seed = "a"), class = "tensorscope_error_argument")
  expect_error(rsa(list(a = x), neural[1:9, ]), class = "tensorscope_error_not_rdm")
  expect_error(rsa(list(a = x[1:2, ]), neural[1:2, 1:2]), class = "tensorscope_error_too_few")
})

test_that("RSA on real data: Kriegeskorte et al. (2008) human IT", {
  kr <- kriegeskorte_rdms()
  res <- rsa(as_rdm(kr$models), as_rdm(kr$hit), n_perm = 2000, n_boot = 200)
  sm <- summary(res)
  sim <- stats::setNames(sm$similarity, as.character(sm$layer))
  p <- stats::setNames(sm$p_value, as.character(sm$layer))
  # monkey IT and the animacy category model explain human IT (Kriegeskorte et al. 2008;
  # Nili et al. 2014, Fig. 6), far better than the low-level V1 / RADON models
  expect_lt(p[["monkeyIT"]], 0.001)
  expect_lt(p[["animacy"]], 0.001)
  expect_gt(sim[["monkeyIT"]], sim[["V1"]] + 0.1)
  expect_gt(sim[["animacy"]], sim[["RADON"]] + 0.1)
  expect_gt(p[["V1"]], 0.01)
  # the noise ceiling is well above zero and above most models
  expect_gt(sm$ceiling_lower[1], 0.2)
  expect_gt(sm$ceiling_upper[1], sim[["monkeyIT"]])
})
