// Comparison of RDMs given as upper-triangle vectors (length m = n (n - 1) / 2).
//
//   pearson, cosine       on the vectors
//   spearman              Pearson on average ranks
//   kendall_tau_a         (concordant - discordant) / (m (m - 1) / 2); ties count
//                         against. Knight's (1966) O(m log m) algorithm.
//   rho_a                 12 sum (r - rbar)(s - sbar) / (m^3 - m) on average ranks
//   cosine_cov, corr_cov  whitened by V = Xi o Xi, Xi = C C^T (Diedrichsen et al. 2021,
//                         Sigma_k = I). d1^T V^-1 d2 is proportional to tr(G1 G2) with
//                         G = -1/2 H D H, so the cosine of the double-centred matrices is
//                         computed instead (exact; checked against the explicit V^-1 in
//                         the tests). corr_cov subtracts each vector's mean first.
//   bures                 sum sqrt(eig(A^1/2 B A^1/2)) / sqrt(tr A tr B), A, B = -1/2 H D H,
//                         negative eigenvalues clipped to 0 (as rsatoolbox).
//
// Linear methods are computed as dot products of "prepared" vectors, so batches of
// comparisons (several RDMs, permutations) become one matrix product.
#pragma once

#include "common.hpp"
#include "linalg.hpp"

#include <cmath>
#include <numeric>

