# Stochastic shape metrics (Duong et al. 2023, netrep's GaussianStochasticMetric and
# EnergyStochasticMetric).

# ---- a line-by-line R port of netrep (netrep/metrics/stochastic.py, utils.py) ------------
# align(X, Y) = scipy's orthogonal_procrustes(X, Y)[0]: argmin_T ||X T - Y||_F.
nr_align <- function(X, Y) {
  s <- svd(crossprod(X, Y))
  s$u %*% t(s$v)
}
nr_sqrtm <- function(S) {  # eigh, then U diag(sqrt(v)) U^T
  e <- eigen(S, symmetric = TRUE)
  e$vectors %*% (sqrt(e$values) * t(e$vectors))
}
nr_sq_bures <- function(A, B) {
  ea <- eigen(A, symmetric = TRUE)
  eb <- eigen(B, symmetric = TRUE)
  sum(ea$values) + sum(eb$values) -
    2 * sum(svd((sqrt(ea$values) * t(ea$vectors)) %*% (eb$vectors %*% diag(sqrt(eb$values), length(eb$values))))$d)
}
# _fit_gaussian_alignment + score. `stack = "netrep"` stacks with alpha and 2 - alpha as
# netrep does; "sqrt" with their square roots (the objective that score() reports).
nr_gaussian <- function(mX, cX, mY, cY, alpha, niter = 1000, tol = 1e-8, stack = "netrep") {
  sX <- lapply(cX, nr_sqrtm)
  sY <- lapply(cY, nr_sqrtm)
  wa <- if (stack == "netrep") alpha else sqrt(alpha)
  wb <- if (stack == "netrep") 2 - alpha else sqrt(2 - alpha)
  T <- nr_align(mY, mX)
  loss <- numeric(0)
  for (i in seq_len(niter) - 1) {
    Qs <- Map(function(sx, sy) nr_align(t(T) %*% sy, sx), sX, sY)
    A <- rbind(wa * mX, do.call(rbind, lapply(sX, function(s) wb * s)))
    B <- rbind(wa * mY, do.call(rbind, Map(function(Q, sy) t(Q) %*% (wb * sy), Qs, sY)))
    T <- nr_align(B, A)
    loss <- c(loss, norm(A - B %*% T, "F"))
    if (i >= 2 && loss[length(loss) - 1] - loss[length(loss)] < tol) break
  }
  a <- rowSums((mX - mY %*% T)^2)
  b <- vapply(seq_along(cX), function(s) nr_sq_bures(cX[[s]], t(T) %*% cY[[s]] %*% T), numeric(1))
  mn <- mean(alpha * a + (2 - alpha) * b)
  list(distance = sign(mn) * sqrt(abs(mn)), T = T, iterations = length(loss))
}
# trial means and covariances (np.cov's divisor t - 1) of a stimuli x units x trials array
nr_moments <- function(x) {
  list(m = apply(x, c(1, 2), mean), c = lapply(seq_len(dim(x)[1]), function(s) stats::cov(t(x[s, , ]))))
}
nr_gaussian_trials <- function(x, y, alpha, ...) {
  a <- nr_moments(x)
  b <- nr_moments(y)
  nr_gaussian(a$m, a$c, b$m, b$c, alpha, ...)
}
# EnergyStochasticMetric.fit + score on arrays stimuli x units x trials (netrep's
# Size[images, repeats, neurons] transposed); trial pairs as itertools.product (the first
# trial varies slowest); allows different numbers of trials.
nr_energy <- function(x, y, niter = 100, tol = 1e-6) {
  n <- dim(x)[1]
  tx <- dim(x)[3]
  ty <- dim(y)[3]
  X <- do.call(rbind, lapply(seq_len(n), function(s) t(x[s, , rep(seq_len(tx), each = ty), drop = TRUE])))
  Y <- do.call(rbind, lapply(seq_len(n), function(s) t(y[s, , rep(seq_len(ty), times = tx), drop = TRUE])))
  w <- rep(1, nrow(X))
  loss <- mean(sqrt(rowSums((X - Y)^2)))
  for (i in seq_len(niter)) {
    Q <- nr_align(w * Y, w * X)
    resid <- sqrt(rowSums((X - Y %*% Q)^2))
    loss <- c(loss, mean(resid))
    w <- 1 / pmax(sqrt(resid), 1e-6)
    if (loss[length(loss) - 1] - loss[length(loss)] < tol) break
  }
  dxy <- dxx <- dyy <- 0
  within <- function(m) {
    cb <- utils::combn(nrow(m), 2)
    mean(sqrt(rowSums((m[cb[1, ], , drop = FALSE] - m[cb[2, ], , drop = FALSE])^2)))
  }
  for (s in seq_len(n)) {
    xs <- t(x[s, , ])
    zs <- t(y[s, , ]) %*% Q
    pr <- expand.grid(b = seq_len(ty), a = seq_len(tx))
    dxy <- dxy + mean(sqrt(rowSums((xs[pr$a, , drop = FALSE] - zs[pr$b, , drop = FALSE])^2)))
    dxx <- dxx + within(xs)
    dyy <- dyy + within(t(y[s, , ]))
  }
  list(distance = sqrt(max(0, dxy / n - 0.5 * (dxx / n + dyy / n))), Q = Q, iterations = length(loss) - 1)
}

