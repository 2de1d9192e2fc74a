# Shape metrics (Williams et al. 2021, netrep conventions) and the CCA family.

# A line-by-line R port of netrep's LinearMetric (netrep/metrics/linear.py, utils.py
# `whiten` with preserve_variance = True, eigval_tol = 1e-7; zero padding as
# check_equal_shapes): the reference the C++ core must reproduce.
netrep_whiten <- function(X, alpha, tol = 1e-7) {
  if (alpha > 1 - tol) return(list(Xw = X, Z = diag(ncol(X))))
  e <- eigen(crossprod(X), symmetric = TRUE)
  lam <- pmax(e$values, tol)
  d <- alpha + (1 - alpha) * lam^(-1 / 2)
  new_var <- sum(alpha^2 * lam + 2 * alpha * (1 - alpha) * sqrt(lam) + (1 - alpha)^2)
  d <- d * sqrt(sum(lam) / new_var)
  Z <- e$vectors %*% (d * t(e$vectors))
  list(Xw = X %*% Z, Z = Z)
}
netrep_pad <- function(X, P) if (ncol(X) < P) cbind(X, matrix(0, nrow(X), P - ncol(X))) else X
netrep_fit <- function(X, Y, alpha, center = TRUE) {
  P <- max(ncol(X), ncol(Y))
  X <- netrep_pad(X, P)
  Y <- netrep_pad(Y, P)
  mx <- if (center) colMeans(X) else rep(0, P)
  my <- if (center) colMeans(Y) else rep(0, P)
  wx <- netrep_whiten(sweep(X, 2, mx), alpha)
  wy <- netrep_whiten(sweep(Y, 2, my), alpha)
  s <- svd(crossprod(wx$Xw, wy$Xw))
  list(mx = mx, my = my, Wx = wx$Z %*% s$u, Wy = wy$Z %*% s$v, P = P)
}
netrep_score <- function(fit, X, Y, method = "angular") {
  tx <- sweep(netrep_pad(X, fit$P), 2, fit$mx) %*% fit$Wx
  ty <- sweep(netrep_pad(Y, fit$P), 2, fit$my) %*% fit$Wy
  if (method == "angular") acos(max(-1, min(1, sum(tx * ty) / (norm(tx, "F") * norm(ty, "F")))))
  else norm(tx - ty, "F")
}

related_pair <- function(n = 60, p = 6, q = 4, seed = 1) {
  x <- rand_mat(n, p, seed)
  y <- x[, seq_len(min(p, q)), drop = FALSE] %*% matrix(stats::rnorm(min(p, q) * q), min(p, q)) +
    rand_mat(n, q, seed + 1)
  list(x = x, y = y)
}

test_that("shape_distance equals netrep's LinearMetric (alpha 0, 0.5, 1; angular and Euclidean; padded or not)", {
  for (dims in list(c(5, 5), c(6, 4))) {
    d <- related_pair(p = dims[1], q = dims[2])
    for (a in c(0, 0.5, 1)) for (m in c("angular", "euclidean")) {
      want <- netrep_score(netrep_fit(d$x, d$y, a), d$x, d$y, m)
      expect_equal(shape_distance(d$x, d$y, alpha = a, distance = m), want, tolerance = 1e-10,
                   label = sprintf("p=%d q=%d alpha=%g %s", dims[1], dims[2], a, m))
    }
  }
  # without centring (netrep's center_columns = False)
  d <- related_pair()
  d$x <- d$x + 3
  expect_equal(shape_distance(d$x, d$y, alpha = 0.5, centre = FALSE),
               netrep_score(netrep_fit(d$x, d$y, 0.5, center = FALSE), d$x, d$y), tolerance = 1e-10)
  expect_false(isTRUE(all.equal(shape_distance(d$x, d$y, alpha = 0.5, centre = FALSE),
                                shape_distance(d$x, d$y, alpha = 0.5))))
})

