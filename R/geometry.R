# Geometry of representations: dimensionality, intrinsic dimension, kNN graphs, Ricci
# curvature, the fiber-bundle test, separability and invariance.
# Core: inst/include/tensorscope/{knn,geometry,ricci}.hpp.

# ---- shared helpers -----------------------------------------------------------------

# Layers of x when it is a ts_reps (or a named list of layers), else NULL.
reps_layers <- function(x, arg = rlang::caller_arg(x), call = rlang::caller_env()) {
  force(arg)
  if (inherits(x, "ts_reps") || (is.list(x) && !is.data.frame(x))) return(as_reps(x, arg = arg, call = call)$layers)
  NULL
}

# Applies fn(matrix, arg) to every layer and binds the tibbles, with a `layer` column
# (a factor in layer order) first. A layer with zero variance (e.g. a zero-initialised
# head) is unusable but does not stop the others: it gets one row of NA values (text
# columns kept from another layer) and a warning of class
# tensorscope_warning_unusable_layer naming it. If every layer is unusable, the first
# error is raised. Progress (one step per layer, for several layers) goes through
# progressr, as in rsa().
map_layers <- function(layers, fn, arg) {
  failed <- list()
  tick <- if (length(layers) > 1) progressr::progressor(steps = length(layers)) else function(...) NULL
  rows <- lapply(names(layers), function(nm) {
    out <- tryCatch(fn(layers[[nm]], sprintf("%s$%s", arg, nm)), tensorscope_error_zero_variance = function(e) {
      failed[[nm]] <<- e
      NULL
    })
    tick(message = nm)
    if (is.null(out)) return(NULL)
    tibble::add_column(tibble::as_tibble(out), layer = nm, .before = 1)
  })
  if (length(failed) == length(layers)) rlang::cnd_signal(failed[[1]])
  if (length(failed)) {
    msg <- conditionMessage(failed[[1]])
    proto <- rows[[which(!vapply(rows, is.null, logical(1)))[1]]][1, ]
    for (j in seq_along(proto)) if (!is.character(proto[[j]])) proto[[j]] <- proto[[j]][NA_integer_]
    for (nm in names(failed)) {
      proto$layer <- nm
      rows[[match(nm, names(layers))]] <- proto
    }
    cli::cli_warn(c("Layer{?s} {.val {names(failed)}} {?is/are} unusable (zero variance across stimuli) and gave NA; the other layers were computed.",
                    i = "{msg}"), class = c("tensorscope_warning_unusable_layer", "tensorscope_warning"))
  }
  out <- do.call(rbind, rows)
  out$layer <- factor(out$layer, levels = names(layers))
  out
}

# Per-layer profile: a tibble with layer, metric, value (+ extra columns), which
# autoplot() draws as a profile across layers.
layer_profile <- function(df) {
  structure(tibble::as_tibble(df), class = c("ts_layer_profile", "tbl_df", "tbl", "data.frame"))
}

check_min_rows <- function(x, min, arg, what, call = rlang::caller_env()) {
  if (nrow(x) < min) {
    ts_abort("{what} needs at least {min} stimuli (rows) in {.arg {arg}}; got {nrow(x)}.", "too_few", call = call)
  }
  invisible(x)
}

# Distinct rows of x. Duplicates are dropped with a warning naming how many; the
# returned `rows` are the original indices of the kept rows.
distinct_rows <- function(x, arg, call = rlang::caller_env()) {
  keep <- cpp_unique_rows(x)
  n_dup <- nrow(x) - length(keep)
  if (n_dup > 0) {
    cli::cli_warn(c("{.arg {arg}} has {nrow(x) - length(keep)} duplicate point{?s}; {?it is/they are} dropped (the first copy of each point is kept).",
                    i = "Nearest-neighbour methods need distinct points: a zero distance has no dimension."),
                  class = "tensorscope_warning_duplicates", call = call)
    x <- x[keep, , drop = FALSE]
  }
  list(x = x, rows = keep, n_duplicates = n_dup)
}

# ---- spectral dimensionality ---------------------------------------------------------

#' Effective rank and participation ratio
#'
#' Spectral measures of how many dimensions a representation uses, computed from the
#' spectrum of the column-centred data (stimuli x features).
#'
#' * **Effective rank** (Roy & Vetterli 2007): \eqn{\exp(-\sum_i p_i \log p_i)} with
#'   \eqn{p_i = \sigma_i / \sum_j \sigma_j}. With `on = "singular_values"` (the paper's
#'   definition, the default) the \eqn{\sigma_i} are the singular values of the
#'   centred data; `on = "eigenvalues"` uses the covariance eigenvalues
#'   \eqn{\lambda_i = \sigma_i^2 / (n - 1)} instead, which some implementations do and
#'   which gives smaller numbers for the same data.
#' * **Participation ratio**: \eqn{(\sum_i \lambda_i)^2 / \sum_i \lambda_i^2} over the
#'   covariance eigenvalues.
#'
#' Both equal d for an isotropic cloud in d dimensions (up to sampling noise) and are at
#' most the rank of the data. The spectrum comes from one symmetric rank-k update of
#' the smaller side of the centred data and a LAPACK eigendecomposition.
#'
#' @param x A numeric matrix (stimuli x features), or a [ts_reps()] object / named
#'   list of layers.
#' @param on `"singular_values"` or `"eigenvalues"`, see Details.
#' @return For a matrix, a single number. For layers, a `ts_layer_profile` tibble with
#'   columns `layer`, `metric` and `value`. Both are scale-invariant (data x 1e300 or
#'   x 1e-300 give the unscaled value).
#'   A layer with zero variance across stimuli (e.g. a zero-initialised head) is
#'   unusable: it gets `NA`, with a warning of class `tensorscope_warning_unusable_layer`
#'   naming it, and the other layers are computed (every layer unusable: an error of
#'   class `tensorscope_error_zero_variance`).
#' @references Roy & Vetterli (2007). The effective rank: a measure of effective
#'   dimensionality. EUSIPCO.
#' @export
#' @examples
#' set.seed(1)
#' x <- matrix(rnorm(500 * 10), 500)
#' effective_rank(x)                 # close to 10
#' participation_ratio(x %*% diag(c(10, rep(1, 9))))
#' effective_rank(list(a = x, b = x[, 1:3]))
effective_rank <- function(x, on = c("singular_values", "eigenvalues")) {
  on <- check_choice(on, c("singular_values", "eigenvalues"))
  spectral_metric(x, if (on == "singular_values") 1L else 2L, "effective_rank")
}

