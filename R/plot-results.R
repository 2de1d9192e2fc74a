#' Plot one metric of analyze_models() results
#'
#' Per-layer metrics are drawn as profiles over the layers (in model order), one line
#' per model and checkpoint (coloured by step), one panel per statistic;
#' `cka_similarity` as a layer x layer heat map (last unit); metrics without layers as
#' bars per statistic.
#'
#' @param object A [ts_results].
#' @param metric The metric to plot (see [ts_metrics()]).
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
  if (!nrow(d)) ts_abort("Metric {.val {metric}} has no values in {.arg object} (skipped or failed).", "empty")
  if (metric == "cka_similarity") {
    last <- d[d$model == d$model[nrow(d)] & d$step %in% d$step[nrow(d)], ]
    lv <- unique(last$layer)
    last$layer_y <- factor(sub("^cka:", "", last$statistic), levels = lv)
    last$layer <- factor(last$layer, levels = lv)
    return(ggplot2::ggplot(last, ggplot2::aes(.data$layer, .data$layer_y, fill = .data$value)) +
             ggplot2::geom_tile() + ggplot2::scale_fill_viridis_c(limits = c(0, 1), name = "CKA") +
             ggplot2::coord_equal() + ggplot2::labs(x = NULL, y = NULL, title = "cka_similarity",
                                                    subtitle = paste(last$model[1], "step", last$step[1])) +
             ggplot2::theme_minimal() + ggplot2::theme(axis.text.x = ggplot2::element_text(angle = 45, hjust = 1)))
  }
  stats <- statistics %||% utils::head(unique(d$statistic), 6)
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
  d$layer <- factor(d$layer, levels = unique(d$layer))
  ggplot2::ggplot(d, ggplot2::aes(.data$layer, .data$value, colour = .data$step_f, group = .data$unit)) +
    ggplot2::geom_line() + ggplot2::geom_point() +
    ggplot2::facet_wrap(~statistic, scales = "free_y") +
    ggplot2::labs(x = "layer", y = NULL, colour = "step", title = metric) + ggplot2::theme_minimal() +
    ggplot2::theme(axis.text.x = ggplot2::element_text(angle = 45, hjust = 1))
}