test_that("cross-validated shape distance equals netrep fitted on training and scored on test stimuli", {
  d <- related_pair(n = 70, p = 6, q = 4, seed = 3)
  te <- c(2, 9, 15, 30:44, 61)
  tr <- setdiff(seq_len(70), te)
  for (a in c(0, 0.5, 1)) for (m in c("angular", "euclidean")) {
    want <- netrep_score(netrep_fit(d$x[tr, ], d$y[tr, ], a), d$x[te, ], d$y[te, ], m)
    expect_equal(shape_distance(d$x, d$y, alpha = a, distance = m, test = te), want, tolerance = 1e-10,
                 label = sprintf("alpha=%g %s", a, m))
  }
  # the same split given as ids or as a logical vector
  rownames(d$x) <- rownames(d$y) <- sprintf("s%02d", 1:70)
  expect_equal(shape_distance(d$x, d$y, alpha = 0.5, test = rownames(d$x)[te]),
               shape_distance(d$x, d$y, alpha = 0.5, test = te))
  expect_equal(shape_distance(d$x, d$y, alpha = 0.5, test = seq_len(70) %in% te),
               shape_distance(d$x, d$y, alpha = 0.5, test = te))
})

test_that("an in-sample CCA alignment overfits when units approach stimuli; the held-out one does not", {
  x <- rand_mat(40, 30, 5)
  y <- rand_mat(40, 30, 6)
  expect_lt(shape_distance(x, y, alpha = 0.01), 0.6)  # unrelated, yet close in-sample
  expect_gt(shape_distance(x, y, alpha = 0.01, test = 31:40), 1.3)  # near pi/2 held out
})

test_that("Procrustes ignores rotations (and the angle scaling); CCA ignores any invertible linear map", {
  x <- rand_mat(50, 7, 7)
  q <- rand_orth(7, 8)
  expect_lt(shape_distance(x, x %*% q), 1e-6)
  expect_lt(shape_distance(x, 3 * x %*% q + 2), 1e-6)
  expect_lt(shape_distance(x, x %*% q, distance = "euclidean"), 1e-6)
  a <- matrix(stats::rnorm(49), 7)
  expect_gt(shape_distance(x, x %*% a), 0.1)
  expect_lt(shape_distance(x, x %*% a, alpha = 0), 1e-6)
  # a copy with extra zero units is the same shape after padding
  expect_lt(shape_distance(x, cbind(x, 0, 0)), 1e-6)
})

test_that("shape distances are metrics: symmetric, zero on the diagonal, triangle inequality", {
  set.seed(11)
  for (trial in 1:5) {
    z <- rand_mat(40, 5, 100 + trial)
    xs <- list(a = z + rand_mat(40, 5, 200 + trial), b = tanh(z) %*% matrix(stats::rnorm(25), 5),
               c = rand_mat(40, 5, 300 + trial))
    for (a in c(0, 0.5, 1)) for (m in c("angular", "euclidean")) {
      d <- as.matrix(shape_layers(xs, alpha = a, distance = m))
      expect_equal(d, t(d), tolerance = 1e-12)
      expect_equal(unname(diag(d)), rep(0, 3))
      for (i in 1:3) for (j in 1:3) for (k in 1:3) expect_lte(d[i, j], d[i, k] + d[k, j] + 1e-10)
    }
  }
})

test_that("alpha = 0 is the angular form of the mean canonical correlation", {
  d <- related_pair(p = 5, q = 5, seed = 9)
  expect_equal(shape_distance(d$x, d$y, alpha = 0), acos(as.numeric(cca_similarity(d$x, d$y))),
               tolerance = 1e-10)
  expect_equal(as.numeric(cca_similarity(d$x, d$y)), mean(stats::cancor(d$x, d$y)$cor), tolerance = 1e-10)
})

