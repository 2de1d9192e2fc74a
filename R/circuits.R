# Circuit analysis for transformers (the spec's question 5) on attention patterns (the
# ts_attention class, R/attention.R): their entropy, previous-token / induction /
# duplicate-token head scores, Q/K/V-composition scores with a random baseline,
# attention rollout and flow, and attention graphs.
# Core: inst/include/tensorscope/circuits.hpp. Plots: R/plot-circuits.R. Model
# introspection (pattern hooks, stacked weights, context and vocabulary size): R/models.R.

# ---------------------------------------------------------------------------------
# Entropy

#' Attention entropy per head
#'
#' The entropy of each query's attention distribution over keys,
#' \eqn{H_q = -\sum_k a_{qk} \log a_{qk}} (natural log, \eqn{0 \log 0 = 0}),
#' summarised per layer x head over all queries of all sequences. Uniform attention
#' over k keys has entropy log(k); attention on a single key has entropy 0. Under a
#' causal mask query q (1-based) can attend to q keys, so early queries have low
#' entropy whatever the head does: compare heads on the same positions.
#'
#' @param patterns A [attention_patterns()] object or anything it accepts.
#' @param by `"head"` (summary per layer x head) or `"query"` (one row per query).
#' @return `by = "head"`: a tibble of class `ts_attention_entropy` with `layer`,
#'   `head`, `mean`, `sd`, `min`, `q25`, `median`, `q75`, `max` (over queries and
#'   sequences); `autoplot()` draws a layer x head heatmap of the mean. `by = "query"`:
#'   a tibble with `sequence`, `layer`, `head`, `query`, `entropy`.
#' @export
#' @examples
#' n <- 8
#' uniform <- matrix(1 / n, n, n)
#' onehot <- diag(n)
#' a <- array(0, c(1, 2, n, n)); a[1, 1, , ] <- uniform; a[1, 2, , ] <- onehot
#' attention_entropy(a)     # head 1: log(8) = 2.08; head 2: 0
attention_entropy <- function(patterns, by = c("head", "query")) {
  by <- check_choice(by, c("head", "query"))
  p <- as_attention(patterns)
  d <- pattern_dims(p)
  e <- cpp_attention_entropy(p$patterns, d$nq, d$nk, threads_now())  # nq x (H S L)
  dim(e) <- c(d$nq, d$heads, d$seqs, d$layers)
  if (by == "query") {
    g <- expand.grid(query = seq_len(d$nq), head = seq_len(d$heads), sequence = seq_len(d$seqs),
                     layer = seq_len(d$layers), KEEP.OUT.ATTRS = FALSE)
    return(tibble::tibble(sequence = g$sequence, layer = g$layer, head = g$head, query = g$query,
                          entropy = as.vector(e)))
  }
  per_head <- aperm(e, c(1, 3, 2, 4))  # [query, sequence, head, layer]
  dim(per_head) <- c(d$nq * d$seqs, d$heads * d$layers)
  q <- apply(per_head, 2, stats::quantile, probs = c(0, 0.25, 0.5, 0.75, 1), names = FALSE)
  out <- tibble::tibble(layer = rep(seq_len(d$layers), each = d$heads), head = rep(seq_len(d$heads), d$layers),
                        mean = colMeans(per_head),
                        sd = if (nrow(per_head) > 1) apply(per_head, 2, stats::sd) else NA_real_,
                        min = q[1, ], q25 = q[2, ], median = q[3, ], q75 = q[4, ], max = q[5, ])
  class(out) <- c("ts_attention_entropy", class(out))
  out
}

# ---------------------------------------------------------------------------------
# Head scores

