# torch for R interop: nn_module capture (with fake module trees here, real ones where
# torch for R is installed) and torch_tensors handed to the backend without copies.

# ---- nn_module capture, on fakes ------------------------------------------------------

test_that("a sequential module's layers equal the layers applied by hand, one call per batch", {
  set.seed(1)
  W <- matrix(rnorm(3 * 4), 3)
  lin <- fake_leaf(function(x) x %*% W)
  relu <- fake_leaf(function(x) pmax(x, 0))
  sq <- fake_leaf(function(x) x^2)
  net <- fake_sequential(lin, relu, sq)
  x <- matrix(rnorm(10 * 3), 10, dimnames = list(letters[1:10], NULL))
  before <- module_lists(net)
  r <- fake_activations(net, x, layers = c("0", "1", "2"), batch_size = 4)
  h0 <- x %*% W
  expect_equal(unname(r[["0"]]), unname(h0), tolerance = 1e-14)
  expect_identical(unname(r[["1"]]), pmax(unname(r[["0"]]), 0))
  expect_identical(unname(r[["2"]]), unname(r[["1"]])^2)
  expect_identical(r$stimuli, letters[1:10])          # row names of the inputs
  expect_identical(r$provenance$forward_passes, 3L)  # ceiling(10 / 4)
  expect_identical(attr(net, "module")$calls, 3L)
  expect_identical(attr(lin, "module")$calls, 3L)
  # the module is exactly as it was, and back in training mode
  expect_identical(module_lists(net), before)
  expect_true(attr(net, "module")$training)
  # default layers: the leaves
  expect_identical(names(fake_activations(net, x)), c("0", "1", "2"))
})

test_that("nested custom modules: any named submodule at any depth, shapes kept", {
  set.seed(2)
  W1 <- matrix(rnorm(6 * 5), 6)
  W2 <- matrix(rnorm(5 * 2), 5)
  block <- fake_module(function(private, x) private$modules_$act(private$modules_$lin(x)),
                       lin = fake_leaf(function(x) x %*% W1), act = fake_leaf(tanh))
  net <- fake_module(function(private, x) {
    x <- private$modules_$flatten(x)
    x <- private$modules_$block(x)
    private$modules_$head(x)
  }, flatten = fake_leaf(function(x) matrix(x, nrow(x))), block = block,
  head = fake_leaf(function(x) array(x %*% W2, c(nrow(x), 1, 2))))
  x <- array(rnorm(7 * 2 * 3), c(7, 2, 3))
  before <- module_lists(net)
  r <- fake_activations(net, x, layers = c("block.lin", "block", "head", "block.act"), batch_size = 3)
  flat <- matrix(x, 7)
  h <- tanh(flat %*% W1)
  expect_identical(names(r), c("block.lin", "block", "head", "block.act"))
  # (BLAS may round a 3-row block differently from the 7-row product: equal to 1e-14)
  expect_equal(unname(r[["block.lin"]]), unname(flat %*% W1), tolerance = 1e-14)
  expect_equal(unname(r[["block"]]), unname(h), tolerance = 1e-14)
  expect_identical(r[["block.act"]], r[["block"]])
  expect_equal(unname(r[["head"]]), unname(h %*% W2))
  expect_identical(r$shapes$head, c(1L, 2L))
  expect_identical(module_lists(net), before)
  expect_setequal(names(tensorscope:::rt_walk(net)), c("flatten", "block", "block.lin", "block.act", "head"))
  # mixed training flags come back as they were; the pass itself ran in evaluation mode
  attr(block, "module")$train(FALSE)
  seen <- NULL
  probe <- fake_sequential(fake_leaf(function(x) { seen <<- attr(net, "module")$training; x }), net)
  attr(probe, "module")$training <- TRUE
  fake_activations(probe, x, layers = "1.head")
  expect_false(seen)
  expect_true(attr(probe, "module")$training)
  expect_true(attr(net, "module")$training)
  expect_false(attr(block, "module")$training)
  expect_false(attr(attr(block, "module")$.__enclos_env__$private$modules_$lin, "module")$training)
})

test_that("the module is restored on error and on interrupt", {
  boom <- fake_leaf(function(x) if (nrow(x) < 4) stop("bad batch") else x)
  net <- fake_sequential(fake_leaf(function(x) x + 1), boom)
  x <- matrix(1, 6, 2)
  before <- module_lists(net)
  expect_error(fake_activations(net, x, layers = c("0", "1"), batch_size = 4), class = "tensorscope_error_torch")
  expect_identical(module_lists(net), before)
  expect_true(attr(net, "module")$training)
  stop_here <- fake_sequential(fake_leaf(function(x) rlang::interrupt()))
  before <- module_lists(stop_here)
  got <- tryCatch(fake_activations(stop_here, x, layers = "0"), interrupt = function(e) "interrupted")
  expect_identical(got, "interrupted")
  expect_identical(module_lists(stop_here), before)
})

