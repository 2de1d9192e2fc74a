// torch for R's tensors in the LibTorch backend, without copies.
//
// How the pointer crosses: see rtensor() in rtorch.h. We copy the `torch::Tensor`
// handle: that shares the TensorImpl and its storage (one atomic reference-count
// increment, no data copied) and keeps them alive while we use them; the R object itself
// stays referenced by the .Call arguments for the whole call (and, for the ridge folds
// below, by the external pointer's protected slot).
//
// This is only valid when this library and torch for R's lantern use one LibTorch (the
// same libtorch_cpu/libc10 in the process): the R layer checks that first
// (rtensor_shared() in R/torch-r.R) and copies otherwise.
#include "dense.h"
#include "rtorch.h"

#include <tensorscope/alignment.hpp>

#include <cstdio>

#include <string>
#include <vector>

namespace {

using ts_torch::is_rtensor;
using ts_torch::rtensor;

// stimuli x flattened features, a view where the layout allows (no copy)
torch::Tensor as_layer(const torch::Tensor& t) {
  if (t.dim() == 0) ts_torch::fail(tensorscope::ErrorKind::type, "a 0-dimensional tensor is not a layer (stimuli first)");
  return t.dim() == 2 ? t : t.reshape({t.size(0), -1});
}

// A layer given as a torch_tensor (read in place) or an R double matrix (mapped, then
// moved to `device`): n x p on `device`.
torch::Tensor layer_tensor(SEXP x, const torch::Device& device) {
  if (is_rtensor(x)) {
    torch::Tensor t = as_layer(rtensor(x).detach());
    if (t.device() != device) {
      ts_torch::fail(tensorscope::ErrorKind::mismatch, "the torch_tensor layers must be on one device; found " +
                                  t.device().str() + " and " + device.str());
    }
    return t;
  }
  SEXP d = Rf_getAttrib(x, R_DimSymbol);
  if (TYPEOF(x) != REALSXP || Rf_length(d) != 2) ts_torch::fail(tensorscope::ErrorKind::type, "a layer must be a double matrix or a torch_tensor");
  const int64_t n = INTEGER(d)[0], p = INTEGER(d)[1];
  return torch::from_blob(REAL(x), {p, n}, torch::kFloat64).t().to(device);
}

// The device of the first torch_tensor in the lists (CPU when there is none).
torch::Device tensors_device(std::initializer_list<SEXP> lists) {
  for (SEXP l : lists)
    for (R_xlen_t i = 0; i < XLENGTH(l); ++i)
      if (is_rtensor(VECTOR_ELT(l, i))) return rtensor(VECTOR_ELT(l, i)).device();
  return torch::Device(torch::kCPU);
}

std::vector<torch::Tensor> layer_tensors(SEXP xs, const torch::Device& device) {
  std::vector<torch::Tensor> out;
  for (R_xlen_t i = 0; i < XLENGTH(xs); ++i) out.push_back(layer_tensor(VECTOR_ELT(xs, i), device));
  return out;
}

SEXP doubles_sexp(const std::vector<double>& v) {
  SEXP out = PROTECT(Rf_allocVector(REALSXP, static_cast<R_xlen_t>(v.size())));
  std::copy(v.begin(), v.end(), REAL(out));
  UNPROTECT(1);
  return out;
}

}  // namespace

