# Bad-input sweep (issue 15): a TABLE of input families x functions. Each row is one
# call and what must happen:
#   error   = "<kind>"  a condition of class tensorscope_error_<kind> ("" = any kind)
#             whose message names the argument at fault, `arg` (one of them when
#             several are given; `x$a` or `x[...]` count as naming `x`);
#   warning = "<class>" a warning of that class, and a result;
#   check   = function(value) TRUE when the result is right (no NaN, the unscaled
#             answer, ...).
# Rows marked child = TRUE used to crash or hang the session; they run together in one
# child R process (callr), so a crash fails the test instead of killing the suite.
# Covering a new function = adding rows (or adding it to one of the family generators).

bad_input_data <- function() {
  set.seed(15)
  x <- matrix(rnorm(40 * 5), 40)
  lab <- rep(c("a", "b"), 20)
  list(
    x = x, lab = lab,
    x8 = x[1:8, ],
    r8 = rdm(x[1:8, ]), r8b = rdm(x[1:8, ] + matrix(rnorm(40), 8)),
    cst8 = matrix(1, 8, 8) - diag(8), zero8 = matrix(0, 8, 8),
    d2 = matrix(c(0, 1, 1, 0), 2),
    trials = array(rnorm(10 * 3 * 4), c(10, 3, 4)),
    toy = readRDS(system.file("extdata", "induction_circuits.rds", package = "tensorscope")),
    long = data.frame(stimulus = rep(c("a", "b", "c"), each = 2), unit = rep(c("u1", "u2"), 3), response = rnorm(6))
  )
}
D <- bad_input_data()

case <- function(fn, family, expr, error = NULL, warning = NULL, check = NULL, child = FALSE, arg = NULL) {
  list(fn = fn, family = family, expr = substitute(expr), error = error, warning = warning, check = check,
       child = child, arg = arg)
}

# TRUE when the message names one of the arguments `arg` (cli's `{.arg a}` renders `a`).
names_arg <- function(message, arg) {
  any(vapply(arg, function(a) any(vapply(paste0("`", a, c("`", "$", "[")), grepl, logical(1), x = message, fixed = TRUE)),
             logical(1)))
}

# Evaluates a case's call in env; the outcome as plain data (so a child can return it).
run_case <- function(expr, env) {
  warns <- character(0)
  res <- tryCatch(withCallingHandlers(list(value = eval(expr, env)), warning = function(w) {
    warns <<- c(warns, class(w))
    invokeRestart("muffleWarning")
  }), error = function(e) list(error = class(e), message = conditionMessage(e)))
  res$warnings <- unique(warns)
  res
}

expect_case <- function(cs, res) {
  label <- sprintf("%s / %s: %s", cs$fn, cs$family, paste(deparse(cs$expr, width.cutoff = 200L), collapse = " "))
  if (!is.null(cs$error)) {
    want <- paste0("tensorscope_error", if (nzchar(cs$error)) paste0("_", cs$error))
    expect_true(want %in% res$error,
                label = sprintf("%s gives %s (got: %s)", label, want,
                                if (is.null(res$error)) "no error" else paste(res$error[1], res$message)))
    if (!is.null(res$error)) {
      expect_true(names_arg(res$message, cs$arg),
                  label = sprintf("%s: the message names %s (got: %s)", label,
                                  paste0("`", cs$arg, "`", collapse = " or "), res$message))
    }
    return(invisible())
  }
  expect_null(res$error, label = sprintf("%s runs without error (%s)", label, res$message %||% ""))
  if (!is.null(res$error)) return(invisible())
  if (!is.null(cs$warning)) {
    expect_true(cs$warning %in% res$warnings, label = sprintf("%s warns with %s", label, cs$warning))
  }
  if (!is.null(cs$check)) expect_true(isTRUE(tryCatch(cs$check(res$value), error = function(e) FALSE)), label = sprintf("%s gives the right value", label))
}
`%||%` <- function(a, b) if (is.null(a)) b else a

# ---- the table -------------------------------------------------------------------------

