test_that("without LibTorch, model functions raise torch_unavailable", {
  skip_if(ts_torch_available())
  expect_error(ts_model(ext_file("fmnist_cnn_step1125.pt")), class = "tensorscope_error_torch_unavailable")
  expect_error(activations(ext_file("fmnist_cnn_step1125.pt"), array(0, c(1, 1, 28, 28))),
               class = "tensorscope_error_torch_unavailable")
  expect_error(fisher(ext_file("fmnist_cnn_step1125.pt"), array(0, c(1, 1, 28, 28)), 0L),
               class = "tensorscope_error_torch_unavailable")
})

test_that("ts_model loads TorchScript and lists submodules with parameter counts", {
  skip_if_not(ts_torch_available())
  m <- ts_model(ext_file("fmnist_cnn_step1125.pt"))
  expect_s3_class(m, "ts_model")
  expect_identical(layers(m), c("conv1", "relu1", "pool1", "conv2", "relu2", "pool2", "flatten", "fc1", "relu3", "fc2"))
  p <- model_parameters(m)
  expect_identical(dim(p$conv1.weight), c(8L, 1L, 3L, 3L))
  expect_equal(m$modules$n_total[m$modules$module == ""], sum(lengths(p)))
  expect_equal(m$modules$n_total[m$modules$module == "fc1"], 16 * 7 * 7 * 32 + 32)
  expect_output(print(m), "conv1 +Conv2d +80")
  expect_equal(m$step, 1125)
})

test_that("activations equal the exporting script's reference activations (submodules run by hand)", {
  skip_if_not(ts_torch_available())
  s <- fmnist()
  ref <- readRDS(ext_file("fmnist_cnn_reference.rds"))
  x <- s$images[1:10, , , , drop = FALSE]
  r <- activations(ext_file("fmnist_cnn_step1125.pt"), x, layers = names(ref), batch_size = 3)
  expect_s3_class(r, "ts_reps")
  for (l in names(ref)) {
    expect_equal(unname(r$layers[[l]]), matrix(ref[[l]], 10), tolerance = 1e-6, ignore_attr = TRUE)
    expect_identical(as.integer(r$shapes[[l]]), dim(ref[[l]])[-1])
  }
  expect_identical(r$provenance$step, 1125)
  expect_identical(r$provenance$batch_size, 3L)
  expect_identical(r$provenance$device, "cpu")
})

test_that("one forward pass per batch, whatever the number of layers; batch size does not change results", {
  skip_if_not(ts_torch_available())
  m <- ts_model(ext_file("fmnist_cnn_step1125.pt"))
  x <- fmnist()$images[1:37, , , , drop = FALSE]
  r1 <- activations(m, x, layers = c("conv1", "pool2", "fc1", "fc2"), batch_size = 10)
  expect_identical(r1$provenance$forward_passes, 4)   # ceiling(37 / 10), not 4 layers x 4 batches
  r2 <- activations(m, x, layers = c("conv1", "pool2", "fc1", "fc2"), batch_size = 37)
  expect_identical(r2$provenance$forward_passes, 1)
  r3 <- activations(m, x, layers = c("fc2", "conv1"), batch_size = 1)
  expect_identical(r3$provenance$forward_passes, 37)
  for (l in names(r1)) expect_equal(r1[[l]], r2[[l]], tolerance = 1e-6)
  expect_equal(r3[["fc2"]], r1[["fc2"]], tolerance = 1e-6)
  # the model output (predict) equals the captured last layer
  expect_equal(unname(predict(m, x, batch_size = 8)), unname(r1[["fc2"]]), tolerance = 1e-6, ignore_attr = TRUE)
  # the shipped CNN is trained: clearly above chance on the shipped stimuli
  s <- fmnist()
  expect_gt(mean(max.col(predict(m, s$images)) == as.integer(s$labels)), 0.7)
})

test_that("a traced MLP's output matches PyTorch's", {
  skip_if_not(ts_torch_available())
  x <- read_rowmajor_txt(fixture("mlp_x.txt"), c(12, 5))
  out <- read_rowmajor_txt(fixture("mlp_out.txt"), c(12, 3))
  r <- activations(fixture("mlp.pt"), x, layers = c("hidden", "out"))
  expect_equal(unname(r[["out"]]), out, tolerance = 1e-6, ignore_attr = TRUE)
  p <- model_parameters(fixture("mlp.pt"))
  expect_equal(unname(r[["hidden"]]), sweep(x %*% t(p$hidden.weight), 2, p$hidden.bias, "+"),
               tolerance = 1e-6, ignore_attr = TRUE)
})

