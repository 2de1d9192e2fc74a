# Superposition, sparsity, selectivity and polysemanticity.
# Core: inst/include/tensorscope/superposition.hpp.

#' Activation sparsity per unit and per stimulus
#'
#' For every unit (column) and every stimulus (row) of each layer:
#' * `l0`: fraction of entries with \eqn{|x| >} `threshold`;
#' * `l1`: \eqn{\sum |x|};
#' * `hoyer`: \eqn{(\sqrt N - L_1/L_2)/(\sqrt N - 1)} (Hoyer 2004; 0 for a constant
#'   vector, 1 for a single non-zero);
#' * `gini`: Gini index of \eqn{|x|} (Hurley & Rickard 2009), \eqn{1 - 2\sum_k
#'   (c_{(k)}/\|c\|_1)(N - k + 1/2)/N} over the sorted magnitudes;
#' * `kurtosis`: excess kurtosis \eqn{m_4/m_2^2 - 3}.
#' Undefined values (all-zero or constant vectors) are `NA`.
#'
#' @param x A numeric matrix (stimuli x units), or a [ts_reps()] / named list of
#'   layers.
#' @param threshold Magnitude above which an entry counts as active (L0).
#' @return A tibble of class `ts_sparsity`: `layer`, `by` (`"unit"` or
#'   `"stimulus"`), `index`, `l0`, `l1`, `hoyer`, `gini`, `kurtosis`. `summary()`
#'   gives per layer and `by` the means (a `ts_layer_profile`, one `metric` per
#'   measure, metric names prefixed by `by`).
#' @references Hoyer (2004). Non-negative matrix factorization with sparseness
#'   constraints. JMLR 5. Hurley & Rickard (2009). Comparing measures of sparsity.
#'   IEEE Trans. Inf. Theory 55.
#' @export
#' @examples
#' x <- rbind(c(1, 0, 0, 0), c(1, 1, 1, 1), c(0, 0, 3, 0))
#' feature_sparsity(x)
feature_sparsity <- function(x, threshold = 0) {
  threshold <- check_number(threshold, lower = 0)
  call <- rlang::current_env()
  layers <- reps_layers(x)
  if (is.null(layers)) layers <- list(layer = as_data_matrix(x))
  out <- map_layers(layers, function(m, arg) {
    m <- as_data_matrix(m, arg = arg, call = call)
    u <- cpp_sparsity(m, TRUE, threshold, threads_now())
    s <- cpp_sparsity(m, FALSE, threshold, threads_now())
    v <- rbind(u, s)
    tibble::tibble(by = rep(c("unit", "stimulus"), c(nrow(u), nrow(s))),
                   index = c(seq_len(nrow(u)), seq_len(nrow(s))),
                   l0 = v[, 1], l1 = v[, 2], hoyer = v[, 3], gini = v[, 4], kurtosis = v[, 5])
  }, "x")
  structure(out, class = c("ts_sparsity", class(out)))
}

#' @param object A `ts_sparsity` result.
#' @param ... Unused.
#' @rdname feature_sparsity
#' @export
summary.ts_sparsity <- function(object, ...) {
  df <- tibble::as_tibble(structure(object, class = c("tbl_df", "tbl", "data.frame")))
  measures <- c("l0", "l1", "hoyer", "gini", "kurtosis")
  rows <- list()
  for (lay in levels(df$layer)) for (b in c("unit", "stimulus")) {
    d <- df[df$layer == lay & df$by == b, measures]
    rows[[length(rows) + 1]] <- tibble::tibble(layer = lay, metric = paste0(b, "_", measures),
                                               value = unname(vapply(d, mean, numeric(1), na.rm = TRUE)))
  }
  out <- do.call(rbind, rows)
  out$layer <- factor(out$layer, levels = levels(df$layer))
  layer_profile(out)
}