test_that("the module is restored after a forward that fails part-way (mid-pass, later batch)", {
  # the error comes after a wrapped submodule recorded its output, inside a nested block,
  # in the second batch
  calls <- 0L
  inner <- fake_module(function(private, x) {
    h <- private$modules_$lin(x)
    calls <<- calls + 1L
    if (calls == 2L) stop("part-way")
    private$modules_$act(h)
  }, lin = fake_leaf(function(x) 2 * x), act = fake_leaf(tanh))
  net <- fake_sequential(fake_leaf(function(x) x + 1), inner, fake_leaf(identity))
  x <- matrix(rnorm(12), 6)
  before <- module_lists(net)
  expect_error(fake_activations(net, x, layers = c("0", "1.lin", "1.act", "2"), batch_size = 3),
               class = "tensorscope_error_torch")
  expect_identical(module_lists(net), before)
  expect_true(attr(net, "module")$training)
  expect_true(attr(inner, "module")$training)
  # an interrupt in the second batch, also mid-pass
  calls <- 0L
  stopper <- fake_module(function(private, x) {
    h <- private$modules_$lin(x)
    calls <<- calls + 1L
    if (calls == 2L) rlang::interrupt()
    h
  }, lin = fake_leaf(function(x) -x))
  before <- module_lists(stopper)
  got <- tryCatch(fake_activations(stopper, x, layers = "lin", batch_size = 3), interrupt = function(e) "interrupted")
  expect_identical(got, "interrupted")
  expect_identical(module_lists(stopper), before)
  # and it runs again as before
  calls <- 10L
  expect_identical(unname(fake_activations(stopper, x, layers = "lin")[["lin"]]), -x)
})

test_that("nn_module layers kept as tensors (tensors = TRUE) give a ts_reps of tensors", {
  skip_if_not(ts_torch_available())
  set.seed(7)
  W <- matrix(rnorm(3 * 5), 3)
  net <- fake_sequential(fake_leaf(function(x) x %*% W), fake_leaf(function(x) pmax(x, 0)))
  x <- matrix(rnorm(12 * 3), 12)
  r <- fake_activations(net, x, batch_size = 5)
  t <- fake_activations(net, x, batch_size = 5, tensors = TRUE)
  expect_true(all(vapply(t$layers, tensorscope:::is_rtensor, logical(1))))
  expect_identical(t$shapes, r$shapes)
  expect_equal(tensorscope:::rtensor_matrix(t$layers[["1"]]), unname(r[["1"]]), tolerance = 1e-14, ignore_attr = TRUE)
  expect_equal(as.matrix(cka_layers(t)), as.matrix(cka_layers(r)), tolerance = 1e-12)
})

test_that("a submodule called twice is captured at its last call; shared instances once", {
  relu <- fake_leaf(function(x) pmax(x, 0))
  net <- fake_module(function(private, x) {
    a <- private$modules_$relu(x)
    private$modules_$relu(-a - 1)
  }, relu = relu)
  x <- matrix(c(-2, -1, 1, 2), 4)
  r <- fake_activations(net, x, layers = "relu")
  expect_identical(unname(r[["relu"]]), pmax(-pmax(x, 0) - 1, 0))
  # one instance under two names is listed (and captured) at its first path
  lin <- fake_leaf(function(x) 2 * x)
  two <- fake_module(function(private, x) private$modules_$b(private$modules_$a(x)), a = lin, b = lin)
  expect_identical(names(tensorscope:::rt_walk(two)), "a")
})

test_that("bad layers and uncalled submodules are classed errors naming them", {
  net <- fake_module(function(private, x) private$modules_$used(x),
                     used = fake_leaf(identity), unused = fake_leaf(identity))
  x <- matrix(rnorm(8), 4)
  err <- expect_error(fake_activations(net, x, layers = "nope"), class = "tensorscope_error_argument")
  expect_match(conditionMessage(err), "nope")
  expect_match(conditionMessage(err), "used")
  err <- expect_error(fake_activations(net, x, layers = "unused"), class = "tensorscope_error_argument")
  expect_match(conditionMessage(err), "unused")
  expect_error(fake_activations(net, x, layers = 3), class = "tensorscope_error_argument")
  expect_error(fake_activations(net, x, batch_size = 0), class = "tensorscope_error_argument")
  expect_error(fake_activations(net, array("a", c(2, 2))), class = "tensorscope_error_type")
  expect_error(fake_activations(net, list(x, x[1:2, ])), class = "tensorscope_error_mismatch")
  expect_error(fake_activations(net, x, device = "tpu"), class = "tensorscope_error_argument")
  expect_error(fake_activations(net, x, device = "cuda"), class = "tensorscope_error_cuda_unavailable")
  on_gpu <- function(...) tensorscope:::activations_rtorch(net, x, NULL, 4, "cpu", NULL, ops = fake_ops("cuda:0"))
  expect_error(on_gpu(), class = "tensorscope_error_argument")
})

