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
#' Every error tensorscope raises, in R or in its C++ core, has class
#' `tensorscope_error` plus `tensorscope_error_<kind>`, and its message names the
#' argument and the offending value. The kinds are one table shared by the R layer,
#' the C++ core and the LibTorch backend (`inst/include/tensorscope/errors.hpp`):
#' * `tensorscope_error_argument`: an argument has a value the function cannot use;
#' * `tensorscope_error_type`: an argument or a file's data have the wrong type;
#' * `tensorscope_error_non_finite`: data hold NA, NaN or Inf;
#' * `tensorscope_error_zero_variance`: a constant layer, pattern or channel;
#' * `tensorscope_error_mismatch`: inputs disagree (stimuli, shapes, sizes, targets);
#' * `tensorscope_error_empty`: no rows, columns, layers or members;
#' * `tensorscope_error_too_few`: too few stimuli, conditions, runs or samples;
#' * `tensorscope_error_rank_deficient`: data span too few dimensions for the method;
#' * `tensorscope_error_not_rdm`: an object is not a valid RDM;
#' * `tensorscope_error_unknown_metric`: an analyzer metric that is not registered;
#' * `tensorscope_error_file`: a file cannot be opened, read or written;
#' * `tensorscope_error_corrupt`: a file's bytes are not a valid file of its format;
#' * `tensorscope_error_not_torchscript`: a file LibTorch cannot load as TorchScript;
#' * `tensorscope_error_torch_unavailable`: tensorscope was installed without LibTorch;
#' * `tensorscope_error_cuda_unavailable`: CUDA was asked for and is not available;
#' * `tensorscope_error_torch`: LibTorch failed on valid input (out of GPU memory, say);
#' * `tensorscope_error_memory`: an allocation failed;
#' * `tensorscope_error_internal`: an unexpected failure inside tensorscope or a library
#'   it calls (please report it).
#'
#' Errors raised in C++ also carry the kind as a field (`e$kind`).
#'
#' @section Warnings:
#' Degenerate but usable input gives a result with `NA` where a value is undefined,
#' never a bare NaN, and a warning of class `tensorscope_warning` plus
#' `tensorscope_warning_unusable_layer` (a layer with zero variance in an all-layer
#' function: `NA` for it, the other layers computed), `tensorscope_warning_degenerate`
#' (a target, head or distance profile with zero variance) or
#' `tensorscope_warning_bootstrap` (bootstrap samples that could not be used).
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
