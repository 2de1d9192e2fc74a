#' Generalized shape distance between two representations
#'
#' The shape metrics of Williams, Kunz, Kornblith & Linderman (2021): the distance between
#' X (n x p) and Y (n x q) after the best alignment allowed by `alpha`, computed with the
#' conventions of netrep's `LinearMetric` (and equal to it to rounding):
#'
#' 1. **Centring**: each unit (column) is centred over stimuli (`centre = TRUE`, netrep's
#'    `center_columns = True`).
#' 2. **Zero padding**: when p != q the narrower side gets zero columns up to max(p, q)
#'    (`zero_pad = TRUE`, netrep's default); `zero_pad = FALSE` makes unequal widths an
#'    error.
#' 3. **Partial whitening**, netrep's form: with \eqn{X_c^\top X_c = V \Lambda V^\top}
#'    (not divided by n; eigenvalues clipped below at 1e-7),
#'    \eqn{\phi_\alpha(X) = X_c V \mathrm{diag}(\alpha + (1-\alpha)\lambda^{-1/2}) V^\top},
#'    rescaled so that the total variance \eqn{\mathrm{tr}(X_c^\top X_c)} is preserved.
#'    `alpha = 1` leaves X unchanged (rotations only: Procrustes); `alpha = 0` whitens
#'    fully (any invertible linear map: CCA). For 0 < alpha < 1 this is netrep's
#'    interpolation of the whitening *weights*; the paper writes the interpolation
#'    \eqn{X(\alpha I + (1-\alpha) C)^{-1/2}} of the covariance instead, which is a
#'    different (also valid) metric at intermediate alpha; both depend on the scale of X
#'    there, so compare layers at intermediate alpha only with that in mind.
#' 4. **Distance** after the optimal rotation Q (orthogonal Procrustes):
#'    angular \eqn{\theta = \arccos(\|\phi(X)^\top \phi(Y)\|_* / (\|\phi(X)\|_F \|\phi(Y)\|_F))}
#'    in \[0, pi/2\] for centred data, or Euclidean
#'    \eqn{\min_Q \|\phi(X) - \phi(Y) Q\|_F}. Both are metrics (symmetric, triangle
#'    inequality). With alpha = 0 and p = q, cos(theta) is the mean canonical
#'    correlation ([cca_similarity()] with `method = "mean"`).
#'
#' **Cross-validation** (`test`): the means, the whitening and the rotation are fitted on
#' the training stimuli and the distance is evaluated on the held-out ones, as with
#' netrep's `fit(X_train, Y_train)` then `score(X_test, Y_test)`. An in-sample alignment
#' overfits when the number of units approaches the number of stimuli (at alpha = 0
#' two unrelated layers with p = n - 1 are at distance 0); a held-out distance does not.
#' The rotation acts on the span of the training data (netrep completes it arbitrarily
#' where the training cross product has zero singular values; the two agree otherwise).
#'
#' **Stimuli**: when both `x` and `y` have row names, rows are matched by them (the same
#' set of ids is required; order may differ); otherwise rows are paired by position.
#'
#' @param x,y Numeric matrices (stimuli x units), data frames, or arrays with stimuli first.
#' @param alpha Regularisation in \[0, 1\]: 1 = Procrustes (rotations), 0 = CCA (any
#'   invertible linear map).
#' @param distance `"angular"` (radians) or `"euclidean"`.
#' @param zero_pad Pad the narrower representation with zero units.
#' @param centre Centre each unit over (training) stimuli.
#' @param test `NULL` (in-sample), or the held-out stimuli: row numbers, row names (ids),
#'   or a logical vector over the rows. The rest are the training stimuli.
#' @param backend `"auto"`, `"eigen"` or `"torch"`: `"torch"` does the dense work (the
#'   SVDs and cross products) in float64 on LibTorch's device (CUDA when available, or the
#'   `tensorscope.torch_device` option), with the same algorithm and the same results to
#'   rounding; in-sample only. `"auto"` takes LibTorch only for large inputs on a CUDA
#'   device, as [cka()].
#' @return A single number: the distance (0 for a representation and any rotation, or
#'   with `alpha = 0` any invertible linear transform, of itself).
#' @references Williams, Kunz, Kornblith & Linderman (2021). Generalized shape metrics on
#'   neural representations. NeurIPS. netrep: <https://github.com/ahwillia/netrep>.
#' @seealso [shape_layers()] for all pairs of layers, [cca_similarity()], [cka()].
#' @export
#' @examples
#' set.seed(1)
#' x <- matrix(rnorm(200 * 10), 200)
#' q <- qr.Q(qr(matrix(rnorm(100), 10)))
#' shape_distance(x, x %*% q)                      # 0: Procrustes ignores rotations
#' shape_distance(x, x %*% matrix(rnorm(100), 10))  # > 0 ...
#' shape_distance(x, x %*% matrix(rnorm(100), 10), alpha = 0)  # ... but CCA ignores any linear map
#' y <- x[, 1:5] + matrix(rnorm(1000), 200)
#' shape_distance(x, y, alpha = 0.5, distance = "euclidean")
#' shape_distance(x, y, alpha = 0, test = 151:200)  # fitted on 150 stimuli, scored on 50
shape_distance <- function(x, y, alpha = 1, distance = c("angular", "euclidean"), zero_pad = TRUE,
                           centre = TRUE, test = NULL, backend = c("auto", "eigen", "torch")) {
  x <- as_data_matrix(x)
  y <- as_data_matrix(y)
  y <- align_rows(x, y)
  opts <- shape_options(alpha, distance, zero_pad, centre)
  split <- shape_split(test, rownames(x), nrow(x))
  check_shape_layers(list(x = x), list(y = y), opts, split)
  sc <- shape_scale(list(x, y), opts)
  d <- shape_engine(sc$layers[1], sc$layers[2], opts, split, backend)
  check_shape_result(d)
  drop(d) / sc$factor
}

