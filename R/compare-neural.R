# compare_to_neural(): every layer of analysed models against neural data (RSA, CKA,
# predictivity), the ranking of the models, and the analyzer's rsa_similarity metric.

# The dissimilarity of the layer and neural RDMs of the analyzer and compare_to_neural():
# the correlation distance, the default of rdm() and rsa().
default_rdm_method <- "correlation"

# neural -> named list of areas; each: list(rdm = ts_rdm (one per subject), data = list of
# matrices or NULL), with every area's stimuli in the order of the models' (`stimuli`),
# matched by id (match_stimuli(): realigned with one message when both sides carry ids
# in another order, a classed error listing the missing ids when they differ, and paired
# by position only when the neural data has no ids).
as_neural <- function(neural, stimuli, inform = TRUE, call = rlang::caller_env()) {
  if (is.matrix(neural) || is.data.frame(neural) || inherits(neural, "ts_rdm")) neural <- list(neural = neural)
  if (!is.list(neural) || !length(neural)) {
    ts_abort("{.arg neural} must be a named list of areas (stimuli x neurons matrices, lists of them, or RDMs), not {describe(neural)}.",
             "type", call = call)
  }
  nms <- names(neural) %||% rep("", length(neural))
  nms[!nzchar(nms)] <- paste0("area", seq_along(neural))[!nzchar(nms)]
  out <- list()
  moved <- character()
  for (i in seq_along(neural)) {
    a <- neural[[i]]
    arg <- sprintf("neural$%s", nms[i])
    if (inherits(a, "ts_rdm")) {
      idx <- neural_stimuli(stimuli, a$conditions, arg, "conditions", call)
      if (!is.null(idx)) moved <- c(moved, arg)
      out[[nms[i]]] <- list(rdm = if (is.null(idx)) a else rdm_conditions(a, idx), data = NULL)
      next
    }
    subj <- if (is.list(a) && !is.data.frame(a)) a else list(a)
    data <- lapply(seq_along(subj), function(j) {
      m <- as_data_matrix(subj[[j]], arg = arg, call = call)
      idx <- neural_stimuli(stimuli, rownames(m), arg, "stimuli", call, n = nrow(m))
      if (is.null(idx)) return(m)
      moved <<- c(moved, arg)
      m[idx, , drop = FALSE]
    })
    names(data) <- names(subj) %||% paste0("subject", seq_along(data))
    out[[nms[i]]] <- list(rdm = NULL, data = data)
  }
  if (inform && length(moved)) inform_realigned(paste(unique(moved), collapse = ", "), "results", "stimuli", length(stimuli))
  out
}

# The index putting one neural data set's stimuli in the models' order (NULL when nothing
# moves); the error names the data set.
neural_stimuli <- function(stimuli, ids, arg, what, call, n = length(ids)) {
  idx <- match_stimuli(stimuli, ids, "results", arg, what = what, inform = FALSE, call = call)
  if (n != length(stimuli)) {
    ts_abort("{.arg {arg}} is over other stimuli than the models: {n} {what} vs {length(stimuli)}.", "mismatch", call = call)
  }
  idx
}

# compare_to_neural()'s further metrics: name -> the function of a layer and a neural
# matrix, and its defaults.
neural_pair_metrics <- list(
  shape_distance = list(defaults = list(alpha = 1, distance = "angular"),
                        fn = function(x, y, a) shape_distance(x, y, alpha = a$alpha, distance = a$distance)),
  cca_similarity = list(defaults = list(method = "svcca", keep = 0.99),
                        fn = function(x, y, a) as.numeric(cca_similarity(x, y, method = a$method, keep = a$keep))),
  soft_matching_distance = list(defaults = list(centre = TRUE),
                                fn = function(x, y, a) as.numeric(soft_matching_distance(x, y, centre = a$centre)))
)

