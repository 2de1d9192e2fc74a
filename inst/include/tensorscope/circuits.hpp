// Circuit analysis for transformers: attention entropy, diagonal (previous-token,
// induction, duplicate-token) scores, attention rollout and attention flow (Abnar &
// Zuidema 2020), and Q/K/V-composition scores (Elhage et al. 2021) with a Monte-Carlo
// random baseline.
//
// Attention patterns are stored as a sequence of m row-stochastic matrices, each
// n_query x n_key, column-major and contiguous (one per layer x head x sequence):
// element (q, k) of matrix j is at a[j * nq * nk + q + k * nq].
//
// Composition scores use the row-vector convention of TransformerLens: the residual
// stream is a row vector x, a head reads q = x W_Q, k = x W_K, v = x W_V (d_model x
// d_head) and writes z W_O (W_O: d_head x d_model), so OV = W_V W_O and QK = W_Q W_K^T
// (both d_model x d_model) and the attention score is x_q QK x_k^T. For a source head s
// in an earlier layer and a destination head t,
//   score = ||OV_s M_t||_F / (||OV_s||_F ||M_t||_F),  M_t = QK_t (Q), QK_t^T (K), OV_t (V).
// Low-rank evaluation, never forming a d_model x d_model matrix: with G^(1/2) the
// symmetric PSD square root of a small Gram matrix, ||A B^T||_F = ||A (B^T B)^(1/2)||_F
// for any A, B with the same number of columns, so
//   ||OV_s M_t||_F = ||P_s^T R_t||_F,  P_s = W_O,s^T (W_V,s^T W_V,s)^(1/2)   (d x d_head)
//   R_t = W_Q,t (W_K,t^T W_K,t)^(1/2)  (Q),  W_K,t (W_Q,t^T W_Q,t)^(1/2)  (K),
//         W_V,t (W_O,t W_O,t^T)^(1/2)  (V),
// and ||OV_s||_F = ||P_s||_F, ||M_t||_F = ||R_t||_F. All pairs of one (source layer,
// destination layer) come from one GEMM of the stacked P's and R's (cost d (H h)^2 per
// layer pair instead of d^3 per head pair).
#pragma once

#include "common.hpp"
#include "linalg.hpp"

#include <cmath>
#include <limits>
#include <queue>

namespace tensorscope {

// ---------------------------------------------------------------------------------
// Patterns

// Row sums of every matrix: nq x m.
inline Matrix pattern_row_sums(const double* a, Index nq, Index nk, Index m, const Exec& ex) {
  Matrix s = Matrix::Zero(nq, m);
#pragma omp parallel for num_threads(omp_threads(ex.threads)) schedule(static)
  for (Index j = 0; j < m; ++j) {
    const double* A = a + j * nq * nk;
    for (Index k = 0; k < nk; ++k)
      for (Index q = 0; q < nq; ++q) s(q, j) += A[q + k * nq];
  }
  return s;
}

// Shannon entropy (natural log) of every row: nq x m; 0 log 0 = 0.
inline Matrix attention_entropy(const double* a, Index nq, Index nk, Index m, const Exec& ex) {
  Matrix e = Matrix::Zero(nq, m);
#pragma omp parallel for num_threads(omp_threads(ex.threads)) schedule(static)
  for (Index j = 0; j < m; ++j) {
    const double* A = a + j * nq * nk;
    for (Index k = 0; k < nk; ++k)
      for (Index q = 0; q < nq; ++q) {
        const double v = A[q + k * nq];
        if (v > 0) e(q, j) -= v * std::log(v);
      }
  }
  return e;
}

// Mean over queries q in [q_begin, q_end) of A[q, q + offset] (keys outside [0, nk)
// are skipped) for every matrix: a vector of length m (NaN when no query qualifies).
inline Vector diagonal_mean(const double* a, Index nq, Index nk, Index m, Index offset,
                            Index q_begin, Index q_end, const Exec& ex) {
  Vector out(m);
  q_begin = std::max<Index>(q_begin, std::max<Index>(0, -offset));
  q_end = std::min<Index>(q_end, std::min<Index>(nq, nk - offset));
#pragma omp parallel for num_threads(omp_threads(ex.threads)) schedule(static)
  for (Index j = 0; j < m; ++j) {
    const double* A = a + j * nq * nk;
    double s = 0;
    for (Index q = q_begin; q < q_end; ++q) s += A[q + (q + offset) * nq];
    out(j) = q_end > q_begin ? s / static_cast<double>(q_end - q_begin)
                             : std::numeric_limits<double>::quiet_NaN();
  }
  return out;
}

// ---------------------------------------------------------------------------------
// Rollout and flow (Abnar & Zuidema 2020). `layers` holds, for one sequence, the
// head-fused n x n attention of each layer in order; with `residual`, each becomes
// 0.5 A + 0.5 I, rows renormalised (their treatment of the skip connection).

// Rows divided by their sums (rows summing to zero are left as they are).
inline void make_row_stochastic(Matrix& A) {
  const Vector r = A.rowwise().sum();
  for (Index i = 0; i < A.rows(); ++i)
    if (r(i) > 0) A.row(i) /= r(i);
}

// Rollout: R_1 = A_1, R_l = A_l R_{l-1}; returns R_L (n x n, output token x input token).
inline Matrix attention_rollout(const std::vector<Matrix>& A) {
  if (A.empty()) throw ts_error(ErrorKind::empty, "attention_rollout: no layers");
  Matrix R = A[0];
  for (std::size_t l = 1; l < A.size(); ++l) R = A[l] * R;
  return R;
}

// Maximum flow by Dinic's algorithm on a small graph with real capacities.
class MaxFlow {
 public:
  explicit MaxFlow(Index n) : head_(static_cast<std::size_t>(n), -1), level_(n), it_(n) {}
  void add_edge(Index u, Index v, double cap) {
    to_.push_back(v), cap_.push_back(cap), next_.push_back(head_[u]), head_[u] = Index(to_.size()) - 1;
    to_.push_back(u), cap_.push_back(0.0), next_.push_back(head_[v]), head_[v] = Index(to_.size()) - 1;
  }
  // Flow value from s to t; the capacities are restored afterwards so the graph can be
  // reused for another (s, t).
  double run(Index s, Index t) {
    std::vector<double> saved = cap_;
    double total = 0;
    while (bfs(s, t)) {
      for (std::size_t i = 0; i < it_.size(); ++i) it_[i] = head_[i];
      for (double f; (f = dfs(s, t, std::numeric_limits<double>::infinity())) > eps_;) total += f;
    }
    cap_.swap(saved);
    return total;
  }

