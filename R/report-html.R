# The HTML report of save_report(): one self-contained page (CSS inline, figures as
# base64 PNG), written directly (no pandoc). It opens with the answer (best layer per
# neural data set, noise ceilings, ranking, the score defined), then one section per
# metric (figure, what it measures and how to read it from the registry's `about`, its
# table), then what was not computed and, collapsed, the provenance.

write_html_report <- function(results, path) {
  rlang::check_installed("jsonlite", reason = "to embed the figures of the HTML report")
  if (!dir.exists(dirname(path))) ts_abort("{.arg path}: the folder {.file {dirname(path)}} does not exist.", "argument")
  path <- file.path(normalizePath(dirname(path)), basename(path))
  figdir <- file.path(dirname(path), paste0(tools::file_path_sans_ext(basename(path)), "_files"))
  dir.create(figdir, showWarnings = FALSE, recursive = TRUE)
  s <- summary(results)
  with_values <- unique(as.character(results$values$metric))
  shown <- intersect(c(intersect(metric_names(), s$metric), s$metric), with_values)
  body <- c(
    "<h1>tensorscope analysis report</h1>",
    sprintf("<p class=\"lead\">%s</p>", html_escape(report_overview(results, s))),
    report_answer(results),
    "<h2>Metrics</h2>",
    if (length(shown)) html_toc(shown) else "<p>No metric produced values.</p>",
    unlist(lapply(shown, function(m) report_metric_section(results, m, figdir))),
    report_not_computed(results, s),
    report_provenance(results, s)
  )
  writeLines(c("<!DOCTYPE html>", "<html lang=\"en\"><head><meta charset=\"utf-8\">",
               "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">",
               "<title>tensorscope analysis report</title>", sprintf("<style>%s</style>", report_css), "</head><body><main>",
               body, "</main></body></html>"), path, useBytes = TRUE)
  invisible(path)
}

report_overview <- function(results, s) {
  models <- unique(vapply(results$units, function(u) as.character(u$model), ""))
  n_units <- length(results$units)
  n_err <- sum(s$n_error > 0 & s$n_ok == 0)
  n_layers <- length(unique(unlist(lapply(results$reduced, function(r) names(r$layers)))))
  if (!n_layers) n_layers <- length(unique(stats::na.omit(as.character(results$records$layer))))
  sprintf("%d model%s (%s), %d model x checkpoint unit%s, %s stimuli, %d layers. %d metric%s computed, %d not applicable here, %d failed. tensorscope %s, %s.",
          length(models), if (length(models) != 1) "s" else "", paste(models, collapse = ", "), n_units,
          if (n_units != 1) "s" else "", format(results$provenance$n_stimuli %||% length(results$stimuli)),
          n_layers, sum(s$n_ok > 0), if (sum(s$n_ok > 0) != 1) "s" else "",
          sum(s$n_ok == 0 & s$n_error == 0), n_err, results$provenance$package_version %||% "", results$provenance$date %||% "")
}

# ---- the answer: best layer per area, ceilings, ranking ---------------------------------

