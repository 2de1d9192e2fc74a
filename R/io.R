# Data I/O: NumPy .npy/.npz (own reader in the C++ core, npy.hpp), HDF5 (hdf5r),
# MATLAB .mat (R.matlab) and RDMs in rsatoolbox's HDF5 layout.

# A single existing file path (kind "file" when missing, "argument" when not a path).
check_path <- function(path, exists = TRUE, arg = rlang::caller_arg(path), call = rlang::caller_env()) {
  force(arg)
  if (!is.character(path) || length(path) != 1 || is.na(path) || !nzchar(path)) {
    ts_abort("{.arg {arg}} must be a single file path (a string), not {describe(path)}.", "argument", call = call)
  }
  path <- path.expand(path)
  if (exists && !file.exists(path)) {
    ts_abort("{.arg {arg}} does not exist: {.path {path}}.", "file", call = call)
  }
  if (exists && dir.exists(path)) {
    ts_abort("{.arg {arg}} is a directory, not a file: {.path {path}}.", "file", call = call)
  }
  if (exists && !cpp_is_regular_file(path)) {
    ts_abort("{.arg {arg}} is not a regular file (a named pipe, socket or device): {.path {path}}.", "file", call = call)
  }
  if (!exists && !dir.exists(dirname(path))) {
    ts_abort("{.arg {arg}} is in a directory that does not exist: {.path {dirname(path)}}.", "file", call = call)
  }
  path
}

# Runs a reader of the glue; its classed failure (file, corrupt, type) is raised again
# naming the argument and the file.
io_result <- function(expr, path, arg = "path", call = rlang::caller_env()) {
  cpp_errors(expr, "Cannot read {.arg {arg}} ({.path {path}}).", call = call)
}

#' Read and write NumPy `.npy` and `.npz` files
#'
#' `read_npy()` reads one array from a `.npy` file, `read_npz()` all arrays of a `.npz`
#' archive (as written by `numpy.save`, `numpy.savez` and `numpy.savez_compressed`),
#' and `write_npy()` writes an R vector, matrix or array so that `numpy.load()` returns
#' the same logical array. The reader is tensorscope's own (C++ core, zlib for
#' compressed archives); it needs neither Python nor reticulate.
#'
#' Supported dtypes: fixed-width strings (`<U`, numpy `str_`, and `S`, `bytes_`:
#' returned as character vectors / arrays in UTF-8, trailing NUL padding removed -- so
#' stimulus ids saved beside activations come back as ids), `bool` (returned as logical), `int8`, `int16`, `uint8`, `uint16`
#' and `int32` (integer; an `int32` array holding -2147483648, which is R's
#' `NA_integer_`, comes back as double), `uint32`, `int64`, `uint64` (double: exact
#' up to 2^53), `float16`, `float32` and `float64` (double). Either byte order, C or
#' Fortran order, any rank. An array of numpy shape `(a, b, c)` is returned with
#' `dim = c(a, b, c)` and `x[i, j, k]` equal to numpy's `x[i-1, j-1, k-1]`; 1-d
#' arrays are plain vectors and 0-d arrays length-one vectors.
#'
#' Every size in the file is checked against the file's length before anything is
#' allocated. Errors: a missing file, or one that is not a regular file (a named pipe
#' or device, which would block), is `tensorscope_error_file`; a malformed,
#' truncated or otherwise corrupt file (bad magic, unknown version, broken header,
#' a shape larger than the data, a bad zip structure or CRC) is
#' `tensorscope_error_corrupt`; complex, object and structured dtypes are
#' `tensorscope_error_type` in `read_npy()`, while `read_npz()` skips such members with
#' a warning (class `tensorscope_warning`) and returns the others.
#'
#' `write_npy()` writes doubles as `<f8`, integers as `<i4` and logicals as `|b1`
#' (format version 1.0). `order = "C"` (the default) writes the data in row-major
#' order with `fortran_order: False`, `"F"` writes R's memory as it is with
#' `fortran_order: True`; numpy reads the same array either way. A vector without
#' dimensions is written as a 1-d array.
#'
#' @param path Path of the file.
#' @return `read_npy()`: a vector or array. `read_npz()`: a named list of those, one
#'   per archive member (the names without `.npy`). `write_npy()`: `path`, invisibly.
#' @references NumPy Enhancement Proposal 1, "A simple file format for NumPy arrays"
#'   (`numpy.lib.format`).
#' @export
#' @examples
#' f <- tempfile(fileext = ".npy")
#' x <- array(as.double(1:24), c(2, 3, 4))
#' write_npy(x, f)
#' y <- read_npy(f)
#' identical(x, y)
#' unlink(f)
read_npy <- function(path) {
  path <- check_path(path)
  io_result(cpp_read_npy(path), path)
}

