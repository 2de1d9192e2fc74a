# Models through LibTorch: TorchScript files (and torch for R nn_modules), their layers
# and parameters, and activations captured in one forward pass per batch.

#' Load a TorchScript model
#'
#' Loads a TorchScript file (saved by `torch.jit.trace()` or `torch.jit.script()` and
#' `.save()`) through LibTorch, in evaluation mode. `layers()` lists the submodule
#' names that [activations()] can capture; `model_parameters()` returns the named
#' parameters as R arrays (same dims and indices as in PyTorch).
#'
#' @param path Path of a TorchScript file.
#' @param device `"cpu"` or `"cuda"` (`"cuda:0"`, ...): needs a LibTorch with CUDA,
#'   otherwise an error of class `tensorscope_error_cuda_unavailable`.
#' @return A `ts_model`: a list with `path`, `device`, `modules` (a tibble with
#'   `module`, `type`, `n_own` parameters and `n_total` including children) and the
#'   LibTorch handle. `layers()`: a character vector. `model_parameters()`: a named list
#'   of arrays.
#' @seealso [activations()], [fisher()]
#' @export
#' @examples
#' if (ts_torch_available()) {
#'   m <- ts_model(system.file("extdata", "fmnist_cnn_step1125.pt", package = "tensorscope"))
#'   m
#'   layers(m)
#'   dim(model_parameters(m)$conv1.weight)
#' }
ts_model <- function(path, device = "cpu") {
  call <- rlang::current_env()
  path <- check_path(path, call = call)  # a regular file: a named pipe would block the loader
  device <- check_device(device, call = call)
  bad <- cpp_zip_bad_member(path)
  if (!is.null(bad)) {
    # LibTorch does not check the archive's CRCs: a damaged file would load
    ts_abort("{.arg path} {.file {path}} is corrupt: the CRC of archive member {.val {bad}} does not match its data.",
             "not_torchscript", call = call)
  }
  torch_backend(call = call)
  ptr <- torch_run("ts_torch_load", normalizePath(path), device, kind = "not_torchscript",
                   what = "{.arg path} {.file {path}} could not be loaded as a TorchScript model.", call = call)
  new_model(ptr, normalizePath(path), device)
}

new_model <- function(ptr, path, device) {
  mods <- tibble::as_tibble(torch_call("ts_torch_modules", ptr))
  structure(list(path = path, device = device, modules = mods, ptr = ptr,
                 step = checkpoint_step(path)), class = "ts_model")
}

#' @export
print.ts_model <- function(x, ...) {
  m <- x$modules
  cli::cat_line("<ts_model> ", basename(x$path), " (TorchScript, ", x$device, "): ",
                format(m$n_total[m$module == ""], big.mark = ","), " parameters")
  sub <- m[m$module != "", ]
  if (nrow(sub)) {
    w <- max(nchar(sub$module))
    for (i in seq_len(nrow(sub))) {
      cli::cat_line("  ", format(sub$module[i], width = w), "  ", format(sub$type[i], width = 12), "  ",
                    format(sub$n_total[i], big.mark = ","))
    }
  }
  invisible(x)
}

#' @rdname ts_model
#' @param model A `ts_model`.
#' @export
layers <- function(model) {
  model <- as_model(model)
  model$modules$module[model$modules$module != ""]
}

#' @rdname ts_model
#' @export
model_parameters <- function(model) {
  model <- as_model(model)
  torch_run("ts_torch_parameters", model_ptr(model))
}

# ---- internals ------------------------------------------------------------------------

check_device <- function(device, call = rlang::caller_env()) {
  if (!is.character(device) || length(device) != 1 || is.na(device) || !grepl("^(cpu|cuda(:[0-9]+)?)$", device)) {
    ts_abort("{.arg device} must be {.val cpu} or {.val cuda} (or {.val cuda:N}), not {describe(device)}.",
             "argument", call = call)
  }
  if (startsWith(device, "cuda")) {
    torch_backend(call = call)
    info <- torch_call("ts_torch_info")
    if (!isTRUE(info$cuda)) {
      ts_abort(c("{.arg device} is {.val {device}} but CUDA is not available.",
                 i = "The LibTorch tensorscope was built with (version {info$version}) has no usable CUDA device; use {.code device = \"cpu\"}."),
               "cuda_unavailable", call = call)
    }
  }
  device
}

