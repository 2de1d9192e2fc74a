test_that("CKA of a representation with itself is 1 for every kernel and estimator", {
  x <- rand_mat(40, 6)
  expect_equal(cka(x, x), 1)
  expect_equal(cka(x, x, kernel = "rbf"), 1)
  expect_equal(cka(x, x, estimator = "debiased"), 1)
  expect_equal(cka(x, x, kernel = "rbf", estimator = "debiased"), 1)
})

test_that("linear CKA equals the brute-force HSIC definition, on both routes", {
  x <- rand_mat(30, 5, 1)
  y <- cbind(x[, 1:2] %*% matrix(c(1, 2, -1, 0.5), 2), rand_mat(30, 3, 2))
  want <- cka_bf(tcrossprod(x), tcrossprod(y))
  expect_equal(cka(x, y), want, tolerance = 1e-12)
  expect_equal(cka(x, y, path = "feature"), want, tolerance = 1e-12)
  expect_equal(cka(x, y, path = "gram"), want, tolerance = 1e-12)
  # Kornblith's feature-space formula
  xc <- scale(x, scale = FALSE)
  yc <- scale(y, scale = FALSE)
  kf <- sum(crossprod(yc, xc)^2) / (norm(crossprod(xc), "F") * norm(crossprod(yc), "F"))
  expect_equal(cka(x, y), kf, tolerance = 1e-12)
})

test_that("debiased CKA equals a brute-force evaluation of Song et al. eq. 5 (raw, uncentred kernels)", {
  x <- rand_mat(12, 4, 3) + 5  # offset: the estimator is invariant to it
  y <- rand_mat(12, 3, 4) + x[, 1:3]
  want <- cka_bf(tcrossprod(x), tcrossprod(y), hsic_debiased_bf)
  expect_equal(cka(x, y, estimator = "debiased", path = "feature"), want, tolerance = 1e-10)
  expect_equal(cka(x, y, estimator = "debiased", path = "gram"), want, tolerance = 1e-10)
  # n = 4 is the smallest sample the estimator allows
  x4 <- rand_mat(4, 3, 5)
  y4 <- rand_mat(4, 2, 6)
  expect_equal(cka(x4, y4, estimator = "debiased"),
               cka_bf(tcrossprod(x4), tcrossprod(y4), hsic_debiased_bf), tolerance = 1e-10)
})

test_that("debiased CKA of independent data is near 0 while biased CKA is inflated", {
  x <- rand_mat(50, 100, 7)
  y <- rand_mat(50, 100, 8)
  expect_gt(cka(x, y), 0.5)
  expect_lt(abs(cka(x, y, estimator = "debiased")), 0.1)
})

test_that("RBF CKA matches brute force with Kornblith's and Brain-Score's bandwidths", {
  x <- rand_mat(25, 4, 9)
  y <- x^2 + rand_mat(25, 4, 10)
  rbf <- function(z, sigma) exp(-as.matrix(dist(z))^2 / (2 * sigma^2))
  d2x <- as.matrix(dist(x))^2
  d2y <- as.matrix(dist(y))^2
  # Kornblith: sigma = t * sqrt(median of all squared distances, diagonal included)
  sx <- 0.5 * sqrt(median(d2x))
  sy <- 0.5 * sqrt(median(d2y))
  expect_equal(cka(x, y, kernel = "rbf"), cka_bf(rbf(x, sx), rbf(y, sy)), tolerance = 1e-10)
  sx <- 0.8 * sqrt(median(d2x))
  sy <- 0.8 * sqrt(median(d2y))
  expect_equal(cka(x, y, kernel = "rbf", t = 0.8), cka_bf(rbf(x, sx), rbf(y, sy)), tolerance = 1e-10)
  # Brain-Score: sigma^2 = median of the non-zero squared distances
  sx <- sqrt(median(d2x[d2x > 0]))
  sy <- sqrt(median(d2y[d2y > 0]))
  expect_equal(cka(x, y, kernel = "rbf", bandwidth = "median_nonzero"), cka_bf(rbf(x, sx), rbf(y, sy)),
               tolerance = 1e-10)
  # given sigma(s)
  expect_equal(cka(x, y, kernel = "rbf", sigma = 2), cka_bf(rbf(x, 2), rbf(y, 2)), tolerance = 1e-10)
  expect_equal(cka(x, y, kernel = "rbf", sigma = c(1.5, 3)), cka_bf(rbf(x, 1.5), rbf(y, 3)), tolerance = 1e-10)
  expect_equal(cka(x, y, kernel = "rbf", estimator = "debiased", sigma = 2),
               cka_bf(rbf(x, 2), rbf(y, 2), hsic_debiased_bf), tolerance = 1e-10)
})

