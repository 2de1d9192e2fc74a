# Circuits: attention patterns, entropy, head scores, composition, rollout/flow, graphs.

# Arrays (weights, patterns) of the shipped induction transformer, untrained and trained
# (data-raw/induction_transformer.py), for the tests that do not need LibTorch.
toy <- function() readRDS(system.file("extdata", "induction_circuits.rds", package = "tensorscope"))
ext_pt <- function(step) system.file("extdata", sprintf("induction_step%04d.pt", step), package = "tensorscope")

# Random causal row-stochastic patterns [sequence, layer, head, query, key].
random_patterns <- function(S, L, H, n, causal = TRUE, seed = 1) {
  set.seed(seed)
  a <- array(stats::rexp(S * L * H * n * n), c(S, L, H, n, n))
  if (causal) for (q in 1:n) for (k in 1:n) if (k > q) a[, , , q, k] <- 0
  a / array(apply(a, 1:4, sum), dim(a))
}

one_layer <- function(m) array(m, c(1, 1, nrow(m), ncol(m)))  # [layer, head, q, k]

# --- patterns -------------------------------------------------------------------------

test_that("attention_patterns accepts 4-D, 5-D, per-layer lists and ts_reps alike", {
  a <- random_patterns(3, 2, 2, 5)
  p5 <- attention_patterns(a)
  expect_s3_class(p5, "ts_attention")
  expect_equal(dim(p5$patterns), c(5, 5, 2, 3, 2))
  expect_equal(as.array(p5), a)
  # p5$patterns[q, k, h, s, l] == a[s, l, h, q, k]
  expect_equal(p5$patterns[4, 2, 2, 3, 1], a[3, 1, 2, 4, 2])
  p4 <- attention_patterns(a[2, , , , ])
  expect_equal(p4$patterns[, , , 1, ], p5$patterns[, , , 2, ])
  pl <- attention_patterns(list(l0 = a[, 1, , , ], l1 = a[, 2, , , ]))
  expect_equal(pl$patterns, p5$patterns)
  expect_equal(pl$layers, c("l0", "l1"))
  reps <- ts_reps(list(l0 = a[, 1, , , ], l1 = a[, 2, , , ]))
  expect_equal(attention_patterns(reps)$patterns, p5$patterns)
  tb <- tibble::as_tibble(p5)
  expect_named(tb, c("sequence", "layer", "head", "query", "key", "attention"))
  row <- tb[tb$sequence == 3 & tb$layer == 1 & tb$head == 2 & tb$query == 4 & tb$key == 2, ]
  expect_equal(row$attention, a[3, 1, 2, 4, 2])
})

test_that("rows that do not sum to 1 warn, or are normalised on request", {
  a <- random_patterns(1, 1, 2, 4) * 1.5
  expect_warning(p <- attention_patterns(a), class = "tensorscope_warning_not_normalised")
  expect_equal(as.array(p), a)
  pn <- attention_patterns(a, normalise = TRUE)
  expect_equal(apply(pn$patterns, c(1, 3, 4, 5), sum), array(1, c(4, 2, 1, 1)))
  expect_equal(as.array(pn), a / 1.5)
  zero <- a
  zero[1, 1, 1, 2, ] <- 0
  expect_error(attention_patterns(zero, normalise = TRUE), class = "tensorscope_error_argument")
  # rounding within tol is accepted silently
  expect_no_warning(attention_patterns(a / 1.5 * (1 + 1e-6)))
})

test_that("bad patterns get classed errors", {
  a <- random_patterns(1, 2, 2, 4)
  expect_error(attention_patterns(matrix(1, 2, 2)), class = "tensorscope_error_type")
  expect_error(attention_patterns(array(1, c(2, 2, 2))), class = "tensorscope_error_type")
  expect_error(attention_patterns("x"), class = "tensorscope_error_type")
  bad <- a
  bad[1, 1, 1, 2, 1] <- NA
  expect_error(attention_patterns(bad), class = "tensorscope_error_non_finite")
  bad[1, 1, 1, 2, 1] <- -0.1
  expect_error(attention_patterns(bad), class = "tensorscope_error_argument")
  expect_error(attention_patterns(list(a[, 1, , , ], a[, 2, , 1:3, 1:3])), class = "tensorscope_error_mismatch")
  expect_error(attention_patterns(array(0, c(1, 0, 2, 2))), class = "tensorscope_error_empty")
  expect_error(attention_patterns(a, tokens = matrix(1L, 2, 4)), class = "tensorscope_error_mismatch")
  expect_error(attention_patterns(a, tokens = matrix(-1, 1, 4)), class = "tensorscope_error_argument")
})

