// Generalized shape metrics (Williams, Kunz, Kornblith & Linderman 2021), with netrep's
// conventions, and the CCA family (mean CCA, SVCCA, PWCCA).
//
// Shape metrics. Each layer X (n x p, stimuli x units) is centred and partially whitened
// once, exactly as netrep's LinearMetric (netrep/utils.py `whiten`,
// preserve_variance = True, eigval_tol = 1e-7):
//   lam, V = eig(Xc^T Xc)  (not divided by n), lam clipped below at tol,
//   d = alpha + (1 - alpha) lam^(-1/2), Z = V diag(d) V^T * c,
//   c^2 = sum(lam) / sum(alpha^2 lam + 2 alpha (1 - alpha) sqrt(lam) + (1 - alpha)^2),
//   and no transform at all when alpha > 1 - tol.
// With the thin SVD Xc = U S V^T this is Xc Z = c U diag(s d) V^T, so each layer is kept
// as W = U diag(s d) (n x r, r = min(n, p)) and the pair only needs the nuclear norm of
// W_a^T W_b (one GEMM, one SVD without vectors): the optimal rotation's inner product.
//   angular   = arccos(||W_a^T W_b||_* / (||W_a||_F ||W_b||_F))
//   euclidean = sqrt(c_a^2 ||W_a||^2 + c_b^2 ||W_b||^2 - 2 c_a c_b ||W_a^T W_b||_*)
// Zero padding of the narrower layer to the wider width P changes only c (the padded
// eigenvalues are 0, clipped to tol, and enter both sums), so c is formed per pair.
//
// Cross-validated form: the means, whitening and rotation come from the training
// stimuli; the score is evaluated on the test stimuli (netrep: fit(X_train, Y_train) then
// score(X_test, Y_test)). The rotation is restricted to the span of the training data
// (netrep's full SVD completes it arbitrarily where singular values are zero).
#pragma once

#include "common.hpp"
#include "linalg.hpp"

#include <cmath>

