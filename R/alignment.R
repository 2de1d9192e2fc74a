#' Centred kernel alignment (CKA) between two representations
#'
#' CKA compares two representations of the same stimuli, X (n x p) and Y (n x q),
#' through their stimulus-by-stimulus kernels K and L (Kornblith et al. 2019):
#' \deqn{CKA(K, L) = HSIC(K, L) / \sqrt{HSIC(K, K) HSIC(L, L)}.}
#' The biased estimator is HSIC(K, L) = tr(KHLH) / (n - 1)^2 with the centring matrix
#' H; the debiased estimator is Song et al. (2012), eq. 5 (as used by Nguyen et al.
#' 2021), which needs n >= 4 and removes the upward bias of CKA at small n relative to
#' the number of features. For the linear kernel, CKA = ||Y'X||_F^2 / (||X'X||_F
#' ||Y'Y||_F) after column centring.
#'
#' **Computation.** The linear kernel is computed in feature space (cost ~ n (p + q)^2)
#' unless forming the n x n kernels is cheaper (cost ~ 2 n^2 (p + q) plus memory passes
#' over the kernels; the constants were measured, see `bench/alignment.R`), which for
#' one pair means roughly p + q > 2 n; both routes are exact and agree to rounding
#' (`path` forces one). The RBF kernel, exp(-d^2 / (2 sigma^2)), always uses the n x n
#' kernels.
#'
#' **RBF bandwidth.** A numeric `sigma` is used as given (one value for both, or two:
#' for `x` and `y`). Otherwise `bandwidth = "median"` (default) is Kornblith et al.'s
#' rule sigma = t * sqrt(median of all n^2 squared distances, zero diagonal
#' included), with `t = 0.5` as in their demo; `"median_nonzero"` is Brain-Score's
#' rule sigma^2 = median of the non-zero squared distances (`t` is not used).
#'
#' @param x,y Numeric matrices (or data frames, or arrays with stimuli first) over the
#'   same stimuli. When both have row names (stimulus ids), `y`'s rows are matched to
#'   `x`'s by id (with a message); ids that differ are an error of class
#'   `tensorscope_error_mismatch`. Without row names on either side, rows pair by
#'   position. Or torch for R `torch_tensor`s (stimuli first, paired by position), on
#'   which CKA is computed in place, on their device, when tensorscope shares torch for
#'   R's LibTorch (see [ts_reps()]; `backend = "eigen"` copies them into R).
#' @param kernel `"linear"` or `"rbf"`.
#' @param estimator `"biased"` (Kornblith et al.) or `"debiased"` (Song et al.).
#' @param sigma `NULL` or the RBF bandwidth(s), see Details.
#' @param bandwidth Bandwidth rule when `sigma` is `NULL`: `"median"` or
#'   `"median_nonzero"`.
#' @param t Multiplier of the median rule (Kornblith's "threshold").
#' @param path `"auto"`, `"feature"` or `"gram"`: force a computation route (linear
#'   kernel only; for checking and benchmarking).
#' @param na Features (units, voxels) with missing values: `"error"` (default) or
#'   `"drop_units"` (left out of each side, with a message saying how many).
#' @param backend `"auto"`, `"eigen"` or `"torch"`: `"torch"` computes CKA (every
#'   kernel, estimator and route) with LibTorch in float64, on the GPU when CUDA is
#'   available (option `tensorscope.torch_device` picks the device), agreeing with Eigen
#'   to rounding; each layer's centred data or kernel is held on the device. `"auto"`
#'   uses it only for large inputs (more than `tensorscope.torch_min_elements`, default
#'   5e7, input values) on a CUDA GPU.
#' @return A single number: the CKA (1 for identical representations; invariant to
#'   orthogonal transforms and isotropic scaling of either side for the linear kernel).
#'   The debiased estimate can be slightly negative.
#' @references Kornblith, Norouzi, Lee & Hinton (2019). Similarity of neural network
#'   representations revisited. ICML. Song, Smola, Gretton, Bedo & Borgwardt (2012).
#'   Feature selection via dependence maximization. JMLR 13. Nguyen, Raghu & Kornblith
#'   (2021). Do wide and deep networks learn the same things? ICLR.
#' @seealso [cka_layers()] for all layer pairs at once.
#' @export
#' @examples
#' set.seed(1)
#' x <- matrix(rnorm(100 * 10), 100)
#' q <- qr.Q(qr(matrix(rnorm(100), 10)))
#' cka(x, x %*% q)                 # 1: invariant to rotations
#' cka(x, x[, 1:3])
#' cka(x, x[, 1:3], kernel = "rbf")
#' cka(x, matrix(rnorm(100 * 10), 100), estimator = "debiased")  # near 0
cka <- function(x, y, kernel = c("linear", "rbf"), estimator = c("biased", "debiased"),
                sigma = NULL, bandwidth = c("median", "median_nonzero"), t = 0.5,
                path = c("auto", "feature", "gram"), na = c("error", "drop_units"),
                backend = c("auto", "eigen", "torch")) {
  na <- check_na(na)
  in_place <- in_place_route(list(x, y), backend)
  if (!is_rtensor(x)) x <- drop_na_units(x, na)
  if (!is_rtensor(y)) y <- drop_na_units(y, na)
  x <- as_layer_data(x, in_place, arg = "x")
  y <- as_layer_data(y, in_place, arg = "y")
  if (!is_rtensor(x) && !is_rtensor(y)) {
    idx <- match_stimuli(rownames(x), rownames(y), "x", "y")
    if (!is.null(idx)) y <- y[idx, , drop = FALSE]
  }
  nx <- layer_dims(x)[1]
  ny <- layer_dims(y)[1]
  if (nx != ny) {
    ts_abort("{.arg x} and {.arg y} must have the same stimuli: {.arg x} has {nx} rows, {.arg y} has {ny}.",
             "mismatch")
  }
  opts <- cka_options(kernel, estimator, sigma, bandwidth, t, path, n = nx)
  check_layer_variance(x, "x")
  check_layer_variance(y, "y")
  if (opts$kernel == "linear" && !in_place) {  # linear CKA is scale-invariant: no overflow at x 1e300
    x <- scale_extreme_data(x)
    y <- scale_extreme_data(y)
  }
  dev <- if (in_place) "tensor" else dense_backend(backend, length(x) + length(y))
  sig <- opts$sigma
  res <- cka_engine(list(x), list(y), opts, sig[1], sig[length(sig)], dev)
  res$cka[1, 1]
}