#' @rdname effective_rank
#' @export
participation_ratio <- function(x) spectral_metric(x, 3L, "participation_ratio")

# ctx: an analyzer layer's context, whose memo keeps the spectrum's three numbers (one
# SVD) for both metrics that read them (effective_rank, participation_ratio).
spectral_metric <- function(x, which, metric, arg = "x", ctx = NULL, call = rlang::caller_env()) {
  one <- function(m, arg) {
    layer_memo(ctx, "spectral_dims", function() {
      m <- as_data_matrix(m, arg = arg, call = call)
      check_min_rows(m, 2, arg, "A spectrum", call = call)
      check_variance(m, arg, call = call)
      cpp_spectral_dims(scale_extreme_data(m))
    })[which]
  }
  layers <- reps_layers(x, arg = arg, call = call)
  if (is.null(layers)) return(one(x, arg))
  layer_profile(map_layers(layers, function(m, a) tibble::tibble(metric = metric, value = one(m, a)), arg))
}

# ---- nearest neighbours and intrinsic dimension ---------------------------------------

#' Exact k nearest neighbours
#'
#' Euclidean k-nearest-neighbour search used by [intrinsic_dim()],
#' [ricci_curvature()] and [fiber_bundle_test()]. Exact: distances come from blocked
#' matrix products (\eqn{||x||^2 + ||y||^2 - 2 x \cdot y} on the centred and rescaled
#' data, each pair once, in BLAS), a bounded selection per row in parallel, and a final
#' exact re-measurement of a few extra candidates per row, so the result equals a brute
#' force search (ties broken by the lower index) and does not depend on the number of
#' threads. No approximate mode is offered: the exact search is GEMM-bound.
#'
#' @param x A numeric matrix (points in rows).
#' @param k Number of neighbours (1 <= k < number of rows).
#' @return A list of class `ts_knn` with `index` (n x k integer matrix of 1-based row
#'   indices, nearest first; a point is never its own neighbour) and `distance` (n x k
#'   Euclidean distances).
#' @export
#' @examples
#' nn <- nearest_neighbors(matrix(rnorm(200), 100), k = 3)
#' nn$index[1:3, ]
nearest_neighbors <- function(x, k = 10) {
  x <- as_data_matrix(x)
  k <- check_count(k, min = 1)
  check_k(k, nrow(x), "x")
  structure(cpp_knn(x, k, threads_now()), class = "ts_knn")
}

check_k <- function(k, n, arg, call = rlang::caller_env()) {
  if (k >= n) {
    ts_abort("{.arg k} = {k} needs more than {k} distinct points in {.arg {arg}}; it has {n}.", "too_few", call = call)
  }
}

#' Intrinsic dimension from nearest-neighbour distances
#'
#' * `"twonn"` (Facco et al. 2017): with \eqn{\mu_i = r_2/r_1} the ratio of each point's
#'   second to first neighbour distance, sort the \eqn{\mu_i}, keep the smallest
#'   fraction `keep` (0.9), set \eqn{F_i = i/N} and fit \eqn{-\log(1 - F_i) = d \log
#'   \mu_i} through the origin (as scikit-dimension's `TwoNN`).
#' * `"twonn_mle"`: the maximum-likelihood TwoNN estimate \eqn{d = (N-1)/\sum_i \log
#'   \mu_i} (unbiased form).
#' * `"mle_levina_bickel"` (Levina & Bickel 2005) with `k` neighbours, the per-point
#'   estimates combined by averaging their inverses (MacKay & Ghahramani 2005):
#'   \eqn{1/d = \mathrm{mean}_i\, (k-1)^{-1} \sum_{j<k} \log(T_k/T_j)}.
#'
#' **Duplicates and scale.** A duplicated point has \eqn{r_1 = 0} and no dimension:
#' duplicates are removed first (keeping one copy) with a warning of class
#' `tensorscope_warning_duplicates`; the estimate uses the distinct points. Distances
#' are computed on data rescaled by its largest absolute value and re-measured exactly,
#' so values near the limits of floating point neither overflow nor underflow. When
#' every ratio is 1 (e.g. a regular lattice) the estimate is `Inf`, with a warning.
#'
#' @param x A numeric matrix (stimuli x features), or a [ts_reps()] / named list of
#'   layers.
#' @param method `"twonn"`, `"twonn_mle"` or `"mle_levina_bickel"`.
#' @param k Neighbours for `"mle_levina_bickel"` (>= 3).
#' @param keep Fraction of the smallest ratios used by the `"twonn"` fit.
#' @return For a matrix, a single number (attributes `n_used`, the points in the
#'   estimate, and `n_duplicates`). For layers, a `ts_layer_profile` tibble: `layer`,
#'   `metric` (`"intrinsic_dim"`), `value`, `method`, `n_used`, `n_duplicates`.
#'   A layer with zero variance across stimuli (e.g. a zero-initialised head) is
#'   unusable: it gets `NA`, with a warning of class `tensorscope_warning_unusable_layer`
#'   naming it, and the other layers are computed (every layer unusable: an error of
#'   class `tensorscope_error_zero_variance`).
#' @references Facco, d'Errico, Rodriguez & Laio (2017). Estimating the intrinsic
#'   dimension of datasets by a minimal neighborhood information. Sci. Rep. 7, 12140.
#'   Levina & Bickel (2005). Maximum likelihood estimation of intrinsic dimension. NIPS.
#' @export
#' @examples
#' set.seed(1)
#' z <- matrix(runif(2000 * 3), 2000)
#' x <- z %*% matrix(rnorm(3 * 20), 3)     # a 3-dimensional subspace of R^20
#' intrinsic_dim(x)
#' intrinsic_dim(x, method = "mle_levina_bickel", k = 10)
intrinsic_dim <- function(x, method = c("twonn", "twonn_mle", "mle_levina_bickel"), k = 10, keep = 0.9) {
  method <- check_choice(method, c("twonn", "twonn_mle", "mle_levina_bickel"))
  k <- check_count(k, min = 3)
  keep <- check_number(keep, lower = 0.01, upper = 1)
  call <- rlang::current_env()
  one <- function(m, arg) {
    m <- as_data_matrix(m, arg = arg, call = call)
    check_variance(m, arg, call = call)
    d <- distinct_rows(m, arg, call = call)
    kk <- if (method == "mle_levina_bickel") k else 2L
    check_k(kk, nrow(d$x), arg, call = call)
    r <- cpp_intrinsic_dim(scale_extreme_data(d$x), method, k, keep, threads_now())
    if (is.infinite(r$dim)) {
      cli::cli_warn("Every neighbour-distance ratio in {.arg {arg}} is 1 (equidistant neighbours): the intrinsic dimension is infinite.",
                    class = "tensorscope_warning_degenerate")
    }
    list(dim = r$dim, n_used = as.integer(r$n_used), n_duplicates = d$n_duplicates)
  }
  layers <- reps_layers(x)
  if (is.null(layers)) {
    r <- one(x, "x")
    return(structure(r$dim, n_used = r$n_used, n_duplicates = r$n_duplicates))
  }
  layer_profile(map_layers(layers, function(m, a) {
    r <- one(m, a)
    tibble::tibble(metric = "intrinsic_dim", value = r$dim, method = method, n_used = r$n_used,
                   n_duplicates = r$n_duplicates)
  }, "x"))
}

