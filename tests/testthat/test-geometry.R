# Geometry family: effective rank, participation ratio, kNN, intrinsic dimension,
# Ricci curvature, fiber-bundle test, separability, invariance.

# ---- effective rank / participation ratio ------------------------------------------

test_that("effective rank and participation ratio of an isotropic cloud are near its dimension", {
  set.seed(1)
  x <- matrix(rnorm(4000 * 8), 4000)
  expect_equal(effective_rank(x), 8, tolerance = 0.02)
  expect_equal(effective_rank(x, on = "eigenvalues"), 8, tolerance = 0.02)
  expect_equal(participation_ratio(x), 8, tolerance = 0.02)
})

test_that("effective rank matches a brute-force SVD and is at most the rank", {
  set.seed(2)
  x <- matrix(rnorm(60 * 3), 60) %*% matrix(rnorm(3 * 20), 3)   # rank 3 in 20 dims
  s <- svd(scale(x, scale = FALSE))$d
  p <- s / sum(s)
  p <- p[p > 0]
  expect_equal(effective_rank(x), exp(-sum(p * log(p))), tolerance = 1e-8)
  expect_lte(effective_rank(x), 3 + 1e-8)
  lam <- s^2 / (nrow(x) - 1)
  expect_equal(participation_ratio(x), sum(lam)^2 / sum(lam^2), tolerance = 1e-8)
  # wide data (p > n) goes through the other Gram matrix: same answer
  w <- t(x[1:15, ])
  sw <- svd(scale(w, scale = FALSE))$d
  q <- sw / sum(sw)
  q <- q[q > 1e-15]
  expect_equal(effective_rank(w), exp(-sum(q * log(q))), tolerance = 1e-6)
})

test_that("spectral measures are invariant to rotations and translations and work per layer", {
  set.seed(3)
  x <- matrix(rnorm(100 * 6), 100) %*% diag(6:1)
  q <- qr.Q(qr(matrix(rnorm(36), 6)))
  expect_equal(effective_rank(x %*% q + 5), effective_rank(x), tolerance = 1e-10)
  res <- effective_rank(ts_reps(list(a = x, b = x[, 1:2])))
  expect_s3_class(res, "ts_layer_profile")
  expect_equal(res$value, c(effective_rank(x), effective_rank(x[, 1:2])))
  expect_equal(levels(res$layer), c("a", "b"))
})

test_that("spectral measures reject bad input", {
  expect_error(effective_rank(matrix(1, 10, 3)), class = "tensorscope_error_zero_variance")
  expect_error(effective_rank(matrix(c(1, NA, 3, 4), 2)), class = "tensorscope_error_non_finite")
  expect_error(effective_rank(matrix(1:3, 1)), class = "tensorscope_error_too_few")
  expect_error(effective_rank(matrix(rnorm(20), 10), on = "x"), class = "tensorscope_error_argument")
  expect_error(participation_ratio("a"), class = "tensorscope_error_type")
})

# ---- kNN ------------------------------------------------------------------------------

test_that("nearest_neighbors equals a brute-force search, also with duplicates and offsets", {
  set.seed(4)
  x <- matrix(rnorm(400 * 7), 400)
  x[10, ] <- x[3, ]
  x <- x + 1e6                                      # a large offset: cancellation-prone
  nn <- nearest_neighbors(x, k = 6)
  D <- as.matrix(dist(x))
  diag(D) <- Inf
  expect_equal(nn$index, unname(t(apply(D, 1, function(r) order(r)[1:6]))))
  expect_equal(nn$distance, unname(t(apply(D, 1, function(r) sort(r)[1:6]))), tolerance = 1e-9)
  expect_equal(nn$distance[10, 1], 0)
  old <- ts_threads(1)
  on.exit(ts_threads(old))
  one <- nearest_neighbors(x, k = 6)
  ts_threads(2)
  expect_identical(one, nearest_neighbors(x, k = 6))
  expect_error(nearest_neighbors(x[1:5, ], k = 5), class = "tensorscope_error_too_few")
  expect_error(nearest_neighbors(x, k = 0), class = "tensorscope_error_argument")
})

