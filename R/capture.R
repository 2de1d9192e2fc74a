# Memory-bounded capture for activations(): one forward pass per batch for all layers,
# each batch's outputs reduced in LibTorch (exact, average pooling or a seeded sparse
# random projection) and written straight into preallocated R matrices; the reducer
# policy and the memory preflight; the opt-in disk cache of .npy files.

reducer_choices <- c("auto", "none", "avgpool", "srp", "gram")

# ---- reducers and the memory plan -----------------------------------------------------

# reduce: one string for every layer, or a named character vector (names: layers or
# captured outputs such as "relu:2" or "pair.0"; one unnamed element = the default).
check_reduce <- function(reduce, call = rlang::caller_env()) {
  if (!is.character(reduce) || !length(reduce) || anyNA(reduce) || !all(reduce %in% reducer_choices)) {
    ts_abort("{.arg reduce} must be one of {.val {reducer_choices}} or a named character vector of them, not {describe(reduce)}.",
             "argument", call = call)
  }
  nm <- names(reduce) %||% rep("", length(reduce))
  if (sum(nm == "") > 1 || anyDuplicated(nm[nm != ""])) {
    ts_abort("{.arg reduce}: name every element (a layer) except at most one (the default for the other layers).",
             "argument", call = call)
  }
  reduce
}

# The reducer asked for each captured output: its own name, then its layer's name
# (without ":2" or ".0" suffixes), then the unnamed default, then "auto".
reducer_for <- function(outputs, layer_of, reduce) {
  nm <- names(reduce) %||% rep("", length(reduce))
  default <- if (any(nm == "")) unname(reduce[nm == ""]) else "auto"
  vapply(seq_along(outputs), function(i) {
    if (outputs[i] %in% nm) return(unname(reduce[match(outputs[i], nm)]))
    if (layer_of[i] %in% nm) return(unname(reduce[match(layer_of[i], nm)]))
    default
  }, character(1))
}

# Features a reducer leaves of a per-stimulus shape.
reduced_features <- function(shape, reducer, k) {
  switch(reducer,
         none = prod(as.double(shape)),
         avgpool = if (length(shape) >= 3) as.double(shape[1]) else prod(as.double(shape)),
         srp = as.double(k),
         gram = NA_real_)   # known once the Gram is factored (its rank + 1)
}

# Memory budget in bytes: `memory` (bytes, or a string such as "16GB"), else option
# tensorscope.memory, else 80% of the memory available now (Linux /proc/meminfo), else 8 GB.
# (The analyzer passes a resolved budget carrying an "after" attribute: see
# analysis_budget() in R/analyze.R; it is kept as it is.)
memory_budget <- function(memory, call = rlang::caller_env()) {
  if (is.numeric(memory) && is.function(attr(memory, "after"))) return(memory)
  memory <- memory %||% getOption("tensorscope.memory")
  if (is.null(memory)) {
    avail <- available_memory()
    return(if (is.na(avail)) 8 * 2^30 else 0.8 * avail)
  }
  if (is.character(memory) && length(memory) == 1 && !is.na(memory)) {
    m <- regmatches(memory, regexec("^\\s*([0-9.]+)\\s*([KMGT]?)i?B?\\s*$", toupper(memory)))[[1]]
    if (length(m) == 3 && !is.na(suppressWarnings(as.numeric(m[2])))) {
      return(as.numeric(m[2]) * 1024^match(m[3], c("", "K", "M", "G", "T"), nomatch = 1) / 1024)
    }
  }
  if (is.numeric(memory) && length(memory) == 1 && is.finite(memory) && memory > 0) return(as.double(memory))
  ts_abort("{.arg memory} must be a number of bytes or a string such as {.val 16GB}, not {describe(memory)}.",
           "argument", call = call)
}

available_memory <- function() {
  f <- "/proc/meminfo"
  if (!file.exists(f)) return(NA_real_)
  l <- grep("^MemAvailable:", readLines(f, warn = FALSE), value = TRUE)
  if (!length(l)) return(NA_real_)
  as.numeric(gsub("[^0-9]", "", l)) * 1024
}

format_bytes <- function(x) {
  u <- c("B", "KB", "MB", "GB", "TB")
  i <- pmax(1, pmin(length(u), floor(log(pmax(x, 1), 1024)) + 1))
  sprintf("%.3g %s", x / 1024^(i - 1), u[i])
}

