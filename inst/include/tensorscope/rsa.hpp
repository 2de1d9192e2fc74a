// Inference for RSA: permutation of condition labels and bootstrap over conditions.
//
// Permutations: the neural side is prepared once (ranked, centred, normalised, ...);
// permuting the conditions of the model RDM only permutes the entries of its prepared
// vector, so each permutation is a gather, and a batch of permutations against every
// subject is one matrix product. Permutation b is drawn from random stream b of the
// seed, so results do not depend on the number of threads.
#pragma once

#include "common.hpp"
#include "compare.hpp"

namespace tensorscope {

// Random permutation of 0..n-1 for stream b of seed.
inline std::vector<Index> permutation(Index n, std::uint64_t seed, std::uint64_t b) {
  std::vector<Index> p(static_cast<std::size_t>(n));
  std::iota(p.begin(), p.end(), Index(0));
  Rng rng(seed, b);
  rng.shuffle(p);
  return p;
}

// Null distribution of the similarity between a model RDM with permuted condition
// labels and each neural RDM. model: m; neural: s x m. Returns n_perm x s.
inline Matrix permutation_null(const VecRef& model, const MatRef& neural, Index n_cond, Compare method,
                               Index n_perm, std::uint64_t seed, const Exec& ex) {
  const Index m = model.size(), s = neural.rows();
  if (neural.cols() != m) throw invalid_input("permutation: RDMs have different numbers of pairs");
  if (n_pairs(n_cond) != m) throw invalid_input("permutation: vector length does not match n_cond");
  Matrix null(n_perm, s);
  const Index chunk = 256;

  if (is_linear(method)) {
    const bool packed = uses_matrix(method);
    const Index mp = packed ? n_cond * (n_cond + 1) / 2 : m;
    const Vector um = prepare(model, method, n_cond);
    Matrix UN(mp, s);
    for (Index j = 0; j < s; ++j) UN.col(j) = prepare(neural.row(j).transpose(), method, n_cond);
    Matrix block(mp, chunk);
    for (Index b0 = 0; b0 < n_perm; b0 += chunk) {
      const Index nb = std::min(chunk, n_perm - b0);
#pragma omp parallel for num_threads(omp_threads(ex.threads)) schedule(static)
      for (Index c = 0; c < nb; ++c) {
        const std::vector<Index> p = permutation(n_cond, seed, static_cast<std::uint64_t>(b0 + c));
        double* out = block.col(c).data();
        if (packed) {
          for (Index a = 0; a < n_cond; ++a)
            for (Index b = a; b < n_cond; ++b) {
              Index pa = p[a], pb = p[b];
              if (pa > pb) std::swap(pa, pb);
              out[packed_index(a, b, n_cond)] = um(packed_index(pa, pb, n_cond));
            }
        } else {
          Index k = 0;
          for (Index a = 0; a < n_cond; ++a)
            for (Index b = a + 1; b < n_cond; ++b) {
              Index pa = p[a], pb = p[b];
              if (pa > pb) std::swap(pa, pb);
              out[k++] = um(pair_index(pa, pb, n_cond));
            }
        }
      }
      null.middleRows(b0, nb).noalias() = block.leftCols(nb).transpose() * UN;
      ex.check();
    }
    return null;
  }

  if (method == Compare::kendall_tau_a) {
    // Neural side fixed (sorted once per subject); the permuted model is gathered
    // directly into each subject's sorted order.
    std::vector<KendallFixed> fx;
    for (Index j = 0; j < s; ++j) fx.emplace_back(neural.row(j).transpose());
    const long long n2 = tied_pairs(model);
    std::vector<Index> pi(static_cast<std::size_t>(m)), pj(static_cast<std::size_t>(m));
    {
      Index k = 0;
      for (Index a = 0; a < n_cond; ++a)
        for (Index b = a + 1; b < n_cond; ++b) {
          pi[k] = a;
          pj[k] = b;
          ++k;
        }
    }
    for (Index b0 = 0; b0 < n_perm; b0 += chunk) {
      const Index nb = std::min(chunk, n_perm - b0);
#pragma omp parallel num_threads(omp_threads(ex.threads))
      {
        std::vector<double> ys(static_cast<std::size_t>(m)), buf(static_cast<std::size_t>(m));
#pragma omp for schedule(static)
        for (Index c = 0; c < nb; ++c) {
          const std::vector<Index> p = permutation(n_cond, seed, static_cast<std::uint64_t>(b0 + c));
          for (Index j = 0; j < s; ++j) {
            const auto& ord = fx[static_cast<std::size_t>(j)].order();
            for (Index t = 0; t < m; ++t) {
              Index pa = p[pi[ord[t]]], pb = p[pj[ord[t]]];
              if (pa > pb) std::swap(pa, pb);
              ys[t] = model(pair_index(pa, pb, n_cond));
            }
            null(b0 + c, j) = fx[static_cast<std::size_t>(j)].tau(ys.data(), buf.data(), n2);
          }
        }
      }
      ex.check();
    }
    return null;
  }

  // Bures: the neural side's square root is fixed; the model's centred kernel is
  // permuted (P G P^T) for every permutation.
  std::vector<BuresSide> sn;
  for (Index j = 0; j < s; ++j) sn.push_back(bures_side(neural.row(j).transpose(), n_cond));
  const Matrix G = centred_kernel(model, n_cond);
  const double tg = G.trace();
  for (Index b0 = 0; b0 < n_perm; b0 += chunk) {
    const Index nb = std::min(chunk, n_perm - b0);
    for (Index c = 0; c < nb; ++c) {
      const std::vector<Index> p = permutation(n_cond, seed, static_cast<std::uint64_t>(b0 + c));
      Matrix Gp(n_cond, n_cond);
      for (Index bcol = 0; bcol < n_cond; ++bcol)
        for (Index a = 0; a < n_cond; ++a) Gp(a, bcol) = G(p[a], p[bcol]);
      for (Index j = 0; j < s; ++j) null(b0 + c, j) = bures_similarity(sn[static_cast<std::size_t>(j)], Gp, tg);
    }
    ex.check();
  }
  return null;
}

// Bootstrap over conditions: resample n conditions with replacement (stream b of the
// seed), keep the pairs of distinct original conditions (the copies of a condition
// resampled twice would have a dissimilarity of 0 that was never measured), and
// compare every model RDM with every neural RDM on those pairs. Vector methods only.
// models: k x m; neural: s x m. Returns n_boot x (k * s), column = model + k * subject.
inline Matrix bootstrap_conditions(const MatRef& models, const MatRef& neural, Index n_cond,
                                   Compare method, Index n_boot, std::uint64_t seed, const Exec& ex) {
  if (uses_matrix(method))
    throw invalid_input("bootstrap over conditions supports pearson, spearman, cosine, kendall_tau_a and rho_a");
  const Index k = models.rows(), s = neural.rows(), m = models.cols();
  if (neural.cols() != m || n_pairs(n_cond) != m) throw invalid_input("bootstrap: RDM sizes differ");
  Matrix out(n_boot, k * s);
  const Index chunk = 64;
  for (Index b0 = 0; b0 < n_boot; b0 += chunk) {
    const Index nb = std::min(chunk, n_boot - b0);
#pragma omp parallel for num_threads(omp_threads(ex.threads)) schedule(dynamic)
    for (Index c = 0; c < nb; ++c) {
      Rng rng(seed, static_cast<std::uint64_t>(b0 + c));
      std::vector<Index> smp(static_cast<std::size_t>(n_cond));
      for (auto& v : smp) v = static_cast<Index>(rng.below(static_cast<std::uint64_t>(n_cond)));
      std::vector<Index> idx;
      idx.reserve(static_cast<std::size_t>(m));
      for (Index a = 0; a < n_cond; ++a)
        for (Index b = a + 1; b < n_cond; ++b) {
          Index u = smp[a], v = smp[b];
          if (u == v) continue;
          if (u > v) std::swap(u, v);
          idx.push_back(pair_index(u, v, n_cond));
        }
      const Index mb = static_cast<Index>(idx.size());
      Matrix A(k, mb), B(s, mb);
      for (Index t = 0; t < mb; ++t) {
        for (Index i = 0; i < k; ++i) A(i, t) = models(i, idx[t]);
        for (Index j = 0; j < s; ++j) B(j, t) = neural(j, idx[t]);
      }
      Exec serial;
      serial.nested = true;
      const Matrix sim = compare_matrix(A, B, method, 0, serial);
      for (Index j = 0; j < s; ++j)
        for (Index i = 0; i < k; ++i) out(b0 + c, i + k * j) = sim(i, j);
    }
    ex.check();
  }
  return out;
}

}  // namespace tensorscope
