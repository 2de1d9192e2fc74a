// Dense metrics on LibTorch tensors (CPU or GPU), float64: the `backend = "torch"` path
// of cka() / cka_layers() / rdm() (ridge: ridge.h). Each is a policy of dense operations
// passed into the core's algorithm (inst/include/tensorscope/alignment.hpp, rdm.hpp), as
// ridge passes a decomposer into ridge_cv(): the checks, the route, the bandwidth rule
// and the estimators live once, in the core. Pure LibTorch + the core, no R: also
// compiled by the CMake harness in bench/ to check against the Eigen core on machines
// without R.
#pragma once
#include <tensorscope/alignment.hpp>
#include <tensorscope/rdm.hpp>

#include <torch/script.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

namespace ts_torch {

inline torch::Tensor centre_columns(const torch::Tensor& X) { return X - X.mean(0, true); }

// 1-D tensor -> Eigen vector on the host.
inline tensorscope::Vector host_vector(const torch::Tensor& t0) {
  const torch::Tensor t = t0.to(torch::kCPU, torch::kFloat64).contiguous();
  tensorscope::Vector v(t.numel());
  if (v.size() > 0) std::memcpy(v.data(), t.data_ptr<double>(), sizeof(double) * static_cast<std::size_t>(v.size()));
  return v;
}

// ---- CKA ----------------------------------------------------------------------------
// The dense work of tensorscope::cka_matrix_with() on tensors (n x p_l, one device):
// every layer is prepared once and held on the device (centred on the feature route;
// its kernel, centred or with zero diagonal, on the sample-space route), and each pair
// is one product. See LayerKernel in alignment.hpp for what the dots are.
struct TorchCka {
  using Layer = torch::Tensor;
  struct Block {
    std::vector<tensorscope::LayerKernel> k;
    std::vector<torch::Tensor> rep;  // feature route: Xc (n x p); sample space: Kc or K~ (n x n)
  };

  static constexpr bool streams_linear = false;  // every layer's kernel held on the device at once
  static tensorscope::Index rows(const Layer& x) { return x.size(0); }
  static tensorscope::Index cols(const Layer& x) { return x.size(1); }
  static std::size_t per_block(tensorscope::Index, bool, const tensorscope::CkaOptions&, std::size_t layers) {
    return std::max<std::size_t>(1, layers);
  }

  static Block prepare(const std::vector<Layer>& layers, std::size_t b0, std::size_t b1, bool gram,
                       const tensorscope::CkaOptions& o, const std::vector<double>& sigma, const tensorscope::Exec& ex) {
    using tensorscope::Estimator;
    torch::NoGradGuard no_grad;
    Block B;
    for (std::size_t l = b0; l < b1; ++l) {
      tensorscope::LayerKernel k;
      const torch::Tensor X = centre_columns(layers[l].to(torch::kFloat64));
      const int64_t n = X.size(0);
      torch::Tensor rep;
      if (!gram) {
        rep = X;
        k.self_dot = torch::mm(X.t(), X).square().sum().item<double>();
        if (o.estimator == Estimator::debiased) {
          k.rowsum = host_vector(-X.square().sum(1));
          k.total = k.rowsum.sum();
        }
      } else {
        torch::Tensor K = torch::mm(X, X.t());
        if (o.kernel == tensorscope::Kernel::rbf) {
          const auto d = K.diagonal();
          K = (d.unsqueeze(1) + d.unsqueeze(0) - 2.0 * K).clamp_min(0.0);  // squared distances
          torch::Tensor u, pos;  // the off-diagonal ones (i < j), and those > 0: on first use
          auto values = [&](bool positive) -> const torch::Tensor& {
            if (!u.defined()) {
              auto idx = torch::triu_indices(n, n, 1, torch::TensorOptions().dtype(torch::kLong).device(K.device()));
              u = K.index({idx[0], idx[1]});
            }
            if (positive && !pos.defined()) pos = u.masked_select(u.gt(0.0));
            return positive ? pos : u;
          };
          k.sigma = tensorscope::layer_bandwidth(
              o, sigma[l], n,
              [&](tensorscope::Index q, bool positive) {
                return std::get<0>(torch::kthvalue(values(positive), q + 1)).item<double>();
              },
              [&] { return static_cast<tensorscope::Index>(values(true).numel()); });
          K = torch::exp(K * (-1.0 / (2.0 * k.sigma * k.sigma)));
        }
        if (o.estimator == Estimator::biased) {
          const auto r = K.mean(1);  // H K H = K - r 1' - 1 r' + mean(K)
          rep = K - r.unsqueeze(1) - r.unsqueeze(0) + r.mean();
        } else {
          K.diagonal().zero_();
          k.rowsum = host_vector(K.sum(1));
          k.total = k.rowsum.sum();
          rep = K;
        }
        k.self_dot = (rep * rep).sum().item<double>();
      }
      B.rep.push_back(rep);
      B.k.push_back(std::move(k));
      ex.check();
    }
    return B;
  }

