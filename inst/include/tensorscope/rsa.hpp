// Inference for RSA: permutation of condition labels and bootstrap over conditions.
//
// Permutations: the neural side is prepared once (ranked, centred, normalised, ...);
// permuting the conditions of the model RDM only permutes the entries of its prepared
// vector, so each permutation is a gather through an n x n lookup table, and a batch of
// permutations against every subject is one matrix product. For tau-a the neural side
// is sorted once and each permutation costs a gather plus a Fenwick-tree inversion
// count on integer codes. Permutation / bootstrap sample b is drawn from random stream
// b of the seed, so results do not depend on the number of threads.
#pragma once

#include "common.hpp"
#include "compare.hpp"

namespace tensorscope {

// Random permutation of 0..n-1 for stream b of seed.
inline void permutation(Index n, std::uint64_t seed, std::uint64_t b, std::vector<Index>& p) {
  p.resize(static_cast<std::size_t>(n));
  std::iota(p.begin(), p.end(), Index(0));
  Rng rng(seed, b);
  rng.shuffle(p);
}

// lookup[a * n + b] = index of the pair {a, b} in the vector (pair_index order, or the
// packed order with the diagonal when `packed`).
inline std::vector<std::int32_t> pair_lookup(Index n, bool packed) {
  std::vector<std::int32_t> t(static_cast<std::size_t>(n * n), -1);
  for (Index a = 0; a < n; ++a)
    for (Index b = 0; b < n; ++b) {
      if (!packed && a == b) continue;
      const Index lo = std::min(a, b), hi = std::max(a, b);
      t[static_cast<std::size_t>(a * n + b)] =
          static_cast<std::int32_t>(packed ? packed_index(lo, hi, n) : pair_index(lo, hi, n));
    }
  return t;
}

// Null distribution of the similarity between a model RDM with permuted condition
// labels and each neural RDM. model: m; neural: s x m. Returns n_perm x s.
inline Matrix permutation_null(const VecRef& model, const MatRef& neural, Index n_cond, Compare method,
                               Index n_perm, std::uint64_t seed, const Exec& ex) {
  const Index m = model.size(), s = neural.rows();
  if (neural.cols() != m) throw ts_error(ErrorKind::mismatch, "permutation: RDMs have different numbers of pairs");
  if (n_pairs(n_cond) != m) throw ts_error(ErrorKind::mismatch, "permutation: vector length does not match n_cond");
  Matrix null(n_perm, s);
  const Index chunk = 2048;

  if (is_linear(method)) {
    const bool packed = uses_matrix(method);
    const Index mp = packed ? n_cond * (n_cond + 1) / 2 : m;
    const Vector um = prepare(model, method, n_cond);
    Matrix UN(mp, s);
    for (Index j = 0; j < s; ++j) UN.col(j) = prepare(neural.row(j).transpose(), method, n_cond);
    const std::vector<std::int32_t> lut = pair_lookup(n_cond, packed);
    // Each permutation is gathered into a thread-local vector and dotted with every
    // subject in the same pass: no BLAS call alternates with the OpenMP loop (their
    // thread pools would fight over the cores), and each value depends only on its
    // permutation, so the result is the same for any number of threads.
    for (Index b0 = 0; b0 < n_perm; b0 += chunk) {
      const Index nb = std::min(chunk, n_perm - b0);
#pragma omp parallel num_threads(omp_threads(ex.threads))
      {
        std::vector<Index> p;
        Vector g(mp);
#pragma omp for schedule(static)
        for (Index c = 0; c < nb; ++c) {
          permutation(n_cond, seed, static_cast<std::uint64_t>(b0 + c), p);
          double* out = g.data();
          const double* u = um.data();
          Index k = 0;
          for (Index a = 0; a < n_cond; ++a) {
            const std::int32_t* row = lut.data() + p[a] * n_cond;
            for (Index bb = packed ? a : a + 1; bb < n_cond; ++bb) out[k++] = u[row[p[bb]]];
          }
          for (Index j = 0; j < s; ++j) null(b0 + c, j) = g.dot(UN.col(j));
        }
      }
      ex.check();
    }
    return null;
  }

  if (method == Compare::kendall_tau_a) {
    // Neural side fixed (sorted once per subject); the permuted model's codes are
    // gathered directly into each subject's sorted order.
    const Codes cm = dense_codes(model);
    std::vector<std::int32_t> cnt;
    const long long n2 = detail::tied_pairs_codes(cm.code.data(), m, cm.levels, cnt);
    const std::vector<std::int32_t> lut = pair_lookup(n_cond, false);
    std::vector<KendallFixed> fx;
    std::vector<std::vector<std::int32_t>> pa(static_cast<std::size_t>(s)), pb(static_cast<std::size_t>(s));
    {
      std::vector<Index> pi(static_cast<std::size_t>(m)), pj(static_cast<std::size_t>(m));
      Index k = 0;
      for (Index a = 0; a < n_cond; ++a)
        for (Index b = a + 1; b < n_cond; ++b) {
          pi[k] = a;
          pj[k] = b;
          ++k;
        }
      for (Index j = 0; j < s; ++j) {
        fx.emplace_back(neural.row(j).transpose());
        const auto& ord = fx.back().order();
        pa[j].resize(static_cast<std::size_t>(m));
        pb[j].resize(static_cast<std::size_t>(m));
        for (Index t = 0; t < m; ++t) {
          pa[j][t] = static_cast<std::int32_t>(pi[ord[t]]);
          pb[j][t] = static_cast<std::int32_t>(pj[ord[t]]);
        }
      }
    }
    for (Index b0 = 0; b0 < n_perm; b0 += chunk) {
      const Index nb = std::min(chunk, n_perm - b0);
#pragma omp parallel num_threads(omp_threads(ex.threads))
      {
        TauWork w;
        std::vector<std::int32_t> ys(static_cast<std::size_t>(m));
        std::vector<Index> p;
#pragma omp for schedule(static)
        for (Index c = 0; c < nb; ++c) {
          permutation(n_cond, seed, static_cast<std::uint64_t>(b0 + c), p);
          for (Index j = 0; j < s; ++j) {
            const std::int32_t* a = pa[j].data();
            const std::int32_t* b = pb[j].data();
            for (Index t = 0; t < m; ++t) ys[t] = cm.code[static_cast<std::size_t>(lut[p[a[t]] * n_cond + p[b[t]]])];
            null(b0 + c, j) = fx[static_cast<std::size_t>(j)].tau(ys.data(), cm.levels, n2, w);
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
  std::vector<Index> p;
  for (Index b0 = 0; b0 < n_perm; b0 += chunk) {
    const Index nb = std::min(chunk, n_perm - b0);
    for (Index c = 0; c < nb; ++c) {
      permutation(n_cond, seed, static_cast<std::uint64_t>(b0 + c), p);
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
// Rank-based methods re-rank each resample by counting over integer codes.
// models: k x m; neural: s x m. Returns n_boot x (k * s), column = model + k * subject.
inline Matrix bootstrap_conditions(const MatRef& models, const MatRef& neural, Index n_cond,
                                   Compare method, Index n_boot, std::uint64_t seed, const Exec& ex) {
  if (uses_matrix(method) || method == Compare::bures)
    throw ts_error(ErrorKind::argument, "bootstrap over conditions supports pearson, spearman, cosine, kendall_tau_a and rho_a");
  const Index k = models.rows(), s = neural.rows(), m = models.cols();
  if (neural.cols() != m || n_pairs(n_cond) != m) throw ts_error(ErrorKind::mismatch, "bootstrap: RDM sizes differ");
  const Index nv = k + s;
  auto row = [&](Index v) { return v < k ? models.row(v) : neural.row(v - k); };
  const bool ranked = method == Compare::spearman || method == Compare::rho_a || method == Compare::kendall_tau_a;
  std::vector<Codes> codes(ranked ? static_cast<std::size_t>(nv) : 0);
  if (ranked)
    for (Index v = 0; v < nv; ++v) codes[v] = dense_codes(row(v).transpose());
  const std::vector<std::int32_t> lut = pair_lookup(n_cond, false);
  Matrix out(n_boot, k * s);
  const Index chunk = 64;
  for (Index b0 = 0; b0 < n_boot; b0 += chunk) {
    const Index nb = std::min(chunk, n_boot - b0);
#pragma omp parallel num_threads(omp_threads(ex.threads))
    {
      std::vector<std::int32_t> idx;
      std::vector<std::int32_t> gc;  // gathered codes, nv x mb
      std::vector<double> ws;
      Matrix U;                      // prepared vectors, mb x nv
      TauWork w;
      std::vector<Index> smp(static_cast<std::size_t>(n_cond));
#pragma omp for schedule(dynamic)
      for (Index c = 0; c < nb; ++c) {
        Rng rng(seed, static_cast<std::uint64_t>(b0 + c));
        for (auto& v : smp) v = static_cast<Index>(rng.below(static_cast<std::uint64_t>(n_cond)));
        idx.clear();
        for (Index a = 0; a < n_cond; ++a) {
          const std::int32_t* lrow = lut.data() + smp[a] * n_cond;
          for (Index b = a + 1; b < n_cond; ++b)
            if (smp[a] != smp[b]) idx.push_back(lrow[smp[b]]);
        }
        const Index mb = static_cast<Index>(idx.size());
        if (mb < 2) {
          // fewer than 3 distinct conditions drawn (likely when n_cond is tiny): no
          // correlation is defined on 0 or 1 pair; the sample is marked NaN and the
          // caller drops it (and says how many it dropped)
          for (Index t = 0; t < k * s; ++t) out(b0 + c, t) = std::numeric_limits<double>::quiet_NaN();
          continue;
        }
        if (method == Compare::kendall_tau_a) {
          gc.resize(static_cast<std::size_t>(nv * mb));
          for (Index v = 0; v < nv; ++v)
            for (Index t = 0; t < mb; ++t) gc[v * mb + t] = codes[v].code[static_cast<std::size_t>(idx[t])];
          for (Index j = 0; j < s; ++j)
            for (Index i = 0; i < k; ++i)
              out(b0 + c, i + k * j) = tau_a_codes(gc.data() + i * mb, codes[i].levels, gc.data() + (k + j) * mb,
                                                   codes[k + j].levels, mb, w);
          continue;
        }
        U.resize(mb, nv);
        for (Index v = 0; v < nv; ++v) {
          double* u = U.col(v).data();
          if (ranked) {
            gc.resize(static_cast<std::size_t>(mb));
            for (Index t = 0; t < mb; ++t) gc[t] = codes[v].code[static_cast<std::size_t>(idx[t])];
            ranks_from_codes(gc.data(), mb, codes[v].levels, u, ws);
          } else {
            const auto r = row(v);
            for (Index t = 0; t < mb; ++t) u[t] = r(idx[t]);
          }
          Eigen::Map<Vector> uv(u, mb);
          if (method != Compare::cosine) uv.array() -= uv.mean();
          const double nrm = uv.norm();
          uv /= nrm > 0 ? nrm : std::numeric_limits<double>::quiet_NaN();
          if (method == Compare::rho_a) {
            // rho-a: 12 sum (r - rbar)(s - sbar) / (m^3 - m) = cosine of centred ranks
            // times their norms over (m^3 - m) / 12
            const double md = static_cast<double>(mb);
            uv *= nrm * std::sqrt(12.0 / (md * md * md - md));
          }
        }
        for (Index j = 0; j < s; ++j)
          for (Index i = 0; i < k; ++i) out(b0 + c, i + k * j) = U.col(i).dot(U.col(k + j));
      }
    }
    ex.check();
  }
  return out;
}

}  // namespace tensorscope
