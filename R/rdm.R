#' Representational dissimilarity matrices
#'
#' `rdm()` computes the dissimilarity of every pair of conditions (stimuli) from their
#' patterns, following rsatoolbox's conventions:
#' * `"correlation"`: 1 - Pearson r between the two patterns;
#' * `"cosine"`: 1 - cosine similarity;
#' * `"euclidean"`: the plain Euclidean distance ||x_i - x_j|| (as [stats::dist()]);
#' * `"sqeuclidean"`: the squared Euclidean distance divided by the number of channels
#'   -- what rsatoolbox calls "euclidean";
#' * `"mahalanobis"`: (x_i - x_j)' S^-1 (x_i - x_j) / channels, with S the noise
#'   covariance (`noise`); the identity when `noise = NULL` (then equal to
#'   `"sqeuclidean"`);
#' * `"crossnobis"`: the cross-validated Mahalanobis distance (Walther et al. 2016):
#'   condition means are computed per run (partition), and the distance is the mean over
#'   pairs of different runs a, b of (mu_ia - mu_ja)' S^-1 (mu_ib - mu_jb) / channels.
#'   Noise is independent between runs, so the estimate is unbiased: its expectation is
#'   0 when two conditions have the same true pattern (it can be negative).
#'
#' Rows of `x` are observations. With `conditions`, the rows of each condition are
#' averaged first (for `"crossnobis"`, within each run). The noise covariance `S` is
#' given as a matrix, or estimated from the residuals around the condition (x run)
#' means with `noise = "residuals"`, shrunk by `shrinkage`: `"diag"` (towards the
#' diagonal, Schafer & Strimmer 2005; rsatoolbox's default), `"eye"` (Ledoit-Wolf
#' towards a scaled identity) or `"none"`.
#'
#' @param x A numeric matrix (observations x channels), data frame, a [ts_reps()]
#'   object or named list of layers (one RDM per layer), or a torch for R `torch_tensor`
#'   (observations first). Tensors are read in place, on their device, for the
#'   correlation, cosine, euclidean and sqeuclidean RDMs without `conditions` when
#'   tensorscope shares torch for R's LibTorch (see [ts_reps()]); otherwise they are
#'   copied into R.
#' @param method The dissimilarity, see Details.
#' @param conditions Condition of each row (`NULL`: each row is a condition).
#' @param runs Run / partition of each row; required for `"crossnobis"`.
#' @param noise `NULL` (identity), a channels x channels noise covariance matrix, or
#'   `"residuals"`.
#' @param shrinkage Shrinkage of the residual covariance, see Details.
#' @param na Channels (units, voxels) with missing values: `"error"` (default; a
#'   classed error naming the first) or `"drop_units"` (the channels with any NA are
#'   left out, with a message saying how many).
#' @param backend `"auto"`, `"eigen"` or `"torch"`: `"torch"` computes the
#'   correlation, cosine, euclidean and sqeuclidean RDMs with LibTorch in float64 (on
#'   the GPU when CUDA is available), agreeing with Eigen to rounding; `"auto"` uses it
#'   only for large inputs on a CUDA GPU (see [cka()]).
#' @return A `ts_rdm` object: `dissimilarities` (a matrix with one row per RDM and one
#'   column per pair i < j, in [stats::dist()] / scipy `squareform` order -- the layout
#'   of rsatoolbox's `RDMs.dissimilarities`), `conditions` (labels), `descriptors`
#'   (a tibble with a `name` per RDM) and `method`. See [as_rdm()] for conversions.
#'   Correlation and cosine RDMs are scale-invariant (data x 1e300 give the unscaled
#'   RDM). For layers, a layer whose RDM is undefined (zero variance or all-zero
#'   patterns) gets a row of `NA`, with a warning of class
#'   `tensorscope_warning_unusable_layer`; [rsa()] reports `NA` for it.
#'   Memory: each RDM is written straight into its row of the result, a block of 256
#'   conditions at a time, so besides the result only one conditions x channels copy
#'   of a layer is held (no conditions x conditions matrix: 800 MB at 10,000 stimuli).
#' @references Walther, Nili, Ejaz, Alink, Kriegeskorte & Diedrichsen (2016).
#'   Reliability of dissimilarity measures for multi-voxel pattern analysis.
#'   NeuroImage 137. Nili et al. (2014). A toolbox for representational similarity
#'   analysis. PLoS Comput Biol 10.
#' @export
#' @examples
#' set.seed(1)
#' patterns <- matrix(rnorm(6 * 20), 6, dimnames = list(letters[1:6], NULL))
#' d <- rdm(patterns)
#' d
#' as.matrix(d)
#' # crossnobis from 4 runs of 6 conditions
#' obs <- patterns[rep(1:6, 4), ] + matrix(rnorm(24 * 20), 24)
#' rdm(obs, "crossnobis", conditions = rep(letters[1:6], 4), runs = rep(1:4, each = 6))
rdm <- function(x, method = c("correlation", "euclidean", "sqeuclidean", "cosine", "mahalanobis", "crossnobis"),
                conditions = NULL, runs = NULL, noise = NULL, shrinkage = c("diag", "eye", "none"),
                na = c("error", "drop_units"), backend = c("auto", "eigen", "torch")) {
  method <- check_choice(method, c("correlation", "euclidean", "sqeuclidean", "cosine", "mahalanobis", "crossnobis"))
  shrinkage <- check_choice(shrinkage, c("diag", "eye", "none"))
  x <- drop_na_units(x, check_na(na))
  if (is.list(x) && !is.data.frame(x) && !inherits(x, "ts_reps")) x <- as_reps(x)
  if (inherits(x, "ts_reps")) {
    # every layer's RDM is written straight into its row of the result (no per-layer
    # copies: 19 RDMs of 10,000 stimuli are 7.6 GB)
    sink <- rdm_sink(length(x$layers))
    failed <- character(0)
    labels <- NULL
    for (i in seq_along(x$layers)) {
      nm <- names(x$layers)[i]
      lab <- tryCatch(rdm_layer(x$layers[[i]], x$stimuli, method, conditions, runs, noise, shrinkage,
                                arg = sprintf("x$%s", nm), backend = backend, sink = sink, row = i),
                      tensorscope_error_zero_variance = function(e) {
                        if (length(x$layers) == 1) rlang::cnd_signal(e)
                        failed <<- c(failed, nm)
                        NULL
                      })
      if (!is.null(lab)) labels <- labels %||% lab
    }
    if (length(failed) == length(x$layers)) ts_abort("The {method} RDM is undefined for every layer of {.arg x} (zero variance).", "zero_variance")
    if (length(failed)) {
      # an unusable layer (all-zero or constant patterns) gets a row of NA; compare_rdms()
      # and rsa() report NA for it
      cli::cli_warn("The {method} RDM is undefined for layer{?s} {.val {failed}} (zero variance or all-zero patterns) and is NA there.",
                    class = c("tensorscope_warning_unusable_layer", "tensorscope_warning"))
    }
    for (i in which(names(x$layers) %in% failed)) cpp_rdm_set_row(sink$D, i, rep(NA_real_, ncol(sink$D)))
    return(new_rdm(sink$D, labels, tibble::tibble(name = names(x$layers)), method))
  }
  sink <- rdm_sink(1L)
  labels <- rdm_layer(x, NULL, method, conditions, runs, noise, shrinkage, arg = "x", backend = backend, sink = sink, row = 1L)
  new_rdm(sink$D, labels, tibble::tibble(name = "rdm"), method)
}

