# The metric registry: metric objects, ts_metrics() overrides, user metrics, the result
# contract (factors, typed columns, failure classes), saved size, RDM method, neural RDMs.

sim_small <- function() simulate_model_and_brain(n_stimuli = 40, n_layers = 4, width = 16, n_subjects = 2, seed = 3)

test_that("ts_metrics() is generated from the registry; names follow the functions, spec names are aliases", {
  reg <- metric_registry()
  expect_setequal(names(ts_metrics()), reg$metric)
  expect_true(all(c("ricci_curvature", "composition_scores", "fiber_bundle_test", "participation_ratio") %in% reg$metric))
  expect_false(any(c("manifold_curvature", "qkov_pairing", "robinson_fiber_test") %in% reg$metric))
  expect_identical(names(as_metrics <- ts_metrics(alignment = FALSE, superposition = FALSE, fisher = FALSE, circuits = FALSE,
                                                  dynamics = FALSE)),
                   reg$metric[reg$family == "geometry"])
  sim <- sim_small()
  a <- analyze_models(sim$reps, metrics = c("manifold_curvature", "robinson_fiber_test"))
  expect_setequal(unique(a$records$metric), c("ricci_curvature", "fiber_bundle_test"))
  expect_equal(get_metric(a, "manifold_curvature"), get_metric(a, "ricci_curvature"))
  # the docs' table comes from the registry: one row per metric
  rd <- tensorscope:::metric_table_rd()
  expect_equal(sum(grepl("\\\\cr$", rd)) - 1L, nrow(reg))
})

test_that("every metric says what it measures and how to read it; diagnostics are declared", {
  reg <- metric_registry()
  expect_true(all(nchar(reg$about) > 80), label = paste("about of", paste(reg$metric[nchar(reg$about) <= 80], collapse = ", ")))
  expect_true(all(vapply(reg$diagnostics, is.character, logical(1))))
  expect_true("welch_bound" %in% reg$diagnostics[[which(reg$metric == "vector_interference")]])
  # the docs section "Reading the metrics" and print() show it
  rd <- tensorscope:::metric_about_rd()
  expect_equal(sum(grepl("^\\\\item", rd)), nrow(reg))
  out <- capture.output(print(tensorscope:::get_metric_object("effective_rank")))
  expect_true(any(grepl("Effective rank", out, fixed = TRUE)))
  expect_true(any(grepl("exp of the entropy", capture.output(print(ts_metrics())), fixed = TRUE)))
  # new_metric() checks the new fields
  f <- function(x, args, ctx) 1
  expect_error(new_metric("m1", "custom", compute = f, about = c("a", "b")), class = "tensorscope_error_argument")
  expect_error(new_metric("m1", "custom", compute = f, diagnostics = 1), class = "tensorscope_error_argument")
  m <- new_metric("m1", "custom", compute = f, about = "What m1 means.", diagnostics = "n")
  expect_identical(m$about, "What m1 means.")
  expect_identical(m$diagnostics, "n")
})

test_that("overrides are checked against the defaults and apply only where the argument exists", {
  m <- ts_metrics(effective_rank = list(on = "eigenvalues"), geometry = FALSE)
  expect_equal(m$effective_rank, list(on = "eigenvalues"))
  expect_false("ricci_curvature" %in% names(m))
  expect_error(ts_metrics(effective_rank = list(bogus = 1)), class = "tensorscope_error_unknown_argument")
  expect_error(ts_metrics(geometry = list(bogus = 1)), class = "tensorscope_error_unknown_argument")
  expect_error(ts_metrics(not_a_metric = TRUE), class = "tensorscope_error_unknown_metric")
  expect_error(ts_metrics(effective_rank = "yes"), class = "tensorscope_error_argument")
  # the family override reaches cka_similarity but is not recorded on block_cka_gap
  m <- ts_metrics(alignment = list(kernel = "rbf"))
  expect_equal(m$cka_similarity$kernel, "rbf")
  expect_equal(m$block_cka_gap, list(n_blocks = 2))
  expect_false("effective_rank" %in% names(ts_metrics(effective_rank = FALSE)))
  # a per-metric override changes the result as the function does
  sim <- sim_small()
  res <- analyze_models(sim$reps, metrics = ts_metrics(effective_rank = list(on = "eigenvalues"), alignment = FALSE, geometry = FALSE,
                                                       superposition = FALSE, fisher = FALSE, circuits = FALSE, dynamics = FALSE))
  expect_equal(res$get("effective_rank")$value, effective_rank(sim$reps, on = "eigenvalues")$value, tolerance = 1e-12)
  expect_equal(res$provenance$metrics$effective_rank$on, "eigenvalues")
})

