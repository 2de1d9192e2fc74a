// Rcpp glue for shape metrics, their stochastic forms and the CCA family (core:
// inst/include/tensorscope/shape.hpp, stochastic.hpp).
#include "glue.h"

#include <tensorscope/shape.hpp>
#include <tensorscope/stochastic.hpp>

using namespace tensorscope;

namespace {
std::vector<Index> indices(const Rcpp::IntegerVector& v) { return std::vector<Index>(v.begin(), v.end()); }
CcaMethod cca_method(const std::string& m) {
  return m == "svcca" ? CcaMethod::svcca : (m == "pwcca" ? CcaMethod::pwcca : CcaMethod::mean);
}
}  // namespace

// [[Rcpp::export]]
Eigen::MatrixXd cpp_shape_matrix(Rcpp::List xs, Rcpp::List ys, double alpha, std::string score, bool centre,
                                 Rcpp::IntegerVector train, Rcpp::IntegerVector test, int threads) {
  return glue::guard([&]() -> Eigen::MatrixXd {
    ShapeOptions o;
    o.alpha = alpha;
    o.score = score == "euclidean" ? ShapeScore::euclidean : ShapeScore::angular;
    o.centre = centre;
    const auto mx = glue::map_list(xs);
    const auto my = glue::map_list(ys);
    return shape_matrix(glue::refs(mx), glue::refs(my), o, indices(train), indices(test), glue::exec(threads));
  });
}

// [[Rcpp::export]]
Rcpp::List cpp_cca_similarity(SEXP x, SEXP y, std::string method, double keep) {
  return glue::guard([&]() -> Rcpp::List {
    CcaResult r = cca_similarity(glue::map_matrix(x), glue::map_matrix(y), cca_method(method), keep);
    return Rcpp::List::create(Rcpp::Named("similarity") = r.similarity, Rcpp::Named("rho") = Rcpp::wrap(r.rho),
                              Rcpp::Named("kx") = static_cast<int>(r.kx), Rcpp::Named("ky") = static_cast<int>(r.ky));
  });
}

// [[Rcpp::export]]
Rcpp::List cpp_cca_matrix(Rcpp::List xs, Rcpp::List ys, std::string method, double keep, int threads) {
  return glue::guard([&]() -> Rcpp::List {
    const auto mx = glue::map_list(xs);
    const auto my = glue::map_list(ys);
    CcaLayers r = cca_matrix(glue::refs(mx), glue::refs(my), cca_method(method), keep, glue::exec(threads));
    return Rcpp::List::create(Rcpp::Named("similarity") = Rcpp::wrap(r.similarity),
                              Rcpp::Named("kx") = Rcpp::IntegerVector(r.kx.begin(), r.kx.end()),
                              Rcpp::Named("ky") = Rcpp::IntegerVector(r.ky.begin(), r.ky.end()));
  });
}

// [[Rcpp::export]]
Eigen::MatrixXd cpp_soft_matching_matrix(Rcpp::List xs, Rcpp::List ys, bool centre, int threads) {
  return glue::guard([&]() -> Eigen::MatrixXd {
    const auto mx = glue::map_list(xs);
    const auto my = glue::map_list(ys);
    return soft_matching_matrix(glue::refs(mx), glue::refs(my), centre, glue::exec(threads));
  });
}

// [[Rcpp::export]]
Rcpp::List cpp_soft_matching(SEXP x, SEXP y, bool centre, int threads) {
  return glue::guard([&]() -> Rcpp::List {
    TransportResult r = soft_matching(glue::map_matrix(x), glue::map_matrix(y), centre, glue::exec(threads));
    return Rcpp::List::create(Rcpp::Named("cost") = r.cost, Rcpp::Named("plan") = Rcpp::wrap(r.plan));
  });
}

namespace {
tensorscope::TrialsRef map_trials(SEXP x) {
  const Rcpp::IntegerVector d = Rf_getAttrib(x, R_DimSymbol);
  if (TYPEOF(x) != REALSXP || d.size() != 3) glue::fail(ErrorKind::type, "trials must be a double array (3 dimensions)");
  tensorscope::TrialsRef t;
  t.data = REAL(x);
  t.n = d[0];
  t.p = d[1];
  t.t = d[2];
  return t;
}
}  // namespace

// [[Rcpp::export]]
Rcpp::List cpp_stochastic_shape(SEXP x, SEXP y, std::string method, double alpha, bool centre, int max_iter,
                                double tol, int threads) {
  return glue::guard([&]() -> Rcpp::List {
    StochasticOptions o;
    o.method = method == "energy" ? StochasticMethod::energy : StochasticMethod::gaussian;
    o.alpha = alpha;
    o.centre = centre;
    o.max_iter = max_iter;
    o.tol = tol;
    const StochasticResult r = stochastic_shape(map_trials(x), map_trials(y), o, glue::exec(threads));
    return Rcpp::List::create(Rcpp::Named("distance") = r.distance, Rcpp::Named("rotation") = Rcpp::wrap(r.T),
                              Rcpp::Named("loss") = Rcpp::wrap(r.loss), Rcpp::Named("iterations") = r.iterations,
                              Rcpp::Named("converged") = r.converged);
  });
}
