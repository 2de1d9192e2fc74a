# Neural data as it comes: long data frames, spike times + stimulus onsets, NWB files.
# Everything ends as a ts_reps (one layer per area / subject / session) whose
# `trials` element keeps the single trials for noise ceilings.

#' Neural data from long data frames, spike times or NWB files
#'
#' `ts_neural()` turns recordings into a [ts_reps()] object: one layer per group
#' (subject, area, session, ... -- the `group` columns), each a stimuli x units matrix
#' of the mean response over trials, with the single trials kept in `$trials` (a
#' named list of stimuli x units x repetitions arrays, `NA` where a stimulus was shown
#' fewer times) for [noise_ceiling()] and [predictivity()].
#'
#' * A **data frame** in long form: one row per stimulus x unit (x trial), with the
#'   columns named by `stimulus`, `unit`, `response` and optionally `trial`. The
#'   repetitions of a stimulus are numbered within each group in the order of their
#'   `trial` values (or, without `trial`, in the order of the rows). A unit that is
#'   missing for some stimulus of its group is handled by `na`.
#' * An **NWB file** read by [read_nwb()]: the spikes of each unit are counted in
#'   `window` (seconds, relative to each trial's `align` time) with [bin_spikes()],
#'   stimuli are the trials' `stimulus` column and layers the electrodes' `group`
#'   column (by default the brain area, `location`); stimuli are sorted unless
#'   `stimuli` gives the order.
#'
#' Stimuli are in the order of `stimuli` when given, else of the levels of a factor
#' `stimulus` column, else of first appearance; every group must have every stimulus.
#' Units keep the order of their first appearance.
#'
#' @param x A data frame (long form) or a `ts_nwb` object from [read_nwb()].
#' @param stimulus,unit,response,trial Column names (strings). `trial` is optional.
#' @param group Column names whose combinations make the layers (e.g. `c("subject",
#'   "area")`, joined with `"."`); `NULL`: one layer, named `layer`.
#' @param stimuli `NULL` or the stimulus ids in the order wanted (a subset is allowed).
#' @param na Units with no response for some stimulus: `"error"` (classed error
#'   naming them) or `"drop_units"` (removed, with a message saying how many).
#' @param window,align,rate For NWB data, see [bin_spikes()]; `align` names the trials
#'   column holding the times the window is relative to.
#' @param ... Further provenance fields for [ts_reps()].
#' @return A `ts_reps` object with the extra element `trials` (see above) and
#'   `provenance$source = "neural"`.
#' @seealso [bin_spikes()], [read_nwb()], [noise_ceiling()]
#' @export
#' @examples
#' set.seed(1)
#' long <- expand.grid(stimulus = paste0("img", 1:6), unit = paste0("n", 1:4), trial = 1:3,
#'                     area = c("V4", "IT"), stringsAsFactors = FALSE)
#' long$response <- rpois(nrow(long), 5)
#' neural <- ts_neural(long, trial = "trial", group = "area")
#' neural
#' dim(neural$trials$IT)   # 6 stimuli x 4 units x 3 repetitions
#' summary(noise_ceiling(neural$trials$IT))
ts_neural <- function(x, ...) UseMethod("ts_neural")

#' @rdname ts_neural
#' @export
ts_neural.default <- function(x, ...) {
  ts_abort("{.arg x} must be a long data frame or a {.cls ts_nwb} object from {.fn read_nwb}, not {describe(x)}.", "type")
}

