# Benchmark: the LibTorch model runtime (issue #5).
#   activations of 4 layers (conv2, pool2, fc1, fc2: 3,962 features per image, 300 MB in
#   R for 10,000 images) of the shipped Fashion-MNIST CNN for 10,000 test images
#   empirical Fisher (per-sample gradients) over 2,000 images
# each against the same work in Python with Debian's python3-torch on this machine
# (bench/models_torch.py), which is the reference implementation here (there is no
# naive R way to run a TorchScript model). Sizes scale with TS_BENCH_SCALE (default 1).
#   R_LIBS=<lib with tensorscope> Rscript bench/models.R
suppressPackageStartupMessages(library(tensorscope))
if (!ts_torch_available()) stop("tensorscope was installed without LibTorch")
scale <- as.numeric(Sys.getenv("TS_BENCH_SCALE", "1"))
n_act <- round(10000 * scale); n_fisher <- round(2000 * scale); batch <- 64
tm <- function(expr) unname(system.time(expr)[["elapsed"]])
info <- ts_build_info()
cat(sprintf("tensorscope %s, LibTorch %s (CUDA: %s); load: %s\n", info$version, info$torch_version, info$cuda,
            paste(readLines("/proc/loadavg"), collapse = "")))

read_idx <- function(file, n, header) {
  con <- gzfile(file, "rb"); on.exit(close(con))
  readBin(con, "raw", header)
  as.integer(readBin(con, "raw", n))
}
src <- "/usr/share/datasets/fashion-mnist"
img <- read_idx(file.path(src, "t10k-images-idx3-ubyte.gz"), n_act * 784, 16)
x <- aperm(array(img / 255, c(28, 28, 1, n_act)), 4:1)     # row-major bytes -> [n, 1, 28, 28]
y <- read_idx(file.path(src, "t10k-labels-idx1-ubyte.gz"), n_fisher, 8)
f <- system.file("extdata", "fmnist_cnn_step1125.pt", package = "tensorscope")
m <- ts_model(f)
invisible(activations(m, x[1:64, , , , drop = FALSE]))    # warm-up (graph building)

keep <- c("conv2", "pool2", "fc1", "fc2")
t_act <- tm(r <- activations(m, x, layers = keep, batch_size = batch))
cat(sprintf("\nactivations: %d images, %d layers, batch %d: %.2f s (%d forward passes, %.0f MB of activations)\n",
            n_act, length(r), batch, t_act, r$provenance$forward_passes, sum(vapply(r$layers, length, 1)) * 8 / 2^20))
acc <- mean(max.col(r[["fc2"]]) - 1 == read_idx(file.path(src, "t10k-labels-idx1-ubyte.gz"), n_act, 8))
cat(sprintf("  test accuracy of the shipped CNN on these images: %.3f\n", acc))
t_fis <- tm(fi <- fisher(m, x[seq_len(n_fisher), , , , drop = FALSE], y, batch_size = 256))
cat(sprintf("fisher: %d samples, %d parameters: %.2f s (%.2f ms per sample)\n", n_fisher, nrow(fi), t_fis,
            1000 * t_fis / n_fisher))

py <- system2("/usr/bin/python3", c("bench/models_torch.py", shQuote(f), n_act, n_fisher, batch, paste(keep, collapse = ",")), stdout = TRUE)
py_t <- as.numeric(sub("^\\S+ ", "", py)); names(py_t) <- sub(" .*", "", py)
cat(sprintf("\nPython (python3-torch, same machine): activations %.2f s, fisher %.2f s\n",
            py_t[["activations"]], py_t[["fisher"]]))
cat(sprintf("ratio tensorscope / Python: activations %.2f, fisher %.2f (< 1: tensorscope faster)\n",
            t_act / py_t[["activations"]], t_fis / py_t[["fisher"]]))
