#' tensorscope: analyse artificial and biological neural networks with the same tools
#'
#' tensorscope puts representational alignment (CKA, RDMs, RSA), neural predictivity,
#' geometry and circuit metrics for artificial networks in the same pipeline that is
#' used for neural recordings, so that models and brains are compared under identical
#' conditions. The numerical work is done by a header-only C++ core (Eigen, BLAS/LAPACK,
#' OpenMP); LibTorch, when found at install time, runs TorchScript models.
#'
#' Start with [ts_reps()] to hold a model's layer activations, then [cka_layers()],
#' [rdm()], [compare_rdms()] and [rsa()]. [ts_build_info()] reports what the
#' installation found; [ts_threads()] sets the number of threads.
#'
#' @section Errors:
#' Input problems raise conditions of class `tensorscope_error` plus a specific class
#' (`tensorscope_error_type`, `tensorscope_error_non_finite`,
#' `tensorscope_error_mismatch`, `tensorscope_error_zero_variance`,
#' `tensorscope_error_too_few`, `tensorscope_error_rank_deficient`, `tensorscope_error_not_rdm`,
#' `tensorscope_error_argument`, `tensorscope_error_empty`,
#' `tensorscope_error_torch_unavailable`, `tensorscope_error_cuda_unavailable`,
#' `tensorscope_error_file`, `tensorscope_error_corrupt`,
#' `tensorscope_error_not_torchscript`, `tensorscope_error_unknown_metric`) whose message names the argument and the
#' offending value. A failure inside LibTorch on valid input (out of GPU memory, say)
#' raises `tensorscope_error_torch`.
#'
#' @keywords internal
#' @useDynLib tensorscope, .registration = TRUE
#' @importFrom Rcpp sourceCpp
#' @importFrom rlang .data
"_PACKAGE"

## usethis namespace: start
## usethis namespace: end
NULL

# `..` is torch for R's "all remaining dimensions" index (activations of nn_modules).
utils::globalVariables("..")