#' @rdname read_npy
#' @export
read_npz <- function(path) {
  path <- check_path(path)
  out <- io_result(cpp_read_npz(path), path)
  skipped <- attr(out, "skipped")
  if (length(skipped)) {
    attr(out, "skipped") <- NULL
    out <- out[!vapply(out, is.null, logical(1))]
    cli::cli_warn(c("Skipped {length(skipped)} member{?s} of {.path {path}} with an unsupported dtype:",
                    stats::setNames(skipped, rep("*", length(skipped)))), class = "tensorscope_warning")
  }
  out
}

#' @rdname read_npy
#' @param x A numeric, integer or logical vector, matrix or array (no `NA` in integer
#'   or logical data, which `.npy` cannot represent; `NA`/`NaN` doubles are written
#'   as NaN).
#' @param order `"C"` or `"F"`: the memory order of the written file.
#' @export
write_npy <- function(x, path, order = c("C", "F")) {
  path <- check_path(path, exists = FALSE)
  order <- check_choice(order, c("C", "F"))
  if (!(is.double(x) || is.integer(x) || is.logical(x)) || is.object(x) && !is.array(x)) {
    ts_abort("{.arg x} must be a double, integer or logical vector, matrix or array, not {describe(x)}.",
             "type")
  }
  if (!is.double(x) && anyNA(x)) {
    ts_abort("{.arg x} is {typeof(x)} with {sum(is.na(x))} NA value{?s}, which .npy cannot store; convert it to double (NaN) first.",
             "non_finite")
  }
  dims <- if (is.null(dim(x))) length(x) else dim(x)
  cpp_errors(cpp_write_npy(x, path, as.double(dims), order == "F"), "Cannot write {.arg path} ({.path {path}}).")
  invisible(path)
}

#' Read a dataset from an HDF5 file
#'
#' Reads one dataset with the `hdf5r` package (Suggests). Arrays come back in
#' numpy/h5py index order: a dataset that h5py shows with shape `(a, b)` is an
#' `a x b` matrix with `x[i, j]` equal to h5py's `x[i-1, j-1]` (hdf5r alone would
#' return the transpose).
#'
#' @param path Path of the `.h5` / `.hdf5` file.
#' @param name Path of the dataset inside the file (e.g. `"group/data"`). `NULL`
#'   reads the only dataset of a file that holds exactly one.
#' @return The dataset as an R vector, matrix, array or (for compound types) data
#'   frame; an empty (null) dataset is `NULL`. Errors: a missing file is
#'   `tensorscope_error_file`, a file HDF5 cannot open `tensorscope_error_corrupt`,
#'   an unknown `name` `tensorscope_error_argument` (the message lists the datasets).
#' @export
#' @examplesIf requireNamespace("hdf5r", quietly = TRUE)
#' f <- tempfile(fileext = ".h5")
#' r <- as_rdm(dist(matrix(rnorm(12), 4)))
#' write_rdm_h5(r, f)
#' read_h5(f, "dissimilarities")
#' unlink(f)
read_h5 <- function(path, name = NULL) {
  path <- check_path(path)
  rlang::check_installed("hdf5r", "to read HDF5 files")
  if (!is.null(name) && (!is.character(name) || length(name) != 1 || is.na(name))) {
    ts_abort("{.arg name} must be NULL or a single dataset path, not {describe(name)}.", "argument")
  }
  h5 <- h5_open(path)
  on.exit(h5$close_all(), add = TRUE)
  sets <- h5_datasets(h5)
  if (is.null(name)) {
    if (length(sets) != 1) {
      ts_abort("{.arg name} is needed: {.path {path}} holds {length(sets)} datasets ({.val {utils::head(sets, 20)}}).",
               "argument")
    }
    name <- sets
  }
  if (!name %in% sets) {
    ts_abort("{.arg name} {.val {name}} is not a dataset in {.path {path}}; it holds {.val {utils::head(sets, 20)}}.",
             "argument")
  }
  h5_read(h5[[name]])
}

