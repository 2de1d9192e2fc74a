# Runs the testthat suite against the installed package in $TS_TEST_LIB and prints a
# closing line "tests: N passed, N failed, N skipped". Exits 1 on any failure or error.
lib <- Sys.getenv("TS_TEST_LIB")
if (dir.exists("lib-cran")) .libPaths(c(normalizePath("lib-cran"), .libPaths()))
if (nzchar(lib)) .libPaths(c(lib, .libPaths()))
suppressPackageStartupMessages(library(testthat))
library(tensorscope)
info <- ts_build_info()
cat(sprintf("tensorscope %s from %s: OpenMP %s, threads %d, LibTorch %s, BLAS %s\n", info$version,
            dirname(system.file(package = "tensorscope")), info$openmp, info$threads,
            if (info$torch) info$torch_version else "no", info$blas))
expect_torch <- Sys.getenv("TS_EXPECT_TORCH", "")
if (identical(expect_torch, "0") && info$torch) stop("this run must be without LibTorch, but the backend is installed")
res <- testthat::test_dir("tests/testthat", package = "tensorscope", load_package = "installed",
                          reporter = testthat::ProgressReporter$new(show_praise = FALSE),
                          stop_on_failure = FALSE)
df <- as.data.frame(res)
failed <- sum(df$failed) + sum(df$error)
skipped <- sum(df$skipped)
passed <- sum(df$nb) - sum(df$failed) - sum(df$skipped)
cat(sprintf("\ntests: %d passed, %d failed, %d skipped\n", passed, failed, skipped))
quit(status = if (failed > 0) 1 else 0)
