# Benchmark: composition scores (Q, K, V) for every pair of heads of a 12-layer x
# 12-head transformer with d_model 768 and d_head 64 (GPT-2 small shapes, random
# weights): 66 layer pairs x 144 head pairs x 3 types = 28,512 scores.
#   tensorscope: low-rank route, one GEMM of stacked d_model x d_head factors per
#     (layer pair, type), never a d_model x d_model matrix per pair.
#   naive R: form OV and QK (d_model x d_model) per head once, then one
#     d_model^3 product per pair (TransformerLens's direct formula); timed on a random
#     subset of pairs and extrapolated.
#   limit: the GEMMs the low-rank route needs, timed with R's %*% (same BLAS).
# Also: attention entropy, head scores and rollout/flow on a batch of patterns.
# Run: Rscript bench/circuits.R  (with tensorscope installed; R_LIBS for a local library)
suppressPackageStartupMessages(library(tensorscope))
ts_threads(parallel::detectCores())  # all cores, as the peers' BLAS uses them
L <- 12; H <- 12; d <- 768; h <- 64
cat(sprintf("composition scores: %d layers x %d heads, d_model %d, d_head %d; threads %d; BLAS %s\n",
            L, H, d, h, ts_threads(), ts_build_info()$blas))
cat("load:", sub(".*load average: ", "", system("uptime", intern = TRUE)), "\n")
set.seed(1)
sc <- 1 / sqrt(d)
W_Q <- array(rnorm(L * H * d * h, sd = sc), c(L, H, d, h))
W_K <- array(rnorm(L * H * d * h, sd = sc), c(L, H, d, h))
W_V <- array(rnorm(L * H * d * h, sd = sc), c(L, H, d, h))
W_O <- array(rnorm(L * H * h * d, sd = sc), c(L, H, h, d))
best <- function(expr, reps = 3) {
  e <- substitute(expr)
  min(vapply(seq_len(reps), function(i) system.time(eval(e, parent.frame(3)))[["elapsed"]], 0))
}
t_ts <- best(cs <- composition_scores(W_Q, W_K, W_V, W_O, n_baseline = 0))
t_base <- best(b <- composition_scores(W_Q[1:2, 1, , , drop = FALSE], W_K[1:2, 1, , , drop = FALSE],
                                      W_V[1:2, 1, , , drop = FALSE], W_O[1:2, 1, , , drop = FALSE],
                                      n_baseline = 100), reps = 1)
n_scores <- nrow(cs)

# naive: per-head d x d matrices, then a d^3 product per pair
t_prep <- system.time({
  OV <- QK <- vector("list", L * H)
  for (l in 1:L) for (i in 1:H) {
    g <- (l - 1) * H + i
    OV[[g]] <- W_V[l, i, , ] %*% W_O[l, i, , ]
    QK[[g]] <- W_Q[l, i, , ] %*% t(W_K[l, i, , ])
  }
})[["elapsed"]]
set.seed(2)
sub <- cs[sample.int(n_scores, 60), ]
t_sub <- system.time({
  naive <- vapply(seq_len(nrow(sub)), function(r) {
    s <- (sub$src_layer[r] - 1) * H + sub$src_head[r]
    t <- (sub$dst_layer[r] - 1) * H + sub$dst_head[r]
    M <- switch(as.character(sub$type[r]), q = QK[[t]], k = t(QK[[t]]), v = OV[[t]])
    norm(OV[[s]] %*% M, "F") / (norm(OV[[s]], "F") * norm(M, "F"))
  }, 0)
})[["elapsed"]]
t_naive <- t_prep + t_sub / nrow(sub) * n_scores
stopifnot(max(abs(naive - sub$score)) < 1e-10)

# limit: the 66 x 3 GEMMs of (H h) x d by d x (H h)
A <- matrix(rnorm(d * H * h), d); B <- matrix(rnorm(d * H * h), d)
t_gemm <- best(crossprod(A, B), reps = 5) * choose(L, 2) * 3
gflop <- 2 * d * (H * h)^2 * choose(L, 2) * 3 / 1e9

cat(sprintf("  tensorscope  %8.3f s  (%d scores; %.0f GFLOP in GEMMs, %.1f GF/s)\n", t_ts, n_scores, gflop, gflop / t_ts))
cat(sprintf("  naive R      %8.1f s  (extrapolated from %d pairs + %.1f s forming OV/QK; ratio %.0fx)\n",
            t_naive, nrow(sub), t_prep, t_naive / t_ts))
cat(sprintf("  GEMM limit   %8.3f s  (ratio to limit %.2fx)\n", t_gemm, t_ts / t_gemm))
cat(sprintf("  random baseline, 100 draws of d_model %d x d_head %d: %.3f s (mean %.4f, 1/sqrt(d) = %.4f)\n",
            d, h, t_base, b$baseline[1], 1 / sqrt(d)))

# patterns: 20 sequences of 2 x 50 + 1 tokens, 12 layers x 12 heads
S <- 20; n <- 101
a <- array(rexp(S * L * H * n * n), c(S, L, H, n, n))
a <- a * array(rep(outer(1:n, 1:n, ">="), each = S * L * H), dim(a))
a <- a / array(apply(a, 1:4, sum), dim(a))
t_pat <- best(p <- attention_patterns(a), reps = 1)
t_ent <- best(attention_entropy(p))
t_hs <- best(head_scores(p, seq_len = 50, prefix = 1))
t_roll <- best(attention_flow(p))
t_flow <- best(attention_flow(p[["patterns"]] |> (\(x) attention_patterns(aperm(x[, , , 1, , drop = FALSE], c(4, 5, 3, 1, 2))))(),
                              method = "flow"), reps = 1)
t_ent_r <- best(apply(a, 1:4, function(r) -sum(r[r > 0] * log(r[r > 0]))), reps = 1)
cat(sprintf("patterns: %d sequences x %d layers x %d heads x %d x %d\n", S, L, H, n, n))
cat(sprintf("  attention_patterns %.3f s; entropy %.3f s (naive R apply %.2f s, ratio %.0fx); head scores %.3f s\n",
            t_pat, t_ent, t_ent_r, t_ent_r / t_ent, t_hs))
cat(sprintf("  rollout (all sequences) %.3f s; flow (one sequence, %d max-flows) %.3f s\n", t_roll, n * n, t_flow))
