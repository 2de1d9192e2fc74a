softmax <- function(z) { e <- exp(z - apply(z, 1, max)); e / rowSums(e) }

test_that("empirical Fisher of softmax regression equals the closed form", {
  skip_if_not(ts_torch_available())
  set.seed(1)
  m <- ts_model(fixture("softmax_regression.pt"))
  w <- model_parameters(m)
  x <- matrix(rnorm(30 * 4), 30)
  y <- sample(0:2, 30, replace = TRUE)
  p <- softmax(sweep(x %*% t(w$weight), 2, w$bias, "+"))
  r <- p; r[cbind(1:30, y + 1)] <- r[cbind(1:30, y + 1)] - 1      # dloss/dlogit = p - onehot
  fw <- crossprod(r^2, x^2) / 30                                   # mean (p-y)_k^2 x_j^2
  fb <- colMeans(r^2)
  f <- fisher(m, x, y)
  expect_s3_class(f, "ts_fisher")
  expect_named(f, c("module", "parameter", "group_index", "n", "fisher", "fisher_sum"))
  got_w <- f$fisher[f$parameter == "weight"]
  expect_equal(got_w, as.vector(t(fw)), tolerance = 1e-10)       # group_index is row-major
  expect_equal(f$fisher[f$parameter == "bias"], fb, tolerance = 1e-10)
  # true Fisher: E_y[(p - y)^2] = p (1 - p); a Monte Carlo estimate with many samples
  xx <- x[rep(1:30, each = 200), ]
  ft <- fisher(m, xx, type = "true", seed = 42, batch_size = 2000)
  pp <- softmax(sweep(x %*% t(w$weight), 2, w$bias, "+"))
  expect_equal(ft$fisher[ft$parameter == "bias"], colMeans(pp * (1 - pp)), tolerance = 0.05)
  # reproducible for a seed, different for another
  expect_identical(fisher(m, x, type = "true", seed = 3)$fisher, fisher(m, x, type = "true", seed = 3)$fisher)
  expect_false(identical(fisher(m, x, type = "true", seed = 3)$fisher, fisher(m, x, type = "true", seed = 4)$fisher))
})

test_that("binary logistic regression (bce) equals the closed form", {
  skip_if_not(ts_torch_available())
  set.seed(2)
  m <- ts_model(fixture("logistic_regression.pt"))
  w <- model_parameters(m)
  x <- matrix(rnorm(25 * 4), 25)
  y <- rbinom(25, 1, 0.5)
  s <- plogis(drop(x %*% t(w[["0.weight"]])) + as.vector(w[["0.bias"]]))
  f <- fisher(m, x, y, loss = "bce")
  expect_equal(f$fisher[f$parameter == "weight"], colMeans((s - y)^2 * x^2), tolerance = 1e-10)
  expect_equal(f$fisher[f$parameter == "bias"], mean((s - y)^2), tolerance = 1e-10)
  expect_identical(unique(f$module), "0")
})

test_that("empirical Fisher of an MLP equals PyTorch brute-force per-sample gradients; batch size does not matter", {
  skip_if_not(ts_torch_available())
  x <- read_rowmajor_txt(fixture("mlp_x.txt"), c(12, 5))
  y <- scan(fixture("mlp_y.txt"), quiet = TRUE)
  f1 <- fisher(fixture("mlp.pt"), x, y, batch_size = 5)
  f2 <- fisher(fixture("mlp.pt"), x, y, batch_size = 12)
  expect_equal(f1$fisher, f2$fisher, tolerance = 1e-12)
  for (p in c("hidden.weight", "hidden.bias", "out.weight", "out.bias")) {
    ref <- scan(fixture(sprintf("mlp_fisher_%s.txt", p)), quiet = TRUE)
    mod <- sub("\\..*", "", p); par <- sub(".*\\.", "", p)
    expect_equal(f1$fisher[f1$module == mod & f1$parameter == par], ref, tolerance = 1e-6)
  }
  # square first, then reduce: not the square of the mean gradient (which would be
  # smaller by Jensen)
  expect_true(all(f1$fisher >= 0))
})

test_that("grouped Fisher sums and means match the parameter-level values", {
  skip_if_not(ts_torch_available())
  s <- fmnist()
  x <- s$images[1:12, , , , drop = FALSE]
  cnn <- ts_model(ext_file("fmnist_cnn_step1125.pt"))
  fp <- fisher(cnn, x, s$labels[1:12])
  expect_equal(nrow(fp), sum(lengths(model_parameters(cnn))))
  fl <- fisher(cnn, x, s$labels[1:12], group = "layer")
  expect_identical(fl$module, c("conv1", "conv2", "fc1", "fc2"))
  expect_equal(fl$fisher_sum, as.vector(tapply(fp$fisher, fp$module, sum)[fl$module]), tolerance = 1e-10)
  expect_equal(fl$fisher, as.vector(tapply(fp$fisher, fp$module, mean)[fl$module]), tolerance = 1e-10)
  fc <- fisher(cnn, x, s$labels[1:12], group = "channel")
  expect_identical(unique(fc$module), c("conv1", "conv2"))
  expect_identical(nrow(fc), 8L + 16L)
  # conv2 channel 3 = its 8*3*3 weights (row-major block 3) + bias 3
  wi <- fp$module == "conv2" & fp$parameter == "weight" & fp$group_index %in% (2 * 72 + 1:72)
  bi <- fp$module == "conv2" & fp$parameter == "bias" & fp$group_index == 3
  expect_equal(fc$fisher_sum[fc$module == "conv2" & fc$group_index == 3], sum(fp$fisher[wi | bi]), tolerance = 1e-10)
  expect_identical(fc$n[fc$module == "conv2"][1], 73L)
  fn <- fisher(cnn, x, s$labels[1:12], group = "neuron")
  expect_identical(unique(fn$module), c("fc1", "fc2"))
  expect_equal(sum(fn$fisher_sum), sum(fl$fisher_sum[fl$module %in% c("fc1", "fc2")]), tolerance = 1e-10)
})

