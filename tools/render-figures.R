# Renders the figure of every registered metric (autoplot(<ts_results>, metric)) and the
# extra RSA figures (category-sorted RDMs, MDS of the RDMs) to PNG on analyzer output
# of the shipped data, the same runs as `make demo`:
#   * the Fashion-MNIST CNN checkpoints with simulated V1 / IT recordings (every metric
#     but the circuits),
#   * the induction transformer's checkpoints (the circuits family; long layer names),
#   * two simulated networks (several models in one figure).
# Usage: R_LIBS=lib Rscript tools/render-figures.R [out-dir]   (default demo-output/figures)
# The analyzer runs are cached in <out-dir>/runs.rds (delete it to recompute).
suppressPackageStartupMessages({
  library(tensorscope)
  library(ggplot2)
})
args <- commandArgs(trailingOnly = TRUE)
out <- if (length(args)) args[1] else file.path("demo-output", "figures")
dir.create(out, showWarnings = FALSE, recursive = TRUE)
cache <- file.path(out, "runs.rds")
extdata <- function(pattern) sort(list.files(system.file("extdata", package = "tensorscope"), pattern, full.names = TRUE))

if (file.exists(cache)) {
  runs <- readRDS(cache)
} else {
  runs <- list()
  if (ts_torch_available()) {
    s <- readRDS(system.file("extdata", "fmnist_stimuli.rds", package = "tensorscope"))
    ck <- extdata("^fmnist_cnn_step.*\\.pt$")
    x <- s$images[1:120, , , , drop = FALSE]
    fin <- activations(ck[length(ck)], x)
    neural <- list(V1 = simulate_neural(fin, "pool1", 100, noise = 1, n_subjects = 2, seed = 2),
                   IT = simulate_neural(fin, "relu3", 100, noise = 1, n_subjects = 2, seed = 3))
    runs$cnn <- analyze_models(ck, x, neural = neural, labels = s$labels[1:120])
    tok <- readRDS(system.file("extdata", "induction_tokens.rds", package = "tensorscope"))
    runs$induction <- analyze_models(extdata("^induction_step.*\\.pt$"), tok,
                                     metrics = ts_metrics(alignment = FALSE, geometry = FALSE, superposition = FALSE,
                                                          fisher = FALSE, effective_rank = TRUE, cka_similarity = TRUE))
  }
  sim1 <- simulate_model_and_brain(n_stimuli = 60, n_subjects = 3, source_layer = 3, seed = 1)
  sim2 <- simulate_model_and_brain(n_stimuli = 60, n_subjects = 3, source_layer = 3, seed = 2)
  runs$sim <- analyze_models(list(netA = sim1$reps, netB = sim2$reps), neural = list(IT = sim1$neural),
                             labels = sim1$categories,
                             metrics = ts_metrics(rsa_similarity = list(n_boot = 100, n_perm = 200)))
  saveRDS(runs, cache)
}

save_fig <- function(p, file, width = 7, height = 4.5) {
  w <- NULL
  withCallingHandlers(ggsave(file, p, width = width, height = height, dpi = 110),
                      warning = function(c) { w <<- c(w, conditionMessage(c)); invokeRestart("muffleWarning") })
  cat(sprintf("%-60s %s\n", file, if (length(w)) paste("WARNING:", paste(unique(w), collapse = "; ")) else "ok"))
}

for (run in names(runs)) {
  res <- runs[[run]]
  sm <- summary(res)
  for (m in sm$metric[sm$n_ok > 0]) {
    p <- tryCatch(autoplot(res, m), error = function(e) { cat(run, m, "ERROR:", conditionMessage(e), "\n"); NULL })
    if (!is.null(p)) save_fig(p, file.path(out, sprintf("%s_%s.png", run, m)))
  }
  if (!is.null(res$neural)) {
    for (type in c("rdms", "mds")) {
      p <- tryCatch(autoplot(res, "rsa_similarity", type = type), error = function(e) { cat(run, type, "ERROR:", conditionMessage(e), "\n"); NULL })
      if (!is.null(p)) save_fig(p, file.path(out, sprintf("%s_rsa_%s.png", run, type)), width = 8, height = 6)
    }
  }
}
