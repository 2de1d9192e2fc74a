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
#'   dimension is stimuli, or torch for R `torch_tensor`s), or a single matrix / data
#'   frame / array / tensor (one layer).
#' @param stimuli Stimulus ids (character, unique, one per row). `NULL` takes the row
#'   names of the first layer, or `"1"`, `"2"`, ....
#' @param model,step,seed Provenance: model name, training step (checkpoint) and seed.
#' @param ... Further provenance fields (e.g. `device`, `batch_size`, `source`).
#' @return An object of class `ts_reps`: a list with `layers` (named list of double
#'   matrices, or `torch_tensor`s), `stimuli`, `shapes` (original per-stimulus shape of
#'   each layer) and `provenance`.
#'
#' **torch for R tensors.** A `torch_tensor` layer (on the CPU or a CUDA device, any
#' floating type, or integers) is kept as it is, not copied, when tensorscope's LibTorch
#' backend and torch for R use the same LibTorch library in the R session (one
#' `libtorch_cpu` is loaded, the one tensorscope was built against; configure prefers
#' torch for R's). Then [cka()], [cka_layers()], [rdm()] (correlation, cosine, euclidean
#' and sqeuclidean, without `conditions`) and ridge [predictivity()] compute on the
#' tensors in place, on their device, in float64 (a float32 layer is promoted there),
#' and only the results come back to R: a whole analysis stays on the GPU
#' ([activations()] with `tensors = TRUE` makes such a `ts_reps`). A higher-rank tensor
#' is flattened there in its own row-major order, which none of these metrics depends
#' on; copies into R are flattened as R arrays are. Every other function, and
#' `backend = "eigen"`, copies the tensors into R matrices first. When the two LibTorch
#' builds differ, a message says so once per session and the tensors are copied into R
#' (by torch for R) here.
#'
#' *How the tensor crosses, and what keeps it alive.* A `torch_tensor` is an R external
#' pointer (class `c("torch_tensor", "R7")`) to torch for R's `XPtrTorchTensor`, whose
#' only member is a `std::shared_ptr<void>` holding the `torch::Tensor*` that lantern
#' allocated (the same layout from torch for R 0.10 to 0.14, on LibTorch 1.13 and 2.x;
#' extension packages built with `LinkingTo: torch` read it the same way). The backend
#' copies that `torch::Tensor` handle: no data is copied (the backend sees the tensor's
#' own data pointer, `x$data_ptr()`), and the handle holds a reference on the tensor's
#' storage while the backend uses it, in addition to the R object, which the call keeps
#' referenced (for ridge, the fold object also keeps the R tensor in its protected slot
#' and drops its handle when the layer is done). Views, transposes and other
#' non-contiguous tensors are read through their strides (flattening a higher-rank
#' non-contiguous view copies it on its device); sparse, quantized and other-device
#' (MPS, XLA) tensors are refused with a classed error. Layers that [activations()]
#' returns as tensors are made by torch for R (`operator_sexp_tensor`, its C-callable)
#' when it is loaded, so torch for R owns and can use them.
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
  if (is.matrix(x) || is.data.frame(x) || is.array(x) || (is.numeric(x) && is.null(dim(x))) || is_rtensor(x)) {
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
  shapes <- lapply(x, function(l) {
    if (is_rtensor(l)) rtensor_shape(l, call = call) else if (is.null(dim(l))) 1L else if (length(dim(l)) > 2) dim(l)[-1] else ncol(l)
  })
  layers <- vector("list", length(x))
  for (i in seq_along(x)) {
    layers[[i]] <- as_layer_data(x[[i]], arg = sprintf("x$%s", nms[i]), call = call)
  }
  names(layers) <- nms
  names(shapes) <- nms
  n <- vapply(layers, function(l) as.integer(layer_dims(l)[1]), integer(1))
  if (length(unique(n)) > 1) {
    ts_abort(c("Every layer of {.arg x} must have the same stimuli (rows).",
               x = "{.arg x} has layers with {paste(sprintf('%s: %d', nms, n), collapse = ', ')} rows."),
             "mismatch", call = call)
  }
  n <- n[[1]]
  stimuli <- check_stimuli(stimuli %||% rownames(layers[[1]]), n, call = call)
  for (i in seq_along(layers)) {
    if (is_rtensor(layers[[i]])) next   # a torch_tensor has no row names; its rows are `stimuli`
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
    l <- x$layers[[nm]]
    where <- if (is_rtensor(l)) paste0(", torch_tensor on ", rtensor_info(l)$device) else ""
    how <- if (!is.null(red) && !is.na(red[nm]) && red[nm] != "none") paste0(", ", red[nm])
    cli::cat_line("  ", format(nm, width = max(nchar(names(x$layers)))), "  ",
                  layer_dims(l)[2], " features (", paste(x$shapes[[nm]], collapse = " x "), how, where, ")")
  }
  if (!is.null(x$trials)) {
    reps <- vapply(x$trials, function(a) dim(a)[3], integer(1))
    cli::cat_line("  trials kept: up to ", max(reps), " repetition", if (max(reps) != 1) "s", " per stimulus ($trials)")
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
  l <- as_reps(object)$layers
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
    ts_abort("{.arg i}: no layer {.val {i}}; the layers are {.val {names(layers)}}.", "argument")
  }
  layers[[i]]
}

