#' Plot predictivity results
#'
#' `type = "layers"`: the median r over targets per layer (point) with the spread over
#' targets (bar from the 25th to the 75th percentile), and the noise ceiling (dashed
#' line; the summary ceiling in r units) when there is one. `type = "targets"`: the
#' distribution of the per-target r in each layer (violin and box plot).
#'
#' @param object A `ts_predictivity` result.
#' @param type `"layers"` or `"targets"`.
#' @param ... Unused.
#' @return A ggplot object.
#' @method autoplot ts_predictivity
#' @export
#' @examples
#' set.seed(1)
#' z <- matrix(rnorm(60 * 5), 60)
#' reps <- ts_reps(list(early = matrix(rnorm(60 * 20), 60), late = z))
#' res <- predictivity(reps, z %*% matrix(rnorm(5 * 8), 5) + matrix(rnorm(60 * 8), 60))
#' autoplot(res)
#' autoplot(res, type = "targets")
autoplot.ts_predictivity <- function(object, type = c("layers", "targets"), ...) {
  type <- check_choice(type, c("layers", "targets"))
  st <- attr(object, "settings")
  sm <- summary(object)
  how <- if (st$method == "ridge") "ridge" else "PLS"
  cv <- if (st$pooled) sprintf("%d-fold CV", st$n_splits) else sprintf("%d splits", st$n_splits)
  sub <- sprintf("%s, %s, %d targets, %d stimuli", how, cv, st$n_targets, st$n_stimuli)
  if (!is.na(sm$ceiling[1])) sub <- paste0(sub, "; dashed: noise ceiling")
  if (type == "layers") {
    p <- ggplot2::ggplot(sm, ggplot2::aes(x = .data$layer, y = .data$median_r)) +
      ggplot2::geom_errorbar(ggplot2::aes(ymin = .data$r_q25, ymax = .data$r_q75), width = 0.2, colour = "grey40") +
      ggplot2::geom_point(size = 2.5, colour = "steelblue4") +
      ggplot2::labs(y = "held-out r (median over targets, bar: IQR)")
  } else {
    df <- tibble::as_tibble(structure(object, class = class(object)[-1], splits = NULL, settings = NULL,
                                      ceiling = NULL, predictions = NULL))
    p <- ggplot2::ggplot(df, ggplot2::aes(x = .data$layer, y = .data$r)) +
      ggplot2::geom_violin(fill = "grey85", colour = NA, scale = "width") +
      ggplot2::geom_boxplot(width = 0.15, outlier.size = 0.5) +
      ggplot2::labs(y = "held-out r per target")
  }
  if (!is.na(sm$ceiling[1])) {
    p <- p + ggplot2::geom_hline(yintercept = sm$ceiling[1], linetype = "dashed", colour = "firebrick")
  }
  p + ggplot2::geom_hline(yintercept = 0, colour = "grey60") +
    ggplot2::labs(x = "layer", title = "Neural predictivity", subtitle = sub) +
    theme_tensorscope(base_size = 11) +
    ggplot2::theme(axis.text.x = ggplot2::element_text(angle = 45, hjust = 1))
}

#' Plot a feature-ablation test of predictivity
#'
#' Drop of the median r per layer when the top-k, bottom-k and random k features are
#' removed; the random removals are shown with their interval.
#'
#' @param object A `ts_predictivity_ablation` result.
#' @param ... Unused.
#' @return A ggplot object.
#' @method autoplot ts_predictivity_ablation
#' @export
#' @examples
#' set.seed(1)
#' x <- matrix(rnorm(80 * 10), 80)
#' y <- x[, 1:3] %*% matrix(rnorm(9), 3) + matrix(rnorm(80 * 3, sd = 0.5), 80)
#' autoplot(predictivity_ablation(x, y, importance = c(3, 3, 3, rep(0, 7)), k = 3,
#'                                n_random = 10, alphas = c(0.1, 1, 10)))
autoplot.ts_predictivity_ablation <- function(object, ...) {
  st <- attr(object, "settings")
  df <- tibble::as_tibble(structure(object, class = class(object)[-1], draws = NULL, settings = NULL))
  df <- df[df$ablation != "none", ]
  df$ablation <- factor(df$ablation, levels = c("top", "bottom", "random"))
  ggplot2::ggplot(df, ggplot2::aes(x = .data$layer, y = .data$drop, colour = .data$ablation)) +
    ggplot2::geom_hline(yintercept = 0, colour = "grey60") +
    ggplot2::geom_errorbar(ggplot2::aes(ymin = .data$ci_lower, ymax = .data$ci_upper), width = 0.2,
                           position = ggplot2::position_dodge(width = 0.5), na.rm = TRUE) +
    ggplot2::geom_point(size = 2.5, position = ggplot2::position_dodge(width = 0.5)) +
    ggplot2::labs(x = "layer", y = "drop in median held-out r", colour = "features removed",
                  title = sprintf("Feature ablation (k = %d)", st$k),
                  subtitle = sprintf("random: mean and %g%% interval over %d draws", 100 * st$conf_level, st$n_random)) +
    theme_tensorscope(base_size = 11) +
    ggplot2::theme(axis.text.x = ggplot2::element_text(angle = 45, hjust = 1))
}
