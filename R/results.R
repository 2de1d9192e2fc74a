# ts_results: what analyze_models() computed, with provenance; reports in JSON/HTML/RDS.

#' Results of analyze_models()
#'
#' A `ts_results` object holds every value [analyze_models()] computed in one long
#' table, a record per model x step x (layer) x metric of what happened (`status`
#' `"ok"`, `"skipped"` or `"error"`, the `reason`, the `seconds` it took and, for
#' errors, the `condition` class, e.g. `"tensorscope_error_too_few"`) and the
#' provenance of the run (package and LibTorch versions, seed, device, batch size, a
#' hash of the inputs, the future plan, the metric arguments).
#'
#' * `results$get(name)` / `get_metric(results, name)`: the rows of one metric (by
#'   name or alias), with the metric's own typed columns (e.g. `layer_y` of
#'   `cka_similarity`, `head` of `induction_head_strength`) after the contract columns.
#'   In every table `layer` is a factor with the layers in model order.
#' * `as_tibble(results)`: the long table `model`, `step`, `layer`, `metric`,
#'   `statistic`, `value`.
#' * `summary(results)`: one row per metric: `metric`, `n_ok`, `n_skipped`, `n_error`,
#'   `seconds`, `reason` (the first skip/error reason).
#' * `autoplot(results, metric)`: see [autoplot.ts_results()].
#' * [save_report()] / [read_report()].
#'
#' @param results,x,object A `ts_results` object.
#' @param name A metric name (see [ts_metrics()]).
#' @param ... Unused.
#' @return `get_metric()`: a tibble (`model`, `step`, `layer`, `metric`, `statistic`,
#'   `value`, then the metric's typed columns) with, for metrics that were skipped or failed, no rows and an attribute
#'   `records`.
#' @name ts_results
#' @examples
#' sim <- simulate_model_and_brain(n_stimuli = 40)
#' res <- analyze_models(sim$reps, metrics = c("effective_rank", "feature_sparsity"))
#' get_metric(res, "effective_rank")
#' tibble::as_tibble(res)
#' summary(res)
NULL

# Metric entries (unit, metric, layer, run) -> a ts_results with the records, the long
# table `values` (the contract columns) and, per metric, its typed columns (`extras`,
# rows aligned with that metric's rows of `values`). Layers are factors: every unit's
# layers in model order, then the other layer labels metrics report (weights, blocks).
new_results <- function(entries, layer_order = list()) {
  rec <- lapply(entries, function(e) {
    tibble::tibble(model = e$unit$model, step = as.double(e$unit$step), layer = as.character(e$layer), metric = e$metric,
                   status = e$r$status, reason = e$r$reason, seconds = e$r$seconds, condition = e$r$condition)
  })
  records <- do.call(rbind, rec) %||% empty_records()
  rows <- lapply(entries, function(e) {
    t <- e$r$table
    if (is.null(t) || !nrow(t)) return(NULL)
    lay <- if (!is.na(e$layer)) rep(as.character(e$layer), nrow(t)) else t$layer
    core <- tibble::tibble(model = if ("model" %in% names(t)) as.character(t$model) else e$unit$model,
                           step = if ("step" %in% names(t)) as.double(t$step) else as.double(e$unit$step),
                           layer = lay, metric = e$metric, statistic = t$statistic, value = t$value)
    list(core = core, extra = t[, setdiff(names(t), c("model", "step", "layer", "statistic", "value")), drop = FALSE])
  })
  rows <- rows[!vapply(rows, is.null, logical(1))]
  values <- do.call(rbind, lapply(rows, `[[`, "core")) %||% empty_values()
  mets <- vapply(rows, function(r) r$core$metric[1], "")
  extras <- list()
  for (m in unique(mets)) {
    ex <- lapply(rows[mets == m], `[[`, "extra")
    if (ncol(ex[[1]])) extras[[m]] <- do.call(rbind, ex)
  }
  lv <- unique(c(unlist(layer_order), records$layer, values$layer))
  lv <- lv[!is.na(lv)]
  records$layer <- factor(records$layer, levels = lv)
  values$layer <- factor(values$layer, levels = lv)
  structure(list(values = values, records = records, extras = extras), class = "ts_results")
}