# Data beyond 1e+-100 (where sums of squares overflow or underflow) scaled by one common
# power of two, where that is exact: alpha = 1 (rotations only: the angular distance is
# scale-invariant, the Euclidean one scales with the data, so it is divided by `factor`
# afterwards) and alpha = 0 (whitened: both invariant). Partial whitening (0 < alpha < 1)
# depends on the scale, so its data are left alone.
shape_scale <- function(layers, opts) {
  f <- if (opts$alpha %in% c(0, 1)) extreme_scale(max(vapply(layers, cpp_max_abs, 0))) else 1
  if (f != 1) layers <- lapply(layers, `*`, f)
  list(layers = layers, factor = if (opts$alpha == 1 && opts$distance == "euclidean") f else 1)
}

# The distance matrix of layers xs against ys (ys empty: within xs) on the backend's
# dense path: Eigen + LAPACK, or LibTorch (in-sample only) with the core's algorithm.
shape_engine <- function(xs, ys, opts, split, backend, call = rlang::caller_env()) {
  dev <- dense_backend(backend, sum(lengths(xs)) + sum(lengths(ys)), supported = !length(split$test),
                       what = "cross-validation (`test`)", call = call)
  if (dev == "eigen") {
    return(cpp_shape_matrix(unname(xs), unname(ys), opts$alpha, opts$distance, opts$centre, split$train, split$test,
                            threads_now()))
  }
  torch_run("ts_torch_shape_matrix", unname(xs), unname(ys), opts$alpha, opts$distance, opts$centre, dev,
            kind = "argument", call = call)
}

# A held-out set whose patterns all equal the training mean has no norm to take an angle with.
check_shape_result <- function(m, call = rlang::caller_env()) {
  if (anyNA(m)) {
    ts_abort("The held-out stimuli ({.arg test}) of a layer of {.arg x} or {.arg y} do not vary around its training mean, so the angular distance is undefined.",
             "zero_variance", call = call)
  }
  invisible(m)
}

#' Shape distances between every pair of layers
#'
#' [shape_distance()] for every pair of layers of one model (`reps2 = NULL`), or between
#' the layers of two models, or a model and neural data. Each layer is centred and
#' whitened once (one SVD) and reused for all its pairs; each pair then costs one product
#' of the prepared layers and one SVD without vectors.
#'
#' @param reps A [ts_reps()] object or anything `ts_reps()` accepts (a named list of
#'   layers).
#' @param reps2 `NULL` (pairs within `reps`), or a second set of layers over the same
#'   stimuli (a `ts_reps`, a named list, or one matrix such as neural data). Stimuli are
#'   matched by id when both sides have ids.
#' @inheritParams shape_distance
#' @return A tibble of class `ts_shape` with one row per pair (both orders and the
#'   diagonal): `layer_x`, `layer_y` (factors in layer order) and `distance`.
#'   `as.matrix()` gives the layer x layer matrix; `autoplot()` a heatmap.
#' @export
#' @examples
#' set.seed(1)
#' z <- matrix(rnorm(100 * 5), 100)
#' reps <- ts_reps(list(a = z %*% matrix(rnorm(25), 5), b = tanh(z), c = matrix(rnorm(500), 100)))
#' res <- shape_layers(reps, alpha = 1)
#' res
#' as.matrix(res)
#' shape_layers(reps, alpha = 0, test = 81:100)
shape_layers <- function(reps, reps2 = NULL, alpha = 1, distance = c("angular", "euclidean"),
                         zero_pad = TRUE, centre = TRUE, test = NULL, backend = c("auto", "eigen", "torch")) {
  io <- layer_pair_inputs(reps, reps2)
  reps <- io$reps
  reps2 <- io$reps2
  within <- io$within
  opts <- shape_options(alpha, distance, zero_pad, centre)
  split <- shape_split(test, reps$stimuli, length(reps$stimuli))
  ys <- if (within) list() else reps2$layers
  check_shape_layers(reps$layers, if (within) reps$layers else ys, opts, split, "reps", if (within) "reps" else "reps2")
  sc <- shape_scale(c(unname(reps$layers), unname(ys)), opts)
  nl <- length(reps$layers)
  m <- shape_engine(sc$layers[seq_len(nl)], sc$layers[-seq_len(nl)], opts, split, backend)
  check_shape_result(m)
  m <- m / sc$factor
  out <- layer_pair_tibble(m, names(reps$layers), if (within) names(reps$layers) else names(reps2$layers), "distance")
  structure(out, class = c("ts_shape", class(out)),
            settings = list(alpha = opts$alpha, distance = opts$distance, zero_pad = opts$zero_pad,
                            centre = opts$centre, cross_validated = length(split$test) > 0,
                            n_train = if (length(split$test)) length(split$train) else length(reps$stimuli),
                            n_test = length(split$test), within = within,
                            model_x = reps$provenance$model,
                            model_y = if (within) reps$provenance$model else reps2$provenance$model))
}

#' @export
as.matrix.ts_shape <- function(x, ...) layer_pair_matrix(x, "distance")

#' @export
as.matrix.ts_cca <- function(x, ...) layer_pair_matrix(x, "similarity")

