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
                           centre = TRUE, test = NULL) {
  x <- as_data_matrix(x)
  y <- as_data_matrix(y)
  y <- align_rows(x, y)
  opts <- shape_options(alpha, distance, zero_pad, centre)
  split <- shape_split(test, rownames(x), nrow(x))
  check_shape_layers(list(x = x), list(y = y), opts, split)
  sc <- shape_scale(list(x, y), opts)
  d <- cpp_shape_matrix(sc$layers[1], sc$layers[2], opts$alpha, opts$distance, opts$centre, split$train, split$test,
                        threads_now())
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
                         zero_pad = TRUE, centre = TRUE, test = NULL) {
  reps <- as_reps(reps)
  within <- is.null(reps2)
  if (!within) {
    if (is.matrix(reps2) || is.data.frame(reps2)) reps2 <- list(neural = reps2)
    reps2 <- as_reps(reps2)
    reps2 <- align_reps(reps, reps2, "reps", "reps2")
  }
  opts <- shape_options(alpha, distance, zero_pad, centre)
  split <- shape_split(test, reps$stimuli, length(reps$stimuli))
  ys <- if (within) list() else reps2$layers
  check_shape_layers(reps$layers, if (within) reps$layers else ys, opts, split, "reps", if (within) "reps" else "reps2")
  sc <- shape_scale(c(unname(reps$layers), unname(ys)), opts)
  nl <- length(reps$layers)
  m <- cpp_shape_matrix(sc$layers[seq_len(nl)], sc$layers[-seq_len(nl)], opts$alpha, opts$distance, opts$centre,
                        split$train, split$test, threads_now())
  check_shape_result(m)
  m <- m / sc$factor
  nx <- names(reps$layers)
  ny <- if (within) nx else names(reps2$layers)
  out <- tibble::tibble(
    layer_x = factor(rep(nx, times = length(ny)), levels = nx),
    layer_y = factor(rep(ny, each = length(nx)), levels = unique(ny)),
    distance = as.vector(m)
  )
  structure(out, class = c("ts_shape", class(out)),
            settings = list(alpha = opts$alpha, distance = opts$distance, zero_pad = opts$zero_pad,
                            centre = opts$centre, cross_validated = length(split$test) > 0,
                            n_train = if (length(split$test)) length(split$train) else length(reps$stimuli),
                            n_test = length(split$test), within = within,
                            model_x = reps$provenance$model,
                            model_y = if (within) reps$provenance$model else reps2$provenance$model))
}

#' @export
as.matrix.ts_shape <- function(x, ...) {
  lx <- levels(x$layer_x)
  ly <- levels(x$layer_y)
  m <- matrix(NA_real_, length(lx), length(ly), dimnames = list(lx, ly))
  m[cbind(as.integer(x$layer_x), as.integer(x$layer_y))] <- x$distance
  m
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
  if (ncol(x) * ncol(y) > 2e7) {
    ts_abort("Soft matching of the {ncol(x)} x {ncol(y)} units of {.arg x} and {.arg y} needs a {ncol(x)} x {ncol(y)} cost matrix; at most 2e7 entries are supported.",
             "argument")
  }
  r <- cpp_soft_matching(x, y, centre, threads_now())
  structure(sqrt(r$cost), plan = r$plan)
}

# ---- the analyzer's metric -------------------------------------------------------------
# On the analyzer's reduced layers (the same centred Gram matrix as the activations):
# shape distances are invariant to rotations of the feature space, so they are exact there.
rlang::on_load(register_metric(new_metric(
  "shape_distance", family = "alignment", scope = "model", fn = "shape_layers", aliases = "shape_layers",
  defaults = list(alpha = 1, distance = "angular"),
  description = "generalized shape distance between all pairs of layers (Williams et al. 2021; alpha = 1 Procrustes, 0 CCA)",
  compute = function(x, args, ctx) shape_layers(x, alpha = args$alpha, distance = args$distance),
  tidy = function(out, ctx) {
    tibble::tibble(layer = as.character(out$layer_x), statistic = paste0("shape:", out$layer_y), value = out$distance,
                   layer_y = factor(as.character(out$layer_y), levels = levels(out$layer_y)))
  },
  plot = function(d, metric) plot_layer_pairs(d, metric, "shape", "distance", direction = -1))))