# ---- Ricci curvature ----------------------------------------------------------------

#' Ricci curvature of a kNN graph (or of any graph)
#'
#' Discrete Ricci curvature of every edge of the symmetrised k-nearest-neighbour graph
#' of the points (i ~ j when j is among i's k nearest or i among j's; edge length = the
#' Euclidean distance), or of a given [igraph][igraph::igraph] graph (edge attribute
#' `weight` as lengths, else 1).
#'
#' * `"ollivier"`: \eqn{\kappa(x, y) = 1 - W_1(m_x, m_y)/d(x, y)} (Ollivier 2009) in
#'   GraphRicciCurvature's convention (Ni et al. 2015): \eqn{m_x} puts mass `alpha` on
#'   x and \eqn{(1-\alpha) e^{-w(x,v)^p}/\sum} on each neighbour v (`p = exp_power`;
#'   uniform on an unweighted graph), d is the shortest-path distance. \eqn{W_1} is
#'   solved exactly (transportation simplex, not a Sinkhorn approximation) with
#'   shortest-path ground costs, computed only between the two supports. Note that on
#'   a kNN graph the weights \eqn{e^{-w^p}} depend on the units of the data, as in
#'   GraphRicciCurvature; `exp_power = 0` gives uniform weights. Forman curvature and
#'   uniform-weight Ollivier curvature are scale-invariant (data x 1e300 or x 1e-300
#'   give the unscaled curvature: extreme scales are brought near 1 internally).
#' * `"forman"`: Forman curvature with unit node weights (Sreejith et al. 2016),
#'   \eqn{F(e) = w_e (2/w_e - \sum_{e' \sim x} 1/\sqrt{w_e w_{e'}} - \sum_{e' \sim y}
#'   1/\sqrt{w_e w_{e'}})}, i.e. \eqn{4 - \deg x - \deg y} when unweighted.
#'
#' Duplicate points (zero-length edges) are removed first, with a warning.
#'
#' @param x A numeric matrix (points in rows), a [ts_reps()] / named list of layers, or
#'   an undirected igraph graph. For several layers, progress (one step per layer) goes
#'   through `progressr` (see [rsa()]).
#' @param k Neighbours of the kNN graph.
#' @param alpha Mass kept on the node (Ollivier).
#' @param method `"ollivier"` or `"forman"`.
#' @param exp_power Exponent p of the neighbour weights \eqn{e^{-w^p}} (Ollivier).
#' @return A tibble of class `ts_ricci`, one row per edge: `layer` (for layers),
#'   `from`, `to` (row indices, from < to), `length` and `curvature`. `summary()` gives
#'   per layer `n_edges`, `mean_ricci`, `median_ricci`, `sd_ricci` and the fraction of
#'   negative edges; `autoplot()` the curvature histogram.
#' @references Ollivier (2009). Ricci curvature of Markov chains on metric spaces.
#'   J. Funct. Anal. 256. Ni, Lin, Gao, Gu & Saucan (2015). Ricci curvature of the
#'   Internet topology. INFOCOM. Sreejith, Mohanraj, Jost, Saucan & Samal (2016).
#'   Forman curvature for complex networks. J. Stat. Mech.
#' @export
#' @examples
#' set.seed(1)
#' x <- matrix(rnorm(300 * 3), 300)
#' rc <- ricci_curvature(x, k = 8)
#' summary(rc)
#' if (requireNamespace("igraph", quietly = TRUE)) {
#'   summary(ricci_curvature(igraph::make_graph("Zachary")))
#' }
ricci_curvature <- function(x, k = 10, alpha = 0.5, method = c("ollivier", "forman"), exp_power = 2) {
  method <- check_choice(method, c("ollivier", "forman"))
  k <- check_count(k, min = 1)
  alpha <- check_number(alpha, lower = 0, upper = 1)
  exp_power <- check_number(exp_power, lower = 0)
  call <- rlang::current_env()
  if (inherits(x, "igraph")) {
    if (igraph::is_directed(x)) ts_abort("{.arg x} must be an undirected graph.", "argument")
    el <- igraph::as_edgelist(x, names = FALSE)
    w <- igraph::E(x)$weight
    if (is.null(w)) w <- rep(1, nrow(el))
    if (nrow(el) == 0) ts_abort("{.arg x} has no edges.", "empty")
    if (any(!is.finite(w)) || any(w <= 0)) ts_abort("Edge weights of {.arg x} must be positive and finite.", "argument")
    r <- cpp_ricci_graph(igraph::vcount(x), el[, 1], el[, 2], as.double(w), method, alpha, exp_power, threads_now())
    return(new_ricci(tibble::tibble(from = r$from, to = r$to, length = r$weight, curvature = r$curvature),
                     list(method = method, alpha = alpha, k = NA_integer_, exp_power = exp_power)))
  }
  one <- function(m, arg) {
    m <- as_data_matrix(m, arg = arg, call = call)
    check_variance(m, arg, call = call)
    d <- distinct_rows(m, arg, call = call)
    check_k(k, nrow(d$x), arg, call = call)
    # Forman and uniform-weight Ollivier curvature are scale-invariant: extreme scales are
    # brought near 1 (lengths scaled back). The weights e^{-w^p} (exp_power > 0) depend
    # on the units of w by definition, so those data are used as they are.
    s <- if (method == "forman" || exp_power == 0) scale_extreme_data(d$x, with_factor = TRUE) else list(x = d$x, factor = 1)
    r <- cpp_ricci_knn(s$x, k, method, alpha, exp_power, threads_now())
    tibble::tibble(from = d$rows[r$from], to = d$rows[r$to], length = r$weight / s$factor, curvature = r$curvature)
  }
  layers <- reps_layers(x)
  settings <- list(method = method, alpha = alpha, k = k, exp_power = exp_power)
  if (is.null(layers)) return(new_ricci(one(x, "x"), settings))
  new_ricci(map_layers(layers, one, "x"), settings)
}