#' @rdname ts_neural
#' @export
ts_neural.data.frame <- function(x, stimulus = "stimulus", unit = "unit", response = "response", trial = NULL,
                                 group = NULL, stimuli = NULL, na = c("error", "drop_units"), ...) {
  na <- check_choice(na, c("error", "drop_units"))
  call <- rlang::current_env()
  cols <- list(stimulus = stimulus, unit = unit, response = response)
  for (a in names(cols)) check_column(x, cols[[a]], a, call = call)
  if (!is.null(trial)) check_column(x, trial, "trial", call = call)
  if (!is.null(group)) for (g in group) check_column(x, g, "group", call = call)
  if (nrow(x) == 0) ts_abort("{.arg x} has no rows.", "empty")
  resp <- x[[response]]
  if (!is.numeric(resp) && !is.logical(resp)) {
    ts_abort("Column {.val {response}} ({.arg response}) must be numeric, not {describe(resp)}.", "type")
  }
  resp <- as.double(resp)
  if (any(is.infinite(resp) | is.nan(resp))) {
    ts_abort("Column {.val {response}} ({.arg response}) has Inf or NaN values (row {which(is.infinite(resp) | is.nan(resp))[1]}).",
             "non_finite")
  }
  stim <- x[[stimulus]]
  if (anyNA(stim)) ts_abort("Column {.val {stimulus}} ({.arg stimulus}) has NA ids.", "non_finite")
  levels_stim <- if (!is.null(stimuli)) as.character(stimuli) else if (is.factor(stim)) levels(stim) else unique(as.character(stim))
  stim <- as.character(stim)
  if (!is.null(stimuli)) {
    if (anyDuplicated(levels_stim) || anyNA(levels_stim)) ts_abort("{.arg stimuli} must be unique and not NA.", "argument")
    miss <- setdiff(levels_stim, stim)
    if (length(miss)) ts_abort("{.arg stimuli} names stimuli that {.arg x} does not have: {.val {utils::head(miss, 5)}}.", "mismatch")
    keep <- stim %in% levels_stim
    x <- x[keep, , drop = FALSE]
    stim <- stim[keep]
    resp <- resp[keep]
  }
  un <- as.character(x[[unit]])
  if (anyNA(un)) ts_abort("Column {.val {unit}} ({.arg unit}) has NA ids.", "non_finite")
  grp <- if (is.null(group)) rep("layer", nrow(x)) else do.call(paste, c(lapply(group, function(g) as.character(x[[g]])), sep = "."))
  layer_names <- unique(grp)
  layers <- trials <- list()
  dropped <- 0L
  for (g in layer_names) {
    rows <- which(grp == g)
    s <- stim[rows]
    miss <- setdiff(levels_stim, s)
    if (length(miss)) {
      ts_abort("Group {.val {g}} has no responses to stimul{?us/i} {.val {utils::head(miss, 5)}}; every group needs every stimulus (or pass {.arg stimuli}).",
               "mismatch")
    }
    si <- match(s, levels_stim)
    units <- unique(un[rows])
    ui <- match(un[rows], units)
    rep_id <- if (!is.null(trial)) {
      tv <- x[[trial]][rows]
      if (anyNA(tv)) ts_abort("Column {.val {trial}} ({.arg trial}) has NA values.", "non_finite")
      # repetition = rank of the trial among the trials of that stimulus (in this group)
      key <- paste(si, tv, sep = "\r")
      stats::ave(seq_along(rows), si, FUN = function(i) match(key[i], unique(key[i][order(tv[i])])))
    } else {
      stats::ave(seq_along(rows), si, ui, FUN = seq_along)
    }
    cell <- cbind(si, ui, rep_id)
    if (anyDuplicated(cell)) {
      d <- cell[anyDuplicated(cell), ]
      ts_abort(c("Group {.val {g}} has several responses of unit {.val {units[d[2]]}} to stimulus {.val {levels_stim[d[1]]}} in one trial.",
                 i = "Give {.arg trial}, add the {.arg group} columns that tell them apart, or aggregate first."), "argument")
    }
    arr <- array(NA_real_, c(length(levels_stim), length(units), max(rep_id)),
                 dimnames = list(levels_stim, units, NULL))
    arr[cell] <- resp[rows]
    m <- rowMeans(arr, dims = 2, na.rm = TRUE)
    m[is.nan(m)] <- NA_real_
    bad <- colSums(is.na(m)) > 0
    if (any(bad)) {
      if (na == "error") {
        ts_abort(c("{.arg x}: {sum(bad)} unit{?s} of group {.val {g}} {?has/have} no response for some stimuli: {.val {utils::head(units[bad], 5)}}.",
                   i = "Use {.code na = \"drop_units\"} to drop them."), "non_finite")
      }
      if (all(bad)) ts_abort("{.arg x}: every unit of group {.val {g}} misses some stimulus ({.arg na} = {.val drop_units} drops them all).", "empty")
      dropped <- dropped + sum(bad)
      m <- m[, !bad, drop = FALSE]
      arr <- arr[, !bad, , drop = FALSE]
    }
    layers[[g]] <- m
    trials[[g]] <- arr
  }
  if (dropped > 0) {
    cli::cli_inform("Dropped {dropped} unit{?s} with no response to some stimuli ({.code na = \"drop_units\"}).",
                    class = "tensorscope_message_dropped")
  }
  out <- ts_reps(layers, stimuli = levels_stim, source = "neural", ...)
  out$trials <- trials
  out
}

