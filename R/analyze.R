# One analyzer for models and brains: analyze_models(), ts_metrics(), compare_to_neural().

# The metric registry: name -> family, scope and default arguments.
#   scope "layer": computed on one layer's activations at a time (then dropped);
#   scope "model": computed per model x checkpoint from the reduced layers, the model
#     file (weights, Fisher, attention) or the neural data;
#   scope "steps": computed across the checkpoints of one model.
metric_registry <- list(
  layer_activations = list(family = "geometry", scope = "layer", args = list()),
  effective_rank = list(family = "geometry", scope = "layer", args = list(on = "singular_values")),
  manifold_curvature = list(family = "geometry", scope = "layer", args = list(k = 10, alpha = 0.5)),
  robinson_fiber_test = list(family = "geometry", scope = "layer", args = list(k_range = c(1, 100), alpha = 0.05)),
  embedding_singularities = list(family = "geometry", scope = "layer", args = list(k_range = c(1, 100), alpha = 0.05)),
  feature_sparsity = list(family = "superposition", scope = "layer", args = list(threshold = 0)),
  vector_interference = list(family = "superposition", scope = "layer", args = list(centre = FALSE)),
  superposition_regime = list(family = "superposition", scope = "model", args = list(tol = 0.1)),
  cka_similarity = list(family = "alignment", scope = "model", args = list(kernel = "linear", estimator = "biased")),
  rsa_similarity = list(family = "alignment", scope = "neural",
                        args = list(method = "spearman", rdm_method = "euclidean", n_boot = 200, n_perm = 1000)),
  block_cka_gap = list(family = "alignment", scope = "model", args = list(n_blocks = 2)),
  grouped_fisher = list(family = "fisher", scope = "model", args = list(group = "layer", type = "empirical")),
  fisher_pruning_masks = list(family = "fisher", scope = "model", args = list(group = "layer", type = "empirical", keep = 0.2)),
  qkov_pairing = list(family = "circuits", scope = "model", args = list(n_baseline = 100)),
  induction_head_strength = list(family = "circuits", scope = "model", args = list()),
  attention_flow_patterns = list(family = "circuits", scope = "model", args = list(method = "rollout")),
  attention_entropy = list(family = "circuits", scope = "model", args = list(by = "head")),
  cka_trajectory = list(family = "dynamics", scope = "steps", args = list(kernel = "linear", estimator = "biased"))
)

metric_names <- function() names(metric_registry)

#' Choose the metrics of analyze_models()
#'
#' Each family is `TRUE` (all its metrics with default arguments), `FALSE` (none) or a
#' list of arguments that override the defaults of its metrics (e.g.
#' `geometry = list(k = 10)` sets the neighbourhood size of the curvature).
#'
#' | family | metrics |
#' | --- | --- |
#' | `alignment` | `cka_similarity` (linear CKA between all layers, [cka_layers()]), `block_cka_gap`, `rsa_similarity` (RSA of every layer to each neural data set, [rsa()]; needs `neural`) |
#' | `geometry` | `layer_activations` ([summary.ts_reps()]), `effective_rank` ([effective_rank()]), `manifold_curvature` ([ricci_curvature()] summary), `robinson_fiber_test` ([fiber_bundle_test()]), `embedding_singularities` ([embedding_singularities()]) |
#' | `superposition` | `feature_sparsity` ([feature_sparsity()] summary), `vector_interference` ([vector_interference()]), `superposition_regime` ([superposition()] of every 2-d weight matrix; needs a model file) |
#' | `fisher` | `grouped_fisher` ([fisher()]), `fisher_pruning_masks` ([fisher_mask()]); need LibTorch, a model file and `labels` |
#' | `circuits` | `qkov_pairing` ([composition_scores()]), `induction_head_strength` ([head_scores()] on repeated random tokens: induction and previous-token scores per head; args such as `bos` and `n_seqs` are passed on), `attention_flow_patterns` ([attention_flow()]), `attention_entropy` ([attention_entropy()]); need a transformer with `hook_pattern` submodules |
#' | `dynamics` | `cka_trajectory`: linear CKA of every layer at every checkpoint with the same layer at the last checkpoint (needs several checkpoints of a model) |
#'
#' **block_cka_gap.** The layers (in model order) are cut into `n_blocks` contiguous
#' blocks of at least two layers, choosing the cuts that maximise the gap
#' \eqn{\bar{C}_{within} - \bar{C}_{between}}, the mean linear CKA between distinct
#' layers of the same block minus the mean CKA between layers of different blocks
#' (Nguyen, Raghu & Kornblith 2021's "block structure"). Rows: `gap`, `within`,
#' `between` (layer `NA`) and `block` (the block index of every layer).
#'
#' @param alignment,geometry,superposition,fisher,circuits,dynamics `TRUE`, `FALSE` or
#'   a named list of argument overrides for that family.
#' @return A `ts_metrics` object: a named list, metric name -> list of arguments.
#' @seealso [analyze_models()]
#' @export
#' @examples
#' ts_metrics(geometry = list(k = 5), fisher = FALSE, circuits = FALSE)
#' names(ts_metrics())
ts_metrics <- function(alignment = TRUE, geometry = TRUE, superposition = TRUE, fisher = TRUE,
                       circuits = TRUE, dynamics = TRUE) {
  fam <- list(alignment = alignment, geometry = geometry, superposition = superposition,
              fisher = fisher, circuits = circuits, dynamics = dynamics)
  out <- list()
  for (f in names(fam)) {
    v <- fam[[f]]
    if (isFALSE(v)) next
    if (!isTRUE(v) && !(is.list(v) && (length(v) == 0 || !is.null(names(v)) && all(nzchar(names(v)))))) {
      ts_abort("{.arg {f}} must be TRUE, FALSE or a named list of arguments, not {describe(v)}.", "argument")
    }
    for (m in names(metric_registry)[vapply(metric_registry, function(r) r$family == f, logical(1))]) {
      a <- metric_registry[[m]]$args
      if (is.list(v)) a[names(v)] <- v
      out[[m]] <- a
    }
  }
  structure(out, class = "ts_metrics")
}

