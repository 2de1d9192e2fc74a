# Shared by the bench/ scripts (sourced from the script's own folder): package set-up,
# timing, one output line per measurement, the machine line, and the W2 layer stack.
suppressPackageStartupMessages(library(tensorscope))
args <- commandArgs(trailingOnly = TRUE)
scale <- if (length(args)) as.numeric(args[1]) else 1
ts_threads(parallel::detectCores())
set.seed(1)

# Best elapsed time of `reps` evaluations of expr (in the caller's environment).
tm <- function(expr, reps = 1) {
  e <- substitute(expr)
  env <- parent.frame()
  best <- Inf
  for (i in seq_len(reps)) best <- min(best, system.time(eval(e, env))[["elapsed"]])
  best
}

# One line: workload id, what, our time, ratio of a naive version to ours, ours to the bound.
row <- function(id, what, ours, naive = NA, bound = NA, note = "") {
  cat(sprintf("%-4s %-52s %8.3f s  naive/ours %7s  ours/bound %5s  %s\n", id, what, ours,
              if (is.na(naive)) "-" else sprintf("%.1fx", naive / ours),
              if (is.na(bound)) "-" else sprintf("%.2f", ours / bound), note))
}

info <- ts_build_info()
cat(sprintf("tensorscope %s | threads %d | BLAS %s (%s threads) | load %s\n", info$version, info$threads,
            basename(info$blas), info$blas_threads, paste(readLines("/proc/loadavg", warn = FALSE), collapse = "")))

# L layers x n stimuli x p features, each a noisy linear read-out of a drifting latent.
layer_stack <- function(n, p, L = 12) {
  z <- matrix(rnorm(n * 64), n)
  layers <- lapply(seq_len(L), function(l) {
    w <- matrix(rnorm(64 * p), 64)
    z <<- tanh(z + matrix(rnorm(n * 64, sd = 0.3), n))
    z %*% w + matrix(rnorm(n * p, sd = 0.5), n)
  })
  names(layers) <- paste0("layer", seq_len(L))
  layers
}