h5_open <- function(path, mode = "r", call = rlang::caller_env()) {
  tryCatch(hdf5r::H5File$new(path, mode = mode), error = function(e) {
    msg <- conditionMessage(e)
    kind <- if (mode == "r") "corrupt" else "file"
    ts_abort(c("Cannot open {.arg path} ({.path {path}}) as an HDF5 file.", x = "{msg}"), kind, call = call)
  })
}

h5_datasets <- function(h5) {
  ls <- h5$ls(recursive = TRUE)
  as.character(ls$name[ls$obj_type == "H5I_DATASET"])
}

# A dataset in numpy index order; NULL for an empty (H5S_NULL) dataspace.
h5_read <- function(ds) {
  if (identical(as.character(ds$get_space()$get_simple_extent_type()), "H5S_NULL")) return(NULL)
  x <- ds$read(drop = FALSE)
  d <- dim(x)
  if (length(d) >= 2) x <- aperm(x, rev(seq_along(d))) else dim(x) <- NULL
  x
}

#' Read a MATLAB `.mat` file
#'
#' Reads a MATLAB (v4, v5, v6 and v7, i.e. not v7.3/HDF5) file with the `R.matlab`
#' package (Suggests) and returns its variables as a named list. MATLAB structs
#' come back as R.matlab's struct arrays (lists with a `dim` whose first dimension
#' names the fields); [mat_rdms()] turns the usual RDM structs into a `ts_rdm`.
#' v7.3 files are HDF5: read them with [read_h5()].
#'
#' @param path Path of the `.mat` file.
#' @return A named list, one element per MATLAB variable. Errors: missing file
#'   `tensorscope_error_file`, unreadable file `tensorscope_error_corrupt`, a v7.3
#'   (HDF5) file `tensorscope_error_type`.
#' @export
#' @examplesIf requireNamespace("R.matlab", quietly = TRUE)
#' f <- tempfile(fileext = ".mat")
#' m <- as.matrix(dist(matrix(rnorm(12), 4)))
#' R.matlab::writeMat(f, RDM = m)
#' read_mat(f)$RDM
#' unlink(f)
read_mat <- function(path) {
  path <- check_path(path)
  rlang::check_installed("R.matlab", "to read MATLAB files")
  con <- file(path, "rb")
  head <- readBin(con, "raw", 520L)
  close(con)
  if (length(head) >= 520 && identical(head[513:520], as.raw(c(0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a)))) {
    ts_abort("{.arg path} ({.path {path}}) is a MATLAB v7.3 (HDF5) file; read it with {.fn read_h5}.", "type")
  }
  out <- tryCatch(suppressWarnings(R.matlab::readMat(path)), error = function(e) {
    msg <- conditionMessage(e)
    ts_abort(c("Cannot read {.arg path} ({.path {path}}) as a MATLAB file.", x = "{msg}"), "corrupt",
             call = rlang::caller_env(4))
  })
  attr(out, "header") <- NULL
  out
}

