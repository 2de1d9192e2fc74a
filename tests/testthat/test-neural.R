# Neural data as it comes: long data frames, spike times, NWB files.

nwb_fixture <- function() system.file("extdata", "toy_units.nwb", package = "tensorscope")

read_expected <- function() {
  lines <- strsplit(readLines(test_path("fixtures", "nwb", "toy_units_expected.txt")), " ")
  stats::setNames(lapply(lines, `[`, -1), vapply(lines, `[`, "", 1))
}

test_that("read_nwb() reads the h5py-written NWB fixture back exactly", {
  skip_if_not_installed("hdf5r")
  nwb <- read_nwb(nwb_fixture())
  e <- read_expected()
  expect_s3_class(nwb, "ts_nwb")
  expect_identical(nwb$session$nwb_version, "2.6.0")
  expect_identical(nwb$session$identifier, "tensorscope-toy-units")
  n_per_unit <- as.integer(e$units)
  n_units <- length(n_per_unit)
  expect_identical(nwb$units$unit, as.character(seq_len(n_units) - 1L))
  expect_identical(nwb$units$n_spikes, n_per_unit)
  # the ragged spike_times / spike_times_index pair, split exactly
  st <- as.numeric(e$spike_times)
  expect_identical(unlist(nwb$spike_times, use.names = FALSE), st)
  expect_identical(unname(lengths(nwb$spike_times)), n_per_unit)
  expect_identical(nwb$spike_times[["2"]], st[sum(n_per_unit[1:2]) + seq_len(n_per_unit[3])])
  # units joined to their electrode (DynamicTableRegion, 0-based)
  expect_identical(nwb$units$location, e$location)
  expect_identical(nwb$units$electrode, seq_len(n_units) - 1L)
  expect_identical(nwb$electrodes$group_name, paste0("array_", e$location))
  expect_false("group" %in% names(nwb$electrodes))  # object references are skipped
  # trials, with the custom stimulus column
  expect_identical(nwb$trials$stimulus, e$stimulus)
  expect_identical(nwb$trials$start_time, as.numeric(e$start_time))
  expect_identical(nwb$trials$stop_time, as.numeric(e$stop_time))
  # epochs: ragged string column
  expect_identical(nwb$epochs$tags, list("baseline", c("task", "images")))
  expect_output(print(nwb), sprintf("units: %d \\(%d spikes\\)", n_units, length(st)))
})

test_that("ts_neural() on NWB data bins spikes per trial, one layer per area", {
  skip_if_not_installed("hdf5r")
  nwb <- read_nwb(nwb_fixture())
  neural <- ts_neural(nwb, window = c(0, 0.2))
  expect_s3_class(neural, "ts_reps")
  expect_identical(names(neural), c("V4", "IT"))
  e <- read_expected()
  expect_identical(neural$stimuli, sort(unique(e$stimulus)))
  n_it <- sum(e$location == "IT")
  expect_identical(dim(neural$trials$IT), c(length(unique(e$stimulus)), n_it, 4L))
  # brute force: count spikes of the first IT unit in [onset, onset + 0.2) per trial
  tr <- nwb$trials
  u <- nwb$units$unit[nwb$units$location == "IT"][1]
  s <- nwb$spike_times[[u]]
  counts <- vapply(tr$start_time, function(t) sum(s >= t & s < t + 0.2), numeric(1))
  means <- tapply(counts, tr$stimulus, mean)
  expect_equal(neural[["IT"]][, u], means[neural$stimuli], ignore_attr = TRUE)
  first_img01 <- counts[tr$stimulus == "img01"]
  expect_equal(neural$trials$IT["img01", u, ], first_img01)
  # the trials feed noise ceilings and predictivity
  nc <- noise_ceiling(neural$trials$V4)
  expect_s3_class(nc, "ts_noise_ceiling")
  expect_error(ts_neural(nwb, stimulus = "nope"), class = "tensorscope_error_argument")
  expect_error(ts_neural(nwb, group = "nope"), class = "tensorscope_error_argument")
})

test_that("read_nwb() rejects files that are not NWB", {
  skip_if_not_installed("hdf5r")
  f <- withr::local_tempfile(fileext = ".h5")
  write_rdm_h5(as_rdm(dist(matrix(rnorm(12), 4))), f)
  expect_error(read_nwb(f), class = "tensorscope_error_corrupt")
  expect_error(read_nwb(tempfile()), class = "tensorscope_error_file")
  g <- withr::local_tempfile(fileext = ".nwb")
  writeLines("not hdf5", g)
  expect_error(read_nwb(g), class = "tensorscope_error_corrupt")
})

test_that("bin_spikes() counts in [onset + start, onset + end), brute force", {
  set.seed(3)
  spikes <- list(a = sort(runif(200, 0, 10)), b = sort(runif(50, 0, 10)), c = numeric(0))
  onsets <- seq(0.5, 9, by = 0.5)
  stim <- rep(letters[1:6], 3)
  b <- bin_spikes(spikes, onsets, stim, window = c(0.05, 0.3))
  expect_named(b, c("unit", "trial", "stimulus", "response"))
  for (u in names(spikes)) {
    bf <- vapply(onsets, function(t) sum(spikes[[u]] >= t + 0.05 & spikes[[u]] < t + 0.3), numeric(1))
    expect_identical(b$response[b$unit == u], bf)
  }
  # edges: a spike exactly at the window start counts, at the end does not
  e <- bin_spikes(list(u = c(1, 1.2)), onsets = 1, stimulus = "s", window = c(0, 0.2))
  expect_identical(e$response, 1)
  expect_identical(bin_spikes(list(u = c(1, 1.2)), 1, "s", window = c(0, 0.5), rate = TRUE)$response, 4)
  expect_error(bin_spikes(spikes, onsets, stim[-1]), class = "tensorscope_error_mismatch")
  expect_error(bin_spikes(spikes, onsets, stim, window = c(0.3, 0.1)), class = "tensorscope_error_argument")
  expect_error(bin_spikes("a", onsets, stim), class = "tensorscope_error_type")
  expect_error(bin_spikes(spikes, c(1, NA), c("a", "b")), class = "tensorscope_error_non_finite")
})

