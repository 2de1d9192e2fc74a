#' Neural predictivity: cross-validated regression from model layers to responses
#'
#' For every layer of a model, predicts each target (neuron, voxel, behavioural
#' measure) on held-out stimuli from the layer's features, and scores the predictions.
#' This answers "which layer best predicts the brain?" under a fixed, documented
#' protocol.
#'
#' **Cross-validation.** `folds = K` splits the stimuli into K folds (shuffled with
#' `seed`; stratified by `stratify` when given: each label is spread evenly over the
#' folds); every stimulus is predicted once, by the model trained on the other folds,
#' and r and R² are computed on the pooled held-out predictions. `splits` gives the
#' splits explicitly (test sets, or `list(train = , test = )` pairs, as row numbers or
#' stimulus ids); when they do not partition the stimuli, r and R² are computed per
#' split and averaged over splits. X and Y are centred with the *training* fold's means
#' only (the intercept), so no statistic of the held-out stimuli reaches the fit.
#'
#' **Ridge** (`method = "ridge"`): for each training fold one eigendecomposition of
#' X'X (p <= n) or of the n x n kernel XX' (p > n) serves every alpha and every target:
#' with X = U S V', the prediction for alpha is (X_test V) diag(s / (s² + alpha)) (U'Y),
#' computed from alpha-independent products formed once per fold (himalaya's method;
#' Dupré la Tour et al. 2022). alpha is chosen per target (`alpha_per_target = TRUE`) or
#' shared by all targets (minimum of the summed criterion) on the training fold only, by
#' `alpha_select`:
#' * `"gcv"` (default): generalised cross-validation (Golub, Heath & Wahba 1979),
#'   RSS(alpha) / (n (1 - df/n)²), df = 1 + sum s²/(s² + alpha), exact and almost free
#'   from the same decomposition;
#' * `"loo"`: exact leave-one-out error r_i / (1 - h_ii) (the intercept's leverage 1/n
#'   included), one n x n x targets product per alpha;
#' * `"kfold"`: inner `inner_folds`-fold cross-validation within the training fold
#'   (random folds from `seed`), or on the caller's inner folds (`inner_splits`); the
#'   criterion is the held-out squared error summed over the inner folds (the pooled MSE
#'   when they partition the training set).
#' Ties go to the smallest alpha.
#'
#' **PLS** (`method = "pls"`): PLS2 regression with `ncomp` components, no scaling,
#' by the improved kernel algorithm of Dayal & MacGregor (1997), which gives the same
#' model as NIPALS (scikit-learn's `PLSRegression`, `pls::plsr(method = "kernelpls")`).
#' All splits are fitted together: per component, the scores of every split come from
#' one product X \[r_1 ... r_S\] and the loadings from one product X' \[t_1 ... t_S\], so X
#' is read twice per component in all instead of twice per split (GEMM-shaped instead
#' of matrix-vector products), and the centred training matrices are never copied.
#'
#' **Brain-Score protocol** (`protocol = "brainscore"`, Schrimpf et al. 2018): PLS with
#' 25 components; 10 shuffle splits with 90 % of the stimuli for training, stratified
#' by `stratify` when given, drawn with `seed` (default 1) — the same design as
#' Brain-Score, not the same random draw (Brain-Score uses numpy's generator); Pearson r
#' per target on each split's held-out stimuli; median over targets; mean over splits.
#' The ceiling is the split-half reliability over repetitions with the Spearman-Brown
#' correction (see [noise_ceiling()]) and the reported score is (r / ceiling)².
#'
#' **Progress** (one step per layer) is reported through `progressr` (see [rsa()]).
#'
#' **Scores.** `r` is Pearson's correlation between predictions and held-out responses
#' (0 when the prediction is constant). `r2` is the out-of-sample R² = 1 - SSE / SST with
#' SST taken about the mean of the held-out responses (scikit-learn's `r2_score` on the
#' held-out set), so it can be negative. A held-out response that is constant gives `NA`.
#' Nothing about the held-out stimuli enters a fit, so targets that are pure noise score
#' r close to 0; with pooled K-fold predictions and few stimuli their r is slightly
#' *negative* on average (removing a fold moves the training mean away from it), never
#' inflated.
#'
#' **Missing responses**: `na = "error"` (default) stops with a classed error;
#' `na = "drop_units"` removes targets with any non-finite response, with a warning
#' (they are listed in `attr(, "settings")$dropped_targets`). **Silent targets**
#' (constant over stimuli, e.g. a neuron that never fired; r is undefined for them) are
#' dropped with a message of class `tensorscope_message_dropped` naming how many, and
#' listed in `attr(, "settings")$constant_targets`; only when every target is constant
#' is it an error (`tensorscope_error_zero_variance`).
#'
#' @param reps The model: a [ts_reps()] object or anything it accepts (one matrix is
#'   one layer). Ridge on `torch_tensor` layers (CPU or CUDA) runs in place on their
#'   device when tensorscope's LibTorch backend shares torch for R's LibTorch (see
#'   [ts_reps()]) and `backend` is not `"eigen"`: each fold's rows are gathered and
#'   centred there, the decomposition runs there in float64 (a float32 layer is
#'   promoted on the device), and only its small products (eigenvalues, the products
#'   with the responses and the test rows) come to the host, where the alpha selection
#'   and scoring are the Eigen path's own code: same folds, alpha grid, selection and
#'   scores, equal to it to about 1e-10. Otherwise (PLS, `backend = "eigen"`, another
#'   LibTorch) the tensors are copied into R first.
#' @param responses Stimuli x targets matrix or data frame over the stimuli of `reps`
#'   (when both carry stimulus ids -- row names here -- rows are matched by id, with a
#'   message; other ids are an error), or a stimuli x
#'   targets x repetitions array: it is averaged over repetitions and, unless `ceiling`
#'   is given, the noise ceiling is computed from it with [noise_ceiling()].
#' @param method `"ridge"` or `"pls"`.
#' @param alphas Ridge penalties (>= 0; sorted internally).
#' @param folds Number of cross-validation folds (ignored when `splits` is given).
#' @param splits `NULL`, or a list of splits: each a vector of test stimuli (row numbers
#'   or stimulus ids; training = the others) or a list with `train` and `test`.
#' @param stratify `NULL` or one label per stimulus (e.g. object category) to stratify
#'   the folds / shuffle splits on.
#' @param alpha_per_target Choose alpha per target (`TRUE`) or one for all (`FALSE`).
#' @param alpha_select `"gcv"`, `"loo"` or `"kfold"` (see Details).
#' @param inner_folds Folds of the inner cross-validation for `alpha_select = "kfold"`.
#' @param inner_splits `NULL` (random inner folds), or the inner folds themselves, which
#'   implies `alpha_select = "kfold"` and makes the alpha selection reproducible fold for
#'   fold in another tool: either one fold label per stimulus (a vector as long as the
#'   stimuli; the inner folds of each training set are its stimuli grouped by label), or a
#'   list with one element per outer split, each a list of inner test sets (row numbers
#'   or stimulus ids, within that split's training set; the inner training set is the
#'   rest of it).
#' @param ncomp Number of PLS components (reduced, with a warning, to what the smallest
#'   training fold supports).
#' @param protocol `"default"` (the arguments as given) or `"brainscore"` (see Details;
#'   sets `method`, `ncomp` and the splits).
#' @param ceiling `NULL`, a [noise_ceiling()] result, or one reliability per target
#'   (numeric vector) used for the ceiling-normalised score.
#' @param na Targets with missing responses: `"error"` (classed error) or
#'   `"drop_units"` (the targets are removed, with a warning saying how many; `"drop"`
#'   is accepted as well).
#' @param return_predictions Keep the held-out predictions (attribute `predictions`:
#'   per layer, a list over splits of test stimuli x targets matrices).
#' @param seed Seed of the fold assignment (and of inner folds).
#' @param backend `"auto"`, `"eigen"` or `"torch"` (ridge only): `"torch"` does each
#'   training fold's Gram matrix, eigendecomposition and products in LibTorch, float64,
#'   on the GPU when LibTorch has CUDA (option `tensorscope.torch_device` picks the
#'   device); alpha selection and scoring are shared with the Eigen path, and results
#'   agree with it to about 1e-10. `"auto"` takes LibTorch only for large inputs on a
#'   CUDA GPU (see [cka()]).
#' @return A tibble of class `ts_predictivity`, one row per layer x target: `layer`
#'   (factor), `target`, `r`, `r2`, `alpha` (ridge: the median over folds of the chosen
#'   alpha; `NA` for PLS). A layer with zero variance across stimuli gets `NA` with a
#'   warning of class `tensorscope_warning_unusable_layer`. Attributes: `splits` (per split, layer and target: `split`,
#'   `r`, `r2`, `alpha`), `settings`, `ceiling`. `summary()` gives one row per layer (see
#'   [summary.ts_predictivity()]); `autoplot()` plots it.
#' @references Schrimpf et al. (2018). Brain-Score: which artificial neural network for
#'   object recognition is most brain-like? bioRxiv 407007. Golub, Heath & Wahba (1979).
#'   Generalized cross-validation as a method for choosing a good ridge parameter.
#'   Technometrics 21: 215-223. Dayal & MacGregor (1997). Improved PLS algorithms. J.
#'   Chemometrics 11: 73-85. Dupré la Tour, Eickenberg, Nunez-Elizalde & Gallant (2022).
#'   Feature-space selection with banded ridge regression. NeuroImage 264: 119728.
#' @seealso [noise_ceiling()], [predictivity_ablation()], [ridge_coef()]
#' @export
#' @examples
#' set.seed(1)
#' z <- matrix(rnorm(60 * 5), 60)
#' reps <- ts_reps(list(early = matrix(rnorm(60 * 20), 60),
#'                      late = cbind(z, matrix(rnorm(60 * 15), 60))))
#' responses <- z %*% matrix(rnorm(5 * 8), 5) + matrix(rnorm(60 * 8), 60)
#' res <- predictivity(reps, responses)
#' res
#' summary(res)
#' # Brain-Score's protocol (PLS, 10 shuffle splits), with a ceiling from repetitions
#' trials <- array(c(z %*% matrix(rnorm(5 * 8), 5)), c(60, 8, 4)) + rnorm(60 * 8 * 4)
#' summary(predictivity(reps, trials, protocol = "brainscore", ncomp = 5))
predictivity <- function(reps, responses, method = c("ridge", "pls"), alphas = 10^seq(-2, 6, length.out = 17),
                         folds = 5, splits = NULL, stratify = NULL, alpha_per_target = TRUE,
                         alpha_select = c("gcv", "loo", "kfold"), inner_folds = 5, inner_splits = NULL,
                         ncomp = 25, protocol = c("default", "brainscore"), ceiling = NULL,
                         na = c("error", "drop_units"), return_predictions = FALSE, seed = 1,
                         backend = c("auto", "eigen", "torch")) {
  protocol <- check_choice(protocol, c("default", "brainscore"))
  method <- if (protocol == "brainscore") "pls" else check_choice(method, c("ridge", "pls"))
  if (!is.null(inner_splits) && missing(alpha_select)) alpha_select <- "kfold"
  alpha_select <- check_choice(alpha_select, c("gcv", "loo", "kfold"))
  if (!is.null(inner_splits) && (alpha_select != "kfold" || method != "ridge")) {
    ts_abort("{.arg inner_splits} is for ridge with {.code alpha_select = \"kfold\"}, not {.code method = \"{method}\"}, {.code alpha_select = \"{alpha_select}\"}.",
             "argument")
  }
  na <- check_choice(na, c("error", "drop_units", "drop"))
  seed <- check_seed(seed)
  ncomp <- check_count(ncomp, min = 1)
  inner_folds <- check_count(inner_folds, min = 2)
  check_flag(alpha_per_target)
  check_flag(return_predictions)
  alphas <- check_alphas(alphas)
  reps <- as_reps(reps, tensors = TRUE)
  in_place <- in_place_route(reps$layers, backend, supported = method == "ridge")
  if (!in_place) reps <- as_reps(reps)
  n <- length(reps$stimuli)

  resp <- prepare_responses(responses, reps$stimuli, na)
  Y <- resp$Y
  ceiling <- resolve_ceiling(ceiling, resp, seed)

  stratify <- check_stratify(stratify, n)
  spl <- if (!is.null(splits)) {
    user_splits(splits, reps$stimuli)
  } else if (protocol == "brainscore") {
    shuffle_splits(n, n_splits = 10L, train_size = 0.9, stratify = stratify, seed = seed)
  } else {
    kfold_splits(n, check_count(folds, min = 2), stratify, seed)
  }
  spl$inner <- if (is.null(inner_splits)) list() else user_inner_splits(inner_splits, spl, reps$stimuli)
  pooled <- is_partition(spl, n)
  min_train <- min(lengths(spl$train))
  if (method == "pls" && ncomp > min_train - 1) {
    cli::cli_warn("{.arg ncomp} = {ncomp} is more than the smallest training fold supports; using {min_train - 1}.",
                  class = "tensorscope_warning")
    ncomp <- as.integer(min_train - 1)
  }

  th <- threads_now()
  # (in place: tensor layers on their own device; R matrix layers among them on Eigen)
  dev <- if (in_place) "eigen" else dense_backend(backend, max(lengths(reps$layers)) + length(Y), supported = method == "ridge", what = "PLS")
  decomposer <- if (dev != "eigen") torch_run("ts_torch_ridge_decomposer", dev, kind = "argument",
                                              what = "LibTorch cannot use device {.val {dev}}.")
  layers <- names(reps)
  q <- ncol(Y)
  rows <- vector("list", length(layers))
  per_split <- vector("list", length(layers))
  preds <- if (return_predictions) stats::setNames(vector("list", length(layers)), layers)
  ncomp_used <- integer(0)
  unusable <- character(0)
  tick <- progressr::progressor(steps = length(layers))
  for (i in seq_along(layers)) {
    tick(sprintf("layer %s", layers[i]))
    X <- reps$layers[[i]]
    if (if (is_rtensor(X)) rtensor_info(X, checks = TRUE)$constant else cpp_rows_constant(X)) {
      # a layer with zero variance predicts nothing (a fold-mean artefact otherwise)
      unusable <- c(unusable, layers[i])
      rows[[i]] <- tibble::tibble(layer = layers[i], target = colnames(Y), r = NA_real_, r2 = NA_real_, alpha = NA_real_)
      if (return_predictions) preds[i] <- list(NULL)
      next
    }
    res <- if (method == "ridge") {
      ridge_cv_call(X, Y, spl, alphas, alpha_select, alpha_per_target, inner_folds, seed, pooled,
                    return_predictions, th, decomposer)
    } else {
      cpp_pls_cv(X, Y, spl$train, spl$test, min(ncomp, ncol(X)), pooled, return_predictions, th)
    }
    if (method == "pls") ncomp_used[layers[i]] <- res$ncomp
    S <- nrow(res$r)
    alpha_t <- if (method == "ridge") apply(res$alpha, 2, stats::quantile, 0.5, type = 1, names = FALSE) else rep(NA_real_, q)
    rows[[i]] <- tibble::tibble(
      layer = layers[i], target = colnames(Y),
      r = if (pooled) res$pooled_r else colMeans(res$r, na.rm = TRUE),
      r2 = if (pooled) res$pooled_r2 else colMeans(res$r2, na.rm = TRUE),
      alpha = alpha_t
    )
    per_split[[i]] <- tibble::tibble(
      layer = layers[i], split = rep(seq_len(S), times = q), target = rep(colnames(Y), each = S),
      r = as.vector(res$r), r2 = as.vector(res$r2), alpha = as.vector(res$alpha)
    )
    if (return_predictions) {
      preds[[i]] <- lapply(seq_len(S), function(s) {
        m <- res$predictions[[s]]
        dimnames(m) <- list(reps$stimuli[spl$test[[s]]], colnames(Y))
        m
      })
    }
  }
  if (length(unusable) == length(layers)) {
    ts_abort("Every layer of {.arg reps} has zero variance across stimuli: nothing to predict from.", "zero_variance")
  }
  if (length(unusable)) {
    cli::cli_warn("Layer{?s} {.val {unusable}} of {.arg reps} {?has/have} zero variance across stimuli: predictivity NA there; the other layers were computed.",
                  class = c("tensorscope_warning_unusable_layer", "tensorscope_warning"))
  }
  out <- do.call(rbind, rows)
  out$layer <- factor(out$layer, levels = layers)
  ps <- do.call(rbind, per_split)
  ps$layer <- factor(ps$layer, levels = layers)
  settings <- list(method = method, protocol = protocol, alphas = alphas, alpha_select = alpha_select,
                   alpha_per_target = alpha_per_target, ncomp = if (method == "pls") ncomp_used,
                   n_splits = length(spl$test), pooled = pooled, n_stimuli = n, n_targets = q,
                   dropped_targets = resp$dropped, constant_targets = resp$constant, stratified = !is.null(stratify), seed = seed,
                   model = reps$provenance$model)
  structure(out, class = c("ts_predictivity", class(out)), splits = ps, settings = settings,
            ceiling = ceiling, predictions = preds)
}

