// Centred kernel alignment (Kornblith et al. 2019) with the biased HSIC and the
// debiased HSIC of Song et al. (2012, eq. 5); linear and RBF kernels.
//
// Two exact routes, chosen by cost:
//  * feature space (linear kernel): with X, Y column-centred, tr(KL) = ||X^T Y||_F^2;
//    the debiased terms need only the row norms ||x_i||^2 (for centred X, K1 = 0 so
//    K~1 = -diag(K)). Cost ~ n p q per pair.
//  * sample space (any kernel): each layer's n x n kernel is formed once, centred (or
//    zero-diagonalled for the debiased estimator) and packed; all pairs then come from
//    one product of the packed matrices. Cost ~ n^2 p per layer + n^2 per pair. The
//    linear kernel streams: its kernels are formed a chunk of columns at a time for all
//    layers together (EigenCka::linear_dots), never n x n, each once.
#pragma once

#include "common.hpp"
#include "linalg.hpp"

#include <cmath>
#include <limits>
#include <string>

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

// The options from their R names (the glue's and the LibTorch backend's one parser).
inline CkaOptions cka_options(const std::string& kernel, const std::string& estimator, const std::string& bandwidth,
                              double t, const std::string& path) {
  CkaOptions o;
  o.kernel = kernel == "rbf" ? Kernel::rbf : Kernel::linear;
  o.estimator = estimator == "debiased" ? Estimator::debiased : Estimator::biased;
  o.bandwidth = bandwidth == "median_nonzero" ? Bandwidth::median_nonzero : Bandwidth::median;
  o.t = t;
  o.path = path == "feature" ? CkaPath::feature : (path == "gram" ? CkaPath::gram : CkaPath::automatic);
  return o;
}

namespace detail {

inline double nan() { return std::numeric_limits<double>::quiet_NaN(); }

// k-th smallest (0-based) of v, destructive partial selection.
inline double kth(std::vector<double>& v, std::size_t k) {
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
  return v[k];
}

}  // namespace detail

// ---- what every backend shares: the bandwidth rule, the route, the estimators --------

// RBF bandwidth from order statistics of the n(n-1)/2 off-diagonal squared distances u
// (i < j) of a layer: kth(k, positive) is the k-th smallest (0-based) of u, or of its
// positive values when `positive`; n_positive() counts those. "median": t times the root
// of the median of all n^2 squared distances (zero diagonal included, each off-diagonal
// value twice), as in Kornblith et al.; "median_nonzero": the root of the median of the
// non-zero ones (counting each twice leaves it unchanged), as Brain-Score. Each backend
// selects on its own storage (nth_element here, torch::kthvalue on a GPU).
template <class Kth, class Count>
inline double rbf_bandwidth(const CkaOptions& o, Index n, Kth&& kth, Count&& n_positive) {
  if (o.bandwidth == Bandwidth::median) {
    const std::size_t N = static_cast<std::size_t>(n) * static_cast<std::size_t>(n);
    auto full = [&](std::size_t q) -> double {
      if (q < static_cast<std::size_t>(n)) return 0.0;
      return kth(static_cast<Index>((q - static_cast<std::size_t>(n)) / 2), false);
    };
    const double med = N % 2 == 1 ? full((N - 1) / 2) : 0.5 * (full(N / 2 - 1) + full(N / 2));
    return o.t * std::sqrt(med);
  }
  const Index m = n_positive();
  if (m == 0) return 0.0;
  const double med = m % 2 == 1 ? kth(m / 2, true) : 0.5 * (kth(m / 2 - 1, true) + kth(m / 2, true));
  return std::sqrt(med);
}

// The bandwidth of one layer: `given` when positive, otherwise the rule.
template <class Kth, class Count>
inline double layer_bandwidth(const CkaOptions& o, double given, Index n, Kth&& kth, Count&& n_positive) {
  const double sigma = given > 0 ? given : rbf_bandwidth(o, n, kth, n_positive);
  if (!(sigma > 0) || !std::isfinite(sigma))
    throw ts_error(ErrorKind::zero_variance, "RBF bandwidth is zero: all points coincide");
  return sigma;
}

