// Shared helpers of the Rcpp glue: map R memory into Eigen (no copies), build the
// execution settings (threads, interrupt policy) for the core, and raise C++ errors in
// R with their class (guard()).
#pragma once

#include <RcppEigen.h>

#include <tensorscope/common.hpp>

#include "errors.h"

#ifndef RCPP_USING_UNWIND_PROTECT
#error "glue::guard() needs Rcpp's unwind protection (R >= 3.5, RCPP_NO_UNWIND_PROTECT unset)"
#endif

#include <string>
#include <utility>
#include <vector>

namespace glue {

// Every cpp_ function's body runs in guard(): an exception from the core (or the glue)
// becomes the R condition of its kind (errors.h: class tensorscope_error_<kind>). stop()
// is evaluated under R_UnwindProtect (Rcpp_fast_eval), so Rcpp unwinds the C++ stack
// (destructors run) before R's error continues. Interrupts (Rcpp's own exception type)
// pass through untouched.
template <class F>
auto guard(F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const std::exception&) {
    std::string message;
    const tensorscope::ErrorKind kind = ts_errors::current(message);
    Rcpp::Shield<SEXP> cond(ts_errors::condition(kind, message));
    Rcpp::Shield<SEXP> call(Rf_lang2(Rf_install("stop"), cond));
    Rcpp::Rcpp_fast_eval(call, R_BaseEnv);
    throw;  // not reached: stop() does not return
  }
}

// A glue-level check failed.
[[noreturn]] inline void fail(tensorscope::ErrorKind kind, const std::string& message) {
  throw tensorscope::ts_error(kind, message);
}

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
  // tests shrink the blocks of the interruptible paths to exercise them at small sizes
  SEXP flops = Rf_GetOption1(Rf_install("tensorscope.block_flops"));
  if (Rf_isReal(flops) && Rf_length(flops) == 1 && REAL(flops)[0] > 0) ex.call_flops = REAL(flops)[0];
  return ex;
}

}  // namespace glue