test_that("shape_layers equals shape_distance pair by pair, within a model and between two", {
  z <- rand_mat(45, 4, 12)
  xs <- list(l1 = z, l2 = cbind(z^2, z[, 1]), l3 = rand_mat(45, 3, 13))
  ys <- list(m1 = tanh(z), m2 = rand_mat(45, 6, 14))
  for (a in c(0.5, 1)) {
    res <- shape_layers(xs, ys, alpha = a, distance = "euclidean")
    expect_s3_class(res, "ts_shape")
    expect_equal(levels(res$layer_x), names(xs))
    expect_equal(levels(res$layer_y), names(ys))
    m <- as.matrix(res)
    for (i in names(xs)) for (j in names(ys)) {
      expect_equal(m[i, j], shape_distance(xs[[i]], ys[[j]], alpha = a, distance = "euclidean"), tolerance = 1e-12)
    }
    cv <- as.matrix(shape_layers(xs, ys, alpha = a, test = 1:10))
    expect_equal(cv["l2", "m1"], shape_distance(xs$l2, ys$m1, alpha = a, test = 1:10), tolerance = 1e-12)
  }
  w <- as.matrix(shape_layers(xs, alpha = 0.5))
  expect_equal(w["l1", "l3"], shape_distance(xs$l1, xs$l3, alpha = 0.5), tolerance = 1e-12)
  expect_identical(attr(shape_layers(xs, test = 1:10), "settings")$n_test, 10L)
})

test_that("stimuli are matched by id: shuffling rows with their ids changes nothing", {
  d <- related_pair(n = 50, seed = 15)
  rownames(d$x) <- rownames(d$y) <- paste0("img", 1:50)
  o <- sample(50)
  expect_equal(shape_distance(d$x, d$y[o, ], alpha = 0.5), shape_distance(d$x, d$y, alpha = 0.5), tolerance = 1e-12)
  expect_equal(as.numeric(cca_similarity(d$x, d$y[o, ], method = "pwcca")),
               as.numeric(cca_similarity(d$x, d$y, method = "pwcca")), tolerance = 1e-12)
  a <- ts_reps(list(x = d$x))
  b <- ts_reps(list(y = d$y[o, ]))
  expect_equal(as.matrix(shape_layers(a, b))[1, 1], shape_distance(d$x, d$y), tolerance = 1e-12)
  # held-out ids follow the stimuli, not the rows
  expect_equal(shape_distance(d$x, d$y[o, ], test = paste0("img", 1:10)),
               shape_distance(d$x, d$y, test = 1:10), tolerance = 1e-12)
})

test_that("one thread and several give the same shape distances", {
  xs <- list(a = rand_mat(60, 8, 21), b = rand_mat(60, 5, 22), c = rand_mat(60, 8, 23))
  old <- ts_threads(1)
  on.exit(ts_threads(old))
  one <- as.matrix(shape_layers(xs, alpha = 0.5))
  ts_threads(2)
  expect_identical(as.matrix(shape_layers(xs, alpha = 0.5)), one)
})

test_that("shape metrics reject bad input with classed errors", {
  x <- rand_mat(30, 4, 31)
  y <- rand_mat(30, 3, 32)
  expect_error(shape_distance(x, y, alpha = 1.5), class = "tensorscope_error_argument")
  expect_error(shape_distance(x, y, alpha = NA), class = "tensorscope_error_argument")
  expect_error(shape_distance(x, y, distance = "cosine"), class = "tensorscope_error_argument")
  expect_error(shape_distance(x, y[-1, ]), class = "tensorscope_error_mismatch")
  expect_error(shape_distance(x, y, zero_pad = FALSE), "same number of units", class = "tensorscope_error_mismatch")
  x_na <- x
  x_na[3, 2] <- NA
  expect_error(shape_distance(x_na, y), class = "tensorscope_error_non_finite")
  expect_error(shape_distance(matrix(1, 30, 2), y), class = "tensorscope_error_zero_variance")
  expect_error(shape_distance(rand_mat(10, 9, 33), rand_mat(10, 3, 34), alpha = 0), "9 units for 10",
               class = "tensorscope_error_too_few")
  expect_error(shape_distance(x, y, test = 1), class = "tensorscope_error_too_few")
  expect_error(shape_distance(x, y, test = 0:3), class = "tensorscope_error_argument")
  expect_error(shape_distance(x, y, test = "nope"), class = "tensorscope_error_mismatch")
  rownames(x) <- paste0("a", 1:30)
  rownames(y) <- paste0("b", 1:30)
  expect_error(shape_distance(x, y), "not over the same stimuli", class = "tensorscope_error_mismatch")
  expect_error(shape_layers(list(a = x), list(b = rand_mat(29, 3))), class = "tensorscope_error_mismatch")
})

