# The metric registry of analyze_models(): metric objects (new_metric()), the registry
# (register_metric()), the metric set (ts_metrics()) and the docs table generated from it.
# Each family declares its metrics at the end of its own file (R/geometry.R, ...), inside
# rlang::on_load() so that they are registered when the package loads (the files are
# sourced in alphabetical order, before this one exists for some of them).

metric_scopes <- c("layer", "model", "steps", "neural")

# What a metric can need; the analyzer checks each need once per unit and writes the
# reason into the records when it is not met.
metric_needs <- c(
  model_file = "needs a model file (got extracted representations)",
  torch = "LibTorch backend not available",
  labels = "needs stimulus labels (`labels`)",
  attention = "no attention (hook_pattern) submodules: not a transformer",
  neural = "needs neural data (`neural`)",
  checkpoints = "needs several checkpoints of the model",
  activations = "needs the full activations"
)

#' Metrics of analyze_models(): define, register, list
#'
#' A metric object says everything [analyze_models()] needs to run one metric: its
#' `name`, `family`, `scope`, what it `needs`, its `defaults`, how to `compute()` it,
#' how to `tidy()` its output into the one result contract, and the plot that answers
#' its question. `register_metric()` adds it to the registry; from then on
#' [ts_metrics()] lists it and `analyze_models()` runs it like the built-in ones.
#'
#' **Scopes and what `compute(x, args, ctx)` receives.**
#' * `"layer"`: `x` is one layer's activations (stimuli x features, the full matrix),
#'   called once per layer of every model x checkpoint; `ctx$layer` is its name and
#'   `ctx$memo` an environment that lives for that layer only, where metrics that need
#'   the same expensive result store it once (the fiber-bundle test behind
#'   `fiber_bundle_test` and `embedding_singularities`, the spectrum behind
#'   `effective_rank` and `participation_ratio`).
#' * `"model"`: `x` is a [ts_reps()] of the unit's layers *reduced* to n x min(n, p)
#'   matrices with the same centred Gram matrix as the activations (hence the same
#'   linear CKA, Euclidean RDMs, ridge predictions, Procrustes / shape distances and
#'   any other rotation-invariant statistic of the centred data); `ctx$model` is the
#'   loaded [ts_model()] (`NULL` for representations), `ctx$inputs`, `ctx$labels`. A
#'   metric that is not rotation invariant (soft matching of units, sparsity) declares
#'   `needs = "activations"` and finds the full layers in `ctx$activations` (a
#'   `ts_reps`; they are then held until the unit's model metrics have run).
#' * `"steps"`: `x` as for `"model"`; `ctx$steps` holds the reduced layers of every
#'   checkpoint of the same model (a list ordered by step) and `ctx$last` the index of
#'   the last one.
#' * `"neural"`: `x` is the [ts_results] of the run so far and `ctx$neural` the neural
#'   data; computed once per run.
#'
#' Every `ctx` also has `unit` (`model`, `step`, `kind`), `seed` (pass it on to every
#' random step), `stimuli` and `opts` (`batch_size`, `device`).
#'
#' **The result contract.** `tidy(out, ctx)` turns what `compute()` returned into a
#' tibble with columns `statistic` (character), `value` (double) and optionally
#' `layer` (for model-scope metrics; layer-scope rows get the layer they were computed
#' on), plus any typed columns users need (a head number, an area, a second layer):
#' these come back from [get_metric()] next to the contract columns `model`, `step`,
#' `layer` (a factor in model order), `metric`, `statistic` and `value`. The default
#' `tidy` takes a `statistic`/`value` table as it is and otherwise makes one statistic
#' per numeric column. `compute()` may return `metric_skip("why")` when the metric does
#' not apply; an error is recorded as `"error"` with its condition class.
#'
#' **Needs** (checked once per unit, before `compute()`; the skip reasons come from
#' here): `"model_file"` (a TorchScript model rather than representations), `"torch"`
#' (the LibTorch backend), `"labels"` (`analyze_models(labels = )`), `"attention"`
#' (`hook_pattern` submodules), `"neural"` (`analyze_models(neural = )`),
#' `"checkpoints"` (several checkpoints of the model), `"activations"` (the full
#' activations of a model-scope metric, see above).
#'
#' @param name Metric name (snake_case), the name of the function that computes it
#'   where there is one.
#' @param family Family (`"alignment"`, `"geometry"`, ... or your own); [ts_metrics()]
#'   switches families on and off and applies family-wide argument overrides.
#' @param scope `"layer"`, `"model"`, `"steps"` or `"neural"` (see Details).
#' @param compute `function(x, args, ctx)` (see Details).
#' @param defaults Named list of the metric's arguments and their defaults; overrides
#'   in [ts_metrics()] must name one of them.
#' @param needs Character vector of needs (see Details).
#' @param tidy `function(out, ctx)` returning the contract tibble (see Details), or
#'   `NULL` for the default.
#' @param plot `function(data, metric)` drawing the figure that answers the metric's
#'   question from [get_metric()]'s table, or `NULL` for the default profile over layers
#'   (bars for metrics without layers).
#' @param fn Name of the exported function that computes the metric (for the docs).
#' @param aliases Other names accepted for the metric (e.g. the spec's names).
#' @param description One line for the metric table in the docs.
#' @param about One or two sentences for readers of results: what the metric measures
#'   and how to read its values and figure. Shown in the HTML report ([save_report()])
#'   above the metric's figure, by `print()` of the metric object and in the section
#'   "Reading the metrics" of [ts_metrics()].
#' @param diagnostics Statistics of the metric that describe the computation rather
#'   than answer its question (sample sizes, bounds: `"n_points"`, `"welch_bound"`); a
#'   name also matches statistics ending in `":<name>"`. The HTML report puts them in
#'   a collapsed section below the metric's table.
#' @param metric A `ts_metric` object from `new_metric()`.
#' @param replace Replace a registered metric of the same name instead of raising an
#'   error of class `tensorscope_error_argument`.
#' @return `new_metric()`: a `ts_metric` object. `register_metric()`: the metric,
#'   invisibly. `unregister_metric()`: `TRUE` if the metric was registered, invisibly.
#'   `metric_registry()`: a tibble with one row per registered metric: `metric`,
#'   `family`, `scope`, `needs`, `defaults`, `fn`, `aliases`, `description`, `about`,
#'   `diagnostics`.
#' @seealso [ts_metrics()], [analyze_models()], `vignette("extending")`
#' @export
#' @examples
#' # a layer metric of your own: the mean activation of each layer
#' m <- new_metric("mean_activation", family = "custom", scope = "layer",
#'                 compute = function(x, args, ctx) mean(abs(x))^args$power,
#'                 tidy = function(out, ctx) tibble::tibble(statistic = "mean_abs", value = out),
#'                 defaults = list(power = 1), description = "mean absolute activation",
#'                 about = "Mean absolute activation of each layer: larger is louder.")
#' register_metric(m)
#' sim <- simulate_model_and_brain(n_stimuli = 30)
#' res <- analyze_models(sim$reps, metrics = ts_metrics(mean_activation = list(power = 2)))
#' get_metric(res, "mean_activation")
#' unregister_metric("mean_activation")
new_metric <- function(name, family, scope = c("layer", "model", "steps", "neural"), compute, defaults = list(),
                       needs = character(), tidy = NULL, plot = NULL, fn = NULL, aliases = character(),
                       description = NULL, about = NULL, diagnostics = character()) {
  check_string <- function(x, arg) {
    if (!is.character(x) || length(x) != 1 || is.na(x) || !grepl("^[A-Za-z][A-Za-z0-9_.]*$", x)) {
      ts_abort("{.arg {arg}} must be a name (letters, digits, `_`), not {describe(x)}.", "argument", call = call)
    }
    x
  }
  call <- rlang::current_env()
  check_string(name, "name")
  check_string(family, "family")
  scope <- check_choice(scope, metric_scopes)
  check_fn <- function(f, arg, null_ok = FALSE) {
    if (!(is.function(f) || null_ok && is.null(f))) ts_abort("{.arg {arg}} must be a function, not {describe(f)}.", "argument", call = call)
  }
  check_fn(compute, "compute")
  check_fn(tidy, "tidy", TRUE)
  check_fn(plot, "plot", TRUE)
  if (!is.list(defaults) || length(defaults) && (is.null(names(defaults)) || !all(nzchar(names(defaults))) || anyDuplicated(names(defaults)))) {
    ts_abort("{.arg defaults} must be a named list of arguments, not {describe(defaults)}.", "argument", call = call)
  }
  if (!is.character(needs) || anyNA(needs) || length(bad <- setdiff(needs, names(metric_needs)))) {
    ts_abort(c("{.arg needs} must name needs among {.val {names(metric_needs)}}.", x = "Not a need: {.val {setdiff(needs, names(metric_needs))}}."),
             "argument", call = call)
  }
  if (!is.character(aliases) || anyNA(aliases)) ts_abort("{.arg aliases} must be a character vector, not {describe(aliases)}.", "argument", call = call)
  if (!is.character(diagnostics) || anyNA(diagnostics)) ts_abort("{.arg diagnostics} must be a character vector, not {describe(diagnostics)}.", "argument", call = call)
  for (txt in c("description", "about")) {
    v <- get(txt)
    if (!is.null(v) && (!is.character(v) || length(v) != 1 || is.na(v))) ts_abort("{.arg {txt}} must be one string, not {describe(v)}.", "argument", call = call)
  }
  structure(list(name = name, family = family, scope = scope, compute = compute, defaults = defaults,
                 needs = unique(needs), tidy = tidy %||% tidy_long, plot = plot, fn = fn, aliases = aliases,
                 description = description %||% "", about = about %||% "", diagnostics = unique(diagnostics)),
            class = "ts_metric")
}