test_that("without torch for R, an nn_module is a classed error", {
  skip_if(tensorscope:::rtorch_usable())
  net <- fake_sequential(fake_leaf(identity))
  expect_error(activations(net, matrix(1, 2, 2)), class = "tensorscope_error_torch_unavailable")
})

# ---- torch_tensors in the metrics, on fakes laid out as torch for R's tensors ------------

test_that("the LibTorch check: one libtorch_cpu, the one tensorscope was built against", {
  facts <- list(torch = "1", torch_libdir = "/opt/libtorch/lib", torch_version = "2.0.1")
  map <- function(...) paste("7f00-7f10 r-xp 00000000 08:01 42", c(...))
  mm <- tensorscope:::rtensor_mismatch
  expect_null(mm(map("/opt/libtorch/lib/libtorch_cpu.so", "/opt/libtorch/lib/libtorch_cpu.so"), facts, TRUE))
  expect_null(mm(map("/usr/lib/libR.so"), facts, TRUE))   # none loaded yet: ours will be the one
  expect_match(mm(map("/other/lib/libtorch_cpu.so"), facts, TRUE), "/other/lib/libtorch_cpu.so")
  expect_match(mm(map("/opt/libtorch/lib/libtorch_cpu.so", "/x/libtorch_cpu.so.1.13"), facts, TRUE), "2 LibTorch")
  expect_match(mm(map("/opt/libtorch/lib/libtorch_cpu.so"), facts, FALSE), "without its LibTorch")
  expect_match(mm(NULL, facts, TRUE), "proc")
})

test_that("CKA, CKA layers and RDMs on tensors equal those on the R arrays (1e-12)", {
  skip_if_not(ts_torch_available())
  fake <- tensorscope:::rtensor_fake
  set.seed(3)
  n <- 30
  x <- array(rnorm(n * 2 * 3 * 2), c(n, 2, 3, 2))
  y <- matrix(rnorm(n * 5), n) + matrix(x, n)[, 1:5]
  z <- matrix(rnorm(n * 40), n)
  tx <- fake(x); ty <- fake(y); tz <- fake(z)
  expect_s3_class(tx, "torch_tensor")
  for (k in c("linear", "rbf")) for (e in c("biased", "debiased")) {
    expect_equal(cka(tx, ty, kernel = k, estimator = e), cka(x, y, kernel = k, estimator = e), tolerance = 1e-12)
  }
  expect_equal(cka(tx, tz, path = "gram"), cka(x, z), tolerance = 1e-12)
  expect_equal(cka(tx, y), cka(x, y), tolerance = 1e-12)   # a tensor with an R matrix
  expect_equal(cka(tx, ty, backend = "eigen"), cka(x, y), tolerance = 1e-12)
  reps_t <- ts_reps(list(a = tx, b = ty, c = tz), stimuli = paste0("s", 1:n))
  reps_r <- ts_reps(list(a = x, b = y, c = z), stimuli = paste0("s", 1:n))
  expect_true(all(vapply(reps_t$layers, tensorscope:::is_rtensor, logical(1))))  # held, not copied
  expect_identical(reps_t$shapes, reps_r$shapes)
  expect_equal(as.matrix(cka_layers(reps_t)), as.matrix(cka_layers(reps_r)), tolerance = 1e-12)
  expect_equal(as.matrix(cka_layers(reps_t, z, estimator = "debiased")),
               as.matrix(cka_layers(reps_r, z, estimator = "debiased")), tolerance = 1e-12)
  for (m in c("correlation", "cosine", "euclidean", "sqeuclidean")) {
    expect_equal(rdm(reps_t, m)$dissimilarities, rdm(reps_r, m)$dissimilarities, tolerance = 1e-12)
  }
  expect_identical(rdm(reps_t)$conditions, paste0("s", 1:n))
  expect_equal(rdm(tz, "euclidean")$dissimilarities, rdm(z, "euclidean")$dissimilarities, tolerance = 1e-12)
  # methods without a LibTorch path copy the tensor and agree too
  expect_equal(rdm(reps_t, "mahalanobis")$dissimilarities, rdm(reps_r, "mahalanobis")$dissimilarities, tolerance = 1e-12)
  g <- rep(1:10, 3)
  expect_equal(rdm(ty, conditions = g)$dissimilarities, rdm(y, conditions = g)$dissimilarities, tolerance = 1e-12)
  # the other functions see R copies
  expect_equal(summary(reps_t), summary(reps_r))
  expect_equal(tensorscope:::as_reps(reps_t)$layers, reps_r$layers)
  resp <- matrix(rnorm(n * 3), n)
  expect_equal(predictivity(reps_t, resp, folds = 3)$r, predictivity(reps_r, resp, folds = 3)$r, tolerance = 1e-12)
  expect_output(print(reps_t), "torch_tensor on cpu")
  # float32 tensors: promoted to float64 on the device
  expect_equal(cka(fake(x, float32 = TRUE), ty), cka(x, y), tolerance = 1e-6)
})