namespace tensorscope {

enum class Compare { spearman, pearson, kendall_tau_a, rho_a, cosine, corr_cov, cosine_cov, bures };

inline bool is_linear(Compare c) { return c != Compare::kendall_tau_a && c != Compare::bures; }
inline bool uses_matrix(Compare c) {
  return c == Compare::corr_cov || c == Compare::cosine_cov || c == Compare::bures;
}

// Average ranks (1-based), ties get the mean of their positions.
inline Vector rank_average(const VecRef& x) {
  const Index m = x.size();
  std::vector<Index> ord(static_cast<std::size_t>(m));
  std::iota(ord.begin(), ord.end(), Index(0));
  std::sort(ord.begin(), ord.end(), [&](Index a, Index b) { return x(a) < x(b); });
  Vector r(m);
  Index i = 0;
  while (i < m) {
    Index j = i + 1;
    while (j < m && x(ord[j]) == x(ord[i])) ++j;
    const double avg = 0.5 * static_cast<double>(i + j - 1) + 1.0;
    for (Index k = i; k < j; ++k) r(ord[k]) = avg;
    i = j;
  }
  return r;
}

// -1/2 H D H from an RDM vector over n conditions.
inline Matrix centred_kernel(const VecRef& d, Index n) {
  Matrix G = square_from_upper(d, n);
  G *= -0.5;
  double_centre(G);
  return G;
}

// Packed upper triangle with the diagonal (row-major), off-diagonal times sqrt(2), so
// that dot products equal Frobenius inner products. Index of (a, b), a <= b:
inline Index packed_index(Index a, Index b, Index n) { return a * n - a * (a - 1) / 2 + (b - a); }
inline Vector pack_symmetric(const Matrix& G) {
  const Index n = G.rows();
  Vector v(n * (n + 1) / 2);
  const double r2 = std::sqrt(2.0);
  for (Index a = 0; a < n; ++a)
    for (Index b = a; b < n; ++b) v(packed_index(a, b, n)) = (a == b ? 1.0 : r2) * G(a, b);
  return v;
}

// Prepared vector u(d) such that sim(d1, d2) = u(d1) . u(d2) for the linear methods.
inline Vector prepare(const VecRef& d, Compare method, Index n_cond) {
  const Index m = d.size();
  Vector u;
  switch (method) {
    case Compare::pearson:
      u = d.array() - d.mean();
      break;
    case Compare::spearman:
      u = rank_average(d);
      u.array() -= u.mean();
      break;
    case Compare::cosine:
      u = d;
      break;
    case Compare::rho_a: {
      u = rank_average(d);
      u.array() -= u.mean();
      const double md = static_cast<double>(m);
      return u * std::sqrt(12.0 / (md * md * md - md));
    }
    case Compare::cosine_cov:
      u = pack_symmetric(centred_kernel(d, n_cond));
      break;
    case Compare::corr_cov: {
      Vector dc = d.array() - d.mean();
      u = pack_symmetric(centred_kernel(dc, n_cond));
      break;
    }
    default:
      throw invalid_input("prepare: not a linear comparison method");
  }
  const double nrm = u.norm();
  if (!(nrm > 0)) return Vector::Constant(u.size(), std::numeric_limits<double>::quiet_NaN());
  return u / nrm;
}

// ---- Kendall tau-a -------------------------------------------------------------------

namespace detail {
// Counts strict inversions (i < j, y_i > y_j) of y by merge sort; y is sorted on return.
inline long long count_inversions(double* y, double* buf, Index m) {
  long long inv = 0;
  for (Index width = 1; width < m; width *= 2) {
    for (Index lo = 0; lo < m; lo += 2 * width) {
      const Index mid = std::min(lo + width, m), hi = std::min(lo + 2 * width, m);
      Index i = lo, j = mid, k = lo;
      while (i < mid && j < hi) {
        if (y[j] < y[i]) {
          inv += mid - i;
          buf[k++] = y[j++];
        } else {
          buf[k++] = y[i++];
        }
      }
      while (i < mid) buf[k++] = y[i++];
      while (j < hi) buf[k++] = y[j++];
    }
    std::copy(buf, buf + m, y);
  }
  return inv;
}

inline long long tied_pairs_sorted(const double* v, Index m) {
  long long t = 0;
  Index i = 0;
  while (i < m) {
    Index j = i + 1;
    while (j < m && v[j] == v[i]) ++j;
    const long long c = j - i;
    t += c * (c - 1) / 2;
    i = j;
  }
  return t;
}
}  // namespace detail

// One side (x) sorted once; tau-a against any y (e.g. permutations of a model RDM).
class KendallFixed {
 public:
  explicit KendallFixed(const VecRef& x) : m_(x.size()) {
    order_.resize(static_cast<std::size_t>(m_));
    std::iota(order_.begin(), order_.end(), Index(0));
    std::stable_sort(order_.begin(), order_.end(), [&](Index a, Index b) { return x(a) < x(b); });
    Index i = 0;
    while (i < m_) {
      Index j = i + 1;
      while (j < m_ && x(order_[j]) == x(order_[i])) ++j;
      if (j - i > 1) blocks_.push_back({i, j});
      const long long c = j - i;
      n1_ += c * (c - 1) / 2;
      i = j;
    }
  }
  const std::vector<Index>& order() const { return order_; }
  // y_sorted: y in x-order (y_sorted[t] = y[order()[t]]); overwritten. buf: m doubles.
  double tau(double* y_sorted, double* buf, long long n2) const {
    long long n3 = 0;
    for (const auto& b : blocks_) {
      std::sort(y_sorted + b.first, y_sorted + b.second);
      n3 += detail::tied_pairs_sorted(y_sorted + b.first, b.second - b.first);
    }
    const long long swaps = detail::count_inversions(y_sorted, buf, m_);
    const double n0 = 0.5 * static_cast<double>(m_) * static_cast<double>(m_ - 1);
    const double s = n0 - static_cast<double>(n1_) - static_cast<double>(n2) + static_cast<double>(n3) -
                     2.0 * static_cast<double>(swaps);
    return s / n0;
  }
  Index size() const { return m_; }

