test_that("backend = 'torch' CKA and RDMs agree with the Eigen core to 1e-8 (float64)", {
  skip_if_not(ts_torch_available())
  set.seed(5)
  x <- matrix(rnorm(60 * 7), 60)
  y <- cbind(x[, 1:3] %*% matrix(rnorm(9), 3), matrix(rnorm(60 * 4), 60))
  for (est in c("biased", "debiased")) {
    expect_equal(cka(x, y, estimator = est, backend = "torch"), cka(x, y, estimator = est, backend = "eigen"),
                 tolerance = 1e-8)
  }
  reps <- ts_reps(list(a = x, b = y, c = x^2))
  ct <- cka_layers(reps, backend = "torch")
  ce <- cka_layers(reps, backend = "eigen")
  expect_equal(ct$cka, ce$cka, tolerance = 1e-8)
  for (m in c("correlation", "cosine", "euclidean", "sqeuclidean")) {
    expect_equal(rdm(x, m, backend = "torch")$dissimilarities, rdm(x, m, backend = "eigen")$dissimilarities,
                 tolerance = 1e-8)
  }
  expect_equal(rdm(reps, backend = "torch")$dissimilarities, rdm(reps)$dissimilarities, tolerance = 1e-8)
  # small inputs on "auto" stay on Eigen; unsupported options are errors for "torch"
  expect_identical(cka(x, y), cka(x, y, backend = "eigen"))
  expect_error(cka(x, y, kernel = "rbf", backend = "torch"), class = "tensorscope_error_argument")
  expect_error(rdm(x, "mahalanobis", backend = "torch"), class = "tensorscope_error_argument")
  expect_error(cka(x, y, backend = "gpu"), class = "tensorscope_error_argument")
})

test_that("backend = 'torch' without LibTorch is a torch_unavailable error", {
  skip_if(ts_torch_available())
  x <- matrix(rnorm(40), 10)
  expect_error(cka(x, x, backend = "torch"), class = "tensorscope_error_torch_unavailable")
  expect_identical(cka(x, x, backend = "auto"), cka(x, x, backend = "eigen"))
})
