# Argument checks shared by every family. Each raises a classed error
# ("tensorscope_error_<kind>", "tensorscope_error") naming the argument and the value.

ts_abort <- function(message, kind, ..., call = rlang::caller_env(), .envir = parent.frame()) {
  cli::cli_abort(message, class = c(paste0("tensorscope_error_", kind), "tensorscope_error"),
                 ..., call = call, .envir = .envir)
}

# Evaluates expr, a call into C++ (the Rcpp glue or the LibTorch backend). C++ errors
# arrive as conditions of class `tensorscope_error_<kind>` with a `kind` field (the
# table in inst/include/tensorscope/errors.hpp; src/errors.h); they are raised again
# headed by `what` (a cli string evaluated in `envir`), keeping their kind, with the
# first line of the C++ message as a bullet and then the `hint` bullets. A LibTorch
# failure (kind "torch") becomes `torch_kind` when the caller knows better (a model that
# fails on its inputs: "mismatch"). Errors raised in R (ts_abort()) pass unchanged; any
# other R error from inside the C++ call (an allocation, say) gets `torch_kind` or
# "internal".
cpp_errors <- function(expr, what, hint = NULL, torch_kind = NULL, call = rlang::caller_env(),
                       envir = parent.frame()) {
  tryCatch(expr, error = function(e) {
    if (inherits(e, "tensorscope_error") && is.null(e$kind)) stop(e)
    kind <- e$kind %||% "torch"
    if (kind == "torch") kind <- torch_kind %||% if (is.null(e$kind)) "internal" else "torch"
    env <- new.env(parent = envir)   # `what` may refer to the caller's variables
    # a damaged file can put invalid UTF-8 in LibTorch's message: replace those bytes
    env$msg <- sub("\n.*", "", iconv(conditionMessage(e), "UTF-8", "UTF-8", sub = "?"))
    ts_abort(c(what, x = "{msg}", hint), kind, call = call, .envir = env)
  })
}

# The error kinds (kind, description) of the table shared with C++.
error_kinds <- function() cpp_error_kinds()

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

# A size argument: a whole number in [min, max]. max defaults to the largest R integer,
# so a count never overflows the int the core receives (1e10 or Inf is an error here,
# not a wrapped negative number or a huge allocation there); callers pass a tighter
# max where the size is bounded by the data.
check_count <- function(x, min = 0, max = .Machine$integer.max, arg = rlang::caller_arg(x),
                        call = rlang::caller_env()) {
  force(arg)
  if (!is.numeric(x) || length(x) != 1 || !is.finite(x) || x != round(x) || x < min || x > max) {
    range <- if (max < .Machine$integer.max) sprintf("in [%s, %s]", format(min), format(max)) else sprintf(">= %s", format(min))
    ts_abort("{.arg {arg}} must be a whole number {range}, not {describe(x)}.", "argument", call = call)
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

# Power-of-two factors (one per value of `big`, the largest |value| of a matrix, row or
# RDM) that bring values beyond 1e+-100 near 1 (exactly: no rounding), and 1 otherwise.
extreme_scale <- function(big) {
  ifelse(big > 1e100 | (big < 1e-100 & big > 0), 2^-ceiling(log2(big)), 1)
}

# x (a finite double matrix) scaled by a power of two when its largest |value| is beyond
# 1e+-100, where sums of squares overflow or underflow; unchanged (no copy) otherwise.
# For scale-invariant metrics only (CKA, correlation/cosine RDMs, spectra, ...): they
# then give the unscaled answer for data x 1e300 or x 1e-300. with_factor: also return
# the factor, to scale a distance-valued output back.
scale_extreme_data <- function(x, with_factor = FALSE) {
  f <- extreme_scale(cpp_max_abs(x))
  if (f != 1) x <- x * f
  if (with_factor) list(x = x, factor = f) else x
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

# y (a matrix) with its rows in x's stimulus order, matched by row names (see
# match_stimuli()); an error when the numbers of stimuli differ.
align_rows <- function(x, y, arg_x = "x", arg_y = "y", call = rlang::caller_env()) {
  idx <- match_stimuli(rownames(x), rownames(y), arg_x, arg_y, call = call)
  if (!is.null(idx)) y <- y[idx, , drop = FALSE]
  if (nrow(x) != nrow(y)) {
    ts_abort("{.arg {arg_x}} and {.arg {arg_y}} must have the same stimuli: {.arg {arg_x}} has {nrow(x)} rows, {.arg {arg_y}} has {nrow(y)}.",
             "mismatch", call = call)
  }
  y
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
