# Figures of the superposition family's analyzer metrics (autoplot(<ts_results>, metric)).

# feature_sparsity: bounded sparsity measures per layer, lifetime (over stimuli, per
# unit) and population (over units, per stimulus).
plot_feature_sparsity <- function(d, metric) {
  m <- regmatches(d$statistic, regexec("^(unit|stimulus)_(l0|hoyer|gini)$", d$statistic))
  ok <- lengths(m) == 3
  d <- d[ok, ]
  m <- m[ok]
  kind <- vapply(m, `[`, "", 2)
  meas <- vapply(m, `[`, "", 3)
  names_m <- c(l0 = "fraction active (L0)", hoyer = "Hoyer sparsity", gini = "Gini index")
  d$measure <- factor(names_m[meas], levels = names_m)
  d$kind <- factor(ifelse(kind == "unit", "lifetime", "population"), levels = c("lifetime", "population"))
  p <- profile_plot(d, "Sparsity of the activations", NULL,
                    subtitle = "lifetime: of each unit over the stimuli, mean over units; population: of each stimulus over the units, mean over stimuli; Hoyer and Gini: 0 = dense, 1 = one active element")
  p + ggplot2::facet_grid(ggplot2::vars(.data$kind), ggplot2::vars(.data$measure), labeller = ggplot2::label_wrap_gen(width = 22))
}

# vector_interference: mean and max |cos| between the units' directions, with the
# Welch bound (the least possible max |cos| for that many directions in that space).
plot_vector_interference <- function(d, metric) {
  wb <- d[d$statistic == "welch_bound", ]
  d <- d[d$statistic %in% c("mean_interference", "max_interference"), ]
  d$panel <- factor(ifelse(d$statistic == "mean_interference", "mean |cos| between unit directions", "max |cos|"),
                    levels = c("mean |cos| between unit directions", "max |cos|"))
  p <- profile_plot(d, "Interference between unit directions", NULL, facet = "panel",
                    subtitle = "grey dashed: the Welch bound, the smallest max |cos| possible for that many directions in that dimension (0: room for orthogonal directions)")
  wb <- wb[!is.na(wb$layer), ]
  wb$layer <- factor(as.character(wb$layer), levels = levels(p$data$layer))
  wb$panel <- factor("max |cos|", levels = levels(d$panel))
  wb$.group <- paste(wb$model, wb$step)
  p + ggplot2::geom_line(data = wb, ggplot2::aes(.data$layer, .data$value, group = .data$.group), inherit.aes = FALSE,
                         colour = "grey50", linetype = "dashed", linewidth = 0.5)
}

# superposition_regime: per 2-d weight matrix, the dimensions per feature, the mean
# feature dimensionality and the interference (with the Welch bound), over training.
plot_superposition_regime <- function(d, metric) {
  d$stat <- sub("^.*:", "", d$statistic)
  panels <- c(dims_per_feature = "dimensions per feature", mean_dimensionality = "mean feature dimensionality",
              mean_interference = "mean interference |cos|")
  wb <- d[d$stat == "welch_bound", ]
  d <- d[d$stat %in% names(panels), ]
  d$panel <- factor(panels[d$stat], levels = panels)
  d$weight <- layer_factor(d$layer)
  pal <- stats::setNames(rep_len(okabe_ito, nlevels(d$weight)), levels(d$weight))
  steps <- unique(d$step[!is.na(d$step)])
  if (length(steps) > 1) {
    ax <- step_axis(d$step)
    d$x <- ax$x(d$step)
    wb$x <- ax$x(wb$step)
    p <- ggplot2::ggplot(d, ggplot2::aes(.data$x, .data$value, colour = .data$weight, group = paste(.data$model, .data$weight))) +
      ggplot2::geom_line(linewidth = 0.6) + ggplot2::geom_point(size = 1.6) + ax$scale + ggplot2::labs(x = ax$name)
    if (nrow(wb)) {
      wb$panel <- factor(panels[["mean_interference"]], levels = panels)
      wb$weight <- factor(as.character(wb$layer), levels = levels(d$weight))
      p <- p + ggplot2::geom_line(data = wb, ggplot2::aes(group = paste(.data$model, .data$weight)), linetype = "dashed", linewidth = 0.4)
    }
  } else {
    p <- ggplot2::ggplot(d, ggplot2::aes(.data$weight, .data$value, colour = .data$weight)) +
      ggplot2::geom_point(size = 2.5) + layer_x_scale() + ggplot2::labs(x = "weight matrix")
  }
  p + ggplot2::geom_hline(data = data.frame(panel = factor(panels[[1]], levels = panels), y = 1), ggplot2::aes(yintercept = .data$y),
                          colour = "grey55", linetype = "dotted") +
    ggplot2::scale_colour_manual(values = pal, name = "weight matrix", labels = function(x) short_labels(x, 24)) +
    ggplot2::facet_wrap(if (length(unique(d$model)) > 1) c("model", "panel") else "panel", scales = "free_y",
                        labeller = ggplot2::label_wrap_gen(width = 24, multi_line = FALSE)) +
    ggplot2::labs(y = NULL, title = "Superposition in the weight matrices",
                  subtitle = wrap_text("Elhage et al. (2022): dimensions per feature m / ||W||_F^2, below 1 (dotted) features share dimensions; feature dimensionality D_i = ||W_i||^2 / sum_j (W_i-hat . W_j)^2; dashed: the Welch bound of the interference")) +
    theme_tensorscope()
}