#' Subset and reorder stimuli and layers
#'
#' Both indices follow one convention for `ts_reps` and `ts_rdm`: the **first index is
#' stimuli** (conditions), the **second is layers** (for a `ts_rdm`: RDMs), as rows and
#' columns of a table of stimuli by layers.
#' * `reps[ids, ]` keeps the stimuli `ids` (stimulus ids, row numbers or a logical
#'   vector), in that order, in every layer: `reps[rev(reps$stimuli), ]` reverses them;
#' * `reps[, layers]` keeps layers (names or numbers), like the one-index form
#'   `reps[layers]`; `reps[ids, layers]` does both; `reps[[layer]]` is one layer's
#'   matrix.
#' * For a `ts_rdm`, `rdm[ids, ]` keeps and reorders conditions (each RDM's pairs are
#'   re-indexed, so `as.matrix(rdm[ids, ])` is `as.matrix(rdm)[ids, ids]`), and
#'   `rdm[, k]` or `rdm[k]` keeps RDMs.
#'
#' Unknown ids or layers, repeated stimuli and NA indices are errors of class
#' `tensorscope_error_argument`.
#'
#' @param x A `ts_reps` or `ts_rdm` object.
#' @param i Stimuli (with a second index) or, alone, layers / RDMs.
#' @param j Layers (for a `ts_rdm`: RDMs).
#' @param ... Unused.
#' @param drop Unused (always `FALSE`: the result keeps its class).
#' @return An object of the same class.
#' @name subset-stimuli
#' @examples
#' set.seed(1)
#' reps <- ts_reps(list(a = matrix(rnorm(40), 10), b = matrix(rnorm(30), 10)),
#'                 stimuli = paste0("s", 1:10))
#' reps[c("s3", "s1"), ]          # two stimuli, every layer
#' reps[, "b"]                    # one layer (same as reps["b"])
#' r <- rdm(reps)
#' as.matrix(r[c("s3", "s1", "s2"), ])
NULL

#' @rdname subset-stimuli
#' @export
`[.ts_reps` <- function(x, i, j, ..., drop = FALSE) {
  if (nargs() - (!missing(drop)) == 2L) {  # reps[layers]
    if (missing(i)) return(x)
    return(subset_layers(x, i, "i"))
  }
  if (!missing(j)) x <- subset_layers(x, j)
  if (!missing(i)) {
    idx <- stimulus_index(i, x$stimuli)
    x$stimuli <- x$stimuli[idx]
    x$layers <- lapply(x$layers, function(m) {
      gp <- attr(m, "ts_gram_features")   # rows of a Gram-route stand-in are one too
      m <- m[idx, , drop = FALSE]
      attr(m, "ts_gram_features") <- gp
      m
    })
    if (!is.null(x$trials)) x$trials <- lapply(x$trials, function(a) a[idx, , , drop = FALSE])
  }
  x
}

