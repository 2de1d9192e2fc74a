#' Simulate a model and neural recordings with a known answer
#'
#' Generates stimuli from categories, passes them through a random deep ReLU network
#' (the "model": one layer per depth) and simulates neural populations ("subjects")
#' whose responses are a noisy linear read-out of one chosen layer. Because the answer
#' is planted, the output is the standard test bed for alignment and predictivity
#' methods: they should find `source_layer`.
#'
#' @param n_stimuli Number of stimuli (a multiple of `n_categories` is best).
#' @param n_categories Number of stimulus categories.
#' @param n_layers,width Depth and width of the simulated network.
#' @param source_layer The layer the neural data is generated from.
#' @param n_subjects,n_neurons Number of simulated subjects and neurons per subject.
#' @param noise Standard deviation of the neural noise relative to the signal.
#' @param seed Random seed (the result does not depend on R's RNG state).
#' @return A list with `reps` (a [ts_reps()] of the network's layers), `neural` (a named
#'   list of stimuli x neurons matrices, one per subject), `categories` (factor, one per
#'   stimulus) and `source_layer`.
#' @export
#' @examples
#' sim <- simulate_model_and_brain(n_stimuli = 60, n_subjects = 3)
#' sim$reps
#' rsa(sim$reps, lapply(sim$neural, rdm), n_perm = 200, n_boot = 100)
simulate_model_and_brain <- function(n_stimuli = 96, n_categories = 6, n_layers = 6, width = 64,
                                     source_layer = 4, n_subjects = 4, n_neurons = 50, noise = 1,
                                     seed = 1) {
  n_stimuli <- check_count(n_stimuli, min = 4)
  n_categories <- check_count(n_categories, min = 1)
  n_layers <- check_count(n_layers, min = 1)
  width <- check_count(width, min = 2)
  source_layer <- check_count(source_layer, min = 1)
  if (source_layer > n_layers) {
    ts_abort("{.arg source_layer} ({source_layer}) must be at most {.arg n_layers} ({n_layers}).", "argument")
  }
  n_subjects <- check_count(n_subjects, min = 1)
  n_neurons <- check_count(n_neurons, min = 1)
  noise <- check_number(noise, lower = 0)
  seed <- check_seed(seed)
  with_seed(seed, {
    cats <- factor(paste0("cat", rep(seq_len(n_categories), length.out = n_stimuli)))
    proto <- matrix(stats::rnorm(n_categories * width), n_categories)
    x <- proto[as.integer(cats), ] + matrix(stats::rnorm(n_stimuli * width, sd = 1.2), n_stimuli)
    layers <- vector("list", n_layers)
    h <- x
    for (l in seq_len(n_layers)) {
      w <- matrix(stats::rnorm(width * width, sd = sqrt(2 / width)), width)
      h <- pmax(h %*% w, 0)  # ReLU layer
      h <- h / stats::sd(as.vector(h))
      layers[[l]] <- h
    }
    names(layers) <- paste0("layer", seq_len(n_layers))
    stim <- sprintf("stim%03d", seq_len(n_stimuli))
    src <- layers[[source_layer]]
    neural <- lapply(seq_len(n_subjects), function(s) {
      readout <- matrix(stats::rnorm(width * n_neurons), width) / sqrt(width)
      signal <- src %*% readout
      r <- signal + matrix(stats::rnorm(n_stimuli * n_neurons, sd = noise * stats::sd(as.vector(signal))), n_stimuli)
      dimnames(r) <- list(stim, paste0("n", seq_len(n_neurons)))
      r
    })
    names(neural) <- paste0("subject", seq_len(n_subjects))
    list(reps = ts_reps(layers, stimuli = stim, model = "simulated ReLU network", seed = seed),
         neural = neural, categories = cats, source_layer = names(layers)[source_layer])
  })
}

#' Simulate neural recordings from one layer of a model
#'
#' A population of `n_neurons` units per subject whose responses are a random linear
#' read-out of the (centred) activations of one layer, plus Gaussian noise of standard
#' deviation `noise` times the signal's: the planted answer for alignment methods is
#' `layer`.
#'
#' @param reps A [ts_reps()] (e.g. from [activations()]).
#' @param layer The layer the responses are read out from.
#' @param n_neurons Neurons per subject.
#' @param noise Noise standard deviation relative to the signal's.
#' @param n_subjects Number of simulated subjects (independent read-outs and noise).
#' @param seed Random seed (the result does not depend on R's RNG state).
#' @return A named list of stimuli x neurons matrices (`subject1`, ...), row names the
#'   stimulus ids of `reps`, with attribute `source_layer`.
#' @export
#' @examples
#' sim <- simulate_model_and_brain(n_stimuli = 40)
#' v1 <- simulate_neural(sim$reps, "layer2", n_neurons = 30, noise = 0.5)
#' dim(v1$subject1)
simulate_neural <- function(reps, layer, n_neurons = 100, noise = 1, n_subjects = 1, seed = 1) {
  reps <- as_reps(reps)
  layer <- check_choice(layer, names(reps$layers))
  n_neurons <- check_count(n_neurons, min = 1)
  n_subjects <- check_count(n_subjects, min = 1)
  noise <- check_number(noise, lower = 0)
  seed <- check_seed(seed)
  x <- reps$layers[[layer]]
  x <- sweep(x, 2L, colMeans(x))
  check_variance(x, sprintf("reps$%s", layer))
  out <- with_seed(seed, lapply(seq_len(n_subjects), function(s) {
    w <- matrix(stats::rnorm(ncol(x) * n_neurons), ncol(x)) / sqrt(ncol(x))
    sig <- x %*% w
    r <- sig + matrix(stats::rnorm(length(sig), sd = noise * stats::sd(as.vector(sig))), nrow(sig))
    dimnames(r) <- list(reps$stimuli, paste0("n", seq_len(n_neurons)))
    r
  }))
  names(out) <- paste0("subject", seq_len(n_subjects))
  attr(out, "source_layer") <- layer
  out
}
