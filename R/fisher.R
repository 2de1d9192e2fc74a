# Diagonal Fisher information by autograd (LibTorch), grouped; pruning masks, their
# overlap, and ablation of the masked groups.

#' Diagonal Fisher information of a model's parameters
#'
#' The diagonal of the Fisher information, F_i = (1/N) sum_n (d loss_n / d theta_i)^2,
#' from per-sample gradients computed by LibTorch's autograd (square first, then
#' reduce: never the square of a batch-mean gradient). `type = "empirical"` uses the
#' given targets; `type = "true"` draws each sample's target from the model's own
#' predictive distribution (categorical for cross-entropy, Bernoulli for `"bce"`,
#' N(output, 1) for `"mse"`), reproducibly for a given `seed`. Grouped Fisher is the
#' mean over a group of parameters (`fisher`; `fisher_sum` and `n` are also given):
#' \itemize{
#'   \item `"parameter"`: every scalar parameter (`group_index` = 1-based position in
#'     the tensor in PyTorch's row-major order);
#'   \item `"layer"`: every module's own parameters together;
#'   \item `"channel"`: convolution modules (a parameter with 3 or more dims), by output
#'     channel (first dim of every parameter of the module, bias included);
#'   \item `"neuron"`: other modules with a 2-D weight, by output unit (first dim);
#'   \item `"head"`: attention heads in TransformerLens layout: parameters named `W_Q`,
#'     `W_K`, `W_V` \[head, d_model, d_head\], `W_O` \[head, d_head, d_model\], `b_Q`,
#'     `b_K`, `b_V` \[head, d_head\], grouped by their first dim.
#' }
#' Parameters outside the chosen kind of group are left out.
#'
#' @param model A `ts_model`, a TorchScript file, or several checkpoint files / a
#'   directory (results stacked with a `step` column).
#' @param inputs As in [activations()].
#' @param targets Targets, one per stimulus (first dim): for `"cross_entropy"`,
#'   class indices counted from 0 as in PyTorch (or a factor: its level codes, first
#'   level = class 0); for sequence outputs \[n, positions, classes\], an n x positions
#'   matrix; for `"bce"` 0/1; for `"mse"` numbers shaped like the output. `NULL` for
#'   `type = "true"`; for `loss = "next_token"` the targets are the inputs shifted by one.
#' @param type `"empirical"` or `"true"`.
#' @param group `"parameter"`, `"layer"`, `"head"`, `"channel"` or `"neuron"`.
#' @param loss `"cross_entropy"` (mean over positions for sequence outputs),
#'   `"next_token"` (language models: logits at position t predict token t + 1 of the
#'   integer `inputs`), `"bce"` (binary cross-entropy on logits) or `"mse"` (half the
#'   summed squared error).
#' @param batch_size Samples per call into LibTorch (progress and interrupts happen
#'   between calls; gradients are always per sample).
#' @param seed Seed for the sampled targets of the true Fisher.
#' @return A tibble of class `ts_fisher` with columns `module`, `parameter` (`NA` when a
#'   group spans several parameters), `group_index` (1-based), `n` (parameters in the
#'   group), `fisher` (mean) and `fisher_sum`; with `step` first for checkpoints.
#' @references Kirkpatrick et al. (2017). Overcoming catastrophic forgetting in neural
#'   networks. PNAS. Kunstner, Hennig & Balles (2019). Limitations of the empirical
#'   Fisher approximation for natural gradient descent. NeurIPS.
#' @seealso [fisher_mask()], [mask_overlap()], [ablate()]
#' @export
#' @examples
#' if (ts_torch_available()) {
#'   f <- system.file("extdata", "fmnist_cnn_step1125.pt", package = "tensorscope")
#'   s <- readRDS(system.file("extdata", "fmnist_stimuli.rds", package = "tensorscope"))
#'   x <- s$images[1:40, , , , drop = FALSE]
#'   fisher(f, x, s$labels[1:40], group = "layer")
#'   fisher(f, x, type = "true", group = "channel", seed = 1)
#' }
fisher <- function(model, inputs, targets = NULL, type = c("empirical", "true"),
                   group = c("parameter", "layer", "head", "channel", "neuron"),
                   loss = c("cross_entropy", "next_token", "bce", "mse"), batch_size = 64, seed = NULL) {
  call <- rlang::current_env()
  type <- check_choice(type, c("empirical", "true"))
  group <- check_choice(group, c("parameter", "layer", "head", "channel", "neuron"))
  loss <- check_choice(loss, c("cross_entropy", "next_token", "bce", "mse"))
  batch_size <- check_count(batch_size, min = 1)
  seed <- check_seed(seed)
  inputs <- as_inputs(inputs, call = call)
  n <- dim(inputs[[1]])[1]
  targets <- fisher_targets(targets, inputs, type, loss, n, call = call)
  if (is_checkpoints(model)) {
    ck <- checkpoint_files(model, call = call)
    parts <- lapply(seq_along(ck$files), function(i) {
      tibble::add_column(fisher_one(ts_model(ck$files[i]), inputs, targets, loss, group, batch_size, seed, call),
                         step = ck$step[i], .before = 1)
    })
    out <- do.call(rbind, parts)
  } else {
    out <- fisher_one(as_model(model, call = call), inputs, targets, loss, group, batch_size, seed, call)
  }
  structure(out, class = c("ts_fisher", class(tibble::tibble())), type = type, group = group, loss = loss, n_samples = n)
}

