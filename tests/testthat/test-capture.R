# activations(): exact captures, reducers, the memory plan and preflight, the cache.
# Fixtures: data-raw/capture_fixtures.py (a block conv -> bn -> in-place relu, the relu
# called three times, a submodule returning a tuple, one returning a list).

conv2d_pad1 <- function(x, w, b) {
  # x [n, cin, h, w], w [cout, cin, 3, 3], padding 1: by hand
  n <- dim(x)[1]; h <- dim(x)[3]; wd <- dim(x)[4]; cout <- dim(w)[1]
  xp <- array(0, c(n, dim(x)[2], h + 2, wd + 2))
  xp[, , 2:(h + 1), 2:(wd + 1)] <- x
  out <- array(0, c(n, cout, h, wd))
  for (o in seq_len(cout)) for (i in seq_len(h)) for (j in seq_len(wd)) {
    patch <- xp[, , i:(i + 2), j:(j + 2), drop = FALSE]
    out[, o, i, j] <- apply(patch, 1, function(p) sum(p * w[o, , , ])) + b[o]
  }
  out
}

capture_by_hand <- function(f, x) {
  p <- model_parameters(f)
  bn <- scan(fixture("capture_bn.txt"), quiet = TRUE)
  mean <- bn[1:3]; var <- bn[4:6]
  conv <- conv2d_pad1(x, p$block.conv.weight, p$block.conv.bias)
  bnout <- conv
  for (c in 1:3) bnout[, c, , ] <- (conv[, c, , ] - mean[c]) / sqrt(var[c] + 1e-5) * p$block.bn.weight[c] + p$block.bn.bias[c]
  relu1 <- pmax(bnout, 0)
  relu2 <- pmax(relu1 + 0.5 - 1, 0)
  relu3 <- pmax(relu2 * 2 - 1, 0)
  n <- dim(x)[1]
  flat <- t(apply(relu3[, , 1:2, 1:2, drop = FALSE], 1, function(a) as.vector(aperm(a, 3:1))))
  pair0 <- sweep(flat %*% t(p$pair.fc.weight), 2, p$pair.fc.bias, "+")
  pair1 <- tanh(pair0)
  head <- sweep((pair0 * pair1) %*% t(p$head.weight), 2, p$head.bias, "+")
  flatten <- function(a) matrix(a, n)
  list(block.conv = flatten(conv), block.bn = flatten(bnout), block.relu = flatten(relu1),
       `block.relu:2` = flatten(relu2), `block.relu:3` = flatten(relu3), block = flatten(relu2),
       pair.0 = pair0, pair.1 = pair1, head = head)
}

capture_x <- function(n = 5) {
  set.seed(16)
  array(rnorm(n * 2 * 5 * 5), c(n, 2, 5, 5))
}

test_that("captures are the values each call returned: BN before an in-place ReLU, every call of a reused module, a block with its child, tuple elements", {
  skip_if_not(ts_torch_available())
  x <- capture_x()
  for (f in c(fixture("capture_traced.pt"), fixture("capture_scripted.pt"))) {
    ref <- capture_by_hand(f, x)
    r <- activations(f, x, layers = c("block.conv", "block.bn", "block.relu", "block", "pair", "head"), batch_size = 2)
    expect_identical(names(r), c("block.conv", "block.bn", "block.relu", "block.relu:2", "block.relu:3", "block",
                                 "pair.0", "pair.1", "head"))
    for (l in names(ref)) expect_equal(unname(r[[l]]), ref[[l]], tolerance = 1e-5, ignore_attr = TRUE, label = l)
    expect_true(any(r[["block.bn"]] < 0))   # not overwritten by the in-place ReLU
    expect_identical(as.integer(r$shapes[["block.relu:2"]]), c(3L, 5L, 5L))
    expect_identical(r$provenance$forward_passes, 3)
  }
})

test_that("default layers are the leaves forward() calls; lists by element; a non-tensor output is a classed error", {
  skip_if_not(ts_torch_available())
  x <- capture_x(3)
  r <- activations(fixture("capture_traced.pt"), x)
  expect_false("unused" %in% names(r))
  expect_true(all(c("block.bn", "block.relu:3", "pair.fc", "head") %in% names(r)))
  expect_error(activations(fixture("capture_traced.pt"), x, layers = "unused"), "not called", class = "tensorscope_error_argument")
  xl <- matrix(rnorm(12), 4)
  l <- activations(fixture("capture_lists.pt"), xl, layers = "lists")
  expect_identical(names(l), c("lists.0", "lists.1"))
  expect_equal(l[["lists.1"]], 2 * l[["lists.0"]], tolerance = 1e-6)
  p <- model_parameters(fixture("capture_lists.pt"))
  expect_equal(unname(l[["lists.0"]]), sweep(xl %*% t(p$lists.fc.weight), 2, p$lists.fc.bias, "+"), tolerance = 1e-5,
               ignore_attr = TRUE)
  expect_error(activations(fixture("capture_lists.pt"), xl, layers = "count"), "not a tensor",
               class = "tensorscope_error_argument")
})

