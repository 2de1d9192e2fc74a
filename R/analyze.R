# The analyzer: analyze_models() orchestrates units (model x checkpoint) x scopes over
# the metrics of the registry (R/metrics.R; each metric is declared next to its
# family's code). It knows no metric by name.

# ---- units of work ---------------------------------------------------------------

# models -> list of units: list(model, step, kind = "reps"/"file", reps, path).
analysis_units <- function(models, call) {
  if (inherits(models, "ts_reps") || inherits(models, "ts_model") ||
      (is.character(models) && length(models) == 1 && !dir.exists(models))) {
    models <- list(models)
  } else if (is.character(models)) {
    models <- list(models)  # checkpoints of one model
  }
  if (!is.list(models) || !length(models)) {
    ts_abort("{.arg models} must be ts_model objects, TorchScript paths, checkpoint files or ts_reps, not {describe(models)}.",
             "type", call = call)
  }
  nms <- names(models) %||% rep("", length(models))
  units <- list()
  for (i in seq_along(models)) {
    m <- models[[i]]
    nm <- nms[i]
    if (inherits(m, "ts_reps")) {
      units[[length(units) + 1]] <- list(model = if (nzchar(nm)) nm else m$provenance$model %||% paste0("model", i),
                                         step = as.double(m$provenance$step %||% NA), kind = "reps", reps = as_reps(m))
    } else if (inherits(m, "ts_model") || is.character(m)) {
      path <- if (inherits(m, "ts_model")) m$path else m
      if (is_checkpoints(path)) {
        ck <- checkpoint_files(path, arg = "models", call = call)
        files <- ck$files
        steps <- ck$step
      } else {
        if (!file.exists(path)) ts_abort("{.arg models}: {.file {path}} does not exist.", "file", call = call)
        files <- path
        steps <- checkpoint_step(path)
      }
      label <- if (nzchar(nm)) nm else sub("_?(step)?[0-9]+$", "", sub("\\.[^.]*$", "", basename(files[1])))
      for (j in seq_along(files)) {
        units[[length(units) + 1]] <- list(model = label, step = as.double(steps[j]), kind = "file", path = files[j])
      }
    } else if (is.list(m) && length(m) && all(vapply(m, inherits, logical(1), "ts_reps"))) {
      for (j in seq_along(m)) {
        st <- as.double(m[[j]]$provenance$step %||% j)
        units[[length(units) + 1]] <- list(model = if (nzchar(nm)) nm else paste0("model", i), step = st, kind = "reps", reps = as_reps(m[[j]]))
      }
    } else {
      ts_abort("{.arg models}[[{i}]] must be a ts_model, a TorchScript path, checkpoint files or a ts_reps, not {describe(m)}.",
               "type", call = call)
    }
  }
  units
}

# Layers of a ts_reps unit (model order), checked against `layers`.
reps_unit_layers <- function(u, layers, call) {
  ls <- names(u$reps$layers)
  if (!is.null(layers)) {
    bad <- setdiff(layers, ls)
    if (length(bad)) ts_abort("{.arg layers}: no layer{?s} {.val {bad}} in {.val {u$model}}.", "argument", call = call)
    ls <- intersect(ls, layers)
  }
  ls
}

# The one place where the analyzer computes activations: one forward pass of the unit's
# model for all its layers. Returns a named list, layer -> matrix, or -> the condition
# that kept the layer from being captured (non-finite outputs, say), with the reducer
# activations() chose per layer as attribute "reducers" (provenance).
# (Options of activations(), e.g. its memory budget, pass through `opts` here.)
unit_activations <- function(u, model, layers, inputs, opts) {
  if (u$kind == "reps") return(u$reps$layers[layers])
  budget <- analysis_budget(opts$memory)
  run <- function(ls) {
    activations(model, inputs, layers = ls, batch_size = opts$batch_size, stimuli = opts$stimuli, dtype = opts$dtype,
                reduce = opts$reduce, k = opts$k, seed = opts$seed, memory = budget, cache = opts$cache)
  }
  if (is.null(opts$layers)) {
    # default layers: activations() leaves out (with a warning) layers with non-finite outputs
    dropped <- NULL
    r <- withCallingHandlers(run(NULL), tensorscope_warning = function(w) {
      dropped <<- w
      invokeRestart("muffleWarning")
    })
    out <- as.list(r$layers)[intersect(layers, names(r$layers))]
    for (ly in setdiff(layers, names(r$layers))) {
      out[[ly]] <- structure(class = c("tensorscope_error_non_finite", "tensorscope_error", "error", "condition"),
                             list(message = "its output holds non-finite values (NA, NaN or Inf)", call = NULL))
    }
    return(with_reducers(out[layers], r))
  }
  r <- tryCatch(run(layers), error = function(e) e)
  if (!inherits(r, "error")) return(with_reducers(r$layers[layers], r))
  # one layer failed: capture the others one by one to tell which
  one <- lapply(layers, function(ly) tryCatch(run(ly), error = function(e) e))
  out <- stats::setNames(lapply(one, function(o) if (inherits(o, "error")) o else o$layers[[1]]), layers)
  red <- unlist(lapply(one, function(o) if (!inherits(o, "error")) o$provenance$reduce[1]))
  structure(out, reducers = red)
}

