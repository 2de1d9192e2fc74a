# Data I/O: .npy/.npz (own reader), HDF5, MATLAB, rsatoolbox RDM files.

fx <- function(...) test_path("fixtures", "npy", ...)

# The array numpy saved, rebuilt from <name>.txt (shape, then the values in C order).
numpy_expected <- function(name) {
  lines <- readLines(fx(paste0(name, ".txt")))
  shape <- if (nzchar(lines[1])) as.integer(strsplit(lines[1], " ")[[1]]) else integer(0)
  vals <- as.numeric(lines[-1])
  if (length(shape) >= 2) aperm(array(vals, rev(shape)), rev(seq_along(shape))) else vals
}

py_numpy <- function() {
  py <- "/usr/bin/python3"
  ok <- file.exists(py) && system2(py, c("-c", shQuote("import numpy")), stdout = FALSE, stderr = FALSE) == 0
  if (ok) py else ""
}

test_that("read_npy() reads what numpy wrote: every dtype, byte order, memory order and rank", {
  types <- c(f8 = "double", f4 = "double", f2 = "double", i1 = "integer", i2 = "integer", i4 = "integer",
             i8 = "double", u1 = "integer", u2 = "integer", u4 = "double", u8 = "double", i4_min = "double",
             b1 = "logical", be_f8 = "double", be_i4 = "integer", be_f2 = "double", be_u2 = "integer",
             fortran_f8 = "double", fortran_i2 = "integer", rank0 = "double", rank1 = "double",
             rank4 = "double", empty = "double")
  for (nm in names(types)) {
    x <- read_npy(fx(paste0(nm, ".npy")))
    expect_identical(typeof(x), types[[nm]], label = nm)
    want <- numpy_expected(nm)
    if (is.logical(x)) want <- want != 0
    expect_identical(dim(x), dim(want), label = nm)
    expect_identical(as.double(x), as.double(want), label = nm)
  }
  # the logical index order: numpy x[0, 1, 2] is R x[1, 2, 3]
  x <- read_npy(fx("f8.npy"))
  vals <- as.numeric(readLines(fx("f8.txt"))[-1])
  expect_identical(x[1, 2, 3], vals[0 * 12 + 1 * 4 + 2 + 1])
  expect_identical(x[2, 3, 4], vals[24])
  # float16 special values and int32's INT_MIN (R's NA_integer_) kept exactly
  h <- read_npy(fx("f2.npy"))
  expect_identical(h[1, 4], 65504)
  expect_identical(h[2, 1], 2^-24)
  expect_true(is.nan(h[3, 1]))
  expect_identical(h[2, 3:4], c(Inf, -Inf))
  expect_identical(read_npy(fx("i4_min.npy"))[1, 1], -2147483648)
  expect_identical(read_npy(fx("u8.npy"))[1, 1, 2], 2^53)
})

test_that("read_npz() reads stored and deflate-compressed archives", {
  s <- read_npz(fx("stored.npz"))
  z <- read_npz(fx("compressed.npz"))
  expect_identical(s, z)
  expect_named(s, c("a", "b", "c"))
  expect_identical(s$a, matrix(as.double(0:11), 3, 4, byrow = TRUE))
  expect_identical(s$b, c(TRUE, FALSE, TRUE))
  expect_identical(s$c, aperm(array(0:23, c(4, 3, 2)), 3:1))
})

test_that("write_npy() round-trips every R type in both memory orders", {
  f <- withr::local_tempfile(fileext = ".npy")
  set.seed(1)
  cases <- list(array(rnorm(120), c(2, 3, 4, 5)), matrix(1:12, 3), c(TRUE, FALSE, NA)[1:2],
                array(rnorm(6), c(1, 6, 1)), rnorm(7), c(NaN, Inf, -Inf, 1), 5L, numeric(0),
                matrix(numeric(0), 0, 3), array(sample(c(TRUE, FALSE), 24, TRUE), 2:4))
  for (x in cases) for (ord in c("C", "F")) {
    write_npy(x, f, order = ord)
    y <- read_npy(f)
    expect_identical(y, x)
  }
  # the header is a multiple of 64 bytes and the file exactly header + data
  write_npy(matrix(1, 3, 5), f)
  b <- readBin(f, "raw", 1e4)
  hlen <- as.integer(b[9]) + 256L * as.integer(b[10])
  expect_equal((10 + hlen) %% 64, 0)
  expect_length(b, 10 + hlen + 15 * 8)
  expect_match(rawToChar(b[11:(10 + hlen)]), "'shape': (3, 5)", fixed = TRUE)
})

