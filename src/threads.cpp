// Rcpp glue for threading facts and the BLAS thread count.
#include "glue.h"

#include <dlfcn.h>

// [[Rcpp::export]]
bool cpp_has_openmp() {
  return glue::guard([&]() -> bool {
  #ifdef _OPENMP
    return true;
  #else
    return false;
  #endif
  });
}

// OpenBLAS's thread count, set when the BLAS R loaded is OpenBLAS (looked up at run
// time, so any BLAS works). Returns the previous count, or -1 when not OpenBLAS.
// [[Rcpp::export]]
int cpp_blas_threads(int n) {
  return glue::guard([&]() -> int {
    using get_t = int (*)();
    using set_t = void (*)(int);
    auto get = reinterpret_cast<get_t>(dlsym(RTLD_DEFAULT, "openblas_get_num_threads"));
    auto set = reinterpret_cast<set_t>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"));
    if (!get || !set) return -1;
    const int old = get();
    if (n > 0) set(n);
    return old;
  });
}
