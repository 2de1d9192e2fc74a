#' Representations: a model's (or a brain's) layers over one set of stimuli
#'
#' `ts_reps()` holds the activations of one model (or one recording) as a named list
#' of layers, each a stimuli x features matrix, all over the same stimuli in the same
#' order. Higher-rank arrays (e.g. stimuli x channels x height x width) are flattened
#' after the first dimension; the original shapes are kept. Provenance (model,
#' checkpoint step, seed, device, ...) travels with the object so that every metric
#' computed from it can say where it came from.
#'
#' @param x A named list of layers (matrices, data frames or arrays whose first
#'   dimension is stimuli), or a single matrix / data frame / array (one layer).
#' @param stimuli Stimulus ids (character, unique, one per row). `NULL` takes the row
#'   names of the first layer, or `"1"`, `"2"`, ....
#' @param model,step,seed Provenance: model name, training step (checkpoint) and seed.
#' @param ... Further provenance fields (e.g. `device`, `batch_size`, `source`).
#' @return An object of class `ts_reps`: a list with `layers` (named list of double
#'   matrices), `stimuli`, `shapes` (original per-stimulus shape of each layer) and
#'   `provenance`.
#' @seealso [cka_layers()], [rdm()], [rsa()]
#' @export
#' @examples
#' set.seed(1)
#' reps <- ts_reps(list(conv1 = array(rnorm(20 * 4 * 3 * 3), c(20, 4, 3, 3)),
#'                      fc = matrix(rnorm(20 * 8), 20)),
#'                 model = "toy", step = 100)
#' reps
#' summary(reps)
ts_reps <- function(x, stimuli = NULL, model = NULL, step = NULL, seed = NULL, ...) {
  call <- rlang::current_env()
  if (inherits(x, "ts_reps")) return(x)
  if (is.matrix(x) || is.data.frame(x) || is.array(x) || (is.numeric(x) && is.null(dim(x)))) {
    x <- list(layer = x)
  }
  if (!is.list(x)) {
    ts_abort("{.arg x} must be a named list of layers or a matrix, not {describe(x)}.", "type", call = call)
  }
  if (length(x) == 0) ts_abort("{.arg x} has no layers.", "empty", call = call)
  nms <- names(x)
  if (is.null(nms)) nms <- rep("", length(x))
  nms[nms == ""] <- paste0("layer", seq_along(x))[nms == ""]
  if (anyDuplicated(nms)) {
    ts_abort("Layer names in {.arg x} must be unique; {.val {unique(nms[duplicated(nms)])}} repeat{?s}.",
             "argument", call = call)
  }
  shapes <- lapply(x, function(l) if (is.null(dim(l))) 1L else if (length(dim(l)) > 2) dim(l)[-1] else ncol(l))
  layers <- vector("list", length(x))
  for (i in seq_along(x)) {
    layers[[i]] <- as_data_matrix(x[[i]], arg = sprintf("x$%s", nms[i]), call = call)
  }
  names(layers) <- nms
  names(shapes) <- nms
  n <- vapply(layers, nrow, integer(1))
  if (length(unique(n)) > 1) {
    ts_abort(c("Every layer must have the same stimuli (rows).",
               x = "{.arg x} has layers with {paste(sprintf('%s: %d', nms, n), collapse = ', ')} rows."),
             "mismatch", call = call)
  }
  n <- n[[1]]
  stimuli <- check_stimuli(stimuli %||% rownames(layers[[1]]), n, call = call)
  for (i in seq_along(layers)) {
    rn <- rownames(layers[[i]])
    if (!is.null(rn) && !identical(rn, stimuli) && !identical(rn, as.character(seq_len(n)))) {
      ts_abort(c("Layer {.val {nms[i]}} has rows in another order or other stimuli than {.arg stimuli}.",
                 i = "First differing row: {.val {rn[which(rn != stimuli)[1]]}}."), "mismatch", call = call)
    }
    dimnames(layers[[i]]) <- list(stimuli, colnames(layers[[i]]))
  }
  new_reps(layers, stimuli, shapes, c(list(model = model, step = step, seed = seed), list(...)))
}

# Stimulus ids: as character, one per row (NULL: "1".."n"), unique and not NA.
check_stimuli <- function(stimuli, n, call = rlang::caller_env()) {
  stimuli <- as.character(stimuli %||% seq_len(n))
  if (length(stimuli) != n) {
    ts_abort("{.arg stimuli} has {length(stimuli)} id{?s} but the layers have {n} row{?s}.", "mismatch", call = call)
  }
  if (anyNA(stimuli) || anyDuplicated(stimuli)) {
    ts_abort("{.arg stimuli} must be unique and not NA; {.val {unique(stimuli[duplicated(stimuli) | is.na(stimuli)])}} repeat{?s} or {?is/are} NA.",
             "argument", call = call)
  }
  stimuli
}

