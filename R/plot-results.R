# autoplot() of analyze_models() results: the dispatch to each metric's own figure
# (the `plot` of its metric object), the shared theme, palettes and the helpers the
# per-family figures (R/plot-<family>.R) are built from.

#' Plot one metric of analyze_models() results
#'
#' Draws the figure that answers the metric's question: the `plot` of its metric
#' object ([new_metric()]). Every built-in metric has one (see the list below);
#' a metric registered without one gets a profile of its statistics over the layers
#' (in model order), or bars for metrics without layers.
#'
#' The built-in figures, all with layers in model order, models in colour-blind-safe
#' colours (Okabe & Ito) and checkpoints as a gradient (viridis) when there are several:
#'
#' * `rsa_similarity`: RSA and CKA of every layer to each neural data set, one panel per
#'   area, with the bootstrap confidence interval of the RSA and its noise ceiling
#'   (shaded band, lower to upper bound); `type = "rdms"`: the layer RDMs of one model
#'   (`model =`, default the best-ranked one) at its last checkpoint and the neural
#'   RDMs, sorted by stimulus category (`labels` of [analyze_models()]); `type = "mds"`:
#'   a second-order MDS of the layer RDMs of every model's last checkpoint and the
#'   neural RDMs (distance 1 - Spearman r).
#' * `cka_similarity`, `shape_distance`: layer x layer heat maps, one per checkpoint (and
#'   model) on one colour scale; `cka_trajectory`: CKA of each layer with its final
#'   state over training (log step axis when the steps span decades);
#'   `block_cka_gap`: the blocks the layers fall into, per checkpoint.
#' * `effective_rank`, `participation_ratio`, `ricci_curvature`, `layer_activations`,
#'   `feature_sparsity`, `vector_interference` (with the Welch bound): per-layer profiles.
#' * `fiber_bundle_test`, `embedding_singularities`: rejection maps (layer x
#'   checkpoint, points that reject).
#' * `induction_head_strength`, `attention_entropy`: layer x head heat maps;
#'   `composition_scores`: source x destination head heat maps; `attention_flow_patterns`:
#'   query x key maps.
#' * `superposition_regime`: dimensions per feature and interference per weight matrix;
#'   `grouped_fisher`: Fisher information per module; `fisher_pruning_masks`: the
#'   kept / pruned map.
#'
#' @param object A [ts_results].
#' @param metric The metric to plot (see [ts_metrics()]; names or aliases).
#' @param statistics Statistics to show (default: those the figure uses).
#' @param ... Passed to the metric's figure when it takes more arguments (`type` and
#'   `model` of `rsa_similarity`).
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
  # figures that need more than the metric's table (RDMs, options) declare `...`
  if ("..." %in% names(formals(draw))) draw(d, metric, results = object, ...) else draw(d, metric)
}

#' A ggplot2 theme for figures in papers
#'
#' The theme of every tensorscope figure: white background, light horizontal grid,
#' axis lines, bold left-aligned panel titles, legend at the bottom.
#'
#' @param base_size Base font size in points.
#' @param grid Keep the light major grid lines (`FALSE` for heat maps).
#' @return A ggplot2 theme.
#' @export
#' @examples
#' sim <- simulate_model_and_brain(n_stimuli = 40)
#' autoplot(effective_rank(sim$reps)) + theme_tensorscope()
theme_tensorscope <- function(base_size = 11, grid = TRUE) {
  t <- ggplot2::theme_bw(base_size = base_size) +
    ggplot2::theme(
      panel.border = ggplot2::element_blank(),
      axis.line = ggplot2::element_line(colour = "grey30", linewidth = 0.3),
      axis.ticks = ggplot2::element_line(colour = "grey30", linewidth = 0.3),
      panel.grid.minor = ggplot2::element_blank(),
      panel.grid.major = ggplot2::element_line(colour = "grey92", linewidth = 0.3),
      strip.background = ggplot2::element_blank(),
      strip.text = ggplot2::element_text(face = "bold", hjust = 0, size = ggplot2::rel(0.95)),
      plot.title = ggplot2::element_text(face = "bold", size = ggplot2::rel(1.1)),
      plot.title.position = "plot",
      plot.caption.position = "plot",
      plot.subtitle = ggplot2::element_text(colour = "grey30", size = ggplot2::rel(0.85)),
      plot.caption = ggplot2::element_text(colour = "grey40", size = ggplot2::rel(0.75), hjust = 0),
      legend.position = "bottom",
      legend.key.height = ggplot2::unit(0.8, "lines"))
  if (!grid) t <- t + ggplot2::theme(panel.grid = ggplot2::element_blank(), axis.line = ggplot2::element_blank())
  t
}