test_that("numpy reads what write_npy() wrote as the same logical array", {
  py <- py_numpy()
  skip_if(!nzchar(py), "Debian's python3 with numpy not found")
  f <- withr::local_tempfile(fileext = ".npy")
  x <- array(as.double(1:24) + 0.5, c(2, 3, 4))
  for (ord in c("C", "F")) {
    write_npy(x, f, order = ord)
    out <- system2(py, c("-c", shQuote(sprintf(
      "import numpy as np; a = np.load('%s'); print(a.shape, a[0, 1, 2], a[1, 2, 3], a.dtype, a.flags['F_CONTIGUOUS'])", f))),
      stdout = TRUE)
    expect_identical(out, sprintf("(2, 3, 4) %s %s float64 %s", x[1, 2, 3], x[2, 3, 4], if (ord == "F") "True" else "False"))
  }
  write_npy(matrix(c(1L, -2L, 3L, 4L), 2), f)
  out <- system2(py, c("-c", shQuote(sprintf("import numpy as np; a = np.load('%s'); print(a.dtype, a[0, 1], a[1, 0])", f))),
                 stdout = TRUE)
  expect_identical(out, "int32 3 -2")
})

# ---- corrupt files ---------------------------------------------------------------------

# Header bytes of a v1.0 .npy with the given dict text and data bytes.
npy_bytes <- function(dict, data = raw(0), magic = c(as.raw(0x93), charToRaw("NUMPY")), version = as.raw(c(1, 0)),
                      hlen = NULL) {
  h <- charToRaw(dict)
  hlen <- hlen %||% length(h)
  c(magic, version, as.raw(hlen %% 256), as.raw(hlen %/% 256), h, data)
}
`%||%` <- function(a, b) if (is.null(a)) b else a

expect_corrupt <- function(bytes, class = "tensorscope_error_corrupt", reader = read_npy, ext = ".npy") {
  f <- withr::local_tempfile(fileext = ext)
  writeBin(bytes, f)
  expect_error(reader(f), class = class)
}

test_that("malformed .npy files give classed errors", {
  dict <- function(descr = "'<f8'", fortran = "False", shape = "(2,)") {
    sprintf("{'descr': %s, 'fortran_order': %s, 'shape': %s, }\n", descr, fortran, shape)
  }
  data <- writeBin(c(1, 2), raw())
  ok <- withr::local_tempfile(fileext = ".npy")
  writeBin(npy_bytes(dict(), data), ok)
  expect_identical(read_npy(ok), c(1, 2))  # the template itself is valid
  expect_corrupt(npy_bytes(dict(), data, magic = charToRaw("xNUMPY")))       # bad magic
  expect_corrupt(npy_bytes(dict(), data, version = as.raw(c(9, 0))))         # bad version
  expect_corrupt(npy_bytes(dict(), data, version = as.raw(c(1, 5))))
  expect_corrupt(npy_bytes(dict(), data, hlen = 60000))                      # header past the end
  expect_corrupt(npy_bytes(dict(), data[1:12]))                             # truncated data
  expect_corrupt(npy_bytes(dict(shape = "(3,)"), data))                     # shape exceeds the file
  expect_corrupt(npy_bytes(dict(shape = "(-2,)"), data))                    # negative dimension
  expect_corrupt(npy_bytes(dict(shape = "(99999999999999999999999,)"), data))  # huge
  expect_corrupt(npy_bytes(dict(shape = "(4294967296, 4294967296, 4294967296)"), data))  # product overflows
  expect_corrupt(npy_bytes(dict(shape = "(1000000000, 1000000000)"), data)) # far more than the file
  expect_corrupt(npy_bytes(dict(shape = "(2, x)"), data))
  expect_corrupt(npy_bytes(dict(fortran = "Maybe"), data))
  expect_corrupt(npy_bytes(dict(descr = "'<q9'"), data))                    # unknown dtype
  expect_corrupt(npy_bytes(dict(descr = "'!f8'"), data))                    # bad byte order
  expect_corrupt(npy_bytes("{'descr': '<f8', 'shape': (2,), }\n", data))    # missing key
  expect_corrupt(npy_bytes("{'descr': '<f8', 'fortran_order': False, 'shape': (2,), 'x': 1}\n", data))
  expect_corrupt(npy_bytes(paste0(dict(), "\n"), data, hlen = 10))          # header cut short
  h <- npy_bytes(dict(), data)
  h[20] <- as.raw(0xe9)                                                     # non-ASCII header
  expect_corrupt(h)
  expect_corrupt(raw(0))
  expect_corrupt(as.raw(0x93))
  # unsupported but well-formed: complex, structured (strings are read: see below)
  expect_corrupt(readBin(fx("complex.npy"), "raw", 1e4), class = "tensorscope_error_type")
  expect_corrupt(npy_bytes(dict(descr = "'<U0'"), data), class = "tensorscope_error_type")
  expect_corrupt(npy_bytes(dict(descr = "'|O'"), data), class = "tensorscope_error_type")
  expect_corrupt(npy_bytes(dict(descr = "[('a', '<f8')]"), data), class = "tensorscope_error_type")
  # a header claiming 2^31 columns of an empty array cannot be an R array
  expect_corrupt(npy_bytes(dict(shape = "(0, 3000000000)"), raw(0)), class = "tensorscope_error_type")
})