// What this library sees of a torch_tensor: where its data is, on which device, its
// dtype and shape, and (with `checks`: one pass over the data on its device) the checks
// the metrics need (finite; every stimulus the same).
extern "C" SEXP ts_torch_rtensor_info(SEXP x, SEXP checks) {
  return ts_torch::guarded([&]() -> SEXP {
    torch::NoGradGuard no_grad;
    const torch::Tensor t = rtensor(x);
    char ptr[32];
    std::snprintf(ptr, sizeof ptr, "%p", t.data_ptr());
    const bool floating = t.is_floating_point();
    const bool integral = !floating && at::isIntegralType(t.scalar_type(), /*includeBool=*/true);
    bool finite = true, constant = false;
    int64_t n = t.dim() > 0 ? t.size(0) : 0, p = t.dim() > 0 && n > 0 ? t.numel() / n : 0;
    if (Rf_asLogical(checks) && t.dim() > 0 && t.numel() > 0) {
      const torch::Tensor m = as_layer(t);
      if (floating) finite = torch::isfinite(m).all().item<bool>();
      constant = finite && m.eq(m.narrow(0, 0, 1)).all().item<bool>();
    }
    std::vector<SEXP> v;
    std::vector<std::string> nms = {"data_ptr", "device", "dtype", "shape", "n", "p", "floating", "integer",
                                    "finite", "constant", "contiguous"};
    v.push_back(PROTECT(Rf_mkString(ptr)));
    v.push_back(PROTECT(Rf_mkString(t.device().str().c_str())));
    v.push_back(PROTECT(Rf_mkString(std::string(c10::toString(t.scalar_type())).c_str())));
    SEXP shape = PROTECT(Rf_allocVector(REALSXP, t.dim()));
    for (int64_t i = 0; i < t.dim(); ++i) REAL(shape)[i] = static_cast<double>(t.size(i));
    v.push_back(shape);
    v.push_back(PROTECT(Rf_ScalarReal(static_cast<double>(n))));
    v.push_back(PROTECT(Rf_ScalarReal(static_cast<double>(p))));
    v.push_back(PROTECT(Rf_ScalarLogical(floating)));
    v.push_back(PROTECT(Rf_ScalarLogical(integral)));
    v.push_back(PROTECT(Rf_ScalarLogical(finite)));
    v.push_back(PROTECT(Rf_ScalarLogical(constant)));
    v.push_back(PROTECT(Rf_ScalarLogical(t.is_contiguous())));
    SEXP out = ts_torch::named_list(v, nms);
    UNPROTECT(11);
    return out;
  });
}

// For tests without torch for R: an R object laid out as torch for R's torch_tensor
// (EXTPTRSXP of class "torch_tensor" -> XPtrTorchTensor -> torch::Tensor*), holding a
// float64 (or float32) copy of the R array x with the same indices. The pointer crossing
// above then runs on it exactly as on a tensor made by torch for R.
extern "C" SEXP ts_torch_rtensor_fake(SEXP x, SEXP float32, SEXP device) {
  return ts_torch::guarded([&]() -> SEXP {
    const torch::ScalarType type = Rf_asLogical(float32) ? torch::kFloat32 : torch::kFloat64;
    return ts_torch::wrap_rtensor(ts_torch::to_tensor(x, type, torch::Device(ts_torch::as_string(device))), nullptr);
  });
}

// CKA between layer lists whose elements are torch_tensors (read in place, on their
// device) or R double matrices (moved to the tensors' device). Same arguments and result
// as ts_torch_cka_matrix() in backend.cpp, without `device`: the tensors decide it.
extern "C" SEXP ts_torch_cka_tensors(SEXP xs, SEXP ys, SEXP kernel, SEXP estimator, SEXP bandwidth, SEXP t,
                                     SEXP sig_x, SEXP sig_y, SEXP path) {
  return ts_torch::guarded([&]() -> SEXP {
    const torch::Device dev = tensors_device({xs, ys});
    const std::vector<torch::Tensor> tx = layer_tensors(xs, dev), ty = layer_tensors(ys, dev);
    const tensorscope::CkaOptions o = tensorscope::cka_options(ts_torch::as_string(kernel), ts_torch::as_string(estimator),
                                                            ts_torch::as_string(bandwidth), Rf_asReal(t),
                                                            ts_torch::as_string(path));
    const std::vector<double> sx(REAL(sig_x), REAL(sig_x) + XLENGTH(sig_x)), sy(REAL(sig_y), REAL(sig_y) + XLENGTH(sig_y));
    const auto res = ts_torch::cka_matrix(tx, ty, o, sx, sy);
    const int nx = static_cast<int>(tx.size()), ny = ty.empty() ? nx : static_cast<int>(ty.size());
    SEXP m = PROTECT(Rf_allocMatrix(REALSXP, nx, ny));
    std::copy(res.cka.data(), res.cka.data() + res.cka.size(), REAL(m));
    SEXP a = PROTECT(doubles_sexp(res.sigma_x));
    SEXP b = PROTECT(doubles_sexp(res.sigma_y));
    SEXP out = ts_torch::named_list({m, a, b}, {"cka", "sigma_x", "sigma_y"});
    UNPROTECT(3);
    return out;
  });
}

