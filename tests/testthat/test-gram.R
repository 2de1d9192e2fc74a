# activations(reduce = "gram"): the exact Gram route. Each layer comes back as an n x q
# stand-in F with the layer's Gram (F F' = X X') and row-centred Gram, so every metric
# that depends on the stimuli's inner products and per-stimulus means equals its value
# on the exact activations (float64: to 1e-10), whatever the panel size.

gram_case <- function() {
  x <- fmnist()$images[1:40, , , , drop = FALSE]
  list(x = x, f = ext_file("fmnist_cnn_step1125.pt"), lay = c("conv1", "conv2", "fc1", "fc2"))
}

test_that("the Gram route gives each layer's exact Gram and row-centred Gram, in one pass or several", {
  skip_if_not(ts_torch_available())
  g <- gram_case()
  ex <- activations(g$f, g$x, layers = g$lay, reduce = "none", dtype = "float64", batch_size = 7)
  one <- activations(g$f, g$x, layers = g$lay, reduce = "gram", dtype = "float64", batch_size = 7)
  expect_identical(one$provenance$gram_passes, 1)
  expect_identical(one$provenance$forward_passes, 6)
  m <- one$provenance$memory
  expect_identical(names(m), c("model", "forward", "grams", "factor", "inputs", "panel", "budget"))
  expect_equal(m[["grams"]], 4 * (40^2 + 40) * 8)
  # a budget that leaves room for a panel of 14 stimuli: 3 passes (panels at 1, 15, 29),
  # 6 + 4 + 2 forward passes
  fixed <- sum(m[c("model", "forward", "grams", "factor", "inputs")])
  several <- activations(g$f, g$x, layers = g$lay, reduce = "gram", dtype = "float64", batch_size = 7,
                         memory = fixed + 14.5 * m[["panel"]] / 40)
  expect_identical(several$provenance$gram_passes, 3)
  expect_identical(several$provenance$forward_passes, 12)
  for (l in g$lay) {
    X <- ex[[l]]
    G <- tcrossprod(X)
    Xc <- X - rowMeans(X)
    for (r in list(one, several)) {
      F <- r[[l]]
      expect_lte(ncol(F), min(nrow(X), ncol(X)) + 1)
      expect_equal(tcrossprod(F), G, tolerance = 1e-10)
      expect_equal(tcrossprod(F - rowMeans(F)), tcrossprod(Xc), tolerance = 1e-10)
      expect_identical(rownames(F), rownames(X))
    }
    expect_match(one$provenance$reduce[[l]], sprintf("^gram\\(p = %d\\)$", ncol(X)))
  }
  expect_output(print(one), "conv1 .*gram\\(p = 6272\\)")
})

test_that("on the Gram route CKA, RDMs and ridge predictivity equal their values on the exact activations", {
  skip_if_not(ts_torch_available())
  g <- gram_case()
  ex <- activations(g$f, g$x, layers = g$lay, reduce = "none", dtype = "float64", batch_size = 16)
  gr <- activations(g$f, g$x, layers = g$lay, reduce = "gram", dtype = "float64", batch_size = 16)
  for (kernel in c("linear", "rbf")) for (est in c("biased", "debiased")) {
    expect_equal(cka_layers(gr, kernel = kernel, estimator = est)$cka,
                 cka_layers(ex, kernel = kernel, estimator = est)$cka, tolerance = 1e-10)
  }
  for (method in c("correlation", "euclidean", "sqeuclidean", "cosine", "mahalanobis")) {
    a <- rdm(ex, method = method)
    b <- rdm(gr, method = method)
    expect_equal(b$dissimilarities, a$dissimilarities, tolerance = 1e-10)
    # a subset of stimuli (in another order) of the stand-in is the subset's stand-in
    ids <- rev(ex$stimuli)[1:25]
    expect_equal(rdm(gr[ids, ], method = method)$dissimilarities, rdm(ex[ids, ], method = method)$dissimilarities,
                 tolerance = 1e-10)
    expect_equal(rdm(gr[["fc1"]], method = method)$dissimilarities, rdm(ex[["fc1"]], method = method)$dissimilarities,
                 tolerance = 1e-10)
  }
  expect_error(rdm(gr, method = "crossnobis", runs = rep(1:2, 20)), class = "tensorscope_error_argument")
  set.seed(4)
  neurons <- ex[["fc1"]] %*% matrix(rnorm(ncol(ex[["fc1"]]) * 5), ncol = 5) + matrix(rnorm(40 * 5), 40)
  rownames(neurons) <- ex$stimuli
  pe <- predictivity(ex[c("conv2", "fc1")], neurons, alphas = 10^(0:4), folds = 4)
  pg <- predictivity(gr[c("conv2", "fc1")], neurons, alphas = 10^(0:4), folds = 4)
  expect_equal(pg$r, pe$r, tolerance = 1e-8)
  # float32: the same within float32's rounding
  g32 <- activations(g$f, g$x, layers = g$lay, reduce = "gram", batch_size = 16)
  expect_equal(cka_layers(g32)$cka, cka_layers(ex)$cka, tolerance = 1e-4)
})

