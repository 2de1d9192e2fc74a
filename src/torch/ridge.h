// Ridge on LibTorch (CPU or GPU), float64: the `backend = "torch"` path of
// predictivity(). It replaces only the decomposition of each training fold (the Gram
// matrix, its eigendecomposition and the products with the responses and the test rows:
// the O(n^2 p + n^3) work); alpha selection, prediction and scoring stay in the core's
// ridge_cv() (inst/include/tensorscope/predictivity.hpp), so both backends share them.
// Same formulas as ridge_decompose() there. Pure LibTorch + the core, no R: also
// compiled by the CMake harness in bench/.
#pragma once
#include <tensorscope/predictivity.hpp>

#include <torch/script.h>
#include <torch/linalg.h>

#include <algorithm>
#include <cstring>

namespace ts_torch {

// Column-major Eigen n x p -> n x p tensor on `device` (a view of the Eigen memory on
// the CPU: only read, and only while the matrix lives).
inline torch::Tensor eigen_tensor(const tensorscope::Matrix& m, const torch::Device& device) {
  if (m.size() == 0) return torch::zeros({m.rows(), m.cols()}, torch::TensorOptions().dtype(torch::kFloat64).device(device));
  return torch::from_blob(const_cast<double*>(m.data()), {m.cols(), m.rows()}, torch::kFloat64).t().to(device);
}

// Tensor (2-D, or 1-D as a column) -> Eigen matrix on the host.
inline tensorscope::Matrix tensor_eigen(const torch::Tensor& t0) {
  const torch::Tensor t = t0.dim() == 1 ? t0.unsqueeze(1) : t0;
  tensorscope::Matrix m(t.size(0), t.size(1));
  if (m.size() == 0) return m;
  // the transpose of a row-major copy is the column-major layout Eigen wants
  const torch::Tensor c = t.to(torch::kCPU, torch::kFloat64).t().contiguous();
  std::memcpy(m.data(), c.data_ptr<double>(), sizeof(double) * static_cast<std::size_t>(m.size()));
  return m;
}

// The decomposition of one training set on the tensors' device: X (n x p) and Y (n x q)
// centred training data, Xt (m x p, m may be 0) centred test data, all float64. Same
// formulas as the core's ridge_decompose().
inline tensorscope::RidgeDecomp ridge_decompose_tensors(const torch::Tensor& X, const torch::Tensor& Y,
                                                        const torch::Tensor& Xt, bool want_u) {
  torch::NoGradGuard no_grad;
  tensorscope::RidgeDecomp d;
  const int64_t n = X.size(0), p = X.size(1);
  d.n_train = static_cast<double>(n);
  d.kernel = p > n;
  const bool test = Xt.size(0) > 0;
  // eigenpairs of the smaller Gram matrix; lambda >= 0, components <= tol dropped
  auto eig = torch::linalg::eigh(d.kernel ? torch::mm(X, X.t()) : torch::mm(X.t(), X), "L");
  const torch::Tensor lambda = std::get<0>(eig).clamp_min(0.0), V = std::get<1>(eig);
  const double tol = lambda.max().item<double>() * static_cast<double>(std::max(n, p)) * 2.2e-16;
  const torch::Tensor keep = lambda.gt(tol).to(torch::kFloat64);
  torch::Tensor B, A, C, U;
  if (!d.kernel) {
    B = torch::mm(V.t(), torch::mm(X.t(), Y));
    if (test) A = torch::mm(Xt, V);
    const torch::Tensor inv_s = keep * lambda.clamp_min(tol > 0 ? tol : 1e-300).rsqrt();
    C = inv_s.unsqueeze(1) * B;
    if (want_u) U = torch::mm(X, V * inv_s.unsqueeze(0));
  } else {
    B = torch::mm(V.t(), Y);
    if (test) A = torch::mm(torch::mm(Xt, X.t()), V);
    C = keep.unsqueeze(1) * B;
    if (want_u) U = V * keep.unsqueeze(0);
  }
  const torch::Tensor C2 = C.square();
  const torch::Tensor resid0 = (Y.square().sum(0) - C2.sum(0)).clamp_min(0.0);
  d.lambda = tensor_eigen(lambda);
  d.keep = tensor_eigen(keep);
  d.B = tensor_eigen(B);
  d.C2 = tensor_eigen(C2);
  d.resid0 = tensor_eigen(resid0);
  if (test) d.A = tensor_eigen(A);
  if (want_u) d.U = tensor_eigen(U);
  return d;
}

// A LibTorch failure (out of GPU memory, say) inside the main library's cpp_ridge_cv()
// leaves as a ts_error of kind torch, which that glue raises classed.
template <class F>
tensorscope::RidgeDecomp torch_errors_as_ts(F&& f) {
  try {
    return f();
  } catch (const c10::Error& e) {
    throw tensorscope::ts_error(tensorscope::ErrorKind::torch, e.what_without_backtrace());
  }
}

// The decomposer for Eigen (host) folds: each fold moved to `device`.
struct TorchRidgeDecomposer {
  torch::Device device = torch::kCPU;

  tensorscope::RidgeDecomp operator()(const tensorscope::Matrix& Xc, const tensorscope::Matrix& Yc,
                                      const tensorscope::Matrix& Xt, bool want_u) const {
    return torch_errors_as_ts([&] {
      torch::NoGradGuard no_grad;
      return ridge_decompose_tensors(eigen_tensor(Xc, device), eigen_tensor(Yc, device),
                                     Xt.rows() > 0 ? eigen_tensor(Xt, device)
                                                   : torch::zeros({0, Xc.cols()}, torch::TensorOptions().dtype(torch::kFloat64).device(device)),
                                     want_u);
    });
  }
};

// The folds of a layer held as a tensor (tensorscope::RidgeFolds): each fold's rows are
// gathered and centred on the tensor's device, so X never reaches host memory; only
// the small products of the decomposition (RidgeDecomp) come back. X: n x p, float64
// (the handle shares the caller's storage and keeps it alive while this object lives).
struct TensorRidgeFolds {
  torch::Tensor X;

  static torch::Tensor index(const std::vector<tensorscope::Index>& rows, const torch::Device& device) {
    std::vector<int64_t> v(rows.begin(), rows.end());
    return torch::tensor(v, torch::TensorOptions().dtype(torch::kLong)).to(device);
  }

  tensorscope::RidgeDecomp operator()(const std::vector<tensorscope::Index>& train,
                                      const std::vector<tensorscope::Index>& test, const tensorscope::Matrix& Yc,
                                      bool want_u) const {
    return torch_errors_as_ts([&] {
      torch::NoGradGuard no_grad;
      const torch::Device dev = X.device();
      const torch::Tensor Xtr = X.index_select(0, index(train, dev));
      const torch::Tensor mu = Xtr.mean(0, /*keepdim=*/true);
      const torch::Tensor Xt = test.empty() ? torch::zeros({0, X.size(1)}, X.options())
                                            : X.index_select(0, index(test, dev)) - mu;
      return ridge_decompose_tensors(Xtr - mu, eigen_tensor(Yc, dev), Xt, want_u);
    });
  }
};

}  // namespace ts_torch
