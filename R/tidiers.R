# tidy() / glance() methods (generics from the `generics` package, which broom
# re-exports) and dplyr-safe result classes.

#' @importFrom generics tidy
#' @export
generics::tidy

#' @importFrom generics glance
#' @export
generics::glance

#' Tidy and glance at tensorscope results
#'
#' `tidy()` returns a result as a plain tibble in long form (the class and its
#' attributes dropped); `glance()` returns one row that summarises the whole analysis.
#' They are the `generics` / broom methods, so `broom::tidy()` and `broom::glance()`
#' work too.
#'
#' * `ts_rsa` ([rsa()]): `tidy()` one row per layer x subject (`layer`, `subject`,
#'   `similarity`, `p_value`, `ci_lower`, `ci_upper`); `glance()`: `method`,
#'   `rdm_method`, `n_layers`, `n_subjects`, `n_conditions`, `best_layer`,
#'   `best_similarity`, `ceiling_lower`, `ceiling_upper`, `n_perm`, `boot`.
#' * `ts_predictivity` ([predictivity()]): `tidy()` one row per layer x target
#'   (`layer`, `target`, `r`, `r2`, `alpha`); `glance()`: `method`, `protocol`,
#'   `n_layers`, `n_targets`, `n_stimuli`, `n_splits`, `best_layer`, `best_median_r`,
#'   `ceiling`, `best_score`.
#' * `ts_cka` ([cka_layers()]): `tidy()` `layer_x`, `layer_y`, `cka`; `glance()`:
#'   `kernel`, `estimator`, `n_layers_x`, `n_layers_y`, `mean_cka` (off the diagonal
#'   when within one model).
#' * `ts_noise_ceiling` ([noise_ceiling()]): `tidy()` `target`, `reliability`;
#'   `glance()` the summary (`method`, `ceiling`, `n_targets`, ...).
#' * `ts_rdm` ([rdm()]): `tidy()` one row per RDM x pair (`rdm`, `condition_1`,
#'   `condition_2`, `dissimilarity`); `glance()`: `n_rdms`, `n_conditions`, `method`.
#' * `ts_reps` ([ts_reps()]): `tidy()` is `summary()` (one row per layer); `glance()`:
#'   `model`, `step`, `n_layers`, `n_stimuli`, `n_features`.
#'
#' **dplyr.** The result classes keep summaries and settings in attributes. dplyr verbs
#' (`filter()`, `arrange()`, `mutate()`, ...) on `ts_rsa`, `ts_predictivity` and
#' `ts_noise_ceiling` return plain tibbles (class and attributes dropped), so no stale
#' summary of the rows before filtering survives; `ts_cka` and `ts_layer_profile`
#' results, whose attributes describe every row alike, keep their class.
#'
#' @param x A tensorscope result.
#' @param ... Unused.
#' @return A tibble.
#' @name tidy-tensorscope
#' @examples
#' set.seed(3)
#' z <- matrix(rnorm(20 * 5), 20)
#' reps <- ts_reps(list(early = z + matrix(rnorm(100, sd = 3), 20), late = z))
#' res <- rsa(reps, lapply(1:3, function(s) as.matrix(rdm(z + matrix(rnorm(100), 20)))),
#'            n_perm = 200, n_boot = 100)
#' tidy(res)
#' glance(res)
#' glance(cka_layers(reps))
NULL

# The plain tibble under a result class (class and tensorscope attributes dropped).
strip_result <- function(x) {
  keep <- c("names", "row.names", "class")
  attributes(x) <- attributes(x)[intersect(names(attributes(x)), keep)]
  class(x) <- c("tbl_df", "tbl", "data.frame")
  x
}

#' @rdname tidy-tensorscope
#' @export
tidy.ts_rsa <- function(x, ...) strip_result(x)