test_that("malformed .npz archives give classed errors", {
  z <- readBin(fx("compressed.npz"), "raw", 1e5)
  expect_corrupt(z[1:(length(z) - 30)], reader = read_npz, ext = ".npz")       # EOCD cut
  expect_corrupt(charToRaw("PK not really a zip archive at all, just text"), reader = read_npz, ext = ".npz")
  # flip a byte inside the first member's compressed data: inflate or the CRC fails
  bad <- z
  bad[60] <- xor(bad[60], as.raw(0xff))
  expect_corrupt(bad, reader = read_npz, ext = ".npz")
  # a member whose recorded uncompressed size is impossibly large for its data
  eocd <- max(which(vapply(seq_len(length(z) - 3), function(i) identical(z[i:(i + 3)], as.raw(c(0x50, 0x4b, 0x05, 0x06))), NA)))
  cd <- sum(as.integer(z[eocd + 16:19]) * 256^(0:3)) + 1
  bad <- z
  bad[cd + 24:27] <- as.raw(c(0xff, 0xff, 0xff, 0x7f))
  expect_corrupt(bad, reader = read_npz, ext = ".npz")
  # a .npy file is not an archive
  expect_corrupt(readBin(fx("f8.npy"), "raw", 1e4), reader = read_npz, ext = ".npz")
})

# The glue's answer for some bytes: an R array or its classed error, as a failure object
# (kind, message), never a crash. (cpp_read_npy_raw runs the file readers' code on bytes
# in memory, so that thousands of variants need no temporary files.)
raw_read <- function(bytes, npz = FALSE) {
  tryCatch(tensorscope:::cpp_read_npy_raw(bytes, npz), tensorscope_error = function(e) {
    stopifnot(inherits(e, paste0("tensorscope_error_", e$kind)))
    structure(list(kind = e$kind, message = conditionMessage(e)), class = "ts_io_failure")
  })
}

test_that("fuzz: every truncation and seeded byte mutations of valid files give a value or a classed failure", {
  set.seed(20240607)
  for (src in c("f8.npy", "be_i4.npy", "fortran_i2.npy", "f2.npy", "stored.npz", "compressed.npz")) {
    npz <- grepl("npz$", src)
    b <- readBin(fx(src), "raw", 1e5)
    full <- raw_read(b, npz)
    expect_false(inherits(full, "ts_io_failure"))
    # truncated at every offset: always a "corrupt" failure
    kinds <- vapply(seq_len(length(b)) - 1L, function(k) {
      r <- raw_read(b[seq_len(k)], npz)
      if (inherits(r, "ts_io_failure")) r$kind else "ok"
    }, "")
    expect_true(all(kinds == "corrupt"), label = paste(src, "truncations"))
    # every byte replaced by a random value (twice): a value or a classed failure
    for (rep in 1:2) {
      outcome <- vapply(seq_along(b), function(i) {
        m <- b
        m[i] <- as.raw(bitwXor(as.integer(m[i]), sample.int(255, 1)))
        r <- raw_read(m, npz)
        if (inherits(r, "ts_io_failure")) r$kind else if (is.atomic(r) || is.list(r)) "ok" else "other"
      }, "")
      expect_true(all(outcome %in% c("ok", "corrupt", "type")), label = paste(src, "mutations"))
      # header bytes matter: many mutations there must be caught
      expect_gt(sum(outcome != "ok"), 0)
    }
  }
  # random garbage of every small length
  for (n in 0:200) {
    r <- raw_read(as.raw(sample.int(256, n, TRUE) - 1L))
    expect_true(inherits(r, "ts_io_failure") && r$kind == "corrupt")
  }
})