new_ricci <- function(df, settings) {
  structure(tibble::as_tibble(df), class = c("ts_ricci", "tbl_df", "tbl", "data.frame"), settings = settings)
}

#' @param object A `ts_ricci` result.
#' @param ... Unused.
#' @rdname ricci_curvature
#' @export
summary.ts_ricci <- function(object, ...) {
  df <- tibble::as_tibble(structure(object, class = c("tbl_df", "tbl", "data.frame"), settings = NULL))
  if (!"layer" %in% names(df)) df$layer <- factor("graph")
  rows <- lapply(split(df$curvature, df$layer), function(v) {
    tibble::tibble(n_edges = length(v), mean_ricci = mean(v), median_ricci = stats::median(v),
                   sd_ricci = if (length(v) > 1) stats::sd(v) else NA_real_, frac_negative = mean(v < 0))
  })
  out <- do.call(rbind, rows)
  tibble::add_column(out, layer = factor(names(rows), levels = levels(factor(df$layer))), .before = 1)
}

# ---- fiber-bundle test ----------------------------------------------------------------

#' Fiber-bundle and manifold hypothesis test (Robinson et al. 2025)
#'
#' For every point, the number of other points within radius r is the "volume"
#' \eqn{V(r)}; on a d-dimensional manifold \eqn{\log V} grows linearly in \eqn{\log r}
#' with slope d at small radii. Robinson, Dey & Chiang (2025) test each point's
#' neighbourhood for a change of this slope: a slope (dimension) that *increases* with
#' radius rejects the fiber-bundle hypothesis (and the manifold hypothesis); any
#' detected change of slope, a stratification, rejects the manifold hypothesis.
#'
#' **Statistic (ours, exact under the null).** With the sorted neighbour distances
#' \eqn{T_1 \le T_2 \le \dots} of a point (\eqn{V(T_j) = j}), the spacings
#' \eqn{Y_j = j \log(T_{j+1}/T_j)} are independent exponentials with rate d when the
#' density is locally uniform on a d-dimensional set (Rényi's representation; the
#' Levina-Bickel estimator rests on the same fact). Spacings \eqn{j} in `k_range` are
#' split into sliding windows of `window` spacings (a window is a radius range
#' \eqn{[T_j, T_{j+w}]}); in each window the local dimension is \eqn{w/\sum Y}. At each
#' cut (every `step` spacings) the two adjacent windows are compared with the exact
#' two-sample test \eqn{\sum Y_{left} / \sum Y_{right} \sim F(2w, 2w)}: one-sided (the
#' right, larger-radius, window has the larger dimension) for the fiber-bundle
#' hypothesis, two-sided for the manifold hypothesis. A point's p-value is the smallest
#' p over its cuts times the number of cuts (Bonferroni); these are then corrected
#' across points with `p_adjust` (Holm by default, which controls the family-wise error
#' over all points). A hypothesis is rejected for the data when any point rejects it.
#'
#' **Defaults.** `k_range = c(1, 200)` neighbours, `window = 40` spacings (five
#' non-overlapping windows; the range must exceed 4 windows), cuts every `window/2`.
#' With fewer points the range shrinks to `n - 2` and the default window to a fifth of
#' it. These defaults detect the singular point of a double cone or a cusp with a few
#' thousand points and do not reject on a flat disc or a sphere (see the tests).
#' Density changes across radius scales also change the apparent dimension (as in the
#' original test): read rejections as "irregular at this scale".
#'
#' @param x A numeric matrix (points in rows).
#' @param k_range Neighbour ranks (min, max) whose spacings are used.
#' @param window Spacings per window (`NULL`: `min(40, range / 5)`).
#' @param step Spacings between cuts (`NULL`: `window / 2`).
#' @param alpha Significance level after correction.
#' @param p_adjust Correction across points, a method of [stats::p.adjust()].
#' @return An object of class `ts_fiber_bundle`, a list with
#'   * `points`: one row per distinct point: `point` (row index), `dim_small`,
#'     `dim_large` (dimension in the first and last window), `radius_change`,
#'     `dim_before`, `dim_after` (the most significant change of slope),
#'     `p_fiber`, `p_manifold` (per point, Bonferroni over cuts), `p_fiber_adj`,
#'     `p_manifold_adj` (corrected across points), `reject_fiber`, `reject_manifold`;
#'   * `profile`: local dimension by radius, `point`, `window`, `radius`, `dim`;
#'   * `decision`: `hypothesis` (`"manifold"`, `"fiber_bundle"`), `n_reject`, `reject`;
#'   * `settings`.
#'   `autoplot()` draws local dimension against radius.
#' @references Robinson, Dey & Chiang (2025). Token embeddings violate the manifold
#'   hypothesis. arXiv:2504.01002.
#' @seealso [embedding_singularities()]
#' @export
#' @examples
#' set.seed(1)
#' t <- runif(1500, -1, 1)
#' cusp <- cbind(t^2, t^3)
#' fb <- fiber_bundle_test(cusp, k_range = c(1, 100), window = 20)
#' fb$decision
fiber_bundle_test <- function(x, k_range = c(1, 200), window = NULL, step = NULL, alpha = 0.05,
                              p_adjust = "holm") {
  call <- rlang::current_env()
  x <- as_data_matrix(x)
  fiber_bundle_one(x, "x", k_range, window, step, alpha, p_adjust, call)
}