report_answer <- function(results) {
  nc <- results$neural
  if (is.null(nc)) {
    return(c("<h2>Answer</h2>",
             "<p>No neural data was given (<code>analyze_models(neural = )</code>), so there is no best layer per brain area and no ranking of the models. The sections below answer each metric's own question.</p>"))
  }
  best <- attr(nc, "best")
  ranking <- attr(nc, "ranking")
  meth <- results$provenance$metrics$rsa_similarity$method %||% "spearman"
  meth_txt <- switch(meth, spearman = "Spearman rank correlation", pearson = "Pearson correlation",
                     kendall_tau_a = "Kendall's tau-a", rho_a = "Spearman's rho-a", cosine = "cosine similarity",
                     paste0(meth, " similarity"))
  top <- ranking[1, ]
  top_best <- best[best$model == top$model & best$step %in% top$step, ]
  unit <- function(model, step) if (is.na(step)) model else sprintf("%s (step %s)", model, format(step))
  lead <- sprintf("Best model: %s, score %s; its best layer is %s.", unit(top$model, top$step), fmt_num(top$score),
                  paste(sprintf("%s for %s (RSA %s)", top_best$layer, top_best$area, fmt_num(top_best$rsa)), collapse = ", "))
  best_tbl <- tibble::tibble(area = best$area, model = best$model, step = best$step, `best layer` = as.character(best$layer),
                             RSA = best$rsa, `95% CI` = fmt_interval(best$ci_lower, best$ci_upper), p = fmt_p(best$p_value),
                             `ceiling (lower, upper)` = fmt_interval(best$ceiling_lower, best$ceiling_upper),
                             CKA = best$cka, predictivity = best$predictivity)
  best_tbl <- best_tbl[order(match(best_tbl$area, unique(nc$area)), best_tbl$model, best_tbl$step), ]
  ceil <- unique(tibble::tibble(area = best$area, lower = best$ceiling_lower, upper = best$ceiling_upper))
  ceil <- ceil[!duplicated(ceil$area), ]
  ceil$note <- ifelse(is.finite(ceil$upper), "", "one subject: no ceiling, the score uses the raw RSA")
  rk <- tibble::tibble(rank = ranking$rank, model = ranking$model, step = ranking$step, score = ranking$score)
  c("<h2>Answer</h2>",
    sprintf("<p class=\"answer\">%s</p>", html_escape(lead)),
    sprintf("<p><b>RSA</b> is the %s between a layer's representational dissimilarity matrix (RDM, %s distance between the stimulus patterns) and a neural data set's, averaged over subjects. <b>Score</b>: a model's mean, over the neural data sets, of its best layer's RSA divided by the data set's upper noise ceiling (the raw RSA where one subject gives no ceiling), so 1 is as good as the data allow. The best layer is picked on the same data, so the score is optimistic.</p>",
            meth_txt, html_escape(results$provenance$rdm_method %||% "correlation")),
    "<h3>Best layer per neural data set</h3>", html_table(drop_constant_ids(best_tbl, keep = "area")),
    "<h3>Noise ceilings</h3>",
    "<p>The range of RSA a perfect model could reach given the subjects' disagreement: the lower bound correlates each subject with the mean of the others, the upper with the mean of all.</p>",
    html_table(ceil[, c("area", "lower", "upper", if (any(nzchar(ceil$note))) "note")]),
    "<h3>Ranking of the models</h3>", html_table(drop_constant_ids(rk, keep = c("rank", "model"))))
}

# p-values: three decimals, "< 0.001" below (a permutation p-value is at least
# 1 / (n_perm + 1)), blank when not computed.
fmt_p <- function(p) ifelse(is.na(p), "", ifelse(p < 0.001, "< 0.001", formatC(p, format = "f", digits = 3)))

fmt_interval <- function(lo, hi) {
  ifelse(is.finite(lo) & is.finite(hi), sprintf("[%s, %s]", fmt_num(lo, ref = c(lo, hi)), fmt_num(hi, ref = c(lo, hi))), "")
}

# ---- one section per metric ---------------------------------------------------------------

report_metric_section <- function(results, m, figdir) {
  obj <- get_metric_object(m)
  d <- get_metric(results, m)
  rec <- attr(d, "records")
  head <- sprintf("<section id=\"%s\"><h3>%s <span class=\"family\">%s%s</span></h3>", html_id(m), html_escape(m),
                  html_escape(obj$family %||% "custom"), if (!is.null(obj$fn)) sprintf(" &middot; <code>%s()</code>", html_escape(obj$fn)) else "")
  about <- obj$about %||% ""
  if (!nzchar(about)) about <- obj$description %||% ""
  fig <- report_figure(results, m, figdir)
  tbl <- metric_tables(results, d, m, obj$diagnostics %||% character())
  not_ok <- rec[rec$status != "ok", ]
  missing <- if (nrow(not_ok)) {
    sprintf("<p class=\"note\">Not computed for %d of %d record%s: %s.</p>", nrow(not_ok), nrow(rec), if (nrow(rec) != 1) "s" else "",
            html_escape(paste(unique(sprintf("%s (%s)", not_ok$reason, not_ok$status)), collapse = "; ")))
  }
  c(head, if (nzchar(about)) sprintf("<p class=\"about\">%s</p>", html_escape(about)), fig, tbl, missing, "</section>")
}

