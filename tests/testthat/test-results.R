# ts_results: JSON against the schema, round trip, HTML, RDS, autoplot.

# Minimal JSON-schema (draft 2020-12 subset: type, required, properties, items, enum) validator.
validate_schema <- function(x, s, path = "$") {
  errs <- character()
  type_ok <- function(v, t) switch(t,
    object = is.list(v) && (!is.null(names(v)) || length(v) == 0),
    array = is.list(v) && is.null(names(v)) || is.atomic(v) && is.null(names(v)),
    string = is.character(v) && length(v) == 1,
    number = is.numeric(v) && length(v) == 1,
    boolean = is.logical(v) && length(v) == 1 && !is.na(v),
    null = is.null(v),
    FALSE)
  if (!is.null(s$type) && !any(vapply(unlist(s$type), function(t) type_ok(x, t), logical(1)))) {
    return(sprintf("%s: not of type %s", path, paste(unlist(s$type), collapse = "/")))
  }
  if (!is.null(s$enum) && !x %in% unlist(s$enum)) errs <- c(errs, sprintf("%s: %s not in enum", path, format(x)))
  if (!is.null(s$required)) {
    miss <- setdiff(unlist(s$required), names(x))
    if (length(miss)) errs <- c(errs, sprintf("%s: missing %s", path, paste(miss, collapse = ", ")))
  }
  if (!is.null(s$properties) && is.list(x)) {
    for (p in intersect(names(s$properties), names(x))) errs <- c(errs, validate_schema(x[[p]], s$properties[[p]], paste0(path, ".", p)))
  }
  if (!is.null(s$items)) for (i in seq_along(x)) errs <- c(errs, validate_schema(x[[i]], s$items, sprintf("%s[%d]", path, i)))
  errs
}

# computed once per file: the tests only read it
small_results <- local({
  cached <- NULL
  function() {
    if (is.null(cached)) {
      sim <- simulate_model_and_brain(n_stimuli = 40, n_layers = 4, width = 16, n_subjects = 2, seed = 3)
      cached <<- analyze_models(list(sim = sim$reps), metrics = c("effective_rank", "cka_similarity", "block_cka_gap",
                                                                 "rsa_similarity", "grouped_fisher"),
                                neural = list(IT = sim$neural))
    }
    cached
  }
})

test_that("the JSON report validates against the schema and round-trips", {
  skip_if_not_installed("jsonlite")
  res <- small_results()
  f <- tempfile(fileext = ".json")
  save_report(res, f)
  schema <- jsonlite::read_json(system.file("schema", "report.schema.json", package = "tensorscope"))
  j <- jsonlite::read_json(f, simplifyVector = FALSE)
  expect_equal(validate_schema(j, schema), character())
  # the validator can fail: a report without values or with a bad status is rejected
  j2 <- j; j2$values <- NULL
  expect_match(validate_schema(j2, schema), "missing values")
  j3 <- j; j3$records[[1]]$status <- "fine"
  expect_match(validate_schema(j3, schema), "not in enum")
  back <- read_report(f)
  expect_s3_class(back, "ts_results")
  expect_equal(back$values, res$values)
  expect_equal(back$records$status, res$records$status)
  expect_equal(back$get("effective_rank"), res$get("effective_rank"), ignore_attr = TRUE)
  expect_equal(attr(back$neural, "ranking")$score, attr(res$neural, "ranking")$score)
  expect_equal(back$provenance$seed, res$provenance$seed)
  r <- tempfile(fileext = ".rds")
  save_report(res, r)
  expect_equal(read_report(r)$values, res$values)
  expect_error(save_report(res, tempfile(fileext = ".txt")), class = "tensorscope_error_argument")
  expect_error(read_report(tempfile()), class = "tensorscope_error_argument")
})

test_that("the HTML report renders self-contained with its plots", {
  res <- small_results()
  f <- tempfile(fileext = ".html")
  save_report(res, f)
  html <- paste(readLines(f, warn = FALSE), collapse = "\n")
  expect_match(html, "tensorscope analysis report", fixed = TRUE)
  expect_match(html, "data:image/png;base64", fixed = TRUE)
  expect_match(html, "effective_rank", fixed = TRUE)
  expect_false(grepl("<(img|link|script)[^>]*(src|href)=\"(http|file|/)", html))  # nothing outside the file
  pngs <- list.files(sub("\\.html$", "_files", f), pattern = "\\.png$")
  withr::with_dir(tempdir(), save_report(res, "relative.html"))  # a relative path works too
  expect_true(file.exists(file.path(tempdir(), "relative.html")))
  expect_true(all(c("effective_rank.png", "cka_similarity.png") %in% pngs))
})

