upper_dist_order <- function(m) as.vector(as.dist(m))

test_that("RDM methods equal their definitions", {
  x <- rand_mat(7, 12, 1)
  rownames(x) <- letters[1:7]
  p <- ncol(x)
  expect_equal(as.matrix(rdm(x, "correlation")), 1 - cor(t(x)), tolerance = 1e-12)
  expect_equal(as.matrix(rdm(x, "euclidean")), as.matrix(dist(x)), tolerance = 1e-12)
  expect_equal(as.matrix(rdm(x, "sqeuclidean")), as.matrix(dist(x))^2 / p, tolerance = 1e-12)
  nx <- x / sqrt(rowSums(x^2))
  expect_equal(as.matrix(rdm(x, "cosine")), 1 - tcrossprod(nx), tolerance = 1e-12)
  expect_equal(as.matrix(rdm(x, "mahalanobis")), as.matrix(rdm(x, "sqeuclidean")), tolerance = 1e-12)
  S <- crossprod(rand_mat(40, p, 2)) / 40
  Si <- solve(S)
  bf <- outer(1:7, 1:7, Vectorize(function(i, j) drop(t(x[i, ] - x[j, ]) %*% Si %*% (x[i, ] - x[j, ])) / p))
  expect_equal(unname(as.matrix(rdm(x, "mahalanobis", noise = S))), bf, tolerance = 1e-10)
  r <- rdm(x)
  expect_s3_class(r, "ts_rdm")
  expect_equal(r$conditions, letters[1:7])
  expect_equal(ncol(r$dissimilarities), 21)
  expect_equal(r$dissimilarities[1, ], upper_dist_order(1 - cor(t(x))), tolerance = 1e-12)
})

test_that("RDMs of many conditions (Gram blocks of 256, a partial last block) land in their layer's row", {
  n <- 531   # 3 blocks: 256 + 256 + 19
  a <- rand_mat(n, 9, 3)
  b <- rand_mat(n, 30, 4)^2
  c <- rand_mat(n, 5, 5) + 100   # a large offset: the centring keeps the distances exact
  S <- crossprod(rand_mat(60, 9, 6)) / 60
  W <- solve(S)
  maha <- function(x) {
    d <- outer(seq_len(n), seq_len(n), Vectorize(function(i, j) drop(t(x[i, ] - x[j, ]) %*% W %*% (x[i, ] - x[j, ]))))
    as.vector(as.dist(d)) / ncol(x)
  }
  reps <- ts_reps(list(a = a, b = b, c = c))
  defs <- list(
    correlation = function(x) upper_dist_order(1 - cor(t(x))),
    cosine = function(x) upper_dist_order(1 - tcrossprod(x / sqrt(rowSums(x^2)))),
    euclidean = function(x) as.vector(dist(x)),
    sqeuclidean = function(x) as.vector(dist(x))^2 / ncol(x)
  )
  for (m in names(defs)) {
    r <- rdm(reps, m)
    expect_equal(dim(r$dissimilarities), c(3L, choose(n, 2)))
    for (i in 1:3) {
      # the offset layer's cosine distances are ~1e-4 (1 - cos near 1): compared absolutely
      if (m == "cosine" && i == 3) {
        expect_lt(max(abs(r$dissimilarities[i, ] - defs[[m]](reps$layers[[i]]))), 1e-14)
      } else {
        expect_equal(r$dissimilarities[i, ], defs[[m]](reps$layers[[i]]), tolerance = 1e-12, label = m)
      }
    }
    expect_equal(rdm(b, m)$dissimilarities[1, ], r$dissimilarities[2, ], tolerance = 1e-15)
  }
  expect_equal(rdm(a, "mahalanobis", noise = S)$dissimilarities[1, ], maha(a), tolerance = 1e-10)
  # a layer with a zero-variance pattern: an NA row and a warning, the others intact
  z <- b
  z[17, ] <- 1
  expect_warning(r <- rdm(ts_reps(list(a = a, z = z)), "correlation"), class = "tensorscope_warning_unusable_layer")
  expect_true(all(is.na(r$dissimilarities[2, ])))
  expect_equal(r$dissimilarities[1, ], defs$correlation(a), tolerance = 1e-12)
})