test_that("the model path needs LibTorch and says so", {
  skip_if(ts_torch_available(), "LibTorch is available: the model path is tested with the model runtime")
  fake <- structure(list(), class = "ts_model")
  expect_error(attention_patterns(fake, tokens = matrix(1L, 1, 4)), class = "tensorscope_error_torch_unavailable")
  expect_error(head_scores(fake), class = "tensorscope_error_torch_unavailable")
  expect_error(composition_scores(fake), class = "tensorscope_error_torch_unavailable")
})

# --- entropy --------------------------------------------------------------------------

test_that("uniform attention over k keys has entropy log(k); one-hot has 0", {
  n <- 7
  e <- attention_entropy(one_layer(matrix(1 / n, n, n)))
  expect_equal(e$mean, log(n))
  expect_equal(e$sd, 0)
  expect_equal(attention_entropy(one_layer(diag(n)))$mean, 0)
  causal <- outer(1:n, 1:n, ">=") / (1:n)
  eq <- attention_entropy(one_layer(causal), by = "query")
  expect_equal(eq$entropy, log(1:n))
  expect_s3_class(attention_entropy(one_layer(causal)), "ts_attention_entropy")
})

test_that("entropy equals a brute-force computation and its summaries", {
  a <- random_patterns(2, 2, 3, 6)
  eq <- attention_entropy(a, by = "query")
  brute <- apply(a, 1:4, function(r) -sum(ifelse(r > 0, r * log(r), 0)))  # [s, l, h, q]
  got <- eq$entropy[eq$sequence == 2 & eq$layer == 1 & eq$head == 3]
  expect_equal(got, brute[2, 1, 3, ])
  eh <- attention_entropy(a)
  expect_equal(eh$mean[eh$layer == 2 & eh$head == 1], mean(brute[, 2, 1, ]))
  expect_equal(eh$median[eh$layer == 2 & eh$head == 1], stats::median(brute[, 2, 1, ]))
  expect_error(attention_entropy(a, by = "layer"), class = "tensorscope_error_argument")
})

# --- head scores ----------------------------------------------------------------------

test_that("perfect previous-token, induction and duplicate-token patterns score 1", {
  T <- 5
  n <- 2 * T + 1  # BOS + two halves
  prev <- diag(n)[c(1, 1:(n - 1)), ]                     # row q attends to q - 1
  ind <- diag(n)
  dup <- diag(n)
  for (q in (1 + T):(2 * T)) {                           # 0-based queries of the second half
    ind[q + 1, ] <- 0; ind[q + 1, q - T + 2] <- 1        # key q - T + 1 (0-based)
    dup[q + 1, ] <- 0; dup[q + 1, q - T + 1] <- 1        # key q - T
  }
  a <- array(0, c(1, 3, n, n))
  a[1, 1, , ] <- prev; a[1, 2, , ] <- ind; a[1, 3, , ] <- dup
  s <- head_scores(a, seq_len = T, prefix = 1)
  expect_s3_class(s, "ts_head_scores")
  score <- function(h, t) s$score[s$head == h & s$type == t]
  expect_equal(score(1, "previous_token"), 1)
  expect_equal(score(2, "induction"), 1)
  expect_equal(score(3, "duplicate_token"), 1)
  expect_equal(score(1, "induction"), 0)
  expect_equal(score(2, "previous_token"), mean(ind[cbind(2:n, 1:(n - 1))]))
  # seq_len and prefix inferred from an odd length: T = 5, prefix 1
  expect_equal(head_scores(a)$score, s$score)
  expect_equal(induction_heads(s)$head, 2L)
})