# Calls the backend; its C++ errors arrive classed (see cpp_errors()); `kind` names a
# LibTorch failure in this call.
torch_run <- function(name, ..., kind = "mismatch", what = NULL, call = rlang::caller_env()) {
  torch_errors(torch_call(name, ..., call = call), kind = kind, what = what, call = call,
               envir = parent.frame())
}

# Evaluates expr; a C++ error keeps its kind (a LibTorch failure becomes `kind`), headed
# by `what` (a cli string evaluated in `envir`, default "LibTorch failed.") and followed
# by the first line of the message, plus the `hint` bullets. R errors pass unchanged.
torch_errors <- function(expr, kind, what = NULL, hint = NULL, call = rlang::caller_env(), envir = parent.frame()) {
  cpp_errors(expr, what %||% "LibTorch failed.", hint = hint, torch_kind = kind, call = call, envir = envir)
}

model_ptr <- function(model) {
  ok <- tryCatch({ torch_call("ts_torch_forward_count", model$ptr); TRUE }, error = function(e) FALSE)
  if (ok) return(model$ptr)
  # a model restored from disk (saveRDS) has a null handle: load the file again
  ts_model(model$path, model$device)$ptr
}

as_model <- function(model, arg = rlang::caller_arg(model), call = rlang::caller_env()) {
  if (inherits(model, "ts_model")) return(model)
  if (is.character(model) && length(model) == 1 && !dir.exists(model)) return(ts_model(model))
  ts_abort("{.arg {arg}} must be a {.cls ts_model} or a TorchScript file, not {describe(model)}.", "type", call = call)
}

# Training step of a checkpoint file: the last run of digits in its name, or NA.
checkpoint_step <- function(path) {
  b <- sub("\\.[^.]*$", "", basename(path))
  d <- regmatches(b, gregexpr("[0-9]+", b))[[1]]
  if (length(d)) as.numeric(d[length(d)]) else NA_real_
}

# A vector of TorchScript files or a directory of them -> files ordered by step.
checkpoint_files <- function(x, arg = "model", call = rlang::caller_env()) {
  if (length(x) == 1 && dir.exists(x)) {
    x <- list.files(x, pattern = "\\.(pt|pth|ts|torchscript)$", full.names = TRUE)
    if (!length(x)) ts_abort("{.arg {arg}} is a directory without TorchScript files (.pt, .pth, .ts).", "empty", call = call)
  }
  missing <- x[!file.exists(x)]
  if (length(missing)) ts_abort("{.arg {arg}}: {.file {missing}} do{?es/} not exist.", "file", call = call)
  step <- vapply(x, checkpoint_step, numeric(1))
  if (anyNA(step)) step <- seq_along(x)
  o <- order(step)
  list(files = x[o], step = unname(step[o]))
}

is_checkpoints <- function(model) {
  is.character(model) && (length(model) > 1 || (length(model) == 1 && dir.exists(model)))
}

# Inputs: an array (stimuli first), a list of arrays (several forward() arguments), or
# torch_tensor(s). Returns a list of arrays with the same first dimension.
as_inputs <- function(inputs, arg = "inputs", call = rlang::caller_env()) {
  if (inherits(inputs, "torch_tensor")) inputs <- list(inputs)
  if (!is.list(inputs) || is.data.frame(inputs)) inputs <- list(inputs)
  if (!length(inputs)) ts_abort("{.arg {arg}} is empty.", "empty", call = call)
  for (i in seq_along(inputs)) {
    x <- inputs[[i]]
    if (inherits(x, "torch_tensor")) x <- as.array(x$detach()$cpu())   # CUDA tensors too
    if (is.data.frame(x)) x <- as.matrix(x)
    if (is.logical(x)) storage.mode(x) <- "double"
    if (!is.numeric(x)) {
      ts_abort("{.arg {arg}} must be numeric arrays (stimuli first), or integer token ids; got {describe(x)}.", "type", call = call)
    }
    if (is.null(dim(x))) x <- array(x, length(x))
    if (dim(x)[1] == 0) ts_abort("{.arg {arg}} has no stimuli.", "empty", call = call)
    if (is.double(x)) check_finite(x, arg, call = call)
    inputs[[i]] <- x
  }
  n <- vapply(inputs, function(x) dim(x)[1], integer(1))
  if (length(unique(n)) > 1) {
    ts_abort("Every input in {.arg {arg}} must have the same number of stimuli; got {n}.", "mismatch", call = call)
  }
  inputs
}

