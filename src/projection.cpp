// Glue for the seeded sparse random projection (core: tensorscope/projection.hpp).
#include "glue.h"

#include <tensorscope/projection.hpp>

// The k x p projection's non-zeros as (row, col, value), 1-based, for tests and for
// projecting R matrices the way activations(reduce = "srp") projects a layer.
// [[Rcpp::export]]
Rcpp::List cpp_sparse_projection(double p, double k, double seed, std::string name) {
  auto R = tensorscope::sparse_projection(static_cast<std::int64_t>(p), static_cast<std::int64_t>(k),
                                          static_cast<std::uint64_t>(seed), name);
  const auto nnz = static_cast<R_xlen_t>(R.value.size());
  Rcpp::NumericVector row(nnz), col(nnz), val(nnz);
  for (R_xlen_t i = 0; i < nnz; ++i) {
    row[i] = static_cast<double>(R.row[i] + 1);
    col[i] = static_cast<double>(R.col[i] + 1);
    val[i] = R.value[i];
  }
  return Rcpp::List::create(Rcpp::_["row"] = row, Rcpp::_["col"] = col, Rcpp::_["value"] = val);
}