cases <- list(
  # crashes of the session before the fix (run in a child)
  case("rsa", "3 conditions, stimulus bootstrap", rsa(list(a = x[1:3, ]), as.matrix(rdm(x[1:3, ] + 1)),
       boot = "stimuli", n_boot = 50, n_perm = 20), warning = "tensorscope_warning_bootstrap",
       check = function(v) all(is.finite(summary(v)$similarity)), child = TRUE),
  case("rsa", "3 conditions, permutations", rsa(list(a = x[1:3, ]), as.matrix(rdm(x[1:3, ] + 1)), boot = "none",
       n_perm = 50), check = function(v) v$p_value > 0 && v$p_value <= 1, child = TRUE),
  case("fiber_bundle_test", "huge step", fiber_bundle_test(x, k_range = c(1, 30), window = 5, step = 1e10),
       error = "argument", arg = "step", child = TRUE),
  case("fiber_bundle_test", "infinite step", fiber_bundle_test(x, k_range = c(1, 30), window = 5, step = Inf),
       error = "argument", arg = "step", child = TRUE),
  case("fiber_bundle_test", "huge window", fiber_bundle_test(x, k_range = c(1, 30), window = 3e9),
       error = "argument", arg = "window", child = TRUE),
  case("rsa", "huge n_perm", rsa(list(a = x8), as.matrix(r8b), n_perm = 1e12), error = "argument", arg = "n_perm", child = TRUE),

  # silent NaN before the fix: constant / zero / 2 x 2 RDMs
  case("compare_rdms", "constant RDM, spearman", compare_rdms(r8, cst8), error = "zero_variance", arg = "b"),
  case("compare_rdms", "constant RDM, pearson", compare_rdms(r8, cst8, "pearson"), error = "zero_variance", arg = "b"),
  case("compare_rdms", "constant RDM, corr_cov", compare_rdms(cst8, r8, "corr_cov"), error = "zero_variance", arg = "a"),
  case("compare_rdms", "constant RDM, kendall_tau_a (ties count against: 0)",
       compare_rdms(r8, cst8, "kendall_tau_a"), check = function(v) identical(v, 0)),
  case("compare_rdms", "constant RDM, rho_a (0)", compare_rdms(r8, cst8, "rho_a"), check = function(v) v == 0),
  case("compare_rdms", "constant RDM, cosine (defined)", compare_rdms(r8, cst8, "cosine"),
       check = function(v) abs(v - sum(D$r8$dissimilarities) / sqrt(28 * sum(D$r8$dissimilarities^2))) < 1e-12),
  case("compare_rdms", "zero RDM, cosine", compare_rdms(r8, zero8, "cosine"), error = "zero_variance", arg = "b"),
  case("compare_rdms", "zero RDM, cosine_cov", compare_rdms(zero8, r8, "cosine_cov"), error = "zero_variance", arg = "a"),
  case("compare_rdms", "zero RDM, bures", compare_rdms(r8, zero8, "bures"), error = "zero_variance", arg = "b"),
  case("compare_rdms", "zero RDM, spearman", compare_rdms(r8, zero8), error = "zero_variance", arg = "b"),
  case("compare_rdms", "2 x 2, spearman", compare_rdms(d2, 2 * d2), error = "too_few", arg = "a"),
  case("compare_rdms", "2 x 2, kendall_tau_a", compare_rdms(d2, 2 * d2, "kendall_tau_a"), error = "too_few", arg = "a"),
  case("compare_rdms", "2 x 2, cosine", compare_rdms(d2, 2 * d2, "cosine"), check = function(v) abs(v - 1) < 1e-15),
  case("rsa", "constant neural RDM", rsa(list(a = x8), cst8, n_perm = 10), error = "zero_variance", arg = "neural"),
  case("rsa", "zero neural RDM, cosine", rsa(list(a = x8), zero8, method = "cosine", n_perm = 10),
       error = "zero_variance", arg = "neural"),
  case("noise_ceiling", "constant trials", noise_ceiling(array(1, c(10, 3, 4))), error = "zero_variance", arg = "trials"),
  case("noise_ceiling", "one constant target", noise_ceiling({t <- trials; t[, 2, ] <- 3; t}),
       warning = "tensorscope_warning_degenerate",
       check = function(v) is.na(v$reliability[2]) && all(is.finite(v$reliability[-2])) && is.finite(summary(v)$ceiling)),
  case("superposition", "one feature", superposition(x[1, , drop = FALSE]), error = "too_few", arg = "W"),
  case("superposition", "all zero", superposition(matrix(0, 6, 3)), error = "zero_variance", arg = "W"),
  case("invariance", "equidistant stimuli", invariance(list(a = diag(4)), list(a = x[1:4, ])),
       warning = "tensorscope_warning_degenerate", check = function(v) is.na(v$value[1]) && is.finite(v$value[2])),
  case("composition_scores", "all-zero weights", with(toy$trained, composition_scores(W_Q * 0, W_K * 0, W_V * 0, W_O * 0,
       type = "k", n_baseline = 5)), warning = "tensorscope_warning_degenerate",
       check = function(v) all(is.na(v$score)) && all(is.finite(v$baseline))),
  case("composition_scores", "one zero head", with(toy$trained, composition_scores(W_Q, {w <- W_K; w[2, 1, , ] <- 0; w},
       W_V, W_O, type = "k", n_baseline = 5)), warning = "tensorscope_warning_degenerate",
       check = function(v) all(is.na(v$score[v$dst_layer == 2 & v$dst_head == 1])) && sum(is.na(v$score)) < nrow(v)),

  # accepted invalid input before the fix
  case("as_rdm", "negative dissimilarities", as_rdm(-as.matrix(r8)), error = "not_rdm", arg = "x"),
  case("as_rdm", "negative vector", as_rdm(c(1, -2, 3)), error = "not_rdm", arg = "x"),
  case("as_rdm", "negative allowed (crossnobis)", as_rdm(c(1, -2, 3), allow_negative = TRUE),
       check = function(v) identical(v$dissimilarities[1, ], c(1, -2, 3))),
  case("as_rdm", "asymmetric", as_rdm({m <- as.matrix(r8); m[1, 2] <- 5; m}), error = "not_rdm", arg = "x"),
  case("as_rdm", "non-zero diagonal", as_rdm(as.matrix(r8) + diag(8)), error = "not_rdm", arg = "x"),
  case("as_rdm", "non-square", as_rdm(matrix(0, 2, 3)), error = "not_rdm", arg = "x"),
  case("as_rdm", "NA", as_rdm({m <- as.matrix(r8); m[1, 2] <- m[2, 1] <- NA; m}), error = "non_finite", arg = "x"),
  case("as_rdm", "labels of the wrong length", as_rdm(as.matrix(r8), labels = letters[1:3]), error = "mismatch", arg = "labels"),
  case("as_rdm", "duplicated labels", as_rdm(as.matrix(r8), labels = rep("a", 8)), error = "not_rdm", arg = "labels"),
  case("as_rdm", "NULL", as_rdm(NULL), error = "not_rdm", arg = "x"),

  # unusable layers: NA + a warning naming it, the other layers computed
  case("cka_layers", "constant layer", cka_layers(list(a = x, head = matrix(0, 40, 3), b = x[, 1:2])),
       warning = "tensorscope_warning_unusable_layer",
       check = function(v) { m <- as.matrix(v); all(is.na(m["head", ])) && all(is.finite(m[c("a", "b"), c("a", "b")])) }),
  case("rdm", "constant layer", rdm(ts_reps(list(a = x8, head = matrix(0, 8, 3)))),
       warning = "tensorscope_warning_unusable_layer",
       check = function(v) all(is.na(v$dissimilarities[2, ])) && all(is.finite(v$dissimilarities[1, ]))),
  case("rsa", "constant layer", rsa(list(a = x8, head = matrix(0, 8, 3)), as.matrix(r8b), n_perm = 10),
       warning = "tensorscope_warning_unusable_layer",
       check = function(v) is.na(v$similarity[2]) && is.finite(v$similarity[1]) && nrow(summary(v)) == 2),
  case("effective_rank", "constant layer", effective_rank(list(a = x, head = matrix(0, 40, 3))),
       warning = "tensorscope_warning_unusable_layer", check = function(v) is.na(v$value[2]) && is.finite(v$value[1])),
  case("participation_ratio", "constant layer", participation_ratio(list(a = x, head = matrix(1, 40, 3))),
       warning = "tensorscope_warning_unusable_layer", check = function(v) is.na(v$value[2]) && is.finite(v$value[1])),
  case("intrinsic_dim", "constant layer", intrinsic_dim(list(a = x, head = matrix(0, 40, 3)), k = 5),
       warning = "tensorscope_warning_unusable_layer", check = function(v) is.na(v$value[2]) && is.finite(v$value[1])),
  case("predictivity", "constant layer", predictivity(list(a = x, head = matrix(0, 40, 3)), x[, 1:2] + rnorm(80),
       alphas = c(1, 10)), warning = "tensorscope_warning_unusable_layer",
       check = function(v) all(is.na(v$r[v$layer == "head"])) && all(is.finite(v$r[v$layer == "a"]))),
  case("effective_rank", "every layer constant", effective_rank(list(a = matrix(0, 40, 3))), error = "zero_variance", arg = "x"),
  case("cka_layers", "every layer constant", cka_layers(list(a = matrix(0, 40, 3), b = matrix(1, 40, 2))),
       error = "zero_variance", arg = "reps"),

  # files: named pipes (hang before the fix), garbage, truncated
  case("read_npy", "named pipe", read_npy(fifo), error = "file", arg = "path"),
  case("read_npz", "named pipe", read_npz(fifo), error = "file", arg = "path"),
  case("read_mat", "named pipe", read_mat(fifo), error = "file", arg = "path"),
  case("read_h5", "named pipe", read_h5(fifo), error = "file", arg = "path"),
  case("ts_model", "named pipe", ts_model(fifo), error = "", arg = "path"),
  case("read_npy", "garbage", read_npy(garbage), error = "corrupt", arg = "path"),
  case("read_npz", "garbage", read_npz(garbage), error = "corrupt", arg = "path"),
  case("read_mat", "garbage", read_mat(garbage), error = "corrupt", arg = "path"),
  case("read_h5", "garbage", read_h5(garbage), error = "corrupt", arg = "path"),
  case("read_npy", "truncated", read_npy(truncated_npy), error = "corrupt", arg = "path"),
  case("read_npy", "directory", read_npy(tempdir()), error = "file", arg = "path"),
  case("read_npy", "NULL path", read_npy(NULL), error = "argument", arg = "path"),
  case("read_npy", "missing file", read_npy(file.path(tempdir(), "no-such.npy")), error = "file", arg = "path"),
  case("read_nwb", "named pipe", read_nwb(fifo), error = "file", arg = "path"),
  case("read_nwb", "garbage", read_nwb(garbage), error = "corrupt", arg = "path"),
  case("read_nwb", "directory", read_nwb(tempdir()), error = "file", arg = "path"),
  case("read_report", "garbage", read_report(garbage), error = "", arg = "path"),
  case("mat_rdms", "not a struct", mat_rdms(list(a = "b")), error = "", arg = "x"),

  # functions added since the sweep: shape metrics, CCA, soft matching, the Riemannian
  # RDM comparison, neural data in, user inner folds
  case("shape_distance", "alpha above 1", shape_distance(x, x[, 1:3], alpha = 2), error = "argument", arg = "alpha"),
  case("shape_distance", "alpha NA", shape_distance(x, x[, 1:3], alpha = NA), error = "argument", arg = "alpha"),
  case("shape_distance", "test out of range", shape_distance(x, x[, 1:3], test = 30:45), error = "argument", arg = "test"),
  case("shape_distance", "zero_pad NA", shape_distance(x, x[, 1:3], zero_pad = NA), error = "argument", arg = "zero_pad"),
  case("shape_distance", "data x 1e300 (angular: scale-invariant)", shape_distance(1e300 * x, 1e300 * x[, 1:3]),
       check = function(v) is.finite(v) && abs(v - shape_distance(D$x, D$x[, 1:3])) < 1e-10),
  case("shape_distance", "data x 1e-300, whitened (alpha = 0)", shape_distance(1e-300 * x, 1e-300 * x[, 1:3], alpha = 0),
       check = function(v) is.finite(v) && abs(v - shape_distance(D$x, D$x[, 1:3], alpha = 0)) < 1e-10),
  case("shape_distance", "data x 1e300, Euclidean (scales with the data)",
       shape_distance(1e300 * x, 1e300 * x[, 1:3], distance = "euclidean") / 1e300,
       check = function(v) is.finite(v) && abs(v / shape_distance(D$x, D$x[, 1:3], distance = "euclidean") - 1) < 1e-10),
  case("shape_layers", "data x 1e300", shape_layers(list(a = 1e300 * x, b = 1e300 * x[, 1:2]))$distance,
       check = function(v) all(is.finite(v)) && isTRUE(all.equal(v, shape_layers(list(a = D$x, b = D$x[, 1:2]))$distance,
                                                                 tolerance = 1e-10))),
  case("shape_layers", "alpha negative", shape_layers(list(a = x, b = x[, 1:2]), alpha = -1), error = "argument", arg = "alpha"),
  case("shape_layers", "reps2 with other stimuli", shape_layers(list(a = x), list(b = x[1:30, ])), error = "", arg = c("reps", "reps2")),
  case("cca_similarity", "keep above 1", cca_similarity(x, x[, 1:3], keep = 2), error = "argument", arg = "keep"),
  case("cca_similarity", "keep NA", cca_similarity(x, x[, 1:3], keep = NA), error = "argument", arg = "keep"),
  case("soft_matching_distance", "cost matrix too large",
       soft_matching_distance(matrix(0.5, 2, 5000), matrix(0.5, 2, 5000)), error = "argument", arg = c("x", "y")),
  case("soft_matching_distance", "constant x (a distance, defined)", soft_matching_distance(matrix(2, 40, 5), x),
       check = function(v) is.finite(v) && v > 0),
  case("compare_rdms", "riemannian, 2 x 2", compare_rdms(d2, 2 * d2, "riemannian"), error = "too_few", arg = "a"),
  case("compare_rdms", "riemannian, zero RDM", compare_rdms(r8, zero8, "riemannian"), error = "rank_deficient", arg = "b"),
  case("compare_rdms", "riemannian, constant RDM", compare_rdms(r8, cst8, "riemannian"), error = "zero_variance", arg = "b"),
  case("compare_rdms", "riemannian, zero first RDM", compare_rdms(zero8, r8, "riemannian"), error = "rank_deficient", arg = "a"),
  case("bin_spikes", "spike_times not numeric", bin_spikes("a", 1:3, letters[1:3]), error = "type", arg = "spike_times"),
  case("bin_spikes", "window reversed", bin_spikes(list(u = c(0.1, 1.2)), c(0, 1), c("a", "b"), window = c(1, 0)),
       error = "argument", arg = "window"),
  case("bin_spikes", "stimulus of the wrong length", bin_spikes(list(u = c(0.1, 1.2)), c(0, 1), c("a", "b", "c")),
       error = "mismatch", arg = c("stimulus", "onsets")),
  case("bin_spikes", "NA onset", bin_spikes(list(u = c(0.1, 1.2)), c(0, NA), c("a", "b")), error = "non_finite", arg = "onsets"),
  case("ts_neural", "not a data frame", ts_neural(1), error = "type", arg = "x"),
  case("ts_neural", "unknown column", ts_neural(long, stimulus = "nope"), error = "argument", arg = "stimulus"),
  case("ts_neural", "missing response", ts_neural({d <- long; d$response[2] <- NA; d}), error = "non_finite", arg = "x"),
  case("ts_neural", "NaN response", ts_neural({d <- long; d$response[2] <- NaN; d}), error = "non_finite",
       arg = c("x", "response")),
  case("ts_neural", "wrong na", ts_neural(long, na = "bogus"), error = "argument", arg = "na"),
  case("predictivity", "inner_splits a string", predictivity(list(a = x), x[, 1:2] + rnorm(80), inner_splits = "bogus"),
       error = "argument", arg = "inner_splits"),
  case("predictivity", "inner_splits with pls", predictivity(list(a = x), x[, 1:2] + rnorm(80), method = "pls",
       inner_splits = rep(1:2, 20)), error = "argument", arg = "inner_splits"),
  case("predictivity", "inner_splits of the wrong length", predictivity(list(a = x), x[, 1:2] + rnorm(80),
       inner_splits = list(1, 2)), error = "argument", arg = "inner_splits"),
  case("predictivity", "inner fold outside the training set", predictivity(list(a = x), x[, 1:2] + rnorm(80), folds = 2,
       inner_splits = list(list(1:5, 6:10), list(1:5, 6:10))), error = "argument", arg = "inner_splits")
)