# cpp_ridge_cv(); with the LibTorch decomposer, its failures (out of GPU memory, say)
# become classed errors. A torch_tensor layer X is read in place on its device: its
# folds are gathered there (ts_torch_ridge_folds()), and the handle on it is dropped on exit.
ridge_cv_call <- function(X, Y, spl, alphas, alpha_select, alpha_per_target, inner_folds, seed, pooled,
                          keep, threads, decomposer, call = rlang::caller_env()) {
  if (is_rtensor(X)) {
    decomposer <- torch_run("ts_torch_ridge_folds", X, kind = "type", call = call)
    on.exit(torch_call("ts_torch_ridge_folds_free", decomposer), add = TRUE)
    X <- NULL
  }
  run <- function() cpp_ridge_cv(X, Y, spl$train, spl$test, alphas, alpha_select, alpha_per_target, inner_folds,
                                 seed, pooled, keep, threads, decomposer, spl$inner)
  if (is.null(decomposer)) return(run())
  torch_errors(run(), kind = "torch", what = "Ridge regression on LibTorch failed.",
               hint = c(i = "{.code backend = \"eigen\"} runs it without LibTorch."), call = call)
}

#' Summary of predictivity results per layer
#'
#' @param object A `ts_predictivity` result.
#' @param ... Unused.
#' @return A tibble with one row per layer: `layer`; `median_r` (with pooled K-fold
#'   predictions: the median over targets of r; with shuffle splits: the median over
#'   targets on each split, averaged over splits, as Brain-Score does); `mean_r`;
#'   `r_q25`, `r_q75` (quartiles of the per-target r: the spread over targets);
#'   `median_r2`; `ceiling` (the summary noise ceiling, `NA` when none was given);
#'   `score` = (median_r / ceiling)², 0 when median_r <= 0 (`NA` without a ceiling), the
#'   Brain-Score normalisation of METRICS.md; `ceiled_r2` = median_r² / ceiling, 0 when
#'   median_r <= 0: the fraction of the explainable variance explained. The ceiling is a
#'   reliability (the squared correlation of the trial mean with the noise-free
#'   response), so a perfect model has r = sqrt(ceiling): its `ceiled_r2` is 1 while its
#'   `score` is 1 / ceiling, which exceeds 1;
#'   `frac_explained` (fraction of targets with out-of-sample R² > 0, i.e. predicted
#'   better than by the held-out mean); `median_alpha`; `n_targets`.
#' @export
summary.ts_predictivity <- function(object, ...) {
  st <- attr(object, "settings")
  ceil <- attr(object, "ceiling")
  ceil_value <- if (is.null(ceil)) NA_real_ else ceil$summary
  df <- tibble::as_tibble(structure(object, class = class(object)[-1], splits = NULL, settings = NULL,
                                    ceiling = NULL, predictions = NULL))
  med <- layer_median_r(object)
  by_layer <- split(df, df$layer)
  out <- tibble::tibble(
    layer = factor(names(by_layer), levels = levels(df$layer)),
    median_r = unname(med[names(by_layer)]),
    mean_r = vapply(by_layer, function(d) mean(d$r, na.rm = TRUE), numeric(1)),
    r_q25 = vapply(by_layer, function(d) stats::quantile(d$r, 0.25, na.rm = TRUE, names = FALSE), numeric(1)),
    r_q75 = vapply(by_layer, function(d) stats::quantile(d$r, 0.75, na.rm = TRUE, names = FALSE), numeric(1)),
    median_r2 = vapply(by_layer, function(d) stats::median(d$r2, na.rm = TRUE), numeric(1)),
    ceiling = ceil_value,
    score = NA_real_,
    ceiled_r2 = NA_real_,
    frac_explained = vapply(by_layer, function(d) mean(d$r2 > 0, na.rm = TRUE), numeric(1)),
    median_alpha = vapply(by_layer, function(d) stats::median(d$alpha), numeric(1)),
    n_targets = vapply(by_layer, nrow, integer(1))
  )
  out[] <- lapply(out, unname)
  out$score <- ifelse(out$median_r > 0, (out$median_r / out$ceiling)^2, 0)
  out$ceiled_r2 <- ifelse(out$median_r > 0, out$median_r^2 / out$ceiling, 0)
  out$score[is.na(out$ceiling)] <- NA_real_
  out$ceiled_r2[is.na(out$ceiling)] <- NA_real_
  out
}