#' RDMs from MATLAB structures
#'
#' Turns the layouts in which MATLAB RSA toolboxes store RDMs into one `ts_rdm`:
#' * a struct array with an RDM field (the rsatoolbox for MATLAB layout, e.g. `RDMs`
#'   in `92_brainRDMs.mat`, 1 x 4 x 2 with fields `RDM`, `name`, `color`): one RDM
#'   per struct element, named by the `name` field; the element's position in the
#'   struct array is kept in descriptor columns `dim1`, `dim2`, ... (one per struct
#'   dimension longer than 1);
#' * an n x n x k numeric array, a square matrix, or a list of square matrices (as
#'   [as_rdm()]);
#' * the list [read_mat()] returns, when it holds exactly one of the above.
#'
#' @param x A struct array from [read_mat()] / `R.matlab::readMat()`, an array, a
#'   matrix, or the list `read_mat()` returns.
#' @param rdm,name Names of the struct fields holding the matrix and its name.
#' @param labels Condition labels (default `"1"`, `"2"`, ...).
#' @return A `ts_rdm` (see [rdm()]); `descriptors` has `name` and, for struct
#'   arrays, `dim1`, `dim2`, ... Errors: `tensorscope_error_not_rdm` when `x` holds no
#'   RDMs or a matrix is not an RDM (naming the struct element).
#' @export
#' @examples
#' rdms <- lapply(1:3, function(i) as.matrix(dist(matrix(rnorm(20), 5))))
#' # what read_mat() returns for a 1 x 3 MATLAB struct array with fields RDM and name
#' s <- array(list(), c(2, 1, 3), dimnames = list(c("RDM", "name"), NULL, NULL))
#' for (i in 1:3) { s[[1, 1, i]] <- rdms[[i]]; s[[2, 1, i]] <- paste("subject", i) }
#' r <- mat_rdms(s)
#' r
#' r$descriptors
mat_rdms <- function(x, rdm = "RDM", name = "name", labels = NULL) {
  arg <- if (is.symbol(substitute(x))) rlang::caller_arg(x) else "x"  # the variable passed, never a value
  call <- rlang::current_env()
  if (is.list(x) && is.null(dim(x)) && !is.null(names(x)) && !any(vapply(x, inherits, logical(1), "ts_rdm"))) {
    usable <- vapply(x, function(v) {
      is_mat_struct(v, rdm) || is.numeric(v) && length(dim(v)) %in% 2:3 && dim(v)[1] == dim(v)[2] && dim(v)[1] > 1
    }, logical(1))
    if (sum(usable) == 1) {
      return(mat_rdms(x[[which(usable)]], rdm, name, labels))
    }
  }
  if (!is_mat_struct(x, rdm)) {
    if (is.list(x) && !is.null(dim(x))) {
      ts_abort("{.arg {arg}} is a struct array without a field {.val {rdm}} (fields: {.val {dimnames(x)[[1]]}}).",
               "not_rdm")
    }
    return(as_rdm(x, labels = labels))
  }
  d <- dim(x)
  fields <- dimnames(x)[[1]]
  k <- prod(d[-1])
  flat <- matrix(x, nrow = d[1], ncol = k, dimnames = list(fields, NULL))
  mats <- lapply(seq_len(k), function(i) {
    m <- flat[[rdm, i]]
    attributes(m) <- list(dim = dim(m))
    m
  })
  nm <- if (name %in% fields) {
    vapply(seq_len(k), function(i) {
      v <- flat[[name, i]]
      if (is.character(v) && length(v) >= 1) v[1] else paste0("rdm", i)
    }, "")
  } else paste0("rdm", seq_len(k))
  pos <- arrayInd(seq_len(k), d[-1])
  desc <- tibble::tibble(name = nm)
  for (j in seq_along(d[-1])) if (d[-1][j] > 1) desc[[paste0("dim", j)]] <- pos[, j]
  names(mats) <- sprintf("%s[[\"%s\", %d]]", arg, rdm, seq_len(k))
  r <- as_rdm(mats, labels = labels, names = make.unique(nm))
  r$descriptors <- desc
  r$descriptors$name <- make.unique(nm)
  r
}

is_mat_struct <- function(x, field) {
  is.list(x) && !is.null(dim(x)) && length(dim(x)) >= 2 && !is.null(dimnames(x)[[1]]) &&
    field %in% dimnames(x)[[1]]
}

