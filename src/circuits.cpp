// Rcpp glue for circuit analysis (core: inst/include/tensorscope/circuits.hpp).
// Pattern arrays arrive as [query, key, head, sequence, layer] double arrays.
#include "glue.h"

#include <tensorscope/circuits.hpp>

using namespace tensorscope;

namespace {
std::vector<CompType> comp_types(const Rcpp::CharacterVector& types) {
  std::vector<CompType> out;
  for (R_xlen_t i = 0; i < types.size(); ++i) {
    const std::string t = Rcpp::as<std::string>(types[i]);
    if (t == "q") out.push_back(CompType::q);
    else if (t == "k") out.push_back(CompType::k);
    else if (t == "v") out.push_back(CompType::v);
    else glue::fail(ErrorKind::argument, "unknown composition type '" + t + "'");
  }
  return out;
}
HeadFusion head_fusion(const std::string& f) {
  if (f == "mean") return HeadFusion::mean;
  if (f == "max") return HeadFusion::max;
  if (f == "min") return HeadFusion::min;
  glue::fail(ErrorKind::argument, "unknown head fusion '" + f + "'");
}
}  // namespace

// [[Rcpp::export]]
Eigen::MatrixXd cpp_pattern_row_sums(Rcpp::NumericVector a, int nq, int nk, int threads) {
  return glue::guard([&]() -> Eigen::MatrixXd {
    return pattern_row_sums(a.begin(), nq, nk, a.size() / (Index(nq) * nk), glue::exec(threads));
  });
}

// [[Rcpp::export]]
Eigen::MatrixXd cpp_attention_entropy(Rcpp::NumericVector a, int nq, int nk, int threads) {
  return glue::guard([&]() -> Eigen::MatrixXd {
    return attention_entropy(a.begin(), nq, nk, a.size() / (Index(nq) * nk), glue::exec(threads));
  });
}

// [[Rcpp::export]]
Eigen::VectorXd cpp_diagonal_mean(Rcpp::NumericVector a, int nq, int nk, int offset, int q_begin,
                                  int q_end, int threads) {
  return glue::guard([&]() -> Eigen::VectorXd {
    return diagonal_mean(a.begin(), nq, nk, a.size() / (Index(nq) * nk), offset, q_begin, q_end,
                         glue::exec(threads));
  });
}

// [[Rcpp::export]]
Eigen::MatrixXd cpp_attention_propagate(Rcpp::NumericVector a, int n, int heads, int seqs,
                                        int layers, std::string fusion, bool residual, bool flow,
                                        int threads) {
  return glue::guard([&]() -> Eigen::MatrixXd {
    return attention_propagate(a.begin(), n, heads, seqs, layers, head_fusion(fusion), residual, flow,
                               glue::exec(threads));
  });
}

// Head-fused attention of one sequence (1-based), as n x (n L): layer l in columns
// [(l - 1) n, l n).
// [[Rcpp::export]]
Eigen::MatrixXd cpp_fused_attention(Rcpp::NumericVector a, int n, int heads, int seqs, int layers,
                                    int sequence, std::string fusion, bool residual) {
  return glue::guard([&]() -> Eigen::MatrixXd {
    const std::vector<Matrix> f = fused_attention(a.begin(), n, heads, seqs, layers, sequence - 1,
                                                  head_fusion(fusion), residual);
    Matrix out(n, Index(n) * layers);
    for (int l = 0; l < layers; ++l) out.middleCols(Index(l) * n, n) = f[static_cast<std::size_t>(l)];
    return out;
  });
}

// [[Rcpp::export]]
Eigen::MatrixXd cpp_composition_scores(SEXP q, SEXP k, SEXP v, SEXP ot, int layers, int heads,
                                       Rcpp::CharacterVector types, int threads) {
  return glue::guard([&]() -> Eigen::MatrixXd {
    const auto Q = glue::map_matrix(q), K = glue::map_matrix(k), V = glue::map_matrix(v),
               Ot = glue::map_matrix(ot);
    const HeadWeights W{Q, K, V, Ot, layers, heads};
    return composition_scores(W, comp_types(types), glue::exec(threads));
  });
}

// [[Rcpp::export]]
Eigen::MatrixXd cpp_composition_baseline(int d, int hq, int hv, Rcpp::CharacterVector types,
                                         int n_draws, double seed, int threads) {
  return glue::guard([&]() -> Eigen::MatrixXd {
    return composition_baseline(d, hq, hv, comp_types(types), n_draws,
                                static_cast<std::uint64_t>(static_cast<long long>(seed)),
                                glue::exec(threads));
  });
}