test_that("CCA similarities equal brute-force definitions (stats::cancor, repsim's SVCCA, Morcos' PWCCA)", {
  d <- related_pair(n = 80, p = 7, q = 5, seed = 41)
  cc <- stats::cancor(d$x, d$y)
  expect_equal(as.numeric(cca_similarity(d$x, d$y)), mean(cc$cor), tolerance = 1e-10)
  expect_equal(attr(cca_similarity(d$x, d$y), "rho"), cc$cor, tolerance = 1e-10)
  # SVCCA as repsim's SVCCA_extractQ: truncate the centred SVD at the variance share, then CCA
  svcca_bf <- function(x, y, keep) {
    q <- lapply(list(x, y), function(m) {
      s <- svd(scale(m, scale = FALSE))
      k <- max(1, min(which(cumsum(s$d^2) / sum(s$d^2) >= keep)))
      s$u[, 1:k, drop = FALSE]
    })
    sum(svd(crossprod(q[[1]], q[[2]]))$d) / min(ncol(q[[1]]), ncol(q[[2]]))
  }
  for (keep in c(0.5, 0.9, 0.99)) {
    expect_equal(as.numeric(cca_similarity(d$x, d$y, method = "svcca", keep = keep)), svcca_bf(d$x, d$y, keep),
                 tolerance = 1e-10)
  }
  # PWCCA: canonical variates of the side with fewer units, weighted by |<h_i, x_j>|
  pwcca_bf <- function(x, y) {
    if (ncol(x) > ncol(y)) { t <- x; x <- y; y <- t; flip <- TRUE }
    xc <- scale(x, scale = FALSE)
    cc <- stats::cancor(x, y)
    h <- xc %*% cc$xcoef[, seq_along(cc$cor)]
    h <- sweep(h, 2, sqrt(colSums(h^2)), "/")
    w <- rowSums(abs(crossprod(h, xc)))
    sum(w * cc$cor) / sum(w)
  }
  expect_equal(as.numeric(cca_similarity(d$x, d$y, method = "pwcca")), pwcca_bf(d$x, d$y), tolerance = 1e-10)
  expect_equal(as.numeric(cca_similarity(d$y, d$x, method = "pwcca")), pwcca_bf(d$y, d$x), tolerance = 1e-10)
})

test_that("CCA of linearly related data is 1, and the similarities are invariant to invertible maps", {
  x <- rand_mat(60, 5, 51)
  a <- matrix(stats::rnorm(25), 5)
  for (m in c("mean", "svcca", "pwcca")) {
    expect_equal(as.numeric(cca_similarity(x, x %*% a + 4, method = m)), 1, tolerance = 1e-10)
  }
  y <- rand_mat(60, 4, 52)
  expect_equal(as.numeric(cca_similarity(x %*% a, y)), as.numeric(cca_similarity(x, y)), tolerance = 1e-10)
  expect_lt(as.numeric(cca_similarity(x, y)), 0.5)
})

test_that("CCA rejects bad input with classed errors", {
  x <- rand_mat(20, 4, 61)
  expect_error(cca_similarity(x, rand_mat(19, 4)), class = "tensorscope_error_mismatch")
  expect_error(cca_similarity(x, rand_mat(20, 19)), "19", class = "tensorscope_error_too_few")
  expect_error(cca_similarity(x, x, method = "svd"), class = "tensorscope_error_argument")
  expect_error(cca_similarity(x, x, method = "svcca", keep = 0), class = "tensorscope_error_argument")
  expect_error(cca_similarity(x, matrix(2, 20, 3)), class = "tensorscope_error_zero_variance")
})

test_that("autoplot draws the layer x layer heatmap", {
  res <- shape_layers(list(a = rand_mat(30, 3, 71), b = rand_mat(30, 4, 72)), test = 1:10)
  p <- autoplot(res)
  expect_s3_class(p, "ggplot")
  expect_match(p$labels$title, "Procrustes")
})

