// Shape metrics and the CCA family on LibTorch tensors (CPU or GPU), float64: the
// `backend = "torch"` path of shape_distance() / shape_layers() (in-sample) and
// cca_similarity() / cca_layers(). Each is a policy of the dense work (centring, SVDs,
// cross products) passed into the core's shape_matrix_with() / cca_matrix_with()
// (inst/include/tensorscope/shape.hpp); the whitening weights, the scale, the scores and
// the kept-dimension rule are the core's, computed on the host from singular values.
// Pure LibTorch + the core, no R: also compiled by the CMake harness in bench/.
#pragma once
#include <tensorscope/shape.hpp>

#include "dense.h"

#include <torch/linalg.h>
#include <torch/script.h>

namespace ts_torch {

struct TorchShape {
  using Layer = torch::Tensor;
  struct Prepared : tensorscope::ShapeStats {
    torch::Tensor W;  // n x r on the device
  };
  Prepared prepare(const Layer& x0, const tensorscope::ShapeOptions& o) const {
    torch::NoGradGuard no_grad;
    Prepared L;
    torch::Tensor X = x0.to(torch::kFloat64);
    if (o.centre) X = centre_columns(X);
    L.p = X.size(1);
    L.identity = o.alpha > 1.0 - o.tol;
    if (L.identity && X.size(1) <= X.size(0)) {
      L.W = X;
    } else {
      auto usv = torch::linalg::svd(X, false, c10::nullopt);
      const torch::Tensor s = std::get<1>(usv);
      const tensorscope::Vector d = tensorscope::shape_weights(host_vector(s), L.p, o, L);
      const torch::Tensor dt = torch::from_blob(const_cast<double*>(d.data()), {d.size()}, torch::kFloat64).to(s.device());
      L.W = std::get<0>(usv) * (s * dt).unsqueeze(0);
    }
    L.sumsq = L.W.pow(2).sum().item<double>();
    return L;
  }
  double pair(const Prepared& a, const Prepared& b, const tensorscope::ShapeOptions& o) const {
    torch::NoGradGuard no_grad;
    const double nuc = torch::linalg::svdvals(torch::mm(a.W.t(), b.W), c10::nullopt).sum().item<double>();
    return tensorscope::shape_pair_score(a, b, nuc, o);
  }
};

inline tensorscope::Matrix shape_matrix(const std::vector<torch::Tensor>& xs, const std::vector<torch::Tensor>& ys,
                                        const tensorscope::ShapeOptions& o) {
  return tensorscope::shape_matrix_with(xs, ys, o, true, tensorscope::Exec{}, TorchShape{});
}

struct TorchCca {
  using Layer = torch::Tensor;
  struct Basis {
    torch::Tensor Q, Xc;  // n x k orthonormal; centred data (PWCCA only)
    tensorscope::Index p = 0;
  };
  Basis basis(const Layer& x0, double keep, bool truncate, bool keep_data) const {
    torch::NoGradGuard no_grad;
    Basis B;
    const torch::Tensor Xc = centre_columns(x0.to(torch::kFloat64));
    B.p = Xc.size(1);
    auto usv = torch::linalg::svd(Xc, false, c10::nullopt);
    const tensorscope::Index k = tensorscope::cca_kept(host_vector(std::get<1>(usv)), Xc.size(0), Xc.size(1), keep, truncate);
    B.Q = std::get<0>(usv).narrow(1, 0, k);
    if (keep_data) B.Xc = Xc;
    return B;
  }
  static tensorscope::Index kept(const Basis& b) { return b.Q.size(1); }
  double pair(const Basis& a, const Basis& b, tensorscope::CcaMethod m) const {
    torch::NoGradGuard no_grad;
    const torch::Tensor M = torch::mm(a.Q.t(), b.Q);
    const double kmin = static_cast<double>(std::min(a.Q.size(1), b.Q.size(1)));
    if (m != tensorscope::CcaMethod::pwcca) return torch::linalg::svdvals(M, c10::nullopt).clamp_max(1.0).sum().item<double>() / kmin;
    auto usv = torch::linalg::svd(M, false, c10::nullopt);
    const torch::Tensor rho = std::get<1>(usv).clamp_max(1.0);
    const bool use_x = a.p <= b.p;
    const torch::Tensor H = use_x ? torch::mm(a.Q, std::get<0>(usv)) : torch::mm(b.Q, std::get<2>(usv).t());
    const torch::Tensor w = torch::mm(H.t(), use_x ? a.Xc : b.Xc).abs().sum(1);
    return (w * rho).sum().item<double>() / w.sum().item<double>();
  }
};

inline tensorscope::CcaLayers cca_matrix(const std::vector<torch::Tensor>& xs, const std::vector<torch::Tensor>& ys,
                                         tensorscope::CcaMethod m, double keep) {
  return tensorscope::cca_matrix_with(xs, ys, m, keep, tensorscope::Exec{}, TorchCca{});
}

inline tensorscope::CcaMethod cca_method(const std::string& m) {
  using tensorscope::CcaMethod;
  return m == "svcca" ? CcaMethod::svcca : (m == "pwcca" ? CcaMethod::pwcca : CcaMethod::mean);
}

}  // namespace ts_torch