#' @export
print.ts_metrics <- function(x, ...) {
  cli::cat_line("<ts_metrics> ", length(x), " metric", if (length(x) != 1) "s")
  for (m in names(x)) {
    a <- x[[m]]
    cli::cat_line("  ", m, if (length(a)) paste0(" (", paste(names(a), vapply(a, function(v) paste(format(v), collapse = ","), ""),
                                                        sep = " = ", collapse = ", "), ")"))
  }
  invisible(x)
}

as_metrics <- function(metrics, call = rlang::caller_env()) {
  if (inherits(metrics, "ts_metrics")) return(unclass(metrics))
  if (!is.character(metrics) || !length(metrics) || anyNA(metrics)) {
    ts_abort("{.arg metrics} must be {.fn ts_metrics} or a character vector of metric names, not {describe(metrics)}.",
             "argument", call = call)
  }
  bad <- setdiff(metrics, metric_names())
  if (length(bad)) {
    cli::cli_abort(c("Unknown metric{?s} {.val {bad}} in {.arg metrics}.", i = "Valid metrics: {.val {metric_names()}}."),
                   class = c("tensorscope_error_unknown_metric", "tensorscope_error_argument", "tensorscope_error"),
                   valid = metric_names(), call = call)
  }
  lapply(metric_registry[unique(metrics)], `[[`, "args")
}

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

unit_layers <- function(u, layers, call) {
  if (u$kind == "reps") {
    ls <- names(u$reps$layers)
    if (!is.null(layers)) {
      bad <- setdiff(layers, ls)
      if (length(bad)) ts_abort("{.arg layers}: no layer{?s} {.val {bad}} in {.val {u$model}}.", "argument", call = call)
      ls <- intersect(ls, layers)
    }
    return(ls)
  }
  check_layers(ts_model(u$path), layers, call = call)
}

# One layer's activations (stimuli x features) of a unit.
unit_layer <- function(u, layer, inputs, opts) {
  if (u$kind == "reps") return(u$reps$layers[[layer]])
  r <- activations(ts_model(u$path, opts$device), inputs, layers = layer, batch_size = opts$batch_size,
                   stimuli = opts$stimuli)
  r$layers[[1]]
}

# A matrix with the same centred Gram matrix (hence the same linear CKA and the same
# Euclidean distances between stimuli) as x, with at most n columns.
reduce_layer <- function(x) {
  xc <- sweep(x, 2L, colMeans(x))
  if (ncol(xc) <= nrow(xc)) return(xc)
  e <- eigen(tcrossprod(xc), symmetric = TRUE)
  keep <- e$values > max(e$values) * 1e-13
  r <- e$vectors[, keep, drop = FALSE] %*% diag(sqrt(e$values[keep]), sum(keep))
  dimnames(r) <- list(rownames(x), NULL)
  r
}

# A tidy tibble -> long rows (layer, statistic, value). Columns `metric`/`value` are
# used when present; otherwise every numeric column is a statistic and the other
# columns (except layer) identify it.
longify <- function(df, layer = NULL) {
  df <- as.data.frame(df, stringsAsFactors = FALSE)
  df <- df[, !vapply(df, is.list, logical(1)), drop = FALSE]
  lay <- if ("layer" %in% names(df)) as.character(df$layer) else rep(layer %||% NA_character_, nrow(df))
  if (!is.null(layer)) lay <- rep(layer, nrow(df))
  df$layer <- NULL
  if (all(c("statistic", "value") %in% names(df))) {
    return(tibble::tibble(layer = lay, statistic = as.character(df$statistic), value = as.double(df$value)))
  }
  if (all(c("metric", "value") %in% names(df))) {
    ids <- setdiff(names(df)[!vapply(df, is.double, logical(1))], "metric")
    stat <- if (length(ids)) paste(do.call(paste, c(lapply(df[ids], as.character), sep = ":")), df$metric, sep = ":") else df$metric
    return(tibble::tibble(layer = lay, statistic = as.character(stat), value = as.double(df$value)))
  }
  num <- names(df)[vapply(df, function(v) is.numeric(v) || is.logical(v), logical(1))]
  ids <- setdiff(names(df), num)
  idn <- if (length(ids)) do.call(paste, c(lapply(df[ids], as.character), sep = ":")) else NULL
  rows <- lapply(num, function(v) {
    tibble::tibble(layer = lay, statistic = if (is.null(idn)) v else paste(idn, v, sep = ":"), value = as.double(df[[v]]))
  })
  do.call(rbind, rows)
}