fisher_targets <- function(targets, inputs, type, loss, n, call) {
  if (loss == "next_token") {
    tok <- inputs[[1]]
    if (!is.integer(tok) || length(dim(tok)) != 2 || ncol(tok) < 2) {
      ts_abort("{.code loss = \"next_token\"} needs {.arg inputs} to be an integer matrix of token ids (stimuli x positions, >= 2 positions), not {describe(tok)}.",
               "type", call = call)
    }
    if (!is.null(targets)) ts_abort("{.arg targets} must be NULL with {.code loss = \"next_token\"}: the inputs shifted by one are the targets.", "argument", call = call)
    return(if (type == "true") NULL else tok[, -1, drop = FALSE])
  }
  if (type == "true") {
    if (!is.null(targets)) ts_abort("{.arg targets} must be NULL for the true Fisher (targets are sampled from the model).", "argument", call = call)
    return(NULL)
  }
  if (is.null(targets)) {
    ts_abort("The empirical Fisher needs {.arg targets} (or use {.code type = \"true\"}).", "argument", call = call)
  }
  if (is.factor(targets)) targets <- as.integer(targets) - 1L
  if (!is.numeric(targets)) ts_abort("{.arg targets} must be numeric or a factor, not {describe(targets)}.", "type", call = call)
  if (is.null(dim(targets))) targets <- array(targets, length(targets))
  check_finite(targets, "targets", call = call)
  if (dim(targets)[1] != n) {
    ts_abort("{.arg targets} has {dim(targets)[1]} row{?s} but {.arg inputs} has {n} stimuli.", "mismatch", call = call)
  }
  if (loss == "cross_entropy" && any(targets < 0 | targets != round(targets))) {
    ts_abort("{.arg targets} must be class indices counted from 0 (or a factor).", "argument", call = call)
  }
  if (loss == "bce" && any(targets != 0 & targets != 1)) ts_abort("{.arg targets} must be 0 or 1 for {.code loss = \"bce\"}.", "argument", call = call)
  storage.mode(targets) <- "double"
  targets
}

fisher_one <- function(model, inputs, targets, loss, group, batch_size, seed, call) {
  ptr <- model_ptr(model)
  n <- dim(inputs[[1]])[1]
  starts <- seq(1, n, by = batch_size)
  pb <- if (length(starts) > 1) cli::cli_progress_bar("Fisher information", total = length(starts), .envir = environment())
  sums <- NULL
  for (b in seq_along(starts)) {
    idx <- starts[b]:min(n, starts[b] + batch_size - 1)
    s <- torch_run("ts_torch_fisher_sums", ptr, lapply(inputs, slice_rows, idx),
                   if (is.null(targets)) NULL else slice_rows(targets, idx), loss, seed + b - 1,
                   what = "Fisher information failed on these {.arg inputs} / {.arg targets}.", call = call)
    sums <- if (is.null(sums)) s else Map(`+`, sums, s)
    if (!is.null(pb)) cli::cli_progress_update(id = pb)
  }
  group_fisher(lapply(sums, `/`, n), group)
}