#' Previous-token, induction and duplicate-token scores of attention heads
#'
#' Scores each head by where it attends on sequences made of `prefix` tokens (e.g. a
#' BOS token), `seq_len` random tokens, and the same `seq_len` tokens repeated
#' (TransformerLens's induction demo; Olsson et al. 2022). With positions 0-based and
#' A the query x key pattern:
#' * `previous_token`: mean of \eqn{A[q, q-1]} over all queries q >= 1;
#' * `induction`: mean of \eqn{A[q, q-T+1]} (the token after the previous occurrence of
#'   the current token) over the queries of the repeated half, q in
#'   \[prefix + T, prefix + 2T);
#' * `duplicate_token`: mean of \eqn{A[q, q-T]} (the previous occurrence itself) over
#'   the same queries;
#' each averaged over sequences. A head that always attends to the designated key
#' scores 1; uniform causal attention scores about 1/q.
#'
#' Given a model, `n_seqs` sequences of random tokens are generated with
#' [repeated_tokens()] (seeded) and run through it. Given patterns, `seq_len` and
#' `prefix` come from the arguments, else from the pattern object, else
#' `seq_len = floor(n / 2)` and `prefix = n - 2 seq_len` for n positions.
#'
#' `induction_heads()` keeps the heads whose induction score is at least `threshold`.
#' The default 0.4 is the cut-off used in ARENA's transformer-interpretability course;
#' it is many times the score of heads that do not attend to the induction target
#' (uniform causal attention gives about 1/(prefix + 1.5 T) on these positions).
#'
#' @param x A `ts_model`, a [attention_patterns()] object or anything it accepts.
#' @param type One or more of `"previous_token"`, `"induction"`, `"duplicate_token"`.
#' @param seq_len Length T of the random half of each sequence. For a model, the
#'   default 50 is reduced to fit the model's context (learned positional embedding)
#'   when it does not; an explicit value that does not fit is an error.
#' @param prefix Number of tokens before the first half (1 with a BOS token).
#' @param n_seqs,seed,vocab_size,bos For a model: number of sequences, seed, vocabulary
#'   size (`NULL`: from the model's embedding) and BOS token id (`NULL`: none).
#' @param ... Passed on to methods.
#' @return A tibble of class `ts_head_scores` with `layer`, `head`, `type` and `score`;
#'   `autoplot()` draws layer x head heatmaps. `induction_heads()`: the rows with
#'   `type == "induction"` and `score >= threshold`, highest first.
#' @references Elhage et al. (2021). A mathematical framework for transformer circuits.
#'   Olsson et al. (2022). In-context learning and induction heads.
#' @export
#' @examples
#' toy <- readRDS(system.file("extdata", "induction_circuits.rds", package = "tensorscope"))
#' pat <- attention_patterns(toy$trained$patterns, seq_len = 11, prefix = 1)
#' head_scores(pat)
#' induction_heads(pat)
#' # the shipped TorchScript checkpoint, on a period it was not trained on
#' if (ts_torch_available()) {
#'   m <- ts_model(system.file("extdata", "induction_step1500.pt", package = "tensorscope"))
#'   s <- head_scores(m, seq_len = 9, bos = 0)
#'   s[s$score > 0.4, ]
#' }
head_scores <- function(x, ...) UseMethod("head_scores")

head_types <- c("previous_token", "induction", "duplicate_token")

#' @rdname head_scores
#' @export
head_scores.default <- function(x, type = c("previous_token", "induction", "duplicate_token"),
                                seq_len = NULL, prefix = NULL, ...) {
  call <- rlang::current_env()
  type <- check_types(type, head_types, call = call)
  p <- as_attention(x)
  d <- pattern_dims(p)
  if (d$nq != d$nk) {
    ts_abort("Head scores need square patterns in {.arg x} (every query position is also a key); got {d$nq} queries x {d$nk} keys.",
             "mismatch", call = call)
  }
  n <- d$nq
  seq_len <- if (!is.null(seq_len)) check_count(seq_len, min = 1, call = call) else p$seq_len %||% (n %/% 2L)
  prefix <- if (!is.null(prefix)) check_count(prefix, min = 0, call = call) else p$prefix %||% (n - 2L * seq_len)
  if (any(c("induction", "duplicate_token") %in% type) && (seq_len < 2 || prefix < 0 || prefix + 2L * seq_len > n)) {
    ts_abort("Sequences of {n} positions cannot hold a prefix of {prefix} and two halves of {.arg seq_len} = {seq_len} (needs seq_len >= 2).",
             "too_few", call = call)
  }
  rows <- lapply(type, function(t) {
    spec <- switch(t,
                   previous_token = c(-1L, 1L, n),
                   induction = c(1L - seq_len, prefix + seq_len, prefix + 2L * seq_len),
                   duplicate_token = c(-seq_len, prefix + seq_len, prefix + 2L * seq_len))
    s <- cpp_diagonal_mean(p$patterns, n, n, spec[1], spec[2], spec[3], threads_now())
    dim(s) <- c(d$heads, d$seqs, d$layers)
    s <- apply(s, c(1, 3), mean)  # [head, layer]
    tibble::tibble(layer = rep(seq_len(d$layers), each = d$heads), head = rep(seq_len(d$heads), d$layers),
                   type = t, score = as.vector(s))
  })
  out <- do.call(rbind, rows)
  out$type <- factor(out$type, levels = head_types)
  structure(out, class = c("ts_head_scores", class(out)),
            settings = list(seq_len = seq_len, prefix = prefix, n_seqs = d$seqs, layers = p$layers))
}