// One layer's kernel statistics, whatever the backend holds of it. The raw dot of two
// layers is tr(Kc Lc) (biased) or tr(K~ L~) (debiased) on the sample-space route, and
// ||Xc^T Yc||_F^2 = tr(K L) on the feature route, where, as Xc's columns sum to zero,
// K~ 1 = -diag(K): rowsum holds -||x_i||^2 there and tr(K~ L~) = tr(K L) - rowsum . rowsum'.
struct LayerKernel {
  double self_dot = 0;   // raw dot of the layer with itself
  double hsic_self = 0;  // HSIC(K, K), same scale as hsic_value()
  Vector rowsum;         // debiased: K~ 1
  double total = 0;      // debiased: 1^T K~ 1
  double sigma = detail::nan();
};

// HSIC from the dot product tr(Kc Lc) or tr(K~ L~) and, for the debiased estimator, the
// row sums. Biased: tr(Kc Lc) / (n-1)^2. Debiased: Song et al. (2012) eq. 5.
inline double hsic_value(double dot, const LayerKernel& a, const LayerKernel& b, Index n,
                         Estimator e) {
  const double nd = static_cast<double>(n);
  if (e == Estimator::biased) return dot / ((nd - 1) * (nd - 1));
  return (dot + a.total * b.total / ((nd - 1) * (nd - 2)) - 2.0 / (nd - 2) * a.rowsum.dot(b.rowsum)) /
         (nd * (nd - 3));
}

// HSIC of two layers from their raw dot (see LayerKernel) on either route.
inline double hsic_of(double raw, const LayerKernel& a, const LayerKernel& b, Index n, Estimator e, bool gram) {
  const double dot = (!gram && e == Estimator::debiased) ? raw - a.rowsum.dot(b.rowsum) : raw;
  return hsic_value(dot, a, b, n, e);
}

inline double cka_from_hsic(double xy, double xx, double yy) {
  const double den = std::sqrt(xx * yy);
  if (!(xx > 0) || !(yy > 0)) return detail::nan();
  return xy / den;
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

// The route: sample space for the RBF kernel or when asked for, else by cost.
inline bool cka_gram_route(const CkaOptions& o, Index n, const std::vector<Index>& px, const std::vector<Index>& py) {
  if (o.kernel == Kernel::rbf || o.path == CkaPath::gram) return true;
  if (o.path == CkaPath::feature) return false;
  return prefer_gram(n, px, py);
}

// ---- the Eigen backend -------------------------------------------------------------

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
    std::vector<double> u, pos;
    if (!(sigma > 0)) {
      u.reserve(static_cast<std::size_t>(n_pairs(n)));
      for (Index j = 0; j < n; ++j)
        for (Index i = j + 1; i < n; ++i) u.push_back(K(i, j));
      if (o.bandwidth == Bandwidth::median_nonzero)
        for (double v : u)
          if (v > 0) pos.push_back(v);
    }
    sigma = layer_bandwidth(
        o, sigma, n,
        [&](Index k, bool positive) { return detail::kth(positive ? pos : u, static_cast<std::size_t>(k)); },
        [&] { return static_cast<Index>(pos.size()); });
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
  out.self_dot = P.col(col).squaredNorm();
  return out;
}

// The dense work of cka_matrix() on Eigen + BLAS, as the policy cka_matrix_with() runs:
// the feature route keeps each layer's centred matrix (pairs: one GEMM each); the
// sample-space route packs blocks of layers' kernels (above) within a memory budget, and
// all pairs of two blocks are one GEMM of the packed matrices.
struct EigenCka {
  using Layer = MatRef;
  struct Block {
    std::vector<LayerKernel> k;
    std::vector<Matrix> Xc;  // feature route
    Matrix P;                // sample-space route: packed kernels, one column per layer
  };

  static Index rows(const Layer& x) { return x.rows(); }
  static Index cols(const Layer& x) { return x.cols(); }

  // Layers held at once: all on the feature route, else as many packed kernels as fit
  // half the budget (two blocks are held for their product).
  static std::size_t per_block(Index n, bool gram, const CkaOptions& o, std::size_t layers) {
    if (!gram) return std::max<std::size_t>(1, layers);
    const Index m = o.estimator == Estimator::biased ? n * (n + 1) / 2 : n * (n - 1) / 2;
    return std::max<std::size_t>(1, static_cast<std::size_t>(o.max_gram_bytes / 2.0 / (8.0 * static_cast<double>(m))));
  }

