// Dense metrics on LibTorch tensors (CPU or GPU), float64: the `backend = "torch"` path
// of cka() / cka_layers() / rdm(). Pure LibTorch, no R: also compiled by the CMake
// harness in bench/ to check against the Eigen core on machines without R.
// Same formulas as inst/include/tensorscope/alignment.hpp and rdm.hpp.
#pragma once
#include <torch/script.h>

#include <stdexcept>
#include <limits>
#include <string>

namespace ts_torch {

inline torch::Tensor centre_columns(const torch::Tensor& X) { return X - X.mean(0, true); }

// Linear CKA (Kornblith et al. 2019) in feature space: ||Y'X||_F^2 / (||X'X||_F ||Y'Y||_F)
// after column centring; debiased: Song et al. (2012) eq. 5 from the same products.
inline double linear_cka(const torch::Tensor& X0, const torch::Tensor& Y0, bool debiased) {
  const auto X = centre_columns(X0.to(torch::kFloat64));
  const auto Y = centre_columns(Y0.to(torch::kFloat64));
  const double n = static_cast<double>(X.size(0));
  auto hsic = [&](const torch::Tensor& A, const torch::Tensor& B) {
    const double tr = torch::mm(A.t(), B).pow(2).sum().item<double>();  // tr(KL)
    if (!debiased) return tr / ((n - 1) * (n - 1));
    const auto a = A.pow(2).sum(1), b = B.pow(2).sum(1);                // diag(K), diag(L)
    const double ab = torch::dot(a, b).item<double>();
    const double sa = a.sum().item<double>(), sb = b.sum().item<double>();
    return (tr - ab + sa * sb / ((n - 1) * (n - 2)) - 2.0 / (n - 2) * ab) / (n * (n - 3));
  };
  const double xy = hsic(X, Y), xx = hsic(X, X), yy = hsic(Y, Y);
  if (!(xx > 0) || !(yy > 0)) return std::numeric_limits<double>::quiet_NaN();
  return xy / std::sqrt(xx * yy);
}

// RDM as the upper triangle (i < j, row-major: pair (0,1), (0,2), ..., (1,2), ...).
inline torch::Tensor rdm_upper(const torch::Tensor& X0, const std::string& method) {
  auto X = X0.to(torch::kFloat64);
  const int64_t n = X.size(0);
  const double p = static_cast<double>(X.size(1));
  auto idx = torch::triu_indices(n, n, 1, torch::TensorOptions().dtype(torch::kLong).device(X.device()));
  torch::Tensor D;
  if (method == "correlation" || method == "cosine") {
    if (method == "correlation") X = X - X.mean(1, true);
    auto nrm = X.norm(2, 1, true);
    if ((nrm <= 0).any().item<bool>()) throw std::invalid_argument("rdm: a pattern has zero " + std::string(method == "correlation" ? "variance" : "norm"));
    auto Z = X / nrm;
    D = 1.0 - torch::mm(Z, Z.t());
  } else if (method == "euclidean" || method == "sqeuclidean") {
    auto Xc = centre_columns(X);
    auto G = torch::mm(Xc, Xc.t());
    auto d = G.diagonal();
    D = (d.unsqueeze(1) + d.unsqueeze(0) - 2.0 * G).clamp_min(0.0);
    D = method == "euclidean" ? D.sqrt() : D / p;
  } else {
    throw std::invalid_argument("rdm: the torch backend supports correlation, cosine, euclidean and sqeuclidean");
  }
  return D.index({idx[0], idx[1]});
}

}  // namespace ts_torch
