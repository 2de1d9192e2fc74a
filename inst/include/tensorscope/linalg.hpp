// Dense linear algebra used across the core. Products go through Eigen, which hands
// them to the BLAS when compiled with EIGEN_USE_BLAS (the package build does); the
// symmetric eigendecomposition and the SVD call LAPACK directly (dsyevd, dgesdd),
// which is about 10x faster than Eigen's own solvers at R's -O2.
#pragma once

#include "common.hpp"

#include <cmath>
#include <cstddef>

extern "C" {
// LAPACK, Fortran calling convention (gfortran: hidden string lengths at the end).
void dsyevd_(const char* jobz, const char* uplo, const int* n, double* a, const int* lda,
             double* w, double* work, const int* lwork, int* iwork, const int* liwork,
             int* info, std::size_t jobz_len, std::size_t uplo_len);
void dgesdd_(const char* jobz, const int* m, const int* n, double* a, const int* lda,
             double* s, double* u, const int* ldu, double* vt, const int* ldvt,
             double* work, const int* lwork, int* iwork, int* info, std::size_t jobz_len);
}

namespace tensorscope {

// X^T X (p x p), full symmetric result from one rank-k update (BLAS syrk).
inline Matrix crossprod(const MatRef& X) {
  Matrix G = Matrix::Zero(X.cols(), X.cols());
  G.selfadjointView<Eigen::Lower>().rankUpdate(X.transpose());
  G.triangularView<Eigen::StrictlyUpper>() = G.transpose();
  return G;
}

// X X^T (n x n), full symmetric result from one rank-k update (BLAS syrk).
inline Matrix tcrossprod(const MatRef& X) {
  Matrix G = Matrix::Zero(X.rows(), X.rows());
  G.selfadjointView<Eigen::Lower>().rankUpdate(X);
  G.triangularView<Eigen::StrictlyUpper>() = G.transpose();
  return G;
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

inline SymEigen sym_eigen(const MatRef& A, bool want_vectors = true) {
  if (A.rows() != A.cols()) throw ts_error(ErrorKind::argument, "sym_eigen: matrix is not square");
  const int n = static_cast<int>(A.rows());
  SymEigen out;
  out.vectors = A;
  out.values.resize(n);
  if (n == 0) return out;
  const char jobz = want_vectors ? 'V' : 'N', uplo = 'L';
  int info = 0, lwork = -1, liwork = -1, iwork_query = 0;
  double work_query = 0;
  dsyevd_(&jobz, &uplo, &n, out.vectors.data(), &n, out.values.data(), &work_query, &lwork,
          &iwork_query, &liwork, &info, 1, 1);
  lwork = static_cast<int>(work_query);
  liwork = iwork_query;
  std::vector<double> work(static_cast<std::size_t>(std::max(1, lwork)));
  std::vector<int> iwork(static_cast<std::size_t>(std::max(1, liwork)));
  dsyevd_(&jobz, &uplo, &n, out.vectors.data(), &n, out.values.data(), work.data(), &lwork,
          iwork.data(), &liwork, &info, 1, 1);
  if (info != 0) throw ts_error(ErrorKind::internal, "LAPACK dsyevd failed (info = " + std::to_string(info) + ")");
  if (!want_vectors) out.vectors.resize(0, 0);
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