  static Block prepare(const std::vector<Layer>& layers, std::size_t b0, std::size_t b1, bool gram,
                       const CkaOptions& o, const std::vector<double>& sigma, const Exec& ex) {
    Block B;
    const Index n = layers[b0].rows();
    if (gram) B.P.resize(o.estimator == Estimator::biased ? n * (n + 1) / 2 : n * (n - 1) / 2,
                         static_cast<Index>(b1 - b0));
    for (std::size_t l = b0; l < b1; ++l) {
      if (gram) {
        B.k.push_back(pack_kernel(layers[l], o, sigma[l], B.P, static_cast<Index>(l - b0), ex));
      } else {
        B.Xc.push_back(centre_columns(layers[l]));
        LayerKernel k;
        const Matrix& Xc = B.Xc.back();
        k.self_dot = crossprod(Xc).squaredNorm();
        if (o.estimator == Estimator::debiased) {
          k.rowsum = -Xc.rowwise().squaredNorm();
          k.total = k.rowsum.sum();
        }
        B.k.push_back(std::move(k));
      }
      ex.check();
    }
    return B;
  }

  // The sample-space route of the linear kernel for all layers at once, without an
  // n x n matrix or blocks of packed kernels (which, when they do not all fit the budget,
  // make every block but the first be formed again for each block before it): the lower
  // triangle is walked in chunks of w columns; for each chunk, every layer's centred
  // kernel columns are formed (one GEMM: the layer's centred rows from the chunk down
  // against the chunk's rows), packed as pack_kernel() packs them, into one column of
  // Pc per layer, and the raw dots of all pairs accumulate as Pc^T Pc. Each kernel is
  // formed once (about n^2 p flops, as one syrk) whatever the number of layers. Memory:
  // Pc (at most w n doubles a layer, w <= 512 and within half the budget), one chunk of
  // one kernel and one centred copy of a layer's rows. k gets each layer's statistics.
  static constexpr bool streams_linear = true;
  static Matrix linear_dots(const std::vector<Layer>& layers, const CkaOptions& o, std::vector<LayerKernel>& k,
                            const Exec& ex) {
    const Index L = static_cast<Index>(layers.size());
    const Index n = layers[0].rows();
    const bool biased = o.estimator == Estimator::biased;
    // at most 512 columns: a chunk's GEMM also forms the w^2 / 2 entries above its
    // diagonal, so wider chunks waste flops (w = n would double them), narrower ones copy
    // the centred rows more often
    Index w = static_cast<Index>(o.max_gram_bytes / 2.0 / (8.0 * static_cast<double>(n) * static_cast<double>(L)));
    w = std::min(n, std::min<Index>(512, std::max<Index>(64, w / 64 * 64)));
    k.assign(layers.size(), LayerKernel());
    std::vector<Eigen::RowVectorXd> mean;
    for (const auto& x : layers) mean.push_back(x.colwise().mean());
    if (!biased)
      for (auto& kk : k) kk.rowsum = Vector::Zero(n);
    Matrix D = Matrix::Zero(L, L), Pc, T, G;
    const double r2 = std::sqrt(2.0);
    const int nt = omp_threads(ex.threads);
    for (Index j0 = 0; j0 < n; j0 += w) {
      const Index wc = std::min(w, n - j0), rows = n - j0;
      const Index first = biased ? rows : rows - 1;  // entries of the chunk's first column
      Pc.resize(wc * first - wc * (wc - 1) / 2, L);
      for (Index l = 0; l < L; ++l) {
        T = layers[static_cast<std::size_t>(l)].middleRows(j0, rows);
        T.rowwise() -= mean[static_cast<std::size_t>(l)];
        G.noalias() = T * T.topRows(wc).transpose();  // G(i, c) = Kc(j0 + i, j0 + c)
        double* p = Pc.col(l).data();
#pragma omp parallel for num_threads(nt) schedule(static)
        for (Index c = 0; c < wc; ++c) {
          const Index off = c * first - c * (c - 1) / 2;
          const double* g = G.col(c).data();
          if (biased) {
            p[off] = g[c];
            for (Index i = c + 1; i < rows; ++i) p[off + i - c] = r2 * g[i];
          } else {
            for (Index i = c + 1; i < rows; ++i) p[off + i - c - 1] = r2 * g[i];
          }
        }
        if (!biased) {
          Vector& rs = k[static_cast<std::size_t>(l)].rowsum;
          for (Index c = 0; c < wc; ++c) {
            const double* g = G.col(c).data();
            for (Index i = c + 1; i < rows; ++i) {
              rs(j0 + i) += g[i];
              rs(j0 + c) += g[i];
            }
          }
        }
        ex.check();
      }
      D.noalias() += Pc.transpose() * Pc;
      ex.check();
    }
    for (Index l = 0; l < L; ++l) {
      LayerKernel& kk = k[static_cast<std::size_t>(l)];
      kk.self_dot = D(l, l);
      if (!biased) kk.total = kk.rowsum.sum();
    }
    return D;
  }