# Where rdm() puts its RDMs: one row each of a matrix allocated when the first layer's
# number of conditions is known (rdm_put()), bound only here and written in place.
rdm_sink <- function(rows) {
  sink <- new.env(parent = emptyenv())
  sink$rows <- rows
  sink$D <- NULL
  sink
}

# The ts_rdm of the given rows of a sink (named by `labels`, a named list of each row's
# condition labels); a copy only when some rows are left out.
sink_rdm <- function(sink, rows, labels, method) {
  D <- sink$D
  if (length(rows) < nrow(D) || any(rows != seq_len(nrow(D)))) D <- D[rows, , drop = FALSE]
  new_rdm(D, labels[[1]], tibble::tibble(name = names(labels)), method)
}

rdm_put <- function(sink, row, labels, d = NULL) {
  if (is.null(sink$D)) sink$D <- cpp_rdm_alloc(sink$rows, choose(length(labels), 2))
  if (!is.null(d)) cpp_rdm_set_row(sink$D, row, d)
  invisible(sink$D)
}

# One layer (an R matrix, or a torch_tensor: computed in place on its device when the
# backend shares torch for R's LibTorch and the method has a LibTorch path, else copied).
# Writes the layer's RDM into row `row` of `sink` (rdm_sink()) and returns its condition labels.
rdm_layer <- function(x, stimuli, method, conditions, runs, noise, shrinkage, arg, backend, sink, row, scale = 1,
                      call = rlang::caller_env()) {
  gp <- attr(x, "ts_gram_features")   # a Gram-route stand-in (activations(reduce = "gram")) of gp features
  if (!is.null(gp)) {
    if (method == "crossnobis" || (method == "mahalanobis" && !is.null(noise))) {
      ts_abort(c("{.arg {arg}} comes from {.code reduce = \"gram\"}: its features are a rotated basis, not the layer's units.",
                 i = "The {method} distance needs the units; capture this layer with {.code reduce = \"none\"}."),
               "argument", call = call)
    }
    # per-channel distances: divided by the layer's own number of features, not the stand-in's
    if (method %in% c("sqeuclidean", "mahalanobis")) scale <- scale * ncol(x) / gp
  }
  supported <- is.null(conditions) && method %in% c("correlation", "cosine", "euclidean", "sqeuclidean")
  if (in_place_route(list(x), backend, supported, call = call)) {
    info <- check_rtensor(x, arg, call = call)
    if (info$n < 2) ts_abort("An RDM needs at least 2 conditions; {.arg {arg}} has {info$n}.", "too_few", call = call)
    d <- drop(torch_run("ts_torch_rdm_tensor", x, method, kind = "zero_variance", call = call,
                        what = "The {method} distance is undefined for a condition of {.arg {arg}}."))
    labels <- stimuli %||% as.character(seq_len(info$n))
    check_rdm_defined(d, labels, method, arg, call)
    rdm_put(sink, row, labels, if (scale == 1) d else d * scale)
    return(labels)
  }
  if (is_rtensor(x)) {
    x <- rtensor_matrix(x, arg = arg, call = call)
    if (!is.null(stimuli)) rownames(x) <- stimuli
  } else if (is.null(stimuli)) {
    x <- as_data_matrix(x, arg = arg, call = call)
  }
  rdm_one(x, method, conditions, runs, noise, shrinkage, arg = arg, backend = backend, sink = sink, row = row,
          scale = scale, call = call)
}