# The layers, with the reducer activations() chose for each (its provenance$reduce) and
# its memory estimate (provenance$memory, "analysis" included).
with_reducers <- function(layers, reps) {
  red <- reps$provenance$reduce
  structure(layers, reducers = if (!is.null(red)) red[intersect(names(layers), names(red))],
            memory = reps$provenance$memory)
}

# The memory budget of a unit's capture, leaving room for its analysis: activations()'
# preflight adds analysis_bytes() of the layers as it would store them, so that
# reduce = "auto" keeps a layer exact only where the run_unit() after it fits too.
analysis_budget <- function(memory) {
  structure(memory_budget(memory), after = analysis_bytes)
}

# What run_unit() holds beyond the stored layers, in bytes, for n stimuli and the stored
# widths f of the layers: every layer's RDM (n (n - 1) / 2 doubles) and its matrix with
# the same centred Gram (n x min(n, f)), both kept to the end; while one layer is
# analysed, the copies the layer metrics make of it and the garbage R's collector leaves
# (measured on ResNet-50 at N = 200: rdm() and effective_rank() 1.0-1.2 copies,
# layer_activations(), feature_sparsity() and vector_interference() together about 3.5:
# 4 n x f here) and n x n work (reduce_layer()'s Gram, eigenvectors and result, the
# square RDM: 5 n^2 doubles); after the layers, the
# model metrics on the kept matrices, whose largest working set is cka_layers()' packed
# Gram matrices (at most 4e9 bytes).
analysis_bytes <- function(n, f) {
  if (!length(f)) return(0)
  kept <- sum(n * pmin(n, f) + n * (n - 1) / 2) * 8
  layer <- max(4 * n * f + 5 * n^2) * 8
  model <- min(4e9, length(f) * n * (n + 1) / 2 * 8)
  kept + max(layer, model)
}

# A matrix with the same centred Gram matrix (hence the same linear CKA and the same
# Euclidean distances between stimuli) as x, with at most n columns. A wide layer
# (p > n) is centred a block of columns at a time into its n x n Gram (blocks of about
# 64 MB): never a second n x p copy.
reduce_layer <- function(x, block_bytes = 64e6) {
  n <- nrow(x)
  p <- ncol(x)
  mu <- colMeans(x)
  if (p <= n) return(x - rep(mu, each = n))
  G <- matrix(0, n, n)
  width <- max(16L, as.integer((block_bytes / 8) %/% n))
  for (s in seq(1L, p, by = width)) {
    cols <- s:min(p, s + width - 1L)
    G <- G + tcrossprod(x[, cols, drop = FALSE] - rep(mu[cols], each = n))
  }
  e <- eigen(G, symmetric = TRUE)
  rm(G)
  keep <- e$values > max(e$values) * 1e-13
  r <- e$vectors[, keep, drop = FALSE] * rep(sqrt(e$values[keep]), each = n)
  dimnames(r) <- list(rownames(x), NULL)
  r
}

# Why a layer cannot be analysed (a condition), or NULL.
layer_problem <- function(x) {
  if (inherits(x, "condition")) return(x)
  if (cpp_rows_constant(x)) {
    return(structure(class = c("tensorscope_error_zero_variance", "tensorscope_error", "error", "condition"),
                     list(message = "its output is the same for every stimulus", call = NULL)))
  }
  NULL
}