empty_values <- function() {
  tibble::tibble(model = character(), step = double(), layer = factor(), metric = character(),
                 statistic = character(), value = double())
}

empty_records <- function() {
  tibble::tibble(model = character(), step = double(), layer = factor(), metric = character(),
                 status = character(), reason = character(), seconds = double(), condition = character())
}

# `results$get(name)`: made when asked for, so that the object holds no closure over
# itself (a saved report is no larger than its contents).
#' @export
`$.ts_results` <- function(x, name) {
  if (identical(name, "get")) return(function(name) get_metric(x, name))
  .subset2(x, name)
}

#' @importFrom utils .DollarNames
#' @export
.DollarNames.ts_results <- function(x, pattern = "") {
  grep(pattern, c(names(x), "get"), value = TRUE)
}

#' @rdname ts_results
#' @export
get_metric <- function(results, name) {
  if (!inherits(results, "ts_results")) ts_abort("{.arg results} must be a {.cls ts_results}, not {describe(results)}.", "type")
  if (!is.character(name) || length(name) != 1 || is.na(name)) {
    cli::cli_abort(c("{.arg name} must be one metric name, not {.val {name}}.", i = "Valid metrics: {.val {metric_names()}}."),
                   class = c("tensorscope_error_unknown_metric", "tensorscope_error_argument", "tensorscope_error"))
  }
  name <- resolve_metric_names(name, arg = "name")
  v <- .subset2(results, "values")
  rows <- v$metric == name
  out <- v[rows, ]
  ex <- .subset2(results, "extras")[[name]]
  if (!is.null(ex) && nrow(ex) == nrow(out)) out <- tibble::as_tibble(cbind(out, ex))
  r <- .subset2(results, "records")
  attr(out, "records") <- r[r$metric == name, ]
  out
}

#' @rdname ts_results
#' @importFrom tibble as_tibble
#' @method as_tibble ts_results
#' @export
as_tibble.ts_results <- function(x, ...) tibble::as_tibble(x$values)

#' @rdname ts_results
#' @export
summary.ts_results <- function(object, ...) {
  r <- object$records
  ms <- unique(r$metric)
  out <- tibble::tibble(
    metric = ms,
    n_ok = vapply(ms, function(m) sum(r$metric == m & r$status == "ok"), integer(1)),
    n_skipped = vapply(ms, function(m) sum(r$metric == m & r$status == "skipped"), integer(1)),
    n_error = vapply(ms, function(m) sum(r$metric == m & r$status == "error"), integer(1)),
    seconds = vapply(ms, function(m) sum(r$seconds[r$metric == m]), numeric(1)),
    reason = vapply(ms, function(m) {
      why <- r$reason[r$metric == m & r$status != "ok"]
      if (length(why)) paste0(r$status[r$metric == m & r$status != "ok"][1], ": ", why[1]) else NA_character_
    }, character(1))
  )
  out[] <- lapply(out, unname)
  out
}