test_that("head scores equal brute-force diagonal means on random patterns", {
  T <- 4
  a <- random_patterns(3, 2, 2, 2 * T)
  s <- head_scores(a, seq_len = T, prefix = 0)
  q <- (T:(2 * T - 1)) + 1                                # 1-based queries of the second half
  brute_ind <- mean(sapply(1:3, function(b) mean(a[b, 2, 1, , ][cbind(q, q - T + 1)])))
  brute_prev <- mean(sapply(1:3, function(b) mean(a[b, 1, 2, , ][cbind(2:(2 * T), 1:(2 * T - 1))])))
  expect_equal(s$score[s$layer == 2 & s$head == 1 & s$type == "induction"], brute_ind)
  expect_equal(s$score[s$layer == 1 & s$head == 2 & s$type == "previous_token"], brute_prev)
  expect_error(head_scores(a, seq_len = 5), class = "tensorscope_error_too_few")
  expect_error(head_scores(a, type = "copying"), class = "tensorscope_error_argument")
  expect_error(head_scores(a[, , , 1:3, ]), class = "tensorscope_error_mismatch")
  expect_error(induction_heads(s, threshold = 2), class = "tensorscope_error_argument")
})

test_that("repeated_tokens builds [BOS] + x + x and leaves the RNG alone", {
  set.seed(42)
  before <- .Random.seed
  tok <- repeated_tokens(3, 6, vocab_size = 10, bos = 0, seed = 7)
  expect_identical(.Random.seed, before)
  expect_equal(dim(tok), c(3, 13))
  expect_equal(tok[, 2:7], tok[, 8:13])
  expect_true(all(tok[, 1] == 0) && all(tok[, -1] %in% 1:9))
  expect_identical(tok, repeated_tokens(3, 6, vocab_size = 10, bos = 0, seed = 7))
  expect_equal(attr(tok, "prefix"), 1L)
})

# --- the shipped induction transformer as arrays (no LibTorch needed) --------------------

test_that("trained model (arrays): layer-2 induction heads, a layer-1 previous-token head, strong K-composition", {
  m <- toy()$trained
  s <- head_scores(attention_patterns(m$patterns, tokens = m$tokens), seq_len = m$seq_len, prefix = m$prefix)
  ind <- s[s$type == "induction", ]
  # every layer-2 head is an induction head, far above every layer-1 head
  expect_gt(min(ind$score[ind$layer == 2]), 0.5)
  expect_gt(min(ind$score[ind$layer == 2]), 10 * max(ind$score[ind$layer == 1]))
  ih <- induction_heads(s)
  expect_true(nrow(ih) >= 1 && all(ih$layer == 2))
  prev <- s[s$type == "previous_token", ]
  pth <- prev[prev$score > 0.4, ]
  expect_true(nrow(pth) >= 1 && all(pth$layer == 1))
  expect_gt(min(pth$score), 2 * max(prev$score[prev$score <= 0.4]))
  # K-composition from the previous-token heads into the induction heads
  cs <- composition_scores(m$W_Q, m$W_K, m$W_V, m$W_O, type = "k", n_baseline = 200)
  kc <- cs[cs$src_head %in% pth$head & cs$dst_head %in% ih$head, ]
  expect_gt(min(kc$ratio), 2)
  expect_gt(min(kc$score), kc$baseline[1] + 5 * kc$baseline_sd[1])
  # and it stands out against the other source heads
  others <- cs[!cs$src_head %in% pth$head, ]
  expect_gt(min(kc$score), max(others$score))
})

test_that("untrained model (arrays): no induction heads, no previous-token head, chance composition", {
  m <- toy()$untrained
  s <- head_scores(m$patterns, seq_len = m$seq_len, prefix = m$prefix)
  expect_equal(nrow(induction_heads(s)), 0)
  expect_lt(max(s$score), 0.3)
  cs <- composition_scores(m$W_Q, m$W_K, m$W_V, m$W_O, type = "k", n_baseline = 200)
  expect_lt(max(cs$ratio), 1.5)
})

# --- end to end: the shipped TorchScript checkpoints through the model runtime ----------
# Issue #6's acceptance. Training used periods 4, 5, 6, 8, 10 and 12 at random offsets;
# 7, 9 and 11 were held out, and here the repeat starts right after BOS.

model_circuit <- function(step, seq_len) {
  m <- ts_model(ext_pt(step))
  s <- head_scores(m, seq_len = seq_len, n_seqs = 20, bos = 0, seed = 11)
  cs <- composition_scores(m, type = "k", n_baseline = 200)
  list(scores = s, comp = cs, ind = s[s$type == "induction", ], prev = s[s$type == "previous_token", ])
}

