// Dense linear algebra used across the core. Products go through Eigen, which hands
// them to the BLAS when compiled with EIGEN_USE_BLAS (the package build does); the
// symmetric eigendecomposition and the SVD call LAPACK directly (dsyevd, dgesdd),
// which is about 10x faster than Eigen's own solvers at R's -O2.
#pragma once

#include "common.hpp"

#include <cmath>
#include <cstddef>
#include <limits>
#include <vector>

extern "C" {
// LAPACK, Fortran calling convention (gfortran: hidden string lengths at the end).
void dsyevd_(const char* jobz, const char* uplo, const int* n, double* a, const int* lda,
             double* w, double* work, const int* lwork, int* iwork, const int* liwork,
             int* info, std::size_t jobz_len, std::size_t uplo_len);
void dgesdd_(const char* jobz, const int* m, const int* n, double* a, const int* lda,
             double* s, double* u, const int* ldu, double* vt, const int* ldvt,
             double* work, const int* lwork, int* iwork, int* info, std::size_t jobz_len);
// The steps of dsyevd, called one by one by sym_eigen() so that an interrupt can be
// honoured between bounded pieces of work.
int ilaenv_(const int* ispec, const char* name, const char* opts, const int* n1, const int* n2,
            const int* n3, const int* n4, std::size_t name_len, std::size_t opts_len);
void dlascl_(const char* type, const int* kl, const int* ku, const double* cfrom, const double* cto,
             const int* m, const int* n, double* a, const int* lda, int* info, std::size_t type_len);
void dlatrd_(const char* uplo, const int* n, const int* nb, double* a, const int* lda, double* e,
             double* tau, double* w, const int* ldw, std::size_t uplo_len);
// (declared as Eigen's BLAS header declares it, which EIGEN_USE_BLAS includes)
int dsyr2k_(const char* uplo, const char* trans, const int* n, const int* k, const double* alpha,
            const double* a, const int* lda, const double* b, const int* ldb, const double* beta,
            double* c, const int* ldc);
void dsytd2_(const char* uplo, const int* n, double* a, const int* lda, double* d, double* e,
             double* tau, int* info, std::size_t uplo_len);
void dsterf_(const int* n, double* d, double* e, int* info);
void dstedc_(const char* compz, const int* n, double* d, double* e, double* z, const int* ldz,
             double* work, const int* lwork, int* iwork, const int* liwork, int* info,
             std::size_t compz_len);
void dormtr_(const char* side, const char* uplo, const char* trans, const int* m, const int* n,
             const double* a, const int* lda, const double* tau, double* c, const int* ldc,
             double* work, const int* lwork, int* info, std::size_t side_len, std::size_t uplo_len,
             std::size_t trans_len);
}