# ---- data -------------------------------------------------------------------------------
noisy <- function(n = 12, p = 3, t = 8, sd = 0.4, seed = 1, signal = NULL) {
  set.seed(seed)
  if (is.null(signal)) signal <- matrix(rnorm(n * p), n)
  mix <- matrix(rnorm(p * p, sd = sd), p)  # correlated noise, a different shape per system
  noise <- array(rnorm(n * p * t), c(n, p, t))
  noise <- array(apply(noise, 3, function(m) m %*% mix), c(n, p, t))
  array(signal, c(n, p, t)) + noise + array(rnorm(n * p * t, sd = 0.05), c(n, p, t))
}
rotate_trials <- function(x, q) array(apply(x, 3, function(m) m %*% q), dim(x), dimnames = dimnames(x))
rand_rot <- function(p, seed = 9) {
  set.seed(seed)
  qr.Q(qr(matrix(rnorm(p * p), p)))
}
ssd <- function(...) suppressWarnings(stochastic_shape_distance(...))

# ---- known answers ------------------------------------------------------------------------
test_that("the Gaussian metric equals a port of netrep's GaussianStochasticMetric", {
  x <- noisy(seed = 1)
  y <- noisy(seed = 2, signal = apply(x, c(1, 2), mean) %*% matrix(rnorm(9), 3))
  # alpha = 1: netrep's own stacking; its fit and ours are the same algorithm
  want <- nr_gaussian_trials(x, y, 1)
  got <- stochastic_shape_distance(x, y, alpha = 1, centre = FALSE)
  expect_equal(as.numeric(got), want$distance, tolerance = 1e-10)
  expect_equal(attr(got, "rotation"), want$T, tolerance = 1e-8)
  expect_identical(attr(got, "iterations"), want$iterations)
  # other alpha: the port with square-root stacking weights (see ?stochastic_shape_distance)
  for (a in c(0, 0.5, 1.5, 2)) {
    want <- nr_gaussian_trials(x, y, a, stack = "sqrt")
    expect_equal(as.numeric(ssd(x, y, alpha = a, centre = FALSE)), want$distance, tolerance = 1e-10,
                 label = sprintf("alpha = %g", a))
    # netrep's stacking minimises another objective: its d is never below the optimum ours reaches here
    expect_gte(nr_gaussian_trials(x, y, a)$distance, want$distance - 1e-10)
  }
  # centring = netrep on centred data
  xc <- sweep(x, 2, apply(x, 2, mean))
  yc <- sweep(y, 2, apply(y, 2, mean))
  expect_equal(as.numeric(ssd(x + 5, y - 2, alpha = 0.5)), nr_gaussian_trials(xc, yc, 0.5, stack = "sqrt")$distance,
               tolerance = 1e-10)
})

test_that("the energy metric equals a port of netrep's EnergyStochasticMetric (also with unequal trials)", {
  x <- noisy(seed = 3, t = 6)
  y <- noisy(seed = 4, t = 6, sd = 1, signal = apply(x, c(1, 2), mean) %*% matrix(rnorm(9), 3))
  want <- nr_energy(x, y)
  expect_gt(want$distance, 0.1)
  got <- ssd(x, y, method = "energy", centre = FALSE)
  expect_equal(as.numeric(got), want$distance, tolerance = 1e-10)
  expect_equal(attr(got, "rotation"), want$Q, tolerance = 1e-8)
  expect_identical(attr(got, "iterations"), as.integer(want$iterations))
  y5 <- y[, , 1:4]
  expect_equal(as.numeric(ssd(x, y5, method = "energy", centre = FALSE)), nr_energy(x, y5)$distance, tolerance = 1e-10)
  expect_equal(as.numeric(ssd(x, y, method = "energy", centre = FALSE, tol = 1e-9, max_iter = 500)),
               nr_energy(x, y, niter = 500, tol = 1e-9)$distance, tolerance = 1e-10)
})