test_that("trained checkpoint: induction heads in layer 2, a previous-token head in layer 1, K-composition", {
  skip_if_not(ts_torch_available())
  for (T in c(7, 9, 11)) {
    x <- model_circuit(1500, T)
    ind <- x$ind
    # every layer-2 head is an induction head; the margin: > 0.5 and > 10 x every layer-1 head
    expect_gt(min(ind$score[ind$layer == 2]), 0.5)
    expect_gt(min(ind$score[ind$layer == 2]), 10 * max(ind$score[ind$layer == 1]))
    ih <- induction_heads(x$scores)
    expect_true(nrow(ih) >= 1 && all(ih$layer == 2))
    # previous-token head(s): layer 1, above the 0.4 cut-off, > 5 x every other head
    pth <- x$prev[x$prev$score > 0.4, ]
    expect_true(nrow(pth) >= 1 && all(pth$layer == 1))
    expect_gt(min(pth$score), 5 * max(x$prev$score[x$prev$score <= 0.4]))
  }
  # K-composition (weights only, so independent of T) from the previous-token head(s)
  # into the induction heads: well above the random baseline and above every other source
  cs <- x$comp
  kc <- cs[cs$src_head %in% pth$head & cs$dst_head %in% ih$head, ]
  expect_gt(min(kc$ratio), 2)
  expect_gt(min((kc$score - kc$baseline) / kc$baseline_sd), 5)
  expect_gt(min(kc$score), max(cs$score[!cs$src_head %in% pth$head]))
})

test_that("untrained checkpoint: no induction head, no previous-token head, chance composition", {
  skip_if_not(ts_torch_available())
  x <- model_circuit(0, 9)
  expect_equal(nrow(induction_heads(x$scores)), 0)
  expect_lt(max(x$ind$score), 0.1)
  expect_lt(max(x$prev$score), 0.2)   # uniform causal attention gives about 0.12 here
  expect_lt(max(x$comp$ratio), 1.5)
  expect_lt(max((x$comp$score - x$comp$baseline) / x$comp$baseline_sd), 3)
})

test_that("the circuit forms during training: absent before step 300, present at 500", {
  skip_if_not(ts_torch_available())
  before <- model_circuit(300, 9)
  after <- model_circuit(500, 9)
  expect_equal(nrow(induction_heads(before$scores)), 0)
  expect_gt(nrow(induction_heads(after$scores)), 0)
  expect_lt(max(before$prev$score), 0.4)
  expect_gt(max(after$prev$score[after$prev$layer == 1]), 0.4)
})

test_that("model patterns equal the hook activations and the exported arrays", {
  skip_if_not(ts_torch_available())
  m <- ts_model(ext_pt(1500))
  tok <- repeated_tokens(3, 8, vocab_size = 64, bos = 0, seed = 2)
  p <- attention_patterns(m, tok)
  hooks <- c("blocks.0.attn.hook_pattern", "blocks.1.attn.hook_pattern")
  expect_identical(p$layers, hooks)
  a <- activations(m, tok, layers = hooks)
  for (l in 1:2) {
    expect_equal(as.array(p)[, l, , , ], array(a[[hooks[l]]], c(3, 4, 17, 17)), ignore_attr = TRUE)
  }
  expect_identical(attention_patterns(m, tok, layers = 2)$patterns, p$patterns[, , , , 2, drop = FALSE])
  # the arrays shipped for the tests without LibTorch come from the same checkpoints
  for (ck in c("untrained", "trained")) {
    arr <- toy()[[ck]]
    m <- ts_model(ext_pt(arr$step))
    expect_equal(as.array(attention_patterns(m, arr$tokens)), arr$patterns, tolerance = 1e-6, ignore_attr = TRUE)
    w <- model_parameters(m)
    expect_equal(arr$W_K[2, , , ], w$blocks.1.attn.W_K, tolerance = 1e-7, ignore_attr = TRUE)
  }
})

# --- composition ----------------------------------------------------------------------

naive_composition <- function(WQ, WK, WV, WO, s, t, type) {
  OV <- WV[s[1], s[2], , ] %*% WO[s[1], s[2], , ]
  M <- switch(type,
              q = WQ[t[1], t[2], , ] %*% t(WK[t[1], t[2], , ]),
              k = WK[t[1], t[2], , ] %*% t(WQ[t[1], t[2], , ]),
              v = WV[t[1], t[2], , ] %*% WO[t[1], t[2], , ])
  norm(OV %*% M, "F") / (norm(OV, "F") * norm(M, "F"))
}