fiber_bundle_one <- function(x, arg, k_range, window, step, alpha, p_adjust, call) {
  if (!is.numeric(k_range) || length(k_range) != 2 || any(!is.finite(k_range)) || any(k_range != round(k_range)) ||
      k_range[1] < 1 || k_range[2] <= k_range[1]) {
    ts_abort("{.arg k_range} must be two whole numbers 1 <= min < max, not {describe(k_range)}.", "argument", call = call)
  }
  alpha <- check_number(alpha, lower = 0, upper = 1, call = call)
  p_adjust <- check_choice(p_adjust, stats::p.adjust.methods, call = call)
  check_variance(x, arg, call = call)
  d <- distinct_rows(x, arg, call = call)
  n <- nrow(d$x)
  kmin <- as.integer(k_range[1])
  kmax <- as.integer(min(k_range[2], n - 2))
  m <- kmax - kmin + 1L
  if (is.null(window)) window <- min(40L, m %/% 5L)
  window <- check_count(window, min = 1, max = m, call = call)
  if (window < 5 || m <= 4 * window) {
    ts_abort(c("The fiber-bundle test needs a neighbour range of more than 4 windows of at least 5 spacings.",
               x = "{.arg {arg}} has {n} distinct points: neighbour ranks {kmin}..{kmax} ({m} spacings) with {.arg window} = {window}."),
             "too_few", call = call)
  }
  if (is.null(step)) step <- max(1L, window %/% 2L)
  step <- check_count(step, min = 1, max = m, call = call)
  r <- cpp_fiber_windows(d$x, kmin, kmax, window, step, threads_now())
  df <- 2 * window
  p_inc <- stats::pf(r$ratio, df, df, lower.tail = FALSE)
  p_two <- p_inc
  p_two[] <- pmin(1, 2 * pmin(p_inc, stats::pf(r$ratio, df, df)))
  ncut <- ncol(r$ratio)
  p_fiber <- pmin(1, ncut * apply(p_inc, 1, min))
  p_manifold <- pmin(1, ncut * apply(p_two, 1, min))
  best <- max.col(-p_two, ties.method = "first")
  idx <- cbind(seq_len(n), best)
  p_fiber_adj <- stats::p.adjust(p_fiber, p_adjust)
  p_manifold_adj <- stats::p.adjust(p_manifold, p_adjust)
  points <- tibble::tibble(
    point = d$rows, dim_small = r$dim[, 1], dim_large = r$dim[, ncol(r$dim)],
    radius_change = r$cut_radius[idx], dim_before = r$dim_left[idx], dim_after = r$dim_left[idx] * r$ratio[idx],
    p_fiber = p_fiber, p_manifold = p_manifold, p_fiber_adj = p_fiber_adj, p_manifold_adj = p_manifold_adj,
    reject_fiber = p_fiber_adj < alpha, reject_manifold = p_manifold_adj < alpha
  )
  nw <- ncol(r$dim)
  profile <- tibble::tibble(point = rep(d$rows, times = nw), window = rep(seq_len(nw), each = n),
                            radius = as.vector(r$radius), dim = as.vector(r$dim))
  decision <- tibble::tibble(hypothesis = c("manifold", "fiber_bundle"),
                             n_reject = c(sum(points$reject_manifold), sum(points$reject_fiber)),
                             reject = c(any(points$reject_manifold), any(points$reject_fiber)))
  structure(list(points = points, profile = profile, decision = decision,
                 settings = list(k_range = c(kmin, kmax), window = window, step = step, alpha = alpha,
                                 p_adjust = p_adjust, n_duplicates = d$n_duplicates)),
            class = "ts_fiber_bundle")
}

#' @export
print.ts_fiber_bundle <- function(x, ...) {
  s <- x$settings
  cli::cat_line("<ts_fiber_bundle> ", nrow(x$points), " points, neighbours ", s$k_range[1], "..", s$k_range[2],
                ", window ", s$window, ", ", s$p_adjust, " at ", s$alpha)
  for (i in seq_len(nrow(x$decision))) {
    cli::cat_line("  ", format(x$decision$hypothesis[i], width = 12), " rejected at ", x$decision$n_reject[i],
                  " point(s): ", if (x$decision$reject[i]) "REJECT" else "not rejected")
  }
  invisible(x)
}