test_that("ridge predictivity on tensors runs in place and equals the R arrays (every alpha rule)", {
  skip_if_not(ts_torch_available())
  fake <- tensorscope:::rtensor_fake
  set.seed(5)
  n <- 36
  x <- matrix(rnorm(n * 6), n)                       # p < n: feature form
  w <- array(rnorm(n * 2 * 25), c(n, 2, 25))         # p > n: kernel form, flattened on the device
  resp <- x[, 1:3] %*% matrix(rnorm(9), 3) + matrix(rnorm(n * 4), n, 3 + 1)[, 1:3]
  rownames(resp) <- paste0("s", 1:n)
  reps_t <- ts_reps(list(a = fake(x), b = fake(w)), stimuli = paste0("s", 1:n))
  reps_r <- ts_reps(list(a = x, b = w), stimuli = paste0("s", 1:n))
  inner <- rep(1:3, length.out = n)
  for (sel in c("gcv", "loo", "kfold")) for (apt in c(TRUE, FALSE)) {
    seen <- ridge_layers_seen(a <- predictivity(reps_t, resp, alpha_select = sel, alpha_per_target = apt,
                                                return_predictions = TRUE))
    expect_identical(seen, c(TRUE, TRUE))         # both layers went to the backend as tensors
    b <- predictivity(reps_r, resp, alpha_select = sel, alpha_per_target = apt, return_predictions = TRUE)
    expect_equal(a$r, b$r, tolerance = 1e-12)
    expect_equal(a$r2, b$r2, tolerance = 1e-12)
    expect_identical(a$alpha, b$alpha)             # the same alphas chosen
    expect_identical(attr(a, "splits")$alpha, attr(b, "splits")$alpha)
    expect_equal(attr(a, "predictions"), attr(b, "predictions"), tolerance = 1e-12)
  }
  # caller's splits and inner folds, and shuffled stimuli matched by id
  spl <- list(1:12, 13:24, 25:36)
  expect_equal(predictivity(reps_t, resp, splits = spl, inner_splits = inner)$r,
               predictivity(reps_r, resp, splits = spl, inner_splits = inner)$r, tolerance = 1e-12)
  perm <- sample(n)
  expect_equal(suppressMessages(predictivity(reps_t, resp[perm, ]))$r, predictivity(reps_r, resp)$r, tolerance = 1e-12)
  # backend = "eigen" and PLS copy the tensors into R, and agree
  expect_identical(ridge_layers_seen(e <- predictivity(reps_t, resp, backend = "eigen")), c(FALSE, FALSE))
  expect_equal(e$r, predictivity(reps_r, resp)$r, tolerance = 1e-12)
  expect_equal(predictivity(reps_t, resp, method = "pls", ncomp = 3)$r,
               predictivity(reps_r, resp, method = "pls", ncomp = 3)$r, tolerance = 1e-12)
  # a float32 tensor is promoted on the device
  expect_equal(predictivity(list(a = fake(x, float32 = TRUE)), resp)$r, predictivity(list(a = x), resp)$r, tolerance = 1e-5)
  # a constant tensor layer: NA with the same warning as an R matrix
  expect_warning(r <- predictivity(list(a = fake(x), c = fake(matrix(1, n, 3))), resp),
                 class = "tensorscope_warning_unusable_layer")
  expect_true(all(is.na(r$r[r$layer == "c"])))
})

test_that("ridge folds on a tensor read its data where it is (same pointer) and equal the Eigen core", {
  skip_if_not(ts_torch_available())
  set.seed(6)
  x <- matrix(rnorm(30 * 5), 30)
  y <- matrix(rnorm(30 * 2), 30)
  tx <- tensorscope:::rtensor_fake(x)
  folds <- tensorscope:::torch_run("ts_torch_ridge_folds", tx)
  expect_identical(tensorscope:::torch_call("ts_torch_ridge_folds_ptr", folds), tensorscope:::rtensor_info(tx)$data_ptr)
  spl <- tensorscope:::kfold_splits(30, 3, NULL, 1)
  run <- function(X, d) tensorscope:::cpp_ridge_cv(X, y, spl$train, spl$test, 10^(-2:3), "loo", TRUE, 5, 1, TRUE,
                                                  TRUE, 1L, d, list())
  a <- run(NULL, folds)
  b <- run(x, NULL)
  expect_equal(a$pooled_r, b$pooled_r, tolerance = 1e-12)
  expect_equal(a$predictions, b$predictions, tolerance = 1e-12)
  expect_identical(a$alpha, b$alpha)
  tensorscope:::torch_call("ts_torch_ridge_folds_free", folds)
  expect_error(run(NULL, folds), class = "tensorscope_error_argument")   # freed: refused, no crash
  expect_identical(tensorscope:::rtensor_info(tx)$data_ptr, tensorscope:::rtensor_info(tx)$data_ptr)
})

