# Neural predictivity: ridge / PLS cross-validation, Brain-Score protocol, noise
# ceilings, feature ablation.

sim_xy <- function(n, p, q, noise = 1, seed = 1) {
  set.seed(seed)
  X <- matrix(rnorm(n * p), n)
  B <- matrix(rnorm(p * q), p)
  list(X = X, Y = X %*% B + matrix(rnorm(n * q, sd = noise), n))
}

naive_ridge_pred <- function(Xtr, Ytr, Xte, alpha) {
  mx <- colMeans(Xtr); my <- colMeans(Ytr)
  Xc <- sweep(Xtr, 2, mx); Yc <- sweep(Ytr, 2, my)
  b <- solve(crossprod(Xc) + alpha * diag(ncol(Xtr)), crossprod(Xc, Yc))
  sweep(sweep(Xte, 2, mx) %*% b, 2, my, `+`)
}

three_folds <- function(n) split(seq_len(n), rep_len(1:3, n))

# ---- known answers ---------------------------------------------------------------------

test_that("ridge coefficients equal the closed form for every alpha (feature and kernel forms)", {
  for (dims in list(c(30, 8), c(12, 25))) {
    d <- sim_xy(dims[1], dims[2], 3)
    al <- c(0.01, 0.5, 3, 100)
    fit <- ridge_coef(d$X, d$Y, al, intercept = FALSE)
    for (a in seq_along(al)) {
      ref <- solve(crossprod(d$X) + al[a] * diag(dims[2]), crossprod(d$X, d$Y))
      expect_equal(unname(fit$coef[, , a]), ref, tolerance = 1e-9)
    }
    fit <- ridge_coef(d$X, d$Y, al, intercept = TRUE)
    Xc <- scale(d$X, scale = FALSE); Yc <- scale(d$Y, scale = FALSE)
    for (a in seq_along(al)) {
      ref <- solve(crossprod(Xc) + al[a] * diag(dims[2]), crossprod(Xc, Yc))
      expect_equal(unname(fit$coef[, , a]), unname(ref), tolerance = 1e-9)
      expect_equal(unname(fit$intercept[, a]), unname(colMeans(d$Y) - drop(colMeans(d$X) %*% ref)), tolerance = 1e-9)
    }
  }
})

test_that("held-out ridge predictions equal naive refits per alpha and fold", {
  for (dims in list(c(36, 6), c(24, 40))) {
    d <- sim_xy(dims[1], dims[2], 4, noise = 2)
    sp <- three_folds(dims[1])
    for (a in c(0.1, 10, 1000)) {
      res <- predictivity(d$X, d$Y, alphas = a, splits = sp, return_predictions = TRUE)
      P <- attr(res, "predictions")$layer
      naive <- matrix(NA_real_, dims[1], 4)
      for (s in seq_along(sp)) {
        te <- sp[[s]]
        ref <- naive_ridge_pred(d$X[-te, ], d$Y[-te, ], d$X[te, , drop = FALSE], a)
        expect_equal(unname(P[[s]]), unname(ref), tolerance = 1e-8)
        naive[te, ] <- ref
      }
      expect_equal(res$r, vapply(1:4, function(j) cor(naive[, j], d$Y[, j]), 0), tolerance = 1e-8)
      sst <- colSums(sweep(d$Y, 2, colMeans(d$Y))^2)
      expect_equal(res$r2, 1 - colSums((d$Y - naive)^2) / sst, tolerance = 1e-8)
      expect_true(all(res$alpha == a))
    }
  }
})

test_that("ridge CV in the small bounded blocks that make it interruptible gives the same answers", {
  # tensorscope.block_flops shrinks every product and the eigendecomposition's back
  # transformation to blocks of 8 columns (bench/interrupt.R: at real sizes each block is
  # ~0.1 s, so an interrupt stops a fold within a fraction of a second)
  for (dims in list(c(90, 70), c(60, 100))) {
    d <- sim_xy(dims[1], dims[2], 20, noise = 2)
    for (sel in c("gcv", "loo", "kfold")) {
      args <- list(list(a = d$X), d$Y, alphas = 10^seq(-2, 3, length.out = 6), alpha_select = sel, folds = 3,
                   return_predictions = TRUE)
      ref <- do.call(predictivity, args)
      small <- withr::with_options(list(tensorscope.block_flops = 2000), do.call(predictivity, args))
      expect_equal(small$r, ref$r, tolerance = 1e-10)
      expect_identical(small$alpha, ref$alpha)
      expect_equal(attr(small, "predictions"), attr(ref, "predictions"), tolerance = 1e-10)
    }
    sp <- three_folds(dims[1])
    res <- withr::with_options(list(tensorscope.block_flops = 2000),
                               predictivity(d$X, d$Y, alphas = 3, splits = sp, return_predictions = TRUE))
    for (s in seq_along(sp)) {
      te <- sp[[s]]
      expect_equal(unname(attr(res, "predictions")$layer[[s]]),
                   unname(naive_ridge_pred(d$X[-te, ], d$Y[-te, ], d$X[te, , drop = FALSE], 3)), tolerance = 1e-8)
    }
  }
})

