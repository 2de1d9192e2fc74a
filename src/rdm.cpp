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

// [[Rcpp::export]]
Eigen::VectorXd cpp_rdm(SEXP x, std::string method, SEXP noise_cov) {
  return glue::guard([&]() -> Eigen::VectorXd {
    return rdm_vector(glue::map_matrix(x), rdm_method(method), glue::map_matrix(noise_cov));
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