# Rows idx of an array, keeping the other dims (drop = FALSE).
slice_rows <- function(x, idx) {
  d <- dim(x)
  if (length(d) == 1) return(array(x[idx], length(idx)))
  args <- c(list(x, idx), rep(list(rlang::missing_arg()), length(d) - 1), list(drop = FALSE))
  do.call(`[`, args)
}

# Stacks per-batch arrays (stimuli first) into one array.
bind_rows_array <- function(parts) {
  d <- dim(parts[[1]])
  if (length(parts) == 1) return(parts[[1]])
  if (is.null(d) || length(d) == 1) return(unlist(parts, use.names = FALSE))
  parts <- lapply(parts, function(p) { dim(p) <- c(dim(p)[1], length(p) / dim(p)[1]); p })
  m <- do.call(rbind, parts)
  dim(m) <- c(nrow(m), d[-1])
  m
}

# One forward pass per batch, capturing `layers`; returns list(output, layers, passes).
# The batches' outputs stay in LibTorch until the end and are converted to R once.
run_batches <- function(model, inputs, layers, batch_size, call = rlang::caller_env()) {
  ptr <- model_ptr(model)
  n <- dim(inputs[[1]])[1]
  starts <- seq(1, n, by = batch_size)
  before <- torch_call("ts_torch_forward_count", ptr)
  pb <- if (length(starts) > 1) cli::cli_progress_bar("Forward passes", total = length(starts), .envir = environment())
  for (b in seq_along(starts)) {
    idx <- starts[b]:min(n, starts[b] + batch_size - 1)
    torch_run("ts_torch_forward", ptr, lapply(inputs, slice_rows, idx), as.character(layers), b == 1,
              what = "The model could not run on {.arg inputs}.", call = call)
    if (!is.null(pb)) cli::cli_progress_update(id = pb)
  }
  out <- torch_call("ts_torch_collect", ptr)   # n x features matrices, attribute "shape"
  passes <- torch_call("ts_torch_forward_count", ptr) - before
  output <- out[[1]]
  dim(output) <- c(nrow(output), attr(output, "shape"))
  attr(output, "shape") <- NULL
  list(output = output, layers = out[-1], passes = passes)
}

# Default layer set: outputs with non-finite values (the -Inf of masked attention
# scores, say) cannot be analysed; they are dropped with a warning. Named layers with
# such values are an error (in ts_reps()).
drop_non_finite <- function(layers) {
  bad <- names(layers)[vapply(layers, function(l) cpp_first_non_finite(l) > 0, logical(1))]
  if (length(bad)) {
    cli::cli_warn(c("Left out layer{?s} {.val {bad}}: {?its/their} outputs hold non-finite values (masked attention scores?).",
                    i = "Name the layers to capture with {.arg layers} to get an error instead."),
                  class = "tensorscope_warning")
  }
  layers[setdiff(names(layers), bad)]
}

# ts_reps from run_batches() layers: the matrices as they are, with their shapes.
reps_from_layers <- function(layers, ...) {
  shapes <- lapply(layers, function(l) { s <- attr(l, "shape"); if (length(s)) s else 1L })
  layers <- lapply(layers, function(l) { attr(l, "shape") <- NULL; l })
  r <- ts_reps(layers, ...)
  r$shapes <- shapes
  r
}