test_that("activations(): torch_tensor inputs reach the TorchScript forward without a copy; tensors = TRUE", {
  skip_if_not(ts_torch_available())
  fake <- tensorscope:::rtensor_fake
  f <- system.file("extdata", "fmnist_cnn_step1125.pt", package = "tensorscope")
  s <- readRDS(system.file("extdata", "fmnist_stimuli.rds", package = "tensorscope"))
  x <- s$images[1:20, , , , drop = FALSE]
  tx <- fake(x)
  a <- activations(f, x, layers = c("conv1", "fc1", "fc2"), batch_size = 8, dtype = "float64")
  b <- activations(f, tx, layers = c("conv1", "fc1", "fc2"), batch_size = 8, dtype = "float64")
  for (l in names(a$layers)) expect_equal(unname(b$layers[[l]]), unname(a$layers[[l]]), tolerance = 1e-12)
  expect_identical(b$provenance$forward_passes, 3)
  # the first batch's input, as forward() receives it, is the tensor's own memory
  m <- ts_model(f)
  info <- tensorscope:::torch_run("ts_torch_run", tensorscope:::model_ptr(m), list(tx), "fc1", "float64", c(0, 8))
  expect_identical(info$input_ptr, tensorscope:::rtensor_info(tx)$data_ptr)
  expect_identical(info$batch, 8L)
  # float32 forward: converted on the device, batch by batch (another pointer), same values
  c32 <- activations(f, tx, layers = "fc1", batch_size = 8)
  expect_equal(unname(c32$layers$fc1), unname(a$layers$fc1), tolerance = 1e-5)
  # layers kept as tensors: the ts_reps holds them, the metrics read them in place
  t <- activations(f, tx, layers = c("conv1", "fc1", "fc2"), batch_size = 8, dtype = "float64", tensors = TRUE)
  expect_true(all(vapply(t$layers, tensorscope:::is_rtensor, logical(1))))
  expect_identical(t$shapes, a$shapes)
  expect_identical(t$stimuli, a$stimuli)
  ptrs <- vapply(t$layers, function(l) tensorscope:::rtensor_info(l)$data_ptr, "")
  expect_equal(tensorscope:::rtensor_matrix(t$layers$fc1), unname(a$layers$fc1), tolerance = 1e-12, ignore_attr = TRUE)
  expect_equal(as.matrix(cka_layers(t)), as.matrix(cka_layers(a)), tolerance = 1e-12)
  expect_equal(rdm(t)$dissimilarities, rdm(a)$dissimilarities, tolerance = 1e-12)
  resp <- matrix(rnorm(20 * 3), 20)
  expect_identical(ridge_layers_seen(p <- predictivity(t, resp, folds = 4)), c(TRUE, TRUE, TRUE))
  expect_equal(p$r, predictivity(a, resp, folds = 4)$r, tolerance = 1e-12)
  expect_identical(vapply(t$layers, function(l) tensorscope:::rtensor_info(l)$data_ptr, ""), ptrs)  # never moved
  pooled <- activations(f, tx, layers = "conv1", batch_size = 8, dtype = "float64", tensors = TRUE, reduce = "avgpool")
  ap <- activations(f, x, layers = "conv1", batch_size = 8, dtype = "float64", reduce = "avgpool")
  expect_equal(tensorscope:::rtensor_matrix(pooled$layers$conv1), unname(ap$layers$conv1), tolerance = 1e-12,
               ignore_attr = TRUE)
  expect_identical(tensorscope:::rtensor_info(pooled$layers$conv1)$dtype, "Double")
  expect_identical(tensorscope:::rtensor_info(activations(f, x, layers = "fc1", tensors = TRUE)$layers$fc1)$dtype, "Float")
  expect_error(activations(f, tx, layers = "fc1", tensors = TRUE, reduce = "srp"), class = "tensorscope_error_argument")
  expect_error(activations(f, tx, layers = "fc1", tensors = TRUE, cache = tempfile()), class = "tensorscope_error_argument")
  expect_error(activations(f, x, layers = "fc1", tensors = NA), class = "tensorscope_error_argument")
  bad <- x
  bad[2, 1, 1, 1] <- NaN
  expect_error(activations(f, fake(bad), layers = "fc1"), class = "tensorscope_error_non_finite")
  expect_error(activations(f, list(tx, fake(x[1:3, , , , drop = FALSE])), layers = "fc1"), class = "tensorscope_error_mismatch")
})