#' @rdname head_scores
#' @export
head_scores.ts_model <- function(x, type = c("previous_token", "induction", "duplicate_token"),
                                 seq_len = 50, n_seqs = 20, seed = 1, vocab_size = NULL, bos = NULL, ...) {
  torch_backend()
  vocab_size <- vocab_size %||% model_vocab_size(x)
  n_ctx <- model_context_size(x)
  n_bos <- as.integer(!is.null(bos))
  if (!is.na(n_ctx) && 2 * seq_len + n_bos > n_ctx) {
    fit <- (n_ctx - n_bos) %/% 2
    if (!missing(seq_len)) {
      ts_abort("{.arg seq_len} = {seq_len} needs {2 * seq_len + n_bos} positions but the model's context is {n_ctx}; use at most {fit}.",
               "argument")
    }
    seq_len <- fit  # the default (50) does not fit this model's context
  }
  tokens <- repeated_tokens(n_seqs, seq_len, vocab_size, bos = bos, seed = seed)
  p <- attention_patterns(x, tokens, ...)
  head_scores.default(p, type = type, seq_len = seq_len, prefix = attr(tokens, "prefix"))
}

#' @rdname head_scores
#' @param threshold Minimum induction score.
#' @export
induction_heads <- function(x, threshold = 0.4, ...) {
  threshold <- check_number(threshold, lower = 0, upper = 1)
  s <- if (inherits(x, "ts_head_scores")) x else head_scores(x, type = "induction", ...)
  out <- s[s$type == "induction" & s$score >= threshold, , drop = FALSE]
  out[order(-out$score), , drop = FALSE]
}

#' Repeated random token sequences
#'
#' `n_seqs` sequences of `seq_len` tokens drawn uniformly (with replacement) from
#' `0, ..., vocab_size - 1` (the BOS id excluded), each followed by itself, with an
#' optional BOS token in front: the input of the induction-head test.
#'
#' @param n_seqs Number of sequences.
#' @param seq_len Length of the random half.
#' @param vocab_size Vocabulary size.
#' @param bos `NULL` or the BOS token id to put first.
#' @param seed Seed (the user's RNG state is restored afterwards).
#' @return An integer matrix, `n_seqs` x `(bos present) + 2 seq_len`, of 0-based token
#'   ids with attributes `seq_len` and `prefix`.
#' @export
#' @examples
#' repeated_tokens(2, 5, vocab_size = 100, bos = 0)
repeated_tokens <- function(n_seqs, seq_len, vocab_size, bos = NULL, seed = 1) {
  n_seqs <- check_count(n_seqs, min = 1)
  seq_len <- check_count(seq_len, min = 1)
  vocab_size <- check_count(vocab_size, min = 2)
  seed <- check_seed(seed)
  if (!is.null(bos)) bos <- check_count(bos, min = 0)
  pool <- setdiff(seq_len(vocab_size) - 1L, bos)
  half <- with_seed(seed, matrix(pool[sample.int(length(pool), n_seqs * seq_len, replace = TRUE)], n_seqs))
  out <- cbind(if (!is.null(bos)) matrix(bos, n_seqs, 1L), half, half)
  storage.mode(out) <- "integer"
  structure(out, seq_len = seq_len, prefix = as.integer(!is.null(bos)))
}

check_types <- function(type, choices, call = rlang::caller_env(), arg = rlang::caller_arg(type)) {
  force(arg)
  if (!is.character(type) || length(type) < 1 || anyNA(type) || !all(type %in% choices)) {
    ts_abort("{.arg {arg}} must be one or more of {.val {choices}}, not {describe(type)}.", "argument", call = call)
  }
  unique(type)
}

# ---------------------------------------------------------------------------------
# Composition scores