# For every parameter array, the group of each element (column-major, as R stores it):
# a data frame of groups (module, parameter, group_index) and an integer vector of row
# numbers into it (NA = not in any group). One definition for fisher() and ablate().
parameter_groups <- function(shapes, group) {
  nms <- names(shapes)
  module <- ifelse(grepl(".", nms, fixed = TRUE), sub("\\.[^.]*$", "", nms), "")
  pname <- sub("^.*\\.", "", nms)
  rank <- vapply(shapes, length, integer(1))
  keys <- list()
  ids <- vector("list", length(nms))
  add <- function(df) { keys[[length(keys) + 1]] <<- df; sum(vapply(keys, nrow, integer(1))) - nrow(df) }
  for (i in seq_along(nms)) {
    d <- shapes[[i]]
    size <- prod(d)
    mod_rank <- max(rank[module == module[i]])
    first <- if (length(d)) rep_len(seq_len(d[1]), size) else rep(1L, size)
    if (group == "parameter") {
      rowmajor <- if (length(d) > 1) as.vector(aperm(array(seq_len(size), rev(d)))) else seq_len(size)
      off <- add(data.frame(module = module[i], parameter = pname[i], group_index = seq_len(size)))
      ids[[i]] <- off + rowmajor
    } else if (group == "layer") {
      key <- which(vapply(keys, function(k) k$module[1] == module[i], logical(1)))
      off <- if (length(key)) sum(vapply(keys[seq_len(key - 1)], nrow, integer(1))) else
        add(data.frame(module = module[i], parameter = NA_character_, group_index = 1L))
      ids[[i]] <- rep(off + 1L, size)
    } else {
      ok <- switch(group,
                   head = pname[i] %in% c("W_Q", "W_K", "W_V", "W_O", "b_Q", "b_K", "b_V"),
                   channel = mod_rank >= 3,
                   neuron = mod_rank == 2)
      if (!ok || !length(d)) { ids[[i]] <- rep(NA_integer_, size); next }
      kname <- if (group == "head") pname[i] else NA_character_
      key <- which(vapply(keys, function(k) k$module[1] == module[i] && identical(k$parameter[1], kname) && nrow(k) == d[1], logical(1)))
      off <- if (length(key)) sum(vapply(keys[seq_len(key[1] - 1)], nrow, integer(1))) else
        add(data.frame(module = module[i], parameter = kname, group_index = seq_len(d[1])))
      ids[[i]] <- off + first
    }
  }
  groups <- if (length(keys)) do.call(rbind, keys) else data.frame(module = character(), parameter = character(), group_index = integer())
  list(groups = groups, ids = stats::setNames(ids, nms))
}

group_fisher <- function(values, group) {
  shapes <- lapply(values, function(v) if (is.null(dim(v))) length(v) else dim(v))
  pg <- parameter_groups(shapes, group)
  id <- unlist(pg$ids, use.names = FALSE)
  v <- unlist(lapply(values, as.vector), use.names = FALSE)
  keep <- !is.na(id)
  k <- nrow(pg$groups)
  s <- tabulate_sum(id[keep], v[keep], k)
  cnt <- tabulate(id[keep], nbins = k)
  tibble::tibble(module = pg$groups$module, parameter = pg$groups$parameter,
                 group_index = as.integer(pg$groups$group_index), n = cnt, fisher = s / cnt, fisher_sum = s)
}

tabulate_sum <- function(id, v, k) {
  out <- numeric(k)
  r <- rowsum(v, id, reorder = TRUE)
  out[as.integer(rownames(r))] <- r[, 1]
  out
}

