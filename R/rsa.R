#' Representational similarity analysis of model layers against neural RDMs
#'
#' Compares every layer's RDM with one or several neural RDMs (subjects, sessions,
#' areas) and adds the inference that makes the comparison interpretable:
#'
#' * **Permutation test** (Nili et al. 2014): the condition labels of the model RDM are
#'   permuted `n_perm` times; the p-value is (1 + #{null >= observed}) / (1 + n_perm),
#'   one-sided, per subject and for the mean over subjects. The neural RDMs are
#'   prepared (e.g. ranked) once and each permutation is a gather, so 10,000
#'   permutations take milliseconds for the linear methods.
#' * **Bootstrap confidence intervals** (percentile) over stimuli (conditions are
#'   resampled with replacement; pairs of a condition with its own copy are dropped),
#'   over subjects, or both (the recommended choice for generalising to new subjects
#'   and stimuli). `"auto"` uses both when there are several subjects, stimuli
#'   otherwise. The whitened and Bures methods support the subject bootstrap only.
#' * **Noise ceiling** (several subjects): the upper bound is the mean similarity of
#'   each subject's RDM to the mean RDM of all subjects, the lower bound the mean
#'   similarity to the mean of the other subjects (leave one out). RDMs are pooled as
#'   rsatoolbox does for the method: ranked for rank correlations, z-scored for
#'   correlations, scaled to unit root-mean-square for cosines.
#'
#' Permutations and bootstrap samples come from a counter-based generator seeded by
#' `seed`: results are reproducible and do not depend on the number of threads.
#' Progress (one step per layer's permutations, one for the bootstrap) is reported
#' through `progressr`: wrap the call in `progressr::with_progress()` or set
#' `progressr::handlers(global = TRUE)` to see it.
#'
#' @param reps The model: a [ts_reps()] object (one RDM per layer is computed with
#'   `rdm_method`), anything `ts_reps()` accepts, or a `ts_rdm` of model RDMs.
#' @param neural Neural RDMs: a `ts_rdm` (e.g. from [rdm()]) or anything [as_rdm()]
#'   accepts (a matrix, a list of matrices, an n x n x subjects array). Its conditions
#'   are matched to the stimuli of `reps` by label (with a message) when both carry
#'   labels; labels that differ are an error of class `tensorscope_error_mismatch`.
#' @param method RDM comparison, see [compare_rdms()].
#' @param rdm_method Dissimilarity for the model's RDMs, see [rdm()].
#' @param boot `"auto"`, `"stimuli"`, `"subjects"`, `"both"` or `"none"`.
#' @param n_boot Number of bootstrap samples.
#' @param n_perm Number of permutations (0: no test).
#' @param conf_level Confidence level of the intervals.
#' @param seed Seed of the permutations and bootstrap samples (`NULL`: drawn from R's
#'   random number generator, so `set.seed()` applies).
#' @param na Units of `reps` (columns of a matrix or of each layer of a list) with
#'   missing values: `"error"` (default) or `"drop_units"` (left out, with a message
#'   saying how many).
#' @return A tibble of class `ts_rsa`, one row per layer x subject: `layer`,
#'   `subject`, `similarity`, `p_value` (permutation, per subject), `ci_lower`,
#'   `ci_upper` (per subject; stimulus bootstrap only, else `NA`). A layer whose RDM the
#'   method cannot compare (see [compare_rdms()]) gets `NA` with a warning of class
#'   `tensorscope_warning_unusable_layer`; degenerate neural RDMs are an error. With
#'   few conditions, stimulus-bootstrap samples drawing fewer than 3 distinct
#'   conditions are dropped, with a warning of class `tensorscope_warning_bootstrap`. `summary()` gives one
#'   row per layer: `layer`, `similarity` (mean over subjects), `se` (bootstrap
#'   standard error), `ci_lower`, `ci_upper`, `p_value` (permutation test of the mean),
#'   `ceiling_lower`, `ceiling_upper`, `n_subjects`, `n_conditions`. `autoplot()` plots
#'   the summary with the noise ceiling band.
#' @references Nili, Wingfield, Walther, Su, Marslen-Wilson & Kriegeskorte (2014). A
#'   toolbox for representational similarity analysis. PLoS Comput Biol 10: e1003553.
#'   Schutt, Kipnis, Diedrichsen & Kriegeskorte (2023). Statistical inference on
#'   representational geometries. eLife 12: e82566.
#' @export
#' @examples
#' set.seed(3)
#' z <- matrix(rnorm(20 * 5), 20)
#' reps <- ts_reps(list(early = z + matrix(rnorm(100, sd = 3), 20),
#'                      late = z %*% matrix(rnorm(25), 5)))
#' subjects <- lapply(1:4, function(s) as.matrix(rdm(z + matrix(rnorm(100), 20))))
#' res <- rsa(reps, subjects, n_perm = 1000, n_boot = 200)
#' res
#' summary(res)
rsa <- function(reps, neural, method = c("spearman", "pearson", "kendall_tau_a", "rho_a", "cosine",
                                         "corr_cov", "cosine_cov", "bures"),
                rdm_method = c("correlation", "euclidean", "sqeuclidean", "cosine", "mahalanobis"),
                boot = c("auto", "stimuli", "subjects", "both", "none"), n_boot = 1000,
                n_perm = 10000, conf_level = 0.95, seed = 1, na = c("error", "drop_units")) {
  method <- check_choice(method, compare_methods)
  rdm_method <- check_choice(rdm_method, c("correlation", "euclidean", "sqeuclidean", "cosine", "mahalanobis"))
  boot <- check_choice(boot, c("auto", "stimuli", "subjects", "both", "none"))
  n_boot <- check_count(n_boot, min = 0, max = 1e7)
  n_perm <- check_count(n_perm, min = 0, max = 1e8)
  conf_level <- check_number(conf_level, lower = 0.5, upper = 0.9999)
  seed <- check_seed(seed)

  na <- check_na(na)
  if (!inherits(reps, "ts_rdm")) reps <- drop_na_units(reps, na)
  models <- if (inherits(reps, "ts_rdm")) reps else rdm(as_reps(reps), rdm_method)
  neural <- align_conditions(models, as_rdm(neural), "reps", "neural")
  bad <- unusable_rdms(models, method)
  if (any(bad) && !all(bad)) {
    # an unusable layer (NA or degenerate RDM) gets NA; the others are computed as usual
    all_layers <- models$descriptors$name
    cli::cli_warn(c("Layer{?s} {.val {all_layers[bad]}} {?has/have} an RDM on which the similarity is undefined (NA, constant or all zero): NA there; the other layers were computed.",
                    i = "{.arg method} = {.val {method}}."),
                  class = c("tensorscope_warning_unusable_layer", "tensorscope_warning"))
    keep <- new_rdm(models$dissimilarities[!bad, , drop = FALSE], models$conditions,
                    models$descriptors[!bad, , drop = FALSE], models$method)
    res <- rsa(keep, neural, method = method, boot = boot, n_boot = n_boot, n_perm = n_perm,
               conf_level = conf_level, seed = seed)
    out <- expand_rsa(res, all_layers)
    attr(out, "settings")$rdm_method <- if (inherits(reps, "ts_rdm")) NA else rdm_method
    return(out)
  }
  n <- length(models$conditions)
  if (n < 3) ts_abort("RSA needs at least 3 conditions in {.arg reps} and {.arg neural}; there are {n}.", "too_few")
  layers <- models$descriptors$name
  subjects <- neural$descriptors$name
  if (anyDuplicated(subjects)) subjects <- make.unique(subjects)
  k <- length(layers)
  s <- length(subjects)
  vector_method <- method %in% c("spearman", "pearson", "kendall_tau_a", "rho_a", "cosine")
  if (boot == "auto") boot <- if (s > 1) (if (vector_method) "both" else "subjects") else (if (vector_method) "stimuli" else "none")
  if (boot %in% c("stimuli", "both") && !vector_method) {
    ts_abort("{.arg boot} = {.val {boot}} resamples conditions, which {.arg method} = {.val {method}} does not support; use \"subjects\" or \"none\".",
             "argument")
  }
  if (boot %in% c("subjects", "both") && s < 2) {
    ts_abort("{.arg boot} = {.val {boot}} resamples subjects, but {.arg neural} holds one RDM.", "too_few")
  }

  D <- comparable_rdms(models, method, "reps")
  N <- comparable_rdms(neural, method, "neural")
  th <- threads_now()
  obs <- cpp_compare_rdms(D, N, method, n, th)  # k x s
  check_similarities(obs, method, c("reps", "neural"))

  # permutation p-values
  p_subject <- matrix(NA_real_, k, s)
  p_group <- rep(NA_real_, k)
  # progress (progressr: shown under progressr::with_progress() or handlers(global = TRUE))
  steps <- (n_perm > 0) * k + (boot != "none" && n_boot > 0)
  tick <- if (steps > 0) progressr::progressor(steps = steps) else function(...) NULL
  if (n_perm > 0) {
    for (i in seq_len(k)) {
      tick(sprintf("permutations: layer %s", layers[i]))
      null <- cpp_permutation_null(D[i, ], N, n, method, n_perm, seed, th)
      tol <- 1e-12 * pmax(1, abs(obs[i, ]))
      p_subject[i, ] <- (1 + colSums(sweep(null, 2, obs[i, ] - tol, `>=`), na.rm = TRUE)) / (1 + n_perm)
      nm <- rowMeans(null)
      p_group[i] <- (1 + sum(nm >= mean(obs[i, ]) - 1e-12 * max(1, abs(mean(obs[i, ]))), na.rm = TRUE)) / (1 + n_perm)
    }
  }

  # bootstrap
  alpha <- (1 - conf_level) / 2
  ci_subject <- array(NA_real_, c(k, s, 2))
  group_boot <- NULL
  if (boot != "none" && n_boot > 0) {
    tick(sprintf("bootstrap (%s)", boot))
    if (boot %in% c("stimuli", "both")) {
      bs <- cpp_bootstrap_conditions(D, N, n, method, n_boot, seed + 1, th)  # n_boot x (k*s)
      dim(bs) <- c(n_boot, k, s)
      dropped <- sum(apply(is.na(bs), 1, any))
      if (dropped > 0) {
        cli::cli_warn(c("{dropped} of {n_boot} bootstrap sample{?s} over stimuli left fewer than 3 distinct conditions (or a constant RDM) and {?was/were} dropped from the intervals.",
                        i = "{n} conditions are few for a bootstrap over stimuli."),
                      class = c("tensorscope_warning_bootstrap", "tensorscope_warning"))
      }
      for (i in seq_len(k)) for (j in seq_len(s)) {
        ci_subject[i, j, ] <- stats::quantile(bs[, i, j], c(alpha, 1 - alpha), na.rm = TRUE, names = FALSE)
      }
      if (boot == "stimuli") {
        group_boot <- apply(bs, c(1, 2), mean)
      } else {
        smp <- with_seed(seed + 2, matrix(sample.int(s, n_boot * s, replace = TRUE), n_boot))
        group_boot <- matrix(NA_real_, n_boot, k)
        for (b in seq_len(n_boot)) group_boot[b, ] <- rowMeans(matrix(bs[b, , smp[b, ]], k))
      }
    } else {
      smp <- with_seed(seed + 2, matrix(sample.int(s, n_boot * s, replace = TRUE), n_boot))
      group_boot <- t(apply(smp, 1, function(idx) rowMeans(obs[, idx, drop = FALSE])))
      if (k == 1) group_boot <- matrix(group_boot, ncol = 1)
    }
  }

  ceiling <- if (s > 1) noise_ceiling_rdms(N, method, n, th) else c(lower = NA_real_, upper = NA_real_)

  out <- tibble::tibble(
    layer = factor(rep(layers, times = s), levels = layers),
    subject = rep(subjects, each = k),
    similarity = as.vector(obs),
    p_value = as.vector(p_subject),
    ci_lower = as.vector(ci_subject[, , 1]),
    ci_upper = as.vector(ci_subject[, , 2])
  )
  summ <- tibble::tibble(
    layer = factor(layers, levels = layers),
    similarity = rowMeans(obs),
    se = if (is.null(group_boot)) NA_real_ else apply(group_boot, 2, stats::sd, na.rm = TRUE),
    ci_lower = if (is.null(group_boot)) NA_real_ else apply(group_boot, 2, stats::quantile, alpha, na.rm = TRUE, names = FALSE),
    ci_upper = if (is.null(group_boot)) NA_real_ else apply(group_boot, 2, stats::quantile, 1 - alpha, na.rm = TRUE, names = FALSE),
    p_value = p_group,
    ceiling_lower = ceiling[["lower"]],
    ceiling_upper = ceiling[["upper"]],
    n_subjects = s,
    n_conditions = n
  )
  structure(out, class = c("ts_rsa", class(out)), summary = summ,
            settings = list(method = method, rdm_method = if (inherits(reps, "ts_rdm")) NA else rdm_method,
                            boot = boot, n_boot = n_boot, n_perm = n_perm, conf_level = conf_level, seed = seed))
}

