// tensorscope core: shared types, threading and interrupt policies.
// Header-only C++17 on Eigen and std; no R headers anywhere in the core.
#pragma once

#include <Eigen/Dense>

#include "errors.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace tensorscope {

using Matrix = Eigen::MatrixXd;
using Vector = Eigen::VectorXd;
using Index = Eigen::Index;
using MatRef = Eigen::Ref<const Eigen::MatrixXd>;
using VecRef = Eigen::Ref<const Eigen::VectorXd>;

// Errors: ts_error(kind, message) from errors.hpp. The R layer validates first; the
// core's checks are the last line of defence (and what a C++ caller such as bench/ sees).

// Interrupt policy: the glue passes a callable that may throw to abort (R's
// checkUserInterrupt). The core calls it only from the calling thread, outside
// parallel regions, between blocks of work.
using Interrupt = std::function<void()>;
inline void no_interrupt() {}

// Execution settings passed down from the glue.
struct Exec {
  int threads = 1;                      // OpenMP threads for the core's own loops
  Interrupt interrupt = no_interrupt;   // see above
  bool nested = false;                  // running inside a parallel region: no BLAS calls
  // most flops one BLAS/LAPACK call does in the interruptible paths (linalg.hpp's
  // product(), crossprod(X, ex), sym_eigen(A, v, ex)): ~0.1 s on one core
  double call_flops = 2.5e8;
  void check() const {
    if (interrupt) interrupt();
  }
};

// Index of the first value that is NA, NaN or infinite, or -1 (argument checks
// without allocating).
inline Index first_non_finite(const double* x, Index n) {
  for (Index i = 0; i < n; ++i)
    if (!std::isfinite(x[i])) return i;
  return -1;
}

inline int omp_threads(int requested) { return requested < 1 ? 1 : requested; }

// Work is split into blocks whose boundaries do not depend on the number of threads,
// and partial results are combined in block order, so results are identical for 1 and
// N threads.
struct Blocks {
  Index n, size, count;
  Blocks(Index n_, Index target_blocks = 256, Index min_size = 1)
      : n(n_) {
    size = std::max<Index>(min_size, (n + target_blocks - 1) / std::max<Index>(1, target_blocks));
    count = n == 0 ? 0 : (n + size - 1) / size;
  }
  Index begin(Index b) const { return b * size; }
  Index end(Index b) const { return std::min(n, (b + 1) * size); }
};

// Counter-based random numbers: stream k of seed s is independent of thread count.
// SplitMix64 (Steele, Lea & Flood 2014) seeds a xoshiro256** generator per stream.
inline std::uint64_t splitmix64(std::uint64_t& x) {
  std::uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

class Rng {
 public:
  Rng(std::uint64_t seed, std::uint64_t stream) {
    std::uint64_t x = seed * 0x2545F4914F6CDD1DULL + stream * 0x9E3779B97F4A7C15ULL + 0x632BE59BD9B4E019ULL;
    for (auto& si : s_) si = splitmix64(x);
  }
  std::uint64_t next() {
    const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const std::uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }
  // Uniform integer in [0, n) without modulo bias (Lemire 2019).
  std::uint64_t below(std::uint64_t n) {
    __uint128_t m = static_cast<__uint128_t>(next()) * n;
    std::uint64_t l = static_cast<std::uint64_t>(m);
    if (l < n) {
      const std::uint64_t t = (0 - n) % n;
      while (l < t) {
        m = static_cast<__uint128_t>(next()) * n;
        l = static_cast<std::uint64_t>(m);
      }
    }
    return static_cast<std::uint64_t>(m >> 64);
  }
  // Fisher-Yates shuffle of idx (portable: same result on every platform).
  template <class T>
  void shuffle(std::vector<T>& idx) {
    for (std::size_t i = idx.size(); i > 1; --i) {
      std::size_t j = static_cast<std::size_t>(below(i));
      std::swap(idx[i - 1], idx[j]);
    }
  }

 private:
  static std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  std::uint64_t s_[4];
};

}  // namespace tensorscope
