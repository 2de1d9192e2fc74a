// Neural predictivity: cross-validated ridge regression and PLS regression from model
// features X (stimuli x features) to responses Y (stimuli x targets).
//
// Ridge (one decomposition per training fold serves every alpha and every target,
// himalaya's trick, METRICS.md "Predictivity"):
//  * feature form (p <= n_train): Xc'Xc = V diag(lambda) V', B = V' Xc' Yc,
//    A = X_test V;
//  * kernel form (p > n_train): Xc Xc' = U diag(lambda) U', B = U' Yc,
//    A = (X_test Xc') U.
//  In both forms the held-out prediction for ridge parameter alpha is
//  A diag(1 / (lambda + alpha)) B (+ training mean of Y), so each alpha costs only a
//  column scaling; with one alpha per target the scaled B is formed per column and one
//  product predicts every target. Components with lambda <= tol (exactly zero in exact
//  arithmetic) contribute nothing and are dropped, so alpha = 0 is the minimum-norm
//  least-squares fit.
//  The intercept is handled by centring X and Y on the training fold only.
//  alpha is chosen per target (or shared) from the training fold only, by
//    - GCV (Golub, Heath & Wahba 1979): RSS(alpha) / (n (1 - df/n)^2), with
//      RSS = ||(I - UU')Yc||^2 + sum_k (alpha / (lambda_k + alpha))^2 C_k^2, C = U'Yc,
//      df = 1 + sum_k lambda_k / (lambda_k + alpha): one small product for all alphas;
//    - exact leave-one-out: e_i = r_i / (1 - h_ii), h_ii = 1/n + sum_k U_ik^2
//      lambda_k / (lambda_k + alpha) (the intercept's leverage included); one
//      n_train x r x q product per alpha;
//    - inner K-fold CV on the training fold (the same engine, recursively).
//
// PLS regression: the improved kernel algorithm #1 of Dayal & MacGregor (1997), which
// gives NIPALS PLS2 results (sklearn's PLSRegression, pls::kernelpls) while touching X
// only through two products per component and X'Y (p x q) through rank-one deflations;
// all splits are fitted together so those products are GEMMs with one column per split
// (see pls_batch). No scaling; X and Y centred on the training fold.
#pragma once

#include "common.hpp"
#include "linalg.hpp"

#include <cmath>
#include <functional>
#include <limits>
#include <numeric>

extern "C" {
void dsyevr_(const char* jobz, const char* range, const char* uplo, const int* n, double* a,
             const int* lda, const double* vl, const double* vu, const int* il, const int* iu,
             const double* abstol, int* m, double* w, double* z, const int* ldz, int* isuppz,
             double* work, const int* lwork, int* iwork, const int* liwork, int* info,
             std::size_t jobz_len, std::size_t range_len, std::size_t uplo_len);
}