test_that("a rotated copy (the same noise) is at distance 0; other noise is not", {
  x <- noisy(n = 15, p = 4, seed = 5)
  q <- rand_rot(4)
  y <- rotate_trials(x, q) + 3  # and shifted: centring removes it
  for (m in c("gaussian", "energy")) {
    expect_lt(as.numeric(ssd(x, y, method = m)), 1e-6)
  }
  for (a in c(0, 0.5, 2)) expect_lt(as.numeric(ssd(x, y, alpha = a)), 1e-6)
  g <- stochastic_shape_distance(x, y)
  expect_equal(attr(g, "rotation"), t(q), tolerance = 1e-6)
  # same trial means, other noise: the deterministic metric sees nothing, these do
  z <- x + noisy(n = 15, p = 4, seed = 6, sd = 1.5, signal = matrix(0, 15, 4))
  z <- z - array(apply(z, c(1, 2), mean) - apply(x, c(1, 2), mean), dim(z))
  expect_equal(apply(z, c(1, 2), mean), apply(x, c(1, 2), mean))
  expect_lt(shape_distance(apply(x, c(1, 2), mean), apply(z, c(1, 2), mean)), 1e-7)
  expect_gt(as.numeric(ssd(x, z)), 0.3)
  expect_gt(as.numeric(ssd(x, z, method = "energy")), 0.1)
  expect_lt(as.numeric(ssd(x, z, alpha = 2)), 1e-6)
})

test_that("without noise the Gaussian metric is the deterministic shape metric of the means", {
  set.seed(7)
  mx <- matrix(rnorm(20 * 3), 20)
  my <- mx %*% matrix(rnorm(9), 3) + matrix(rnorm(60, sd = 0.5), 20)
  still <- function(m, t = 4) array(m, c(nrow(m), ncol(m), t))
  proc <- shape_distance(mx, my, alpha = 1, distance = "euclidean")
  expect_equal(as.numeric(ssd(still(mx), still(my))), proc / sqrt(20), tolerance = 1e-10)
  expect_equal(as.numeric(ssd(still(mx), still(my), alpha = 2)), sqrt(2 / 20) * proc, tolerance = 1e-10)
  expect_equal(as.numeric(ssd(still(mx), still(my), alpha = 0)), 0)
  # vanishing noise
  tiny <- function(m, seed) {
    set.seed(seed)
    still(m, 6) + array(rnorm(length(m) * 6, sd = 1e-7), c(dim(m), 6))
  }
  expect_equal(as.numeric(ssd(tiny(mx, 1), tiny(my, 2))), proc / sqrt(20), tolerance = 1e-5)
})

test_that("zero padding equals padding by hand, and trial ids match stimuli", {
  x <- noisy(n = 10, p = 4, seed = 8)
  y <- noisy(n = 10, p = 2, seed = 9)
  y_pad <- array(0, c(10, 4, 8))
  y_pad[, 1:2, ] <- y
  for (m in c("gaussian", "energy")) {
    expect_equal(as.numeric(ssd(x, y, method = m)), as.numeric(ssd(x, y_pad, method = m)), tolerance = 1e-12)
  }
  expect_identical(dim(attr(ssd(x, y), "rotation")), c(4L, 4L))
  # shuffling the stimuli of y together with their ids changes nothing
  ids <- paste0("s", 1:10)
  dimnames(x) <- list(ids, NULL, NULL)
  dimnames(y) <- list(ids, NULL, NULL)
  perm <- c(3, 1, 10, 2, 5, 4, 9, 8, 7, 6)
  for (m in c("gaussian", "energy")) {
    a <- ssd(x, y, method = m)
    expect_message(b <- ssd(x, y[perm, , ], method = m), class = "tensorscope_message_realigned")
    expect_identical(as.numeric(b), as.numeric(a))
  }
})

# ---- properties ---------------------------------------------------------------------------
test_that("symmetry and the triangle inequality hold on random triples", {
  for (seed in 1:4) {
    base <- matrix(stats::rnorm(14 * 3), 14)
    xs <- lapply(1:3, function(k) noisy(n = 14, p = 3, t = 7, sd = 0.2 * k, seed = 10 * seed + k,
                                        signal = base %*% matrix(stats::rnorm(9), 3)))
    for (m in c("gaussian", "energy")) {
      d <- function(i, j) as.numeric(ssd(xs[[i]], xs[[j]], method = m, tol = 1e-12, max_iter = 3000))
      dd <- outer(1:3, 1:3, Vectorize(d))
      expect_equal(dd, t(dd), tolerance = 1e-6, label = paste(m, "symmetry, seed", seed))
      for (tr in list(c(1, 2, 3), c(2, 1, 3), c(1, 3, 2))) {
        expect_lte(dd[tr[1], tr[3]], dd[tr[1], tr[2]] + dd[tr[2], tr[3]] + 1e-8)
      }
    }
  }
})