# Median r over targets per layer: pooled K-fold -> over the per-target r; shuffle
# splits -> per split, then the mean over splits (Brain-Score's order).
layer_median_r <- function(x) {
  st <- attr(x, "settings")
  if (isTRUE(st$pooled)) {
    v <- tapply(x$r, x$layer, stats::median, na.rm = TRUE)
  } else {
    ps <- attr(x, "splits")
    m <- tapply(ps$r, list(ps$layer, ps$split), stats::median, na.rm = TRUE)
    v <- rowMeans(m, na.rm = TRUE)
  }
  stats::setNames(as.numeric(v), levels(x$layer))
}

#' @export
print.ts_predictivity <- function(x, ...) {
  st <- attr(x, "settings")
  how <- if (st$method == "ridge") sprintf("ridge (%d alphas, %s, %s)", length(st$alphas), st$alpha_select,
                                          if (st$alpha_per_target) "per target" else "shared")
         else sprintf("PLS (%s components)", paste(unique(st$ncomp), collapse = "/"))
  cv <- if (st$pooled) sprintf("%d-fold CV", st$n_splits) else sprintf("%d splits", st$n_splits)
  cli::cat_line("<ts_predictivity> ", nlevels(x$layer), " layer(s) x ", st$n_targets, " target(s), ",
                st$n_stimuli, " stimuli; ", how, ", ", cv, if (st$protocol == "brainscore") " (Brain-Score protocol)")
  med <- layer_median_r(x)
  cli::cat_line("best layer: ", names(med)[which.max(med)], sprintf(" (median r = %.3f)", max(med, na.rm = TRUE)))
  print(tibble::as_tibble(structure(x, class = class(x)[-1], splits = NULL, settings = NULL, ceiling = NULL,
                                    predictions = NULL)), ...)
  invisible(x)
}