test_that("nested identity hooks of a scripted transformer return attention patterns", {
  skip_if_not(ts_torch_available())
  m <- ts_model(ext_file("induction_step1500.pt"))
  tok <- readRDS(ext_file("induction_tokens.rds"))
  expect_true(all(c("blocks.0.attn.hook_pattern", "blocks.1.attn.hook_pattern") %in% layers(m)))
  a <- activations(m, tok, layers = c("blocks.0.attn.hook_pattern", "blocks.1.attn.hook_pattern", "blocks.1.hook_resid_post"))
  expect_identical(as.integer(a$shapes[["blocks.1.attn.hook_pattern"]]), c(4L, 25L, 25L))
  expect_identical(a$provenance$forward_passes, 1)
  p <- array(a[["blocks.1.attn.hook_pattern"]], c(nrow(tok), 4, 25, 25))
  expect_equal(apply(p, c(1, 2, 3), sum), array(1, c(nrow(tok), 4, 25)), tolerance = 1e-5)   # rows sum to 1
  expect_true(all(p[, , 1, 2:25] == 0))                                                    # causal
  # induction: on the repeated half some layer-1 head attends to the token after the
  # previous occurrence of the current token (offset seq_len - 1 back)
  seq_len <- 12
  q <- (seq_len + 2):25
  stripe <- sapply(1:4, function(h) mean(sapply(q, function(i) mean(p[, h, i, i - seq_len + 1]))))
  expect_gt(max(stripe), 0.5)
  # W_Q etc. per head are readable
  w <- model_parameters(m)
  expect_identical(dim(w$blocks.0.attn.W_Q), c(4L, 64L, 16L))
  expect_identical(dim(w$blocks.1.attn.W_O), c(4L, 16L, 64L))
  # the model output is the logits; induction means the repeated half is predicted, from
  # its second token on (the first cannot be: the model was trained with random periods)
  logits <- predict(m, tok)
  expect_identical(dim(logits), c(nrow(tok), 25L, 64L))
  q <- (seq_len + 3):25
  pred <- apply(logits[, q - 1, , drop = FALSE], c(1, 2), which.max) - 1
  expect_gt(mean(pred == tok[, q]), 0.9)
})

test_that("checkpoints: a vector of files or a directory gives a trajectory with a step column", {
  skip_if_not(ts_torch_available())
  files <- dir(ext_file(), "^fmnist_cnn_step", full.names = TRUE)
  x <- fmnist()$images[1:8, , , , drop = FALSE]
  traj <- activations(rev(files), x, layers = "fc2")
  expect_identical(traj$step, c(0, 50, 200, 1000, 1125))
  expect_true(all(vapply(traj$reps, inherits, logical(1), "ts_reps")))
  expect_identical(traj$reps[[5]]$provenance$step, 1125)
  expect_false(isTRUE(all.equal(traj$reps[[1]][["fc2"]], traj$reps[[5]][["fc2"]])))
  d <- tempfile(); dir.create(d); file.copy(files[1:2], d)
  expect_identical(activations(d, x, layers = "fc2")$step, c(0, 50))
})

test_that("a model restored with readRDS reloads its file", {
  skip_if_not(ts_torch_available())
  m <- ts_model(fixture("mlp.pt"))
  f <- tempfile(fileext = ".rds"); saveRDS(m, f); m2 <- readRDS(f)
  x <- read_rowmajor_txt(fixture("mlp_x.txt"), c(12, 5))
  expect_equal(predict(m2, x), predict(m, x))
})

