// Rcpp glue for neural predictivity (core: inst/include/tensorscope/predictivity.hpp).
#include "glue.h"

#include <tensorscope/predictivity.hpp>

using namespace tensorscope;

namespace {

// R's 1-based index vectors -> 0-based splits.
std::vector<Split> as_splits(const Rcpp::List& train, const Rcpp::List& test) {
  std::vector<Split> out(static_cast<std::size_t>(train.size()));
  for (R_xlen_t s = 0; s < train.size(); ++s) {
    Rcpp::IntegerVector tr = train[s], te = test[s];
    for (int i : tr) out[static_cast<std::size_t>(s)].train.push_back(i - 1);
    for (int i : te) out[static_cast<std::size_t>(s)].test.push_back(i - 1);
  }
  return out;
}

Rcpp::List wrap_cv(const CvResult& r) {
  Rcpp::List preds(r.predictions.size());
  for (std::size_t i = 0; i < r.predictions.size(); ++i) preds[static_cast<R_xlen_t>(i)] = Rcpp::wrap(r.predictions[i]);
  return Rcpp::List::create(Rcpp::Named("r") = Rcpp::wrap(r.r), Rcpp::Named("r2") = Rcpp::wrap(r.r2),
                            Rcpp::Named("alpha") = Rcpp::wrap(r.alpha),
                            Rcpp::Named("pooled_r") = Rcpp::wrap(r.pooled_r),
                            Rcpp::Named("pooled_r2") = Rcpp::wrap(r.pooled_r2),
                            Rcpp::Named("pooled_pred") = Rcpp::wrap(r.pooled_pred),
                            Rcpp::Named("predictions") = preds, Rcpp::Named("ncomp") = r.ncomp_used);
}

}  // namespace

// [[Rcpp::export]]
Rcpp::List cpp_ridge_cv(SEXP x, SEXP y, Rcpp::List train, Rcpp::List test, std::vector<double> alphas,
                        std::string select, bool per_target, int inner_folds, double seed, bool pooled,
                        bool keep, int threads, SEXP decomposer, Rcpp::List inner) {
  return glue::guard([&]() -> Rcpp::List {
    RidgeOptions o;
    o.alphas = alphas;
    o.select = select == "loo" ? AlphaSelect::loo : (select == "kfold" ? AlphaSelect::kfold : AlphaSelect::gcv);
    o.per_target = per_target;
    o.inner_folds = inner_folds;
    o.seed = static_cast<std::uint64_t>(seed);
    // inner: per outer split, a list of inner test sets (0-based positions in its training rows)
    for (R_xlen_t s = 0; s < inner.size(); ++s) {
      Rcpp::List folds = inner[s];
      std::vector<std::vector<Index>> f;
      for (R_xlen_t k = 0; k < folds.size(); ++k) {
        Rcpp::IntegerVector te = folds[k];
        f.emplace_back(te.begin(), te.end());
      }
      o.inner_tests.push_back(std::move(f));
    }
    // decomposer: NULL (Eigen), or the LibTorch backend's: ts_torch_ridge_decomposer()
    // (tag "tensorscope_ridge_decomposer", a RidgeDecomposer: each fold moved to the
    // device) or ts_torch_ridge_folds() (tag "tensorscope_ridge_folds", a RidgeFolds on a
    // torch_tensor layer, read in place on its device; x is not used then).
    const auto Y = glue::map_matrix(y);
    const auto splits = as_splits(train, test);
    if (!Rf_isNull(decomposer)) {
      const bool folds = TYPEOF(decomposer) == EXTPTRSXP && R_ExternalPtrTag(decomposer) == Rf_install("tensorscope_ridge_folds");
      if (TYPEOF(decomposer) != EXTPTRSXP || R_ExternalPtrAddr(decomposer) == nullptr ||
          (!folds && R_ExternalPtrTag(decomposer) != Rf_install("tensorscope_ridge_decomposer")))
        glue::fail(ErrorKind::argument, "the ridge decomposer is not valid");
      if (folds) {
        const RidgeFolds& f = *static_cast<RidgeFolds*>(R_ExternalPtrAddr(decomposer));
        return wrap_cv(ridge_cv_folds(f, Y, splits, o, pooled, keep, glue::exec(threads)));
      }
    }
    const auto X = glue::map_matrix(x);
    RidgeDecomposer decompose;
    if (!Rf_isNull(decomposer)) decompose = *static_cast<RidgeDecomposer*>(R_ExternalPtrAddr(decomposer));
    return wrap_cv(ridge_cv(X, Y, splits, o, pooled, keep, glue::exec(threads), decompose));
  });
}

// [[Rcpp::export]]
Rcpp::List cpp_pls_cv(SEXP x, SEXP y, Rcpp::List train, Rcpp::List test, int ncomp, bool pooled, bool keep,
                      int threads) {
  return glue::guard([&]() -> Rcpp::List {
    const auto X = glue::map_matrix(x);
    const auto Y = glue::map_matrix(y);
    return wrap_cv(pls_cv(X, Y, as_splits(train, test), ncomp, pooled, keep, glue::exec(threads)));
  });
}

// [[Rcpp::export]]
Rcpp::List cpp_ridge_coef(SEXP x, SEXP y, std::vector<double> alphas, bool centre) {
  return glue::guard([&]() -> Rcpp::List {
    const auto X = glue::map_matrix(x);
    const auto Y = glue::map_matrix(y);
    RidgeCoef r = ridge_coef(X, Y, alphas, centre);
    return Rcpp::List::create(Rcpp::Named("coef") = Rcpp::wrap(r.coef),
                              Rcpp::Named("intercept") = Rcpp::wrap(r.intercept));
  });
}