#' Noise ceiling of responses from repeated presentations
#'
#' The reliability of each target's mean response, estimated from repetitions of the
#' stimuli: the repetitions are split at random into two halves (`n_splits` times), each
#' half is averaged, and the two halves are correlated over stimuli (Pearson) per target.
#' `"split_half"` reports that correlation (the reliability of half the data);
#' `"spearman_brown"` corrects it to the full number of repetitions with the
#' Spearman-Brown formula 2r / (1 + r), Brain-Score's ceiling for neural predictivity.
#' Per target, the value is the mean over splits; the summary ceiling is the median over
#' targets on each split, averaged over splits (Brain-Score's order). Targets that are
#' constant within a half give `NA` for that split and are left out of the medians.
#'
#' @param trials A stimuli x targets x repetitions numeric array (at least 2
#'   repetitions), e.g. `ts_neural(...)$trials$IT`. A matrix is accepted only with
#'   `layout = "stimuli_x_repetitions"` (one target); without `layout` it is an error of
#'   class `tensorscope_error_argument` (a stimuli x neurons matrix would otherwise be
#'   read as repetitions of one neuron).
#' @param method `"spearman_brown"` or `"split_half"`.
#' @param n_splits Number of random split-halves (progress one step per split through `progressr`, see [rsa()]).
#' @param na Targets with missing values: `"error"` or `"drop_units"` (with a
#'   warning saying how many; `"drop"` is accepted as well).
#' @param seed Seed of the random halves.
#' @param layout For a matrix `trials` only: `"stimuli_x_repetitions"` (one target) or
#'   `"stimuli_x_targets"` (an error: there are no repetitions).
#' @return A tibble of class `ts_noise_ceiling`, one row per target: `target`,
#'   `reliability` (NA, with a warning, for a target with zero variance across stimuli;
#'   an error of class `tensorscope_error_zero_variance` when every target has). `summary()` gives `method`, `ceiling`, `n_targets`, `n_stimuli`,
#'   `n_repetitions`, `n_splits`.
#' @references Schrimpf et al. (2018). Brain-Score. bioRxiv 407007. Spearman (1910),
#'   Brown (1910), Br J Psychol 3.
#' @export
#' @examples
#' set.seed(2)
#' signal <- matrix(rnorm(50 * 6), 50)
#' trials <- array(signal, c(50, 6, 8)) + array(rnorm(50 * 6 * 8, sd = 2), c(50, 6, 8))
#' nc <- noise_ceiling(trials)
#' nc
#' summary(nc)
noise_ceiling <- function(trials, method = c("spearman_brown", "split_half"), n_splits = 10,
                          na = c("error", "drop_units"), seed = 1, layout = NULL) {
  method <- check_choice(method, c("spearman_brown", "split_half"))
  na <- check_choice(na, c("error", "drop_units", "drop"))
  n_splits <- check_count(n_splits, min = 1)
  seed <- check_seed(seed)
  if (is.matrix(trials) && is.numeric(trials)) {
    # a matrix is ambiguous: stimuli x repetitions of one target, or stimuli x targets
    # (trial means, with no repetitions left). It must be said which.
    if (is.null(layout)) {
      ts_abort(c("{.arg trials} is a {nrow(trials)} x {ncol(trials)} matrix: stimuli x repetitions of one target, or stimuli x targets?",
                 i = "A noise ceiling needs repetitions: pass a stimuli x targets x repetitions array, or {.code layout = \"stimuli_x_repetitions\"} for one target's repetitions."),
               "argument")
    }
    layout <- check_choice(layout, c("stimuli_x_repetitions", "stimuli_x_targets"))
    if (layout == "stimuli_x_targets") {
      ts_abort("{.arg trials} holds one value per stimulus and target ({.code layout = \"stimuli_x_targets\"}): a noise ceiling needs the single repetitions (a stimuli x targets x repetitions array).",
               "too_few")
    }
    trials <- array(trials, c(nrow(trials), 1L, ncol(trials)), dimnames = list(rownames(trials), NULL, NULL))
  }
  if (!is.array(trials) || !is.numeric(trials) || length(dim(trials)) != 3) {
    ts_abort("{.arg trials} must be a numeric stimuli x targets x repetitions array, not {describe(trials)}.", "type")
  }
  d <- dim(trials)
  if (any(d == 0)) ts_abort("{.arg trials} is empty ({paste(d, collapse = ' x ')}).", "empty")
  if (d[3] < 2) ts_abort("{.arg trials} needs at least 2 repetitions; it has {d[3]}.", "too_few")
  if (d[1] < 3) ts_abort("{.arg trials} needs at least 3 stimuli; it has {d[1]}.", "too_few")
  targets <- dimnames(trials)[[2]] %||% as.character(seq_len(d[2]))
  dropped <- character(0)
  if (anyNA(trials) || any(is.infinite(trials))) {
    bad <- apply(!is.finite(trials), 2, any)
    if (na == "error") {
      ts_abort(c("{.arg trials} has non-finite values (NA, NaN or Inf) in {sum(bad)} target{?s}.",
                 i = "First: target {.val {targets[which(bad)[1]]}}. Use {.code na = \"drop\"} to drop such targets."),
               "non_finite")
    }
    dropped <- targets[bad]
    if (all(bad)) ts_abort("Every target of {.arg trials} has non-finite values.", "empty")
    cli::cli_warn("Dropped {sum(bad)} target{?s} with non-finite values.", class = "tensorscope_warning")
    trials <- trials[, !bad, , drop = FALSE]
    targets <- targets[!bad]
  }
  storage.mode(trials) <- "double"
  R <- d[3]
  h <- R %/% 2
  tick <- if (n_splits > 1) progressr::progressor(steps = n_splits) else function(...) NULL  # see rsa()
  rs <- with_seed(seed, replicate(n_splits, {
    tick()
    perm <- sample.int(R)
    a <- rowMeans(trials[, , perm[seq_len(h)], drop = FALSE], dims = 2)
    b <- rowMeans(trials[, , perm[(h + 1):R], drop = FALSE], dims = 2)
    col_cor(a, b)
  }))
  rs <- matrix(rs, nrow = length(targets))  # targets x splits
  rel <- if (method == "spearman_brown") spearman_brown(rs) else rs
  rel[!is.finite(rel)] <- NA_real_
  flat <- rowSums(!is.na(rel)) == 0
  if (all(flat)) {
    ts_abort("Every target of {.arg trials} has zero variance across stimuli in its split halves: the reliability is undefined.",
             "zero_variance")
  }
  if (any(flat)) {
    cli::cli_warn("Target{?s} {.val {targets[flat]}} of {.arg trials} {?has/have} zero variance across stimuli: reliability NA (left out of the ceiling).",
                  class = c("tensorscope_warning_degenerate", "tensorscope_warning"))
  }
  summ <- mean(apply(rel, 2, stats::median, na.rm = TRUE), na.rm = TRUE)
  rs_mean <- rowMeans(rel, na.rm = TRUE)
  rs_mean[is.nan(rs_mean)] <- NA_real_
  out <- tibble::tibble(target = targets, reliability = rs_mean)
  structure(out, class = c("ts_noise_ceiling", class(out)),
            summary = tibble::tibble(method = method, ceiling = summ, n_targets = length(targets),
                                     n_stimuli = d[1], n_repetitions = R, n_splits = n_splits),
            dropped = dropped)
}

