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
    ggplot2::theme_minimal(base_size = 11) +
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
    ggplot2::theme_minimal(base_size = 11)
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
    ggplot2::theme_minimal(base_size = 11) +
    ggplot2::theme(legend.position = "bottom")
}
