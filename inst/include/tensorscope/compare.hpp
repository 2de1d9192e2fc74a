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
//   riemannian            rsatoolbox's neg_riem_dist (see riemannian_matrix below).
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

// ---- ranks and Kendall tau-a on integer codes ------------------------------------------
//
// Values are replaced once by dense integer codes (equal values share a code, order is
// kept). Anything that only depends on order -- ranks of any subset, tau-a of any
// gathered sub-vector or permutation -- is then computed with counting sorts and a
// Fenwick tree instead of comparison sorts.

struct Codes {
  std::vector<std::int32_t> code;
  std::int32_t levels = 0;
};

inline Codes dense_codes(const VecRef& x) {
  const Index m = x.size();
  // (value, position) pairs sorted in place: contiguous, no indirect comparisons
  std::vector<std::pair<double, std::int32_t>> v(static_cast<std::size_t>(m));
  for (Index t = 0; t < m; ++t) v[static_cast<std::size_t>(t)] = {x(t), static_cast<std::int32_t>(t)};
  std::sort(v.begin(), v.end());
  Codes c;
  c.code.resize(static_cast<std::size_t>(m));
  std::int32_t level = -1;
  for (Index t = 0; t < m; ++t) {
    if (t == 0 || v[static_cast<std::size_t>(t)].first != v[static_cast<std::size_t>(t - 1)].first) ++level;
    c.code[static_cast<std::size_t>(v[static_cast<std::size_t>(t)].second)] = level;
  }
  c.levels = level + 1;
  return c;
}

// Average ranks (1-based) of a code vector by counting. count: >= levels entries.
inline void ranks_from_codes(const std::int32_t* c, Index m, std::int32_t levels, double* out,
                             std::vector<double>& count) {
  count.assign(static_cast<std::size_t>(levels), 0.0);
  for (Index t = 0; t < m; ++t) count[static_cast<std::size_t>(c[t])] += 1.0;
  double below = 0;
  for (std::int32_t l = 0; l < levels; ++l) {
    const double k = count[static_cast<std::size_t>(l)];
    count[static_cast<std::size_t>(l)] = below + 0.5 * (k + 1.0);  // average rank of the tie group
    below += k;
  }
  for (Index t = 0; t < m; ++t) out[t] = count[static_cast<std::size_t>(c[t])];
}

inline Vector rank_average(const VecRef& x) {
  const Codes c = dense_codes(x);
  Vector r(x.size());
  std::vector<double> ws;
  ranks_from_codes(c.code.data(), x.size(), c.levels, r.data(), ws);
  return r;
}

namespace detail {
inline long long pairs_of(long long c) { return c * (c - 1) / 2; }

// Strict inversions (i < j, y_i > y_j) of integer codes in [0, levels), Fenwick tree.
inline long long inversions(const std::int32_t* y, Index m, std::int32_t levels, std::vector<std::int32_t>& tree) {
  tree.assign(static_cast<std::size_t>(levels) + 1, 0);
  long long inv = 0;
  for (Index t = 0; t < m; ++t) {
    long long le = 0;  // earlier elements <= y_t
    for (std::int32_t i = y[t] + 1; i > 0; i -= i & (-i)) le += tree[static_cast<std::size_t>(i)];
    inv += t - le;
    for (std::int32_t i = y[t] + 1; i <= levels; i += i & (-i)) ++tree[static_cast<std::size_t>(i)];
  }
  return inv;
}

inline long long tied_pairs_codes(const std::int32_t* c, Index m, std::int32_t levels, std::vector<std::int32_t>& cnt) {
  cnt.assign(static_cast<std::size_t>(levels), 0);
  for (Index t = 0; t < m; ++t) ++cnt[static_cast<std::size_t>(c[t])];
  long long s = 0;
  for (auto k : cnt) s += pairs_of(k);
  return s;
}
}  // namespace detail

// Scratch space for tau-a computations (one per thread).
struct TauWork {
  std::vector<std::int32_t> a, b, tree, cnt;
  std::vector<Index> ord, tmp;
};