test_that("participation_ratio per layer equals the function and the eigenvalue formula", {
  sim <- sim_small()
  res <- analyze_models(sim$reps, metrics = "participation_ratio")
  pr <- res$get("participation_ratio")
  expect_equal(pr$value, participation_ratio(sim$reps)$value, tolerance = 1e-12)
  lam <- eigen(stats::cov(sim$reps[["layer2"]]), symmetric = TRUE, only.values = TRUE)$values
  expect_equal(pr$value[pr$layer == "layer2"], sum(lam)^2 / sum(lam^2), tolerance = 1e-8)
  expect_equal(levels(pr$layer), names(sim$reps$layers))
  expect_equal(unique(pr$statistic), "participation_ratio")
  # an isotropic cloud in 5 dimensions has a participation ratio close to 5
  set.seed(1)
  iso <- ts_reps(list(a = matrix(rnorm(2000 * 5), 2000)))
  expect_equal(analyze_models(iso, metrics = "participation_ratio")$get("participation_ratio")$value, 5, tolerance = 0.05)
  expect_s3_class(autoplot(res, "participation_ratio"), "ggplot")
})

test_that("a user-registered metric runs in analyze_models() like the built-in ones", {
  calls <- 0
  m <- new_metric("mean_abs", family = "custom", scope = "layer", defaults = list(power = 1),
                  compute = function(x, args, ctx) mean(abs(x))^args$power,
                  tidy = function(out, ctx) tibble::tibble(statistic = "mean_abs", value = out, power = 1))
  register_metric(m)
  on.exit(unregister_metric("mean_abs"), add = TRUE)
  expect_error(register_metric(m), class = "tensorscope_error_argument")
  expect_true("mean_abs" %in% names(ts_metrics()))
  expect_false("mean_abs" %in% names(ts_metrics(custom = FALSE)))
  sim <- sim_small()
  res <- analyze_models(sim$reps, metrics = ts_metrics(mean_abs = list(power = 2), alignment = FALSE, geometry = FALSE,
                                                       superposition = FALSE, fisher = FALSE, circuits = FALSE, dynamics = FALSE))
  g <- res$get("mean_abs")
  expect_equal(g$value, vapply(sim$reps$layers, function(x) mean(abs(x))^2, 0), ignore_attr = TRUE)
  expect_named(g, c("model", "step", "layer", "metric", "statistic", "value", "power"))
  expect_error(ts_metrics(mean_abs = list(pow = 2)), class = "tensorscope_error_unknown_argument")
  # a model-scope metric gets the reduced layers, with the same Gram matrix as the activations
  g2 <- new_metric("gram_trace", family = "custom", scope = "model",
                   compute = function(x, args, ctx) {
                     tibble::tibble(layer = names(x$layers), statistic = "trace", value = vapply(x$layers, function(l) sum(l^2), 0))
                   })
  register_metric(g2)
  on.exit(unregister_metric("gram_trace"), add = TRUE)
  res2 <- analyze_models(sim$reps, metrics = "gram_trace")
  direct <- vapply(sim$reps$layers, function(l) sum(scale(l, scale = FALSE)^2), 0)
  expect_equal(res2$get("gram_trace")$value, unname(direct), tolerance = 1e-8)
  # a model-scope metric that is not rotation invariant asks for the full activations
  g4 <- new_metric("layer_l1", family = "custom", scope = "model", needs = "activations",
                   compute = function(x, args, ctx) {
                     a <- ctx$activations
                     tibble::tibble(layer = names(a$layers), statistic = "l1", value = vapply(a$layers, function(l) sum(abs(l)), 0))
                   })
  register_metric(g4)
  on.exit(unregister_metric("layer_l1"), add = TRUE)
  r4 <- analyze_models(sim$reps, metrics = c("layer_l1", "effective_rank"))
  expect_equal(r4$get("layer_l1")$value, unname(vapply(sim$reps$layers, function(l) sum(abs(l)), 0)))
  expect_null(r4$activations)
  # needs are checked from the declaration
  g3 <- new_metric("needs_labels", family = "custom", scope = "model", needs = "labels",
                   compute = function(x, args, ctx) stop("not reached"))
  register_metric(g3)
  on.exit(unregister_metric("needs_labels"), add = TRUE)
  r3 <- analyze_models(sim$reps, metrics = "needs_labels")
  expect_equal(r3$records$status, "skipped")
  expect_match(r3$records$reason, "labels")
  expect_error(new_metric("x", "custom", "layer", compute = 1), class = "tensorscope_error_argument")
  expect_error(new_metric("x", "custom", "layer", compute = identity, needs = "gpu"), class = "tensorscope_error_argument")
  expect_error(new_metric("x", "custom", "nowhere", compute = identity), class = "tensorscope_error")
})

