#' Plot per-layer profiles
#'
#' Line plot of per-layer metrics (dimensionality, curvature, sparsity, separability,
#' ...) across layers, one panel per metric. Works on any `ts_layer_profile` result
#' ([effective_rank()], [intrinsic_dim()], [separability()], `summary()` of
#' [feature_sparsity()], [geometry_profile()], ...) and on several of them bound with
#' `rbind()`.
#'
#' @param object A `ts_layer_profile` tibble (`layer`, `metric`, `value`).
#' @param ... Unused.
#' @return A ggplot object.
#' @method autoplot ts_layer_profile
#' @export
#' @examples
#' set.seed(1)
#' z <- matrix(rnorm(200 * 8), 200)
#' reps <- ts_reps(list(l1 = z, l2 = z[, 1:4], l3 = tanh(z[, 1:2])))
#' autoplot(geometry_profile(reps))
autoplot.ts_layer_profile <- function(object, ...) {
  df <- tibble::as_tibble(structure(object, class = c("tbl_df", "tbl", "data.frame")))
  df$layer <- factor(df$layer, levels = unique(c(levels(factor(df$layer)), as.character(df$layer))))
  ggplot2::ggplot(df, ggplot2::aes(x = .data$layer, y = .data$value, group = 1)) +
    ggplot2::geom_line(colour = "steelblue4") +
    ggplot2::geom_point(size = 2, colour = "steelblue4") +
    ggplot2::facet_wrap(ggplot2::vars(.data$metric), scales = "free_y") +
    ggplot2::labs(x = "layer", y = NULL, title = "Per-layer profile") +
    theme_tensorscope(base_size = 11) +
    ggplot2::theme(axis.text.x = ggplot2::element_text(angle = 45, hjust = 1))
}

#' Plot Ricci curvature
#'
#' Histogram of the edge curvatures (one panel per layer), with the mean marked.
#'
#' @param object A `ts_ricci` result of [ricci_curvature()].
#' @param bins Histogram bins.
#' @param ... Unused.
#' @return A ggplot object.
#' @method autoplot ts_ricci
#' @export
#' @examples
#' set.seed(1)
#' autoplot(ricci_curvature(matrix(rnorm(200 * 3), 200), k = 6))
autoplot.ts_ricci <- function(object, bins = 40, ...) {
  st <- attr(object, "settings")
  df <- tibble::as_tibble(structure(object, class = c("tbl_df", "tbl", "data.frame"), settings = NULL))
  sm <- summary(object)
  if (!"layer" %in% names(df)) df$layer <- factor("graph")
  p <- ggplot2::ggplot(df, ggplot2::aes(x = .data$curvature)) +
    ggplot2::geom_histogram(bins = bins, fill = "steelblue4", colour = "white") +
    ggplot2::geom_vline(data = sm, ggplot2::aes(xintercept = .data$mean_ricci), linetype = "dashed") +
    ggplot2::geom_vline(xintercept = 0, colour = "grey50") +
    ggplot2::labs(x = if (identical(st$method, "forman")) "Forman-Ricci curvature" else "Ollivier-Ricci curvature", y = "edges",
                  title = "Edge curvature", subtitle = "dashed: mean") +
    theme_tensorscope(base_size = 11)
  if (nlevels(factor(df$layer)) > 1) p <- p + ggplot2::facet_wrap(ggplot2::vars(.data$layer), scales = "free_y")
  p
}

#' Plot the fiber-bundle test
#'
#' Local dimension against radius (log scale) for each point, one line per point:
#' points that reject the fiber-bundle hypothesis in red, a sample of the others in
#' grey.
#'
#' @param object A `ts_fiber_bundle` result of [fiber_bundle_test()].
#' @param max_points Largest number of non-rejecting points drawn.
#' @param ... Unused.
#' @return A ggplot object.
#' @method autoplot ts_fiber_bundle
#' @export
#' @examples
#' set.seed(1)
#' t <- runif(1000, -1, 1)
#' autoplot(fiber_bundle_test(cbind(t^2, t^3), k_range = c(1, 100), window = 20))
autoplot.ts_fiber_bundle <- function(object, max_points = 200, ...) {
  pts <- object$points
  rej <- pts$point[pts$reject_fiber]
  keep <- pts$point[!pts$reject_fiber]
  if (length(keep) > max_points) keep <- keep[round(seq(1, length(keep), length.out = max_points))]
  df <- object$profile[object$profile$point %in% c(rej, keep), ]
  df$status <- ifelse(df$point %in% rej, "rejects fiber bundle", "does not reject")
  df <- df[order(df$status == "rejects fiber bundle"), ]
  ggplot2::ggplot(df, ggplot2::aes(x = .data$radius, y = .data$dim, group = .data$point, colour = .data$status)) +
    ggplot2::geom_line(alpha = 0.6) +
    ggplot2::scale_x_log10() +
    ggplot2::scale_colour_manual(values = c(`rejects fiber bundle` = "firebrick", `does not reject` = "grey60"),
                                 name = NULL) +
    ggplot2::labs(x = "radius", y = "local dimension (slope of log V vs log r)",
                  title = "Fiber-bundle test: local dimension by radius",
                  subtitle = sprintf("%d of %d points reject (%s, alpha = %g)", length(rej), nrow(pts),
                                     object$settings$p_adjust, object$settings$alpha)) +
    theme_tensorscope(base_size = 11) +
    ggplot2::theme(legend.position = "bottom")
}