#' @param object A `ts_noise_ceiling` result.
#' @param ... Unused.
#' @rdname noise_ceiling
#' @export
summary.ts_noise_ceiling <- function(object, ...) attr(object, "summary")

spearman_brown <- function(r) 2 * r / (1 + r)

# Pearson r between matching columns of two matrices (NA for a constant column).
col_cor <- function(a, b) {
  a <- sweep(a, 2, colMeans(a))
  b <- sweep(b, 2, colMeans(b))
  den <- sqrt(colSums(a^2) * colSums(b^2))
  r <- colSums(a * b) / den
  r[!(den > 0)] <- NA_real_
  r
}

#' Ridge coefficients for many penalties from one decomposition
#'
#' The ridge solutions (X'X + alpha I)^-1 X'Y for every alpha, computed from one
#' eigendecomposition of X'X (or of XX' when features outnumber samples), as
#' [predictivity()] does inside each training fold. With `intercept = TRUE`, X and Y are
#' centred first and the intercepts are returned.
#'
#' @param x Samples x features matrix.
#' @param y Samples x targets matrix (or a vector).
#' @param alphas Penalties (>= 0).
#' @param intercept Fit an unpenalised intercept (by centring).
#' @return A list: `coef`, a features x targets x alphas array; `intercept`, a targets x
#'   alphas matrix (zeros when `intercept = FALSE`); `alphas`.
#' @export
#' @examples
#' x <- matrix(rnorm(40 * 5), 40); y <- x %*% rnorm(5) + rnorm(40)
#' fit <- ridge_coef(x, y, alphas = c(0.1, 10))
#' all.equal(fit$coef[, , 1], drop(solve(crossprod(scale(x, scale = FALSE)) + 0.1 * diag(5),
#'                                       crossprod(scale(x, scale = FALSE), y))))
ridge_coef <- function(x, y, alphas, intercept = TRUE) {
  x <- as_data_matrix(x)
  y <- as_data_matrix(y)
  alphas <- check_alphas(alphas, sort = FALSE)
  check_flag(intercept)
  if (nrow(x) != nrow(y)) {
    ts_abort("{.arg x} has {nrow(x)} rows but {.arg y} has {nrow(y)}.", "mismatch")
  }
  res <- cpp_ridge_coef(x, y, alphas, intercept)
  coef <- array(res$coef, c(ncol(x), ncol(y), length(alphas)),
                dimnames = list(colnames(x), colnames(y), format(alphas)))
  list(coef = coef, intercept = matrix(res$intercept, ncol(y), dimnames = list(colnames(y), format(alphas))),
       alphas = alphas)
}