#' Embedding singularities per layer
#'
#' Runs [fiber_bundle_test()] on every layer and reports the points at which the
#' fiber-bundle hypothesis is rejected (Robinson et al. 2025's "singular" tokens).
#'
#' @param x A numeric matrix, or a [ts_reps()] / named list of layers.
#' @param hypothesis Which rejection counts: `"fiber_bundle"` (default) or
#'   `"manifold"`.
#' @inheritParams fiber_bundle_test
#' @return A tibble with one row per layer: `layer`, `n_points`, `count` (rejecting
#'   points), `fraction`, `indices` (a list column of the rejecting row indices).
#' @export
#' @examples
#' set.seed(1)
#' t <- runif(1500, -1, 1)
#' embedding_singularities(list(cusp = cbind(t^2, t^3)), k_range = c(1, 100), window = 20)
embedding_singularities <- function(x, hypothesis = c("fiber_bundle", "manifold"), k_range = c(1, 200),
                                    window = NULL, step = NULL, alpha = 0.05, p_adjust = "holm") {
  hypothesis <- check_choice(hypothesis, c("fiber_bundle", "manifold"))
  call <- rlang::current_env()
  layers <- reps_layers(x)
  if (is.null(layers)) layers <- list(layer = as_data_matrix(x))
  map_layers(layers, function(m, arg) {
    m <- as_data_matrix(m, arg = arg, call = call)
    singularities_of(fiber_bundle_one(m, arg, k_range, window, step, alpha, p_adjust, call), hypothesis)
  }, "x")
}

# The points of a fiber-bundle test result that reject `hypothesis`, as
# embedding_singularities() reports them.
singularities_of <- function(fb, hypothesis) {
  rej <- if (hypothesis == "fiber_bundle") fb$points$reject_fiber else fb$points$reject_manifold
  tibble::tibble(n_points = nrow(fb$points), count = sum(rej), fraction = mean(rej), indices = list(fb$points$point[rej]))
}

# The analyzer's fiber-bundle test of its current layer, run once for the two metrics
# that read it (the same arguments, the same result).
analyzer_fiber_bundle <- function(x, args, ctx) {
  key <- paste0("fiber_bundle:", paste(deparse(args[c("k_range", "alpha")]), collapse = ""))
  layer_memo(ctx, key, function() fiber_bundle_test(x, k_range = args$k_range, alpha = args$alpha))
}

# ---- separability and invariance ------------------------------------------------------

#' Cross-validated category separability per layer
#'
#' Stratified k-fold cross-validated accuracy of a linear classifier of the stimulus
#' categories from each layer.
#'
#' * `"lda"`: linear discriminant analysis with the pooled within-class covariance
#'   shrunk towards a scaled identity, \eqn{\Sigma = (1-\gamma) S + \gamma
#'   (\mathrm{tr} S/p) I} (`shrinkage` = \eqn{\gamma}), so that it works when features
#'   outnumber stimuli (solved in the n-dimensional dual by the Woodbury identity
#'   when p > n); equal priors.
#' * `"nearest_centroid"`: assign to the closest class mean (Euclidean).
#'
#' @param reps A [ts_reps()] object, a named list of layers, or one matrix.
#' @param labels Category of each stimulus (a vector with one element per stimulus;
#'   at least 2 categories, each with at least 2 stimuli). A named vector is matched
#'   to the stimulus ids of `reps` by name.
#' @param method `"lda"` or `"nearest_centroid"`.
#' @param folds Number of folds (>= 2).
#' @param shrinkage LDA shrinkage \eqn{\gamma} in (0, 1].
#' @param seed Seed of the fold assignment.
#' @return A `ts_layer_profile` tibble: `layer`, `metric` (`"separability"`), `value`
#'   (mean accuracy over folds), `sd` (over folds), `chance` (largest class
#'   proportion), `method`.
#' @export
#' @examples
#' set.seed(1)
#' lab <- rep(c("a", "b", "c"), each = 30)
#' z <- model.matrix(~ lab - 1) * 2 + matrix(rnorm(90 * 3), 90)
#' separability(list(signal = z, noise = matrix(rnorm(90 * 5), 90)), lab)
separability <- function(reps, labels, method = c("lda", "nearest_centroid"), folds = 5, shrinkage = 0.1,
                         seed = 1) {
  method <- check_choice(method, c("lda", "nearest_centroid"))
  folds <- check_count(folds, min = 2)
  shrinkage <- check_number(shrinkage, lower = 1e-6, upper = 1)
  seed <- check_seed(seed)
  layers <- reps_layers(reps)
  if (is.null(layers)) layers <- list(layer = reps)
  first <- as_data_matrix(layers[[1]], arg = "reps")
  n <- nrow(first)
  if (!is.null(names(labels))) {
    idx <- match_stimuli(rownames(first), names(labels), "reps", "labels")
    if (!is.null(idx)) labels <- labels[idx]
  }
  y <- check_labels(labels, n, min_per_class = 2)
  fold <- kfold_ids(n, folds, stratify = y, seed = seed)
  layer_profile(map_layers(layers, function(m, arg) {
    m <- scale_extreme_data(as_data_matrix(m, arg = arg))
    check_variance(m, arg)
    acc <- vapply(seq_len(folds), function(f) {
      test <- fold == f
      pred <- if (method == "lda") lda_predict(m[!test, , drop = FALSE], y[!test], m[test, , drop = FALSE], shrinkage)
              else centroid_predict(m[!test, , drop = FALSE], y[!test], m[test, , drop = FALSE])
      mean(pred == y[test])
    }, numeric(1))
    tibble::tibble(metric = "separability", value = mean(acc), sd = stats::sd(acc),
                   chance = max(table(y)) / n, method = method)
  }, "reps"))
}

# Labels as a factor with unused levels dropped; checks length, NA and class sizes.
check_labels <- function(labels, n, min_per_class = 1, arg = rlang::caller_arg(labels), call = rlang::caller_env()) {
  force(arg)
  if (!(is.atomic(labels) || is.factor(labels)) || is.null(labels)) {
    ts_abort("{.arg {arg}} must be a vector of categories, not {describe(labels)}.", "type", call = call)
  }
  if (length(labels) != n) {
    ts_abort("{.arg {arg}} has {length(labels)} element{?s} but there are {n} stimuli.", "mismatch", call = call)
  }
  if (anyNA(labels)) ts_abort("{.arg {arg}} has {sum(is.na(labels))} NA value{?s}.", "non_finite", call = call)
  y <- droplevels(as.factor(labels))
  tab <- table(y)
  if (length(tab) < 2) ts_abort("{.arg {arg}} must have at least 2 categories; it has {length(tab)}.", "too_few", call = call)
  if (any(tab < min_per_class)) {
    ts_abort("Every category in {.arg {arg}} needs at least {min_per_class} stimuli; {.val {names(tab)[tab < min_per_class]}} {?has/have} fewer.",
             "too_few", call = call)
  }
  y
}