test_that("the Gram route refuses mixed reducers, a cache, and a budget without room for one batch's panel", {
  skip_if_not(ts_torch_available())
  g <- gram_case()
  expect_error(activations(g$f, g$x, layers = g$lay, reduce = c(conv1 = "gram", "srp")),
               class = "tensorscope_error_argument")
  expect_error(activations(g$f, g$x, layers = g$lay, reduce = "gram", cache = tempfile()),
               class = "tensorscope_error_argument")
  err <- expect_error(activations(g$f, g$x, layers = g$lay, reduce = "gram", memory = 1e5),
                      class = "tensorscope_error_memory")
  expect_match(conditionMessage(err), "Gram route")
})

test_that("analyze_models() records the reducer activations() chose for each layer", {
  skip_if_not(ts_torch_available())
  g <- gram_case()
  res <- analyze_models(g$f, g$x, layers = c("conv1", "fc1"), metrics = "effective_rank", reduce = c(conv1 = "srp", "none"),
                        k = 16)
  r <- res$reducers
  expect_identical(as.character(r$layer), c("conv1", "fc1"))
  expect_identical(r$reducer, c("srp(k = 16, seed = 1)", "none"))
  # the same as activations() reports for the same call
  a <- activations(g$f, g$x, layers = c("conv1", "fc1"), reduce = c(conv1 = "srp", "none"), k = 16)
  expect_identical(r$reducer, unname(a$provenance$reduce))
  expect_output(print(res), "stored as: none 1, srp\\(k = 16, seed = 1\\) 1")
  gr <- analyze_models(g$f, g$x, layers = c("conv1", "fc1"), metrics = "effective_rank", reduce = "gram")
  expect_identical(gr$reducers$reducer, c("gram(p = 6272)", "gram(p = 32)"))
})

test_that("analyze_models() takes the stimuli as a function of rows (with stimuli =) as activations() does", {
  skip_if_not(ts_torch_available())
  g <- gram_case()
  ids <- paste0("s", 1:40)
  x <- g$x
  dimnames(x)[[1]] <- ids
  a <- analyze_models(g$f, x, layers = c("conv1", "fc1"), metrics = c("effective_rank", "cka_similarity"))
  f <- analyze_models(g$f, function(rows) x[rows, , , , drop = FALSE], stimuli = ids, layers = c("conv1", "fc1"),
                      metrics = c("effective_rank", "cka_similarity"), batch_size = 16)
  expect_equal(f$values$value, a$values$value, tolerance = 1e-10)
  expect_identical(f$stimuli, ids)
  expect_error(analyze_models(g$f, function(rows) x[rows, , , , drop = FALSE], metrics = "effective_rank"),
               class = "tensorscope_error_argument")
})