 private:
  bool bfs(Index s, Index t) {
    std::fill(level_.begin(), level_.end(), -1);
    std::queue<Index> q;
    level_[s] = 0;
    q.push(s);
    while (!q.empty()) {
      const Index u = q.front();
      q.pop();
      for (Index e = head_[u]; e >= 0; e = next_[e])
        if (cap_[e] > eps_ && level_[to_[e]] < 0) {
          level_[to_[e]] = level_[u] + 1;
          q.push(to_[e]);
        }
    }
    return level_[t] >= 0;
  }
  double dfs(Index u, Index t, double f) {
    if (u == t) return f;
    for (Index& e = it_[u]; e >= 0; e = next_[e]) {
      const Index v = to_[e];
      if (cap_[e] > eps_ && level_[v] == level_[u] + 1) {
        const double d = dfs(v, t, std::min(f, cap_[e]));
        if (d > eps_) {
          cap_[e] -= d;
          cap_[e ^ 1] += d;
          return d;
        }
      }
    }
    return 0;
  }
  static constexpr double eps_ = 1e-12;
  std::vector<Index> head_, to_, next_;
  std::vector<double> cap_;
  std::vector<Index> level_, it_;
};

// Attention flow: nodes (l, i) for l = 0..L (l = 0: input tokens), an edge from
// (l, i) to (l - 1, j) with capacity A_l[i, j]; F[i, j] = max flow from output token
// (L, i) to input token (0, j), each row then normalised to sum to 1 (as in Abnar &
// Zuidema's code). Rows (output tokens) run in parallel, each on its own graph.
inline Matrix attention_flow(const std::vector<Matrix>& A, const Exec& ex) {
  if (A.empty()) throw ts_error(ErrorKind::empty, "attention_flow: no layers");
  const Index L = static_cast<Index>(A.size()), n = A[0].rows();
  auto build = [&]() {
    MaxFlow g((L + 1) * n);
    for (Index l = 1; l <= L; ++l)
      for (Index i = 0; i < n; ++i)
        for (Index j = 0; j < n; ++j)
          if (A[l - 1](i, j) > 0) g.add_edge(l * n + i, (l - 1) * n + j, A[l - 1](i, j));
    return g;
  };
  Matrix F = Matrix::Zero(n, n);
  const Blocks blocks(n, n);
#pragma omp parallel num_threads(omp_threads(ex.threads))
  {
    MaxFlow g = build();
#pragma omp for schedule(dynamic)
    for (Index b = 0; b < blocks.count; ++b)
      for (Index i = blocks.begin(b); i < blocks.end(b); ++i)
        for (Index j = 0; j < n; ++j) F(i, j) = g.run(L * n + i, j);
  }
  for (Index i = 0; i < n; ++i) {
    const double s = F.row(i).sum();
    if (s > 0) F.row(i) /= s;
  }
  return F;
}

enum class HeadFusion { mean, max, min };

// Head-fused attention of sequence b for layers 0..n_layers-1 of an n x n x H x B x L
// pattern array (heads fused by mean, max or min); with `residual`, A + I with rows
// renormalised. What rollout and flow propagate, and what attention_graph() draws.
inline std::vector<Matrix> fused_attention(const double* a, Index n, Index H, Index B, Index n_layers, Index b,
                                           HeadFusion fusion, bool residual) {
  const Index mat = n * n;
  std::vector<Matrix> layers;
  layers.reserve(static_cast<std::size_t>(n_layers));
  for (Index l = 0; l < n_layers; ++l) {
    Matrix F(n, n);
    for (Index h = 0; h < H; ++h) {
      Eigen::Map<const Matrix> A(a + ((l * B + b) * H + h) * mat, n, n);
      if (h == 0) F = A;
      else if (fusion == HeadFusion::mean) F += A;
      else if (fusion == HeadFusion::max) F = F.cwiseMax(A);
      else F = F.cwiseMin(A);
    }
    if (fusion == HeadFusion::mean) F /= static_cast<double>(H);
    if (residual) {
      F += Matrix::Identity(n, n);
      make_row_stochastic(F);
    }
    layers.push_back(std::move(F));
  }
  return layers;
}

// Rollout or flow for every sequence, heads fused first (rows of each layer
// renormalised). Returns n x (n B): sequence b's n x n result (output token x input
// token) in columns [b n, (b + 1) n).
inline Matrix attention_propagate(const double* a, Index n, Index H, Index B, Index n_layers,
                                  HeadFusion fusion, bool residual, bool flow, const Exec& ex) {
  Matrix out(n, n * B);
  for (Index b = 0; b < B; ++b) {
    ex.check();
    std::vector<Matrix> layers = fused_attention(a, n, H, B, n_layers, b, fusion, residual);
    if (!residual)
      for (Matrix& A : layers) make_row_stochastic(A);
    out.middleCols(b * n, n) = flow ? attention_flow(layers, ex) : attention_rollout(layers);
  }
  return out;
}

// ---------------------------------------------------------------------------------
// Composition scores

enum class CompType { q = 0, k = 1, v = 2 };

// Weights of every head, stacked: head g = h + H * l owns columns [g * w, (g + 1) * w)
// of each matrix. Q, K: d x (hq H L); V, Ot (= W_O^T): d x (hv H L).
struct HeadWeights {
  MatRef Q, K, V, Ot;
  Index layers, heads;
};

namespace detail {

inline Matrix cols(const MatRef& X, Index g, Index w) { return X.middleCols(g * w, w); }

// The factors P (source side) and R (destination side, per type) of every head.
struct CompFactors {
  Matrix P;                 // d x (hv G)
  std::vector<Matrix> R;    // per type: d x (w G)
  Vector norm_P;            // ||OV_g||_F
  std::vector<Vector> norm_R;
};

inline CompFactors comp_factors(const HeadWeights& W, const std::vector<CompType>& types) {
  const Index G = W.layers * W.heads, d = W.Q.rows();
  const Index hq = W.Q.cols() / G, hv = W.V.cols() / G;
  CompFactors f;
  f.P.resize(d, hv * G);
  f.norm_P.resize(G);
  f.R.assign(3, Matrix());
  f.norm_R.assign(3, Vector());
  for (CompType t : types) {
    const Index w = t == CompType::v ? hv : hq;
    f.R[int(t)].resize(d, w * G);
    f.norm_R[int(t)].resize(G);
  }
  for (Index g = 0; g < G; ++g) {
    const Matrix Vg = cols(W.V, g, hv), Og = cols(W.Ot, g, hv);
    f.P.middleCols(g * hv, hv) = Og * psd_sqrt(crossprod(Vg));
    f.norm_P(g) = f.P.middleCols(g * hv, hv).norm();
    for (CompType t : types) {
      Matrix& R = f.R[int(t)];
      if (t == CompType::q) {
        R.middleCols(g * hq, hq) = cols(W.Q, g, hq) * psd_sqrt(crossprod(cols(W.K, g, hq)));
      } else if (t == CompType::k) {
        R.middleCols(g * hq, hq) = cols(W.K, g, hq) * psd_sqrt(crossprod(cols(W.Q, g, hq)));
      } else {
        R.middleCols(g * hv, hv) = Vg * psd_sqrt(crossprod(Og));
      }
      const Index w = t == CompType::v ? hv : hq;
      f.norm_R[int(t)](g) = R.middleCols(g * w, w).norm();
    }
  }
  return f;
}

inline double ratio(double num, double a, double b) {
  return (a > 0 && b > 0) ? num / (a * b) : std::numeric_limits<double>::quiet_NaN();
}

}  // namespace detail

// Scores of every (source head in layer l, destination head in layer m > l) pair for
// each requested type. Result: one column per type, rows ordered by source layer,
// destination layer, source head, destination head (all fastest last), i.e. row
// index = ((pair of layers) * H + src_head) * H + dst_head with layer pairs in the
// order (0,1), (0,2), ..., (0,L-1), (1,2), ...
inline Matrix composition_scores(const HeadWeights& W, const std::vector<CompType>& types,
                                 const Exec& ex) {
  const Index L = W.layers, H = W.heads, G = L * H;
  if (G == 0 || W.Q.cols() % G || W.V.cols() % G || W.K.cols() != W.Q.cols() ||
      W.Ot.cols() != W.V.cols() || W.K.rows() != W.Q.rows() || W.V.rows() != W.Q.rows() ||
      W.Ot.rows() != W.Q.rows())
    throw ts_error(ErrorKind::mismatch, "composition_scores: inconsistent weight shapes");
  const Index hq = W.Q.cols() / G, hv = W.V.cols() / G;
  const detail::CompFactors f = detail::comp_factors(W, types);
  const Index n_layer_pairs = n_pairs(L);
  Matrix out(n_layer_pairs * H * H, static_cast<Index>(types.size()));
  Index lp = 0;
  for (Index l = 0; l < L; ++l) {
    const auto Pl = f.P.middleCols(l * H * hv, H * hv);
    for (Index m = l + 1; m < L; ++m, ++lp) {
      ex.check();
      for (std::size_t ti = 0; ti < types.size(); ++ti) {
        const CompType t = types[ti];
        const Index w = t == CompType::v ? hv : hq;
        const Matrix C = Pl.transpose() * f.R[int(t)].middleCols(m * H * w, H * w);  // BLAS
#pragma omp parallel for num_threads(omp_threads(ex.threads)) schedule(static)
        for (Index s = 0; s < H; ++s)
          for (Index u = 0; u < H; ++u) {
            const double num = C.block(s * hv, u * w, hv, w).norm();
            out((lp * H + s) * H + u, Index(ti)) =
                detail::ratio(num, f.norm_P(l * H + s), f.norm_R[int(t)](m * H + u));
          }
      }
    }
  }
  return out;
}

// Fills x with standard normal deviates from the counter-based generator (Box-Muller,
// both outputs of each pair used).
inline void fill_normal(Rng& g, double* x, Index n) {
  for (Index i = 0; i < n; i += 2) {
    const double u1 = (static_cast<double>(g.next() >> 11) + 0.5) * 0x1.0p-53;
    const double u2 = static_cast<double>(g.next() >> 11) * 0x1.0p-53;
    const double r = std::sqrt(-2.0 * std::log(u1)), t = 6.283185307179586 * u2;
    x[i] = r * std::cos(t);
    if (i + 1 < n) x[i + 1] = r * std::sin(t);
  }
}

// Random baseline: composition scores of independent heads whose W_Q, W_K, W_V, W_O
// have i.i.d. N(0, 1) entries (the scale does not matter) and the given shapes. Draw
// i uses stream i of `seed`, so results do not depend on threads. Returns n_draws x
// types. For such rotation-invariant matrices E[score^2] = 1/d_model exactly.
inline Matrix composition_baseline(Index d, Index hq, Index hv, const std::vector<CompType>& types,
                                   Index n_draws, std::uint64_t seed, const Exec& ex) {
  Matrix out(n_draws, static_cast<Index>(types.size()));
  for (Index i = 0; i < n_draws; ++i) {
    if (i % 16 == 0) ex.check();
    Rng g(seed, static_cast<std::uint64_t>(i));
    Matrix Q(d, 2 * hq), K(d, 2 * hq), V(d, 2 * hv), Ot(d, 2 * hv);
    for (Matrix* M : {&Q, &K, &V, &Ot}) fill_normal(g, M->data(), M->size());
    const HeadWeights W{Q, K, V, Ot, 2, 1};
    out.row(i) = composition_scores(W, types, ex).row(0);
  }
  return out;
}

}  // namespace tensorscope