test_that("float32 and float64 agree; any batch size gives the same values; 'none' is the exact capture", {
  skip_if_not(ts_torch_available())
  s <- fmnist()
  x <- s$images[1:23, , , , drop = FALSE]
  f <- ext_file("fmnist_cnn_step1125.pt")
  lay <- c("conv1", "pool2", "fc1", "fc2")
  r32 <- activations(f, x, layers = lay, batch_size = 23)
  r64 <- activations(f, x, layers = lay, batch_size = 23, dtype = "float64")
  expect_identical(r64$provenance$dtype, "float64")
  for (l in lay) {
    rel <- max(abs(r32[[l]] - r64[[l]])) / max(abs(r64[[l]]))
    expect_lt(rel, 1e-5)
  }
  for (b in c(1, 5, 16)) {
    rb <- activations(f, x, layers = lay, batch_size = b)
    for (l in lay) expect_equal(rb[[l]], r32[[l]], tolerance = 1e-6)
  }
  rn <- activations(f, x, layers = lay, reduce = "none")
  for (l in lay) expect_identical(rn[[l]], r32[[l]])
  ref <- readRDS(ext_file("fmnist_cnn_reference.rds"))
  r10 <- activations(f, s$images[1:10, , , , drop = FALSE], layers = names(ref), reduce = "none")
  for (l in names(ref)) expect_equal(unname(r10[[l]]), matrix(ref[[l]], 10), tolerance = 1e-6, ignore_attr = TRUE)
})

test_that("avgpool averages conv maps over space; srp is X R' with the seeded sparse R, reproducible", {
  skip_if_not(ts_torch_available())
  x <- fmnist()$images[1:12, , , , drop = FALSE]
  f <- ext_file("fmnist_cnn_step1125.pt")
  ex <- activations(f, x, layers = c("conv1", "fc1"), reduce = "none")
  av <- activations(f, x, layers = c("conv1", "fc1"), reduce = "avgpool")
  a <- array(ex[["conv1"]], c(12, ex$shapes[["conv1"]]))
  expect_equal(unname(av[["conv1"]]), apply(a, c(1, 2), mean), tolerance = 1e-6, ignore_attr = TRUE)
  expect_identical(av[["fc1"]], ex[["fc1"]])   # not a map: kept as it is
  expect_identical(as.integer(av$shapes[["conv1"]]), 8L)
  pr <- activations(f, x, layers = c("conv1", "fc1"), reduce = "srp", k = 50, seed = 7)
  for (l in c("conv1", "fc1")) {
    p <- ncol(ex[[l]])
    t3 <- tensorscope:::cpp_sparse_projection(p, 50, 7, l)
    R <- matrix(0, 50, p)
    R[cbind(t3$row, t3$col)] <- t3$value
    expect_equal(unname(pr[[l]]), unname(ex[[l]] %*% t(R)), tolerance = 1e-5, ignore_attr = TRUE)
    # very sparse: about sqrt(p) non-zeros per row, each +-sqrt(sqrt(p) / k)
    expect_lt(abs(length(t3$value) / 50 - sqrt(p)), 4 * p^0.25 + 2)
    expect_equal(sort(unique(abs(t3$value))), sqrt(sqrt(p) / 50))
  }
  # float64 layers are projected in double (blocks of 8 stimuli), float32 in float (16):
  # the same X R' to rounding for any batch size, partial blocks included
  ex64 <- activations(f, x, layers = "conv1", reduce = "none", dtype = "float64")[["conv1"]]
  t3 <- tensorscope:::cpp_sparse_projection(ncol(ex64), 50, 7, "conv1")
  R <- matrix(0, 50, ncol(ex64))
  R[cbind(t3$row, t3$col)] <- t3$value
  for (b in c(3, 12)) {
    p64 <- activations(f, x, layers = "conv1", reduce = "srp", k = 50, seed = 7, dtype = "float64", batch_size = b)
    expect_equal(unname(p64[["conv1"]]), unname(ex64 %*% t(R)), tolerance = 1e-12, ignore_attr = TRUE)
  }
  for (b in c(1, 5, 9)) {
    expect_equal(activations(f, x, layers = "conv1", reduce = "srp", k = 50, seed = 7, batch_size = b)[["conv1"]],
                 pr[["conv1"]], tolerance = 1e-6)
  }
  expect_identical(activations(f, x, layers = "conv1", reduce = "srp", k = 50, seed = 7)[["conv1"]], pr[["conv1"]])
  # a model kept by the caller: its projections are dropped after each call and rebuilt the same
  mk <- ts_model(f)
  for (i in 1:2) expect_identical(activations(mk, x, layers = "conv1", reduce = "srp", k = 50, seed = 7)[["conv1"]], pr[["conv1"]])
  other <- activations(f, x, layers = "conv1", reduce = "srp", k = 50, seed = 8)[["conv1"]]
  expect_false(isTRUE(all.equal(other, pr[["conv1"]])))
  # Johnson-Lindenstrauss: squared norms kept on average (k = 50: within ~20%)
  expect_equal(mean(rowSums(pr[["conv1"]]^2)) / mean(rowSums(ex[["conv1"]]^2)), 1, tolerance = 0.25)
  expect_match(pr$provenance$reduce[["conv1"]], "srp\\(k = 50, seed = 7\\)")
  mixed <- activations(f, x, layers = c("conv1", "fc1"), reduce = c(conv1 = "avgpool", "srp"), k = 10)
  expect_identical(unname(mixed$provenance$reduce), c("avgpool", "srp(k = 10, seed = 1)"))
  expect_error(activations(f, x, reduce = "pca"), class = "tensorscope_error_argument")
  expect_error(activations(f, x, reduce = c("srp", "none")), class = "tensorscope_error_argument")
})