  // Raw dots of every layer of a with every layer of b (only j > i when `upper`).
  static Matrix dots(const Block& a, const Block& b, bool gram, bool upper, const Exec& ex) {
    if (gram) return a.P.transpose() * b.P;  // one GEMM for all pairs of the two blocks
    Matrix D = Matrix::Constant(static_cast<Index>(a.Xc.size()), static_cast<Index>(b.Xc.size()), detail::nan());
    for (std::size_t i = 0; i < a.Xc.size(); ++i) {
      for (std::size_t j = upper ? i + 1 : 0; j < b.Xc.size(); ++j)
        D(static_cast<Index>(i), static_cast<Index>(j)) = (a.Xc[i].transpose() * b.Xc[j]).squaredNorm();
      ex.check();
    }
    return D;
  }
};

// ---- the algorithm -------------------------------------------------------------------

// CKA for every pair of layers: xs with ys, or xs with itself when ys is empty, with the
// dense work done by the backend policy B (EigenCka; the LibTorch backend's TorchCka in
// src/torch/dense.h), as ridge_cv() takes a decomposer. The checks, the route, the
// bandwidth rule, the estimators and the assembly are all here.
// sig_x / sig_y: RBF bandwidths per layer (<= 0 or NaN: from the bandwidth rule).
// Returns |xs| x |ys| (or |xs| x |xs|). Also reports the bandwidths used.
struct CkaResult {
  Matrix cka;
  std::vector<double> sigma_x, sigma_y;
  bool gram_path = false;
};

// Within one set: the lower triangle mirrored from the upper, exactly 1 on the diagonal
// where defined; the bandwidths used.
inline CkaResult finish_cka(CkaResult& res, bool within, std::vector<double> sig_x, std::vector<double> sig_y) {
  if (within) {
    for (Index i = 0; i < res.cka.rows(); ++i) {
      for (Index j = 0; j < i; ++j) res.cka(i, j) = res.cka(j, i);
      if (std::isfinite(res.cka(i, i))) res.cka(i, i) = 1.0;
    }
  }
  res.sigma_x = std::move(sig_x);
  res.sigma_y = std::move(sig_y);
  return std::move(res);
}

// CKA of the layer pairs (a0 + i, c0 + j) into res.cka from their raw dots d(i, j) and
// the kernels ka[i] (i < na), kc[j] (j < nc), self HSIC already set. same: ka is kc
// (pairs within one set), so only j >= i is filled, the diagonal from the self HSIC.
inline void fill_cka(CkaResult& res, const Matrix& d, const LayerKernel* ka, std::size_t na, const LayerKernel* kc,
                     std::size_t nc, std::size_t a0, std::size_t c0, bool same, Index n, Estimator e, bool gram) {
  for (std::size_t i = 0; i < na; ++i)
    for (std::size_t j = same ? i : 0; j < nc; ++j) {
      const double h = same && i == j ? ka[i].hsic_self
                                      : hsic_of(d(static_cast<Index>(i), static_cast<Index>(j)), ka[i], kc[j], n, e, gram);
      res.cka(static_cast<Index>(a0 + i), static_cast<Index>(c0 + j)) = cka_from_hsic(h, ka[i].hsic_self, kc[j].hsic_self);
    }
}

