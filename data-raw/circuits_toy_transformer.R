# Converts the export of data-raw/circuits_toy_transformer.py (JSON, C-order arrays) into
# inst/extdata/circuits_toy_transformer.rds: a list with `untrained` (step 0) and
# `trained` checkpoints, each holding
#   W_E [vocab, d_model], W_pos [n_ctx, d_model], W_U [d_model, vocab],
#   W_Q, W_K, W_V [layer, head, d_model, d_head], W_O [layer, head, d_head, d_model]
#     (TransformerLens layout, row-vector convention: q = x W_Q),
#   patterns [batch, layer, head, query, key] on `tokens` [batch, position]
#     ([BOS] + seq_len random tokens + the same seq_len tokens again),
#   seq_len, prefix (= 1, the BOS token) and step.
# Run from the package root:  Rscript data-raw/circuits_toy_transformer.R
from_c_order <- function(x) {
  shape <- unlist(x$shape)
  a <- array(unlist(x$data), rev(shape))
  if (length(shape) > 1) a <- aperm(a, rev(seq_along(shape)))
  a
}
read_checkpoint <- function(path) {
  d <- jsonlite::fromJSON(path, simplifyVector = FALSE)
  out <- lapply(d[c("W_E", "W_pos", "W_Q", "W_K", "W_V", "W_O", "W_U", "patterns", "tokens")], from_c_order)
  storage.mode(out$tokens) <- "integer"
  c(out, list(seq_len = d$seq_len, prefix = d$prefix, step = d$step))
}
files <- sort(Sys.glob("data-raw/out/circuits_toy_step*.json"))
steps <- as.integer(sub(".*step([0-9]+)\\.json$", "\\1", files))
toy <- list(untrained = read_checkpoint(files[steps == 0]),
            trained = read_checkpoint(files[steps == max(steps)]))
saveRDS(toy, "inst/extdata/circuits_toy_transformer.rds", compress = "xz")
cat("wrote inst/extdata/circuits_toy_transformer.rds:",
    file.size("inst/extdata/circuits_toy_transformer.rds"), "bytes\n")
