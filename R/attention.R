# The ts_attention class: attention patterns of a transformer (from a model, from
# activations of its pattern hooks or from plain arrays), their checks, print,
# as.array() and as_tibble(). The circuit metrics on them are in R/circuits.R.

# ---------------------------------------------------------------------------------
# Attention patterns

#' Attention patterns of a transformer
#'
#' Collects attention patterns (softmax outputs, rows summing to 1 over keys) into a
#' `ts_attention` object that every circuit function accepts. Patterns come from a
#' TorchScript model run through the model runtime (`ts_model`; TransformerLens-style
#' hook submodules `blocks.<l>.attn.hook_pattern` giving `[batch, head, query, key]`),
#' from `activations()`-style [ts_reps()] of such hooks, or from plain R arrays, e.g.
#' exported from Python, so that nothing here needs LibTorch.
#'
#' Accepted arrays (index order as in Python/NumPy; `reticulate` and
#' `array(..., dim)` keep it):
#' * 4-D `[layer, head, query, key]`: one sequence;
#' * 5-D `[sequence, layer, head, query, key]`: several sequences (sequences first,
#'   like stimuli elsewhere in tensorscope);
#' * a list of per-layer arrays `[sequence, head, query, key]` or `[head, query, key]`
#'   (one TransformerLens `hook_pattern` per layer).
#'
#' **Checks.** Values must be finite and non-negative. Rows that do not sum to 1
#' (within `tol`) raise a warning of class `tensorscope_warning_not_normalised` and are
#' kept as they are, or are divided by their sums with `normalise = TRUE`.
#'
#' @param x A `ts_model`, a `ts_reps` of pattern hooks, an array or a list of arrays
#'   (see Details), or a `ts_attention` (returned unchanged).
#' @param tokens For a model: integer token ids, sequences x positions (a vector is one
#'   sequence). For arrays: optional, kept for plots and provenance.
#' @param layers For a model: `NULL` (every `hook_pattern` hook), block numbers
#'   (1-based) or hook names.
#' @param normalise Divide every row by its sum instead of warning when rows do not sum
#'   to 1.
#' @param tol Tolerance for the row sums.
#' @param seq_len,prefix Optional layout of repeated random sequences (`prefix` tokens,
#'   then `seq_len` random tokens, then the same `seq_len` tokens again), used by
#'   [head_scores()].
#' @param ... Passed on to methods.
#' @return A `ts_attention` object: a list with `patterns`, a double array
#'   `[query, key, head, sequence, layer]` (each query x key matrix contiguous),
#'   `layers` (layer names), `tokens`, `seq_len`, `prefix`. `as_tibble()` gives the long
#'   form with columns `sequence`, `layer`, `head`, `query`, `key`, `attention`
#'   (1-based positions); `autoplot()` the pattern of one head.
#' @seealso [attention_entropy()], [head_scores()], [attention_flow()],
#'   [attention_graph()]
#' @export
#' @examples
#' # a 2-layer, 2-head model on one sequence of 6 tokens: uniform causal attention
#' n <- 6
#' causal <- outer(1:n, 1:n, ">=") / (1:n)
#' a <- array(rep(causal, each = 4), c(2, 2, n, n))   # [layer, head, query, key]
#' pat <- attention_patterns(a)
#' pat
#' head(tibble::as_tibble(pat))
attention_patterns <- function(x, ...) UseMethod("attention_patterns")