# ---- intrinsic dimension ------------------------------------------------------------

test_that("TwoNN recovers the dimension of a linear subspace and of a swiss roll within 10%", {
  set.seed(5)
  for (d in c(2, 5)) {
    z <- matrix(runif(3000 * d), 3000)
    x <- z %*% matrix(rnorm(d * 30), d)
    expect_lt(abs(intrinsic_dim(x) - d) / d, 0.1)
    expect_lt(abs(intrinsic_dim(x, method = "twonn_mle") - d) / d, 0.1)
    expect_lt(abs(intrinsic_dim(x, method = "mle_levina_bickel", k = 10) - d) / d, 0.1)
  }
  t <- 1.5 * pi * (1 + 2 * runif(3000))
  roll <- cbind(t * cos(t), 21 * runif(3000), t * sin(t))
  expect_lt(abs(intrinsic_dim(roll) - 2) / 2, 0.1)
})

test_that("TwoNN matches a naive R implementation", {
  set.seed(6)
  x <- matrix(rnorm(300 * 4), 300)
  D <- as.matrix(dist(x))
  diag(D) <- Inf
  r <- t(apply(D, 1, function(v) sort(v)[1:2]))
  mu <- sort(r[, 2] / r[, 1])
  N <- length(mu)
  m <- floor(0.9 * N)
  xx <- log(mu[1:m])
  yy <- -log(1 - (1:m) / N)
  expect_equal(as.numeric(intrinsic_dim(x)), sum(xx * yy) / sum(xx^2), tolerance = 1e-10)
  expect_equal(as.numeric(intrinsic_dim(x, method = "twonn_mle")), (N - 1) / sum(log(mu)), tolerance = 1e-10)
})

test_that("intrinsic_dim handles duplicates, tiny and huge scales without NaN", {
  set.seed(7)
  x <- matrix(runif(1000 * 3), 1000) %*% matrix(rnorm(9), 3)
  xd <- rbind(x, x[1:50, ])
  expect_warning(d1 <- intrinsic_dim(xd), class = "tensorscope_warning_duplicates")
  expect_equal(as.numeric(d1), as.numeric(intrinsic_dim(x)))
  expect_equal(attr(d1, "n_duplicates"), 50)
  expect_equal(as.numeric(intrinsic_dim(x * 1e-200)), as.numeric(intrinsic_dim(x)), tolerance = 1e-8)
  expect_equal(as.numeric(intrinsic_dim(x * 1e200)), as.numeric(intrinsic_dim(x)), tolerance = 1e-8)
  # a regular lattice: every ratio is 1 -> Inf with a warning, never NaN
  g <- as.matrix(expand.grid(1:10, 1:10))
  expect_warning(d2 <- intrinsic_dim(g, method = "twonn_mle"), class = "tensorscope_warning_degenerate")
  expect_true(is.infinite(d2))
})

test_that("intrinsic_dim is thread-independent, works per layer and rejects bad input", {
  set.seed(8)
  x <- matrix(rnorm(500 * 3), 500)
  old <- ts_threads(1)
  on.exit(ts_threads(old))
  a <- intrinsic_dim(x)
  ts_threads(2)
  expect_identical(a, intrinsic_dim(x))
  res <- intrinsic_dim(list(a = x, b = x[, 1:2]))
  expect_equal(res$value[1], as.numeric(a))
  expect_error(intrinsic_dim(matrix(1, 10, 2)), class = "tensorscope_error_zero_variance")
  expect_error(intrinsic_dim(matrix(rnorm(10), 5), method = "mle_levina_bickel", k = 10),
               class = "tensorscope_error_too_few")
  expect_error(intrinsic_dim(matrix(c(rnorm(9), NA), 5)), class = "tensorscope_error_non_finite")
  expect_error(intrinsic_dim(x, method = "pca"), class = "tensorscope_error_argument")
})

# ---- Ricci curvature ------------------------------------------------------------------