# The reducer of each output and the memory estimate. outputs: a data frame with name,
# layer, shape (list). "auto" layers are stored exactly while the whole fits the budget;
# otherwise the largest auto layers wider than k are projected (srp), one at a time,
# until it fits. The estimate of the run's peak, beyond what the process held before:
#   model       the model's parameters when this call loaded it (a ts_model passed in is
#               already resident)
#   forward     LibTorch's working set, measured (`measured`, from first_batch()) on the
#               first batch: the peak of its CPU allocator during that forward pass (the
#               inputs as tensors, every intermediate, the kept copies of the captured
#               outputs, a converted copy of the model), or after it the outputs held
#               plus the pooled maps the write makes; without a measurement (another
#               allocator, CUDA) it is modelled from the captured sizes
#   projections the sparse projections by column: k sqrt(p) non-zeros x 4 bytes + p x 8,
#               plus, for the largest, its triplets while it is built (24 bytes a non-zero)
#   stored      the returned matrices: n x (reduced features) doubles
#   inputs      the R-side batch of stimuli, twice (the previous one awaits R's collector)
#   analysis    what the caller will hold on top of the stored layers, when the budget
#               carries a function attr(budget, "after")(n, features) (the analyzer's
#               metrics, analysis_bytes()): the auto policy then leaves room for it
# Refuses (tensorscope_error_memory) when the estimate exceeds the budget.
plan_capture <- function(outputs, reduce, k, n, batch_size, budget, model_bytes, dtype_bytes,
                         measured = NULL, input_bytes = 0, call = rlang::caller_env()) {
  after <- attr(budget, "after")
  budget <- as.double(budget)
  asked <- reducer_for(outputs$name, outputs$layer, reduce)
  p <- vapply(outputs$shape, function(s) prod(as.double(s)), numeric(1))
  red <- ifelse(asked == "auto", "none", asked)
  feats <- function(red) vapply(seq_along(red), function(i) reduced_features(outputs$shape[[i]], red[i], k), numeric(1))
  nnz <- k * sqrt(p)
  b <- min(batch_size, n)
  proj_bytes <- function(red) {
    s <- red == "srp"
    if (!any(s)) return(0)
    sum(nnz[s] * 4 + p[s] * 8) + max(nnz[s] * 24)
  }
  held <- measured$held %||% (b * sum(p) * dtype_bytes)
  fwd <- measured$forward %||% (held + b * max(c(p, 0)) * dtype_bytes)
  forward <- function(red) {
    # the write reorders into R's order in one strided copy, without a temporary; only an
    # average pooling makes one (b x channels)
    max(fwd, held + b * max(c(0, feats(red)[red == "avgpool"])) * dtype_bytes)
  }
  estimate <- function(red) {
    c(model = model_bytes, forward = forward(red), projections = proj_bytes(red),
      stored = n * sum(feats(red)) * 8, inputs = 2 * b * input_bytes,
      if (is.function(after)) c(analysis = after(n, feats(red))))
  }
  est <- estimate(red)
  while (sum(est) > budget) {
    cand <- which(asked == "auto" & red == "none" & p > k)
    if (!length(cand)) break
    red[cand[which.max(p[cand])]] <- "srp"
    est <- estimate(red)
  }
  if (sum(est) > budget) {
    parts <- paste(sprintf("%s %s", names(est), format_bytes(est)), collapse = ", ")
    ts_abort(c("This capture needs about {format_bytes(sum(est))}, over the memory budget of {format_bytes(budget)}.",
               i = "Estimated peak: {parts} ({n} stimuli, batches of {batch_size}).",
               i = paste("Ways out: fewer {.arg layers}; {.code reduce = \"srp\"} with a smaller {.arg k} (now {k})",
                         "or {.code reduce = \"avgpool\"} for conv maps; a smaller {.arg batch_size};",
                         "fewer stimuli at a time (with {.arg cache}); or a larger {.arg memory} if the machine has it.")),
             "memory", call = call)
  }
  list(reducer = red, features = feats(red), estimate = est, budget = budget)
}