#' @export
print.ts_fisher <- function(x, ...) {
  cli::cat_line("<ts_fisher> ", attr(x, "type"), " Fisher, ", attr(x, "group"), " groups, ",
                attr(x, "n_samples"), " samples, loss ", attr(x, "loss"))
  print(tibble::as_tibble(unclass_tbl(x)), ...)
  invisible(x)
}

unclass_tbl <- function(x) {
  attr(x, "type") <- attr(x, "group") <- attr(x, "loss") <- attr(x, "n_samples") <- NULL
  class(x) <- class(tibble::tibble())
  x
}

#' Fisher pruning masks and their overlap
#'
#' `fisher_mask()` keeps the `keep` fraction of groups with the largest Fisher
#' information (per checkpoint when there is a `step` column); `mask_overlap()` is the
#' Jaccard index |A n B| / |A u B| of the kept groups of two masks over the same groups.
#'
#' @param f A [fisher()] result.
#' @param keep Fraction of groups kept, in (0, 1\].
#' @param m1,m2 Masks from `fisher_mask()`.
#' @return `fisher_mask()`: the tibble with a logical column `keep` (class
#'   `ts_fisher_mask`). `mask_overlap()`: a number in \[0, 1\].
#' @seealso [ablate()]
#' @export
#' @examples
#' if (ts_torch_available()) {
#'   s <- readRDS(system.file("extdata", "fmnist_stimuli.rds", package = "tensorscope"))
#'   x <- s$images[1:40, , , , drop = FALSE]
#'   f1 <- fisher(system.file("extdata", "fmnist_cnn_step0200.pt", package = "tensorscope"),
#'                x, s$labels[1:40], group = "channel")
#'   f2 <- fisher(system.file("extdata", "fmnist_cnn_step1125.pt", package = "tensorscope"),
#'                x, s$labels[1:40], group = "channel")
#'   mask_overlap(fisher_mask(f1, 0.25), fisher_mask(f2, 0.25))
#' }
fisher_mask <- function(f, keep = 0.2) {
  if (!inherits(f, "ts_fisher")) ts_abort("{.arg f} must be a {.fn fisher} result, not {describe(f)}.", "type")
  keep <- check_number(keep, lower = .Machine$double.eps, upper = 1)
  if (!nrow(f)) ts_abort("{.arg f} has no groups.", "empty")
  by <- if ("step" %in% names(f)) f$step else rep(1, nrow(f))
  kept <- logical(nrow(f))
  for (s in unique(by)) {
    i <- which(by == s)
    k <- ceiling(keep * length(i))
    kept[i[order(-f$fisher[i], seq_along(i))[seq_len(k)]]] <- TRUE
  }
  f$keep <- kept
  attr(f, "keep_fraction") <- keep
  class(f) <- c("ts_fisher_mask", class(f))
  f
}

#' @rdname fisher_mask
#' @export
mask_overlap <- function(m1, m2) {
  for (m in list(m1, m2)) if (!inherits(m, "ts_fisher_mask")) ts_abort("{.arg m1} and {.arg m2} must be masks from {.fn fisher_mask}, not {describe(m)}.", "type")
  k1 <- group_keys(m1)
  k2 <- group_keys(m2)
  if (!setequal(k1, k2)) {
    ts_abort("{.arg m1} and {.arg m2} are not over the same groups (same model layout and {.arg group}).", "mismatch")
  }
  a <- k1[m1$keep]
  b <- k2[m2$keep]
  u <- length(union(a, b))
  if (u == 0) return(NA_real_)
  length(intersect(a, b)) / u
}

group_keys <- function(m) paste(m$module, m$parameter, m$group_index, sep = "\r")