 private:
  Index m_;
  std::vector<Index> order_;
  std::vector<std::pair<Index, Index>> blocks_;
  long long n1_ = 0;
};

inline long long tied_pairs(const VecRef& y) {
  std::vector<double> v(y.data(), y.data() + y.size());
  std::sort(v.begin(), v.end());
  return detail::tied_pairs_sorted(v.data(), y.size());
}

inline double kendall_tau_a(const VecRef& x, const VecRef& y) {
  const Index m = x.size();
  if (m < 2) return std::numeric_limits<double>::quiet_NaN();
  KendallFixed kx(x);
  std::vector<double> ys(static_cast<std::size_t>(m)), buf(static_cast<std::size_t>(m));
  for (Index t = 0; t < m; ++t) ys[t] = y(kx.order()[t]);
  return kx.tau(ys.data(), buf.data(), tied_pairs(y));
}

// ---- Bures ---------------------------------------------------------------------------

struct BuresSide {
  Matrix sqrt_a;  // A^1/2
  double trace = 0;
};
inline BuresSide bures_side(const VecRef& d, Index n) {
  const Matrix A = centred_kernel(d, n);
  BuresSide s;
  s.sqrt_a = psd_sqrt(A);
  s.trace = A.trace();
  return s;
}
inline double bures_similarity(const BuresSide& a, const Matrix& B, double trace_b) {
  const Matrix M = a.sqrt_a * B * a.sqrt_a;
  const Vector ev = sym_eigen(0.5 * (M + M.transpose()), false).values;
  const double fid = ev.cwiseMax(0.0).cwiseSqrt().sum();
  const double den = std::sqrt(a.trace * trace_b);
  if (!(den > 0)) return std::numeric_limits<double>::quiet_NaN();
  return fid / den;
}

// ---- all pairs -----------------------------------------------------------------------

// Similarities of every row of A (k x m) with every row of B (l x m): k x l.
inline Matrix compare_matrix(const MatRef& A, const MatRef& B, Compare method, Index n_cond,
                             const Exec& ex) {
  const Index k = A.rows(), l = B.rows();
  if (A.cols() != B.cols()) throw invalid_input("compare: RDMs have different numbers of pairs");
  Matrix out(k, l);
  if (is_linear(method)) {
    const Index mp = uses_matrix(method) ? n_cond * (n_cond + 1) / 2 : A.cols();
    Matrix UA(mp, k), UB(mp, l);
#pragma omp parallel for num_threads(omp_threads(ex.threads)) schedule(dynamic)
    for (Index i = 0; i < k + l; ++i) {
      if (i < k) UA.col(i) = prepare(A.row(i).transpose(), method, n_cond);
      else UB.col(i - k) = prepare(B.row(i - k).transpose(), method, n_cond);
    }
    if (ex.nested) out.noalias() = UA.transpose().lazyProduct(UB);  // no BLAS inside threads
    else out.noalias() = UA.transpose() * UB;
    return out;
  }
  if (method == Compare::kendall_tau_a) {
    std::vector<KendallFixed> fx;
    fx.reserve(static_cast<std::size_t>(k));
    for (Index i = 0; i < k; ++i) fx.emplace_back(A.row(i).transpose());
    std::vector<long long> n2(static_cast<std::size_t>(l));
    for (Index j = 0; j < l; ++j) n2[j] = tied_pairs(B.row(j).transpose());
    const Index m = A.cols();
#pragma omp parallel num_threads(omp_threads(ex.threads))
    {
      std::vector<double> ys(static_cast<std::size_t>(m)), buf(static_cast<std::size_t>(m));
#pragma omp for schedule(dynamic) collapse(2)
      for (Index i = 0; i < k; ++i)
        for (Index j = 0; j < l; ++j) {
          const auto& ord = fx[static_cast<std::size_t>(i)].order();
          for (Index t = 0; t < m; ++t) ys[t] = B(j, ord[t]);
          out(i, j) = fx[static_cast<std::size_t>(i)].tau(ys.data(), buf.data(), n2[j]);
        }
    }
    return out;
  }
  // bures
  std::vector<BuresSide> sa(static_cast<std::size_t>(k));
  std::vector<Matrix> gb(static_cast<std::size_t>(l));
  std::vector<double> tb(static_cast<std::size_t>(l));
  for (Index i = 0; i < k; ++i) sa[i] = bures_side(A.row(i).transpose(), n_cond);
  for (Index j = 0; j < l; ++j) {
    gb[j] = centred_kernel(B.row(j).transpose(), n_cond);
    tb[j] = gb[j].trace();
  }
  for (Index i = 0; i < k; ++i) {
    for (Index j = 0; j < l; ++j) out(i, j) = bures_similarity(sa[i], gb[j], tb[j]);
    ex.check();
  }
  return out;
}

}  // namespace tensorscope
