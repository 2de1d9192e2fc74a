# Argument checks shared by every family. Each raises a classed error
# ("tensorscope_error_<kind>", "tensorscope_error") naming the argument and the value.

ts_abort <- function(message, kind, ..., call = rlang::caller_env(), .envir = parent.frame()) {
  cli::cli_abort(message, class = c(paste0("tensorscope_error_", kind), "tensorscope_error"),
                 ..., call = call, .envir = .envir)
}

describe <- function(x) {
  if (is.null(x)) return("NULL")
  if (is.data.frame(x)) return(sprintf("a data frame (%d x %d)", nrow(x), ncol(x)))
  if (is.matrix(x)) return(sprintf("a %s matrix (%d x %d)", typeof(x), nrow(x), ncol(x)))
  if (is.array(x)) return(sprintf("a %s array (%s)", typeof(x), paste(dim(x), collapse = " x ")))
  if (is.atomic(x) && length(x) == 1) return(sprintf("%s `%s`", class(x)[1], format(x)))
  if (is.atomic(x)) return(sprintf("a %s vector of length %d", class(x)[1], length(x)))
  sprintf("an object of class <%s>", paste(class(x), collapse = "/"))
}

# Matrix (stimuli x features) from a matrix, data frame or higher-rank array whose first
# dimension is stimuli. Numeric only; integers/logicals become double. Checks finiteness.
as_data_matrix <- function(x, arg = rlang::caller_arg(x), call = rlang::caller_env()) {
  force(arg)
  if (is.data.frame(x)) {
    ok <- vapply(x, function(col) is.numeric(col) || is.logical(col), logical(1))
    if (!all(ok)) {
      ts_abort("{.arg {arg}} must hold numeric columns only; column{?s} {.val {names(x)[!ok]}} {?is/are} not numeric.",
               "type", call = call)
    }
    x <- as.matrix(x)
    storage.mode(x) <- "double"
  }
  if (!(is.numeric(x) || is.logical(x)) || is.null(dim(x)) && !is.numeric(x)) {
    ts_abort("{.arg {arg}} must be a numeric matrix, data frame or array (stimuli first), not {describe(x)}.",
             "type", call = call)
  }
  if (is.null(dim(x))) {
    x <- matrix(x, ncol = 1L, dimnames = list(names(x), NULL))
  }
  d <- dim(x)
  if (length(d) > 2) {
    rn <- dimnames(x)[[1]]
    x <- matrix(x, nrow = d[1], ncol = prod(d[-1]))
    rownames(x) <- rn
  }
  if (storage.mode(x) != "double") storage.mode(x) <- "double"
  if (nrow(x) == 0) ts_abort("{.arg {arg}} has no stimuli (0 rows).", "empty", call = call)
  if (ncol(x) == 0) ts_abort("{.arg {arg}} has no features (0 columns).", "empty", call = call)
  check_finite(x, arg, call = call)
  x
}

check_finite <- function(x, arg, call = rlang::caller_env()) {
  bad_found <- if (is.double(x)) cpp_first_non_finite(x) > 0 else anyNA(x) || any(is.infinite(x))
  if (bad_found) {
    bad <- which(!is.finite(x))
    first <- bad[1]
    pos <- if (is.matrix(x)) {
      rc <- arrayInd(first, dim(x))
      sprintf("row %d, column %d", rc[1], rc[2])
    } else sprintf("element %d", first)
    ts_abort("{.arg {arg}} has {length(bad)} non-finite value{?s} (NA, NaN or Inf); the first is {format(x[first])} at {pos}.",
             "non_finite", call = call)
  }
  invisible(x)
}

check_choice <- function(x, choices, arg = rlang::caller_arg(x), call = rlang::caller_env()) {
  force(arg)  # before `x` is reassigned below, or the message names the value, not the argument
  if (!is.character(x) || length(x) < 1 || is.na(x[1])) {
    ts_abort("{.arg {arg}} must be one of {.val {choices}}, not {describe(x)}.", "argument", call = call)
  }
  x <- x[1]
  if (!x %in% choices) {
    ts_abort("{.arg {arg}} must be one of {.val {choices}}, not {.val {x}}.", "argument", call = call)
  }
  x
}