test_that("conditions are averaged before the distance", {
  x <- rand_mat(12, 5, 3)
  cond <- rep(c("u", "v", "w"), 4)
  means <- rowsum(x, cond) / 4
  expect_equal(as.matrix(rdm(x, "euclidean", conditions = cond)), as.matrix(dist(means)), tolerance = 1e-12,
               ignore_attr = TRUE)
  expect_equal(rdm(x, conditions = cond)$conditions, c("u", "v", "w"))
})

crossnobis_bf <- function(x, cond, runs, Sinv) {
  labs <- unique(cond)
  R <- unique(runs)
  mu <- lapply(R, function(r) {
    keep <- runs == r
    t(sapply(labs, function(l) colMeans(x[keep & cond == l, , drop = FALSE])))
  })
  p <- ncol(x)
  k <- length(labs)
  out <- matrix(0, k, k)
  for (i in 1:k) for (j in 1:k) {
    s <- 0
    cnt <- 0
    for (a in seq_along(R)) for (b in seq_along(R)) if (a != b) {
      s <- s + drop(t(mu[[a]][i, ] - mu[[a]][j, ]) %*% Sinv %*% (mu[[b]][i, ] - mu[[b]][j, ]))
      cnt <- cnt + 1
    }
    out[i, j] <- s / cnt / p
  }
  out
}

test_that("crossnobis equals the brute-force mean over run pairs", {
  set.seed(4)
  truth <- matrix(rnorm(4 * 6), 4)
  cond <- rep(paste0("c", 1:4), times = 3 * 2)
  runs <- rep(1:3, each = 8)
  x <- truth[match(cond, paste0("c", 1:4)), ] + matrix(rnorm(24 * 6), 24)
  expect_equal(unname(as.matrix(rdm(x, "crossnobis", conditions = cond, runs = runs))),
               crossnobis_bf(x, cond, runs, diag(6)), tolerance = 1e-10)
  S <- crossprod(rand_mat(50, 6, 5)) / 50
  expect_equal(unname(as.matrix(rdm(x, "crossnobis", conditions = cond, runs = runs, noise = S))),
               crossnobis_bf(x, cond, runs, solve(S)), tolerance = 1e-10)
  # estimated noise: same as passing the estimate
  r1 <- rdm(x, "crossnobis", conditions = cond, runs = runs, noise = "residuals")
  expect_true(all(is.finite(r1$dissimilarities)))
})

test_that("crossnobis is unbiased: pure-noise patterns give distances centred on 0", {
  set.seed(6)
  k <- 10
  cond <- rep(seq_len(k), times = 4)
  runs <- rep(1:4, each = k)
  vals <- replicate(30, {
    x <- matrix(rnorm(length(cond) * 20), length(cond))
    mean(rdm(x, "crossnobis", conditions = cond, runs = runs)$dissimilarities)
  })
  # sd of the mean of 30 replicate means is tiny; biased distances would be ~ 2/(runs) > 0.5
  expect_lt(abs(mean(vals)), 0.02)
  x <- matrix(rnorm(length(cond) * 20), length(cond))
  expect_gt(mean(rdm(x, "sqeuclidean", conditions = cond)$dissimilarities), 0.3)  # the biased one
})

