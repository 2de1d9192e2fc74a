#' What this tensorscope installation found and uses
#'
#' Reports the facts recorded by `configure` at install time and the run-time
#' settings: OpenMP, threads, LibTorch (version, library path, CUDA) and the BLAS R
#' uses. Asking about CUDA loads the LibTorch backend; that step is skipped (with
#' `cuda = NA`) while torch for R is loaded, whose own LibTorch must not meet ours.
#'
#' @return A one-row tibble with columns `version` (package version), `openmp`
#'   (logical), `threads` (see [ts_threads()]), `torch` (logical: backend built),
#'   `torch_version`, `torch_path`, `cuda` (logical or `NA`), `blas` (path of the BLAS
#'   library) and `blas_threads` (OpenBLAS's thread count, `NA` for other BLAS).
#' @export
#' @examples
#' ts_build_info()
ts_build_info <- function() {
  facts <- build_facts()
  torch <- identical(facts[["torch"]], "1") && ts_torch_available()
  torch_version <- if (torch) facts[["torch_version"]] else NA_character_
  cuda <- NA
  if (torch && !"torch" %in% loadedNamespaces()) {
    info <- tryCatch(torch_call("ts_torch_info"), error = function(e) NULL)
    if (!is.null(info)) {
      cuda <- info$cuda
      torch_version <- info$version
    }
  } else if (!torch) {
    cuda <- FALSE
  }
  blas_threads <- cpp_blas_threads(0L)
  tibble::tibble(
    version = as.character(utils::packageVersion("tensorscope")),
    openmp = cpp_has_openmp(),
    threads = ts_threads(),
    torch = torch,
    torch_version = torch_version,
    torch_path = if (torch) facts[["torch_libdir"]] else NA_character_,
    cuda = cuda,
    blas = unname(extSoftVersion()["BLAS"]),
    blas_threads = if (blas_threads < 0) NA_integer_ else as.integer(blas_threads)
  )
}

build_facts <- function() {
  f <- system.file("build-info.dcf", package = "tensorscope")
  if (!nzchar(f)) return(list(openmp = NA, torch = "0"))
  as.list(read.dcf(f)[1, ])
}