// A torch_tensor copied into an R double array with the same dims and indices (for the
// functions that compute on R memory; R flattens it as it flattens any array).
extern "C" SEXP ts_torch_rtensor_array(SEXP x) {
  return ts_torch::guarded([&]() -> SEXP { return ts_torch::from_tensor(rtensor(x).detach()); });
}

// RDM (upper triangle) of a torch_tensor layer, on its device.
extern "C" SEXP ts_torch_rdm_tensor(SEXP x, SEXP method) {
  return ts_torch::guarded([&]() -> SEXP {
    const torch::Tensor X = as_layer(rtensor(x).detach());
    return ts_torch::from_tensor(ts_torch::rdm_upper(X, ts_torch::rdm_method(ts_torch::as_string(method))).reshape({1, -1}));
  });
}

// Ridge on a torch_tensor layer in place: an external pointer (tag
// "tensorscope_ridge_folds") to a tensorscope::RidgeFolds that gathers and centres each
// fold's rows on the tensor's device (ts_torch::TensorRidgeFolds), for the main
// library's cpp_ridge_cv(). The layer is flattened to stimuli x features and made float64
// on its device (no copy when it already is a 2-D float64 tensor). The R tensor is kept
// in the pointer's protected slot; ts_torch_ridge_folds_free() drops the handle as soon
// as the layer is done (the finalizer otherwise).
#include "ridge.h"

extern "C" SEXP ts_torch_ridge_folds(SEXP x) {
  return ts_torch::guarded([&]() -> SEXP {
    torch::NoGradGuard no_grad;
    const torch::Tensor X = as_layer(rtensor(x).detach()).to(torch::kFloat64);
    return ts_torch::wrap_owned(new tensorscope::RidgeFolds(ts_torch::TensorRidgeFolds{X}), "tensorscope_ridge_folds", x);
  });
}

namespace {
bool is_folds(SEXP ptr) {
  return TYPEOF(ptr) == EXTPTRSXP && R_ExternalPtrTag(ptr) == Rf_install("tensorscope_ridge_folds");
}
}  // namespace

extern "C" SEXP ts_torch_ridge_folds_free(SEXP ptr) {
  return ts_torch::guarded([&]() -> SEXP {
    if (is_folds(ptr)) ts_torch::free_owned<tensorscope::RidgeFolds>(ptr);
    return R_NilValue;
  });
}

// For the tests: the data pointer the ridge folds read (the float64 layer), "0x..."
extern "C" SEXP ts_torch_ridge_folds_ptr(SEXP ptr) {
  return ts_torch::guarded([&]() -> SEXP {
    if (!is_folds(ptr) || R_ExternalPtrAddr(ptr) == nullptr) ts_torch::fail(tensorscope::ErrorKind::argument, "no ridge folds");
    const auto* f = static_cast<tensorscope::RidgeFolds*>(R_ExternalPtrAddr(ptr));
    const auto* t = f->target<ts_torch::TensorRidgeFolds>();
    if (t == nullptr) ts_torch::fail(tensorscope::ErrorKind::internal, "not tensor folds");
    char buf[32];
    std::snprintf(buf, sizeof buf, "%p", t->X.data_ptr());
    return Rf_mkString(buf);
  });
}