naive_select <- function(Xtr, Ytr, alphas, criterion) {
  n <- nrow(Xtr)
  Xc <- sweep(Xtr, 2, colMeans(Xtr)); Yc <- sweep(Ytr, 2, colMeans(Ytr))
  crit <- sapply(alphas, function(a) {
    H <- matrix(1 / n, n, n) + Xc %*% solve(crossprod(Xc) + a * diag(ncol(Xc)), t(Xc))
    R <- Yc - (H - matrix(1 / n, n, n)) %*% Yc
    if (criterion == "gcv") colSums(R^2) / (n * (1 - sum(diag(H)) / n)^2)
    else colSums((R / (1 - diag(H)))^2) / n
  })
  alphas[apply(matrix(crit, ncol = length(alphas)), 1, which.min)]
}

test_that("alpha chosen per target by GCV and exact LOO matches a naive recomputation on the training fold", {
  for (dims in list(c(45, 5), c(30, 40))) {
    d <- sim_xy(dims[1], dims[2], 6, noise = 3, seed = 2)
    d$Y[, 4:6] <- matrix(rnorm(dims[1] * 3), dims[1])  # noise targets want big alphas
    al <- 10^seq(-2, 4, length.out = 9)
    sp <- three_folds(dims[1])
    for (crit in c("gcv", "loo")) {
      res <- predictivity(d$X, d$Y, alphas = al, splits = sp, alpha_select = crit)
      ps <- attr(res, "splits")
      for (s in seq_along(sp)) {
        te <- sp[[s]]
        expect_equal(ps$alpha[ps$split == s], naive_select(d$X[-te, ], d$Y[-te, ], al, crit), info = crit)
      }
    }
    shared <- attr(predictivity(d$X, d$Y, alphas = al, splits = sp, alpha_per_target = FALSE), "splits")
    expect_true(all(tapply(shared$alpha, shared$split, function(v) length(unique(v))) == 1))
  }
})

test_that("inner K-fold alpha selection predicts as well as GCV on a linear problem", {
  d <- sim_xy(90, 10, 3, noise = 2, seed = 3)
  kf <- predictivity(d$X, d$Y, alpha_select = "kfold", inner_folds = 4)
  gcv <- predictivity(d$X, d$Y)
  expect_equal(kf$r, gcv$r, tolerance = 0.05)
})

