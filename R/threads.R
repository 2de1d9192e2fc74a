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

# Threads for each task of a future_lapply() when its workers share this machine
# (multisession, multicore): the cores divided among the workers, so that the OpenMP,
# OpenBLAS and LibTorch threads of parallel tasks do not oversubscribe the cores
# (OpenBLAS threads spin while they wait). NULL (leave the settings alone) for
# sequential plans and for workers on other machines (cluster, batchtools), which
# use their own defaults.
task_threads <- function() {
  plan <- future::plan()
  if (!inherits(plan, c("multisession", "multicore"))) return(NULL)
  w <- future::nbrOfWorkers()
  if (!is.finite(w) || w <= 1) return(NULL)
  max(1L, as.integer(thread_cap() %/% w))
}

# Runs expr with n threads for tensorscope's OpenMP loops, OpenBLAS and (when its
# backend is loaded, or `torch` is TRUE) LibTorch; restores them afterwards.
with_task_threads <- function(n, expr, torch = FALSE) {
  if (is.null(n)) return(expr)
  old <- options(tensorscope.threads = as.integer(n))
  old_blas <- cpp_blas_threads(as.integer(n))
  use_torch <- (torch || !is.null(the$torch_dll)) && ts_torch_available() && !"torch" %in% loadedNamespaces()
  old_torch <- if (use_torch) torch_call("ts_torch_threads", as.integer(n))
  on.exit({
    options(old)
    if (old_blas > 0) cpp_blas_threads(old_blas)
    if (!is.null(old_torch)) torch_call("ts_torch_threads", old_torch)
  })
  expr
}

# After a large computation: R's garbage collected and the C heap's free pages returned
# to the system (glibc's malloc_trim()), so that what a call freed does not stay in the
# process's resident memory under the work that follows. A full collection costs
# milliseconds here (numeric data are not scanned).
release_memory <- function() {
  invisible(gc(verbose = FALSE))
  invisible(cpp_release_memory())
}