subset_layers <- function(x, i, arg = "j", call = rlang::caller_env()) {
  layers <- .subset2(x, "layers")
  keep <- if (is.character(i)) names(layers)[match(i, names(layers))] else names(layers)[i]
  if (anyNA(keep)) {
    unknown <- if (is.character(i)) i[is.na(keep)] else i[is.na(keep) | i > length(layers)]
    valid <- names(layers)
    ts_abort("{.arg {arg}} names unknown layer(s) {.val {unknown}}; the layers are {.val {valid}}.", "argument", call = call)
  }
  x$layers <- layers[keep]
  x$shapes <- x$shapes[keep]
  if (!is.null(x$trials)) x$trials <- x$trials[intersect(keep, names(x$trials))]
  x
}

# Positions of the stimuli selected by `i` (ids, positions or a logical mask) among
# `ids`; unknown, NA or repeated selections are classed errors.
stimulus_index <- function(i, ids, arg = "i", call = rlang::caller_env()) {
  n <- length(ids)
  if (is.factor(i)) i <- as.character(i)
  idx <- if (is.character(i)) {
    m <- match(i, ids)
    if (anyNA(m)) {
      unknown <- i[is.na(m)]
      n_unknown <- length(unknown)
      ts_abort(c("{.arg {arg}} names {n_unknown} unknown stimul{?us/i}: {.val {utils::head(unknown, 5)}}.",
                 i = "The stimuli are {.val {utils::head(ids, 5)}}{if (n > 5) ', ...' else ''}."), "argument", call = call)
    }
    m
  } else if (is.logical(i)) {
    if (length(i) != n || anyNA(i)) {
      ts_abort("A logical {.arg {arg}} must have one TRUE/FALSE per stimulus ({n}), not {describe(i)}.", "argument", call = call)
    }
    which(i)
  } else if (is.numeric(i)) {
    if (anyNA(i) || any(i != round(i))) ts_abort("{.arg {arg}} must hold whole row numbers, not {describe(i)}.", "argument", call = call)
    if (all(i <= 0)) i <- setdiff(seq_len(n), -i)
    if (any(i < 1 | i > n)) ts_abort("{.arg {arg}} selects rows outside 1..{n}.", "argument", call = call)
    as.integer(i)
  } else {
    ts_abort("{.arg {arg}} must be stimulus ids, row numbers or a logical vector, not {describe(i)}.", "argument", call = call)
  }
  if (anyDuplicated(idx)) {
    twice <- ids[unique(idx[duplicated(idx)])]
    ts_abort("{.arg {arg}} selects {.val {twice}} more than once.", "argument", call = call)
  }
  if (length(idx) == 0) ts_abort("{.arg {arg}} selects no stimuli.", "empty", call = call)
  idx
}

#' @export
as.list.ts_reps <- function(x, ...) x$layers

# `b` with its stimuli in the order of `a`'s, matched by id (see match_stimuli()).
align_reps <- function(a, b, arg_a = "a", arg_b = "b", call = rlang::caller_env()) {
  idx <- match_stimuli(a$stimuli, b$stimuli, arg_a, arg_b, call = call)
  if (is.null(idx)) b else b[idx, ]
}

# Internal: anything that ts_reps() accepts, or a ts_reps. torch_tensor layers are copied
# into R matrices unless `tensors` (the callers that compute on them in place).
as_reps <- function(x, arg = rlang::caller_arg(x), tensors = FALSE, call = rlang::caller_env()) {
  force(arg)
  if (!inherits(x, "ts_reps")) x <- as_reps_new(x, arg, call)
  if (!tensors && any_rtensor(x$layers)) x$layers <- rtensor_to_matrices(x$layers, paste0(arg, "$"), x$stimuli, call = call)
  x
}

as_reps_new <- function(x, arg, call) {
  tryCatch(ts_reps(x), tensorscope_error = function(e) {
    ts_abort(c("{.arg {arg}} is not usable as representations.", x = "{conditionMessage(e)}"),
             class(e)[1] |> sub(pattern = "tensorscope_error_", replacement = ""), call = call)
  })
}