# The first unmet need of a metric in a unit context, as a skip reason, or NULL.
unmet_need <- function(metric, ctx) {
  for (n in metric$needs) {
    ok <- switch(n,
      model_file = ctx$unit$kind == "file",
      torch = ts_torch_available(),
      labels = !is.null(ctx$labels),
      neural = !is.null(ctx$neural),
      attention = isTRUE(ctx$has_attention()),
      checkpoints = length(ctx$steps) >= 2,
      activations = !is.null(ctx$activations))
    if (!ok) return(metric_needs[[n]])
  }
  NULL
}

# Runs one metric in a context: needs, compute(), tidy(), timed. Returns list(table,
# status, reason, condition, seconds); an error keeps its condition class.
run_metric <- function(metric, x, args, ctx) {
  t0 <- proc.time()[["elapsed"]]
  res <- tryCatch({
    why <- unmet_need(metric, ctx)
    if (!is.null(why)) metric_skip(why) else {
      out <- metric$compute(x, args, ctx)
      if (inherits(out, "ts_skip")) out else {
        tb <- check_tidy(metric$tidy(out, ctx), metric$name)
        if (metric$scope == "neural") list(table = tb, output = out) else tb
      }
    }
  }, error = function(e) e)
  secs <- proc.time()[["elapsed"]] - t0
  output <- NULL
  if (is.list(res) && identical(names(res), c("table", "output"))) { output <- res$output; res <- res$table }
  if (inherits(res, "ts_skip")) {
    return(list(table = NULL, status = "skipped", reason = res$reason, condition = NA_character_, seconds = secs))
  }
  if (inherits(res, "error")) return(failed(res, secs))
  list(table = res, status = "ok", reason = NA_character_, condition = NA_character_, seconds = secs, output = output)
}

failed <- function(e, secs = 0, prefix = NULL) {
  msg <- gsub("\\s*\n\\s*", " ", conditionMessage(e))
  list(table = NULL, status = "error", reason = paste0(prefix, msg), condition = class(e)[1], seconds = secs)
}

check_tidy <- function(tb, name) {
  if (!is.data.frame(tb) || !all(c("statistic", "value") %in% names(tb))) {
    ts_abort("{.arg metric}: the {.fn tidy} of metric {.val {name}} must return a data frame with columns {.field statistic} and {.field value}.",
             "type")
  }
  tb <- tibble::as_tibble(tb)
  tb$statistic <- as.character(tb$statistic)
  tb$value <- as.double(tb$value)
  if (!"layer" %in% names(tb)) tb$layer <- NA_character_
  tb$layer <- as.character(tb$layer)
  tb[, c("layer", "statistic", "value", setdiff(names(tb), c("layer", "statistic", "value"))), drop = FALSE]
}

# One record (and its rows) of a metric run.
metric_entry <- function(u, metric, r, layer = NA_character_) {
  list(unit = u[c("model", "step")], metric = metric, layer = layer, r = r)
}

scope_of <- function(objs, scope) names(objs)[vapply(objs, function(m) m$scope == scope, logical(1))]