#' @export
as.matrix.ts_soft_matching <- function(x, ...) layer_pair_matrix(x, "distance")

# ---- shared by the all-pairs forms (shape_layers, cca_layers, soft_matching_layers) ----
# reps as ts_reps; reps2 NULL (pairs within reps) or a second ts_reps over the same
# stimuli, matched by id (one matrix, e.g. neural data, becomes the layer "neural").
layer_pair_inputs <- function(reps, reps2, call = rlang::caller_env()) {
  reps <- as_reps(reps, arg = "reps", call = call)
  within <- is.null(reps2)
  if (!within) {
    if (is.matrix(reps2) || is.data.frame(reps2)) reps2 <- list(neural = reps2)
    reps2 <- align_reps(reps, as_reps(reps2, arg = "reps2", call = call), "reps", "reps2", call = call)
  }
  list(reps = reps, reps2 = reps2, within = within)
}

# The long tibble of a layer x layer matrix m: layer_x, layer_y (factors in layer order), value.
layer_pair_tibble <- function(m, nx, ny, value) {
  out <- tibble::tibble(layer_x = factor(rep(nx, times = length(ny)), levels = nx),
                        layer_y = factor(rep(ny, each = length(nx)), levels = unique(ny)))
  out[[value]] <- as.vector(m)
  out
}

layer_pair_matrix <- function(x, value) {
  lx <- levels(x$layer_x)
  ly <- levels(x$layer_y)
  m <- matrix(NA_real_, length(lx), length(ly), dimnames = list(lx, ly))
  m[cbind(as.integer(x$layer_x), as.integer(x$layer_y))] <- x[[value]]
  m
}

pair_settings <- function(io) {
  list(within = io$within, model_x = io$reps$provenance$model,
       model_y = if (io$within) io$reps$provenance$model else io$reps2$provenance$model)
}

shape_options <- function(alpha, distance, zero_pad, centre, call = rlang::caller_env()) {
  alpha <- check_number(alpha, lower = 0, upper = 1, call = call)
  distance <- check_choice(distance, c("angular", "euclidean"), call = call)
  for (nm in c("zero_pad", "centre")) {
    v <- get(nm)
    if (!is.logical(v) || length(v) != 1 || is.na(v)) {
      ts_abort("{.arg {nm}} must be TRUE or FALSE, not {describe(v)}.", "argument", call = call)
    }
  }
  list(alpha = alpha, distance = distance, zero_pad = zero_pad, centre = centre)
}

# Training and test rows (0-based for the core) from `test`: NULL, row numbers, ids or a
# logical vector.
shape_split <- function(test, ids, n, call = rlang::caller_env()) {
  if (is.null(test)) return(list(train = integer(0), test = integer(0)))
  if (is.logical(test)) {
    if (length(test) != n || anyNA(test)) {
      ts_abort("A logical {.arg test} must have one TRUE/FALSE per stimulus ({n}), not {describe(test)}.",
               "argument", call = call)
    }
    idx <- which(test)
  } else if (is.character(test)) {
    idx <- match(test, ids)
    if (anyNA(idx)) {
      ts_abort("{.arg test} names stimuli that are not in the data: {.val {utils::head(test[is.na(idx)], 5)}}.",
               "mismatch", call = call)
    }
  } else if (is.numeric(test)) {
    if (anyNA(test) || any(test != round(test)) || any(test < 1) || any(test > n)) {
      ts_abort("{.arg test} must hold row numbers in 1..{n}, not {describe(test)}.", "argument", call = call)
    }
    idx <- as.integer(test)
  } else {
    ts_abort("{.arg test} must be NULL, row numbers, stimulus ids or a logical vector, not {describe(test)}.",
             "type", call = call)
  }
  idx <- sort(unique(idx))
  train <- setdiff(seq_len(n), idx)
  if (length(idx) < 2 || length(train) < 2) {
    ts_abort("Cross-validation needs at least 2 training and 2 test stimuli; {.arg test} leaves {length(train)} for training and {length(idx)} for testing.",
             "too_few", call = call)
  }
  list(train = train - 1L, test = idx - 1L)
}

check_shape_layers <- function(xs, ys, opts, split, ax = "x", ay = "y", call = rlang::caller_env()) {
  n_fit <- if (length(split$test)) length(split$train) else nrow(xs[[1]])
  if (n_fit < 2) ts_abort("Shape metrics need at least 2 stimuli in {.arg {ax}} and {.arg {ay}}; got {n_fit}.", "too_few", call = call)
  label <- function(a, nm, many) if (many) sprintf("%s$%s", a, nm) else a
  for (side in list(list(xs, ax), list(ys, ay))) {
    many <- side[[2]] != "x" && side[[2]] != "y"
    for (nm in names(side[[1]])) {
      l <- side[[1]][[nm]]
      check_variance(l, label(side[[2]], nm, many), call = call)
      if (opts$alpha == 0 && ncol(l) >= n_fit - 1) {
        ts_abort(c("{.arg {label(side[[2]], nm, many)}} has {ncol(l)} units for {n_fit} {if (length(split$test)) 'training ' else ''}stimuli: with {.code alpha = 0} (CCA) any {n_fit - 1} or more units align perfectly with anything.",
                   i = "Use {.arg alpha} > 0 (partial whitening), or held-out stimuli ({.arg test})."),
                 "too_few", call = call)
      }
    }
  }
  if (!opts$zero_pad) {
    px <- vapply(xs, ncol, integer(1))
    py <- vapply(ys, ncol, integer(1))
    if (length(unique(c(px, py))) > 1) {
      ts_abort("With {.arg zero_pad} = FALSE every layer of {.arg {ax}} and {.arg {ay}} needs the same number of units; got {paste(unique(c(px, py)), collapse = ', ')}.",
               "mismatch", call = call)
    }
  }
  invisible(TRUE)
}