# CKA matrix of layer lists xs and ys (ys empty: within xs) on the Eigen core, a
# LibTorch device, or ("tensor") in place on torch_tensor layers' device;
# list(cka, sigma_x, sigma_y) either way.
cka_engine <- function(xs, ys, opts, sx, sy, dev, call = rlang::caller_env()) {
  if (dev == "eigen") {
    return(cpp_cka_matrix(xs, ys, opts$kernel, opts$estimator, opts$bandwidth, opts$t, sx, sy, opts$path,
                          cka_memory(), threads_now()))
  }
  if (dev == "tensor") {
    return(torch_run("ts_torch_cka_tensors", xs, ys, opts$kernel, opts$estimator, opts$bandwidth, opts$t,
                     as.double(sx), as.double(sy), opts$path, kind = "argument", call = call))
  }
  torch_run("ts_torch_cka_matrix", xs, ys, opts$kernel, opts$estimator, opts$bandwidth, opts$t,
            as.double(sx), as.double(sy), opts$path, dev, kind = "argument", call = call)
}

cka_options <- function(kernel, estimator, sigma, bandwidth, t, path, n, data_arg = c("x", "y"), call = rlang::caller_env()) {
  kernel <- check_choice(kernel, c("linear", "rbf"), call = call)
  estimator <- check_choice(estimator, c("biased", "debiased"), call = call)
  bandwidth <- check_choice(bandwidth, c("median", "median_nonzero"), call = call)
  path <- check_choice(path, c("auto", "feature", "gram"), call = call)
  t <- check_number(t, lower = .Machine$double.eps, call = call)
  if (is.null(sigma)) {
    sigma <- NA_real_
  } else if (!is.numeric(sigma) || !length(sigma) %in% 1:2 || any(!is.finite(sigma)) || any(sigma <= 0)) {
    ts_abort("{.arg sigma} must be NULL or one or two positive numbers, not {describe(sigma)}.", "argument", call = call)
  }
  if (estimator == "debiased" && n < 4) {
    ts_abort("{.arg estimator} = {.val debiased} needs at least 4 stimuli; got {n}.", "too_few", call = call)
  }
  if (n < 2) ts_abort("CKA needs at least 2 stimuli in {.arg {data_arg}}; got {n}.", "too_few", call = call)
  if (kernel == "rbf" && path == "feature") {
    ts_abort("{.arg path} = \"feature\" is only available for the linear kernel.", "argument", call = call)
  }
  list(kernel = kernel, estimator = estimator, bandwidth = bandwidth, t = t, path = path,
       sigma = as.double(sigma))
}