# ---- metric implementations (each returns a tidy tibble) ----------------------------

layer_metric <- function(name, x, layer, a) {
  r <- ts_reps(stats::setNames(list(x), layer))
  switch(name,
    layer_activations = summary(r)[, c("layer", "n_features", "mean", "sd", "frac_zero", "n_constant")],
    effective_rank = effective_rank(r, on = a$on),
    manifold_curvature = summary(ricci_curvature(x, k = a$k, alpha = a$alpha)),
    robinson_fiber_test = fiber_bundle_test(x, k_range = a$k_range, alpha = a$alpha)$decision,
    embedding_singularities = embedding_singularities(r, k_range = a$k_range, alpha = a$alpha)[, c("layer", "n_points", "count", "fraction")],
    feature_sparsity = summary(feature_sparsity(r, threshold = a$threshold)),
    vector_interference = vector_interference(r, centre = a$centre)
  )
}

skip <- function(reason) structure(list(reason = reason), class = "ts_skip")

# Context of a model-level metric: the unit, its reduced layers, inputs, labels, options.
model_metric <- function(name, ctx, a) {
  u <- ctx$unit
  needs_file <- function() if (u$kind != "file") skip("needs a model file (got extracted representations)")
  needs_torch <- function() if (!ts_torch_available()) skip("LibTorch backend not available")
  attn_hooks <- function(model) {
    m <- model$modules$module
    m[grepl("hook_pattern$", m)]
  }
  switch(name,
    cka_similarity = {
      out <- cka_layers(ctx$reduced, kernel = a$kernel, estimator = a$estimator)
      tibble::tibble(layer = as.character(out$layer_x), statistic = paste0("cka:", out$layer_y), value = out$cka,
                     .raw = list(out))
    },
    block_cka_gap = block_cka_gap(cka_layers(ctx$reduced), a$n_blocks),
    superposition_regime = {
      s <- needs_file() %||% needs_torch()
      if (!is.null(s)) return(s)
      p <- model_parameters(ts_model(u$path))
      w <- p[vapply(p, function(v) length(dim(v)) == 2 && min(dim(v)) > 1, logical(1))]
      if (!length(w)) return(skip("the model has no 2-d weight matrices"))
      rows <- lapply(names(w), function(nm) {
        s <- superposition(w[[nm]], orientation = "dims_by_features", tol = a$tol)
        longify(s$summary, layer = nm)
      })
      do.call(rbind, rows)
    },
    grouped_fisher = ,
    fisher_pruning_masks = {
      s <- needs_file() %||% needs_torch()
      if (!is.null(s)) return(s)
      if (is.null(ctx$labels)) return(skip("needs labels (targets of the Fisher information)"))
      f <- fisher(u$path, ctx$inputs, ctx$labels, type = a$type, group = a$group, batch_size = ctx$opts$batch_size,
                  seed = ctx$seed)
      if (name == "grouped_fisher") {
        return(tibble::tibble(layer = f$module, statistic = "fisher", value = f$fisher))
      }
      m <- fisher_mask(f, keep = a$keep)
      tibble::tibble(layer = m$module, statistic = "kept", value = as.double(m$keep))
    },
    qkov_pairing = ,
    induction_head_strength = ,
    attention_flow_patterns = ,
    attention_entropy = {
      s <- needs_file() %||% needs_torch()
      if (!is.null(s)) return(s)
      model <- ts_model(u$path)
      if (!length(attn_hooks(model))) return(skip("no attention (hook_pattern) submodules: not a transformer"))
      if (name == "induction_head_strength") {
        # on repeated random tokens (head_scores()), not on `inputs`: the score needs
        # sequences whose second half repeats the first
        h <- do.call(head_scores, c(list(model, type = c("induction", "previous_token"), seed = ctx$seed), a))
        return(tibble::tibble(layer = paste0("block", h$layer - 1L), statistic = paste0("head", h$head, ":", h$type),
                              value = h$score))
      }
      if (name == "qkov_pairing") {
        cs <- composition_scores(model, n_baseline = a$n_baseline, seed = ctx$seed)
        return(longify(cs))
      }
      p <- attention_patterns(model, ctx$inputs[[1]])
      switch(name,
        attention_entropy = {
          e <- attention_entropy(p, by = a$by)
          longify(e)
        },
        attention_flow_patterns = {
          f <- attention_flow(p, method = a$method)
          agg <- stats::aggregate(weight ~ query + key, data = f, FUN = mean)
          tibble::tibble(layer = NA_character_, statistic = sprintf("q%d:k%d", agg$query, agg$key), value = agg$weight)
        })
    }
  )
}

