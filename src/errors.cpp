// Rcpp glue for the error table (inst/include/tensorscope/errors.hpp): the kinds, for the
// R layer and the tests, and a way to raise each one through glue::guard().
#include "glue.h"

// A data frame of the kinds (kind, description), in table order.
// [[Rcpp::export]]
Rcpp::DataFrame cpp_error_kinds() {
  return glue::guard([&]() -> Rcpp::DataFrame {
    Rcpp::CharacterVector kind, description;
    for (const auto& k : tensorscope::error_kinds) {
      kind.push_back(k.name);
      description.push_back(k.what);
    }
    return Rcpp::DataFrame::create(Rcpp::Named("kind") = kind, Rcpp::Named("description") = description,
                                   Rcpp::Named("stringsAsFactors") = false);
  });
}

// Throws ts_error(kind, message) from C++ (what a core function does), or, for kind
// "bad_alloc" / "std", a std::bad_alloc / std::runtime_error: the tests check that each
// arrives in R with its class.
// [[Rcpp::export]]
bool cpp_raise_error(std::string kind, std::string message) {
  return glue::guard([&]() -> bool {
    if (kind == "bad_alloc") throw std::bad_alloc();
    if (kind == "std") throw std::runtime_error(message);
    tensorscope::ErrorKind k;
    if (!tensorscope::kind_from_name(kind, k)) glue::fail(tensorscope::ErrorKind::argument, "no error kind '" + kind + "'");
    throw tensorscope::ts_error(k, message);
  });
}
