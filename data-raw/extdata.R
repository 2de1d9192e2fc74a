# Turns the raw files written by data-raw/fashion_cnn.py and
# data-raw/induction_transformer.py (in data-raw/out) into the shipped .rds files.
# Run from the package root after the two Python scripts:  Rscript data-raw/extdata.R
out <- "data-raw/out"
ext <- "inst/extdata"
# numpy writes row-major: read as reversed dims, then aperm back.
read_rowmajor <- function(file, dims, what = "double", size = 8) {
  v <- readBin(file.path(out, file), what = what, n = prod(dims), size = size, signed = size > 2)
  if (length(dims) == 1) return(v)
  aperm(array(v, rev(dims)), rev(seq_along(dims)))
}
# each part runs when its Python script has been run
if (file.exists(file.path(out, "stimuli_u8.bin"))) {
  classes <- c("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
               "Sneaker", "Bag", "Ankle boot")
  img <- read_rowmajor("stimuli_u8.bin", c(200, 1, 28, 28), "integer", 1)
  lab <- read_rowmajor("labels_u8.bin", 200, "integer", 1)
  stimuli <- list(images = img / 255, labels = factor(classes[lab + 1], levels = classes),
                  label_index = as.integer(lab), source = "Fashion-MNIST test set, images 1-200 (Debian dataset-fashion-mnist)")
  saveRDS(stimuli, file.path(ext, "fmnist_stimuli.rds"), compress = "xz")

  idx <- utils::read.csv(file.path(out, "reference_index.csv"))
  ref <- lapply(seq_len(nrow(idx)), function(i) {
    read_rowmajor(sprintf("ref_%s.bin", idx$layer[i]), as.integer(strsplit(idx$dims[i], "x")[[1]]))
  })
  names(ref) <- idx$layer
  saveRDS(ref, file.path(ext, "fmnist_cnn_reference.rds"), compress = "xz")
  file.copy(file.path(out, "cnn_log.csv"), ext, overwrite = TRUE)
}

tok <- read_rowmajor("induction_tokens_i32.bin", c(8, 25), "integer", 4)
storage.mode(tok) <- "integer"
saveRDS(tok, file.path(ext, "induction_tokens.rds"), compress = "xz")
file.copy(file.path(out, "induction_log.csv"), ext, overwrite = TRUE)

# Arrays of the induction transformer for tests/testthat/test-circuits.R without LibTorch:
# a list with `untrained` (step 0) and `trained` (final step) checkpoints, each holding
#   W_Q, W_K, W_V [layer, head, d_model, d_head], W_O [layer, head, d_head, d_model]
#     (TransformerLens layout, row-vector convention: q = x W_Q; biases left out),
#   patterns [sequence, layer, head, query, key] on `tokens` [sequence, position]
#     (BOS + seq_len random tokens + the same seq_len tokens again),
#   seq_len, prefix (= 1, the BOS token) and step.
cidx <- utils::read.csv(file.path(out, "induction_circuits_index.csv"))
layout <- utils::read.csv(file.path(out, "induction_circuits_layout.csv"))
ctok <- read_rowmajor("circ_tokens_i32.bin", c(layout$n_seqs, 1 + 2 * layout$seq_len), "integer", 4)
storage.mode(ctok) <- "integer"
circuits <- lapply(c(untrained = "untrained", trained = "trained"), function(ck) {
  rows <- cidx[cidx$checkpoint == ck, ]
  arrays <- lapply(seq_len(nrow(rows)), function(i) {
    read_rowmajor(rows$file[i], as.integer(strsplit(rows$dims[i], "x")[[1]]))
  })
  names(arrays) <- rows$name
  c(arrays, list(tokens = ctok, seq_len = layout$seq_len, prefix = layout$prefix, step = rows$step[1]))
})
saveRDS(circuits, file.path(ext, "induction_circuits.rds"), compress = "xz")