#' Activations of a model's layers
#'
#' Runs the model once per batch of `batch_size` stimuli and captures the outputs of
#' the named submodules in that same forward pass. TorchScript exports (traced or
#' scripted) work as saved: the forward graph is copied, the calls of the chosen
#' submodules' ancestors are inlined, and the chosen submodules' outputs become extra
#' outputs of the graph. A submodule called several times is captured at its last call;
#' one called only inside a branch or loop cannot be captured (a classed error says so).
#'
#' @param model A `ts_model`, a TorchScript file, several files or a directory of
#'   checkpoints (see Value), or a torch for R `nn_module` (needs the torch package).
#' @param inputs An array with stimuli first (e.g. images \[n, channels, height,
#'   width\]), a list of such arrays (several arguments of `forward()`), or a
#'   `torch_tensor`. Doubles are converted to the model's floating type; integer arrays
#'   are passed as int64 token ids (language models).
#' @param layers Submodule names (see [layers()]); `NULL` takes every leaf submodule,
#'   leaving out (with a warning) those whose outputs hold non-finite values, such as
#'   the -Inf of masked attention scores. A submodule whose output has a leading
#'   dimension of 1 (a positional embedding broadcast over the batch) gives the same
#'   row for every stimulus.
#' @param batch_size Stimuli per forward pass.
#' @param device `NULL` (the model's device), `"cpu"` or `"cuda"`.
#' @param stimuli Stimulus ids (default: the row names of `inputs`, or 1..n).
#' @return A [ts_reps] with one layer per requested submodule (stimuli x flattened
#'   features; the per-stimulus shapes are kept) and provenance `model` (file),
#'   `step` (checkpoint step from the file name), `device`, `batch_size`,
#'   `forward_passes`, `source`. For several checkpoints: a tibble with columns `step`,
#'   `checkpoint` (file) and `reps` (a list of `ts_reps`), ordered by step.
#' @seealso [ts_model()], [cka_layers()], [rdm()]
#' @export
#' @examples
#' if (ts_torch_available()) {
#'   f <- system.file("extdata", "fmnist_cnn_step1125.pt", package = "tensorscope")
#'   s <- readRDS(system.file("extdata", "fmnist_stimuli.rds", package = "tensorscope"))
#'   reps <- activations(f, s$images[1:50, , , , drop = FALSE], layers = c("conv1", "fc1", "fc2"))
#'   reps
#'   # a training trajectory in one call
#'   ckpt <- dir(system.file("extdata", package = "tensorscope"), "^fmnist_cnn_step",
#'               full.names = TRUE)
#'   activations(ckpt, s$images[1:20, , , , drop = FALSE], layers = "fc1")
#' }
activations <- function(model, inputs, layers = NULL, batch_size = 64, device = NULL, stimuli = NULL) {
  call <- rlang::current_env()
  if (inherits(model, "nn_module")) return(activations_rtorch(model, inputs, layers, batch_size, device, stimuli, call = call))
  batch_size <- check_count(batch_size, min = 1)
  if (!is.null(device)) device <- check_device(device, call = call)
  inputs <- as_inputs(inputs, call = call)
  if (is_checkpoints(model)) {
    ck <- checkpoint_files(model, call = call)
    reps <- lapply(ck$files, function(f) activations(ts_model(f, device %||% "cpu"), inputs, layers, batch_size, NULL, stimuli))
    return(tibble::tibble(step = ck$step, checkpoint = ck$files, reps = reps))
  }
  model <- as_model(model, call = call)
  if (!is.null(device) && device != model$device) model <- ts_model(model$path, device)
  default_layers <- is.null(layers)
  layers <- check_layers(model, layers, call = call)
  if (is.null(stimuli)) stimuli <- dimnames(inputs[[1]])[[1]]
  res <- run_batches(model, inputs, layers, batch_size, call = call)
  if (default_layers) res$layers <- drop_non_finite(res$layers)
  reps_from_layers(res$layers, stimuli = stimuli, model = model$path,
          step = if (is.na(model$step)) NULL else model$step, device = model$device,
          batch_size = batch_size, forward_passes = res$passes, source = "torchscript")
}