# The memory-budget tests' case: 20 images, four layers of the shipped CNN, captured exactly.
budget_case <- function() {
  x <- fmnist()$images[1:20, , , , drop = FALSE]
  f <- ext_file("fmnist_cnn_step1125.pt")
  lay <- c("conv1", "conv2", "fc1", "fc2")
  list(x = x, f = f, lay = lay, full = activations(f, x, layers = lay))
}

test_that("auto stores exactly what fits the budget and projects the widest layers; the preflight refuses too small a budget", {
  skip_if_not(ts_torch_available())
  bc <- budget_case()
  x <- bc$x; f <- bc$f; lay <- bc$lay; full <- bc$full
  expect_identical(unname(full$provenance$reduce), rep("none", 4))
  m <- full$provenance$memory
  expect_identical(names(m), c("model", "forward", "projections", "stored", "inputs", "budget"))
  expect_gt(m[["forward"]], 0)   # measured by the counting allocator over the first batch
  expect_equal(m[["stored"]], 20 * sum(vapply(lay, function(l) ncol(full[[l]]), numeric(1))) * 8)
  # a budget that fits everything except conv1 (6272 features) exactly, with conv1's
  # projection (64 sqrt(p) non-zeros: 4 bytes each, 24 while built; 8 bytes a column)
  need <- sum(m[c("model", "forward", "stored", "inputs")])
  tight <- activations(f, x, layers = lay, k = 64, memory = need - 20 * (6272 - 64) * 8 + 64 * sqrt(6272) * 28 + 6272 * 8 + 1e4)
  expect_identical(unname(tight$provenance$reduce), c("srp(k = 64, seed = 1)", "none", "none", "none"))
  expect_identical(ncol(tight[["conv1"]]), 64L)
  expect_identical(tight[["fc2"]], full[["fc2"]])
  expect_output(print(tight), "conv1 +64 features \\(64, srp")
  err <- expect_error(activations(f, x, layers = lay, memory = 1e4), class = "tensorscope_error_memory")
  expect_match(conditionMessage(err), "over the memory budget")
  expect_match(conditionMessage(err), "batch_size")
  expect_error(activations(f, x, layers = lay, memory = "1KB"), class = "tensorscope_error_memory")
  expect_error(activations(f, x, memory = "lots"), class = "tensorscope_error_argument")
})