#' @rdname attention_patterns
#' @export
attention_patterns.default <- function(x, tokens = NULL, normalise = FALSE, tol = 1e-4, seq_len = NULL,
                                       prefix = NULL, ...) {
  call <- rlang::current_env()
  if (!is.logical(normalise) || length(normalise) != 1 || is.na(normalise)) {
    ts_abort("{.arg normalise} must be TRUE or FALSE, not {describe(normalise)}.", "argument", call = call)
  }
  tol <- check_number(tol, lower = 0, call = call)
  layer_names <- NULL
  if (is.list(x) && !is.data.frame(x)) {
    if (length(x) == 0) ts_abort("{.arg x} has no layers.", "empty", call = call)
    layer_names <- names(x)
    parts <- lapply(seq_along(x), function(i) {
      xi <- x[[i]]
      arg <- sprintf("x[[%d]]", i)
      check_pattern_array(xi, ranks = 3:4, what = "[sequence, head, query, key] or [head, query, key]", arg, call)
      if (length(dim(xi)) == 3) dim(xi) <- c(1L, dim(xi))
      aperm(xi, c(3, 4, 2, 1))                                  # [q, k, h, s]
    })
    shapes <- vapply(parts, function(p) paste(dim(p), collapse = " x "), "")
    if (length(unique(shapes)) > 1) {
      ts_abort(c("Every layer of {.arg x} must have the same sequences, heads, queries and keys.",
                 x = "Shapes [query x key x head x sequence]: {paste(shapes, collapse = '; ')}."),
               "mismatch", call = call)
    }
    a <- array(unlist(parts, use.names = FALSE), c(dim(parts[[1]]), length(parts)))
  } else {
    check_pattern_array(x, ranks = 4:5, what = "[layer, head, query, key] or [sequence, layer, head, query, key]",
                        "x", call)
    d <- dim(x)
    if (length(d) == 4) {
      layer_names <- dimnames(x)[[1]]
      a <- aperm(x, c(3, 4, 2, 1))
      dim(a) <- c(d[3], d[4], d[2], 1L, d[1])
    } else {
      layer_names <- dimnames(x)[[2]]
      a <- aperm(x, c(4, 5, 3, 1, 2))
    }
  }
  if (storage.mode(a) != "double") storage.mode(a) <- "double"
  dimnames(a) <- NULL
  n_layers <- dim(a)[5]
  if (is.null(layer_names) || any(!nzchar(layer_names))) layer_names <- as.character(seq_len(n_layers))
  a <- check_row_sums(a, normalise, tol, call)
  new_attention(a, layer_names, tokens = tokens, seq_len = seq_len, prefix = prefix, call = call)
}

#' @rdname attention_patterns
#' @export
attention_patterns.ts_attention <- function(x, ...) x

#' @rdname attention_patterns
#' @export
attention_patterns.ts_reps <- function(x, tokens = NULL, ...) {
  layers <- lapply(names(x), function(nm) {
    shape <- x$shapes[[nm]]
    if (length(shape) != 3) {
      ts_abort("Layer {.val {nm}} of {.arg x} has per-stimulus shape {paste(shape, collapse = ' x ')}, not [head, query, key].",
               "type")
    }
    array(x[[nm]], c(nrow(x[[nm]]), shape))
  })
  names(layers) <- names(x)
  attention_patterns.default(layers, tokens = tokens, ...)
}

#' @rdname attention_patterns
#' @export
attention_patterns.ts_model <- function(x, tokens, layers = NULL, ...) {
  torch_backend()
  tokens <- check_tokens(tokens)
  hooks <- pattern_hooks(x, layers)
  reps <- activations(x, tokens, layers = hooks)
  attention_patterns.ts_reps(reps, tokens = tokens, ...)
}

check_pattern_array <- function(x, ranks, what, arg, call) {
  if (!(is.numeric(x) || is.logical(x)) || length(dim(x)) == 0) {
    ts_abort("{.arg {arg}} must be a numeric array {what}, not {describe(x)}.", "type", call = call)
  }
  if (!length(dim(x)) %in% ranks) {
    ts_abort("{.arg {arg}} must be an array {what} (rank {paste(ranks, collapse = ' or ')}), not of rank {length(dim(x))} ({paste(dim(x), collapse = ' x ')}).",
             "type", call = call)
  }
  if (any(dim(x) == 0)) ts_abort("{.arg {arg}} is empty ({paste(dim(x), collapse = ' x ')}).", "empty", call = call)
  check_finite(x, arg, call = call)
  if (any(x < 0)) {
    ts_abort("{.arg {arg}} must hold attention probabilities, but {sum(x < 0)} value{?s} {?is/are} negative (the smallest is {format(min(x))}).",
             "argument", call = call)
  }
  invisible(x)
}