test_that("user-supplied inner folds: the chosen alpha and the predictions equal a brute-force K-fold selection", {
  d <- sim_xy(48, 12, 3, noise = 3, seed = 8)
  rownames(d$X) <- rownames(d$Y) <- sprintf("s%02d", 1:48)
  al <- c(0.1, 1, 10, 100, 1000)
  outer <- three_folds(48)
  set.seed(9)
  labels <- sample(rep_len(1:4, 48))
  # brute force: per outer training set, the inner folds grouped by label; summed held-out
  # squared error per alpha and target; the smallest alpha among ties
  bf <- function(inner_of) {
    lapply(seq_along(outer), function(s) {
      tr <- setdiff(1:48, outer[[s]])
      folds <- inner_of(s, tr)
      sse <- sapply(al, function(a) Reduce(`+`, lapply(folds, function(te_in) {
        tr_in <- setdiff(tr, te_in)
        colSums((d$Y[te_in, , drop = FALSE] - naive_ridge_pred(d$X[tr_in, ], d$Y[tr_in, ], d$X[te_in, , drop = FALSE], a))^2)
      })))
      best <- al[apply(sse, 1, which.min)]
      pred <- sapply(seq_len(3), function(j) naive_ridge_pred(d$X[tr, ], d$Y[tr, j, drop = FALSE], d$X[outer[[s]], ], best[j]))
      list(alpha = best, pred = pred)
    })
  }
  check <- function(res, want) {
    ps <- attr(res, "splits")
    P <- attr(res, "predictions")$layer
    for (s in seq_along(outer)) {
      expect_equal(ps$alpha[ps$split == s], want[[s]]$alpha)
      expect_equal(unname(P[[s]]), want[[s]]$pred, tolerance = 1e-8)
    }
  }
  by_label <- bf(function(s, tr) unname(split(tr, labels[tr])))
  res <- predictivity(d$X, d$Y, alphas = al, splits = outer, inner_splits = labels, return_predictions = TRUE)
  expect_identical(attr(res, "settings")$alpha_select, "kfold")
  check(res, by_label)
  # the same folds given explicitly per outer split, as stimulus ids: identical results
  explicit <- lapply(outer, function(te) {
    tr <- setdiff(1:48, te)
    lapply(split(tr, labels[tr]), function(i) rownames(d$X)[i])
  })
  res2 <- predictivity(d$X, d$Y, alphas = al, splits = outer, inner_splits = explicit, return_predictions = TRUE)
  expect_identical(attr(res2, "splits"), attr(res, "splits"))
  # uneven explicit folds that do not cover the training set
  uneven <- bf(function(s, tr) list(tr[1:5], tr[6:15], tr[20:30]))
  res3 <- predictivity(d$X, d$Y, alphas = al, splits = outer, return_predictions = TRUE,
                       inner_splits = lapply(outer, function(te) { tr <- setdiff(1:48, te); list(tr[1:5], tr[6:15], tr[20:30]) }))
  check(res3, uneven)
})

test_that("inner_splits rejects bad folds with classed errors", {
  d <- sim_xy(30, 5, 2, seed = 10)
  outer <- three_folds(30)
  expect_error(predictivity(d$X, d$Y, splits = outer, inner_splits = list(1:3)), class = "tensorscope_error_argument")
  expect_error(predictivity(d$X, d$Y, splits = outer, inner_splits = rep(1:2, 15), alpha_select = "gcv"),
               class = "tensorscope_error_argument")
  expect_error(predictivity(d$X, d$Y, splits = outer, inner_splits = rep(1:2, 15), method = "pls"),
               class = "tensorscope_error_argument")
  bad <- lapply(outer, function(te) list(te[1:2], setdiff(1:30, te)[1:3]))  # outer test stimuli in an inner fold
  expect_error(predictivity(d$X, d$Y, splits = outer, inner_splits = bad), "outside outer split",
               class = "tensorscope_error_argument")
  big <- lapply(outer, function(te) { tr <- setdiff(1:30, te); list(tr[1:2], tr[-(1:2)]) })
  expect_error(predictivity(d$X, d$Y, splits = outer, inner_splits = big), class = "tensorscope_error_too_few")
  expect_error(predictivity(d$X, d$Y, splits = outer, inner_splits = lapply(outer, function(te) list("nope", 1))),
               class = "tensorscope_error_mismatch")
})

test_that("PLS matches the pls package (kernelpls = NIPALS) on every fold", {
  skip_if_not_installed("pls")
  cases <- list(c(30, 8, 3, 4), c(20, 30, 1, 5), c(25, 6, 12, 3), c(40, 150, 100, 4), c(15, 600, 600, 2))
  for (cs in cases) {
    d <- sim_xy(cs[1], cs[2], cs[3], noise = 1, seed = 4)
    sp <- three_folds(cs[1])
    res <- predictivity(d$X, d$Y, method = "pls", ncomp = cs[4], splits = sp, return_predictions = TRUE)
    P <- attr(res, "predictions")$layer
    for (s in seq_along(sp)) {
      te <- sp[[s]]
      tr <- data.frame(y = I(d$Y[-te, , drop = FALSE]), x = I(d$X[-te, , drop = FALSE]))
      m <- pls::plsr(y ~ x, ncomp = cs[4], data = tr, method = "kernelpls", scale = FALSE)
      ref <- predict(m, newdata = data.frame(x = I(d$X[te, , drop = FALSE])), ncomp = cs[4])[, , 1]
      expect_equal(unname(P[[s]]), unname(matrix(ref, length(te))), tolerance = 1e-7, info = paste(cs, collapse = "x"))
    }
  }
  # a training set that is not the complement of the test set
  d <- sim_xy(40, 10, 5, seed = 11)
  res <- predictivity(d$X, d$Y, method = "pls", ncomp = 3, splits = list(list(train = 1:25, test = 31:40)),
                      return_predictions = TRUE)
  m <- pls::plsr(y ~ x, ncomp = 3, data = data.frame(y = I(d$Y[1:25, ]), x = I(d$X[1:25, ])), method = "kernelpls")
  ref <- predict(m, newdata = data.frame(x = I(d$X[31:40, ])), ncomp = 3)[, , 1]
  expect_equal(unname(attr(res, "predictions")$layer[[1]]), unname(ref), tolerance = 1e-7)
})