cka_memory <- function() getOption("tensorscope.memory_gb", 4) * 1e9

#' CKA between every pair of layers
#'
#' Computes [cka()] for every pair of layers of one model (`reps2 = NULL`) or between
#' the layers of two models, or a model and neural data. Each layer is centred (and its
#' kernel formed) once, not once per pair: in sample space all pairs come from products
#' of the packed kernels; in feature space each pair is one product of centred layers.
#' The cheaper route is chosen from the shapes (see [cka()]). In sample space the linear
#' kernels are formed a chunk of at most 512 stimuli at a time for all layers together,
#' never n x n (at N = 10,000 a layer's kernel would be 0.8 GB); RBF kernels are formed
#' whole, as many at once as `options(tensorscope.memory_gb = 4)` allows (that option
#' also bounds the linear kernels' chunks).
#'
#' @param reps A [ts_reps()] object or anything `ts_reps()` accepts (a named list of
#'   layers).
#' @param reps2 `NULL` (pairs within `reps`), or a second set of layers over the same
#'   stimuli (a `ts_reps`, a named list, or one matrix such as neural data), matched to
#'   `reps` by stimulus id when both carry ids.
#' @inheritParams cka
#' @param sigma `NULL`, or RBF bandwidths: one number for every layer, or a named
#'   numeric vector with one value per layer (names from both sides).
#' @return A tibble of class `ts_cka` with one row per pair (both orders and the
#'   diagonal, for plotting): `layer_x`, `layer_y` (factors in layer order) and
#'   `cka`. `as.matrix()` gives the square (or rectangular) matrix; `autoplot()` a
#'   heatmap. The linear CKA is computed on data brought near unit scale when their
#'   largest |value| is beyond 1e+-100, so x 1e300 gives the unscaled value.
#'   A layer with zero variance across stimuli (e.g. a zero-initialised head) is
#'   unusable: it gets `NA`, with a warning of class `tensorscope_warning_unusable_layer`
#'   naming it, and the other layers are computed (every layer unusable: an error of
#'   class `tensorscope_error_zero_variance`).
#' @export
#' @examples
#' set.seed(1)
#' z <- matrix(rnorm(60 * 5), 60)
#' reps <- ts_reps(list(a = z %*% matrix(rnorm(25), 5), b = tanh(z), c = matrix(rnorm(60 * 5), 60)))
#' res <- cka_layers(reps)
#' res
#' as.matrix(res)
cka_layers <- function(reps, reps2 = NULL, kernel = c("linear", "rbf"),
                       estimator = c("biased", "debiased"), sigma = NULL,
                       bandwidth = c("median", "median_nonzero"), t = 0.5,
                       path = c("auto", "feature", "gram"), backend = c("auto", "eigen", "torch")) {
  reps <- as_reps(reps, tensors = TRUE)
  within <- is.null(reps2)
  if (!within) {
    if (is.matrix(reps2) || is.data.frame(reps2) || is_rtensor(reps2)) reps2 <- list(neural = reps2)
    reps2 <- align_reps(reps, as_reps(reps2, tensors = TRUE), "reps", "reps2")
  }
  n <- length(reps$stimuli)
  opts <- cka_options(kernel, estimator, NULL, bandwidth, t, path, n = n, data_arg = "reps")
  in_place <- in_place_route(c(reps$layers, if (!within) reps2$layers), backend)
  if (!in_place) {
    reps$layers <- rtensor_to_matrices(reps$layers, "reps$")
    if (!within) reps2$layers <- rtensor_to_matrices(reps2$layers, "reps2$")
  }
  # a layer with zero variance (e.g. a zero-initialised head) gets NA, with a warning
  usable <- function(layers) vapply(layers, function(m) is_rtensor(m) || !cpp_rows_constant(m), logical(1))
  okx <- usable(reps$layers)
  oky <- if (within) okx else usable(reps2$layers)
  if (!all(okx) || !all(oky)) {
    bad <- unique(c(names(reps$layers)[!okx], if (!within) names(reps2$layers)[!oky]))
    if (!any(okx) || !any(oky)) {
      ts_abort("Every layer of {.arg {if (!any(okx)) 'reps' else 'reps2'}} has zero variance across stimuli.", "zero_variance")
    }
    cli::cli_warn("Layer{?s} {.val {bad}} {?has/have} zero variance across stimuli (every stimulus has the same pattern): CKA is NA there; the other layers were computed.",
                  class = c("tensorscope_warning_unusable_layer", "tensorscope_warning"))
    full_x <- names(reps$layers)
    full_y <- if (within) full_x else names(reps2$layers)
    reps$layers <- reps$layers[okx]
    if (!within) reps2$layers <- reps2$layers[oky]
    if (!is.null(sigma) && !is.null(names(sigma))) sigma <- sigma[names(sigma) %in% c(names(reps$layers), if (!within) names(reps2$layers))]
    res <- cka_layers(reps, if (within) NULL else reps2, kernel = kernel, estimator = estimator, sigma = sigma,
                      bandwidth = bandwidth, t = t, path = path, backend = backend)
    return(expand_cka(res, full_x, full_y))
  }
  for (nm in names(reps$layers)) check_layer_variance(reps$layers[[nm]], sprintf("reps$%s", nm))
  if (!within) for (nm in names(reps2$layers)) check_layer_variance(reps2$layers[[nm]], sprintf("reps2$%s", nm))
  nx <- names(reps$layers)
  ny <- if (within) nx else names(reps2$layers)
  sx <- layer_sigmas(sigma, nx)
  sy <- if (within) numeric(0) else layer_sigmas(sigma, ny)
  size <- sum(lengths(reps$layers)) + if (within) 0 else sum(lengths(reps2$layers))
  dev <- if (in_place) "tensor" else dense_backend(backend, size)
  xs <- unname(reps$layers)
  ys <- if (within) list() else unname(reps2$layers)
  if (opts$kernel == "linear" && !in_place) {
    xs <- lapply(xs, scale_extreme_data)
    ys <- lapply(ys, scale_extreme_data)
  }
  res <- cka_engine(xs, ys, opts, sx, sy, dev)
  m <- res$cka
  dimnames(m) <- list(nx, ny)
  out <- tibble::tibble(
    layer_x = factor(rep(nx, times = length(ny)), levels = nx),
    layer_y = factor(rep(ny, each = length(nx)), levels = unique(ny)),
    cka = as.vector(m)
  )
  structure(out, class = c("ts_cka", class(out)),
            settings = list(kernel = opts$kernel, estimator = opts$estimator, within = within,
                            model_x = reps$provenance$model,
                            model_y = if (within) reps$provenance$model else reps2$provenance$model,
                            sigma_x = stats::setNames(res$sigma_x, nx),
                            sigma_y = if (within) NULL else stats::setNames(res$sigma_y, ny)))
}

