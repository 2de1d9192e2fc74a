# Stimuli are matched by id everywhere: when both sides carry ids, one side's stimuli
# in another order give exactly the same result (with one message); ids that differ are
# a classed error naming the missing ones; without ids, rows pair by position.

ids_data <- function(n = 24, seed = 11) {
  set.seed(seed)
  ids <- paste0("img", seq_len(n))
  z <- matrix(rnorm(n * 4), n, dimnames = list(ids, NULL))
  x <- z %*% matrix(rnorm(4 * 12), 4) + matrix(rnorm(n * 12, sd = 0.5), n)
  y <- tanh(z) %*% matrix(rnorm(4 * 8), 4) + matrix(rnorm(n * 8, sd = 0.5), n)
  dimnames(x) <- list(ids, NULL)
  dimnames(y) <- list(ids, paste0("n", 1:8))
  list(ids = ids, x = x, y = y, perm = sample(n), lab = stats::setNames(rep(c("a", "b", "c"), length.out = n), ids))
}

test_that("cka() matches rows by id (it paired by position: 0.115 instead of 1)", {
  set.seed(1)
  x <- matrix(rnorm(60 * 10), 60, dimnames = list(paste0("s", 1:60), NULL))
  p <- sample(60)
  expect_message(v <- cka(x, x[p, ]), class = "tensorscope_message_realigned")
  expect_equal(v, 1, tolerance = 1e-12)
  # without ids on one side, rows pair by position (no message)
  expect_no_message(v2 <- cka(x, unname(x[p, ])))
  expect_lt(v2, 0.5)
})

test_that("as_rdm() on a list of dist objects realigns each element by its labels", {
  d <- ids_data()
  r1 <- dist(d$x)
  r2 <- dist(d$x[d$perm, ])
  expect_message(r <- as_rdm(list(s1 = r1, s2 = r2)), class = "tensorscope_message_realigned")
  expect_equal(r$dissimilarities[1, ], r$dissimilarities[2, ])
  expect_equal(compare_rdms(r[1], r[2]), 1)
  # matrices too
  expect_message(m <- as_rdm(list(as.matrix(r1), as.matrix(r2))), class = "tensorscope_message_realigned")
  expect_equal(m$dissimilarities[1, ], m$dissimilarities[2, ])
  # other labels: an error naming them
  other <- as.matrix(r2); rownames(other)[1] <- colnames(other)[1] <- "zzz"
  expect_error(as_rdm(list(as.matrix(r1), other)), class = "tensorscope_error_mismatch")
  expect_error(as_rdm(list(as.matrix(r1), other)), "zzz")
  # a list of ts_rdm objects as well
  expect_message(rr <- as_rdm(list(rdm(d$x), rdm(d$x[d$perm, ]))), class = "tensorscope_message_realigned")
  expect_equal(rr$dissimilarities[1, ], rr$dissimilarities[2, ])
})