#' RDMs in rsatoolbox's HDF5 format
#'
#' `write_rdm_h5()` saves a `ts_rdm` in the layout of rsatoolbox's
#' `RDMs.save(filename, file_type = "hdf5")`, and `read_rdm_h5()` reads such files
#' (written by rsatoolbox or by `write_rdm_h5()`), so RDMs move between R and
#' Python unchanged. The layout (rsatoolbox `rdm/rdms.py`, `io/hdf5.py`):
#' * dataset `dissimilarities`: n_rdm x n_pairs float64 (scipy `squareform` order);
#' * root attribute `dissimilarity_measure` (a string; an empty dataset when None)
#'   and `rsatoolbox_version`;
#' * group `descriptors` (one value per object; written empty, ignored on reading);
#' * group `rdm_descriptors`: `index` (0-based) and `name`, plus every other column
#'   of `rdm$descriptors`;
#' * group `pattern_descriptors`: `index` (0-based) and `conds` (the condition
#'   labels; rsatoolbox's `calc_rdm` names them after the dataset's descriptor,
#'   usually `conds`).
#' Strings are fixed-length byte strings, as rsatoolbox writes them.
#'
#' On reading, the condition labels are the first of the pattern descriptors `conds`,
#' `conditions`, `condition`, `stimulus`, `stimuli`, `labels`, `names` present (else
#' the first non-index one, else `"1"`, `"2"`, ...), and the RDM names come from the
#' rdm descriptor `name` (else `"rdm1"`, ...); other rdm descriptors become columns of
#' `descriptors`.
#'
#' @param rdm A `ts_rdm` (or anything [as_rdm()] accepts).
#' @param path Path of the `.h5` file.
#' @param overwrite Replace an existing file? (rsatoolbox refuses by default too.)
#' @return `write_rdm_h5()`: `path`, invisibly. `read_rdm_h5()`: a `ts_rdm`. Errors:
#'   missing file `tensorscope_error_file`, a file that is not HDF5 or lacks the
#'   rsatoolbox datasets `tensorscope_error_corrupt`, an existing `path` without
#'   `overwrite` `tensorscope_error_file`.
#' @references Schütt, Kipnis, Diedrichsen & Kriegeskorte (2023). Statistical inference
#'   on representational geometries. eLife 12 (rsatoolbox).
#' @export
#' @examplesIf requireNamespace("hdf5r", quietly = TRUE)
#' f <- tempfile(fileext = ".h5")
#' r <- rdm(matrix(rnorm(40), 5, dimnames = list(letters[1:5], NULL)))
#' write_rdm_h5(r, f)
#' read_rdm_h5(f)
#' unlink(f)
write_rdm_h5 <- function(rdm, path, overwrite = FALSE) {
  rdm <- as_rdm(rdm)
  path <- check_path(path, exists = FALSE)
  if (!is.logical(overwrite) || length(overwrite) != 1 || is.na(overwrite)) {
    ts_abort("{.arg overwrite} must be TRUE or FALSE, not {describe(overwrite)}.", "argument")
  }
  if (file.exists(path)) {
    if (!overwrite) ts_abort("{.arg path} already exists: {.path {path}}; use {.code overwrite = TRUE}.", "file")
    unlink(path)
  }
  rlang::check_installed("hdf5r", "to write HDF5 files")
  h5 <- h5_open(path, "w")
  on.exit(h5$close_all(), add = TRUE)
  d <- rdm$dissimilarities
  h5$create_dataset("dissimilarities", t(d), dtype = hdf5r::h5types$H5T_IEEE_F64LE, chunk_dims = NULL)
  h5_string_attr(h5, "rsatoolbox_version", "0.0.1")
  if (!is.null(rdm$method) && !is.na(rdm$method) && nzchar(rdm$method)) {
    h5_string_attr(h5, "dissimilarity_measure", rdm$method)
  }
  h5$create_group("descriptors")
  g <- h5$create_group("rdm_descriptors")
  desc <- rdm$descriptors
  h5_write_vector(g, "index", seq_len(nrow(d)) - 1L)
  for (col in names(desc)) {
    v <- desc[[col]]
    if (col == "index" || !is.atomic(v) || length(v) != nrow(d)) next
    h5_write_vector(g, col, v)
  }
  p <- h5$create_group("pattern_descriptors")
  h5_write_vector(p, "index", seq_along(rdm$conditions) - 1L)
  h5_write_vector(p, "conds", rdm$conditions)
  invisible(path)
}

h5_string_attr <- function(obj, name, value) {
  obj$create_attr(name, value, dtype = hdf5r::H5T_STRING$new(size = Inf)$set_cset("UTF-8"),
                  space = hdf5r::H5S$new("scalar"))
}