random_weights <- function(L, H, d, hq, hv = hq, seed = 1) {
  set.seed(seed)
  list(W_Q = array(rnorm(L * H * d * hq), c(L, H, d, hq)), W_K = array(rnorm(L * H * d * hq), c(L, H, d, hq)),
       W_V = array(rnorm(L * H * d * hv), c(L, H, d, hv)), W_O = array(rnorm(L * H * hv * d), c(L, H, hv, d)))
}

test_that("composition scores equal the direct d_model x d_model computation", {
  w <- random_weights(3, 2, 10, 3, 2)
  cs <- composition_scores(w$W_Q, w$W_K, w$W_V, w$W_O, n_baseline = 0)
  expect_s3_class(cs, "ts_composition")
  expect_named(cs, c("src_layer", "src_head", "dst_layer", "dst_head", "type", "score", "baseline",
                     "baseline_sd", "ratio"))
  expect_equal(nrow(cs), 3 * 3 * 2 * 2)   # 3 layer pairs x 2 x 2 heads x 3 types
  expect_true(all(cs$src_layer < cs$dst_layer))
  brute <- mapply(function(a, b, c, d, ty) naive_composition(w$W_Q, w$W_K, w$W_V, w$W_O, c(a, b), c(c, d), as.character(ty)),
                  cs$src_layer, cs$src_head, cs$dst_layer, cs$dst_head, cs$type)
  expect_equal(cs$score, brute, tolerance = 1e-12)
  expect_true(all(is.na(cs$baseline)))
  # the column-vector convention is the per-head transpose
  tw <- lapply(w, aperm, c(1, 2, 4, 3))
  cc <- composition_scores(tw$W_Q, tw$W_K, tw$W_V, tw$W_O, vectors = "column", n_baseline = 0)
  expect_equal(cc$score, cs$score)
  # scale invariance
  cs2 <- composition_scores(3 * w$W_Q, w$W_K, w$W_V / 7, w$W_O, n_baseline = 0)
  expect_equal(cs2$score, cs$score)
})

test_that("orthogonal subspaces compose at 0, aligned rank-1 subspaces at 1", {
  d <- 8
  e <- diag(d)
  w <- list(W_Q = array(0, c(2, 1, d, 2)), W_K = array(0, c(2, 1, d, 2)), W_V = array(0, c(2, 1, d, 2)),
            W_O = array(0, c(2, 1, 2, d)))
  # source head (layer 1) writes e1 -> e1 only (OV = e1 e1^T)
  w$W_V[1, 1, , 1] <- e[, 1]; w$W_O[1, 1, 1, ] <- e[1, ]
  w$W_Q[1, 1, , 1] <- e[, 5]; w$W_K[1, 1, , 1] <- e[, 5]
  # destination head (layer 2): keys read e1 (aligned with the source's output), queries
  # read e2, values read e3 (orthogonal to it)
  w$W_K[2, 1, , 1] <- e[, 1]; w$W_Q[2, 1, , 1] <- e[, 2]
  w$W_V[2, 1, , 1] <- e[, 3]; w$W_O[2, 1, 1, ] <- e[4, ]
  cs <- composition_scores(w$W_Q, w$W_K, w$W_V, w$W_O, n_baseline = 0)
  expect_equal(cs$score[cs$type == "k"], 1)
  expect_equal(cs$score[cs$type == "q"], 0)
  expect_equal(cs$score[cs$type == "v"], 0)
  # identical rank-r projections compose at 1/sqrt(r)
  w$W_V[1, 1, , 2] <- e[, 2]; w$W_O[1, 1, 2, ] <- e[2, ]
  w$W_K[2, 1, , 2] <- e[, 2]; w$W_Q[2, 1, , 1:2] <- e[, 1:2]; w$W_K[2, 1, , 1:2] <- e[, 1:2]
  cs <- composition_scores(w$W_Q, w$W_K, w$W_V, w$W_O, type = "k", n_baseline = 0)
  expect_equal(cs$score, 1 / sqrt(2))
})

