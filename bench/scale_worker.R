# One run of bench/scale.R in its own process (so that its peak RSS is its own):
#   Rscript bench/scale_worker.R MODEL N BATCH K MODE [LIB]
# Random 224 x 224 stimuli are made batch by batch (inputs = a function of rows). MODE:
#   capture   activations() of the benchmark layers (layers wider than K: seeded sparse
#             projection; avgpool / fc / heads.head exact)
#   exact     activations(reduce = "none"): every layer exact (n x 6.3 M doubles on ResNet-50)
#   gram      activations(reduce = "gram"): the exact Gram route
#   pipeline  capture, then cka_layers(), rdm() of all layers (one ts_rdm) and ridge
#             predictivity() of 200 simulated neurons from every layer
#             (TS_BENCH_RIDGE_LAYERS=2: the last two only); each step prints its time and
#             its own peak RSS as it ends
#   analyze   analyze_models() with its default metrics and reducer policy
# TS_BENCH_LAYERS (comma-separated) replaces the benchmark layers. Prints one line of
# key=value pairs: times, peak RSS, the preflight's estimate and its parts.
args <- commandArgs(TRUE)
if (length(args) >= 6) .libPaths(c(args[6], .libPaths()))
suppressMessages(library(tensorscope))
model <- args[1]; n <- as.integer(args[2]); batch <- as.integer(args[3]); k <- as.integer(args[4]); mode <- args[5]
rss <- function(field) {
  l <- grep(paste0("^", field, ":"), readLines("/proc/self/status"), value = TRUE)
  as.numeric(gsub("[^0-9]", "", l)) * 1024
}
gb <- function(x) round(x / 2^30, 3)
bench_layers <- function(model) {
  if (grepl("resnet", model)) {
    blocks <- unlist(Map(function(l, b) paste0("layer", l, ".", seq_len(b) - 1), 1:4, c(3, 4, 6, 3)))
    c("conv1", blocks, "avgpool", "fc")
  } else {
    c("conv_proj", paste0("encoder.layers.encoder_layer_", 0:11), "encoder.ln", "heads.head")
  }
}
layers <- if (nzchar(Sys.getenv("TS_BENCH_LAYERS"))) strsplit(Sys.getenv("TS_BENCH_LAYERS"), ",")[[1]] else bench_layers(model)
t_input <- 0   # seconds spent making stimuli (R's rnorm: ~0.5 s per batch of 32), reported apart
stim <- function(rows) {   # the same random images for any batch size
  t0 <- proc.time()[["elapsed"]]
  x <- array(0, c(length(rows), 3, 224, 224))
  for (i in seq_along(rows)) { set.seed(rows[i]); x[i, , , ] <- rnorm(3 * 224 * 224) }
  t_input <<- t_input + proc.time()[["elapsed"]] - t0
  x
}
ids <- as.character(seq_len(n))
m <- ts_model(model)
invisible(predict(m, stim(1)))   # load LibTorch's kernels before the baseline
invisible(gc())
t_input <- 0
base <- rss("VmRSS")
t0 <- proc.time()[["elapsed"]]
if (mode == "analyze") {
  res <- analyze_models(m$path, stim, stimuli = ids, layers = layers, batch_size = batch, k = k)
  t_all <- proc.time()[["elapsed"]] - t0
  red <- table(res$reducers$reducer)
  out <- c(model = basename(model), n = n, mode = mode, layers = length(layers), k = k, batch = batch,
           analyze_s = round(t_all, 1), input_s = round(t_input, 1), base_gb = gb(base), peak_gb = gb(rss("VmHWM")),
           metrics_ok = sum(res$records$status == "ok"), metrics_failed = sum(res$records$status == "error"),
           reducers = paste(sprintf("%s:%d", gsub(" ", "", names(red)), red), collapse = ","))
  cat(paste(names(out), out, sep = "=", collapse = " "), "\n")
  quit(status = 0)
}
reduce <- switch(mode, gram = "gram", exact = "none", c(avgpool = "none", fc = "none", heads.head = "none", "srp"))
r <- activations(m, stim, layers = layers, batch_size = batch, stimuli = ids, reduce = reduce, k = k)
t_capture <- proc.time()[["elapsed"]] - t0
peak_capture <- rss("VmHWM")
after_capture <- rss("VmRSS")   # what stays resident once activations() has returned
est <- r$provenance$memory
parts <- est[names(est) != "budget"]
out <- c(model = basename(model), n = n, mode = mode, layers = length(r), k = k, batch = batch,
         capture_s = round(t_capture, 1), input_s = round(t_input, 1), forward_passes = r$provenance$forward_passes, base_gb = gb(base),
         peak_gb = gb(peak_capture), rss_after_gb = gb(after_capture), est_gb = gb(base + sum(parts)),
         stored_gb = gb(sum(vapply(r$layers, function(l) as.numeric(length(l)), 0)) * 8),
         stats::setNames(gb(parts), paste0("est_", names(parts), "_gb")))
if (mode == "pipeline") {
  # the capture's numbers now, so that a run stopped in a later step still reports them
  cat(sprintf("step=capture s=%.1f input_s=%.1f peak_gb=%.3f rss_gb=%.3f\n", t_capture, t_input, gb(peak_capture),
              gb(after_capture)))
  flush(stdout())
  # each step's own peak: VmHWM is reset (clear_refs 5) before it, and printed after it
  step <- function(name, expr) {
    try(writeLines("5", "/proc/self/clear_refs"), silent = TRUE)
    t <- proc.time()[["elapsed"]]
    value <- force(expr)
    cat(sprintf("step=%s s=%.1f peak_gb=%.3f rss_gb=%.3f\n", name, proc.time()[["elapsed"]] - t, gb(rss("VmHWM")),
                gb(rss("VmRSS"))))
    flush(stdout())
    steps[[name]] <<- c(s = proc.time()[["elapsed"]] - t, peak = rss("VmHWM"))
    value
  }
  steps <- list()
  t1 <- proc.time()[["elapsed"]]
  ck <- step("cka_layers", cka_layers(r))
  rd <- step("rdm", rdm(r))   # every layer's RDM, one object (rsatoolbox's layout)
  set.seed(2)
  last <- r$layers[[length(r$layers) - 1]]
  w <- matrix(rnorm(ncol(last) * 200), ncol(last)) / sqrt(ncol(last))
  neurons <- last %*% w + matrix(rnorm(n * 200), n)
  rownames(neurons) <- r$stimuli
  rm(last, w)
  use <- if (Sys.getenv("TS_BENCH_RIDGE_LAYERS") == "2") c(length(r) - 2, length(r) - 1) else seq_along(r$layers)
  pr <- step("ridge", predictivity(r[use], neurons, alphas = 10^seq(-1, 5, length.out = 7)))
  out <- c(out, metrics_s = round(proc.time()[["elapsed"]] - t1, 1), ridge_layers = length(use),
           unlist(lapply(names(steps), function(s) stats::setNames(c(round(steps[[s]][["s"]], 1), gb(steps[[s]][["peak"]])),
                                                                     paste0(s, c("_s", "_peak_gb"))))),
           pipeline_peak_gb = gb(max(peak_capture, vapply(steps, `[[`, 0, "peak"))))
}
cat(paste(names(out), out, sep = "=", collapse = " "), "\n")