# Size arguments: NA, NaN, Inf, negative, non-integer, huge, wrong type -> argument errors
size_args <- list(
  rsa = quote(rsa(list(a = x8), as.matrix(r8b), n_perm = 10, n_boot = 10)),
  fiber_bundle_test = quote(fiber_bundle_test(x, k_range = c(1, 30), window = 5)),
  intrinsic_dim = quote(intrinsic_dim(x)),
  ricci_curvature = quote(ricci_curvature(x)),
  separability = quote(separability(list(a = x), lab)),
  polysemanticity = quote(polysemanticity(list(a = x), lab)),
  noise_ceiling = quote(noise_ceiling(trials)),
  repeated_tokens = quote(repeated_tokens(2, 3, 10)),
  simulate_model_and_brain = quote(simulate_model_and_brain(n_stimuli = 12, n_layers = 2, width = 4,
                                                            n_subjects = 2, n_neurons = 5)),
  superposition = quote(superposition(x[1:8, ])),
  attention_graph = quote(attention_graph(toy$trained$patterns, threshold = 0.2)),
  composition_scores = quote(with(toy$trained, composition_scores(W_Q, W_K, W_V, W_O, type = "k"))),
  predictivity = quote(predictivity(list(a = x), x[, 1:2] + rnorm(80), alphas = c(1, 10)))
)
size_names <- list(rsa = c("n_perm", "n_boot"), fiber_bundle_test = "step", intrinsic_dim = "k",
                   ricci_curvature = "k", separability = "folds", polysemanticity = "n_perm",
                   noise_ceiling = "n_splits", repeated_tokens = c("seq_len", "vocab_size"),
                   simulate_model_and_brain = c("n_stimuli", "width"), superposition = "bins",
                   attention_graph = "sequence", composition_scores = "n_baseline", predictivity = c("folds", "ncomp"))