test_that("noise covariance shrinkage matches its references", {
  r <- rand_mat(30, 4, 7)
  r <- scale(r, scale = FALSE)
  ns <- asNamespace("tensorscope")
  expect_equal(ns$cpp_noise_cov(r, 29, "none"), crossprod(r) / 29, tolerance = 1e-12)
  # Ledoit-Wolf (scikit-learn's formula, on the empirical covariance S / n)
  n <- 30
  p <- 4
  emp <- crossprod(r) / n
  mu <- sum(diag(emp)) / p
  beta_ <- sum(crossprod(r^2))
  delta_ <- sum(crossprod(r)^2) / n^2
  beta <- (beta_ / n - delta_) / (p * n)
  delta <- (delta_ - 2 * mu * sum(diag(emp)) + p * mu^2) / p
  sh <- min(beta, delta) / delta
  lw <- (1 - sh) * emp + sh * mu * diag(p)
  expect_equal(ns$cpp_noise_cov(r, n, "eye"), lw, tolerance = 1e-12)
  d <- ns$cpp_noise_cov(r, 29, "diag")
  expect_equal(diag(d), diag(crossprod(r) / 29), tolerance = 1e-12)
  expect_true(all(abs(d[upper.tri(d)]) <= abs((crossprod(r) / 29)[upper.tri(d)]) + 1e-15))
})

test_that("as_rdm converts dist, matrices, lists, arrays and vectors and round-trips", {
  x <- rand_mat(5, 3, 8)
  d <- dist(x)
  r <- as_rdm(d)
  expect_equal(as.matrix(r), as.matrix(d), ignore_attr = TRUE)
  expect_equal(as.vector(as.dist(r)), as.vector(d))
  m <- as.matrix(d)
  rownames(m) <- colnames(m) <- LETTERS[1:5]
  rm <- as_rdm(m)
  expect_equal(rm$conditions, LETTERS[1:5])
  expect_equal(as.matrix(rm), m)
  expect_equal(rm$dissimilarities[1, ], as.vector(as.dist(m)))
  rl <- as_rdm(list(s1 = m, s2 = 2 * m))
  expect_equal(length(rl), 2L)
  expect_equal(rl$descriptors$name, c("s1", "s2"))
  expect_equal(as.matrix(rl, "s2"), 2 * m)
  arr <- array(c(m, 3 * m), c(5, 5, 2))
  expect_equal(as.matrix(as_rdm(arr), 2), 3 * unname(m), ignore_attr = TRUE)
  expect_equal(as.matrix(as_rdm(as.vector(d))), as.matrix(d), ignore_attr = TRUE)
  expect_equal(length(rl[2]), 1L)
})

test_that("bad RDMs give classed errors naming the argument", {
  m <- as.matrix(dist(rand_mat(4, 2, 9)))
  asym <- m
  asym[1, 2] <- asym[1, 2] + 1
  expect_error(as_rdm(asym), class = "tensorscope_error_not_rdm")
  expect_error(as_rdm(asym), "asym")
  expect_error(as_rdm(m[, 1:3]), class = "tensorscope_error_not_rdm")
  diagm <- m
  diag(diagm) <- 1
  expect_error(as_rdm(diagm), class = "tensorscope_error_not_rdm")
  nam <- m
  nam[1, 3] <- nam[3, 1] <- NA
  expect_error(as_rdm(nam), class = "tensorscope_error_non_finite")
  expect_error(as_rdm(1:4), class = "tensorscope_error_not_rdm")
  expect_error(as_rdm("a"), class = "tensorscope_error_not_rdm")
  expect_error(as_rdm(list(m, m[1:3, 1:3])), class = "tensorscope_error_mismatch")
  expect_error(rdm(matrix(c(1, 1, 1, 2, 3, 4), 2, byrow = TRUE)), class = "tensorscope_error_zero_variance")
  expect_error(rdm(rand_mat(5, 3), "crossnobis"), class = "tensorscope_error_argument")
  expect_error(rdm(rand_mat(6, 3), "crossnobis", conditions = rep(1:3, 2), runs = c(1, 1, 1, 2, 2, 3)),
               class = "tensorscope_error_mismatch")
  expect_error(rdm(rand_mat(6, 3), conditions = 1:5), class = "tensorscope_error_mismatch")
  expect_error(rdm(rand_mat(6, 3), "mahalanobis", noise = diag(2)), class = "tensorscope_error_argument")
  expect_error(rdm(rand_mat(6, 3), method = "manhattan"), class = "tensorscope_error_argument")
  expect_error(rdm(rand_mat(1, 3)), class = "tensorscope_error_too_few")
})

