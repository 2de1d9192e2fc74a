// Checks the LibTorch dense path (src/torch/dense.h) against the Eigen core, without R:
// linear CKA (biased, debiased) and RDMs (correlation, cosine, euclidean, sqeuclidean)
// on random data, float64, on CUDA when available (else CPU). Exit status 1 when any
// difference exceeds 1e-8. Usage: torch_check [n = 1000] [p = 300]
#include <tensorscope/alignment.hpp>
#include <tensorscope/rdm.hpp>

#include "dense.h"

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
  for (Estimator e : {Estimator::biased, Estimator::debiased}) {
    CkaOptions o;
    o.estimator = e;
    auto eig = timed([&] { return cka_matrix({MatRef(X)}, {MatRef(Y)}, o, {0.0}, {0.0}, ex).cka(0, 0); });
    auto tor = timed([&] { return ts_torch::linear_cka(xt.to(dev), yt.to(dev), e == Estimator::debiased); });
    const double d = std::abs(eig.first - tor.first);
    worst = std::max(worst, d);
    std::printf("cka %-9s eigen %.12f (%.3fs)  torch %.12f (%.3fs)  |diff| %.2e\n",
                e == Estimator::biased ? "biased" : "debiased", eig.first, eig.second, tor.first, tor.second, d);
  }
  const char* names[] = {"correlation", "cosine", "euclidean", "sqeuclidean"};
  const RdmMethod methods[] = {RdmMethod::correlation, RdmMethod::cosine, RdmMethod::euclidean, RdmMethod::sqeuclidean};
  Matrix none(0, 0);
  for (int k = 0; k < 4; ++k) {
    auto eig = timed([&] { return Vector(rdm_vector(X, methods[k], none)); });
    auto tor = timed([&] { return ts_torch::rdm_upper(xt.to(dev), names[k]).to(torch::kCPU).contiguous(); });
    double d = 0;
    const double* tv = tor.first.data_ptr<double>();
    for (Index i = 0; i < eig.first.size(); ++i) d = std::max(d, std::abs(eig.first(i) - tv[i]));
    worst = std::max(worst, d);
    std::printf("rdm %-12s eigen %.3fs  torch %.3fs  max |diff| %.2e\n", names[k], eig.second, tor.second, d);
  }
  std::printf("%s: worst difference %.2e (tolerance 1e-8)\n", worst <= 1e-8 ? "OK" : "FAILED", worst);
  return worst <= 1e-8 ? 0 : 1;
}
