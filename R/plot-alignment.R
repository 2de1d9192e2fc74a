#' @importFrom ggplot2 autoplot
#' @export
ggplot2::autoplot

#' Plot an RDM
#'
#' Heatmap of one or several RDMs (several are faceted, on one colour scale). With
#' `rank = TRUE` the dissimilarities are shown as percentiles within each RDM, the
#' usual display in RSA papers (Nili et al. 2014), which makes RDMs with different
#' scales comparable. With `categories` the conditions are sorted by category (stably:
#' within a category they keep their order), the category blocks are outlined and
#' named on the axes, the display of Kriegeskorte et al. (2008).
#'
#' @param object A `ts_rdm`.
#' @param rank Show percentiles of the dissimilarities instead of raw values.
#' @param labels Show condition labels on the axes (default: when there are at most 40
#'   and no `categories`).
#' @param categories `NULL`, or one category per condition (a factor or vector in the
#'   order of `object$conditions`, or named by condition id): sort the conditions by it.
#' @param ... Unused.
#' @return A ggplot object.
#' @method autoplot ts_rdm
#' @export
#' @examples
#' sim <- simulate_model_and_brain(n_stimuli = 48, n_subjects = 2)
#' r <- rdm(ts_reps(sim$neural, stimuli = sim$reps$stimuli))
#' autoplot(r, rank = TRUE, categories = sim$categories)
autoplot.ts_rdm <- function(object, rank = FALSE, labels = NULL, categories = NULL, ...) {
  n <- length(object$conditions)
  mats <- lapply(seq_len(length(object)), function(i) as.matrix(object, i))
  names(mats) <- object$descriptors$name
  categories <- rdm_categories(categories, object$conditions)
  p <- rdm_tiles(mats, object$conditions, categories, rank = rank, labels = labels %||% (n <= 40 && is.null(categories)))
  p + ggplot2::labs(title = if (length(object) == 1) object$descriptors$name[1] else "RDMs",
                    subtitle = if (object$method != "unknown") sprintf("dissimilarity: %s", object$method))
}

# `categories` of autoplot.ts_rdm(): NULL, or a factor over `conditions`.
rdm_categories <- function(categories, conditions, arg = "categories", call = rlang::caller_env()) {
  if (is.null(categories)) return(NULL)
  if (!is.null(names(categories)) && all(conditions %in% names(categories))) categories <- categories[conditions]
  if (!(is.factor(categories) || is.atomic(categories)) || length(categories) != length(conditions) || anyNA(categories)) {
    ts_abort("{.arg {arg}} must give one category per condition ({length(conditions)}), not {describe(categories)}.",
             "argument", call = call)
  }
  if (is.factor(categories)) droplevels(unname(categories)) else factor(unname(categories), levels = unique(categories))
}

