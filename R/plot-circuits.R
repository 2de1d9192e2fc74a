# autoplot() methods for the circuits family (R/circuits.R).

heatmap_theme <- function() theme_tensorscope(base_size = 10, grid = FALSE)

#' Plot head scores
#'
#' Layer x head heatmaps of [head_scores()], one panel per score type, with the values
#' printed in the cells.
#'
#' @param object A `ts_head_scores` result.
#' @param ... Unused.
#' @return A ggplot object.
#' @method autoplot ts_head_scores
#' @export
#' @examples
#' toy <- readRDS(system.file("extdata", "induction_circuits.rds", package = "tensorscope"))
#' autoplot(head_scores(toy$trained$patterns, seq_len = 11, prefix = 1))
autoplot.ts_head_scores <- function(object, ...) {
  df <- tibble::as_tibble(structure(object, class = class(object)[-1], settings = NULL))
  st <- attr(object, "settings")
  ggplot2::ggplot(df, ggplot2::aes(x = factor(.data$head), y = factor(.data$layer, levels = rev(sort(unique(.data$layer)))),
                                   fill = .data$score)) +
    ggplot2::geom_tile() +
    ggplot2::geom_text(ggplot2::aes(label = sprintf("%.2f", .data$score), colour = .data$score > 0.6),
                       size = 3, show.legend = FALSE) +
    ggplot2::scale_colour_manual(values = c(`TRUE` = "black", `FALSE` = "white")) +
    ggplot2::scale_fill_viridis_c(name = "score", limits = c(0, 1)) +
    ggplot2::facet_wrap(ggplot2::vars(.data$type)) +
    ggplot2::labs(x = "head", y = "layer", title = "Attention head scores",
                  subtitle = sprintf("%d sequence(s): prefix %d + 2 x %d repeated tokens", st$n_seqs, st$prefix, st$seq_len)) +
    heatmap_theme()
}

#' Plot attention entropy
#'
#' Layer x head heatmap of the mean attention entropy from [attention_entropy()].
#'
#' @param object A `ts_attention_entropy` result.
#' @param ... Unused.
#' @return A ggplot object.
#' @method autoplot ts_attention_entropy
#' @export
#' @examples
#' toy <- readRDS(system.file("extdata", "induction_circuits.rds", package = "tensorscope"))
#' autoplot(attention_entropy(toy$trained$patterns))
autoplot.ts_attention_entropy <- function(object, ...) {
  df <- tibble::as_tibble(structure(object, class = class(object)[-1]))
  ggplot2::ggplot(df, ggplot2::aes(x = factor(.data$head), y = factor(.data$layer, levels = rev(sort(unique(.data$layer)))),
                                   fill = .data$mean)) +
    ggplot2::geom_tile() +
    ggplot2::geom_text(ggplot2::aes(label = sprintf("%.2f", .data$mean)), size = 3, colour = "white") +
    ggplot2::scale_fill_viridis_c(name = "entropy\n(nats)") +
    ggplot2::labs(x = "head", y = "layer", title = "Mean attention entropy over queries") +
    heatmap_theme()
}

#' Plot one head's attention pattern
#'
#' Query x key heatmap of one head of one layer on one sequence, with token ids on the
#' axes when the patterns carry tokens and are short.
#'
#' @param object A `ts_attention` object.
#' @param layer,head,sequence Which pattern (1-based).
#' @param ... Unused.
#' @return A ggplot object.
#' @method autoplot ts_attention
#' @export
#' @examples
#' toy <- readRDS(system.file("extdata", "induction_circuits.rds", package = "tensorscope"))
#' pat <- attention_patterns(toy$trained$patterns, tokens = toy$trained$tokens)
#' autoplot(pat, layer = 2, head = 2)
autoplot.ts_attention <- function(object, layer = 1, head = 1, sequence = 1, ...) {
  d <- pattern_dims(object)
  layer <- check_count(layer, min = 1)
  head <- check_count(head, min = 1)
  sequence <- check_count(sequence, min = 1)
  if (layer > d$layers || head > d$heads || sequence > d$seqs) {
    ts_abort("No pattern for {.arg layer} = {layer}, {.arg head} = {head}, {.arg sequence} = {sequence}: there are {d$layers} layer{?s}, {d$heads} head{?s} and {d$seqs} sequence{?s}.",
             "argument")
  }
  A <- object$patterns[, , head, sequence, layer]
  df <- tibble::tibble(query = rep(seq_len(d$nq), d$nk), key = rep(seq_len(d$nk), each = d$nq), attention = as.vector(A))
  p <- ggplot2::ggplot(df, ggplot2::aes(x = .data$key, y = .data$query, fill = .data$attention)) +
    ggplot2::geom_raster() +
    ggplot2::scale_y_reverse() +
    ggplot2::scale_fill_viridis_c(name = "attention", limits = c(0, 1)) +
    ggplot2::coord_equal() +
    ggplot2::labs(x = "key position", y = "query position",
                  title = sprintf("Attention pattern: layer %s, head %d", object$layers[layer], head),
                  subtitle = sprintf("sequence %d", sequence)) +
    heatmap_theme()
  tok <- object$tokens
  if (!is.null(tok) && d$nk <= 40) {
    lab <- as.character(tok[sequence, ])
    p <- p + ggplot2::scale_x_continuous(breaks = seq_len(d$nk), labels = lab, expand = c(0, 0)) +
      ggplot2::theme(axis.text.x = ggplot2::element_text(angle = 90, size = 6))
  }
  p
}