# Okabe & Ito (2008): distinguishable under every common colour-vision deficiency.
okabe_ito <- c("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")

# Wrapped subtitles and captions: a sentence never runs past the figure's edge.
wrap_text <- function(x, width = 95) if (is.null(x)) NULL else paste(strwrap(x, width), collapse = "\n")

# Layer labels that fit under an axis. When one is too long, module paths keep their first part, their
# indices and their last part (blocks.0.attn.hook_pattern -> blocks.0.hook_pattern); if
# one is still too long, all of them lose the first part (0.hook_pattern), so that the
# labels of one axis stay alike. What is still too long (or would no longer be unique)
# is cut from the left, keeping the informative end.
short_labels <- function(x, width = 22) {
  x <- as.character(x)
  if (!any(nchar(x) > width, na.rm = TRUE)) return(x)
  long <- !is.na(x) & lengths(strsplit(x, ".", fixed = TRUE)) >= 3  # all module paths, alike
  stage <- function(drop_first) {
    out <- x
    for (i in which(long)) {
      seg <- strsplit(x[i], ".", fixed = TRUE)[[1]]
      n <- length(seg)
      if (n < 3) next
      keep <- c(if (!drop_first) 1, which(grepl("^[0-9]+$", seg[-c(1, n)])) + 1, n)
      out[i] <- paste(seg[keep], collapse = ".")
    }
    out
  }
  out <- stage(FALSE)
  if (any(nchar(out[long]) > width)) out <- stage(TRUE)
  long <- long | (!is.na(x) & nchar(x) > width)
  dup <- long & (out %in% out[duplicated(out)])
  out[dup] <- x[dup]
  cut <- !is.na(out) & nchar(out) > width
  out[cut] <- paste0("\u2026", substring(out[cut], nchar(out[cut]) - width + 2))
  out
}

# Values out of a colour scale's limits (a CKA of 1 + 1e-15) take the nearest colour.
squish <- function(x, range = c(0, 1), only.finite = TRUE) pmin(pmax(x, range[1]), range[2])

layer_x_scale <- function(...) ggplot2::scale_x_discrete(labels = function(x) short_labels(x), ...)

rotate_x <- function(n) {
  if (n > 6) ggplot2::theme(axis.text.x = ggplot2::element_text(angle = 45, hjust = 1, vjust = 1)) else NULL
}

# The layers of a metric's rows as a factor in model order, without the levels other
# metrics use (weights, blocks).
layer_factor <- function(x) droplevels(if (is.factor(x)) x else factor(x, levels = unique(x)))