long_counts <- function(seed = 1) {
  set.seed(seed)
  long <- expand.grid(stimulus = paste0("img", 1:6), unit = paste0("n", 1:4), trial = 1:3,
                      subject = c("m1", "m2"), area = c("V4", "IT"), stringsAsFactors = FALSE)
  long$response <- rpois(nrow(long), 5)
  long[sample(nrow(long)), ]  # rows in any order
}

test_that("ts_neural() on a long data frame: means over trials, trials kept, one layer per group", {
  long <- long_counts()
  neural <- ts_neural(long, trial = "trial", group = c("subject", "area"), stimuli = paste0("img", 1:6))
  expect_identical(sort(names(neural)), sort(c("m1.V4", "m2.V4", "m1.IT", "m2.IT")))
  expect_identical(neural$stimuli, paste0("img", 1:6))
  # brute force for one cell and one layer
  sel <- long$subject == "m2" & long$area == "IT"
  bf <- with(long[sel, ], tapply(response, list(stimulus, unit), mean))
  m <- neural[["m2.IT"]]
  expect_equal(m, bf[rownames(m), colnames(m)])
  tr <- neural$trials[["m2.IT"]]
  expect_identical(dim(tr), c(6L, 4L, 3L))
  one <- long[sel & long$stimulus == "img2" & long$unit == "n3", ]
  expect_identical(tr["img2", "n3", ], as.double(one$response[order(one$trial)]))
  # trial ids need not be 1..R: any values, ranked within a stimulus
  long2 <- long; long2$trial <- long2$trial * 10 + 7
  expect_equal(ts_neural(long2, trial = "trial", group = c("subject", "area"), stimuli = paste0("img", 1:6))$trials,
               neural$trials)
  # without trial: repetitions in row order; same means
  no_trial <- ts_neural(long[order(long$trial), ], group = c("subject", "area"), stimuli = paste0("img", 1:6))
  expect_equal(no_trial[["m2.IT"]][, colnames(m)], m)
  # stimuli subset and order
  sub <- ts_neural(long, trial = "trial", group = c("subject", "area"), stimuli = c("img3", "img1"))
  expect_identical(sub$stimuli, c("img3", "img1"))
  # subsetting a neural ts_reps keeps its trials aligned
  s2 <- neural[c("img4", "img2"), "m1.V4"]
  expect_identical(names(s2$trials), "m1.V4")
  expect_identical(s2$trials[["m1.V4"]], neural$trials[["m1.V4"]][c("img4", "img2"), , , drop = FALSE])
  # the result feeds rsa / cka / predictivity
  expect_s3_class(rsa(neural["m1.IT"], rdm(neural["m2.IT"]), n_perm = 10, n_boot = 10), "ts_rsa")
})

test_that("ts_neural() handles missing responses and bad input with classed errors", {
  long <- long_counts()
  gap <- long[!(long$unit == "n2" & long$stimulus == "img5" & long$area == "IT"), ]
  expect_error(ts_neural(gap, trial = "trial", group = c("subject", "area")), class = "tensorscope_error_non_finite")
  expect_error(ts_neural(gap, trial = "trial", group = c("subject", "area")), "n2")
  expect_message(n <- ts_neural(gap, trial = "trial", group = c("subject", "area"), na = "drop_units"),
                 "Dropped 2 units", class = "tensorscope_message_dropped")
  expect_false("n2" %in% colnames(n[["m1.IT"]]))
  expect_true("n2" %in% colnames(n[["m1.V4"]]))
  # one missing trial only: the mean is over the trials there are, the array holds NA
  miss1 <- long[!(long$unit == "n1" & long$stimulus == "img1" & long$trial == 2 & long$area == "IT" & long$subject == "m1"), ]
  n1 <- ts_neural(miss1, trial = "trial", group = c("subject", "area"))
  expect_true(is.na(n1$trials[["m1.IT"]]["img1", "n1", 2]))
  expect_equal(n1[["m1.IT"]]["img1", "n1"], mean(n1$trials[["m1.IT"]]["img1", "n1", c(1, 3)]))
  expect_error(ts_neural(long, stimulus = "stim"), class = "tensorscope_error_argument")
  expect_error(ts_neural(long, stimulus = "stim"), "stim")
  expect_error(ts_neural(long, response = "unit"), class = "tensorscope_error_type")
  expect_error(ts_neural(long, trial = "trial", group = "area"), class = "tensorscope_error_argument")  # two subjects share trial ids
  expect_error(ts_neural(long[long$subject == "m1" & long$area == "IT" & long$stimulus != "img6" | long$area == "V4", ],
                         trial = "trial", group = c("subject", "area")), class = "tensorscope_error_mismatch")
  expect_error(ts_neural(matrix(1:4, 2)), class = "tensorscope_error_type")
  expect_error(ts_neural(long[0, ]), class = "tensorscope_error_empty")
})