# autoplot() of the metric as PNG (next to the report and embedded); a plot that fails
# is a note, not a failed report.
report_figure <- function(results, m, figdir) {
  f <- file.path(figdir, paste0(m, ".png"))
  g <- tryCatch(autoplot(results, m), error = function(e) e)
  if (inherits(g, "error")) return(sprintf("<p class=\"note\">No figure: %s</p>", html_escape(conditionMessage(g))))
  square <- inherits(g$coordinates, "CoordFixed")
  ok <- tryCatch({
    ggplot2::ggsave(f, g, width = if (square) 7 else 8, height = if (square) 6 else 4.8, dpi = 110, bg = "white")
    TRUE
  }, error = function(e) e)
  if (!isTRUE(ok)) return(sprintf("<p class=\"note\">No figure: %s</p>", html_escape(conditionMessage(ok))))
  sprintf("<figure><img alt=\"%s\" src=\"data:image/png;base64,%s\"></figure>", html_escape(m),
          jsonlite::base64_enc(readBin(f, "raw", file.info(f)$size)))
}

# The metric's values as a wide table: one row per model x step x layer, one column per
# statistic (diagnostic statistics in a collapsed table of their own). Long tables show
# the last checkpoint of each model, with every row in a collapsed section.
metric_tables <- function(results, d, m, diagnostics) {
  if (m == "rsa_similarity" && !is.null(results$neural)) {
    nc <- results$neural
    w <- tibble::tibble(model = nc$model, step = nc$step, area = nc$area, layer = as.character(nc$layer), RSA = nc$rsa,
                        `95% CI` = fmt_interval(nc$ci_lower, nc$ci_upper), p = fmt_p(nc$p_value), CKA = nc$cka,
                        predictivity = nc$predictivity, best = ifelse(nc$best, "best", ""))
    return(long_table(drop_constant_ids(w, keep = c("area", "layer"))))
  }
  w <- wide_values(d)
  if ("layer" %in% names(w) && anyNA(w$layer)) w$layer <- ifelse(is.na(w$layer), "(whole model)", as.character(w$layer))
  stat_cols <- setdiff(names(w), c("model", "step", "layer"))
  is_diag <- vapply(stat_cols, function(st) any(st == diagnostics | endsWith(st, paste0(":", diagnostics))), logical(1))
  ids <- intersect(c("model", "step", "layer"), names(w))
  main <- drop_constant_ids(w[, c(ids, stat_cols[!is_diag]), drop = FALSE])
  out <- if (sum(!is_diag) == 1 && all(c("step", "layer") %in% names(main)) && !"model" %in% names(main)) {
    html_table(steps_as_columns(main, stat_cols[!is_diag]), shared = TRUE)
  } else if (any(!is_diag)) long_table(main)
  if (any(is_diag)) {
    dg <- drop_constant_ids(w[, c(ids, stat_cols[is_diag]), drop = FALSE])
    out <- c(out, sprintf("<details><summary>Diagnostics (%s)</summary>", html_escape(paste(stat_cols[is_diag], collapse = ", "))),
             html_table(dg), "</details>")
  }
  out
}