check_row_sums <- function(a, normalise, tol, call) {
  d <- dim(a)
  s <- cpp_pattern_row_sums(a, d[1], d[2], threads_now())
  bad <- abs(s - 1) > tol
  if (!any(bad)) return(a)
  if (normalise) {
    if (any(s <= 0)) {
      ts_abort("{sum(s <= 0)} attention row{?s} of {.arg x} sum{?s/} to 0 and cannot be normalised ({.arg normalise} = TRUE).", "argument", call = call)
    }
    return(sweep(a, c(1, 3, 4, 5), array(s, d[-2]), "/"))
  }
  worst <- s[which.max(abs(s - 1))]
  cli::cli_warn(c("{sum(bad)} of {length(s)} attention row{?s} do{?es/} not sum to 1 over keys (the furthest sums to {format(worst, digits = 6)}); using them as they are.",
                  i = "Use {.code normalise = TRUE} to divide each row by its sum."),
                class = c("tensorscope_warning_not_normalised", "tensorscope_warning"), call = call)
  a
}

new_attention <- function(a, layers, tokens = NULL, seq_len = NULL, prefix = NULL, call = rlang::caller_env()) {
  d <- dim(a)
  if (!is.null(tokens)) {
    tokens <- check_tokens(tokens, call = call)
    if (nrow(tokens) != d[4] || ncol(tokens) != d[2]) {
      ts_abort("{.arg tokens} is {nrow(tokens)} x {ncol(tokens)} but the patterns have {d[4]} sequence{?s} of {d[2]} key position{?s}.",
               "mismatch", call = call)
    }
  }
  if (!is.null(seq_len)) seq_len <- check_count(seq_len, min = 1, call = call)
  if (!is.null(prefix)) prefix <- check_count(prefix, min = 0, call = call)
  structure(list(patterns = a, layers = layers, tokens = tokens, seq_len = seq_len, prefix = prefix),
            class = "ts_attention")
}

check_tokens <- function(tokens, arg = rlang::caller_arg(tokens), call = rlang::caller_env()) {
  force(arg)
  if (is.null(dim(tokens)) && is.numeric(tokens)) tokens <- matrix(tokens, nrow = 1)
  if (!is.numeric(tokens) || length(dim(tokens)) != 2) {
    ts_abort("{.arg {arg}} must be a matrix of integer token ids (sequences x positions), not {describe(tokens)}.",
             "type", call = call)
  }
  if (length(tokens) == 0) ts_abort("{.arg {arg}} is empty.", "empty", call = call)
  check_finite(tokens, arg, call = call)
  if (any(tokens != round(tokens)) || any(tokens < 0)) {
    ts_abort("{.arg {arg}} must hold non-negative whole token ids.", "argument", call = call)
  }
  storage.mode(tokens) <- "integer"
  tokens
}

# Coerce anything attention_patterns() accepts.
as_attention <- function(x, arg = rlang::caller_arg(x), call = rlang::caller_env()) {
  force(arg)
  if (inherits(x, "ts_attention")) return(x)
  attention_patterns(x)
}

pattern_dims <- function(p) {
  d <- dim(p$patterns)
  list(nq = d[1], nk = d[2], heads = d[3], seqs = d[4], layers = d[5])
}

#' @export
print.ts_attention <- function(x, ...) {
  d <- pattern_dims(x)
  cli::cat_line("<ts_attention> ", d$layers, " layer", if (d$layers != 1) "s", " x ", d$heads, " head",
                if (d$heads != 1) "s", " x ", d$seqs, " sequence", if (d$seqs != 1) "s", " (",
                d$nq, " queries x ", d$nk, " keys)")
  cli::cat_line("  layers: ", paste(x$layers, collapse = ", "))
  if (!is.null(x$seq_len)) {
    cli::cat_line("  repeated sequences: prefix ", x$prefix %||% 0, " + 2 x ", x$seq_len, " tokens")
  }
  invisible(x)
}

#' @export
as.array.ts_attention <- function(x, ...) {
  aperm(x$patterns, c(4, 5, 3, 1, 2))  # [sequence, layer, head, query, key]
}

#' @importFrom tibble as_tibble
#' @method as_tibble ts_attention
#' @export
as_tibble.ts_attention <- function(x, ...) {
  d <- dim(x$patterns)
  g <- expand.grid(query = seq_len(d[1]), key = seq_len(d[2]), head = seq_len(d[3]),
                   sequence = seq_len(d[4]), layer = seq_len(d[5]), KEEP.OUT.ATTRS = FALSE)
  tibble::tibble(sequence = g$sequence, layer = g$layer, head = g$head, query = g$query, key = g$key,
                 attention = as.vector(x$patterns))
}
