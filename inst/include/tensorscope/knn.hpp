// Exact k-nearest-neighbour graph (Euclidean), reused by intrinsic dimension, Ricci
// curvature and the fiber-bundle test.
//
// Distances come from blocked GEMMs: with X column-centred and scaled by its largest
// absolute value (which avoids overflow and underflow and limits cancellation),
// ||x_i - x_j||^2 = ||x_i||^2 + ||x_j||^2 - 2 x_i.x_j. Row block I (rows [b0, b1)) is
// multiplied with rows [b0, n) only, X_I X_{[b0,n)}^T, one BLAS call outside any
// parallel region; the block then feeds the candidate heaps of its own rows (all
// columns >= b0) and, transposed, of the rows >= b1, so each pair is computed once
// (half the flops of the full product). Selection runs in parallel over rows; every
// row keeps the K = k + slack smallest candidates under the total order (distance,
// index), so the kept set does not depend on the thread count or on the order of
// insertion. Finally the K candidates of each row are re-measured exactly (direct
// differences, scaled so that nothing underflows) and the k closest are kept, which
// removes the cancellation error of the GEMM identity: exact duplicates get distance 0.
#pragma once

#include "common.hpp"
#include "linalg.hpp"

#include <cmath>
#include <numeric>

namespace tensorscope {

struct Knn {
  Eigen::Matrix<int, Eigen::Dynamic, Eigen::Dynamic> index;  // n x k, 0-based, nearest first
  Matrix dist;                                               // n x k, Euclidean distances
};

namespace detail {

struct Cand {
  double d;
  int j;
};
inline bool cand_less(const Cand& a, const Cand& b) { return a.d < b.d || (a.d == b.d && a.j < b.j); }

// Bounded max-heap of the K best candidates of one row.
struct RowHeap {
  Cand* c;
  int size;
  int cap;
  void push(double d, int j) {
    if (size < cap) {
      c[size++] = {d, j};
      std::push_heap(c, c + size, cand_less);
    } else if (cand_less({d, j}, c[0])) {
      std::pop_heap(c, c + size, cand_less);
      c[size - 1] = {d, j};
      std::push_heap(c, c + size, cand_less);
    }
  }
  bool worth(double d) const { return size < cap || d <= c[0].d; }
};

// Euclidean distance between columns i and j of Xt (points in columns, contiguous;
// scaled to max |x| <= 1, so the plain
// sum of squares cannot overflow); differences so small that their squares could
// underflow are re-measured relative to the largest difference.
inline double exact_distance(const Matrix& Xt, Index i, Index j) {
  const double* a = Xt.col(i).data();
  const double* b = Xt.col(j).data();
  const Index p = Xt.rows();
  double s = 0;
  for (Index c = 0; c < p; ++c) {
    const double t = a[c] - b[c];
    s += t * t;
  }
  if (s > 1e-280) return std::sqrt(s);
  double m = 0;
  for (Index c = 0; c < p; ++c) m = std::max(m, std::abs(a[c] - b[c]));
  if (m == 0) return 0;
  const double inv = 1.0 / m;
  s = 0;
  for (Index c = 0; c < p; ++c) {
    const double t = (a[c] - b[c]) * inv;
    s += t * t;
  }
  return m * std::sqrt(s);
}

}  // namespace detail

// Indices (ascending) of the first occurrence of every distinct row of X.
inline std::vector<Index> unique_rows(const MatRef& X) {
  const Index n = X.rows(), p = X.cols();
  std::vector<Index> ord(static_cast<std::size_t>(n));
  std::iota(ord.begin(), ord.end(), Index(0));
  auto row_less = [&](Index a, Index b) {
    for (Index c = 0; c < p; ++c) {
      if (X(a, c) < X(b, c)) return true;
      if (X(b, c) < X(a, c)) return false;
    }
    return a < b;
  };
  std::sort(ord.begin(), ord.end(), row_less);
  std::vector<Index> keep;
  for (std::size_t r = 0; r < ord.size(); ++r) {
    bool same = r > 0;
    if (same)
      for (Index c = 0; c < p; ++c)
        if (X(ord[r], c) != X(ord[r - 1], c)) {
          same = false;
          break;
        }
    if (!same) keep.push_back(ord[r]);
  }
  std::sort(keep.begin(), keep.end());
  return keep;
}

// Exact kNN of every row of X (self excluded). Needs 1 <= k < n.
inline Knn knn(const MatRef& X, int k, const Exec& ex, Index block_rows = 0) {
  const Index n = X.rows();
  if (k < 1 || k >= n) throw ts_error(ErrorKind::argument, "knn: k must be in [1, n - 1]");
  Matrix Xc = centre_columns(X);
  const double scale = Xc.cwiseAbs().maxCoeff();
  if (scale > 0) Xc /= scale;
  const Vector nrm = Xc.rowwise().squaredNorm();
  const int K = static_cast<int>(std::min<Index>(n - 1, k + 4 + k / 8));
  std::vector<detail::Cand> store(static_cast<std::size_t>(n) * K);
  std::vector<detail::RowHeap> heap(static_cast<std::size_t>(n));
  for (Index i = 0; i < n; ++i) heap[i] = {store.data() + i * K, 0, K};

  if (block_rows <= 0) block_rows = std::max<Index>(32, std::min<Index>(1024, 4000000 / std::max<Index>(1, n)));
  Matrix G;
  for (Index b0 = 0; b0 < n; b0 += block_rows) {
    const Index b1 = std::min(n, b0 + block_rows), bs = b1 - b0, w = n - b0;
    G.noalias() = Xc.middleRows(b0, bs) * Xc.middleRows(b0, w).transpose();  // BLAS
#pragma omp parallel num_threads(omp_threads(ex.threads))
    {
#pragma omp for schedule(static)
      for (Index i = b0; i < b1; ++i) {
        detail::RowHeap& h = heap[i];
        const double ni = nrm(i);
        for (Index j = b0; j < n; ++j) {
          if (j == i) continue;
          const double d = std::max(0.0, ni + nrm(j) - 2.0 * G(i - b0, j - b0));
          if (h.worth(d)) h.push(d, static_cast<int>(j));
        }
      }
#pragma omp for schedule(static)
      for (Index j = b1; j < n; ++j) {
        detail::RowHeap& h = heap[j];
        const double nj = nrm(j);
        const double* g = G.col(j - b0).data();
        for (Index i = b0; i < b1; ++i) {
          const double d = std::max(0.0, nj + nrm(i) - 2.0 * g[i - b0]);
          if (h.worth(d)) h.push(d, static_cast<int>(i));
        }
      }
    }
    ex.check();
  }

  G.resize(0, 0);
  const Matrix Xt = Xc.transpose();  // points in contiguous columns for the re-measurement
  Knn out;
  out.index.resize(n, k);
  out.dist.resize(n, k);
#pragma omp parallel for num_threads(omp_threads(ex.threads)) schedule(static)
  for (Index i = 0; i < n; ++i) {
    detail::RowHeap& h = heap[i];
    for (int r = 0; r < h.size; ++r) h.c[r].d = detail::exact_distance(Xt, i, h.c[r].j);
    std::sort(h.c, h.c + h.size, detail::cand_less);
    for (int r = 0; r < k; ++r) {
      out.index(i, r) = h.c[r].j;
      out.dist(i, r) = h.c[r].d * scale;
    }
  }
  return out;
}

}  // namespace tensorscope