rdm_one <- function(x, method, conditions, runs, noise, shrinkage, arg, backend, sink, row, scale = 1,
                    call = rlang::caller_env()) {
  n <- nrow(x)
  if (!is.null(conditions) && length(conditions) != n) {
    ts_abort("{.arg conditions} has {length(conditions)} value{?s} but {.arg {arg}} has {n} row{?s}.",
             "mismatch", call = call)
  }
  if (!is.null(runs) && length(runs) != n) {
    ts_abort("{.arg runs} has {length(runs)} value{?s} but {.arg {arg}} has {n} row{?s}.", "mismatch", call = call)
  }
  if (anyNA(conditions)) ts_abort("{.arg conditions} has NA values.", "non_finite", call = call)
  if (anyNA(runs)) ts_abort("{.arg runs} has NA values.", "non_finite", call = call)
  cond <- if (is.null(conditions)) {
    f <- rownames(x)
    if (is.null(f) || anyDuplicated(f)) f <- as.character(seq_len(n))
    factor(f, levels = f)
  } else factor(conditions, levels = unique(conditions))
  labels <- levels(cond)
  if (length(labels) < 2) ts_abort("An RDM needs at least 2 conditions; {.arg {arg}} has {length(labels)}.",
                                   "too_few", call = call)
  p <- ncol(x)
  if (method == "crossnobis") {
    if (is.null(runs)) ts_abort("{.arg runs} is required for the crossnobis distance.", "argument", call = call)
    run <- factor(runs)
    if (nlevels(run) < 2) ts_abort("Crossnobis needs at least 2 runs; {.arg runs} has {nlevels(run)}.",
                                   "too_few", call = call)
    means <- lapply(levels(run), function(r) {
      keep <- run == r
      miss <- setdiff(labels, as.character(cond[keep]))
      if (length(miss)) {
        ts_abort("{.arg runs}: run {.val {r}} has no observations of condition{?s} {.val {miss}}; crossnobis needs every condition in every run.",
                 "mismatch", call = call)
      }
      group_means(x[keep, , drop = FALSE], droplevels(cond[keep]))[labels, , drop = FALSE]
    })
    S <- noise_matrix(noise, x, interaction(cond, run, drop = TRUE), shrinkage, p, call)
    d <- cpp_crossnobis(means, S)
    rdm_put(sink, row, labels, d)
    return(labels)
  }
  if (!is.null(conditions) && length(labels) < n) {
    m <- group_means(x, cond)
  } else {
    m <- x
  }
  if (method %in% c("correlation", "cosine")) m <- scale_extreme_data(m)  # scale-invariant
  S <- matrix(0, 0, 0)
  if (method == "mahalanobis") S <- noise_matrix(noise, x, cond, shrinkage, p, call)
  dev <- dense_backend(backend, length(m), supported = method %in% c("correlation", "cosine", "euclidean", "sqeuclidean"),
                       what = sprintf("method = \"%s\"", method), call = call)
  if (dev != "eigen") {
    d <- drop(torch_run("ts_torch_rdm", m, method, dev, kind = "argument", call = call))
    check_rdm_defined(d, labels, method, arg, call)
    rdm_put(sink, row, labels, if (scale == 1) d else d * scale)
    return(labels)
  }
  D <- rdm_put(sink, row, labels)
  if (cpp_rdm_into(m, method, S, D, row, scale, threads_now())) check_rdm_defined(D[row, ], labels, method, arg, call)
  labels
}

# The core (and the LibTorch policy) mark the pairs of a pattern with zero variance
# (correlation) or zero norm (cosine) as NaN: an error naming the conditions.
check_rdm_defined <- function(d, labels, method, arg, call) {
  if (!anyNA(d)) return(invisible(d))
  bad <- which(apply(square_na(d, length(labels)), 1, all))
  ts_abort("The {method} distance is undefined for condition{?s} {.val {labels[bad]}} of {.arg {arg}}: {if (method == 'correlation') 'zero variance across channels' else 'all-zero pattern'}.",
           "zero_variance", call = call)
}

# n x n logical matrix: TRUE where the pair's dissimilarity is NA (diagonal TRUE).
square_na <- function(d, n) {
  m <- matrix(TRUE, n, n)
  idx <- upper_pairs(n)
  m[idx] <- is.na(d)
  m[idx[, 2:1, drop = FALSE]] <- is.na(d)
  m
}

group_means <- function(x, g) {
  s <- rowsum(x, g, reorder = FALSE)
  s / as.vector(table(g)[rownames(s)])
}

noise_matrix <- function(noise, x, groups, shrinkage, p, call) {
  if (is.null(noise)) return(matrix(0, 0, 0))
  if (is.character(noise) && identical(noise, "residuals")) {
    res <- x - group_means(x, groups)[as.character(groups), , drop = FALSE]
    dof <- nrow(x) - nlevels(droplevels(groups))
    if (dof < 1) {
      ts_abort("{.arg noise} = \"residuals\" needs repeated observations of a condition (within a run); there are no residual degrees of freedom.",
               "too_few", call = call)
    }
    return(cpp_noise_cov(res, dof, shrinkage))
  }
  if (!is.matrix(noise) || !is.numeric(noise) || any(dim(noise) != p)) {
    ts_abort("{.arg noise} must be NULL, \"residuals\" or a {p} x {p} covariance matrix, not {describe(noise)}.",
             "argument", call = call)
  }
  check_finite(noise, "noise", call = call)
  if (max(abs(noise - t(noise))) > 1e-8 * max(abs(noise))) {
    ts_abort("{.arg noise} must be a symmetric covariance matrix.", "argument", call = call)
  }
  storage.mode(noise) <- "double"
  noise
}

