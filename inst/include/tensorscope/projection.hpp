// Seeded very sparse random projection (Li, Hastie & Church 2006; Achlioptas 2003):
// a k x p matrix R with entries +-sqrt(s / k) with probability 1 / (2s) each and 0
// otherwise, s = sqrt(p). Y = X R' maps p features to k with E ||y||^2 = ||x||^2
// (Johnson-Lindenstrauss: pairwise distances kept within 1 +- eps for k ~ log(n) / eps^2).
//
// The matrix is never formed densely: row c's non-zeros are generated from its own
// stream (splitmix64 of the seed and c), with geometric gaps between column indices,
// so the cost is O(k sqrt(p)) and the result is the same whatever the order or the
// thread rows are generated in. Pure C++: used by the LibTorch backend (which turns the
// triplets into a sparse tensor) and by the R glue (tests, projecting R matrices).
#pragma once
#include "common.hpp"  // splitmix64

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

namespace tensorscope {

// FNV-1a of a string: mixes a layer's name into the seed (each layer its own projection).
inline std::uint64_t fnv1a(const std::string& s) {
  std::uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return h;
}

struct SparseProjection {
  std::int64_t k = 0, p = 0;
  std::vector<std::int64_t> row, col;  // row in [0, k), col in [0, p), rows ascending, cols ascending per row
  std::vector<double> value;
};

// The projection for p features and k dimensions from seed (64-bit) and a name.
inline SparseProjection sparse_projection(std::int64_t p, std::int64_t k, std::uint64_t seed, const std::string& name) {
  SparseProjection R;
  R.k = k;
  R.p = p;
  const double s = std::sqrt(static_cast<double>(p));
  const double q = 1.0 / s;  // probability of a non-zero
  const double v = std::sqrt(s / static_cast<double>(k));
  const double log1mq = q < 1.0 ? std::log1p(-q) : 0.0;
  const std::uint64_t base = seed ^ fnv1a(name);
  const auto expected = static_cast<std::size_t>(static_cast<double>(k) * static_cast<double>(p) * q * 1.05 + 16);
  R.row.reserve(expected);
  R.col.reserve(expected);
  R.value.reserve(expected);
  for (std::int64_t c = 0; c < k; ++c) {
    std::uint64_t state = base + 0xD1B54A32D192ED03ULL * static_cast<std::uint64_t>(c + 1);
    splitmix64(state);
    std::int64_t j = -1;
    for (;;) {
      const std::uint64_t r = splitmix64(state);
      std::int64_t gap = 0;
      if (q < 1.0) {
        // uniform in (0, 1] from the top 53 bits, then a geometric number of zeros
        const double u = (static_cast<double>(r >> 11) + 1.0) * (1.0 / 9007199254740992.0);
        const double g = std::floor(std::log(u) / log1mq);
        if (g >= static_cast<double>(p)) break;
        gap = static_cast<std::int64_t>(g);
      }
      j += gap + 1;
      if (j >= p) break;
      R.row.push_back(c);
      R.col.push_back(j);
      R.value.push_back((splitmix64(state) & 1ULL) ? v : -v);
    }
  }
  return R;
}

}  // namespace tensorscope