check_column <- function(x, col, arg, call = rlang::caller_env()) {
  if (!is.character(col) || length(col) != 1 || is.na(col)) {
    ts_abort("{.arg {arg}} must be a column name (a string), not {describe(col)}.", "argument", call = call)
  }
  if (!col %in% names(x)) {
    ts_abort("{.arg {arg}} = {.val {col}} is not a column of {.arg x}; its columns are {.val {utils::head(names(x), 10)}}.",
             "argument", call = call)
  }
  invisible(col)
}

#' Spike counts per trial from spike times and stimulus onsets
#'
#' Counts each unit's spikes in a window around every stimulus onset: for onset t the
#' window is \[t + window\[1\], t + window\[2\]) (left-closed, right-open), computed by a
#' binary search per onset (`findInterval()`, O((spikes + onsets) log spikes) per
#' unit). `rate = TRUE` divides by the window length (spikes per second).
#'
#' @param spike_times A named list with one numeric vector of spike times (seconds) per
#'   unit (as [read_nwb()] returns in `$spike_times`), or one numeric vector (one unit).
#' @param onsets Stimulus onset times (seconds), one per trial.
#' @param stimulus Stimulus id of each onset.
#' @param window Start and end of the counting window relative to each onset (seconds).
#' @param rate Return rates (counts / window length) instead of counts.
#' @return A tibble in long form, one row per unit x trial: `unit`, `trial` (1, 2, ...
#'   in onset order), `stimulus`, `response`; ready for [ts_neural()].
#' @export
#' @examples
#' spikes <- list(u1 = c(0.05, 0.12, 1.01, 1.02, 1.3), u2 = c(0.5, 1.1))
#' bin_spikes(spikes, onsets = c(0, 1), stimulus = c("a", "b"), window = c(0, 0.2))
bin_spikes <- function(spike_times, onsets, stimulus, window = c(0.05, 0.25), rate = FALSE) {
  if (is.numeric(spike_times) && !is.list(spike_times)) spike_times <- list(unit1 = spike_times)
  if (!is.list(spike_times) || length(spike_times) == 0 || !all(vapply(spike_times, is.numeric, logical(1)))) {
    ts_abort("{.arg spike_times} must be a non-empty list of numeric vectors (one per unit), not {describe(spike_times)}.", "type")
  }
  if (is.null(names(spike_times))) names(spike_times) <- paste0("unit", seq_along(spike_times))
  if (!is.numeric(onsets) || length(onsets) == 0) ts_abort("{.arg onsets} must be numeric times, not {describe(onsets)}.", "type")
  check_finite(onsets, "onsets")
  if (length(stimulus) != length(onsets)) {
    ts_abort("{.arg stimulus} has {length(stimulus)} id{?s} but there are {length(onsets)} onsets.", "mismatch")
  }
  if (anyNA(stimulus)) ts_abort("{.arg stimulus} has NA ids.", "non_finite")
  if (!is.numeric(window) || length(window) != 2 || any(!is.finite(window)) || window[2] <= window[1]) {
    ts_abort("{.arg window} must be two finite numbers, start < end (seconds), not {describe(window)}.", "argument")
  }
  check_flag(rate)
  counts <- lapply(names(spike_times), function(u) {
    s <- sort(as.double(spike_times[[u]]))
    if (anyNA(s)) ts_abort("{.arg spike_times${u}} has NA spike times.", "non_finite")
    findInterval(onsets + window[2], s, left.open = TRUE) - findInterval(onsets + window[1], s, left.open = TRUE)
  })
  k <- length(onsets)
  resp <- unlist(counts, use.names = FALSE)
  if (rate) resp <- resp / diff(window)
  tibble::tibble(unit = rep(names(spike_times), each = k), trial = rep(seq_len(k), length(spike_times)),
                 stimulus = rep(as.character(stimulus), length(spike_times)), response = as.double(resp))
}