new_rdm <- function(d, labels, descriptors, method) {
  storage.mode(d) <- "double"
  dimnames(d) <- NULL
  structure(list(dissimilarities = d, conditions = as.character(labels),
                 descriptors = tibble::as_tibble(descriptors), method = method),
            class = "ts_rdm")
}

#' Convert to and from `ts_rdm`
#'
#' `as_rdm()` turns a [stats::dist()] object, a square symmetric matrix with a zero
#' diagonal, a list of such matrices or `dist` objects (or of `ts_rdm` objects over the
#' same conditions; each element is put in the condition order of the first by its
#' labels, with a message, and labels that differ are an error), an n x n x k array, or a numeric vector holding an upper triangle
#' (i < j, `dist()` order) into a `ts_rdm`. Anything else, a
#' non-square, asymmetric or non-finite matrix, or a non-zero diagonal is an error of
#' class `tensorscope_error_not_rdm` naming the argument, and so are negative
#' dissimilarities (unless `allow_negative = TRUE`: crossnobis estimates can be
#' negative) and duplicated condition labels; `labels` of the wrong length are a
#' `tensorscope_error_mismatch`.
#'
#' `as.matrix()` returns the square matrix of one RDM (`i` selects which), `as.dist()`
#' a `dist` object, and `x$dissimilarities` is the rsatoolbox layout (one row per RDM,
#' one column per pair).
#'
#' @param x The object to convert.
#' @param labels Condition labels (default: from the dimnames, or `"1"`, `"2"`, ...).
#' @param names Names of the RDMs (default: from list names or `"rdm1"`, ...).
#' @param allow_negative Accept negative dissimilarities (cross-validated distances).
#' @param na Missing dissimilarities (`NA` pairs, e.g. a pair of stimuli never shown in
#'   one session): `"error"` (default) or `"keep"` (kept as `NA`; [compare_rdms()] with
#'   `na = "drop_pairs"` leaves such pairs out, other functions refuse them).
#' @param ... Unused.
#' @return A `ts_rdm` object (see [rdm()]).
#' @export
#' @examples
#' d <- dist(matrix(rnorm(12), 4))
#' r <- as_rdm(d)
#' as.matrix(r)
#' as.dist(r)
as_rdm <- function(x, labels = NULL, names = NULL, allow_negative = FALSE, na = c("error", "keep"), ...) {
  call <- rlang::caller_env()
  # called by another tensorscope function: name that function's argument; called by a
  # user: the variable they passed, or this function's argument (`x`) when they passed an
  # expression (never the deparsed value)
  parent <- sys.parent()
  internal <- parent > 0 && identical(environment(sys.function(parent)), asNamespace("tensorscope"))
  arg <- if (internal || is.symbol(substitute(x))) rlang::caller_arg(x) else "x"
  na <- check_choice(na, c("error", "keep"), call = call)
  if (inherits(x, "ts_rdm")) return(x)
  if (!is.logical(allow_negative) || length(allow_negative) != 1 || is.na(allow_negative)) {
    ts_abort("{.arg allow_negative} must be TRUE or FALSE, not {describe(allow_negative)}.", "argument", call = call)
  }
  out <- as_rdm_convert(x, labels, names, arg, call, na)
  n <- as.integer(round((1 + sqrt(1 + 8 * ncol(out$dissimilarities))) / 2))
  if (!is.null(labels) && length(labels) != n) {
    ts_abort("{.arg labels} has {length(labels)} value{?s} but {.arg {arg}} has {n} conditions.", "mismatch", call = call)
  }
  if (anyDuplicated(out$conditions)) {
    ts_abort("{.arg {if (is.null(labels)) arg else 'labels'}} has duplicated condition labels ({.val {out$conditions[duplicated(out$conditions)][1]}}).",
             "not_rdm", call = call)
  }
  if (!allow_negative && any(out$dissimilarities < 0, na.rm = TRUE)) {
    ts_abort(c("{.arg {arg}} has negative dissimilarities (the smallest is {signif(min(out$dissimilarities, na.rm = TRUE), 4)}).",
               i = "Cross-validated estimates (crossnobis) can be negative: use {.code allow_negative = TRUE}."),
             "not_rdm", call = call)
  }
  out
}