#' @rdname ts_results
#' @export
print.ts_results <- function(x, ...) {
  p <- x$provenance
  models <- unique(vapply(x$units, `[[`, "", "model"))
  cli::cat_line("<ts_results> ", length(models), " model", if (length(models) != 1) "s", " (",
                paste(models, collapse = ", "), "), ", length(x$units), " model x checkpoint unit",
                if (length(x$units) != 1) "s", ", ", p$n_stimuli, " stimuli")
  cli::cat_line("  tensorscope ", p$package_version, ", LibTorch ", p$libtorch_version %||% NA, ", seed ", p$seed,
                ", device ", p$device, ", plan ", p$plan, " (", p$workers, " workers)")
  if (!is.null(x$reducers) && nrow(x$reducers)) {
    r <- x$reducers
    for (m in unique(r$model)) {
      tab <- table(unique(r[r$model == m, c("layer", "reducer")])$reducer)
      cli::cat_line("  layers of ", m, " stored as: ", paste(sprintf("%s %d", names(tab), tab), collapse = ", "),
                    " ($reducers)")
    }
  }
  s <- summary(x)
  for (i in seq_len(nrow(s))) {
    cli::cat_line(sprintf("  %-24s ok %3d  skipped %3d  error %3d  %7.2fs%s", s$metric[i], s$n_ok[i], s$n_skipped[i],
                          s$n_error[i], s$seconds[i], if (is.na(s$reason[i])) "" else paste0("  (", s$reason[i], ")")))
  }
  if (!is.null(x$neural)) {
    b <- attr(x$neural, "best")
    cli::cat_line("  best layer per neural data set:")
    for (i in seq_len(nrow(b))) cli::cat_line(sprintf("    %s step %s, %s: %s (RSA %.3f)", b$model[i], b$step[i], b$area[i], b$layer[i], b$rsa[i]))
  }
  invisible(x)
}

#' Save and read analysis reports
#'
#' `save_report()` writes a [ts_results] as
#'
#' * `.json`: plain arrays and objects readable from Python (`json.load`) and MATLAB
#'   (`jsondecode`), documented by the JSON schema
#'   `system.file("schema", "report.schema.json", package = "tensorscope")`:
#'   `schema_version`, `provenance` (object), `records` and `values` (arrays of row
#'   objects) and, when neural data was compared, `neural` and `ranking`;
#' * `.html`: a self-contained page for people (no pandoc needed; open it in a
#'   browser). It opens with the answer: the best layer per neural data set with its
#'   RSA, confidence interval and noise ceiling, the ceilings, and the ranking of the
#'   models, with the score defined. Then one section per metric: the figure of
#'   [autoplot.ts_results()], what the metric measures and how to read it (the
#'   metric's `about`, see [new_metric()]), and its values (missing values blank,
#'   three significant digits), with diagnostic statistics in a collapsed section.
#'   Metrics that did not apply or failed are listed with the reason and condition
#'   class; the provenance (versions, seed, device, reducer per layer, metric
#'   arguments, timings, failures, stimuli) is in collapsed sections at the end. The
#'   figures are also written next to it as PNG files (`<name>_files/`);
#' * `.rds`: the object itself.
#'
#' `read_report()` reads a JSON (or RDS) report back into a `ts_results` (the JSON one
#' holds the tables and provenance, not the layer data that [compare_to_neural()]
#' needs).
#'
#' @param results A [ts_results].
#' @param path File name ending in `.json`, `.html` or `.rds`.
#' @return `save_report()`: `path`, invisibly. `read_report()`: a `ts_results`.
#' @export
#' @examples
#' sim <- simulate_model_and_brain(n_stimuli = 40)
#' res <- analyze_models(sim$reps, metrics = c("effective_rank", "cka_similarity"))
#' f <- tempfile(fileext = ".json")
#' save_report(res, f)
#' read_report(f)
save_report <- function(results, path) {
  if (!inherits(results, "ts_results")) ts_abort("{.arg results} must be a {.cls ts_results}, not {describe(results)}.", "type")
  if (!is.character(path) || length(path) != 1 || is.na(path)) ts_abort("{.arg path} must be a file name, not {describe(path)}.", "argument")
  ext <- tolower(tools::file_ext(path))
  if (!ext %in% c("json", "html", "rds")) {
    ts_abort("{.arg path} must end in .json, .html or .rds, not {.val {path}}.", "argument")
  }
  switch(ext,
    rds = saveRDS(results, path),
    json = {
      rlang::check_installed("jsonlite")
      jsonlite::write_json(report_list(results), path, pretty = TRUE, digits = NA, auto_unbox = TRUE,
                           na = "null", null = "null")
    },
    html = write_html_report(results, path)
  )
  invisible(path)
}