# Heat maps of square dissimilarity matrices (a named list, over `conditions`), one
# panel each, sorted by `categories` when given (block outlines, category names on
# the axes), as percentiles when `rank`.
rdm_tiles <- function(mats, conditions, categories = NULL, rank = FALSE, labels = FALSE) {
  n <- length(conditions)
  ord <- if (is.null(categories)) seq_len(n) else order(as.integer(categories))
  rows <- lapply(names(mats), function(nm) {
    m <- mats[[nm]][ord, ord, drop = FALSE]
    if (rank) {
      v <- m[upper.tri(m)]
      m[] <- stats::ecdf(v)(m) * 100
      diag(m) <- 0
    }
    tibble::tibble(rdm = nm, row = rep(seq_len(n), times = n), col = rep(seq_len(n), each = n), value = as.vector(m))
  })
  df <- do.call(rbind, rows)
  df$rdm <- factor(df$rdm, levels = names(mats))
  p <- ggplot2::ggplot(df, ggplot2::aes(x = .data$col, y = .data$row, fill = .data$value)) +
    ggplot2::geom_raster() +
    ggplot2::scale_fill_viridis_c(name = if (rank) "dissimilarity\n(percentile)" else "dissimilarity")
  if (!is.null(categories)) {
    cat_sorted <- categories[ord]
    runs <- rle(as.integer(cat_sorted))
    ends <- cumsum(runs$lengths)
    starts <- ends - runs$lengths + 1
    mids <- (starts + ends) / 2
    cuts <- utils::head(ends, -1) + 0.5
    labs <- short_labels(levels(categories)[runs$values], 12)
    p <- p + ggplot2::geom_hline(yintercept = cuts, colour = "white", linewidth = 0.3) +
      ggplot2::geom_vline(xintercept = cuts, colour = "white", linewidth = 0.3) +
      ggplot2::scale_x_continuous(breaks = mids, labels = labs, expand = c(0, 0)) +
      ggplot2::scale_y_reverse(breaks = mids, labels = labs, expand = c(0, 0))
  } else if (labels) {
    labs <- short_labels(conditions[ord], 12)
    p <- p + ggplot2::scale_x_continuous(breaks = seq_len(n), labels = labs, expand = c(0, 0)) +
      ggplot2::scale_y_reverse(breaks = seq_len(n), labels = labs, expand = c(0, 0))
  } else {
    p <- p + ggplot2::scale_x_continuous(breaks = NULL, expand = c(0, 0)) + ggplot2::scale_y_reverse(breaks = NULL, expand = c(0, 0))
  }
  p <- p + ggplot2::coord_equal() + ggplot2::labs(x = NULL, y = NULL) +
    theme_tensorscope(base_size = if (length(mats) > 4) 9 else 10, grid = FALSE) +
    ggplot2::theme(legend.position = "right", legend.key.height = ggplot2::unit(1.5, "lines"))
  if (!is.null(categories) || labels) {
    long <- labels || max(nchar(levels(categories))) > 5
    p <- p + ggplot2::theme(axis.text.x = ggplot2::element_text(angle = if (long) 90 else 0, hjust = if (long) 1 else 0.5, vjust = 0.5,
                                                                 size = if (labels) 6 else ggplot2::rel(0.8)),
                            axis.text.y = ggplot2::element_text(size = if (labels) 6 else ggplot2::rel(0.8)))
  }
  if (length(mats) > 1) {
    p <- p + ggplot2::facet_wrap(ggplot2::vars(.data$rdm), ncol = if (length(mats) > 9) 4 else min(3, length(mats)),
                                 labeller = ggplot2::label_wrap_gen(width = 22))
  }
  p
}

#' Plot CKA between layers
#'
#' Layer x layer heatmap of [cka_layers()] results, with the values printed when there
#' are few layers.
#'
#' @param object A `ts_cka` result.
#' @param values Print the values in the cells (default: at most 12 x 12 layers).
#' @param ... Unused.
#' @return A ggplot object.
#' @method autoplot ts_cka
#' @export
#' @examples
#' set.seed(1)
#' z <- matrix(rnorm(50 * 4), 50)
#' res <- cka_layers(list(a = z, b = z^2, c = tanh(z), d = matrix(rnorm(200), 50)))
#' autoplot(res)
autoplot.ts_cka <- function(object, values = NULL, ...) {
  st <- attr(object, "settings")
  values <- values %||% (nlevels(object$layer_x) <= 12 && nlevels(object$layer_y) <= 12)
  df <- tibble::as_tibble(structure(object, class = class(object)[-1]))
  df$layer_y <- factor(df$layer_y, levels = rev(levels(df$layer_y)))
  p <- ggplot2::ggplot(df, ggplot2::aes(x = .data$layer_x, y = .data$layer_y, fill = .data$cka)) +
    ggplot2::geom_tile() +
    ggplot2::scale_fill_viridis_c(name = "CKA", limits = c(min(0, min(df$cka, na.rm = TRUE)), 1)) +
    ggplot2::coord_equal() +
    ggplot2::labs(x = st$model_x %||% "layer", y = st$model_y %||% "layer",
                  title = sprintf("CKA (%s kernel, %s)", st$kernel, st$estimator)) +
    theme_tensorscope(base_size = 10, grid = FALSE) + ggplot2::theme(legend.position = "right") +
    ggplot2::theme(axis.text.x = ggplot2::element_text(angle = 45, hjust = 1), panel.grid = ggplot2::element_blank())
  if (values) {
    p <- p + ggplot2::geom_text(ggplot2::aes(label = sprintf("%.2f", .data$cka),
                                             colour = .data$cka > 0.6), size = 3, show.legend = FALSE) +
      ggplot2::scale_colour_manual(values = c(`TRUE` = "black", `FALSE` = "white"))
  }
  p
}

