// Dense metrics on LibTorch tensors (CPU or GPU), float64: the `backend = "torch"` path
// of cka() / cka_layers() / rdm() (ridge: ridge.h). Pure LibTorch, no R: also compiled by the CMake
// harness in bench/ to check against the Eigen core on machines without R.
// Same formulas as inst/include/tensorscope/alignment.hpp and rdm.hpp.
#pragma once
#include <torch/script.h>

#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

namespace ts_torch {

inline torch::Tensor centre_columns(const torch::Tensor& X) { return X - X.mean(0, true); }

// ---- CKA ----------------------------------------------------------------------------
// Every layer is prepared once (centred, and its kernel formed on the Gram route); each
// pair is then one product. Same estimators as cka_matrix() in alignment.hpp:
//   biased:   HSIC ~ tr(Kc Lc) (the 1/(n-1)^2 cancels in CKA);
//   debiased: Song et al. (2012) eq. 5 from K~ (K with zero diagonal):
//             (tr(K~L~) + 1'K~1 1'L~1 / ((n-1)(n-2)) - 2/(n-2) 1'K~L~1) / (n(n-3)).
// Feature route (linear kernel): tr(KL) = ||Xc'Yc||_F^2, diag(K) = row norms^2, and as
// Xc's columns sum to zero, K~1 = -diag(K).
struct CkaLayer {
  torch::Tensor rep;     // feature route: Xc (n x p); Gram route: Kc or K~ (n x n)
  bool gram = false;
  torch::Tensor rowsum;  // debiased: K~ 1 (feature route: -diag(K))
  double total = 0;      // debiased: 1'K~1
  double sigma = std::numeric_limits<double>::quiet_NaN();
};

namespace detail {
// k-th smallest (0-based) of a 1-D tensor
inline double kth(const torch::Tensor& u, int64_t k) { return std::get<0>(torch::kthvalue(u, k + 1)).item<double>(); }
}  // namespace detail

// RBF bandwidth from the off-diagonal squared distances u (i < j): "median" is t times
// the root of the median of all n^2 squared distances (zero diagonal included), as in
// Kornblith et al.; "median_nonzero" the root of the median of the non-zero ones.
inline double rbf_bandwidth(const torch::Tensor& u, int64_t n, bool median_full, double t) {
  if (median_full) {
    const int64_t N = n * n;
    auto full = [&](int64_t q) { return q < n ? 0.0 : detail::kth(u, (q - n) / 2); };
    const double med = N % 2 == 1 ? full((N - 1) / 2) : 0.5 * (full(N / 2 - 1) + full(N / 2));
    return t * std::sqrt(med);
  }
  const torch::Tensor nz = u.masked_select(u.gt(0.0));
  const int64_t m = nz.numel();
  if (m == 0) return 0.0;
  const double med = m % 2 == 1 ? detail::kth(nz, m / 2) : 0.5 * (detail::kth(nz, m / 2 - 1) + detail::kth(nz, m / 2));
  return std::sqrt(med);
}

// sigma <= 0 or NaN: from the bandwidth rule (RBF only).
inline CkaLayer cka_prepare(const torch::Tensor& X0, bool gram, bool rbf, bool debiased, double sigma,
                            bool median_full, double t) {
  CkaLayer L;
  const auto X = centre_columns(X0.to(torch::kFloat64));
  const int64_t n = X.size(0);
  L.gram = gram || rbf;
  if (!L.gram) {
    L.rep = X;
    if (debiased) {
      L.rowsum = -X.square().sum(1);
      L.total = L.rowsum.sum().item<double>();
    }
    return L;
  }
  torch::Tensor K = torch::mm(X, X.t());
  if (rbf) {
    const auto d = K.diagonal();
    K = (d.unsqueeze(1) + d.unsqueeze(0) - 2.0 * K).clamp_min(0.0);  // squared distances
    if (!(sigma > 0)) {
      auto idx = torch::triu_indices(n, n, 1, torch::TensorOptions().dtype(torch::kLong).device(K.device()));
      sigma = rbf_bandwidth(K.index({idx[0], idx[1]}), n, median_full, t);
    }
    if (!(sigma > 0) || !std::isfinite(sigma)) throw std::invalid_argument("RBF bandwidth is zero: all points coincide");
    L.sigma = sigma;
    K = torch::exp(K * (-1.0 / (2.0 * sigma * sigma)));
  }
  if (!debiased) {
    const auto r = K.mean(1);  // H K H = K - r 1' - 1 r' + mean(K)
    L.rep = K - r.unsqueeze(1) - r.unsqueeze(0) + r.mean();
  } else {
    K.diagonal().zero_();
    L.rowsum = K.sum(1);
    L.total = L.rowsum.sum().item<double>();
    L.rep = K;
  }
  return L;
}

// HSIC(a, b) up to a common factor (see above); n stimuli.
inline double cka_hsic(const CkaLayer& a, const CkaLayer& b, bool debiased, int64_t n) {
  const double rr = debiased ? torch::dot(a.rowsum, b.rowsum).item<double>() : 0.0;  // 1'K~L~1
  double dot;  // tr(Kc Lc), or tr(K~ L~)
  if (!a.gram) {
    dot = torch::mm(a.rep.t(), b.rep).square().sum().item<double>();
    if (debiased) dot -= rr;  // tr(K~L~) = tr(KL) - diag(K).diag(L), and diag(K) = -K~1
  } else {
    dot = (a.rep * b.rep).sum().item<double>();
  }
  if (!debiased) return dot;
  const double nd = static_cast<double>(n);
  return (dot + a.total * b.total / ((nd - 1) * (nd - 2)) - 2.0 / (nd - 2) * rr) / (nd * (nd - 3));
}

struct CkaMatrix {
  std::vector<double> cka;  // column-major |xs| x |ys| (|xs| x |xs| when ys is empty)
  std::vector<double> sigma_x, sigma_y;
};

// CKA between xs and ys (or xs with itself when ys is empty), tensors n x p_l on one
// device. gram: the sample-space route (always for RBF); sig_x / sig_y: per-layer RBF
// bandwidths (NaN: from the rule). Each layer's representation is held on the device.
inline CkaMatrix cka_matrix(const std::vector<torch::Tensor>& xs, const std::vector<torch::Tensor>& ys, bool rbf,
                            bool debiased, bool gram, const std::vector<double>& sig_x,
                            const std::vector<double>& sig_y, bool median_full, double t) {
  torch::NoGradGuard no_grad;
  const bool within = ys.empty();
  const int64_t n = xs.at(0).size(0);
  auto prepare = [&](const std::vector<torch::Tensor>& v, const std::vector<double>& sig, std::vector<double>& used) {
    std::vector<CkaLayer> out;
    for (std::size_t l = 0; l < v.size(); ++l) {
      out.push_back(cka_prepare(v[l], gram, rbf, debiased, l < sig.size() ? sig[l] : std::nan(""), median_full, t));
      used.push_back(out.back().sigma);
    }
    return out;
  };
  CkaMatrix res;
  const std::vector<CkaLayer> px = prepare(xs, sig_x, res.sigma_x);
  const std::vector<CkaLayer> py = within ? std::vector<CkaLayer>() : prepare(ys, sig_y, res.sigma_y);
  const std::vector<CkaLayer>& qy = within ? px : py;
  std::vector<double> self_x, self_y;
  for (const auto& a : px) self_x.push_back(cka_hsic(a, a, debiased, n));
  if (!within)
    for (const auto& b : py) self_y.push_back(cka_hsic(b, b, debiased, n));
  const std::vector<double>& sy = within ? self_x : self_y;
  const std::size_t nx = px.size(), ny = qy.size();
  res.cka.assign(nx * ny, std::numeric_limits<double>::quiet_NaN());
  for (std::size_t j = 0; j < ny; ++j) {
    for (std::size_t i = 0; i < nx; ++i) {
      if (within && i > j) continue;  // filled from (j, i)
      if (!(self_x[i] > 0) || !(sy[j] > 0)) continue;
      const double h = (within && i == j) ? self_x[i] : cka_hsic(px[i], qy[j], debiased, n);
      res.cka[i + j * nx] = h / std::sqrt(self_x[i] * sy[j]);
      if (within) res.cka[j + i * nx] = res.cka[i + j * nx];
    }
  }
  return res;
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
