// Superposition and sparsity (Elhage et al. 2022, "Toy models of superposition").
//
// Feature geometry of W (features x dims, one feature direction per row), from the
// feature Gram matrix G = W W^T, computed in row blocks (one BLAS product per block,
// outside the parallel region) so that memory stays O(block x features):
//   feature dimensionality D_i = ||W_i||^2 / sum_j (W^_i . W_j)^2 = G_ii^2 / sum_j G_ij^2
//   interference |cos(W_i, W_j)| = |G_ij| / sqrt(G_ii G_jj), i != j: per-feature mean and
//   max, and a histogram of all pairs i < j on [0, 1].
// Zero-norm features have D_i = 0 and are left out of the interference statistics.
//
// Sparsity of vectors (columns or rows of X): L0 fraction |x| > threshold, L1 = sum |x|,
// Hoyer (sqrt(N) - L1/L2) / (sqrt(N) - 1), Gini (Hurley & Rickard 2009) and excess
// kurtosis m4 / m2^2 - 3.
#pragma once

#include "common.hpp"
#include "linalg.hpp"

#include <cmath>
#include <limits>

namespace tensorscope {

struct FeatureGeometry {
  Vector norm2;        // ||W_i||^2
  Vector dimensionality;
  Vector mean_cos;     // mean |cos| with the other non-zero features
  Vector max_cos;
  std::vector<double> hist;  // counts of pairs i < j per bin of |cos|
};

inline FeatureGeometry feature_geometry(const MatRef& W, int bins, const Exec& ex) {
  const Index nf = W.rows();
  FeatureGeometry out;
  out.norm2 = W.rowwise().squaredNorm();
  out.dimensionality = Vector::Zero(nf);
  out.mean_cos = Vector::Constant(nf, std::numeric_limits<double>::quiet_NaN());
  out.max_cos = out.mean_cos;
  out.hist.assign(static_cast<std::size_t>(bins), 0.0);
  Index nz = 0;
  for (Index i = 0; i < nf; ++i) nz += out.norm2(i) > 0;
  const Index block = std::max<Index>(16, std::min<Index>(1024, 4000000 / std::max<Index>(1, nf)));
  const Vector& g2 = out.norm2;
  Matrix G;
  std::vector<std::vector<double>> hrow;
  for (Index b0 = 0; b0 < nf; b0 += block) {
    const Index b1 = std::min(nf, b0 + block), bs = b1 - b0;
    G.noalias() = W.middleRows(b0, bs) * W.transpose();  // BLAS
    hrow.assign(static_cast<std::size_t>(bs), std::vector<double>(static_cast<std::size_t>(bins), 0.0));
#pragma omp parallel for num_threads(omp_threads(ex.threads)) schedule(static)
    for (Index i = b0; i < b1; ++i) {
      if (!(g2(i) > 0)) continue;
      double s2 = 0, sc = 0, mc = 0;
      std::vector<double>& h = hrow[i - b0];
      for (Index j = 0; j < nf; ++j) {
        const double gij = G(i - b0, j);
        s2 += gij * gij;
        if (j == i || !(g2(j) > 0)) continue;
        const double c = std::min(1.0, std::abs(gij) / std::sqrt(g2(i) * g2(j)));
        sc += c;
        mc = std::max(mc, c);
        if (j > i) h[std::min<std::size_t>(static_cast<std::size_t>(c * bins), static_cast<std::size_t>(bins - 1))] += 1;
      }
      out.dimensionality(i) = g2(i) * g2(i) / s2;
      if (nz > 1) {
        out.mean_cos(i) = sc / static_cast<double>(nz - 1);
        out.max_cos(i) = mc;
      }
    }
    for (const auto& h : hrow)
      for (int b = 0; b < bins; ++b) out.hist[b] += h[b];
    ex.check();
  }
  return out;
}

// Sparsity statistics of every column (by_column) or row of X: n_vectors x 5 matrix
// with columns l0, l1, hoyer, gini, kurtosis.
inline Matrix sparsity_stats(const MatRef& X, bool by_column, double threshold, const Exec& ex) {
  const Index nv = by_column ? X.cols() : X.rows();
  const Index len = by_column ? X.rows() : X.cols();
  Matrix out(nv, 5);
  const double nan = std::numeric_limits<double>::quiet_NaN();
#pragma omp parallel num_threads(omp_threads(ex.threads))
  {
    std::vector<double> a(static_cast<std::size_t>(len));
#pragma omp for schedule(static)
    for (Index v = 0; v < nv; ++v) {
      double l0 = 0, l1 = 0, l2 = 0, mean = 0;
      for (Index t = 0; t < len; ++t) {
        const double x = by_column ? X(t, v) : X(v, t);
        a[t] = std::abs(x);
        l0 += a[t] > threshold;
        l1 += a[t];
        l2 += x * x;
        mean += x;
      }
      mean /= static_cast<double>(len);
      double m2 = 0, m4 = 0;
      for (Index t = 0; t < len; ++t) {
        const double d = (by_column ? X(t, v) : X(v, t)) - mean;
        m2 += d * d;
        m4 += d * d * d * d;
      }
      m2 /= static_cast<double>(len);
      m4 /= static_cast<double>(len);
      const double sn = std::sqrt(static_cast<double>(len));
      const double hoyer = (l2 > 0 && len > 1) ? (sn - l1 / std::sqrt(l2)) / (sn - 1) : nan;
      double gini = nan;
      if (l1 > 0) {
        std::sort(a.begin(), a.end());
        double s = 0;
        for (Index k = 0; k < len; ++k)
          s += a[k] / l1 * (static_cast<double>(len - (k + 1)) + 0.5) / static_cast<double>(len);
        gini = 1 - 2 * s;
      }
      out(v, 0) = l0 / static_cast<double>(len);
      out(v, 1) = l1;
      out(v, 2) = hoyer;
      out(v, 3) = gini;
      out(v, 4) = m2 > 0 ? m4 / (m2 * m2) - 3 : nan;
    }
  }
  return out;
}

}  // namespace tensorscope