check_count <- function(x, min = 0, arg = rlang::caller_arg(x), call = rlang::caller_env()) {
  force(arg)
  if (!is.numeric(x) || length(x) != 1 || is.na(x) || x != round(x) || x < min) {
    ts_abort("{.arg {arg}} must be a whole number >= {min}, not {describe(x)}.", "argument", call = call)
  }
  as.integer(x)
}

check_number <- function(x, lower = -Inf, upper = Inf, arg = rlang::caller_arg(x),
                         call = rlang::caller_env()) {
  force(arg)
  if (!is.numeric(x) || length(x) != 1 || !is.finite(x) || x < lower || x > upper) {
    ts_abort("{.arg {arg}} must be a number in [{lower}, {upper}], not {describe(x)}.", "argument", call = call)
  }
  as.double(x)
}

check_seed <- function(seed, arg = rlang::caller_arg(seed), call = rlang::caller_env()) {
  force(arg)
  if (is.null(seed)) return(as.double(sample.int(.Machine$integer.max, 1L)))
  if (!is.numeric(seed) || length(seed) != 1 || !is.finite(seed) || seed != round(seed) || seed < 0) {
    ts_abort("{.arg {arg}} must be NULL or a non-negative whole number, not {describe(seed)}.",
             "argument", call = call)
  }
  as.double(seed)
}

# Total variance of a layer is zero: every stimulus has the same pattern.
check_variance <- function(x, arg, call = rlang::caller_env()) {
  if (!is.double(x)) storage.mode(x) <- "double"
  if (!is.matrix(x)) x <- matrix(x, ncol = 1)
  if (cpp_rows_constant(x)) {
    ts_abort("{.arg {arg}} has zero variance across stimuli: every stimulus has the same pattern.",
             "zero_variance", call = call)
  }
  invisible(x)
}

# Evaluate expr with R's RNG seeded, restoring the user's RNG state afterwards. The
# generator kind is fixed too, so a seed gives the same draws whatever kind the caller
# uses (future sets L'Ecuyer-CMRG in its workers).
with_seed <- function(seed, expr) {
  env <- globalenv()
  had <- exists(".Random.seed", envir = env, inherits = FALSE)
  old <- if (had) get(".Random.seed", envir = env, inherits = FALSE)
  old_kind <- RNGkind()
  on.exit({
    RNGkind(old_kind[1], old_kind[2], old_kind[3])
    if (had) assign(".Random.seed", old, envir = env) else if (exists(".Random.seed", envir = env, inherits = FALSE))
      rm(".Random.seed", envir = env)
  }, add = TRUE)
  set.seed(seed %% .Machine$integer.max, kind = "Mersenne-Twister", normal.kind = "Inversion",
           sample.kind = "Rejection")
  expr
}

# ---- stimuli matched by id -------------------------------------------------------------
#
# The one rule for every function that compares two sides over the same stimuli:
# * a side "carries ids" unless its ids are NULL or the default "1", "2", ..., n;
# * when both carry ids and they are the same set in another order, `b` is realigned to
#   the order of `a` (one message of class `tensorscope_message_realigned` per call);
# * when both carry ids and the sets differ, a `tensorscope_error_mismatch` lists the
#   first few ids missing on either side;
# * pairing by position happens only when at least one side has no ids.
# Returns the row index that puts `b` in the order of `a` (NULL when nothing moves).

has_ids <- function(ids) {
  !is.null(ids) && !identical(as.character(ids), as.character(seq_along(ids)))
}