#' @rdname tidy-tensorscope
#' @export
glance.ts_rsa <- function(x, ...) {
  st <- attr(x, "settings")
  sm <- attr(x, "summary")
  best <- which.max(sm$similarity)
  tibble::tibble(method = st$method, rdm_method = st$rdm_method, n_layers = nrow(sm), n_subjects = sm$n_subjects[1],
                 n_conditions = sm$n_conditions[1], best_layer = as.character(sm$layer[best]),
                 best_similarity = sm$similarity[best], ceiling_lower = sm$ceiling_lower[1],
                 ceiling_upper = sm$ceiling_upper[1], n_perm = st$n_perm, boot = st$boot)
}

#' @rdname tidy-tensorscope
#' @export
tidy.ts_predictivity <- function(x, ...) strip_result(x)

#' @rdname tidy-tensorscope
#' @export
glance.ts_predictivity <- function(x, ...) {
  st <- attr(x, "settings")
  sm <- summary(x)
  best <- which.max(sm$median_r)
  tibble::tibble(method = st$method, protocol = st$protocol, n_layers = nrow(sm), n_targets = st$n_targets,
                 n_stimuli = st$n_stimuli, n_splits = st$n_splits, best_layer = as.character(sm$layer[best]),
                 best_median_r = sm$median_r[best], ceiling = sm$ceiling[1], best_score = sm$score[best])
}

#' @rdname tidy-tensorscope
#' @export
tidy.ts_cka <- function(x, ...) strip_result(x)

#' @rdname tidy-tensorscope
#' @export
glance.ts_cka <- function(x, ...) {
  st <- attr(x, "settings")
  off <- if (isTRUE(st$within)) as.character(x$layer_x) != as.character(x$layer_y) else rep(TRUE, nrow(x))
  tibble::tibble(kernel = st$kernel, estimator = st$estimator, n_layers_x = nlevels(x$layer_x),
                 n_layers_y = nlevels(x$layer_y), mean_cka = mean(x$cka[off]))
}

#' @rdname tidy-tensorscope
#' @export
tidy.ts_noise_ceiling <- function(x, ...) strip_result(x)

#' @rdname tidy-tensorscope
#' @export
glance.ts_noise_ceiling <- function(x, ...) attr(x, "summary")

#' @rdname tidy-tensorscope
#' @export
tidy.ts_rdm <- function(x, ...) {
  n <- length(x$conditions)
  pr <- upper_pairs(n)
  k <- nrow(x$dissimilarities)
  tibble::tibble(rdm = rep(x$descriptors$name, each = nrow(pr)),
                 condition_1 = rep(x$conditions[pr[, 1]], k), condition_2 = rep(x$conditions[pr[, 2]], k),
                 dissimilarity = as.vector(t(x$dissimilarities)))
}

#' @rdname tidy-tensorscope
#' @export
glance.ts_rdm <- function(x, ...) {
  tibble::tibble(n_rdms = nrow(x$dissimilarities), n_conditions = length(x$conditions), method = x$method)
}

#' @rdname tidy-tensorscope
#' @export
tidy.ts_reps <- function(x, ...) summary(x)

#' @rdname tidy-tensorscope
#' @export
glance.ts_reps <- function(x, ...) {
  p <- x$provenance
  tibble::tibble(model = p$model %||% NA_character_, step = p$step %||% NA_real_, n_layers = length(x$layers),
                 n_stimuli = length(x$stimuli), n_features = sum(vapply(x$layers, ncol, integer(1))))
}

# dplyr (Suggests): rows filtered or rearranged no longer match the summary/settings
# attributes, so the verbs return the plain tibble. Registered lazily (NAMESPACE
# S3method(dplyr::dplyr_reconstruct, ...)), without a hard dependency on dplyr.

#' @exportS3Method dplyr::dplyr_reconstruct
dplyr_reconstruct.ts_rsa <- function(data, template) strip_result(data)

#' @exportS3Method dplyr::dplyr_reconstruct
dplyr_reconstruct.ts_predictivity <- function(data, template) strip_result(data)

#' @exportS3Method dplyr::dplyr_reconstruct
dplyr_reconstruct.ts_noise_ceiling <- function(data, template) strip_result(data)