test_that("Ollivier-Ricci on complete graphs, cycles and trees has its known values", {
  skip_if_not_installed("igraph")
  # complete graph K_n, alpha = 1/2: kappa = n / (2 (n - 1))
  for (n in c(4, 7)) {
    r <- ricci_curvature(igraph::make_full_graph(n))
    expect_equal(r$curvature, rep(n / (2 * (n - 1)), n * (n - 1) / 2), tolerance = 1e-12)
  }
  # cycles of length >= 6: kappa = 0; C_4: 1/2 (1 - W1 with W1 = 1/2); C_5: 1/4
  expect_equal(ricci_curvature(igraph::make_ring(8))$curvature, rep(0, 8), tolerance = 1e-12)
  expect_equal(ricci_curvature(igraph::make_ring(4))$curvature, rep(0.5, 4), tolerance = 1e-12)
  expect_equal(ricci_curvature(igraph::make_ring(5))$curvature, rep(0.25, 5), tolerance = 1e-12)
  # trees: kappa(x, y) = 1/deg x + 1/deg y - 1 for alpha = 1/2
  tr <- igraph::make_tree(15, children = 3, mode = "undirected")
  r <- ricci_curvature(tr)
  deg <- igraph::degree(tr)
  expect_equal(r$curvature, 1 / deg[r$from] + 1 / deg[r$to] - 1, tolerance = 1e-12)
  expect_true(all(r$curvature[deg[r$from] > 1 & deg[r$to] > 1] < 0))
  # Forman on an unweighted graph: 4 - deg x - deg y
  f <- ricci_curvature(tr, method = "forman")
  expect_equal(f$curvature, 4 - deg[f$from] - deg[f$to])
})

test_that("Ollivier-Ricci on the karate club matches GraphRicciCurvature", {
  skip_if_not_installed("igraph")
  # Published values: GraphRicciCurvature (Ni et al.), test/test_OllivierRicci.py,
  # test_compute_ricci_curvature: networkx karate_club_graph with edge weights removed,
  # OllivierRicci(G, method = "OTD", alpha = 0.5), exp_power 2; edges in networkx order
  # (sorted (u, v), u < v), values rounded to 6 decimals.
  # https://github.com/saibalmars/GraphRicciCurvature/blob/master/test/test_OllivierRicci.py
  published <- c(
    0.111111, -0.143750, 0.041667, -0.114583, -0.281250, -0.281250, 0.062500, -0.200000, -0.114583, 0.062500,
    -0.000000, 0.062500, 0.062500, -0.031250, 0.062500, -0.427083, 0.044444, 0.166667, 0.194444, 0.244444,
    0.166667, 0.111111, 0.166667, -0.041667, 0.050000, 0.125000, 0.100000, 0.100000, 0.200000, -0.175000,
    0.033333, -0.233333, 0.416667, 0.250000, 0.216667, 0.291667, 0.500000, 0.500000, 0.291667, 0.375000,
    0.375000, 0.375000, -0.025000, 0.011765, -0.044118, -0.288235, 0.125000, 0.088235, 0.125000, 0.088235,
    0.125000, 0.088235, -0.254902, 0.125000, 0.088235, 0.125000, 0.088235, 0.100000, 0.225000, 0.200000,
    -0.066667, -0.076471, 0.500000, 0.125000, 0.083333, 0.166667, 0.375000, -0.073529, -0.147059, 0.166667,
    -0.068627, -0.041667, -0.014706, -0.041667, -0.044118, -0.166667, -0.122549, 0.267157)
  r <- ricci_curvature(igraph::make_graph("Zachary"), alpha = 0.5)
  expect_equal(nrow(r), 78)
  expect_true(all(diff(r$from * 100 + r$to) > 0))     # sorted (from, to), as networkx lists them
  expect_lte(max(abs(r$curvature - published)), 5e-7 + 1e-12)   # published values are rounded
  expect_equal(summary(r)$mean_ricci, mean(published), tolerance = 1e-6)
})