# Everything about one unit (model x checkpoint): one model load, one forward pass for
# all layers, the layer metrics layer by layer (dropping each layer's activations
# unless kept), then the model metrics on the reduced layers.
run_unit <- function(pl, metrics, objs, inputs, labels, seed, opts, keep_activations, rdm_method) {
  u <- pl$unit
  t0 <- proc.time()[["elapsed"]]
  model <- if (u$kind == "file") ts_model(u$path, opts$device)
  lays <- if (u$kind == "file") intersect(layers(model), check_layers(model, opts$layers)) else pl$layers  # model order
  acts <- unit_activations(u, model, lays, inputs, opts)
  reducers <- attr(acts, "reducers")
  memory <- attr(acts, "memory")
  extract <- proc.time()[["elapsed"]] - t0
  base <- list(unit = u[intersect(c("model", "step", "kind", "path"), names(u))], seed = seed, stimuli = opts$stimuli, opts = opts,
               labels = labels, inputs = inputs, model = model)
  layer_ms <- scope_of(objs, "layer")
  hold <- keep_activations || any(vapply(objs, function(m) m$scope == "model" && "activations" %in% m$needs, logical(1)))
  entries <- list()
  reduced <- list()
  rdms <- list()   # per layer: its condition labels, or the error
  sink <- rdm_sink(length(lays))   # every layer's RDM goes into its row of one matrix
  kept <- list()
  for (ly in lays) {
    x <- acts[[ly]]
    acts[ly] <- list(NULL)
    bad <- layer_problem(x)
    if (!is.null(bad)) {
      for (m in layer_ms) entries[[length(entries) + 1]] <- metric_entry(u, m, failed(bad, prefix = "layer not analysed: "), ly)
      next
    }
    ctx <- c(base, list(layer = ly, memo = new.env(parent = emptyenv())))   # memo: work metrics share
    for (m in layer_ms) entries[[length(entries) + 1]] <- metric_entry(u, m, run_metric(objs[[m]], x, metrics[[m]], ctx), ly)
    reduced[[ly]] <- reduce_layer(x)
    rdms[[ly]] <- tryCatch(rdm_layer(x, NULL, rdm_method, NULL, NULL, NULL, "diag", arg = ly, backend = "auto",
                                     sink = sink, row = match(ly, lays)), error = function(e) e)
    if (hold) kept[[ly]] <- x
    rm(x)
  }
  if (!length(reduced)) {
    return(list(unit = u, entries = entries, failed = TRUE, extract_seconds = extract, layers = lays,
                reducers = reducers, memory = memory, why = if (length(entries)) entries[[1]]$r$reason else "every layer failed"))
  }
  red <- ts_reps(reduced, stimuli = opts$stimuli)
  rdm_ok <- !vapply(rdms, inherits, logical(1), "error")
  has_attn <- NULL
  ctx <- c(base, list(layers = names(reduced), activations = if (length(kept)) ts_reps(kept, stimuli = opts$stimuli),
                      has_attention = function() {
    if (is.null(has_attn)) has_attn <<- !is.null(model) && has_pattern_hooks(model)
    has_attn
  }))
  for (m in scope_of(objs, "model")) {
    entries[[length(entries) + 1]] <- metric_entry(u, m, run_metric(objs[[m]], red, metrics[[m]], ctx))
  }
  list(unit = u, entries = entries, reduced = red, extract_seconds = extract, layers = lays, reducers = reducers,
       memory = memory, rdm = if (any(rdm_ok)) sink_rdm(sink, match(names(rdms)[rdm_ok], lays), rdms[rdm_ok], rdm_method),
       rdm_errors = lapply(rdms[!rdm_ok], function(e) failed(e, prefix = "no layer RDM: ")),
       activations = if (keep_activations) kept)
}