#' Read units, trials and electrodes from an NWB 2.x file
#'
#' Reads the parts of a Neurodata Without Borders file (the format DANDI distributes)
#' that neural-data comparisons need, with the `hdf5r` package (Suggests) and no
#' Python: the `units` table (spike times from the ragged `spike_times` /
#' `spike_times_index` pair, and each unit's electrode through its
#' `electrodes` region), the `intervals/trials` and `intervals/epochs` tables (every
#' column; ragged columns such as `tags` become list columns) and the electrodes table
#' (`general/extracellular_ephys/electrodes`; object-reference columns such as `group`
#' are skipped, `group_name` is kept). [ts_neural()] turns the result into a `ts_reps`.
#'
#' @param path Path of the `.nwb` file.
#' @return An object of class `ts_nwb`: a list with `session` (identifier,
#'   description, start time, NWB version), `units` (a tibble: `unit` id as a string,
#'   `n_spikes`, and the electrode's columns when there is one electrode per unit),
#'   `spike_times` (a named list, one numeric vector per unit), `trials`, `epochs` and
#'   `electrodes` (tibbles, `NULL` when absent). Errors: a missing file
#'   `tensorscope_error_file`; a file that is not HDF5 or not NWB
#'   (no `nwb_version` attribute) `tensorscope_error_corrupt`.
#' @references Rübel et al. (2022). The Neurodata Without Borders ecosystem for
#'   neurophysiological data science. eLife 11: e78362.
#' @seealso [ts_neural()], [bin_spikes()]
#' @export
#' @examplesIf requireNamespace("hdf5r", quietly = TRUE)
#' nwb <- read_nwb(system.file("extdata", "toy_units.nwb", package = "tensorscope"))
#' nwb
#' neural <- ts_neural(nwb, window = c(0, 0.2))
#' neural
read_nwb <- function(path) {
  path <- check_path(path)
  rlang::check_installed("hdf5r", "to read NWB files")
  h5 <- h5_open(path)
  on.exit(h5$close_all(), add = TRUE)
  if (!"nwb_version" %in% hdf5r::h5attr_names(h5)) {
    ts_abort("{.arg path} ({.path {path}}) is an HDF5 file but not an NWB file (no {.val nwb_version} attribute).", "corrupt")
  }
  scalar <- function(name) if (h5$exists(name)) as.character(h5[[name]]$read())[1] else NA_character_
  session <- list(identifier = scalar("identifier"), description = scalar("session_description"),
                  start_time = scalar("session_start_time"),
                  nwb_version = as.character(hdf5r::h5attr(h5, "nwb_version"))[1])
  el_path <- "general/extracellular_ephys/electrodes"
  electrodes <- if (h5$exists(el_path)) nwb_table(h5[[el_path]]) else NULL
  trials <- if (h5$exists("intervals/trials")) nwb_table(h5[["intervals/trials"]]) else NULL
  epochs <- if (h5$exists("intervals/epochs")) nwb_table(h5[["intervals/epochs"]]) else NULL
  units <- NULL
  spikes <- NULL
  if (h5$exists("units")) {
    u <- nwb_table(h5[["units"]])
    ids <- as.character(u$id)
    spikes <- stats::setNames(if ("spike_times" %in% names(u)) lapply(u$spike_times, as.double) else
                                replicate(length(ids), numeric(0), simplify = FALSE), ids)
    units <- tibble::tibble(unit = ids, n_spikes = unname(lengths(spikes)))
    if ("electrodes" %in% names(u) && !is.null(electrodes)) {
      el <- u$electrodes
      if (is.list(el) && all(lengths(el) == 1)) el <- unlist(el)
      if (!is.list(el)) {
        row <- as.integer(el) + 1L  # DynamicTableRegion: 0-based rows
        units$electrode <- electrodes$id[row]
        for (col in setdiff(names(electrodes), "id")) units[[col]] <- electrodes[[col]][row]
      }
    }
    for (col in setdiff(names(u), c("id", "spike_times", "electrodes", names(units)))) units[[col]] <- u[[col]]
  }
  structure(list(session = session, units = units, spike_times = spikes, trials = trials, epochs = epochs,
                 electrodes = electrodes, path = path), class = "ts_nwb")
}

