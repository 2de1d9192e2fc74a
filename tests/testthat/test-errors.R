# The one table of error kinds (inst/include/tensorscope/errors.hpp), shared by the core,
# the Rcpp glue, the LibTorch backend and R: every kind arrives in R with its class.

kinds <- tensorscope:::cpp_error_kinds()

test_that("the table lists each kind once, with a description", {
  expect_s3_class(kinds, "data.frame")
  expect_true(all(grepl("^[a-z_]+$", kinds$kind)))
  expect_false(anyDuplicated(kinds$kind) > 0)
  expect_true(all(nzchar(kinds$description)))
  expect_true(all(c("argument", "type", "non_finite", "zero_variance", "mismatch", "empty", "file", "corrupt",
                    "torch", "internal") %in% kinds$kind))
})

test_that("every kind thrown in C++ arrives from the Rcpp glue with its classes and message", {
  for (k in kinds$kind) {
    msg <- paste("a", k, "error {with braces} and 100%")
    e <- tryCatch(tensorscope:::cpp_raise_error(k, msg), error = identity)
    expect_s3_class(e, paste0("tensorscope_error_", k))
    expect_s3_class(e, "tensorscope_error")
    expect_identical(class(e), c(paste0("tensorscope_error_", k), "tensorscope_error", "error", "condition"))
    expect_identical(e$kind, k)
    expect_identical(conditionMessage(e), msg)
  }
  # exceptions that are not tensorscope's own
  expect_error(tensorscope:::cpp_raise_error("bad_alloc", ""), class = "tensorscope_error_memory")
  expect_error(tensorscope:::cpp_raise_error("std", "lapack said no"), "lapack said no", class = "tensorscope_error_internal")
  expect_error(tensorscope:::cpp_raise_error("no_such_kind", ""), "no_such_kind", class = "tensorscope_error_argument")
  # the C++ stack unwinds: the session goes on and a later call works
  expect_true(is.data.frame(tensorscope:::cpp_error_kinds()))
})

test_that("the core's own checks arrive classed when the R checks are bypassed", {
  x <- matrix(rnorm(20), 10)
  expect_error(tensorscope:::cpp_cka_matrix(list(x), list(x[1:5, ]), "linear", "biased", "median", 0.5, NA_real_,
                                            NA_real_, "auto", 4e9, 1L), class = "tensorscope_error_mismatch")
  expect_error(tensorscope:::cpp_cka_matrix(list(x[1:3, ]), list(), "linear", "debiased", "median", 0.5, NA_real_,
                                            NA_real_, "auto", 4e9, 1L), class = "tensorscope_error_too_few")
  expect_error(tensorscope:::cpp_rdm_into(x, "nope", matrix(0, 0, 0), matrix(0, 1, choose(nrow(x), 2)), 1L, 1, 1L), "nope", class = "tensorscope_error_argument")
  expect_error(tensorscope:::cpp_knn(x, 10L, 1L), class = "tensorscope_error_argument")
  expect_error(tensorscope:::cpp_read_npy_raw(as.raw(1:3), FALSE), class = "tensorscope_error_corrupt")
  expect_error(tensorscope:::cpp_read_npy(tempfile()), class = "tensorscope_error_file")
})

test_that("every kind the R layer raises is in the table and documented in ?tensorscope", {
  ns <- asNamespace("tensorscope")
  used <- character()
  walk <- function(e) {
    if (is.call(e)) {
      if (identical(e[[1]], as.name("ts_abort")) && length(e) >= 3) {
        a <- as.list(e)[-1]
        k <- if (!is.null(a$kind)) a$kind else a[[2]]
        if (is.character(k)) used <<- c(used, k)
      }
      for (x in as.list(e)) if (!missing(x)) walk(x)
    }
  }
  for (f in ls(ns, all.names = TRUE)) {
    fn <- get(f, envir = ns)
    if (is.function(fn)) walk(body(fn))
  }
  expect_gt(length(unique(used)), 8)
  expect_true(all(used %in% kinds$kind), label = paste(setdiff(used, kinds$kind), collapse = ", "))
  rd <- tools::Rd_db("tensorscope", lib.loc = dirname(system.file(package = "tensorscope")))
  txt <- paste(capture.output(tools::Rd2txt(rd[["tensorscope-package.Rd"]], options = list(underline_titles = FALSE))),
               collapse = " ")
  documented <- vapply(kinds$kind, function(k) grepl(paste0("tensorscope_error_", k, "\\b"), txt), NA)
  expect_true(all(documented), label = paste(kinds$kind[!documented], collapse = ", "))
})

test_that("every kind thrown in the LibTorch backend arrives with its class", {
  skip_if_not(ts_torch_available())
  for (k in kinds$kind) {
    e <- tryCatch(tensorscope:::torch_call("ts_torch_raise_error", k, "from the backend"), error = identity)
    expect_identical(class(e), c(paste0("tensorscope_error_", k), "tensorscope_error", "error", "condition"))
    expect_identical(conditionMessage(e), "from the backend")
  }
  expect_error(tensorscope:::torch_call("ts_torch_raise_error", "c10", "inside LibTorch"), "inside LibTorch",
               class = "tensorscope_error_torch")
  # a bad model handle, through the R layer's wrapper: the kind survives, headed by the call
  expect_error(tensorscope:::torch_run("ts_torch_modules", NULL), "model handle", class = "tensorscope_error_argument")
  # a LibTorch failure takes the kind the call gives it
  expect_error(tensorscope:::torch_errors(tensorscope:::torch_call("ts_torch_raise_error", "c10", "x"), kind = "mismatch"),
               class = "tensorscope_error_mismatch")
})
