// Rcpp glue for process-level resources: threading facts, the BLAS thread count, and
// returning freed heap memory to the system.
#include "glue.h"

#include <dlfcn.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

// Returns the free pages of the C heap to the system (glibc's malloc_trim; a no-op
// elsewhere). After a long capture, the freed input batches of R (1.2 MB vectors that
// glibc serves from its heap once its mmap threshold has risen) left ~0.7 GB resident
// per 3 GB of live data here, even after gc().
// [[Rcpp::export]]
bool cpp_release_memory() {
  return glue::guard([&]() -> bool {
#if defined(__GLIBC__)
    return malloc_trim(0) == 1;
#else
    return false;
#endif
  });
}

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