test_that("the backend reads the tensor in place: the data pointer does not change", {
  skip_if_not(ts_torch_available())
  x <- matrix(rnorm(20 * 4), 20)
  tx <- tensorscope:::rtensor_fake(x)
  info <- tensorscope:::rtensor_info(tx, checks = TRUE)
  expect_match(info$data_ptr, "^0x[0-9a-f]+$")
  expect_identical(tensorscope:::rtensor_info(tx)$data_ptr, info$data_ptr)
  expect_identical(info$shape, c(20, 4))
  expect_identical(info$device, "cpu")
  expect_identical(info$dtype, "Double")
  expect_true(info$contiguous && info$finite && !info$constant)
  # a whole analysis leaves the tensor where it was
  invisible(cka_layers(ts_reps(list(a = tx, b = tx))))
  expect_identical(tensorscope:::rtensor_info(tx)$data_ptr, info$data_ptr)
})

test_that("bad tensors are classed errors naming the argument", {
  skip_if_not(ts_torch_available())
  fake <- tensorscope:::rtensor_fake
  x <- matrix(rnorm(20), 10)
  bad <- x; bad[3, 2] <- NaN
  err <- expect_error(cka(fake(bad), x), class = "tensorscope_error_non_finite")
  expect_match(conditionMessage(err), "x")
  expect_error(ts_reps(list(a = fake(bad))), class = "tensorscope_error_non_finite")
  expect_error(cka(fake(x), fake(matrix(1, 10, 3))), class = "tensorscope_error_zero_variance")
  expect_error(cka_layers(list(a = fake(x), b = fake(matrix(1, 10, 3)))), class = "tensorscope_error_zero_variance")
  expect_error(cka(fake(x), fake(x[1:9, ])), class = "tensorscope_error_mismatch")
  expect_error(ts_reps(list(a = fake(x), b = fake(x[1:9, ]))), class = "tensorscope_error_mismatch")
  expect_error(rdm(fake(matrix(c(1, 1, 1, 2, 3, 4), 2, byrow = TRUE))), class = "tensorscope_error_zero_variance")
  expect_error(cka(fake(x), fake(x), backend = "gpu"), class = "tensorscope_error_argument")
})

# ---- with torch for R ---------------------------------------------------------------

test_that("torch for R nn_sequential, custom and nested modules: capture equals calling by hand", {
  skip_without_rtorch()
  torch <- asNamespace("torch")
  torch::torch_manual_seed(1)
  seq_net <- torch::nn_sequential(torch::nn_linear(3, 4), torch::nn_relu(), torch::nn_linear(4, 2))
  seq_net$to(dtype = torch::torch_float64())
  x <- matrix(rnorm(10 * 3), 10)
  before <- module_lists(seq_net)
  r <- activations(seq_net, x, layers = c("0", "1", "2"), batch_size = 4)
  expect_identical(module_lists(seq_net), before)
  xt <- torch::torch_tensor(x, dtype = torch::torch_float64())
  h0 <- seq_net[[1]](xt); h1 <- seq_net[[2]](h0); h2 <- seq_net[[3]](h1)
  expect_equal(unname(r[["0"]]), as.array(h0$detach()), tolerance = 1e-12, ignore_attr = TRUE)
  expect_equal(unname(r[["1"]]), as.array(h1$detach()), tolerance = 1e-12, ignore_attr = TRUE)
  expect_equal(unname(r[["2"]]), as.array(h2$detach()), tolerance = 1e-12, ignore_attr = TRUE)
  # a torch_tensor input gives the same as the R array (float64)
  r2 <- activations(seq_net, xt, layers = c("0", "2"), batch_size = 3)
  expect_equal(r2[["0"]], r[["0"]], tolerance = 1e-12, ignore_attr = TRUE)
  expect_equal(r2[["2"]], r[["2"]], tolerance = 1e-12, ignore_attr = TRUE)

  block <- torch::nn_module(initialize = function() {
    self$lin <- torch::nn_linear(8, 5)
    self$act <- torch::nn_tanh()
  }, forward = function(x) self$act(self$lin(x)))
  net <- torch::nn_module(initialize = function() {
    self$conv1 <- torch::nn_conv2d(1, 2, 3)
    self$relu <- torch::nn_relu()
    self$flatten <- torch::nn_flatten()
    self$block <- block()
    self$fc <- torch::nn_linear(5, 3)
  }, forward = function(x) self$fc(self$block(self$flatten(self$relu(self$conv1(x))))))()
  net$to(dtype = torch::torch_float64())
  img <- array(rnorm(6 * 1 * 4 * 4), c(6, 1, 4, 4))
  before <- module_lists(net)
  r <- activations(net, img, layers = c("conv1", "relu", "block.lin", "block", "fc"), batch_size = 4)
  expect_identical(module_lists(net), before)
  it <- torch::torch_tensor(img, dtype = torch::torch_float64())
  c1 <- net$conv1(it)
  fl <- net$flatten(net$relu(c1))
  bl <- net$block$lin(fl)
  expect_equal(r[["conv1"]], matrix(as.array(c1$detach()), 6), tolerance = 1e-12, ignore_attr = TRUE)
  expect_identical(r$shapes$conv1, c(2L, 2L, 2L))
  expect_equal(r[["block.lin"]], as.array(bl$detach()), tolerance = 1e-12, ignore_attr = TRUE)
  expect_equal(r[["fc"]], as.array(net(it)$detach()), tolerance = 1e-12, ignore_attr = TRUE)
  expect_true(net$training)   # restored
})