#' Similarity from canonical correlations: mean CCA, SVCCA and PWCCA
#'
#' Canonical correlation analysis of X (n x p) and Y (n x q), both centred over stimuli,
#' gives canonical correlations \eqn{\rho_1 \ge \rho_2 \ge \dots} (the singular values of
#' \eqn{Q_x^\top Q_y}, with Q orthonormal bases of the centred columns; directions with
#' singular value below max(n, p) * eps * s_1 are dropped as rank deficiency).
#'
#' * `"mean"`: \eqn{\sum \rho_i / \min(k_x, k_y)}, the mean canonical correlation
#'   (repsim's `CCA(method = "pillai")`; repsim's default `"yanai"` averages
#'   \eqn{\rho^2} instead).
#' * `"svcca"` (Raghu et al. 2017): each side is first reduced to its top k singular
#'   directions, the smallest k whose cumulative share of the variance (s^2) reaches
#'   `keep` (default 0.99, as in the paper; repsim's `SVCCA()` uses 0.95 by default and
#'   the same rule), then the mean canonical correlation of the reduced data.
#' * `"pwcca"` (Morcos, Raghu & Bengio 2018): \eqn{\sum_i w_i \rho_i / \sum_i w_i}, with
#'   \eqn{w_i = \sum_j |\langle h_i, x_j \rangle|} over the centred units \eqn{x_j} of the
#'   side with fewer units (x when p <= q, as in the authors' code) and \eqn{h_i} its unit
#'   canonical variates. The authors' code adds the unit means back before weighting; here
#'   everything stays centred, so the weights do not depend on offsets. Not symmetric.
#'
#' Stimuli are matched by row names when both sides have them.
#'
#' @inheritParams shape_distance
#' @param method `"mean"`, `"svcca"` or `"pwcca"`.
#' @param keep SVCCA: share of variance the kept directions must explain.
#' @return A single number in \[0, 1\] (1 when one side is an invertible linear transform
#'   of the other), with attributes `rho` (the canonical correlations) and `dims` (the
#'   number of directions kept on each side).
#' @references Raghu, Gilmer, Yosinski & Sohl-Dickstein (2017). SVCCA: Singular vector
#'   canonical correlation analysis for deep learning dynamics and interpretability.
#'   NeurIPS. Morcos, Raghu & Bengio (2018). Insights on representational similarity in
#'   neural networks with canonical correlation. NeurIPS.
#' @seealso [shape_distance()] (alpha = 0 is the angular form of mean CCA), [cka()].
#' @export
#' @examples
#' set.seed(1)
#' x <- matrix(rnorm(300 * 8), 300)
#' cca_similarity(x, x %*% matrix(rnorm(64), 8))     # 1: invariant to linear maps
#' y <- x[, 1:4] + matrix(rnorm(1200), 300)
#' cca_similarity(x, y)
#' cca_similarity(x, y, method = "svcca", keep = 0.9)
#' cca_similarity(x, y, method = "pwcca")
cca_similarity <- function(x, y, method = c("mean", "svcca", "pwcca"), keep = 0.99) {
  x <- as_data_matrix(x)
  y <- as_data_matrix(y)
  y <- align_rows(x, y)
  method <- check_choice(method, c("mean", "svcca", "pwcca"))
  keep <- check_number(keep, lower = .Machine$double.eps, upper = 1)
  check_variance(x, "x")
  check_variance(y, "y")
  n <- nrow(x)
  r <- cpp_cca_similarity(x, y, method, keep)
  if (max(r$kx, r$ky) >= n - 1) {
    ts_abort(c("CCA needs fewer dimensions than stimuli - 1: {.arg x} keeps {r$kx}, {.arg y} keeps {r$ky}, for {n} stimuli, so every canonical correlation is 1 whatever the data.",
               i = "Use {.code method = \"svcca\"} with a smaller {.arg keep}, or more stimuli."),
             "too_few")
  }
  structure(r$similarity, rho = r$rho, dims = c(x = r$kx, y = r$ky))
}

#' Soft-matching distance between the units of two representations
#'
#' The soft-matching distance of Khosla & Williams (2023): the optimal-transport
#' (2-Wasserstein) distance between the two sets of units, each unit a point given by its
#' tuning over the stimuli (a column of X or Y), with uniform masses 1/Nx and 1/Ny:
#' \deqn{d(X, Y)^2 = \min_{P \ge 0,\ P 1 = 1/N_x,\ P^\top 1 = 1/N_y} \sum_{ij} P_{ij} \|x_i - y_j\|^2.}
#' It is a metric, invariant to permuting the units of either side but not to rotations
#' (unlike [shape_distance()]): it asks whether single units have matching tuning. For
#' Nx = Ny an optimal P is a permutation / N, so d^2 is the mean squared distance under
#' the best one-to-one matching of units (netrep's `PermutationMetric` with
#' `score_method = "euclidean"` returns N^(1/2) times this). The transportation problem
#' is solved exactly (successive shortest paths on integer masses), not by entropic
#' (Sinkhorn) approximation.
#'
#' Units are centred over stimuli (`centre = TRUE`, as netrep); stimuli are matched by row
#' names when both sides have them.
#'
#' @inheritParams shape_distance
#' @return A single number: the distance, with attribute `plan`, the optimal transport
#'   plan P (Nx x Ny; rows sum to 1/Nx, columns to 1/Ny).
#' @references Khosla & Williams (2023). Soft matching distance: A metric on neural
#'   representations that captures single-neuron tuning. UniReps workshop, NeurIPS.
#' @seealso [shape_distance()] for rotation-invariant comparisons.
#' @export
#' @examples
#' set.seed(1)
#' x <- matrix(rnorm(50 * 6), 50)
#' soft_matching_distance(x, x[, 6:1])          # 0: the units are only permuted
#' soft_matching_distance(x, x %*% qr.Q(qr(matrix(rnorm(36), 6))))  # > 0 after a rotation
#' d <- soft_matching_distance(x, cbind(x, x[, 1:3]))  # 6 units against 9
#' round(attr(d, "plan") * 54, 2)
soft_matching_distance <- function(x, y, centre = TRUE) {
  x <- as_data_matrix(x)
  y <- as_data_matrix(y)
  y <- align_rows(x, y)
  if (!is.logical(centre) || length(centre) != 1 || is.na(centre)) {
    ts_abort("{.arg centre} must be TRUE or FALSE, not {describe(centre)}.", "argument")
  }
  check_transport_size(ncol(x), ncol(y))
  r <- cpp_soft_matching(x, y, centre, threads_now())
  structure(sqrt(r$cost), plan = r$plan)
}

