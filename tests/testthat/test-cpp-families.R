# Every family of the C++ core once, on small inputs, with a property each result must
# have. It is the file `make valgrind` runs first (the full test files of the families
# take tens of minutes each under memcheck), so that one memcheck run covers the core's
# code of every family: CKA, RDMs and their comparisons, RSA, ridge (in the small
# interruptible blocks too) and PLS, geometry, superposition, circuits, shape metrics
# and the .npy / .npz readers.

test_that("each C++ family runs on small inputs and gives results with their basic properties", {
  set.seed(3)
  x <- matrix(rnorm(30 * 6), 30)
  y <- x %*% matrix(rnorm(36), 6) + matrix(rnorm(30 * 6, sd = 0.5), 30)
  lab <- rep(c("a", "b", "c"), 10)

  # alignment: CKA is symmetric and 1 on identical data
  expect_equal(cka(x, x), 1, tolerance = 1e-12)
  expect_equal(cka(x, y), cka(y, x), tolerance = 1e-12)
  expect_equal(cka(x, 2 * x, kernel = "rbf"), cka(x, x, kernel = "rbf"), tolerance = 1e-6)
  m <- as.matrix(cka_layers(list(a = x, b = y, c = x[, 1:3])))
  expect_equal(m, t(m), tolerance = 1e-12)

  # RDMs and their comparisons
  r1 <- rdm(x[1:10, ])
  r2 <- rdm(y[1:10, ], "euclidean")
  expect_equal(r1$dissimilarities[1, ], as.vector(as.dist(1 - cor(t(x[1:10, ])))), tolerance = 1e-12)
  for (m in c("spearman", "kendall_tau_a", "cosine", "corr_cov", "bures")) {
    expect_equal(compare_rdms(r1, r2, m), compare_rdms(r2, r1, m), tolerance = 1e-10, label = m)
  }
  expect_equal(compare_rdms(rdm(y[1:10, ], "euclidean"), rdm(y[1:10, ], "euclidean"), "riemannian"), 0,
               tolerance = 1e-8)

  # RSA with permutations and a stimulus bootstrap
  res <- rsa(list(a = x[1:10, ]), as.matrix(r2), n_perm = 20, boot = "stimuli", n_boot = 10, seed = 1)
  expect_true(res$p_value > 0 && res$p_value <= 1)

  # predictivity: ridge in the small blocks (tensorscope.block_flops) equals the default
  ref <- predictivity(list(a = x), y, alphas = c(0.1, 10), alpha_select = "loo", folds = 3)
  small <- withr::with_options(list(tensorscope.block_flops = 1000),
                               predictivity(list(a = x), y, alphas = c(0.1, 10), alpha_select = "loo", folds = 3))
  expect_equal(small$r, ref$r, tolerance = 1e-10)
  expect_true(all(is.finite(predictivity(list(a = x), y, method = "pls", ncomp = 2, folds = 3)$r)))
  expect_true(all(noise_ceiling(array(rnorm(10 * 3 * 4), c(10, 3, 4)), n_splits = 3)$reliability <= 1))

  # geometry
  expect_true(effective_rank(x) <= 6)
  expect_true(is.finite(intrinsic_dim(x, k = 5)))
  rc <- ricci_curvature(x, k = 5)
  expect_true(all(is.finite(rc$curvature)))
  expect_true(all(separability(list(a = x), lab, folds = 3)$value >= 0))

  # superposition and polysemanticity
  W <- matrix(rnorm(8 * 3), 8)
  expect_true(superposition(W)$n_features == 8 || nrow(superposition(W)$features) == 8)
  expect_true(all(polysemanticity(list(a = x), lab, n_perm = 10)$units$si >= 0))

  # circuits on the shipped two-layer toy transformer
  toy <- readRDS(system.file("extdata", "induction_circuits.rds", package = "tensorscope"))
  hs <- head_scores(toy$trained$patterns, type = "induction")
  expect_true(all(hs$score >= 0 & hs$score <= 1))
  cs <- with(toy$trained, composition_scores(W_Q, W_K, W_V, W_O, type = "k", n_baseline = 3))
  expect_true(all(is.finite(cs$score)))
  fl <- attention_flow(toy$trained$patterns)
  expect_true(all(fl$weight >= 0) && all(is.finite(fl$weight)))

  # shape metrics: a rotation of the same data is at distance 0
  Q <- qr.Q(qr(matrix(rnorm(36), 6)))
  expect_equal(shape_distance(x, x %*% Q), 0, tolerance = 1e-6)
  expect_true(all(is.finite(cca_similarity(x, y))))
  expect_lt(as.numeric(soft_matching_distance(x, x[, 6:1])), 1e-6)  # a permutation of the units

  # readers: .npy and .npz written and read back exactly
  f <- tempfile(fileext = ".npy")
  on.exit(unlink(f))
  write_npy(x, f)
  expect_identical(unname(read_npy(f)), unname(x))
  npz <- test_path("fixtures", "npy")
  for (g in list.files(npz, pattern = "\\.npz$", full.names = TRUE)[1]) expect_type(read_npz(g), "list")
})