test_that("the random baseline matches E[score^2] = 1/d_model and is reproducible", {
  w <- random_weights(2, 2, 12, 3)
  cs <- composition_scores(w$W_Q, w$W_K, w$W_V, w$W_O, n_baseline = 2000, seed = 3)
  for (t in c("q", "k", "v")) {
    b <- cs[cs$type == t, ][1, ]
    ms <- b$baseline^2 + b$baseline_sd^2 * (2000 - 1) / 2000
    expect_equal(ms, 1 / 12, tolerance = 0.05)
  }
  again <- composition_scores(w$W_Q, w$W_K, w$W_V, w$W_O, n_baseline = 2000, seed = 3)
  expect_identical(again$baseline, cs$baseline)
  expect_equal(cs$ratio, cs$score / cs$baseline)
})

test_that("composition results do not depend on the number of threads", {
  w <- random_weights(3, 4, 16, 4)
  old <- ts_threads(1)
  on.exit(ts_threads(old))
  one <- composition_scores(w$W_Q, w$W_K, w$W_V, w$W_O, n_baseline = 20)
  ts_threads(2)
  two <- composition_scores(w$W_Q, w$W_K, w$W_V, w$W_O, n_baseline = 20)
  expect_identical(one, two)
})

test_that("bad weights get classed errors", {
  w <- random_weights(2, 2, 6, 3)
  expect_error(composition_scores(w$W_Q[1, , , ], w$W_K, w$W_V, w$W_O), class = "tensorscope_error_type")
  expect_error(composition_scores(w$W_Q, w$W_K[, , , 1:2], w$W_V, w$W_O), class = "tensorscope_error_mismatch")
  expect_error(composition_scores(w$W_Q, w$W_K, w$W_V, w$W_O[, , 1:2, ]), class = "tensorscope_error_mismatch")
  expect_error(composition_scores(w$W_Q, w$W_K, w$W_V, w$W_O[, 1, , , drop = FALSE]), class = "tensorscope_error_mismatch")
  expect_error(composition_scores(w$W_Q, w$W_K[, , 1:5, ], w$W_V, w$W_O), class = "tensorscope_error_mismatch")
  one <- lapply(w, function(x) x[1, , , , drop = FALSE])
  expect_error(composition_scores(one$W_Q, one$W_K, one$W_V, one$W_O), class = "tensorscope_error_too_few")
  bad <- w$W_V
  bad[1] <- Inf
  expect_error(composition_scores(w$W_Q, w$W_K, bad, w$W_O), class = "tensorscope_error_non_finite")
  expect_error(composition_scores(w$W_Q, w$W_K, w$W_V, w$W_O, type = "o"), class = "tensorscope_error_argument")
  expect_error(composition_scores(w$W_Q, w$W_K, w$W_V, w$W_O, vectors = "col"), class = "tensorscope_error_argument")
})

# --- rollout, flow and graphs ---------------------------------------------------------

test_that("rollout is the product of residual-augmented head-mean attention", {
  a <- random_patterns(2, 3, 2, 5)
  r <- attention_flow(a)
  expect_s3_class(r, "ts_attention_flow")
  aug <- function(s, l) {
    A <- apply(a[s, l, , , ], c(2, 3), mean)
    0.5 * A + 0.5 * diag(5)
  }
  brute <- aug(2, 3) %*% aug(2, 2) %*% aug(2, 1)
  got <- matrix(r$weight[r$sequence == 2], 5)
  expect_equal(got, brute)
  expect_equal(rowSums(got), rep(1, 5))
  r2 <- attention_flow(a, layer = 2, residual = FALSE, heads = "max")
  A <- function(l) { m <- apply(a[1, l, , , ], c(2, 3), max); m / rowSums(m) }
  expect_equal(matrix(r2$weight[r2$sequence == 1], 5), A(2) %*% A(1))
})

