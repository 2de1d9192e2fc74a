// The LibTorch backend: a shared library of its own (tensorscope_torch.so), loaded by
// the R layer on first use, so that loading tensorscope never loads LibTorch.
// Entry points are plain .Call functions; C++ exceptions are turned into R errors
// only after every C++ object has been destroyed (no longjmp over destructors).
#include "rtorch.h"

#include <torch/cuda.h>
#include <torch/version.h>

using ts_torch::guarded;

extern "C" SEXP ts_torch_info() {
  return guarded([]() -> SEXP {
    const bool cuda = torch::cuda::is_available();
    const int devices = cuda ? static_cast<int>(torch::cuda::device_count()) : 0;
    SEXP out = PROTECT(Rf_allocVector(VECSXP, 3));
    SEXP nms = PROTECT(Rf_allocVector(STRSXP, 3));
    SET_VECTOR_ELT(out, 0, Rf_mkString(TORCH_VERSION));
    SET_VECTOR_ELT(out, 1, Rf_ScalarLogical(cuda));
    SET_VECTOR_ELT(out, 2, Rf_ScalarInteger(devices));
    SET_STRING_ELT(nms, 0, Rf_mkChar("version"));
    SET_STRING_ELT(nms, 1, Rf_mkChar("cuda"));
    SET_STRING_ELT(nms, 2, Rf_mkChar("cuda_devices"));
    Rf_setAttrib(out, R_NamesSymbol, nms);
    UNPROTECT(2);
    return out;
  });
}

// ---- dense metrics (backend = "torch") ------------------------------------------------
#include "dense.h"

namespace {
// R double matrix (column-major n x p) -> n x p tensor on `device` (no copy on the CPU).
torch::Tensor matrix_tensor(SEXP x, const std::string& device) {
  SEXP d = Rf_getAttrib(x, R_DimSymbol);
  const int64_t n = INTEGER(d)[0], p = INTEGER(d)[1];
  return torch::from_blob(REAL(x), {p, n}, torch::kFloat64).t().to(torch::Device(device));
}
}  // namespace

extern "C" SEXP ts_torch_linear_cka(SEXP x, SEXP y, SEXP debiased, SEXP device) {
  return guarded([&]() -> SEXP {
    const std::string dev = ts_torch::as_string(device);
    return Rf_ScalarReal(ts_torch::linear_cka(matrix_tensor(x, dev), matrix_tensor(y, dev), Rf_asLogical(debiased)));
  });
}

extern "C" SEXP ts_torch_rdm(SEXP x, SEXP method, SEXP device) {
  return guarded([&]() -> SEXP {
    const std::string dev = ts_torch::as_string(device);
    auto v = ts_torch::rdm_upper(matrix_tensor(x, dev), ts_torch::as_string(method));
    return ts_torch::from_tensor(v.reshape({1, -1}));
  });
}