# The Gram route's plan (every output "gram"): the panel size C (stimuli held at once, a
# multiple of the batch size) and the estimate. Beyond plan_capture()'s model, forward
# and inputs:
#   grams   the n x n Gram of every output (doubles), held until the end
#   factor  one layer's factorisation at the end: the row-centred Gram, its pivoted
#           Cholesky factor and the returned factor (3 n^2 doubles)
#   panel   C stimuli x every output's features, in dtype, plus one batch's products
#           against it (b x C doubles an output)
# C is the largest that fits the budget (n: one pass); the passes are ceiling(n / C),
# the forward passes about (n / b) (passes + 1) / 2.
plan_gram <- function(outputs, n, batch_size, budget, model_bytes, dtype_bytes, measured, input_bytes,
                      call = rlang::caller_env()) {
  p <- vapply(outputs$shape, function(s) prod(as.double(s)), numeric(1))
  b <- min(batch_size, n)
  L <- length(p)
  fixed <- c(model = model_bytes, forward = measured$forward %||% (2 * b * sum(p) * dtype_bytes),
             grams = L * n^2 * 8 + L * n * 8, factor = 3 * n^2 * 8, inputs = 2 * b * input_bytes)
  per_row <- sum(p) * dtype_bytes + L * b * 8
  room <- budget - sum(fixed)
  C <- min(n, floor(room / per_row / b) * b)
  if (!is.finite(C) || C < b) {
    need <- sum(fixed) + b * per_row
    parts <- paste(sprintf("%s %s", names(fixed), format_bytes(fixed)), collapse = ", ")
    ts_abort(c("The Gram route needs at least {format_bytes(need)}, over the memory budget of {format_bytes(budget)}.",
               i = "Estimated peak: {parts}, and a panel of at least one batch ({b} stimuli) of every layer.",
               i = paste("Ways out: fewer {.arg layers} or stimuli (the Grams take n^2 doubles a layer);",
                         "{.code reduce = \"srp\"}; a smaller {.arg batch_size}; or a larger {.arg memory}.")),
             "memory", call = call)
  }
  list(panel = C, passes = ceiling(n / C), estimate = c(fixed, panel = C * per_row), budget = budget)
}

# All batches of the Gram route, panel after panel (the first batch already run by
# first_batch()): fill the panel with C stimuli, then multiply every later batch against
# it (ts_torch_gram() in the backend). grams: per captured output an n x n matrix (NULL:
# the model's output), sums: n-vectors of row sums. Interruptible between batches.
run_gram <- function(ptr, src, layers, batch_size, dtype, grams, sums, C, call) {
  n <- src$n
  panels <- seq(1, n, by = C)
  steps <- sum(vapply(panels, function(c0) ceiling((n - c0 + 1) / batch_size), 0))
  prog <- progressr::progressor(steps = steps)
  on.exit(torch_call("ts_torch_panel", ptr, list(), -1, 0), add = TRUE)
  run <- function(idx) {
    torch_run("ts_torch_run", ptr, src$get(idx), as.character(layers), dtype, batch_rows(idx),
              what = "The model could not run on {.arg inputs}.", call = call)
    drop_batch_garbage()
  }
  first <- TRUE
  for (c0 in panels) {
    last <- min(n, c0 + C - 1)
    for (s in seq(c0, last, by = batch_size)) {
      if (!first) run(s:min(last, s + batch_size - 1))
      first <- FALSE
      torch_call("ts_torch_panel", ptr, grams, last - c0 + 1, s - c0)
      prog(message = sprintf("panel at %d, batch at %d", c0, s))
    }
    torch_call("ts_torch_gram", ptr, grams, sums, 0, c0 - 1, TRUE)
    if (last < n) {
      for (s in seq(last + 1, n, by = batch_size)) {
        run(s:min(n, s + batch_size - 1))
        torch_call("ts_torch_gram", ptr, grams, sums, s - 1, c0 - 1, FALSE)
        prog(message = sprintf("panel at %d, batch at %d", c0, s))
      }
    }
    torch_call("ts_torch_panel", ptr, list(), -1, 0)
  }
  invisible(NULL)
}

