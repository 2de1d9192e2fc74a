// Stochastic shape metrics (Duong, Zhou, Nassar, Berman, Olieslagers & Williams 2023,
// "Representational dissimilarity metric spaces for stochastic neural networks", ICLR),
// with the definitions of netrep (netrep/metrics/stochastic.py, utils.py).
//
// Input: the single trials of two systems over the same n stimuli, X (n x p x tx) and
// Y (n x q x ty), R's column-major array layout. Units are zero-padded to P = max(p, q)
// and, with `centre`, each system's grand mean (over stimuli and trials) is removed, as
// the deterministic shape metric centres its units. Y's units are aligned to X's by an
// orthogonal T (P x P), fitted by alternating minimisation:
//
// Gaussian (GaussianStochasticMetric): each stimulus-conditional response is summarised
// by its trial mean mu_s and covariance Sigma_s (divisor t - 1), and
//   d^2 = min_T (1/n) sum_s [ alpha ||mu_s - T^T nu_s||^2
//                             + (2 - alpha) B^2(Sigma_s, T^T Lambda_s T) ],
//   B^2(A, C) = tr A + tr C - 2 ||A^(1/2) C^(1/2)||_*   (squared Bures distance),
// alpha in [0, 2]: 0 covariances only, 1 the 2-Wasserstein distance between Gaussians,
// 2 means only (then d = sqrt(2/n) x the Euclidean Procrustes distance of the means).
// Since B(A, C) = min_Q ||A^(1/2) - C^(1/2) Q||_F over orthogonal Q, d^2 is the
// Procrustes problem of the stacked matrices [a mu; b Sigma_1^(1/2); ...] and
// [a nu; b Q_1^T Lambda_1^(1/2); ...] in T, alternated with one small Procrustes
// problem per stimulus for Q_s. The stacking weights are a = sqrt(alpha),
// b = sqrt(2 - alpha), so that each step decreases the d^2 that is reported (netrep
// stacks with alpha and 2 - alpha, which is the same at alpha = 1 only). Start: T from
// the Procrustes problem of the means; stop after iteration i >= 2 (0-based) when the
// stacked residual norm decreased by less than tol (netrep: 1e-8, at most 1000 rounds).
//
// Energy (EnergyStochasticMetric): with all tx x ty pairs of trials of each stimulus,
//   T = argmin sum_{s,a,b} ||x_sa - y_sb T||   (iteratively reweighted Procrustes:
//       weights w = 1 / max(sqrt(residual), 1e-6) on the rows, start w = 1;
//       stop when the mean residual decreased by less than tol: netrep 1e-6, 100 rounds)
//   d^2 = max(0, E||x - yT|| - (E||x - x'|| + E||y - y'||) / 2),
// the expectations being averages over stimuli of the means over all (a, b) pairs for
// x-y and over the a < b pairs within a system (netrep's estimator).
#pragma once

#include "common.hpp"
#include "linalg.hpp"

#include <cmath>
#include <limits>
#include <vector>