template <class B>
inline CkaResult cka_matrix_with(const std::vector<typename B::Layer>& xs, const std::vector<typename B::Layer>& ys,
                                 const CkaOptions& o, std::vector<double> sig_x, std::vector<double> sig_y,
                                 const Exec& ex, const B& backend) {
  const bool within = ys.empty();
  const std::size_t lx = xs.size(), ly = within ? xs.size() : ys.size();
  if (lx == 0 || ly == 0) throw ts_error(ErrorKind::empty, "cka: no layers");
  const Index n = backend.rows(xs[0]);
  for (const auto& x : xs)
    if (backend.rows(x) != n) throw ts_error(ErrorKind::mismatch, "cka: layers differ in the number of stimuli");
  for (const auto& y : ys)
    if (backend.rows(y) != n) throw ts_error(ErrorKind::mismatch, "cka: layers differ in the number of stimuli");
  if (o.estimator == Estimator::debiased && n < 4)
    throw ts_error(ErrorKind::too_few, "cka: the debiased estimator needs at least 4 stimuli");
  if (n < 2) throw ts_error(ErrorKind::too_few, "cka: need at least 2 stimuli");
  sig_x.resize(lx, detail::nan());
  sig_y.resize(within ? 0 : ly, detail::nan());

  CkaResult res;
  res.cka.resize(lx, ly);
  std::vector<Index> px, py;
  for (const auto& x : xs) px.push_back(backend.cols(x));
  for (const auto& y : ys) py.push_back(backend.cols(y));
  const bool gram = cka_gram_route(o, n, px, py);
  res.gram_path = gram;
  if constexpr (B::streams_linear) {
    if (gram && o.kernel == Kernel::linear) {
      std::vector<typename B::Layer> all;  // copy-constructed (an Eigen::Ref has no assignment)
      all.reserve(lx + ys.size());
      for (const auto& x : xs) all.push_back(x);
      for (const auto& y : ys) all.push_back(y);
      std::vector<LayerKernel> k;
      const Matrix d = backend.linear_dots(all, o, k, ex);
      for (auto& kk : k) kk.hsic_self = hsic_of(kk.self_dot, kk, kk, n, o.estimator, true);
      const Index lxi = static_cast<Index>(lx), lyi = static_cast<Index>(ly);
      fill_cka(res, within ? d : Matrix(d.block(0, lxi, lxi, lyi)), k.data(), lx, k.data() + (within ? 0 : lx), ly, 0,
               0, within, n, o.estimator, true);
      return finish_cka(res, within, std::move(sig_x), std::move(sig_y));
    }
  }
  const std::size_t per_block = backend.per_block(n, gram, o, lx + (within ? 0 : ly));

  auto build = [&](const std::vector<typename B::Layer>& layers, std::vector<double>& sig, std::size_t b0,
                   std::size_t b1) {
    auto blk = backend.prepare(layers, b0, b1, gram, o, sig, ex);
    for (std::size_t l = b0; l < b1; ++l) {
      LayerKernel& k = blk.k[l - b0];
      if (o.kernel == Kernel::rbf) sig[l] = k.sigma;
      k.hsic_self = hsic_of(k.self_dot, k, k, n, o.estimator, gram);
    }
    return blk;
  };
  // pairs (i in A, j in C); same: A is C, within, so only j > i (mirrored afterwards)
  // and the diagonal from the self HSIC
  auto fill = [&](const typename B::Block& A, std::size_t a0, const typename B::Block& C, std::size_t c0, bool same) {
    fill_cka(res, backend.dots(A, C, gram, same, ex), A.k.data(), A.k.size(), C.k.data(), C.k.size(), a0, c0, same, n,
             o.estimator, gram);
  };

  for (std::size_t b0 = 0; b0 < lx; b0 += per_block) {
    const auto A = build(xs, sig_x, b0, std::min(lx, b0 + per_block));
    if (within) {
      fill(A, b0, A, b0, true);
      for (std::size_t c0 = b0 + per_block; c0 < lx; c0 += per_block)
        fill(A, b0, build(xs, sig_x, c0, std::min(lx, c0 + per_block)), c0, false);
    } else {
      for (std::size_t c0 = 0; c0 < ly; c0 += per_block)
        fill(A, b0, build(ys, sig_y, c0, std::min(ly, c0 + per_block)), c0, false);
    }
  }
  return finish_cka(res, within, std::move(sig_x), std::move(sig_y));
}

inline CkaResult cka_matrix(const std::vector<MatRef>& xs, const std::vector<MatRef>& ys, const CkaOptions& o,
                            std::vector<double> sig_x, std::vector<double> sig_y, const Exec& ex) {
  return cka_matrix_with(xs, ys, o, std::move(sig_x), std::move(sig_y), ex, EigenCka{});
}

}  // namespace tensorscope