# `metrics`: names, or a named list of argument lists -> named list of full argument lists.
neural_metric_args <- function(metrics, call) {
  if (is.null(metrics) || !length(metrics)) return(list())
  if (is.character(metrics)) metrics <- stats::setNames(rep(list(list()), length(metrics)), metrics)
  if (!is.list(metrics) || is.null(names(metrics)) || any(!nzchar(names(metrics)))) {
    ts_abort("{.arg metrics} must be metric names or a named list of their arguments, not {describe(metrics)}.", "argument", call = call)
  }
  bad <- setdiff(names(metrics), names(neural_pair_metrics))
  if (length(bad)) {
    ts_abort("{.arg metrics} must be among {.val {names(neural_pair_metrics)}}; not {.val {bad}}.", "argument", call = call)
  }
  Map(function(nm, a) {
    d <- neural_pair_metrics[[nm]]$defaults
    if (!is.list(a) || length(setdiff(names(a), names(d)))) {
      ts_abort("{.arg metrics${nm}} takes the arguments {.val {names(d)}}; got {.val {setdiff(names(a), names(d))}}.",
               "argument", call = call)
    }
    utils::modifyList(d, a)
  }, names(metrics), metrics)
}

#' Align every layer of analysed models to neural data and rank the models
#'
#' For every model x checkpoint of `results` and every neural data set ("area",
#' "species", ...), computes the RSA ([rsa()], with bootstrap confidence intervals,
#' permutation p-values and, for several subjects, the noise ceiling) and the linear CKA
#' ([cka()], mean over subjects) of every layer, picks the best layer per data set, and
#' ranks the models Brain-Score style: a model's score is the mean over data sets of
#' its best layer's similarity divided by the data set's upper noise ceiling (or the
#' raw similarity when there is no ceiling, i.e. one subject).
#' Neural predictivity is added as the column `predictivity`: the median over neurons
#' of the cross-validated Pearson r of ridge regression from the layer to each
#' neuron ([predictivity()], 5 folds, alpha per neuron by GCV), averaged over subjects.
#' It is computed from the layers' stored Gram factors, which give exactly the
#' predictions of the full activations (ridge depends on the features only through
#' the centred Gram matrix). `NA` for data sets given only as RDMs.
#'
#' Further layer-to-neural metrics (`metrics`) add one column each, the mean over
#' subjects (`NA` for data sets given only as RDMs): `shape_distance` ([shape_distance()],
#' default Procrustes angular distance), `cca_similarity` ([cca_similarity()], default
#' SVCCA keeping 99% of the variance) and `soft_matching_distance`
#' ([soft_matching_distance()]). Shape distances and CCA are invariant to rotations of a
#' layer's units, so they are exact on the stored reduced layers; soft matching compares
#' single units and needs the activations (`analyze_models(keep_activations = TRUE)`).
#'
#' @param results A [ts_results] from [analyze_models()].
#' @param neural A named list of data sets. Each is a stimuli x neurons matrix, a list of
#'   them (subjects), or a `ts_rdm` of one or more subjects' RDMs. Stimuli are matched
#'   by id (row names / RDM conditions) to those the models saw: data in another order
#'   is realigned (with one message of class `tensorscope_message_realigned`); other ids
#'   are an error of class `tensorscope_error_mismatch` listing the first missing ones.
#'   Data without ids pairs with the models' stimuli by position.
#' @param metrics Further metrics (see Details): names among `"shape_distance"`,
#'   `"cca_similarity"`, `"soft_matching_distance"`, or a named list of their arguments,
#'   e.g. `list(shape_distance = list(alpha = 0))`.
#' @param method,n_boot,n_perm,seed Passed to [rsa()].
#' @param predictivity Also compute ridge predictivity of every neuron (see Details).
#' @param rdm_method Dissimilarity of the neural RDMs computed from matrices: that of
#'   the layer RDMs in `results` (the `rdm_method` of the `rsa_similarity` metric,
#'   default `"correlation"`, the correlation distance 1 - r, as in [rdm()] and
#'   [rsa()]); another value is an error of class `tensorscope_error_argument`.
#' @return A tibble of class `ts_neural_comparison`, one row per model x step x area x
#'   layer: `model`, `step`, `area`, `layer` (a factor, layers in model order), `rsa`, `ci_lower`, `ci_upper`, `p_value`,
#'   `ceiling_lower`, `ceiling_upper`, `cka` (`NA` for RDM-only data), `predictivity`
#'   (median cross-validated r, `NA` for RDM-only data or `predictivity = FALSE`), `best` (the
#'   layer with the highest RSA for this model, step and area). Attributes: `best`
#'   (the best rows) and `ranking` (one row per model x step: `model`, `step`, `score`,
#'   `rank`) and `rdms` (the neural RDMs, a `ts_rdm` per data set). With `metrics`, one
#'   more column per metric, named after it.
#' @export
#' @examples
#' sim <- simulate_model_and_brain(n_stimuli = 48, n_subjects = 2, source_layer = 3)
#' res <- analyze_models(list(sim = sim$reps), metrics = "effective_rank")
#' cmp <- compare_to_neural(res, list(IT = sim$neural), n_boot = 50, n_perm = 100)
#' attr(cmp, "best")
#' cmp <- compare_to_neural(res, list(IT = sim$neural[[1]]), n_boot = 50, n_perm = 100, predictivity = FALSE,
#'                          metrics = c("shape_distance", "cca_similarity"))
#' cmp[, c("layer", "rsa", "cka", "shape_distance", "cca_similarity")]
compare_to_neural <- function(results, neural, method = "spearman", rdm_method = NULL, n_boot = 200, n_perm = 1000,
                              seed = 1, predictivity = TRUE, metrics = NULL) {
  do_pred <- isTRUE(predictivity)
  call <- rlang::current_env()
  extra <- neural_metric_args(metrics, call)
  if (!inherits(results, "ts_results")) ts_abort("{.arg results} must come from {.fn analyze_models}, not {describe(results)}.", "type")
  if (is.null(results$reduced)) ts_abort("{.arg results} has no layer data (read from a JSON report?); run {.fn analyze_models} again.", "empty")
  stim <- results$stimuli
  areas <- as_neural(neural, stim, call = call)
  # reports from before the correlation default recorded only the metric's argument
  used <- results$provenance$rdm_method %||% results$provenance$metrics$rsa_similarity$rdm_method %||% "euclidean"
  rdm_method <- rdm_method %||% used
  if (!identical(rdm_method, used)) {
    ts_abort("{.arg rdm_method} must be {.val {used}}, the dissimilarity of the layer RDMs in {.arg results}.", "argument", call = call)
  }
  if (is.null(results$rdms)) {
    ts_abort("{.arg results} has no layer RDMs: run {.fn analyze_models} again.", "empty", call = call)
  }
  neural_rdms <- lapply(areas, function(a) {
    a$rdm %||% as_rdm(lapply(a$data, rdm, method = rdm_method), names = names(a$data))
  })
  # One task per model x checkpoint, under the user's future plan.
  if ("soft_matching_distance" %in% names(extra) && is.null(results$activations)) {
    ts_abort(c("{.val soft_matching_distance} compares single units, which the reduced layers in {.arg results} do not keep.",
               i = "Run {.code analyze_models(..., keep_activations = TRUE)}."), "argument", call = call)
  }
  payload <- lapply(seq_along(results$reduced)[!vapply(results$rdms, is.null, logical(1))], function(k) {
    list(unit = results$units[[k]], reduced = results$reduced[[k]], rdm = results$rdms[[k]],
         activations = if ("soft_matching_distance" %in% names(extra)) results$activations[[k]])
  })
  nth <- task_threads()
  rows <- future.apply::future_lapply(payload, function(pl) with_task_threads(nth, {
    u <- pl$unit
    red <- pl$reduced
    model_rdm <- pl$rdm
    do.call(rbind, lapply(names(areas), function(an) {
      a <- areas[[an]]
      r <- summary(rsa(model_rdm, neural_rdms[[an]], method = method, n_boot = n_boot, n_perm = n_perm, seed = seed))
      ck <- if (!is.null(a$data)) {
        vapply(names(red$layers), function(l) mean(vapply(a$data, function(m) cka(red$layers[[l]], m), 0)), 0)
      } else stats::setNames(rep(NA_real_, length(red$layers)), names(red$layers))
      pr <- stats::setNames(rep(NA_real_, length(red$layers)), names(red$layers))
      if (do_pred && !is.null(a$data)) {
        layer_reps <- ts_reps(red$layers, stimuli = stim)
        per_subject <- vapply(a$data, function(m) {
          sm <- summary(tensorscope::predictivity(layer_reps, unname(m), method = "ridge", folds = 5, seed = seed))
          stats::setNames(sm$median_r, as.character(sm$layer))[names(pr)]
        }, numeric(length(pr)))
        pr[] <- rowMeans(matrix(per_subject, nrow = length(pr)))
      }
      tb <- tibble::tibble(
        model = u$model, step = u$step, area = an, layer = as.character(r$layer), rsa = r$similarity,
        ci_lower = r$ci_lower, ci_upper = r$ci_upper, p_value = r$p_value,
        ceiling_lower = r$ceiling_lower, ceiling_upper = r$ceiling_upper,
        cka = unname(ck[as.character(r$layer)]), predictivity = unname(pr[as.character(r$layer)]))
      for (nm in names(extra)) {
        src <- if (nm == "soft_matching_distance") pl$activations else red$layers
        tb[[nm]] <- if (is.null(a$data)) NA_real_ else vapply(as.character(r$layer), function(l) {
          mean(vapply(a$data, function(m) neural_pair_metrics[[nm]]$fn(unname(src[[l]]), unname(m), extra[[nm]]), 0))
        }, 0, USE.NAMES = FALSE)
      }
      tb
    }))
  }), future.seed = seed, future.packages = "tensorscope")
  out <- do.call(rbind, rows)
  out$layer <- factor(out$layer, levels = unique(unlist(lapply(results$rdms, function(r) r$descriptors$name))))
  key <- paste(out$model, out$step, out$area, sep = "\r")
  best_rsa <- stats::ave(out$rsa, key, FUN = max)
  out$best <- out$rsa == best_rsa
  bi <- which(out$best)
  bi <- bi[!duplicated(key[bi])]
  best <- out[bi, ]
  norm <- ifelse(is.finite(best$ceiling_upper) & best$ceiling_upper > 0, best$rsa / best$ceiling_upper, best$rsa)
  mk <- paste(best$model, best$step, sep = "\r")
  score <- tapply(norm, mk, mean)
  first <- best[!duplicated(mk), c("model", "step")]
  ranking <- tibble::tibble(model = first$model, step = first$step,
                            score = as.double(score[paste(first$model, first$step, sep = "\r")]))
  ranking <- ranking[order(-ranking$score), ]
  ranking$rank <- seq_len(nrow(ranking))
  structure(out, class = c("ts_neural_comparison", class(out)), best = best, ranking = ranking, rdms = neural_rdms)
}