#' Run a model with Fisher-masked groups zeroed
#'
#' Returns a copy of the model whose parameters in the masked groups are set to zero
#' (Fisher-weighted ablation): with `ablate = "pruned"` (default) the groups the mask
#' does not keep, with `"kept"` the groups it keeps. Re-measure accuracy with
#' [predict.ts_model()] or neural predictivity with [activations()]. The original
#' model is not changed.
#'
#' @param model The `ts_model` the mask was computed for.
#' @param mask A [fisher_mask()] result for one model (no `step` column).
#' @param ablate `"pruned"` or `"kept"`.
#' @return A `ts_model` (held in memory; its `path` is the original file).
#' @export
#' @examples
#' if (ts_torch_available()) {
#'   m <- ts_model(system.file("extdata", "fmnist_cnn_step1125.pt", package = "tensorscope"))
#'   s <- readRDS(system.file("extdata", "fmnist_stimuli.rds", package = "tensorscope"))
#'   f <- fisher(m, s$images[1:50, , , , drop = FALSE], s$labels[1:50], group = "channel")
#'   pruned <- ablate(m, fisher_mask(f, keep = 0.5))
#'   mean(max.col(predict(pruned, s$images)) == as.integer(s$labels))
#' }
ablate <- function(model, mask, ablate = c("pruned", "kept")) {
  model <- as_model(model)
  ablate <- check_choice(ablate, c("pruned", "kept"))
  if (!inherits(mask, "ts_fisher_mask")) ts_abort("{.arg mask} must come from {.fn fisher_mask}, not {describe(mask)}.", "type")
  if ("step" %in% names(mask)) ts_abort("{.arg mask} covers several checkpoints; filter one step first.", "argument")
  params <- model_parameters(model)
  shapes <- lapply(params, function(v) if (is.null(dim(v))) length(v) else dim(v))
  pg <- parameter_groups(shapes, attr(mask, "group"))
  gk <- paste(pg$groups$module, pg$groups$parameter, pg$groups$group_index, sep = "\r")
  mk <- group_keys(mask)
  if (!setequal(gk, mk)) ts_abort("{.arg mask} was not computed for this model's parameters.", "mismatch")
  zero <- gk %in% mk[if (ablate == "pruned") !mask$keep else mask$keep]
  mult <- lapply(names(params), function(p) {
    id <- pg$ids[[p]]
    m <- ifelse(!is.na(id) & zero[id], 0, 1)
    array(m, shapes[[p]])
  })
  names(mult) <- names(params)
  ptr <- torch_run("ts_torch_ablate", model_ptr(model), mult)
  out <- new_model(ptr, model$path, model$device)
  out$ablated <- list(group = attr(mask, "group"), which = ablate, n_groups = sum(zero))
  out
}

# ---- metrics of analyze_models() (R/metrics.R) ----------------------------------------

unit_fisher <- function(args, ctx) {
  fisher(ctx$model, ctx$inputs, ctx$labels, type = args$type, group = args$group, batch_size = ctx$opts$batch_size,
         seed = ctx$seed)
}

rlang::on_load({
  register_metric(new_metric(
    "grouped_fisher", family = "fisher", scope = "model", fn = "fisher", aliases = "fisher",
    needs = c("model_file", "torch", "labels"), defaults = list(group = "layer", type = "empirical"),
    description = "diagonal Fisher information per module",
    about = "Diagonal Fisher information of the loss with respect to each module's parameters, averaged over the module. Modules with high Fisher information are those the model's predictions depend on most; low values mark parameters that could be pruned.",
    compute = function(x, args, ctx) unit_fisher(args, ctx),
    tidy = function(out, ctx) tibble::tibble(layer = out$module, statistic = "fisher", value = out$fisher),
    plot = plot_grouped_fisher))
  register_metric(new_metric(
    "fisher_pruning_masks", family = "fisher", scope = "model", fn = "fisher_mask", aliases = "fisher_mask",
    needs = c("model_file", "torch", "labels"), defaults = list(group = "layer", type = "empirical", keep = 0.2),
    description = "groups kept by a Fisher pruning mask",
    about = "The modules kept (1) or pruned (0) when keeping the fraction with the highest Fisher information. It shows which parts of the network a Fisher-based pruning would preserve.",
    compute = function(x, args, ctx) fisher_mask(unit_fisher(args, ctx), keep = args$keep),
    tidy = function(out, ctx) tibble::tibble(layer = out$module, statistic = "kept", value = as.double(out$keep)),
    plot = plot_fisher_mask))
})
