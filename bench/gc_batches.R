# Why activations() collects each batch's garbage (drop_batch_garbage() in R/capture.R):
# behind a large live object (the preallocated layer matrices), R's collector lets the
# batches' input arrays pile up. 150 batches of 32 random 224 x 224 images against
# 1.9 GiB live; prints the peak RSS (VmHWM) after the loop, with and without a
# young-generation gc() per batch. Each mode runs in its own process:
#   Rscript bench/gc_batches.R none ; Rscript bench/gc_batches.R gc
hwm <- function() as.numeric(gsub("[^0-9]", "", grep("^VmHWM", readLines("/proc/self/status"), value = TRUE))) / 2^20
mode <- if (length(commandArgs(TRUE))) commandArgs(TRUE)[1] else "none"
live <- matrix(0, 1e4, 2.5e4)
live[] <- 1
h0 <- hwm()
for (b in 1:150) {
  x <- array(0, c(32, 3, 224, 224))
  for (i in 1:32) x[i, , , ] <- rnorm(3 * 224 * 224)
  s <- sum(x)
  if (mode == "gc") invisible(gc(full = FALSE))
}
cat(sprintf("mode=%s live_gib=%.2f peak_before_gib=%.2f peak_after_gib=%.2f added_gib=%.2f\n",
            mode, object.size(live) / 2^30, h0, hwm(), hwm() - h0))
