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

small_results <- function() {
  sim <- simulate_model_and_brain(n_stimuli = 40, n_layers = 4, width = 16, n_subjects = 2, seed = 3)
  analyze_models(list(sim = sim$reps), metrics = c("effective_rank", "cka_similarity", "block_cka_gap", "rsa_similarity",
                                                  "grouped_fisher"),
                 neural = list(IT = sim$neural))
}

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
  skip_if_not(rmarkdown::pandoc_available())
  res <- small_results()
  f <- tempfile(fileext = ".html")
  save_report(res, f)
  html <- paste(readLines(f, warn = FALSE), collapse = "\n")
  expect_match(html, "tensorscope analysis report", fixed = TRUE)
  expect_match(html, "data:image/png;base64", fixed = TRUE)
  expect_match(html, "effective_rank", fixed = TRUE)
  pngs <- list.files(sub("\\.html$", "_files", f), pattern = "\\.png$")
  withr::with_dir(tempdir(), save_report(res, "relative.html"))  # a relative path works too
  expect_true(file.exists(file.path(tempdir(), "relative.html")))
  expect_true(all(c("effective_rank.png", "cka_similarity.png") %in% pngs))
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
