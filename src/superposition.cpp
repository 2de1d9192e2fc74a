// Rcpp glue for the superposition / sparsity family (core: superposition.hpp).
#include "glue.h"

#include <tensorscope/superposition.hpp>

using namespace tensorscope;

// [[Rcpp::export]]
Rcpp::List cpp_feature_geometry(SEXP w, int bins, int threads) {
  return glue::guard([&]() -> Rcpp::List {
    FeatureGeometry f = feature_geometry(glue::map_matrix(w), bins, glue::exec(threads));
    return Rcpp::List::create(Rcpp::Named("norm2") = Rcpp::wrap(f.norm2),
                              Rcpp::Named("dimensionality") = Rcpp::wrap(f.dimensionality),
                              Rcpp::Named("mean_cos") = Rcpp::wrap(f.mean_cos),
                              Rcpp::Named("max_cos") = Rcpp::wrap(f.max_cos),
                              Rcpp::Named("hist") = Rcpp::wrap(f.hist));
  });
}

// [[Rcpp::export]]
Eigen::MatrixXd cpp_sparsity(SEXP x, bool by_column, double threshold, int threads) {
  return glue::guard([&]() -> Eigen::MatrixXd {
    return sparsity_stats(glue::map_matrix(x), by_column, threshold, glue::exec(threads));
  });
}