bad_sizes <- list("NA" = NA, "NaN" = NaN, "Inf" = Inf, negative = -3, fraction = 2.5, huge = 1e10, text = "5", two = c(3, 4))
for (fn in names(size_args)) for (a in size_names[[fn]]) for (b in names(bad_sizes)) {
  e <- size_args[[fn]]
  if (fn == "composition_scores") e[[3]][[a]] <- bad_sizes[[b]] else e[[a]] <- bad_sizes[[b]]  # inside with()
  cases[[length(cases) + 1]] <- list(fn = fn, family = paste(a, "=", b), expr = e, error = "argument",
                                     warning = NULL, check = NULL, child = b == "huge", arg = a)
}

# Wrong method names
for (e in list(quote(rdm(x, method = "bogus")), quote(compare_rdms(r8, r8b, method = "bogus")),
               quote(rsa(list(a = x8), as.matrix(r8b), method = "bogus")), quote(cka(x, x, kernel = "bogus")),
               quote(intrinsic_dim(x, method = "bogus")), quote(ricci_curvature(x, method = "bogus")),
               quote(separability(list(a = x), lab, method = "bogus")), quote(noise_ceiling(trials, method = "bogus")),
               quote(predictivity(list(a = x), x[, 1:2], method = "bogus")), quote(effective_rank(x, on = NA)),
               quote(shape_distance(x, x[, 1:3], distance = "bogus")), quote(cca_similarity(x, x[, 1:3], method = "bogus")),
               quote(shape_layers(list(a = x), distance = "bogus")))) {
  bogus <- names(e)[vapply(as.list(e), function(v) identical(v, "bogus") || identical(v, NA), logical(1))]
  cases[[length(cases) + 1]] <- list(fn = as.character(e[[1]]), family = "wrong method", expr = e,
                                     error = "argument", warning = NULL, check = NULL, child = FALSE, arg = bogus)
}

