// Shared by the LibTorch backend's translation units (src/torch/*.cpp): the error
// guard, R <-> tensor conversion and the model handle. No maths here.
#pragma once
#include <torch/script.h>

#define R_NO_REMAP
#include <R.h>
#include <Rinternals.h>
#include <R_ext/Rdynload.h>

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
  // per held output, its batches kept on the device (ts_torch_keep(), ts_torch_collect())
  std::vector<std::vector<torch::Tensor>> kept;
  std::vector<std::string> kept_names;
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

// An R external pointer (tag `tag`, keeping `prot` referenced) that owns obj: deleted
// by R's finalizer, or earlier by free_owned<T>(). The main library's glue checks the tag.
template <class T>
void free_owned(SEXP ptr) {
  if (TYPEOF(ptr) != EXTPTRSXP || R_ExternalPtrAddr(ptr) == nullptr) return;
  delete static_cast<T*>(R_ExternalPtrAddr(ptr));
  R_ClearExternalPtr(ptr);
}

template <class T>
SEXP wrap_owned(T* obj, const char* tag, SEXP prot) {
  SEXP ptr = PROTECT(R_MakeExternalPtr(obj, Rf_install(tag), prot));
  R_RegisterCFinalizerEx(ptr, free_owned<T>, TRUE);
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

// ---- torch for R's tensors -----------------------------------------------------------
// A torch for R `torch_tensor` is an R external pointer (EXTPTRSXP, class
// c("torch_tensor", "R7")) made by Rcpp::XPtr<XPtrTorchTensor> (torch for R's
// src/torch_api.cpp, operator_sexp_tensor()). XPtrTorchTensor (inst/include/torch_types.h)
// derives from XPtrTorch, whose only member is a std::shared_ptr<void> and which has no
// virtual functions; the void* is the heap torch::Tensor that lantern made
// (make_raw::Tensor: new torch::Tensor(x); from_raw::Tensor casts it back). This layout
// is the same in torch for R 0.10 to 0.14 (LibTorch 1.13 to 2.x). RTorchXPtr mirrors it.
struct RTorchXPtr {
  std::shared_ptr<void> ptr;
};

inline bool is_rtensor(SEXP x) { return TYPEOF(x) == EXTPTRSXP && Rf_inherits(x, "torch_tensor"); }

// The tensor behind a torch_tensor: a new handle on the same TensorImpl and storage (one
// atomic reference-count increment, no data copied), which keeps them alive while it
// lives. Only dense (strided) tensors on the CPU or a CUDA device.
inline torch::Tensor rtensor(SEXP x) {
  if (!is_rtensor(x)) fail(tensorscope::ErrorKind::type, "expected a torch_tensor");
  auto* xp = static_cast<RTorchXPtr*>(R_ExternalPtrAddr(x));
  if (xp == nullptr || xp->ptr.get() == nullptr) {
    fail(tensorscope::ErrorKind::argument, "the torch_tensor is a null pointer (saved and reloaded?)");
  }
  const torch::Tensor& t = *static_cast<torch::Tensor*>(xp->ptr.get());
  if (!t.defined()) fail(tensorscope::ErrorKind::argument, "the torch_tensor is undefined");
  if (t.layout() != torch::kStrided) {
    fail(tensorscope::ErrorKind::type, "the torch_tensor is sparse (or not dense); use x$to_dense() first");
  }
  if (t.is_quantized()) fail(tensorscope::ErrorKind::type, "the torch_tensor is quantized; use x$dequantize() first");
  if (!t.device().is_cpu() && !t.device().is_cuda()) {
    fail(tensorscope::ErrorKind::argument, "the torch_tensor is on " + t.device().str() +
                                               "; tensorscope computes on the CPU or a CUDA device (use x$cpu())");
  }
  return t;
}

// torch for R's operator_sexp_tensor() (R_GetCCallable("torch", ...), as extension
// packages built with LinkingTo: torch call it), or nullptr when `use` is FALSE. Call it
// before any C++ object is made: R_GetCCallable raises an R error when torch for R does
// not provide it.
using RTensorSexp = SEXP (*)(const void*);
inline RTensorSexp rtensor_maker(SEXP use) {
  if (!Rf_asLogical(use)) return nullptr;
  static RTensorSexp fn = nullptr;
  if (fn == nullptr) fn = reinterpret_cast<RTensorSexp>(R_GetCCallable("torch", "operator_sexp_tensor"));
  return fn;
}

inline void finalize_rtensor(SEXP ptr) {
  delete static_cast<RTorchXPtr*>(R_ExternalPtrAddr(ptr));
  R_ClearExternalPtr(ptr);
}

// A tensor as an R torch_tensor: made by torch for R itself (`maker`, see above), or,
// without torch for R, an object of the same layout and class that tensorscope (and
// torch for R, once loaded on this LibTorch) reads in place. The handle shares t's storage.
inline SEXP wrap_rtensor(const torch::Tensor& t, RTensorSexp maker) {
  RTorchXPtr xp{std::shared_ptr<void>(new torch::Tensor(t), [](void* p) { delete static_cast<torch::Tensor*>(p); })};
  if (maker != nullptr) return maker(&xp);  // copies the shared_ptr; ours goes at return
  SEXP out = PROTECT(R_MakeExternalPtr(new RTorchXPtr(std::move(xp)), R_NilValue, R_NilValue));
  R_RegisterCFinalizerEx(out, finalize_rtensor, TRUE);
  SEXP cls = PROTECT(Rf_allocVector(STRSXP, 2));
  SET_STRING_ELT(cls, 0, Rf_mkChar("torch_tensor"));
  SET_STRING_ELT(cls, 1, Rf_mkChar("R7"));
  Rf_setAttrib(out, R_ClassSymbol, cls);
  UNPROTECT(2);
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
