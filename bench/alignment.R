# Benchmarks for representational alignment (PERFORMANCE.md W1, W2, W4, W4b, W5).
# Each line: our time, the ratio to a naive R implementation, and for dense algebra the
# ratio to the BLAS work the algorithm needs, timed in the same run.
# Usage: Rscript bench/alignment.R [scale]   (scale < 1 shrinks the problems)
source(file.path(dirname(sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE)[1])), "common.R"))

# ---- W2: CKA, all pairs of 12 layers x 5000 stimuli x 768 features -------------------
n <- round(5000 * scale); p <- round(768 * scale); L <- 12
layers <- layer_stack(n, p, L)
reps <- ts_reps(layers)
t_ours <- tm(res <- cka_layers(reps))
# the BLAS work each route needs, timed here: feature space = one GEMM per pair of
# layers + one syrk per layer; sample space = one n x n syrk per layer + one GEMM of
# the packed kernels
t_bound_feature <- tm({
  for (i in seq_len(L)) {
    crossprod(layers[[i]])
    for (j in seq_len(i - 1)) crossprod(layers[[i]], layers[[j]])
  }
})
t_bound_gram <- tm({
  for (x in layers) g <- tcrossprod(x)
  P <- matrix(0, n * (n + 1) / 2, L)
  crossprod(P)
})
rm(P, g); invisible(gc())
t_bound <- min(t_bound_feature, t_bound_gram)
cat(sprintf("     BLAS work: feature route %.3f s, sample-space route %.3f s\n", t_bound_feature, t_bound_gram))
naive_cka <- function(xs) {
  k <- length(xs)
  out <- matrix(1, k, k)
  for (i in 1:(k - 1)) for (j in (i + 1):k) {
    xc <- scale(xs[[i]], scale = FALSE); yc <- scale(xs[[j]], scale = FALSE)
    out[i, j] <- out[j, i] <- sum(crossprod(yc, xc)^2) / (norm(crossprod(xc), "F") * norm(crossprod(yc), "F"))
  }
  out
}
t_naive <- tm(ref <- naive_cka(layers))
stopifnot(max(abs(as.matrix(res) - ref)) < 1e-8)
row("W2", sprintf("cka_layers linear, %d layers x %d x %d", L, n, p), t_ours, t_naive, t_bound,
    "(target <= 5 s; bound = the cheaper route's BLAS work)")
t_feat <- tm(cka_layers(reps, path = "feature"))
row("W2", "  same, feature-space route forced", t_feat, t_naive, t_bound_feature)
t_gram <- tm(cka_layers(reps, path = "gram"))
row("W2", "  same, sample-space route forced", t_gram, t_naive, t_bound_gram)
# a budget far below the packed kernels (0.05 GB for 12 x 100 MB at full scale): the
# linear kernels stream in column chunks, each formed once (before, blocks of packed
# kernels were formed again for every earlier block: 78 kernels for 12 layers here)
withr::with_options(list(tensorscope.memory_gb = 0.05), t_small <- tm(rs <- cka_layers(reps, path = "gram")))
stopifnot(max(abs(rs$cka - res$cka)) < 1e-10)
row("W2", "  same, sample-space route, 0.05 GB budget", t_small, t_naive, t_bound_gram)
t_rbf <- tm(cka_layers(reps, kernel = "rbf"))
row("W2", "cka_layers RBF (median bandwidth)", t_rbf, NA, t_bound_gram, "(target <= 10 s)")
t_deb <- tm(cka_layers(reps, estimator = "debiased"))
row("W2", "cka_layers linear debiased", t_deb, NA, t_bound)
if (ts_torch_available()) {
  # the LibTorch path on this machine's device (the CPU unless LibTorch has CUDA)
  dev <- if (isTRUE(ts_build_info()$cuda)) "cuda" else "cpu"
  t_torch <- tm(rt <- cka_layers(reps, backend = "torch"))
  stopifnot(max(abs(rt$cka - res$cka)) < 1e-8)
  row("W2", sprintf("  same, backend = \"torch\" (LibTorch, %s)", dev), t_torch, t_naive, t_bound)
}
rm(layers, reps); invisible(gc())

# ---- W2 at the real-size pipeline's shapes (TS_BENCH_CKA_BIG=1; 6.2 GB of layers) -----
# ResNet-50's 19 benchmark layers at N = 10,000, each projected to 4096 (bench/scale.R's
# pipeline): peak memory above the layers (VmHWM reset before the call) and the BLAS
# bound, 19 n x n syrks (one timed).
if (Sys.getenv("TS_BENCH_CKA_BIG") == "1") {
  status_kb <- function(f) as.numeric(gsub("[^0-9]", "", grep(paste0("^", f, ":"), readLines("/proc/self/status"), value = TRUE)))
  big <- layer_stack(10000, 4096, 19)
  invisible(gc())
  writeLines("5", "/proc/self/clear_refs")
  before <- status_kb("VmRSS")
  t_big <- tm(cb <- cka_layers(big))
  above <- (status_kb("VmHWM") - before) / 2^20
  t_syrk <- tm(g <- tcrossprod(big[[1]])) * 19
  rm(g)
  row("W2", "cka_layers linear, 19 layers x 10000 x 4096", t_big, NA, t_syrk,
      sprintf("(peak %.2f GiB above the layers; bound = 19 syrks)", above))
  rm(big, cb); invisible(gc())
}