#' Q-, K- and V-composition scores between attention heads
#'
#' Elhage et al. (2021): how much a later (destination) head reads, through its
#' queries, keys or values, the subspace an earlier (source) head writes to,
#' \deqn{C(s, t) = \|OV_s M_t\|_F / (\|OV_s\|_F \|M_t\|_F),}
#' with \eqn{M_t = QK_t} (Q-composition), \eqn{QK_t^T} (K-composition) or
#' \eqn{OV_t} (V-composition), for every source head in layer l and destination head in
#' layer m > l. This is the spec's `qkov_pairing`. Scores lie in \[0, 1\]: 0 when the
#' source writes to a subspace the destination does not read (orthogonal subspaces),
#' 1 when both are rank 1 and aligned; two identical rank-r projections score
#' \eqn{1/\sqrt{r}}.
#'
#' **Convention.** Row vectors, as TransformerLens: the residual stream x is a row,
#' a head computes q = x W_Q, k = x W_K, v = x W_V and writes z W_O, so
#' \eqn{QK = W_Q W_K^T}, \eqn{OV = W_V W_O} (d_model x d_model) and the attention
#' score is \eqn{x_q QK x_k^T}. Shapes: `W_Q`, `W_K`, `W_V` are
#' `[layer, head, d_model, d_head]` and `W_O` is `[layer, head, d_head, d_model]`.
#' With `vectors = "column"` (PyTorch `nn.Linear`, q = W_Q x) give `W_Q`, `W_K`, `W_V`
#' as `[layer, head, d_head, d_model]` and `W_O` as `[layer, head, d_model, d_head]`;
#' they are transposed per head. Biases, LayerNorm scales and MLPs are not included.
#'
#' **Computation.** No d_model x d_model matrix is formed: since
#' \eqn{\|A B^T\|_F = \|A (B^T B)^{1/2}\|_F}, each head is reduced to d_model x d_head
#' factors (e.g. \eqn{P_s = W_{O,s}^T (W_{V,s}^T W_{V,s})^{1/2}},
#' \eqn{R_t = W_{Q,t} (W_{K,t}^T W_{K,t})^{1/2}} for Q-composition) with
#' \eqn{\|OV_s QK_t\|_F = \|P_s^T R_t\|_F}, and all head pairs of two layers come from
#' one matrix product (cost d_model (heads x d_head)^2 per pair of layers, against
#' d_model^3 per pair of heads for the direct product).
#'
#' **Baseline.** Scores are never 0 by chance. `baseline` is the mean score of
#' independent heads with i.i.d. Gaussian weights of the same shapes (Monte-Carlo,
#' `n_baseline` draws, seeded); for such rotation-invariant matrices
#' \eqn{E[C^2] = 1/d_{model}} exactly, so the baseline is close to
#' \eqn{1/\sqrt{d_{model}}}. `ratio = score / baseline`.
#'
#' @param W_Q,W_K,W_V,W_O Weight arrays (see Convention), or a `ts_model` as `W_Q`
#'   whose parameters are read by name (see `names`).
#' @param type One or more of `"q"`, `"k"`, `"v"`.
#' @param vectors `"row"` (TransformerLens) or `"column"` convention of the weights.
#' @param n_baseline Monte-Carlo draws for the random baseline (0: none).
#' @param seed Seed of the baseline.
#' @param names For a model: parameter names with `{layer}` standing for the 0-based
#'   block number; each parameter is `[head, ...]` as in TransformerLens's state dict.
#' @param ... Passed on to methods.
#' @return A tibble of class `ts_composition` with `src_layer`, `src_head`,
#'   `dst_layer`, `dst_head` (1-based), `type`, `score`, `baseline`, `baseline_sd` and
#'   `ratio` (`score` is NA, with a warning of class `tensorscope_warning_degenerate`, for
#'   a pair involving a head whose weights are all zero). `autoplot()` draws a source x
#'   destination heatmap; `as_igraph()` gives
#'   the weighted head graph.
#' @references Elhage et al. (2021). A mathematical framework for transformer circuits.
#'   Transformer Circuits Thread.
#' @export
#' @examples
#' toy <- readRDS(system.file("extdata", "induction_circuits.rds", package = "tensorscope"))
#' w <- toy$trained
#' cs <- composition_scores(w$W_Q, w$W_K, w$W_V, w$W_O, type = "k")
#' cs[order(-cs$score), ][1:5, ]
composition_scores <- function(W_Q, ...) UseMethod("composition_scores")

