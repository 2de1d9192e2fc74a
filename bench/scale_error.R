# The error the sparse random projection (activations(reduce = "srp")) introduces, at a
# size where the exact activations fit: ResNet-50 layer2.3, layer3.5 and layer4.2
# (401,408 / 200,704 / 100,352 features) over N random 224 x 224 stimuli, k = 4096.
#   Rscript bench/scale_error.R MODEL N [LIB]
# Prints, per layer: CKA with the other layers (exact vs projected), the Spearman
# correlation between the exact and the projected RDM (correlation distance), and ridge
# predictivity (median r) of 200 simulated neurons, exact vs projected.
args <- commandArgs(TRUE)
if (length(args) >= 3) .libPaths(c(args[3], .libPaths()))
suppressMessages(library(tensorscope))
model <- args[1]; n <- as.integer(args[2]); k <- 4096
stim <- function(rows) {
  x <- array(0, c(length(rows), 3, 224, 224))
  for (i in seq_along(rows)) { set.seed(rows[i]); x[i, , , ] <- rnorm(3 * 224 * 224) }
  x
}
lay <- c("layer2.3", "layer3.5", "layer4.2")
m <- ts_model(model)
ids <- as.character(seq_len(n))
ex <- activations(m, stim, layers = lay, batch_size = 25, stimuli = ids, reduce = "none")
pr <- activations(m, stim, layers = lay, batch_size = 25, stimuli = ids, reduce = "srp", k = k)
cx <- as.matrix(cka_layers(ex)); cp <- as.matrix(cka_layers(pr))
set.seed(3)
# neurons: noisy linear read-outs of layer4.2 (exact) that lie in its stimuli's span
# (X X' a), which ridge can learn from n << p stimuli (random weights over all 100,352
# units cannot be: r ~ 0 for exact and projected alike)
xc <- scale(ex[["layer4.2"]], scale = FALSE)
sig <- tcrossprod(xc) %*% matrix(rnorm(n * 200), n)
neurons <- sig + matrix(rnorm(n * 200, sd = stats::sd(sig)), n)
rownames(neurons) <- ids
px <- summary(predictivity(ex, neurons, alphas = 10^seq(-2, 8, length.out = 11)))
pp <- summary(predictivity(pr, neurons, alphas = 10^seq(-2, 8, length.out = 11)))
rows <- lapply(lay, function(l) {
  others <- setdiff(lay, l)
  data.frame(layer = l, features = ncol(ex[[l]]), k = k, n = n,
             cka_exact = paste(round(cx[l, others], 4), collapse = "/"),
             cka_srp = paste(round(cp[l, others], 4), collapse = "/"),
             cka_max_abs_err = round(max(abs(cx[l, others] - cp[l, others])), 4),
             rdm_spearman = round(compare_rdms(rdm(ex[[l]]), rdm(pr[[l]]), method = "spearman"), 4),
             ridge_r_exact = round(px$median_r[px$layer == l], 4),
             ridge_r_srp = round(pp$median_r[pp$layer == l], 4))
})
print(do.call(rbind, rows), row.names = FALSE)