#' Plot RSA results
#'
#' Mean similarity per layer with its bootstrap confidence interval, each subject's
#' similarity as a faint point, the noise ceiling as a grey band (lower to upper
#' bound), and layers whose permutation p-value is below `alpha` marked with a star.
#'
#' @param object A `ts_rsa` result.
#' @param alpha Significance level for the stars.
#' @param ... Unused.
#' @return A ggplot object.
#' @method autoplot ts_rsa
#' @export
#' @examples
#' set.seed(3)
#' z <- matrix(rnorm(20 * 5), 20)
#' reps <- ts_reps(list(early = z + matrix(rnorm(100, sd = 3), 20), late = z))
#' subjects <- lapply(1:4, function(s) as.matrix(rdm(z + matrix(rnorm(100), 20))))
#' autoplot(rsa(reps, subjects, n_perm = 500, n_boot = 200))
autoplot.ts_rsa <- function(object, alpha = 0.05, ...) {
  sm <- summary(object)
  st <- attr(object, "settings")
  subj <- tibble::as_tibble(structure(object, class = class(object)[-1], summary = NULL, settings = NULL))
  p <- ggplot2::ggplot(sm, ggplot2::aes(x = .data$layer, y = .data$similarity))
  if (!is.na(sm$ceiling_upper[1])) {
    p <- p + ggplot2::annotate("rect", xmin = -Inf, xmax = Inf, ymin = sm$ceiling_lower[1],
                               ymax = sm$ceiling_upper[1], fill = "grey70", alpha = 0.5)
  }
  if (nrow(subj) > nrow(sm)) {
    p <- p + ggplot2::geom_point(data = subj, ggplot2::aes(x = .data$layer, y = .data$similarity),
                                 colour = "grey40", alpha = 0.4, size = 1,
                                 position = ggplot2::position_jitter(width = 0.1, height = 0, seed = 1))
  }
  if (!all(is.na(sm$ci_lower))) {
    p <- p + ggplot2::geom_errorbar(ggplot2::aes(ymin = .data$ci_lower, ymax = .data$ci_upper), width = 0.2)
  }
  p <- p + ggplot2::geom_point(size = 2.5, colour = "steelblue4") +
    ggplot2::geom_hline(yintercept = 0, linetype = "dashed", colour = "grey50")
  sig <- sm[!is.na(sm$p_value) & sm$p_value < alpha, ]
  if (nrow(sig)) {
    top <- max(c(sm$ci_upper, sm$similarity, sm$ceiling_upper), na.rm = TRUE)
    p <- p + ggplot2::geom_text(data = sig, ggplot2::aes(x = .data$layer, y = top * 1.05), label = "*", size = 6)
  }
  p + ggplot2::labs(x = "layer", y = sprintf("RDM similarity (%s)", st$method),
                    title = "RSA: model layers vs neural RDMs",
                    subtitle = wrap_text(sprintf("%d conditions, %d subject(s); bars: %g%% CI (%s bootstrap); band: noise ceiling; *: p < %g",
                                                 sm$n_conditions[1], sm$n_subjects[1], 100 * st$conf_level, st$boot, alpha), 80)) +
    layer_x_scale() + theme_tensorscope() + rotate_x(nlevels(sm$layer))
}

#' Plot shape distances between layers
#'
#' Layer x layer heatmap of [shape_layers()] results (darker = closer), with the values
#' printed when there are few layers.
#'
#' @param object A `ts_shape` result.
#' @param values Print the values in the cells (default: at most 12 x 12 layers).
#' @param ... Unused.
#' @return A ggplot object.
#' @method autoplot ts_shape
#' @export
#' @examples
#' set.seed(1)
#' z <- matrix(rnorm(80 * 4), 80)
#' res <- shape_layers(list(a = z, b = z^2, c = tanh(z), d = matrix(rnorm(320), 80)))
#' autoplot(res)
autoplot.ts_shape <- function(object, values = NULL, ...) {
  st <- attr(object, "settings")
  what <- if (st$alpha == 1) "Procrustes" else if (st$alpha == 0) "CCA" else sprintf("alpha = %g", st$alpha)
  plot_pair_heatmap(object, "distance", if (st$distance == "angular") "angle (rad)" else "distance",
                    sprintf("Shape distance (%s, %s)", what, st$distance),
                    if (st$cross_validated) sprintf("aligned on %d stimuli, scored on %d held out", st$n_train, st$n_test),
                    direction = -1, limits = c(0, NA), values = values)
}