as_rdm_convert <- function(x, labels, names, arg, call, na) {
  if (inherits(x, "dist")) {
    n <- attr(x, "Size")
    lab <- attr(x, "Labels") %||% as.character(seq_len(n))
    v <- as.double(x)
    check_finite(if (na == "keep") v[!is.na(v)] else v, arg, call = call)
    return(new_rdm(matrix(v, nrow = 1), labels %||% lab, tibble::tibble(name = names %||% "rdm"), "unknown"))
  }
  if (is.array(x) && length(dim(x)) == 3) {
    x <- lapply(seq_len(dim(x)[3]), function(k) {
      m <- x[, , k]
      dimnames(m) <- dimnames(x)[1:2]
      m
    })
  }
  if (is.list(x) && !is.data.frame(x)) {
    if (length(x) == 0) ts_abort("{.arg {arg}} is an empty list.", "empty", call = call)
    if (all(vapply(x, inherits, logical(1), "ts_rdm"))) {
      # a list of ts_rdm objects (e.g. lapply(subjects, rdm)): one object holding all
      x <- align_list(x, arg, call)
      k <- vapply(x, length, integer(1))
      nm <- names %||% if (!is.null(names(x))) {
        unlist(Map(function(n, r) if (length(r) == 1) n else paste(n, r$descriptors$name, sep = "."), names(x), x))
      } else unlist(lapply(x, function(r) r$descriptors$name))
      if (anyDuplicated(nm)) nm <- make.unique(nm)
      methods <- unique(vapply(x, function(r) r$method, ""))
      return(new_rdm(do.call(rbind, lapply(x, `[[`, "dissimilarities")), labels %||% x[[1]]$conditions,
                     tibble::tibble(name = unname(nm)), if (length(methods) == 1) methods else "mixed"))
    }
    rs <- lapply(seq_along(x), function(i) as_rdm_matrix(x[[i]], sprintf("%s[[%d]]", arg, i), call, na))
    n <- vapply(rs, function(r) length(r$labels), integer(1))
    if (length(unique(n)) > 1) {
      ts_abort("The RDMs in {.arg {arg}} have different numbers of conditions ({paste(n, collapse = ', ')}).",
               "mismatch", call = call)
    }
    # every element in the conditions order of the first, by label (never by position
    # when both carry labels)
    one <- function(r) new_rdm(matrix(r$d, nrow = 1), r$labels, tibble::tibble(name = "rdm"), "unknown")
    d <- do.call(rbind, lapply(align_list(lapply(rs, one), arg, call), `[[`, "dissimilarities"))
    nm <- names %||% names(x) %||% paste0("rdm", seq_along(x))
    return(new_rdm(d, labels %||% rs[[1]]$labels, tibble::tibble(name = nm), "unknown"))
  }
  if (is.matrix(x) || is.data.frame(x)) {
    r <- as_rdm_matrix(x, arg, call, na)
    return(new_rdm(matrix(r$d, nrow = 1), labels %||% r$labels, tibble::tibble(name = names %||% "rdm"), "unknown"))
  }
  if (is.numeric(x) && is.null(dim(x))) {
    n <- (1 + sqrt(1 + 8 * length(x))) / 2
    if (n != round(n) || n < 2) {
      ts_abort("{.arg {arg}} has length {length(x)}, which is not n (n - 1) / 2 for any number of conditions n.",
               "not_rdm", call = call)
    }
    check_finite(x, arg, call = call)
    return(new_rdm(matrix(as.double(x), nrow = 1), labels %||% as.character(seq_len(n)),
                   tibble::tibble(name = names %||% "rdm"), "unknown"))
  }
  ts_abort("{.arg {arg}} cannot be used as an RDM: {describe(x)}.", "not_rdm", call = call)
}

as_rdm_matrix <- function(m, arg, call, na = "error") {
  if (is.data.frame(m)) m <- as.matrix(m)
  if (inherits(m, "dist")) m <- as.matrix(m)
  if (!is.matrix(m) || !is.numeric(m)) {
    ts_abort("{.arg {arg}} must be a square numeric matrix, not {describe(m)}.", "not_rdm", call = call)
  }
  if (nrow(m) != ncol(m)) {
    ts_abort("{.arg {arg}} must be square to be an RDM; it is {nrow(m)} x {ncol(m)}.", "not_rdm", call = call)
  }
  if (nrow(m) < 2) ts_abort("{.arg {arg}} needs at least 2 conditions.", "not_rdm", call = call)
  if (any(if (na == "keep") is.infinite(m) | is.nan(m) else !is.finite(m))) {
    bad <- arrayInd(which(!is.finite(m))[1], dim(m))
    ts_abort("{.arg {arg}} has non-finite dissimilarities (first at row {bad[1]}, column {bad[2]}: {m[bad]}).",
             "non_finite", call = call)
  }
  scale <- max(abs(m), 1e-300, na.rm = TRUE)
  if (na == "keep" && !identical(is.na(m), t(is.na(m)))) {
    ts_abort("{.arg {arg}} has missing dissimilarities that are not symmetric.", "not_rdm", call = call)
  }
  asym <- max(abs(m - t(m)), na.rm = TRUE)
  if (asym > 1e-8 * scale) {
    w <- arrayInd(which.max(abs(m - t(m))), dim(m))
    ts_abort("{.arg {arg}} is not symmetric (entry [{w[1]}, {w[2]}] = {signif(m[w], 4)} but [{w[2]}, {w[1]}] = {signif(m[w[2], w[1]], 4)}).",
             "not_rdm", call = call)
  }
  if (anyNA(diag(m)) || max(abs(diag(m))) > 1e-8 * scale) {
    ts_abort("{.arg {arg}} must have a zero diagonal (largest diagonal entry: {signif(max(abs(diag(m))), 4)}).",
             "not_rdm", call = call)
  }
  lab <- rownames(m) %||% colnames(m) %||% as.character(seq_len(nrow(m)))
  list(d = m[upper_pairs(nrow(m))], labels = lab)
}

# (i, j) index pairs of the upper triangle in dist() order: row by row, (1,2), (1,3),
# ..., (1,n), (2,3), ... (upper.tri() alone walks column by column).
upper_pairs <- function(n) {
  ij <- which(upper.tri(diag(n)), arr.ind = TRUE)
  ij[order(ij[, 1], ij[, 2]), , drop = FALSE]
}

`%||%` <- function(a, b) if (is.null(a)) b else a