# ---- comparison ----------------------------------------------------------------------

tau_a_bf <- function(x, y) {
  m <- length(x)
  s <- 0
  for (i in 1:(m - 1)) for (j in (i + 1):m) s <- s + sign(x[i] - x[j]) * sign(y[i] - y[j])
  s / (m * (m - 1) / 2)
}

v_matrix <- function(n) {
  pr <- which(upper.tri(diag(n)), arr.ind = TRUE)
  pr <- pr[order(pr[, 1], pr[, 2]), ]
  C <- matrix(0, nrow(pr), n)
  C[cbind(seq_len(nrow(pr)), pr[, 1])] <- 1
  C[cbind(seq_len(nrow(pr)), pr[, 2])] <- -1
  Xi <- C %*% t(C)
  Xi * Xi
}

test_that("comparison methods equal their definitions", {
  x <- rand_mat(8, 10, 10)
  a <- rdm(x)
  b <- rdm(x + rand_mat(8, 10, 11), "euclidean")
  da <- a$dissimilarities[1, ]
  db <- b$dissimilarities[1, ]
  expect_equal(compare_rdms(a, b, "spearman"), cor(da, db, method = "spearman"), tolerance = 1e-12)
  expect_equal(compare_rdms(a, b, "pearson"), cor(da, db), tolerance = 1e-12)
  expect_equal(compare_rdms(a, b, "cosine"), sum(da * db) / sqrt(sum(da^2) * sum(db^2)), tolerance = 1e-12)
  expect_equal(compare_rdms(a, b, "kendall_tau_a"), tau_a_bf(da, db), tolerance = 1e-12)
  m <- length(da)
  ra <- rank(da)
  rb <- rank(db)
  expect_equal(compare_rdms(a, b, "rho_a"), 12 * sum((ra - mean(ra)) * (rb - mean(rb))) / (m^3 - m), tolerance = 1e-12)
  # whitened comparisons against the explicit V^-1 (Diedrichsen et al. 2021)
  Vi <- solve(v_matrix(8))
  wcos <- function(u, v) drop(t(u) %*% Vi %*% v) / sqrt(drop(t(u) %*% Vi %*% u) * drop(t(v) %*% Vi %*% v))
  expect_equal(compare_rdms(a, b, "cosine_cov"), wcos(da, db), tolerance = 1e-10)
  expect_equal(compare_rdms(a, b, "corr_cov"), wcos(da - mean(da), db - mean(db)), tolerance = 1e-10)
  # Bures similarity from its definition
  H <- diag(8) - 1 / 8
  A <- -0.5 * H %*% as.matrix(a) %*% H
  B <- -0.5 * H %*% as.matrix(b) %*% H
  ea <- eigen(A, symmetric = TRUE)
  As <- ea$vectors %*% diag(sqrt(pmax(ea$values, 0))) %*% t(ea$vectors)
  ev <- eigen(As %*% B %*% As, symmetric = TRUE, only.values = TRUE)$values
  expect_equal(compare_rdms(a, b, "bures"), sum(sqrt(pmax(ev, 0))) / sqrt(sum(diag(A)) * sum(diag(B))),
               tolerance = 1e-8)
})

test_that("tau-a counts ties against, and equals a brute-force pair count with ties", {
  set.seed(12)
  for (rep in 1:5) {
    da <- sample(1:4, 15, replace = TRUE) + 0
    db <- sample(1:5, 15, replace = TRUE) + 0
    expect_equal(compare_rdms(da[1:15], db[1:15], "kendall_tau_a"), tau_a_bf(da, db), tolerance = 1e-12)
  }
  # a categorical RDM against itself: ties count against, so tau-a < 1
  cat_rdm <- c(0, 0, 1, 1, 1, 0)
  expect_lt(compare_rdms(cat_rdm, cat_rdm, "kendall_tau_a"), 1)
  expect_equal(compare_rdms(cat_rdm, cat_rdm, "kendall_tau_a"), tau_a_bf(cat_rdm, cat_rdm))
})