#' Superposition in a weight matrix (Elhage et al. 2022)
#'
#' Treats each row (`orientation = "features_by_dims"`) or each column
#' (`"dims_by_features"`) of `W` as the direction in which one feature is embedded in
#' m dimensions, and measures how the n features share the space:
#' * feature dimensionality \eqn{D_i = \|W_i\|^2 / \sum_j (\hat W_i \cdot W_j)^2}
#'   (1 for a feature with a dimension of its own, 1/2 for each of an antipodal pair);
#' * dimensions per feature \eqn{m / \|W\|_F^2} (Elhage et al.'s measure, which assumes
#'   represented features have unit norm);
#' * interference: \eqn{|\cos|} between different feature directions (mean and max per
#'   feature; over all pairs the mean, max and a histogram), compared with the Welch
#'   bound \eqn{\sqrt{(n-m)/(m(n-1))}}, the smallest possible maximum \eqn{|\cos|} of n
#'   unit vectors in m dimensions (0 when n <= m).
#'
#' **Regime** (our documented rule; features with norm below `norm_tol` times the
#' largest are "not represented"): `"no_superposition"` when the represented features
#' fit (n_rep <= m) and the largest interference is below `tol`; `"superposition"` when
#' more features are represented than there are dimensions (n_rep > m);
#' `"interference"` otherwise (features overlap although they would fit).
#' The gram matrix is computed in row blocks (BLAS), never stored whole.
#'
#' @param W A numeric matrix.
#' @param orientation `"features_by_dims"` (rows are features, as the toy models'
#'   \eqn{W^T}) or `"dims_by_features"` (columns are features, the toy models' W).
#' @param tol Interference below which features count as orthogonal.
#' @param norm_tol Relative squared norm below which a feature is not represented.
#' @param bins Bins of the interference histogram on \[0, 1\].
#' @return A list of class `ts_superposition`: `features` (tibble: `feature`, `norm`,
#'   `dimensionality`, `mean_interference`, `max_interference`), `summary` (tibble:
#'   `n_features`, `n_dims`, `n_represented`, `dims_per_feature`,
#'   `mean_dimensionality`, `mean_interference`, `max_interference`, `welch_bound`,
#'   `regime`), `histogram` (tibble: `lower`, `upper`, `count` of pairs).
#' @references Elhage et al. (2022). Toy models of superposition. Transformer Circuits
#'   Thread. Welch (1974). Lower bounds on the maximum cross correlation of signals.
#' @export
#' @examples
#' superposition(diag(3))$summary                       # orthogonal: D = 1
#' superposition(rbind(c(1, 0), c(-1, 0)))$features      # antipodal pair: D = 1/2
#' set.seed(1)
#' superposition(matrix(rnorm(20 * 5), 20))$summary
superposition <- function(W, orientation = c("features_by_dims", "dims_by_features"), tol = 0.1,
                          norm_tol = 0.01, bins = 50) {
  orientation <- check_choice(orientation, c("features_by_dims", "dims_by_features"))
  W <- as_data_matrix(W)
  if (orientation == "dims_by_features") W <- t(W)
  tol <- check_number(tol, lower = 0, upper = 1)
  norm_tol <- check_number(norm_tol, lower = 0, upper = 1)
  bins <- check_count(bins, min = 1)
  if (all(W == 0)) ts_abort("{.arg W} is all zeros: there are no feature directions.", "zero_variance")
  if (ncol(W) < 1 || nrow(W) < 2) {
    ts_abort("{.arg W} needs at least 2 features and 1 dimension; it is {nrow(W)} x {ncol(W)} (after {.arg orientation}).", "too_few")
  }
  # cosines are scale-invariant; squared norms are scaled back (so 1e300 does not overflow)
  sc <- scale_extreme_data(W, with_factor = TRUE)
  r <- cpp_feature_geometry(sc$x, bins, threads_now())
  r$norm2 <- r$norm2 / sc$factor^2
  n <- nrow(W)
  m <- ncol(W)
  rep_ <- r$norm2 > norm_tol * max(r$norm2)
  n_rep <- sum(rep_)
  welch <- if (n_rep > m && n_rep > 1) sqrt((n_rep - m) / (m * (n_rep - 1))) else 0
  mean_i <- if (n_rep > 1) mean(r$mean_cos[r$norm2 > 0]) else NA_real_
  max_i <- if (n_rep > 1) max(r$max_cos[r$norm2 > 0]) else NA_real_
  regime <- if (n_rep > m) "superposition" else if (is.na(max_i) || max_i < tol) "no_superposition" else "interference"
  features <- tibble::tibble(feature = seq_len(n), norm = sqrt(r$norm2), dimensionality = r$dimensionality,
                             mean_interference = r$mean_cos, max_interference = r$max_cos)
  summ <- tibble::tibble(n_features = n, n_dims = m, n_represented = n_rep,
                         dims_per_feature = m / sum(r$norm2), mean_dimensionality = mean(r$dimensionality[rep_]),
                         mean_interference = mean_i, max_interference = max_i, welch_bound = welch, regime = regime)
  edges <- seq(0, 1, length.out = bins + 1)
  hist <- tibble::tibble(lower = edges[-length(edges)], upper = edges[-1], count = r$hist)
  structure(list(features = features, summary = summ, histogram = hist, settings = list(tol = tol)),
            class = "ts_superposition")
}