#' @export
print.ts_rdm <- function(x, ...) {
  k <- nrow(x$dissimilarities)
  n <- length(x$conditions)
  cli::cat_line("<ts_rdm> ", k, " RDM", if (k != 1) "s", " over ", n, " conditions (", x$method, ")")
  shown <- utils::head(x$descriptors$name, 8)
  cli::cat_line("  RDMs: ", paste(shown, collapse = ", "), if (k > 8) ", ...")
  cli::cat_line("  conditions: ", paste(utils::head(x$conditions, 8), collapse = ", "), if (n > 8) ", ...")
  invisible(x)
}

#' @export
length.ts_rdm <- function(x) nrow(x$dissimilarities)

#' @rdname subset-stimuli
#' @export
`[.ts_rdm` <- function(x, i, j, ..., drop = FALSE) {
  if (nargs() - (!missing(drop)) == 2L) {  # rdm[k]: RDMs
    if (missing(i)) return(x)
    return(subset_rdms(x, i, "i"))
  }
  if (!missing(j)) x <- subset_rdms(x, j)
  if (!missing(i)) x <- rdm_conditions(x, stimulus_index(i, x$conditions))
  x
}

subset_rdms <- function(x, i, arg = "j", call = rlang::caller_env()) {
  k <- if (is.character(i)) match(i, x$descriptors$name) else seq_len(nrow(x$dissimilarities))[i]
  if (anyNA(k) || length(k) == 0) {
    ts_abort("{.arg {arg}} selects unknown RDM(s) {.val {if (is.character(i)) i[is.na(k)] else i}}; the RDMs are {.val {x$descriptors$name}}.",
             "argument", call = call)
  }
  new_rdm(x$dissimilarities[k, , drop = FALSE], x$conditions, x$descriptors[k, , drop = FALSE], x$method)
}

# A list of ts_rdm, each in the conditions order of the first (one message if any moved).
align_list <- function(x, arg, call) {
  moved <- character(0)
  for (i in seq_along(x)[-1]) {
    old <- x[[i]]$conditions
    x[[i]] <- align_conditions(x[[1]], x[[i]], sprintf("%s[[1]]", arg), sprintf("%s[[%d]]", arg, i),
                               inform = FALSE, call = call)
    if (!identical(old, x[[i]]$conditions)) moved <- c(moved, sprintf("%s[[%d]]", arg, i))
  }
  if (length(moved)) {
    cli::cli_inform(c(i = "Matched the conditions of {.arg {moved}} to those of {.arg {arg}[[1]]} by label."),
                    class = "tensorscope_message_realigned")
  }
  x
}

# The RDMs over the conditions at positions idx (a subset, in that order): each new
# pair (a, b) takes the old pair (idx[a], idx[b]).
rdm_conditions <- function(x, idx, arg = "i") {
  n <- length(x$conditions)
  if (length(idx) < 2) ts_abort("An RDM needs at least 2 conditions; the selection {.arg {arg}} keeps {length(idx)}.", "too_few")
  if (identical(idx, seq_len(n))) return(x)
  pr <- upper_pairs(length(idx))
  p <- pmin(idx[pr[, 1]], idx[pr[, 2]])
  q <- pmax(idx[pr[, 1]], idx[pr[, 2]])
  col <- n * (p - 1) - p * (p - 1) / 2 + q - p
  new_rdm(x$dissimilarities[, col, drop = FALSE], x$conditions[idx], x$descriptors, x$method)
}

#' @param i Which RDM (index or name) for `as.matrix()` and `as.dist()`.
#' @rdname as_rdm
#' @export
as.matrix.ts_rdm <- function(x, i = 1, ...) {
  if (is.character(i)) i <- match(i, x$descriptors$name)
  n <- length(x$conditions)
  m <- matrix(0, n, n, dimnames = list(x$conditions, x$conditions))
  idx <- upper_pairs(n)
  v <- x$dissimilarities[i, ]
  m[idx] <- v
  m[idx[, 2:1, drop = FALSE]] <- v
  m
}

#' @rdname as_rdm
#' @param m Unused (for the generic).
#' @param diag,upper Passed to [stats::as.dist()].
#' @importFrom stats as.dist
#' @export
as.dist.ts_rdm <- function(m, diag = FALSE, upper = FALSE) {
  stats::as.dist(as.matrix.ts_rdm(m, 1), diag = diag, upper = upper)
}