#' @export
print.ts_metric <- function(x, ...) {
  cli::cat_line("<ts_metric> ", x$name, " (", x$family, ", ", x$scope, " scope)")
  if (length(x$needs)) cli::cat_line("  needs: ", paste(x$needs, collapse = ", "))
  if (length(x$defaults)) cli::cat_line("  defaults: ", format_args(x$defaults))
  if (length(x$aliases)) cli::cat_line("  aliases: ", paste(x$aliases, collapse = ", "))
  if (length(x$diagnostics)) cli::cat_line("  diagnostics: ", paste(x$diagnostics, collapse = ", "))
  if (nzchar(x$about)) cli::cat_line(paste0("  ", strwrap(x$about, width = max(40, cli::console_width() - 4))))
  invisible(x)
}

# The registry: name -> ts_metric, in registration order; aliases -> name.
registry <- new.env(parent = emptyenv())
registry$metrics <- list()
registry$aliases <- character()

#' @rdname new_metric
#' @export
register_metric <- function(metric, replace = FALSE) {
  if (!inherits(metric, "ts_metric")) ts_abort("{.arg metric} must come from {.fn new_metric}, not {describe(metric)}.", "type")
  nm <- metric$name
  taken <- c(names(registry$metrics), names(registry$aliases))
  own <- c(nm, metric$aliases)
  if (!isTRUE(replace)) {
    clash <- intersect(own, taken)
    if (length(clash)) {
      ts_abort(c("{.arg metric}: metric name{?s} {.val {clash}} {?is/are} already registered.", i = "Use {.code replace = TRUE} to replace it."),
               "argument")
    }
  } else if (nm %in% names(registry$metrics)) {
    unregister_metric(nm)
  }
  registry$metrics[[nm]] <- metric
  registry$aliases[metric$aliases] <- nm
  invisible(metric)
}