# Fixed-length byte strings for character data (what h5py writes for numpy 'S'
# arrays), int32 for integers/logicals, float64 otherwise.
h5_write_vector <- function(group, name, v) {
  if (is.character(v) || is.factor(v)) {
    v <- as.character(v)
    v[is.na(v)] <- ""
    size <- max(1L, nchar(v, type = "bytes"))
    group$create_dataset(name, v, dtype = hdf5r::H5T_STRING$new(size = size)$set_strpad(hdf5r::h5const$H5T_STR_NULLPAD),
                         chunk_dims = NULL)
  } else if (is.integer(v) || is.logical(v)) {
    group$create_dataset(name, as.integer(v), dtype = hdf5r::h5types$H5T_STD_I64LE, chunk_dims = NULL)
  } else {
    group$create_dataset(name, as.double(v), dtype = hdf5r::h5types$H5T_IEEE_F64LE, chunk_dims = NULL)
  }
}

#' @rdname write_rdm_h5
#' @export
read_rdm_h5 <- function(path) {
  path <- check_path(path)
  rlang::check_installed("hdf5r", "to read HDF5 files")
  h5 <- h5_open(path)
  on.exit(h5$close_all(), add = TRUE)
  if (!h5$exists("dissimilarities")) {
    ts_abort("{.arg path} ({.path {path}}) is not an rsatoolbox RDM file: it has no {.val dissimilarities} dataset.", "corrupt")
  }
  d <- h5_read(h5[["dissimilarities"]])
  if (!is.numeric(d) || length(d) == 0) {
    ts_abort("{.arg path} ({.path {path}}): {.val dissimilarities} must be a non-empty numeric array, not {describe(d)}.", "corrupt")
  }
  if (is.null(dim(d))) d <- matrix(d, nrow = 1)
  if (length(dim(d)) == 3) {  # n_rdm x n x n matrices
    d <- t(vapply(seq_len(dim(d)[1]), function(i) {
      m <- d[i, , ]
      m[upper_pairs(nrow(m))]
    }, numeric(dim(d)[2] * (dim(d)[2] - 1) / 2)))
    if (dim(d)[1] == 1) d <- matrix(d, nrow = 1)
  }
  if (length(dim(d)) != 2) ts_abort("{.arg path} ({.path {path}}): {.val dissimilarities} has {length(dim(d))} dimensions.", "corrupt")
  n <- (1 + sqrt(1 + 8 * ncol(d))) / 2
  if (n != round(n) || n < 2) {
    ts_abort("{.arg path} ({.path {path}}): {.val dissimilarities} has {ncol(d)} columns, which is not n (n - 1) / 2 for any n.", "corrupt")
  }
  method <- if ("dissimilarity_measure" %in% hdf5r::h5attr_names(h5)) {
    as.character(hdf5r::h5attr(h5, "dissimilarity_measure"))[1]
  } else "unknown"
  rd <- h5_group_vectors(h5, "rdm_descriptors", nrow(d))
  pd <- h5_group_vectors(h5, "pattern_descriptors", n)
  lab_name <- intersect(c("conds", "conditions", "condition", "stimulus", "stimuli", "labels", "names"), names(pd))
  if (!length(lab_name)) lab_name <- setdiff(names(pd), "index")
  labels <- if (length(lab_name)) as.character(pd[[lab_name[1]]]) else as.character(seq_len(n))
  nm <- if (!is.null(rd$name)) as.character(rd$name) else paste0("rdm", seq_len(nrow(d)))
  desc <- tibble::tibble(name = nm)
  for (col in setdiff(names(rd), c("name", "index"))) desc[[col]] <- rd[[col]]
  storage.mode(d) <- "double"
  new_rdm(d, labels, desc, method)
}

# The datasets of one group with `len` values each (others are skipped).
h5_group_vectors <- function(h5, group, len) {
  if (!h5$exists(group)) return(list())
  g <- h5[[group]]
  out <- list()
  for (nm in g$ls()$name) {
    obj <- g[[nm]]
    if (!inherits(obj, "H5D")) next
    v <- h5_read(obj)
    if (is.atomic(v) && length(v) == len) out[[nm]] <- as.vector(v)
  }
  out
}
