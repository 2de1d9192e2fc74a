# The analyzer's figures (autoplot(<ts_results>, metric)): every registered metric has
# one, it builds without warnings on analyzer output, layers are in model order, CIs
# and the noise ceiling are drawn when the data carry them, diagnostics are not drawn.

# Layers named so that alphabetical order is not model order.
plot_layer_names <- c("v1_conv", "relu", "pool", "fc", "b_head", "a_out")

# Two models and two "checkpoints" of one of them, simulated neural data with trials
# from two subjects, stimulus categories: every metric that needs no model file.
plot_results <- local({
  cache <- NULL
  function() {
    if (!is.null(cache)) return(cache)
    sim <- simulate_model_and_brain(n_stimuli = 48, n_layers = 6, width = 24, n_subjects = 3, seed = 5)
    lay <- stats::setNames(sim$reps$layers, plot_layer_names)
    other <- simulate_model_and_brain(n_stimuli = 48, n_layers = 6, width = 24, n_subjects = 1, seed = 6)
    ckpt <- function(layers, step) ts_reps(layers, stimuli = sim$reps$stimuli, step = step)
    early <- lapply(lay, function(x) x + matrix(stats::rnorm(length(x), sd = 2), nrow(x)))
    models <- list(netA = list(ckpt(early, 10), ckpt(lay, 1000)),
                   netB = list(ckpt(stats::setNames(other$reps$layers, plot_layer_names), 1000)))
    cache <<- suppressWarnings(analyze_models(models, neural = list(V1 = sim$neural, IT = sim$neural[1:2]),
                                              labels = sim$categories,
                                              metrics = ts_metrics(rsa_similarity = list(n_boot = 50, n_perm = 50))))
    cache
  }
})

# Builds a figure and fails on any warning (ggplot2 warns on dropped rows, bad scales).
build_quietly <- function(p) {
  expect_s3_class(p, "ggplot")
  expect_warning(b <- ggplot2::ggplot_build(p), NA)
  b
}

layer_geoms <- function(p) vapply(p$layers, function(l) class(l$geom)[1], "")

test_that("every registered built-in metric has its own figure", {
  for (m in names(ts_metrics())) {
    expect_true(is.function(tensorscope:::get_metric_object(m)$plot), info = m)
  }
})

test_that("every metric's figure builds without warnings on analyzer output", {
  res <- plot_results()
  s <- summary(res)
  ok <- s$metric[s$n_ok > 0]
  expect_true(all(c("rsa_similarity", "cka_similarity", "cka_trajectory", "effective_rank", "fiber_bundle_test",
                    "feature_sparsity", "block_cka_gap", "shape_distance", "layer_activations") %in% ok))
  for (m in ok) {
    b <- build_quietly(autoplot(res, m))
    expect_gt(sum(vapply(b$data, nrow, 0L)), 0)
  }
  for (type in c("rdms", "mds")) build_quietly(autoplot(res, "rsa_similarity", type = type))
  expect_error(autoplot(res, "rsa_similarity", type = "bogus"), class = "tensorscope_error_argument")
})

test_that("layers are on the axis in model order, not alphabetically", {
  res <- plot_results()
  for (m in c("effective_rank", "participation_ratio", "ricci_curvature", "rsa_similarity", "vector_interference",
              "feature_sparsity", "fiber_bundle_test", "block_cka_gap")) {
    b <- ggplot2::ggplot_build(autoplot(res, m))
    expect_equal(b$layout$panel_params[[1]]$x$get_limits(), plot_layer_names, info = m)
  }
  b <- ggplot2::ggplot_build(autoplot(res, "cka_similarity"))
  expect_equal(b$layout$panel_params[[1]]$x$get_limits(), plot_layer_names)
  expect_equal(b$layout$panel_params[[1]]$y$get_limits(), rev(plot_layer_names))
})

test_that("the RSA figure draws the tables' CIs and noise ceiling, one panel per area", {
  res <- plot_results()
  d <- res$get("rsa_similarity")
  # the metric's rows carry the CI and ceiling of compare_to_neural()'s table
  n <- res$neural
  rsa_rows <- d[grepl(":rsa$", d$statistic), ]
  key <- paste(rsa_rows$model, rsa_rows$step, rsa_rows$area, rsa_rows$layer)
  m <- match(key, paste(n$model, n$step, n$area, n$layer))
  expect_false(anyNA(m))
  expect_equal(rsa_rows$ci_lower, n$ci_lower[m])
  expect_equal(rsa_rows$ceiling_upper, n$ceiling_upper[m])
  expect_true(all(is.finite(rsa_rows$ci_lower)))
  p <- autoplot(res, "rsa_similarity")
  expect_true(all(c("GeomErrorbar", "GeomRect", "GeomPoint") %in% layer_geoms(p)))
  b <- ggplot2::ggplot_build(p)
  eb <- b$data[[which(layer_geoms(p) == "GeomErrorbar")]]
  expect_equal(sort(eb$ymin), sort(d$ci_lower[is.finite(d$ci_lower)]))
  rect <- b$data[[which(layer_geoms(p) == "GeomRect")]]
  ce <- unique(n[, c("area", "ceiling_lower", "ceiling_upper")])
  expect_equal(sort(rect$ymax), sort(ce$ceiling_upper))
  expect_equal(nrow(rect), 2)  # one band per area, only in the RSA row
  expect_setequal(as.character(unique(b$layout$layout$area)), c("V1", "IT"))
  expect_equal(levels(p$data$area), c("V1", "IT"))  # areas in the order given
  # without CIs (e.g. a JSON report, which keeps only the contract columns): no bars
  plain <- d[, c("model", "step", "layer", "metric", "statistic", "value")]
  q <- tensorscope:::plot_neural_alignment(plain, "rsa_similarity", results = res)
  expect_false(any(c("GeomErrorbar", "GeomRect") %in% layer_geoms(q)))
  build_quietly(q)
})

