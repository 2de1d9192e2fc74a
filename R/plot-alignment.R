#' @importFrom ggplot2 autoplot
#' @export
ggplot2::autoplot

#' Plot an RDM
#'
#' Heatmap of one or several RDMs with condition labels (several RDMs are faceted).
#' With `rank = TRUE` the dissimilarities are shown as percentiles within each RDM, the
#' usual display in RSA papers (Nili et al. 2014), which makes RDMs with different
#' scales comparable.
#'
#' @param object A `ts_rdm`.
#' @param rank Show percentiles of the dissimilarities instead of raw values.
#' @param labels Show condition labels on the axes (default: when there are at most 40).
#' @param ... Unused.
#' @return A ggplot object.
#' @method autoplot ts_rdm
#' @export
#' @examples
#' r <- rdm(matrix(rnorm(8 * 5), 8, dimnames = list(letters[1:8], NULL)))
#' autoplot(r)
autoplot.ts_rdm <- function(object, rank = FALSE, labels = NULL, ...) {
  n <- length(object$conditions)
  labels <- labels %||% (n <= 40)
  rows <- lapply(seq_len(length(object)), function(i) {
    m <- as.matrix(object, i)
    if (rank) {
      v <- m[upper.tri(m)]
      m[] <- stats::ecdf(v)(m) * 100
      diag(m) <- 0
    }
    tibble::tibble(
      rdm = object$descriptors$name[i],
      row = factor(rep(object$conditions, times = n), levels = object$conditions),
      col = factor(rep(object$conditions, each = n), levels = rev(object$conditions)),
      value = as.vector(m)
    )
  })
  df <- do.call(rbind, rows)
  df$rdm <- factor(df$rdm, levels = object$descriptors$name)
  p <- ggplot2::ggplot(df, ggplot2::aes(x = .data$row, y = .data$col, fill = .data$value)) +
    ggplot2::geom_raster() +
    ggplot2::scale_fill_viridis_c(name = if (rank) "percentile" else "dissimilarity") +
    ggplot2::coord_equal() +
    ggplot2::labs(x = NULL, y = NULL,
                  title = if (length(object) == 1) object$descriptors$name[1] else "RDMs",
                  subtitle = if (object$method != "unknown") sprintf("dissimilarity: %s", object$method)) +
    ggplot2::theme_minimal(base_size = 10) +
    ggplot2::theme(axis.text.x = ggplot2::element_text(angle = 90, hjust = 1, vjust = 0.5),
                   panel.grid = ggplot2::element_blank())
  if (!labels) {
    p <- p + ggplot2::theme(axis.text.x = ggplot2::element_blank(), axis.text.y = ggplot2::element_blank())
  }
  if (length(object) > 1) p <- p + ggplot2::facet_wrap(ggplot2::vars(.data$rdm))
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
    ggplot2::theme_minimal(base_size = 10) +
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
                    subtitle = sprintf("%d conditions, %d subject(s); bars: %g%% CI (%s bootstrap); band: noise ceiling; *: p < %g",
                                       sm$n_conditions[1], sm$n_subjects[1], 100 * st$conf_level, st$boot, alpha)) +
    ggplot2::theme_minimal(base_size = 11) +
    ggplot2::theme(axis.text.x = ggplot2::element_text(angle = 45, hjust = 1))
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
    ggplot2::theme_minimal(base_size = 10) +
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