#' @rdname new_metric
#' @export
unregister_metric <- function(name) {
  name <- resolve_metric_names(name, arg = "name")
  m <- registry$metrics[[name]]
  registry$metrics[[name]] <- NULL
  registry$aliases <- registry$aliases[registry$aliases != name]
  invisible(!is.null(m))
}

#' @rdname new_metric
#' @export
metric_registry <- function() {
  ms <- registry$metrics
  tibble::tibble(
    metric = names(ms),
    family = vapply(ms, `[[`, "", "family"),
    scope = vapply(ms, `[[`, "", "scope"),
    needs = unname(lapply(ms, `[[`, "needs")),
    defaults = unname(lapply(ms, `[[`, "defaults")),
    fn = vapply(ms, function(m) m$fn %||% NA_character_, ""),
    aliases = unname(lapply(ms, `[[`, "aliases")),
    description = vapply(ms, `[[`, "", "description"),
    about = vapply(ms, function(m) m$about %||% "", ""),
    diagnostics = unname(lapply(ms, function(m) m$diagnostics %||% character()))
  )
}

metric_names <- function() names(registry$metrics)

get_metric_object <- function(name) registry$metrics[[name]]

# Names or aliases -> registered names; unknown ones are a classed error.
resolve_metric_names <- function(x, arg = "metrics", call = rlang::caller_env()) {
  known <- c(names(registry$metrics), names(registry$aliases))
  if (!length(x)) return(character())
  bad <- setdiff(x, known)
  if (length(bad)) {
    cli::cli_abort(c("Unknown metric{cli::qty(length(bad))}{?s} {.val {bad}} in {.arg {arg}}.", i = "Valid metrics: {.val {metric_names()}}."),
                   class = c("tensorscope_error_unknown_metric", "tensorscope_error_argument", "tensorscope_error"),
                   valid = metric_names(), call = call)
  }
  out <- ifelse(x %in% names(registry$aliases), registry$aliases[x], x)
  unname(out)
}