#' Compare RDMs
#'
#' Similarity of two RDMs (or of every RDM in `a` with every RDM in `b`) over their
#' upper triangles:
#' * `"spearman"`: Spearman correlation (Pearson on average ranks);
#' * `"pearson"`, `"cosine"`;
#' * `"kendall_tau_a"`: Kendall's tau-a, (concordant - discordant) / (m (m - 1) / 2)
#'   over the m pairs; ties count against, which is why it is recommended for
#'   categorical model RDMs (Nili et al. 2014). Knight's O(m log m) algorithm.
#' * `"rho_a"`: 12 sum (r - rbar)(s - sbar) / (m^3 - m) on average ranks (rsatoolbox);
#' * `"cosine_cov"`, `"corr_cov"`: whitened cosine / correlation (Diedrichsen et al.
#'   2021) with V = Xi o Xi, Xi = C C', C the pair contrast matrix (the conditions'
#'   covariance Sigma_k = I). They are computed exactly through the identity
#'   d1' V^-1 d2 ~ tr(G1 G2) with G = -1/2 H D H (double-centred RDM).
#' * `"bures"`: Bures similarity of the double-centred matrices G: sum of the square
#'   roots of the eigenvalues of A^1/2 B A^1/2 over sqrt(tr A tr B), negative
#'   eigenvalues clipped to 0 as in rsatoolbox.
#'
#' * `"riemannian"`: rsatoolbox's `neg_riem_dist` (Shahbazi et al. 2021), the negative
#'   affine-invariant Riemannian distance between the second-moment matrices the RDMs
#'   imply. Each RDM becomes G_ij = (d_1i + d_1j - d_ij) / 2 over conditions 2..n
#'   (the (n - 1)-dimensional projection relative to the first condition, rsatoolbox's
#'   transform; the result does not depend on which condition is first), and
#'   -min over (t0, t1) of ||log eig(e^t0 G_a + e^t1 Sigma, G_b)|| with Sigma = I + 11'
#'   (Sigma_k = I). rsatoolbox minimises with Nelder-Mead from (0, 0); here the exact
#'   reduction to one dimension is minimised by a grid plus golden section, so the value
#'   is the same minimum or a slightly better one (typically within 1e-4). It is not
#'   symmetric, is invariant to scaling either RDM, and is 0 (its maximum) for an RDM
#'   with itself. `b`'s G must be positive definite (the conditions span n - 1
#'   dimensions: an RDM of fewer than n - 1 features, or with a repeated condition, is
#'   rank-deficient and raises `tensorscope_error_rank_deficient`).
#'
#' Every other method gives 1 for an RDM compared with itself (for tau-a and rho-a, when the
#' RDM has no tied values: ties count against them by design).
#'
#' @param a,b RDMs: `ts_rdm` objects or anything [as_rdm()] accepts, over the same
#'   conditions (matched by label when both carry labels: `b` is reordered to `a`, with
#'   a message; different labels are an error).
#' @param method The similarity, see Details.
#' @param na Missing dissimilarities (`NA` in a `dist` or matrix): `"error"` (default)
#'   or `"drop_pairs"`: the pairs missing in any RDM of `a` or `b` are left out (with a
#'   message saying how many), for the methods that compare vectors of pairs.
#' @return One number when `a` and `b` each hold one RDM; otherwise a tibble with
#'   columns `rdm_a`, `rdm_b`, `method` and `similarity`. Never NaN: an RDM on which
#'   the method is undefined is an error of class `tensorscope_error_zero_variance`
#'   naming it (a constant RDM for `"pearson"`, `"spearman"` and `"corr_cov"`, an
#'   all-zero RDM for `"cosine"`, `"cosine_cov"` and `"bures"`; tau-a and rho-a give 0
#'   for a constant RDM, since ties count against them), and 2 conditions (one pair)
#'   are a `tensorscope_error_too_few` except for the cosines and Bures. Every method
#'   is invariant to the scale of each RDM, also at 1e300 and 1e-300.
#' @references Nili et al. (2014) PLoS Comput Biol 10: e1003553. Diedrichsen et al.
#'   (2021) Comparing representational geometries using whitened unbiased-distance-
#'   matrix similarity. Neurons, Behavior, Data analysis and Theory 5(3). Knight (1966)
#'   JASA 61: 436-439. Shahbazi, Shirali, Aghajan & Nili (2021). Using distance on the
#'   Riemannian manifold to compare representations in brain and in models. NeuroImage 239.
#' @export
#' @examples
#' set.seed(2)
#' x <- matrix(rnorm(10 * 30), 10)
#' a <- rdm(x)
#' b <- rdm(x + matrix(rnorm(10 * 30, sd = 2), 10))
#' compare_rdms(a, b)
#' compare_rdms(a, b, method = "kendall_tau_a")
#' compare_rdms(a, b, method = "riemannian")
compare_rdms <- function(a, b, method = c("spearman", "pearson", "kendall_tau_a", "rho_a", "cosine",
                                          "corr_cov", "cosine_cov", "bures", "riemannian"), na = c("error", "drop_pairs")) {
  method <- check_choice(method, c(compare_methods, "riemannian"))
  na <- check_choice(na, c("error", "drop_pairs"))
  keep_na <- if (na == "drop_pairs") "keep" else "error"
  a <- as_rdm(a, na = keep_na)
  b <- align_conditions(a, as_rdm(b, na = keep_na))
  n <- length(a$conditions)
  A <- a$dissimilarities
  B <- b$dissimilarities
  if (anyNA(A) || anyNA(B)) {
    if (na == "error") {
      ts_abort(c("{.arg a} or {.arg b} has missing dissimilarities.", i = "Use {.code na = \"drop_pairs\"} to leave those pairs out."),
               "non_finite")
    }
    if (!method %in% c("spearman", "pearson", "kendall_tau_a", "rho_a", "cosine")) {
      ts_abort("{.arg na} = \"drop_pairs\" needs a method on the vector of pairs (spearman, pearson, kendall_tau_a, rho_a, cosine), not {.val {method}}.",
               "argument")
    }
    ok <- colSums(is.na(A)) == 0 & colSums(is.na(B)) == 0
    if (sum(ok) < 3) ts_abort("Fewer than 3 pairs are complete in every RDM of {.arg a} and {.arg b}.", "too_few")
    n_drop <- sum(!ok)
    cli::cli_inform("Left out {n_drop} of {length(ok)} pair{?s} with missing dissimilarities ({.code na = \"drop_pairs\"}).",
                    class = "tensorscope_message_dropped")
    A <- A[, ok, drop = FALSE]
    B <- B[, ok, drop = FALSE]
  }
  A <- comparable_rdms(a, method, "a", A)
  B <- comparable_rdms(b, method, "b", B)
  s <- if (method == "riemannian") compare_riemannian(A, B, b$descriptors$name, n) else
    cpp_compare_rdms(A, B, method, n, threads_now())
  check_similarities(s, method)
  if (nrow(s) == 1 && ncol(s) == 1) return(s[1, 1])
  tibble::tibble(
    rdm_a = rep(a$descriptors$name, times = ncol(s)),
    rdm_b = rep(b$descriptors$name, each = nrow(s)),
    method = method,
    similarity = as.vector(s)
  )
}

