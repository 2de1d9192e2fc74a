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
