// Rcpp glue for argument checks that must not allocate (core: common.hpp).
#include "glue.h"

// 1-based position of the first NA/NaN/Inf in a double vector or matrix, 0 if none.
// [[Rcpp::export]]
double cpp_first_non_finite(SEXP x) {
  const tensorscope::Index i = tensorscope::first_non_finite(REAL(x), XLENGTH(x));
  return i < 0 ? 0.0 : static_cast<double>(i) + 1.0;
}
