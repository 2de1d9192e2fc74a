// Rcpp glue for RDMs, RDM comparison and RSA inference
// (core: rdm.hpp, compare.hpp, rsa.hpp).
#include "glue.h"

#include <tensorscope/compare.hpp>
#include <tensorscope/rdm.hpp>
#include <tensorscope/rsa.hpp>

using namespace tensorscope;

namespace {
RdmMethod rdm_method(const std::string& m) {
  if (m == "correlation") return RdmMethod::correlation;
  if (m == "cosine") return RdmMethod::cosine;
  if (m == "euclidean") return RdmMethod::euclidean;
  if (m == "sqeuclidean") return RdmMethod::sqeuclidean;
  if (m == "mahalanobis") return RdmMethod::mahalanobis;
  if (m == "crossnobis") return RdmMethod::crossnobis;
  glue::fail(ErrorKind::argument, "unknown RDM method '" + m + "'");
}
Compare compare_method(const std::string& m) {
  if (m == "spearman") return Compare::spearman;
  if (m == "pearson") return Compare::pearson;
  if (m == "kendall_tau_a") return Compare::kendall_tau_a;
  if (m == "rho_a") return Compare::rho_a;
  if (m == "cosine") return Compare::cosine;
  if (m == "corr_cov") return Compare::corr_cov;
  if (m == "cosine_cov") return Compare::cosine_cov;
  if (m == "bures") return Compare::bures;
  glue::fail(ErrorKind::argument, "unknown comparison method '" + m + "'");
}
std::uint64_t seed_of(double seed) { return static_cast<std::uint64_t>(static_cast<long long>(seed)); }
}  // namespace

// out: a numeric matrix with one RDM per row, allocated by rdm() (cpp_rdm_alloc()) and
// bound nowhere else, so it is written in place; row is 1-based. The RDM of x, times
// scale, goes into that row (no n x n matrix, no copy of the result). Returns whether the row holds a NaN
// (a condition with zero variance or norm: rdm() names it).
namespace {
double* rdm_row(SEXP out, int row, R_xlen_t pairs) {
  if (TYPEOF(out) != REALSXP || !Rf_isMatrix(out)) glue::fail(ErrorKind::argument, "rdm: the result matrix is not numeric");
  const int nr = Rf_nrows(out);
  if (row < 1 || row > nr) glue::fail(ErrorKind::argument, "rdm: row " + std::to_string(row) + " is out of range");
  if (pairs >= 0 && Rf_ncols(out) != pairs)
    glue::fail(ErrorKind::mismatch, "rdm: the result has " + std::to_string(Rf_ncols(out)) + " pairs, the layer " +
                                        std::to_string(pairs));
  return REAL(out) + (row - 1);
}
bool row_has_nan(const double* p, int stride, R_xlen_t pairs) {
  for (R_xlen_t k = 0; k < pairs; ++k)
    if (std::isnan(p[k * stride])) return true;
  return false;
}
}  // namespace

// [[Rcpp::export]]
SEXP cpp_rdm_alloc(int rdms, double pairs) {
  return glue::guard([&]() -> SEXP {
    if (rdms < 1 || !(pairs >= 1)) glue::fail(ErrorKind::argument, "rdm: bad result size");
    if (pairs > 2147483647.0)
      glue::fail(ErrorKind::argument, "rdm: " + std::to_string(static_cast<long long>(pairs)) +
                                          " pairs are more than an R matrix holds in a row (65,536 conditions at most)");
    return Rcpp::NumericMatrix(Rcpp::no_init(rdms, static_cast<int>(pairs)));
  });
}

// [[Rcpp::export]]
bool cpp_rdm_into(SEXP x, std::string method, SEXP noise_cov, SEXP out, int row, double scale, int threads) {
  return glue::guard([&]() -> bool {
    const auto X = glue::map_matrix(x);
    const R_xlen_t pairs = static_cast<R_xlen_t>(n_pairs(X.rows()));
    double* o = rdm_row(out, row, pairs);
    const int stride = Rf_nrows(out);
    rdm_into(X, rdm_method(method), glue::map_matrix(noise_cov), o, stride, glue::exec(threads));
    if (scale != 1.0)
      for (R_xlen_t k = 0; k < pairs; ++k) o[k * stride] *= scale;
    return row_has_nan(o, stride, pairs);
  });
}

// Copies d (an RDM computed elsewhere: LibTorch, crossnobis; or NA) into row `row` of out.
// [[Rcpp::export]]
void cpp_rdm_set_row(SEXP out, int row, Rcpp::NumericVector d) {
  glue::guard([&]() {
    double* o = rdm_row(out, row, d.size());
    const int stride = Rf_nrows(out);
    for (R_xlen_t k = 0; k < d.size(); ++k) o[k * stride] = d[k];
  });
}

// [[Rcpp::export]]
Eigen::VectorXd cpp_crossnobis(Rcpp::List run_means, SEXP noise_cov) {
  return glue::guard([&]() -> Eigen::VectorXd {
    std::vector<Matrix> means;
    for (R_xlen_t i = 0; i < run_means.size(); ++i) means.emplace_back(glue::map_matrix(run_means[i]));
    return crossnobis_vector(means, glue::map_matrix(noise_cov));
  });
}

// [[Rcpp::export]]
Eigen::MatrixXd cpp_noise_cov(SEXP residuals, double dof, std::string shrinkage) {
  return glue::guard([&]() -> Eigen::MatrixXd {
    Shrinkage s = shrinkage == "eye" ? Shrinkage::eye : (shrinkage == "none" ? Shrinkage::none : Shrinkage::diag);
    return noise_covariance(glue::map_matrix(residuals), dof, s);
  });
}

// [[Rcpp::export]]
Eigen::MatrixXd cpp_compare_rdms(SEXP a, SEXP b, std::string method, int n_cond, int threads) {
  return glue::guard([&]() -> Eigen::MatrixXd {
    return compare_matrix(glue::map_matrix(a), glue::map_matrix(b), compare_method(method), n_cond,
                          glue::exec(threads));
  });
}

// [[Rcpp::export]]
Eigen::MatrixXd cpp_permutation_null(SEXP model, SEXP neural, int n_cond, std::string method, int n_perm,
                                     double seed, int threads) {
  return glue::guard([&]() -> Eigen::MatrixXd {
    return permutation_null(glue::map_vector(model), glue::map_matrix(neural), n_cond, compare_method(method),
                            n_perm, seed_of(seed), glue::exec(threads));
  });
}

// [[Rcpp::export]]
Eigen::MatrixXd cpp_bootstrap_conditions(SEXP models, SEXP neural, int n_cond, std::string method,
                                         int n_boot, double seed, int threads) {
  return glue::guard([&]() -> Eigen::MatrixXd {
    return bootstrap_conditions(glue::map_matrix(models), glue::map_matrix(neural), n_cond,
                                compare_method(method), n_boot, seed_of(seed), glue::exec(threads));
  });
}

// [[Rcpp::export]]
Rcpp::List cpp_compare_riemannian(SEXP a, SEXP b, int n_cond, int threads) {
  return glue::guard([&]() -> Rcpp::List {
    std::vector<Index> rank_b;
    Matrix s = riemannian_matrix(glue::map_matrix(a), glue::map_matrix(b), n_cond, rank_b, glue::exec(threads));
    return Rcpp::List::create(Rcpp::Named("similarity") = Rcpp::wrap(s),
                              Rcpp::Named("rank_b") = Rcpp::IntegerVector(rank_b.begin(), rank_b.end()));
  });
}