namespace tensorscope {

enum class ShapeScore { angular, euclidean };

struct ShapeOptions {
  double alpha = 1.0;   // 1: rotations only (Procrustes); 0: any invertible map (CCA)
  ShapeScore score = ShapeScore::angular;
  bool centre = true;   // netrep's center_columns
  double tol = 1e-7;    // netrep's eigval_tol
};

// What the score needs of a prepared layer besides its data.
struct ShapeStats {
  Index p = 0;          // units (before padding)
  bool identity = true; // alpha > 1 - tol: no whitening, c = 1
  double sumsq = 0;     // ||W||_F^2
  double sum_lam = 0;   // sum of the clipped eigenvalues over the p own dimensions
  double new_var = 0;   // netrep's variance of the whitened layer over the p own dimensions
};

// One layer, prepared once for all its pairs.
struct ShapeLayer : ShapeStats {
  Matrix W;             // training stimuli x r: the whitened layer in its own basis (unscaled)
  // cross-validation only
  Matrix V;             // p x r right singular vectors of the centred training layer
  Matrix E;             // test stimuli x r: (X_test - mean) V diag(d)
  double test_sq = 0;   // ||(X_test - mean) Z||_F^2 (unscaled)
};

namespace detail {
inline double shape_g(double lam, double a) {
  return a * a * lam + 2.0 * a * (1.0 - a) * std::sqrt(lam) + (1.0 - a) * (1.0 - a);
}
}  // namespace detail

// The whitening weights d (one per singular value s of the centred layer, p units) and
// the layer's statistics (sum_lam, new_var) in L. Shared with the LibTorch policy.
inline Vector shape_weights(const Vector& s, Index p, const ShapeOptions& o, ShapeStats& L) {
  const Index r = s.size();
  Vector d(r);
  double sum_lam = 0, new_var = 0;
  for (Index i = 0; i < r; ++i) {
    const double lam = std::max(s(i) * s(i), o.tol);
    d(i) = L.identity ? 1.0 : o.alpha + (1.0 - o.alpha) / std::sqrt(lam);
    sum_lam += lam;
    new_var += detail::shape_g(lam, o.alpha);
  }
  sum_lam += static_cast<double>(p - r) * o.tol;
  new_var += static_cast<double>(p - r) * detail::shape_g(o.tol, o.alpha);
  L.sum_lam = sum_lam;
  L.new_var = new_var;
  return d;
}

// train / test: row indices of X (test empty: in-sample).
inline ShapeLayer shape_prepare(const MatRef& X, const ShapeOptions& o, const std::vector<Index>& train,
                                const std::vector<Index>& test) {
  ShapeLayer L;
  L.p = X.cols();
  const bool cv = !test.empty();
  Matrix Xt;
  if (train.empty()) {
    Xt = X;
  } else {
    Xt.resize(static_cast<Index>(train.size()), X.cols());
    for (std::size_t i = 0; i < train.size(); ++i) Xt.row(static_cast<Index>(i)) = X.row(train[i]);
  }
  Eigen::RowVectorXd mean = Eigen::RowVectorXd::Zero(X.cols());
  if (o.centre) {
    mean = Xt.colwise().mean();
    Xt.rowwise() -= mean;
  }
  L.identity = o.alpha > 1.0 - o.tol;
  const Index n = Xt.rows(), p = L.p;
  if (L.identity && !cv && p <= n) {
    // rotations only: the centred layer itself (its cross products have the same
    // nuclear norm as the compact form)
    L.W = std::move(Xt);
    L.sumsq = L.W.squaredNorm();
    return L;
  }
  Svd sv = svd_thin(Xt);
  const Index r = sv.s.size();
  const Vector d = shape_weights(sv.s, p, o, L);
  L.W = sv.U * (sv.s.cwiseProduct(d)).asDiagonal();
  L.sumsq = L.W.squaredNorm();
  if (cv) {
    Matrix Xs(static_cast<Index>(test.size()), X.cols());
    for (std::size_t i = 0; i < test.size(); ++i) Xs.row(static_cast<Index>(i)) = X.row(test[i]);
    Xs.rowwise() -= mean;
    const Matrix G = Xs * sv.V;  // components in the training span
    const double d0 = L.identity ? 1.0 : o.alpha + (1.0 - o.alpha) / std::sqrt(o.tol);
    L.E = G * d.asDiagonal();
    // the part outside the training span, formed directly (a difference of norms would
    // lose it to cancellation, and d0 can be ~3000)
    const double rest = r < L.p ? (Xs - G * sv.V.transpose()).squaredNorm() : 0.0;
    L.test_sq = L.E.squaredNorm() + d0 * d0 * rest;
    L.V = std::move(sv.V);
  }
  return L;
}

// netrep's variance-preserving scale of a layer padded to P units.
inline double shape_scale(const ShapeStats& L, Index P, const ShapeOptions& o) {
  if (L.identity) return 1.0;
  const double pad = static_cast<double>(P - L.p);
  return std::sqrt((L.sum_lam + pad * o.tol) / (L.new_var + pad * detail::shape_g(o.tol, o.alpha)));
}

inline double shape_score(double inner, double sa, double sb, double ca, double cb, const ShapeOptions& o) {
  if (o.score == ShapeScore::angular) {
    const double den = std::sqrt(sa) * std::sqrt(sb);
    if (!(den > 0)) return std::numeric_limits<double>::quiet_NaN();
    return std::acos(std::max(-1.0, std::min(1.0, inner / den)));
  }
  return std::sqrt(std::max(0.0, ca * ca * sa + cb * cb * sb - 2.0 * ca * cb * inner));
}

// The in-sample score of a pair from the nuclear norm of W_a^T W_b.
inline double shape_pair_score(const ShapeStats& a, const ShapeStats& b, double nuclear, const ShapeOptions& o) {
  const Index P = std::max(a.p, b.p);
  return shape_score(nuclear, a.sumsq, b.sumsq, shape_scale(a, P, o), shape_scale(b, P, o), o);
}

inline double shape_pair(const ShapeLayer& a, const ShapeLayer& b, const ShapeOptions& o) {
  const Matrix M = a.W.transpose() * b.W;
  if (a.V.size() == 0) return shape_pair_score(a, b, singular_values(M).sum(), o);
  const Index P = std::max(a.p, b.p);
  const double ca = shape_scale(a, P, o), cb = shape_scale(b, P, o);
  // cross-validated: rotation from the training data, inner product on the test data
  Svd sv = svd_thin(M);
  const double inner = (a.E * sv.U).cwiseProduct(b.E * sv.V).sum();
  return shape_score(inner, a.test_sq, b.test_sq, ca, cb, o);
}

// The dense work of shape_matrix() on Eigen + BLAS/LAPACK, as the policy
// shape_matrix_with() runs (the LibTorch one: src/torch/shape.h). A policy prepares a
// layer (Prepared) and scores a pair of prepared layers.
struct EigenShape {
  using Layer = MatRef;
  using Prepared = ShapeLayer;
  const std::vector<Index>& train;
  const std::vector<Index>& test;
  Prepared prepare(const Layer& x, const ShapeOptions& o) const { return shape_prepare(x, o, train, test); }
  double pair(const Prepared& a, const Prepared& b, const ShapeOptions& o) const { return shape_pair(a, b, o); }
};

// All pairs: xs with ys, or xs with itself when ys is empty (diagonal 0 in-sample).
template <class B>
inline Matrix shape_matrix_with(const std::vector<typename B::Layer>& xs, const std::vector<typename B::Layer>& ys,
                                const ShapeOptions& o, bool in_sample, const Exec& ex, const B& backend) {
  const bool within = ys.empty();
  if (xs.empty()) throw ts_error(ErrorKind::empty, "shape: no layers");
  std::vector<typename B::Prepared> a, b;
  for (const auto& x : xs) {
    a.push_back(backend.prepare(x, o));
    ex.check();
  }
  for (const auto& y : ys) {
    b.push_back(backend.prepare(y, o));
    ex.check();
  }
  const std::vector<typename B::Prepared>& bb = within ? a : b;
  const std::size_t lx = a.size(), ly = bb.size();
  Matrix out(static_cast<Index>(lx), static_cast<Index>(ly));
  for (std::size_t i = 0; i < lx; ++i) {
    for (std::size_t j = within ? i : 0; j < ly; ++j) {
      double v;
      if (within && i == j && in_sample) v = 0.0;
      else v = backend.pair(a[i], bb[j], o);
      out(static_cast<Index>(i), static_cast<Index>(j)) = v;
      if (within) out(static_cast<Index>(j), static_cast<Index>(i)) = v;
      ex.check();
    }
  }
  return out;
}

inline Matrix shape_matrix(const std::vector<MatRef>& xs, const std::vector<MatRef>& ys, const ShapeOptions& o,
                           const std::vector<Index>& train, const std::vector<Index>& test, const Exec& ex) {
  return shape_matrix_with(xs, ys, o, test.empty(), ex, EigenShape{train, test});
}

// ---- Soft matching (Khosla & Williams 2023) ---------------------------------------------
//
// Optimal transport between the units of X (n x Nx) and Y (n x Ny) with uniform masses
// 1/Nx and 1/Ny and cost C_ij = ||x_i - y_j||^2 (tuning over stimuli):
//   d(X, Y)^2 = min_{P >= 0, P 1 = 1/Nx, P^T 1 = 1/Ny} sum_ij P_ij C_ij.
// Scaled by Nx Ny / g (g = gcd) the masses become the integers Ny/g and Nx/g, and the
// transportation problem is solved exactly by successive shortest paths with
// potentials (Dijkstra on the dense residual graph); integral supplies give an
// integral optimal flow, so for Nx = Ny this is the optimal assignment (a permutation).
struct TransportResult {
  double cost = 0;   // sum_ij P_ij C_ij
  Matrix plan;       // P (Nx x Ny), rows sum to 1/Nx, columns to 1/Ny
};

inline TransportResult transport_uniform(const MatRef& C, const Exec& ex) {
  const Index nx = C.rows(), ny = C.cols();
  if (nx == 0 || ny == 0) throw ts_error(ErrorKind::empty, "transport: empty cost matrix");
  long long a = nx, b = ny;
  while (b) { const long long t = a % b; a = b; b = t; }
  const long long g = a;
  std::vector<long long> supply(static_cast<std::size_t>(nx), ny / g), demand(static_cast<std::size_t>(ny), nx / g);
  long long left = static_cast<long long>(nx) * (ny / g);
  Eigen::Matrix<long long, Eigen::Dynamic, Eigen::Dynamic> F =
      Eigen::Matrix<long long, Eigen::Dynamic, Eigen::Dynamic>::Zero(nx, ny);
  Vector hx = Vector::Zero(nx), hy = Vector::Zero(ny);  // potentials
  const double inf = std::numeric_limits<double>::infinity();
  Vector dx(nx), dy(ny);
  std::vector<Index> prev_y(static_cast<std::size_t>(ny)), prev_x(static_cast<std::size_t>(nx));
  std::vector<char> done_x(static_cast<std::size_t>(nx)), done_y(static_cast<std::size_t>(ny));
  int iter = 0;
  while (left > 0) {
    if (++iter % 64 == 0) ex.check();
    // Dijkstra with reduced costs from the super source (edges to x with supply left)
    for (Index i = 0; i < nx; ++i) {
      dx(i) = supply[static_cast<std::size_t>(i)] > 0 ? 0.0 : inf;
      prev_x[static_cast<std::size_t>(i)] = -1;
      done_x[static_cast<std::size_t>(i)] = 0;
    }
    dy.setConstant(inf);
    std::fill(done_y.begin(), done_y.end(), 0);
    for (;;) {
      double best = inf;
      Index u = -1;
      bool is_x = true;
      for (Index i = 0; i < nx; ++i)
        if (!done_x[static_cast<std::size_t>(i)] && dx(i) < best) { best = dx(i); u = i; is_x = true; }
      for (Index j = 0; j < ny; ++j)
        if (!done_y[static_cast<std::size_t>(j)] && dy(j) < best) { best = dy(j); u = j; is_x = false; }
      if (u < 0) break;
      if (is_x) {
        done_x[static_cast<std::size_t>(u)] = 1;
        for (Index j = 0; j < ny; ++j) {
          if (done_y[static_cast<std::size_t>(j)]) continue;
          const double nd = best + std::max(0.0, C(u, j) + hx(u) - hy(j));
          if (nd < dy(j)) { dy(j) = nd; prev_y[static_cast<std::size_t>(j)] = u; }
        }
      } else {
        done_y[static_cast<std::size_t>(u)] = 1;
        for (Index i = 0; i < nx; ++i) {
          if (done_x[static_cast<std::size_t>(i)] || F(i, u) == 0) continue;
          const double nd = best + std::max(0.0, -C(i, u) + hy(u) - hx(i));
          if (nd < dx(i)) { dx(i) = nd; prev_x[static_cast<std::size_t>(i)] = u; }
        }
      }
    }
    // terminal: the y with demand left on the cheapest path in true costs
    Index t = -1;
    double tbest = inf;
    for (Index j = 0; j < ny; ++j)
      if (demand[static_cast<std::size_t>(j)] > 0 && dy(j) < inf && dy(j) + hy(j) < tbest) { tbest = dy(j) + hy(j); t = j; }
    if (t < 0) throw std::runtime_error("transport: no augmenting path (internal error)");
    // bottleneck along the path
    long long flow = demand[static_cast<std::size_t>(t)];
    Index j = t;
    for (;;) {
      const Index i = prev_y[static_cast<std::size_t>(j)];
      const Index jp = prev_x[static_cast<std::size_t>(i)];
      if (jp < 0) { flow = std::min(flow, supply[static_cast<std::size_t>(i)]); break; }
      flow = std::min(flow, F(i, jp));
      j = jp;
    }
    j = t;
    for (;;) {
      const Index i = prev_y[static_cast<std::size_t>(j)];
      F(i, j) += flow;
      const Index jp = prev_x[static_cast<std::size_t>(i)];
      if (jp < 0) { supply[static_cast<std::size_t>(i)] -= flow; break; }
      F(i, jp) -= flow;
      j = jp;
    }
    demand[static_cast<std::size_t>(t)] -= flow;
    left -= flow;
    // potentials: h += d (unreached nodes: the largest finite distance)
    double dmax = 0;
    for (Index i = 0; i < nx; ++i) if (dx(i) < inf) dmax = std::max(dmax, dx(i));
    for (Index jj = 0; jj < ny; ++jj) if (dy(jj) < inf) dmax = std::max(dmax, dy(jj));
    for (Index i = 0; i < nx; ++i) hx(i) += dx(i) < inf ? dx(i) : dmax;
    for (Index jj = 0; jj < ny; ++jj) hy(jj) += dy(jj) < inf ? dy(jj) : dmax;
  }
  TransportResult r;
  const double total = static_cast<double>(nx) * static_cast<double>(ny / g);
  r.plan = F.cast<double>() / total;
  r.cost = r.plan.cwiseProduct(C).sum();
  return r;
}

// Squared distances between the columns of X and of Y (units' tuning over stimuli).
inline Matrix unit_sq_distances(const MatRef& X, const MatRef& Y) {
  const Vector nx = X.colwise().squaredNorm().transpose(), ny = Y.colwise().squaredNorm().transpose();
  Matrix C = -2.0 * (X.transpose() * Y);
  C.colwise() += nx;
  C.rowwise() += ny.transpose();
  return C.cwiseMax(0.0);
}

inline TransportResult soft_matching(const MatRef& X, const MatRef& Y, bool centre, const Exec& ex) {
  if (X.rows() != Y.rows()) throw ts_error(ErrorKind::mismatch, "soft matching: different numbers of stimuli");
  if (!centre) return transport_uniform(unit_sq_distances(X, Y), ex);
  return transport_uniform(unit_sq_distances(centre_columns(X), centre_columns(Y)), ex);
}

// ---- CCA family --------------------------------------------------------------------------
//
// Each side is centred and reduced to an orthonormal basis Q of its column space from the
// thin SVD (directions with s <= max(n, p) eps s_1 are dropped as rank deficiency). SVCCA
// (Raghu et al. 2017) first keeps the top k directions with cumulative s^2 share >= keep.
// The canonical correlations are the singular values of Qx^T Qy.
//   mean:  sum(rho) / min(kx, ky)
//   pwcca: sum(w rho) / sum(w), w_i = sum_j |<h_i, x_j>| over the centred units x_j of the
//          side with fewer units (x when p <= q), h_i its unit-norm canonical variates
//          (Morcos, Raghu & Bengio 2018).
enum class CcaMethod { mean, svcca, pwcca };

struct CcaBasis {
  Matrix Q;   // n x k orthonormal
  Matrix Xc;  // centred data (kept for PWCCA's weights only)
  Index p = 0;
};

// The number of directions kept from the singular values s (descending) of a centred
// n x p layer: the rank, then SVCCA's truncation. Shared with the LibTorch policy.
inline Index cca_kept(const Vector& s, Index n, Index p, double keep, bool truncate) {
  const Index r = s.size();
  if (r == 0 || !(s(0) > 0)) throw ts_error(ErrorKind::zero_variance, "cca: a layer has zero variance");
  const double tol = static_cast<double>(std::max(n, p)) * 2.220446049250313e-16 * s(0);
  Index k = 0;
  while (k < r && s(k) > tol) ++k;
  if (truncate) {
    const double total = s.head(k).squaredNorm();
    double acc = 0;
    Index kk = 0;
    while (kk < k) {
      acc += s(kk) * s(kk);
      ++kk;
      if (acc >= keep * total) break;
    }
    k = std::max<Index>(1, kk);
  }
  return k;
}

inline CcaBasis cca_basis(const MatRef& X, double keep, bool truncate, bool keep_data) {
  CcaBasis B;
  B.p = X.cols();
  Matrix Xc = centre_columns(X);
  Svd sv = svd_thin(Xc);
  B.Q = sv.U.leftCols(cca_kept(sv.s, X.rows(), X.cols(), keep, truncate));
  if (keep_data) B.Xc = std::move(Xc);
  return B;
}

struct CcaResult {
  double similarity = 0;
  Vector rho;           // canonical correlations, descending
  Index kx = 0, ky = 0; // dimensions kept
};

inline CcaResult cca_pair(const CcaBasis& bx, const CcaBasis& by, CcaMethod m) {
  CcaResult r;
  r.kx = bx.Q.cols();
  r.ky = by.Q.cols();
  const Matrix M = bx.Q.transpose() * by.Q;
  if (m != CcaMethod::pwcca) {
    r.rho = singular_values(M).cwiseMin(1.0);
    r.similarity = r.rho.sum() / static_cast<double>(std::min(r.kx, r.ky));
    return r;
  }
  Svd sv = svd_thin(M);
  r.rho = sv.s.cwiseMin(1.0);
  const bool use_x = bx.p <= by.p;
  const Matrix H = use_x ? Matrix(bx.Q * sv.U) : Matrix(by.Q * sv.V);  // unit-norm canonical variates
  const Matrix& Xc = use_x ? bx.Xc : by.Xc;
  const Vector w = (H.transpose() * Xc).cwiseAbs().rowwise().sum();
  r.similarity = w.dot(r.rho) / w.sum();
  return r;
}

inline CcaResult cca_similarity(const MatRef& X, const MatRef& Y, CcaMethod m, double keep) {
  const bool trunc = m == CcaMethod::svcca, data = m == CcaMethod::pwcca;
  return cca_pair(cca_basis(X, keep, trunc, data), cca_basis(Y, keep, trunc, data), m);
}

// All pairs: xs with ys, or xs with itself when ys is empty. Each layer's basis is formed
// once (one SVD); a pair costs one product and one small SVD. PWCCA is not symmetric:
// every ordered pair is computed.
struct CcaLayers {
  Matrix similarity;
  std::vector<Index> kx, ky;  // dimensions kept per layer
};

// The dense work of cca_matrix() on Eigen + LAPACK (the LibTorch policy: src/torch/shape.h).
struct EigenCca {
  using Layer = MatRef;
  using Basis = CcaBasis;
  Basis basis(const Layer& x, double keep, bool truncate, bool keep_data) const {
    return cca_basis(x, keep, truncate, keep_data);
  }
  static Index kept(const Basis& b) { return b.Q.cols(); }
  double pair(const Basis& a, const Basis& b, CcaMethod m) const { return cca_pair(a, b, m).similarity; }
};

template <class B>
inline CcaLayers cca_matrix_with(const std::vector<typename B::Layer>& xs, const std::vector<typename B::Layer>& ys,
                                 CcaMethod m, double keep, const Exec& ex, const B& backend) {
  const bool within = ys.empty();
  if (xs.empty()) throw ts_error(ErrorKind::empty, "cca: no layers");
  const bool trunc = m == CcaMethod::svcca, data = m == CcaMethod::pwcca;
  std::vector<typename B::Basis> a, b;
  CcaLayers out;
  for (const auto& x : xs) {
    a.push_back(backend.basis(x, keep, trunc, data));
    out.kx.push_back(B::kept(a.back()));
    ex.check();
  }
  for (const auto& y : ys) {
    b.push_back(backend.basis(y, keep, trunc, data));
    out.ky.push_back(B::kept(b.back()));
    ex.check();
  }
  if (within) out.ky = out.kx;
  const std::vector<typename B::Basis>& bb = within ? a : b;
  const Index lx = static_cast<Index>(a.size()), ly = static_cast<Index>(bb.size());
  out.similarity.resize(lx, ly);
  const bool sym = within && m != CcaMethod::pwcca;
  for (Index i = 0; i < lx; ++i) {
    for (Index j = sym ? i : 0; j < ly; ++j) {
      const double v = within && i == j ? 1.0 : backend.pair(a[static_cast<std::size_t>(i)], bb[static_cast<std::size_t>(j)], m);
      out.similarity(i, j) = v;
      if (sym) out.similarity(j, i) = v;
      ex.check();
    }
  }
  return out;
}

inline CcaLayers cca_matrix(const std::vector<MatRef>& xs, const std::vector<MatRef>& ys, CcaMethod m, double keep,
                            const Exec& ex) {
  return cca_matrix_with(xs, ys, m, keep, ex, EigenCca{});
}

// Soft-matching distances of all pairs (xs with ys, or within xs: symmetric, diagonal 0).
inline Matrix soft_matching_matrix(const std::vector<MatRef>& xs, const std::vector<MatRef>& ys, bool centre,
                                   const Exec& ex) {
  const bool within = ys.empty();
  if (xs.empty()) throw ts_error(ErrorKind::empty, "soft matching: no layers");
  auto prep = [&](const std::vector<MatRef>& v) {
    std::vector<Matrix> out;
    for (const auto& x : v) out.push_back(centre ? centre_columns(x) : Matrix(x));
    return out;
  };
  const std::vector<Matrix> a = prep(xs), b = prep(ys);
  const std::vector<Matrix>& bb = within ? a : b;
  const Index lx = static_cast<Index>(a.size()), ly = static_cast<Index>(bb.size());
  Matrix out(lx, ly);
  for (Index i = 0; i < lx; ++i) {
    for (Index j = within ? i : 0; j < ly; ++j) {
      const auto& x = a[static_cast<std::size_t>(i)];
      const auto& y = bb[static_cast<std::size_t>(j)];
      if (x.rows() != y.rows()) throw ts_error(ErrorKind::mismatch, "soft matching: different numbers of stimuli");
      const double v = within && i == j ? 0.0 : std::sqrt(transport_uniform(unit_sq_distances(x, y), ex).cost);
      out(i, j) = v;
      if (within) out(j, i) = v;
    }
  }
  return out;
}

}  // namespace tensorscope