rlang::on_load(register_metric(new_metric(
  "rsa_similarity", family = "alignment", scope = "neural", needs = "neural", fn = "compare_to_neural",
  defaults = list(method = "spearman", rdm_method = default_rdm_method, n_boot = 200, n_perm = 1000),
  description = "RSA (and CKA) of every layer to each neural data set, best layer, ranking",
  about = "Representational similarity analysis: the correlation (Spearman's by default) between each layer's representational dissimilarity matrix (RDM) and each neural data set's, with bootstrap confidence intervals and, for several subjects, the noise ceiling. The layer with the highest RSA is the best model of that area; values near the lower noise ceiling are as good as the data allow.",
  aliases = "rsa",
  compute = function(x, args, ctx) {
    compare_to_neural(x, ctx$neural, method = args$method, rdm_method = args$rdm_method, n_boot = args$n_boot,
                      n_perm = args$n_perm, seed = ctx$seed)
  },
  tidy = function(out, ctx) {
    # the RSA rows carry their bootstrap CI and the noise ceiling (for the figure)
    na <- rep(NA_real_, nrow(out))
    rbind(tibble::tibble(model = out$model, step = out$step, layer = as.character(out$layer),
                         statistic = paste0(out$area, ":rsa"), value = out$rsa, area = out$area, ci_lower = out$ci_lower,
                         ci_upper = out$ci_upper, ceiling_lower = out$ceiling_lower, ceiling_upper = out$ceiling_upper),
          tibble::tibble(model = out$model, step = out$step, layer = as.character(out$layer),
                         statistic = paste0(out$area, ":cka"), value = out$cka, area = out$area, ci_lower = na,
                         ci_upper = na, ceiling_lower = na, ceiling_upper = na))
  },
  plot = plot_neural_alignment
)))