test_that("failed metrics keep their condition class; layers are factors in model order", {
  sim <- sim_small()
  res <- analyze_models(sim$reps, metrics = ts_metrics(ricci_curvature = list(k = 500), alignment = FALSE, geometry = FALSE,
                                                       superposition = FALSE, fisher = FALSE, circuits = FALSE, dynamics = FALSE))
  rec <- res$records
  expect_equal(rec$status, rep("error", 4))
  direct <- tryCatch(ricci_curvature(sim$reps[["layer1"]], k = 500), error = function(e) class(e)[1])
  expect_match(direct, "^tensorscope_error_")
  expect_equal(rec$condition, rep(direct, 4))
  rev_reps <- ts_reps(rev(sim$reps$layers), stimuli = sim$reps$stimuli)
  r2 <- analyze_models(rev_reps, metrics = c("effective_rank", "cka_similarity"))
  expect_equal(levels(r2$values$layer), rev(names(sim$reps$layers)))
  expect_equal(levels(r2$records$layer), rev(names(sim$reps$layers)))
  expect_s3_class(r2$get("cka_similarity")$layer_y, "factor")
  expect_equal(as.character(r2$get("effective_rank")$layer), rev(names(sim$reps$layers)))
})

test_that("a saved ts_results is no larger than its contents", {
  sim <- simulate_model_and_brain(n_stimuli = 100, n_layers = 4, width = 64, seed = 2)
  res <- analyze_models(sim$reps, metrics = c("effective_rank", "cka_similarity"))
  f <- tempfile(fileext = ".rds")
  save_report(res, f)
  contents <- tempfile(fileext = ".rds")
  saveRDS(unclass(res), contents)
  expect_lte(file.size(f), file.size(contents) + 100)
  expect_equal(as.numeric(utils::object.size(res)), as.numeric(utils::object.size(unclass(res))), tolerance = 0.01)
  expect_false(any(vapply(unclass(res), is.function, logical(1))))
  back <- readRDS(f)
  expect_equal(back$get("effective_rank"), res$get("effective_rank"))
})

test_that("the analyzer's RDMs leave out an unusable layer and keep the others' rows in layer order", {
  sim <- sim_small()
  L <- sim$reps$layers
  # a layer with one zero-variance pattern: its correlation RDM is undefined
  odd <- L[[2]]
  odd[3, ] <- 1
  reps <- ts_reps(c(L[1], list(odd = odd), L[-1]), stimuli = sim$reps$stimuli)
  res <- analyze_models(reps, metrics = "effective_rank")
  keep <- names(reps$layers)[-2]
  expect_equal(res$rdms[[1]]$descriptors$name, keep)
  expect_equal(res$rdms[[1]]$dissimilarities, rdm(ts_reps(reps$layers[keep], stimuli = reps$stimuli))$dissimilarities,
               tolerance = 1e-12)
  expect_equal(res$rdms[[1]]$conditions, reps$stimuli)
})

