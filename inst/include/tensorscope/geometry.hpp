// Geometry of a point cloud (rows = stimuli): spectrum-based dimensionality, intrinsic
// dimension from nearest-neighbour distances, and the per-point windows of the
// fiber-bundle test. Ricci curvature lives in ricci.hpp, the kNN graph in knn.hpp.
#pragma once

#include "common.hpp"
#include "knn.hpp"
#include "linalg.hpp"

#include <cmath>
#include <limits>

namespace tensorscope {

// Covariance eigenvalues of X (descending, clipped at 0): from the Gram matrix of the
// smaller side of the centred X (one syrk + dsyevd without vectors). The squared
// singular values of the centred X are (n - 1) times these.
inline Vector covariance_spectrum(const MatRef& X) {
  const Matrix Xc = centre_columns(X);
  const Matrix G = Xc.cols() <= Xc.rows() ? crossprod(Xc) : tcrossprod(Xc);
  Vector ev = sym_eigen(G, false).values.reverse().cwiseMax(0.0);
  // eigenvalues below the rounding level of the largest are zero (numerical rank)
  const double cut = ev.size() ? ev(0) * static_cast<double>(std::max(X.rows(), X.cols())) *
                                     std::numeric_limits<double>::epsilon()
                               : 0.0;
  for (Index i = 0; i < ev.size(); ++i)
    if (ev(i) < cut) ev(i) = 0;
  return ev / std::max<double>(1.0, static_cast<double>(X.rows() - 1));
}

// exp(Shannon entropy) of the normalised weights w / sum(w) (Roy & Vetterli 2007).
inline double entropy_rank(const Vector& w) {
  const double s = w.sum();
  if (!(s > 0)) return 0;
  double h = 0;
  for (Index i = 0; i < w.size(); ++i) {
    const double q = w(i) / s;
    if (q > 0) h -= q * std::log(q);
  }
  return std::exp(h);
}

// (sum lambda)^2 / sum lambda^2.
inline double participation_ratio(const Vector& lambda) {
  const double s2 = lambda.squaredNorm();
  return s2 > 0 ? lambda.sum() * lambda.sum() / s2 : 0;
}

// ---- intrinsic dimension ------------------------------------------------------------

struct IdResult {
  double dim = 0;
  Index n_used = 0;  // points entering the estimate
};

// TwoNN (Facco et al. 2017) from mu_i = r2 / r1 of distinct points. fit = true: slope
// through the origin of -log(1 - F_i) on log mu_i over the smallest `keep` fraction of
// the sorted mu, F_i = i / N (scikit-dimension's choice); fit = false: the maximum
// likelihood estimate (N - 1) / sum log mu_i.
inline IdResult twonn(const Matrix& dist, bool fit, double keep) {
  const Index N = dist.rows();
  std::vector<double> lm(static_cast<std::size_t>(N));
  for (Index i = 0; i < N; ++i) lm[i] = std::log(dist(i, 1) / dist(i, 0));
  IdResult out;
  if (!fit) {
    double s = 0;
    for (double v : lm) s += v;
    out.dim = s > 0 ? (static_cast<double>(N) - 1) / s : std::numeric_limits<double>::infinity();
    out.n_used = N;
    return out;
  }
  std::sort(lm.begin(), lm.end());
  const Index m = std::max<Index>(1, static_cast<Index>(std::floor(keep * static_cast<double>(N))));
  double sxy = 0, sxx = 0;
  for (Index i = 0; i < m; ++i) {
    const double F = static_cast<double>(i + 1) / static_cast<double>(N);
    const double y = -std::log1p(-std::min(F, 1.0 - 1e-16));
    sxy += lm[i] * y;
    sxx += lm[i] * lm[i];
  }
  out.dim = sxx > 0 ? sxy / sxx : std::numeric_limits<double>::infinity();
  out.n_used = m;
  return out;
}

// Levina & Bickel (2005) with k neighbours, per-point inverse estimates averaged
// (MacKay & Ghahramani 2005): 1/d = mean_i (1/(k-1)) sum_{j<k} log(T_k / T_j).
inline IdResult mle_levina_bickel(const Matrix& dist, int k) {
  const Index N = dist.rows();
  double s = 0;
  for (Index i = 0; i < N; ++i) {
    double a = 0;
    for (int j = 0; j < k - 1; ++j) a += std::log(dist(i, k - 1) / dist(i, j));
    s += a / (k - 1);
  }
  IdResult out;
  out.dim = s > 0 ? static_cast<double>(N) / s : std::numeric_limits<double>::infinity();
  out.n_used = N;
  return out;
}

// ---- fiber-bundle test windows ------------------------------------------------------
//
// For point i with sorted neighbour distances T_1 <= T_2 <= ..., the volume V(T_j) = j.
// Under a locally uniform d-dimensional density the T_j^d are the arrival times of a
// Poisson process, so the spacings Y_j = j log(T_{j+1} / T_j) are independent
// exponentials with rate d (Renyi's representation; the Levina-Bickel estimator is
// built on the same fact). Over a window of w spacings the local dimension (slope of
// log V against log r) is estimated by w / sum Y, and two adjacent windows have
// sum Y_left / sum Y_right ~ F(2w, 2w) when the dimension does not change: an exact
// two-sample test over radius.

struct FiberWindows {
  Matrix ratio;       // n x cuts: d_right / d_left at each cut (the F statistic)
  Matrix dim_left;    // n x cuts: w / sum Y over the window left of the cut
  Matrix cut_radius;  // n x cuts: radius T_c at each cut
  Matrix dim;         // n x windows: local dimension in non-overlapping windows
  Matrix radius;      // n x windows: geometric mean of the window's radii
};

// dist: n x (k_max + 1) neighbour distances of distinct points; spacings
// j = k_min .. k_max are used; windows of w spacings; cuts every `step` spacings.
inline FiberWindows fiber_windows(const Matrix& dist, int k_min, int k_max, int w, int step,
                                  const Exec& ex) {
  const Index n = dist.rows();
  const int m = k_max - k_min + 1;  // number of spacings
  if (w < 1 || step < 1 || k_min < 1 || k_max < k_min || k_max >= dist.cols())
    throw ts_error(ErrorKind::argument, "fiber_windows: window, step and the neighbour range must be positive and within dist");
  std::vector<int> cuts;  // 64-bit counter: c + step cannot overflow for any int step
  for (std::int64_t c = w; c + w <= m; c += step) cuts.push_back(static_cast<int>(c));
  const int nw = m / w;
  FiberWindows out;
  out.ratio.resize(n, static_cast<Index>(cuts.size()));
  out.dim_left.resize(n, static_cast<Index>(cuts.size()));
  out.cut_radius.resize(n, static_cast<Index>(cuts.size()));
  out.dim.resize(n, nw);
  out.radius.resize(n, nw);
#pragma omp parallel num_threads(omp_threads(ex.threads))
  {
    std::vector<double> cs(static_cast<std::size_t>(m) + 1);
#pragma omp for schedule(static)
    for (Index i = 0; i < n; ++i) {
      cs[0] = 0;
      for (int s = 0; s < m; ++s) {
        const int j = k_min + s;  // 1-based neighbour rank; T_j = dist(i, j - 1)
        cs[s + 1] = cs[s] + j * std::log(dist(i, j) / dist(i, j - 1));
      }
      for (std::size_t c = 0; c < cuts.size(); ++c) {
        const int q = cuts[c];
        const double left = cs[q] - cs[q - w], right = cs[q + w] - cs[q];
        out.ratio(i, static_cast<Index>(c)) = right > 0 ? left / right : std::numeric_limits<double>::infinity();
        out.dim_left(i, static_cast<Index>(c)) = left > 0 ? w / left : std::numeric_limits<double>::infinity();
        out.cut_radius(i, static_cast<Index>(c)) = dist(i, k_min + q - 1);
      }
      for (int b = 0; b < nw; ++b) {
        const double s = cs[(b + 1) * w] - cs[b * w];
        out.dim(i, b) = s > 0 ? w / s : std::numeric_limits<double>::infinity();
        const int j0 = k_min + b * w, j1 = k_min + (b + 1) * w;  // radii T_j0 .. T_j1
        out.radius(i, b) = std::sqrt(dist(i, j0 - 1) * dist(i, j1 - 1));
      }
    }
  }
  return out;
}

}  // namespace tensorscope