format_args <- function(a) {
  paste(names(a), vapply(a, function(v) if (is.null(v)) "NULL" else paste(format(v), collapse = ","), ""), sep = " = ", collapse = ", ")
}

metric_skip <- function(reason) structure(list(reason = reason), class = "ts_skip")

# A result the metrics of one analyzer layer share: ctx$memo (an environment that lives
# for that layer) keeps what `compute()` returned the first time `key` was asked for.
# Without a memo (outside the analyzer), computed each time.
layer_memo <- function(ctx, key, compute) {
  memo <- ctx$memo
  if (!is.environment(memo)) return(compute())
  if (!exists(key, envir = memo, inherits = FALSE)) assign(key, compute(), envir = memo)
  get(key, envir = memo)
}

#' Choose the metrics of analyze_models()
#'
#' Each family is `TRUE` (all its metrics with their default arguments), `FALSE` (none)
#' or a named list of arguments that override the defaults of those of its metrics
#' that have the argument (e.g. `geometry = list(k = 10)` sets the neighbourhood size of
#' `ricci_curvature`; `alignment = list(kernel = "rbf")` changes `cka_similarity`, not
#' `block_cka_gap`). An argument that no metric of the family has is an error of class
#' `tensorscope_error_unknown_argument`. Single metrics are chosen or tuned by name
#' in `...`: `effective_rank = FALSE` leaves one out, `effective_rank = list(on =
#' "eigenvalues")` overrides its arguments (checked against its defaults, an unknown
#' argument is the same error) and includes it even when its family is off. Metrics
#' that you register yourself ([register_metric()]) are included unless their family
#' (named in `...`) or the metric is `FALSE`.
#'
#' The table of metrics (section Metrics) is generated from the registry
#' ([metric_registry()]).
#'
#' **block_cka_gap.** The layers (in model order) are cut into `n_blocks` contiguous
#' blocks of at least two layers, choosing the cuts that maximise the gap
#' \eqn{\bar{C}_{within} - \bar{C}_{between}}, the mean linear CKA between distinct
#' layers of the same block minus the mean CKA between layers of different blocks
#' (Nguyen, Raghu & Kornblith 2021's "block structure"). Rows: `gap`, `within`,
#' `between` (layer `NA`) and `block` (the block index of every layer).
#'
#' **Dissimilarity.** `rsa_similarity` and [compare_to_neural()] use the correlation
#' distance (1 - Pearson r between stimulus patterns), the default of [rdm()] and
#' [rsa()], for the layer and the neural RDMs alike.
#'
#' @param alignment,geometry,superposition,fisher,circuits,dynamics `TRUE`, `FALSE` or
#'   a named list of argument overrides for that family.
#' @param ... Per metric (by name or alias) or per user-registered family: `TRUE`,
#'   `FALSE` or a named list of argument overrides.
#' @return A `ts_metrics` object: a named list, metric name -> list of arguments.
#' @eval metric_table_rd()
#' @eval metric_about_rd()
#' @seealso [analyze_models()], [new_metric()]
#' @export
#' @examples
#' ts_metrics(geometry = list(k = 5), fisher = FALSE, circuits = FALSE)
#' ts_metrics(effective_rank = list(on = "eigenvalues"), alignment = FALSE)
#' names(ts_metrics())
ts_metrics <- function(alignment = TRUE, geometry = TRUE, superposition = TRUE, fisher = TRUE,
                       circuits = TRUE, dynamics = TRUE, ...) {
  call <- rlang::current_env()
  fam <- list(alignment = alignment, geometry = geometry, superposition = superposition,
              fisher = fisher, circuits = circuits, dynamics = dynamics)
  dots <- list(...)
  if (length(dots) && (is.null(names(dots)) || !all(nzchar(names(dots))))) {
    ts_abort("Arguments in {.arg ...} must be named by a metric or a family.", "argument", call = call)
  }
  reg <- registry$metrics
  families <- unique(vapply(reg, `[[`, "", "family"))
  is_family <- names(dots) %in% setdiff(families, names(fam))
  fam <- c(fam, dots[is_family])
  per_metric <- dots[!is_family]
  names(per_metric) <- resolve_metric_names(names(per_metric), arg = "...", call = call)
  check_setting <- function(v, what) {
    if (!isTRUE(v) && !isFALSE(v) && !(is.list(v) && (length(v) == 0 || !is.null(names(v)) && all(nzchar(names(v)))))) {
      ts_abort("{.arg {what}} must be TRUE, FALSE or a named list of arguments, not {describe(v)}.", "argument", call = call)
    }
  }
  for (f in names(fam)) check_setting(fam[[f]], f)
  for (m in names(per_metric)) check_setting(per_metric[[m]], m)
  # family overrides must be an argument of at least one metric of the family
  for (f in names(fam)) {
    v <- fam[[f]]
    if (!is.list(v) || !length(v)) next
    valid <- unique(unlist(lapply(reg[vapply(reg, function(r) r$family == f, logical(1))], function(r) names(r$defaults))))
    check_overrides(v, stats::setNames(vector("list", length(valid)), valid), sprintf("the metrics of family `%s`", f), call)
  }
  out <- list()
  for (m in names(reg)) {
    r <- reg[[m]]
    v <- fam[[r$family]] %||% TRUE
    pm <- per_metric[[m]]
    if (isFALSE(pm) || is.null(pm) && isFALSE(v)) next
    a <- r$defaults
    if (is.list(v)) a[intersect(names(v), names(a))] <- v[intersect(names(v), names(a))]
    if (is.list(pm)) {
      check_overrides(pm, a, sprintf("metric `%s`", m), call)
      a[names(pm)] <- pm
    }
    out[m] <- list(a)
  }
  structure(out, class = "ts_metrics")
}