test_that("the HTML report opens with the answer and explains every metric", {
  res <- small_results()
  f <- tempfile(fileext = ".html")
  save_report(res, f)
  html <- paste(readLines(f, warn = FALSE), collapse = "\n")
  pos <- function(x) regexpr(x, html, fixed = TRUE)[[1]]
  # the answer first: best layer per area, ceilings, ranking, the score defined
  expect_true(pos("<h2>Answer</h2>") > 0 && pos("<h2>Answer</h2>") < pos("<h2>Metrics</h2>"))
  best <- attr(res$neural, "best")
  expect_match(html, sprintf("its best layer is %s for IT (RSA %s)", best$layer, formatC(best$rsa, format = "f", digits = 3)), fixed = TRUE)
  expect_match(html, "<b>Score</b>: a model's mean", fixed = TRUE)
  for (h in c("Best layer per neural data set", "Noise ceilings", "Ranking of the models")) {
    expect_true(pos(h) > 0 && pos(h) < pos("<h2>Metrics</h2>"), label = h)
  }
  expect_match(html, formatC(best$ceiling_upper, format = "f", digits = 3), fixed = TRUE)
  # every metric with values has its section with the registry's sentences, in registry order
  reg <- metric_registry()
  shown <- c("cka_similarity", "block_cka_gap", "rsa_similarity", "effective_rank")
  at <- vapply(shown, function(m) pos(sprintf("<section id=\"%s\">", m)), 0)
  expect_true(all(at > 0))
  expect_false(is.unsorted(at[order(match(shown, reg$metric))]))
  for (m in shown) {
    about <- gsub("&", "&amp;", reg$about[reg$metric == m], fixed = TRUE)  # as HTML text
    expect_true(grepl(about, html, fixed = TRUE), label = paste("the about text of", m))
  }
  expect_true(all(nzchar(reg$about)))
  # NA is blank, never the text "NA" (block_cka_gap has rows without a layer)
  expect_false(grepl(">NA<", html, fixed = TRUE))
  expect_match(html, "<td></td>", fixed = TRUE)
  # grouped_fisher needs a model file: listed as not computed, with the reason
  nc <- substring(html, pos("<h2>Not computed</h2>"))
  expect_match(nc, "grouped_fisher", fixed = TRUE)
  expect_match(nc, "needs a model file", fixed = TRUE)
  # provenance and diagnostics are collapsed
  expect_match(html, "<details><summary>Run: versions, seed, device, inputs</summary>", fixed = TRUE)
  expect_match(html, "<details><summary>Failures (0)</summary>", fixed = TRUE)
  sim <- simulate_model_and_brain(n_stimuli = 30, n_layers = 3, width = 12, source_layer = 2, seed = 4)
  vi <- analyze_models(sim$reps, metrics = c("vector_interference", "ricci_curvature"))
  save_report(vi, g <- tempfile(fileext = ".html"))
  html2 <- paste(readLines(g, warn = FALSE), collapse = "\n")
  expect_match(html2, "<details><summary>Diagnostics (welch_bound)</summary>", fixed = TRUE)
  expect_match(html2, "<details><summary>Diagnostics (n_edges)</summary>", fixed = TRUE)
  expect_match(html2, "No neural data was given", fixed = TRUE)
  # a metric that failed on every layer: listed as not computed and among the failures, with its class
  bad <- analyze_models(sim$reps, metrics = list("effective_rank", ricci_curvature = list(k = 500)))
  save_report(bad, h <- tempfile(fileext = ".html"))
  html3 <- paste(readLines(h, warn = FALSE), collapse = "\n")
  cls <- unique(bad$records$condition[bad$records$metric == "ricci_curvature"])
  expect_length(cls, 1)
  expect_match(cls, "^tensorscope_error_")
  expect_match(html3, "<details><summary>Failures (3)</summary>", fixed = TRUE)
  expect_match(substring(html3, regexpr("<h2>Not computed</h2>", html3, fixed = TRUE)), cls, fixed = TRUE)
})

