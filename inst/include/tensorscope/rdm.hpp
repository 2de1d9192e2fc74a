// Representational dissimilarity matrices (rsatoolbox conventions), returned as the
// upper triangle (i < j) in R dist() / scipy squareform order.
//
//   correlation   1 - Pearson r between condition patterns
//   cosine        1 - cosine similarity
//   euclidean     plain Euclidean distance ||x_i - x_j||
//   sqeuclidean   squared distance / number of channels (rsatoolbox's "euclidean")
//   mahalanobis   (x_i - x_j)^T S^-1 (x_i - x_j) / channels, S a noise covariance
//   crossnobis    cross-validated Mahalanobis over independent partitions (runs):
//                 mean over ordered run pairs a != b of (mu_ia - mu_ja)^T S^-1 (mu_ib - mu_jb)
//                 / channels; unbiased (zero expectation when patterns are equal).
#pragma once

#include "common.hpp"
#include "linalg.hpp"

#include <cmath>
#include <limits>

namespace tensorscope {

enum class RdmMethod { correlation, cosine, euclidean, sqeuclidean, mahalanobis, crossnobis };

// Rows of X scaled to unit norm after (optionally) removing each row's mean. A row with
// zero norm (or zero variance) becomes NaN, so every dissimilarity involving it is NaN
// (the R layer turns that into an error naming the condition).
inline Matrix normalise_rows(const MatRef& X, bool centre) {
  Matrix Z = X;
  if (centre) Z.colwise() -= Z.rowwise().mean();
  // 1 / row norm (NaN for a zero row), applied column by column (contiguous in memory)
  Vector inv = Z.rowwise().squaredNorm();
  for (Index i = 0; i < inv.size(); ++i)
    inv(i) = inv(i) > 0 ? 1.0 / std::sqrt(inv(i)) : std::numeric_limits<double>::quiet_NaN();
  Z.array().colwise() *= inv.array();
  return Z;
}

// The direct methods (correlation, cosine, euclidean, sqeuclidean) of the rows of X on a
// backend policy B (the LibTorch backend's TorchRdm in src/torch/dense.h; the Eigen path
// is rdm_into() below, which never forms the n x n Gram). Correlation and cosine: 1 - the
// Gram of the rows scaled to unit norm (after removing each row's mean); a zero row gives
// NaN pairs. Euclidean: from the Gram of the column-centred rows (which leaves the
// distances unchanged and limits cancellation).
template <class B, class M>
inline typename B::Upper rdm_upper_with(const M& X, RdmMethod method, const B& be) {
  switch (method) {
    case RdmMethod::correlation:
    case RdmMethod::cosine:
      return be.one_minus(be.gram(be.unit_rows(X, method == RdmMethod::correlation)));
    case RdmMethod::euclidean:
      return be.sqrt(be.sq_distances(be.gram(be.centred(X))));
    case RdmMethod::sqeuclidean:
      return be.divide(be.sq_distances(be.gram(be.centred(X))), static_cast<double>(be.cols(X)));
    default:
      throw ts_error(ErrorKind::argument,
                     "rdm: this backend supports correlation, cosine, euclidean and sqeuclidean only");
  }
}

namespace detail {
// f(i, j, g_ij) for every pair i < j, g = Z Z^T, written in dist order to out[k * stride]
// (k the pair index; stride > 1 writes one row of a matrix with one RDM per row). The
// Gram is formed a block of 256 columns at a time (one GEMM each, (n - c0) x 256, its
// lower part): the same n^2 p flops as one syrk, without the n x n matrix (800 MB at
// n = 10,000) or a second copy of the result.
template <class F>
inline void upper_blocked(const Matrix& Z, F f, double* out, Index stride, const Exec& ex) {
  const Index n = Z.rows(), b = 256;
  Matrix G;
  for (Index c0 = 0; c0 < n; c0 += b) {
    const Index w = std::min(b, n - c0);
    G.noalias() = Z.middleRows(c0, n - c0) * Z.middleRows(c0, w).transpose();
    for (Index i = c0; i < c0 + w; ++i) {
      const double* g = G.col(i - c0).data();  // g[j - c0] = g_ij
      double* o = out + pair_index(i, i + 1, n) * stride;  // pair (i, i + 1)
      for (Index j = i + 1; j < n; ++j) o[(j - i - 1) * stride] = f(i, j, g[j - c0]);
    }
    ex.check();
  }
}

// Squared distances d_i + d_j - 2 g_ij (>= 0), times `scale`, of the rows of Z (already
// column-centred, which leaves distances unchanged and limits cancellation).
inline void sq_distances_into(const Matrix& Z, double scale, bool root, double* out, Index stride, const Exec& ex) {
  const Vector d = Z.rowwise().squaredNorm();
  if (root) {
    upper_blocked(Z, [&](Index i, Index j, double g) { return std::sqrt(std::max(0.0, d(i) + d(j) - 2.0 * g)); }, out,
                  stride, ex);
  } else {
    upper_blocked(Z, [&](Index i, Index j, double g) { return scale * std::max(0.0, d(i) + d(j) - 2.0 * g); }, out,
                  stride, ex);
  }
}
}  // namespace detail

// Squared Euclidean distances of the rows of X.
inline Vector sq_distances(const MatRef& X) {
  Vector v(n_pairs(X.rows()));
  detail::sq_distances_into(centre_columns(X), 1.0, false, v.data(), 1, Exec());
  return v;
}

// Whitening factor W with W W^T = S^-1 for a symmetric positive definite S.
inline Matrix whitener(const MatRef& S) {
  SymEigen e = sym_eigen(S, true);
  const double tol = e.values.cwiseAbs().maxCoeff() * 1e-12 * static_cast<double>(S.rows());
  if (!(e.values.minCoeff() > tol))
    throw ts_error(ErrorKind::argument, "rdm: the noise covariance is not positive definite");
  return e.vectors * e.values.cwiseSqrt().cwiseInverse().asDiagonal();
}

// Condition patterns (conditions x channels) -> RDM, written in dist order to
// out[k * stride] (see detail::upper_blocked; not crossnobis). Holds one n x p copy of X
// (centred or scaled rows) and a block of the Gram, never n x n.
inline void rdm_into(const MatRef& X, RdmMethod method, const MatRef& noise_cov, double* out, Index stride,
                     const Exec& ex = Exec()) {
  const double p = static_cast<double>(X.cols());
  switch (method) {
    case RdmMethod::correlation:
    case RdmMethod::cosine:
      detail::upper_blocked(normalise_rows(X, method == RdmMethod::correlation),
                            [](Index, Index, double g) { return 1.0 - g; }, out, stride, ex);
      return;
    case RdmMethod::euclidean:
      detail::sq_distances_into(centre_columns(X), 1.0, true, out, stride, ex);
      return;
    case RdmMethod::sqeuclidean:
      detail::sq_distances_into(centre_columns(X), 1.0 / p, false, out, stride, ex);
      return;
    case RdmMethod::mahalanobis: {
      if (noise_cov.size() == 0) {
        detail::sq_distances_into(centre_columns(X), 1.0 / p, false, out, stride, ex);
        return;
      }
      if (noise_cov.rows() != X.cols() || noise_cov.cols() != X.cols())
        throw ts_error(ErrorKind::mismatch, "rdm: noise covariance must be channels x channels");
      detail::sq_distances_into(centre_columns(X) * whitener(noise_cov), 1.0 / p, false, out, stride, ex);
      return;
    }
    default:
      throw ts_error(ErrorKind::argument, "rdm_into: use crossnobis_vector() for crossnobis");
  }
}

inline Vector rdm_vector(const MatRef& X, RdmMethod method, const MatRef& noise_cov) {
  Vector v(n_pairs(X.rows()));
  rdm_into(X, method, noise_cov, v.data(), 1);
  return v;
}

// Crossnobis from per-run condition means: means[a] is conditions x channels for run a.
// With W W^T = S^-1 and T = sum_a mu_a W:
//   sum_{a != b} d_a . d_b = ||T_i - T_j||^2 - sum_a ||(mu_ia - mu_ja) W||^2.
inline Vector crossnobis_vector(const std::vector<Matrix>& means, const MatRef& noise_cov) {
  const std::size_t R = means.size();
  if (R < 2) throw ts_error(ErrorKind::too_few, "rdm: crossnobis needs at least 2 runs (partitions)");
  const Index k = means[0].rows(), p = means[0].cols();
  Matrix W;
  const bool white = noise_cov.size() > 0;
  if (white) {
    if (noise_cov.rows() != p || noise_cov.cols() != p)
      throw ts_error(ErrorKind::mismatch, "rdm: noise covariance must be channels x channels");
    W = whitener(noise_cov);
  }
  Matrix T = Matrix::Zero(k, p);
  Vector within = Vector::Zero(n_pairs(k));
  for (const Matrix& mu : means) {
    const Matrix m = white ? Matrix(mu * W) : mu;
    T += m;
    within += sq_distances(m);
  }
  const Vector total = sq_distances(T);
  const double denom = static_cast<double>(R) * static_cast<double>(R - 1) * static_cast<double>(p);
  return (total - within) / denom;
}

// Noise covariance from residuals (observations x channels, already centred per
// condition and run), shrunk towards a target:
//   "diag": towards the diagonal (Schafer & Strimmer 2005), rsatoolbox's default;
//   "eye":  towards a scaled identity (Ledoit & Wolf 2004).
// dof: degrees of freedom of the residuals (observations minus fitted means).
enum class Shrinkage { diag, eye, none };

inline Matrix noise_covariance(const MatRef& R, double dof, Shrinkage how) {
  const Index n = R.rows(), p = R.cols();
  if (n < 2) throw ts_error(ErrorKind::too_few, "noise covariance: need at least 2 residual rows");
  if (!(dof > 0)) dof = static_cast<double>(n - 1);
  const Matrix S0 = crossprod(R);  // sum of outer products
  if (how == Shrinkage::none) return S0 / dof;
  if (how == Shrinkage::diag) {
    const Matrix S = S0 / dof;
    const Vector var = S.diagonal();
    if (!(var.minCoeff() > 0)) throw ts_error(ErrorKind::zero_variance, "noise covariance: a channel has zero residual variance");
    const Vector sd = var.cwiseSqrt();
    const Matrix R2 = R.cwiseAbs2();
    const Matrix s2_sum = crossprod(R2);
    const double nm1 = static_cast<double>(n - 1), nd = static_cast<double>(n);
    double num = 0, den = 0;
    for (Index j = 0; j < p; ++j)
      for (Index i = 0; i < p; ++i) {
        if (i == j) continue;
        const double s_mean = S0(i, j) / (sd(i) * sd(j)) / nm1;
        const double s2_mean = s2_sum(i, j) / (var(i) * var(j)) / nm1;
        num += nd / (dof * dof) * (s2_mean - s_mean * s_mean);
        den += s_mean * s_mean;
      }
    const double lambda = den > 0 ? std::min(1.0, std::max(0.0, num / den)) : 1.0;
    Matrix out = S * (1.0 - lambda);
    out.diagonal() = S.diagonal();
    return out;
  }
  // Ledoit-Wolf towards mu I (as in scikit-learn's ledoit_wolf_shrinkage, with the
  // empirical covariance S0 / n of the given residuals).
  const double nd = static_cast<double>(n), pd = static_cast<double>(p);
  const Matrix emp = S0 / nd;
  const double mu = emp.trace() / pd;
  const Matrix R2 = R.cwiseAbs2();
  const double beta_ = crossprod(R2).sum();
  const double delta_ = S0.squaredNorm() / (nd * nd);
  double beta = 1.0 / (pd * nd) * (beta_ / nd - delta_);
  double delta = (delta_ - 2.0 * mu * emp.trace() + pd * mu * mu) / pd;
  beta = std::min(beta, delta);
  const double shrink = beta == 0 ? 0.0 : beta / delta;
  Matrix out = (1.0 - shrink) * emp;
  out.diagonal().array() += shrink * mu;
  return out * (nd / dof);
}

}  // namespace tensorscope