namespace tensorscope {

// Read-only view of an R array stimuli x units x trials.
struct TrialsRef {
  const double* data = nullptr;
  Index n = 0, p = 0, t = 0;
  double operator()(Index s, Index u, Index k) const { return data[s + n * (u + p * k)]; }
};

enum class StochasticMethod { gaussian, energy };

struct StochasticOptions {
  StochasticMethod method = StochasticMethod::gaussian;
  double alpha = 1.0;  // Gaussian only, in [0, 2]
  bool centre = true;
  int max_iter = 0;    // 0: netrep's default (Gaussian 1000, energy 100)
  double tol = -1;     // < 0: netrep's default (Gaussian 1e-8, energy 1e-6)
};

struct StochasticResult {
  double distance = 0;
  Matrix T;                  // P x P orthogonal: Y's (padded, centred) units times T align with X's
  std::vector<double> loss;  // the fitting objective after each round
  int iterations = 0;
  bool converged = false;
};

namespace detail {

// Per-unit mean over all stimuli and trials, padded with zeros to P (zero without centring).
inline Vector trials_offset(const TrialsRef& X, Index P, bool centre) {
  Vector m = Vector::Zero(P);
  if (!centre) return m;
  for (Index k = 0; k < X.t; ++k)
    for (Index u = 0; u < X.p; ++u)
      for (Index s = 0; s < X.n; ++s) m(u) += X(s, u, k);
  m /= static_cast<double>(X.n) * static_cast<double>(X.t);
  return m;
}

// The trials of stimulus s (t x P): offset removed, zero columns beyond the p units.
inline Matrix stimulus_trials(const TrialsRef& X, Index s, Index P, const Vector& offset) {
  Matrix R = Matrix::Zero(X.t, P);
  for (Index u = 0; u < X.p; ++u)
    for (Index k = 0; k < X.t; ++k) R(k, u) = X(s, u, k) - offset(u);
  return R;
}

// A product of two P x P matrices of one stimulus: Eigen's own kernel for small P (a
// BLAS call costs more than the work there), the BLAS otherwise.
inline Matrix small_product(const MatRef& A, const MatRef& B) {
  if (A.rows() <= 48) return A.lazyProduct(B);
  return A * B;
}

// The orthogonal T maximising tr(T^T M) (M square): U V^T from M's SVD. For M = A^T B it
// is scipy's orthogonal_procrustes(A, B): argmin ||A T - B||_F.
inline Matrix procrustes_rotation(const MatRef& M) {
  const Svd sv = svd_thin(M);
  return sv.U * sv.V.transpose();
}

inline void check_trials(const TrialsRef& X, const TrialsRef& Y) {
  if (X.n != Y.n) throw ts_error(ErrorKind::mismatch, "stochastic shape: different numbers of stimuli");
  if (X.n < 2) throw ts_error(ErrorKind::too_few, "stochastic shape: fewer than 2 stimuli");
  if (X.t < 2 || Y.t < 2) throw ts_error(ErrorKind::too_few, "stochastic shape: fewer than 2 trials");
  if (X.p < 1 || Y.p < 1) throw ts_error(ErrorKind::empty, "stochastic shape: no units");
}

// One system's stimulus-conditional Gaussians.
struct GaussianSide {
  Matrix means;               // n x P
  std::vector<Matrix> root;   // Sigma_s^(1/2) (P x P)
  std::vector<double> trace;  // tr Sigma_s
};

inline GaussianSide gaussian_side(const TrialsRef& X, Index P, bool centre, const Exec& ex) {
  GaussianSide g;
  const Vector off = trials_offset(X, P, centre);
  g.means.resize(X.n, P);
  g.root.resize(static_cast<std::size_t>(X.n));
  g.trace.resize(static_cast<std::size_t>(X.n));
  for (Index s = 0; s < X.n; ++s) {
    Matrix R = stimulus_trials(X, s, P, off);
    const Eigen::RowVectorXd mu = R.colwise().mean();
    g.means.row(s) = mu;
    R.rowwise() -= mu;
    const Matrix S = crossprod(R) / static_cast<double>(X.t - 1);
    g.trace[static_cast<std::size_t>(s)] = S.trace();
    g.root[static_cast<std::size_t>(s)] = psd_sqrt(S);
    if (s % 64 == 63) ex.check();
  }
  return g;
}

}  // namespace detail

inline StochasticResult gaussian_stochastic(const TrialsRef& X, const TrialsRef& Y, const StochasticOptions& o,
                                            const Exec& ex) {
  detail::check_trials(X, Y);
  if (!(o.alpha >= 0 && o.alpha <= 2)) throw ts_error(ErrorKind::argument, "stochastic shape: alpha must be in [0, 2]");
  const int max_iter = o.max_iter > 0 ? o.max_iter : 1000;
  const double tol = o.tol >= 0 ? o.tol : 1e-8;
  const Index n = X.n, P = std::max(X.p, Y.p);
  const detail::GaussianSide gx = detail::gaussian_side(X, P, o.centre, ex);
  const detail::GaussianSide gy = detail::gaussian_side(Y, P, o.centre, ex);
  const double wm = o.alpha, wc = 2.0 - o.alpha;  // weights of the squared mean and Bures terms

  StochasticResult r;
  Matrix T = detail::procrustes_rotation(gy.means.transpose() * gx.means);
  const Matrix Mm = gy.means.transpose() * gx.means;
  std::vector<Matrix> L(static_cast<std::size_t>(n));  // Q_s^T Lambda_s^(1/2)
  for (int it = 0; it < max_iter; ++it) {
    Matrix M = wm * Mm;
    if (wc > 0) {
      for (Index s = 0; s < n; ++s) {
        const auto i = static_cast<std::size_t>(s);
        // Q_s = argmin_Q ||T^T Lambda_s^(1/2) Q - Sigma_s^(1/2)|| (orthogonal_procrustes):
        // from the SVD of (T^T Ly)^T Sx = Ly T Sx
        const Matrix Q = detail::procrustes_rotation(detail::small_product(detail::small_product(gy.root[i], T), gx.root[i]));
        L[i] = detail::small_product(Q.transpose(), gy.root[i]);
        M.noalias() += wc * detail::small_product(L[i].transpose(), gx.root[i]);
      }
    }
    T = detail::procrustes_rotation(M);
    // the stacked residual with the new T
    double sq = wm > 0 ? wm * (gx.means - gy.means * T).squaredNorm() : 0.0;
    if (wc > 0) {
      for (Index s = 0; s < n; ++s) {
        const auto i = static_cast<std::size_t>(s);
        sq += wc * (gx.root[i] - detail::small_product(L[i], T)).squaredNorm();
      }
    }
    r.loss.push_back(std::sqrt(sq));
    r.iterations = it + 1;
    ex.check();
    if (it >= 2 && r.loss[r.loss.size() - 2] - r.loss.back() < tol) {
      r.converged = true;
      break;
    }
  }
  // the reported distance, with the Bures terms in closed form
  double total = wm > 0 ? wm * (gx.means - gy.means * T).squaredNorm() : 0.0;
  if (wc > 0) {
    for (Index s = 0; s < n; ++s) {
      const auto i = static_cast<std::size_t>(s);
      const double nuc = singular_values(detail::small_product(detail::small_product(gx.root[i], T.transpose()), gy.root[i])).sum();
      total += wc * (gx.trace[i] + gy.trace[i] - 2.0 * nuc);
    }
  }
  r.distance = std::sqrt(std::max(0.0, total / static_cast<double>(n)));
  r.T = std::move(T);
  return r;
}

namespace detail {

// Euclidean distances between the rows of A (a x P) and of B (b x P), formed directly
// (no |x|^2 + |y|^2 - 2 x.y cancellation: residuals of matched trials are exactly 0).
inline void row_distances(const Matrix& A, const Matrix& B, Matrix& D) {
  D.resize(A.rows(), B.rows());
  for (Index j = 0; j < B.rows(); ++j)
    for (Index i = 0; i < A.rows(); ++i) D(i, j) = (A.row(i) - B.row(j)).norm();
}

// Mean distance over the pairs a < b of rows of A.
inline double within_mean_distance(const Matrix& A) {
  double sum = 0;
  const Index t = A.rows();
  for (Index a = 0; a < t; ++a)
    for (Index b = a + 1; b < t; ++b) sum += (A.row(a) - A.row(b)).norm();
  return sum / (0.5 * static_cast<double>(t) * static_cast<double>(t - 1));
}

}  // namespace detail

inline StochasticResult energy_stochastic(const TrialsRef& X, const TrialsRef& Y, const StochasticOptions& o,
                                          const Exec& ex) {
  detail::check_trials(X, Y);
  const int max_iter = o.max_iter > 0 ? o.max_iter : 100;
  const double tol = o.tol >= 0 ? o.tol : 1e-6;
  const Index n = X.n, P = std::max(X.p, Y.p);
  const Vector ox = detail::trials_offset(X, P, o.centre), oy = detail::trials_offset(Y, P, o.centre);
  std::vector<Matrix> xs(static_cast<std::size_t>(n)), ys(static_cast<std::size_t>(n));
  for (Index s = 0; s < n; ++s) {
    xs[static_cast<std::size_t>(s)] = detail::stimulus_trials(X, s, P, ox);
    ys[static_cast<std::size_t>(s)] = detail::stimulus_trials(Y, s, P, oy);
  }
  const double pairs = static_cast<double>(n) * static_cast<double>(X.t) * static_cast<double>(Y.t);
  const int nt = omp_threads(ex.threads);
  // residuals ||x_sa - (y_sb T)|| of every pair; returns their mean (sums per stimulus,
  // combined in stimulus order: the same for any number of threads)
  std::vector<Matrix> D(static_cast<std::size_t>(n));
  std::vector<double> part(static_cast<std::size_t>(n));
  auto residuals = [&](const Matrix* T) {
    std::vector<Matrix> zs;
    if (T) {
      zs.resize(static_cast<std::size_t>(n));
      for (Index s = 0; s < n; ++s) zs[static_cast<std::size_t>(s)].noalias() = ys[static_cast<std::size_t>(s)] * (*T);
    }
#pragma omp parallel for num_threads(nt) schedule(static)
    for (Index s = 0; s < n; ++s) {
      const auto i = static_cast<std::size_t>(s);
      detail::row_distances(xs[i], T ? zs[i] : ys[i], D[i]);
      part[i] = D[i].sum();
    }
    double sum = 0;
    for (double v : part) sum += v;
    return sum / pairs;
  };

  StochasticResult r;
  r.loss.push_back(residuals(nullptr));
  Matrix T = Matrix::Identity(P, P);
  bool first = true;
  for (int it = 0; it < max_iter; ++it) {
    // weighted Procrustes: M = sum_s Y_s^T Omega_s^T X_s, Omega = w^2 (1 in the first round)
    Matrix M = Matrix::Zero(P, P);
    for (Index s = 0; s < n; ++s) {
      const auto i = static_cast<std::size_t>(s);
      if (first) {
        M.noalias() += ys[i].colwise().sum().transpose() * xs[i].colwise().sum();
      } else {
        const Matrix Om = D[i].unaryExpr([](double v) { return 1.0 / std::max(v, 1e-12); });
        M.noalias() += ys[i].transpose() * (Om.transpose() * xs[i]);
      }
    }
    first = false;
    T = detail::procrustes_rotation(M);
    r.loss.push_back(residuals(&T));
    r.iterations = it + 1;
    ex.check();
    if (r.loss[r.loss.size() - 2] - r.loss.back() < tol) {
      r.converged = true;
      break;
    }
  }
  const double dxy = r.loss.back();
  double dxx = 0, dyy = 0;
  for (Index s = 0; s < n; ++s) {
    dxx += detail::within_mean_distance(xs[static_cast<std::size_t>(s)]);
    dyy += detail::within_mean_distance(ys[static_cast<std::size_t>(s)]);
  }
  dxx /= static_cast<double>(n);
  dyy /= static_cast<double>(n);
  r.distance = std::sqrt(std::max(0.0, dxy - 0.5 * (dxx + dyy)));
  r.T = std::move(T);
  return r;
}

inline StochasticResult stochastic_shape(const TrialsRef& X, const TrialsRef& Y, const StochasticOptions& o,
                                         const Exec& ex) {
  return o.method == StochasticMethod::energy ? energy_stochastic(X, Y, o, ex) : gaussian_stochastic(X, Y, o, ex);
}

}  // namespace tensorscope
