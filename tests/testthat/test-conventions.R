# R conventions: tidy()/glance(), dplyr-safe result classes, messages that name the
# argument, citation, progress.

conv_data <- function() {
  set.seed(3)
  z <- matrix(rnorm(20 * 5), 20)
  reps <- ts_reps(list(early = z + matrix(rnorm(100, sd = 3), 20), late = z %*% matrix(rnorm(25), 5)))
  subjects <- lapply(1:3, function(s) as.matrix(rdm(z + matrix(rnorm(100), 20))))
  list(z = z, reps = reps, subjects = subjects)
}

test_that("tidy() and glance() (generics) work on the main result classes", {
  d <- conv_data()
  res <- rsa(d$reps, d$subjects, n_perm = 100, n_boot = 50)
  t <- tidy(res)
  expect_identical(class(t), c("tbl_df", "tbl", "data.frame"))
  expect_identical(names(t), c("layer", "subject", "similarity", "p_value", "ci_lower", "ci_upper"))
  expect_null(attr(t, "summary"))
  g <- glance(res)
  expect_identical(nrow(g), 1L)
  expect_identical(g$best_layer, as.character(summary(res)$layer[which.max(summary(res)$similarity)]))
  expect_equal(g$best_similarity, max(summary(res)$similarity))
  expect_identical(g$n_subjects, 3L)
  p <- predictivity(d$reps, d$z %*% matrix(rnorm(15), 5) + matrix(rnorm(60), 20), alphas = c(1, 10), folds = 4)
  expect_identical(names(tidy(p)), c("layer", "target", "r", "r2", "alpha"))
  expect_equal(glance(p)$best_median_r, max(summary(p)$median_r))
  ck <- cka_layers(d$reps)
  m <- as.matrix(ck)
  expect_equal(glance(ck)$mean_cka, mean(m[row(m) != col(m)]))
  expect_identical(names(tidy(ck)), c("layer_x", "layer_y", "cka"))
  r <- rdm(d$reps)
  tr <- tidy(r)
  expect_identical(nrow(tr), 2L * 190L)
  expect_equal(tr$dissimilarity[tr$rdm == "late" & tr$condition_1 == "3" & tr$condition_2 == "7"], as.matrix(r, 2)[3, 7])
  expect_identical(glance(r)$n_conditions, 20L)
  expect_identical(glance(d$reps)$n_layers, 2L)
  nc <- noise_ceiling(array(rnorm(20 * 3 * 4), c(20, 3, 4)))
  expect_identical(glance(nc), summary(nc))
  # broom's generics are the same functions
  expect_identical(tidy, generics::tidy)
})

test_that("dplyr verbs do not keep stale summaries of the rows before them", {
  skip_if_not_installed("dplyr")
  d <- conv_data()
  res <- rsa(d$reps, d$subjects, n_perm = 50, n_boot = 20)
  f <- dplyr::filter(res, layer == "late")
  expect_false(inherits(f, "ts_rsa"))
  expect_null(attr(f, "summary"))
  expect_identical(nrow(f), 3L)
  expect_identical(unique(as.character(f$layer)), "late")
  a <- dplyr::arrange(res, similarity)
  expect_false(inherits(a, "ts_rsa"))
  p <- predictivity(d$reps, d$z[, 1:3] + matrix(rnorm(60), 20), alphas = 1, folds = 4)
  expect_false(inherits(dplyr::filter(p, r > -Inf), "ts_predictivity"))
  # ts_cka keeps its class (its attributes describe every row alike)
  expect_s3_class(dplyr::filter(cka_layers(d$reps), layer_x == "early"), "ts_cka")
})

test_that("errors name the argument, not the value", {
  x <- matrix(rnorm(40), 10)
  expect_error(compare_rdms(rdm(x), rdm(x), "kendall"), "`method` must be one of", fixed = TRUE)
  expect_error(cka(x, x, kernel = "rbff"), "`kernel` must be one of", fixed = TRUE)
  expect_error(rsa(x, rdm(x), boot = "yes"), "`boot` must be one of", fixed = TRUE)
  expect_error(rdm(cbind(x, NA)), "`x` has 10 non-finite", fixed = TRUE)
  expect_error(noise_ceiling(array(1, c(4, 2, 2)), method = "sb"), "`method` must be one of", fixed = TRUE)
})

test_that("citation('tensorscope') names the authors and the year", {
  cit <- citation("tensorscope")
  txt <- format(cit, style = "text")
  expect_match(txt, "The tensorscope authors", fixed = TRUE)
  expect_match(txt, "\\(20[0-9]{2}\\)")
  expect_false(grepl("????", txt, fixed = TRUE))
})

test_that("rsa() reports progress through progressr", {
  d <- conv_data()
  withr::local_options(progressr.enable = TRUE)
  steps <- 0
  res <- withCallingHandlers(
    rsa(d$reps, d$subjects, n_perm = 20, n_boot = 10),
    progression = function(p) if (identical(p$type, "update")) steps <<- steps + p$amount
  )
  expect_equal(steps, 3)  # 2 layers' permutations + 1 bootstrap
})

test_that("the long loops of noise_ceiling() and the all-layer geometry functions report progress", {
  withr::local_options(progressr.enable = TRUE)
  count <- function(expr) {
    steps <- 0
    withCallingHandlers(expr, progression = function(p) if (identical(p$type, "update")) steps <<- steps + p$amount)
    steps
  }
  set.seed(2)
  trials <- array(rnorm(20 * 5 * 4), c(20, 5, 4))
  expect_equal(count(noise_ceiling(trials, n_splits = 7)), 7)  # one step per split
  reps <- ts_reps(list(a = matrix(rnorm(30 * 5), 30), b = matrix(rnorm(30 * 5), 30), c = matrix(rnorm(30 * 5), 30)))
  expect_equal(count(ricci_curvature(reps, k = 5)), 3)  # one step per layer
  expect_equal(count(effective_rank(reps)), 3)
  # progress changes nothing: the same numbers as without handlers
  expect_equal(noise_ceiling(trials, n_splits = 7)$reliability,
               withr::with_options(list(progressr.enable = FALSE), noise_ceiling(trials, n_splits = 7))$reliability)
})