test_that("attention flow equals max-flow computed by igraph and rollout on one layer", {
  a <- random_patterns(1, 2, 2, 4, seed = 5)
  one <- a[, 1, , , , drop = FALSE]
  expect_equal(attention_flow(one, method = "flow")$weight, attention_flow(one)$weight)
  f <- attention_flow(a, method = "flow")
  expect_equal(as.vector(tapply(f$weight, f$query, sum)), rep(1, 4))
  skip_if_not_installed("igraph")
  aug <- function(l) 0.5 * apply(a[1, l, , , ], c(2, 3), mean) + 0.5 * diag(4)
  edges <- NULL
  for (l in 1:2) {
    A <- aug(l)
    k <- which(A > 0, arr.ind = TRUE)
    edges <- rbind(edges, data.frame(from = sprintf("%d:%d", l, k[, 1]), to = sprintf("%d:%d", l - 1, k[, 2]),
                                     capacity = A[k]))
  }
  g <- igraph::graph_from_data_frame(edges)
  raw <- outer(1:4, 1:4, Vectorize(function(i, j) igraph::max_flow(g, sprintf("2:%d", i), sprintf("0:%d", j))$value))
  expect_equal(matrix(f$weight, 4), raw / rowSums(raw), tolerance = 1e-10)
})

test_that("flow and entropy do not depend on the number of threads", {
  a <- random_patterns(2, 2, 3, 9)
  old <- ts_threads(1)
  on.exit(ts_threads(old))
  f1 <- attention_flow(a, method = "flow")
  e1 <- attention_entropy(a, by = "query")
  ts_threads(2)
  expect_identical(attention_flow(a, method = "flow"), f1)
  expect_identical(attention_entropy(a, by = "query"), e1)
})

test_that("attention graphs give edge lists that become igraph graphs", {
  n <- 4
  prev <- diag(n)[c(1, 1:(n - 1)), ]
  a <- array(0, c(2, 1, n, n)); a[1, 1, , ] <- prev; a[2, 1, , ] <- diag(n)
  g <- attention_graph(a, threshold = 0.5)
  expect_s3_class(g, "ts_attention_graph")
  expect_equal(nrow(g), 2 * n)
  expect_true(all(c("L0:1", "L1:2") %in% c(g$from, g$to)))
  expect_equal(g$to[g$from == "L0:2" & g$layer == 1], "L1:3")
  fl <- attention_graph(attention_flow(a, residual = FALSE), threshold = 0.5)
  expect_equal(sort(fl$from[fl$to == "out:3"]), "in:2")
  expect_error(attention_graph(a, sequence = 3), class = "tensorscope_error_argument")
  expect_error(attention_flow(a, method = "max"), class = "tensorscope_error_argument")
  expect_error(attention_flow(a, layer = 3), class = "tensorscope_error_argument")
  expect_error(attention_flow(array(1 / 3, c(1, 1, 2, 3))), class = "tensorscope_error_mismatch")
  skip_if_not_installed("igraph")
  ig <- as_igraph(g)
  expect_equal(igraph::vcount(ig), 3 * n)
  expect_equal(igraph::ecount(ig), 2 * n)
  expect_equal(unname(igraph::degree(ig, "L1:2")), 2)
  w <- random_weights(2, 2, 6, 3)
  cg <- as_igraph(composition_scores(w$W_Q, w$W_K, w$W_V, w$W_O, n_baseline = 0), type = "k")
  expect_equal(igraph::ecount(cg), 4)
  expect_equal(igraph::vcount(cg), 4)
})

# --- plots ----------------------------------------------------------------------------

test_that("autoplot methods build", {
  m <- toy()$trained
  pat <- attention_patterns(m$patterns, tokens = m$tokens)
  expect_s3_class(autoplot(head_scores(pat)), "ggplot")
  expect_s3_class(autoplot(attention_entropy(pat)), "ggplot")
  expect_s3_class(autoplot(pat, layer = 2, head = 1), "ggplot")
  expect_error(autoplot(pat, layer = 3), class = "tensorscope_error_argument")
  cs <- composition_scores(m$W_Q, m$W_K, m$W_V, m$W_O, n_baseline = 10)
  p <- autoplot(cs)
  expect_s3_class(p, "ggplot")
  expect_silent(ggplot2::ggplot_build(p))
})

test_that("head_scores on a model fits the default sequence length to the model's context", {
  skip_if_not(ts_torch_available())
  m <- ts_model(system.file("extdata", "induction_step1500.pt", package = "tensorscope"))
  hs <- head_scores(m, "induction", n_seqs = 4)
  expect_equal(nrow(hs), 8L)
  expect_gt(max(hs$score[hs$layer == 2]), 0.5)
  expect_error(head_scores(m, "induction", seq_len = 30), class = "tensorscope_error_argument")
})