test_that("the RDM method survives the analyzer; one default dissimilarity (correlation)", {
  sim <- sim_small()
  res <- analyze_models(sim$reps, metrics = "effective_rank")
  expect_equal(res$rdms[[1]]$method, "correlation")
  expect_equal(res$rdms[[1]]$dissimilarities, rdm(sim$reps)$dissimilarities, tolerance = 1e-12)
  expect_equal(formals(rdm)$method[[2]], "correlation")
  expect_equal(formals(rsa)$rdm_method[[2]], "correlation")
  expect_equal(ts_metrics()$rsa_similarity$rdm_method, "correlation")
  eu <- analyze_models(sim$reps, metrics = ts_metrics(rsa_similarity = list(rdm_method = "euclidean"), alignment = FALSE,
                                                      geometry = FALSE, superposition = FALSE, fisher = FALSE,
                                                      circuits = FALSE, dynamics = FALSE))
  expect_equal(eu$rdms[[1]]$method, "euclidean")
  expect_equal(eu$rdms[[1]]$dissimilarities, rdm(sim$reps, "euclidean")$dissimilarities, tolerance = 1e-12)
  expect_error(compare_to_neural(eu, list(IT = sim$neural), rdm_method = "correlation"), class = "tensorscope_error_argument")
  # compare_to_neural's RSA equals rsa() on the same RDMs
  cmp <- compare_to_neural(res, list(IT = sim$neural), n_boot = 0, n_perm = 0)
  direct <- summary(rsa(sim$reps, as_rdm(lapply(sim$neural, rdm)), n_boot = 0, n_perm = 0))
  expect_equal(cmp$rsa, direct$similarity, tolerance = 1e-12)
  expect_equal(levels(cmp$layer), names(sim$reps$layers))
})

test_that("RDM-only neural data (a ts_rdm) works in analyze_models() and compare_to_neural()", {
  sim <- sim_small()
  neural_rdm <- as_rdm(lapply(sim$neural, rdm), names = names(sim$neural))
  res <- analyze_models(sim$reps, metrics = c("effective_rank", "rsa_similarity"), neural = list(IT = neural_rdm))
  expect_true(all(res$records$status == "ok"))
  from_data <- analyze_models(sim$reps, metrics = c("effective_rank", "rsa_similarity"), neural = list(IT = sim$neural))
  a <- res$get("rsa_similarity")
  b <- from_data$get("rsa_similarity")
  expect_equal(a$value[a$statistic == "IT:rsa"], b$value[b$statistic == "IT:rsa"], tolerance = 1e-12)
  expect_true(all(is.na(a$value[a$statistic == "IT:cka"])))
  cmp <- compare_to_neural(res, list(IT = neural_rdm), n_boot = 0, n_perm = 0)
  expect_true(all(is.na(cmp$predictivity)))
  bad <- neural_rdm
  bad$conditions[3] <- "unknown"
  expect_error(compare_to_neural(res, list(IT = bad)), class = "tensorscope_error_mismatch", regexp = "unknown")
  # an RDM over the same conditions in another order is matched by id
  perm <- c(2:40, 1)
  shuffled <- as_rdm(lapply(sim$neural, function(m) rdm(m[perm, ])), names = names(sim$neural))
  expect_message(got <- compare_to_neural(res, list(IT = shuffled), n_boot = 0, n_perm = 0),
                 class = "tensorscope_message_realigned")
  expect_equal(got$rsa, cmp$rsa, tolerance = 1e-12)
  bad$conditions[1:2] <- c("other1", "other2")
  expect_error(compare_to_neural(res, list(IT = bad)), class = "tensorscope_error_mismatch")
  expect_error(compare_to_neural(res, list(IT = bad)), "other1")
  # the same RDMs over the stimuli in another order are realigned by condition
  p <- rev(seq_along(neural_rdm$conditions))
  expect_message(moved <- compare_to_neural(res, list(IT = neural_rdm[p, ]), n_boot = 0, n_perm = 0),
                 class = "tensorscope_message_realigned")
  expect_equal(moved$rsa, cmp$rsa, tolerance = 1e-12)
})

test_that("one model load and one forward pass per unit for all layers", {
  skip_if_not(ts_torch_available())
  s <- readRDS(system.file("extdata", "fmnist_stimuli.rds", package = "tensorscope"))
  x <- s$images[1:40, , , , drop = FALSE]
  f <- system.file("extdata", "fmnist_cnn_step1125.pt", package = "tensorscope")
  n <- new.env()
  n$act <- 0
  n$model <- 0
  inc <- function(k) n[[k]] <- n[[k]] + 1
  trace(tensorscope::activations, bquote(.(inc)("act")), print = FALSE, where = asNamespace("tensorscope"))
  trace(tensorscope::ts_model, bquote(.(inc)("model")), print = FALSE, where = asNamespace("tensorscope"))
  on.exit({
    untrace(tensorscope::activations, where = asNamespace("tensorscope"))
    untrace(tensorscope::ts_model, where = asNamespace("tensorscope"))
  }, add = TRUE)
  res <- analyze_models(f, x, metrics = c("effective_rank", "cka_similarity", "superposition_regime"), batch_size = 40)
  expect_equal(n$act, 1)
  expect_equal(n$model, 1)
  direct <- activations(f, x)
  expect_equal(res$get("effective_rank")$value, effective_rank(direct)$value, tolerance = 1e-8)
  expect_equal(levels(res$values$layer)[seq_along(direct$layers)], names(direct$layers))
})