#' @export
print.ts_superposition <- function(x, ...) {
  s <- x$summary
  cli::cat_line(sprintf("<ts_superposition> %d features in %d dims (%d represented): %s", s$n_features, s$n_dims,
                        s$n_represented, s$regime))
  cli::cat_line(sprintf("  dims/feature %.3f, mean D_i %.3f, interference mean %.3f max %.3f (Welch bound %.3f)",
                        s$dims_per_feature, s$mean_dimensionality, s$mean_interference, s$max_interference,
                        s$welch_bound))
  invisible(x)
}

#' Interference between activation directions
#'
#' The \eqn{|\cos|} distribution between the rows of `x` (e.g. stimulus activation
#' vectors, or unit weight vectors), summarised as in [superposition()] and against
#' the Welch bound for that many vectors in `ncol(x)` dimensions.
#'
#' @param x A numeric matrix (vectors in rows), or a [ts_reps()] / named list of
#'   layers (rows = stimuli).
#' @param centre Subtract the mean vector first (directions relative to the centroid).
#' @return A `ts_layer_profile` tibble: `layer`, `metric` (`"mean_interference"`,
#'   `"max_interference"`, `"welch_bound"`), `value`.
#' @export
#' @examples
#' set.seed(1)
#' vector_interference(matrix(rnorm(50 * 10), 50))
vector_interference <- function(x, centre = FALSE) {
  if (!is.logical(centre) || length(centre) != 1 || is.na(centre)) {
    ts_abort("{.arg centre} must be TRUE or FALSE, not {describe(centre)}.", "argument")
  }
  call <- rlang::current_env()
  layers <- reps_layers(x)
  if (is.null(layers)) layers <- list(layer = x)
  layer_profile(map_layers(layers, function(m, arg) {
    m <- as_data_matrix(m, arg = arg, call = call)
    if (centre) m <- sweep(m, 2, colMeans(m))
    check_min_rows(m, 2, arg, "Interference", call = call)
    s <- superposition(m, norm_tol = 0)$summary
    tibble::tibble(metric = c("mean_interference", "max_interference", "welch_bound"),
                   value = c(s$mean_interference, s$max_interference, s$welch_bound))
  }, "x"))
}

#' Category selectivity of units (model or neural data)
#'
#' Per unit (column), from the mean response to each category:
#' * `preferred`: the category with the largest mean response;
#' * `si`: selectivity index \eqn{(R_{pref} - R_{rest})/(R_{pref} + R_{rest})}, with
#'   \eqn{R_{rest}} the mean response to all other stimuli, computed on responses
#'   shifted so that the unit's minimum is 0 (the usual index assumes non-negative
#'   firing rates; the shift makes it defined for activations of any sign). In
#'   \[0, 1\] for non-negative responses;
#' * `dprime`: \eqn{(\mu_{pref} - \mu_{rest})/\sqrt{(s^2_{pref} + s^2_{rest})/2}}.
#' The same function applies to model units and recorded neurons; compare the two
#' distributions with [compare_selectivity()].
#'
#' @param x A numeric matrix (stimuli x units).
#' @param labels Category of each stimulus.
#' @return A tibble: `unit`, `preferred`, `si`, `dprime`.
#' @export
#' @examples
#' set.seed(1)
#' lab <- rep(c("face", "body", "object"), each = 20)
#' x <- cbind(face = (lab == "face") * 2 + rnorm(60), none = rnorm(60))
#' selectivity(x, lab)
selectivity <- function(x, labels) {
  x <- as_data_matrix(x)
  y <- check_labels(labels, nrow(x), min_per_class = 1)
  selectivity_table(x, y)
}

