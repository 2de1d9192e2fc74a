// Centred kernel alignment (Kornblith et al. 2019) with the biased HSIC and the
// debiased HSIC of Song et al. (2012, eq. 5); linear and RBF kernels.
//
// Two exact routes, chosen by cost:
//  * feature space (linear kernel): with X, Y column-centred, tr(KL) = ||X^T Y||_F^2;
//    the debiased terms need only the row norms ||x_i||^2 (for centred X, K1 = 0 so
//    K~1 = -diag(K)). Cost ~ n p q per pair.
//  * sample space (any kernel): each layer's n x n kernel is formed once, centred (or
//    zero-diagonalled for the debiased estimator) and packed; all pairs then come from
//    one product of the packed matrices. Cost ~ n^2 p per layer + n^2 per pair.
#pragma once

#include "common.hpp"
#include "linalg.hpp"

#include <cmath>
#include <limits>

namespace tensorscope {

enum class Kernel { linear, rbf };
enum class Estimator { biased, debiased };
enum class Bandwidth { median, median_nonzero };
enum class CkaPath { automatic, feature, gram };

struct CkaOptions {
  Kernel kernel = Kernel::linear;
  Estimator estimator = Estimator::biased;
  Bandwidth bandwidth = Bandwidth::median;
  double t = 0.5;  // Kornblith's threshold: sigma = t * sqrt(median squared distance)
  CkaPath path = CkaPath::automatic;
  double max_gram_bytes = 4e9;  // memory for packed kernels held at once
};

namespace detail {

inline double nan() { return std::numeric_limits<double>::quiet_NaN(); }

// k-th smallest (0-based) of v, destructive partial selection.
inline double kth(std::vector<double>& v, std::size_t k) {
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
  return v[k];
}

// Median of the n^2 squared distances of the full matrix (zero diagonal included,
// each off-diagonal value twice), given the n(n-1)/2 off-diagonal values.
inline double median_full(std::vector<double> u, Index n) {
  const std::size_t N = static_cast<std::size_t>(n) * static_cast<std::size_t>(n);
  auto full = [&](std::size_t q) -> double {
    if (q < static_cast<std::size_t>(n)) return 0.0;
    return kth(u, (q - static_cast<std::size_t>(n)) / 2);
  };
  if (N % 2 == 1) return full((N - 1) / 2);
  return 0.5 * (full(N / 2 - 1) + full(N / 2));
}

// Median of the non-zero squared distances (each off-diagonal counts twice, which
// leaves the median unchanged).
inline double median_nonzero(const std::vector<double>& u) {
  std::vector<double> nz;
  nz.reserve(u.size());
  for (double v : u)
    if (v > 0) nz.push_back(v);
  if (nz.empty()) return 0.0;
  const std::size_t m = nz.size();
  if (m % 2 == 1) return kth(nz, m / 2);
  const double hi = kth(nz, m / 2);
  const double lo = *std::max_element(nz.begin(), nz.begin() + static_cast<std::ptrdiff_t>(m / 2));
  return 0.5 * (lo + hi);
}

}  // namespace detail

// One layer's kernel in the form the pairwise sums need.
struct LayerKernel {
  double hsic_self = 0;  // HSIC(K, K), same scale as hsic_pair()
  Vector rowsum;         // debiased: K~ 1
  double total = 0;      // debiased: 1^T K~ 1
  double sigma = detail::nan();
};

// Packs layer X's kernel into column `col` of P. Biased: H K H, diagonal once and
// off-diagonal times sqrt(2), so that P_a . P_b = tr(Kc Lc). Debiased: K with zero
// diagonal, off-diagonal times sqrt(2), so P_a . P_b = tr(K~ L~). Only the lower
// triangle of K is ever formed or read (one syrk; contiguous column walks), and the
// packing order is the same for every layer, which is all the dot products need.
inline LayerKernel pack_kernel(const MatRef& X, const CkaOptions& o, double sigma, Matrix& P,
                               Index col, const Exec& ex) {
  const Index n = X.rows();
  LayerKernel out;
  Matrix K = Matrix::Zero(n, n);
  K.selfadjointView<Eigen::Lower>().rankUpdate(centre_columns(X));  // lower triangle of Xc Xc^T
  const int nt = omp_threads(ex.threads);
  if (o.kernel == Kernel::rbf) {
    const Vector d = K.diagonal();
    // squared distances in the lower triangle, then the bandwidth, then the kernel
#pragma omp parallel for num_threads(nt) schedule(static)
    for (Index j = 0; j < n; ++j)
      for (Index i = j; i < n; ++i) K(i, j) = std::max(0.0, d(i) + d(j) - 2.0 * K(i, j));
    if (!(sigma > 0)) {
      std::vector<double> u;
      u.reserve(static_cast<std::size_t>(n_pairs(n)));
      for (Index j = 0; j < n; ++j)
        for (Index i = j + 1; i < n; ++i) u.push_back(K(i, j));
      sigma = o.bandwidth == Bandwidth::median ? o.t * std::sqrt(detail::median_full(std::move(u), n))
                                               : std::sqrt(detail::median_nonzero(u));
    }
    if (!(sigma > 0) || !std::isfinite(sigma))
      throw invalid_input("RBF bandwidth is zero: all points coincide");
    out.sigma = sigma;
    const double g = -1.0 / (2.0 * sigma * sigma);
#pragma omp parallel for num_threads(nt) schedule(static)
    for (Index j = 0; j < n; ++j)
      for (Index i = j; i < n; ++i) K(i, j) = std::exp(g * K(i, j));
    if (o.estimator == Estimator::biased) {
      // H K H on the lower triangle: row means of the full symmetric matrix first
      Vector r = Vector::Zero(n);
      for (Index j = 0; j < n; ++j) {
        r(j) += K(j, j);
        for (Index i = j + 1; i < n; ++i) {
          r(i) += K(i, j);
          r(j) += K(i, j);
        }
      }
      r /= static_cast<double>(n);
      const double gm = r.mean();
#pragma omp parallel for num_threads(nt) schedule(static)
      for (Index j = 0; j < n; ++j)
        for (Index i = j; i < n; ++i) K(i, j) += gm - r(i) - r(j);
    }
  }
  // linear + biased: K is already H K H because X was centred.
  const double r2 = std::sqrt(2.0);
  double* p = P.col(col).data();
  if (o.estimator == Estimator::biased) {
    // column j of the lower triangle (rows j..n-1) starts at j n - j (j - 1) / 2
#pragma omp parallel for num_threads(nt) schedule(static)
    for (Index j = 0; j < n; ++j) {
      const Index k = j * n - j * (j - 1) / 2;
      const double* c = K.col(j).data();
      p[k] = c[j];
      for (Index i = j + 1; i < n; ++i) p[k + i - j] = r2 * c[i];
    }
  } else {
    out.rowsum = Vector::Zero(n);
    for (Index j = 0; j < n; ++j)
      for (Index i = j + 1; i < n; ++i) {
        out.rowsum(i) += K(i, j);
        out.rowsum(j) += K(i, j);
      }
    out.total = out.rowsum.sum();
    // strictly lower part of column j (rows j+1..n-1) starts at j n - j (j + 1) / 2
#pragma omp parallel for num_threads(nt) schedule(static)
    for (Index j = 0; j < n - 1; ++j) {
      const Index k = j * n - j * (j + 1) / 2;
      const double* c = K.col(j).data();
      for (Index i = j + 1; i < n; ++i) p[k + i - j - 1] = r2 * c[i];
    }
  }
  return out;
}

// HSIC from the packed dot product and, for the debiased estimator, the row sums.
// Biased: tr(Kc Lc) / (n-1)^2. Debiased: Song et al. (2012) eq. 5.
inline double hsic_value(double dot, const LayerKernel& a, const LayerKernel& b, Index n,
                         Estimator e) {
  const double nd = static_cast<double>(n);
  if (e == Estimator::biased) return dot / ((nd - 1) * (nd - 1));
  return (dot + a.total * b.total / ((nd - 1) * (nd - 2)) - 2.0 / (nd - 2) * a.rowsum.dot(b.rowsum)) /
         (nd * (nd - 3));
}

inline double cka_from_hsic(double xy, double xx, double yy) {
  const double den = std::sqrt(xx * yy);
  if (!(xx > 0) || !(yy > 0)) return detail::nan();
  return xy / den;
}

// Feature-space route for the linear kernel. X, Y are column-centred.
struct LinearLayer {
  Matrix Xc;
  Vector sqnorm;   // ||x_i||^2 (debiased)
  double self = 0; // ||Xc^T Xc||_F^2
};

inline LinearLayer linear_layer(const MatRef& X) {
  LinearLayer L;
  L.Xc = centre_columns(X);
  L.sqnorm = L.Xc.rowwise().squaredNorm();
  L.self = crossprod(L.Xc).squaredNorm();
  return L;
}

inline double linear_hsic(double tr_kl, const LinearLayer& a, const LinearLayer& b, Estimator e) {
  const Index n = a.Xc.rows();
  const double nd = static_cast<double>(n);
  if (e == Estimator::biased) return tr_kl / ((nd - 1) * (nd - 1));
  // K~ = K - diag(K); K 1 = 0 for centred X, so K~ 1 = -diag(K), 1^T K~ 1 = -tr(K).
  const double ab = a.sqnorm.dot(b.sqnorm);
  const double sa = a.sqnorm.sum(), sb = b.sqnorm.sum();
  const double dot = tr_kl - ab;  // tr(K~ L~)
  return (dot + sa * sb / ((nd - 1) * (nd - 2)) - 2.0 / (nd - 2) * ab) / (nd * (nd - 3));
}

// Cost of the two routes for layer widths px (and py; empty = within px), in GEMM
// flop-equivalents. Feature space: n p q per pair (GEMM, plus syrk per layer).
// Sample space: the syrk of each layer runs at about half the GEMM rate (2 n^2 p) and
// the kernel's memory passes (centring, packing, the packed product) cost about 300
// flop-equivalents per kernel entry per layer; both constants were measured with
// OpenBLAS on this project's 2-core machines (bench/alignment.R, W2 at two sizes).
inline bool prefer_gram(Index n, const std::vector<Index>& px, const std::vector<Index>& py) {
  double sx = 0, sy = 0;
  for (Index p : px) sx += static_cast<double>(p);
  for (Index p : py) sy += static_cast<double>(p);
  const double nd = static_cast<double>(n);
  const double layers = static_cast<double>(px.size() + py.size());
  const double feature = py.empty() ? nd * sx * sx : nd * (sx + sy) * (sx + sy);
  const double gram = 2.0 * nd * nd * (sx + sy) + 300.0 * nd * nd * layers;
  return gram < feature;
}

// CKA for every pair of layers: xs with ys, or xs with itself when ys is empty.
// sig_x / sig_y: RBF bandwidths per layer (<= 0 or NaN: from the bandwidth rule).
// Returns |xs| x |ys| (or |xs| x |xs|). Also reports the bandwidths used.
struct CkaResult {
  Matrix cka;
  std::vector<double> sigma_x, sigma_y;
  bool gram_path = false;
};

inline CkaResult cka_matrix(const std::vector<MatRef>& xs, const std::vector<MatRef>& ys,
                            const CkaOptions& o, std::vector<double> sig_x,
                            std::vector<double> sig_y, const Exec& ex) {
  const bool within = ys.empty();
  const std::size_t lx = xs.size(), ly = within ? xs.size() : ys.size();
  if (lx == 0 || ly == 0) throw invalid_input("cka: no layers");
  const Index n = xs[0].rows();
  for (const auto& x : xs)
    if (x.rows() != n) throw invalid_input("cka: layers differ in the number of stimuli");
  for (const auto& y : ys)
    if (y.rows() != n) throw invalid_input("cka: layers differ in the number of stimuli");
  if (o.estimator == Estimator::debiased && n < 4)
    throw invalid_input("cka: the debiased estimator needs at least 4 stimuli");
  if (n < 2) throw invalid_input("cka: need at least 2 stimuli");
  sig_x.resize(lx, detail::nan());
  sig_y.resize(within ? 0 : ly, detail::nan());

  CkaResult res;
  res.cka.resize(lx, ly);
  res.sigma_x = sig_x;
  res.sigma_y = sig_y;

  std::vector<Index> px, py;
  for (const auto& x : xs) px.push_back(x.cols());
  for (const auto& y : ys) py.push_back(y.cols());
  bool gram = o.kernel == Kernel::rbf;
  if (!gram) {
    if (o.path == CkaPath::gram) gram = true;
    else if (o.path == CkaPath::automatic) gram = prefer_gram(n, px, py);
  }
  res.gram_path = gram;

  if (!gram) {
    std::vector<LinearLayer> a(lx), b(within ? 0 : ly);
    for (std::size_t i = 0; i < lx; ++i) {
      a[i] = linear_layer(xs[i]);
      ex.check();
    }
    for (std::size_t j = 0; j < b.size(); ++j) {
      b[j] = linear_layer(ys[j]);
      ex.check();
    }
    const std::vector<LinearLayer>& bb = within ? a : b;
    std::vector<double> self_a(lx), self_b(ly);
    for (std::size_t i = 0; i < lx; ++i) self_a[i] = linear_hsic(a[i].self, a[i], a[i], o.estimator);
    for (std::size_t j = 0; j < ly; ++j) self_b[j] = linear_hsic(bb[j].self, bb[j], bb[j], o.estimator);
    for (std::size_t i = 0; i < lx; ++i) {
      for (std::size_t j = within ? i : 0; j < ly; ++j) {
        double v;
        if (within && i == j) {
          v = cka_from_hsic(self_a[i], self_a[i], self_a[i]);
        } else {
          const double tr = (a[i].Xc.transpose() * bb[j].Xc).squaredNorm();
          v = cka_from_hsic(linear_hsic(tr, a[i], bb[j], o.estimator), self_a[i], self_b[j]);
        }
        res.cka(i, j) = v;
        if (within) res.cka(j, i) = v;
      }
      ex.check();
    }
    return res;
  }

  // Sample-space route, in blocks of layers that fit the memory budget.
  const Index m = o.estimator == Estimator::biased ? n * (n + 1) / 2 : n * (n - 1) / 2;
  const double bytes = 8.0 * static_cast<double>(m);
  const std::size_t per_block =
      std::max<std::size_t>(1, static_cast<std::size_t>(o.max_gram_bytes / 2.0 / bytes));

  struct Block {
    std::size_t begin = 0, end = 0;
    Matrix P;
    std::vector<LayerKernel> k;
  };
  auto build = [&](const std::vector<MatRef>& layers, std::vector<double>& sig, std::size_t b0,
                   std::size_t b1) {
    Block B;
    B.begin = b0;
    B.end = b1;
    B.P.resize(m, static_cast<Index>(b1 - b0));
    for (std::size_t l = b0; l < b1; ++l) {
      LayerKernel lk = pack_kernel(layers[l], o, sig[l], B.P, static_cast<Index>(l - b0), ex);
      if (o.kernel == Kernel::rbf) sig[l] = lk.sigma;
      B.k.push_back(std::move(lk));
      ex.check();
    }
    // self HSIC of each layer in the block
    for (std::size_t l = 0; l < B.k.size(); ++l) {
      const double d = B.P.col(static_cast<Index>(l)).squaredNorm();
      B.k[l].hsic_self = hsic_value(d, B.k[l], B.k[l], n, o.estimator);
    }
    return B;
  };
  auto fill = [&](const Block& A, const Block& Bk) {
    const Matrix dots = A.P.transpose() * Bk.P;  // one GEMM for all pairs in the blocks
    for (std::size_t i = A.begin; i < A.end; ++i)
      for (std::size_t j = Bk.begin; j < Bk.end; ++j) {
        const LayerKernel& ka = A.k[i - A.begin];
        const LayerKernel& kb = Bk.k[j - Bk.begin];
        const double h = hsic_value(dots(static_cast<Index>(i - A.begin), static_cast<Index>(j - Bk.begin)),
                                    ka, kb, n, o.estimator);
        res.cka(static_cast<Index>(i), static_cast<Index>(j)) = cka_from_hsic(h, ka.hsic_self, kb.hsic_self);
      }
  };

  if (within) {
    for (std::size_t b0 = 0; b0 < lx; b0 += per_block) {
      Block A = build(xs, sig_x, b0, std::min(lx, b0 + per_block));
      fill(A, A);
      for (std::size_t c0 = A.end; c0 < lx; c0 += per_block) {
        Block C = build(xs, sig_x, c0, std::min(lx, c0 + per_block));
        fill(A, C);
      }
    }
    for (std::size_t i = 0; i < lx; ++i) {
      for (std::size_t j = 0; j < i; ++j) res.cka(i, j) = res.cka(j, i);
      // exactly 1 on the diagonal when defined
      if (std::isfinite(res.cka(i, i))) res.cka(i, i) = 1.0;
    }
  } else {
    for (std::size_t b0 = 0; b0 < lx; b0 += per_block) {
      Block A = build(xs, sig_x, b0, std::min(lx, b0 + per_block));
      for (std::size_t c0 = 0; c0 < ly; c0 += per_block) {
        Block C = build(ys, sig_y, c0, std::min(ly, c0 + per_block));
        fill(A, C);
      }
    }
  }
  res.sigma_x = sig_x;
  res.sigma_y = sig_y;
  return res;
}

}  // namespace tensorscope