#' Plot CCA similarities or soft-matching distances between layers
#'
#' Layer x layer heatmaps of [cca_layers()] (brighter = more similar, NA cells grey) and
#' [soft_matching_layers()] (darker = closer) results, with the values printed when there
#' are few layers.
#'
#' @param object A `ts_cca` or `ts_soft_matching` result.
#' @inheritParams autoplot.ts_shape
#' @return A ggplot object.
#' @name autoplot-pairs
#' @examples
#' set.seed(1)
#' z <- matrix(rnorm(100 * 4), 100)
#' reps <- ts_reps(list(a = z, b = z^2, c = tanh(z), d = matrix(rnorm(400), 100)))
#' autoplot(cca_layers(reps, method = "svcca"))
#' autoplot(soft_matching_layers(reps))
NULL

#' @rdname autoplot-pairs
#' @method autoplot ts_cca
#' @export
autoplot.ts_cca <- function(object, values = NULL, ...) {
  st <- attr(object, "settings")
  what <- switch(st$method, mean = "mean CCA", svcca = "SVCCA", pwcca = "PWCCA")
  plot_pair_heatmap(object, "similarity", "similarity", sprintf("CCA similarity (%s)", what),
                    paste0(st$n, " stimuli", if (st$method == "svcca") sprintf("; directions keeping %g%% of the variance", 100 * st$keep),
                           if (anyNA(object$similarity)) "; grey: unusable layer"),
                    direction = 1, limits = c(0, 1), values = values)
}

#' @rdname autoplot-pairs
#' @method autoplot ts_soft_matching
#' @export
autoplot.ts_soft_matching <- function(object, values = NULL, ...) {
  st <- attr(object, "settings")
  plot_pair_heatmap(object, "distance", "distance", "Soft-matching distance",
                    paste0("optimal transport between units", if (!st$centre) " (not centred)"), direction = -1, limits = c(0, NA), values = values)
}

# Layer x layer heatmap of a pairs result (layer_x, layer_y, `value`), with the values
# printed in the cells by default up to 12 x 12 layers.
plot_pair_heatmap <- function(object, value, fill_name, title, subtitle, direction, limits, values) {
  st <- attr(object, "settings")
  values <- values %||% (nlevels(object$layer_x) <= 12 && nlevels(object$layer_y) <= 12)
  df <- tibble::as_tibble(structure(object, class = c("tbl_df", "tbl", "data.frame")))
  df$layer_y <- factor(df$layer_y, levels = rev(levels(df$layer_y)))
  df$.value <- df[[value]]
  p <- ggplot2::ggplot(df, ggplot2::aes(x = .data$layer_x, y = .data$layer_y, fill = .data$.value)) +
    ggplot2::geom_tile() +
    ggplot2::scale_fill_viridis_c(name = fill_name, direction = direction, limits = limits, na.value = "grey85") +
    ggplot2::coord_equal() +
    ggplot2::labs(x = st$model_x %||% "layer", y = st$model_y %||% "layer", title = title, subtitle = subtitle) +
    theme_tensorscope(base_size = 10, grid = FALSE) + ggplot2::theme(legend.position = "right") +
    ggplot2::theme(axis.text.x = ggplot2::element_text(angle = 45, hjust = 1), panel.grid = ggplot2::element_blank())
  if (values) {
    mid <- stats::median(df$.value, na.rm = TRUE)
    lab <- df[!is.na(df$.value), ]
    lab$.bright <- if (direction < 0) lab$.value < mid else lab$.value > mid  # black text on the bright cells
    p <- p + ggplot2::geom_text(data = lab, ggplot2::aes(label = sprintf("%.2f", .data$.value), colour = .data$.bright),
                                size = 3, show.legend = FALSE) +
      ggplot2::scale_colour_manual(values = c(`TRUE` = "black", `FALSE` = "white"))
  }
  p
}

# ---- figures of the analyzer's alignment metrics (autoplot(<ts_results>, metric)) ----