# ---- HDF5 --------------------------------------------------------------------------------

test_that("read_h5() returns datasets in numpy index order", {
  skip_if_not_installed("hdf5r")
  skip_if(!file.exists(fx("plain.h5")), "HDF5 fixtures not written (no h5py)")
  expect_identical(read_h5(fx("plain.h5"), "grp/x"), matrix(as.double(0:5), 2, 3, byrow = TRUE))
  y <- read_h5(fx("plain.h5"), "y")
  expect_identical(dim(y), c(2L, 3L, 4L))
  expect_identical(y, aperm(array(0:23, c(4, 3, 2)), 3:1))
  # singleton dimensions are kept: h5py's (1, 15) is a 1 x 15 matrix
  f <- withr::local_tempfile(fileext = ".h5")
  write_rdm_h5(as_rdm(dist(1:6)), f)
  expect_identical(read_h5(f, "dissimilarities"), matrix(as.double(dist(1:6)), 1))
  expect_identical(read_h5(f, "pattern_descriptors/conds"), as.character(1:6))
  expect_error(read_h5(fx("plain.h5")), class = "tensorscope_error_argument")  # two datasets
  expect_error(read_h5(fx("plain.h5"), "nope"), class = "tensorscope_error_argument")
  expect_error(read_h5(fx("plain.h5"), 3), class = "tensorscope_error_argument")
  expect_error(read_h5(fx("f8.npy"), "x"), class = "tensorscope_error_corrupt")
  expect_error(read_h5(fx("missing.h5"), "x"), class = "tensorscope_error_file")
})

test_that("read_rdm_h5() reads an rsatoolbox RDMs file written by h5py", {
  skip_if_not_installed("hdf5r")
  skip_if(!file.exists(fx("rsatoolbox_rdms.h5")), "HDF5 fixtures not written (no h5py)")
  r <- read_rdm_h5(fx("rsatoolbox_rdms.h5"))
  expect_s3_class(r, "ts_rdm")
  lines <- readLines(fx("rsatoolbox_rdms.txt"))
  want <- matrix(as.numeric(lines[-1]), 3, 10, byrow = TRUE)
  expect_identical(r$dissimilarities, want)
  expect_identical(r$conditions, c("face", "body", "house", "tree", "car"))
  expect_identical(r$descriptors$name, c("subj1", "subj2", "subj3"))
  expect_identical(r$descriptors$roi, c(1.5, 2.5, 3.5))
  expect_identical(r$method, "correlation")
  # squareform order: pair (1, 3) is the second entry
  expect_identical(as.matrix(r, 2)["face", "house"], want[2, 2])
})

test_that("write_rdm_h5() round-trips and writes rsatoolbox's layout", {
  skip_if_not_installed("hdf5r")
  set.seed(3)
  r <- rdm(matrix(rnorm(60), 6, dimnames = list(paste0("c", 1:6), NULL)))
  r2 <- as_rdm(list(a = r, b = rdm(matrix(rnorm(60), 6, dimnames = list(paste0("c", 1:6), NULL)))))
  r2$descriptors$subject <- c(4L, 9L)
  f <- withr::local_tempfile(fileext = ".h5")
  write_rdm_h5(r2, f)
  back <- read_rdm_h5(f)
  expect_identical(back$dissimilarities, r2$dissimilarities)
  expect_identical(back$conditions, r2$conditions)
  expect_identical(back$descriptors$name, r2$descriptors$name)
  expect_equal(back$descriptors$subject, c(4, 9))
  expect_identical(back$method, r2$method)
  expect_error(write_rdm_h5(r, f), class = "tensorscope_error_file")   # exists
  write_rdm_h5(r, f, overwrite = TRUE)
  expect_identical(read_rdm_h5(f)$dissimilarities, r$dissimilarities)
  # what rsatoolbox's read_dict_hdf5 sees (its _read_group, with h5py)
  py <- py_numpy()
  skip_if(!nzchar(py) || system2(py, c("-c", "'import h5py'"), stdout = FALSE, stderr = FALSE) != 0, "no h5py")
  code <- sprintf(paste(
    "import h5py, numpy as np",
    "f = h5py.File('%s', 'r')",
    "d = f['dissimilarities']",
    "print(d.shape, d.dtype, round(float(d[0, 1]), 12))",
    "print(f.attrs['dissimilarity_measure'], f.attrs['rsatoolbox_version'])",
    "print(sorted(f.keys()), sorted(f['rdm_descriptors'].keys()), sorted(f['pattern_descriptors'].keys()))",
    "print(list(np.array(f['pattern_descriptors/conds']).astype('unicode')), list(f['pattern_descriptors/index'][:]))",
    sep = "\n"), f)
  out <- system2(py, c("-c", shQuote(code)), stdout = TRUE)
  expect_identical(out[1], sprintf("(1, 15) float64 %s", round(r$dissimilarities[1, 2], 12)))
  expect_identical(out[2], "correlation 0.0.1")
  expect_identical(out[3], "['descriptors', 'dissimilarities', 'pattern_descriptors', 'rdm_descriptors'] ['index', 'name'] ['conds', 'index']")
  expect_identical(out[4], "['c1', 'c2', 'c3', 'c4', 'c5', 'c6'] [0, 1, 2, 3, 4, 5]")
})

