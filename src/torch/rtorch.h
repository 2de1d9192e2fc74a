// Shared by the LibTorch backend's translation units (src/torch/*.cpp): the error
// guard, R <-> tensor conversion and the model handle. No maths here.
#pragma once
#include <torch/script.h>

#define R_NO_REMAP
#include <R.h>
#include <Rinternals.h>

#include "../errors.h"

#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace ts_torch {

// Runs f(); a C++ exception becomes the R condition of its kind (../errors.h, the same
// classes as the Rcpp glue's) only after f's objects are destroyed (no longjmp over
// destructors). A ts_error keeps its kind; any other exception is LibTorch's (c10::Error,
// the TorchScript interpreter's JITException): kind `torch`, which the R layer may name
// more precisely for the call (torch_run(kind = ) in R/models.R).
template <class F>
SEXP guarded(F&& f) {
  SEXP cond = R_NilValue;
  SEXP out = R_NilValue;
  try {
    out = f();
  } catch (const c10::Error& e) {
    cond = PROTECT(ts_errors::condition(tensorscope::ErrorKind::torch, e.what_without_backtrace()));
  } catch (const tensorscope::ts_error& e) {
    cond = PROTECT(ts_errors::condition(e.kind, e.what()));
  } catch (const std::bad_alloc&) {
    cond = PROTECT(ts_errors::condition(tensorscope::ErrorKind::memory, "out of memory"));
  } catch (const std::exception& e) {
    cond = PROTECT(ts_errors::condition(tensorscope::ErrorKind::torch, e.what()));
  } catch (...) {
    cond = PROTECT(ts_errors::condition(tensorscope::ErrorKind::internal, "unknown C++ error in the LibTorch backend"));
  }
  if (cond != R_NilValue) {
    SEXP call = PROTECT(Rf_lang2(Rf_install("stop"), cond));
    Rf_eval(call, R_BaseEnv);  // does not return
    UNPROTECT(2);
  }
  return out;
}

// An error of the backend's own checks.
[[noreturn]] inline void fail(tensorscope::ErrorKind kind, const std::string& message) {
  throw tensorscope::ts_error(kind, message);
}

// A loaded TorchScript module and the forward functions built for sets of layers.
struct Capture {
  std::shared_ptr<torch::jit::GraphFunction> fn;
  std::vector<std::string> names;  // the extra outputs: "layer", "layer:2" (second call), ...
  bool checked = false;            // copies left out where nothing writes in place (elide_clones())
};

// A sparse random projection by column (see projection() in models.cpp).
struct Projection {
  int64_t k = 0, p = 0;
  double scale = 0;               // every non-zero is +-scale
  std::vector<int64_t> col_ptr;   // p + 1
  std::vector<uint32_t> code;     // per non-zero: its row, the top bit set when its value is negative
};

struct Model {
  torch::jit::Module module;
  torch::Device device = torch::kCPU;
  long forwards = 0;  // graph executions (evidence of one forward pass per batch)
  std::map<std::string, Capture> captures;            // by dtype and layers
  std::map<int, torch::jit::Module> variants;         // the module converted to another floating type
  std::map<std::string, Projection> projections;      // sparse projections, by layer, size, k and seed
  // the outputs of the last batch run (model output, then each captured tensor), held
  // until ts_torch_write() reduces them into R matrices
  std::vector<torch::Tensor> held;
  std::vector<std::string> held_names;
  // the Gram route's panel: per held output, the flattened outputs of a block of
  // stimuli (C x p), against which every later batch is multiplied (ts_torch_gram)
  std::vector<torch::Tensor> panel;
};

inline Model* get_model(SEXP ptr) {
  if (TYPEOF(ptr) != EXTPTRSXP || R_ExternalPtrAddr(ptr) == nullptr) {
    fail(tensorscope::ErrorKind::argument, "the model handle is not valid (was the model saved and reloaded? use ts_model() again)");
  }
  return static_cast<Model*>(R_ExternalPtrAddr(ptr));
}

inline void finalize_model(SEXP ptr) {
  auto* m = static_cast<Model*>(R_ExternalPtrAddr(ptr));
  delete m;
  R_ClearExternalPtr(ptr);
}

inline SEXP wrap_model(std::unique_ptr<Model> m) {
  SEXP ptr = PROTECT(R_MakeExternalPtr(m.release(), R_NilValue, R_NilValue));
  R_RegisterCFinalizerEx(ptr, finalize_model, TRUE);
  UNPROTECT(1);
  return ptr;
}

inline std::string as_string(SEXP x) { return std::string(CHAR(STRING_ELT(x, 0))); }

inline std::vector<std::string> as_strings(SEXP x) {
  std::vector<std::string> out;
  for (R_xlen_t i = 0; i < XLENGTH(x); ++i) out.emplace_back(CHAR(STRING_ELT(x, i)));
  return out;
}