# An n x q matrix F that stands in for a layer X (n x p) given only its Gram G = X X' and
# row sums s: F F' = G and F's row sums are sqrt(q / p) s, so that F has X's inner
# products, distances and norms, and X's row-centred Gram (G - s s' / p: correlation
# distance). F = [Fc, s / sqrt(p)] H, with Fc Fc' = G - s s' / p (pivoted Cholesky,
# rank r) and H the Householder reflection that swaps the last axis and the all-ones
# direction; q = r + 1 <= min(n, p) + 1.
gram_factor <- function(G, s, p) {
  m <- s / p
  Gc <- G - p * tcrossprod(m)
  Gc <- (Gc + t(Gc)) / 2
  ch <- suppressWarnings(chol(Gc, pivot = TRUE))
  rm(Gc)
  r <- attr(ch, "rank")
  Fc <- t(ch[seq_len(r), order(attr(ch, "pivot")), drop = FALSE])
  rm(ch)
  F0 <- cbind(Fc, sqrt(p) * m)
  q <- ncol(F0)
  if (q == 1) return(F0)
  v <- rep(1 / sqrt(q), q)
  v[q] <- v[q] - 1
  F0 - (F0 %*% v) %*% t(v * (2 / sum(v^2)))
}

# "none", "avgpool", "srp(k = 4096, seed = 1)" per output: provenance and print().
describe_reducers <- function(red, k, seed) {
  ifelse(red == "srp", sprintf("srp(k = %d, seed = %s)", as.integer(k), format(seed)), red)
}

# ---- the batch loop ---------------------------------------------------------------------

# The stimuli as a source of batches: list(n, ids, get = function(rows) -> list of
# arrays, inputs = the checked arrays or NULL). `inputs` may be a function of row
# indices returning those stimuli (loaded or generated batch by batch); then `stimuli`
# gives the ids and their number.
input_source <- function(inputs, stimuli, tensors = FALSE, call = rlang::caller_env()) {
  if (is.function(inputs)) {
    if (is.null(stimuli)) {
      ts_abort("With {.arg inputs} a function, {.arg stimuli} (the stimulus ids) is required: it gives their number.",
               "argument", call = call)
    }
    get <- function(idx) {
      x <- as_inputs(inputs(idx), arg = "inputs(rows)", call = call)
      if (dim(x[[1]])[1] != length(idx)) {
        ts_abort("{.arg inputs} returned {dim(x[[1]])[1]} stimuli for {length(idx)} rows.", "mismatch", call = call)
      }
      x
    }
    return(list(n = length(stimuli), ids = NULL, get = get, inputs = NULL))
  }
  inputs <- as_inputs(inputs, tensors = tensors, call = call)
  first <- inputs[[1]]
  # torch_tensors are passed whole: the backend takes the batch's rows (batch_rows())
  list(n = if (is_rtensor(first)) as.integer(rtensor_info(first, call = call)$n) else dim(first)[1],
       ids = if (!is_rtensor(first)) dimnames(first)[[1]],
       get = function(idx) lapply(inputs, function(x) if (is_rtensor(x)) x else slice_rows(x, idx)), inputs = inputs)
}

# The rows of a batch for the backend: c(first row (0-based), count); batches are runs.
batch_rows <- function(idx) c(min(idx) - 1, length(idx))

# Frees the garbage a batch left in R (its input arrays and whatever `inputs(rows)` made
# on the way). R collects when its heap has grown by a fraction of what is live, so with
# the layers' matrices preallocated (gigabytes) the batches' inputs piled up between
# collections, which no preflight can know (bench/gc_batches.R: 150 batches of 32 images
# against 1.9 GiB live added 0.57 GiB to the peak without this, 0.07 with it). A
# collection of the youngest generation, where this batch's allocations are, takes a few
# milliseconds.
drop_batch_garbage <- function() invisible(gc(verbose = FALSE, full = FALSE))

# Reducers when the layers stay torch tensors (activations(tensors = TRUE)): "none" or
# "avgpool" ("auto" is "none": the layers are not stored in R memory; "srp" runs on the
# CPU into R matrices, so it is an error here).
keep_plan <- function(outputs, reduce, k, call = rlang::caller_env()) {
  red <- reducer_for(outputs$name, outputs$layer, reduce)
  if (any(red == "srp")) {
    ts_abort("{.code reduce = \"srp\"} writes R matrices; with {.code tensors = TRUE} use {.val none} or {.val avgpool}.",
             "argument", call = call)
  }
  red[red == "auto"] <- "none"
  list(reducer = red, features = vapply(seq_along(red), function(i) reduced_features(outputs$shape[[i]], red[i], k), numeric(1)),
       estimate = NULL, budget = NULL)
}

