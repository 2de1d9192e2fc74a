# Superposition family: sparsity, feature geometry, interference, selectivity,
# polysemanticity.

test_that("sparsity measures on hand-built vectors", {
  x <- cbind(one_hot = c(0, 0, 5, 0), flat = c(2, 2, 2, 2), mixed = c(1, -2, 0, 3))
  s <- feature_sparsity(x)
  u <- s[s$by == "unit", ]
  expect_equal(u$l0, c(0.25, 1, 0.75))
  expect_equal(u$l1, c(5, 8, 6))
  expect_equal(u$hoyer, c(1, 0, (2 - 6 / sqrt(14)) / (2 - 1)))
  # Gini (Hurley & Rickard): one-hot -> 1 - 1/N, flat -> 0
  expect_equal(u$gini, c(1 - 1 / 4, 0, {
    a <- sort(abs(c(1, -2, 0, 3)))
    1 - 2 * sum(a / 6 * (4 - 1:4 + 0.5) / 4)
  }))
  v <- c(0, 0, 5, 0)
  m2 <- mean((v - mean(v))^2)
  expect_equal(u$kurtosis[1], mean((v - mean(v))^4) / m2^2 - 3)
  expect_true(is.na(u$kurtosis[2]))                 # constant: undefined, not NaN garbage
  st <- s[s$by == "stimulus", ]
  expect_equal(st$l0, rowMeans(abs(x) > 0))
  expect_equal(feature_sparsity(x, threshold = 1.5)$l0[1:3], c(0.25, 1, 0.5))
  sm <- summary(s)
  expect_s3_class(sm, "ts_layer_profile")
  expect_equal(sm$value[sm$metric == "unit_l0"], mean(u$l0))
  expect_error(feature_sparsity(x, threshold = -1), class = "tensorscope_error_argument")
  expect_error(feature_sparsity(matrix(c(1, NA), 1)), class = "tensorscope_error_non_finite")
})

test_that("sparsity is thread-independent and per layer", {
  set.seed(1)
  x <- matrix(pmax(rnorm(200 * 30), 0), 200)
  old <- ts_threads(1)
  on.exit(ts_threads(old))
  a <- feature_sparsity(list(a = x, b = x[, 1:5]))
  ts_threads(2)
  expect_identical(a, feature_sparsity(list(a = x, b = x[, 1:5])))
  expect_equal(levels(a$layer), c("a", "b"))
})

test_that("feature dimensionality: orthogonal features 1, antipodal pair 1/2", {
  s <- superposition(diag(4))
  expect_equal(s$features$dimensionality, rep(1, 4))
  expect_equal(s$summary$regime, "no_superposition")
  expect_equal(s$summary$max_interference, 0)
  expect_equal(s$summary$dims_per_feature, 1)
  a <- superposition(rbind(c(1, 0), c(-1, 0), c(0, 1)))
  expect_equal(a$features$dimensionality, c(0.5, 0.5, 1))
  expect_equal(a$summary$regime, "superposition")       # 3 features in 2 dims
  # a pentagon of 5 features in 2 dims (Elhage et al.): D = 2/5 each
  th <- 2 * pi * (0:4) / 5
  p <- superposition(cbind(cos(th), sin(th)))
  expect_equal(p$features$dimensionality, rep(0.4, 5), tolerance = 1e-12)
  expect_equal(p$summary$max_interference, abs(cos(4 * pi / 5)), tolerance = 1e-12)
  expect_gte(p$summary$max_interference, p$summary$welch_bound)
  expect_equal(p$summary$welch_bound, sqrt(3 / 8))
  # orientation: columns as features gives the same answer on the transpose
  W <- matrix(rnorm(6 * 3), 6)
  expect_equal(superposition(t(W), orientation = "dims_by_features")$features,
               superposition(W)$features)
  expect_equal(sum(superposition(W)$histogram$count), choose(6, 2))
})