#' @rdname composition_scores
#' @export
composition_scores.default <- function(W_Q, W_K, W_V, W_O, type = c("q", "k", "v"),
                                       vectors = c("row", "column"), n_baseline = 100, seed = 1, ...) {
  call <- rlang::current_env()
  type <- check_types(type, c("q", "k", "v"), call = call)
  vectors <- check_choice(vectors, c("row", "column"), call = call)
  n_baseline <- check_count(n_baseline, min = 0, call = call)
  seed <- check_seed(seed, call = call)
  w <- list(W_Q = W_Q, W_K = W_K, W_V = W_V, W_O = W_O)
  for (nm in names(w)) {
    x <- w[[nm]]
    if (!is.numeric(x) || length(dim(x)) != 4) {
      ts_abort("{.arg {nm}} must be a numeric array [layer, head, ., .] of rank 4, not {describe(x)}.",
               "type", call = call)
    }
    if (any(dim(x) == 0)) ts_abort("{.arg {nm}} is empty ({paste(dim(x), collapse = ' x ')}).", "empty", call = call)
    check_finite(x, nm, call = call)
    if (vectors == "column") w[[nm]] <- aperm(x, c(1, 2, 4, 3))
  }
  dims <- lapply(w, dim)
  shape <- function(nm) paste(dims[[nm]], collapse = " x ")
  lh <- vapply(dims, function(d) paste(d[1:2], collapse = " x "), "")
  if (length(unique(lh)) > 1) {
    ts_abort(c("{.arg W_Q}, {.arg W_K}, {.arg W_V} and {.arg W_O} must have the same layers and heads.",
               x = "[layer x head]: {paste(names(lh), lh, sep = ' ', collapse = ', ')}."), "mismatch", call = call)
  }
  d_model <- dims$W_Q[3]
  if (dims$W_K[3] != d_model || dims$W_V[3] != d_model || dims$W_O[4] != d_model) {
    ts_abort(c("{.arg W_Q}, {.arg W_K}, {.arg W_V} and {.arg W_O} must share d_model ({vectors}-vector convention, see ?composition_scores).",
               x = "W_Q {shape('W_Q')}, W_K {shape('W_K')}, W_V {shape('W_V')}, W_O {shape('W_O')}."),
             "mismatch", call = call)
  }
  if (dims$W_K[4] != dims$W_Q[4] || dims$W_O[3] != dims$W_V[4]) {
    ts_abort(c("Mismatched head dimensions: {.arg W_Q} and {.arg W_K} must share d_head, and so must {.arg W_V} and {.arg W_O}.",
               x = "W_Q {shape('W_Q')}, W_K {shape('W_K')}, W_V {shape('W_V')}, W_O {shape('W_O')}."),
             "mismatch", call = call)
  }
  L <- dims$W_Q[1]
  H <- dims$W_Q[2]
  if (L < 2) ts_abort("Composition needs at least 2 layers; {.arg W_Q}, {.arg W_K}, {.arg W_V} and {.arg W_O} have {L}.", "too_few", call = call)
  stack <- function(x, perm) {
    a <- aperm(x, perm)
    storage.mode(a) <- "double"
    dim(a) <- c(d_model, length(a) / d_model)
    a
  }
  Q <- stack(w$W_Q, c(3, 4, 2, 1))
  K <- stack(w$W_K, c(3, 4, 2, 1))
  V <- stack(w$W_V, c(3, 4, 2, 1))
  Ot <- stack(w$W_O, c(4, 3, 2, 1))
  s <- cpp_composition_scores(Q, K, V, Ot, L, H, type, threads_now())
  pairs <- which(upper.tri(diag(L)), arr.ind = TRUE)
  pairs <- pairs[order(pairs[, 1], pairs[, 2]), , drop = FALSE]
  idx <- expand.grid(dst_head = seq_len(H), src_head = seq_len(H), pair = seq_len(nrow(pairs)),
                     KEEP.OUT.ATTRS = FALSE)
  base <- if (n_baseline > 0) {
    cpp_composition_baseline(d_model, dims$W_Q[4], dims$W_V[4], type, n_baseline, seed, threads_now())
  } else matrix(NA_real_, 1, length(type))
  out <- do.call(rbind, lapply(seq_along(type), function(i) {
    tibble::tibble(src_layer = pairs[idx$pair, 1], src_head = idx$src_head,
                   dst_layer = pairs[idx$pair, 2], dst_head = idx$dst_head,
                   type = type[i], score = s[, i], baseline = mean(base[, i]),
                   baseline_sd = if (nrow(base) > 1) stats::sd(base[, i]) else NA_real_)
  }))
  if (anyNA(out$score)) {
    # a head with all-zero weights has no composition (0 / 0): NA, with a warning
    z <- unique(out[is.na(out$score), c("src_layer", "src_head")])
    cli::cli_warn("{nrow(z)} head pair{?s} involve{?s/} a head with all-zero weights (e.g. layer {z$src_layer[1]}, head {z$src_head[1]}): the composition score is NA there.",
                  class = c("tensorscope_warning_degenerate", "tensorscope_warning"))
    out$score[is.na(out$score)] <- NA_real_
  }
  out$ratio <- out$score / out$baseline
  out$type <- factor(out$type, levels = c("q", "k", "v"))
  structure(out, class = c("ts_composition", class(out)),
            settings = list(d_model = d_model, d_head_qk = dims$W_Q[4], d_head_ov = dims$W_V[4],
                            n_baseline = n_baseline, seed = seed, vectors = vectors))
}

#' @rdname composition_scores
#' @export
composition_scores.ts_model <- function(W_Q, type = c("q", "k", "v"), n_baseline = 100, seed = 1,
                                        names = c(W_Q = "blocks.{layer}.attn.W_Q", W_K = "blocks.{layer}.attn.W_K",
                                                  W_V = "blocks.{layer}.attn.W_V", W_O = "blocks.{layer}.attn.W_O"),
                                        ...) {
  torch_backend()
  w <- model_weights(W_Q, names)
  composition_scores.default(w$W_Q, w$W_K, w$W_V, w$W_O, type = type, n_baseline = n_baseline, seed = seed, ...)
}

# ---------------------------------------------------------------------------------
# Rollout, flow and graphs