long_table <- function(tbl, max_rows = 30) {
  if (nrow(tbl) <= max_rows) return(html_table(tbl))
  all_rows <- c(sprintf("<details><summary>All %d rows</summary>", nrow(tbl)), html_table(tbl), "</details>")
  if ("step" %in% names(tbl) && length(unique(tbl$step[!is.na(tbl$step)])) > 1) {
    mdl <- if ("model" %in% names(tbl)) tbl$model else rep("", nrow(tbl))
    last <- stats::ave(tbl$step, mdl, FUN = function(s) if (all(is.na(s))) NA_real_ else max(s, na.rm = TRUE))
    keep <- !is.na(tbl$step) & tbl$step == last
    shown <- tbl[keep, ]
    steps <- unique(shown$step)
    if (length(steps) == 1) shown$step <- NULL
    note <- if (length(steps) == 1) sprintf("At step %s, the last checkpoint (every checkpoint below):", fmt_step(steps)) else
      "At the last checkpoint of each model (every checkpoint below):"
    return(c(sprintf("<p class=\"note\">%s</p>", note), html_table(shown), all_rows))
  }
  c(sprintf("<p class=\"note\">The first %d rows (all below):</p>", max_rows), html_table(tbl[seq_len(max_rows), ]), all_rows)
}

# One statistic of one model over checkpoints: a layer x step table ("step 0", ...).
steps_as_columns <- function(tbl, stat) {
  lay <- unique(tbl$layer)
  steps <- sort(unique(tbl$step), na.last = TRUE)
  out <- tibble::tibble(layer = lay)
  for (st in steps) {
    sel <- if (is.na(st)) is.na(tbl$step) else !is.na(tbl$step) & tbl$step == st
    out[[paste("step", fmt_step(st))]] <- tbl[[stat]][sel][match(lay, tbl$layer[sel])]
  }
  out
}

fmt_step <- function(s) ifelse(is.na(s), "-", format(s, scientific = FALSE, trim = TRUE))

# get_metric() rows -> model, step, layer, one column per statistic (in order of
# appearance; a prefix shared by every statistic, e.g. "cka:", is dropped).
wide_values <- function(d) {
  key <- paste(d$model, d$step, d$layer, sep = "\r")
  rows <- !duplicated(key)
  stats <- unique(d$statistic)
  w <- tibble::tibble(model = d$model[rows], step = d$step[rows], layer = d$layer[rows])
  ukey <- key[rows]
  for (st in stats) {
    sel <- d$statistic == st
    v <- rep(NA_real_, length(ukey))
    v[match(key[sel], ukey)] <- d$value[sel]
    w[[st]] <- v
  }
  pre <- unique(sub(":.*$", "", stats))
  if (length(pre) == 1 && all(grepl(":", stats, fixed = TRUE)) && length(stats) > 1) {
    names(w)[-(1:3)] <- sub("^[^:]*:", "", stats)
  }
  if (all(is.na(w$layer))) w$layer <- NULL
  o <- do.call(order, unname(as.list(w[intersect(c("model", "step", "layer"), names(w))])))
  w[o, ]
}

# Leaves out id columns (model, step, area, ...) that take one value in the whole table
# (one model, no checkpoints), unless asked to keep them.
drop_constant_ids <- function(tbl, keep = character()) {
  for (nm in setdiff(intersect(c("model", "step", "area", "layer"), names(tbl)), keep)) {
    v <- tbl[[nm]]
    if (nrow(tbl) > 1 && length(unique(as.character(v))) == 1 || all(is.na(v))) tbl[[nm]] <- NULL
  }
  tbl
}

report_not_computed <- function(results, s) {
  r <- results$records
  none <- s[s$n_ok == 0, ]
  if (!nrow(none)) return(NULL)
  rows <- lapply(none$metric, function(m) {
    rm <- r[r$metric == m & r$status != "ok", ]
    tibble::tibble(metric = m, status = rm$status[1], why = rm$reason[1],
                   condition = if (rm$status[1] == "error") rm$condition[1] else NA_character_)
  })
  tbl <- do.call(rbind, rows)
  if (all(is.na(tbl$condition))) tbl$condition <- NULL
  c("<h2>Not computed</h2>",
    "<p>Metrics that did not apply to these models (a skip says what they need) or failed (the condition class says why).</p>",
    html_table(tbl))
}

