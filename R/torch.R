# The LibTorch backend lives in its own shared library (tensorscope_torch), built when
# configure finds LibTorch and loaded here on first use, so that loading tensorscope
# never loads LibTorch (torch for R brings its own).

the <- new.env(parent = emptyenv())

torch_backend_file <- function() {
  f <- system.file("libs", paste0("tensorscope_torch", .Platform$dynlib.ext), package = "tensorscope")
  if (!nzchar(f)) {
    # an R_ARCH sub-folder (Windows-style multi-arch installs)
    f <- system.file("libs", Sys.getenv("R_ARCH"), paste0("tensorscope_torch", .Platform$dynlib.ext),
                     package = "tensorscope")
  }
  f
}

#' Is the LibTorch backend available?
#'
#' `TRUE` when tensorscope was installed with LibTorch (see [ts_build_info()]). The
#' backend is not loaded by this check.
#' @return `TRUE` or `FALSE`.
#' @export
#' @examples
#' ts_torch_available()
ts_torch_available <- function() nzchar(torch_backend_file())

torch_backend <- function(call = rlang::caller_env()) {
  if (!is.null(the$torch_dll)) return(the$torch_dll)
  f <- torch_backend_file()
  if (!nzchar(f)) {
    ts_abort(c("This needs LibTorch, and tensorscope was installed without it.",
               i = "Install LibTorch (on Debian: {.code apt-get install libtorch-dev}) or set {.envvar LIBTORCH_HOME}, then reinstall tensorscope.",
               i = "{.code ts_build_info()} shows what the installation found."),
             "torch_unavailable", call = call)
  }
  the$torch_dll <- dyn.load(f, local = TRUE, now = TRUE)
  the$torch_dll
}

torch_call <- function(name, ..., call = rlang::caller_env()) {
  dll <- torch_backend(call = call)
  # do.call: the symbol comes from a library loaded at run time, not registered with
  # the package, which R CMD check cannot resolve statically
  do.call(".Call", list(getNativeSymbolInfo(name, dll), ...))
}

# Backend of the dense metrics (cka(), cka_layers(), rdm(), ridge predictivity()): "eigen"
# or a LibTorch device ("cpu", "cuda"; option tensorscope.torch_device overrides the
# default, CUDA when available). "auto" takes LibTorch only for large inputs on a CUDA GPU
# (option tensorscope.torch_min_elements, default 5e7 input elements); on the CPU the
# Eigen + BLAS core is as fast. `supported` is FALSE when the chosen options have no
# LibTorch path (then "torch" is an error and "auto" means Eigen).
dense_backend <- function(backend, size, supported = TRUE, what = "these options", call = rlang::caller_env()) {
  backend <- check_choice(backend, c("auto", "eigen", "torch"), arg = "backend", call = call)
  if (backend == "eigen") return("eigen")
  if (backend == "auto") {
    if (!supported || size < getOption("tensorscope.torch_min_elements", 5e7) || !ts_torch_available() ||
        "torch" %in% loadedNamespaces()) return("eigen")
    return(if (isTRUE(torch_call("ts_torch_info", call = call)$cuda)) "cuda" else "eigen")
  }
  if (!supported) ts_abort("{.arg backend} = {.val torch} does not support {what}; use {.code backend = \"eigen\"}.", "argument", call = call)
  torch_backend(call = call)
  device <- getOption("tensorscope.torch_device")
  if (is.null(device)) return(if (isTRUE(torch_call("ts_torch_info", call = call)$cuda)) "cuda" else "cpu")
  tryCatch(check_device(device, call = call), tensorscope_error_argument = function(e) {
    ts_abort("Option {.code tensorscope.torch_device} must be {.val cpu} or {.val cuda} (or {.val cuda:N}), not {describe(device)}.",
             "argument", call = call)
  })
}