test_that("bad input gets classed errors, never a crash", {
  skip_if_not(ts_torch_available())
  cnn <- ext_file("fmnist_cnn_step1125.pt")
  x <- fmnist()$images[1:4, , , , drop = FALSE]
  expect_error(ts_model(tempfile()), class = "tensorscope_error_file")
  bad <- tempfile(fileext = ".pt"); writeLines("not a model", bad)
  expect_error(ts_model(bad), class = "tensorscope_error_not_torchscript")
  expect_error(ts_model(ext_file("fmnist_stimuli.rds")), class = "tensorscope_error_not_torchscript")
  expect_error(ts_model(c(cnn, cnn)), class = "tensorscope_error_argument")
  err <- expect_error(activations(cnn, x, layers = c("conv1", "conv9")), class = "tensorscope_error_argument")
  expect_match(conditionMessage(err), "conv9")
  expect_match(conditionMessage(err), "fc1")   # lists the valid names
  expect_error(activations(cnn, array(0, c(4, 3, 28, 28))), class = "tensorscope_error_mismatch")
  expect_error(activations(cnn, array(0, c(4, 28, 28, 28, 2))), class = "tensorscope_error_mismatch")
  expect_error(activations(cnn, array("a", c(4, 1, 28, 28))), class = "tensorscope_error_type")
  x_na <- x; x_na[2] <- NA
  expect_error(activations(cnn, x_na), class = "tensorscope_error_non_finite")
  expect_error(activations(cnn, x, batch_size = 0), class = "tensorscope_error_argument")
  expect_error(activations(cnn, list(x, x[1:2, , , , drop = FALSE])), class = "tensorscope_error_mismatch")
  expect_error(activations(cnn, x, device = "tpu"), class = "tensorscope_error_argument")
  expect_error(activations(c(cnn, tempfile()), x), class = "tensorscope_error_file")
  expect_error(layers(42), class = "tensorscope_error_type")
  if (!isTRUE(ts_build_info()$cuda)) {
    expect_error(ts_model(cnn, device = "cuda"), class = "tensorscope_error_cuda_unavailable")
    expect_error(activations(cnn, x, device = "cuda"), class = "tensorscope_error_cuda_unavailable")
  }
})

test_that("torch for R nn_modules are accepted (needs the torch package)", {
  skip_if_not(ts_torch_available())
  skip_if_not_installed("torch")
  skip_if_not(torch::torch_is_installed())
  net <- torch::nn_sequential(torch::nn_linear(3, 4), torch::nn_relu())
  x <- matrix(rnorm(10 * 3), 10)
  r <- activations(net, x, layers = c("0", "1"), batch_size = 4)
  w <- as.array(net[[1]]$weight); b <- as.array(net[[1]]$bias)
  expect_equal(unname(r[["0"]]), sweep(x %*% t(w), 2, b, "+"), tolerance = 1e-5, ignore_attr = TRUE)
  expect_equal(unname(r[["1"]]), pmax(unname(r[["0"]]), 0), ignore_attr = TRUE)
})

test_that("loading tensorscope does not load LibTorch; the first model call does", {
  skip_if_not(ts_torch_available())
  skip_if_not(file.exists("/proc/self/maps"))
  lib <- dirname(system.file(package = "tensorscope"))
  code <- sprintf(paste0(".libPaths(c('%s', .libPaths())); library(tensorscope); ",
                         "a <- any(grepl('libtorch', readLines('/proc/self/maps'))); ",
                         "invisible(ts_model('%s')); b <- any(grepl('libtorch', readLines('/proc/self/maps'))); cat(a, b)"),
                  lib, ext_file("fmnist_cnn_step0000.pt"))
  out <- system2(file.path(R.home("bin"), "Rscript"), c("-e", shQuote(code)), stdout = TRUE)
  expect_identical(out[length(out)], "FALSE TRUE")
})

test_that("checkpoint steps come from step-like numbers, not from digits inside a model's name", {
  cs <- tensorscope:::checkpoint_step
  expect_true(is.na(cs("resnet50.pt")))
  expect_true(is.na(cs("vit_b16.pt")))
  expect_equal(cs("fmnist_cnn_step0050.pt"), 50)
  expect_equal(cs("model-epoch12.pt"), 12)
  expect_equal(cs("run_300.pt"), 300)
  d <- withr::local_tempdir()
  f <- file.path(d, c("model1.pt", "model10.pt", "model2.pt"))
  file.create(f)
  ck <- tensorscope:::checkpoint_files(d)
  expect_equal(basename(ck$files), c("model1.pt", "model2.pt", "model10.pt"))
  expect_equal(ck$step, c(1, 2, 10))
})