report_provenance <- function(results, s) {
  p <- results$provenance
  fields <- setdiff(names(p), c("metrics", "reduce"))
  # a field without a value (no LibTorch: no libtorch_version) is blank, like NA elsewhere
  prov <- tibble::tibble(field = fields, value = vapply(p[fields], function(v) paste(format(v[!is.na(v)]), collapse = ", "), ""))
  args <- tibble::tibble(metric = names(p$metrics), arguments = vapply(p$metrics, function(a) if (length(a)) format_args(a) else "", ""))
  red <- p$reduce
  red <- red[lengths(red) > 0]
  red_tbl <- if (length(red)) {
    # layer x unit; one column when every unit had the same reducers
    lays <- unique(unlist(lapply(red, names)))
    cols <- lapply(red, function(r) vapply(lays, function(l) r[[l]] %||% NA_character_, ""))
    same <- all(vapply(cols, identical, logical(1), cols[[1]]))
    t <- tibble::tibble(layer = lays)
    if (same) t[[if (length(cols) > 1) "reducer (every checkpoint)" else "reducer"]] <- unname(cols[[1]]) else for (u in names(cols)) t[[u]] <- unname(cols[[u]])
    t
  }
  r <- results$records
  err <- r[r$status == "error", c("model", "step", "layer", "metric", "condition", "reason")]
  timing <- s[, c("metric", "n_ok", "n_skipped", "n_error", "seconds")]
  c("<h2>Diagnostics and provenance</h2>",
    "<details><summary>Run: versions, seed, device, inputs</summary>", html_table(prov), "</details>",
    "<details><summary>Metric arguments</summary>", html_table(args), "</details>",
    if (!is.null(red_tbl)) c("<details><summary>Reducer per layer (what <code>activations()</code> kept of each layer)</summary>", html_table(red_tbl), "</details>"),
    "<details><summary>Timings and outcomes per metric</summary>", html_table(timing), "</details>",
    sprintf("<details><summary>Failures (%d)</summary>", nrow(err)),
    if (nrow(err)) html_table(err) else "<p>None.</p>", "</details>",
    sprintf("<details><summary>Stimuli (%d)</summary><p>%s</p></details>", length(results$stimuli),
            html_escape(paste(utils::head(results$stimuli, 200), collapse = ", "))))
}

# ---- HTML helpers -------------------------------------------------------------------------

html_escape <- function(x) {
  x <- gsub("&", "&amp;", x, fixed = TRUE)
  x <- gsub("<", "&lt;", x, fixed = TRUE)
  x <- gsub(">", "&gt;", x, fixed = TRUE)
  gsub("\"", "&quot;", x, fixed = TRUE)
}

html_id <- function(x) gsub("[^A-Za-z0-9_-]", "-", x)

html_toc <- function(ms) {
  sprintf("<nav><p>%s</p></nav>", paste(sprintf("<a href=\"#%s\">%s</a>", html_id(ms), html_escape(ms)), collapse = " &middot; "))
}