# One row per comparison function: how to call it on (x, y), and how to shuffle the
# second side's stimuli (with their ids).
comparisons <- function(d) {
  shuf <- function(m) m[d$perm, , drop = FALSE]
  list(
    cka = list(f = function(x, y) cka(x, y), y = d$y, s = shuf),
    cka_rbf_debiased = list(f = function(x, y) cka(x, y, kernel = "rbf", estimator = "debiased"), y = d$y, s = shuf),
    cka_layers = list(f = function(x, y) as.matrix(cka_layers(list(a = x, b = x^2), ts_reps(list(n = y)))),
                      y = d$y, s = shuf),
    compare_rdms = list(f = function(x, y) compare_rdms(rdm(x), y), y = rdm(d$y),
                        s = function(r) r[d$perm, ]),
    compare_rdms_kendall = list(f = function(x, y) compare_rdms(rdm(x), y, "kendall_tau_a"), y = rdm(d$y),
                                s = function(r) r[d$perm, ]),
    compare_rdms_bures = list(f = function(x, y) compare_rdms(rdm(x), y, "bures"), y = rdm(d$y),
                              s = function(r) r[d$perm, ]),
    compare_rdms_dist = list(f = function(x, y) compare_rdms(rdm(x, "euclidean"), y), y = dist(d$y),
                             s = function(r) stats::as.dist(as.matrix(r)[d$perm, d$perm])),
    rsa = list(f = function(x, y) {
      r <- rsa(list(a = x, b = x^2), y, n_perm = 200, n_boot = 50)
      list(tibble::as_tibble(r)[, c("layer", "subject", "similarity", "p_value")], summary(r)[, c("similarity", "ceiling_lower", "ceiling_upper")])
    }, y = lapply(1:3, function(s) as.matrix(rdm(d$y[, -s]))), s = function(l) lapply(l, function(m) m[d$perm, d$perm])),
    predictivity = list(f = function(x, y) {
      r <- predictivity(ts_reps(list(a = x)), y, alphas = c(0.1, 10), folds = 4)
      tibble::as_tibble(r)[, c("target", "r", "r2")]
    }, y = d$y, s = shuf),
    predictivity_trials = list(f = function(x, y) {
      r <- predictivity(ts_reps(list(a = x)), y, method = "pls", ncomp = 2, folds = 4)
      summary(r)[, c("median_r", "ceiling")]
    }, y = array(d$y, c(dim(d$y), 3), dimnames = list(d$ids, colnames(d$y), NULL)) + rnorm(length(d$y) * 3),
    s = function(a) a[d$perm, , , drop = FALSE]),
    invariance = list(f = function(x, y) tibble::as_tibble(invariance(list(a = x), list(a = y))), y = d$x + 0.1,
                      s = shuf),
    separability = list(f = function(x, y) tibble::as_tibble(separability(list(a = x), y, folds = 3)), y = d$lab,
                        s = function(v) v[d$perm]),
    compare_to_neural = list(f = function(x, y) neural_cmp(x, y), y = lapply(1:3, function(s) d$y[, -s]),
                             s = function(l) lapply(l, shuf)),
    compare_to_neural_rdm = list(f = function(x, y) neural_cmp(x, y), y = as_rdm(lapply(1:3, function(s) rdm(d$y[, -s]))),
                                 s = function(r) r[d$perm, ]),
    noise_ceiling = list(f = function(x, y) tibble::as_tibble(noise_ceiling(y)),
                         y = array(d$y, c(dim(d$y), 4), dimnames = list(d$ids, colnames(d$y), NULL)) + rnorm(length(d$y) * 4),
                         s = function(a) a[d$perm, , , drop = FALSE])
  )
}

# compare_to_neural() of two layers made from x against neural data y: every column,
# the best layers and the ranking
neural_cmp <- function(x, y) {
  res <- analyze_models(ts_reps(list(a = x, b = x^2)), metrics = "effective_rank")
  cmp <- compare_to_neural(res, list(IT = y), n_boot = 20, n_perm = 50)
  list(tibble::as_tibble(as.list(cmp)), attr(cmp, "best"), attr(cmp, "ranking"))
}

test_that("shuffling one side's stimuli (with ids) never changes any comparison", {
  d <- ids_data()
  for (nm in names(cmp <- comparisons(d))) {
    cse <- cmp[[nm]]
    ref <- cse$f(d$x, cse$y)
    shuffled <- cse$s(cse$y)
    got <- suppressMessages(cse$f(d$x, shuffled))
    expect_equal(got, ref, tolerance = 1e-10, label = paste(nm, "(shuffled)"))
  }
})

test_that("realignment says so, once per call", {
  d <- ids_data()
  msgs <- character(0)
  withCallingHandlers(
    rsa(list(a = d$x, b = d$x^2), lapply(1:3, function(s) as.matrix(rdm(d$y[d$perm, -s]))), n_perm = 10, n_boot = 10),
    tensorscope_message_realigned = function(m) {
      msgs <<- c(msgs, conditionMessage(m))
      invokeRestart("muffleMessage")
    })
  expect_length(msgs, 1)  # every subject in the same other order: rsa matches neural to reps once
  msgs <- character(0)
  subj <- lapply(1:3, function(s) as.matrix(rdm(d$y[if (s == 1) d$perm else seq_along(d$perm), -s])))
  withCallingHandlers(
    rsa(list(a = d$x, b = d$x^2), subj, n_perm = 10, n_boot = 10),
    tensorscope_message_realigned = function(m) {
      msgs <<- c(msgs, conditionMessage(m))
      invokeRestart("muffleMessage")
    })
  expect_length(msgs, 2)  # as_rdm(list) once for subjects 2 and 3, then neural to reps once
  expect_match(msgs[1], "[[2]]", fixed = TRUE)
  expect_match(msgs[1], "[[3]]", fixed = TRUE)
  expect_message(cka_layers(list(a = d$x), ts_reps(list(n = d$y[d$perm, ]))), class = "tensorscope_message_realigned")
  expect_no_message(cka_layers(list(a = d$x), ts_reps(list(n = d$y))))
})