# ---- W1: correlation RDM, 1000 stimuli x 4096 features --------------------------------
x <- matrix(rnorm(round(1000 * scale) * round(4096 * scale)), round(1000 * scale))
t_ours <- tm(r <- rdm(x), 3)
t_naive <- tm(rn <- 1 - cor(t(x)), 1)
t_bound <- tm(tcrossprod(x), 3)
stopifnot(max(abs(as.matrix(r) - rn)) < 1e-10)
row("W1", sprintf("rdm correlation, %d x %d", nrow(x), ncol(x)), t_ours, t_naive, t_bound, "(target <= 0.1 s)")

# ---- W5: Kendall tau-a between two 1000 x 1000 RDMs -------------------------------------
r2 <- rdm(x + matrix(rnorm(length(x), sd = 3), nrow(x)))
t_ours <- tm(tau <- compare_rdms(r, r2, "kendall_tau_a"), 3)
m <- ncol(r$dissimilarities)
sub <- 4095  # = 91 * 90 / 2, a valid RDM length
a <- r$dissimilarities[1, 1:sub]; b <- r2$dissimilarities[1, 1:sub]
t_sub <- tm(cor(a, b, method = "kendall"))
t_naive <- t_sub * (m / sub)^2  # R's cor(method = "kendall") is O(m^2)
stopifnot(abs(compare_rdms(a, b, "kendall_tau_a") - cor(a, b, method = "kendall")) < 1e-12)  # no ties: tau-a = tau-b
row("W5", sprintf("kendall tau-a, %d conditions (%d pairs)", nrow(x), m), t_ours, t_naive, NA,
    sprintf("(target <= 0.08 s; naive = R cor(kendall) on %d pairs x (m/%d)^2)", sub, sub))
rm(x, r, r2); invisible(gc())

# ---- W4: RSA permutation test, 92 conditions, 10,000 permutations -----------------------
z <- matrix(rnorm(92 * 20), 92)
model <- rdm(z)
neural <- rdm(z + matrix(rnorm(92 * 20, sd = 2), 92))
for (meth in c("spearman", "kendall_tau_a")) {
  t_ours <- tm(rsa(model, neural, method = meth, n_perm = 10000, boot = "none"), 3)
  dm <- as.matrix(model); dn <- neural$dissimilarities[1, ]
  ut <- upper.tri(dm)
  naive_perm <- function(k) for (i in seq_len(k)) { p <- sample(92); cor(as.matrix(dm[p, p])[t(ut)], dn, method = if (meth == "spearman") "spearman" else "kendall") }
  kn <- if (meth == "spearman") 1000 else 20
  t_naive <- tm(naive_perm(kn)) * 10000 / kn
  row("W4", sprintf("rsa %s, 92 conditions, 10,000 permutations", meth), t_ours, t_naive, NA,
      sprintf("(target %s; naive = R loop of sample + cor, %d perms extrapolated)",
              if (meth == "spearman") "<= 0.1 s" else "<= 1.5 s", kn))
}

# ---- W4b: bootstrap RSA, 100 resamples, 20 subjects, 3 models ----------------------------
subjects <- as_rdm(lapply(1:20, function(s) as.matrix(rdm(z + matrix(rnorm(92 * 20, sd = 2), 92)))))
models <- as_rdm(list(a = as.matrix(rdm(z)), b = as.matrix(rdm(z^2)), c = as.matrix(rdm(matrix(rnorm(92 * 20), 92)))))
for (meth in c("pearson", "spearman")) {
  t_ours <- tm(rsa(models, subjects, method = meth, n_perm = 0, n_boot = 100, boot = "both"), 3)
  naive_boot <- function() {
    D <- lapply(1:3, function(i) as.matrix(models, i)); N <- lapply(1:20, function(j) as.matrix(subjects, j))
    for (b in 1:100) {
      s <- sample(92, replace = TRUE); keep <- outer(s, s, "<") | outer(s, s, ">")
      up <- upper.tri(keep) & keep
      for (i in 1:3) for (j in sample(20, replace = TRUE)) cor(D[[i]][s, s][up], N[[j]][s, s][up], method = meth)
    }
  }
  t_naive <- tm(naive_boot())
  row("W4b", sprintf("rsa bootstrap (both), %s, 100 x 20 subjects x 3 models", meth), t_ours, t_naive, NA, "(target <= 0.3 s)")
}
