test_that("the simulated brain has a planted source layer that RSA and CKA recover", {
  for (seed in 1:2) {
    sim <- simulate_model_and_brain(n_stimuli = 72, n_subjects = 3, source_layer = 3, n_layers = 5, seed = seed)
    expect_s3_class(sim$reps, "ts_reps")
    expect_equal(sim$source_layer, "layer3")
    expect_equal(length(sim$neural), 3)
    expect_equal(rownames(sim$neural[[1]]), sim$reps$stimuli)
    res <- summary(rsa(sim$reps, rdm(ts_reps(sim$neural, stimuli = sim$reps$stimuli)), n_perm = 0, boot = "none"))
    expect_equal(as.character(res$layer[which.max(res$similarity)]), "layer3")
    ck <- cka_layers(sim$reps, sim$neural[[1]], estimator = "debiased")
    expect_equal(as.character(ck$layer_x[which.max(ck$cka)]), "layer3")
  }
  # reproducible and independent of the global RNG state
  set.seed(99)
  a <- simulate_model_and_brain(n_stimuli = 12, seed = 5)
  expect_identical(a, simulate_model_and_brain(n_stimuli = 12, seed = 5))
  expect_error(simulate_model_and_brain(source_layer = 9, n_layers = 3), class = "tensorscope_error_argument")
})