test_that("ids that disagree are a classed error listing the first missing ids", {
  d <- ids_data()
  y <- d$y
  rownames(y)[1:7] <- paste0("other", 1:7)
  expect_error(cka(d$x, y), class = "tensorscope_error_mismatch")
  err <- tryCatch(cka(d$x, y), error = identity)
  expect_match(conditionMessage(err), "img1, img2, img3, img4, img5, ... (7 in all)", fixed = TRUE)
  expect_match(conditionMessage(err), "other1", fixed = TRUE)
  expect_error(cka_layers(list(a = d$x), ts_reps(list(n = y))), class = "tensorscope_error_mismatch")
  expect_error(predictivity(ts_reps(list(a = d$x)), y), class = "tensorscope_error_mismatch")
  expect_error(compare_rdms(rdm(d$x), rdm(y)), class = "tensorscope_error_mismatch")
  expect_error(rsa(list(a = d$x), as.matrix(rdm(y)), n_perm = 0, n_boot = 0), class = "tensorscope_error_mismatch")
  expect_error(invariance(list(a = d$x), list(a = y)), class = "tensorscope_error_mismatch")
  lab <- d$lab; names(lab)[1] <- "nope"
  expect_error(separability(list(a = d$x), lab), class = "tensorscope_error_mismatch")
  # a subset with ids: missing ones are named
  expect_error(cka(d$x, d$y[-3, ]), "img3")
})

test_that("[ subsets and reorders stimuli of ts_reps and ts_rdm by id", {
  d <- ids_data()
  reps <- ts_reps(list(a = d$x, b = d$y))
  sub <- reps[c("img5", "img2", "img9"), ]
  expect_s3_class(sub, "ts_reps")
  expect_identical(sub$stimuli, c("img5", "img2", "img9"))
  expect_identical(sub[["b"]], d$y[c("img5", "img2", "img9"), ])
  expect_identical(names(sub), c("a", "b"))
  # second index: layers; one index: layers (as before)
  expect_identical(names(reps[, "b"]), "b")
  expect_identical(reps[, "b"]$stimuli, d$ids)
  expect_identical(names(reps["b"]), "b")
  expect_identical(reps[2:1, "b"][["b"]], d$y[2:1, ])
  expect_identical(reps[d$ids == "img3" | d$ids == "img1", ]$stimuli, c("img1", "img3"))
  expect_identical(reps[-1, ]$stimuli, d$ids[-1])
  expect_error(reps[c("img1", "nope"), ], class = "tensorscope_error_argument")
  expect_error(reps[c("img1", "img1"), ], class = "tensorscope_error_argument")
  expect_error(reps[, "nope"], class = "tensorscope_error_argument")
  expect_error(reps[c(TRUE, FALSE), ], class = "tensorscope_error_argument")
  # ts_rdm: conditions first, RDMs second
  r <- rdm(reps)
  ids <- c("img7", "img1", "img4", "img2")
  expect_equal(as.matrix(r[ids, ], 2), as.matrix(r, 2)[ids, ids])
  expect_identical(r[ids, ]$conditions, ids)
  expect_identical(r[, "b"]$descriptors$name, "b")
  expect_identical(r["b"]$descriptors$name, "b")
  expect_identical(r[ids, 1]$descriptors$name, "a")
  # reversing twice is the identity; brute force on a permutation
  p <- d$perm
  expect_equal(r[d$ids[p], ][d$ids, ]$dissimilarities, r$dissimilarities)
  expect_equal(as.matrix(r[p, ], 1), as.matrix(r, 1)[p, p])
  expect_error(r["img1", ], class = "tensorscope_error_too_few")
  expect_error(r[c("img1", "nope"), ], class = "tensorscope_error_argument")
  expect_error(r[, "nope"], class = "tensorscope_error_argument")
})