# An rsa() result over a subset of the layers, over all_layers (NA for the others).
expand_rsa <- function(res, all_layers) {
  subjects <- unique(res$subject)
  grid <- tibble::tibble(layer = factor(rep(all_layers, times = length(subjects)), levels = all_layers),
                         subject = rep(subjects, each = length(all_layers)))
  idx <- match(paste(grid$layer, grid$subject, sep = "\r"), paste(res$layer, res$subject, sep = "\r"))
  for (col in setdiff(names(res), c("layer", "subject"))) grid[[col]] <- res[[col]][idx]
  sm <- attr(res, "summary")
  si <- match(all_layers, as.character(sm$layer))
  summ <- sm[si, ]
  summ$layer <- factor(all_layers, levels = all_layers)
  for (col in c("ceiling_lower", "ceiling_upper", "n_subjects", "n_conditions")) summ[[col]] <- sm[[col]][1]
  structure(grid, class = class(res), summary = summ, settings = attr(res, "settings"))
}

# Subject RDMs transformed the way rsatoolbox's pool_rdm does for each method before
# averaging: ranked for rank correlations, z-scored for correlations, scaled to unit
# root-mean-square for cosines.
pool_transform <- function(N, method) {
  Z <- if (method %in% c("spearman", "rho_a", "kendall_tau_a")) {
    t(apply(N, 1, rank))
  } else if (method %in% c("pearson", "corr_cov")) {
    t(apply(N, 1, function(v) (v - mean(v)) / stats::sd(v)))
  } else {
    N / sqrt(rowMeans(N^2))
  }
  if (nrow(N) == 1) Z <- matrix(Z, nrow = 1)
  Z
}