#' Remove the most, least or randomly chosen important features
#'
#' For the Fisher-weighted validation of the spec: given a per-feature importance
#' (Fisher information from the model, or any user-supplied score), removes the `k`
#' features with the highest (`"top"`) or lowest (`"bottom"`) importance, or `k`
#' features drawn at random (`"random"`), from each layer. Ties are broken by feature
#' order.
#'
#' @param reps A [ts_reps()] object or anything it accepts.
#' @param importance One numeric score per feature: a vector (one layer) or a list named
#'   by layer (every layer of `reps`).
#' @param k Number of features to remove per layer (at least one must remain).
#' @param which `"top"`, `"bottom"` or `"random"`.
#' @param seed Seed of the random choice.
#' @return A `ts_reps` with the features removed and `ablation` (which, k) added to its
#'   provenance; the removed columns (1-based) per layer are in attribute `removed`.
#' @export
#' @examples
#' reps <- ts_reps(list(a = matrix(rnorm(20 * 6), 20)))
#' small <- ablate_features(reps, list(a = 6:1), k = 2, which = "top")
#' attr(small, "removed")
ablate_features <- function(reps, importance, k, which = c("top", "bottom", "random"), seed = 1) {
  reps <- as_reps(reps)
  which <- check_choice(which, c("top", "bottom", "random"))
  k <- check_count(k, min = 0)
  seed <- check_seed(seed)
  imp <- check_importance(importance, reps)
  removed <- list()
  for (nm in names(reps)) {
    p <- ncol(reps$layers[[nm]])
    if (k >= p) {
      ts_abort("{.arg k} = {k} would remove every feature of layer {.val {nm}} ({p} feature{?s}).", "too_few")
    }
    drop <- switch(which,
      top = order(imp[[nm]], decreasing = TRUE)[seq_len(k)],
      bottom = order(imp[[nm]])[seq_len(k)],
      random = with_seed(seed + match(nm, names(reps)), sample.int(p, k))
    )
    drop <- sort(drop)
    removed[[nm]] <- drop
    if (k > 0) reps$layers[[nm]] <- reps$layers[[nm]][, -drop, drop = FALSE]
    reps$shapes[[nm]] <- ncol(reps$layers[[nm]])
  }
  reps$provenance$ablation <- paste0(which, "-", k)
  attr(reps, "removed") <- removed
  reps
}

#' Does removing the most important features hurt predictivity more than others?
#'
#' Re-runs [predictivity()] with the `k` most important (`"top"`), the `k` least
#' important (`"bottom"`) and `n_random` random sets of `k` features removed from every
#' layer, on the same splits, and reports the drop of the median r over targets (see
#' [summary.ts_predictivity()]) relative to the intact layer. The random removals give
#' the null: their drops' percentile interval, and for top and bottom a one-sided
#' p-value (1 + #{random drop >= drop}) / (1 + n_random).
#'
#' @inheritParams ablate_features
#' @param responses,... Passed to [predictivity()] (`responses`, `method`, `alphas`,
#'   `folds`, ...).
#' @param n_random Number of random removals.
#' @param conf_level Level of the interval over random removals.
#' @return A tibble of class `ts_predictivity_ablation`, one row per layer x ablation
#'   (`"none"`, `"top"`, `"bottom"`, `"random"`): `layer`, `ablation`, `k`, `median_r`
#'   (random: mean over draws), `drop` (intact minus ablated median r; random: mean),
#'   `ci_lower`, `ci_upper` (random: percentile interval of the drop over draws),
#'   `p_value` (top and bottom). The random drops are in attribute `draws`.
#' @export
#' @examples
#' set.seed(1)
#' x <- matrix(rnorm(80 * 10), 80)
#' y <- x[, 1:3] %*% matrix(rnorm(9), 3) + matrix(rnorm(80 * 3, sd = 0.5), 80)
#' imp <- c(3, 3, 3, rep(0, 7))
#' predictivity_ablation(x, y, importance = imp, k = 3, n_random = 10, alphas = c(0.1, 1, 10))
predictivity_ablation <- function(reps, responses, importance, k, n_random = 20, conf_level = 0.95, seed = 1, ...) {
  reps <- as_reps(reps)
  n_random <- check_count(n_random, min = 1)
  conf_level <- check_number(conf_level, lower = 0.5, upper = 0.9999)
  seed <- check_seed(seed)
  k <- check_count(k, min = 0)
  check_importance(importance, reps)
  tick <- progressr::progressor(steps = 3 + n_random)
  run <- function(r, what) {
    tick(what)
    layer_median_r(predictivity(r, responses, seed = seed, ...))
  }
  base <- run(reps, "intact")
  top <- run(ablate_features(reps, importance, k, "top"), "top")
  bottom <- run(ablate_features(reps, importance, k, "bottom"), "bottom")
  draws <- vapply(seq_len(n_random), function(i) {
    run(ablate_features(reps, importance, k, "random", seed = seed * 1000 + i), sprintf("random %d", i))
  }, numeric(length(base)))
  draws <- matrix(draws, nrow = length(base), dimnames = list(names(base), NULL))
  drops <- base - draws
  a <- (1 - conf_level) / 2
  layers <- names(base)
  p_of <- function(d) vapply(seq_along(layers), function(i) (1 + sum(drops[i, ] >= d[i] - 1e-12)) / (1 + n_random), numeric(1))
  out <- tibble::tibble(
    layer = factor(rep(layers, 4), levels = layers),
    ablation = rep(c("none", "top", "bottom", "random"), each = length(layers)),
    k = k,
    median_r = c(base, top, bottom, rowMeans(draws)),
    drop = c(rep(0, length(layers)), base - top, base - bottom, rowMeans(drops)),
    ci_lower = c(rep(NA_real_, 3 * length(layers)), apply(drops, 1, stats::quantile, a, names = FALSE)),
    ci_upper = c(rep(NA_real_, 3 * length(layers)), apply(drops, 1, stats::quantile, 1 - a, names = FALSE)),
    p_value = c(rep(NA_real_, length(layers)), p_of(base - top), p_of(base - bottom), rep(NA_real_, length(layers)))
  )
  structure(out, class = c("ts_predictivity_ablation", class(out)), draws = drops,
            settings = list(k = k, n_random = n_random, conf_level = conf_level, seed = seed))
}

# ---- argument helpers ------------------------------------------------------------------

check_flag <- function(x, arg = rlang::caller_arg(x), call = rlang::caller_env()) {
  force(arg)
  if (!is.logical(x) || length(x) != 1 || is.na(x)) {
    ts_abort("{.arg {arg}} must be TRUE or FALSE, not {describe(x)}.", "argument", call = call)
  }
  invisible(x)
}

check_alphas <- function(alphas, sort = TRUE, arg = rlang::caller_arg(alphas), call = rlang::caller_env()) {
  force(arg)
  if (!is.numeric(alphas) || length(alphas) == 0 || anyNA(alphas) || any(!is.finite(alphas)) || any(alphas < 0)) {
    ts_abort("{.arg {arg}} must be a non-empty vector of finite numbers >= 0, not {describe(alphas)}.", "argument",
             call = call)
  }
  alphas <- as.double(alphas)
  if (sort) unique(sort(alphas)) else alphas
}

check_stratify <- function(stratify, n, call = rlang::caller_env()) {
  if (is.null(stratify)) return(NULL)
  if (length(stratify) != n) {
    ts_abort("{.arg stratify} has {length(stratify)} label{?s} but there are {n} stimuli.", "mismatch", call = call)
  }
  if (anyNA(stratify)) ts_abort("{.arg stratify} has NA labels.", "non_finite", call = call)
  as.integer(factor(stratify))
}