test_that("every similarity of an RDM with itself is 1", {
  a <- rdm(rand_mat(9, 6, 13))
  for (m in c("spearman", "pearson", "kendall_tau_a", "rho_a", "cosine", "corr_cov", "cosine_cov", "bures")) {
    expect_equal(compare_rdms(a, a, m), 1, tolerance = 1e-10, label = m)
  }
})

test_that("several RDMs give a tidy tibble; threads do not change results", {
  x <- rand_mat(10, 5, 14)
  a <- as_rdm(list(one = as.matrix(rdm(x)), two = as.matrix(rdm(x^2))))
  b <- as_rdm(list(s1 = as.matrix(rdm(x + rand_mat(10, 5, 15))), s2 = as.matrix(rdm(rand_mat(10, 5, 16))),
                   s3 = as.matrix(rdm(x, "euclidean"))))
  for (m in c("spearman", "kendall_tau_a", "bures", "cosine_cov")) {
    res <- compare_rdms(a, b, m)
    expect_named(res, c("rdm_a", "rdm_b", "method", "similarity"))
    expect_equal(nrow(res), 6)
    expect_equal(res$similarity[res$rdm_a == "two" & res$rdm_b == "s3"], compare_rdms(a[2], b[3], m))
    old <- ts_threads(1)
    r1 <- compare_rdms(a, b, m)$similarity
    ts_threads(2)
    r2 <- compare_rdms(a, b, m)$similarity
    ts_threads(old)
    expect_identical(r1, r2)
  }
})

test_that("mismatched conditions are errors", {
  a <- rdm(matrix(rnorm(20), 4, dimnames = list(c("a", "b", "c", "d"), NULL)))
  b <- rdm(matrix(rnorm(20), 4, dimnames = list(c("a", "b", "c", "e"), NULL)))
  c5 <- rdm(rand_mat(5, 5))
  expect_error(compare_rdms(a, b), class = "tensorscope_error_mismatch")
  expect_error(compare_rdms(a, c5), class = "tensorscope_error_mismatch")
  # the same conditions in another order are matched by label (see test-stimulus-ids.R)
  b2 <- rdm(matrix(rnorm(20), 4, dimnames = list(c("b", "a", "c", "d"), NULL)))
  expect_message(s <- compare_rdms(a, b2), class = "tensorscope_message_realigned")
  expect_equal(s, compare_rdms(a, b2[c("a", "b", "c", "d"), ]))
  expect_error(compare_rdms(a, b), "In `a`, not in `b`: d")
  expect_error(compare_rdms(a, a, "tau"), class = "tensorscope_error_argument")
})

test_that("a list of ts_rdm objects combines into one", {
  x <- rand_mat(6, 4, 30)
  l <- list(s1 = rdm(x), s2 = rdm(x^2, "euclidean"))
  r <- as_rdm(l)
  expect_equal(length(r), 2L)
  expect_equal(r$descriptors$name, c("s1", "s2"))
  expect_equal(r$method, "mixed")
  expect_equal(as.matrix(r, 2), as.matrix(l$s2))
  expect_error(as_rdm(list(rdm(x), rdm(rand_mat(5, 4)))), class = "tensorscope_error_mismatch")
})

# rsatoolbox's neg_riem_dist recomputed from its definition: G relative to the first
# condition, Sigma^ = P P', -min over (t0, t1) of ||log eig(e^t0 G_a + e^t1 Sigma^, G_b)||
# (generalised eigenvalues), here by Nelder-Mead from several starts with tight tolerances.
riemannian_bf <- function(da, db) {
  n <- nrow(da)
  g <- function(D) outer(D[1, -1], D[1, -1], "+") / 2 - D[-1, -1] / 2
  ga <- g(da)
  gb <- g(db)
  p <- cbind(-1, diag(n - 1))
  s <- p %*% t(p)
  f <- function(t) {
    ev <- Re(eigen(solve(gb, exp(t[1]) * ga + exp(t[2]) * s), only.values = TRUE)$values)
    if (any(ev <= 0)) return(Inf)
    sqrt(sum(log(ev)^2))
  }
  starts <- list(c(0, 0), c(0, -5), c(0, 5), c(2, -3))
  -min(vapply(starts, function(s0) stats::optim(s0, f, control = list(reltol = 1e-14, maxit = 5000))$value, 0))
}

