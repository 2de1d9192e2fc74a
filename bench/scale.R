# Real-size models (issue 16; PERFORMANCE.md W8/W9): every benchmark layer of
# torchvision's ResNet-50 (conv1, the 16 bottleneck outputs, avgpool, fc) and ViT-B/16
# (patch embedding, 12 encoder blocks, final norm, head), random initialisation, over N
# random 224 x 224 stimuli. Each run is its own process so that its peak RSS is its own:
#   R       activations() (layers wider than k: seeded sparse projection, k = 4096;
#           avgpool / fc / head exact), stimuli made batch by batch
#   py_srp  Python torch, forward hooks, float32, the same reduction (torch.sparse.mm)
#   py_fwd  Python torch, forward hooks that only copy each output (the forward's cost)
# and reports peak RSS, wall time, the preflight's estimate (est_gb, to be within 25% of
# peak_gb) and the ratios. "pipeline" adds cka_layers(), rdm() of every layer and ridge
# predictivity() against 200 simulated neurons. Then the projection's error at a size
# where exact fits (bench/scale_error.R).
#   Rscript bench/scale.R [N ...]          (default 1000; e.g. 1000 5000 10000)
# Environment: TS_BENCH_MODELS (models), TS_BENCH_PIPELINE=1, TS_BENCH_PY_SRP_N (largest N
# for the slow torch.sparse.mm baseline, default 100), TS_BENCH_ERROR_N (default 200; 0 skips).
args <- commandArgs(TRUE)
ns <- if (length(args)) as.integer(args) else 1000L
lib <- Sys.getenv("TS_TEST_LIB", file.path(getwd(), "lib"))
py <- "/usr/bin/python3"
dir <- "bench/models"
if (system2(py, c("bench/build_models.py", dir), stdout = "") != 0 || !file.exists(file.path(dir, "resnet50.pt"))) {
  message("skipped: the benchmark models could not be built (python3-torchvision missing?)")
  quit(status = 0)
}
models <- strsplit(Sys.getenv("TS_BENCH_MODELS", "resnet50,vit_b_16"), ",")[[1]]
pipeline <- Sys.getenv("TS_BENCH_PIPELINE") == "1"
py_srp_n <- as.integer(Sys.getenv("TS_BENCH_PY_SRP_N", "100"))
parse <- function(line) {
  kv <- strsplit(strsplit(trimws(line[length(line)]), " ")[[1]], "=")
  stats::setNames(vapply(kv, `[`, "", 2), vapply(kv, `[`, "", 1))
}
run <- function(cmd, args) {
  out <- system2(cmd, args, stdout = TRUE, stderr = FALSE)
  line <- grep("capture_s=", out, value = TRUE)
  if (!length(line)) return(NULL)
  parse(line)
}
batch <- 32
rows <- list()
for (mod in models) for (n in ns) {
  f <- file.path(dir, paste0(mod, ".pt"))
  r <- run("Rscript", c("bench/scale_worker.R", f, n, batch, 4096, if (pipeline) "pipeline" else "capture", lib))
  pf <- run(py, c("bench/scale_torch.py", f, n, batch, 4096, "forward"))
  ps <- if (n <= py_srp_n) run(py, c("bench/scale_torch.py", f, n, batch, 4096, "srp"))
  num <- function(x, key) if (is.null(x) || is.na(x[key])) NA_real_ else as.numeric(x[key])
  row <- data.frame(model = mod, n = n, layers = num(r, "layers"),
                    r_s = num(r, "capture_s"), r_peak_gb = num(r, "peak_gb"), r_est_gb = num(r, "est_gb"),
                    est_over_peak = round(num(r, "est_gb") / num(r, "peak_gb"), 2),
                    stored_gb = num(r, "stored_gb"),
                    py_fwd_s = num(pf, "capture_s"), py_fwd_peak_gb = num(pf, "peak_gb"),
                    ratio_fwd = round(num(r, "capture_s") / num(pf, "capture_s"), 2),
                    py_srp_s = num(ps, "capture_s"), py_srp_peak_gb = num(ps, "peak_gb"),
                    ratio_srp = round(num(r, "capture_s") / num(ps, "capture_s"), 2),
                    metrics_s = num(r, "metrics_s"), pipeline_peak_gb = num(r, "pipeline_peak_gb"))
  print(row, row.names = FALSE)
  rows[[length(rows) + 1]] <- row
}
tab <- do.call(rbind, rows)
dir.create("bench/out", showWarnings = FALSE)
utils::write.csv(tab, sprintf("bench/out/scale-%s.csv", paste(ns, collapse = "-")), row.names = FALSE)
cat("\n== capture: tensorscope vs Python torch hooks (float32, same LibTorch) ==\n")
print(tab, row.names = FALSE)
en <- as.integer(Sys.getenv("TS_BENCH_ERROR_N", "200"))
if (en > 0) {
  cat("\n== projection error at N =", en, "(exact fits) ==\n")
  system2("Rscript", c("bench/scale_error.R", file.path(dir, "resnet50.pt"), en, lib))
}