#' Canonical-correlation similarity between every pair of layers
#'
#' [cca_similarity()] for every pair of layers of one model (`reps2 = NULL`), between the
#' layers of two models, or between layers and neural data. Each layer is centred and
#' reduced to an orthonormal basis once (one SVD); each pair then costs one product and
#' one small SVD.
#'
#' A layer that keeps n - 1 or more dimensions (n stimuli) has canonical correlations 1
#' with anything, so its pairs are NA with a warning of class
#' `tensorscope_warning_unusable_layer` (use `method = "svcca"` with a smaller `keep`, or
#' more stimuli); so are the pairs of a layer with zero variance. Within one model the
#' diagonal is 1.
#'
#' @inheritParams shape_layers
#' @inheritParams cca_similarity
#' @param backend `"auto"`, `"eigen"` or `"torch"`: where the dense work (SVDs, cross
#'   products) runs, as in [shape_layers()]; the same results to rounding.
#' @return A tibble of class `ts_cca`, one row per ordered pair of layers (PWCCA is not
#'   symmetric): `layer_x`, `layer_y` (factors in layer order), `similarity`, and `dims_x`,
#'   `dims_y` (the directions kept on each side). `as.matrix()` gives the layer x layer
#'   matrix; `autoplot()` a heatmap.
#' @seealso [cca_similarity()], [shape_layers()] (alpha = 0 is the angular form of mean CCA).
#' @export
#' @examples
#' set.seed(1)
#' z <- matrix(rnorm(200 * 5), 200)
#' reps <- ts_reps(list(a = z %*% matrix(rnorm(25), 5), b = tanh(z), c = matrix(rnorm(1000), 200)))
#' res <- cca_layers(reps)
#' res
#' as.matrix(cca_layers(reps, method = "svcca", keep = 0.9))
cca_layers <- function(reps, reps2 = NULL, method = c("mean", "svcca", "pwcca"), keep = 0.99,
                       backend = c("auto", "eigen", "torch")) {
  io <- layer_pair_inputs(reps, reps2)
  method <- check_choice(method, c("mean", "svcca", "pwcca"))
  keep <- check_number(keep, lower = .Machine$double.eps, upper = 1)
  xs <- io$reps$layers
  ys <- if (io$within) xs else io$reps2$layers
  n <- length(io$reps$stimuli)
  flat_x <- vapply(xs, cpp_rows_constant, logical(1))
  flat_y <- if (io$within) flat_x else vapply(ys, cpp_rows_constant, logical(1))
  if (all(flat_x) || all(flat_y)) {
    ts_abort("Every layer of {.arg {if (all(flat_x)) 'reps' else 'reps2'}} has zero variance across stimuli.", "zero_variance")
  }
  ux <- unname(xs[!flat_x])
  uy <- if (io$within) list() else unname(ys[!flat_y])
  dev <- dense_backend(backend, sum(lengths(ux)) + sum(lengths(uy)))
  r <- if (dev == "eigen") cpp_cca_matrix(ux, uy, method, keep, threads_now())
       else torch_run("ts_torch_cca_matrix", ux, uy, method, keep, dev, kind = "argument")
  kx <- rep(NA_integer_, length(xs))
  kx[!flat_x] <- r$kx
  ky <- rep(NA_integer_, length(ys))
  ky[!flat_y] <- r$ky
  m <- matrix(NA_real_, length(xs), length(ys))
  m[!flat_x, !flat_y] <- r$similarity
  wide_x <- !flat_x & kx >= n - 1
  wide_y <- !flat_y & ky >= n - 1
  m[wide_x, ] <- NA_real_
  m[, wide_y] <- NA_real_
  if (all(is.na(m))) {
    ts_abort(c("No pair of layers can be compared by CCA: every layer has zero variance or keeps n - 1 = {n - 1} or more dimensions for {n} stimuli.",
               i = "Use {.code method = \"svcca\"} with a smaller {.arg keep}, or more stimuli."), "too_few")
  }
  bad_flat <- unique(c(names(xs)[flat_x], names(ys)[flat_y]))
  bad_wide <- unique(c(names(xs)[wide_x], names(ys)[wide_y]))
  if (length(bad_flat) || length(bad_wide)) {
    cli::cli_warn(c("CCA is NA for some layers; the other pairs were computed.",
                    if (length(bad_flat)) c("!" = "Zero variance across stimuli: {.val {bad_flat}}."),
                    if (length(bad_wide)) c("!" = "{n - 1} or more dimensions for {n} stimuli (every canonical correlation would be 1): {.val {bad_wide}}.")),
                  class = c("tensorscope_warning_unusable_layer", "tensorscope_warning"))
  }
  out <- layer_pair_tibble(m, names(xs), names(ys), "similarity")
  out$dims_x <- kx[as.integer(out$layer_x)]
  out$dims_y <- ky[as.integer(out$layer_y)]
  structure(out, class = c("ts_cca", class(out)),
            settings = c(list(method = method, keep = keep, n = n), pair_settings(io)))
}

