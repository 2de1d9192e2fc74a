# na = "drop_units": units (voxels, neurons, features) holding NA are left out, with one
# message saying how many; the default is a classed error, as before.

na_betas <- function(seed = 5) {
  set.seed(seed)
  x <- matrix(rnorm(20 * 30), 20, dimnames = list(paste0("c", 1:20), NULL))
  xna <- x
  xna[3, 4] <- NA
  xna[, 17] <- NA
  xna[11, 25] <- NaN
  list(x = x, xna = xna, keep = setdiff(1:30, c(4, 17, 25)))
}

test_that("rdm(na = 'drop_units') equals the RDM of the complete voxels", {
  d <- na_betas()
  expect_error(rdm(d$xna), class = "tensorscope_error_non_finite")
  expect_message(r <- rdm(d$xna, na = "drop_units"), "Dropped 3 of 30 units", class = "tensorscope_message_dropped")
  expect_equal(r$dissimilarities, rdm(d$x[, d$keep])$dissimilarities)
  expect_identical(r$conditions, rownames(d$x))
  # a list of layers: counted over all
  expect_message(rl <- rdm(list(a = d$xna, b = d$x), na = "drop_units"), "Dropped 3 of 60 units")
  expect_equal(rl$dissimilarities[1, ], r$dissimilarities[1, ])
  expect_no_message(rdm(d$x, na = "drop_units"))
  expect_error(rdm(d$xna, na = "drop"), class = "tensorscope_error_argument")
  expect_error(rdm(matrix(NA_real_, 4, 3), na = "drop_units"), class = "tensorscope_error_empty")
})

test_that("cka(na = 'drop_units') drops each side's NA units", {
  d <- na_betas()
  y <- d$x[, 1:10] %*% matrix(rnorm(100), 10)
  expect_error(cka(d$xna, y), class = "tensorscope_error_non_finite")
  expect_message(v <- cka(d$xna, y, na = "drop_units"), class = "tensorscope_message_dropped")
  expect_equal(v, cka(d$x[, d$keep], y))
})

test_that("rsa(na = 'drop_units') and noise_ceiling / predictivity drop NA units", {
  d <- na_betas()
  neural <- rdm(d$x[, 1:15] + matrix(rnorm(300), 20))
  expect_error(rsa(list(a = d$xna), neural, n_perm = 0, n_boot = 0), class = "tensorscope_error_non_finite")
  expect_message(r <- rsa(list(a = d$xna), neural, n_perm = 20, n_boot = 0, na = "drop_units"),
                 class = "tensorscope_message_dropped")
  expect_equal(r$similarity, rsa(list(a = d$x[, d$keep]), neural, n_perm = 20, n_boot = 0)$similarity)
  # trials with NA: the targets are dropped (warning names how many), "drop_units" spelled out
  tr <- array(rnorm(20 * 4 * 3), c(20, 4, 3))
  tr[2, 3, 1] <- NA
  expect_warning(nc <- noise_ceiling(tr, na = "drop_units"), "Dropped 1 target", class = "tensorscope_warning")
  expect_identical(nrow(nc), 3L)
  Y <- d$x[, 1:5]
  Y[4, 2] <- NA
  expect_warning(p <- predictivity(d$x[, 6:30], Y, na = "drop_units", alphas = c(1, 10)), class = "tensorscope_warning")
  expect_false("2" %in% p$target)
})

test_that("noise_ceiling() on a matrix needs an explicit layout (it read neurons as repetitions)", {
  set.seed(2)
  m <- matrix(rnorm(30 * 8), 30)  # 30 stimuli x 8 neurons (trial means)
  expect_error(noise_ceiling(m), class = "tensorscope_error_argument")
  expect_error(noise_ceiling(m), "layout")
  expect_error(noise_ceiling(m, layout = "stimuli_x_targets"), class = "tensorscope_error_too_few")
  expect_error(noise_ceiling(m, layout = "neurons"), class = "tensorscope_error_argument")
  one <- noise_ceiling(m, layout = "stimuli_x_repetitions")
  expect_identical(nrow(one), 1L)
  expect_equal(one$reliability, noise_ceiling(array(m, c(30, 1, 8)))$reliability)
})

test_that("a dist with one NA: an error by default, pairs left out with na = 'drop_pairs'", {
  set.seed(8)
  x <- matrix(rnorm(10 * 6), 10, dimnames = list(letters[1:10], NULL))
  y <- x + matrix(rnorm(60, sd = 0.7), 10)
  dx <- dist(x)
  dy <- dist(y)
  dy_na <- dy
  dy_na[7] <- NA
  expect_error(as_rdm(dy_na), class = "tensorscope_error_non_finite")
  expect_error(compare_rdms(dx, dy_na), class = "tensorscope_error_non_finite")
  expect_error(rsa(list(a = x), dy_na, n_perm = 0, n_boot = 0), class = "tensorscope_error_non_finite")
  for (m in c("spearman", "pearson", "kendall_tau_a", "cosine")) {
    expect_message(v <- compare_rdms(dx, dy_na, method = m, na = "drop_pairs"), "Left out 1 of 45 pairs",
                   class = "tensorscope_message_dropped")
    # brute force on the complete pairs
    ref <- switch(m, spearman = cor(as.vector(dx)[-7], as.vector(dy)[-7], method = "spearman"),
                  pearson = cor(as.vector(dx)[-7], as.vector(dy)[-7]),
                  kendall_tau_a = cor(as.vector(dx)[-7], as.vector(dy)[-7], method = "kendall"),
                  cosine = sum(as.vector(dx)[-7] * as.vector(dy)[-7]) / sqrt(sum(as.vector(dx)[-7]^2) * sum(as.vector(dy)[-7]^2)))
    expect_equal(v, ref, tolerance = 1e-12, label = m)
  }
  # the NA pair follows its conditions when the other side is in another order
  p <- c(3, 1, 2, 4:10)
  dy_perm <- as.dist(as.matrix(dy_na)[p, p])
  v2 <- suppressMessages(compare_rdms(dx, dy_perm, na = "drop_pairs"))
  expect_equal(v2, suppressMessages(compare_rdms(dx, dy_na, na = "drop_pairs")))
  expect_message(compare_rdms(dx, dy_perm, na = "drop_pairs"), class = "tensorscope_message_realigned")
  expect_error(compare_rdms(dx, dy_na, method = "bures", na = "drop_pairs"), class = "tensorscope_error_argument")
  m <- as.matrix(dy_na); m[1, 2] <- NA
  expect_error(as_rdm(m, na = "keep"), class = "tensorscope_error_not_rdm")
})