test_that("a noisy linear map recovers the known signal correlation", {
  set.seed(5)
  n <- 2000; p <- 10
  X <- matrix(rnorm(n * p), n)
  b <- rnorm(p); b <- b / sqrt(sum(b^2))          # signal variance 1
  Y <- sapply(1:5, function(j) X %*% b + rnorm(n))  # noise variance 1: r = 1/sqrt(2)
  for (m in c("ridge", "pls")) {
    res <- predictivity(X, Y, method = m, ncomp = 3)
    expect_equal(median(res$r), 1 / sqrt(2), tolerance = 0.03, info = m)
    expect_equal(median(res$r2), 0.5, tolerance = 0.05, info = m)
  }
})

test_that("the layer the responses were simulated from wins", {
  set.seed(6)
  n <- 150
  l1 <- matrix(rnorm(n * 30), n); l2 <- matrix(rnorm(n * 30), n); l3 <- tanh(l1 + rnorm(n * 30))
  Y <- l2 %*% matrix(rnorm(30 * 12), 30) + matrix(rnorm(n * 12, sd = 4), n)
  reps <- ts_reps(list(a = l1, b = l2, c = l3))
  for (m in c("ridge", "pls")) {
    sm <- summary(predictivity(reps, Y, method = m, ncomp = 10))
    expect_equal(as.character(sm$layer[which.max(sm$median_r)]), "b", info = m)
    expect_gt(sm$median_r[2], 0.4)
  }
})

test_that("no information leaks across folds: pure-noise targets give median r near 0", {
  set.seed(7)
  X <- matrix(rnorm(300 * 50), 300)
  Y <- matrix(rnorm(300 * 60), 300)
  r_ridge <- median(predictivity(X, Y)$r)
  r_small <- median(predictivity(X, Y, alphas = 1e-2)$r)  # nearly unregularised
  r_pls <- summary(predictivity(X, Y, protocol = "brainscore", ncomp = 10))$median_r
  for (r in c(r_ridge, r_small, r_pls)) {
    expect_lt(r, 0.05)
    expect_gt(r, -0.15)
  }
})

test_that("noise ceiling recovers the known reliability of the trial mean", {
  set.seed(8)
  n <- 5000; q <- 4; R <- 6; sig <- 1; noise <- 2
  S <- matrix(rnorm(n * q, sd = sig), n)
  trials <- array(S, c(n, q, R)) + array(rnorm(n * q * R, sd = noise), c(n, q, R))
  full <- sig^2 / (sig^2 + noise^2 / R)
  half <- sig^2 / (sig^2 + noise^2 / (R / 2))
  sb <- noise_ceiling(trials)
  sh <- noise_ceiling(trials, method = "split_half")
  expect_equal(sb$reliability, rep(full, q), tolerance = 0.03)
  expect_equal(sh$reliability, rep(half, q), tolerance = 0.06)
  expect_equal(summary(sb)$ceiling, full, tolerance = 0.03)
  expect_equal(sb$reliability, 2 * sh$reliability / (1 + sh$reliability), tolerance = 1e-3)
  # a perfect model (the noise-free signal itself) explains all the explainable variance
  perfect <- summary(predictivity(S, trials, alphas = 1e-3))
  expect_equal(perfect$ceiled_r2, 1, tolerance = 0.05)
  expect_equal(perfect$median_r, sqrt(full), tolerance = 0.03)
})