test_that("linear CKA is invariant to rotations and isotropic scaling, not to general linear maps", {
  x <- rand_mat(60, 8, 11)
  y <- x[, 1:5] + 0.5 * rand_mat(60, 5, 12)
  base <- cka(x, y)
  expect_equal(cka(x %*% rand_orth(8), y), base, tolerance = 1e-12)
  expect_equal(cka(x, 3.7 * y %*% rand_orth(5, 4)), base, tolerance = 1e-12)
  expect_equal(cka(x + 100, y - 3), base, tolerance = 1e-10)
  A <- diag(c(10, 1, 1, 1, 1, 1, 1, 0.1)) %*% matrix(stats::runif(64), 8)
  expect_gt(abs(cka(x %*% A, y) - base), 0.01)
  # RBF CKA with the median bandwidth is rotation invariant too
  expect_equal(cka(x %*% rand_orth(8), y, kernel = "rbf"), cka(x, y, kernel = "rbf"), tolerance = 1e-10)
})

test_that("cka_layers equals pairwise cka(), is symmetric with unit diagonal, and routes agree", {
  z <- rand_mat(50, 6, 13)
  reps <- ts_reps(list(a = z, b = tanh(z %*% matrix(stats::rnorm(36), 6)), c = z[, 1:2]^2, d = rand_mat(50, 70, 14)))
  for (est in c("biased", "debiased")) for (ker in c("linear", "rbf")) {
    res <- cka_layers(reps, kernel = ker, estimator = est)
    m <- as.matrix(res)
    expect_s3_class(res, "ts_cka")
    expect_equal(dim(m), c(4L, 4L))
    expect_equal(m, t(m), tolerance = 1e-12)
    expect_equal(unname(diag(m)), rep(1, 4))
    expect_equal(m["a", "d"], cka(reps[["a"]], reps[["d"]], kernel = ker, estimator = est), tolerance = 1e-10)
    expect_equal(m["b", "c"], cka(reps[["b"]], reps[["c"]], kernel = ker, estimator = est), tolerance = 1e-10)
  }
  lin_f <- as.matrix(cka_layers(reps, path = "feature"))
  lin_g <- as.matrix(cka_layers(reps, path = "gram"))
  expect_equal(lin_f, lin_g, tolerance = 1e-10)
  deb_f <- as.matrix(cka_layers(reps, estimator = "debiased", path = "feature"))
  deb_g <- as.matrix(cka_layers(reps, estimator = "debiased", path = "gram"))
  expect_equal(deb_f, deb_g, tolerance = 1e-10)
})

test_that("cka_layers between two models (or a model and neural data) is rectangular and tidy", {
  z <- rand_mat(40, 5, 15)
  model <- ts_reps(list(l1 = z, l2 = z %*% matrix(stats::rnorm(25), 5), l3 = rand_mat(40, 5, 16)), model = "m")
  neural <- z[, 1:3] + 0.1 * rand_mat(40, 3, 17)
  res <- cka_layers(model, neural)
  expect_named(res, c("layer_x", "layer_y", "cka"))
  expect_equal(nrow(res), 3)
  expect_equal(res$cka, vapply(c("l1", "l2", "l3"), function(l) cka(model[[l]], neural), 1), tolerance = 1e-12,
               ignore_attr = TRUE)
  expect_equal(as.character(res$layer_y), rep("neural", 3))
  expect_lt(res$cka[3], res$cka[1])
  # two ts_reps, RBF, per-layer sigma
  res2 <- cka_layers(model, list(n1 = neural, n2 = neural^2), kernel = "rbf")
  expect_equal(dim(as.matrix(res2)), c(3L, 2L))
})