# The units of a table (model x step) and how to show them: `colour` is the column a
# figure maps to colour (`.unit`: a model, or a step as an ordered factor drawn as a
# viridis gradient when a model has several), `facet_model` whether models need panels
# of their own (several models with several steps), `scale` the colour scale and `name`
# its title.
unit_style <- function(d, aesthetic = "colour") {
  d$.step <- ifelse(is.na(d$step), "-", format(d$step, trim = TRUE, scientific = FALSE))
  steps <- sort(unique(d$step[!is.na(d$step)]))
  d$.step <- factor(d$.step, levels = c(if (anyNA(d$step)) "-", format(steps, trim = TRUE, scientific = FALSE)))
  n_models <- length(unique(d$model))
  # steps are a gradient only when a model has several (models of one step each, e.g.
  # an untrained and a trained network, are models)
  per_model <- tapply(as.character(d$.step), d$model, function(v) length(unique(v)))
  n_steps <- if (any(per_model > 1)) length(unique(d$.step)) else 1L
  if (n_steps > 1) {
    d$.unit <- d$.step
    scale <- if (aesthetic == "colour") ggplot2::scale_colour_viridis_d(end = 0.9, direction = -1) else ggplot2::scale_fill_viridis_d(end = 0.9, direction = -1)
    name <- "step"
  } else {
    d$.unit <- factor(d$model, levels = unique(d$model))
    pal <- stats::setNames(rep_len(okabe_ito, n_models), levels(d$.unit))
    scale <- if (aesthetic == "colour") ggplot2::scale_colour_manual(values = pal) else ggplot2::scale_fill_manual(values = pal)
    name <- "model"
  }
  d$.group <- paste(d$model, d$.step, sep = "\r")
  list(data = d, scale = scale, name = name, facet_model = n_models > 1 && n_steps > 1,
       legend = n_models > 1 || n_steps > 1, n_models = n_models, n_steps = n_steps)
}

# One label per unit: "step 200", the model, or both; levels ordered by model and step
# (reversed for the rows of a heat map, which ggplot2 draws bottom-up).
unit_labels <- function(d, u, rows = FALSE) {
  lab <- if (u$n_steps > 1) paste("step", d$.step) else d$model
  if (u$n_models > 1 && u$n_steps > 1) lab <- paste(d$model, lab)
  lv <- unique(lab[order(d$model, d$step)])
  factor(lab, levels = if (rows) rev(lv) else lv)
}

# A profile over the layers: one line per unit (model x step), in panels `facet`.
# `d` has `layer`, `value` and the columns named in `facet` (and optionally `.lo`,
# `.hi`: a range drawn as a bar); `ylab` the axis title.
profile_plot <- function(d, title, ylab, subtitle = NULL, facet = NULL, hline = NULL, free_y = TRUE,
                         caption = NULL, ncol = NULL, y_trans = "identity") {
  d <- d[!is.na(d$layer) & is.finite(d$value), ]
  d$layer <- layer_factor(d$layer)
  u <- unit_style(d)
  d <- u$data
  p <- ggplot2::ggplot(d, ggplot2::aes(.data$layer, .data$value, colour = .data$.unit, group = .data$.group))
  if (!is.null(hline)) p <- p + ggplot2::geom_hline(yintercept = hline, colour = "grey55", linetype = "dashed", linewidth = 0.4)
  p <- p + ggplot2::geom_line(linewidth = 0.6)
  if (all(c(".lo", ".hi") %in% names(d))) {
    p <- p + ggplot2::geom_linerange(data = d[is.finite(d$.lo) & is.finite(d$.hi), ],
                                     ggplot2::aes(ymin = .data$.lo, ymax = .data$.hi), linewidth = 0.4, alpha = 0.7)
  }
  p <- p + ggplot2::geom_point(size = 1.8) + u$scale +
    layer_x_scale() + ggplot2::scale_y_continuous(trans = y_trans) +
    ggplot2::labs(x = "layer", y = ylab, colour = u$name, title = title, subtitle = wrap_text(subtitle),
                  caption = wrap_text(caption, 110)) +
    theme_tensorscope() + rotate_x(nlevels(d$layer))
  if (!u$legend) p <- p + ggplot2::guides(colour = "none")
  facets <- c(if (u$facet_model) "model", facet)
  if (length(facets)) {
    # panel titles wrap to the width of a panel (about 70 characters across the figure)
    n_panels <- nrow(unique(d[facets]))
    cols <- ncol %||% ggplot2::wrap_dims(n_panels)[2]
    p <- p + ggplot2::facet_wrap(facets, scales = if (free_y) "free_y" else "fixed", ncol = ncol,
                                 labeller = ggplot2::label_wrap_gen(width = max(12, floor(70 / cols)), multi_line = FALSE))
  }
  p
}