test_that("the fits are thread-independent, bit for bit", {
  x <- noisy(n = 40, p = 3, t = 6, seed = 11)
  y <- noisy(n = 40, p = 3, t = 5, seed = 12)
  for (m in c("gaussian", "energy")) {
    old <- ts_threads(1)
    one <- ssd(x, y, method = m)
    ts_threads(3)
    three <- ssd(x, y, method = m)
    ts_threads(old)
    expect_identical(three, one)
  }
})

test_that("ts_neural() results with single trials are accepted", {
  set.seed(13)
  long <- expand.grid(stimulus = paste0("img", 1:8), unit = paste0("n", 1:3), trial = 1:4, stringsAsFactors = FALSE)
  long$response <- rnorm(nrow(long))
  a <- ts_neural(long, trial = "trial")
  long$response <- long$response + rnorm(nrow(long), sd = 0.1)
  b <- ts_neural(long[sample(nrow(long)), ], trial = "trial")
  expect_message(d1 <- ssd(a, b), class = "tensorscope_message_realigned")
  expect_equal(as.numeric(suppressMessages(ssd(a$trials[[1]], b$trials[[1]]))), as.numeric(d1))
  long$area <- ifelse(long$unit == "n1", "V1", "IT")
  two <- ts_neural(long, trial = "trial", group = "area")
  expect_error(ssd(two, b), class = "tensorscope_error_argument", regexp = "trials\\$")
  expect_error(ssd(ts_reps(list(a = matrix(rnorm(24), 8))), b), class = "tensorscope_error_argument",
               regexp = "trial means only")
})

# ---- bad input ----------------------------------------------------------------------------
test_that("bad input gets classed errors naming the argument and the value", {
  x <- noisy(n = 10, p = 3, t = 5, seed = 14)
  y <- noisy(n = 10, p = 3, t = 5, seed = 15)
  expect_error(stochastic_shape_distance(x, y[1:9, , ]), class = "tensorscope_error_mismatch", regexp = "10.*9")
  named <- function(a, ids) {
    dimnames(a) <- list(ids, NULL, NULL)
    a
  }
  expect_error(stochastic_shape_distance(named(x, paste0("s", 1:10)), named(y, paste0("s", 2:11))),
               class = "tensorscope_error_mismatch", regexp = "s11")
  expect_error(stochastic_shape_distance(x, y[, , 1, drop = FALSE]), class = "tensorscope_error_too_few",
               regexp = "2 trials.*has 1")
  expect_error(stochastic_shape_distance(x[1, , , drop = FALSE], y[1, , , drop = FALSE]), class = "tensorscope_error_too_few")
  xna <- x
  xna[4, 2, 5] <- NA
  expect_error(stochastic_shape_distance(xna, y), class = "tensorscope_error_non_finite",
               regexp = "stimulus.*4.*unit 2, trial 5")
  expect_error(stochastic_shape_distance(x[, , 1], y), class = "tensorscope_error_type", regexp = "`x`")
  expect_error(stochastic_shape_distance(x, array("a", c(10, 3, 5))), class = "tensorscope_error_type", regexp = "`y`")
  expect_error(stochastic_shape_distance(x, y, alpha = 2.5), class = "tensorscope_error_argument", regexp = "alpha")
  expect_error(stochastic_shape_distance(x, y, method = "energy", alpha = 1), class = "tensorscope_error_argument",
               regexp = "alpha")
  expect_error(stochastic_shape_distance(x, y, method = "wasserstein"), class = "tensorscope_error_argument")
  expect_error(stochastic_shape_distance(x, y[, 1:2, ], zero_pad = FALSE), class = "tensorscope_error_mismatch",
               regexp = "3 and 2")
  expect_error(stochastic_shape_distance(x, y, max_iter = 0), class = "tensorscope_error_argument", regexp = "max_iter")
  expect_error(stochastic_shape_distance(x, y, tol = -1), class = "tensorscope_error_argument", regexp = "tol")
  expect_error(stochastic_shape_distance(x, y, centre = NA), class = "tensorscope_error_argument", regexp = "centre")
  expect_error(stochastic_shape_distance(array(0, c(10, 1, 2)), array(0, c(10, 6000, 2))),
               class = "tensorscope_error_memory", regexp = "GiB")
  # a fit stopped early says so
  expect_warning(d <- stochastic_shape_distance(x, y, max_iter = 2), class = "tensorscope_warning_not_converged")
  expect_false(attr(d, "converged"))
  expect_true(is.finite(d))
})