test_that("analyze_models()' budget leaves room for the analysis: auto projects where capture alone would fit", {
  skip_if_not(ts_torch_available())
  bc <- budget_case()
  x <- bc$x; f <- bc$f; lay <- bc$lay; full <- bc$full
  m <- full$provenance$memory
  feats <- vapply(lay, function(l) ncol(full[[l]]), numeric(1))
  # analysis_bytes() by hand: RDMs and n x min(n, f) kept; one layer's copy + 4 n^2; CKA's packed Grams
  n <- 20
  by_hand <- sum(n * pmin(n, feats) + n * (n - 1) / 2) * 8 + max(max(4 * n * feats + 5 * n^2) * 8, 4 * n * (n + 1) / 2 * 8)
  expect_equal(tensorscope:::analysis_bytes(n, feats), by_hand)
  # a budget that holds the exact capture (with room to spare) but not its analysis too
  budget <- sum(m[names(m) != "budget"]) + by_hand / 2
  alone <- activations(f, x, layers = lay, memory = budget)
  expect_identical(unname(alone$provenance$reduce), rep("none", 4))
  res <- analyze_models(f, x, layers = lay, metrics = "effective_rank", memory = budget, k = 64)
  expect_identical(res$reducers$reducer[res$reducers$layer == "conv1"], "srp(k = 64, seed = 1)")
  est <- res$provenance$memory[[1]]
  expect_true("analysis" %in% names(est))
  expect_lte(sum(est[names(est) != "budget"]), budget)
  # and with room for both, everything stays exact
  roomy <- analyze_models(f, x, layers = lay, metrics = "effective_rank", memory = budget + by_hand)
  expect_identical(roomy$reducers$reducer, rep("none", 4))
})

test_that("the preflight measures LibTorch's memory over the first batch: held = the captured outputs' bytes", {
  skip_if_not(ts_torch_available())
  x <- fmnist()$images[1:20, , , , drop = FALSE]
  m <- ts_model(ext_file("fmnist_cnn_step1125.pt"))
  src <- tensorscope:::input_source(x, NULL)
  for (dt in c("float32", "float64")) {
    info <- tensorscope:::first_batch(m$ptr, src, c("conv1", "fc1"), 8, dt, call = NULL)
    tensorscope:::torch_call("ts_torch_write", m$ptr, vector("list", 3), rep("none", 3), rep(1, 3), 0, 0)
    bytes <- if (dt == "float32") 4 else 8
    # the model's output and the two kept copies, 8 stimuli each (float64: plus the
    # converted copy of the model, made in this pass and kept)
    outs <- 8 * sum(vapply(info$shapes, function(s) prod(s), 0)) * bytes
    params <- m$modules$n_total[m$modules$module == ""] * 8
    expect_equal(info$memory$held, outs + if (dt == "float64") params else 0)
    expect_gte(info$memory$forward, info$memory$held)
    expect_equal(info$input_bytes, prod(dim(x)[-1]) * 8)
  }
})

test_that("the cache hits on a second run and misses when the model file, the inputs or the reducer change", {
  skip_if_not(ts_torch_available())
  d <- withr::local_tempdir()
  f <- file.path(d, "model.pt")
  expect_true(file.copy(ext_file("fmnist_cnn_step1125.pt"), f))
  cache <- file.path(d, "cache")
  x <- fmnist()$images[1:9, , , , drop = FALSE]
  r1 <- activations(f, x, layers = c("conv1", "fc1"), batch_size = 4, cache = cache)
  expect_identical(r1$provenance$forward_passes, 3)
  expect_length(dir(cache, "\\.npy$"), 2)
  expect_equal(read_npy(dir(cache, "^fc1.*\\.npy$", full.names = TRUE)), unname(r1[["fc1"]]), ignore_attr = TRUE)
  r2 <- activations(f, x, layers = c("conv1", "fc1"), batch_size = 4, cache = cache)
  expect_identical(r2$provenance$forward_passes, 0)
  expect_identical(r2$provenance$cached, c("conv1", "fc1"))
  expect_identical(r2$layers, r1$layers)
  # one layer more: only it runs
  r3 <- activations(f, x, layers = c("conv1", "fc1", "fc2"), batch_size = 9, cache = cache)
  expect_identical(r3$provenance$cached, c("conv1", "fc1"))
  expect_identical(r3$provenance$forward_passes, 1)
  # the reducer changes: a miss
  r4 <- activations(f, x, layers = "fc1", reduce = "srp", k = 5, cache = cache)
  expect_length(r4$provenance$cached, 0)
  expect_identical(ncol(r4[["fc1"]]), 5L)
  # the inputs change: a miss
  x2 <- x; x2[1] <- x2[1] + 0.5
  r5 <- activations(f, x2, layers = "fc1", cache = cache)
  expect_length(r5$provenance$cached, 0)
  # the model file changes (another checkpoint, same path): a miss
  expect_true(file.copy(ext_file("fmnist_cnn_step0000.pt"), f, overwrite = TRUE))
  r6 <- activations(f, x, layers = "fc1", cache = cache)
  expect_length(r6$provenance$cached, 0)
  expect_false(isTRUE(all.equal(r6[["fc1"]], r1[["fc1"]])))
  expect_error(activations(f, x, cache = c("a", "b")), class = "tensorscope_error_argument")
})