# Data families for the functions that take stimuli x features data
data_fns <- list(
  cka = quote(cka(DATA, x)), cka_layers = quote(cka_layers(list(a = DATA, b = x))),
  rdm = quote(rdm(DATA)), effective_rank = quote(effective_rank(DATA)),
  participation_ratio = quote(participation_ratio(DATA)), intrinsic_dim = quote(intrinsic_dim(DATA, k = 5)),
  ricci_curvature = quote(ricci_curvature(DATA, k = 5)), separability = quote(separability(list(a = DATA), lab)),
  polysemanticity = quote(polysemanticity(list(a = DATA), lab, n_perm = 10)),
  predictivity = quote(predictivity(list(a = DATA), x[, 1:2], alphas = c(1, 10))),
  invariance = quote(invariance(list(a = DATA), list(a = x))),
  geometry_profile = quote(geometry_profile(list(a = DATA), k = 5)),
  shape_distance = quote(shape_distance(DATA, x)), shape_layers = quote(shape_layers(list(a = DATA, b = x))),
  cca_similarity = quote(cca_similarity(DATA, x)), soft_matching_distance = quote(soft_matching_distance(DATA, x))
)
# the argument that holds DATA (wrong stimulus counts may name the other side instead)
data_arg <- function(fn, family) {
  a <- if (fn %in% c("cka", "rdm", "effective_rank", "participation_ratio", "intrinsic_dim", "ricci_curvature",
                     "shape_distance", "cca_similarity", "soft_matching_distance")) "x" else "reps"
  if (family == "wrong stimulus count") a <- c(a, switch(fn, cka = , shape_distance = , cca_similarity = ,
                                                           soft_matching_distance = "y", separability = ,
                                                           polysemanticity = "labels", predictivity = "responses",
                                                           invariance = "reps_transformed", character(0)))
  a
}
bad_data <- list(
  "NA" = list(quote({m <- x; m[3, 2] <- NA; m}), "non_finite"),
  "NaN" = list(quote({m <- x; m[3, 2] <- NaN; m}), "non_finite"),
  "Inf" = list(quote({m <- x; m[3, 2] <- Inf; m}), "non_finite"),
  "0 columns" = list(quote(x[, 0]), "empty"),
  "0 rows" = list(quote(x[0, ]), ""),
  "character" = list(quote(matrix("a", 40, 5)), ""),
  "NULL" = list(quote(NULL), ""),
  "wrong stimulus count" = list(quote(x[1:39, ]), ""),
  "all constant" = list(quote(matrix(2, 40, 5)), "zero_variance")
)
for (fn in names(data_fns)) for (b in names(bad_data)) {
  e <- do.call(substitute, list(data_fns[[fn]], list(DATA = bad_data[[b]][[1]])))
  if (b == "wrong stimulus count" && fn %in% c("rdm", "effective_rank", "participation_ratio", "intrinsic_dim",
                                               "ricci_curvature", "geometry_profile")) next
  err <- bad_data[[b]][[2]]
  warn <- NULL
  chk <- NULL
  if (b == "all constant" && fn == "cka_layers") {  # one unusable layer beside a usable one
    err <- NULL
    warn <- "tensorscope_warning_unusable_layer"
    chk <- function(v) all(is.na(v$cka[v$layer_x == "a" | v$layer_y == "a"])) && is.finite(v$cka[4])
  }
  if (b == "all constant" && fn == "polysemanticity") {  # constant units are unselective: a value
    err <- NULL
    chk <- function(v) identical(v$summary$value, c(0, 0, 1, 0))
  }
  if (b == "all constant" && fn == "soft_matching_distance") {  # a distance, defined for a constant layer
    err <- NULL
    chk <- function(v) is.finite(v) && v > 0
  }
  cases[[length(cases) + 1]] <- list(fn = fn, family = b, expr = e, error = err, warning = warn,
                                     check = chk, child = FALSE, arg = data_arg(fn, b))
}