test_that("report numbers are rounded to three significant digits of their column, NA blank", {
  fmt <- tensorscope:::fmt_num
  expect_identical(fmt(c(0.12345, NA, 1)), c("0.12", "", "1.00"))
  expect_identical(fmt(c(0.953, 0.5)), c("0.953", "0.500"))
  expect_identical(fmt(c(3, NA, 10000)), c("3", "", "10,000"))
  expect_identical(fmt(c(12.345, -3.21)), c("12.3", "-3.2"))
  expect_identical(fmt(c(-0.0004, 0.05)), c("-0.0004", "0.0500"))
  # over more than three orders of magnitude: three significant digits per value
  expect_identical(fmt(c(1.57, 0.00012, 0)), c("1.57", "0.000120", "0"))
  expect_identical(fmt(c(1e-6, 2.5e-5)), c("1.00e-06", "2.50e-05"))
  expect_identical(fmt(c(Inf, NaN, -Inf, 1.5)), c("Inf", "", "-Inf", "1.50"))
  expect_identical(fmt(c(NA_real_, NA_real_)), c("", ""))
  expect_identical(tensorscope:::fmt_p(c(0.000999, 0.0421, NA)), c("< 0.001", "0.042", ""))
})

test_that("the HTML report renders in a browser: a headless Chromium screenshot is not blank", {
  skip_if(!nzchar(Sys.getenv("TS_CHROMIUM")) && !any(nzchar(Sys.which(c("chromium", "chromium-browser", "google-chrome")))),
          "no Chromium")
  skip_if_not_installed("png")
  res <- small_results()
  f <- tempfile(fileext = ".html")
  save_report(res, f)
  shot <- tensorscope:::report_screenshot(f, tempfile(fileext = ".png"), width = 1000, height = 900)
  img <- png::readPNG(shot)
  expect_equal(dim(img)[1:2], c(900, 1000))
  ink <- mean(apply(img[, , 1:3], c(1, 2), min) < 0.9)  # pixels that are not (near) white
  expect_gt(ink, 0.01)
  expect_lt(ink, 0.6)
  # the title (dark text in the top-left corner) is drawn
  expect_lt(min(img[1:120, 1:500, 1:3]), 0.3)
  # the whole page: taller than a screen, and the figures are drawn (many colours)
  full <- png::readPNG(tensorscope:::report_screenshot(f, tempfile(fileext = ".png"), width = 1000, height = NULL))
  expect_gt(dim(full)[1], 2000)
  cols <- unique(round(matrix(full[, , 1:3], ncol = 3) * 31))
  expect_gt(nrow(cols), 200)
})

test_that("autoplot draws every kind of metric", {
  res <- small_results()
  for (m in c("effective_rank", "cka_similarity", "block_cka_gap", "rsa_similarity")) {
    expect_s3_class(autoplot(res, m), "ggplot")
  }
  expect_error(autoplot(res, "grouped_fisher"), class = "tensorscope_error_empty")
})

test_that("read_report() refuses files that are not reports with classed errors", {
  f <- tempfile(fileext = ".rds")
  saveRDS(list(a = 1), f)
  expect_error(read_report(f), class = "tensorscope_error_type")
  writeBin(as.raw(c(0x1f, 0x8b, 1, 2, 3)), f)  # a truncated gzip stream
  expect_error(read_report(f), class = "tensorscope_error_corrupt")
  j <- tempfile(fileext = ".json")
  writeLines('{"generator": "tensorscope", "values": [{"model": "a"', j)  # truncated
  expect_error(read_report(j), class = "tensorscope_error_corrupt")
  writeLines(paste0(strrep("[", 20000), strrep("]", 20000)), j)  # nested beyond R's protection stack
  expect_error(read_report(j), class = "tensorscope_error")
  writeLines('{"generator": "other", "values": [], "records": []}', j)
  expect_error(read_report(j), class = "tensorscope_error_type")
  writeLines('{"generator": "tensorscope", "values": 3, "records": "x"}', j)
  expect_error(read_report(j), class = "tensorscope_error_type")
})