report_list <- function(results) {
  p <- results$provenance
  p$metrics <- lapply(p$metrics, function(a) if (length(a)) a else structure(list(), names = character()))
  out <- list(schema_version = "1.0", generator = "tensorscope", provenance = p,
              stimuli = results$stimuli, layers = levels(results$values$layer),
              records = as.data.frame(results$records), values = as.data.frame(results$values))
  if (!is.null(results$neural)) {
    out$neural <- as.data.frame(unclass_df(results$neural))
    out$ranking <- as.data.frame(attr(results$neural, "ranking"))
  }
  out
}

unclass_df <- function(x) {
  attributes(x) <- attributes(x)[c("names", "row.names")]
  class(x) <- "data.frame"
  x
}

#' @rdname save_report
#' @export
read_report <- function(path) {
  if (!is.character(path) || length(path) != 1 || !file.exists(path)) {
    ts_abort("{.arg path} must be an existing report file, not {describe(path)}.", "argument")
  }
  # the parsers' own errors (a truncated file, "lexical error", a JSON nested so deeply
  # that R's protection stack overflows) become classed errors naming the file
  call <- rlang::current_env()
  corrupt <- function(e) {
    msg <- conditionMessage(e)
    ts_abort(c("{.arg path} ({.file {path}}) cannot be read as a tensorscope report.", x = "{msg}"), "corrupt", call = call)
  }
  if (tolower(tools::file_ext(path)) == "rds") {
    res <- tryCatch(suppressWarnings(readRDS(path)), error = corrupt)  # a damaged file warns, then fails
    if (!inherits(res, "ts_results")) {
      ts_abort("{.arg path} ({.file {path}}) holds {describe(res)}, not a tensorscope report (a {.cls ts_results}).", "type")
    }
    return(res)
  }
  rlang::check_installed("jsonlite")
  j <- tryCatch(jsonlite::read_json(path, simplifyVector = TRUE), error = corrupt)
  if (!is.list(j) || !identical(j$generator, "tensorscope") || !is.data.frame(j$values) && length(j$values) ||
      !is.data.frame(j$records) && length(j$records) || is.null(j$values) || is.null(j$records)) {
    ts_abort("{.arg path} ({.file {path}}) is not a tensorscope report.", "type")
  }
  tbl <- function(df, template) {
    if (!length(df) || !NROW(df)) return(template[0, ])
    df <- tibble::as_tibble(df)
    for (nm in names(template)) {
      if (is.null(df[[nm]])) df[[nm]] <- rep(NA, nrow(df))
      if (is.double(template[[nm]])) df[[nm]] <- as.double(df[[nm]])
      if (is.character(template[[nm]]) || is.factor(template[[nm]])) df[[nm]] <- as.character(df[[nm]])
    }
    df[, names(template)]
  }
  values <- tryCatch(tbl(j$values, empty_values()), error = corrupt)
  records <- tryCatch(tbl(j$records, empty_records()), error = corrupt)
  lv <- unlist(j$layers) %||% unique(c(records$layer, values$layer))
  values$layer <- factor(values$layer, levels = lv[!is.na(lv)])
  records$layer <- factor(records$layer, levels = lv[!is.na(lv)])
  units <- unique(records[!is.na(records$model), c("model", "step")])
  res <- structure(list(values = values, records = records, extras = list(), provenance = j$provenance,
                        units = lapply(seq_len(nrow(units)), function(i) list(model = units$model[i], step = units$step[i], kind = "report")),
                        stimuli = j$stimuli), class = "ts_results")
  if (!is.null(j$neural)) {
    nt <- tibble::as_tibble(j$neural)
    nt$layer <- factor(nt$layer, levels = lv[!is.na(lv)])
    res$neural <- structure(nt, best = nt[nt$best, ], ranking = tibble::as_tibble(j$ranking))
  }
  res
}