test_that("head-grouped Fisher of the induction transformer, with next-token loss", {
  skip_if_not(ts_torch_available())
  tok <- readRDS(ext_file("induction_tokens.rds"))[1:4, ]
  m <- ext_file("induction_step1500.pt")
  fh <- fisher(m, tok, loss = "next_token", group = "head")
  expect_identical(nrow(fh), 2L * 7L * 4L)   # 2 layers x (W_Q, W_K, W_V, W_O, b_Q, b_K, b_V) x 4 heads
  fp <- fisher(m, tok, loss = "next_token")
  sel <- fp$module == "blocks.1.attn" & fp$parameter == "W_K" & fp$group_index <= 64 * 16
  expect_equal(fh$fisher_sum[fh$module == "blocks.1.attn" & fh$parameter == "W_K" & fh$group_index == 1],
               sum(fp$fisher[sel]), tolerance = 1e-10)
  expect_true(all(is.finite(fh$fisher)))
})

test_that("checkpoints stack with a step column; masks, overlap and ablation", {
  skip_if_not(ts_torch_available())
  s <- fmnist()
  x <- s$images[1:16, , , , drop = FALSE]
  files <- dir(ext_file(), "^fmnist_cnn_step(0200|1125)", full.names = TRUE)
  ft <- fisher(files, x, s$labels[1:16], group = "channel")
  expect_identical(unique(ft$step), c(200, 1125))
  mt <- fisher_mask(ft, keep = 0.25)
  expect_identical(as.integer(tapply(mt$keep, mt$step, sum)), c(6L, 6L))
  f <- ft[ft$step == 1125, -1]
  attributes(f)[c("type", "group", "loss", "n_samples")] <- attributes(ft)[c("type", "group", "loss", "n_samples")]
  class(f) <- class(ft)
  m1 <- fisher_mask(f, keep = 0.25)
  expect_identical(sum(m1$keep), 6L)
  expect_true(all(m1$fisher[m1$keep] >= max(m1$fisher[!m1$keep])))
  expect_identical(mask_overlap(m1, m1), 1)
  m2 <- fisher_mask(f, keep = 0.5)
  expect_equal(mask_overlap(m1, m2), 6 / 12)   # nested masks: |A| / |B|
  # ablation zeroes exactly the pruned groups and leaves the original model alone
  cnn <- ts_model(files[2])
  ab <- ablate(cnn, m1)
  w0 <- model_parameters(cnn); w1 <- model_parameters(ab)
  pruned <- m1$group_index[!m1$keep & m1$module == "conv1"]
  expect_true(all(w1$conv1.weight[pruned, , , ] == 0))
  expect_true(all(w1$conv1.bias[pruned] == 0))
  kept <- m1$group_index[m1$keep & m1$module == "conv1"]
  expect_identical(w1$conv1.weight[kept, , , ], w0$conv1.weight[kept, , , ])
  expect_identical(w1$fc1.weight, w0$fc1.weight)
  expect_false(any(w0$conv1.bias == 0))
  acc <- function(model) mean(max.col(predict(model, s$images)) == as.integer(s$labels))
  expect_lt(acc(ablate(cnn, fisher_mask(f, keep = 0.1))), acc(cnn))
  # bad input
  expect_error(fisher_mask(f, keep = 0), class = "tensorscope_error_argument")
  expect_error(fisher_mask(data.frame()), class = "tensorscope_error_type")
  fl <- fisher(files[2], x, s$labels[1:16], group = "layer")
  expect_error(mask_overlap(m1, fisher_mask(fl)), class = "tensorscope_error_mismatch")
  expect_error(ablate(cnn, mt), class = "tensorscope_error_argument")
  expect_error(ablate(ts_model(fixture("mlp.pt")), m1), class = "tensorscope_error_mismatch")
})

test_that("Fisher bad input gets classed errors", {
  skip_if_not(ts_torch_available())
  m <- fixture("softmax_regression.pt")
  x <- matrix(rnorm(20), 5)
  expect_error(fisher(m, x), class = "tensorscope_error_argument")                 # no targets
  expect_error(fisher(m, x, 0:3), class = "tensorscope_error_mismatch")            # 4 targets, 5 stimuli
  expect_error(fisher(m, x, c(0, 1, 2, 1, 0.5)), class = "tensorscope_error_argument")
  expect_error(fisher(m, x, c(0, 1, 2, 1, 7)), class = "tensorscope_error_mismatch") # class 7 of 3
  expect_error(fisher(m, x, c(0, 1, 2, 1, NA)), class = "tensorscope_error_non_finite")
  expect_error(fisher(m, x, 0:4, type = "true"), class = "tensorscope_error_argument")
  expect_error(fisher(m, x, 0:4, group = "block"), class = "tensorscope_error_argument")
  expect_error(fisher(m, x, 0:4, loss = "hinge"), class = "tensorscope_error_argument")
  expect_error(fisher(m, matrix(rnorm(15), 5), 0:4), class = "tensorscope_error_mismatch")   # 3 features, not 4
  expect_error(fisher(m, x, loss = "next_token"), class = "tensorscope_error_type")
  expect_error(fisher(m, x, c(0, 1, 1, 0, 2), loss = "bce"), class = "tensorscope_error_argument")
})