// Kendall tau-a of two code vectors (Knight 1966): order by (x, y) with two stable
// counting sorts, then S = n0 - n1 - n2 + n3 - 2 * (strict inversions of y).
inline double tau_a_codes(const std::int32_t* x, std::int32_t ux, const std::int32_t* y, std::int32_t uy,
                          Index m, TauWork& w) {
  if (m < 2) return std::numeric_limits<double>::quiet_NaN();
  auto counting = [&](const std::int32_t* key, std::int32_t levels, const std::vector<Index>& in,
                      std::vector<Index>& out) {
    w.cnt.assign(static_cast<std::size_t>(levels) + 1, 0);
    for (Index t = 0; t < m; ++t) ++w.cnt[static_cast<std::size_t>(key[in[t]]) + 1];
    for (std::int32_t l = 0; l < levels; ++l) w.cnt[l + 1] += w.cnt[l];
    out.resize(static_cast<std::size_t>(m));
    for (Index t = 0; t < m; ++t) out[static_cast<std::size_t>(w.cnt[static_cast<std::size_t>(key[in[t]])]++)] = in[t];
  };
  w.ord.resize(static_cast<std::size_t>(m));
  std::iota(w.ord.begin(), w.ord.end(), Index(0));
  counting(y, uy, w.ord, w.tmp);   // by y
  counting(x, ux, w.tmp, w.ord);   // stable by x: lexicographic (x, y)
  w.a.resize(static_cast<std::size_t>(m));
  long long n1 = 0, n3 = 0;
  Index i = 0;
  while (i < m) {
    Index j = i + 1;
    while (j < m && x[w.ord[j]] == x[w.ord[i]]) ++j;
    n1 += detail::pairs_of(j - i);
    Index r = i;
    while (r < j) {
      Index q = r + 1;
      while (q < j && y[w.ord[q]] == y[w.ord[r]]) ++q;
      n3 += detail::pairs_of(q - r);
      r = q;
    }
    i = j;
  }
  for (Index t = 0; t < m; ++t) w.a[t] = y[w.ord[t]];
  const long long n2 = detail::tied_pairs_codes(y, m, uy, w.cnt);
  const long long inv = detail::inversions(w.a.data(), m, uy, w.tree);
  const double n0 = 0.5 * static_cast<double>(m) * static_cast<double>(m - 1);
  return (n0 - static_cast<double>(n1) - static_cast<double>(n2) + static_cast<double>(n3) -
          2.0 * static_cast<double>(inv)) / n0;
}

inline double kendall_tau_a(const VecRef& x, const VecRef& y) {
  const Codes cx = dense_codes(x), cy = dense_codes(y);
  TauWork w;
  return tau_a_codes(cx.code.data(), cx.levels, cy.code.data(), cy.levels, x.size(), w);
}

// One side (x) sorted once; tau-a against many y given in x-order (permutation tests).
class KendallFixed {
 public:
  explicit KendallFixed(const VecRef& x) : m_(x.size()) {
    const Codes c = dense_codes(x);
    order_.resize(static_cast<std::size_t>(m_));
    std::iota(order_.begin(), order_.end(), Index(0));
    std::stable_sort(order_.begin(), order_.end(),
                     [&](Index a, Index b) { return c.code[static_cast<std::size_t>(a)] < c.code[static_cast<std::size_t>(b)]; });
    Index i = 0;
    while (i < m_) {
      Index j = i + 1;
      while (j < m_ && c.code[static_cast<std::size_t>(order_[j])] == c.code[static_cast<std::size_t>(order_[i])]) ++j;
      if (j - i > 1) blocks_.push_back({i, j});
      n1_ += detail::pairs_of(j - i);
      i = j;
    }
  }
  const std::vector<Index>& order() const { return order_; }
  // y: codes in x-order (overwritten), uy levels, n2 = tied pairs of y.
  double tau(std::int32_t* y, std::int32_t uy, long long n2, TauWork& w) const {
    long long n3 = 0;
    for (const auto& b : blocks_) {
      std::sort(y + b.first, y + b.second);
      Index r = b.first;
      while (r < b.second) {
        Index q = r + 1;
        while (q < b.second && y[q] == y[r]) ++q;
        n3 += detail::pairs_of(q - r);
        r = q;
      }
    }
    const long long inv = detail::inversions(y, m_, uy, w.tree);
    const double n0 = 0.5 * static_cast<double>(m_) * static_cast<double>(m_ - 1);
    return (n0 - static_cast<double>(n1_) - static_cast<double>(n2) + static_cast<double>(n3) -
            2.0 * static_cast<double>(inv)) / n0;
  }