class_means <- function(x, y) {
  g <- stats::model.matrix(~ y - 1)
  sweep(crossprod(g, x), 1, colSums(g), "/")
}

centroid_predict <- function(xtr, ytr, xte) {
  mu <- class_means(xtr, ytr)
  d <- -2 * tcrossprod(xte, mu) + matrix(rowSums(mu^2), nrow(xte), nrow(mu), byrow = TRUE)
  factor(levels(ytr)[max.col(-d, ties.method = "first")], levels = levels(ytr))
}

lda_predict <- function(xtr, ytr, xte, gamma) {
  mu <- class_means(xtr, ytr)                      # C x p
  xc <- xtr - mu[as.integer(ytr), , drop = FALSE]  # within-class residuals
  n <- nrow(xc)
  p <- ncol(xc)
  dof <- max(1, n - nrow(mu))
  a <- gamma * sum(xc^2) / dof / p                 # gamma * tr(S) / p
  b <- (1 - gamma) / dof
  if (a <= 0) a <- .Machine$double.eps
  # Sigma^{-1} mu^T, Sigma = a I + b xc^T xc
  if (p <= n) {
    sig <- b * crossprod(xc)
    diag(sig) <- diag(sig) + a
    w <- solve(sig, t(mu))
  } else {
    inner <- tcrossprod(xc) * b
    diag(inner) <- diag(inner) + a
    w <- (t(mu) - b * crossprod(xc, solve(inner, xc %*% t(mu)))) / a
  }
  score <- xte %*% w - matrix(0.5 * colSums(t(mu) * w), nrow(xte), nrow(mu), byrow = TRUE)
  factor(levels(ytr)[max.col(score, ties.method = "first")], levels = levels(ytr))
}

#' Invariance of the representational geometry to a transformation
#'
#' Compares each layer's responses to the original stimuli with its responses to
#' transformed versions of the same stimuli (same order): the correlation between the
#' two sets of pairwise Euclidean distances (upper triangles), and linear CKA.
#'
#' @param reps,reps_transformed Layers for the original and the transformed stimuli
#'   ([ts_reps()] objects, named lists with the same layer names, or two matrices),
#'   matched by stimulus id when both carry ids (else by position).
#' @param method Correlation of the distances: `"pearson"` or `"spearman"`.
#' @return A `ts_layer_profile` tibble with two rows per layer: `layer`, `metric`
#'   (`"distance_correlation"`, `"cka"`), `value` (both scale-invariant; the distance
#'   correlation is `NA`, with a warning of class `tensorscope_warning_degenerate`,
#'   when every pair of stimuli is equally far apart on one side).
#' @export
#' @examples
#' set.seed(1)
#' x <- matrix(rnorm(40 * 6), 40)
#' invariance(list(a = x), list(a = x %*% qr.Q(qr(matrix(rnorm(36), 6))) + 0.1))
invariance <- function(reps, reps_transformed, method = c("pearson", "spearman")) {
  method <- check_choice(method, c("pearson", "spearman"))
  la <- reps_layers(reps)
  lb <- reps_layers(reps_transformed)
  if (is.null(la)) la <- list(layer = reps)
  if (is.null(lb)) lb <- list(layer = reps_transformed)
  if (!identical(sort(names(la)), sort(names(lb)))) {
    ts_abort("{.arg reps} and {.arg reps_transformed} must have the same layers; they have {.val {names(la)}} and {.val {names(lb)}}.",
             "mismatch")
  }
  layer_profile(map_layers(la, function(m, arg) {
    nm <- sub("^reps\\$", "", arg)
    a <- as_data_matrix(m, arg = arg)
    b <- as_data_matrix(lb[[nm]], arg = sprintf("reps_transformed$%s", nm))
    idx <- match_stimuli(rownames(a), rownames(b), arg, sprintf("reps_transformed$%s", nm),
                         inform = nm == names(la)[1])
    if (!is.null(idx)) b <- b[idx, , drop = FALSE]
    if (nrow(a) != nrow(b)) {
      ts_abort("Layer {.val {nm}} has {nrow(a)} stimuli in {.arg reps} but {nrow(b)} in {.arg reps_transformed}.", "mismatch")
    }
    check_min_rows(a, 3, arg, "Invariance")
    check_variance(a, arg)
    check_variance(b, sprintf("reps_transformed$%s", nm))
    a <- scale_extreme_data(a)  # both metrics are invariant to each side's scale
    b <- scale_extreme_data(b)
    da <- rdm(a, method = "euclidean")$dissimilarities[1, ]
    db <- rdm(b, method = "euclidean")$dissimilarities[1, ]
    dc <- if (stats::sd(da) > 0 && stats::sd(db) > 0) stats::cor(da, db, method = method) else {
      cli::cli_warn("Every pair of stimuli of layer {.val {nm}} is equally far apart in {.arg {if (stats::sd(da) > 0) 'reps_transformed' else 'reps'}}: the distance correlation is NA.",
                    class = c("tensorscope_warning_degenerate", "tensorscope_warning"))
      NA_real_
    }
    tibble::tibble(metric = c("distance_correlation", "cka"), value = c(dc, cka(a, b)))
  }, "reps"))
}