# The default figure of a metric registered without one: profiles over the layers,
# or bars when it has no layers.
plot_metric_profile <- function(d, metric) {
  stats <- utils::head(unique(d$statistic), 6)
  d <- d[d$statistic %in% stats, ]
  if (all(is.na(d$layer))) {
    u <- unit_style(d, "fill")
    d <- u$data
    p <- ggplot2::ggplot(d, ggplot2::aes(.data$statistic, .data$value, fill = .data$.unit)) +
      ggplot2::geom_col(position = ggplot2::position_dodge(preserve = "single")) + u$scale +
      ggplot2::scale_x_discrete(labels = function(x) short_labels(x, 20)) +
      ggplot2::labs(x = NULL, y = NULL, fill = u$name, title = metric) + theme_tensorscope() + rotate_x(length(stats) * 2)
    if (!u$legend) p <- p + ggplot2::guides(fill = "none")
    return(p)
  }
  d$statistic <- factor(d$statistic, levels = stats)
  profile_plot(d, metric, NULL, facet = "statistic")
}

# Heat maps of a layer x layer metric (statistic "<prefix>:<layer_y>", typed column
# `layer_y`): one panel per checkpoint (and model), one colour scale for all.
plot_layer_pairs <- function(d, metric, prefix, fill_name, title, subtitle = NULL, limits = NULL, direction = 1,
                             max_panels = 12) {
  d$layer_y <- if ("layer_y" %in% names(d)) as.character(d$layer_y) else sub(paste0("^", prefix, ":"), "", d$statistic)
  lv <- levels(layer_factor(d$layer))
  d$layer <- factor(as.character(d$layer), levels = lv)
  d$layer_y <- factor(d$layer_y, levels = rev(lv))
  u <- unit_style(d)
  d <- u$data
  d$.panel <- unit_labels(d, u)
  panels <- levels(d$.panel)
  if (length(panels) > max_panels) {
    keep <- panels[unique(round(seq(1, length(panels), length.out = max_panels)))]
    subtitle <- paste0(subtitle, sprintf(" (%d of %d checkpoints shown)", length(keep), length(panels)))
    panels <- keep
    d <- d[d$.panel %in% panels, ]
  }
  d$.panel <- factor(d$.panel, levels = panels)
  n <- length(lv)
  ggplot2::ggplot(d, ggplot2::aes(.data$layer, .data$layer_y, fill = .data$value)) +
    ggplot2::geom_raster() +
    ggplot2::scale_fill_viridis_c(limits = limits %||% range(d$value, na.rm = TRUE), name = fill_name, direction = direction,
                                  oob = squish) +
    ggplot2::scale_x_discrete(labels = function(x) short_labels(x), expand = c(0, 0)) +
    ggplot2::scale_y_discrete(labels = function(x) short_labels(x), expand = c(0, 0)) +
    ggplot2::coord_equal() +
    ggplot2::facet_wrap(ggplot2::vars(.data$.panel), ncol = min(length(panels), if (length(panels) > 4) 3 else 4)) +
    ggplot2::labs(x = NULL, y = NULL, title = title, subtitle = wrap_text(subtitle)) +
    theme_tensorscope(base_size = if (length(panels) > 2) 9 else 10, grid = FALSE) +
    ggplot2::theme(axis.text.x = ggplot2::element_text(angle = 90, hjust = 1, vjust = 0.5),
                   legend.position = "right", legend.key.height = ggplot2::unit(1.5, "lines")) +
    if (n > 16) ggplot2::theme(axis.text = ggplot2::element_text(size = 6))
}