namespace tensorscope {

// Columns per block for a product with `flops_per_col` flops per output column, so that
// one BLAS/LAPACK call does at most about ex.call_flops and an interrupt is honoured
// within a fraction of a second: a multiple of 8, at least 8, independent of the
// thread count.
inline Index block_cols(double flops_per_col, const Exec& ex) {
  const double c = ex.call_flops / std::max(1.0, flops_per_col);
  return std::max<Index>(8, static_cast<Index>(std::min(c, 1e9) / 8) * 8);
}

// A * B in column blocks of B, with ex.check() between blocks (each block one GEMM of
// bounded size; a column of the result is the same GEMM arithmetic either way).
template <class DA, class DB>
Matrix product(const DA& A, const DB& B, const Exec& ex) {
  Matrix C(A.rows(), B.cols());
  const Index bs = block_cols(2.0 * static_cast<double>(A.rows()) * static_cast<double>(A.cols()), ex);
  for (Index j0 = 0; j0 < B.cols(); j0 += bs) {
    ex.check();
    const Index w = std::min(bs, B.cols() - j0);
    C.middleCols(j0, w).noalias() = A * B.middleCols(j0, w);
  }
  return C;
}

// A symmetric m x m matrix from its lower triangle, one column block at a time:
// fill(j0, w) returns rows j0.. of columns j0..j0+w-1 (one GEMM of bounded size), with
// ex.check() between blocks.
template <class Fill>
Matrix sym_from_blocks(Index m, double flops_per_col, const Exec& ex, Fill fill) {
  Matrix G(m, m);
  const Index bs = block_cols(flops_per_col, ex);
  for (Index j0 = 0; j0 < m; j0 += bs) {
    ex.check();
    const Index w = std::min(bs, m - j0);
    G.block(j0, j0, m - j0, w).noalias() = fill(j0, w);
  }
  G.triangularView<Eigen::StrictlyUpper>() = G.transpose();
  return G;
}

// X^T X (p x p), full symmetric result from one rank-k update (BLAS syrk); with an
// Exec, in bounded column blocks with interrupt checks between them.
inline Matrix crossprod(const MatRef& X) {
  Matrix G = Matrix::Zero(X.cols(), X.cols());
  G.selfadjointView<Eigen::Lower>().rankUpdate(X.transpose());
  G.triangularView<Eigen::StrictlyUpper>() = G.transpose();
  return G;
}
inline Matrix crossprod(const MatRef& X, const Exec& ex) {
  const Index p = X.cols();
  return sym_from_blocks(p, 2.0 * static_cast<double>(X.rows()) * static_cast<double>(p), ex,
                         [&](Index j0, Index w) { return X.rightCols(p - j0).transpose() * X.middleCols(j0, w); });
}

// X X^T (n x n), full symmetric result from one rank-k update (BLAS syrk); with an Exec,
// in bounded blocks as above.
inline Matrix tcrossprod(const MatRef& X) {
  Matrix G = Matrix::Zero(X.rows(), X.rows());
  G.selfadjointView<Eigen::Lower>().rankUpdate(X);
  G.triangularView<Eigen::StrictlyUpper>() = G.transpose();
  return G;
}
inline Matrix tcrossprod(const MatRef& X, const Exec& ex) {
  const Index n = X.rows();
  return sym_from_blocks(n, 2.0 * static_cast<double>(n) * static_cast<double>(X.cols()), ex,
                         [&](Index j0, Index w) { return X.bottomRows(n - j0) * X.middleRows(j0, w).transpose(); });
}

// Column means and a column-centred copy.
inline Matrix centre_columns(const MatRef& X) {
  Matrix Xc = X;
  Xc.rowwise() -= X.colwise().mean();
  return Xc;
}

// Double centring H K H of a symmetric matrix, in place.
inline void double_centre(Matrix& K) {
  const Vector r = K.rowwise().mean();
  const double g = r.mean();
  const Index n = K.rows();
  for (Index j = 0; j < n; ++j)
    for (Index i = 0; i < n; ++i) K(i, j) += g - r(i) - r(j);
}

// Symmetric eigendecomposition (ascending eigenvalues) by LAPACK dsyevd.
struct SymEigen {
  Vector values;
  Matrix vectors;  // columns; empty when vectors were not requested
};

// dsyevd's algorithm, step by step (LAPACK 3.x dsyevd + dsytrd, uplo = 'L'): scale into
// the safe range, reduce to tridiagonal form (the blocked loop of dsytrd: dlatrd on nb
// columns, then a rank-2nb update of the rest), solve the tridiagonal problem (dstedc,
// divide and conquer; dsterf without vectors), and apply the Householder reflectors
// back (dormtr, in column blocks). The calls and their arguments are dsyevd's, so the
// result is dsyevd's (eigenvalues bit for bit here; vectors to rounding, as dsyevd's
// own vary with the alignment of its workspace); ex.check() runs between the pieces,
// each a bounded amount of work at the sizes ridge CV meets.
inline SymEigen sym_eigen(const MatRef& A, bool want_vectors = true, const Exec& ex = Exec()) {
  if (A.rows() != A.cols()) throw ts_error(ErrorKind::argument, "sym_eigen: matrix is not square");
  const int n = static_cast<int>(A.rows());
  SymEigen out;
  Matrix a = A;
  out.values.resize(n);
  if (n == 0) return out;
  const char L = 'L';
  int info = 0;
  if (n == 1) {
    out.values(0) = a(0, 0);
    if (want_vectors) out.vectors = Matrix::Ones(1, 1);
    return out;
  }
  // scaling (dsyevd: rmin = sqrt(safmin / eps), rmax = sqrt(1 / rmin^2))
  const double safmin = std::numeric_limits<double>::min(), eps = std::numeric_limits<double>::epsilon();
  const double smlnum = safmin / eps, rmin = std::sqrt(smlnum), rmax = std::sqrt(1.0 / smlnum);
  double anrm = 0;
  for (int j = 0; j < n; ++j)
    for (int i = j; i < n; ++i) {
      const double v = std::abs(a(i, j));
      if (v > anrm || std::isnan(v)) anrm = v;
    }
  double sigma = 1.0;
  if (anrm > 0 && anrm < rmin) sigma = rmin / anrm;
  else if (anrm > rmax) sigma = rmax / anrm;
  if (sigma != 1.0) {
    const int zero = 0;
    const double one = 1.0;
    dlascl_(&L, &zero, &zero, &one, &sigma, &n, &n, a.data(), &n, &info, 1);
  }
  // tridiagonal reduction (dsytrd's blocked loop, with its block size and crossover)
  Vector d(n), e(n), tau(n);
  {
    const int one = 1, three = 3, m1 = -1;
    int nb = ilaenv_(&one, "DSYTRD", &L, &n, &m1, &m1, &m1, 6, 1);
    int nx = n;
    if (nb > 1 && nb < n) {
      nx = std::max(nb, ilaenv_(&three, "DSYTRD", &L, &n, &m1, &m1, &m1, 6, 1));
      if (nx >= n) nx = n;
    } else {
      nb = 1;
    }
    const int ldw = n;
    std::vector<double> w(static_cast<std::size_t>(ldw) * static_cast<std::size_t>(std::max(1, nb)));
    const double minus1 = -1.0, plus1 = 1.0;
    int i = 0;
    for (; i < n - nx; i += nb) {
      ex.check();
      const int ni = n - i, nr = n - i - nb;
      dlatrd_(&L, &ni, &nb, &a(i, i), &n, &e(i), &tau(i), w.data(), &ldw, 1);
      dsyr2k_(&L, "N", &nr, &nb, &minus1, &a(i + nb, i), &n, w.data() + nb, &ldw, &plus1, &a(i + nb, i + nb), &n);
      for (int j = i; j < i + nb; ++j) {
        a(j + 1, j) = e(j);
        d(j) = a(j, j);
      }
    }
    ex.check();
    const int ni = n - i;
    dsytd2_(&L, &ni, &a(i, i), &n, &d(i), &e(i), &tau(i), &info, 1);
  }
  ex.check();
  if (!want_vectors) {
    dsterf_(&n, d.data(), e.data(), &info);
    if (info != 0) throw ts_error(ErrorKind::internal, "LAPACK dsterf failed (info = " + std::to_string(info) + ")");
  } else {
    Matrix z(n, n);
    {
      const int lwork = 1 + 4 * n + n * n, liwork = 3 + 5 * n;
      std::vector<double> work(static_cast<std::size_t>(lwork));
      std::vector<int> iwork(static_cast<std::size_t>(liwork));
      dstedc_("I", &n, d.data(), e.data(), z.data(), &n, work.data(), &lwork, iwork.data(), &liwork, &info, 1);
      if (info != 0) throw ts_error(ErrorKind::internal, "LAPACK dstedc failed (info = " + std::to_string(info) + ")");
    }
    // z <- Q z, in column blocks (each column's update is the same either way)
    const Index bs = block_cols(4.0 * static_cast<double>(n) * static_cast<double>(n), ex);
    int lwork = -1;
    double wq = 0;
    dormtr_("L", &L, "N", &n, &n, a.data(), &n, tau.data(), z.data(), &n, &wq, &lwork, &info, 1, 1, 1);
    lwork = std::max(1, static_cast<int>(wq));
    std::vector<double> work(static_cast<std::size_t>(lwork));
    for (Index c0 = 0; c0 < n; c0 += bs) {
      ex.check();
      const int w = static_cast<int>(std::min<Index>(bs, n - c0));
      dormtr_("L", &L, "N", &n, &w, a.data(), &n, tau.data(), z.col(c0).data(), &n, work.data(), &lwork, &info, 1, 1, 1);
      if (info != 0) throw ts_error(ErrorKind::internal, "LAPACK dormtr failed (info = " + std::to_string(info) + ")");
    }
    out.vectors = std::move(z);
  }
  out.values = d;
  if (sigma != 1.0) out.values *= 1.0 / sigma;  // dsyevd: dscal by 1 / sigma
  return out;
}

// Thin SVD X = U diag(s) V^T by LAPACK dgesdd (divide and conquer).
struct Svd {
  Matrix U;  // n x r
  Vector s;  // r, descending
  Matrix V;  // p x r
};

inline Svd svd_thin(const MatRef& X) {
  const int m = static_cast<int>(X.rows()), n = static_cast<int>(X.cols());
  const int r = std::min(m, n);
  Svd out;
  out.U.resize(m, r);
  out.s.resize(r);
  Matrix Vt(r, n);
  if (r == 0) {
    out.V.resize(n, 0);
    return out;
  }
  Matrix A = X;
  const char jobz = 'S';
  int info = 0, lwork = -1;
  double work_query = 0;
  std::vector<int> iwork(static_cast<std::size_t>(8) * r);
  dgesdd_(&jobz, &m, &n, A.data(), &m, out.s.data(), out.U.data(), &m, Vt.data(), &r,
          &work_query, &lwork, iwork.data(), &info, 1);
  lwork = static_cast<int>(work_query);
  std::vector<double> work(static_cast<std::size_t>(std::max(1, lwork)));
  dgesdd_(&jobz, &m, &n, A.data(), &m, out.s.data(), out.U.data(), &m, Vt.data(), &r,
          work.data(), &lwork, iwork.data(), &info, 1);
  if (info != 0) throw ts_error(ErrorKind::internal, "LAPACK dgesdd failed (info = " + std::to_string(info) + ")");
  out.V = Vt.transpose();
  return out;
}

// Singular values only (LAPACK dgesdd, jobz = 'N'), descending.
inline Vector singular_values(const MatRef& X) {
  const int m = static_cast<int>(X.rows()), n = static_cast<int>(X.cols());
  const int r = std::min(m, n);
  Vector s(r);
  if (r == 0) return s;
  Matrix A = X;
  const char jobz = 'N';
  int info = 0, lwork = -1, one = 1;
  double work_query = 0, dummy = 0;
  std::vector<int> iwork(static_cast<std::size_t>(8) * r);
  dgesdd_(&jobz, &m, &n, A.data(), &m, s.data(), &dummy, &one, &dummy, &one, &work_query, &lwork,
          iwork.data(), &info, 1);
  lwork = static_cast<int>(work_query);
  std::vector<double> work(static_cast<std::size_t>(std::max(1, lwork)));
  dgesdd_(&jobz, &m, &n, A.data(), &m, s.data(), &dummy, &one, &dummy, &one, work.data(), &lwork,
          iwork.data(), &info, 1);
  if (info != 0) throw std::runtime_error("LAPACK dgesdd failed (info = " + std::to_string(info) + ")");
  return s;
}

// Symmetric positive semi-definite square root (negative eigenvalues clipped to 0).
inline Matrix psd_sqrt(const MatRef& A) {
  SymEigen e = sym_eigen(A, true);
  Vector s = e.values.cwiseMax(0.0).cwiseSqrt();
  return e.vectors * s.asDiagonal() * e.vectors.transpose();
}

// Number of pairs i < j among n items, and the index of pair (i, j), i < j, in the
// upper-triangle vector ordered as R's dist() and scipy's squareform: (0,1), (0,2), ...,
// (0,n-1), (1,2), ...
inline Index n_pairs(Index n) { return n * (n - 1) / 2; }
inline Index pair_index(Index i, Index j, Index n) { return i * n - i * (i + 1) / 2 + (j - i - 1); }

// Square symmetric matrix with zero diagonal from an upper-triangle vector.
inline Matrix square_from_upper(const VecRef& v, Index n) {
  Matrix D = Matrix::Zero(n, n);
  Index k = 0;
  for (Index i = 0; i < n; ++i)
    for (Index j = i + 1; j < n; ++j) {
      D(i, j) = v(k);
      D(j, i) = v(k);
      ++k;
    }
  return D;
}

}  // namespace tensorscope