check_importance <- function(importance, reps, call = rlang::caller_env()) {
  layers <- names(reps)
  if (is.numeric(importance) && !is.list(importance)) {
    if (length(layers) != 1) {
      ts_abort("{.arg importance} must be a list named by layer when {.arg reps} has {length(layers)} layers.",
               "argument", call = call)
    }
    importance <- stats::setNames(list(importance), layers)
  }
  if (!is.list(importance) || is.null(names(importance))) {
    ts_abort("{.arg importance} must be a numeric vector or a list named by layer, not {describe(importance)}.",
             "type", call = call)
  }
  miss <- setdiff(layers, names(importance))
  if (length(miss)) ts_abort("{.arg importance} has no scores for layer{?s} {.val {miss}}.", "mismatch", call = call)
  for (nm in layers) {
    v <- importance[[nm]]
    if (!is.numeric(v)) ts_abort("{.arg importance${nm}} must be numeric, not {describe(v)}.", "type", call = call)
    if (length(v) != ncol(reps$layers[[nm]])) {
      ts_abort("{.arg importance${nm}} has {length(v)} score{?s} but layer {.val {nm}} has {ncol(reps$layers[[nm]])} features.",
               "mismatch", call = call)
    }
    check_finite(v, paste0("importance$", nm), call = call)
  }
  importance[layers]
}

# Responses: averaged over repetitions when 3-d, checked against the stimuli.
prepare_responses <- function(responses, stimuli, na, call = rlang::caller_env()) {
  n <- length(stimuli)
  trials <- NULL
  if (is.array(responses) && length(dim(responses)) == 3) {
    if (!is.numeric(responses)) ts_abort("{.arg responses} must be numeric, not {describe(responses)}.", "type", call = call)
    trials <- responses
    rn <- dimnames(responses)[[1]]
    cn <- dimnames(responses)[[2]]
    Y <- rowMeans(responses, dims = 2)
    Y <- matrix(Y, dim(responses)[1], dim(responses)[2], dimnames = list(rn, cn))
  } else {
    if (!(is.matrix(responses) || is.data.frame(responses) || (is.numeric(responses) && is.null(dim(responses))))) {
      ts_abort("{.arg responses} must be a stimuli x targets matrix or data frame, or a stimuli x targets x repetitions array, not {describe(responses)}.",
               "type", call = call)
    }
    Y <- responses
    if (is.data.frame(Y)) {
      ok <- vapply(Y, is.numeric, logical(1))
      if (!all(ok)) ts_abort("{.arg responses} must hold numeric columns only.", "type", call = call)
      Y <- as.matrix(Y)
    }
    if (is.null(dim(Y))) Y <- matrix(Y, ncol = 1L, dimnames = list(names(responses), NULL))
    if (!is.numeric(Y)) ts_abort("{.arg responses} must be numeric, not {describe(responses)}.", "type", call = call)
  }
  storage.mode(Y) <- "double"
  if (ncol(Y) == 0) ts_abort("{.arg responses} has no targets (0 columns).", "empty", call = call)
  idx <- match_stimuli(stimuli, rownames(Y), "reps", "responses", call = call)
  if (!is.null(idx)) {
    Y <- Y[idx, , drop = FALSE]
    if (!is.null(trials)) trials <- trials[idx, , , drop = FALSE]
  }
  if (nrow(Y) != n) {
    ts_abort("{.arg responses} has {nrow(Y)} stimuli (rows) but {.arg reps} has {n}.", "mismatch", call = call)
  }
  if (is.null(colnames(Y))) colnames(Y) <- as.character(seq_len(ncol(Y)))
  if (anyDuplicated(colnames(Y))) colnames(Y) <- make.unique(colnames(Y))
  dropped <- character(0)
  bad <- colSums(!is.finite(Y)) > 0
  if (!is.null(trials)) bad <- bad | apply(!is.finite(trials), 2, any)
  if (any(bad)) {
    if (na == "error") {
      ts_abort(c("{.arg responses} has non-finite values (NA, NaN or Inf) in {sum(bad)} target{?s}.",
                 i = "First: target {.val {colnames(Y)[which(bad)[1]]}}. Use {.code na = \"drop\"} to drop such targets."),
               "non_finite", call = call)
    }
    if (all(bad)) ts_abort("Every target of {.arg responses} has non-finite values.", "empty", call = call)
    dropped <- colnames(Y)[bad]
    cli::cli_warn("Dropped {sum(bad)} target{?s} with non-finite responses: {.val {utils::head(dropped, 5)}}.",
                  class = "tensorscope_warning")
    Y <- Y[, !bad, drop = FALSE]
    if (!is.null(trials)) trials <- trials[, !bad, , drop = FALSE]
  }
  const <- apply(Y, 2, function(v) max(v) - min(v) <= 1e-12 * max(1, abs(v)))
  constant <- colnames(Y)[const]
  if (all(const)) {
    ts_abort(c("Every target of {.arg responses} is constant over stimuli, so r is undefined.",
               i = "Constant: {.val {utils::head(constant, 5)}}."), "zero_variance", call = call)
  }
  if (any(const)) {
    n_const <- sum(const)
    cli::cli_inform("Dropped {n_const} of {length(const)} target{?s} that {?is/are} constant over stimuli (silent; r is undefined): {.val {utils::head(constant, 5)}}.",
                    class = "tensorscope_message_dropped")
    Y <- Y[, !const, drop = FALSE]
    if (!is.null(trials)) trials <- trials[, !const, , drop = FALSE]
  }
  rownames(Y) <- NULL
  list(Y = Y, trials = trials, dropped = dropped, constant = constant)
}

resolve_ceiling <- function(ceiling, resp, seed, call = rlang::caller_env()) {
  targets <- colnames(resp$Y)
  if (is.null(ceiling)) {
    if (is.null(resp$trials)) return(NULL)
    dimnames(resp$trials)[[2]] <- targets
    ceiling <- noise_ceiling(resp$trials, seed = seed)
  }
  if (inherits(ceiling, "ts_noise_ceiling")) {
    rel <- ceiling$reliability[match(targets, ceiling$target)]
    if (anyNA(match(targets, ceiling$target))) {
      ts_abort("{.arg ceiling} has no reliability for target{?s} {.val {targets[is.na(match(targets, ceiling$target))]}}.",
               "mismatch", call = call)
    }
    return(list(per_target = rel, summary = summary(ceiling)$ceiling))
  }
  if (!is.numeric(ceiling)) ts_abort("{.arg ceiling} must be NULL, a noise_ceiling() result or a numeric vector, not {describe(ceiling)}.",
                                     "type", call = call)
  if (length(ceiling) == 1) return(list(per_target = rep(ceiling, length(targets)), summary = ceiling))
  if (length(ceiling) != length(targets)) {
    ts_abort("{.arg ceiling} has {length(ceiling)} value{?s} but there are {length(targets)} targets.", "mismatch",
             call = call)
  }
  list(per_target = ceiling, summary = stats::median(ceiling, na.rm = TRUE))
}

# ---- splits ----------------------------------------------------------------------------