# Mean within-block minus between-block linear CKA, maximised over contiguous cuts.
block_cka_gap <- function(ck, n_blocks = 2) {
  n_blocks <- check_count(n_blocks, min = 2)
  lv <- levels(ck$layer_x)
  L <- length(lv)
  m <- matrix(ck$cka, L, L, dimnames = list(lv, lv))
  if (L < 2 * n_blocks) return(skip(sprintf("needs at least %d layers for %d blocks", 2 * n_blocks, n_blocks)))
  cuts <- utils::combn(seq_len(L - 1), n_blocks - 1, simplify = FALSE)
  best <- NULL
  off <- row(m) != col(m)
  for (cc in cuts) {
    b <- findInterval(seq_len(L), cc + 1) + 1
    if (any(tabulate(b, n_blocks) < 2)) next
    same <- outer(b, b, `==`)
    w <- mean(m[same & off])
    btw <- mean(m[!same])
    if (is.null(best) || w - btw > best$gap) best <- list(gap = w - btw, within = w, between = btw, block = b)
  }
  rbind(tibble::tibble(layer = NA_character_, statistic = c("gap", "within", "between"),
                       value = c(best$gap, best$within, best$between)),
        tibble::tibble(layer = rownames(m), statistic = "block", value = as.double(best$block)))
}

# Runs fn(), timing it; returns list(table, status, reason, seconds).
run_metric <- function(fn) {
  t0 <- proc.time()[["elapsed"]]
  res <- tryCatch(fn(), error = function(e) structure(list(message = conditionMessage(e)), class = "ts_failed"))
  secs <- proc.time()[["elapsed"]] - t0
  if (inherits(res, "ts_skip")) return(list(table = NULL, raw = NULL, status = "skipped", reason = res$reason, seconds = secs))
  if (inherits(res, "ts_failed")) return(list(table = NULL, raw = NULL, status = "error", reason = res$message, seconds = secs))
  raw <- NULL
  if (".raw" %in% names(res)) { raw <- res$.raw[[1]]; res$.raw <- NULL }
  list(table = res, raw = raw, status = "ok", reason = NA_character_, seconds = secs)
}