test_that("linear CKA on the sample-space route streams over chunks of columns and equals brute force", {
  # 600 stimuli: chunks of 512 and 88 columns of the lower triangle by default, of 64
  # (the last 24) under a tiny budget. Offsets of 1e3 (centred exactly before any
  # product); four layers within one set and against another
  n <- 600
  z <- rand_mat(n, 6, 40)
  layers <- list(a = z %*% matrix(stats::rnorm(6 * 30), 6) + 1e3, b = rand_mat(n, 20, 41),
                 c = cbind(z[, 1:3], rand_mat(n, 9, 42)) - 50, d = z[, 1:2]^2)
  reps <- ts_reps(layers)
  other <- ts_reps(list(u = z[, 4:6] + rand_mat(n, 3, 43), v = rand_mat(n, 7, 44)), model = "o")
  for (est in c("biased", "debiased")) {
    bf <- if (est == "biased") hsic_biased_bf else hsic_debiased_bf
    # the definitions on kernels of the centred layers (both estimators are invariant to
    # the offsets, which would cost H K H digits here)
    K <- lapply(c(layers, other$layers), function(x) tcrossprod(scale(x, scale = FALSE)))
    h <- matrix(0, 6, 6, dimnames = list(names(K), names(K)))
    for (i in 1:6) for (j in i:6) h[i, j] <- h[j, i] <- bf(K[[i]], K[[j]])
    want <- h / sqrt(outer(diag(h), diag(h)))
    g <- as.matrix(cka_layers(reps, estimator = est, path = "gram"))
    expect_equal(g, want[1:4, 1:4], tolerance = 1e-10)
    expect_equal(g, as.matrix(cka_layers(reps, estimator = est, path = "feature")), tolerance = 1e-10)
    expect_equal(as.matrix(cka_layers(reps, other, estimator = est, path = "gram")), want[1:4, 5:6], tolerance = 1e-10)
    withr::with_options(list(tensorscope.memory_gb = 1e-9), {
      expect_equal(as.matrix(cka_layers(reps, estimator = est, path = "gram")), g, tolerance = 1e-12)
      expect_equal(as.matrix(cka_layers(reps, other, estimator = est, path = "gram")), want[1:4, 5:6],
                   tolerance = 1e-10)
    })
  }
})

test_that("the memory budget splits the kernels into blocks without changing results", {
  reps <- ts_reps(lapply(1:5, function(i) rand_mat(30, 3 + i, 20 + i)))
  full <- as.matrix(cka_layers(reps, kernel = "rbf"))
  withr::local_options(tensorscope.memory_gb = 30 * 31 / 2 * 8 * 2 * 2 / 1e9)  # two layers per block
  expect_equal(as.matrix(cka_layers(reps, kernel = "rbf")), full, tolerance = 1e-12)
  withr::local_options(tensorscope.memory_gb = 1e-9)  # one layer at a time
  expect_equal(as.matrix(cka_layers(reps, kernel = "rbf", estimator = "biased")), full, tolerance = 1e-12)
})

test_that("results are identical with 1 and 2 threads", {
  reps <- ts_reps(lapply(1:4, function(i) rand_mat(80, 20 * i, 30 + i)))
  old <- ts_threads(1)
  on.exit(ts_threads(old))
  a <- cka_layers(reps, kernel = "rbf")
  b <- cka_layers(reps, estimator = "debiased", path = "gram")
  ts_threads(2)
  expect_identical(cka_layers(reps, kernel = "rbf")$cka, a$cka)
  expect_identical(cka_layers(reps, estimator = "debiased", path = "gram")$cka, b$cka)
})

test_that("bad input gives classed errors naming the argument", {
  x <- rand_mat(10, 3)
  y <- rand_mat(10, 2)
  xna <- x
  xna[2, 3] <- NA
  expect_error(cka(xna, y), class = "tensorscope_error_non_finite")
  expect_error(cka(xna, y), "`x`")
  xinf <- x
  xinf[1, 1] <- Inf
  expect_error(cka(x, xinf), class = "tensorscope_error_non_finite")
  expect_error(cka(x, rand_mat(9, 3)), class = "tensorscope_error_mismatch")
  expect_error(cka(matrix(1, 10, 3), y), class = "tensorscope_error_zero_variance")
  expect_error(cka(x[1:3, ], y[1:3, ], estimator = "debiased"), class = "tensorscope_error_too_few")
  expect_error(cka(x, y, kernel = "gaussian"), class = "tensorscope_error_argument")
  expect_error(cka(x, y, kernel = "rbf", sigma = -1), class = "tensorscope_error_argument")
  expect_error(cka(x, y, kernel = "rbf", path = "feature"), class = "tensorscope_error_argument")
  expect_error(cka(letters[1:10], y), class = "tensorscope_error_type")
  expect_error(cka(x, matrix(numeric(0), 10, 0)), class = "tensorscope_error_empty")
  # issue 15: a constant layer no longer aborts the others; it is NA with a warning
  expect_warning(r <- cka_layers(list(a = x, b = matrix(2, 10, 2))), class = "tensorscope_warning_unusable_layer")
  expect_true(all(is.na(as.matrix(r)["b", ])) && as.matrix(r)["a", "a"] == 1)
  expect_error(cka_layers(list(a = matrix(1, 10, 2), b = matrix(2, 10, 2))), class = "tensorscope_error_zero_variance")
  expect_error(cka_layers(list(a = x, b = y[1:9, ])), class = "tensorscope_error_mismatch")
  expect_error(cka_layers(list(a = x), rand_mat(11, 2)), class = "tensorscope_error_mismatch")
  expect_error(cka_layers(list(a = x, b = y), kernel = "rbf", sigma = c(a = 1)), class = "tensorscope_error_argument")
})
