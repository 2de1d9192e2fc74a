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

// Throws ts_error(kind, message), or for kind "c10" a LibTorch error: the tests check
// that each kind of the table (errors.hpp) arrives in R with its class from this library
// too.
extern "C" SEXP ts_torch_raise_error(SEXP kind, SEXP message) {
  return guarded([&]() -> SEXP {
    const std::string k = ts_torch::as_string(kind), msg = ts_torch::as_string(message);
    if (k == "c10") TORCH_CHECK(false, msg);
    tensorscope::ErrorKind ek;
    if (!tensorscope::kind_from_name(k, ek)) ts_torch::fail(tensorscope::ErrorKind::argument, "no error kind '" + k + "'");
    ts_torch::fail(ek, msg);
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

std::vector<torch::Tensor> matrix_tensors(SEXP xs, const std::string& device) {
  std::vector<torch::Tensor> out;
  for (R_xlen_t i = 0; i < XLENGTH(xs); ++i) out.push_back(matrix_tensor(VECTOR_ELT(xs, i), device));
  return out;
}

std::vector<double> doubles(SEXP x) { return std::vector<double>(REAL(x), REAL(x) + XLENGTH(x)); }

}  // namespace

// CKA of every layer in xs with every layer in ys (or within xs when ys is empty): the
// core's algorithm (alignment.hpp) with the LibTorch dense policy (dense.h).
extern "C" SEXP ts_torch_cka_matrix(SEXP xs, SEXP ys, SEXP kernel, SEXP estimator, SEXP bandwidth, SEXP t,
                                    SEXP sig_x, SEXP sig_y, SEXP path, SEXP device) {
  return guarded([&]() -> SEXP {
    using namespace tensorscope;
    const std::string dev = ts_torch::as_string(device), p = ts_torch::as_string(path);
    const CkaOptions o = tensorscope::cka_options(ts_torch::as_string(kernel), ts_torch::as_string(estimator),
                                               ts_torch::as_string(bandwidth), Rf_asReal(t), p);
    const CkaResult res = ts_torch::cka_matrix(matrix_tensors(xs, dev), matrix_tensors(ys, dev), o, doubles(sig_x),
                                               doubles(sig_y));
    const int nx = static_cast<int>(XLENGTH(xs)), ny = XLENGTH(ys) > 0 ? static_cast<int>(XLENGTH(ys)) : nx;
    SEXP m = PROTECT(Rf_allocMatrix(REALSXP, nx, ny));
    std::copy(res.cka.data(), res.cka.data() + res.cka.size(), REAL(m));
    SEXP a = PROTECT(Rf_allocVector(REALSXP, static_cast<R_xlen_t>(res.sigma_x.size())));
    std::copy(res.sigma_x.begin(), res.sigma_x.end(), REAL(a));
    SEXP b = PROTECT(Rf_allocVector(REALSXP, static_cast<R_xlen_t>(res.sigma_y.size())));
    std::copy(res.sigma_y.begin(), res.sigma_y.end(), REAL(b));
    SEXP out = ts_torch::named_list({m, a, b}, {"cka", "sigma_x", "sigma_y"});
    UNPROTECT(3);
    return out;
  });
}

extern "C" SEXP ts_torch_rdm(SEXP x, SEXP method, SEXP device) {
  return guarded([&]() -> SEXP {
    const std::string dev = ts_torch::as_string(device);
    const tensorscope::RdmMethod rm = ts_torch::rdm_method(ts_torch::as_string(method));
    auto v = ts_torch::rdm_upper(matrix_tensor(x, dev), rm);
    return ts_torch::from_tensor(v.reshape({1, -1}));
  });
}

// Shape distances (in-sample) and CCA similarities of every layer in xs with every layer
// in ys (or within xs when ys is empty): the core's algorithms (shape.hpp) with the
// LibTorch dense policies (shape.h).
#include "shape.h"

namespace {
SEXP host_matrix(const tensorscope::Matrix& m) {
  SEXP out = PROTECT(Rf_allocMatrix(REALSXP, static_cast<int>(m.rows()), static_cast<int>(m.cols())));
  std::copy(m.data(), m.data() + m.size(), REAL(out));
  UNPROTECT(1);
  return out;
}
}  // namespace

extern "C" SEXP ts_torch_shape_matrix(SEXP xs, SEXP ys, SEXP alpha, SEXP score, SEXP centre, SEXP device) {
  return guarded([&]() -> SEXP {
    tensorscope::ShapeOptions o;
    o.alpha = Rf_asReal(alpha);
    o.score = ts_torch::as_string(score) == "euclidean" ? tensorscope::ShapeScore::euclidean : tensorscope::ShapeScore::angular;
    o.centre = Rf_asLogical(centre) == TRUE;
    const std::string dev = ts_torch::as_string(device);
    return host_matrix(ts_torch::shape_matrix(matrix_tensors(xs, dev), matrix_tensors(ys, dev), o));
  });
}

extern "C" SEXP ts_torch_cca_matrix(SEXP xs, SEXP ys, SEXP method, SEXP keep, SEXP device) {
  return guarded([&]() -> SEXP {
    const std::string dev = ts_torch::as_string(device);
    const tensorscope::CcaLayers r = ts_torch::cca_matrix(matrix_tensors(xs, dev), matrix_tensors(ys, dev),
                                                          ts_torch::cca_method(ts_torch::as_string(method)), Rf_asReal(keep));
    SEXP sim = PROTECT(host_matrix(r.similarity));
    SEXP kx = PROTECT(Rf_allocVector(INTSXP, static_cast<R_xlen_t>(r.kx.size())));
    SEXP ky = PROTECT(Rf_allocVector(INTSXP, static_cast<R_xlen_t>(r.ky.size())));
    for (std::size_t i = 0; i < r.kx.size(); ++i) INTEGER(kx)[i] = static_cast<int>(r.kx[i]);
    for (std::size_t i = 0; i < r.ky.size(); ++i) INTEGER(ky)[i] = static_cast<int>(r.ky[i]);
    SEXP out = ts_torch::named_list({sim, kx, ky}, {"similarity", "kx", "ky"});
    UNPROTECT(3);
    return out;
  });
}

// ---- ridge (backend = "torch") --------------------------------------------------------
// An external pointer to a tensorscope::RidgeDecomposer that runs on `device`; the main
// library's cpp_ridge_cv() calls it for each training fold (same compiler, same core
// headers: both libraries come from one package build).
#include "ridge.h"

extern "C" SEXP ts_torch_ridge_decomposer(SEXP device) {
  return guarded([&]() -> SEXP {
    const torch::Device dev(ts_torch::as_string(device));
    torch::zeros({1}, torch::TensorOptions().dtype(torch::kFloat64).device(dev));  // fails here, not mid-fit, without the device
    return ts_torch::wrap_owned(new tensorscope::RidgeDecomposer(ts_torch::TorchRidgeDecomposer{dev}),
                                "tensorscope_ridge_decomposer", R_NilValue);
  });
}

// LibTorch's intra-op thread count; n > 0 sets it. Returns the previous count.
#include <ATen/Parallel.h>

extern "C" SEXP ts_torch_threads(SEXP n) {
  return guarded([&]() -> SEXP {
    const int old = at::get_num_threads();
    const int k = Rf_asInteger(n);
    if (k > 0 && k != old) at::set_num_threads(k);
    return Rf_ScalarInteger(old);
  });
}

// ---- registration ---------------------------------------------------------------------
// R calls R_init_tensorscope_torch when torch_backend() loads this library; only the
// routines below can then be called, by name, through their registered entries.
#include <R_ext/Rdynload.h>

extern "C" {
SEXP ts_torch_fisher_sums(SEXP, SEXP, SEXP, SEXP, SEXP);
SEXP ts_torch_load(SEXP, SEXP);
SEXP ts_torch_modules(SEXP);
SEXP ts_torch_parameters(SEXP);
SEXP ts_torch_called(SEXP, SEXP);
SEXP ts_torch_run(SEXP, SEXP, SEXP, SEXP, SEXP);
SEXP ts_torch_keep(SEXP, SEXP);
SEXP ts_torch_collect(SEXP, SEXP);
SEXP ts_torch_write(SEXP, SEXP, SEXP, SEXP, SEXP, SEXP);
SEXP ts_torch_release(SEXP);
SEXP ts_torch_forward_count(SEXP);
SEXP ts_torch_forget_projections(SEXP);
SEXP ts_torch_ablate(SEXP, SEXP);
SEXP ts_torch_memory(SEXP);
SEXP ts_torch_panel(SEXP, SEXP, SEXP, SEXP);
SEXP ts_torch_gram(SEXP, SEXP, SEXP, SEXP, SEXP, SEXP);
SEXP ts_torch_rtensor_info(SEXP, SEXP);  // rtensor.cpp: torch for R's tensors
SEXP ts_torch_rtensor_fake(SEXP, SEXP, SEXP);
SEXP ts_torch_rtensor_array(SEXP);
SEXP ts_torch_cka_tensors(SEXP, SEXP, SEXP, SEXP, SEXP, SEXP, SEXP, SEXP, SEXP);
SEXP ts_torch_rdm_tensor(SEXP, SEXP);
SEXP ts_torch_ridge_folds(SEXP);
SEXP ts_torch_ridge_folds_free(SEXP);
SEXP ts_torch_ridge_folds_ptr(SEXP);

#define TS_CALL(name, n) {#name, reinterpret_cast<DL_FUNC>(&name), n}

void R_init_tensorscope_torch(DllInfo* dll) {
  static const R_CallMethodDef calls[] = {
      TS_CALL(ts_torch_info, 0),
      TS_CALL(ts_torch_raise_error, 2),
      TS_CALL(ts_torch_cka_matrix, 10),
      TS_CALL(ts_torch_rdm, 3),
      TS_CALL(ts_torch_shape_matrix, 6),
      TS_CALL(ts_torch_cca_matrix, 5),
      TS_CALL(ts_torch_ridge_decomposer, 1),
      TS_CALL(ts_torch_threads, 1),
      TS_CALL(ts_torch_fisher_sums, 5),
      TS_CALL(ts_torch_load, 2),
      TS_CALL(ts_torch_modules, 1),
      TS_CALL(ts_torch_parameters, 1),
      TS_CALL(ts_torch_called, 2),
      TS_CALL(ts_torch_run, 5),
      TS_CALL(ts_torch_keep, 2),
      TS_CALL(ts_torch_collect, 2),
      TS_CALL(ts_torch_write, 6),
      TS_CALL(ts_torch_release, 1),
      TS_CALL(ts_torch_forward_count, 1),
      TS_CALL(ts_torch_forget_projections, 1),
      TS_CALL(ts_torch_ablate, 2),
      TS_CALL(ts_torch_memory, 1),
      TS_CALL(ts_torch_panel, 4),
      TS_CALL(ts_torch_gram, 6),
      TS_CALL(ts_torch_rtensor_info, 2),
      TS_CALL(ts_torch_rtensor_fake, 3),
      TS_CALL(ts_torch_rtensor_array, 1),
      TS_CALL(ts_torch_cka_tensors, 9),
      TS_CALL(ts_torch_rdm_tensor, 2),
      TS_CALL(ts_torch_ridge_folds, 1),
      TS_CALL(ts_torch_ridge_folds_free, 1),
      TS_CALL(ts_torch_ridge_folds_ptr, 1),
      {nullptr, nullptr, 0}};
  R_registerRoutines(dll, nullptr, calls, nullptr, nullptr);
  R_useDynamicSymbols(dll, FALSE);
}
}