#' Analyse models (and checkpoints) with every metric under identical conditions
#'
#' Runs the chosen metrics on one or several models, on every checkpoint of a training
#' run, or on already-extracted representations, with the same stimuli, batch size,
#' seed and device for all of them, and collects the results (with provenance and
#' per-metric timings) in one [ts_results] object.
#'
#' **Work and memory.** The work is split into model x checkpoint x layer tasks that are
#' dispatched with `future.apply` under the user's [future::plan()] (sequential by
#' default; `plan(multisession)` on a laptop, `future.batchtools` on a cluster); the
#' results do not depend on the plan. Under `multisession` / `multicore` each task runs
#' its OpenMP, OpenBLAS and LibTorch code on its share of the cores (cores / workers),
#' so that the workers do not oversubscribe the machine. Progress is reported through `progressr`
#' (wrap the call in `progressr::with_progress()`). Each task computes one layer's
#' activations, reduces them to the layer metrics, to the layer's RDM (for
#' [compare_to_neural()]) and to an
#' n x min(n, p) matrix with the same centred Gram matrix (all that linear CKA needs:
#' CKA from it equals CKA from the activations), and drops the activations unless
#' `keep_activations = TRUE`.
#'
#' A layer that cannot be analysed (its outputs hold non-finite values, like the -Inf of
#' masked attention scores, or are the same for every stimulus, like a positional
#' embedding) is recorded as an error for each layer metric, with the reason, and left
#' out of the model-level metrics; the run goes on.
#'
#' **Applicability.** A metric that does not apply (circuits on a CNN, Fisher without
#' LibTorch, without a model file or without `labels`, RSA without `neural`) is
#' recorded as `"skipped"` with the reason; a metric that fails is recorded as
#' `"error"` with the message and the rest of the run continues.
#'
#' @param models One or several models: [ts_model()] objects or TorchScript paths, a
#'   vector of checkpoint files or a directory of them (one `step` per checkpoint), a
#'   [ts_reps()] or a (named) list of them. A named list names the models.
#' @param inputs The stimuli fed to every model (see [activations()]); not needed for
#'   `ts_reps` input.
#' @param metrics [ts_metrics()] or a character vector of metric names (see
#'   [ts_metrics()] for the list); unknown names give an error of class
#'   `tensorscope_error_unknown_metric`.
#' @param neural Optional neural data (see [compare_to_neural()]): when given, the
#'   `rsa_similarity` metric aligns every layer to each data set.
#' @param labels Optional stimulus labels (factor or 0-based class indices): targets of
#'   the Fisher information.
#' @param seed Seed of every random step (permutations, bootstrap, Fisher sampling,
#'   baselines), passed explicitly to each metric.
#' @param ... Unused; must be empty.
#' @param layers Layers to analyse (default: every leaf submodule / every layer).
#' @param batch_size,device Forward-pass batch size and device of all models.
#' @param keep_activations Keep each layer's activations in the result (`$activations`).
#' @return A [ts_results] object.
#' @seealso [ts_metrics()], [compare_to_neural()], [save_report()]
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
                           layers = NULL, batch_size = 64, device = "cpu", keep_activations = FALSE) {
  call <- rlang::current_env()
  rlang::check_dots_empty(call = call)
  metrics <- as_metrics(metrics, call = call)
  seed <- check_seed(seed)
  batch_size <- check_count(batch_size, min = 1)
  if (!is.logical(keep_activations) || length(keep_activations) != 1 || is.na(keep_activations)) {
    ts_abort("{.arg keep_activations} must be TRUE or FALSE, not {describe(keep_activations)}.", "argument", call = call)
  }
  units <- analysis_units(models, call)
  has_file <- any(vapply(units, function(u) u$kind == "file", logical(1)))
  if (has_file) {
    if (!ts_torch_available()) torch_backend(call = call)
    device <- check_device(device, call = call)
    if (is.null(inputs)) ts_abort("{.arg inputs} is needed to run model files.", "argument", call = call)
    inputs <- as_inputs(inputs, call = call)
  }
  stim <- if (has_file) dimnames(inputs[[1]])[[1]] %||% as.character(seq_len(dim(inputs[[1]])[1])) else units[[1]]$reps$stimuli
  for (u in units) {
    s <- if (u$kind == "reps") u$reps$stimuli else stim
    if (length(s) != length(stim) || !identical(s, stim)) {
      ts_abort("Every model must be analysed on the same stimuli; {.val {u$model}} has {length(s)} stimuli, not the {length(stim)} of the first.",
               "mismatch", call = call)
    }
  }
  if (!is.null(labels)) {
    if (length(labels) != length(stim)) {
      ts_abort("{.arg labels} has {length(labels)} value{?s} but there are {length(stim)} stimuli.", "mismatch", call = call)
    }
  }
  neural_sets <- if (!is.null(neural)) as_neural(neural, stim, call = call)
  opts <- list(batch_size = batch_size, device = device, stimuli = stim)
  unit_layers_list <- lapply(units, unit_layers, layers = layers, call = call)

  # Layer tasks: one per unit x layer.
  tasks <- do.call(rbind, lapply(seq_along(units), function(i) data.frame(unit = i, layer = unit_layers_list[[i]])))
  layer_metrics <- intersect(names(metrics), names(metric_registry)[vapply(metric_registry, function(r) r$scope == "layer", logical(1))])
  p <- progressr::progressor(steps = nrow(tasks) + length(units))
  layer_payload <- lapply(seq_len(nrow(tasks)), function(k) {
    u <- units[[tasks$unit[k]]]
    if (u$kind == "reps") u$reps <- ts_reps(stats::setNames(list(u$reps$layers[[tasks$layer[k]]]), tasks$layer[k]),
                                            stimuli = u$reps$stimuli)
    list(unit = u, layer = tasks$layer[k])
  })
  nth <- task_threads()
  layer_out <- future.apply::future_lapply(layer_payload, function(pl) with_task_threads(nth, torch = pl$unit$kind == "file", {
    u <- pl$unit
    ly <- pl$layer
    t0 <- proc.time()[["elapsed"]]
    x <- tryCatch(unit_layer(u, ly, inputs, opts), error = function(e) e)
    extract <- proc.time()[["elapsed"]] - t0
    # A layer that cannot be analysed (non-finite values, the same output for every
    # stimulus) is recorded as failed for every layer metric and left out of the rest.
    bad <- if (inherits(x, "error")) gsub("\\s*\n\\s*", " ", conditionMessage(x)) else if (cpp_rows_constant(x)) "its output is the same for every stimulus"
    if (!is.null(bad)) {
      fail <- list(table = NULL, raw = NULL, status = "error", reason = paste("layer not analysed:", bad), seconds = 0)
      p(sprintf("%s step %s %s", u$model, u$step, ly))
      return(list(metrics = stats::setNames(rep(list(fail), length(layer_metrics)), layer_metrics),
                  failed = TRUE, extract_seconds = extract))
    }
    res <- lapply(layer_metrics, function(m) run_metric(function() layer_metric(m, x, ly, metrics[[m]])))
    names(res) <- layer_metrics
    out <- list(metrics = res, reduced = reduce_layer(x), extract_seconds = extract,
                rdm = rdm(x, method = metrics$rsa_similarity$rdm_method %||% "euclidean"),
                activations = if (keep_activations) x)
    rm(x)
    p(sprintf("%s step %s %s", u$model, u$step, ly))
    out
  }), future.seed = seed, future.packages = "tensorscope")

  # Model tasks: one per unit, from the reduced layers.
  model_metrics <- intersect(names(metrics), names(metric_registry)[vapply(metric_registry, function(r) r$scope == "model", logical(1))])
  analysed <- !vapply(layer_out, function(o) isTRUE(o$failed), logical(1))
  reduced <- lapply(seq_along(units), function(i) {
    idx <- which(tasks$unit == i & analysed)
    if (!length(idx)) {
      why <- layer_out[[which(tasks$unit == i)[1]]]$metrics
      ts_abort(c("No layer of {.val {units[[i]]$model}} (step {units[[i]]$step}) could be analysed.",
                 x = "{if (length(why)) why[[1]]$reason else 'every layer failed'}"), "empty", call = call)
    }
    ts_reps(stats::setNames(lapply(layer_out[idx], `[[`, "reduced"), tasks$layer[idx]), stimuli = stim)
  })
  # Each task gets only its own unit and reduced layers (not every unit's).
  payload <- lapply(seq_along(units), function(i) list(unit = units[[i]], reduced = reduced[[i]]))
  model_out <- future.apply::future_lapply(payload, function(pl) with_task_threads(nth, torch = pl$unit$kind == "file", {
    ctx <- list(unit = pl$unit, reduced = pl$reduced, inputs = inputs, labels = labels, seed = seed, opts = opts)
    res <- lapply(model_metrics, function(m) run_metric(function() model_metric(m, ctx, metrics[[m]])))
    names(res) <- model_metrics
    p(sprintf("%s step %s", pl$unit$model, pl$unit$step))
    res
  }), future.seed = seed, future.packages = "tensorscope")

  # Collect: records (model, step, metric, status, reason, seconds) and long values.
  recs <- list()
  vals <- list()
  raws <- list()
  add <- function(u, m, r, layer = NA_character_) {
    recs[[length(recs) + 1]] <<- tibble::tibble(model = u$model, step = u$step, layer = layer, metric = m,
                                                status = r$status, reason = r$reason, seconds = r$seconds)
    if (!is.null(r$table) && nrow(r$table)) {
      t <- longify(r$table, layer = if (!is.na(layer)) layer)
      vals[[length(vals) + 1]] <<- tibble::tibble(model = u$model, step = u$step, layer = t$layer, metric = m,
                                                  statistic = t$statistic, value = t$value)
    }
    if (!is.null(r$raw)) raws[[m]][[length(raws[[m]]) + 1]] <<- list(model = u$model, step = u$step, value = r$raw)
  }
  for (k in seq_len(nrow(tasks))) {
    for (m in layer_metrics) add(units[[tasks$unit[k]]], m, layer_out[[k]]$metrics[[m]], tasks$layer[k])
  }
  for (i in seq_along(units)) for (m in model_metrics) add(units[[i]], m, model_out[[i]][[m]])

  # Across checkpoints: CKA trajectory of each layer to its last checkpoint.
  if ("cka_trajectory" %in% names(metrics)) {
    for (mod in unique(vapply(units, `[[`, "", "model"))) {
      ii <- which(vapply(units, `[[`, "", "model") == mod)
      a <- metrics$cka_trajectory
      for (i in ii) {
        r <- run_metric(function() {
          if (length(ii) < 2) return(skip("needs several checkpoints of the model"))
          last <- ii[which.max(vapply(units[ii], `[[`, 0, "step"))]
          common <- intersect(names(reduced[[i]]$layers), names(reduced[[last]]$layers))
          tibble::tibble(layer = common, statistic = "cka_to_last",
                         value = vapply(common, function(l) cka(reduced[[i]]$layers[[l]], reduced[[last]]$layers[[l]],
                                                                kernel = a$kernel, estimator = a$estimator), 0))
        })
        add(units[[i]], "cka_trajectory", r)
      }
    }
  }

  res <- new_results(
    values = do.call(rbind, vals) %||% empty_values(),
    records = do.call(rbind, recs),
    raw = raws,
    units = lapply(units, function(u) u[c("model", "step", "kind")]),
    reduced = stats::setNames(reduced, vapply(units, function(u) paste(u$model, u$step), "")),
    rdms = lapply(seq_along(units), function(i) {
      idx <- which(tasks$unit == i & analysed)
      r <- as_rdm(lapply(layer_out[idx], function(o) as.matrix(o$rdm)), names = tasks$layer[idx])
      r
    }),
    activations = if (keep_activations) lapply(seq_along(units), function(i) {
      idx <- which(tasks$unit == i & analysed)
      stats::setNames(lapply(layer_out[idx], `[[`, "activations"), tasks$layer[idx])
    }),
    stimuli = stim,
    provenance = list(
      package_version = as.character(utils::packageVersion("tensorscope")),
      libtorch_version = if (ts_torch_available()) ts_build_info()$torch_version else NA_character_,
      r_version = R.version.string,
      seed = seed, device = if (has_file) device else "none (representations given)", batch_size = batch_size,
      n_stimuli = length(stim),
      inputs_hash = if (has_file) rlang::hash(inputs) else rlang::hash(stim),
      plan = setdiff(class(future::plan()), "FutureStrategy")[1], workers = future::nbrOfWorkers(),
      extract_seconds = sum(vapply(layer_out, `[[`, 0, "extract_seconds")),
      date = format(Sys.time(), "%Y-%m-%dT%H:%M:%S%z"),
      metrics = metrics
    )
  )
  if (!is.null(neural_sets) && "rsa_similarity" %in% names(metrics)) {
    a <- metrics$rsa_similarity
    r <- run_metric(function() compare_to_neural(res, neural, method = a$method, rdm_method = a$rdm_method,
                                                  n_boot = a$n_boot, n_perm = a$n_perm, seed = seed))
    res$neural <- r$table
    recs2 <- tibble::tibble(model = NA_character_, step = NA_real_, layer = NA_character_, metric = "rsa_similarity",
                            status = r$status, reason = r$reason, seconds = r$seconds)
    res$records <- rbind(res$records, recs2)
    if (r$status == "ok") {
      nt <- r$table
      long <- rbind(
        tibble::tibble(model = nt$model, step = nt$step, layer = nt$layer, metric = "rsa_similarity",
                       statistic = paste0(nt$area, ":rsa"), value = nt$rsa),
        tibble::tibble(model = nt$model, step = nt$step, layer = nt$layer, metric = "rsa_similarity",
                       statistic = paste0(nt$area, ":cka"), value = nt$cka))
      res$values <- rbind(res$values, long)
    }
  } else if ("rsa_similarity" %in% names(metrics)) {
    res$records <- rbind(res$records, tibble::tibble(model = NA_character_, step = NA_real_, layer = NA_character_,
                                                     metric = "rsa_similarity", status = "skipped",
                                                     reason = "needs neural data (`neural`)", seconds = 0))
  }
  res$get <- make_getter(res)
  res
}

