// Rcpp glue for the geometry family (core: knn.hpp, geometry.hpp, ricci.hpp).
#include "glue.h"

#include <tensorscope/geometry.hpp>
#include <tensorscope/ricci.hpp>

using namespace tensorscope;

namespace {

Rcpp::List knn_list(const Knn& nn) {
  Rcpp::IntegerMatrix idx(nn.index.rows(), nn.index.cols());
  for (Index j = 0; j < nn.index.cols(); ++j)
    for (Index i = 0; i < nn.index.rows(); ++i) idx(i, j) = nn.index(i, j) + 1;
  return Rcpp::List::create(Rcpp::Named("index") = idx, Rcpp::Named("distance") = Rcpp::wrap(nn.dist));
}

Rcpp::List graph_list(const Graph& g, const Eigen::VectorXd& curvature) {
  Rcpp::IntegerVector from(g.from.begin(), g.from.end()), to(g.to.begin(), g.to.end());
  from = from + 1;
  to = to + 1;
  return Rcpp::List::create(Rcpp::Named("from") = from, Rcpp::Named("to") = to,
                            Rcpp::Named("weight") = Rcpp::wrap(g.weight),
                            Rcpp::Named("curvature") = Rcpp::wrap(curvature));
}

Eigen::VectorXd curvature_of(const Graph& g, std::string method, double alpha, double exp_power, int threads) {
  if (method == "forman") return forman_ricci(g);
  return ollivier_ricci(g, alpha, exp_power, glue::exec(threads));
}

}  // namespace

// Effective rank on singular values, on eigenvalues, and the participation ratio.
// [[Rcpp::export]]
Rcpp::NumericVector cpp_spectral_dims(SEXP x) {
  return glue::guard([&]() -> Rcpp::NumericVector {
    const Eigen::VectorXd ev = covariance_spectrum(glue::map_matrix(x));
    return Rcpp::NumericVector::create(entropy_rank(ev.cwiseSqrt()), entropy_rank(ev), participation_ratio(ev));
  });
}

// [[Rcpp::export]]
Rcpp::IntegerVector cpp_unique_rows(SEXP x) {
  return glue::guard([&]() -> Rcpp::IntegerVector {
    std::vector<Index> keep = unique_rows(glue::map_matrix(x));
    Rcpp::IntegerVector out(keep.size());
    for (std::size_t i = 0; i < keep.size(); ++i) out[i] = static_cast<int>(keep[i]) + 1;
    return out;
  });
}

// [[Rcpp::export]]
Rcpp::List cpp_knn(SEXP x, int k, int threads) {
  return glue::guard([&]() -> Rcpp::List {
    return knn_list(knn(glue::map_matrix(x), k, glue::exec(threads)));
  });
}

// [[Rcpp::export]]
Rcpp::List cpp_intrinsic_dim(SEXP x, std::string method, int k, double keep, int threads) {
  return glue::guard([&]() -> Rcpp::List {
    const auto X = glue::map_matrix(x);
    const int kk = method == "mle_levina_bickel" ? k : 2;
    Knn nn = knn(X, kk, glue::exec(threads));
    IdResult r = method == "mle_levina_bickel" ? mle_levina_bickel(nn.dist, k) : twonn(nn.dist, method == "twonn", keep);
    return Rcpp::List::create(Rcpp::Named("dim") = r.dim, Rcpp::Named("n_used") = static_cast<double>(r.n_used));
  });
}

// [[Rcpp::export]]
Rcpp::List cpp_fiber_windows(SEXP x, int k_min, int k_max, int window, int step, int threads) {
  return glue::guard([&]() -> Rcpp::List {
    Knn nn = knn(glue::map_matrix(x), k_max + 1, glue::exec(threads));
    FiberWindows fw = fiber_windows(nn.dist, k_min, k_max, window, step, glue::exec(threads));
    return Rcpp::List::create(Rcpp::Named("ratio") = Rcpp::wrap(fw.ratio),
                              Rcpp::Named("dim_left") = Rcpp::wrap(fw.dim_left),
                              Rcpp::Named("cut_radius") = Rcpp::wrap(fw.cut_radius),
                              Rcpp::Named("dim") = Rcpp::wrap(fw.dim),
                              Rcpp::Named("radius") = Rcpp::wrap(fw.radius));
  });
}

// [[Rcpp::export]]
Rcpp::List cpp_ricci_knn(SEXP x, int k, std::string method, double alpha, double exp_power, int threads) {
  return glue::guard([&]() -> Rcpp::List {
    Graph g = knn_graph(knn(glue::map_matrix(x), k, glue::exec(threads)));
    return graph_list(g, curvature_of(g, method, alpha, exp_power, threads));
  });
}

// [[Rcpp::export]]
Rcpp::List cpp_ricci_graph(int n, Rcpp::IntegerVector from, Rcpp::IntegerVector to, Rcpp::NumericVector weight,
                           std::string method, double alpha, double exp_power, int threads) {
  return glue::guard([&]() -> Rcpp::List {
    std::vector<int> a(from.begin(), from.end()), b(to.begin(), to.end());
    for (auto& v : a) --v;
    for (auto& v : b) --v;
    Graph g = make_graph(n, a, b, std::vector<double>(weight.begin(), weight.end()));
    return graph_list(g, curvature_of(g, method, alpha, exp_power, threads));
  });
}

// [[Rcpp::export]]
double cpp_transport(Rcpp::NumericVector a, Rcpp::NumericVector b, Rcpp::NumericMatrix cost) {
  return glue::guard([&]() -> double {
    std::vector<double> C(static_cast<std::size_t>(a.size()) * b.size());
    for (R_xlen_t i = 0; i < a.size(); ++i)
      for (R_xlen_t j = 0; j < b.size(); ++j) C[i * b.size() + j] = cost(i, j);
    Transport tp;
    return tp.solve(std::vector<double>(a.begin(), a.end()), std::vector<double>(b.begin(), b.end()), C);
  });
}
