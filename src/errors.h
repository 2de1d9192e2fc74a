// The R side of the error table (inst/include/tensorscope/errors.hpp): the condition a
// C++ error becomes in R. Plain R API, so that both the Rcpp glue (glue.h) and the
// LibTorch backend (torch/rtorch.h, which does not link Rcpp) raise errors one way.
#pragma once

#include <tensorscope/errors.hpp>

#ifndef R_NO_REMAP
#define R_NO_REMAP
#endif
#include <Rinternals.h>

#include <new>
#include <string>

namespace ts_errors {

// list(message, call = NULL, kind) of class c("tensorscope_error_<kind>",
// "tensorscope_error", "error", "condition"): what ts_abort(message, kind) raises in R,
// with `kind` as a field too. Returned unprotected.
inline SEXP condition(tensorscope::ErrorKind kind, const std::string& message) {
  const std::string name = tensorscope::kind_name(kind);
  const std::string fields[] = {"message", "call", "kind"};
  const std::string classes[] = {"tensorscope_error_" + name, "tensorscope_error", "error", "condition"};
  SEXP cond = PROTECT(Rf_allocVector(VECSXP, 3));
  SET_VECTOR_ELT(cond, 0, Rf_mkString(message.c_str()));
  SET_VECTOR_ELT(cond, 2, Rf_mkString(name.c_str()));
  SEXP names = PROTECT(Rf_allocVector(STRSXP, 3));
  for (int i = 0; i < 3; ++i) SET_STRING_ELT(names, i, Rf_mkChar(fields[i].c_str()));
  Rf_setAttrib(cond, R_NamesSymbol, names);
  SEXP cls = PROTECT(Rf_allocVector(STRSXP, 4));
  for (int i = 0; i < 4; ++i) SET_STRING_ELT(cls, i, Rf_mkChar(classes[i].c_str()));
  Rf_setAttrib(cond, R_ClassSymbol, cls);
  UNPROTECT(3);
  return cond;
}

// The kind and message of the exception being handled; call only inside a catch block.
// A ts_error keeps its kind; a failed allocation is `memory`; anything else (a LAPACK
// or library failure the core did not expect) is `internal`.
inline tensorscope::ErrorKind current(std::string& message) {
  try {
    throw;
  } catch (const tensorscope::ts_error& e) {
    message = e.what();
    return e.kind;
  } catch (const std::bad_alloc&) {
    message = "out of memory";
    return tensorscope::ErrorKind::memory;
  } catch (const std::exception& e) {
    message = e.what();
    return tensorscope::ErrorKind::internal;
  }
}

}  // namespace ts_errors