check_transport_size <- function(px, py, args = c("x", "y"), call = rlang::caller_env()) {
  if (as.double(px) * py > 2e7) {
    ts_abort("Soft matching of the {px} x {py} units of {.arg {args[1]}} and {.arg {args[2]}} needs a {px} x {py} cost matrix; at most 2e7 entries are supported.",
             "argument", call = call)
  }
}

#' Soft-matching distances between every pair of layers
#'
#' [soft_matching_distance()] for every pair of layers of one model (`reps2 = NULL`),
#' between the layers of two models, or between layers and neural data (symmetric within
#' one model, diagonal 0). Each pair solves one transport problem exactly.
#'
#' @inheritParams shape_layers
#' @inheritParams soft_matching_distance
#' @return A tibble of class `ts_soft_matching`: `layer_x`, `layer_y` (factors in layer
#'   order) and `distance`. `as.matrix()` gives the layer x layer matrix; `autoplot()` a
#'   heatmap.
#' @seealso [soft_matching_distance()], [shape_layers()].
#' @export
#' @examples
#' set.seed(1)
#' z <- matrix(rnorm(60 * 6), 60)
#' reps <- ts_reps(list(a = z, b = z[, 6:1], c = z %*% qr.Q(qr(matrix(rnorm(36), 6)))))
#' as.matrix(soft_matching_layers(reps))   # a and b: the same units permuted
soft_matching_layers <- function(reps, reps2 = NULL, centre = TRUE) {
  io <- layer_pair_inputs(reps, reps2)
  if (!is.logical(centre) || length(centre) != 1 || is.na(centre)) {
    ts_abort("{.arg centre} must be TRUE or FALSE, not {describe(centre)}.", "argument")
  }
  xs <- io$reps$layers
  ys <- if (io$within) xs else io$reps2$layers
  check_transport_size(max(vapply(xs, ncol, integer(1))), max(vapply(ys, ncol, integer(1))),
                       c("reps", if (io$within) "reps" else "reps2"))
  m <- cpp_soft_matching_matrix(unname(xs), if (io$within) list() else unname(ys), centre, threads_now())
  out <- layer_pair_tibble(m, names(xs), names(ys), "distance")
  structure(out, class = c("ts_soft_matching", class(out)), settings = c(list(centre = centre), pair_settings(io)))
}