test_that("metrics as a list of names and overrides", {
  m <- tensorscope:::as_metrics(list("effective_rank", rsa_similarity = list(rdm_method = "euclidean"), manifold_curvature = list(k = 5)))
  expect_named(m, c("effective_rank", "rsa_similarity", "ricci_curvature"))
  expect_equal(m$rsa_similarity$rdm_method, "euclidean")
  expect_equal(m$rsa_similarity$n_boot, 200)
  expect_equal(m$ricci_curvature, list(k = 5, alpha = 0.5))
  expect_error(tensorscope:::as_metrics(list(effective_rank = list(bogus = 1))), class = "tensorscope_error_unknown_argument")
  expect_error(tensorscope:::as_metrics(list(1)), class = "tensorscope_error_argument")
  expect_error(tensorscope:::as_metrics(list("bogus")), class = "tensorscope_error_unknown_metric")
})

test_that("fiber_bundle_test and embedding_singularities share one fiber-bundle test per layer in the analyzer", {
  set.seed(4)
  t <- runif(300, -1, 1)
  reps <- ts_reps(list(cusp = cbind(t^2, t^3), line = cbind(t, 2 * t) + rnorm(300, sd = 1e-3)))
  calls <- 0
  inc <- function() calls <<- calls + 1
  trace("fiber_bundle_one", bquote(.(inc)()), print = FALSE, where = asNamespace("tensorscope"))
  on.exit(untrace("fiber_bundle_one", where = asNamespace("tensorscope")), add = TRUE)
  res <- analyze_models(reps, metrics = c("fiber_bundle_test", "embedding_singularities"))
  expect_equal(calls, 2)   # once per layer, not once per metric and layer
  es <- embedding_singularities(reps, k_range = c(1, 100))
  got <- res$get("embedding_singularities")
  for (ly in c("cusp", "line")) {
    direct <- fiber_bundle_test(reps$layers[[ly]], k_range = c(1, 100))
    fb <- got[got$layer == ly, ]
    expect_equal(fb$value[fb$statistic == "count"], es$count[es$layer == ly])
    expect_equal(fb$value[fb$statistic == "fraction"], es$fraction[es$layer == ly])
    ft <- res$get("fiber_bundle_test")
    ft <- ft[ft$layer == ly, ]
    expect_equal(ft$value[ft$statistic == "fiber_bundle:n_reject"], direct$decision$n_reject[2])
  }
  expect_gt(es$count[es$layer == "cusp"], 0)
})

test_that("effective_rank and participation_ratio share one spectrum per layer in the analyzer", {
  sim <- sim_small()
  calls <- 0
  inc <- function() calls <<- calls + 1
  trace("cpp_spectral_dims", bquote(.(inc)()), print = FALSE, where = asNamespace("tensorscope"))
  on.exit(untrace("cpp_spectral_dims", where = asNamespace("tensorscope")), add = TRUE)
  res <- analyze_models(sim$reps, metrics = c("effective_rank", "participation_ratio"))
  expect_equal(calls, length(sim$reps$layers))
  er <- res$get("effective_rank")
  pr <- res$get("participation_ratio")
  for (ly in names(sim$reps$layers)) {
    expect_equal(er$value[er$layer == ly], effective_rank(sim$reps$layers[[ly]]), tolerance = 1e-14)
    expect_equal(pr$value[pr$layer == ly], participation_ratio(sim$reps$layers[[ly]]), tolerance = 1e-14)
  }
  # the other spectrum of effective_rank comes from the same numbers
  eig <- analyze_models(sim$reps, metrics = ts_metrics(effective_rank = list(on = "eigenvalues"), alignment = FALSE,
                                                       geometry = FALSE, superposition = FALSE, fisher = FALSE,
                                                       circuits = FALSE, dynamics = FALSE))$get("effective_rank")
  expect_equal(eig$value, vapply(names(sim$reps$layers), function(l) effective_rank(sim$reps$layers[[l]], on = "eigenvalues"), 0),
               tolerance = 1e-14, ignore_attr = TRUE)
})