perms <- function(n) {
  if (n == 1) return(matrix(1L, 1, 1))
  p <- perms(n - 1)
  do.call(rbind, lapply(seq_len(n), function(i) cbind(i, ifelse(p >= i, p + 1L, p))))
}

test_that("soft matching equals brute force over all assignments (equal and unequal unit counts)", {
  sqd <- function(x, y) outer(colSums(x^2), colSums(y^2), "+") - 2 * crossprod(x, y)
  for (case in list(c(5, 5), c(2, 3), c(2, 4), c(3, 2), c(4, 2))) {
    x <- scale(rand_mat(12, case[1], 81 + case[1]), scale = FALSE)
    y <- scale(rand_mat(12, case[2], 91 + case[2]), scale = FALSE)
    # expand units into copies with integer masses Ny/g and Nx/g: the transport optimum is
    # the best assignment of copies
    g <- (function(a, b) if (b == 0) a else sys.function()(b, a %% b))(case[1], case[2])
    ix <- rep(seq_len(case[1]), each = case[2] / g)
    iy <- rep(seq_len(case[2]), each = case[1] / g)
    C <- sqd(x, y)[ix, iy]
    P <- perms(length(ix))
    best <- min(apply(P, 1, function(s) sum(C[cbind(seq_along(ix), s)]))) / length(ix)
    d <- soft_matching_distance(x, y)
    expect_equal(as.numeric(d)^2, best, tolerance = 1e-10, label = paste(case, collapse = "x"))
    plan <- attr(d, "plan")
    expect_equal(rowSums(plan), rep(1 / case[1], case[1]), tolerance = 1e-12)
    expect_equal(colSums(plan), rep(1 / case[2], case[2]), tolerance = 1e-12)
    expect_equal(sum(plan * sqd(x, y)), as.numeric(d)^2, tolerance = 1e-10)
  }
})

test_that("soft matching: permutation-invariant, symmetric, not rotation-invariant, a metric", {
  x <- rand_mat(30, 6, 101)
  expect_lt(as.numeric(soft_matching_distance(x, x[, c(3, 1, 6, 2, 5, 4)])), 1e-7)
  expect_gt(as.numeric(soft_matching_distance(x, x %*% rand_orth(6, 102))), 0.1)
  y <- rand_mat(30, 4, 103)
  z <- rand_mat(30, 5, 104)
  dxy <- as.numeric(soft_matching_distance(x, y))
  expect_equal(as.numeric(soft_matching_distance(y, x)), dxy, tolerance = 1e-10)
  expect_equal(as.numeric(soft_matching_distance(x[, 6:1], y[, c(2, 4, 1, 3)])), dxy, tolerance = 1e-10)
  expect_lte(dxy, as.numeric(soft_matching_distance(x, z)) + as.numeric(soft_matching_distance(z, y)) + 1e-10)
  # a larger problem stays exact against the equal-count assignment found by brute force on
  # a block structure: y = x's units each duplicated -> distance 0
  big <- rand_mat(40, 60, 105)
  expect_lt(as.numeric(soft_matching_distance(big, cbind(big, big)[, sample(120)])), 1e-6)
  expect_error(soft_matching_distance(x, y[-1, ]), class = "tensorscope_error_mismatch")
  expect_error(soft_matching_distance(x, y, centre = NA), class = "tensorscope_error_argument")
})

test_that("a held-out set without variance around the training mean is an error, not NaN", {
  set.seed(111)
  a <- matrix(sample(-5:5, 30, replace = TRUE), 10)
  x <- rbind(a, -a, matrix(0, 5, 3))  # training mean exactly 0 = every held-out pattern
  expect_error(shape_distance(x, rand_mat(25, 3, 112), test = 21:25), class = "tensorscope_error_zero_variance")
})