test_that("RDM HDF5 files: bad input gives classed errors", {
  skip_if_not_installed("hdf5r")
  expect_error(read_rdm_h5(fx("missing.h5")), class = "tensorscope_error_file")
  expect_error(read_rdm_h5(fx("f8.npy")), class = "tensorscope_error_corrupt")
  skip_if(!file.exists(fx("plain.h5")), "HDF5 fixtures not written (no h5py)")
  expect_error(read_rdm_h5(fx("plain.h5")), class = "tensorscope_error_corrupt")  # no dissimilarities
  f <- withr::local_tempfile(fileext = ".h5")
  expect_error(write_rdm_h5(matrix(1:6, 2), f), class = "tensorscope_error_not_rdm")
  expect_error(write_rdm_h5(as_rdm(dist(1:4)), f, overwrite = NA), class = "tensorscope_error_argument")
  expect_error(write_rdm_h5(as_rdm(dist(1:4)), file.path(tempdir(), "no", "such", "dir.h5")),
               class = "tensorscope_error_file")
})

# ---- MATLAB ---------------------------------------------------------------------------

test_that("read_mat() and mat_rdms() turn MATLAB RDM structs into a ts_rdm", {
  skip_if_not_installed("R.matlab")
  set.seed(5)
  mats <- lapply(1:6, function(i) as.matrix(dist(matrix(rnorm(20), 5))))
  s <- array(list(), c(2, 1, 3, 2), dimnames = list(c("RDM", "name"), NULL, NULL, NULL))
  for (i in 1:6) { s[[2 * i - 1]] <- mats[[i]]; s[[2 * i]] <- paste("rdm", i) }
  # (s is the struct array R.matlab::readMat returns for a 1 x 3 x 2 MATLAB struct)
  r <- mat_rdms(s)
  expect_s3_class(r, "ts_rdm")
  expect_length(r, 6)
  expect_identical(r$descriptors$name, paste("rdm", 1:6))
  expect_identical(r$descriptors$dim2, rep(1:3, 2))
  expect_identical(r$descriptors$dim3, rep(1:2, each = 3))
  for (i in 1:6) expect_equal(unname(as.matrix(r, i)), unname(mats[[i]]))
  # read_mat() on a file; the whole list when it holds one RDM; arrays as as_rdm()
  f <- withr::local_tempfile(fileext = ".mat")
  R.matlab::writeMat(f, RDM = mats[[2]], other = 1:3)
  m <- read_mat(f)
  expect_named(m, c("RDM", "other"))
  expect_equal(m$RDM, mats[[2]], ignore_attr = TRUE)
  expect_equal(mat_rdms(m)$dissimilarities, r$dissimilarities[2, , drop = FALSE])
  arr <- simplify2array(mats)
  expect_equal(mat_rdms(arr)$dissimilarities, r$dissimilarities)
  expect_error(mat_rdms(s, rdm = "nope"), class = "tensorscope_error_not_rdm")
  s[[3]] <- matrix(1, 5, 5)
  expect_error(mat_rdms(s), class = "tensorscope_error_not_rdm")
  expect_error(read_mat(fx("f8.npy")), class = "tensorscope_error_corrupt")
  expect_error(read_mat(fx("nope.mat")), class = "tensorscope_error_file")
  expect_error(read_mat(fx("plain.h5")), class = "tensorscope_error_corrupt")
})