test_that("close() frees a model, which loads again when used", {
  skip_if_not(ts_torch_available())
  m <- ts_model(fixture("mlp.pt"))
  x <- read_rowmajor_txt(fixture("mlp_x.txt"), c(12, 5))
  before <- predict(m, x)
  close(m)
  expect_error(tensorscope:::torch_call("ts_torch_forward_count", m$ptr))
  expect_equal(predict(m, x), before)
})

test_that("each batch's garbage is collected before the next batch is made", {
  # R collects when its heap has grown by a fraction of what is live, so with gigabytes of
  # preallocated layers the batches' inputs piled up between collections; here each
  # batch leaves an environment with a finalizer that records its collection
  skip_if_not(ts_torch_available())
  x <- fmnist()$images[1:24, , , , drop = FALSE]
  f <- ext_file("fmnist_cnn_step1125.pt")
  gone <- integer()
  at_request <- list()
  get <- function(rows) {
    b <- (rows[1] - 1) %/% 4 + 1
    at_request[[b]] <<- gone
    e <- new.env()
    reg.finalizer(e, function(e) gone <<- c(gone, b))
    x[rows, , , , drop = FALSE]
  }
  activations(f, get, layers = "fc2", batch_size = 4, stimuli = paste0("s", 1:24))
  # batch b's inputs are requested after batches 1 .. b - 1 were collected
  for (b in 2:6) expect_setequal(at_request[[b]], seq_len(b - 1))
})

test_that("inputs may be a function of rows: the same activations, stimuli made batch by batch", {
  skip_if_not(ts_torch_available())
  x <- fmnist()$images[1:11, , , , drop = FALSE]
  f <- ext_file("fmnist_cnn_step1125.pt")
  ids <- paste0("s", 1:11)
  seen <- integer()
  get <- function(rows) { seen <<- c(seen, length(rows)); x[rows, , , , drop = FALSE] }
  a <- activations(f, x, layers = c("conv1", "fc2"), batch_size = 4, stimuli = ids)
  b <- activations(f, get, layers = c("conv1", "fc2"), batch_size = 4, stimuli = ids)
  expect_identical(b$layers, a$layers)
  expect_identical(seen, c(4L, 4L, 3L))
  expect_error(activations(f, get, layers = "fc2"), "stimuli", class = "tensorscope_error_argument")
  expect_error(activations(f, get, layers = "fc2", stimuli = ids, cache = tempfile()), class = "tensorscope_error_argument")
  expect_error(activations(f, function(rows) x[1, , , , drop = FALSE], layers = "fc2", stimuli = ids, batch_size = 4),
               class = "tensorscope_error_mismatch")
  # progress is reported through progressr, one step per batch
  withr::local_options(progressr.enable = TRUE)
  steps <- 0
  withCallingHandlers(activations(f, x, layers = "fc2", batch_size = 4),
                      progression = function(c) if (identical(c$type, "update")) steps <<- steps + 1)
  expect_identical(steps, 3)
})

test_that("the analyzer's Gram-equivalent of a layer has the layer's centred Gram, wide or narrow", {
  set.seed(3)
  for (p in c(7, 40, 3000)) {
    x <- matrix(rnorm(30 * p, mean = 5), 30, p, dimnames = list(paste0("s", 1:30), NULL))
    r <- tensorscope:::reduce_layer(x, block_bytes = 30 * 8 * 100)   # blocks of 100 columns
    expect_equal(tcrossprod(tensorscope:::reduce_layer(x)), tcrossprod(r), tolerance = 1e-10)
    xc <- sweep(x, 2L, colMeans(x))
    expect_lte(ncol(r), 30)
    expect_equal(tcrossprod(r), tcrossprod(xc), tolerance = 1e-10)
    expect_equal(colMeans(r), rep(0, ncol(r)), tolerance = 1e-8)
  }
  expect_identical(rownames(tensorscope:::reduce_layer(x)), rownames(x))
})
