// Checks the LibTorch dense path (src/torch/dense.h, ridge.h) against the Eigen core,
// without R: CKA (linear and RBF kernels, biased and debiased, feature and Gram routes),
// RDMs (correlation, cosine, euclidean, sqeuclidean), cross-validated ridge (GCV, LOO
// and inner K-fold alpha selection; feature and kernel forms; each fold moved to the
// device, and the layer held as a device tensor whose folds are gathered there), shape
// metrics and the CCA family (src/torch/shape.h) on random data, float64, on CUDA when
// available (else CPU). Exit status 1 when any difference exceeds 1e-8.
// Usage: torch_check [n = 1000] [p = 300]
#include <tensorscope/alignment.hpp>
#include <tensorscope/predictivity.hpp>
#include <tensorscope/rdm.hpp>

#include "dense.h"
#include "ridge.h"
#include "shape.h"

#include <torch/cuda.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>

using namespace tensorscope;

int main(int argc, char** argv) {
  const Index n = argc > 1 ? std::atol(argv[1]) : 1000;
  const Index p = argc > 2 ? std::atol(argv[2]) : 300;
  const bool cuda = torch::cuda::is_available();
  const torch::Device dev = cuda ? torch::kCUDA : torch::kCPU;
  std::printf("n = %ld, p = %ld, LibTorch device: %s\n", static_cast<long>(n), static_cast<long>(p), cuda ? "cuda" : "cpu");
  torch::manual_seed(1);
  torch::Tensor xt = torch::randn({n, p}, torch::kFloat64);
  torch::Tensor yt = torch::cat({torch::mm(xt.narrow(1, 0, p / 2), torch::randn({p / 2, p / 2}, torch::kFloat64)),
                                 torch::randn({n, p - p / 2}, torch::kFloat64)}, 1);
  // Eigen views of the same (row-major) data, copied to column-major matrices
  Matrix X(n, p), Y(n, p);
  auto xa = xt.accessor<double, 2>();
  auto ya = yt.accessor<double, 2>();
  for (Index i = 0; i < n; ++i)
    for (Index j = 0; j < p; ++j) { X(i, j) = xa[i][j]; Y(i, j) = ya[i][j]; }
  Exec ex;
  double worst = 0;
  auto timed = [](auto&& f) {
    auto t0 = std::chrono::steady_clock::now();
    auto v = f();
    if (torch::cuda::is_available()) torch::cuda::synchronize();
    return std::make_pair(v, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  };
  for (Kernel k : {Kernel::linear, Kernel::rbf}) {
    for (Estimator e : {Estimator::biased, Estimator::debiased}) {
      for (bool gram : {false, true}) {
        if (k == Kernel::rbf && !gram) continue;
        CkaOptions o;
        o.kernel = k;
        o.estimator = e;
        o.path = gram ? CkaPath::gram : CkaPath::feature;
        const double nan = std::nan("");
        // within {X, Y}: the whole 2 x 2 matrix is compared
        auto eig = timed([&] { return cka_matrix({MatRef(X), MatRef(Y)}, {}, o, {nan, nan}, {}, ex).cka; });
        auto tor = timed([&] {
          return ts_torch::cka_matrix({xt.to(dev), yt.to(dev)}, {}, o, {nan, nan}, {}).cka;
        });
        double d = 0;
        for (int c = 0; c < 4; ++c) d = std::max(d, std::abs(eig.first(c % 2, c / 2) - tor.first(c % 2, c / 2)));
        worst = std::max(worst, d);
        std::printf("cka %-6s %-8s %-7s eigen %.12f (%.3fs)  torch %.12f (%.3fs)  max |diff| %.2e\n",
                    k == Kernel::linear ? "linear" : "rbf", e == Estimator::biased ? "biased" : "debiased",
                    gram ? "gram" : "feature", eig.first(0, 1), eig.second, tor.first(0, 1), tor.second, d);
      }
    }
  }
  const char* names[] = {"correlation", "cosine", "euclidean", "sqeuclidean"};
  const RdmMethod methods[] = {RdmMethod::correlation, RdmMethod::cosine, RdmMethod::euclidean, RdmMethod::sqeuclidean};
  Matrix none(0, 0);
  for (int k = 0; k < 4; ++k) {
    auto eig = timed([&] { return Vector(rdm_vector(X, methods[k], none)); });
    auto tor = timed([&] { return ts_torch::rdm_upper(xt.to(dev), methods[k]).to(torch::kCPU).contiguous(); });
    double d = 0;
    const double* tv = tor.first.data_ptr<double>();
    for (Index i = 0; i < eig.first.size(); ++i) d = std::max(d, std::abs(eig.first(i) - tv[i]));
    worst = std::max(worst, d);
    std::printf("rdm %-12s eigen %.3fs  torch %.3fs  max |diff| %.2e\n", names[k], eig.second, tor.second, d);
  }
  // ridge: 5 folds, responses from half of the features plus noise; p < n_train
  // (feature form) and the first n_train / 2 rows' worth of features > n_train (kernel)
  const Matrix R = Y.leftCols(std::min<Index>(p, 40)) + Matrix::Random(n, std::min<Index>(p, 40));
  std::vector<Split> splits(5);
  for (Index i = 0; i < n; ++i)
    for (int f = 0; f < 5; ++f) (i % 5 == f ? splits[f].test : splits[f].train).push_back(i);
  const Index wide = std::min<Index>(n / 2, p);  // rows used for the kernel form
  const Matrix Xw = X.topRows(wide), Rw = R.topRows(wide);
  std::vector<Split> splits_w(5);
  for (Index i = 0; i < wide; ++i)
    for (int f = 0; f < 5; ++f) (i % 5 == f ? splits_w[f].test : splits_w[f].train).push_back(i);
  const RidgeDecomposer on_torch = ts_torch::TorchRidgeDecomposer{dev};
  const char* sel_names[] = {"gcv", "loo", "kfold"};
  const AlphaSelect sels[] = {AlphaSelect::gcv, AlphaSelect::loo, AlphaSelect::kfold};
  for (int form = 0; form < 2; ++form) {
    for (int k = 0; k < 3; ++k) {
      RidgeOptions o;
      for (int a = -2; a <= 6; ++a) o.alphas.push_back(std::pow(10.0, a));
      o.select = sels[k];
      const Matrix& XX = form == 0 ? X : Xw;
      const Matrix& RR = form == 0 ? R : Rw;
      const auto& sp = form == 0 ? splits : splits_w;
      auto eig = timed([&] { return ridge_cv(XX, RR, sp, o, true, false, ex); });
      auto tor = timed([&] { return ridge_cv(XX, RR, sp, o, true, false, ex, on_torch); });
      // the layer as a tensor on the device, its folds gathered there (predictivity() on
      // a torch_tensor): the row-major tensor made from xt, not from the Eigen copy
      const torch::Tensor xdev = (form == 0 ? xt : xt.narrow(0, 0, wide)).to(dev);
      const RidgeFolds in_place = ts_torch::TensorRidgeFolds{xdev};
      auto ten = timed([&] { return ridge_cv_folds(in_place, RR, sp, o, true, false, ex); });
      auto diff = [&](const CvResult& a) {
        return std::max((eig.first.pooled_r - a.pooled_r).cwiseAbs().maxCoeff(),
                        (eig.first.pooled_pred - a.pooled_pred).cwiseAbs().maxCoeff());
      };
      const double d = diff(tor.first), dt = diff(ten.first);
      const bool same_alpha = (eig.first.alpha - tor.first.alpha).cwiseAbs().maxCoeff() == 0 &&
                              (eig.first.alpha - ten.first.alpha).cwiseAbs().maxCoeff() == 0;
      worst = std::max(worst, same_alpha ? std::max(d, dt) : 1.0);
      std::printf("ridge %-7s %-5s eigen %.3fs  torch %.3fs  tensor %.3fs  max |diff| r, predictions %.2e / %.2e%s\n",
                  form == 0 ? "feature" : "kernel", sel_names[k], eig.second, tor.second, ten.second, d, dt,
                  same_alpha ? "" : "  (different alphas chosen)");
    }
  }
  // shape metrics (alpha 1, 0.5, 0; angular and Euclidean; X padded against a narrower
  // Y) and the CCA family, all pairs within {X, Y}
  const torch::Tensor yn = yt.narrow(1, 0, p / 3).contiguous();
  const Matrix Yn = Y.leftCols(p / 3);
  for (double a : {1.0, 0.5, 0.0}) {
    for (ShapeScore sc : {ShapeScore::angular, ShapeScore::euclidean}) {
      ShapeOptions o;
      o.alpha = a;
      o.score = sc;
      auto eig = timed([&] { return shape_matrix({MatRef(X), MatRef(Yn)}, {}, o, {}, {}, ex); });
      auto tor = timed([&] { return ts_torch::shape_matrix({xt.to(dev), yn.to(dev)}, {}, o); });
      const double d = (eig.first - tor.first).cwiseAbs().maxCoeff();
      worst = std::max(worst, d);
      std::printf("shape alpha %.1f %-9s eigen %.3fs  torch %.3fs  max |diff| %.2e\n", a,
                  sc == ShapeScore::angular ? "angular" : "euclidean", eig.second, tor.second, d);
    }
  }
  const char* cca_names[] = {"mean", "svcca", "pwcca"};
  const CcaMethod cca_methods[] = {CcaMethod::mean, CcaMethod::svcca, CcaMethod::pwcca};
  for (int k = 0; k < 3; ++k) {
    auto eig = timed([&] { return cca_matrix({MatRef(X), MatRef(Yn)}, {}, cca_methods[k], 0.9, ex); });
    auto tor = timed([&] { return ts_torch::cca_matrix({xt.to(dev), yn.to(dev)}, {}, cca_methods[k], 0.9); });
    const bool same_k = eig.first.kx == tor.first.kx;
    const double d = same_k ? (eig.first.similarity - tor.first.similarity).cwiseAbs().maxCoeff() : 1.0;
    worst = std::max(worst, d);
    std::printf("cca %-6s eigen %.3fs  torch %.3fs  max |diff| %.2e%s\n", cca_names[k], eig.second, tor.second, d,
                same_k ? "" : "  (kept dimensions differ)");
  }
  std::printf("%s: worst difference %.2e (tolerance 1e-8)\n", worst <= 1e-8 ? "OK" : "FAILED", worst);
  return worst <= 1e-8 ? 0 : 1;
}
