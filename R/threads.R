#' Get or set the number of threads tensorscope uses
#'
#' tensorscope's C++ loops run on OpenMP threads. The default follows data.table's
#' rules: half of the logical cores, at least 1, capped by the environment variables
#' `OMP_THREAD_LIMIT` and `OMP_NUM_THREADS` when they are set. Results are identical
#' for any number of threads (work is split into blocks that do not depend on the
#' thread count). Dense matrix products run in the BLAS that R uses (OpenBLAS when
#' installed), which has its own thread setting; tensorscope never runs its own threads
#' around a BLAS call.
#'
#' @param n `NULL` to query, or the number of threads to use (a whole number >= 1;
#'   values above the cap are reduced to the cap). `0` restores the default.
#' @return The number of threads in use; when setting, the previous value, invisibly.
#' @export
#' @examples
#' ts_threads()
#' old <- ts_threads(1)
#' ts_threads(old)
ts_threads <- function(n = NULL) {
  current <- getOption("tensorscope.threads", default_threads())
  if (is.null(n)) return(as.integer(current))
  n <- check_count(n, min = 0)
  new <- if (n == 0) default_threads() else min(n, thread_cap())
  options(tensorscope.threads = as.integer(new))
  invisible(as.integer(current))
}

thread_cap <- function() {
  caps <- suppressWarnings(as.integer(c(Sys.getenv("OMP_THREAD_LIMIT"), Sys.getenv("OMP_NUM_THREADS"))))
  cores <- parallel::detectCores(logical = TRUE)
  if (is.na(cores)) cores <- 1L
  min(c(cores, caps[!is.na(caps) & caps > 0]))
}

default_threads <- function() {
  if (!cpp_has_openmp()) return(1L)
  cores <- parallel::detectCores(logical = TRUE)
  if (is.na(cores)) cores <- 2L
  max(1L, min(as.integer(cores %/% 2L), thread_cap()))
}

threads_now <- function() ts_threads()
