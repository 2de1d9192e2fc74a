test_that("backend = 'torch' CKA and RDMs agree with the Eigen core to 1e-8 (float64)", {
  skip_if_not(ts_torch_available())
  set.seed(5)
  x <- matrix(rnorm(60 * 7), 60)
  y <- cbind(x[, 1:3] %*% matrix(rnorm(9), 3), matrix(rnorm(60 * 4), 60))
  for (est in c("biased", "debiased")) {
    for (path in c("feature", "gram")) {
      expect_equal(cka(x, y, estimator = est, path = path, backend = "torch"),
                   cka(x, y, estimator = est, path = path, backend = "eigen"), tolerance = 1e-8)
    }
    expect_equal(cka(x, y, kernel = "rbf", estimator = est, backend = "torch"),
                 cka(x, y, kernel = "rbf", estimator = est, backend = "eigen"), tolerance = 1e-8)
  }
  expect_equal(cka(x, y, kernel = "rbf", sigma = 2, backend = "torch"), cka(x, y, kernel = "rbf", sigma = 2), tolerance = 1e-8)
  expect_equal(cka(x, y, kernel = "rbf", bandwidth = "median_nonzero", backend = "torch"),
               cka(x, y, kernel = "rbf", bandwidth = "median_nonzero"), tolerance = 1e-8)
  # the torch result is not the Eigen one by construction: a known answer too
  expect_equal(cka(x, x %*% qr.Q(qr(matrix(rnorm(49), 7))), backend = "torch"), 1, tolerance = 1e-12)
  reps <- ts_reps(list(a = x, b = y, c = x^2))
  for (kernel in c("linear", "rbf")) {
    for (est in c("biased", "debiased")) {
      ct <- cka_layers(reps, kernel = kernel, estimator = est, backend = "torch")
      ce <- cka_layers(reps, kernel = kernel, estimator = est, backend = "eigen")
      expect_equal(ct$cka, ce$cka, tolerance = 1e-8)
      expect_equal(attr(ct, "settings")$sigma_x, attr(ce, "settings")$sigma_x, tolerance = 1e-10)
      bt <- cka_layers(reps, list(n1 = y[, 1:2], n2 = x[, 4:7]), kernel = kernel, estimator = est, backend = "torch")
      be <- cka_layers(reps, list(n1 = y[, 1:2], n2 = x[, 4:7]), kernel = kernel, estimator = est, backend = "eigen")
      expect_equal(bt$cka, be$cka, tolerance = 1e-8)
      expect_equal(attr(bt, "settings")$sigma_y, attr(be, "settings")$sigma_y, tolerance = 1e-10)
    }
  }
  expect_equal(cka_layers(reps, path = "gram", backend = "torch")$cka, cka_layers(reps)$cka, tolerance = 1e-8)
  for (m in c("correlation", "cosine", "euclidean", "sqeuclidean")) {
    expect_equal(rdm(x, m, backend = "torch")$dissimilarities, rdm(x, m, backend = "eigen")$dissimilarities,
                 tolerance = 1e-8)
  }
  expect_equal(rdm(reps, backend = "torch")$dissimilarities, rdm(reps)$dissimilarities, tolerance = 1e-8)
  # small inputs on "auto" stay on Eigen; unsupported options are errors for "torch"
  expect_identical(cka(x, y), cka(x, y, backend = "eigen"))
  expect_error(cka(x, x * 0 + rep(1, 60), kernel = "rbf", backend = "torch"), class = "tensorscope_error")
  expect_error(rdm(x, "mahalanobis", backend = "torch"), class = "tensorscope_error_argument")
  expect_error(cka(x, y, backend = "gpu"), class = "tensorscope_error_argument")
})

test_that("backend = 'torch' ridge agrees with the Eigen path (both forms, every alpha rule)", {
  skip_if_not(ts_torch_available())
  set.seed(7)
  n <- 80
  z <- matrix(rnorm(n * 4), n)
  reps <- ts_reps(list(narrow = cbind(z, matrix(rnorm(n * 6), n)),   # p < n_train: feature form
                       wide = cbind(z, matrix(rnorm(n * 150), n))))  # p > n_train: kernel form
  y <- z %*% matrix(rnorm(4 * 6), 4) + matrix(rnorm(n * 6), n)
  for (sel in c("gcv", "loo", "kfold")) {
    for (shared in c(TRUE, FALSE)) {
      pt <- predictivity(reps, y, alpha_select = sel, alpha_per_target = shared, return_predictions = TRUE,
                         backend = "torch")
      pe <- predictivity(reps, y, alpha_select = sel, alpha_per_target = shared, return_predictions = TRUE,
                         backend = "eigen")
      expect_equal(pt$r, pe$r, tolerance = 1e-8)
      expect_equal(pt$r2, pe$r2, tolerance = 1e-8)
      expect_identical(pt$alpha, pe$alpha)
      expect_equal(attr(pt, "predictions"), attr(pe, "predictions"), tolerance = 1e-8)
    }
  }
  # known answer: a noise-free linear response is predicted almost perfectly
  lin <- predictivity(reps$layers$narrow, reps$layers$narrow %*% rnorm(10), alphas = 1e-6, backend = "torch")
  expect_gt(lin$r, 0.999999)
  # Brain-Score shuffle splits (not a partition) take the same path
  expect_equal(predictivity(reps, y, splits = list(1:20, 30:60), backend = "torch")$r,
               predictivity(reps, y, splits = list(1:20, 30:60), backend = "eigen")$r, tolerance = 1e-8)
  expect_error(predictivity(reps, y, method = "pls", backend = "torch"), class = "tensorscope_error_argument")
  withr::with_options(list(tensorscope.torch_device = "tpu"), {
    expect_error(predictivity(reps, y, backend = "torch"), class = "tensorscope_error_argument")
  })
})

test_that("a CUDA device without CUDA is a classed error on every dense metric", {
  skip_if_not(ts_torch_available())
  skip_if(isTRUE(ts_build_info()$cuda))
  x <- matrix(rnorm(200), 20)
  withr::with_options(list(tensorscope.torch_device = "cuda"), {
    expect_error(cka(x, x, backend = "torch"), class = "tensorscope_error_cuda_unavailable")
    expect_error(rdm(x, backend = "torch"), class = "tensorscope_error_cuda_unavailable")
    expect_error(predictivity(x, x[, 1:2], backend = "torch"), class = "tensorscope_error_cuda_unavailable")
  })
})

test_that("backend = 'torch' without LibTorch is a torch_unavailable error", {
  skip_if(ts_torch_available())
  x <- matrix(rnorm(40), 10)
  expect_error(cka(x, x, backend = "torch"), class = "tensorscope_error_torch_unavailable")
  expect_identical(cka(x, x, backend = "auto"), cka(x, x, backend = "eigen"))
  expect_error(predictivity(x, x[, 1:2], backend = "torch"), class = "tensorscope_error_torch_unavailable")
})