test_that("diagnostics are not drawn", {
  res <- plot_results()
  drawn <- function(m) unique(autoplot(res, m)$data$statistic)
  expect_false(any(c("n_edges", "sd_ricci") %in% drawn("ricci_curvature")))
  expect_false("welch_bound" %in% drawn("vector_interference"))
  expect_false("n_points" %in% drawn("embedding_singularities"))
  expect_false(any(grepl(":reject$", drawn("fiber_bundle_test"))))
  expect_false(any(c("gap", "within", "between") %in% drawn("block_cka_gap")))
  expect_false(any(grepl("l1|kurtosis", drawn("feature_sparsity"))))
})

test_that("several checkpoints: one heat map per step on one colour scale; steps as a gradient", {
  res <- plot_results()
  p <- autoplot(res, "cka_similarity")
  b <- ggplot2::ggplot_build(p)
  expect_equal(nrow(b$layout$layout), 3)  # netA at 2 steps, netB at 1
  expect_equal(length(b$plot$scales$get_scales("fill")$get_limits()), 2)
  p <- autoplot(res, "effective_rank")
  expect_equal(p$labels$colour, "step")
  expect_s3_class(p$facet, "FacetWrap")  # several models with several steps: a panel per model
  tr <- ggplot2::ggplot_build(autoplot(res, "cka_trajectory"))
  expect_setequal(unique(tr$data[[1]]$x), log10(c(10, 1000) + 1))  # steps 10 and 1000: two decades, log axis
})

test_that("the step axis is logarithmic when the steps span decades", {
  ax <- tensorscope:::step_axis(c(0, 50, 200, 1000, 1125))
  expect_equal(ax$name, "training step (log scale)")
  expect_equal(ax$x(999), 3)
  lin <- tensorscope:::step_axis(c(100, 200, 300))
  expect_equal(lin$x(250), 250)
  # colliding labels are thinned, the last step kept
  expect_equal(tensorscope:::step_axis(c(0, 1000, 1010))$scale$labels, c("0", "1010"))
  expect_equal(tensorscope:::step_axis(c(0, 100, 300, 500, 1500))$scale$labels, c("0", "100", "300", "500", "1500"))
})

test_that("RDMs are sorted by category, and a bad category vector is a classed error", {
  set.seed(2)
  cats <- factor(rep(c("face", "body", "car"), 4), levels = c("face", "body", "car"))
  x <- matrix(rnorm(12 * 5), 12, dimnames = list(sprintf("s%02d", 1:12), NULL)) + as.integer(cats) * 3
  r <- rdm(x)
  p <- autoplot(r, categories = cats)
  b <- build_quietly(p)
  ord <- order(as.integer(cats))
  m <- as.matrix(r)[ord, ord]
  # the tile at row i, column j is the dissimilarity of the i-th and j-th sorted conditions
  got <- p$data$value[p$data$row == 2 & p$data$col == 7]
  expect_equal(got, m[2, 7])
  expect_equal(b$layout$panel_params[[1]]$x$get_labels(), c("face", "body", "car"))
  named <- stats::setNames(as.character(cats), rownames(x))[sample(12)]
  expect_equal(autoplot(r, categories = named)$data$value, p$data$value)  # named: matched by id
  expect_error(autoplot(r, categories = cats[1:5]), class = "tensorscope_error_argument")
  expect_error(autoplot(r, categories = c(NA, as.character(cats[-1]))), class = "tensorscope_error_argument")
})

test_that("the second-order MDS places identical RDMs together and shows the neural RDMs", {
  res <- plot_results()
  p <- autoplot(res, "rsa_similarity", type = "mds")
  b <- build_quietly(p)
  pts <- p$data
  expect_equal(nrow(pts), 2 * length(plot_layer_names))  # the last step of each model
  neu <- b$data[[which(layer_geoms(p) == "GeomPoint")[2]]]
  expect_equal(nrow(neu), 2)  # V1 and IT
  # MDS distances follow 1 - Spearman r between the RDMs
  r <- tensorscope:::results_rdm_list(res)
  up <- sapply(c(r$layers, r$neural), function(m) m[upper.tri(m)])
  D <- as.matrix(stats::dist(stats::cmdscale(stats::as.dist(1 - stats::cor(up, method = "spearman")), k = 2)))
  lay <- p$data
  expect_equal(unname(as.matrix(stats::dist(cbind(lay$x, lay$y)))), unname(D[seq_len(nrow(lay)), seq_len(nrow(lay))]),
               tolerance = 1e-10)
})