empty_values <- function() {
  tibble::tibble(model = character(), step = double(), layer = character(), metric = character(),
                 statistic = character(), value = double())
}

# ---- neural data ---------------------------------------------------------------------

# neural -> named list of areas; each: list(rdm = ts_rdm (one per subject), data = list of matrices or NULL).
as_neural <- function(neural, stimuli, call = rlang::caller_env()) {
  if (is.matrix(neural) || is.data.frame(neural) || inherits(neural, "ts_rdm")) neural <- list(neural = neural)
  if (!is.list(neural) || !length(neural)) {
    ts_abort("{.arg neural} must be a named list of areas (stimuli x neurons matrices, lists of them, or RDMs), not {describe(neural)}.",
             "type", call = call)
  }
  nms <- names(neural) %||% rep("", length(neural))
  nms[!nzchar(nms)] <- paste0("area", seq_along(neural))[!nzchar(nms)]
  out <- list()
  for (i in seq_along(neural)) {
    a <- neural[[i]]
    arg <- sprintf("neural$%s", nms[i])
    if (inherits(a, "ts_rdm")) {
      labs <- a$labels
      check_neural_stimuli(labs, stimuli, arg, call)
      out[[nms[i]]] <- list(rdm = a, data = NULL)
      next
    }
    subj <- if (is.list(a) && !is.data.frame(a)) a else list(a)
    data <- lapply(seq_along(subj), function(j) {
      m <- as_data_matrix(subj[[j]], arg = arg, call = call)
      check_neural_stimuli(rownames(m) %||% as.character(seq_len(nrow(m))), stimuli, arg, call, n = nrow(m))
      m
    })
    names(data) <- names(subj) %||% paste0("subject", seq_along(data))
    out[[nms[i]]] <- list(rdm = NULL, data = data)
  }
  out
}

