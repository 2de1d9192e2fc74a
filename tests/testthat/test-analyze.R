# analyze_models(): planted answers, equality with direct metric calls, skips/errors, plans.

sim_reps <- function() {
  sim <- simulate_model_and_brain(n_stimuli = 40, n_layers = 4, width = 16, n_subjects = 2, seed = 3)
  sim
}

test_that("analyze_models on ts_reps equals the metric functions called directly (no LibTorch needed)", {
  sim <- sim_reps()
  res <- analyze_models(list(sim = sim$reps), metrics = c("effective_rank", "cka_similarity", "vector_interference",
                                                         "feature_sparsity", "block_cka_gap"))
  er <- res$get("effective_rank")
  direct <- effective_rank(sim$reps)
  expect_equal(er$value, direct$value, tolerance = 1e-10)
  expect_equal(er$layer, direct$layer)  # a factor in model order, like the direct call
  ck <- get_metric(res, "cka_similarity")
  d <- cka_layers(sim$reps)
  expect_equal(ck$value, d$cka, tolerance = 1e-8)
  vi <- get_metric(res, "vector_interference")
  expect_equal(vi$value[vi$layer == "layer2"], vector_interference(sim$reps[["layer2"]])$value, tolerance = 1e-10)
  tb <- tibble::as_tibble(res)
  expect_named(tb, c("model", "step", "layer", "metric", "statistic", "value"))
  expect_true(all(c("effective_rank", "cka_similarity") %in% summary(res)$metric))
  # block_cka_gap: brute-force the best 2-block cut
  m <- as.matrix(d)
  gaps <- vapply(2:(nrow(m) - 2), function(c) {
    b <- ifelse(seq_len(nrow(m)) <= c, 1, 2); same <- outer(b, b, `==`); off <- row(m) != col(m)
    mean(m[same & off]) - mean(m[!same])
  }, 0)
  g <- get_metric(res, "block_cka_gap")
  expect_equal(g$value[g$statistic == "gap"], max(gaps), tolerance = 1e-10)
  expect_output(print(res), "ts_results")
})

test_that("non-applicable metrics are skipped with a reason; unknown names are a classed error", {
  sim <- sim_reps()
  res <- analyze_models(sim$reps, metrics = c("grouped_fisher", "induction_head_strength", "rsa_similarity", "effective_rank"))
  s <- summary(res)
  expect_equal(s$n_skipped[s$metric == "grouped_fisher"], 1L)
  expect_match(s$reason[s$metric == "grouped_fisher"], "model file")
  expect_match(s$reason[s$metric == "rsa_similarity"], "neural")
  expect_equal(s$n_ok[s$metric == "effective_rank"], 4L)
  expect_error(analyze_models(sim$reps, metrics = c("effective_rank", "bogus")), class = "tensorscope_error_unknown_metric")
  expect_error(analyze_models(sim$reps, metrics = "bogus"), class = "tensorscope_error")
  expect_error(analyze_models(sim$reps, metrics = 3), class = "tensorscope_error_argument")
  expect_error(ts_metrics(geometry = "yes"), class = "tensorscope_error_argument")
  expect_error(get_metric(res, "bogus"), class = "tensorscope_error_unknown_metric")
})

test_that("a failing metric is recorded and the run continues", {
  sim <- sim_reps()
  # k larger than the stimuli: ricci_curvature fails on every layer, the rest runs
  res <- analyze_models(sim$reps, metrics = ts_metrics(geometry = list(k = 500), alignment = FALSE, superposition = FALSE,
                                                      fisher = FALSE, circuits = FALSE, dynamics = FALSE))
  s <- summary(res)
  expect_equal(s$n_error[s$metric == "ricci_curvature"], 4L)
  expect_true(nzchar(s$reason[s$metric == "ricci_curvature"]))
  expect_equal(s$n_ok[s$metric == "effective_rank"], 4L)
})