selectivity_table <- function(x, y) {
  g <- stats::model.matrix(~ y - 1)
  cnt <- colSums(g)
  mu <- crossprod(g, x) / cnt                        # C x units
  pref <- max.col(t(mu), ties.method = "first")
  shift <- x - matrix(apply(x, 2, min), nrow(x), ncol(x), byrow = TRUE)
  units <- seq_len(ncol(x))
  si <- dprime <- numeric(ncol(x))
  for (u in units) {
    inp <- as.integer(y) == pref[u]
    rp <- mean(shift[inp, u])
    rr <- mean(shift[!inp, u])
    si[u] <- if (rp + rr > 0) (rp - rr) / (rp + rr) else 0
    vp <- if (sum(inp) > 1) stats::var(x[inp, u]) else 0
    vr <- if (sum(!inp) > 1) stats::var(x[!inp, u]) else 0
    den <- sqrt((vp + vr) / 2)
    dprime[u] <- if (den > 0) (mean(x[inp, u]) - mean(x[!inp, u])) / den else 0
  }
  unit <- if (is.null(colnames(x))) as.character(units) else colnames(x)
  tibble::tibble(unit = unit, preferred = levels(y)[pref], si = si, dprime = dprime)
}

#' Compare selectivity distributions (e.g. model vs brain)
#'
#' Two-sample Kolmogorov-Smirnov test between the distributions of a selectivity
#' measure in two populations of units (e.g. a model layer and recorded neurons).
#'
#' @param a,b Results of [selectivity()] or [polysemanticity()] (their `units`), or
#'   numeric vectors.
#' @param measure Column to compare (`"si"`, `"dprime"` or `"n_categories"`).
#' @return A one-row tibble: `measure`, `n_a`, `n_b`, `mean_a`, `mean_b`, `statistic`
#'   (KS D), `p_value`.
#' @export
#' @examples
#' set.seed(1)
#' lab <- rep(1:4, each = 25)
#' model <- selectivity(matrix(rnorm(100 * 30), 100) + (lab == 1) * 2, lab)
#' brain <- selectivity(matrix(rnorm(100 * 20), 100), lab)
#' compare_selectivity(model, brain)
compare_selectivity <- function(a, b, measure = c("si", "dprime", "n_categories")) {
  measure <- check_choice(measure, c("si", "dprime", "n_categories"))
  pick <- function(v, arg) {
    if (inherits(v, "ts_polysemanticity")) v <- v$units
    if (is.data.frame(v)) {
      if (!measure %in% names(v)) ts_abort("{.arg {arg}} has no column {.val {measure}}.", "argument")
      v <- v[[measure]]
    }
    if (!is.numeric(v) || length(v) < 1) ts_abort("{.arg {arg}} must be a selectivity table or a numeric vector.", "type")
    v <- v[is.finite(v)]
    if (length(v) < 1) ts_abort("{.arg {arg}} has no finite values.", "empty")
    v
  }
  va <- pick(a, "a")
  vb <- pick(b, "b")
  ks <- suppressWarnings(stats::ks.test(va, vb))
  tibble::tibble(measure = measure, n_a = length(va), n_b = length(vb), mean_a = mean(va), mean_b = mean(vb),
                 statistic = unname(ks$statistic), p_value = ks$p.value)
}