# The ts_cka result res (over the usable layers) over all layers full_x x full_y, NA
# where a layer was unusable.
expand_cka <- function(res, full_x, full_y) {
  grid <- tibble::tibble(layer_x = factor(rep(full_x, times = length(full_y)), levels = full_x),
                         layer_y = factor(rep(full_y, each = length(full_x)), levels = unique(full_y)))
  key <- paste(res$layer_x, res$layer_y, sep = "\r")
  grid$cka <- res$cka[match(paste(grid$layer_x, grid$layer_y, sep = "\r"), key)]
  st <- attr(res, "settings")
  st$sigma_x <- st$sigma_x[full_x]
  if (!is.null(st$sigma_y)) st$sigma_y <- st$sigma_y[full_y]
  names(st$sigma_x) <- full_x
  structure(grid, class = c("ts_cka", class(grid)), settings = st)
}

layer_sigmas <- function(sigma, layers, call = rlang::caller_env()) {
  if (is.null(sigma)) return(rep(NA_real_, length(layers)))
  if (!is.numeric(sigma) || any(!is.finite(sigma)) || any(sigma <= 0)) {
    ts_abort("{.arg sigma} must be NULL or positive numbers, not {describe(sigma)}.", "argument", call = call)
  }
  if (length(sigma) == 1 && is.null(names(sigma))) return(rep(as.double(sigma), length(layers)))
  if (is.null(names(sigma)) || !all(layers %in% names(sigma))) {
    ts_abort("{.arg sigma} must be one number or be named with every layer ({.val {layers}}).", "argument", call = call)
  }
  as.double(sigma[layers])
}