test_that("stimuli that differ between models and neural data are a classed error", {
  sim <- sim_reps()
  res <- analyze_models(sim$reps, metrics = "effective_rank")
  bad <- sim$neural$subject1
  rownames(bad)[5] <- "not_shown"
  expect_error(compare_to_neural(res, list(IT = bad)), class = "tensorscope_error_mismatch", regexp = "not_shown")
  rownames(bad)[1:3] <- paste0("other", 1:3)
  expect_error(compare_to_neural(res, list(IT = bad)), class = "tensorscope_error_mismatch")
  expect_error(compare_to_neural(res, list(IT = sim$neural$subject1[1:30, ])), class = "tensorscope_error_mismatch")
  expect_error(analyze_models(sim$reps, metrics = "rsa_similarity", neural = list(IT = bad)), class = "tensorscope_error_mismatch")
  # the same stimuli in another order are matched by id: the same comparison
  rev_ids <- sim$neural$subject1[40:1, ]
  want <- compare_to_neural(res, list(IT = sim$neural$subject1), n_boot = 20, n_perm = 50)
  expect_message(got <- compare_to_neural(res, list(IT = rev_ids), n_boot = 20, n_perm = 50),
                 class = "tensorscope_message_realigned")
  expect_identical(got, want)
  no_ids <- unname(rev_ids)  # without ids the rows are taken in the models' order: another comparison
  expect_false(isTRUE(all.equal(compare_to_neural(res, list(IT = no_ids), n_boot = 20, n_perm = 50)$rsa, want$rsa)))
  other <- ts_reps(lapply(sim$reps$layers, function(l) l[1:30, ]))
  expect_error(analyze_models(list(a = sim$reps, b = other), metrics = "effective_rank"), class = "tensorscope_error_mismatch")
})

test_that("compare_to_neural recovers the planted layer of simulated areas (ts_reps)", {
  sim <- simulate_model_and_brain(n_stimuli = 60, n_layers = 5, width = 32, source_layer = 4, n_subjects = 3, noise = 0.5)
  early <- simulate_neural(sim$reps, "layer1", n_neurons = 60, noise = 0.5, n_subjects = 2, seed = 4)
  res <- analyze_models(sim$reps, metrics = "effective_rank")
  cmp <- compare_to_neural(res, list(V1 = early, IT = sim$neural), n_boot = 50, n_perm = 100)
  b <- attr(cmp, "best")
  expect_equal(as.character(b$layer[b$area == "V1"]), "layer1")
  expect_equal(as.character(b$layer[b$area == "IT"]), "layer4")
  # predictivity from the stored Gram factors equals predictivity from the activations
  it <- cmp[cmp$area == "IT", ]
  expect_true(all(is.finite(it$predictivity)))
  expect_equal(as.character(it$layer[which.max(it$predictivity)]), "layer4")
  direct <- mean(vapply(sim$neural, function(m) {
    sm <- summary(predictivity(sim$reps["layer4"], unname(m), method = "ridge", folds = 5, seed = 1))
    sm$median_r
  }, 0))
  expect_equal(it$predictivity[it$layer == "layer4"], direct, tolerance = 1e-8)
})

test_that("results under future plans equal the sequential run", {
  sim <- sim_reps()
  mets <- c("effective_rank", "cka_similarity", "feature_sparsity")
  seq_res <- analyze_models(list(sim = sim$reps), metrics = mets)
  old <- future::plan(future::multisession, workers = 2)
  on.exit(future::plan(old), add = TRUE)
  ms <- analyze_models(list(sim = sim$reps), metrics = mets)
  expect_equal(ms$values, seq_res$values)
  expect_equal(ms$provenance$workers, 2)
  skip_if_not_installed("future.batchtools")
  withr::local_envvar(R_LIBS = paste(.libPaths(), collapse = .Platform$path.sep))  # batchtools jobs find this build
  withr::local_options(future.cache.path = tempfile("future"))  # batchtools registries out of the tree
  future::plan(future.batchtools::batchtools_local)
  bt <- analyze_models(list(sim = ts_reps(list(layer1 = sim$reps[["layer1"]]), stimuli = sim$reps$stimuli)), metrics = c("effective_rank", "feature_sparsity"))
  expect_equal(bt$values, seq_res$values[seq_res$values$layer %in% "layer1" & seq_res$values$metric != "cka_similarity", ], ignore_attr = TRUE)
})

