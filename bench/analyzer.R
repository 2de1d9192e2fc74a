# analyze_models() benchmark (issue #7): the full analysis (every metric) of the 5 shipped
# Fashion-MNIST CNN checkpoints x all 10 layers on the 200 shipped stimuli, with two
# simulated areas, sequentially and under plan(multisession, workers = 2). Prints the
# times, the speed-up, the per-metric times, and checks that both runs give equal values.
#   Rscript bench/analyzer.R            (R_LIBS pointing at an installed tensorscope)
suppressPackageStartupMessages(library(tensorscope))
ts_threads(parallel::detectCores())  # all cores, as the peers' BLAS uses them
if (!ts_torch_available()) { cat("LibTorch backend not available: nothing to benchmark\n"); quit(status = 0) }
cat(sprintf("tensorscope %s, threads %d, BLAS %s; load: %s\n", ts_build_info()$version, ts_threads(),
            ts_build_info()$blas, paste(readLines("/proc/loadavg", warn = FALSE), collapse = "")))
s <- readRDS(system.file("extdata", "fmnist_stimuli.rds", package = "tensorscope"))
ck <- sort(list.files(system.file("extdata", package = "tensorscope"), "^fmnist_cnn_step.*\\.pt$", full.names = TRUE))
fin <- activations(ck[length(ck)], s$images)
neural <- list(V1 = simulate_neural(fin, "pool1", 100, noise = 1, n_subjects = 2, seed = 2),
               IT = simulate_neural(fin, "relu3", 100, noise = 1, n_subjects = 2, seed = 3))
run <- function() analyze_models(ck, s$images, neural = neural, labels = s$labels)
t_seq <- system.time(r_seq <- run())[["elapsed"]]
future::plan(future::multisession, workers = 2)
invisible(future.apply::future_lapply(1:2, identity))  # start the workers outside the timing
t_ms <- system.time(r_ms <- run())[["elapsed"]]
future::plan(future::sequential)
cat(sprintf("%d checkpoints x %d layers x %d stimuli, %d metrics\n", length(ck), length(fin$layers), length(fin$stimuli),
            length(ts_metrics())))
cat(sprintf("sequential                      %7.2f s\n", t_seq))
cat(sprintf("multisession (2 workers)        %7.2f s   speed-up x%.2f\n", t_ms, t_seq / t_ms))
cat(sprintf("values equal: %s\n", isTRUE(all.equal(r_seq$values, r_ms$values))))
print(summary(r_seq)[, c("metric", "n_ok", "n_skipped", "n_error", "seconds")], n = 30)
cat(sprintf("activation extraction (sum over tasks): %.2f s\n", r_seq$provenance$extract_seconds))