test_that("the exact transport solver agrees with brute force on small problems", {
  set.seed(9)
  tp <- tensorscope:::cpp_transport
  # 2 x 2: W1 in closed form over the one free variable
  a <- c(0.3, 0.7)
  b <- c(0.6, 0.4)
  C <- matrix(c(0, 2, 1, 0.5), 2)
  f <- seq(max(0, a[1] - b[2]), min(a[1], b[1]), length.out = 100001)
  brute <- min(f * C[1, 1] + (a[1] - f) * C[1, 2] + (b[1] - f) * C[2, 1] + (a[2] - b[1] + f) * C[2, 2])
  expect_equal(tp(a, b, C), brute, tolerance = 1e-6)
  # on the line, W1 = integral of |F_a - F_b|
  for (rep in 1:20) {
    m <- sample(2:8, 1)
    n <- sample(2:8, 1)
    pa <- runif(m)
    pb <- runif(n)
    pa <- pa / sum(pa)
    pb <- pb / sum(pb)
    xa <- sort(runif(m))
    xb <- sort(runif(n))
    grid <- sort(c(xa, xb))
    Fa <- sapply(grid, function(t) sum(pa[xa <= t]))
    Fb <- sapply(grid, function(t) sum(pb[xb <= t]))
    w1 <- sum(abs(Fa - Fb)[-length(grid)] * diff(grid))
    expect_equal(tp(pa, pb, abs(outer(xa, xb, "-"))), w1, tolerance = 1e-10)
  }
})

test_that("ricci_curvature on points: kNN graph, thread-independent, per layer, bad input", {
  set.seed(10)
  x <- matrix(rnorm(300 * 3), 300)
  r <- ricci_curvature(x, k = 6)
  nn <- nearest_neighbors(x, k = 6)
  pairs <- unique(t(apply(cbind(rep(1:300, 6), as.vector(nn$index)), 1, sort)))
  expect_equal(nrow(r), nrow(pairs))
  expect_true(all(r$from < r$to))
  expect_true(all(r$curvature <= 1 + 1e-12))
  old <- ts_threads(1)
  on.exit(ts_threads(old))
  a <- ricci_curvature(x, k = 6)
  ts_threads(2)
  expect_identical(a, ricci_curvature(x, k = 6))
  # a flat grid-like plane is less negatively curved than a Gaussian in 10 dimensions
  res <- summary(ricci_curvature(list(plane = cbind(x[, 1:2], 0), high = matrix(rnorm(300 * 10), 300)), k = 6))
  expect_gt(res$mean_ricci[1], res$mean_ricci[2])
  # scaled data: Ollivier with exp_power = 0 (uniform weights) is scale-invariant
  expect_equal(ricci_curvature(x * 1e3, k = 6, exp_power = 0)$curvature,
               ricci_curvature(x, k = 6, exp_power = 0)$curvature, tolerance = 1e-10)
  xd <- rbind(x, x[1:3, ])
  expect_warning(rd <- ricci_curvature(xd, k = 6), class = "tensorscope_warning_duplicates")
  expect_equal(rd$curvature, r$curvature)
  expect_error(ricci_curvature(x[1:5, ], k = 5), class = "tensorscope_error_too_few")
  expect_error(ricci_curvature(x, alpha = 2), class = "tensorscope_error_argument")
  expect_error(ricci_curvature(matrix(1, 20, 2)), class = "tensorscope_error_zero_variance")
  expect_s3_class(autoplot(r), "ggplot")
})

# ---- fiber-bundle test ------------------------------------------------------------

test_that("the fiber-bundle test rejects near a cusp and a cone apex, not on a disc or a sphere", {
  set.seed(11)
  n <- 2500
  t <- runif(n, -1, 1)
  cusp <- cbind(t^2, t^3)
  fb <- fiber_bundle_test(cusp, k_range = c(1, 100), window = 20)
  expect_true(fb$decision$reject[fb$decision$hypothesis == "fiber_bundle"])
  rej <- fb$points$point[fb$points$reject_fiber]
  expect_gt(length(rej), 5)
  expect_lt(max(abs(t[rej])), 0.35)                  # only near the cusp at t = 0
  # double cone z^2 = x^2 + y^2 (two nappes meeting at the apex)
  set.seed(2)
  h <- runif(3000, -1, 1)
  th <- runif(3000, 0, 2 * pi)
  cone <- cbind(abs(h) * cos(th), abs(h) * sin(th), h)
  fc <- fiber_bundle_test(cone)
  rc <- fc$points$point[fc$points$reject_fiber]
  expect_gt(length(rc), 0)
  expect_lt(max(abs(h[rc])), 0.3)                    # all near the apex
  # flat disc and sphere: nothing rejected
  r <- sqrt(runif(3000))
  th <- runif(3000, 0, 2 * pi)
  disc <- cbind(r * cos(th), r * sin(th), 0)
  s <- matrix(rnorm(3000 * 3), 3000)
  sphere <- s / sqrt(rowSums(s^2))
  for (x in list(disc, sphere)) {
    f <- fiber_bundle_test(x)
    expect_false(any(f$decision$reject))
    expect_equal(median(f$points$dim_small), 2, tolerance = 0.15)
  }
})