// R array (column-major, dim d1..dk) -> tensor [d1, ..., dk] (row-major copy).
// Doubles become `float_type`, integers become int64 (token ids).
inline torch::Tensor to_tensor(SEXP x, torch::ScalarType float_type, const torch::Device& device) {
  std::vector<int64_t> dims;
  SEXP d = Rf_getAttrib(x, R_DimSymbol);
  if (Rf_isNull(d)) {
    dims.push_back(XLENGTH(x));
  } else {
    for (R_xlen_t i = 0; i < XLENGTH(d); ++i) dims.push_back(INTEGER(d)[i]);
  }
  std::vector<int64_t> rev(dims.rbegin(), dims.rend());
  std::vector<int64_t> perm;
  for (int64_t i = static_cast<int64_t>(dims.size()) - 1; i >= 0; --i) perm.push_back(i);
  torch::Tensor t;
  if (TYPEOF(x) == REALSXP) {
    t = torch::from_blob(REAL(x), rev, torch::kFloat64).permute(perm).to(float_type).contiguous();
  } else if (TYPEOF(x) == INTSXP) {
    t = torch::from_blob(INTEGER(x), rev, torch::kInt32).permute(perm).to(torch::kInt64).contiguous();
  } else {
    fail(tensorscope::ErrorKind::type, "inputs must be double or integer arrays");
  }
  return t.to(device);
}

// tensor [d1, ..., dk] -> R double array with dim d1..dk (same element at the same index).
inline SEXP from_tensor(const torch::Tensor& t0) {
  torch::Tensor t = t0.detach().to(torch::kCPU, torch::kFloat64);
  const int64_t k = t.dim();
  std::vector<int64_t> perm;
  for (int64_t i = k - 1; i >= 0; --i) perm.push_back(i);
  t = t.permute(perm).contiguous();
  SEXP out = PROTECT(Rf_allocVector(REALSXP, t.numel()));
  if (t.numel() > 0) std::memcpy(REAL(out), t.data_ptr<double>(), sizeof(double) * t.numel());
  if (k >= 1) {
    SEXP dim = PROTECT(Rf_allocVector(INTSXP, k));
    for (int64_t i = 0; i < k; ++i) INTEGER(dim)[i] = static_cast<int>(t0.size(i));
    Rf_setAttrib(out, R_DimSymbol, dim);
    UNPROTECT(1);
  }
  UNPROTECT(1);
  return out;
}

// The floating type of the model's parameters (float32 when it has none).
inline torch::ScalarType float_type(const torch::jit::Module& m) {
  for (const auto& p : m.parameters()) {
    if (p.is_floating_point()) return p.scalar_type();
  }
  return torch::kFloat32;
}

// First tensor in a forward() result (a tensor, or a tuple/list whose first is one).
inline torch::Tensor first_tensor(const c10::IValue& v) {
  if (v.isTensor()) return v.toTensor();
  if (v.isTuple() && !v.toTupleRef().elements().empty()) return first_tensor(v.toTupleRef().elements()[0]);
  if (v.isList() && v.toListRef().size() > 0) return first_tensor(v.toListRef()[0]);
  fail(tensorscope::ErrorKind::type, "the model's forward() did not return a tensor (or a tuple/list starting with one)");
}

inline SEXP named_list(std::vector<SEXP> values, const std::vector<std::string>& names) {
  const int n = static_cast<int>(values.size());
  SEXP out = PROTECT(Rf_allocVector(VECSXP, n));
  SEXP nms = PROTECT(Rf_allocVector(STRSXP, n));
  for (int i = 0; i < n; ++i) {
    SET_VECTOR_ELT(out, i, values[i]);
    SET_STRING_ELT(nms, i, Rf_mkChar(names[i].c_str()));
  }
  Rf_setAttrib(out, R_NamesSymbol, nms);
  UNPROTECT(2);
  return out;
}

// Tensors -> a named R list of arrays.
inline SEXP tensor_list(const std::vector<torch::Tensor>& values, const std::vector<std::string>& names) {
  SEXP out = PROTECT(Rf_allocVector(VECSXP, static_cast<R_xlen_t>(values.size())));
  for (size_t i = 0; i < values.size(); ++i) SET_VECTOR_ELT(out, i, from_tensor(values[i]));
  SEXP nms = PROTECT(Rf_allocVector(STRSXP, static_cast<R_xlen_t>(names.size())));
  for (size_t i = 0; i < names.size(); ++i) SET_STRING_ELT(nms, i, Rf_mkChar(names[i].c_str()));
  Rf_setAttrib(out, R_NamesSymbol, nms);
  UNPROTECT(2);
  return out;
}

}  // namespace ts_torch