test_that("Brain-Score protocol: 10 stratified 90/10 splits, median then mean, (r / ceiling)^2", {
  set.seed(9)
  n <- 100
  labels <- rep(c("a", "b", "c", "d"), times = c(40, 30, 20, 10))
  z <- matrix(rnorm(n * 4), n)
  trials <- array(c(z %*% matrix(rnorm(4 * 10), 4)), c(n, 10, 6)) + rnorm(n * 10 * 6, sd = 3)
  reps <- ts_reps(list(good = z, bad = matrix(rnorm(n * 8), n)))
  res <- predictivity(reps, trials, protocol = "brainscore", stratify = labels, ncomp = 4,
                      return_predictions = TRUE)
  st <- attr(res, "settings")
  expect_equal(st$method, "pls")
  expect_equal(st$n_splits, 10)
  expect_false(st$pooled)
  P <- attr(res, "predictions")$good
  for (s in 1:10) {
    te <- as.integer(rownames(P[[s]]))
    expect_length(te, 10)
    expect_equal(as.vector(table(factor(labels[te], levels = c("a", "b", "c", "d")))), c(4, 3, 2, 1))
  }
  ps <- attr(res, "splits")
  med <- mean(tapply(ps$r[ps$layer == "good"], ps$split[ps$layer == "good"], median))
  sm <- summary(res)
  expect_equal(sm$median_r[1], med)
  ceil <- summary(noise_ceiling(trials, seed = 1))$ceiling
  expect_equal(sm$ceiling[1], ceil)
  expect_equal(sm$score[1], (med / ceil)^2)
  expect_gt(sm$median_r[1], sm$median_r[2])
})

test_that("K folds partition the stimuli and stratified folds balance the labels", {
  labels <- rep(1:3, times = c(30, 15, 15))
  d <- sim_xy(60, 4, 2)
  res <- predictivity(d$X, d$Y, folds = 5, stratify = labels, return_predictions = TRUE)
  P <- attr(res, "predictions")$layer
  te <- lapply(P, function(m) as.integer(rownames(m)))
  expect_setequal(unlist(te), 1:60)
  expect_false(anyDuplicated(unlist(te)) > 0)
  for (t in te) expect_equal(as.vector(table(labels[t])), c(6, 3, 3))
  expect_true(attr(res, "settings")$pooled)
})

test_that("results do not depend on the number of threads", {
  d <- sim_xy(80, 20, 100, noise = 3)
  old <- ts_threads(1)
  on.exit(ts_threads(old))
  a <- predictivity(d$X, d$Y); b <- predictivity(d$X, d$Y, method = "pls", ncomp = 5)
  ts_threads(2)
  expect_identical(predictivity(d$X, d$Y)$r, a$r)
  expect_identical(predictivity(d$X, d$Y, method = "pls", ncomp = 5)$r, b$r)
})

test_that("removing the features that carry the signal hurts more than removing others", {
  set.seed(10)
  x <- matrix(rnorm(120 * 12), 120)
  y <- x[, 1:3] %*% matrix(rnorm(3 * 4), 3) + matrix(rnorm(120 * 4, sd = 0.5), 120)
  imp <- c(5, 4, 3, runif(9))
  ab <- ablate_features(x, imp, k = 3, which = "top")
  expect_equal(attr(ab, "removed")$layer, 1:3)
  expect_equal(unname(ab$layers$layer), unname(x[, 4:12]))
  expect_equal(attr(ablate_features(x, imp, k = 2, which = "bottom"), "removed")$layer, sort(order(imp)[1:2]))
  res <- predictivity_ablation(x, y, importance = imp, k = 3, n_random = 19, alphas = c(0.1, 1, 10))
  top <- res[res$ablation == "top", ]
  bottom <- res[res$ablation == "bottom", ]
  rnd <- res[res$ablation == "random", ]
  expect_gt(top$drop, 0.5)
  expect_lt(abs(bottom$drop), 0.05)
  expect_gt(top$drop, rnd$ci_upper)
  expect_equal(top$p_value, 1 / 20)
  expect_s3_class(autoplot(res), "ggplot")
})

test_that("summary, print and plots work", {
  d <- sim_xy(40, 5, 6, noise = 2)
  res <- predictivity(ts_reps(list(a = d$X, b = d$X[, 1:2])), d$Y, ceiling = 0.8)
  sm <- summary(res)
  expect_named(sm, c("layer", "median_r", "mean_r", "r_q25", "r_q75", "median_r2", "ceiling", "score", "ceiled_r2",
                     "frac_explained", "median_alpha", "n_targets"))
  expect_equal(sm$score, (sm$median_r / 0.8)^2)
  expect_equal(sm$ceiled_r2, sm$median_r^2 / 0.8)
  expect_equal(sm$frac_explained[1], mean(res$r2[res$layer == "a"] > 0))
  expect_output(print(res), "ts_predictivity")
  expect_s3_class(autoplot(res), "ggplot")
  expect_s3_class(autoplot(res, type = "targets"), "ggplot")
})

# ---- bad input -------------------------------------------------------------------------