 private:
  Index m_;
  std::vector<Index> order_;
  std::vector<std::pair<Index, Index>> blocks_;
  long long n1_ = 0;
};

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
      throw ts_error(ErrorKind::argument, "prepare: not a linear comparison method");
  }
  const double nrm = u.norm();
  if (!(nrm > 0)) return Vector::Constant(u.size(), std::numeric_limits<double>::quiet_NaN());
  return u / nrm;
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
  // eigenvalues within rounding of 0 (the rank deficit of a centred kernel) would add
  // sqrt(eps)-sized noise: treat them as 0, like the negative ones
  const double tol = std::max(ev.cwiseAbs().maxCoeff(), 0.0) * static_cast<double>(ev.size()) *
                     std::numeric_limits<double>::epsilon();
  double fid = 0;
  for (Index i = 0; i < ev.size(); ++i)
    if (ev(i) > tol) fid += std::sqrt(ev(i));
  const double den = std::sqrt(a.trace * trace_b);
  if (!(den > 0)) return std::numeric_limits<double>::quiet_NaN();
  return fid / den;
}

// ---- Riemannian (rsatoolbox's neg_riem_dist, Shahbazi et al. 2021) ------------------
//
// Each RDM becomes the second moment relative to condition 1, G_ij = (d_1i + d_1j - d_ij) / 2
// over conditions 2..n ((n-1) x (n-1); rsatoolbox's T transform), and the prior
// Sigma^ = P Sigma_k P^T = I + 1 1^T (Sigma_k = I, P = [-1 | I]). rsatoolbox minimises
//   f(t0, t1) = || log eig(e^t0 G_a + e^t1 Sigma^, G_b) ||_2
// (generalised eigenvalues) with Nelder-Mead from (0, 0) and returns -min f. Since
// log eig(e^t0 (G_a + e^u Sigma^)) = t0 + log eig(G_a + e^u Sigma^), u = t1 - t0, the
// best t0 centres the log-eigenvalues and the problem is one-dimensional in u:
//   f*(u) = || l - mean(l) ||, l = log eig(C_a + e^u S),  C_a = L^-1 G_a L^-T,
//   S = L^-1 Sigma^ L^-T, G_b = L L^T,
// minimised here by a grid over u, a golden-section refinement, and the two limits
// u -> -inf (C_a alone, when positive definite) and u -> +inf (S alone). G_b must be
// positive definite (an RDM of conditions spanning n - 1 dimensions); G_a need not be.
inline Matrix second_moment_ref1(const VecRef& d, Index n) {
  const Matrix D = square_from_upper(d, n);
  Matrix G(n - 1, n - 1);
  for (Index j = 1; j < n; ++j)
    for (Index i = 1; i < n; ++i) G(i - 1, j - 1) = 0.5 * (D(0, i) + D(0, j) - D(i, j));
  return G;
}

// Spread of the log eigenvalues, or +inf when one is not positive.
inline double log_spread(const Matrix& M) {
  const Vector ev = sym_eigen(0.5 * (M + M.transpose()), false).values;
  const Index m = ev.size();
  if (m == 0) return 0.0;
  if (!(ev(0) > 0)) return std::numeric_limits<double>::infinity();
  const Vector l = ev.array().log();
  return std::sqrt((l.array() - l.mean()).square().sum());
}

// Whitened side b: L^-1 from G_b = L L^T; `ok` false when G_b is not positive definite.
struct RiemannSide {
  Matrix linv;    // L^-1
  Matrix S;       // L^-1 Sigma^ L^-T
  bool ok = false;
  Index rank = 0; // numerical rank of G_b
};

inline RiemannSide riemann_side(const VecRef& d, Index n) {
  RiemannSide r;
  const Matrix G = second_moment_ref1(d, n);
  const Vector ev = sym_eigen(G, false).values;
  const double top = ev.size() ? ev.cwiseAbs().maxCoeff() : 0.0;
  const double tol = top * static_cast<double>(n) * 1e3 * std::numeric_limits<double>::epsilon();
  for (Index i = 0; i < ev.size(); ++i) r.rank += ev(i) > tol;
  if (r.rank < n - 1) return r;
  Eigen::LLT<Matrix> llt(G);
  if (llt.info() != Eigen::Success) return r;
  r.linv = llt.matrixL().solve(Matrix::Identity(n - 1, n - 1));
  const Matrix sig = Matrix::Identity(n - 1, n - 1) + Matrix::Ones(n - 1, n - 1);
  r.S = r.linv * sig * r.linv.transpose();
  r.ok = true;
  return r;
}