test_that("the analyzer's shape_distance equals shape_layers() on the activations (exact on reduced layers)", {
  sim <- simulate_model_and_brain(n_stimuli = 40, n_subjects = 1, seed = 3)
  for (alpha in c(1, 0.5)) {
    res <- analyze_models(list(sim = sim$reps), metrics = list(shape_distance = list(alpha = alpha)))
    got <- res$get("shape_distance")
    ref <- shape_layers(sim$reps, alpha = alpha)
    key <- paste(got$layer, got$layer_y)
    expect_equal(got$value[match(paste(ref$layer_x, ref$layer_y), key)], ref$distance, tolerance = 1e-8)
    expect_true(is.factor(got$layer))
  }
})

# ---- all-pairs forms of CCA and soft matching --------------------------------------------
pair_layers <- function(n = 50, seed = 120) {
  set.seed(seed)
  z <- matrix(rnorm(n * 4), n)
  list(a = z %*% matrix(rnorm(20), 4), b = tanh(z) + matrix(rnorm(n * 4, sd = 0.3), n),
       c = cbind(z[, 1:2], rnorm(n)), d = matrix(rnorm(n * 6), n))
}

test_that("cca_layers equals cca_similarity pair by pair (every method), within a model and between two", {
  L <- pair_layers()
  for (m in c("mean", "svcca", "pwcca")) {
    res <- cca_layers(L, method = m, keep = 0.9)
    mat <- as.matrix(res)
    for (i in names(L)) for (j in names(L)) {
      want <- if (i == j) 1 else as.numeric(cca_similarity(L[[i]], L[[j]], method = m, keep = 0.9))
      expect_equal(mat[i, j], want, tolerance = 1e-12, label = sprintf("%s %s-%s", m, i, j))
      expect_identical(res$dims_x[res$layer_x == i & res$layer_y == j],
                       unname(attr(cca_similarity(L[[i]], L[[j]], method = m, keep = 0.9), "dims")["x"]))
    }
    expect_identical(levels(res$layer_x), names(L))
    if (m != "pwcca") expect_equal(mat, t(mat), tolerance = 1e-14)
  }
  # PWCCA weighs by the units of x when both sides have as many: not symmetric then
  same_width <- as.matrix(cca_layers(list(u = L$a, v = L$a^2 + L$b[, c(1:4, 1)]), method = "pwcca"))
  expect_gt(abs(same_width["u", "v"] - same_width["v", "u"]), 1e-3)
  # between two sets (a neural matrix), with the rows of the second shuffled with their ids
  ids <- paste0("img", 1:50)
  reps <- ts_reps(L, stimuli = ids)
  neural <- L$b[, 1:3] + matrix(rnorm(150, sd = 0.5), 50)
  rownames(neural) <- ids
  perm <- sample(50)
  res <- suppressMessages(cca_layers(reps, neural[perm, ], method = "pwcca"))
  expect_identical(levels(res$layer_y), "neural")
  expect_equal(res$similarity, vapply(L, function(l) as.numeric(cca_similarity(l, neural, method = "pwcca")), 1),
               tolerance = 1e-12, ignore_attr = TRUE)
})

test_that("cca_layers: NA with a warning for wide or constant layers, an error when nothing is left", {
  L <- pair_layers(n = 20)
  L$wide <- matrix(rnorm(20 * 19), 20)
  L$flat <- matrix(1, 20, 3)
  expect_warning(res <- cca_layers(L), class = "tensorscope_warning_unusable_layer", regexp = "wide")
  m <- as.matrix(res)
  expect_true(all(is.na(m[c("wide", "flat"), ])) && all(is.na(m[, c("wide", "flat")])))
  expect_false(anyNA(m[1:4, 1:4]))
  expect_equal(m[1:4, 1:4], as.matrix(cca_layers(L[1:4])))
  expect_true(is.na(res$dims_x[res$layer_x == "flat"][1]))
  # SVCCA's truncation makes the wide layer usable
  expect_false(anyNA(as.matrix(suppressWarnings(cca_layers(L, method = "svcca", keep = 0.5)))[1:5, 1:5]))
  expect_error(cca_layers(list(w = matrix(rnorm(20 * 19), 20), v = matrix(rnorm(20 * 25), 20))), class = "tensorscope_error_too_few")
  expect_error(cca_layers(list(f = matrix(0, 20, 2))), class = "tensorscope_error_zero_variance")
  expect_error(cca_layers(L[1:2], method = "kernel"), class = "tensorscope_error_argument")
  expect_error(cca_layers(L[1:2], list(n = matrix(rnorm(30), 15))), class = "tensorscope_error_mismatch")
})