test_that("bad inputs give classed errors", {
  d <- sim_xy(20, 4, 3)
  Y <- d$Y
  Yna <- Y; Yna[3, 2] <- NA
  expect_error(predictivity(d$X, Yna), class = "tensorscope_error_non_finite")
  expect_warning(res <- predictivity(d$X, Yna, na = "drop"), class = "tensorscope_warning")
  expect_equal(unique(res$target), c("1", "3"))
  expect_error(predictivity(d$X[1:4, ], Y[1:4, ], folds = 5), class = "tensorscope_error_too_few")
  # a silent (constant) target is dropped with a message; all silent is an error
  Yc <- Y; Yc[, 2] <- 7
  expect_message(rc <- predictivity(d$X, Yc), "Dropped 1 of 3 targets", class = "tensorscope_message_dropped")
  expect_identical(unique(rc$target), c("1", "3"))
  expect_identical(attr(rc, "settings")$constant_targets, "2")
  expect_equal(rc$r, predictivity(d$X, Y[, -2])$r)
  expect_error(predictivity(d$X, Yc[, c(2, 2)]), class = "tensorscope_error_zero_variance")
  expect_error(predictivity(d$X, Y[1:19, ]), class = "tensorscope_error_mismatch")
  reps <- ts_reps(d$X, stimuli = paste0("s", 1:20))
  Yn <- Y; rownames(Yn) <- paste0("s", 20:1)
  # the same ids in another order are matched by id (see test-stimulus-ids.R)
  expect_message(predictivity(reps, Yn), class = "tensorscope_message_realigned")
  rownames(Yn) <- paste0("t", 1:20)
  expect_error(predictivity(reps, Yn), class = "tensorscope_error_mismatch")
  rownames(Yn) <- paste0("s", 1:20)
  expect_s3_class(predictivity(reps, Yn), "ts_predictivity")
  expect_error(predictivity(d$X, "a"), class = "tensorscope_error_type")
  expect_error(predictivity(d$X, Y, alphas = c(1, -1)), class = "tensorscope_error_argument")
  expect_error(predictivity(d$X, Y, alphas = numeric(0)), class = "tensorscope_error_argument")
  expect_error(predictivity(d$X, Y, method = "lasso"), class = "tensorscope_error_argument")
  expect_error(predictivity(d$X, Y, folds = 1), class = "tensorscope_error_argument")
  expect_error(predictivity(d$X, Y, splits = list(c(1, 99))), class = "tensorscope_error_argument")
  expect_error(predictivity(d$X, Y, splits = list(list(train = 1:10, test = 10:12))),
               class = "tensorscope_error_argument")
  expect_error(predictivity(d$X, Y, splits = list(1)), class = "tensorscope_error_too_few")
  expect_error(predictivity(d$X, Y, stratify = 1:3), class = "tensorscope_error_mismatch")
  expect_error(predictivity(d$X, Y, ceiling = 1:2), class = "tensorscope_error_mismatch")
  Xna <- d$X; Xna[1, 1] <- Inf
  expect_error(predictivity(Xna, Y), class = "tensorscope_error_non_finite")
  expect_warning(predictivity(d$X, Y, method = "pls", ncomp = 30), class = "tensorscope_warning")
})

test_that("noise_ceiling and ablation reject bad input", {
  tr <- array(rnorm(10 * 3 * 4), c(10, 3, 4))
  expect_error(noise_ceiling(tr[, , 1, drop = FALSE]), class = "tensorscope_error_too_few")
  expect_error(noise_ceiling("x"), class = "tensorscope_error_type")
  tr[2, 1, 3] <- NA
  expect_error(noise_ceiling(tr), class = "tensorscope_error_non_finite")
  expect_warning(nc <- noise_ceiling(tr, na = "drop"), class = "tensorscope_warning")
  expect_equal(nc$target, c("2", "3"))
  expect_error(noise_ceiling(tr, method = "odd"), class = "tensorscope_error_argument")
  x <- matrix(rnorm(20 * 4), 20)
  expect_error(ablate_features(x, 1:4, k = 4), class = "tensorscope_error_too_few")
  expect_error(ablate_features(x, 1:3, k = 1), class = "tensorscope_error_mismatch")
  expect_error(ablate_features(x, c(1, NA, 3, 4), k = 1), class = "tensorscope_error_non_finite")
  expect_error(ablate_features(list(a = x, b = x), 1:4, k = 1), class = "tensorscope_error_argument")
  expect_error(ablate_features(list(a = x, b = x), list(a = 1:4), k = 1), class = "tensorscope_error_mismatch")
})