test_that("torch for R tensors reach the backend without a copy (same data pointer)", {
  skip_without_rtorch()
  skip_if_not(ts_torch_available())
  skip_if_not(tensorscope:::rtensor_shared(), "tensorscope and torch for R use different LibTorch builds")
  x <- torch::torch_randn(20, 6, dtype = torch::torch_float64())
  info <- tensorscope:::rtensor_info(x)
  expect_identical(norm_ptr(info$data_ptr), norm_ptr(x$data_ptr()))
  xa <- as.array(x)
  y <- torch::torch_randn(20, 3, dtype = torch::torch_float64())
  expect_equal(cka(x, y), cka(xa, as.array(y)), tolerance = 1e-12)
  expect_equal(rdm(x)$dissimilarities, rdm(xa)$dissimilarities, tolerance = 1e-12)
  expect_identical(norm_ptr(tensorscope:::rtensor_info(x)$data_ptr), norm_ptr(x$data_ptr()))
})

test_that("torch for R: ridge, TorchScript inputs and kept layers share memory with torch for R", {
  skip_without_rtorch()
  skip_if_not(ts_torch_available())
  skip_if_not(tensorscope:::rtensor_shared(), "tensorscope and torch for R use different LibTorch builds")
  torch::torch_manual_seed(2)
  x <- torch::torch_randn(40, 12, dtype = torch::torch_float64())
  xa <- as.array(x)
  resp <- xa[, 1:3] %*% matrix(rnorm(9), 3) + matrix(rnorm(40 * 3), 40)
  folds <- tensorscope:::torch_run("ts_torch_ridge_folds", x)
  expect_identical(norm_ptr(tensorscope:::torch_call("ts_torch_ridge_folds_ptr", folds)), norm_ptr(x$data_ptr()))
  tensorscope:::torch_call("ts_torch_ridge_folds_free", folds)
  for (sel in c("gcv", "loo", "kfold")) {
    expect_identical(ridge_layers_seen(a <- predictivity(list(x = x), resp, alpha_select = sel)), TRUE)
    b <- predictivity(list(x = xa), resp, alpha_select = sel)
    expect_equal(a$r, b$r, tolerance = 1e-12)
    expect_identical(a$alpha, b$alpha)
  }
  # a TorchScript model fed a torch_tensor: the forward pass gets its memory
  f <- system.file("extdata", "fmnist_cnn_step1125.pt", package = "tensorscope")
  s <- readRDS(system.file("extdata", "fmnist_stimuli.rds", package = "tensorscope"))
  img <- torch::torch_tensor(s$images[1:16, , , , drop = FALSE], dtype = torch::torch_float32())
  info <- tensorscope:::torch_run("ts_torch_run", tensorscope:::model_ptr(ts_model(f)), list(img), "fc1", "float32", c(0, 8))
  expect_identical(norm_ptr(info$input_ptr), norm_ptr(img$data_ptr()))
  r <- activations(f, s$images[1:16, , , , drop = FALSE], layers = c("conv1", "fc1"), batch_size = 8)
  rt <- activations(f, img, layers = c("conv1", "fc1"), batch_size = 8)
  expect_equal(unname(rt$layers$fc1), unname(r$layers$fc1), tolerance = 1e-12)
  # layers kept as torch for R tensors, usable by torch for R itself
  kt <- activations(f, img, layers = c("conv1", "fc1"), batch_size = 8, tensors = TRUE)
  expect_s3_class(kt$layers$fc1, "torch_tensor")
  expect_equal(as.array(kt$layers$fc1$to(dtype = torch::torch_float64())), unname(r$layers$fc1), tolerance = 1e-12,
               ignore_attr = TRUE)
  expect_identical(as.integer(kt$layers$conv1$shape), c(16L, 8L, 28L, 28L))
  expect_equal(as.matrix(cka_layers(kt)), as.matrix(cka_layers(r)), tolerance = 1e-6)   # float32 layers
  # nn_module layers kept as tensors
  net <- torch::nn_sequential(torch::nn_linear(12, 4), torch::nn_relu())
  net$to(dtype = torch::torch_float64())
  kn <- activations(net, x, tensors = TRUE)
  expect_s3_class(kn$layers[["1"]], "torch_tensor")
  expect_equal(as.array(kn$layers[["1"]]), as.array(net(x)$detach()), tolerance = 1e-12)
})