compare_methods <- c("spearman", "pearson", "kendall_tau_a", "rho_a", "cosine", "corr_cov", "cosine_cov", "bures")

# The dissimilarities of x (one RDM per row) ready for cpp_compare_rdms: an RDM on which
# `method` is undefined is an error naming it (a constant RDM has no correlation, an
# all-zero RDM no cosine; correlations and tau-a/rho-a need at least 2 pairs, i.e. 3
# conditions), and RDMs whose largest |value| would overflow or underflow sums of
# squares (beyond 1e+-100) are scaled by a power of two -- every method is invariant
# to the scale of each RDM, so the result is the unscaled one.
comparable_rdms <- function(x, method, arg, D = x$dissimilarities, call = rlang::caller_env()) {
  n <- length(x$conditions)
  if (n < 3 && !method %in% c("cosine", "cosine_cov", "bures")) {
    ts_abort("{.arg {arg}} has {n} conditions (one pair); the {method} similarity needs at least 3 conditions.",
             "too_few", call = call)
  }
  if (anyNA(D)) {
    ts_abort("{.arg {arg}}: RDM{?s} {.val {x$descriptors$name[rowSums(is.na(D)) > 0]}} {?is/are} NA (an unusable layer).",
             "zero_variance", call = call)
  }
  big <- rdm_max_abs(D)
  if (method == "riemannian" && any(big == 0)) {
    ts_abort("{.arg {arg}}: RDM{?s} {.val {x$descriptors$name[big == 0]}} {?is/are} all zero: {?its/their} second-moment matrix is 0 (rank 0), so the Riemannian distance is undefined.",
             "rank_deficient", call = call)
  }
  bad <- unusable_rdms(x, method, D)
  if (any(bad)) {
    what <- if (method %in% c("pearson", "spearman", "corr_cov")) "constant (every dissimilarity is the same), so it has no correlation"
            else if (method == "riemannian") "constant (every dissimilarity is the same): its second-moment matrix is the isotropic prior Sigma itself, so the Riemannian distance is 0 to every RDM"
            else "all zero, so it has no cosine or Bures similarity"
    ts_abort("{.arg {arg}}: RDM{?s} {.val {x$descriptors$name[bad]}} {?is/are} {what} ({.arg method} = {.val {method}}).",
             "zero_variance", call = call)
  }
  f <- extreme_scale(big)
  if (any(f != 1)) D <- D * f
  D
}

rdm_max_abs <- function(D) vapply(seq_len(nrow(D)), function(i) max(abs(D[i, ])), numeric(1))

# TRUE for each RDM of x on which `method` is undefined: NA (an unusable layer), constant
# (correlations; the Riemannian distance, where a constant RDM equals the prior) or all
# zero (cosines, Bures).
unusable_rdms <- function(x, method, D = x$dissimilarities) {
  na <- rowSums(is.na(D)) > 0
  rg <- vapply(seq_len(nrow(D)), function(i) if (na[i]) c(0, 0) else range(D[i, ]), numeric(2))
  deg <- if (method %in% c("pearson", "spearman", "corr_cov", "riemannian")) rg[1, ] == rg[2, ]
         else if (method %in% c("cosine", "cosine_cov", "bures")) pmax(abs(rg[1, ]), abs(rg[2, ])) == 0
         else rep(FALSE, nrow(D))
  na | deg
}

# Anything the core still returns as NaN (after comparable_rdms) is an error, never a
# silent NaN.
check_similarities <- function(s, method, args = c("a", "b"), call = rlang::caller_env()) {
  if (anyNA(s)) {
    ts_abort("The {method} similarity is undefined for {sum(is.na(s))} pair{?s} of RDMs in {.arg {args[1]}} and {.arg {args[2]}} (degenerate RDMs).",
             "zero_variance", call = call)
  }
  invisible(s)
}

compare_riemannian <- function(a, b, names_b, n, call = rlang::caller_env()) {
  if (n < 3) ts_abort("The Riemannian distance needs at least 3 conditions; {.arg a} and {.arg b} have {n}.", "too_few", call = call)
  r <- cpp_compare_riemannian(a, b, n, threads_now())
  bad <- which(r$rank_b < n - 1)
  if (length(bad)) {
    ts_abort(c("RDM {.val {names_b[bad[1]]}} of {.arg b} is too rank-deficient for the Riemannian distance: its second-moment matrix has rank {r$rank_b[bad[1]]}, not {n - 1} ({n} conditions).",
               i = "The conditions must span {n - 1} dimensions: use at least {n - 1} features and no repeated conditions, or another {.arg method}."),
             "rank_deficient", call = call)
  }
  r$similarity
}

# `b` with its conditions in the order of `a`'s (by label, see match_stimuli()); an
# error when the labels differ.
align_conditions <- function(a, b, arg_a = "a", arg_b = "b", inform = TRUE, call = rlang::caller_env()) {
  idx <- match_stimuli(a$conditions, b$conditions, arg_a, arg_b, what = "conditions", inform = inform, call = call)
  if (is.null(idx)) b else rdm_conditions(b, idx, arg_b)
}