#' Geometry profile across layers
#'
#' Several per-layer geometry summaries in one `ts_layer_profile` tibble, ready for
#' `autoplot()`: effective rank, participation ratio, intrinsic dimension (TwoNN) and
#' mean Ollivier-Ricci curvature of the kNN graph (`mean_ricci`).
#'
#' @param reps A [ts_reps()] object or a named list of layers.
#' @param metrics Any of `"effective_rank"`, `"participation_ratio"`,
#'   `"intrinsic_dim"`, `"mean_ricci"`.
#' @param k Neighbours of the kNN graph for `"mean_ricci"`.
#' @return A `ts_layer_profile` tibble: `layer`, `metric`, `value`.
#' @export
#' @examples
#' set.seed(1)
#' z <- matrix(rnorm(200 * 8), 200)
#' geometry_profile(list(a = z, b = z[, 1:3]))
geometry_profile <- function(reps, metrics = c("effective_rank", "participation_ratio", "intrinsic_dim", "mean_ricci"),
                             k = 10) {
  all <- c("effective_rank", "participation_ratio", "intrinsic_dim", "mean_ricci")
  if (!is.character(metrics) || length(metrics) == 0 || any(!metrics %in% all)) {
    ts_abort("{.arg metrics} must be some of {.val {all}}, not {describe(metrics)}.", "argument")
  }
  reps <- as_reps(reps)
  if (all(vapply(reps$layers, cpp_rows_constant, logical(1)))) {
    ts_abort("Every layer of {.arg reps} has zero variance across stimuli.", "zero_variance")
  }
  parts <- list()
  if ("effective_rank" %in% metrics) parts$er <- effective_rank(reps)
  if ("participation_ratio" %in% metrics) parts$pr <- participation_ratio(reps)
  if ("intrinsic_dim" %in% metrics) parts$id <- intrinsic_dim(reps)[, c("layer", "metric", "value")]
  if ("mean_ricci" %in% metrics) {
    s <- summary(ricci_curvature(reps, k = k))
    parts$ricci <- tibble::tibble(layer = s$layer, metric = "mean_ricci", value = s$mean_ricci)
  }
  out <- do.call(rbind, lapply(parts, function(p) tibble::as_tibble(structure(p, class = c("tbl_df", "tbl", "data.frame")))))
  out$layer <- factor(out$layer, levels = names(reps$layers))
  layer_profile(out)
}

# ---- metrics of analyze_models() (R/metrics.R) ----------------------------------------

one_layer <- function(x, ctx) ts_reps(stats::setNames(list(x), ctx$layer))

rlang::on_load({
  register_metric(new_metric(
    "layer_activations", family = "geometry", scope = "layer", fn = "summary.ts_reps",
    description = "size, mean, sd, fraction of zeros and constant features of each layer",
    about = "Basic statistics of each layer's activations over the stimuli: mean, standard deviation and fraction of zero activations. A fraction of zeros near 1 flags a dead (or very sparse ReLU) layer; constant features carry no information about the stimuli.",
    diagnostics = c("n_features", "n_constant"),
    compute = function(x, args, ctx) summary(one_layer(x, ctx))[, c("layer", "n_features", "mean", "sd", "frac_zero", "n_constant")],
    plot = plot_layer_activations))
  register_metric(new_metric(
    "effective_rank", family = "geometry", scope = "layer", fn = "effective_rank", defaults = list(on = "singular_values"),
    description = "exp of the entropy of the normalised spectrum of each layer",
    about = "Effective rank (Roy & Vetterli 2007): the exponential of the entropy of the layer's normalised singular values, the number of dimensions the stimuli effectively occupy. Higher values mean a higher-dimensional, less compressed representation.",
    compute = function(x, args, ctx) {
      on <- check_choice(args$on, c("singular_values", "eigenvalues"))
      spectral_metric(one_layer(x, ctx), if (on == "singular_values") 1L else 2L, "effective_rank", ctx = ctx)
    },
    plot = plot_effective_rank))
  register_metric(new_metric(
    "participation_ratio", family = "geometry", scope = "layer", fn = "participation_ratio",
    description = "(sum of covariance eigenvalues)^2 / sum of their squares, per layer",
    about = "Participation ratio: (sum of covariance eigenvalues)^2 / sum of their squares, a linear estimate of how many dimensions the layer's representation of the stimuli spreads over. It usually rises in early layers and falls where the network compresses.",
    compute = function(x, args, ctx) spectral_metric(one_layer(x, ctx), 3L, "participation_ratio", ctx = ctx),
    plot = plot_participation_ratio))
  register_metric(new_metric(
    "ricci_curvature", family = "geometry", scope = "layer", fn = "ricci_curvature", aliases = "manifold_curvature",
    defaults = list(k = 10, alpha = 0.5), description = "Ollivier-Ricci curvature of the kNN graph, summarised",
    about = "Ollivier-Ricci curvature of the k-nearest-neighbour graph of the stimuli in each layer. Positive mean curvature means tight, clustered neighbourhoods (as in category clusters); negative values mean tree-like, spread-out geometry.",
    diagnostics = c("n_edges"),
    compute = function(x, args, ctx) summary(ricci_curvature(x, k = args$k, alpha = args$alpha)),
    plot = plot_ricci_profile))
  register_metric(new_metric(
    "fiber_bundle_test", family = "geometry", scope = "layer", fn = "fiber_bundle_test", aliases = "robinson_fiber_test",
    defaults = list(k_range = c(1, 100), alpha = 0.05), description = "Robinson et al. fiber-bundle / manifold test",
    about = "Robinson et al.'s test of whether a layer's point cloud is locally a manifold (and a fiber bundle) at every stimulus. A rejection (1) means some stimuli sit where the representation is not locally manifold-like, e.g. where branches meet.",
    diagnostics = c("n_reject"),
    compute = function(x, args, ctx) analyzer_fiber_bundle(x, args, ctx)$decision,
    plot = plot_rejection_map))
  register_metric(new_metric(
    "embedding_singularities", family = "geometry", scope = "layer", fn = "embedding_singularities",
    defaults = list(k_range = c(1, 100), alpha = 0.05), description = "count and fraction of singular points",
    about = "The number and fraction of stimuli at which the layer's representation is singular (not locally Euclidean) by Robinson et al.'s test. A fraction near 0 means a smooth embedding; larger fractions mean many singular points.",
    diagnostics = c("n_points"),
    compute = function(x, args, ctx) {
      out <- singularities_of(analyzer_fiber_bundle(x, args, ctx), "fiber_bundle")[, c("n_points", "count", "fraction")]
      tibble::add_column(out, layer = ctx$layer, .before = 1)
    },
    plot = plot_rejection_map))
})