# cka_similarity / shape_distance: layer x layer heat maps per checkpoint.
plot_cka_matrix <- function(d, metric) {
  plot_layer_pairs(d, metric, "cka", "CKA", title = "CKA between layers", limits = c(min(d$value, na.rm = TRUE), 1),
                   subtitle = "linear CKA of every pair of layers; one panel per checkpoint, one colour scale (lowest value to 1)")
}

plot_shape_matrix <- function(d, metric) {
  plot_layer_pairs(d, metric, "shape", "distance", title = "Shape distance between layers", direction = -1,
                   limits = c(0, max(d$value, na.rm = TRUE)),
                   subtitle = "generalized shape metric (Williams et al. 2021), darker = closer; one panel per checkpoint")
}

# A training-step axis: log-spaced (log10(step + 1), labelled with the steps) when the
# positive steps span more than a decade and a quarter (ratio >= 20).
step_axis <- function(steps) {
  s <- sort(unique(steps[is.finite(steps)]))
  pos <- s[s > 0]
  log <- length(pos) >= 2 && max(pos) / min(pos) >= 20
  f <- if (log) function(v) log10(v + 1) else identity
  # breaks at the steps, thinned so that labels do not collide (the first and the last
  # are kept)
  at <- f(s)
  thr <- 0.06 * diff(range(at))
  keep <- seq_along(s) == 1
  for (i in seq_along(s)[-1]) if (at[i] - at[max(which(keep))] >= thr) keep[i] <- TRUE
  if (!keep[length(s)]) {
    prev <- max(which(keep))
    if (prev > 1) keep[prev] <- FALSE
    keep[length(s)] <- TRUE
  }
  list(x = f, scale = ggplot2::scale_x_continuous(breaks = at[keep], labels = format(s[keep], scientific = FALSE, trim = TRUE)),
       name = if (log) "training step (log scale)" else "training step")
}

# cka_trajectory: CKA of each layer with its final state, over training.
plot_cka_trajectory <- function(d, metric) {
  d <- d[!is.na(d$layer) & !is.na(d$step), ]
  d$layer <- layer_factor(d$layer)
  ax <- step_axis(d$step)
  d$x <- ax$x(d$step)
  p <- ggplot2::ggplot(d, ggplot2::aes(.data$x, .data$value, colour = .data$layer, group = .data$layer)) +
    ggplot2::geom_line(linewidth = 0.6) + ggplot2::geom_point(size = 1.6) +
    ggplot2::scale_colour_viridis_d(end = 0.92, labels = function(x) short_labels(x), name = "layer\n(input to output)") +
    ax$scale + ggplot2::expand_limits(y = 1) +
    ggplot2::labs(x = ax$name, y = "CKA with the final checkpoint", title = "Representations over training",
                  subtitle = wrap_text("linear CKA of each layer with the same layer at the last checkpoint: a layer whose curve reaches 1 early has settled")) +
    theme_tensorscope() + ggplot2::theme(legend.position = "right")
  if (length(unique(d$model)) > 1) p <- p + ggplot2::facet_wrap(ggplot2::vars(.data$model))
  p
}

# block_cka_gap: the blocks of high CKA the layers fall into, one row per checkpoint.
plot_block_gap <- function(d, metric) {
  blocks <- d[d$statistic == "block" & !is.na(d$layer), ]
  gap <- d[d$statistic == "gap", ]
  blocks$layer <- layer_factor(blocks$layer)
  u <- unit_style(blocks)
  blocks <- u$data
  key <- function(x) paste(x$model, x$step, sep = "\r")
  g <- stats::setNames(gap$value, key(gap))
  lab <- sprintf("%s (gap %.2f)", unit_labels(blocks, u), g[key(blocks)])
  blocks$.row <- factor(lab, levels = rev(unique(lab[order(blocks$model, blocks$step)])))
  blocks$block <- factor(as.integer(blocks$value))
  ggplot2::ggplot(blocks, ggplot2::aes(.data$layer, .data$.row, fill = .data$block)) +
    ggplot2::geom_tile(colour = "white", linewidth = 0.8) +
    ggplot2::geom_text(ggplot2::aes(label = .data$block), size = 3, colour = "black") +
    ggplot2::scale_fill_manual(values = okabe_ito[c(5, 2, 3, 7, 4, 6, 1, 8)], name = "block") +
    layer_x_scale(expand = c(0, 0)) + ggplot2::scale_y_discrete(expand = c(0, 0)) +
    ggplot2::labs(x = "layer", y = NULL, title = "Block structure of the layers",
                  subtitle = wrap_text("contiguous blocks of layers with high mutual linear CKA (Nguyen et al. 2021); gap = mean CKA within blocks - between blocks")) +
    theme_tensorscope(grid = FALSE) + rotate_x(nlevels(blocks$layer)) + ggplot2::theme(legend.position = "none")
}