#' Polysemanticity: how many categories drive each unit
#'
#' For each unit and category, tests whether the unit responds more to that category
#' than to the other stimuli (statistic: mean response to the category minus mean
#' response to the rest; one-sided). `test = "permutation"` permutes the labels
#' `n_perm` times (all units and categories at once: each batch of permutations is one
#' matrix product of the responses with permuted indicator matrices), and p is one plus
#' the number of null statistics at least as large as the observed one, over
#' `n_perm + 1`; `test = "welch"` uses Welch's t-test. p-values are
#' corrected over the categories of each unit with `p_adjust` (Holm by default). A
#' unit's `n_categories` is the number of significant categories; it is polysemantic
#' when that is 2 or more, monosemantic when 1.
#'
#' @param reps A [ts_reps()] object, a named list of layers, or one matrix (stimuli x
#'   units; works for neural data too).
#' @param labels Category of each stimulus.
#' @param test `"permutation"` or `"welch"`.
#' @param n_perm Permutations.
#' @param alpha Significance level after correction.
#' @param p_adjust Correction over categories within a unit ([stats::p.adjust()]).
#' @param seed Seed of the permutations.
#' @return A list of class `ts_polysemanticity`: `units` (tibble: `layer`, `unit`,
#'   `preferred`, `si`, `dprime`, `n_categories`, `polysemantic`), `summary` (a
#'   `ts_layer_profile`: per layer `frac_polysemantic`, `frac_monosemantic`,
#'   `frac_unselective`, `mean_n_categories`), `p_values` (units x categories matrix
#'   per layer, corrected).
#' @export
#' @examples
#' set.seed(1)
#' lab <- rep(c("a", "b", "c"), each = 20)
#' x <- cbind(mono = (lab == "a") * 2 + rnorm(60), poly = (lab != "c") * 2 + rnorm(60),
#'            none = rnorm(60))
#' polysemanticity(x, lab, n_perm = 500)$units
polysemanticity <- function(reps, labels, test = c("permutation", "welch"), n_perm = 1000, alpha = 0.05,
                            p_adjust = "holm", seed = 1) {
  test <- check_choice(test, c("permutation", "welch"))
  n_perm <- check_count(n_perm, min = 1)
  alpha <- check_number(alpha, lower = 0, upper = 1)
  p_adjust <- check_choice(p_adjust, stats::p.adjust.methods)
  seed <- check_seed(seed)
  layers <- reps_layers(reps)
  if (is.null(layers)) layers <- list(layer = reps)
  n <- nrow(as_data_matrix(layers[[1]], arg = "reps"))
  y <- check_labels(labels, n, min_per_class = 2)
  pvals <- list()
  units <- map_layers(layers, function(m, arg) {
    m <- scale_extreme_data(as_data_matrix(m, arg = arg))  # every statistic is scale-invariant
    if (nrow(m) != n) ts_abort("{.arg {arg}} has {nrow(m)} stimuli but {.arg labels} has {n}.", "mismatch")
    p <- if (test == "welch") welch_category_p(m, y) else with_seed(seed, permutation_category_p(m, y, n_perm))
    p <- t(apply(p, 1, stats::p.adjust, method = p_adjust))
    if (nlevels(y) == 1) p <- t(p)
    dimnames(p) <- list(NULL, levels(y))
    pvals[[sub("^reps\\$", "", arg)]] <<- p
    sel <- selectivity_table(m, y)
    nsig <- rowSums(p < alpha)
    tibble::add_column(sel, n_categories = as.integer(nsig), polysemantic = nsig >= 2)
  }, "reps")
  summ <- do.call(rbind, lapply(levels(units$layer), function(l) {
    u <- units[units$layer == l, ]
    tibble::tibble(layer = l, metric = c("frac_polysemantic", "frac_monosemantic", "frac_unselective", "mean_n_categories"),
                   value = c(mean(u$n_categories >= 2), mean(u$n_categories == 1), mean(u$n_categories == 0),
                             mean(u$n_categories)))
  }))
  summ$layer <- factor(summ$layer, levels = levels(units$layer))
  structure(list(units = units, summary = layer_profile(summ), p_values = pvals,
                 settings = list(test = test, n_perm = n_perm, alpha = alpha, p_adjust = p_adjust)),
            class = "ts_polysemanticity")
}

#' @export
print.ts_polysemanticity <- function(x, ...) {
  cli::cat_line("<ts_polysemanticity> ", nrow(x$units), " units, ", x$settings$test, " test")
  print(x$summary)
  invisible(x)
}

# Category-minus-rest mean difference for every unit and category: units x C.
category_contrast <- function(x, g) {
  cnt <- colSums(g)
  tot <- colSums(x)
  s <- crossprod(x, g)                                   # units x C
  s / matrix(cnt, nrow(s), ncol(s), byrow = TRUE) -
    (tot - s) / matrix(nrow(x) - cnt, nrow(s), ncol(s), byrow = TRUE)
}

