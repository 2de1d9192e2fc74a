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

#' @rdname ts_model
#' @param con A `ts_model`.
#' @param ... Unused.
#' @details `close()` frees the model's LibTorch memory now, instead of when R's garbage
#'   collector finds the handle unused (a finalizer does that too). A closed model loads
#'   its file again when it is used next. [activations()] given a file path loads the
#'   model and frees it on exit.
#' @export
close.ts_model <- function(con, ...) {
  if (ts_torch_available()) torch_call("ts_torch_release", con$ptr)
  invisible(con)
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
checkpoint_step <- function(path, loose = FALSE) {
  # a number after "step", "ckpt", "checkpoint", "epoch" or "iter", else a number that
  # ends the name after a separator ("run_300"); digits inside a name ("resnet50") are
  # part of the name, not a step -- except (`loose`) among a set of checkpoint files,
  # where the last number of each name orders them (model1, model2, model10)
  b <- sub("\\.[^.]*$", "", basename(path))
  m <- regmatches(b, regexpr("(?i)(step|ckpt|checkpoint|epoch|iter(ation)?)[_-]?[0-9]+", b, perl = TRUE))
  if (!length(m)) m <- regmatches(b, regexpr(if (loose) "[0-9]+[^0-9]*$" else "[_.-][0-9]+$", b))
  if (length(m) && loose) m <- sub("[^0-9]*$", "", m)
  if (length(m)) as.numeric(sub("^.*?([0-9]+)$", "\\1", m, perl = TRUE)) else NA_real_
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
  if (anyNA(step)) step <- vapply(x, checkpoint_step, numeric(1), loose = TRUE)
  if (anyNA(step) || anyDuplicated(step)) step <- seq_along(x)
  o <- order(step)
  list(files = x[o], step = unname(step[o]))
}

is_checkpoints <- function(model) {
  is.character(model) && (length(model) > 1 || (length(model) == 1 && dir.exists(model)))
}

# Inputs: an array (stimuli first), a list of arrays (several forward() arguments), or
# torch_tensor(s). Returns a list of arrays with the same first dimension; with
# `tensors`, torch_tensors stay as they are (checked in the backend, on their device:
# numeric, finite, stimuli first) for the backend to slice in place.
as_inputs <- function(inputs, arg = "inputs", tensors = FALSE, call = rlang::caller_env()) {
  if (inherits(inputs, "torch_tensor")) inputs <- list(inputs)
  if (!is.list(inputs) || is.data.frame(inputs)) inputs <- list(inputs)
  if (!length(inputs)) ts_abort("{.arg {arg}} is empty.", "empty", call = call)
  n <- integer(length(inputs))
  for (i in seq_along(inputs)) {
    x <- inputs[[i]]
    if (tensors && is_rtensor(x)) {
      n[i] <- as.integer(check_rtensor(x, arg, call = call)$n)
      next
    }
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
    n[i] <- dim(x)[1]
  }
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

# Default layer set: outputs with non-finite values (the -Inf of masked attention
# scores, say) cannot be analysed; they are dropped with a warning. Named layers with
# such values are an error.
drop_non_finite <- function(layers, default, call = rlang::caller_env()) {
  non_finite <- function(l) if (is_rtensor(l)) !rtensor_info(l, checks = TRUE, call = call)$finite else cpp_first_non_finite(l) > 0
  bad <- names(layers)[vapply(layers, non_finite, logical(1))]
  if (length(bad) && !default) {
    ts_abort(c("{.arg layers}: layer{?s} {.val {bad}} hold{?s/} non-finite values (NA, NaN or Inf).",
               i = "Masked attention scores (-Inf) cannot be analysed; capture the attention pattern instead."),
             "non_finite", call = call)
  }
  if (length(bad)) {
    cli::cli_warn(c("Left out layer{?s} {.val {bad}}: {?its/their} outputs hold non-finite values (masked attention scores?).",
                    i = "Name the layers to capture with {.arg layers} to get an error instead."),
                  class = "tensorscope_warning")
  }
  layers[setdiff(names(layers), bad)]
}

#' Activations of a model's layers
#'
#' Runs the model once per batch of `batch_size` stimuli and captures the outputs of
#' all the named submodules in that same forward pass. TorchScript exports (traced or
#' scripted) work as saved: the forward graph is copied, the calls of the chosen
#' submodules' ancestors are inlined, and the chosen submodules' outputs become extra
#' outputs of the graph.
#'
#' **Exact captures.** Each captured output is the value the submodule returned, copied
#' right after its call, so a later in-place operation (torchvision's
#' `ReLU(inplace = True)` after a BatchNorm) cannot change it. The copies are made only
#' where needed: before the first batch, a probe runs the model on its first stimulus
#' with every output copied and also kept as itself, and the outputs whose LibTorch
#' version counter is the same at the end of that pass as right after their call (no
#' in-place operation touched them or a view of them) are kept without a copy. Models
#' with branches or loops in their forward (scripted control flow, whose in-place
#' operations could depend on the data) keep every copy. On ResNet-50's 19 benchmark
#' layers no copy is needed (their 806 MB a batch of 32 are not copied). A submodule called several
#' times is captured at every call, in execution order, as `relu`, `relu:2`, `relu:3`
#' (traced models name these calls `forward`, `forward1`, `forward2`). A block and its own
#' children can be captured in one call. A submodule returning a tuple or list gives one
#' layer per tensor element, `name.0`, `name.1`, ... (dicts: `name.<key>`; `None`
#' elements are left out); one returning no tensor at all is an error of class
#' `tensorscope_error_argument`, as is one called only inside a branch or loop, or never
#' called by `forward()` (as `nn.MultiheadAttention` uses `out_proj` through its weights).
#'
#' **Memory.** Nothing accumulates on the LibTorch side: each batch's outputs are reduced
#' there and written straight into the preallocated matrices that are returned, so the
#' peak is about the returned object plus one batch. Reducers (`reduce`):
#' * `"none"`: the exact output, flattened in R's column-major order of the
#'   per-stimulus dims.
#' * `"avgpool"`: the mean over the spatial dims of a conv map (per-stimulus rank >= 3:
#'   channels x height x width -> channels); other outputs are kept as they are.
#' * `"srp"`: a very sparse random projection to `k` dims (Li, Hastie & Church 2006;
#'   Achlioptas 2003), \eqn{Y = X R^\top}, \eqn{R_{cj} = \pm\sqrt{s/k}} with
#'   probability \eqn{1/(2s)} each, 0 otherwise, \eqn{s = \sqrt{p}}: distances and inner
#'   products are kept in expectation and within \eqn{1 \pm \epsilon} for
#'   \eqn{k \gtrsim \log(n)/\epsilon^2} (Johnson-Lindenstrauss), as Conwell et al. (2024)
#'   project features for model-brain regressions. `R` is generated from `seed` and the
#'   layer's name (each layer its own projection, the same in every run, on every
#'   machine), as a sparse matrix of about \eqn{k\sqrt{p}} non-zeros, never densely;
#'   it acts on the exact output's features in the order `"none"` returns them.
#' * `"gram"` (for every layer of the call; no `cache`): the exact route for metrics that
#'   depend only on the stimuli's inner products and per-stimulus means. Each layer's
#'   Gram \eqn{G = XX^\top} (n x n, float64) and row sums are accumulated in LibTorch
#'   without holding X (n x p): a panel of C stimuli is kept, every later batch is
#'   multiplied against it, panel after panel (C as large as `memory` allows: one pass
#'   when C = n; `ceiling(n / C)` passes and about \eqn{(n/b)(passes + 1)/2} forward
#'   passes otherwise, in `provenance$gram_passes`). The layer returned is an n x q
#'   stand-in F, \eqn{q = rank + 1 \le \min(n, p) + 1}, with \eqn{FF^\top = G} and the
#'   same row-centred Gram as X (pivoted Cholesky of \eqn{G - ss^\top/p}, the mean
#'   direction appended, and a Householder reflection onto the all-ones direction).
#'   **Exact on this route** (equal to their values on `"none"`; float64 to 1e-10):
#'   linear and RBF CKA (biased and debiased), Euclidean, squared Euclidean, cosine and
#'   correlation RDMs and what is built on them (RSA), ridge `predictivity()`, and other
#'   metrics invariant to rotations of feature space (Procrustes/CCA shape distances,
#'   effective rank, participation ratio). **Not meaningful**: anything that reads
#'   individual features (sparsity, superposition, unit tuning, mahalanobis/crossnobis
#'   RDMs), which see a rotated basis. `"srp"` layers see the projection in every metric.
#'   Memory: n^2 doubles a layer for the Grams, plus the panel (C x p in `dtype` over all
#'   layers); at n = 10,000 a Gram is 0.8 GB, so for many layers at that size `"srp"`
#'   is the route that fits.
#' * `"auto"` (the default policy): exact storage while the whole capture fits `memory`;
#'   otherwise the widest layers with more than `k` features are projected (`"srp"`),
#'   one at a time, until it fits. What was chosen is in `provenance$reduce` and shown by
#'   `print()`.
#'
#' Before the batches run (after the first one, which gives the shapes), a preflight
#' estimates the peak above what the process held at the call: `model` (its parameters,
#' when this call loads the file), `forward` (LibTorch's working set, *measured* on the
#' first batch by counting what LibTorch's CPU allocator holds: the peak of the forward
#' pass with all its intermediates and the kept copies, or the held outputs plus the
#' pooled maps the write makes), `projections`, `stored` (the returned
#' matrices, 8 bytes per value: R holds doubles) and `inputs` (two R-side batches of
#' stimuli). LibTorch's blocks of 1 MB or more are mapped from, and returned to, the
#' kernel directly, so freed intermediates do not stay resident in malloc's heap (on
#' ResNet-50 this lowers the peak by 0.56 GB per batch of 32). Over `memory`, the preflight
#' stops with an error of class `tensorscope_error_memory` that names the numbers and the
#' ways out. The estimate is in `provenance$memory` (bytes); bench/scale.R compares it
#' with the measured peak (ResNet-50 and ViT-B/16 at N = 64: 1.06x the measured peak).
#'
#' **Cache.** With `cache = <folder>`, each captured output is written there as a
#' `.npy` file (readable by numpy, [read_npy()]) with a small `.rds` manifest per layer,
#' keyed by a hash of the model file's contents, the inputs (values, dims and dimnames),
#' the layer, the reducer (with `k` and `seed` for `"srp"`), `dtype` and the package
#' version. A second run with the same key reads the files and runs no forward pass; a
#' changed model file, input or reducer never reuses stale activations.
#'
#' Progress is reported per batch through progressr (wrap the call in
#' `progressr::with_progress()` or set `progressr::handlers(global = TRUE)`); an
#' interrupt stops the run between batches.
#'
#' @param model A `ts_model`, a TorchScript file, several files or a directory of
#'   checkpoints (see Value), or a torch for R `nn_module` (needs the torch package;
#'   `dtype`, `reduce`, `k`, `seed`, `memory` and `cache` apply to TorchScript models).
#' @param inputs An array with stimuli first (e.g. images \[n, channels, height,
#'   width\]), a list of such arrays (several arguments of `forward()`), or a
#'   `torch_tensor` (CPU or CUDA; handed to the backend's forward pass without a copy
#'   into R when tensorscope's backend shares torch for R's LibTorch and there is no
#'   `cache`: each batch is a view of its rows, moved or converted only if it is not
#'   already on the model's device in `dtype`). Doubles are converted to `dtype`; integer arrays are passed as
#'   int64 token ids (language models). Or a function of row indices returning those
#'   stimuli's inputs (images read or generated batch by batch, so that thousands of
#'   them are never held at once); then `stimuli` is required (it gives their number),
#'   and `cache` cannot be used.
#' @param layers Submodule names (see [layers()]); `NULL` takes every leaf submodule that
#'   the model's `forward()` calls, leaving out (with a warning) those whose outputs hold
#'   non-finite values, such as the -Inf of masked attention scores. A submodule whose
#'   output has a leading dimension of 1 (a positional embedding broadcast over the
#'   batch) gives the same row for every stimulus.
#' @param batch_size Stimuli per forward pass.
#' @param device `NULL` (the model's device), `"cpu"` or `"cuda"`.
#' @param stimuli Stimulus ids (default: the row names of `inputs`, or 1..n).
#' @param dtype `"float32"` (default) or `"float64"`: the floating type the forward pass
#'   and the reducers run in (a model saved in another type runs on a converted copy).
#'   The returned matrices are R doubles either way.
#' @param reduce `"auto"` (default), `"none"`, `"avgpool"`, `"srp"` or `"gram"` for every layer, or
#'   a named character vector of these per layer or per captured output (e.g.
#'   `c(fc = "none", "srp")`: one unnamed element is the default for the others).
#' @param k Dimensions of the `"srp"` projection.
#' @param seed Seed of the `"srp"` projections (a non-negative whole number).
#' @param memory Memory budget of the run: bytes, or a string such as `"16GB"`. `NULL`:
#'   option `tensorscope.memory`, else 80% of the memory available now.
#' @param cache `NULL` (default: no cache) or a folder for the activation cache.
#' @param tensors `FALSE` (default): layers are R matrices. `TRUE`: each layer is kept
#'   as one `torch_tensor` on the model's device (its batches concatenated there, in
#'   `dtype`; `reduce` may be `"none"` or `"avgpool"`, `"auto"` meaning `"none"`), so
#'   that a whole analysis stays on the GPU: the [ts_reps] holds the tensors and
#'   [cka()], [cka_layers()], [rdm()], ridge [predictivity()] compute on them in place.
#'   The tensors are made by torch for R when it is loaded (on the same LibTorch as
#'   tensorscope's backend; otherwise the layers are R matrices, with a message), else
#'   they are objects of torch for R's layout and class that tensorscope reads in place.
#'   A tensor's features are flattened in LibTorch's (row-major) order, an R matrix's in
#'   R's (column-major) order: the same features, permuted, which none of these metrics
#'   sees.
#' @return A [ts_reps] with one layer per captured output (stimuli x features; `shapes`
#'   holds the per-stimulus shape of what is stored: the submodule's output for
#'   `"none"`, channels for `"avgpool"`, `k` for `"srp"`) and provenance `model`
#'   (file), `step` (checkpoint step from the file name), `device`, `batch_size`,
#'   `forward_passes` (graph executions in this call: 0 when every layer came from the
#'   cache), `source`, `dtype`, `reduce` (the reducer of each layer, e.g.
#'   `"srp(k = 4096, seed = 1)"`), `memory` (estimated bytes: model, batch, stored,
#'   projections, and the budget) and `cached` (layers read from the cache). For several
#'   checkpoints: a tibble with columns `step`, `checkpoint` (file) and `reps` (a list
#'   of `ts_reps`), ordered by step.
#' @references Li, Hastie & Church (2006) Very sparse random projections, KDD.
#'   Achlioptas (2003) Database-friendly random projections, J. Comput. Syst. Sci. 66.
#'   Conwell et al. (2024) A large-scale examination of inductive biases shaping
#'   high-level visual representation in brains and machines, Nat. Commun. 15.
#' @seealso [ts_model()], [cka_layers()], [rdm()]
#' @export
#' @examples
#' if (ts_torch_available()) {
#'   f <- system.file("extdata", "fmnist_cnn_step1125.pt", package = "tensorscope")
#'   s <- readRDS(system.file("extdata", "fmnist_stimuli.rds", package = "tensorscope"))
#'   x <- s$images[1:50, , , , drop = FALSE]
#'   reps <- activations(f, x, layers = c("conv1", "fc1", "fc2"))
#'   reps
#'   # conv maps pooled, the rest projected to 64 dims, with a cache
#'   d <- tempfile()
#'   activations(f, x, layers = c("conv1", "fc1"), reduce = c(conv1 = "avgpool", "srp"),
#'               k = 64, cache = d)
#'   # layers kept as tensors on the model's device; the metrics run on them in place
#'   kept <- activations(f, x, layers = c("conv1", "fc1", "fc2"), tensors = TRUE)
#'   cka_layers(kept)
#'   # a training trajectory in one call
#'   ckpt <- dir(system.file("extdata", package = "tensorscope"), "^fmnist_cnn_step",
#'               full.names = TRUE)
#'   activations(ckpt, s$images[1:20, , , , drop = FALSE], layers = "fc1")
#' }
activations <- function(model, inputs, layers = NULL, batch_size = 64, device = NULL, stimuli = NULL,
                        dtype = c("float32", "float64"), reduce = "auto", k = 4096, seed = 1,
                        memory = NULL, cache = NULL, tensors = FALSE) {
  call <- rlang::current_env()
  check_flag(tensors)
  if (inherits(model, "nn_module")) {
    return(activations_rtorch(model, inputs, layers, batch_size, device, stimuli, tensors = tensors, call = call))
  }
  batch_size <- check_count(batch_size, min = 1)
  dtype <- check_choice(dtype, c("float32", "float64"))
  reduce <- check_reduce(reduce, call = call)
  k <- check_count(k, min = 1)
  if (is.null(seed)) ts_abort("{.arg seed} must be a non-negative whole number, not NULL.", "argument", call = call)
  seed <- check_seed(seed)
  budget <- memory_budget(memory, call = call)
  cache <- check_cache(cache, call = call)
  gram <- "gram" %in% reduce
  if (gram && (!all(reduce == "gram") || !is.null(cache))) {
    ts_abort(c("{.code reduce = \"gram\"} applies to every layer of the call, without {.arg cache}.",
               i = "Capture the other layers (or with a cache) in another call."), "argument", call = call)
  }
  if (!is.null(device)) device <- check_device(device, call = call)
  if (tensors && !is.null(cache)) {
    ts_abort("{.arg cache} stores R matrices; it cannot be used with {.code tensors = TRUE}.", "argument", call = call)
  }
  if (tensors && gram) {
    ts_abort("{.code reduce = \"gram\"} returns R matrices (Gram factors); it cannot be used with {.code tensors = TRUE}.",
             "argument", call = call)
  }
  # torch_tensor inputs are handed to the backend as they are (sliced there) when it
  # shares torch for R's LibTorch; with a cache their values are hashed, so they are copied
  in_place <- is.null(cache) && !is.function(inputs) &&
    any(vapply(if (is_rtensor(inputs) || !is.list(inputs)) list(inputs) else inputs, is_rtensor, logical(1))) &&
    rtensor_shared(call = call)
  # layers returned as torch tensors on the device: torch for R makes them when it is
  # loaded (on the same LibTorch; otherwise R matrices, with the message of rtensor_shared())
  if (tensors) tensors <- !("torch" %in% loadedNamespaces()) || rtensor_shared(call = call)
  src <- input_source(inputs, stimuli, tensors = in_place, call = call)
  if (!is.null(cache) && is.null(src$inputs)) {
    ts_abort("{.arg cache} needs {.arg inputs} as arrays (their values are part of the cache key), not a function.",
             "argument", call = call)
  }
  if (!is.null(src$inputs)) inputs <- src$inputs
  if (is_checkpoints(model)) {
    ck <- checkpoint_files(model, call = call)
    reps <- lapply(ck$files, function(f) {
      activations(f, inputs, layers, batch_size, device, stimuli, dtype, reduce, k, seed, memory = budget, cache = cache,
                  tensors = tensors)
    })
    return(tibble::tibble(step = ck$step, checkpoint = ck$files, reps = reps))
  }
  own <- !inherits(model, "ts_model")   # loaded here: its LibTorch memory is freed on exit
  model <- as_model(model, call = call)
  if (!is.null(device) && device != model$device) {
    model <- ts_model(model$path, device)
    own <- TRUE
  }
  ptr <- model_ptr(model)
  if (own || !identical(ptr, model$ptr)) {
    on.exit(torch_call("ts_torch_release", ptr), add = TRUE)
  } else {
    on.exit(torch_call("ts_torch_forget_projections", ptr), add = TRUE)   # a model kept by the caller
  }
  on.exit(release_memory(), add = TRUE)   # the batches' garbage does not sit under the metrics that follow
  n <- src$n
  stimuli <- check_stimuli(stimuli %||% src$ids, n, call = call)
  default_layers <- is.null(layers)
  layers <- check_layers(model, layers, call = call)
  if (default_layers) layers <- torch_run("ts_torch_called", ptr, layers, call = call)
  before <- torch_call("ts_torch_forward_count", ptr)

  # what each layer captures: from the cache's manifests, else from the first batch
  manifest <- list()
  if (!is.null(cache)) {
    base <- list(model = unname(tools::md5sum(model$path)), inputs = rlang::hash(inputs), dtype = dtype)
    mfile <- function(l) cache_file(cache, l, do.call(cache_key, c(base, list(layer = l))), "rds")
    for (l in layers) if (file.exists(mfile(l))) manifest[[l]] <- readRDS(mfile(l))
  }
  run_layers <- setdiff(layers, names(manifest))
  info <- if (length(run_layers)) first_batch(ptr, src, run_layers, batch_size, dtype, call)
  if (length(run_layers)) {
    of <- layer_of_output(info$names[-1], run_layers)
    for (l in run_layers) {
      manifest[[l]] <- list(names = info$names[-1][of == l], shapes = info$shapes[-1][of == l])
      if (!is.null(cache)) saveRDS(manifest[[l]], mfile(l))
    }
  }
  outputs <- tibble::tibble(
    name = unlist(lapply(layers, function(l) manifest[[l]]$names), use.names = FALSE),
    layer = unlist(lapply(layers, function(l) rep(l, length(manifest[[l]]$names))), use.names = FALSE),
    shape = unname(do.call(c, lapply(layers, function(l) manifest[[l]]$shapes)))
  )
  if (anyDuplicated(outputs$name)) {
    dup <- unique(outputs$name[duplicated(outputs$name)])
    ts_abort(c("{.arg layers}: captured outputs {.val {dup}} would have the same name (a tuple element and a submodule?).",
               i = "Capture these layers in separate calls."), "argument", call = call)
  }
  dtype_bytes <- if (dtype == "float32") 4 else 8
  model_bytes <- if (own) model$modules$n_total[model$modules$module == ""] * dtype_bytes else 0
  if (gram) {
    return(activations_gram(ptr, src, run_layers, info, outputs, stimuli, batch_size, dtype, budget,
                            model, model_bytes, dtype_bytes, before, default_layers, call))
  }
  plan <- if (tensors) {
    keep_plan(outputs, reduce, k, call = call)
  } else {
    plan_capture(outputs, reduce, k, n, batch_size, budget, model_bytes, dtype_bytes,
                 measured = info$memory, input_bytes = info$input_bytes %||% 0, call = call)
  }
  outputs$reducer <- plan$reducer
  outputs$features <- plan$features

  # outputs in the cache; layers with one missing are captured (again)
  outputs$file <- NA_character_
  if (!is.null(cache)) {
    outputs$file <- vapply(seq_len(nrow(outputs)), function(i) {
      r <- outputs$reducer[i]
      key <- do.call(cache_key, c(base, list(output = outputs$name[i], reducer = r,
                                             k = if (r == "srp") k, seed = if (r == "srp") seed)))
      cache_file(cache, outputs$name[i], key, "npy")
    }, character(1))
    missing <- unique(outputs$layer[!file.exists(outputs$file)])
    if (length(setdiff(missing, run_layers))) {
      run_layers <- intersect(layers, union(run_layers, missing))
      info <- first_batch(ptr, src, run_layers, batch_size, dtype, call)
    }
    if (!length(missing)) run_layers <- character()
  }

  out <- vector("list", nrow(outputs))
  names(out) <- outputs$name
  if (length(run_layers)) {
    idx <- c(NA, match(info$names[-1], outputs$name))   # NA: the model's output
    dests <- lapply(idx, function(i) {
      if (is.na(i) || tensors) NULL else matrix(0, n, outputs$features[i], dimnames = list(stimuli, NULL))
    })
    reducers <- ifelse(is.na(idx), "none", outputs$reducer[idx])
    if (tensors) reducers[is.na(idx)] <- "skip"
    run_capture(ptr, src, run_layers, batch_size, dtype, if (!tensors) dests, reducers, k, seed, call)
    if (tensors) dests <- torch_run("ts_torch_collect", ptr, "torch" %in% loadedNamespaces(), call = call)[info$names]
    for (j in which(!is.na(idx))) {
      out[[idx[j]]] <- dests[[j]]
      if (!is.null(cache)) write_npy(dests[[j]], outputs$file[idx[j]], order = "F")
    }
    rm(dests)
  }
  from_cache <- vapply(out, is.null, logical(1))
  for (i in which(from_cache)) {
    m <- read_npy(outputs$file[i])
    dim(m) <- c(n, outputs$features[i])
    dimnames(m) <- list(stimuli, NULL)
    out[[i]] <- m
  }
  shapes <- lapply(seq_len(nrow(outputs)), function(i) {
    s <- outputs$shape[[i]]
    r <- outputs$reducer[i]
    if (r == "srp") k else if (r == "avgpool" && length(s) >= 3) s[1] else if (length(s)) s else 1L
  })
  names(shapes) <- outputs$name
  out <- drop_non_finite(out, default_layers, call = call)
  shapes <- shapes[names(out)]
  new_reps(out, stimuli, shapes, list(
    model = model$path, step = if (is.na(model$step)) NULL else model$step, device = model$device,
    batch_size = batch_size, forward_passes = torch_call("ts_torch_forward_count", ptr) - before,
    source = "torchscript", dtype = dtype, tensors = if (tensors) TRUE,
    reduce = stats::setNames(describe_reducers(outputs$reducer, k, seed), outputs$name)[names(out)],
    memory = if (!tensors) c(plan$estimate, budget = budget),
    cached = if (!is.null(cache)) outputs$name[from_cache]))
}

# activations(reduce = "gram"): each output's Gram and row sums accumulated in LibTorch
# (plan_gram(), run_gram()), then factored into its exact stand-in (gram_factor()).
activations_gram <- function(ptr, src, layers, info, outputs, stimuli, batch_size, dtype, budget, model,
                             model_bytes, dtype_bytes, before, default_layers, call) {
  n <- src$n
  plan <- plan_gram(outputs, n, batch_size, budget, model_bytes, dtype_bytes, info$memory,
                    info$input_bytes %||% 0, call = call)
  idx <- c(NA, match(info$names[-1], outputs$name))   # NA: the model's output
  grams <- lapply(idx, function(i) if (is.na(i)) NULL else matrix(0, n, n))
  sums <- lapply(idx, function(i) if (is.na(i)) NULL else numeric(n))
  run_gram(ptr, src, layers, batch_size, dtype, grams, sums, plan$panel, call)
  p <- vapply(outputs$shape, function(s) prod(as.double(s)), numeric(1))
  out <- vector("list", nrow(outputs))
  names(out) <- outputs$name
  for (j in which(!is.na(idx))) {
    # a non-finite output (masked attention scores): NaN, left to drop_non_finite()
    f <- if (all(is.finite(grams[[j]]))) gram_factor(grams[[j]], sums[[j]], p[idx[j]]) else matrix(NaN, n, 1)
    grams[j] <- list(NULL)
    dimnames(f) <- list(stimuli, NULL)
    attr(f, "ts_gram_features") <- p[idx[j]]   # rdm(): per-channel distances use the layer's p
    out[[idx[j]]] <- f
  }
  out <- drop_non_finite(out, default_layers, call = call)
  new_reps(out, stimuli, lapply(out, ncol), list(
    model = model$path, step = if (is.na(model$step)) NULL else model$step, device = model$device,
    batch_size = batch_size, forward_passes = torch_call("ts_torch_forward_count", ptr) - before,
    source = "torchscript", dtype = dtype,
    reduce = stats::setNames(sprintf("gram(p = %.0f)", p), outputs$name)[names(out)],
    memory = c(plan$estimate, budget = budget), gram_passes = plan$passes))
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
  call <- rlang::current_env()
  batch_size <- check_count(batch_size, min = 1)
  src <- input_source(inputs, NULL, call = call)
  ptr <- model_ptr(object)
  # the model's own floating type
  info <- first_batch(ptr, src, character(), batch_size, "model", call)
  shape <- info$shapes[[1]]
  n <- src$n
  dest <- list(matrix(0, n, prod(shape)))
  run_capture(ptr, src, character(), batch_size, "model", dest, "none", 1, 0, call)
  out <- dest[[1]]
  dim(out) <- c(n, shape)
  out
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
    ts_abort(c("{.arg layers} names unknown layer{?s} {.val {bad}}.", i = "Pattern hooks of this model: {.val {hooks}}."),
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