#' Attention rollout and attention flow
#'
#' Abnar & Zuidema (2020): how much each input token contributes to each output
#' position after `layer` layers. Heads are fused (`heads`), and with `residual` the
#' skip connection is modelled as \eqn{\tilde A = 0.5 A + 0.5 I} (rows renormalised).
#' * `rollout`: \eqn{\tilde A_L \cdots \tilde A_1} (a product of row-stochastic
#'   matrices, so each row sums to 1);
#' * `flow`: the graph with a node per (layer, position) and an edge from (l, i) to
#'   (l - 1, j) of capacity \eqn{\tilde A_l[i, j]}; the weight of input j for output i is
#'   the maximum flow between them (Dinic's algorithm), each row normalised to sum 1
#'   as in the authors' code.
#'
#' @param patterns An [attention_patterns()] object or anything it accepts (square
#'   patterns: queries = keys).
#' @param method `"rollout"` or `"flow"`.
#' @param heads How heads are fused: `"mean"` (the paper), `"max"` or `"min"`.
#' @param residual Model the residual connection (see above).
#' @param layer Number of layers to propagate through (default: all).
#' @return A tibble of class `ts_attention_flow` with `sequence`, `query` (output
#'   position), `key` (input position) and `weight` (1-based positions);
#'   [attention_graph()] turns it into a graph.
#' @references Abnar & Zuidema (2020). Quantifying attention flow in transformers. ACL.
#' @export
#' @examples
#' toy <- readRDS(system.file("extdata", "induction_circuits.rds", package = "tensorscope"))
#' pat <- attention_patterns(toy$trained$patterns[1, , , , , drop = FALSE])
#' r <- attention_flow(pat)
#' f <- attention_flow(pat, method = "flow")
attention_flow <- function(patterns, method = c("rollout", "flow"), heads = c("mean", "max", "min"),
                           residual = TRUE, layer = NULL) {
  method <- check_choice(method, c("rollout", "flow"))
  heads <- check_choice(heads, c("mean", "max", "min"))
  if (!is.logical(residual) || length(residual) != 1 || is.na(residual)) {
    ts_abort("{.arg residual} must be TRUE or FALSE, not {describe(residual)}.", "argument")
  }
  p <- as_attention(patterns)
  d <- pattern_dims(p)
  if (d$nq != d$nk) {
    ts_abort("Rollout and flow need square patterns in {.arg patterns} (queries = keys); got {d$nq} x {d$nk}.", "mismatch")
  }
  layer <- if (is.null(layer)) d$layers else check_count(layer, min = 1)
  if (layer > d$layers) ts_abort("{.arg layer} is {layer} but the patterns have {d$layers} layer{?s}.", "argument")
  r <- cpp_attention_propagate(p$patterns, d$nq, d$heads, d$seqs, layer, heads, residual,
                               method == "flow", threads_now())
  n <- d$nq
  out <- tibble::tibble(sequence = rep(seq_len(d$seqs), each = n * n), query = rep(seq_len(n), n * d$seqs),
                        key = rep(rep(seq_len(n), each = n), d$seqs), weight = as.vector(r))
  structure(out, class = c("ts_attention_flow", class(out)),
            settings = list(method = method, heads = heads, residual = residual, layer = layer))
}

#' Attention as a graph
#'
#' An edge list of how information moves between token positions, for graph analysis
#' (degree and betweenness centrality, comparison with a neural connectivity matrix)
#' through [as_igraph()].
#' * From patterns: nodes are (layer, position), `"L0:1"` being input token 1 and
#'   `"Ll:i"` position i after layer l; an edge runs from `"L(l-1):j"` to `"Ll:i"` with
#'   weight \eqn{A_l[i, j]} (heads fused, optionally with the residual term as in
#'   [attention_flow()]).
#' * From [attention_flow()] results: a bipartite graph from input tokens `"in:j"` to
#'   output positions `"out:i"` weighted by flow or rollout.
#' Edges with weight below `threshold` are dropped.
#'
#' @param x An [attention_patterns()] object (or anything it accepts) or an
#'   [attention_flow()] result.
#' @param threshold Minimum edge weight kept.
#' @param sequence Which sequence to use.
#' @inheritParams attention_flow
#' @return A tibble of class `ts_attention_graph` with `from`, `to`, `layer` and
#'   `weight`, and a `nodes` attribute (tibble with `name`, `layer`, `position`).
#' @export
#' @examples
#' toy <- readRDS(system.file("extdata", "induction_circuits.rds", package = "tensorscope"))
#' g <- attention_graph(toy$trained$patterns, threshold = 0.2)
#' g
#' if (requireNamespace("igraph", quietly = TRUE)) {
#'   ig <- as_igraph(g)
#'   head(sort(igraph::betweenness(ig), decreasing = TRUE))
#' }
attention_graph <- function(x, threshold = 0.05, sequence = 1, heads = c("mean", "max", "min"),
                            residual = FALSE) {
  threshold <- check_number(threshold, lower = 0)
  sequence <- check_count(sequence, min = 1)
  if (inherits(x, "ts_attention_flow")) {
    if (!sequence %in% x$sequence) ts_abort("{.arg sequence} {sequence} is not in {.arg x}.", "argument")
    e <- x[x$sequence == sequence & x$weight >= threshold & x$weight > 0, ]
    n <- max(x$query)
    nodes <- tibble::tibble(name = c(paste0("in:", seq_len(n)), paste0("out:", seq_len(n))),
                            layer = rep(c(0L, attr(x, "settings")$layer), each = n), position = rep(seq_len(n), 2))
    edges <- tibble::tibble(from = paste0("in:", e$key), to = paste0("out:", e$query),
                            layer = attr(x, "settings")$layer, weight = e$weight)
  } else {
    heads <- check_choice(heads, c("mean", "max", "min"))
    check_flag(residual)
    p <- as_attention(x)
    d <- pattern_dims(p)
    if (d$nq != d$nk) ts_abort("Attention graphs need square patterns; got {d$nq} x {d$nk}.", "mismatch")
    if (sequence > d$seqs) ts_abort("{.arg sequence} is {sequence} but there {?is/are} {d$seqs} sequence{?s}.", "argument")
    n <- d$nq
    fused <- cpp_fused_attention(p$patterns, n, d$heads, d$seqs, d$layers, sequence, heads, residual)
    edges <- do.call(rbind, lapply(seq_len(d$layers), function(l) {
      A <- fused[, (l - 1) * n + seq_len(n), drop = FALSE]
      keep <- which(A >= threshold & A > 0, arr.ind = TRUE)
      tibble::tibble(from = sprintf("L%d:%d", l - 1L, keep[, 2]), to = sprintf("L%d:%d", l, keep[, 1]),
                     layer = l, weight = A[keep])
    }))
    nodes <- tibble::tibble(name = sprintf("L%d:%d", rep(0:d$layers, each = n), rep(seq_len(n), d$layers + 1)),
                            layer = rep(0:d$layers, each = n), position = rep(seq_len(n), d$layers + 1))
  }
  structure(edges, class = c("ts_attention_graph", class(edges)), nodes = nodes)
}