# Numbers for people: missing values blank; whole numbers as integers; otherwise three
# significant digits of the largest magnitude in `ref` (the column), the same number
# of decimals for every value; scientific notation for very small or large columns;
# a column whose values span more than three orders of magnitude gets three
# significant digits per value.
fmt_num <- function(v, ref = v) {
  out <- rep("", length(v))
  ok <- is.finite(v)
  out[!is.na(v) & is.infinite(v)] <- ifelse(v[!is.na(v) & is.infinite(v)] > 0, "Inf", "-Inf")
  if (!any(ok)) return(out)
  r <- ref[is.finite(ref)]
  big <- if (length(r)) max(abs(r)) else max(abs(v[ok]))
  if (all(r == round(r)) && all(v[ok] == round(v[ok])) && big < 1e15) {
    out[ok] <- formatC(v[ok], format = "d", big.mark = ",")
  } else if ((small <- min(abs(r[r != 0]), big)) < big / 1e3 && big < 1e6) {
    # values over several orders of magnitude: three significant digits each
    out[ok] <- vapply(v[ok], function(x) fmt_num(x), "")
  } else if (big >= 1e6 || big < 1e-4) {
    out[ok] <- formatC(v[ok], format = "e", digits = 2)
  } else {
    dec <- min(6, max(0, 2 - floor(log10(big))))
    out[ok] <- formatC(v[ok], format = "f", digits = dec, big.mark = ",")
  }
  out
}

# A table; numbers formatted per column (fmt_num()), or over all the value columns
# together with `shared = TRUE` (a matrix of one statistic); numeric-looking text
# columns (intervals, p-values) are right-aligned like numbers.
html_table <- function(tbl, shared = FALSE) {
  tbl <- as.data.frame(tbl, stringsAsFactors = FALSE, check.names = FALSE)
  if (!nrow(tbl)) return("<p class=\"note\">(no rows)</p>")
  num <- vapply(tbl, is.numeric, logical(1))
  all_values <- unlist(tbl[num & names(tbl) != "step"], use.names = FALSE)
  num <- num | vapply(tbl, function(v) is.character(v) && any(nzchar(v) & !is.na(v)) &&
                        all(grepl("^([-<\\[0-9]|$)", v[!is.na(v)])), logical(1))
  cells <- lapply(names(tbl), function(nm) {
    v <- tbl[[nm]]
    if (nm == "step" && is.numeric(v)) return(ifelse(is.na(v), "", fmt_step(v)))
    if (is.numeric(v)) return(if (shared) fmt_num(v, ref = all_values) else fmt_num(v))
    if (is.logical(v)) return(ifelse(is.na(v), "", ifelse(v, "yes", "no")))
    v <- as.character(v)
    ifelse(is.na(v), "", html_escape(v))
  })
  head <- paste0("<tr>", paste0(sprintf("<th%s>%s</th>", ifelse(num, " class=\"num\"", ""), html_escape(names(tbl))), collapse = ""), "</tr>")
  rows <- vapply(seq_len(nrow(tbl)), function(i) {
    paste0("<tr>", paste0(sprintf("<td%s>%s</td>", ifelse(num, " class=\"num\"", ""), vapply(cells, `[`, "", i)), collapse = ""), "</tr>")
  }, "")
  c("<div class=\"table\"><table>", "<thead>", head, "</thead><tbody>", rows, "</tbody></table></div>")
}

report_css <- paste(
  "body{font-family:-apple-system,'Segoe UI',Roboto,'Helvetica Neue',Arial,sans-serif;color:#222;background:#fff;margin:0;line-height:1.45}",
  "main{max-width:980px;margin:0 auto;padding:24px 28px 60px}",
  "h1{font-size:1.7em;margin:0.2em 0 0.3em}h2{font-size:1.35em;border-bottom:2px solid #ddd;padding-bottom:4px;margin-top:1.8em}",
  "h3{font-size:1.12em;margin:1.6em 0 0.4em}.family{font-weight:normal;color:#777;font-size:0.85em;margin-left:0.6em}",
  ".lead{color:#555}.answer{font-size:1.12em;background:#eef5ff;border-left:4px solid #3b7dd8;padding:8px 12px}",
  ".about{max-width:50em}.note{color:#666;font-size:0.92em}",
  "nav p{font-size:0.9em;line-height:1.8}nav a{color:#3b7dd8;text-decoration:none}",
  "figure{margin:8px 0}figure img{max-width:100%;height:auto;border:1px solid #eee}",
  ".table{overflow-x:auto;margin:6px 0 10px}table{border-collapse:collapse;font-size:0.88em}",
  "th,td{padding:3px 10px;border-bottom:1px solid #e5e5e5;text-align:left;white-space:nowrap}",
  "th{background:#f4f4f4;font-weight:600}td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}",
  "tbody tr:nth-child(even){background:#fafafa}",
  "details{margin:6px 0;border:1px solid #e3e3e3;border-radius:4px;padding:4px 10px}summary{cursor:pointer;color:#444}",
  "code{font-size:0.92em;background:#f4f4f4;padding:0 3px;border-radius:3px}"
)