check_layers <- function(model, layers, call = rlang::caller_env()) {
  m <- model$modules
  all <- m$module[m$module != ""]
  if (is.null(layers)) {
    leaf <- vapply(all, function(a) !any(startsWith(all, paste0(a, "."))), logical(1))
    return(all[leaf])
  }
  if (!is.character(layers) || !length(layers) || anyNA(layers)) {
    ts_abort("{.arg layers} must be NULL or submodule names, not {describe(layers)}.", "argument", call = call)
  }
  bad <- setdiff(layers, all)
  if (length(bad)) {
    ts_abort(c("{.arg layers}: no submodule{?s} {.val {bad}} in this model.",
               i = "Valid names: {.val {all}}."), "argument", call = call)
  }
  unique(layers)
}

#' Model outputs
#'
#' @param object A `ts_model`.
#' @param inputs As in [activations()].
#' @param batch_size Stimuli per forward pass.
#' @param ... Unused.
#' @return The model's output as an array with stimuli first (e.g. logits \[n, classes\]).
#' @importFrom stats predict
#' @export
#' @examples
#' if (ts_torch_available()) {
#'   m <- ts_model(system.file("extdata", "fmnist_cnn_step1125.pt", package = "tensorscope"))
#'   s <- readRDS(system.file("extdata", "fmnist_stimuli.rds", package = "tensorscope"))
#'   logits <- predict(m, s$images)
#'   mean(max.col(logits) == as.integer(s$labels))   # accuracy
#' }
predict.ts_model <- function(object, inputs, batch_size = 64, ...) {
  batch_size <- check_count(batch_size, min = 1)
  run_batches(object, as_inputs(inputs), character(), batch_size)$output
}

# Hook names for a model: every "...hook_pattern" submodule, or the chosen blocks.
pattern_hooks <- function(model, layers, call = rlang::caller_env()) {
  all <- layers(model)
  hooks <- grep("hook_pattern$", all, value = TRUE)
  if (is.null(layers)) {
    if (!length(hooks)) {
      ts_abort("The model has no {.code hook_pattern} submodules; name the attention-pattern layers in {.arg layers}.",
               "argument", call = call)
    }
    return(hooks)
  }
  if (is.numeric(layers)) layers <- sprintf("blocks.%d.attn.hook_pattern", as.integer(layers) - 1L)
  bad <- setdiff(layers, all)
  if (length(bad)) {
    ts_abort(c("Unknown layer{?s} {.val {bad}}.", i = "Pattern hooks of this model: {.val {hooks}}."),
             "argument", call = call)
  }
  layers
}

# TRUE when the model has TransformerLens-style attention-pattern hooks.
has_pattern_hooks <- function(model) any(grepl("hook_pattern$", layers(model)))

# Per-layer parameters of a model, stacked into [layer, ...] arrays. `names` maps
# W_Q, ... to name templates with {layer} for the 0-based block.
model_weights <- function(model, names, call = rlang::caller_env()) {
  params <- model_parameters(model)
  lapply(names[c("W_Q", "W_K", "W_V", "W_O")], function(tmpl) {
    re <- paste0("^", gsub("\\{layer\\}", "([0-9]+)", gsub(".", "\\.", tmpl, fixed = TRUE)), "$")
    hit <- grep(re, names(params), value = TRUE)
    if (!length(hit)) {
      ts_abort("The model has no parameter matching {.val {tmpl}}; see {.arg names}.", "argument", call = call)
    }
    hit <- hit[order(as.integer(sub(re, "\\1", hit)))]
    stacked <- simplify2array(unname(params[hit]))    # [head, ., ., layer]
    aperm(stacked, c(4, 1, 2, 3))
  })
}

# Context length from a learned positional embedding ([n_ctx, d_model]), or NA.
model_context_size <- function(model) {
  p <- model_parameters(model)
  pos <- grep("(^|\\.)W_pos$|pos.*embed.*weight$", names(p), value = TRUE)
  if (!length(pos)) return(NA_integer_)
  dim(p[[pos[1]]])[1]
}

model_vocab_size <- function(model) {
  p <- model_parameters(model)
  emb <- grep("(^|\\.)W_E$|embed.*weight$", names(p), value = TRUE)
  if (!length(emb)) ts_abort("Cannot find the model's embedding; give {.arg vocab_size}.", "argument")
  dim(p[[emb[1]]])[1]
}