#' Convert to an igraph graph
#'
#' Directed, weighted (`weight` edge attribute) igraph graphs from
#' [attention_graph()] results (token positions) or [composition_scores()] results
#' (heads `"L1H2"`, an edge from each source head to each later destination head,
#' weighted by the score), ready for `igraph::degree()`, `igraph::betweenness()` and
#' the like. Needs the igraph package.
#'
#' @param x A `ts_attention_graph` or `ts_composition`.
#' @param type For composition scores: which composition type.
#' @param threshold For composition scores: minimum score kept (default: all edges).
#' @param ... Unused.
#' @return An `igraph` object.
#' @export
#' @examples
#' toy <- readRDS(system.file("extdata", "induction_circuits.rds", package = "tensorscope"))
#' w <- toy$trained
#' cs <- composition_scores(w$W_Q, w$W_K, w$W_V, w$W_O, type = "k", n_baseline = 20)
#' if (requireNamespace("igraph", quietly = TRUE)) {
#'   g <- as_igraph(cs, threshold = 0.3)
#'   igraph::degree(g)
#' }
as_igraph <- function(x, ...) UseMethod("as_igraph")

#' @rdname as_igraph
#' @export
as_igraph.ts_attention_graph <- function(x, ...) {
  rlang::check_installed("igraph", reason = "to convert attention graphs.")
  edges <- as.data.frame(tibble::as_tibble(structure(x, class = class(x)[-1], nodes = NULL)))
  igraph::graph_from_data_frame(edges, directed = TRUE, vertices = as.data.frame(attr(x, "nodes")))
}

#' @rdname as_igraph
#' @export
as_igraph.ts_composition <- function(x, type = c("k", "q", "v"), threshold = NULL, ...) {
  rlang::check_installed("igraph", reason = "to convert composition scores.")
  type <- check_choice(type, c("k", "q", "v"))
  x <- x[x$type == type, ]
  if (!nrow(x)) ts_abort("{.arg x} has no scores of type {.val {type}}.", "argument")
  heads <- unique(rbind(data.frame(layer = x$src_layer, head = x$src_head),
                        data.frame(layer = x$dst_layer, head = x$dst_head)))
  heads <- heads[order(heads$layer, heads$head), ]
  nodes <- data.frame(name = sprintf("L%dH%d", heads$layer, heads$head), layer = heads$layer, head = heads$head)
  if (!is.null(threshold)) x <- x[x$score >= check_number(threshold), ]
  edges <- data.frame(from = sprintf("L%dH%d", x$src_layer, x$src_head), to = sprintf("L%dH%d", x$dst_layer, x$dst_head),
                      weight = x$score, ratio = x$ratio)
  igraph::graph_from_data_frame(edges, directed = TRUE, vertices = nodes)
}

# ---- metrics of analyze_models() (R/metrics.R) ----------------------------------------

