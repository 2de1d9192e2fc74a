// Rcpp glue for CKA (core: inst/include/tensorscope/alignment.hpp).
#include "glue.h"

#include <tensorscope/alignment.hpp>

using namespace tensorscope;

// [[Rcpp::export]]
Rcpp::List cpp_cka_matrix(Rcpp::List xs, Rcpp::List ys, std::string kernel, std::string estimator,
                          std::string bandwidth, double t, Rcpp::NumericVector sigma_x,
                          Rcpp::NumericVector sigma_y, std::string path, double max_gram_bytes,
                          int threads) {
  return glue::guard([&]() -> Rcpp::List {
    CkaOptions o = cka_options(kernel, estimator, bandwidth, t, path);
    o.max_gram_bytes = max_gram_bytes;
    const auto mx = glue::map_list(xs);
    const auto my = glue::map_list(ys);
    std::vector<double> sx(sigma_x.begin(), sigma_x.end()), sy(sigma_y.begin(), sigma_y.end());
    CkaResult r = cka_matrix(glue::refs(mx), glue::refs(my), o, sx, sy, glue::exec(threads));
    return Rcpp::List::create(Rcpp::Named("cka") = Rcpp::wrap(r.cka),
                              Rcpp::Named("sigma_x") = Rcpp::wrap(r.sigma_x),
                              Rcpp::Named("sigma_y") = Rcpp::wrap(r.sigma_y),
                              Rcpp::Named("gram_path") = r.gram_path);
  });
}