#' Plot composition scores
#'
#' Source head x destination head heatmap of [composition_scores()], one panel per
#' type; the subtitle gives the random baseline.
#'
#' @param object A `ts_composition` result.
#' @param ... Unused.
#' @return A ggplot object.
#' @method autoplot ts_composition
#' @export
#' @examples
#' toy <- readRDS(system.file("extdata", "induction_circuits.rds", package = "tensorscope"))
#' w <- toy$trained
#' autoplot(composition_scores(w$W_Q, w$W_K, w$W_V, w$W_O, n_baseline = 20))
autoplot.ts_composition <- function(object, ...) {
  df <- tibble::as_tibble(structure(object, class = class(object)[-1], settings = NULL))
  src <- unique(df[order(df$src_layer, df$src_head), c("src_layer", "src_head")])
  dst <- unique(df[order(df$dst_layer, df$dst_head), c("dst_layer", "dst_head")])
  df$src <- factor(sprintf("L%dH%d", df$src_layer, df$src_head), levels = rev(sprintf("L%dH%d", src$src_layer, src$src_head)))
  df$dst <- factor(sprintf("L%dH%d", df$dst_layer, df$dst_head), levels = sprintf("L%dH%d", dst$dst_layer, dst$dst_head))
  base <- tapply(df$baseline, df$type, mean)
  base <- base[!is.na(base)]
  sub <- if (length(base)) paste0("random baseline: ", paste(sprintf("%s %.3f", names(base), base), collapse = ", ")) else NULL
  ggplot2::ggplot(df, ggplot2::aes(x = .data$dst, y = .data$src, fill = .data$score)) +
    ggplot2::geom_tile() +
    ggplot2::scale_fill_viridis_c(name = "score", limits = c(0, NA)) +
    ggplot2::facet_wrap(ggplot2::vars(.data$type), labeller = ggplot2::labeller(type = function(t) paste0(toupper(t), "-composition"))) +
    ggplot2::labs(x = "destination head", y = "source head", title = "Composition scores", subtitle = sub) +
    heatmap_theme() +
    ggplot2::theme(axis.text.x = ggplot2::element_text(angle = 90, hjust = 1, vjust = 0.5))
}

# ---- figures of the analyzer's circuit metrics (autoplot(<ts_results>, metric)) ----

# Panels of a head-level heat map: one per checkpoint (and model).
head_panels <- function(d) {
  u <- unit_style(d)
  d <- u$data
  d$.panel <- unit_labels(d, u)
  d
}

head_heatmap <- function(d, fill, title, subtitle, limits = NULL, rows = NULL, values = TRUE) {
  d <- head_panels(d)
  d$layer <- factor(as.character(d$layer), levels = rev(levels(layer_factor(d$layer))))
  p <- ggplot2::ggplot(d, ggplot2::aes(factor(.data$head), .data$layer, fill = .data$value)) +
    ggplot2::geom_tile(colour = "white", linewidth = 0.5) +
    ggplot2::scale_fill_viridis_c(name = fill, limits = limits) +
    ggplot2::scale_y_discrete(labels = function(x) short_labels(x, 14), expand = c(0, 0)) +
    ggplot2::scale_x_discrete(expand = c(0, 0)) +
    ggplot2::labs(x = "head", y = "layer", title = title, subtitle = wrap_text(subtitle)) +
    theme_tensorscope(base_size = 10, grid = FALSE) + ggplot2::theme(legend.position = "right")
  if (values && length(unique(d$head)) * nlevels(d$layer) <= 48) {
    mid <- mean(range(limits %||% d$value, na.rm = TRUE))
    p <- p + ggplot2::geom_text(ggplot2::aes(label = sprintf("%.2f", .data$value), colour = .data$value > mid), size = 2.4,
                                show.legend = FALSE) +
      ggplot2::scale_colour_manual(values = c(`TRUE` = "black", `FALSE` = "white"))
  }
  if (is.null(rows)) p + ggplot2::facet_wrap(ggplot2::vars(.data$.panel), ncol = min(nlevels(d$.panel), 3))
  else p + ggplot2::facet_grid(ggplot2::vars(.data[[rows]]), ggplot2::vars(.data$.panel))
}