# Scale invariance: data x 1e300 and x 1e-300 give the unscaled answer
scale_fns <- list(
  cka = quote(cka(S * x, S * x[, 1:2])),
  cka_layers = quote(cka_layers(list(a = S * x, b = S * x[, 1:2]))$cka),
  correlation_rdm = quote(rdm(S * x)$dissimilarities),
  cosine_rdm = quote(rdm(S * x, "cosine")$dissimilarities),
  effective_rank = quote(effective_rank(S * x)),
  participation_ratio = quote(participation_ratio(S * x)),
  intrinsic_dim = quote(as.numeric(intrinsic_dim(S * x, k = 5))),
  ricci_forman = quote(ricci_curvature(S * x, k = 5, method = "forman")$curvature),
  ricci_uniform = quote(ricci_curvature(S * x, k = 5, exp_power = 0)$curvature),
  separability = quote(separability(list(a = S * x), lab)$value),
  polysemanticity = quote(polysemanticity(list(a = S * x), lab, n_perm = 20)$units$si),
  invariance = quote(invariance(list(a = S * x), list(a = S * (x + 1)))$value),
  rsa = quote(rsa(list(a = S * x8), S * as.matrix(r8b), n_perm = 20)$similarity)
)
for (m in c("spearman", "pearson", "kendall_tau_a", "rho_a", "cosine", "corr_cov", "cosine_cov", "bures")) {
  scale_fns[[paste0("compare_rdms_", m)]] <- bquote(compare_rdms(S * as.matrix(r8), S * as.matrix(r8b), .(m)))
}
for (fn in names(scale_fns)) {
  ref <- eval(do.call(substitute, list(scale_fns[[fn]], list(S = 1))), D)
  for (s in c(1e300, 1e-300)) {
    cases[[length(cases) + 1]] <- list(
      fn = fn, family = paste("data x", s), expr = do.call(substitute, list(scale_fns[[fn]], list(S = s))),
      error = NULL, warning = NULL, child = FALSE,
      check = local({ r <- ref; function(v) all(is.finite(v)) && isTRUE(all.equal(v, r, tolerance = 1e-10)) })
    )
  }
}