test_that("fiber-bundle windows match a naive R computation", {
  set.seed(12)
  x <- matrix(rnorm(200 * 3), 200)
  f <- fiber_bundle_test(x, k_range = c(1, 60), window = 10, step = 10)
  D <- as.matrix(dist(x))
  i <- 17
  T <- sort(D[i, -i])[1:61]
  Y <- (1:60) * log(T[2:61] / T[1:60])
  dims <- sapply(0:5, function(b) 10 / sum(Y[b * 10 + 1:10]))
  expect_equal(f$profile$dim[f$profile$point == i], dims, tolerance = 1e-10)
  cuts <- seq(10, 50, by = 10)
  p <- sapply(cuts, function(c) pf(sum(Y[(c - 9):c]) / sum(Y[c + 1:10]), 20, 20, lower.tail = FALSE))
  expect_equal(f$points$p_fiber[i], min(1, length(cuts) * min(p)), tolerance = 1e-10)
  expect_equal(f$points$p_fiber_adj, p.adjust(f$points$p_fiber, "holm"))
  old <- ts_threads(1)
  on.exit(ts_threads(old))
  a <- fiber_bundle_test(x, k_range = c(1, 60), window = 10)
  ts_threads(2)
  expect_identical(a, fiber_bundle_test(x, k_range = c(1, 60), window = 10))
  expect_s3_class(autoplot(a), "ggplot")
})

test_that("embedding_singularities reports counts and indices per layer; bad input is classed", {
  set.seed(13)
  t <- runif(1500, -1, 1)
  es <- embedding_singularities(list(cusp = cbind(t^2, t^3), line = cbind(t, 2 * t)), k_range = c(1, 100), window = 20)
  expect_equal(as.character(es$layer), c("cusp", "line"))
  expect_gt(es$count[1], 0)
  expect_equal(es$count[2], 0)
  expect_equal(length(es$indices[[1]]), es$count[1])
  expect_error(fiber_bundle_test(matrix(rnorm(30), 15)), class = "tensorscope_error_too_few")
  expect_error(fiber_bundle_test(matrix(rnorm(3000), 1000), k_range = 5), class = "tensorscope_error_argument")
  expect_error(fiber_bundle_test(matrix(rnorm(3000), 1000), p_adjust = "nope"), class = "tensorscope_error_argument")
  expect_error(fiber_bundle_test(matrix(1, 500, 2)), class = "tensorscope_error_zero_variance")
  x <- matrix(rnorm(900), 300)
  expect_warning(fiber_bundle_test(rbind(x, x[1:2, ]), k_range = c(1, 100), window = 20),
                 class = "tensorscope_warning_duplicates")
})

# ---- separability and invariance -----------------------------------------------------