#' @export
as.matrix.ts_cka <- function(x, ...) {
  lx <- levels(x$layer_x)
  ly <- levels(x$layer_y)
  m <- matrix(NA_real_, length(lx), length(ly), dimnames = list(lx, ly))
  m[cbind(as.integer(x$layer_x), as.integer(x$layer_y))] <- x$cka
  m
}

# ---- metrics of analyze_models() (R/metrics.R) ----------------------------------------

# Mean within-block minus between-block linear CKA, maximised over contiguous cuts.
block_cka_gap <- function(ck, n_blocks = 2) {
  n_blocks <- check_count(n_blocks, min = 2)
  lv <- levels(ck$layer_x)
  L <- length(lv)
  m <- matrix(ck$cka, L, L, dimnames = list(lv, lv))
  if (L < 2 * n_blocks) return(metric_skip(sprintf("needs at least %d layers for %d blocks", 2 * n_blocks, n_blocks)))
  cuts <- utils::combn(seq_len(L - 1), n_blocks - 1, simplify = FALSE)
  best <- NULL
  off <- row(m) != col(m)
  for (cc in cuts) {
    b <- findInterval(seq_len(L), cc + 1) + 1
    if (any(tabulate(b, n_blocks) < 2)) next
    same <- outer(b, b, `==`)
    w <- mean(m[same & off])
    btw <- mean(m[!same])
    if (is.null(best) || w - btw > best$gap) best <- list(gap = w - btw, within = w, between = btw, block = b)
  }
  rbind(tibble::tibble(layer = NA_character_, statistic = c("gap", "within", "between"),
                       value = c(best$gap, best$within, best$between)),
        tibble::tibble(layer = rownames(m), statistic = "block", value = as.double(best$block)))
}

rlang::on_load({
  register_metric(new_metric(
    "cka_similarity", family = "alignment", scope = "model", fn = "cka_layers", aliases = "cka_layers",
    defaults = list(kernel = "linear", estimator = "biased"), description = "CKA between all pairs of layers",
    about = "Linear centred kernel alignment (CKA) between every pair of layers: how similar their representational geometry is over the same stimuli, from 0 (unrelated) to 1 (the same up to rotation and scale). Bright blocks along the diagonal are groups of layers that represent the stimuli alike; a dark band is a layer where the representation changes.",
    compute = function(x, args, ctx) cka_layers(x, kernel = args$kernel, estimator = args$estimator),
    tidy = function(out, ctx) {
      tibble::tibble(layer = as.character(out$layer_x), statistic = paste0("cka:", out$layer_y), value = out$cka,
                     layer_y = factor(as.character(out$layer_y), levels = levels(out$layer_y)))
    },
    plot = plot_cka_matrix))
  register_metric(new_metric(
    "block_cka_gap", family = "alignment", scope = "model", defaults = list(n_blocks = 2),
    description = "best cut of the layers into blocks of high linear CKA (see Details)",
    about = "The layers cut into contiguous blocks so that CKA is high within a block and low between blocks. A large gap (within minus between) means the network has a clear block structure; the block column says which block each layer falls in.",
    compute = function(x, args, ctx) block_cka_gap(cka_layers(x), args$n_blocks),
    plot = plot_block_gap))
  register_metric(new_metric(
    "cka_trajectory", family = "dynamics", scope = "steps", needs = "checkpoints", fn = "cka",
    defaults = list(kernel = "linear", estimator = "biased"),
    description = "CKA of every layer at every checkpoint with the same layer at the last checkpoint",
    about = "CKA of every layer at each checkpoint with the same layer at the last checkpoint. Curves that reach 1 early belong to layers that settled early in training; layers still far below 1 late in training kept changing.",
    compute = function(x, args, ctx) {
      last <- ctx$steps[[ctx$last]]
      common <- intersect(names(x$layers), names(last$layers))
      tibble::tibble(layer = common, statistic = "cka_to_last",
                     value = vapply(common, function(l) cka(x$layers[[l]], last$layers[[l]], kernel = args$kernel,
                                                           estimator = args$estimator), 0))
    },
    plot = plot_cka_trajectory))
})
