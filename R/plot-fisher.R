# Figures of the Fisher family's analyzer metrics (autoplot(<ts_results>, metric)).

# grouped_fisher: Fisher information per module (log scale), over checkpoints.
plot_grouped_fisher <- function(d, metric) {
  d <- d[d$statistic == "fisher" & d$value > 0, ]
  profile_plot(d, "Fisher information per module", "diagonal Fisher information (log scale)", y_trans = "log10",
               subtitle = "how strongly the loss on the labelled stimuli depends on each module's parameters") +
    ggplot2::labs(x = "module")
}

# fisher_pruning_masks: which modules a Fisher pruning mask keeps, per checkpoint.
plot_fisher_mask <- function(d, metric) {
  d <- d[d$statistic == "kept" & !is.na(d$layer), ]
  d$layer <- layer_factor(d$layer)
  u <- unit_style(d)
  d <- u$data
  d$.row <- unit_labels(d, u, rows = TRUE)
  d$mask <- factor(ifelse(d$value > 0, "kept", "pruned"), levels = c("kept", "pruned"))
  ggplot2::ggplot(d, ggplot2::aes(.data$layer, .data$.row, fill = .data$mask)) +
    ggplot2::geom_tile(colour = "white", linewidth = 0.8) +
    ggplot2::scale_fill_manual(values = c(kept = okabe_ito[1], pruned = "grey85"), name = NULL, drop = FALSE) +
    layer_x_scale(expand = c(0, 0)) + ggplot2::scale_y_discrete(expand = c(0, 0)) +
    ggplot2::labs(x = "module", y = NULL, title = "Fisher pruning mask",
                  subtitle = "modules kept by their Fisher information (the most informative share)") +
    theme_tensorscope(grid = FALSE) + rotate_x(nlevels(d$layer))
}
