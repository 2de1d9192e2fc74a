# One run of bench/scale.R in its own process (so that its peak RSS is its own):
#   Rscript bench/scale_worker.R MODEL N BATCH K MODE [LIB]
# MODE "capture": activations() of the benchmark layers, random 224 x 224 stimuli made
# batch by batch; "pipeline": capture, then cka_layers(), rdm() of every layer and ridge
# predictivity() against 200 simulated neurons. Prints one line of key=value pairs.
args <- commandArgs(TRUE)
if (length(args) >= 6) .libPaths(c(args[6], .libPaths()))
suppressMessages(library(tensorscope))
model <- args[1]; n <- as.integer(args[2]); batch <- as.integer(args[3]); k <- as.integer(args[4]); mode <- args[5]
rss <- function(field) {
  l <- grep(paste0("^", field, ":"), readLines("/proc/self/status"), value = TRUE)
  as.numeric(gsub("[^0-9]", "", l)) * 1024
}
bench_layers <- function(model) {
  if (grepl("resnet", model)) {
    blocks <- unlist(Map(function(l, b) paste0("layer", l, ".", seq_len(b) - 1), 1:4, c(3, 4, 6, 3)))
    c("conv1", blocks, "avgpool", "fc")
  } else {
    c("conv_proj", paste0("encoder.layers.encoder_layer_", 0:11), "encoder.ln", "heads.head")
  }
}
layers <- bench_layers(model)
stim <- function(rows) {   # the same random images for any batch size
  x <- array(0, c(length(rows), 3, 224, 224))
  for (i in seq_along(rows)) { set.seed(rows[i]); x[i, , , ] <- rnorm(3 * 224 * 224) }
  x
}
m <- ts_model(model)
invisible(predict(m, stim(1)))   # load LibTorch's kernels before the baseline
gc()
base <- rss("VmRSS")
t0 <- proc.time()[["elapsed"]]
r <- activations(m, stim, layers = layers, batch_size = batch, stimuli = as.character(seq_len(n)),
                 reduce = c(avgpool = "none", fc = "none", heads.head = "none", "srp"), k = k)
t_capture <- proc.time()[["elapsed"]] - t0
peak_capture <- rss("VmHWM")
est <- r$provenance$memory
out <- c(model = basename(model), n = n, layers = length(r), k = k, batch = batch,
         capture_s = round(t_capture, 1), base_gb = round(base / 2^30, 3),
         peak_gb = round(peak_capture / 2^30, 3),
         est_gb = round((base + sum(est[names(est) != "budget"])) / 2^30, 3),
         stored_gb = round(sum(vapply(r$layers, function(l) as.numeric(length(l)), 0)) * 8 / 2^30, 3),
         stats::setNames(round(est[names(est) != "budget"] / 2^30, 3), paste0("est_", names(est)[names(est) != "budget"], "_gb")))
if (mode == "pipeline") {
  t1 <- proc.time()[["elapsed"]]
  ck <- cka_layers(r)
  rd <- lapply(r$layers, rdm)
  set.seed(2)
  last <- r$layers[[length(r$layers) - 1]]
  w <- matrix(rnorm(ncol(last) * 200), ncol(last)) / sqrt(ncol(last))
  neurons <- last %*% w + matrix(rnorm(n * 200), n)
  rownames(neurons) <- r$stimuli
  pr <- predictivity(r[c(length(r) - 2, length(r) - 1)], neurons, alphas = 10^seq(-1, 5, length.out = 7))
  out <- c(out, metrics_s = round(proc.time()[["elapsed"]] - t1, 1), pipeline_peak_gb = round(rss("VmHWM") / 2^30, 3))
}
cat(paste(names(out), out, sep = "=", collapse = " "), "\n")