# Runs the first batch: the captured outputs' names and per-stimulus shapes.
# Also measures LibTorch's memory over that pass (see plan_capture()): `memory` =
# list(forward = its allocator's peak, held = what it still holds after, both above the
# level before; NULL where the counting allocator is not in use) and `input_bytes`, the
# R-side bytes of one stimulus's inputs.
first_batch <- function(ptr, src, layers, batch_size, dtype, call) {
  idx <- seq_len(min(src$n, batch_size))
  x <- src$get(idx)
  # the counting allocator replaces LibTorch's CPU allocator for the whole process, so it
  # is not installed under torch for R's feet (same LibTorch): then the preflight models
  # the forward pass instead of measuring it
  count <- !"torch" %in% loadedNamespaces()
  m0 <- if (count) torch_call("ts_torch_memory", TRUE)
  info <- torch_run("ts_torch_run", ptr, x, as.character(layers), dtype, batch_rows(idx),
                    what = "The model could not run on {.arg inputs}.", call = call)
  m1 <- if (count) torch_call("ts_torch_memory", FALSE)
  names(info$shapes) <- info$names
  info$memory <- if (!is.null(m0)) list(forward = m1[2] - m0[1], held = m1[1] - m0[1])
  # (a torch_tensor input is viewed in place: no R-side batch)
  info$input_bytes <- sum(vapply(x, function(a) if (is_rtensor(a)) 0 else as.double(length(a)) * if (is.integer(a)) 4 else 8, 0)) / length(idx)
  info
}

# Output name -> the requested layer it comes from ("relu:2" -> "relu", "pair.0" -> "pair").
layer_of_output <- function(outputs, layers) {
  vapply(outputs, function(o) {
    hit <- layers[o == layers | startsWith(o, paste0(layers, ":")) | startsWith(o, paste0(layers, "."))]
    if (length(hit)) hit[which.max(nchar(hit))] else o
  }, character(1), USE.NAMES = FALSE)
}

# All batches, the first already run (info): each batch's outputs are reduced in LibTorch
# and written into dests (a list of preallocated n x f matrices, NULL = not kept), or,
# with dests NULL, kept on the device for ts_torch_collect().
# Interruptible between batches; progress through progressr.
run_capture <- function(ptr, src, layers, batch_size, dtype, dests, reducers, k, seed, call) {
  n <- src$n
  starts <- seq(1, n, by = batch_size)
  ks <- rep(as.double(k), length(dests))
  p <- progressr::progressor(steps = length(starts))
  for (b in seq_along(starts)) {
    idx <- starts[b]:min(n, starts[b] + batch_size - 1)
    if (b > 1) {
      torch_run("ts_torch_run", ptr, src$get(idx), as.character(layers), dtype, batch_rows(idx),
                what = "The model could not run on {.arg inputs}.", call = call)
    }
    drop_batch_garbage()
    if (is.null(dests)) {
      torch_run("ts_torch_keep", ptr, reducers, call = call)   # on the device (tensors = TRUE)
    } else {
      torch_run("ts_torch_write", ptr, dests, reducers, ks, as.double(seed), as.double(starts[b] - 1), call = call)
    }
    p(message = sprintf("batch %d of %d", b, length(starts)))
  }
  invisible(NULL)
}

# ---- the disk cache ---------------------------------------------------------------------

# Keys: the model file's contents, the inputs (values, dims and dimnames), the layer or
# output, its reducer (with k and seed for "srp"), dtype and the package version.
cache_key <- function(...) rlang::hash(list(..., version = as.character(utils::packageVersion("tensorscope"))))

cache_file <- function(cache, name, key, ext) {
  file.path(cache, sprintf("%s-%s.%s", gsub("[^A-Za-z0-9_.:-]", "_", name), substr(key, 1, 20), ext))
}

check_cache <- function(cache, call = rlang::caller_env()) {
  if (is.null(cache)) return(NULL)
  if (!is.character(cache) || length(cache) != 1 || is.na(cache)) {
    ts_abort("{.arg cache} must be NULL or one folder, not {describe(cache)}.", "argument", call = call)
  }
  if (!dir.exists(cache) && !dir.create(cache, recursive = TRUE, showWarnings = FALSE)) {
    ts_abort("{.arg cache}: cannot create the folder {.file {cache}}.", "file", call = call)
  }
  normalizePath(cache)
}