permutation_category_p <- function(x, y, n_perm) {
  g <- stats::model.matrix(~ y - 1)
  obs <- category_contrast(x, g)
  exceed <- matrix(0, nrow(obs), ncol(obs))
  C <- ncol(g)
  batch <- max(1L, min(n_perm, 2000L %/% C))
  done <- 0L
  cnt <- colSums(g)
  tot <- colSums(x)
  while (done < n_perm) {
    b <- min(batch, n_perm - done)
    gp <- do.call(cbind, lapply(seq_len(b), function(i) g[sample.int(nrow(g)), , drop = FALSE]))
    s <- crossprod(x, gp)                                # units x (C * b), one BLAS product
    cntb <- rep(cnt, b)
    null <- s / matrix(cntb, nrow(s), ncol(s), byrow = TRUE) -
      (tot - s) / matrix(nrow(x) - cntb, nrow(s), ncol(s), byrow = TRUE)
    for (i in seq_len(b)) exceed <- exceed + (null[, (i - 1) * C + seq_len(C), drop = FALSE] >= obs - 1e-12)
    done <- done + b
  }
  (1 + exceed) / (1 + n_perm)
}

welch_category_p <- function(x, y) {
  out <- matrix(1, ncol(x), nlevels(y))
  for (c in seq_len(nlevels(y))) {
    inc <- as.integer(y) == c
    m1 <- colMeans(x[inc, , drop = FALSE])
    m0 <- colMeans(x[!inc, , drop = FALSE])
    v1 <- apply(x[inc, , drop = FALSE], 2, stats::var)
    v0 <- apply(x[!inc, , drop = FALSE], 2, stats::var)
    n1 <- sum(inc)
    n0 <- sum(!inc)
    se2 <- v1 / n1 + v0 / n0
    t <- (m1 - m0) / sqrt(se2)
    df <- se2^2 / ((v1 / n1)^2 / (n1 - 1) + (v0 / n0)^2 / (n0 - 1))
    p <- stats::pt(t, df, lower.tail = FALSE)
    p[!is.finite(p)] <- ifelse(m1 > m0, 0, 1)[!is.finite(p)]
    out[, c] <- p
  }
  out
}

# ---- metrics of analyze_models() (R/metrics.R) ----------------------------------------

rlang::on_load({
  register_metric(new_metric(
    "feature_sparsity", family = "superposition", scope = "layer", fn = "feature_sparsity", defaults = list(threshold = 0),
    description = "L0, L1, Hoyer, Gini, kurtosis of each layer, summarised",
    about = "Sparsity of each layer, averaged per unit (how selectively a unit responds across stimuli) and per stimulus (how few units respond to a stimulus): fraction active (L0), L1, Hoyer and Gini indices, kurtosis. Higher Hoyer, Gini and kurtosis mean a sparser, more selective code.",
    compute = function(x, args, ctx) summary(feature_sparsity(one_layer(x, ctx), threshold = args$threshold)),
    plot = plot_feature_sparsity))
  register_metric(new_metric(
    "vector_interference", family = "superposition", scope = "layer", fn = "vector_interference",
    defaults = list(centre = FALSE), description = "interference between unit directions vs the Welch bound",
    about = "Mean and maximum |cos| between the activation vectors of different stimuli in the layer, against the Welch bound (the smallest maximum |cos| that many vectors can have in that many dimensions). Values far above the bound mean the stimuli crowd into shared directions; near the bound they are spread as evenly as possible.",
    diagnostics = c("welch_bound"),
    compute = function(x, args, ctx) vector_interference(one_layer(x, ctx), centre = args$centre),
    plot = plot_vector_interference))
  register_metric(new_metric(
    "superposition_regime", family = "superposition", scope = "model", fn = "superposition", aliases = "superposition",
    needs = c("model_file", "torch"), defaults = list(tol = 0.1),
    description = "feature dimensionality of every 2-d weight matrix of the model",
    about = "Feature dimensionality of each 2-d weight matrix (Elhage et al. 2022): how many dimensions each feature (column) gets. Dimensions per feature below 1 means the matrix stores more features than it has dimensions, in superposition.",
    diagnostics = c("n_features", "n_dims", "welch_bound"),
    compute = function(x, args, ctx) {
      p <- model_parameters(ctx$model)
      w <- p[vapply(p, function(v) length(dim(v)) == 2 && min(dim(v)) > 1, logical(1))]
      if (!length(w)) return(metric_skip("the model has no 2-d weight matrices"))
      do.call(rbind, lapply(names(w), function(nm) {
        t <- tidy_long(superposition(w[[nm]], orientation = "dims_by_features", tol = args$tol)$summary)
        t$layer <- nm
        t
      }))
    },
    plot = plot_superposition_regime))
})