test_that("superposition matches a brute-force computation and handles zero features", {
  set.seed(2)
  W <- matrix(rnorm(40 * 8), 40)
  W[5, ] <- 0
  s <- superposition(W)
  G <- tcrossprod(W)
  nz <- diag(G) > 0
  D <- ifelse(nz, diag(G)^2 / rowSums(G^2), 0)
  expect_equal(s$features$dimensionality, D, tolerance = 1e-12)
  C <- abs(G / sqrt(outer(diag(G), diag(G))))[nz, nz]
  diag(C) <- NA
  expect_equal(s$features$max_interference[nz], apply(C, 1, max, na.rm = TRUE), tolerance = 1e-12)
  expect_equal(s$features$mean_interference[nz], rowMeans(C, na.rm = TRUE), tolerance = 1e-12)
  expect_true(is.na(s$features$mean_interference[5]))
  expect_equal(s$summary$n_represented, 39)
  expect_equal(sum(s$histogram$count), choose(39, 2))
  expect_error(superposition(matrix(0, 3, 2)), class = "tensorscope_error_zero_variance")
  expect_error(superposition(W, orientation = "rows"), class = "tensorscope_error_argument")
  vi <- vector_interference(W[-5, ])
  expect_equal(vi$value[vi$metric == "max_interference"], max(C, na.rm = TRUE), tolerance = 1e-12)
})

test_that("selectivity indices and the KS comparison", {
  lab <- rep(c("a", "b"), each = 4)
  x <- cbind(sel = c(2, 2, 2, 2, 0, 0, 0, 0) + c(0.1, -0.1, 0.1, -0.1, 0.1, -0.1, 0.1, -0.1), flat = c(0, 1, 0, 1, 2, 3, 2, 3))
  s <- selectivity(x, lab)
  expect_equal(s$preferred, c("a", "b"))
  shifted <- x[, 1] - min(x[, 1])
  expect_equal(s$si[1], (mean(shifted[1:4]) - mean(shifted[5:8])) / (mean(shifted[1:4]) + mean(shifted[5:8])))
  expect_equal(s$dprime[1], 2 / sqrt((var(x[1:4, 1]) + var(x[5:8, 1])) / 2))
  ks <- compare_selectivity(s, s)
  expect_equal(ks$statistic, 0)
  expect_equal(ks$p_value, 1)
  expect_error(selectivity(x, lab[-1]), class = "tensorscope_error_mismatch")
  expect_error(compare_selectivity(s, "x"), class = "tensorscope_error_type")
})

test_that("polysemanticity counts the categories that drive each unit", {
  set.seed(3)
  lab <- rep(c("a", "b", "c", "d"), each = 25)
  x <- cbind(mono = (lab == "a") * 3 + rnorm(100), poly = (lab %in% c("b", "c")) * 3 + rnorm(100),
             none = rnorm(100))
  for (test in c("permutation", "welch")) {
    p <- polysemanticity(x, lab, test = test, n_perm = 500)
    expect_equal(p$units$n_categories, c(1L, 2L, 0L))
    expect_equal(p$units$polysemantic, c(FALSE, TRUE, FALSE))
    expect_equal(p$summary$value[p$summary$metric == "frac_polysemantic"], 1 / 3)
  }
  # permutation p-values match a naive loop for one unit and category
  p <- polysemanticity(x, lab, n_perm = 200, p_adjust = "none", seed = 7)
  pv <- p$p_values$layer
  expect_equal(dim(pv), c(3, 4))
  expect_true(all(pv >= 1 / 201 & pv <= 1))
  # same seed -> same result; the contrast of a unit with itself shuffled is null
  expect_identical(polysemanticity(x, lab, n_perm = 200, seed = 7), polysemanticity(x, lab, n_perm = 200, seed = 7))
  expect_error(polysemanticity(x, lab[-1]), class = "tensorscope_error_mismatch")
  expect_error(polysemanticity(x, rep("a", 100)), class = "tensorscope_error_too_few")
  expect_error(polysemanticity(x, lab, p_adjust = "nope"), class = "tensorscope_error_argument")
})