test_that("soft_matching_layers equals soft_matching_distance pair by pair", {
  L <- pair_layers(n = 30)
  L$perm <- L$a[, 5:1]
  res <- soft_matching_layers(L)
  m <- as.matrix(res)
  for (i in names(L)) for (j in names(L)) {
    want <- if (i == j) 0 else as.numeric(soft_matching_distance(L[[i]], L[[j]]))
    expect_equal(m[i, j], want, tolerance = 1e-12, label = paste(i, j))
  }
  expect_equal(m, t(m))
  expect_lt(m["a", "perm"], 1e-6)
  between <- as.matrix(soft_matching_layers(L[1:2], L[3:4], centre = FALSE))
  expect_identical(dimnames(between), list(c("a", "b"), c("c", "d")))
  expect_equal(between["b", "c"], as.numeric(soft_matching_distance(L$b, L$c, centre = FALSE)), tolerance = 1e-12)
  expect_error(soft_matching_layers(L, centre = "yes"), class = "tensorscope_error_argument")
})

test_that("the layer-pair forms are thread-independent and plot as heatmaps", {
  L <- pair_layers(n = 40)
  for (f in list(function() cca_layers(L, method = "pwcca"), function() soft_matching_layers(L))) {
    old <- ts_threads(1)
    one <- f()
    ts_threads(3)
    three <- f()
    ts_threads(old)
    expect_identical(three, one)
  }
  p <- autoplot(suppressWarnings(cca_layers(c(L, list(flat = matrix(0, 40, 2))), method = "svcca")))
  expect_s3_class(p, "ggplot")
  expect_match(p$labels$title, "SVCCA")
  expect_match(autoplot(soft_matching_layers(L))$labels$title, "Soft-matching")
})

test_that("the analyzer's cca_similarity equals cca_layers() on the activations (exact on reduced layers)", {
  sim <- simulate_model_and_brain(n_stimuli = 100, n_subjects = 1, seed = 3)
  for (m in c("svcca", "mean")) {
    res <- suppressWarnings(analyze_models(list(sim = sim$reps), metrics = list(cca_similarity = list(method = m, keep = 0.9))))
    got <- res$get("cca_similarity")
    ref <- suppressWarnings(cca_layers(sim$reps, method = m, keep = 0.9))
    key <- paste(got$layer, got$layer_y)
    expect_equal(got$value[match(paste(ref$layer_x, ref$layer_y), key)], ref$similarity, tolerance = 1e-8)
    expect_true(is.factor(got$layer))
  }
  res <- analyze_models(list(sim = sim$reps), metrics = list(cca_similarity = list(method = "pwcca")))
  rec <- res$records[res$records$metric == "cca_similarity", ]
  expect_identical(unique(rec$status), "error")
  expect_match(rec$reason[1], "PWCCA")
})