inline double riemannian_neg_distance(const Matrix& Ga, const RiemannSide& b) {
  const Matrix C = b.linv * Ga * b.linv.transpose();
  auto f = [&](double u) { return log_spread(C + std::exp(u) * b.S); };
  double best = std::min(log_spread(C), log_spread(b.S));  // the two limits
  // grid around the scale where C and e^u S are comparable
  const double cn = sym_eigen(0.5 * (C + C.transpose()), false).values.cwiseAbs().maxCoeff();
  const double sn = sym_eigen(b.S, false).values.maxCoeff();
  const double c = std::log(std::max(cn, 1e-300) / sn);
  const double step = 0.5, half = 30.0;
  double bu = c, bf = std::numeric_limits<double>::infinity();
  for (double u = c - half; u <= c + half + 1e-9; u += step) {
    const double v = f(u);
    if (v < bf) {
      bf = v;
      bu = u;
    }
  }
  if (std::isfinite(bf)) {
    // golden section on [bu - step, bu + step]
    const double g = 0.5 * (std::sqrt(5.0) - 1.0);
    double lo = bu - step, hi = bu + step;
    double x1 = hi - g * (hi - lo), x2 = lo + g * (hi - lo);
    double f1 = f(x1), f2 = f(x2);
    for (int it = 0; it < 80 && hi - lo > 1e-12; ++it) {
      if (f1 < f2) {
        hi = x2; x2 = x1; f2 = f1; x1 = hi - g * (hi - lo); f1 = f(x1);
      } else {
        lo = x1; x1 = x2; f1 = f2; x2 = lo + g * (hi - lo); f2 = f(x2);
      }
    }
    best = std::min({best, bf, f1, f2});
  }
  return -best;
}

// Every row of A with every row of B (k x l); rank_b: numerical rank of each G_b
// (entries of B whose G_b is singular give NaN; the R layer reports them).
inline Matrix riemannian_matrix(const MatRef& A, const MatRef& B, Index n_cond, std::vector<Index>& rank_b,
                                const Exec& ex) {
  if (A.cols() != B.cols()) throw ts_error(ErrorKind::mismatch, "compare: RDMs have different numbers of pairs");
  if (n_cond < 3) throw ts_error(ErrorKind::too_few, "riemannian: needs at least 3 conditions");
  const Index k = A.rows(), l = B.rows();
  Matrix out(k, l);
  std::vector<Matrix> ga(static_cast<std::size_t>(k));
  for (Index i = 0; i < k; ++i) ga[i] = second_moment_ref1(A.row(i).transpose(), n_cond);
  rank_b.assign(static_cast<std::size_t>(l), 0);
  for (Index j = 0; j < l; ++j) {
    const RiemannSide sb = riemann_side(B.row(j).transpose(), n_cond);
    rank_b[static_cast<std::size_t>(j)] = sb.rank;
    for (Index i = 0; i < k; ++i) {
      out(i, j) = sb.ok ? riemannian_neg_distance(ga[i], sb) : std::numeric_limits<double>::quiet_NaN();
      ex.check();
    }
  }
  return out;
}

// ---- all pairs -----------------------------------------------------------------------

// Similarities of every row of A (k x m) with every row of B (l x m): k x l.
inline Matrix compare_matrix(const MatRef& A, const MatRef& B, Compare method, Index n_cond,
                             const Exec& ex) {
  const Index k = A.rows(), l = B.rows();
  if (A.cols() != B.cols()) throw ts_error(ErrorKind::mismatch, "compare: RDMs have different numbers of pairs");
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
    std::vector<Codes> ca(static_cast<std::size_t>(k)), cb(static_cast<std::size_t>(l));
    // the sorts that make the codes dominate a single comparison: one per thread
#pragma omp parallel for num_threads(omp_threads(ex.threads)) schedule(dynamic)
    for (Index v = 0; v < k + l; ++v) {
      if (v < k) ca[v] = dense_codes(A.row(v).transpose());
      else cb[v - k] = dense_codes(B.row(v - k).transpose());
    }
    const Index m = A.cols();
#pragma omp parallel num_threads(omp_threads(ex.threads))
    {
      TauWork w;
#pragma omp for schedule(dynamic) collapse(2)
      for (Index i = 0; i < k; ++i)
        for (Index j = 0; j < l; ++j)
          out(i, j) = tau_a_codes(ca[i].code.data(), ca[i].levels, cb[j].code.data(), cb[j].levels, m, w);
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
