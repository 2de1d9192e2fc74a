// Shared helpers of the Rcpp glue: map R memory into Eigen (no copies), build the
// execution settings (threads, interrupt policy) for the core.
#pragma once

#include <RcppEigen.h>

#include <tensorscope/common.hpp>

#include <vector>

namespace glue {

using MapMat = Eigen::Map<Eigen::MatrixXd>;
using MapVec = Eigen::Map<Eigen::VectorXd>;

inline MapMat map_matrix(SEXP x) { return Rcpp::as<MapMat>(x); }
inline MapVec map_vector(SEXP x) { return Rcpp::as<MapVec>(x); }

// A list of double matrices -> Eigen maps (the R layer guarantees type and shape).
inline std::vector<MapMat> map_list(const Rcpp::List& xs) {
  std::vector<MapMat> out;
  out.reserve(xs.size());
  for (R_xlen_t i = 0; i < xs.size(); ++i) out.push_back(map_matrix(xs[i]));
  return out;
}

inline std::vector<tensorscope::MatRef> refs(const std::vector<MapMat>& maps) {
  std::vector<tensorscope::MatRef> out;
  out.reserve(maps.size());
  for (const auto& m : maps) out.emplace_back(m);
  return out;
}

// The interrupt policy throws Rcpp's interrupt exception, which Rcpp turns into an R
// interrupt once the stack has unwound through the core.
inline tensorscope::Exec exec(int threads) {
  tensorscope::Exec ex;
  ex.threads = threads < 1 ? 1 : threads;
  ex.interrupt = [] { Rcpp::checkUserInterrupt(); };
  return ex;
}

}  // namespace glue