namespace tensorscope {

enum class AlphaSelect { gcv, loo, kfold };

struct RidgeOptions {
  std::vector<double> alphas;     // >= 0
  AlphaSelect select = AlphaSelect::gcv;
  bool per_target = true;         // false: one alpha shared by all targets
  int inner_folds = 5;            // for AlphaSelect::kfold
  std::uint64_t seed = 1;         // inner fold assignment
  // AlphaSelect::kfold with the caller's inner folds: per outer split, the inner test
  // sets as positions within that split's training rows (empty: random inner folds)
  std::vector<std::vector<std::vector<Index>>> inner_tests;
};

struct Split {
  std::vector<Index> train, test;  // 0-based row indices
};

struct CvResult {
  Matrix r, r2;        // splits x targets: Pearson r and out-of-sample R^2 on each test set
  Matrix alpha;        // splits x targets: chosen alpha (NaN for PLS)
  Vector pooled_r, pooled_r2;  // over the pooled held-out predictions (when pooled)
  Matrix pooled_pred;          // n x q out-of-fold predictions (when pooled)
  std::vector<Matrix> predictions;  // per split, when kept
  int ncomp_used = 0;               // PLS: smallest number of components over splits
};

namespace pred_detail {

inline double nan() { return std::numeric_limits<double>::quiet_NaN(); }

// Rows idx of X minus the column means of those rows (one read pass for the means, one
// for the copy).
inline Matrix gather_centred(const MatRef& X, const std::vector<Index>& idx, Vector& mu) {
  const Index m = static_cast<Index>(idx.size());
  mu.resize(X.cols());
  Matrix out(m, X.cols());
  for (Index j = 0; j < X.cols(); ++j) {
    double s = 0;
    for (Index i = 0; i < m; ++i) s += X(idx[static_cast<std::size_t>(i)], j);
    const double mj = m > 0 ? s / static_cast<double>(m) : 0.0;
    mu(j) = mj;
    for (Index i = 0; i < m; ++i) out(i, j) = X(idx[static_cast<std::size_t>(i)], j) - mj;
  }
  return out;
}

inline Matrix gather_rows(const MatRef& X, const std::vector<Index>& idx) {
  Matrix out(static_cast<Index>(idx.size()), X.cols());
  for (Index j = 0; j < X.cols(); ++j)
    for (std::size_t i = 0; i < idx.size(); ++i) out(static_cast<Index>(i), j) = X(idx[i], j);
  return out;
}

// Centre train (in place) and test (in place) by the training column means; returns them.
inline Vector centre_by_train(Matrix& train, Matrix& test) {
  const Vector mu = train.colwise().mean().transpose();
  train.rowwise() -= mu.transpose();
  if (test.rows() > 0) test.rowwise() -= mu.transpose();
  return mu;
}

// Pearson r and R^2 (1 - SSE / SST, SST about the mean of the held-out responses) per
// column. A constant prediction has r = 0; a constant held-out response gives NaN.
inline void score_columns(const MatRef& P, const MatRef& Y, double* r, double* r2, const Exec& ex) {
  const Index m = Y.rows(), q = Y.cols();
#pragma omp parallel for schedule(static) num_threads(omp_threads(ex.threads)) if (ex.threads > 1 && q > 64)
  for (Index j = 0; j < q; ++j) {
    double mp = 0, my = 0;
    for (Index i = 0; i < m; ++i) {
      mp += P(i, j);
      my += Y(i, j);
    }
    mp /= static_cast<double>(m);
    my /= static_cast<double>(m);
    double spp = 0, syy = 0, spy = 0, sse = 0;
    for (Index i = 0; i < m; ++i) {
      const double a = P(i, j) - mp, b = Y(i, j) - my, e = Y(i, j) - P(i, j);
      spp += a * a;
      syy += b * b;
      spy += a * b;
      sse += e * e;
    }
    if (syy <= 0) {
      r[j] = nan();
      r2[j] = nan();
    } else {
      r[j] = spp <= 0 ? 0.0 : spy / std::sqrt(spp * syy);
      r2[j] = 1.0 - sse / syy;
    }
  }
}

// Top eigenvector of a symmetric matrix (LAPACK dsyevr, one eigenpair).
inline Vector top_eigenvector(Matrix G) {
  const int n = static_cast<int>(G.rows());
  Vector w(n), z(n);
  if (n == 1) return Vector::Ones(1);
  const char jobz = 'V', range = 'I', uplo = 'L';
  const int il = n, iu = n;
  const double vl = 0, vu = 0, abstol = 0;
  int m = 0, info = 0, lwork = -1, liwork = -1, iwq = 0;
  double wq = 0;
  std::vector<int> isuppz(2);
  dsyevr_(&jobz, &range, &uplo, &n, G.data(), &n, &vl, &vu, &il, &iu, &abstol, &m, w.data(), z.data(), &n,
          isuppz.data(), &wq, &lwork, &iwq, &liwork, &info, 1, 1, 1);
  lwork = static_cast<int>(wq);
  liwork = iwq;
  std::vector<double> work(static_cast<std::size_t>(std::max(1, lwork)));
  std::vector<int> iwork(static_cast<std::size_t>(std::max(1, liwork)));
  dsyevr_(&jobz, &range, &uplo, &n, G.data(), &n, &vl, &vu, &il, &iu, &abstol, &m, w.data(), z.data(), &n,
          isuppz.data(), work.data(), &lwork, iwork.data(), &liwork, &info, 1, 1, 1);
  if (info != 0) throw ts_error(ErrorKind::internal, "LAPACK dsyevr failed (info = " + std::to_string(info) + ")");
  return z;
}

// Top eigenvector of a symmetric positive semi-definite G by Lanczos with full
// reorthogonalisation (restarted from the current Ritz vector), falling back to
// dsyevr when it does not converge. For the q x q Gram matrices of PLS this needs a few
// dozen matrix-vector products instead of a full tridiagonal reduction.
inline Vector top_eigenvector_lanczos(const Matrix& G) {
  const Index n = G.rows();
  if (n <= 64) return top_eigenvector(G);
  const Index m = 48;
  Index start = 0;
  G.diagonal().maxCoeff(&start);
  Vector v = G.col(start);
  if (!(v.norm() > 0)) return top_eigenvector(G);
  v.normalize();
  const double gnorm = G.diagonal().sum();  // trace >= largest eigenvalue
  for (int restart = 0; restart < 30; ++restart) {
    Matrix V(n, m + 1);
    Vector alpha(m), beta(m);
    V.col(0) = v;
    Index k = 0;
    for (; k < m; ++k) {
      Vector w = G * V.col(k);
      alpha(k) = V.col(k).dot(w);
      for (int pass = 0; pass < 2; ++pass) w.noalias() -= V.leftCols(k + 1) * (V.leftCols(k + 1).transpose() * w);
      beta(k) = w.norm();
      if (beta(k) <= 1e-14 * gnorm) {
        ++k;
        break;
      }
      V.col(k + 1) = w / beta(k);
    }
    Matrix T = Matrix::Zero(k, k);
    for (Index i = 0; i < k; ++i) {
      T(i, i) = alpha(i);
      if (i + 1 < k) T(i, i + 1) = T(i + 1, i) = beta(i);
    }
    Eigen::SelfAdjointEigenSolver<Matrix> es(T);
    const Vector y = es.eigenvectors().col(k - 1);
    const double theta = es.eigenvalues()(k - 1);
    v = V.leftCols(k) * y;
    v.normalize();
    const double resid = (G * v - theta * v).norm();
    if (resid <= 1e-12 * std::max(theta, 1e-300 * gnorm)) return v;
  }
  return top_eigenvector(G);
}

// Dominant left singular vector of S (p x q), unit norm. Small side Gram + dsyevr when
// that side is at most 512; otherwise power iteration on S S' (2 p q flops per step).
inline Vector dominant_left(const Matrix& S) {
  const Index p = S.rows(), q = S.cols();
  Vector w;
  if (q == 1) {
    w = S.col(0);
  } else if (q <= p && q <= 512) {
    w = S * top_eigenvector(crossprod(S));
  } else if (p < q && p <= 512) {
    w = top_eigenvector(tcrossprod(S));
  } else {
    Index best = 0;
    S.colwise().squaredNorm().maxCoeff(&best);
    w = S.col(best);
    for (int it = 0; it < 5000; ++it) {
      Vector v = S.transpose() * w;
      Vector w2 = S * v;
      const double nrm = w2.norm();
      if (nrm <= 0) break;
      w2 /= nrm;
      const double change = (w2 - w / w.norm()).norm();
      w = w2;
      // stop on the vector, not on the norm: the norm (an eigenvalue estimate) converges
      // quadratically faster, so stopping on it left the vector accurate to ~1e-8 only
      if (change < 1e-13) break;
    }
  }
  const double nrm = w.norm();
  if (nrm > 0) w /= nrm;
  return w;
}

}  // namespace pred_detail

// ---------------------------------------------------------------------------------------
// Ridge: one decomposition of a (centred) training set.
struct RidgeDecomp {
  bool kernel = false;
  Vector lambda;   // eigenvalues of Xc'Xc (or Xc Xc'), >= 0; zero for dropped components
  Vector keep;     // 1 for kept components, 0 for dropped (lambda <= tol)
  Matrix A;        // n_test x r
  Matrix B;        // r x q
  Matrix C2;       // r x q: (U'Yc)^2, for GCV
  Vector resid0;   // q: ||(I - UU')Yc||^2
  Matrix U;        // n_train x r left singular vectors (LOO only)
  Matrix V;        // feature form: p x r right vectors (coefficients only)
  double n_train = 0;