test_that("Riemannian RDM comparison equals rsatoolbox's neg_riem_dist definition", {
  set.seed(3)
  x <- matrix(stats::rnorm(8 * 20), 8)
  y <- x + matrix(stats::rnorm(160, sd = 1.5), 8)
  for (m in c("euclidean", "correlation")) {
    a <- rdm(x, m)
    b <- rdm(y, m)
    expect_equal(compare_rdms(a, b, "riemannian"), riemannian_bf(as.matrix(a), as.matrix(b)), tolerance = 1e-6)
    expect_equal(compare_rdms(b, a, "riemannian"), riemannian_bf(as.matrix(b), as.matrix(a)), tolerance = 1e-6)
  }
  # several RDMs at once: a tibble, each entry the single comparison
  many <- rdm(ts_reps(list(p = x, q = y, r = x^2)), "euclidean")
  res <- compare_rdms(many, rdm(y, "euclidean"), "riemannian")
  expect_equal(res$similarity[3], compare_rdms(rdm(x^2, "euclidean"), rdm(y, "euclidean"), "riemannian"))
})

test_that("Riemannian RDM comparison: 0 with itself, invariant to scale and to the order of conditions", {
  set.seed(4)
  x <- matrix(stats::rnorm(10 * 30), 10)
  y <- matrix(stats::rnorm(10 * 30), 10)
  a <- rdm(x, "euclidean")
  b <- rdm(y, "euclidean")
  expect_equal(compare_rdms(a, a, "riemannian"), 0, tolerance = 1e-8)
  s <- compare_rdms(a, b, "riemannian")
  expect_lt(s, -0.1)
  expect_equal(compare_rdms(as_rdm(3 * as.matrix(a)), as_rdm(0.5 * as.matrix(b)), "riemannian"), s, tolerance = 1e-8)
  o <- sample(10)
  expect_equal(compare_rdms(rdm(x[o, ], "euclidean"), rdm(y[o, ], "euclidean"), "riemannian"), s, tolerance = 1e-8)
})

test_that("Riemannian RDM comparison raises a classed error for a rank-deficient RDM", {
  set.seed(5)
  a <- rdm(matrix(stats::rnorm(8 * 20), 8), "euclidean")
  low <- rdm(matrix(stats::rnorm(8 * 3), 8), "sqeuclidean")  # 3 features: rank 3 < 7
  expect_error(compare_rdms(a, low, "riemannian"), "rank 3, not 7", class = "tensorscope_error_rank_deficient")
  expect_error(compare_rdms(rdm(matrix(stats::rnorm(2 * 5), 2)), rdm(matrix(stats::rnorm(2 * 5), 2)), "riemannian"),
               class = "tensorscope_error_too_few")
  # a rank-deficient first RDM is regularised by the prior, as in rsatoolbox
  expect_true(is.finite(compare_rdms(low, a, "riemannian")))
})

test_that("Riemannian RDM comparison refuses a constant RDM (it equals the prior: distance 0 to anything)", {
  set.seed(6)
  low <- rdm(matrix(stats::rnorm(8 * 5), 8), "euclidean")   # rank-deficient a
  flat <- as_rdm(matrix(1, 8, 8) - diag(8))
  # the value it would give: 0, the maximum, whatever `a` is
  expect_error(compare_rdms(low, flat, "riemannian"), "constant", class = "tensorscope_error_zero_variance")
  expect_error(compare_rdms(flat, low, "riemannian"), "`a`", class = "tensorscope_error_zero_variance")
})