test_that("separability: separable categories score near 1, noise near chance", {
  set.seed(14)
  lab <- rep(c("a", "b", "c"), each = 40)
  sig <- model.matrix(~ lab - 1) * 4 + matrix(rnorm(120 * 3), 120)
  wide <- cbind(sig, matrix(rnorm(120 * 300), 120))          # p > n: the dual LDA path
  noise <- matrix(rnorm(120 * 5), 120)
  for (m in c("lda", "nearest_centroid")) {
    res <- separability(list(sig = sig, wide = wide, noise = noise), lab, method = m)
    expect_gt(res$value[1], 0.9)
    expect_gt(res$value[2], 0.8)
    expect_lt(res$value[3], 0.6)
    expect_equal(res$chance, rep(1 / 3, 3))
  }
  # LDA via the Woodbury identity (p > n) equals the direct p x p solve
  xtr <- wide[1:90, 1:100]
  ytr <- factor(lab[1:90])
  xte <- wide[91:120, 1:100]
  mu <- t(sapply(levels(ytr), function(l) colMeans(xtr[ytr == l, ])))
  xc <- xtr - mu[as.integer(ytr), ]
  a <- 0.3 * sum(xc^2) / 87 / 100
  sig_m <- (0.7 / 87) * crossprod(xc) + diag(a, 100)
  w <- solve(sig_m, t(mu))
  sc <- xte %*% w - matrix(0.5 * colSums(t(mu) * w), 30, 3, byrow = TRUE)
  expect_equal(as.character(tensorscope:::lda_predict(xtr, ytr, xte, 0.3)), levels(ytr)[max.col(sc)])
  expect_error(separability(sig, lab[-1]), class = "tensorscope_error_mismatch")
  expect_error(separability(sig, rep("a", 120)), class = "tensorscope_error_too_few")
  expect_error(separability(sig, replace(lab, 3, NA)), class = "tensorscope_error_non_finite")
  expect_error(separability(sig, lab, folds = 1), class = "tensorscope_error_argument")
})

test_that("separability and predictivity split the same data the same way for the same seed", {
  set.seed(3)
  lab <- sample(rep(c("a", "b", "c"), c(13, 11, 12)))
  x <- model.matrix(~ lab - 1) + matrix(rnorm(36 * 3), 36)
  # the folds predictivity(stratify = lab, folds = 4, seed = 7) uses
  spl <- tensorscope:::kfold_splits(36, 4, lab, 7)
  acc <- vapply(spl$test, function(te) {
    tr <- setdiff(seq_len(36), te)
    pred <- tensorscope:::centroid_predict(x[tr, ], factor(lab[tr]), x[te, , drop = FALSE])
    mean(as.character(pred) == lab[te])
  }, numeric(1))
  s <- separability(list(l = x), lab, method = "nearest_centroid", folds = 4, seed = 7)
  expect_equal(s$value, mean(acc))
  expect_equal(s$sd, sd(acc))
  # stratified: each category is spread over the folds within one stimulus
  counts <- sapply(spl$test, function(te) table(factor(lab[te], levels = c("a", "b", "c"))))
  expect_true(all(apply(counts, 1, function(r) max(r) - min(r)) <= 1))
  expect_identical(sort(unlist(spl$test)), 1:36)
  # another seed, other folds
  expect_false(identical(tensorscope:::kfold_splits(36, 4, lab, 8)$test, spl$test))
})

test_that("invariance is 1 for an isometry and lower for a distortion", {
  set.seed(15)
  x <- matrix(rnorm(50 * 6), 50)
  q <- qr.Q(qr(matrix(rnorm(36), 6)))
  res <- invariance(list(a = x, b = x), list(a = x %*% q + 3, b = x^3))
  expect_equal(res$value[res$layer == "a"], c(1, 1), tolerance = 1e-10)
  expect_true(all(res$value[res$layer == "b"] < 0.99))
  expect_error(invariance(list(a = x), list(b = x)), class = "tensorscope_error_mismatch")
  expect_error(invariance(x, x[-1, ]), class = "tensorscope_error_mismatch")
  expect_s3_class(autoplot(res), "ggplot")
})

test_that("geometry_profile binds per-layer metrics for plotting", {
  set.seed(16)
  z <- matrix(rnorm(150 * 5), 150)
  gp <- geometry_profile(list(a = z, b = z[, 1:2]), k = 5)
  expect_setequal(unique(gp$metric), c("effective_rank", "participation_ratio", "intrinsic_dim", "mean_ricci"))
  expect_equal(nrow(gp), 8)
  expect_s3_class(autoplot(gp), "ggplot")
  expect_error(geometry_profile(list(a = z), metrics = "nope"), class = "tensorscope_error_argument")
})