  static tensorscope::Matrix dots(const Block& a, const Block& b, bool gram, bool upper, const tensorscope::Exec& ex) {
    torch::NoGradGuard no_grad;
    tensorscope::Matrix D = tensorscope::Matrix::Constant(static_cast<tensorscope::Index>(a.rep.size()),
                                                          static_cast<tensorscope::Index>(b.rep.size()),
                                                          std::numeric_limits<double>::quiet_NaN());
    for (std::size_t i = 0; i < a.rep.size(); ++i) {
      for (std::size_t j = upper ? i + 1 : 0; j < b.rep.size(); ++j) {
        const torch::Tensor v = gram ? (a.rep[i] * b.rep[j]).sum() : torch::mm(a.rep[i].t(), b.rep[j]).square().sum();
        D(static_cast<tensorscope::Index>(i), static_cast<tensorscope::Index>(j)) = v.item<double>();
      }
      ex.check();
    }
    return D;
  }
};

// CKA between xs and ys (or xs with itself when ys is empty) on the tensors' device.
inline tensorscope::CkaResult cka_matrix(const std::vector<torch::Tensor>& xs, const std::vector<torch::Tensor>& ys,
                                         const tensorscope::CkaOptions& o, const std::vector<double>& sig_x,
                                         const std::vector<double>& sig_y) {
  return tensorscope::cka_matrix_with(xs, ys, o, sig_x, sig_y, tensorscope::Exec{}, TorchCka{});
}

// ---- RDMs ---------------------------------------------------------------------------
// The dense operations of tensorscope::rdm_upper_with() on tensors: an Upper is the
// upper triangle (i < j, row-major: pair (0,1), (0,2), ..., (1,2), ...), R's dist order.
struct TorchRdm {
  using Mat = torch::Tensor;
  using Upper = torch::Tensor;
  static tensorscope::Index cols(const torch::Tensor& X) { return X.size(1); }
  static torch::Tensor upper(const torch::Tensor& M) {
    const int64_t n = M.size(0);
    auto idx = torch::triu_indices(n, n, 1, torch::TensorOptions().dtype(torch::kLong).device(M.device()));
    return M.index({idx[0], idx[1]});
  }
  // rows scaled to unit norm (after removing each row's mean); a zero row becomes NaN
  static torch::Tensor unit_rows(const torch::Tensor& X0, bool centre) {
    torch::Tensor X = X0.to(torch::kFloat64);
    if (centre) X = X - X.mean(1, true);
    const torch::Tensor nrm = X.norm(2, 1, true);
    return X * torch::where(nrm > 0, nrm.reciprocal(), torch::full_like(nrm, std::numeric_limits<double>::quiet_NaN()));
  }
  static torch::Tensor centred(const torch::Tensor& X) { return centre_columns(X.to(torch::kFloat64)); }
  static torch::Tensor gram(const torch::Tensor& X) { return torch::mm(X, X.t()); }
  static torch::Tensor one_minus(const torch::Tensor& G) { return upper(1.0 - G); }
  static torch::Tensor sq_distances(const torch::Tensor& G) {
    const auto d = G.diagonal();
    return upper((d.unsqueeze(1) + d.unsqueeze(0) - 2.0 * G).clamp_min(0.0));
  }
  static torch::Tensor sqrt(const torch::Tensor& v) { return v.sqrt(); }
  static torch::Tensor divide(const torch::Tensor& v, double c) { return v / c; }
};

// The core's RDM method from its R name (mahalanobis: not on LibTorch, a classed error).
inline tensorscope::RdmMethod rdm_method(const std::string& m) {
  using tensorscope::RdmMethod;
  return m == "correlation"   ? RdmMethod::correlation
         : m == "cosine"      ? RdmMethod::cosine
         : m == "euclidean"   ? RdmMethod::euclidean
         : m == "sqeuclidean" ? RdmMethod::sqeuclidean
                              : RdmMethod::mahalanobis;
}

// RDM (upper triangle) of the rows of X on its device; method as rdm_vector()'s.
inline torch::Tensor rdm_upper(const torch::Tensor& X, tensorscope::RdmMethod method) {
  torch::NoGradGuard no_grad;
  return tensorscope::rdm_upper_with(X, method, TorchRdm{});
}

}  // namespace ts_torch