#' Analyse models (and checkpoints) with every metric under identical conditions
#'
#' Runs the chosen metrics on one or several models, on every checkpoint of a training
#' run, or on already-extracted representations, with the same stimuli, batch size,
#' seed and device for all of them, and collects the results (with provenance and
#' per-metric timings) in one [ts_results] object. The metrics come from the registry
#' (see [ts_metrics()] for the table, [new_metric()] to add your own).
#'
#' **Work and memory.** The work is split into one task per model x checkpoint
#' ("unit"), dispatched with `future.apply` under the user's [future::plan()]
#' (sequential by default; `plan(multisession)` on a laptop, `future.batchtools` on a
#' cluster); the results do not depend on the plan. Under `multisession` /
#' `multicore` each task runs its OpenMP, OpenBLAS and LibTorch code on its share of
#' the cores (cores / workers), so that the workers do not oversubscribe the machine.
#' Progress is reported through `progressr` (wrap the call in
#' `progressr::with_progress()`). Each task loads its model once and runs one forward
#' pass (per batch) for all its layers ([activations()]); then, layer by layer, it
#' computes the layer-scope metrics, the layer's RDM (for [compare_to_neural()]) and an
#' n x min(n, p) matrix with the same centred Gram matrix (all that linear CKA needs:
#' CKA from it equals CKA from the activations), and drops the layer's activations
#' unless `keep_activations = TRUE`. The model-scope metrics run on these reduced
#' layers; the steps-scope ones across the checkpoints of a model; the neural-scope
#' ones once, at the end.
#'
#' A layer that cannot be analysed (its outputs hold non-finite values, like the -Inf of
#' masked attention scores, or are the same for every stimulus, like a positional
#' embedding) is recorded as an error for each layer metric, with the reason, and left
#' out of the model-level metrics; the run goes on.
#'
#' **Applicability.** A metric whose needs are not met (circuits on a CNN, Fisher
#' without LibTorch, without a model file or without `labels`, RSA without `neural`)
#' is recorded as `"skipped"` with the reason; a metric that fails is recorded as
#' `"error"` with the message and the class of its condition (column `condition` of
#' the records) and the rest of the run continues.
#'
#' @param models One or several models: [ts_model()] objects or TorchScript paths, a
#'   vector of checkpoint files or a directory of them (one `step` per checkpoint), a
#'   [ts_reps()] or a (named) list of them. A named list names the models.
#' @param inputs The stimuli fed to every model (see [activations()]); not needed for
#'   `ts_reps` input.
#' @param metrics [ts_metrics()], a character vector of metric names or aliases (see
#'   [ts_metrics()] for the list), or a list of names and `name = list(argument =
#'   value)` overrides (e.g. `list("effective_rank", rsa_similarity = list(rdm_method =
#'   "euclidean"))`); unknown names give an error of class
#'   `tensorscope_error_unknown_metric`, unknown arguments one of class
#'   `tensorscope_error_unknown_argument`.
#' @param neural Optional neural data (see [compare_to_neural()]): matrices, lists of
#'   them or `ts_rdm` objects; when given, the `rsa_similarity` metric aligns every
#'   layer to each data set.
#' @param labels Optional stimulus labels (factor or 0-based class indices): targets of
#'   the Fisher information.
#' @param seed Seed of every random step (permutations, bootstrap, Fisher sampling,
#'   baselines), passed explicitly to each metric.
#' @param ... Unused; must be empty.
#' @param layers Layers to analyse (default: every leaf submodule / every layer).
#' @param batch_size,device Forward-pass batch size and device of all models.
#' @param keep_activations Keep each layer's activations in the result (`$activations`).
#' @param dtype,reduce,k,memory,cache How each model's activations are captured, passed
#'   to [activations()]: precision of the forward pass, the per-layer reducer (`"auto"`:
#'   exact where the layers fit the memory budget, a seeded sparse random projection to
#'   `k` dimensions for the widest layers where they do not; `"none"`, `"avgpool"`,
#'   `"srp"`, `"gram"`: the exact Gram route), the memory budget (bytes or `"16GB"`), and
#'   an opt-in activation cache folder. The seed of the projections is `seed`. The
#'   budget covers the analysis too: the preflight adds what a unit holds after its
#'   capture (each layer's RDM and its n x min(n, features) Gram-equivalent matrix, one
#'   layer's working copy and n x n work, the model metrics' packed Gram matrices), so
#'   `"auto"` keeps layers exact only where their analysis fits as well.
#' @param stimuli Stimulus ids; required when `inputs` is a function of row indices
#'   returning those stimuli (made or read batch by batch, as in [activations()], so that
#'   thousands of images are never held at once; metrics that need the inputs
#'   themselves, such as Fisher information, then record an error).
#' @return A [ts_results] object; `$reducers` is a tibble (`model`, `step`, `layer`,
#'   `reducer`) of what [activations()] chose for each layer (`"none"`, `"avgpool"`,
#'   `"srp(k = 4096, seed = 1)"`, `"gram(p = ...)"`), also shown by `print()`;
#'   `$provenance$memory` holds the preflight's estimate per unit (bytes: `model`,
#'   `forward`, `projections`, `stored`, `inputs`, `analysis`, and the `budget`).
#' @seealso [ts_metrics()], [new_metric()], [compare_to_neural()], [save_report()]
#' @export
#' @examples
#' sim <- simulate_model_and_brain(n_stimuli = 48, n_subjects = 2)
#' res <- analyze_models(list(sim = sim$reps), metrics = c("cka_similarity", "effective_rank"))
#' res
#' res$get("effective_rank")
#' if (ts_torch_available()) {
#'   s <- readRDS(system.file("extdata", "fmnist_stimuli.rds", package = "tensorscope"))
#'   ck <- system.file("extdata", c("fmnist_cnn_step0050.pt", "fmnist_cnn_step1125.pt"),
#'                     package = "tensorscope")
#'   res <- analyze_models(ck, s$images[1:60, , , , drop = FALSE],
#'                         metrics = c("effective_rank", "cka_trajectory", "grouped_fisher"),
#'                         labels = s$labels[1:60])
#'   summary(res)
#' }
analyze_models <- function(models, inputs = NULL, metrics = ts_metrics(), neural = NULL, labels = NULL, seed = 1, ...,
                           layers = NULL, batch_size = 64, device = "cpu", keep_activations = FALSE,
                           dtype = c("float32", "float64"), reduce = "auto", k = 4096, memory = NULL, cache = NULL,
                           stimuli = NULL) {
  call <- rlang::current_env()
  rlang::check_dots_empty(call = call)
  metrics <- as_metrics(metrics, call = call)
  objs <- lapply(stats::setNames(nm = names(metrics)), get_metric_object)  # travel with the tasks
  seed <- check_seed(seed)
  batch_size <- check_count(batch_size, min = 1)
  if (!is.logical(keep_activations) || length(keep_activations) != 1 || is.na(keep_activations)) {
    ts_abort("{.arg keep_activations} must be TRUE or FALSE, not {describe(keep_activations)}.", "argument", call = call)
  }
  if (!is.null(layers) && (!is.character(layers) || !length(layers) || anyNA(layers))) {
    ts_abort("{.arg layers} must be NULL or layer names, not {describe(layers)}.", "argument", call = call)
  }
  units <- analysis_units(models, call)
  has_file <- any(vapply(units, function(u) u$kind == "file", logical(1)))
  if (has_file) {
    if (!ts_torch_available()) torch_backend(call = call)
    device <- check_device(device, call = call)
    if (is.null(inputs)) ts_abort("{.arg inputs} is needed to run model files.", "argument", call = call)
    if (is.function(inputs)) {
      # stimuli made batch by batch (activations(inputs = <function>)): the ids give their number
      if (is.null(stimuli)) ts_abort("With {.arg inputs} a function, {.arg stimuli} (the stimulus ids) is required.", "argument", call = call)
      stimuli <- check_stimuli(stimuli, length(stimuli), call = call)
    } else {
      inputs <- as_inputs(inputs, call = call)
    }
  }
  stim <- if (has_file) stimuli %||% dimnames(inputs[[1]])[[1]] %||% as.character(seq_len(dim(inputs[[1]])[1])) else units[[1]]$reps$stimuli
  for (u in units) {
    s <- if (u$kind == "reps") u$reps$stimuli else stim
    if (length(s) != length(stim) || !identical(s, stim)) {
      ts_abort("Every model of {.arg models} must be analysed on the same stimuli; {.val {u$model}} has {length(s)} stimuli, not the {length(stim)} of the first.",
               "mismatch", call = call)
    }
  }
  if (!is.null(labels)) {
    if (length(labels) != length(stim)) {
      ts_abort("{.arg labels} has {length(labels)} value{?s} but there are {length(stim)} stimuli.", "mismatch", call = call)
    }
  }
  if (!is.null(neural)) as_neural(neural, stim, inform = FALSE, call = call)   # checked before any work
  rdm_method <- metrics$rsa_similarity$rdm_method %||% default_rdm_method
  dtype <- check_choice(dtype, c("float32", "float64"))
  opts <- list(batch_size = batch_size, device = device, stimuli = stim, layers = layers, dtype = dtype,
               reduce = reduce, k = k, seed = seed, memory = memory, cache = cache)

  # One task per unit; a ts_reps unit carries only its own layers.
  payload <- lapply(units, function(u) {
    if (u$kind == "file") return(list(unit = u))
    ls <- reps_unit_layers(u, layers, call)
    u$reps <- u$reps[ls]
    list(unit = u, layers = ls)
  })
  p <- progressr::progressor(steps = length(units))
  nth <- task_threads()
  out <- future.apply::future_lapply(payload, function(pl) with_task_threads(nth, torch = pl$unit$kind == "file", {
    r <- run_unit(pl, metrics, objs, inputs, labels, seed, opts, keep_activations, rdm_method)
    p(sprintf("%s step %s", pl$unit$model, pl$unit$step))
    r
  }), future.seed = seed, future.packages = "tensorscope")
  for (o in out) {
    if (isTRUE(o$failed)) {
      ts_abort(c("{.arg models}: no layer of {.val {o$unit$model}} (step {o$unit$step}) could be analysed.", x = "{o$why}"), "empty", call = call)
    }
  }
  entries <- unlist(lapply(out, `[[`, "entries"), recursive = FALSE)

  # Across checkpoints: each unit against the other checkpoints of its model.
  steps_ms <- scope_of(objs, "steps")
  if (length(steps_ms)) {
    model_of <- vapply(units, `[[`, "", "model")
    for (mod in unique(model_of)) {
      ii <- which(model_of == mod)
      ii <- ii[order(vapply(units[ii], `[[`, 0, "step"))]
      for (i in which(model_of == mod)) {
        ctx <- list(unit = units[[i]][c("model", "step", "kind")], seed = seed, stimuli = stim, opts = opts,
                    steps = lapply(out[ii], `[[`, "reduced"), last = length(ii), index = match(i, ii))
        for (m in steps_ms) entries[[length(entries) + 1]] <- metric_entry(units[[i]], m, run_metric(objs[[m]], out[[i]]$reduced, metrics[[m]], ctx))
      }
    }
  }

  layer_order <- lapply(out, `[[`, "layers")
  res <- new_results(entries, layer_order)
  res$units <- lapply(units, function(u) u[c("model", "step", "kind")])
  res$reduced <- stats::setNames(lapply(out, `[[`, "reduced"), vapply(units, function(u) paste(u$model, u$step), ""))
  res$rdms <- lapply(out, `[[`, "rdm")
  res$activations <- if (keep_activations) lapply(out, `[[`, "activations")
  res$stimuli <- stim
  res$labels <- labels  # stimulus categories, for category-sorted RDM figures
  # the reducer activations() chose for each layer of each unit (none / avgpool / srp(...) / gram(...))
  res$reducers <- do.call(rbind, lapply(out, function(o) {
    r <- o$reducers
    if (!length(r)) return(NULL)
    tibble::tibble(model = o$unit$model, step = as.double(o$unit$step), layer = names(r), reducer = unname(r))
  }))
  if (!is.null(res$reducers)) res$reducers$layer <- factor(res$reducers$layer, levels = unique(unlist(layer_order)))
  res$provenance <- list(
    package_version = as.character(utils::packageVersion("tensorscope")),
    libtorch_version = if (ts_torch_available()) ts_build_info()$torch_version else NA_character_,
    r_version = R.version.string,
    seed = seed, device = if (has_file) device else "none (representations given)", batch_size = batch_size,
    n_stimuli = length(stim),
    inputs_hash = if (has_file) rlang::hash(inputs) else rlang::hash(stim),
    plan = setdiff(class(future::plan()), "FutureStrategy")[1], workers = future::nbrOfWorkers(),
    extract_seconds = sum(vapply(out, `[[`, 0, "extract_seconds")),
    date = format(Sys.time(), "%Y-%m-%dT%H:%M:%S%z"),
    rdm_method = rdm_method,
    reduce = stats::setNames(lapply(out, function(o) as.list(o$reducers)), vapply(units, function(u) paste(u$model, u$step), "")),
    # activations()' preflight estimate per unit (bytes: model, forward, projections,
    # stored, inputs, analysis, and the budget)
    memory = stats::setNames(lapply(out, `[[`, "memory"), vapply(units, function(u) paste(u$model, u$step), "")),
    metrics = metrics
  )

  # Once per run: the neural scope, on the results so far.
  neural_ms <- scope_of(objs, "neural")
  if (length(neural_ms)) {
    ctx <- list(unit = list(model = NA_character_, step = NA_real_, kind = NA_character_), seed = seed, stimuli = stim,
                opts = opts, neural = neural)
    for (m in neural_ms) {
      r <- run_metric(objs[[m]], res, metrics[[m]], ctx)
      if (inherits(r$output, "ts_neural_comparison")) res$neural <- r$output
      entries[[length(entries) + 1]] <- metric_entry(list(model = NA_character_, step = NA_real_), m, r)
      if (r$status == "ok") {
        for (o in out) for (ly in names(o$rdm_errors)) entries[[length(entries) + 1]] <- metric_entry(o$unit, m, o$rdm_errors[[ly]], ly)
      }
    }
    res[c("values", "records", "extras")] <- new_results(entries, layer_order)[c("values", "records", "extras")]
  }
  res
}