# ---- running it --------------------------------------------------------------------------

case_env <- function() {
  env <- list2env(D, parent = asNamespace("tensorscope"))
  env$fifo <- tempfile()
  if (.Platform$OS.type == "unix") system2("mkfifo", env$fifo)
  env$garbage <- tempfile()
  writeBin(as.raw(c(0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 0xff, 0xff, 0x13, 0x37, 1:40)), env$garbage)
  env$truncated_npy <- tempfile(fileext = ".npy")
  write_npy(matrix(1:12 + 0.5, 3), env$truncated_npy)
  b <- readBin(env$truncated_npy, "raw", file.size(env$truncated_npy))
  writeBin(b[seq_len(length(b) - 20)], env$truncated_npy)
  env$toy <- D$toy
  env
}

test_that("the bad-input table: every in-process case gives a classed error, a documented warning or the right value", {
  env <- case_env()
  on.exit(unlink(c(env$fifo, env$garbage, env$truncated_npy)))
  skip_torch <- !ts_torch_available()
  for (cs in cases) {
    if (cs$child) next
    if (cs$fn == "ts_model" && skip_torch) next
    if (cs$fn %in% c("read_h5", "read_nwb", "read_mat") &&
        !requireNamespace(if (cs$fn == "read_mat") "R.matlab" else "hdf5r", quietly = TRUE)) next
    expect_case(cs, run_case(cs$expr, env))
  }
})