# ---- figures of the analyzer's geometry metrics (autoplot(<ts_results>, metric)) ----

plot_effective_rank <- function(d, metric) {
  profile_plot(d[d$statistic == "effective_rank", ], "Effective rank per layer", "effective rank",
               subtitle = "exp of the entropy of the normalised spectrum of the centred activations (Roy & Vetterli 2007)") +
    ggplot2::expand_limits(y = 0)
}

plot_participation_ratio <- function(d, metric) {
  profile_plot(d[d$statistic == "participation_ratio", ], "Participation ratio per layer", "participation ratio",
               subtitle = "(sum of covariance eigenvalues)^2 / sum of their squares: the number of dimensions the variance spreads over") +
    ggplot2::expand_limits(y = 0)
}

# ricci_curvature: mean and median edge curvature, and the fraction of negatively
# curved edges; n_edges and sd_ricci are diagnostics.
plot_ricci_profile <- function(d, metric) {
  panels <- c(mean_ricci = "mean curvature of the edges", median_ricci = "median curvature",
              frac_negative = "fraction of negatively curved edges")
  d <- d[d$statistic %in% names(panels), ]
  d$panel <- factor(panels[d$statistic], levels = panels)
  profile_plot(d, "Curvature of the k-nearest-neighbour graph", NULL, facet = "panel", hline = 0, ncol = 3,
               subtitle = "Ollivier-Ricci curvature of each edge (Ollivier 2009): positive inside clusters, negative on edges that bridge them")
}

# layer_activations: width (log scale), spread and the share of silent activations and
# of dead (constant) features per layer.
plot_layer_activations <- function(d, metric) {
  w <- d[d$statistic == "n_features", ]
  key <- function(x) paste(x$model, x$step, x$layer)
  width <- stats::setNames(w$value, key(w))
  dead <- d[d$statistic == "n_constant", ]
  dead$value <- dead$value / width[key(dead)]
  w$value <- log10(w$value)
  panels <- c("width (log10 features)", "sd of the activations", "fraction of zero activations", "fraction of dead (constant) features")
  d <- rbind(transform_stat(w, panels[1]), transform_stat(d[d$statistic == "sd", ], panels[2]),
             transform_stat(d[d$statistic == "frac_zero", ], panels[3]), transform_stat(dead, panels[4]))
  d$panel <- factor(d$panel, levels = panels)
  profile_plot(d, "Layer activations", NULL, facet = "panel", ncol = 2,
               subtitle = "size and health of each layer on the stimuli")
}

transform_stat <- function(d, panel) {
  d <- d[, intersect(c("model", "step", "layer", "statistic", "value"), names(d))]
  d$panel <- rep(panel, nrow(d))
  d
}

# fiber_bundle_test / embedding_singularities: rejection maps, layer x checkpoint (or
# model): the points that reject, as a count (fiber bundle) or share of the stimuli.
plot_rejection_map <- function(d, metric) {
  if (metric == "embedding_singularities") {
    n <- d[d$statistic == "n_points", ]
    d <- d[d$statistic == "fraction", ]
    key <- function(x) paste(x$model, x$step, x$layer)
    d$label <- format(round(d$value * stats::setNames(n$value, key(n))[key(d)]))
    d$panel <- "singular points: the fiber-bundle hypothesis is rejected there"
    fill <- "share of\nstimuli"
    title <- "Embedding singularities"
    sub <- "Robinson et al. (2025): stimuli whose local dimension grows with the radius (after correction across points); colour: share of the stimuli, numbers: count"
  } else {
    d <- d[grepl(":n_reject$", d$statistic), ]
    hyp <- sub(":n_reject$", "", d$statistic)
    d$panel <- ifelse(hyp == "manifold", "manifold hypothesis", ifelse(hyp == "fiber_bundle", "fiber-bundle hypothesis", hyp))
    d$label <- format(d$value)
    fill <- "points\nrejecting"
    title <- "Fiber-bundle test: rejection map"
    sub <- "Robinson et al. (2025): number of stimuli whose neighbourhood rejects each hypothesis (after correction across points)"
  }
  d <- d[!is.na(d$layer), ]
  d$layer <- layer_factor(d$layer)
  u <- unit_style(d)
  d <- u$data
  d$.row <- unit_labels(d, u, rows = TRUE)
  ggplot2::ggplot(d, ggplot2::aes(.data$layer, .data$.row, fill = .data$value)) +
    ggplot2::geom_tile(colour = "white", linewidth = 0.6) +
    ggplot2::geom_text(ggplot2::aes(label = .data$label, colour = .data$value > stats::median(c(0, max(.data$value, na.rm = TRUE)))),
                       size = 2.8, show.legend = FALSE) +
    ggplot2::scale_colour_manual(values = c(`TRUE` = "white", `FALSE` = "grey20")) +
    ggplot2::scale_fill_viridis_c(option = "magma", direction = -1, begin = 0.05, end = 0.9, name = fill,
                                  limits = c(0, max(d$value, 1e-12, na.rm = TRUE))) +
    layer_x_scale(expand = c(0, 0)) + ggplot2::scale_y_discrete(expand = c(0, 0)) +
    ggplot2::facet_wrap(ggplot2::vars(.data$panel), ncol = 1) +
    ggplot2::labs(x = "layer", y = NULL, title = title, subtitle = wrap_text(sub)) +
    theme_tensorscope(grid = FALSE) + rotate_x(nlevels(d$layer)) +
    ggplot2::theme(legend.position = "right")
}