#' Stochastic shape distance between two noisy (trial-by-trial) representations
#'
#' The stochastic shape metrics of Duong, Zhou, Nassar, Berman, Olieslagers & Williams
#' (2023): distances between the *distributions* of responses to each stimulus, after
#' the best rotation of one system's units onto the other's, with the definitions of
#' netrep's `GaussianStochasticMetric` and `EnergyStochasticMetric`. Use them where
#' repeated trials are given (neural recordings, networks with noise or dropout): two
#' systems with the same trial means but different trial-to-trial variability are at
#' distance 0 for [shape_distance()], not here.
#'
#' Both systems' units are zero-padded to P = max(p, q) (`zero_pad`) and, with
#' `centre = TRUE`, each system's grand mean over stimuli and trials is removed (netrep
#' leaves centring to the user: `centre = FALSE` is its convention). Y's units are
#' aligned to X's by an orthogonal P x P matrix T (attribute `rotation`).
#'
#' * `"gaussian"`: each stimulus s is summarised by its trial mean \eqn{\mu_s} and
#'   covariance \eqn{\Sigma_s} (divisor trials - 1), and
#'   \deqn{d^2 = \min_T \frac{1}{n} \sum_s \alpha \|\mu_s - T^\top \nu_s\|^2 +
#'   (2 - \alpha)\, \mathcal{B}^2(\Sigma_s, T^\top \Lambda_s T),}
#'   \eqn{\mathcal{B}^2(A, C) = \mathrm{tr} A + \mathrm{tr} C - 2 \|A^{1/2} C^{1/2}\|_*} (squared
#'   Bures distance). `alpha` in \[0, 2\]: 1 is the 2-Wasserstein distance between the
#'   Gaussians, 2 uses the means only (then d = sqrt(2 / n) times the Euclidean
#'   Procrustes distance of the trial means, [shape_distance()] with
#'   `distance = "euclidean"`), 0 the covariances only. T is fitted by netrep's
#'   alternating minimisation (one Procrustes problem per stimulus, then one for T;
#'   start: the Procrustes rotation of the means; stop when the objective falls by less
#'   than `tol`, default 1e-8, or after `max_iter`, default 1000, rounds). Difference
#'   from netrep: its rounds stack the terms with weights alpha and 2 - alpha rather
#'   than their square roots, so for alpha != 1 they minimise another objective than
#'   the d it reports; here each round decreases the reported d. At alpha = 1 the two
#'   agree.
#' * `"energy"`: with all pairs of trials of each stimulus,
#'   \eqn{d^2 = \max(0,\ E\|x - yT\| - (E\|x - x'\| + E\|y - y'\|)/2)} (netrep's energy
#'   distance: x-y over all trial pairs, x-x' and y-y' over distinct trials, averaged over
#'   stimuli), T minimising \eqn{\sum \|x - yT\|} by iteratively reweighted Procrustes
#'   (netrep's weights \eqn{1 / \max(\sqrt{r}, 10^{-6})}; `tol` default 1e-6,
#'   `max_iter` 100). It makes no Gaussian assumption; X and Y may have different
#'   numbers of trials.
#'
#' The distances are symmetric, 0 for a system and a rotation of itself (same noise),
#' and satisfy the triangle inequality when the fits reach the optimal T (alternating
#' minimisation finds a local optimum; the tests check the axioms on random triples).
#' They are in the units of the data, not scale-free. Without convergence within
#' `max_iter` rounds the distance comes with a warning of class
#' `tensorscope_warning_not_converged`.
#'
#' **Stimuli**: when both arrays have stimulus ids (first dimnames) they are matched by
#' id; otherwise by position. Every stimulus needs the same number of trials (an NA left
#' by [ts_neural()] for a missing trial is an error naming the stimulus and trial).
#'
#' @param x,y Stimuli x units x trials numeric arrays, or [ts_neural()] results with
#'   single trials of one group (`ts_neural(...)$trials$IT` picks one of several).
#' @param method `"gaussian"` (2-Wasserstein-type, on trial means and covariances) or
#'   `"energy"` (energy distance on the trials themselves).
#' @param alpha Gaussian only: weight in \[0, 2\] of the mean term (2 - alpha weighs
#'   the covariance term).
#' @param max_iter,tol Rounds and tolerance of the fit (`NULL`: netrep's defaults, see
#'   above).
#' @inheritParams shape_distance
#' @return A single number, the distance, with attributes `rotation` (T, P x P),
#'   `iterations`, `converged` and `loss` (the fitting objective after each round).
#' @references Duong, Zhou, Nassar, Berman, Olieslagers & Williams (2023).
#'   Representational dissimilarity metric spaces for stochastic neural networks. ICLR.
#'   netrep: <https://github.com/ahwillia/netrep>.
#' @seealso [shape_distance()] for trial means, [noise_ceiling()].
#' @export
#' @examples
#' set.seed(1)
#' n <- 30; p <- 4; trials <- 10
#' signal <- matrix(rnorm(n * p), n)
#' x <- array(signal, c(n, p, trials)) + array(rnorm(n * p * trials, sd = 0.3), c(n, p, trials))
#' q <- qr.Q(qr(matrix(rnorm(p * p), p)))
#' y <- array(apply(x, 3, function(m) m %*% q), c(n, p, trials))   # a rotated copy
#' c(stochastic_shape_distance(x, y))                  # 0
#' noisier <- x + array(rnorm(n * p * trials, sd = 0.5), c(n, p, trials))
#' d <- stochastic_shape_distance(x, noisier)          # more noise: > 0
#' c(d)
#' attr(d, "iterations")
#' c(stochastic_shape_distance(x, noisier, alpha = 2)) # means only: smaller
#' c(stochastic_shape_distance(x, noisier, method = "energy"))
stochastic_shape_distance <- function(x, y, method = c("gaussian", "energy"), alpha = 1, centre = TRUE,
                                      zero_pad = TRUE, max_iter = NULL, tol = NULL) {
  method <- check_choice(method, c("gaussian", "energy"))
  if (method == "energy" && !missing(alpha)) {
    ts_abort("{.arg alpha} applies to {.code method = \"gaussian\"} only; the energy distance has no mean/covariance weight.",
             "argument")
  }
  alpha <- check_number(alpha, lower = 0, upper = 2)
  opts <- shape_options(1, "angular", zero_pad, centre)
  max_iter <- if (is.null(max_iter)) 0L else check_count(max_iter, min = 1, max = 1e6)
  tol <- if (is.null(tol)) -1 else check_number(tol, lower = 0)
  x <- as_trials(x)
  y <- as_trials(y)
  idx <- match_stimuli(dimnames(x)[[1]], dimnames(y)[[1]], "x", "y")
  if (!is.null(idx)) y <- y[idx, , , drop = FALSE]
  d <- rbind(x = dim(x), y = dim(y))
  if (d[1, 1] != d[2, 1]) {
    ts_abort("{.arg x} and {.arg y} must have the same stimuli: {.arg x} has {d[1, 1]}, {.arg y} has {d[2, 1]}.", "mismatch")
  }
  if (!zero_pad && d[1, 2] != d[2, 2]) {
    ts_abort("With {.code zero_pad = FALSE} {.arg x} and {.arg y} need the same number of units; they have {d[1, 2]} and {d[2, 2]}.",
             "mismatch")
  }
  P <- max(d[, 2])
  need <- if (method == "gaussian") 3 * d[1, 1] * P^2 else d[1, 1] * (d[1, 3] * d[2, 3] + (d[1, 3] + d[2, 3]) * P)
  if (need > 2.5e8) {
    ts_abort("The {method} stochastic shape distance of {d[1, 1]} stimuli x {P} units x {d[1, 3]}/{d[2, 3]} trials needs {format(need * 8 / 2^30, digits = 3)} GiB; at most 2 GiB is supported.",
             "memory")
  }
  r <- cpp_stochastic_shape(x, y, method, alpha, opts$centre, max_iter, tol, threads_now())
  if (!r$converged) {
    cli::cli_warn(c("The {method} stochastic shape fit did not converge in {r$iterations} rounds; the distance is an upper bound.",
                    i = "Raise {.arg max_iter} or {.arg tol}."),
                  class = c("tensorscope_warning_not_converged", "tensorscope_warning"))
  }
  structure(r$distance, rotation = r$rotation, iterations = r$iterations, converged = r$converged, loss = r$loss)
}