#' @export
print.ts_metrics <- function(x, ...) {
  cli::cat_line("<ts_metrics> ", length(x), " metric", if (length(x) != 1) "s")
  for (m in names(x)) {
    a <- x[[m]]
    what <- registry$metrics[[m]]$description
    cli::cat_line("  ", m, if (length(a)) paste0(" (", format_args(a), ")"), if (length(what) && nzchar(what)) cli::col_grey(paste0(": ", what)))
  }
  invisible(x)
}

# ts_metrics, names, or a list of names and `name = list(overrides)` -> named list
# metric -> args (canonical names, registry defaults with the overrides).
as_metrics <- function(metrics, call = rlang::caller_env()) {
  if (inherits(metrics, "ts_metrics")) {
    out <- unclass(metrics)
    names(out) <- resolve_metric_names(names(out), call = call)
    return(out)
  }
  if (is.list(metrics) && length(metrics)) {
    nm <- names(metrics) %||% rep("", length(metrics))
    plain <- !nzchar(nm)
    if (!all(vapply(metrics[plain], function(v) is.character(v) && length(v) == 1 && !is.na(v), logical(1))) ||
        !all(vapply(metrics[!plain], function(v) isTRUE(v) || is.list(v), logical(1)))) {
      ts_abort("{.arg metrics}: a list holds metric names or {.code name = list(argument = value)} overrides.", "argument", call = call)
    }
    nm[plain] <- unlist(metrics[plain])
    nm <- resolve_metric_names(nm, call = call)
    out <- list()
    for (i in seq_along(nm)) {
      a <- out[[nm[i]]] %||% registry$metrics[[nm[i]]]$defaults
      v <- metrics[[i]]
      if (is.list(v)) {
        check_overrides(v, a, sprintf("metric `%s`", nm[i]), call)
        a[names(v)] <- v
      }
      out[nm[i]] <- list(a)
    }
    return(out)
  }
  if (!is.character(metrics) || !length(metrics) || anyNA(metrics)) {
    ts_abort("{.arg metrics} must be {.fn ts_metrics}, metric names or a list of them with overrides, not {describe(metrics)}.",
             "argument", call = call)
  }
  nm <- unique(resolve_metric_names(metrics, call = call))
  stats::setNames(lapply(nm, function(m) registry$metrics[[m]]$defaults), nm)
}

