#' Plot one metric of analyze_models() results
#'
#' Draws the figure that answers the metric's question: the `plot` of its metric
#' object ([new_metric()]) when it has one (`cka_similarity`: a layer x layer heat map
#' of the last unit), otherwise per-layer metrics as profiles over the layers (in model
#' order), one line per model and checkpoint (coloured by step), one panel per
#' statistic, and metrics without layers as bars per statistic.
#'
#' @param object A [ts_results].
#' @param metric The metric to plot (see [ts_metrics()]; names or aliases).
#' @param statistics Statistics to show (default: up to 6 of them).
#' @param ... Unused.
#' @return A ggplot.
#' @method autoplot ts_results
#' @export
#' @examples
#' sim <- simulate_model_and_brain(n_stimuli = 40)
#' res <- analyze_models(sim$reps, metrics = "effective_rank")
#' autoplot(res, "effective_rank")
autoplot.ts_results <- function(object, metric, statistics = NULL, ...) {
  d <- get_metric(object, metric)
  metric <- resolve_metric_names(metric, arg = "metric")
  if (!nrow(d)) ts_abort("Metric {.val {metric}} has no values in {.arg object} (skipped or failed).", "empty")
  if (!is.null(statistics)) d <- d[d$statistic %in% statistics, ]
  draw <- get_metric_object(metric)$plot %||% plot_metric_profile
  draw(d, metric)
}

# The default plot of a metric: profiles over layers, or bars when it has no layers.
plot_metric_profile <- function(d, metric) {
  stats <- utils::head(unique(d$statistic), 6)
  d <- d[d$statistic %in% stats, ]
  d$unit <- paste(d$model, d$step)
  d$step_f <- factor(ifelse(is.na(d$step), "-", format(d$step)), levels = unique(ifelse(is.na(d$step), "-", format(d$step))))
  if (all(is.na(d$layer))) {
    return(ggplot2::ggplot(d, ggplot2::aes(.data$statistic, .data$value, fill = .data$step_f)) +
             ggplot2::geom_col(position = "dodge") + ggplot2::facet_wrap(~model, scales = "free_y") +
             ggplot2::labs(x = NULL, fill = "step", title = metric) + ggplot2::theme_minimal() +
             ggplot2::theme(axis.text.x = ggplot2::element_text(angle = 45, hjust = 1)))
  }
  d <- d[!is.na(d$layer), ]
  d$layer <- droplevels(as_layer_factor(d$layer))
  ggplot2::ggplot(d, ggplot2::aes(.data$layer, .data$value, colour = .data$step_f, group = .data$unit)) +
    ggplot2::geom_line() + ggplot2::geom_point() +
    ggplot2::facet_wrap(~statistic, scales = "free_y") +
    ggplot2::labs(x = "layer", y = NULL, colour = "step", title = metric) + ggplot2::theme_minimal() +
    ggplot2::theme(axis.text.x = ggplot2::element_text(angle = 45, hjust = 1))
}

as_layer_factor <- function(x) if (is.factor(x)) x else factor(x, levels = unique(x))

# cka_similarity: the layer x layer CKA matrix of the last unit.
plot_cka_matrix <- function(d, metric) plot_layer_pairs(d, metric, "cka", "CKA", limits = c(0, 1))

# Heat map of a layer x layer metric (statistic "<prefix>:<layer_y>") at the last
# checkpoint of the last model.
plot_layer_pairs <- function(d, metric, prefix, fill_name, limits = NULL, direction = 1) {
  last <- d[d$model == d$model[nrow(d)] & d$step %in% d$step[nrow(d)], ]
  lv <- unique(as.character(last$layer))
  last$layer_y <- factor(sub(paste0("^", prefix, ":"), "", last$statistic), levels = lv)
  last$layer <- factor(as.character(last$layer), levels = lv)
  ggplot2::ggplot(last, ggplot2::aes(.data$layer, .data$layer_y, fill = .data$value)) +
    ggplot2::geom_tile() + ggplot2::scale_fill_viridis_c(limits = limits, name = fill_name, direction = direction) +
    ggplot2::coord_equal() + ggplot2::labs(x = NULL, y = NULL, title = metric,
                                           subtitle = paste(last$model[1], "step", last$step[1])) +
    ggplot2::theme_minimal() + ggplot2::theme(axis.text.x = ggplot2::element_text(angle = 45, hjust = 1))
}