# The one fold generator (predictivity() and separability() use it, so the same data,
# folds and seed give the same folds): the fold (1..k) of each of n stimuli. Stimuli
# are shuffled (within strata when `stratify`, a vector of n categories, is given),
# then dealt round-robin, so each stratum is spread evenly over the folds.
kfold_ids <- function(n, k, stratify = NULL, seed) {
  order_ <- with_seed(seed, {
    if (is.null(stratify)) sample.int(n) else unlist(lapply(split(seq_len(n), stratify), function(v) v[sample.int(length(v))]),
                                                     use.names = FALSE)
  })
  fold <- integer(n)
  fold[order_] <- (seq_len(n) - 1L) %% k + 1L
  fold
}

# K folds as train/test index lists.
kfold_splits <- function(n, k, stratify, seed, call = rlang::caller_env()) {
  if (n < k) ts_abort("There are {n} stimuli, fewer than {.arg folds} = {k}.", "too_few", call = call)
  if (n - ceiling(n / k) < 3) ts_abort("{n} stimuli are too few for {.arg folds} = {k} (each training set needs 3).", "too_few", call = call)
  fold <- kfold_ids(n, k, stratify, seed)
  test <- lapply(seq_len(k), function(f) which(fold == f))
  list(train = lapply(test, function(t) setdiff(seq_len(n), t)), test = test)
}

# Shuffle splits with a fixed training fraction; stratified splits give each label its
# share of the test set (largest remainder), then draw within labels.
shuffle_splits <- function(n, n_splits, train_size, stratify, seed, call = rlang::caller_env()) {
  n_train <- floor(train_size * n)
  n_test <- n - n_train
  if (n_train < 3 || n_test < 2) ts_abort("There are {n} stimuli, too few for shuffle splits with {.arg train_size} = {train_size}.",
                                          "too_few", call = call)
  test <- with_seed(seed, lapply(seq_len(n_splits), function(s) {
    if (is.null(stratify)) return(sort(sample.int(n, n_test)))
    groups <- split(seq_len(n), stratify)
    share <- lengths(groups) / n * n_test
    take <- floor(share)
    rest <- n_test - sum(take)
    if (rest > 0) {
      extra <- order(share - take, decreasing = TRUE)[seq_len(rest)]
      take[extra] <- take[extra] + 1L
    }
    sort(unlist(mapply(function(g, t) g[sample.int(length(g), t)], groups, take, SIMPLIFY = FALSE), use.names = FALSE))
  }))
  list(train = lapply(test, function(t) setdiff(seq_len(n), t)), test = test)
}

user_splits <- function(splits, stimuli, call = rlang::caller_env()) {
  n <- length(stimuli)
  if (!is.list(splits) || length(splits) == 0) {
    ts_abort("{.arg splits} must be a non-empty list of splits, not {describe(splits)}.", "argument", call = call)
  }
  as_idx <- function(v, what, s) {
    if (is.character(v)) {
      m <- match(v, stimuli)
      if (anyNA(m)) ts_abort("{.arg splits}[[{s}]] names unknown stimul{?us/i} {.val {v[is.na(m)]}} in its {what} set.",
                             "mismatch", call = call)
      v <- m
    }
    if (!is.numeric(v) || anyNA(v) || any(v != round(v)) || any(v < 1 | v > n) || anyDuplicated(v)) {
      ts_abort("{.arg splits}[[{s}]]${what} must hold distinct row numbers in 1..{n} or stimulus ids.", "argument", call = call)
    }
    as.integer(v)
  }
  train <- test <- vector("list", length(splits))
  for (s in seq_along(splits)) {
    sp <- splits[[s]]
    if (is.list(sp)) {
      if (is.null(sp$test)) ts_abort("{.arg splits}[[{s}]] must have a {.field test} element.", "argument", call = call)
      test[[s]] <- as_idx(sp$test, "test", s)
      train[[s]] <- if (is.null(sp$train)) setdiff(seq_len(n), test[[s]]) else as_idx(sp$train, "train", s)
    } else {
      test[[s]] <- as_idx(sp, "test", s)
      train[[s]] <- setdiff(seq_len(n), test[[s]])
    }
    if (length(intersect(train[[s]], test[[s]]))) {
      ts_abort("{.arg splits}[[{s}]] has stimuli in both its training and test sets.", "argument", call = call)
    }
    if (length(test[[s]]) < 2 || length(train[[s]]) < 3) {
      ts_abort("{.arg splits}[[{s}]] needs at least 3 training and 2 test stimuli; it has {length(train[[s]])} and {length(test[[s]])}.",
               "too_few", call = call)
    }
  }
  list(train = train, test = test)
}

# Inner folds per outer split as 0-based positions within its training rows (the order
# in which the core gathers them).
user_inner_splits <- function(inner, spl, stimuli, call = rlang::caller_env()) {
  n <- length(stimuli)
  S <- length(spl$train)
  to_rows <- function(v, what) {
    if (is.character(v)) {
      m <- match(v, stimuli)
      if (anyNA(m)) ts_abort("{what} names unknown stimul{?us/i} {.val {v[is.na(m)]}}.", "mismatch", call = call)
      v <- m
    }
    if (!is.numeric(v) || anyNA(v) || any(v != round(v)) || any(v < 1 | v > n) || anyDuplicated(v)) {
      ts_abort("{what} must hold distinct row numbers in 1..{n} or stimulus ids.", "argument", call = call)
    }
    as.integer(v)
  }
  if (is.atomic(inner) && length(inner) == n && !anyNA(inner)) {
    inner <- lapply(spl$train, function(tr) unname(split(tr, inner[tr])))
  } else if (!is.list(inner) || length(inner) != S) {
    ts_abort("{.arg inner_splits} must be one fold label per stimulus ({n}) or a list of inner folds for each of the {S} outer splits, not {describe(inner)}.",
             "argument", call = call)
  }
  lapply(seq_len(S), function(s) {
    folds <- inner[[s]]
    if (!is.list(folds) || length(folds) < 2) {
      ts_abort("{.arg inner_splits}[[{s}]] must be a list of at least 2 inner test sets.", "argument", call = call)
    }
    tr <- spl$train[[s]]
    lapply(seq_along(folds), function(k) {
      what <- sprintf("`inner_splits[[%d]][[%d]]`", s, k)
      rows <- to_rows(folds[[k]], what)
      pos <- match(rows, tr)
      if (anyNA(pos)) {
        ts_abort("{what} holds stimuli outside outer split {s}'s training set (e.g. row {rows[is.na(pos)][1]}).",
                 "argument", call = call)
      }
      if (length(tr) - length(pos) < 3) {
        ts_abort("{what} leaves {length(tr) - length(pos)} inner training stimuli; at least 3 are needed.", "too_few",
                 call = call)
      }
      pos - 1L
    })
  })
}

is_partition <- function(spl, n) {
  all_test <- unlist(spl$test)
  length(all_test) == n && !anyDuplicated(all_test) &&
    all(mapply(function(tr, te) length(tr) + length(te) == n, spl$train, spl$test))
}
