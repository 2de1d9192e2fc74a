// Rcpp glue for argument checks that must not allocate (core: common.hpp).
#include "glue.h"

#include <filesystem>

// 1-based position of the first NA/NaN/Inf in a double vector or matrix, 0 if none.
// [[Rcpp::export]]
double cpp_first_non_finite(SEXP x) {
  return glue::guard([&]() -> double {
    const tensorscope::Index i = tensorscope::first_non_finite(REAL(x), XLENGTH(x));
    return i < 0 ? 0.0 : static_cast<double>(i) + 1.0;
  });
}

// TRUE when every row of the double matrix x equals its first row (no variance across
// stimuli). Stops at the first difference, which for real data is in the first column.
// [[Rcpp::export]]
bool cpp_rows_constant(SEXP x) {
  return glue::guard([&]() -> bool {
    SEXP d = Rf_getAttrib(x, R_DimSymbol);
    const R_xlen_t n = INTEGER(d)[0], p = INTEGER(d)[1];
    const double* v = REAL(x);
    for (R_xlen_t j = 0; j < p; ++j) {
      const double* c = v + j * n;
      for (R_xlen_t i = 1; i < n; ++i)
        if (c[i] != c[0]) return false;
    }
    return true;
  });
}

// TRUE when path is a regular file (following links): readers open nothing else, since
// opening a named pipe or a device blocks or never ends.
// [[Rcpp::export]]
bool cpp_is_regular_file(std::string path) {
  std::error_code ec;
  return std::filesystem::is_regular_file(path, ec);
}

// Largest |value| of a double vector or matrix (finite input; one pass, no allocation).
// [[Rcpp::export]]
double cpp_max_abs(SEXP x) {
  const double* v = REAL(x);
  const R_xlen_t n = XLENGTH(x);
  double m = 0;
  for (R_xlen_t i = 0; i < n; ++i) m = std::max(m, std::fabs(v[i]));
  return m;
}