test_that("every error row of the bad-input table says which argument its message must name", {
  no_arg <- Filter(function(cs) !is.null(cs$error) && length(cs$arg) == 0, cases)
  expect_equal(vapply(no_arg, function(cs) paste(cs$fn, "/", cs$family), ""), character(0))
  expect_true(names_arg("`x$a` has zero variance", "x"))
  expect_false(names_arg("`xy` has zero variance", "x"))
  expect_false(names_arg("RDM \"rdm\" is constant", c("a", "b")))
})

test_that("the bad-input cases that used to crash the session run in a child process", {
  skip_if_not_installed("callr")
  child <- Filter(function(cs) cs$child, cases)
  lib <- dirname(system.file(package = "tensorscope"))
  out <- callr::r(function(exprs, lib, setup, run_case) {
    .libPaths(c(lib, .libPaths()))
    library(tensorscope)
    env <- list2env(setup(), parent = asNamespace("tensorscope"))
    lapply(exprs, run_case, env = env)
  }, args = list(exprs = lapply(child, `[[`, "expr"), lib = lib, setup = bad_input_data, run_case = run_case))
  expect_length(out, length(child))
  for (i in seq_along(child)) expect_case(child[[i]], out[[i]])
})

test_that("a TorchScript file with flipped bytes is refused with a classed error or loads unchanged", {
  skip_if_not(ts_torch_available())
  f <- test_path("fixtures", "mlp.pt")
  b <- readBin(f, "raw", file.size(f))
  x <- matrix(as.double(1:10), 2)  # 2 samples x 5 inputs
  ref <- activations(ts_model(f), x)
  set.seed(7)
  g <- tempfile(fileext = ".pt")
  on.exit(unlink(g))
  refused <- 0
  for (pos in sample(length(b), 25)) {
    bb <- b
    bb[pos] <- xor(bb[pos], as.raw(0xff))
    writeBin(bb, g)
    r <- tryCatch(ts_model(g), error = function(e) e)
    if (inherits(r, "error")) {
      expect_s3_class(r, "tensorscope_error")
      refused <- refused + 1
    } else {
      # a flip outside the data (an unused header field) leaves the model intact
      expect_equal(activations(r, x)$layers, ref$layers, label = sprintf("flip at byte %d", pos))
    }
  }
  expect_gt(refused, 0)
  # flipping a byte of a member's data is caught by its CRC
  bb <- b
  pos <- length(b) %/% 2
  bb[pos] <- xor(bb[pos], as.raw(0x01))
  writeBin(bb, g)
  expect_error(ts_model(g), class = "tensorscope_error")
})