# rsa_similarity: per layer, RSA (with its CI and the noise ceiling) and CKA to each
# neural data set; type "rdms": category-sorted RDMs; "mds": second-order MDS.
plot_neural_alignment <- function(d, metric, results = NULL, type = c("layers", "rdms", "mds"), model = NULL, ...) {
  type <- check_choice(type, c("layers", "rdms", "mds"))
  if (type == "rdms") return(plot_results_rdms(results, model))
  if (type == "mds") return(plot_rdm_mds(results))
  st <- results$provenance$metrics$rsa_similarity
  d$measure <- sub("^.*:", "", d$statistic)
  d$area <- if ("area" %in% names(d)) as.character(d$area) else sub(":[^:]*$", "", d$statistic)
  d$area <- factor(d$area, levels = unique(d$area))
  d <- d[!is.na(d$layer) & is.finite(d$value), ]
  d$layer <- layer_factor(d$layer)
  labs <- c(rsa = "RSA", cka = "CKA")
  d$measure <- factor(labs[d$measure], levels = labs[labs %in% labs[d$measure]])
  u <- unit_style(d)
  d <- u$data
  dodge <- ggplot2::position_dodge(width = if (u$n_models * u$n_steps > 1) 0.6 else 0)
  p <- ggplot2::ggplot(d, ggplot2::aes(.data$layer, .data$value, colour = .data$.unit, group = .data$.group))
  has_ci <- all(c("ci_lower", "ci_upper") %in% names(d)) && any(is.finite(d$ci_lower))
  has_ceiling <- all(c("ceiling_lower", "ceiling_upper") %in% names(d)) && any(is.finite(d$ceiling_upper))
  if (has_ceiling) {
    ce <- unique(d[is.finite(d$ceiling_upper), c("area", "measure", "ceiling_lower", "ceiling_upper")])
    ce$ceiling_lower[!is.finite(ce$ceiling_lower)] <- ce$ceiling_upper[!is.finite(ce$ceiling_lower)]
    p <- p + ggplot2::geom_rect(data = ce, ggplot2::aes(xmin = -Inf, xmax = Inf, ymin = .data$ceiling_lower, ymax = .data$ceiling_upper),
                                inherit.aes = FALSE, fill = "grey80", alpha = 0.6)
  }
  p <- p + ggplot2::geom_hline(yintercept = 0, colour = "grey60", linewidth = 0.3) +
    ggplot2::geom_line(linewidth = 0.4, alpha = 0.7, position = dodge)
  if (has_ci) {
    p <- p + ggplot2::geom_errorbar(data = d[is.finite(d$ci_lower), ], ggplot2::aes(ymin = .data$ci_lower, ymax = .data$ci_upper),
                                    width = 0, linewidth = 0.5, position = dodge)
  }
  p <- p + ggplot2::geom_point(size = 1.8, position = dodge) + u$scale + layer_x_scale() +
    ggplot2::facet_grid(ggplot2::vars(.data$measure), ggplot2::vars(.data$area), scales = "free_y",
                        labeller = ggplot2::label_wrap_gen(width = 24)) +
    ggplot2::labs(x = "layer", y = NULL, colour = u$name, title = "Alignment of every layer with the neural data",
                  subtitle = wrap_text(paste0(
                    "one panel per neural data set; RSA: ", st$method %||% "correlation", " correlation of the layer and neural RDMs",
                    "; CKA: linear, mean over subjects", if (has_ci) sprintf("; bars: %s bootstrap CI of the RSA", if (!is.null(st$n_boot)) sprintf("%d-draw", st$n_boot) else "the"),
                    if (has_ceiling) "; grey band: noise ceiling (lower to upper bound)"))) +
    theme_tensorscope() + ggplot2::theme(strip.text.y = ggplot2::element_text(angle = -90, hjust = 0.5)) +
    rotate_x(nlevels(d$layer) * length(unique(d$area)) / 2)
  if (!u$legend) p <- p + ggplot2::guides(colour = "none")
  p
}