check_neural_stimuli <- function(ids, stimuli, arg, call, n = length(ids)) {
  default <- identical(ids, as.character(seq_len(n)))
  if (n != length(stimuli) || (!is.null(ids) && !default && !identical(as.character(ids), stimuli))) {
    first <- if (n == length(stimuli)) ids[which(ids != stimuli)[1]] else NA
    ts_abort(c("{.arg {arg}} is over other stimuli than the models: {n} stimuli vs {length(stimuli)}.",
               i = if (!is.na(first)) "First differing stimulus id: {.val {first}}."),
             "mismatch", call = call)
  }
}

#' Align every layer of analysed models to neural data and rank the models
#'
#' For every model x checkpoint of `results` and every neural data set ("area",
#' "species", ...), computes the RSA ([rsa()], with bootstrap confidence intervals,
#' permutation p-values and, for several subjects, the noise ceiling) and the linear CKA
#' ([cka()], mean over subjects) of every layer, picks the best layer per data set, and
#' ranks the models Brain-Score style: a model's score is the mean over data sets of
#' its best layer's similarity divided by the data set's upper noise ceiling (or the
#' raw similarity when there is no ceiling, i.e. one subject).
#' Neural predictivity is added as the column `predictivity`: the median over neurons
#' of the cross-validated Pearson r of ridge regression from the layer to each
#' neuron ([predictivity()], 5 folds, alpha per neuron by GCV), averaged over subjects.
#' It is computed from the layers' stored Gram factors, which give exactly the
#' predictions of the full activations (ridge depends on the features only through
#' the centred Gram matrix). `NA` for data sets given only as RDMs.
#'
#' @param results A [ts_results] from [analyze_models()].
#' @param neural A named list of data sets. Each is a stimuli x neurons matrix, a list of
#'   them (subjects), or a `ts_rdm` of one or more subjects' RDMs. Stimulus ids (row
#'   names / RDM labels) must be those the models saw, in the same order; otherwise an
#'   error of class `tensorscope_error_mismatch`.
#' @param method,n_boot,n_perm,seed Passed to [rsa()].
#' @param predictivity Also compute ridge predictivity of every neuron (see Details).
#' @param rdm_method Dissimilarity of the neural RDMs computed from matrices: that of
#'   the layer RDMs in `results` (the `rdm_method` of the `rsa_similarity` metric,
#'   default `"euclidean"`, which a random linear read-out preserves).
#' @return A tibble of class `ts_neural_comparison`, one row per model x step x area x
#'   layer: `model`, `step`, `area`, `layer`, `rsa`, `ci_lower`, `ci_upper`, `p_value`,
#'   `ceiling_lower`, `ceiling_upper`, `cka` (`NA` for RDM-only data), `predictivity`
#'   (median cross-validated r, `NA` for RDM-only data or `predictivity = FALSE`), `best` (the
#'   layer with the highest RSA for this model, step and area). Attributes: `best`
#'   (the best rows) and `ranking` (one row per model x step: `model`, `step`, `score`,
#'   `rank`).
#' @export
#' @examples
#' sim <- simulate_model_and_brain(n_stimuli = 48, n_subjects = 2, source_layer = 3)
#' res <- analyze_models(list(sim = sim$reps), metrics = "effective_rank")
#' cmp <- compare_to_neural(res, list(IT = sim$neural), n_boot = 50, n_perm = 100)
#' attr(cmp, "best")
compare_to_neural <- function(results, neural, method = "spearman", rdm_method = NULL, n_boot = 200, n_perm = 1000,
                              seed = 1, predictivity = TRUE) {
  do_pred <- isTRUE(predictivity)
  call <- rlang::current_env()
  if (!inherits(results, "ts_results")) ts_abort("{.arg results} must come from {.fn analyze_models}, not {describe(results)}.", "type")
  if (is.null(results$reduced)) ts_abort("{.arg results} has no layer data (read from a JSON report?); run {.fn analyze_models} again.", "empty")
  stim <- results$stimuli
  areas <- as_neural(neural, stim, call = call)
  used <- results$provenance$metrics$rsa_similarity$rdm_method %||% "euclidean"
  rdm_method <- rdm_method %||% used
  if (!identical(rdm_method, used)) {
    ts_abort("{.arg rdm_method} must be {.val {used}}, the dissimilarity of the layer RDMs in {.arg results}.", "argument", call = call)
  }
  if (is.null(results$rdms)) {
    ts_abort("{.arg results} has no layer RDMs: run {.fn analyze_models} again.", "empty", call = call)
  }
  neural_rdms <- lapply(areas, function(a) {
    a$rdm %||% as_rdm(lapply(a$data, function(m) as.matrix(rdm(m, method = rdm_method))), names = names(a$data))
  })
  # One task per model x checkpoint, under the user's future plan.
  payload <- lapply(seq_along(results$reduced), function(k) {
    list(unit = results$units[[k]], reduced = results$reduced[[k]], rdm = results$rdms[[k]])
  })
  nth <- task_threads()
  rows <- future.apply::future_lapply(payload, function(pl) with_task_threads(nth, {
    u <- pl$unit
    red <- pl$reduced
    model_rdm <- pl$rdm
    do.call(rbind, lapply(names(areas), function(an) {
      a <- areas[[an]]
      r <- summary(rsa(model_rdm, neural_rdms[[an]], method = method, n_boot = n_boot, n_perm = n_perm, seed = seed))
      ck <- if (!is.null(a$data)) {
        vapply(names(red$layers), function(l) mean(vapply(a$data, function(m) cka(red$layers[[l]], m), 0)), 0)
      } else stats::setNames(rep(NA_real_, length(red$layers)), names(red$layers))
      pr <- stats::setNames(rep(NA_real_, length(red$layers)), names(red$layers))
      if (do_pred && !is.null(a$data)) {
        layer_reps <- ts_reps(red$layers, stimuli = stim)
        per_subject <- vapply(a$data, function(m) {
          sm <- summary(tensorscope::predictivity(layer_reps, unname(m), method = "ridge", folds = 5, seed = seed))
          stats::setNames(sm$median_r, as.character(sm$layer))[names(pr)]
        }, numeric(length(pr)))
        pr[] <- rowMeans(matrix(per_subject, nrow = length(pr)))
      }
      tibble::tibble(
        model = u$model, step = u$step, area = an, layer = as.character(r$layer), rsa = r$similarity,
        ci_lower = r$ci_lower, ci_upper = r$ci_upper, p_value = r$p_value,
        ceiling_lower = r$ceiling_lower, ceiling_upper = r$ceiling_upper,
        cka = unname(ck[as.character(r$layer)]), predictivity = unname(pr[as.character(r$layer)]))
    }))
  }), future.seed = seed, future.packages = "tensorscope")
  out <- do.call(rbind, rows)
  key <- paste(out$model, out$step, out$area, sep = "\r")
  best_rsa <- stats::ave(out$rsa, key, FUN = max)
  out$best <- out$rsa == best_rsa
  bi <- which(out$best)
  bi <- bi[!duplicated(key[bi])]
  best <- out[bi, ]
  norm <- ifelse(is.finite(best$ceiling_upper) & best$ceiling_upper > 0, best$rsa / best$ceiling_upper, best$rsa)
  mk <- paste(best$model, best$step, sep = "\r")
  score <- tapply(norm, mk, mean)
  first <- best[!duplicated(mk), c("model", "step")]
  ranking <- tibble::tibble(model = first$model, step = first$step,
                            score = as.double(score[paste(first$model, first$step, sep = "\r")]))
  ranking <- ranking[order(-ranking$score), ]
  ranking$rank <- seq_len(nrow(ranking))
  structure(out, class = c("ts_neural_comparison", class(out)), best = best, ranking = ranking)
}

