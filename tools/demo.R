# make demo: the main job on generated and (when present) real data. Writes
# demo-output/ with the printed tibbles, PNG plots, a JSON file of the results, the HTML
# report of analyze_models() and headless-Chromium screenshots of it (report.png).
suppressPackageStartupMessages({
  library(tensorscope)
  library(ggplot2)
})
out <- "demo-output"
dir.create(out, showWarnings = FALSE)
cat("tensorscope demo\n")
print(ts_build_info())

# 1. A simulated network and four simulated subjects whose "IT" population reads out
#    layer 4: alignment methods must find layer 4.
sim <- simulate_model_and_brain(n_stimuli = 96, n_subjects = 4, source_layer = 4, noise = 1)
print(sim$reps)
neural_rdms <- rdm(ts_reps(sim$neural, stimuli = sim$reps$stimuli))  # one RDM per subject
res <- rsa(sim$reps, neural_rdms, method = "spearman", n_perm = 2000, n_boot = 200)
cat("\nRSA of every layer against the simulated subjects (planted source: ", sim$source_layer, ")\n", sep = "")
print(summary(res))
ggsave(file.path(out, "rsa_simulated.png"), autoplot(res), width = 7, height = 4.5, dpi = 120)

ck <- cka_layers(sim$reps, ts_reps(list(subject1 = sim$neural$subject1), stimuli = sim$reps$stimuli),
                 estimator = "debiased")
cat("\nDebiased linear CKA of each layer with subject 1:\n")
print(ck)
ggsave(file.path(out, "cka_layers.png"), autoplot(cka_layers(sim$reps)), width = 6, height = 5, dpi = 120)

results <- list(
  simulated = list(
    planted_layer = sim$source_layer,
    best_layer_rsa = as.character(summary(res)$layer[which.max(summary(res)$similarity)]),
    best_layer_cka = as.character(ck$layer_x[which.max(ck$cka)]),
    rsa = summary(res),
    cka_subject1 = ck[, c("layer_x", "cka")]
  )
)

# 2. Real data: Kriegeskorte et al. (2008) 92 images, human IT (4 subjects) vs 8 models.
kdir <- file.path("..", "shared", "data", "kriegeskorte2008")
if (file.exists(file.path(kdir, "92_brainRDMs.mat")) && requireNamespace("R.matlab", quietly = TRUE)) {
  b <- R.matlab::readMat(file.path(kdir, "92_brainRDMs.mat"))$RDMs
  m <- R.matlab::readMat(file.path(kdir, "92_modelRDMs.mat"))$Models
  hit <- lapply(1:4, function(s) (b[["RDM", 1, s, 1]] + b[["RDM", 1, s, 2]]) / 2)
  names(hit) <- vapply(1:4, function(s) sub("hIT \\| ([A-Z]+).*", "\\1", b[["name", 1, s, 1]]), "")
  mods <- lapply(seq_len(dim(m)[3]), function(i) m[["RDM", 1, i]])
  names(mods) <- vapply(seq_len(dim(m)[3]), function(i) m[["name", 1, i]][1], "")
  real <- rsa(as_rdm(mods), as_rdm(hit), method = "kendall_tau_a", n_perm = 10000, n_boot = 1000)
  cat("\nKriegeskorte et al. (2008): model RDMs vs human IT (tau-a, 4 subjects)\n")
  print(summary(real))
  ggsave(file.path(out, "rsa_kriegeskorte2008.png"), autoplot(real), width = 8, height = 4.5, dpi = 120)
  ggsave(file.path(out, "rdm_human_IT.png"), autoplot(as_rdm(hit)[1], rank = TRUE, labels = FALSE),
         width = 5, height = 5, dpi = 120)
  results$kriegeskorte2008 <- list(rsa = summary(real))
} else {
  cat("\n(../shared/data/kriegeskorte2008 or R.matlab not available: real-data part skipped)\n")
}

# 3. analyze_models() end to end: the shipped Fashion-MNIST CNN checkpoints, every metric,
#    simulated "V1" (from pool1) and "IT" (from relu3) recordings of the final checkpoint.
#    simulate_neural() reads a layer out through random zero-mean weights, which keeps
#    Euclidean distances between stimuli (so with rdm_method = "euclidean" the planted
#    layer is the best one, as test-analyze.R checks) but not the correlation distances of
#    non-negative ReLU/pooling layers: under the default correlation distance a
#    neighbouring layer can score higher (results.json records both).
if (ts_torch_available()) {
  s <- readRDS(system.file("extdata", "fmnist_stimuli.rds", package = "tensorscope"))
  ck <- sort(list.files(system.file("extdata", package = "tensorscope"), "^fmnist_cnn_step.*\\.pt$", full.names = TRUE))
  x <- s$images[1:120, , , , drop = FALSE]
  fin <- activations(ck[length(ck)], x)
  neural <- list(V1 = simulate_neural(fin, "pool1", 100, noise = 1, n_subjects = 2, seed = 2),
                 IT = simulate_neural(fin, "relu3", 100, noise = 1, n_subjects = 2, seed = 3))
  t0 <- Sys.time()
  an <- analyze_models(ck, x, neural = neural, labels = s$labels[1:120])
  cat(sprintf("\nanalyze_models(): %d checkpoints of the CNN in %.1f s\n", length(ck), as.numeric(Sys.time() - t0, units = "secs")))
  print(an)
  print(summary(an), n = 30)
  cat("\nBrain-Score-style ranking of the checkpoints:\n")
  print(attr(an$neural, "ranking"))
  save_report(an, file.path(out, "cnn_report.html"))   # plots in demo-output/cnn_report_files/
  save_report(an, file.path(out, "cnn_report.json"))
  # the browser check: the report as a reader sees it in headless Chromium (first screen
  # and whole page), skipped with a message when there is no Chromium
  shot <- tensorscope:::report_screenshot(file.path(out, "cnn_report.html"), file.path(out, "report.png"))
  if (!is.null(shot)) {
    tensorscope:::report_screenshot(file.path(out, "cnn_report.html"), file.path(out, "report_full.png"), height = NULL)
    cat("screenshots of the report: demo-output/report.png, demo-output/report_full.png\n")
  }
  b <- attr(an$neural, "best")
  results$cnn <- list(planted = c(V1 = "pool1", IT = "relu3"),
                      best_final = stats::setNames(b$layer[b$step == max(b$step)], b$area[b$step == max(b$step)]))
} else {
  cat("\n(LibTorch backend not available: analyze_models() on the CNN skipped)\n")
}

jsonlite::write_json(results, file.path(out, "results.json"), pretty = TRUE, digits = NA, auto_unbox = TRUE)
cat("\nwrote", paste(list.files(out, full.names = TRUE), collapse = ", "), "\n")