test_that("figures of model-file metrics build on the shipped CNN and transformer", {
  skip_if_not(ts_torch_available())
  s <- readRDS(system.file("extdata", "fmnist_stimuli.rds", package = "tensorscope"))
  ck <- system.file("extdata", c("fmnist_cnn_step0000.pt", "fmnist_cnn_step1125.pt"), package = "tensorscope")
  x <- s$images[1:40, , , , drop = FALSE]
  cnn <- analyze_models(ck, x, labels = s$labels[1:40],
                        metrics = c("grouped_fisher", "fisher_pruning_masks", "superposition_regime", "cka_trajectory"))
  for (m in c("grouped_fisher", "fisher_pruning_masks", "superposition_regime", "cka_trajectory")) {
    build_quietly(autoplot(cnn, m))
  }
  b <- ggplot2::ggplot_build(autoplot(cnn, "grouped_fisher"))
  expect_equal(b$layout$panel_params[[1]]$x$get_limits(), c("conv1", "conv2", "fc1", "fc2"))
  ti <- system.file("extdata", c("induction_step0000.pt", "induction_step1500.pt"), package = "tensorscope")
  tok <- readRDS(system.file("extdata", "induction_tokens.rds", package = "tensorscope"))
  tr <- suppressWarnings(analyze_models(ti, tok, metrics = c("induction_head_strength", "composition_scores",
                                                            "attention_entropy", "attention_flow_patterns")))
  for (m in c("induction_head_strength", "composition_scores", "attention_entropy", "attention_flow_patterns")) {
    build_quietly(autoplot(tr, m))
  }
  # the analyzer's composition and entropy tables are per head, with typed head columns
  cs <- tr$get("composition_scores")
  direct <- composition_scores(ts_model(ti[2]), n_baseline = 100, seed = 1)
  last <- cs[cs$step == 1500, ]
  expect_equal(nrow(last), nrow(direct))
  key <- function(t) order(as.character(t$type), t$src_layer, t$src_head, t$dst_layer, t$dst_head)
  expect_equal(last$value[key(last)], direct$score[key(direct)])
  en <- tr$get("attention_entropy")
  expect_setequal(unique(as.character(en$layer)), c("block0", "block1"))
  expect_equal(sort(unique(en$head)), 1:4)
  p <- autoplot(tr, "induction_head_strength")
  expect_equal(levels(p$data$layer), c("block1", "block0"))  # first block on top
})

test_that("figures of a report read back from JSON build or say why not", {
  skip_if_not_installed("jsonlite")
  res <- plot_results()
  f <- tempfile(fileext = ".json")
  save_report(res, f)
  back <- read_report(f)
  for (m in unique(back$values$metric)) {
    p <- tryCatch(autoplot(back, m), tensorscope_error = function(e) e)
    if (inherits(p, "tensorscope_error")) next
    build_quietly(p)
  }
  expect_error(autoplot(back, "rsa_similarity", type = "rdms"), class = "tensorscope_error_empty")
  p <- autoplot(back, "rsa_similarity")  # no CI columns in JSON: points without bars
  expect_false("GeomErrorbar" %in% layer_geoms(p))
})

test_that("long layer names are shortened alike, keep their indices and stay unique", {
  tl <- c("embed", "blocks.0.attn.hook_q", "blocks.0.attn.hook_pattern", "blocks.0.hook_resid_post",
          "blocks.1.attn.hook_q", "blocks.1.hook_resid_post")
  s <- tensorscope:::short_labels(tl)
  expect_equal(s, c("embed", "0.hook_q", "0.hook_pattern", "0.hook_resid_post", "1.hook_q", "1.hook_resid_post"))
  expect_equal(tensorscope:::short_labels(c("conv1", "fc2")), c("conv1", "fc2"))  # short names untouched
  clash <- c("blocks.0.attn.hook_z_long_name", "blocks.0.mlp.hook_z_long_name")
  s <- tensorscope:::short_labels(clash)
  expect_false(anyDuplicated(s) > 0)
  expect_true(all(nchar(s) <= 22))
  expect_true(all(nchar(tensorscope:::short_labels(strrep("x", 40))) <= 22))
})

test_that("the RDM figure shows one model's layers, the best-ranked by default", {
  res <- plot_results()
  best <- attr(res$neural, "ranking")$model[1]
  p <- autoplot(res, "rsa_similarity", type = "rdms")
  expect_equal(nlevels(p$data$rdm), length(plot_layer_names) + 2)
  other <- setdiff(c("netA", "netB"), best)
  q <- autoplot(res, "rsa_similarity", type = "rdms", model = other)
  expect_equal(levels(q$data$rdm)[-(1:2)], plot_layer_names)
  expect_false(isTRUE(all.equal(p$data$value, q$data$value)))
  expect_error(autoplot(res, "rsa_similarity", type = "rdms", model = "nope"), class = "tensorscope_error_argument")
})