# ---- the browser check --------------------------------------------------------------------

# A PNG screenshot of an HTML file in headless Chromium, as a reader sees it (`make demo`
# and the tests look at the report this way): the first `height` pixels of a window
# `width` wide, or with `height = NULL` the whole page (measured on a small first
# rendering, which needs the png package; a page taller than 24,000 pixels is drawn
# smaller). Returns the PNG path, or NULL with a message when no Chromium is found
# (`TS_CHROMIUM`, else chromium, chromium-browser or google-chrome on the PATH).
report_screenshot <- function(html, png, width = 1100, height = 1400, timeout = 120) {
  bins <- c(Sys.getenv("TS_CHROMIUM"), Sys.which(c("chromium", "chromium-browser", "google-chrome")))
  bin <- bins[nzchar(bins)][1]
  if (is.na(bin)) {
    cli::cli_inform("No Chromium found (install chromium or set {.envvar TS_CHROMIUM}): screenshot of {.file {html}} skipped.")
    return(invisible(NULL))
  }
  if (!is.character(html) || length(html) != 1 || !file.exists(html)) ts_abort("{.arg html} must be an existing file, not {describe(html)}.", "argument")
  png <- normalizePath(png, mustWork = FALSE)
  scale <- 1
  full <- is.null(height)
  if (full) {
    rlang::check_installed("png", reason = "to measure the page for a whole-page screenshot")
    # a half-size rendering of a tall window: where the ink ends is the page height
    # (smaller scales enlarge the text to Chromium's minimum font size)
    height <- 2 * ink_rows(shoot(bin, html, png, width, 40000, 0.5, timeout)) + 40
    scale <- min(1, 24000 / height)
  }
  shoot(bin, html, png, width, height, scale, timeout)
  if (full) {
    # cut the white below the content
    img <- png::readPNG(png)
    n <- ink_rows(png, img)
    if (n + 20 < dim(img)[1]) png::writePNG(img[seq_len(n + 20), , , drop = FALSE], png)
  }
  png
}

# The last row of a PNG that is not (near) white.
ink_rows <- function(png, img = png::readPNG(png)) {
  ink <- which(apply(img[, , 1:3, drop = FALSE] < 0.98, 1, any))
  if (length(ink)) max(ink) else dim(img)[1]
}

shoot <- function(bin, html, png, width, height, scale, timeout) {
  unlink(png)
  prof <- tempfile("chromium")
  on.exit(unlink(prof, recursive = TRUE), add = TRUE)
  args <- c("--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run", "--disable-dev-shm-usage",
            if (scale != 1) sprintf("--force-device-scale-factor=%.4f", scale), paste0("--user-data-dir=", prof),
            paste0("--screenshot=", png), sprintf("--window-size=%d,%d", as.integer(width), as.integer(height)),
            paste0("file://", normalizePath(html)))
  # the browser must not inherit a preloaded library of this process (make sanitize
  # preloads libasan, which breaks Chromium's launcher script)
  log <- suppressWarnings(system2(bin, shQuote(args), stdout = TRUE, stderr = TRUE, timeout = timeout,
                                  env = "LD_PRELOAD="))
  if (!file.exists(png)) ts_abort(c("Chromium wrote no screenshot of {.file {html}}.", x = "{utils::tail(log, 3)}"), "file")
  png
}