# Upper bound: each subject vs the pool of all; lower: each subject vs the pool of the
# others (leave one out). Each subject is transformed once; the pools are sums.
noise_ceiling_rdms <- function(N, method, n, threads) {
  s <- nrow(N)
  Z <- pool_transform(N, method)
  total <- colSums(Z)
  upper <- cpp_compare_rdms(N, matrix(total / s, nrow = 1), method, n, threads)[, 1]
  loo <- (matrix(total, s, ncol(Z), byrow = TRUE) - Z) / (s - 1)
  lower <- vapply(seq_len(s), function(j) {
    cpp_compare_rdms(N[j, , drop = FALSE], loo[j, , drop = FALSE], method, n, threads)[1, 1]
  }, numeric(1))
  c(lower = mean(lower), upper = mean(upper))
}

#' @param object A `ts_rsa` result.
#' @param ... Unused.
#' @rdname rsa
#' @export
summary.ts_rsa <- function(object, ...) attr(object, "summary")

#' @export
print.ts_rsa <- function(x, ...) {
  st <- attr(x, "settings")
  sm <- attr(x, "summary")
  cli::cat_line("<ts_rsa> ", nlevels(x$layer), " layer(s) x ", sm$n_subjects[1], " neural RDM(s), ",
                sm$n_conditions[1], " conditions; ", st$method, ", ", st$n_perm, " permutations, bootstrap: ",
                st$boot)
  if (!is.na(sm$ceiling_upper[1])) {
    cli::cat_line(sprintf("noise ceiling: [%.3f, %.3f]", sm$ceiling_lower[1], sm$ceiling_upper[1]))
  }
  best <- sm$layer[which.max(sm$similarity)]
  cli::cat_line("best layer: ", as.character(best), sprintf(" (mean %s = %.3f)", st$method, max(sm$similarity, na.rm = TRUE)))
  print(tibble::as_tibble(structure(x, class = class(x)[-1], summary = NULL, settings = NULL)), ...)
  invisible(x)
}