# The analyzer's tables of composition_scores() and attention_entropy(): one row per
# head pair (typed columns: the heads, the type, the baseline) or per head and
# summary (typed: head, summary); layers named as induction_head_strength's.
tidy_composition <- function(out, ctx) {
  tibble::tibble(layer = NA_character_,
                 statistic = sprintf("%s:L%dH%d>L%dH%d", out$type, out$src_layer, out$src_head, out$dst_layer, out$dst_head),
                 value = out$score, type = as.character(out$type), src_layer = as.integer(out$src_layer),
                 src_head = as.integer(out$src_head), dst_layer = as.integer(out$dst_layer),
                 dst_head = as.integer(out$dst_head), baseline = out$baseline)
}

tidy_attention_entropy <- function(out, ctx) {
  if ("query" %in% names(out)) {
    agg <- stats::aggregate(entropy ~ layer + head + query, data = out, FUN = mean)
    return(tibble::tibble(layer = paste0("block", agg$layer - 1L), statistic = sprintf("head%d:query%d", agg$head, agg$query),
                          value = agg$entropy, head = as.integer(agg$head), query = as.integer(agg$query)))
  }
  stats <- c("mean", "sd", "min", "q25", "median", "q75", "max")
  tibble::tibble(layer = rep(paste0("block", out$layer - 1L), times = length(stats)),
                 statistic = paste0("head", rep(out$head, times = length(stats)), ":", rep(stats, each = nrow(out))),
                 value = unlist(lapply(stats, function(s) as.double(out[[s]])), use.names = FALSE),
                 head = rep(as.integer(out$head), times = length(stats)), summary = rep(stats, each = nrow(out)))
}

rlang::on_load({
  circuit_needs <- c("model_file", "torch", "attention")
  register_metric(new_metric(
    "composition_scores", family = "circuits", scope = "model", fn = "composition_scores", aliases = "qkov_pairing",
    needs = circuit_needs, defaults = list(n_baseline = 100),
    description = "Q-, K- and V-composition between heads of different layers",
    about = "How much each attention head reads (through its queries, keys or values) from what an earlier head wrote, relative to random heads. High Q-, K- or V-composition between two heads suggests they form a circuit, such as the previous-token head feeding an induction head.",
    compute = function(x, args, ctx) composition_scores(ctx$model, n_baseline = args$n_baseline, seed = ctx$seed),
    tidy = tidy_composition, plot = plot_composition_map))
  register_metric(new_metric(
    "induction_head_strength", family = "circuits", scope = "model", fn = "head_scores", aliases = "head_scores",
    needs = circuit_needs, defaults = list(seq_len = NULL, n_seqs = 20, bos = NULL, vocab_size = NULL),
    description = "induction and previous-token scores per head on repeated random tokens",
    about = "Per head, on repeated random token sequences: the induction score (attention to the token after the previous occurrence of the current token) and the previous-token score. A head with an induction score well above 0 (up to 1) is an induction head; previous-token heads in earlier layers usually feed it.",
    compute = function(x, args, ctx) {
      # on repeated random tokens, not on `inputs`: the score needs sequences whose
      # second half repeats the first (seq_len = NULL: the longest that fits)
      args <- args[!vapply(args, is.null, logical(1))]
      do.call(head_scores, c(list(ctx$model, type = c("induction", "previous_token"), seed = ctx$seed), args))
    },
    tidy = function(out, ctx) {
      tibble::tibble(layer = paste0("block", out$layer - 1L), statistic = paste0("head", out$head, ":", out$type),
                     value = out$score, head = as.integer(out$head), type = as.character(out$type))
    },
    plot = plot_head_scores))
  register_metric(new_metric(
    "attention_flow_patterns", family = "circuits", scope = "model", fn = "attention_flow", aliases = "attention_flow",
    needs = circuit_needs, defaults = list(method = "rollout"),
    description = "attention rollout / flow from the inputs, mean over sequences",
    about = "Attention rollout: how much each output position draws, through all layers, on each input position, averaged over sequences. Mass on the diagonal means positions keep their own information; mass on the first column means attention sinks on the first token.",
    compute = function(x, args, ctx) attention_flow(attention_patterns(ctx$model, ctx$inputs[[1]]), method = args$method),
    tidy = function(out, ctx) {
      agg <- stats::aggregate(weight ~ query + key, data = out, FUN = mean)
      tibble::tibble(layer = NA_character_, statistic = sprintf("q%d:k%d", agg$query, agg$key), value = agg$weight,
                     query = as.integer(agg$query), key = as.integer(agg$key))
    },
    plot = plot_attention_flow))
  register_metric(new_metric(
    "attention_entropy", family = "circuits", scope = "model", fn = "attention_entropy",
    needs = circuit_needs, defaults = list(by = "head"), description = "entropy of the attention of each head",
    about = "Entropy of each head's attention distribution, averaged over queries. Low entropy means a head attends sharply to few positions; high entropy means it spreads its attention evenly.",
    compute = function(x, args, ctx) attention_entropy(attention_patterns(ctx$model, ctx$inputs[[1]]), by = args$by),
    tidy = tidy_attention_entropy, plot = plot_attention_entropy))
})