check_overrides <- function(v, defaults, where, call) {
  if (length(v) && (is.null(names(v)) || !all(nzchar(names(v))))) {
    ts_abort("The overrides for {where} (in {.arg ...}) must be a named list of arguments.", "argument", call = call)
  }
  bad <- setdiff(names(v), names(defaults))
  if (length(bad)) {
    cli::cli_abort(c("Unknown argument{cli::qty(length(bad))}{?s} {.val {bad}} for {where}.", i = "Arguments: {.val {names(defaults)}}."),
                   class = c("tensorscope_error_unknown_argument", "tensorscope_error_argument", "tensorscope_error"),
                   call = call)
  }
}

# The default tidy(): a tibble -> (layer, statistic, value, ...). A table with columns
# `statistic`/`value` is taken as it is (other columns are typed columns); with
# `metric`/`value`, the other non-double columns identify the statistic; otherwise
# every numeric column is a statistic and the other columns (except layer) identify it.
tidy_long <- function(out, ctx = NULL) {
  if (is.atomic(out) && is.null(dim(out))) {
    return(tibble::tibble(statistic = names(out) %||% "value", value = as.double(out)))
  }
  df <- as.data.frame(out, stringsAsFactors = FALSE)
  df <- df[, !vapply(df, is.list, logical(1)), drop = FALSE]
  lay <- if ("layer" %in% names(df)) as.character(df$layer) else rep(NA_character_, nrow(df))
  df$layer <- NULL
  if (all(c("statistic", "value") %in% names(df))) {
    # a table in the contract already: its other columns are the metric's typed columns
    out <- tibble::tibble(layer = lay, statistic = as.character(df$statistic), value = as.double(df$value))
    return(tibble::as_tibble(c(out, df[setdiff(names(df), c("statistic", "value"))])))
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

# Rd for the metric table of ts_metrics() (roxygen @eval): built from the registry.
metric_table_rd <- function() {
  reg <- registry$metrics
  if (!length(reg)) rlang::run_on_load()
  reg <- registry$metrics
  esc <- rd_escape
  rows <- vapply(reg, function(m) {
    fn <- if (!is.null(m$fn)) sprintf("\\code{\\link[=%s]{%s()}}", m$fn, m$fn) else ""
    als <- if (length(m$aliases)) paste0(" (alias ", paste(sprintf("\\code{%s}", m$aliases), collapse = ", "), ")") else ""
    needs <- if (length(m$needs)) paste(m$needs, collapse = ", ") else "-"
    defs <- if (length(m$defaults)) esc(format_args(m$defaults)) else "-"
    sprintf("\\code{%s}%s \\tab %s \\tab %s \\tab %s \\tab %s \\tab %s \\tab %s \\cr", m$name, als, m$family, m$scope, fn,
            needs, sprintf("\\code{%s}", defs), esc(m$description))
  }, "")
  c("@section Metrics:", "\\tabular{lllllll}{",
    "\\strong{metric} \\tab \\strong{family} \\tab \\strong{scope} \\tab \\strong{function} \\tab \\strong{needs} \\tab \\strong{defaults} \\tab \\strong{what} \\cr",
    unname(rows), "}")
}

# Text for Rd: %, {, } and backslashes escaped.
rd_escape <- function(x) gsub("([%{}\\\\])", "\\\\\\1", x)

# Rd for the section "Reading the metrics" of ts_metrics(): each metric's `about`.
metric_about_rd <- function() {
  if (!length(registry$metrics)) rlang::run_on_load()
  items <- vapply(registry$metrics, function(m) sprintf("\\item{\\code{%s}}{%s}", m$name, rd_escape(m$about)), "")
  c("@section Reading the metrics:", "What each metric measures and how to read it (the text of the HTML report):",
    "\\describe{", unname(items), "}")
}

.onLoad <- function(libname, pkgname) {
  rlang::run_on_load()
}
