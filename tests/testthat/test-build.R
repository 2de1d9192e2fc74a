test_that("ts_build_info reports one row with the documented columns", {
  info <- ts_build_info()
  expect_s3_class(info, "tbl_df")
  expect_equal(nrow(info), 1L)
  expect_named(info, c("version", "openmp", "threads", "torch", "torch_version", "torch_path", "cuda", "blas",
                       "blas_threads"))
  expect_equal(info$version, as.character(utils::packageVersion("tensorscope")))
  expect_type(info$openmp, "logical")
  expect_identical(info$torch, ts_torch_available())
  if (identical(Sys.getenv("TS_EXPECT_TORCH"), "0")) expect_false(info$torch)
  if (info$torch) {
    expect_match(info$torch_version, "^[0-9]+\\.[0-9]+")
    expect_true(dir.exists(info$torch_path))
  } else {
    expect_true(is.na(info$torch_version))
  }
})

# Runs `code` in a fresh R process and reports whether LibTorch is mapped afterwards.
libtorch_mapped_after <- function(code) {
  code <- paste("library(tensorscope)", code, "cat(any(grepl('libtorch', readLines('/proc/self/maps'))))",
                sep = "; ")
  out <- system2(file.path(R.home("bin"), "Rscript"), c("-e", shQuote(code)), stdout = TRUE,
                 env = paste0("R_LIBS=", paste(.libPaths(), collapse = ":")))
  utils::tail(out, 1)
}

test_that("loading tensorscope does not load LibTorch", {
  skip_if(!file.exists("/proc/self/maps"))
  expect_equal(libtorch_mapped_after("x <- cka(matrix(rnorm(20), 10), matrix(rnorm(20), 10))"), "FALSE")
})

test_that("without LibTorch, torch features raise a classed error that says how to enable them", {
  skip_if(ts_torch_available())
  expect_error(tensorscope:::torch_backend(), class = "tensorscope_error_torch_unavailable")
  expect_error(tensorscope:::torch_backend(), "libtorch-dev")
})

test_that("the LibTorch backend loads on demand when installed", {
  skip_if_not(ts_torch_available())
  info <- tensorscope:::torch_call("ts_torch_info")
  expect_type(info$cuda, "logical")
  expect_match(info$version, "^[0-9]")
  # positive control for the test above: asking for build info does load LibTorch
  skip_if(!file.exists("/proc/self/maps"))
  expect_equal(libtorch_mapped_after("invisible(ts_build_info())"), "TRUE")
})

test_that("ts_threads gets, sets, caps and restores", {
  old <- ts_threads()
  expect_gte(old, 1L)
  prev <- ts_threads(1)
  expect_equal(prev, old)
  expect_equal(ts_threads(), 1L)
  ts_threads(10000)
  expect_lte(ts_threads(), parallel::detectCores())
  ts_threads(0)
  expect_equal(ts_threads(), tensorscope:::default_threads())
  ts_threads(old)
  expect_error(ts_threads(-1), class = "tensorscope_error_argument")
  expect_error(ts_threads("two"), class = "tensorscope_error_argument")
  withr::local_envvar(OMP_THREAD_LIMIT = "1")
  ts_threads(8)
  expect_equal(ts_threads(), 1L)
  ts_threads(old)
})

test_that("parallel tasks share the cores out and restore the thread settings", {
  old <- future::plan(future::sequential)
  on.exit(future::plan(old), add = TRUE)
  expect_null(tensorscope:::task_threads())
  future::plan(future::multisession, workers = 2)
  expect_equal(tensorscope:::task_threads(), max(1L, tensorscope:::thread_cap() %/% 2L))
  future::plan(future::sequential)
  omp <- ts_threads()
  blas <- tensorscope:::cpp_blas_threads(0L)
  inside <- tensorscope:::with_task_threads(1L, c(ts_threads(), tensorscope:::cpp_blas_threads(0L)))
  expect_equal(inside[1], 1L)
  if (blas > 0) expect_equal(inside[2], 1L)
  expect_equal(ts_threads(), omp)
  expect_equal(tensorscope:::cpp_blas_threads(0L), blas)
  expect_identical(tensorscope:::with_task_threads(NULL, 42), 42)
  skip_if_not(ts_torch_available())
  before <- tensorscope:::torch_call("ts_torch_threads", 0L)
  expect_equal(tensorscope:::with_task_threads(1L, tensorscope:::torch_call("ts_torch_threads", 0L), torch = TRUE), 1L)
  expect_equal(tensorscope:::torch_call("ts_torch_threads", 0L), before)
})