match_stimuli <- function(a, b, arg_a = "x", arg_b = "y", what = "stimuli", inform = TRUE,
                          call = rlang::caller_env()) {
  na <- length(a)
  nb <- length(b)
  ids <- has_ids(a) && has_ids(b)
  if (ids) {
    a <- as.character(a)
    b <- as.character(b)
    if (identical(a, b)) return(NULL)
    miss_b <- setdiff(a, b)
    miss_a <- setdiff(b, a)
    if (length(miss_b) || length(miss_a) || na != nb) {
      show <- function(v) paste0(paste(utils::head(v, 5), collapse = ", "), if (length(v) > 5) sprintf(", ... (%d in all)", length(v)))
      bullets <- c("{.arg {arg_a}} and {.arg {arg_b}} are not over the same {what}.")
      only_a <- show(miss_b)
      only_b <- show(miss_a)
      if (length(miss_b)) bullets <- c(bullets, x = "In {.arg {arg_a}}, not in {.arg {arg_b}}: {only_a}.")
      if (length(miss_a)) bullets <- c(bullets, x = "In {.arg {arg_b}}, not in {.arg {arg_a}}: {only_b}.")
      if (!length(miss_a) && !length(miss_b)) bullets <- c(bullets, x = "Some ids repeat.")
      bullets <- c(bullets, i = "Subset both to the common {what} first, e.g. {.code x[ids, ]}.")
      ts_abort(bullets, "mismatch", call = call)
    }
    idx <- match(a, b)
    if (inform) inform_realigned(arg_b, arg_a, what, na)
    return(idx)
  }
  # without ids on a side there is nothing to match; the callers check the lengths
  if (!is.null(a) && !is.null(b) && na != nb) {
    ts_abort("{.arg {arg_a}} has {na} {what} but {.arg {arg_b}} has {nb}.", "mismatch", call = call)
  }
  NULL
}

inform_realigned <- function(arg_b, arg_a, what, n) {
  cli::cli_inform(c(i = "Matched the {what} of {.arg {arg_b}} to those of {.arg {arg_a}} by id ({n} {what})."),
                  class = "tensorscope_message_realigned")
}

# ---- missing values: drop units (columns) or error --------------------------------------
#
# `na = "drop_units"` removes every unit (neuron, voxel, feature: a column) holding a
# non-finite value, with one message saying how many; `na = "error"` leaves the data to
# the finiteness checks (a classed error naming the argument). Works on a matrix, a
# data frame, an array with stimuli first, or a list of those (layers); ts_reps hold
# finite data only and pass through.
check_na <- function(na, arg = rlang::caller_arg(na), call = rlang::caller_env()) {
  force(arg)
  check_choice(na, c("error", "drop_units"), arg = arg, call = call)
}

drop_na_units <- function(x, na, arg = rlang::caller_arg(x), call = rlang::caller_env()) {
  force(arg)
  if (na == "error" || inherits(x, "ts_reps") || inherits(x, "ts_rdm")) return(x)
  one <- function(m, a) {
    if (is.data.frame(m)) m <- as.matrix(m)
    if (!is.numeric(m) && !is.logical(m)) return(list(m = m, dropped = 0L, total = 0L))
    if (is.null(dim(m))) m <- matrix(m, ncol = 1L, dimnames = list(names(m), NULL))
    if (length(dim(m)) > 2) m <- matrix(m, nrow = dim(m)[1], dimnames = list(dimnames(m)[[1]], NULL))
    bad <- colSums(!is.finite(m)) > 0
    if (all(bad)) ts_abort("Every unit (column) of {.arg {a}} has missing values; nothing is left after {.code na = \"drop_units\"}.",
                           "empty", call = call)
    list(m = m[, !bad, drop = FALSE], dropped = sum(bad), total = length(bad))
  }
  if (is.list(x) && !is.data.frame(x)) {
    nms <- names(x) %||% paste0("layer", seq_along(x))
    res <- Map(one, x, sprintf("%s$%s", arg, nms))
    out <- stats::setNames(lapply(res, `[[`, "m"), names(x))
  } else {
    res <- list(one(x, arg))
    out <- res[[1]]$m
  }
  dropped <- sum(vapply(res, `[[`, integer(1), "dropped"))
  total <- sum(vapply(res, `[[`, integer(1), "total"))
  if (dropped > 0) {
    cli::cli_inform("Dropped {dropped} of {total} unit{?s} of {.arg {arg}} with missing values ({.code na = \"drop_units\"}).",
                    class = "tensorscope_message_dropped")
  }
  out
}