# The object itself, from checked parts (layers: double matrices with the stimuli as row
# names): no copy of the layers, which activations() fills in place.
new_reps <- function(layers, stimuli, shapes, provenance) {
  provenance <- provenance[!vapply(provenance, is.null, logical(1))]
  structure(list(layers = layers, stimuli = stimuli, shapes = shapes, provenance = provenance), class = "ts_reps")
}

#' @export
print.ts_reps <- function(x, ...) {
  p <- x$provenance
  head <- if (!is.null(p$model)) p$model else "representations"
  if (!is.null(p$step)) head <- paste0(head, " @ step ", p$step)
  cli::cat_line("<ts_reps> ", head, ": ", length(x$layers), " layer", if (length(x$layers) != 1) "s",
                " x ", length(x$stimuli), " stimuli")
  red <- p$reduce
  for (nm in names(x$layers)) {
    how <- if (!is.null(red) && !is.na(red[nm]) && red[nm] != "none") paste0(", ", red[nm])
    cli::cat_line("  ", format(nm, width = max(nchar(names(x$layers)))), "  ",
                  ncol(x$layers[[nm]]), " features (", paste(x$shapes[[nm]], collapse = " x "), how, ")")
  }
  other <- p[setdiff(names(p), c("model", "step", "reduce"))]
  if (!is.null(other$memory)) {
    other$memory <- paste0(format_bytes(sum(other$memory[names(other$memory) != "budget"])), " estimated of ",
                           format_bytes(other$memory[["budget"]]))
  }
  if (length(other)) {
    cli::cat_line("  provenance: ", paste(names(other), vapply(other, function(v) paste(format(v), collapse = ","), ""),
                                         sep = " = ", collapse = "; "))
  }
  invisible(x)
}

#' @param object A `ts_reps` object.
#' @rdname ts_reps
#' @return `summary()`: a tibble with one row per layer: `layer`, `n_stimuli`,
#'   `n_features`, `shape`, `mean`, `sd`, `frac_zero` (fraction of exact zeros) and
#'   `n_constant` (features constant over stimuli).
#' @export
summary.ts_reps <- function(object, ...) {
  l <- object$layers
  out <- tibble::tibble(
    layer = names(l),
    n_stimuli = vapply(l, nrow, integer(1)),
    n_features = vapply(l, ncol, integer(1)),
    shape = vapply(object$shapes, function(s) paste(s, collapse = " x "), character(1)),
    mean = vapply(l, mean, numeric(1)),
    sd = vapply(l, stats::sd, numeric(1)),
    frac_zero = vapply(l, function(m) mean(m == 0), numeric(1)),
    n_constant = vapply(l, function(m) sum(apply(m, 2L, function(v) all(v == v[1]))), integer(1))
  )
  out[] <- lapply(out, unname)
  out
}

#' @export
length.ts_reps <- function(x) length(x$layers)

#' @export
names.ts_reps <- function(x) names(x$layers)

#' @export
`[[.ts_reps` <- function(x, i, ...) {
  layers <- .subset2(x, "layers")
  if (is.character(i) && !i %in% names(layers)) {
    ts_abort("No layer {.val {i}}; the layers are {.val {names(layers)}}.", "argument")
  }
  layers[[i]]
}

#' @export
`[.ts_reps` <- function(x, i, ...) {
  layers <- .subset2(x, "layers")
  keep <- if (is.character(i)) names(layers)[match(i, names(layers))] else names(layers)[i]
  if (anyNA(keep)) {
    unknown <- if (is.character(i)) i[is.na(keep)] else i[is.na(keep) | i > length(layers)]
    valid <- names(layers)
    ts_abort("Unknown layer(s) {.val {unknown}}; the layers are {.val {valid}}.", "argument")
  }
  x$layers <- layers[keep]
  x$shapes <- x$shapes[keep]
  x
}

#' @export
as.list.ts_reps <- function(x, ...) x$layers

# Internal: anything that ts_reps() accepts, or a ts_reps.
as_reps <- function(x, arg = rlang::caller_arg(x), call = rlang::caller_env()) {
  if (inherits(x, "ts_reps")) return(x)
  tryCatch(ts_reps(x), tensorscope_error = function(e) {
    ts_abort(c("{.arg {arg}} is not usable as representations.", x = "{conditionMessage(e)}"),
             class(e)[1] |> sub(pattern = "tensorscope_error_", replacement = ""), call = call)
  })
}