test_that("torch for R: a forward that fails part-way leaves the nn_module exactly as it was", {
  skip_without_rtorch()
  boom <- torch::nn_module(initialize = function() self$lin <- torch::nn_linear(3, 3),
                           forward = function(x) {
                             h <- self$lin(x)
                             if (x$size(1) < 4) stop("part-way")
                             h
                           })
  net <- torch::nn_sequential(torch::nn_linear(3, 3), boom(), torch::nn_relu())
  x <- matrix(rnorm(6 * 3), 6)
  before <- module_lists(net)
  training <- net$training
  expect_error(activations(net, x, layers = c("0", "1.lin", "2"), batch_size = 4), class = "tensorscope_error_torch")
  expect_identical(module_lists(net), before)
  expect_identical(net$training, training)
  out <- net(torch::torch_tensor(matrix(rnorm(12), 4)))   # still a working module
  expect_s3_class(out, "torch_tensor")
})

test_that("CUDA: nn_module capture, and CKA/RDM on CUDA tensors in place", {
  skip_without_rtorch()
  skip_if_not(torch::cuda_is_available(), "no CUDA device")
  net <- torch::nn_sequential(torch::nn_linear(3, 4), torch::nn_relu())
  net$to(device = "cuda", dtype = torch::torch_float64())
  x <- matrix(rnorm(10 * 3), 10)
  r <- activations(net, x, batch_size = 4)                          # R array -> made on the GPU
  rt <- activations(net, torch::torch_tensor(x, dtype = torch::torch_float64(), device = "cuda"))
  expect_equal(r[["1"]], rt[["1"]], tolerance = 1e-12, ignore_attr = TRUE)
  skip_if_not(ts_torch_available() && tensorscope:::rtensor_shared())
  a <- torch::torch_randn(50, 10, dtype = torch::torch_float64(), device = "cuda")
  b <- torch::torch_randn(50, 4, dtype = torch::torch_float64(), device = "cuda")
  expect_identical(tensorscope:::rtensor_info(a)$device, "cuda:0")
  expect_equal(cka(a, b), cka(as.array(a$cpu()), as.array(b$cpu())), tolerance = 1e-12)
  y <- matrix(rnorm(50 * 3), 50)
  expect_identical(ridge_layers_seen(p <- predictivity(list(a = a), y)), TRUE)
  expect_equal(p$r, predictivity(list(a = as.array(a$cpu())), y)$r, tolerance = 1e-10)
  kept <- activations(net, torch::torch_tensor(x, dtype = torch::torch_float64(), device = "cuda"), tensors = TRUE)
  expect_identical(tensorscope:::rtensor_info(kept$layers[["1"]])$device, "cuda:0")
  expect_equal(rdm(kept)$dissimilarities, rdm(r)$dissimilarities, tolerance = 1e-12)
  reps <- ts_reps(list(a = a, b = b))
  expect_equal(rdm(reps)$dissimilarities, rdm(ts_reps(list(a = as.array(a$cpu()), b = as.array(b$cpu()))))$dissimilarities,
               tolerance = 1e-12)
})

test_that("CUDA tensors (laid out as torch for R's) are computed on in place on the GPU", {
  skip_if_not(ts_torch_available())
  skip_if_not(isTRUE(ts_build_info()$cuda), "no CUDA in tensorscope's LibTorch")
  set.seed(4)
  x <- matrix(rnorm(40 * 8), 40)
  y <- matrix(rnorm(40 * 3), 40) + x[, 1:3]
  tx <- tensorscope:::rtensor_fake(x, device = "cuda")
  expect_identical(tensorscope:::rtensor_info(tx)$device, "cuda:0")
  expect_equal(cka(tx, y), cka(x, y), tolerance = 1e-12)
  expect_equal(rdm(tx)$dissimilarities, rdm(x)$dissimilarities, tolerance = 1e-12)
  for (sel in c("gcv", "loo", "kfold")) {
    expect_identical(ridge_layers_seen(p <- predictivity(list(x = tx), y, alpha_select = sel)), TRUE)
    q <- predictivity(list(x = x), y, alpha_select = sel)
    expect_equal(p$r, q$r, tolerance = 1e-10)
    expect_identical(p$alpha, q$alpha)
  }
})