  // weight of component k at alpha: 1 / (lambda + alpha), 0 when dropped
  double weight(Index k, double alpha) const {
    if (keep(k) == 0) return 0.0;
    const double d = lambda(k) + alpha;
    return d > 0 ? 1.0 / d : 0.0;
  }
};

// Xc, Yc centred training data; Xt centred test data (may have 0 rows). Every product
// and the eigendecomposition run in bounded pieces with ex.check() between them, so a
// training fold can be interrupted (bench/interrupt.R).
inline RidgeDecomp ridge_decompose(const Matrix& Xc, const Matrix& Yc, const Matrix& Xt, bool want_u,
                                   bool want_v = false, const Exec& ex = Exec()) {
  RidgeDecomp d;
  const Index n = Xc.rows(), p = Xc.cols();
  d.n_train = static_cast<double>(n);
  d.kernel = p > n;
  Matrix C;  // U'Yc, r x q
  if (!d.kernel) {
    SymEigen e = sym_eigen(crossprod(Xc, ex), true, ex);
    d.lambda = e.values.cwiseMax(0.0);
    const Matrix XtY = product(Xc.transpose(), Yc, ex);
    d.B = product(e.vectors.transpose(), XtY, ex);
    if (Xt.rows() > 0) d.A = product(Xt, e.vectors, ex);
    const double tol = d.lambda.maxCoeff() * static_cast<double>(std::max(n, p)) * 2.2e-16;
    d.keep = (d.lambda.array() > tol).cast<double>().matrix();
    Vector inv_s(d.lambda.size());
    for (Index k = 0; k < d.lambda.size(); ++k) inv_s(k) = d.keep(k) > 0 ? 1.0 / std::sqrt(d.lambda(k)) : 0.0;
    C = inv_s.asDiagonal() * d.B;
    if (want_u) {
      const Matrix Vs = e.vectors * inv_s.asDiagonal();
      d.U = product(Xc, Vs, ex);
    }
    if (want_v) d.V = e.vectors;
  } else {
    SymEigen e = sym_eigen(tcrossprod(Xc, ex), true, ex);
    d.lambda = e.values.cwiseMax(0.0);
    d.B = product(e.vectors.transpose(), Yc, ex);
    if (Xt.rows() > 0) {
      const Matrix T = product(Xt, Xc.transpose(), ex);
      d.A = product(T, e.vectors, ex);
    }
    const double tol = d.lambda.maxCoeff() * static_cast<double>(std::max(n, p)) * 2.2e-16;
    d.keep = (d.lambda.array() > tol).cast<double>().matrix();
    C = d.keep.asDiagonal() * d.B;
    if (want_u) d.U = e.vectors * d.keep.asDiagonal();
    if (want_v) d.V = product(Xc.transpose(), e.vectors, ex);  // coefficients: Xc' U diag(w) B
  }
  d.C2 = C.array().square().matrix();
  d.resid0 = (Yc.colwise().squaredNorm() - d.C2.colwise().sum()).transpose().cwiseMax(0.0);
  return d;
}

// The decomposition ridge_cv uses: empty = ridge_decompose() above (Eigen + LAPACK); the
// LibTorch backend passes one that does the same products and eigendecomposition on its
// device (src/torch/ridge.h), so the rest of the cross-validation is shared.
using RidgeDecomposer = std::function<RidgeDecomp(const Matrix& Xc, const Matrix& Yc, const Matrix& Xt, bool want_u)>;

inline RidgeDecomp decompose_with(const RidgeDecomposer& f, const Matrix& Xc, const Matrix& Yc, const Matrix& Xt,
                                  bool want_u, const Exec& ex) {
  return f ? f(Xc, Yc, Xt, want_u) : ridge_decompose(Xc, Yc, Xt, want_u, false, ex);
}

// ridge_cv's access to X, by rows: the decomposition of the training rows `train` of X
// centred by their column means, with the test rows `test` (may be empty) centred by the
// same means; Yc the centred training responses. matrix_folds() below gathers the rows
// of an Eigen matrix; the LibTorch backend gathers them from a tensor on its device
// (src/torch/ridge.h), so X is never copied into host memory.
using RidgeFolds = std::function<RidgeDecomp(const std::vector<Index>& train, const std::vector<Index>& test,
                                             const Matrix& Yc, bool want_u)>;

inline RidgeFolds matrix_folds(const MatRef& X, const Exec& ex, const RidgeDecomposer& decompose = {}) {
  return [&X, &ex, &decompose](const std::vector<Index>& train, const std::vector<Index>& test, const Matrix& Yc,
                               bool want_u) {
    Vector mu;
    const Matrix Xc = pred_detail::gather_centred(X, train, mu);
    Matrix Xt = pred_detail::gather_rows(X, test);
    if (Xt.rows() > 0) Xt.rowwise() -= mu.transpose();
    return decompose_with(decompose, Xc, Yc, Xt, want_u, ex);
  };
}

// Training-set criterion (GCV or exact LOO mean squared error) for every alpha and
// target: n_alpha x q.
inline Matrix ridge_criterion(const RidgeDecomp& d, const Matrix& Yc, const std::vector<double>& alphas,
                              AlphaSelect select, const Exec& ex) {
  const Index na = static_cast<Index>(alphas.size()), r = d.lambda.size(), q = d.B.cols();
  const double n = d.n_train;
  Matrix crit(na, q);
  if (select == AlphaSelect::gcv) {
    Matrix Wsq(na, r);
    Vector df(na);
    for (Index a = 0; a < na; ++a) {
      double s = 1.0;
      for (Index k = 0; k < r; ++k) {
        const double w = d.weight(k, alphas[a]);
        const double shrink = d.keep(k) > 0 ? alphas[a] * w : 1.0;  // residual share
        Wsq(a, k) = shrink * shrink;
        s += d.lambda(k) * w;
      }
      df(a) = s;
    }
    Matrix rss = Wsq * d.C2;
    rss.rowwise() += d.resid0.transpose();
    for (Index a = 0; a < na; ++a) {
      const double den = 1.0 - df(a) / n;
      if (den <= 1e-10)
        crit.row(a).setConstant(std::numeric_limits<double>::infinity());
      else
        crit.row(a) = rss.row(a) / (n * den * den);
    }
    return crit;
  }
  // exact leave-one-out
  const Matrix U2 = d.U.array().square().matrix();
  Matrix E(Yc.rows(), q);
  for (Index a = 0; a < na; ++a) {
    ex.check();
    Vector shrink(r);
    for (Index k = 0; k < r; ++k) shrink(k) = d.lambda(k) * d.weight(k, alphas[a]);
    const Vector h = (U2 * shrink).array() + 1.0 / n;
    const Matrix CB = shrink.asDiagonal() * (d.keep.asDiagonal() * d.B);  // (lambda w) C, C = B (kernel)
    if (d.kernel) {
      E = Yc - product(d.U, CB, ex);
    } else {
      // feature form: fitted = U diag(lambda w) C with C = B / sqrt(lambda)
      Vector inv_s(r);
      for (Index k = 0; k < r; ++k) inv_s(k) = d.keep(k) > 0 ? 1.0 / std::sqrt(d.lambda(k)) : 0.0;
      const Matrix SCB = inv_s.asDiagonal() * CB;
      E = Yc - product(d.U, SCB, ex);
    }
    for (Index j = 0; j < q; ++j) {
      double s = 0;
      for (Index i = 0; i < E.rows(); ++i) {
        const double den = 1.0 - h(i);
        const double e = den > 1e-12 ? E(i, j) / den : std::numeric_limits<double>::infinity();
        s += e * e;
      }
      crit(a, j) = s / n;
    }
  }
  return crit;
}

// Predictions (centred) for one alpha index per target: A diag(w_j) B_j per column.
inline Matrix ridge_predict(const RidgeDecomp& d, const std::vector<double>& alphas, const std::vector<int>& choice,
                            const Exec& ex) {
  const Index r = d.lambda.size(), q = d.B.cols();
  Matrix Bw(r, q);
#pragma omp parallel for schedule(static) num_threads(omp_threads(ex.threads)) if (ex.threads > 1 && q > 64)
  for (Index j = 0; j < q; ++j) {
    const double alpha = alphas[static_cast<std::size_t>(choice[static_cast<std::size_t>(j)])];
    for (Index k = 0; k < r; ++k) Bw(k, j) = d.B(k, j) * d.weight(k, alpha);
  }
  return product(d.A, Bw, ex);
}

// Alpha index per target: argmin of the criterion (first minimum); shared: argmin of
// the sum over targets.
inline std::vector<int> choose_alpha(const Matrix& crit, bool per_target) {
  const Index na = crit.rows(), q = crit.cols();
  std::vector<int> choice(static_cast<std::size_t>(q), 0);
  auto better = [](double a, double b) { return a < b || (std::isnan(b) && !std::isnan(a)); };
  if (per_target) {
    for (Index j = 0; j < q; ++j) {
      int best = 0;
      for (Index a = 1; a < na; ++a)
        if (better(crit(a, j), crit(best, j))) best = static_cast<int>(a);
      choice[static_cast<std::size_t>(j)] = best;
    }
  } else {
    Vector tot = Vector::Zero(na);
    for (Index a = 0; a < na; ++a) {
      double s = 0;
      for (Index j = 0; j < q; ++j) s += crit(a, j);
      tot(a) = s;
    }
    int best = 0;
    for (Index a = 1; a < na; ++a)
      if (better(tot(a), tot(best))) best = static_cast<int>(a);
    std::fill(choice.begin(), choice.end(), best);
  }
  return choice;
}

// Inner K-fold CV on a training set (rows: its rows of X; Ytr: their responses, centred
// or not: each inner fold is centred on its own training part): squared error of the
// held-out predictions summed over the inner folds, divided by n, for every alpha and
// target, n_alpha x q. The folds are random (seed, stream) or the caller's (o.inner_tests).
inline Matrix ridge_inner_cv(const std::vector<Index>& rows, const Matrix& Ytr, const RidgeOptions& o,
                             std::uint64_t stream, const Exec& ex, const RidgeFolds& folds) {
  const Index n = Ytr.rows(), q = Ytr.cols();
  const Index na = static_cast<Index>(o.alphas.size());
  const bool given = !o.inner_tests.empty();
  if (given && stream >= o.inner_tests.size()) throw ts_error(ErrorKind::argument, "ridge: no inner folds for this split");
  const int K = given ? static_cast<int>(o.inner_tests[stream].size())
                      : std::max<int>(2, std::min<int>(o.inner_folds, static_cast<int>(n)));
  std::vector<Index> perm(static_cast<std::size_t>(n));
  std::iota(perm.begin(), perm.end(), 0);
  Rng rng(o.seed, stream);
  if (!given) rng.shuffle(perm);
  Matrix sse = Matrix::Zero(na, q);
  for (int f = 0; f < K; ++f) {
    std::vector<Index> tr, te;
    if (given) {
      te = o.inner_tests[stream][static_cast<std::size_t>(f)];
      std::vector<char> in_test(static_cast<std::size_t>(n), 0);
      for (Index i : te) {
        if (i < 0 || i >= n) throw ts_error(ErrorKind::argument, "ridge: inner fold index out of range");
        in_test[static_cast<std::size_t>(i)] = 1;
      }
      for (Index i = 0; i < n; ++i)
        if (!in_test[static_cast<std::size_t>(i)]) tr.push_back(i);
    } else {
      for (Index i = 0; i < n; ++i) (i % K == f ? te : tr).push_back(perm[static_cast<std::size_t>(i)]);
    }
    std::sort(tr.begin(), tr.end());
    std::sort(te.begin(), te.end());
    Matrix Ya = pred_detail::gather_rows(Ytr, tr), Yb = pred_detail::gather_rows(Ytr, te);
    pred_detail::centre_by_train(Ya, Yb);  // Yb now held-out minus training mean
    std::vector<Index> xa(tr.size()), xb(te.size());
    for (std::size_t i = 0; i < tr.size(); ++i) xa[i] = rows[static_cast<std::size_t>(tr[i])];
    for (std::size_t i = 0; i < te.size(); ++i) xb[i] = rows[static_cast<std::size_t>(te[i])];
    const RidgeDecomp d = folds(xa, xb, Ya, false);
    std::vector<int> choice(static_cast<std::size_t>(q));
    for (Index a = 0; a < na; ++a) {
      ex.check();
      std::fill(choice.begin(), choice.end(), static_cast<int>(a));
      const Matrix P = ridge_predict(d, o.alphas, choice, ex);
      sse.row(a) += (Yb - P).colwise().squaredNorm();
    }
  }
  return sse / static_cast<double>(n);
}

// ---------------------------------------------------------------------------------------
// PLS regression (improved kernel algorithm #1, Dayal & MacGregor 1997), fitted for many
// training sets (splits) of the same X at once. Per component and split:
//   w = dominant left singular vector of S = Xc'Yc (deflated), r = w - R (P'w),
//   t = Xc r, p = Xc't / t't, q = Yc't / t't, S <- S - (t't) p q'.
// Xc is never formed: with mu the split's training means and t zero on its test rows,
// Xc r = (X r)[train] - mu'r and Xc't = X't (t sums to zero), so the products of every
// split in a batch come from two GEMMs with X (X [r_1 .. r_B] and X' [t_1 .. t_B]): the
// matrix-vector products that make NIPALS memory-bound become GEMM-shaped.
struct PlsFit {
  Matrix R;  // p x a: weights such that scores T = Xc R
  Matrix Q;  // q x a: Y loadings; coefficients = R Q'
  Vector x_mean, y_mean;
  int ncomp = 0;
};

namespace pred_detail {

// Column means of the rows idx of X.
inline Vector row_subset_means(const MatRef& X, const std::vector<Index>& idx) {
  Vector mu(X.cols());
  for (Index j = 0; j < X.cols(); ++j) {
    double s = 0;
    for (Index i : idx) s += X(i, j);
    mu(j) = idx.empty() ? 0.0 : s / static_cast<double>(idx.size());
  }
  return mu;
}

}  // namespace pred_detail

inline std::vector<PlsFit> pls_batch(const MatRef& X, const MatRef& Y, const std::vector<Split>& splits, int ncomp,
                                     const Exec& ex, double max_bytes = 1e9) {
  const Index n = X.rows(), p = X.cols(), q = Y.cols();
  const Index nsplit = static_cast<Index>(splits.size());
  std::vector<PlsFit> fits(static_cast<std::size_t>(nsplit));
  const bool small_gram = q > 1 && q <= p && q <= 512;
  const double per_split = 8.0 * (static_cast<double>(p) * q + (small_gram ? static_cast<double>(q) * q : 0.0));
  const Index batch = std::max<Index>(1, std::min<Index>(nsplit, static_cast<Index>(max_bytes / per_split)));
  const Matrix XtY = X.transpose() * Y;  // shared by every split
  const Vector xsum = X.colwise().sum().transpose(), ysum = Y.colwise().sum().transpose();
  for (Index b0 = 0; b0 < nsplit; b0 += batch) {
    const Index B = std::min(batch, nsplit - b0);
    std::vector<Matrix> S(static_cast<std::size_t>(B)), G(static_cast<std::size_t>(B)), P(static_cast<std::size_t>(B));
    std::vector<char> active(static_cast<std::size_t>(B), 1);
    std::vector<std::vector<char>> is_test(static_cast<std::size_t>(B));
    for (Index b = 0; b < B; ++b) {
      ex.check();
      const Split& sp = splits[static_cast<std::size_t>(b0 + b)];
      PlsFit& f = fits[static_cast<std::size_t>(b0 + b)];
      const double ntr = static_cast<double>(sp.train.size());
      // S = sum over training rows of (x - mu)(y - mu)' = X'Y - X_test'Y_test - ntr mu_x mu_y'
      const Matrix Xte = pred_detail::gather_rows(X, sp.test), Yte = pred_detail::gather_rows(Y, sp.test);
      const bool complement = static_cast<Index>(sp.train.size() + sp.test.size()) == n;
      if (complement) {
        f.x_mean = (xsum - Xte.colwise().sum().transpose()) / ntr;
        f.y_mean = (ysum - Yte.colwise().sum().transpose()) / ntr;
        S[b] = XtY;
        if (Xte.rows() > 0) S[b].noalias() -= Xte.transpose() * Yte;
      } else {  // training set is not the complement of the test set: use its rows directly
        const Matrix Xtr = pred_detail::gather_rows(X, sp.train), Ytr = pred_detail::gather_rows(Y, sp.train);
        f.x_mean = Xtr.colwise().mean().transpose();
        f.y_mean = Ytr.colwise().mean().transpose();
        S[b].noalias() = Xtr.transpose() * Ytr;
      }
      S[b].noalias() -= (ntr * f.x_mean) * f.y_mean.transpose();
      if (small_gram) G[b] = crossprod(S[b]);
      f.R.resize(p, ncomp);
      f.Q.resize(q, ncomp);
      P[b].resize(p, ncomp);
      is_test[b].assign(static_cast<std::size_t>(n), 1);
      for (Index i : sp.train) is_test[b][static_cast<std::size_t>(i)] = 0;
    }
    Matrix Rb(p, B), T(n, B), XtT(p, B), YtT(q, B);
    for (int a = 0; a < ncomp; ++a) {
      ex.check();
      Rb.setZero();
      for (Index b = 0; b < B; ++b) {
        if (!active[static_cast<std::size_t>(b)]) continue;
        PlsFit& f = fits[static_cast<std::size_t>(b0 + b)];
        Vector w;
        if (small_gram) {
          w = S[b] * pred_detail::top_eigenvector_lanczos(G[b]);
        } else {
          w = pred_detail::dominant_left(S[b]);
        }
        const double nw = w.norm();
        if (!(nw > 0)) {
          active[static_cast<std::size_t>(b)] = 0;
          continue;
        }
        w /= nw;
        Vector r = w;
        if (a > 0) r.noalias() -= f.R.leftCols(a) * (P[b].leftCols(a).transpose() * w);
        Rb.col(b) = r;
      }
      T.noalias() = X * Rb;
      Vector tt(B);
      for (Index b = 0; b < B; ++b) {
        const double shift = fits[static_cast<std::size_t>(b0 + b)].x_mean.dot(Rb.col(b));
        double s2 = 0;
        for (Index i = 0; i < n; ++i) {
          const double v = is_test[b][static_cast<std::size_t>(i)] ? 0.0 : T(i, b) - shift;
          T(i, b) = v;
          s2 += v * v;
        }
        tt(b) = s2;
      }
      XtT.noalias() = X.transpose() * T;
      YtT.noalias() = Y.transpose() * T;
      for (Index b = 0; b < B; ++b) {
        if (!active[static_cast<std::size_t>(b)]) continue;
        PlsFit& f = fits[static_cast<std::size_t>(b0 + b)];
        const double scale = std::max(1e-300, XtT.col(b).norm() * Rb.col(b).norm());
        if (!(tt(b) > 1e-13 * scale)) {  // X r vanishes: X is exhausted
          active[static_cast<std::size_t>(b)] = 0;
          continue;
        }
        const Vector pa = XtT.col(b) / tt(b), qa = YtT.col(b) / tt(b);
        if (small_gram) {
          // S1 = S - tt pa qa'  =>  S1'S1 = G - tt (g qa' + qa g') + tt^2 |pa|^2 qa qa', g = S'pa
          const Vector gv = S[b].transpose() * pa;
          G[b].noalias() -= tt(b) * (gv * qa.transpose() + qa * gv.transpose());
          G[b].noalias() += (tt(b) * tt(b) * pa.squaredNorm()) * (qa * qa.transpose());
        }
        S[b].noalias() -= (tt(b) * pa) * qa.transpose();
        f.R.col(a) = Rb.col(b);
        P[b].col(a) = pa;
        f.Q.col(a) = qa;
        f.ncomp = a + 1;
      }
    }
    for (Index b = 0; b < B; ++b) {
      PlsFit& f = fits[static_cast<std::size_t>(b0 + b)];
      f.R.conservativeResize(p, f.ncomp);
      f.Q.conservativeResize(q, f.ncomp);
    }
  }
  return fits;
}

// One PLS fit on all rows.
inline PlsFit pls_fit(const MatRef& X, const MatRef& Y, int ncomp, const Exec& ex) {
  std::vector<Split> one(1);
  one[0].train.resize(static_cast<std::size_t>(X.rows()));
  std::iota(one[0].train.begin(), one[0].train.end(), 0);
  return pls_batch(X, Y, one, ncomp, ex)[0];
}

// ---------------------------------------------------------------------------------------
// Cross-validation driver shared by ridge and PLS. fit(split, Yc, s, alpha_out) returns
// the test predictions before adding the training mean of Y (Yc: the training responses
// centred by their means, when centre_y); X is centred by the training fold's means
// only, in fit.
template <class Fit>
CvResult cross_validate(const MatRef& Y, const std::vector<Split>& splits, bool pooled, bool keep, Fit fit,
                        const Exec& ex, bool centre_y = true) {
  const Index q = Y.cols(), S = static_cast<Index>(splits.size());
  CvResult out;
  out.r.resize(S, q);
  out.r2.resize(S, q);
  out.alpha.setConstant(S, q, pred_detail::nan());
  if (pooled) out.pooled_pred.setZero(Y.rows(), q);
  for (Index s = 0; s < S; ++s) {
    ex.check();
    const Split& sp = splits[static_cast<std::size_t>(s)];
    Vector ybar;
    Matrix Yc;
    if (centre_y) {
      Yc = pred_detail::gather_centred(Y, sp.train, ybar);
    } else {
      ybar = pred_detail::row_subset_means(Y, sp.train);
    }
    const Matrix Yte = pred_detail::gather_rows(Y, sp.test);
    Vector alpha_row = Vector::Constant(q, pred_detail::nan());
    Matrix P = fit(sp, Yc, s, alpha_row);
    P.rowwise() += ybar.transpose();
    out.alpha.row(s) = alpha_row.transpose();
    Vector r(q), r2(q);
    pred_detail::score_columns(P, Yte, r.data(), r2.data(), ex);
    out.r.row(s) = r.transpose();
    out.r2.row(s) = r2.transpose();
    if (pooled)
      for (Index j = 0; j < q; ++j)
        for (std::size_t i = 0; i < sp.test.size(); ++i) out.pooled_pred(sp.test[i], j) = P(static_cast<Index>(i), j);
    if (keep) out.predictions.push_back(std::move(P));
  }
  if (pooled) {
    out.pooled_r.resize(q);
    out.pooled_r2.resize(q);
    pred_detail::score_columns(out.pooled_pred, Y, out.pooled_r.data(), out.pooled_r2.data(), ex);
  }
  return out;
}

// Ridge cross-validation on X given by rows (see RidgeFolds): n = Y.rows() stimuli.
inline CvResult ridge_cv_folds(const RidgeFolds& folds, const MatRef& Y, const std::vector<Split>& splits,
                               const RidgeOptions& o, bool pooled, bool keep, const Exec& ex) {
  if (o.alphas.empty()) throw ts_error(ErrorKind::empty, "ridge_cv: no alphas");
  auto fit = [&](const Split& sp, const Matrix& Yc, Index s, Vector& alpha_row) {
    const bool loo = o.select == AlphaSelect::loo && o.alphas.size() > 1;
    const RidgeDecomp d = folds(sp.train, sp.test, Yc, loo);
    std::vector<int> choice(static_cast<std::size_t>(Yc.cols()), 0);
    if (o.alphas.size() > 1) {
      const Matrix crit = o.select == AlphaSelect::kfold
                              ? ridge_inner_cv(sp.train, Yc, o, static_cast<std::uint64_t>(s), ex, folds)
                              : ridge_criterion(d, Yc, o.alphas, o.select, ex);
      choice = choose_alpha(crit, o.per_target);
    }
    for (Index j = 0; j < Yc.cols(); ++j) alpha_row(j) = o.alphas[static_cast<std::size_t>(choice[static_cast<std::size_t>(j)])];
    return ridge_predict(d, o.alphas, choice, ex);
  };
  return cross_validate(Y, splits, pooled, keep, fit, ex);
}

inline CvResult ridge_cv(const MatRef& X, const MatRef& Y, const std::vector<Split>& splits, const RidgeOptions& o,
                         bool pooled, bool keep, const Exec& ex, const RidgeDecomposer& decompose = {}) {
  return ridge_cv_folds(matrix_folds(X, ex, decompose), Y, splits, o, pooled, keep, ex);
}

inline CvResult pls_cv(const MatRef& X, const MatRef& Y, const std::vector<Split>& splits, int ncomp, bool pooled,
                       bool keep, const Exec& ex) {
  const std::vector<PlsFit> fits = pls_batch(X, Y, splits, ncomp, ex);
  int used = ncomp;
  for (const PlsFit& f : fits) used = std::min(used, f.ncomp);
  auto fit = [&](const Split& sp, const Matrix&, Index s, Vector&) {
    const PlsFit& f = fits[static_cast<std::size_t>(s)];
    Matrix Xte = pred_detail::gather_rows(X, sp.test);
    Xte.rowwise() -= pred_detail::row_subset_means(X, sp.train).transpose();
    const Matrix XR = Xte * f.R;
    Matrix P(Xte.rows(), Y.cols());
    P.noalias() = XR * f.Q.transpose();
    return P;
  };
  CvResult out = cross_validate(Y, splits, pooled, keep, fit, ex, false);
  out.ncomp_used = used;
  return out;
}

// Ridge coefficients for every alpha from one decomposition: p x q per alpha (stacked
// as p x (q * n_alpha)), and intercepts q x n_alpha (zero when not centring).
struct RidgeCoef {
  Matrix coef;
  Matrix intercept;
};

inline RidgeCoef ridge_coef(const MatRef& X, const MatRef& Y, const std::vector<double>& alphas, bool centre) {
  Matrix Xc = X, Yc = Y, e0(0, X.cols()), e1(0, Y.cols());
  Vector mx = Vector::Zero(X.cols()), my = Vector::Zero(Y.cols());
  if (centre) {
    mx = pred_detail::centre_by_train(Xc, e0);
    my = pred_detail::centre_by_train(Yc, e1);
  }
  const RidgeDecomp d = ridge_decompose(Xc, Yc, e0, false, true);
  const Index p = X.cols(), q = Y.cols(), r = d.lambda.size();
  RidgeCoef out;
  out.coef.resize(p, q * static_cast<Index>(alphas.size()));
  out.intercept.resize(q, static_cast<Index>(alphas.size()));
  for (std::size_t a = 0; a < alphas.size(); ++a) {
    Vector w(r);
    for (Index k = 0; k < r; ++k) w(k) = d.weight(k, alphas[a]);
    const Index c0 = static_cast<Index>(a) * q;
    out.coef.middleCols(c0, q).noalias() = d.V * (w.asDiagonal() * d.B);
    out.intercept.col(static_cast<Index>(a)) = my - out.coef.middleCols(c0, q).transpose() * mx;
  }
  return out;
}

}  // namespace tensorscope