test_that("analyze_models on the shipped CNN recovers the planted layers and equals direct calls", {
  skip_if_not(ts_torch_available())
  s <- readRDS(system.file("extdata", "fmnist_stimuli.rds", package = "tensorscope"))
  x <- s$images[1:80, , , , drop = FALSE]
  ck <- system.file("extdata", sprintf("fmnist_cnn_step%04d.pt", c(200, 1125)), package = "tensorscope")
  fin <- activations(ck[2], x)
  neural <- list(V1 = simulate_neural(fin, "pool1", 100, noise = 1, n_subjects = 2, seed = 2),
                 IT = simulate_neural(fin, "relu3", 100, noise = 1, n_subjects = 2, seed = 3))
  # the planted areas are random linear read-outs, which keep Euclidean distances (the
  # default dissimilarity is the correlation distance)
  res <- analyze_models(ck, x, neural = neural, labels = s$labels[1:80],
                        metrics = list("effective_rank", "cka_similarity", "grouped_fisher", "cka_trajectory",
                                       rsa_similarity = list(rdm_method = "euclidean"), "induction_head_strength"))
  b <- attr(res$neural, "best")
  expect_equal(as.character(b$layer[b$step == 1125 & b$area == "V1"]), "pool1")
  expect_equal(as.character(b$layer[b$step == 1125 & b$area == "IT"]), "relu3")
  er <- res$get("effective_rank")
  expect_equal(er$value[er$step == 1125], effective_rank(fin)$value, tolerance = 1e-8)
  ckr <- res$get("cka_similarity")
  expect_equal(ckr$value[ckr$step == 1125], cka_layers(fin)$cka, tolerance = 1e-8)
  f <- fisher(ck[2], x, s$labels[1:80], group = "layer", seed = 1)
  gf <- res$get("grouped_fisher")
  expect_equal(gf$value[gf$step == 1125], f$fisher, tolerance = 1e-8)
  tr <- res$get("cka_trajectory")
  expect_equal(tr$value[tr$step == 1125], rep(1, 10), tolerance = 1e-10)
  expect_equal(tr$value[tr$step == 200 & tr$layer == "fc1"],
               cka(activations(ck[1], x, layers = "fc1")[["fc1"]], fin[["fc1"]]), tolerance = 1e-8)
  s2 <- summary(res)
  expect_match(s2$reason[s2$metric == "induction_head_strength"], "not a transformer")
  expect_equal(res$provenance$device, "cpu")
  expect_equal(res$provenance$seed, 1)
  expect_true(nzchar(res$provenance$inputs_hash))
  # the reducer activations() chose for every layer of every unit is in the provenance
  expect_named(res$provenance$reduce, paste("fmnist_cnn", c(200, 1125)))
  expect_equal(unlist(res$provenance$reduce[[2]]), fin$provenance$reduce)
})

test_that("analyze_models on the shipped transformer: circuits found after training, unusable layers recorded", {
  skip_if_not(ts_torch_available())
  ck <- system.file("extdata", c("induction_step0000.pt", "induction_step1500.pt"), package = "tensorscope")
  set.seed(3)
  toks <- matrix(sample(1:63, 30 * 25, TRUE), 30)
  toks[, 1] <- 0L
  storage.mode(toks) <- "integer"
  res <- analyze_models(ck, toks, metrics = c("effective_rank", "induction_head_strength", "attention_entropy",
                                              "cka_similarity"))
  rec <- res$records
  expect_true(all(rec$status[rec$metric %in% c("induction_head_strength", "attention_entropy", "cka_similarity")] == "ok"))
  # the induction circuit: layer-2 induction heads and a layer-1 previous-token head
  # at step 1500, neither at step 0 (same heads as head_scores() on the model)
  ind <- res$get("induction_head_strength")
  top <- function(step, layer, type) max(ind$value[ind$step == step & ind$layer == layer & grepl(type, ind$statistic)])
  expect_gt(top(1500, "block1", ":induction"), 0.4)
  expect_gt(top(1500, "block0", ":previous_token"), 0.4)
  expect_lt(top(0, "block1", ":induction"), 0.2)
  direct <- head_scores(ts_model(ck[2]), type = c("induction", "previous_token"), seed = 1)
  expect_equal(sort(ind$value[ind$step == 1500]), sort(direct$score), tolerance = 1e-8)
  # masked attention scores (-Inf) and the positional embedding (the same for every
  # sequence) cannot be analysed: recorded per layer, the others go on
  er <- rec[rec$metric == "effective_rank", ]
  expect_equal(er$status[er$layer == "blocks.0.attn.hook_attn_scores"], c("error", "error"))
  expect_match(er$reason[er$layer == "blocks.0.attn.hook_attn_scores"][1], "non-finite")
  expect_match(er$reason[er$layer == "pos_embed"][1], "same for every stimulus")
  expect_true(all(er$status[er$layer == "blocks.1.hook_resid_post"] == "ok"))
  expect_false("pos_embed" %in% names(res$reduced[[1]]$layers))
})

test_that("activations: default layers leave out non-finite outputs; broadcast outputs repeat per stimulus", {
  skip_if_not(ts_torch_available())
  m <- ts_model(system.file("extdata", "induction_step1500.pt", package = "tensorscope"))
  toks <- matrix(c(0L, 5L:28L, 0L, 30L:53L), 2, byrow = TRUE)
  expect_warning(r <- activations(m, toks), "non-finite", class = "tensorscope_warning")
  expect_false(any(grepl("hook_attn_scores", names(r))))
  expect_true("blocks.1.attn.hook_pattern" %in% names(r))
  pe <- r[["pos_embed"]]
  expect_equal(dim(pe), c(2L, 25L * 64L))
  expect_identical(pe[1, ], pe[2, ])
  expect_error(activations(m, toks, layers = "blocks.0.attn.hook_attn_scores"), class = "tensorscope_error_non_finite")
})