# A stimuli x units x trials double array from an array or a ts_neural() result.
as_trials <- function(x, arg = rlang::caller_arg(x), call = rlang::caller_env()) {
  force(arg)
  if (inherits(x, "ts_reps")) {
    tr <- x$trials
    if (!length(tr)) {
      ts_abort(c("{.arg {arg}} holds trial means only; stochastic shape metrics need the single trials.",
                 i = "Give a stimuli x units x trials array, or {.code ts_neural(..., trial = \"trial\")}."),
               "argument", call = call)
    }
    if (length(tr) > 1) {
      ts_abort(c("{.arg {arg}} has single trials of {length(tr)} groups: {.val {names(tr)}}.",
                 i = "Pick one, e.g. {.code {arg}$trials${names(tr)[1]}}."), "argument", call = call)
    }
    x <- tr[[1]]
  }
  if (!is.array(x) || !(is.numeric(x) || is.logical(x)) || length(dim(x)) != 3) {
    ts_abort("{.arg {arg}} must be a numeric stimuli x units x trials array, not {describe(x)}.", "type", call = call)
  }
  d <- dim(x)
  if (any(d == 0)) ts_abort("{.arg {arg}} is empty ({paste(d, collapse = ' x ')}).", "empty", call = call)
  if (d[3] < 2) ts_abort("{.arg {arg}} needs at least 2 trials per stimulus; it has {d[3]}.", "too_few", call = call)
  if (d[1] < 2) ts_abort("{.arg {arg}} needs at least 2 stimuli; it has {d[1]}.", "too_few", call = call)
  if (storage.mode(x) != "double") storage.mode(x) <- "double"
  if (cpp_first_non_finite(x) > 0) {
    bad <- which(!is.finite(x))
    at <- arrayInd(bad[1], d)
    stim <- dimnames(x)[[1]][at[1]] %||% at[1]
    ts_abort(c("{.arg {arg}} has {length(bad)} non-finite value{?s} (NA, NaN or Inf); the first is at stimulus {.val {stim}}, unit {at[2]}, trial {at[3]}.",
               i = "Every stimulus needs the same number of trials: {.fn ts_neural} leaves NA where one has fewer. Keep the trials all stimuli have."),
             "non_finite", call = call)
  }
  x
}

# ---- the analyzer's metric -------------------------------------------------------------
# On the analyzer's reduced layers (the same centred Gram matrix as the activations):
# shape distances are invariant to rotations of the feature space, so they are exact there.
rlang::on_load(register_metric(new_metric(
  "shape_distance", family = "alignment", scope = "model", fn = "shape_layers", aliases = "shape_layers",
  defaults = list(alpha = 1, distance = "angular"),
  description = "generalized shape distance between all pairs of layers (Williams et al. 2021; alpha = 1 Procrustes, 0 CCA)",
  about = "Generalized shape distance between every pair of layers (Williams et al. 2021): the angle between their representations after the best rotation (alpha = 1) or whitening (alpha = 0). 0 means the same shape; larger values mean more different, and unlike CKA it is a true metric.",
  compute = function(x, args, ctx) shape_layers(x, alpha = args$alpha, distance = args$distance),
  tidy = function(out, ctx) {
    tibble::tibble(layer = as.character(out$layer_x), statistic = paste0("shape:", out$layer_y), value = out$distance,
                   layer_y = factor(as.character(out$layer_y), levels = levels(out$layer_y)))
  },
  plot = plot_shape_matrix)))

# CCA is invariant to invertible linear maps of each layer's units, so mean CCA and SVCCA
# are exact on the reduced layers too. PWCCA weighs the canonical directions by the
# layer's own units, which the reduction of wide layers (more units than stimuli) does not
# keep: it is not offered here.
rlang::on_load(register_metric(new_metric(
  "cca_similarity", family = "alignment", scope = "model", fn = "cca_layers", aliases = "cca_layers",
  defaults = list(method = "svcca", keep = 0.99),
  description = "canonical correlation similarity between all pairs of layers (SVCCA, Raghu et al. 2017, or mean CCA)",
  about = "Canonical correlation between every pair of layers: the mean correlation of the directions two layers share after each is freed of its linear mixing (SVCCA first keeps the top singular directions, Raghu et al. 2017). 1 means one layer is a linear transform of the other; values near 0 mean they share no linear subspace.",
  compute = function(x, args, ctx) {
    if (identical(args$method, "pwcca")) {
      ts_abort("The analyzer's {.val cca_similarity} offers {.code method = \"mean\"} or {.code \"svcca\"}: PWCCA depends on the units of a layer, which the analyzer's reduced layers do not keep; call {.fn cca_layers} on the activations.",
               "argument")
    }
    cca_layers(x, method = args$method, keep = args$keep)
  },
  tidy = function(out, ctx) {
    tibble::tibble(layer = as.character(out$layer_x), statistic = paste0("cca:", out$layer_y), value = out$similarity,
                   layer_y = factor(as.character(out$layer_y), levels = levels(out$layer_y)))
  },
  plot = function(d, metric) plot_layer_pairs(d, metric, "cca", "similarity", title = "CCA similarity between layers", limits = c(0, 1)))))