# The layer RDMs of the last checkpoint of each model (of `models`) and the neural
# RDMs (mean over subjects).
results_rdm_list <- function(results, models = NULL) {
  if (is.null(results) || is.null(results$rdms)) {
    ts_abort("{.arg object} has no layer RDMs (read from a JSON report?); run {.fn analyze_models} again.", "empty")
  }
  units <- results$units
  keep <- which(!vapply(results$rdms, is.null, logical(1)))
  model <- vapply(units[keep], `[[`, "", "model")
  step <- vapply(units[keep], function(u) as.double(u$step), 0)
  if (!is.null(models)) {
    if (!is.character(models) || !all(models %in% model)) {
      ts_abort("{.arg model} must name models of the results ({.val {unique(model)}}), not {describe(models)}.", "argument")
    }
    keep <- keep[model %in% models]
    step <- step[model %in% models]
    model <- model[model %in% models]
  }
  last <- vapply(unique(model), function(m) {
    s <- step[model == m]
    keep[model == m][which.max(replace(s, is.na(s), -Inf))]
  }, 0L)
  several <- length(last) > 1
  out <- list(layers = list(), neural = list(), model = character())
  for (k in last) {
    r <- results$rdms[[k]]
    u <- units[[k]]
    for (i in seq_len(length(r))) {
      nm <- if (several) paste(u$model, r$descriptors$name[i], sep = ": ") else r$descriptors$name[i]
      out$layers[[nm]] <- as.matrix(r, i)
      out$model[nm] <- u$model
    }
  }
  nr <- attr(results$neural, "rdms")
  for (a in names(nr)) {
    ms <- lapply(seq_len(length(nr[[a]])), function(i) as.matrix(nr[[a]], i))
    out$neural[[sprintf("%s (%s)", a, if (length(ms) > 1) sprintf("mean of %d", length(ms)) else "neural")]] <- Reduce(`+`, ms) / length(ms)
  }
  out$conditions <- results$rdms[[keep[1]]]$conditions
  out$title <- if (!several && !is.na(step[match(last, keep)])) sprintf("%s, step %s", model[match(last, keep)], format(step[match(last, keep)])) else NULL
  out
}

# RDM figure: the layers of one model (`model`, default the best-ranked against the
# neural data) and the neural RDMs, sorted by the stimulus labels of the run.
plot_results_rdms <- function(results, model = NULL) {
  if (is.null(model) && !is.null(results$units)) {
    rk <- attr(results$neural, "ranking")
    model <- if (!is.null(rk) && nrow(rk)) rk$model[1] else results$units[[1]]$model
  }
  r <- results_rdm_list(results, model)
  cats <- if (!is.null(results$labels)) rdm_categories(results$labels, r$conditions, arg = "labels")
  mats <- c(r$neural, r$layers)
  p <- rdm_tiles(mats, r$conditions, cats, rank = TRUE)
  p + ggplot2::labs(title = "Representational dissimilarity matrices",
                    subtitle = wrap_text(paste0(c(r$title, sprintf("%s dissimilarity as percentiles", results$provenance$rdm_method %||% "layer"),
                                                  if (!is.null(cats)) "stimuli sorted by category" else "stimuli in input order (pass labels to analyze_models() to sort them by category)",
                                                  if (length(r$neural)) "neural RDMs first"), collapse = "; ")))
}