test_that("compare_to_neural adds shape, CCA and soft-matching columns, stimuli matched by id", {
  sim <- simulate_model_and_brain(n_stimuli = 60, n_layers = 3, width = 12, source_layer = 2, n_subjects = 2, n_neurons = 10, seed = 5)
  res <- analyze_models(list(sim = sim$reps), metrics = "effective_rank", keep_activations = TRUE)
  shuffled <- lapply(sim$neural, function(m) m[sample(60), ])
  cmp <- suppressMessages(compare_to_neural(res, list(IT = shuffled), n_boot = 0, n_perm = 0, predictivity = FALSE,
                                            metrics = list(shape_distance = list(alpha = 0.5), cca_similarity = list(),
                                                           soft_matching_distance = list())))
  for (l in names(sim$reps$layers)) {
    row <- cmp[cmp$layer == l, ]
    x <- sim$reps$layers[[l]]
    per <- function(f) mean(vapply(sim$neural, function(m) as.numeric(f(x, unname(m))), 0))
    expect_equal(row$shape_distance, per(function(a, b) shape_distance(a, b, alpha = 0.5)), tolerance = 1e-8)
    expect_equal(row$cca_similarity, per(function(a, b) cca_similarity(a, b, method = "svcca")), tolerance = 1e-8)
    expect_equal(row$soft_matching_distance, per(soft_matching_distance), tolerance = 1e-8)
  }
  # soft matching needs the activations; unknown metrics and arguments are errors
  lean <- analyze_models(list(sim = sim$reps), metrics = "effective_rank")
  expect_error(compare_to_neural(lean, list(IT = sim$neural), metrics = "soft_matching_distance"),
               class = "tensorscope_error_argument", regexp = "keep_activations")
  expect_error(compare_to_neural(lean, list(IT = sim$neural), metrics = "procrustes"), class = "tensorscope_error_argument")
  expect_error(compare_to_neural(lean, list(IT = sim$neural), metrics = list(shape_distance = list(beta = 1))),
               class = "tensorscope_error_argument", regexp = "beta")
  # RDM-only data: NA
  rd <- as_rdm(lapply(sim$neural, rdm), names = names(sim$neural))
  cmp2 <- compare_to_neural(lean, list(IT = rd), n_boot = 0, n_perm = 0, metrics = "cca_similarity")
  expect_true(all(is.na(cmp2$cca_similarity)))
})

# ---- the LibTorch dense path ---------------------------------------------------------------
test_that("backend = 'torch' shape distances and CCA equal the Eigen core to 1e-10", {
  skip_if_not(ts_torch_available())
  set.seed(130)
  z <- matrix(rnorm(80 * 5), 80)
  L <- list(a = z %*% matrix(rnorm(30), 5), b = tanh(z), c = matrix(rnorm(80 * 12), 80), wide = matrix(rnorm(80 * 100), 80))
  for (a in c(1, 0.5, 0)) for (d in c("angular", "euclidean")) {
    use <- if (a == 0) L[1:3] else L  # alpha = 0 refuses the wide layer
    e <- shape_layers(use, alpha = a, distance = d, backend = "eigen")
    t <- shape_layers(use, alpha = a, distance = d, backend = "torch")
    expect_equal(t$distance, e$distance, tolerance = 1e-10, label = sprintf("alpha %g %s", a, d))
    expect_equal(shape_distance(L$a, L$c, alpha = a, distance = d, backend = "torch"),
                 shape_distance(L$a, L$c, alpha = a, distance = d, backend = "eigen"), tolerance = 1e-10)
  }
  expect_equal(shape_layers(L, list(n = L$b[, 1:3]), backend = "torch")$distance,
               shape_layers(L, list(n = L$b[, 1:3]), backend = "eigen")$distance, tolerance = 1e-10)
  q <- qr.Q(qr(matrix(rnorm(144), 12)))
  expect_lt(shape_distance(L$c, L$c %*% q, backend = "torch"), 1e-7)  # a known answer, not only agreement
  for (m in c("mean", "svcca", "pwcca")) {
    e <- suppressWarnings(cca_layers(L, method = m, keep = 0.9, backend = "eigen"))
    t <- suppressWarnings(cca_layers(L, method = m, keep = 0.9, backend = "torch"))
    expect_equal(t$similarity, e$similarity, tolerance = 1e-10, label = m)
    expect_identical(t$dims_x, e$dims_x)
  }
  expect_error(shape_layers(L, test = 1:20, backend = "torch"), class = "tensorscope_error_argument", regexp = "cross-validation")
})

test_that("backend = 'torch' without LibTorch says how to enable it", {
  skip_if(ts_torch_available())
  x <- rand_mat(20, 3, 140)
  expect_error(shape_layers(list(a = x, b = x^2), backend = "torch"), class = "tensorscope_error_torch_unavailable")
  expect_error(cca_layers(list(a = x, b = x^2), backend = "torch"), class = "tensorscope_error_torch_unavailable")
})