test_that("mat_rdms() reads the Kriegeskorte et al. (2008) RDM files", {
  d <- kriegeskorte_dir()
  skip_if(!nzchar(d), "Kriegeskorte 2008 RDMs not found")
  skip_if_not_installed("R.matlab")
  b <- mat_rdms(read_mat(file.path(d, "92_brainRDMs.mat"))$RDMs)
  expect_length(b, 8)
  expect_length(b$conditions, 92)
  expect_identical(b$descriptors$name[c(1, 8)], c("hIT | BE | Session: 1", "hIT | TI | Session: 2"))
  expect_identical(b$descriptors$dim2, rep(1:4, 2))
  raw <- R.matlab::readMat(file.path(d, "92_brainRDMs.mat"))$RDMs
  expect_equal(unname(as.matrix(b, 6)), unname(raw[["RDM", 1, 2, 2]]), ignore_attr = TRUE)
  m <- mat_rdms(read_mat(file.path(d, "92_modelRDMs.mat")))
  expect_length(m, 8)
  expect_true(all(c("animacy", "monkeyIT", "V1") %in% m$descriptors$name))
  kr <- kriegeskorte_rdms()
  expect_equal(kr$hit$KO, (unname(raw[["RDM", 1, 2, 1]]) + unname(raw[["RDM", 1, 2, 2]])) / 2, ignore_attr = TRUE)
})

# ---- arguments -----------------------------------------------------------------------

test_that("bad paths and arguments give classed errors naming them", {
  expect_error(read_npy(fx("missing.npy")), class = "tensorscope_error_file")
  expect_error(read_npy(test_path("fixtures")), class = "tensorscope_error_file")  # a directory
  expect_error(read_npz(fx("missing.npz")), class = "tensorscope_error_file")
  expect_error(read_npy(1), "path", class = "tensorscope_error_argument")
  expect_error(read_npy(c("a", "b")), class = "tensorscope_error_argument")
  expect_error(read_npy(NA_character_), class = "tensorscope_error_argument")
  f <- withr::local_tempfile(fileext = ".npy")
  expect_error(write_npy(list(1, 2), f), "x", class = "tensorscope_error_type")
  expect_error(write_npy(letters, f), class = "tensorscope_error_type")
  expect_error(write_npy(c(1L, NA), f), class = "tensorscope_error_non_finite")
  expect_error(write_npy(c(TRUE, NA), f), class = "tensorscope_error_non_finite")
  expect_error(write_npy(1, f, order = "Z"), class = "tensorscope_error_argument")
  expect_error(write_npy(1, file.path(tempdir(), "no", "such", "x.npy")), class = "tensorscope_error_file")
  err <- tryCatch(read_npy(fx("complex.npy")), error = identity)
  expect_match(conditionMessage(err), "complex.npy", fixed = TRUE)
})

test_that("string members (numpy '<U' and 'S') are read as character vectors: ids beside activations", {
  expect_identical(read_npy(fx("strings.npy")), c("ab", "c"))
  z <- read_npz(fx("with_ids.npz"))
  expect_identical(z$ids, paste0("img", 1:5))
  expect_identical(z$acts, matrix(as.double(0:14), 5, byrow = TRUE))
  expect_identical(z$bytes_ids, c("a", "bb", "ccc"))
  # non-ASCII UCS-4 to UTF-8, a 2-d array in C order, an empty string
  u <- z$unicode
  expect_identical(dim(u), c(2L, 2L))
  expect_identical(u[1, ], c("caf\u00e9", "\u732b"))
  expect_identical(u[2, ], c("x", ""))
  expect_identical(Encoding(u[1, 1]), "UTF-8")
  expect_identical(z$big_endian, c("ab", "c"))
  expect_identical(z$fortran, matrix(c("a", "b", "c", "d", "e", "f"), 2, byrow = TRUE))
  # the ids make the activations a ts_reps over named stimuli
  reps <- ts_reps(list(acts = z$acts), stimuli = z$ids)
  expect_identical(reps$stimuli, z$ids)
  # an object (pickled) member is skipped with a warning; the rest is read
  expect_warning(o <- read_npz(fx("with_object.npz")), "obj", class = "tensorscope_warning")
  expect_identical(names(o), "acts")
  expect_identical(o$acts, as.double(0:3))
  # invalid code points are corrupt data
  bytes <- npy_bytes("{'descr': '<U1', 'fortran_order': False, 'shape': (1,), }\n", as.raw(c(0x00, 0xd8, 0x00, 0x00)))
  expect_corrupt(bytes)
})