# Second-order MDS: the RDMs as points, 1 - Spearman r between their upper triangles as
# distance (Kriegeskorte et al. 2008), classical scaling to two dimensions.
plot_rdm_mds <- function(results) {
  r <- results_rdm_list(results)
  mats <- c(r$layers, r$neural)
  if (length(mats) < 3) ts_abort("A second-order MDS needs at least 3 RDMs, not {length(mats)}.", "too_few")
  up <- vapply(mats, function(m) m[upper.tri(m)], numeric(sum(upper.tri(mats[[1]]))))
  D <- 1 - suppressWarnings(stats::cor(up, method = "spearman"))
  D[!is.finite(D)] <- 1
  xy <- stats::cmdscale(stats::as.dist(D), k = 2, eig = TRUE)
  pts <- tibble::tibble(name = names(mats), x = xy$points[, 1], y = xy$points[, 2],
                        kind = ifelse(names(mats) %in% names(r$neural), "neural", "layer"),
                        model = ifelse(names(mats) %in% names(r$neural), NA_character_, unname(r$model[names(mats)])))
  pts$label <- ifelse(pts$kind == "layer" & length(unique(stats::na.omit(pts$model))) > 1, sub("^[^:]*: ", "", pts$name), pts$name)
  lay <- pts[pts$kind == "layer", ]
  lay$model <- factor(lay$model, levels = unique(lay$model))
  # layers at (nearly) the same place (flatten = pool2) share one label; in a crowded
  # map (more than 14 layer points) only each model's first and last layers are named
  span <- max(diff(range(pts$x)), diff(range(pts$y)), 1e-12)
  lay$text <- lay$label
  crowded <- nrow(lay) > 14
  for (m in levels(lay$model)) {
    i <- which(lay$model == m)
    if (crowded) {
      lay$text[i] <- ifelse(seq_along(i) %in% c(1, length(i)), short_labels(lay$label[i], 12), "")
      next
    }
    if (length(i) < 2) next
    cl <- stats::cutree(stats::hclust(stats::dist(cbind(lay$x[i], lay$y[i])), "single"), h = 0.04 * span)
    for (g in unique(cl)) {
      j <- i[cl == g]
      lay$text[j] <- c(paste(short_labels(lay$label[j], 12), collapse = ", "), rep("", length(j) - 1))
    }
  }
  # the same name at about the same place (conv1 of several models): one label
  for (i in which(nzchar(lay$text))) {
    j <- which(nzchar(lay$text) & lay$text == lay$text[i] & seq_len(nrow(lay)) > i)
    near <- j[sqrt((lay$x[j] - lay$x[i])^2 + (lay$y[j] - lay$y[i])^2) < 0.05 * span]
    lay$text[near] <- ""
  }
  var <- xy$eig[1:2] / sum(abs(xy$eig))
  pal <- stats::setNames(rep_len(okabe_ito, nlevels(lay$model)), levels(lay$model))
  p <- ggplot2::ggplot(lay, ggplot2::aes(.data$x, .data$y)) +
    ggplot2::geom_path(ggplot2::aes(colour = .data$model, group = .data$model), linewidth = 0.5, alpha = 0.6,
                       arrow = ggplot2::arrow(length = ggplot2::unit(0.12, "inches"), type = "closed")) +
    ggplot2::geom_point(ggplot2::aes(colour = .data$model), size = 2.2) +
    ggplot2::geom_text(ggplot2::aes(label = .data$text, colour = .data$model), size = 2.8, vjust = -0.9,
                       show.legend = FALSE) +
    ggplot2::scale_colour_manual(values = pal, name = "model")
  neu <- pts[pts$kind == "neural", ]
  if (nrow(neu)) {
    p <- p + ggplot2::geom_point(data = neu, shape = 17, size = 3.5, colour = "black") +
      ggplot2::geom_text(data = neu, ggplot2::aes(label = .data$label), size = 3.2, fontface = "bold", vjust = 1.9)
  }
  p + ggplot2::scale_x_continuous(expand = ggplot2::expansion(mult = 0.12)) +
    ggplot2::scale_y_continuous(expand = ggplot2::expansion(mult = 0.12)) +
    ggplot2::coord_equal() +
    ggplot2::labs(x = sprintf("MDS 1 (%.0f%%)", 100 * var[1]), y = sprintf("MDS 2 (%.0f%%)", 100 * var[2]),
                  title = "Second-order MDS of the RDMs",
                  subtitle = wrap_text(paste0(c(r$title, "distance between RDMs: 1 - Spearman r; arrows run from input to output layers",
                                                if (nrow(neu)) "triangles: neural RDMs"), collapse = "; "))) +
    theme_tensorscope() + if (nlevels(lay$model) < 2) ggplot2::theme(legend.position = "none")
}