# induction_head_strength: induction and previous-token score of every head.
plot_head_scores <- function(d, metric) {
  d$type <- if (!is.null(d[["type"]])) as.character(d$type) else sub("^head[0-9]+:", "", d$statistic)
  d$head <- if (!is.null(d[["head"]])) d$head else as.integer(sub("^head([0-9]+):.*$", "\\1", d$statistic))
  names_t <- c(induction = "induction score", previous_token = "previous-token score", duplicate_token = "duplicate-token score")
  d$type <- factor(ifelse(d$type %in% names(names_t), names_t[d$type], d$type), levels = unique(c(names_t, d$type)))
  d$type <- droplevels(d$type)
  head_heatmap(d, "score", "Induction and previous-token heads", limits = c(0, 1), rows = "type",
               subtitle = "attention of each head on repeated random tokens (Olsson et al. 2022): induction = to the token after the earlier copy; previous-token = to the preceding position")
}

# attention_entropy: mean entropy of each head's attention over queries.
plot_attention_entropy <- function(d, metric) {
  if (!is.null(d[["summary"]])) d <- d[d$summary == "mean", ]
  d$head <- if (!is.null(d[["head"]])) d$head else as.integer(sub("^head([0-9]+):.*$", "\\1", d$statistic))
  if (!is.null(d[["query"]])) d <- stats::aggregate(value ~ model + step + layer + head, data = d, FUN = mean, na.action = stats::na.pass)
  head_heatmap(d, "entropy\n(nats)", "Attention entropy per head",
               subtitle = "mean over queries and sequences of the entropy of each head's attention: low = focused on few tokens, log(keys) = uniform")
}

# composition_scores: Q-, K-, V-composition of every source head with every later head.
plot_composition_map <- function(d, metric) {
  if (is.null(d[["src_layer"]])) ts_abort("The composition scores have no head columns (a report from an older version?).", "empty")
  d$src <- sprintf("L%dH%d", d$src_layer, d$src_head)
  d$dst <- sprintf("L%dH%d", d$dst_layer, d$dst_head)
  so <- unique(d[order(d$src_layer, d$src_head), "src", drop = TRUE])
  do <- unique(d[order(d$dst_layer, d$dst_head), "dst", drop = TRUE])
  d$src <- factor(d$src, levels = rev(so))
  d$dst <- factor(d$dst, levels = do)
  d$type <- factor(paste0(toupper(d$type), "-composition"), levels = paste0(c("Q", "K", "V"), "-composition"))
  d$type <- droplevels(d$type)
  base <- tapply(d$baseline, d$type, mean, na.rm = TRUE)
  base <- base[is.finite(base)]
  d <- head_panels(d)
  ggplot2::ggplot(d, ggplot2::aes(.data$dst, .data$src, fill = .data$value)) +
    ggplot2::geom_tile(colour = "white", linewidth = 0.3) +
    ggplot2::scale_fill_viridis_c(name = "score", limits = c(0, NA)) +
    ggplot2::scale_x_discrete(expand = c(0, 0)) + ggplot2::scale_y_discrete(expand = c(0, 0)) +
    ggplot2::coord_equal() +
    ggplot2::facet_grid(ggplot2::vars(.data$type), ggplot2::vars(.data$.panel)) +
    ggplot2::labs(x = "destination head", y = "source head", title = "Composition between heads",
                  subtitle = wrap_text(paste0("Elhage et al. (2021): ||OV_src QK_dst||_F / (||OV_src||_F ||QK_dst||_F)",
                                              if (length(base)) paste0("; random baseline ", paste(sprintf("%s %.3f", substr(names(base), 1, 1), base), collapse = ", "))))) +
    theme_tensorscope(base_size = 9, grid = FALSE) +
    ggplot2::theme(axis.text.x = ggplot2::element_text(angle = 90, hjust = 1, vjust = 0.5), legend.position = "right")
}

# attention_flow_patterns: attention rollout / flow from each input position (key) to
# each position (query), mean over sequences.
plot_attention_flow <- function(d, metric) {
  d <- head_panels(d)
  ggplot2::ggplot(d, ggplot2::aes(.data$key, .data$query, fill = .data$value)) +
    ggplot2::geom_raster() +
    ggplot2::scale_y_reverse(expand = c(0, 0)) + ggplot2::scale_x_continuous(expand = c(0, 0)) +
    ggplot2::scale_fill_viridis_c(name = "flow\n(sqrt scale)", trans = "sqrt", limits = c(0, NA)) +
    ggplot2::coord_equal() +
    ggplot2::facet_wrap(ggplot2::vars(.data$.panel), ncol = min(nlevels(d$.panel), 3)) +
    ggplot2::labs(x = "input position (key)", y = "position (query)", title = "Attention flow from the inputs",
                  subtitle = wrap_text("attention rollout or flow (Abnar & Zuidema 2020) through all layers, mean over the input sequences")) +
    theme_tensorscope(base_size = 10, grid = FALSE) + ggplot2::theme(legend.position = "right")
}