# A DynamicTable group as a tibble: `id` then the `colnames` columns; a column with a
# `<col>_index` dataset is ragged (a list column); object references are skipped.
nwb_table <- function(g) {
  cols <- if ("colnames" %in% hdf5r::h5attr_names(g)) as.character(hdf5r::h5attr(g, "colnames")) else character(0)
  present <- g$ls()$name
  cols <- intersect(cols, present)
  out <- list(id = if ("id" %in% present) as.vector(h5_read(g[["id"]])) else NULL)
  for (col in cols) {
    v <- tryCatch(h5_read(g[[col]]), error = function(e) NULL)
    if (is.null(v) || inherits(v, "R6")) next   # object references (e.g. electrodes$group)
    if (is.array(v) && length(dim(v)) > 1) next   # multi-dimensional columns are not table columns here
    v <- as.vector(v)
    idx_name <- paste0(col, "_index")
    if (idx_name %in% present) {
      ends <- as.double(h5_read(g[[idx_name]]))
      starts <- c(0, utils::head(ends, -1))
      v <- lapply(seq_along(ends), function(i) v[seq_len(ends[i] - starts[i]) + starts[i]])
    }
    out[[col]] <- v
  }
  n <- max(c(0L, lengths(out[!vapply(out, is.null, logical(1))])))
  if (is.null(out$id)) out$id <- seq_len(n) - 1L
  tibble::as_tibble(out[!vapply(out, is.null, logical(1))])
}

#' @export
print.ts_nwb <- function(x, ...) {
  s <- x$session
  cli::cat_line("<ts_nwb> ", s$identifier, " (NWB ", s$nwb_version, ")")
  if (!is.na(s$description)) cli::cat_line("  ", s$description)
  if (!is.null(x$units)) {
    cli::cat_line("  units: ", nrow(x$units), " (", sum(x$units$n_spikes), " spikes)",
                  if (!is.null(x$units$location)) paste0("; locations: ", paste(unique(x$units$location), collapse = ", ")))
  }
  if (!is.null(x$trials)) cli::cat_line("  trials: ", nrow(x$trials), " (columns: ", paste(setdiff(names(x$trials), "id"), collapse = ", "), ")")
  if (!is.null(x$epochs)) cli::cat_line("  epochs: ", nrow(x$epochs))
  if (!is.null(x$electrodes)) cli::cat_line("  electrodes: ", nrow(x$electrodes))
  invisible(x)
}

#' @rdname ts_neural
#' @export
ts_neural.ts_nwb <- function(x, stimulus = "stimulus", group = "location", window = c(0.05, 0.25), align = "start_time",
                             rate = FALSE, stimuli = NULL, na = c("error", "drop_units"), ...) {
  if (is.null(x$units) || is.null(x$trials)) {
    ts_abort("{.arg x} needs a units table and a trials table; {.path {x$path}} lacks {if (is.null(x$units)) 'units' else 'trials'}.",
             "empty")
  }
  check_column(x$trials, stimulus, "stimulus")
  check_column(x$trials, align, "align")
  if (!is.null(group)) for (g in group) check_column(x$units, g, "group")
  stimuli <- stimuli %||% sort(unique(as.character(x$trials[[stimulus]])))
  long <- bin_spikes(x$spike_times, x$trials[[align]], x$trials[[stimulus]], window = window, rate = rate)
  if (!is.null(group)) {
    for (g in group) long[[g]] <- x$units[[g]][match(long$unit, x$units$unit)]
  }
  ts_neural(long, trial = "trial", group = group, stimuli = stimuli, na = na, window = window, ...)
}
