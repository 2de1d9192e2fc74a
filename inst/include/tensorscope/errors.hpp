// tensorscope core: the one table of error kinds, shared by the core, the Rcpp glue
// (src/glue.h), the LibTorch backend (src/torch/rtorch.h) and the R tests (through
// cpp_error_kinds()). A C++ error carries its kind; the glue raises it in R as a
// condition of class c("tensorscope_error_<kind>", "tensorscope_error", "error",
// "condition"), the same classes as the R layer's ts_abort(message, kind).
// Header-only C++17, std only; no R headers.
#pragma once

#include <cstring>
#include <stdexcept>
#include <string>

namespace tensorscope {

// X(kind, when it is raised). Add a kind here and it exists everywhere: the enum, the
// names R sees, the documentation test (test-errors.R checks every kind is documented
// in ?tensorscope and arrives in R with its class).
#define TENSORSCOPE_ERROR_KINDS(X)                                                          \
  X(argument, "an argument has a value the function cannot use")                          \
  X(type, "an argument or a file's data have the wrong type")                              \
  X(non_finite, "data hold NA, NaN or Inf")                                                \
  X(zero_variance, "data have no variance (a constant layer, pattern or channel)")        \
  X(mismatch, "inputs disagree: stimuli, shapes, sizes or targets")                        \
  X(empty, "an input has no rows, columns, layers or members")                             \
  X(too_few, "too few stimuli, conditions, runs or samples for the method")               \
  X(rank_deficient, "data span too few dimensions for the method")                       \
  X(not_rdm, "an object is not a valid RDM")                                                \
  X(unknown_metric, "an analyzer metric that is not registered")                           \
  X(file, "a file cannot be opened, read or written")                                      \
  X(corrupt, "a file's bytes are not a valid file of its format")                          \
  X(not_torchscript, "a file is not a TorchScript module LibTorch can load")               \
  X(torch_unavailable, "tensorscope was installed without LibTorch")                      \
  X(cuda_unavailable, "a CUDA device was asked for and LibTorch has none")                \
  X(torch, "LibTorch failed on valid input (out of GPU memory, say)")                      \
  X(memory, "an allocation failed")                                                        \
  X(internal, "an unexpected failure inside tensorscope or a library it calls (a bug)")

enum class ErrorKind {
#define TS_ERROR_ENUM(kind, what) kind,
  TENSORSCOPE_ERROR_KINDS(TS_ERROR_ENUM)
#undef TS_ERROR_ENUM
};

struct ErrorKindInfo {
  ErrorKind kind;
  const char* name;
  const char* what;
};

inline constexpr ErrorKindInfo error_kinds[] = {
#define TS_ERROR_INFO(kind, what) {ErrorKind::kind, #kind, what},
    TENSORSCOPE_ERROR_KINDS(TS_ERROR_INFO)
#undef TS_ERROR_INFO
};

inline constexpr std::size_t n_error_kinds = sizeof(error_kinds) / sizeof(error_kinds[0]);

inline const char* kind_name(ErrorKind k) { return error_kinds[static_cast<std::size_t>(k)].name; }

// The kind called `name`; false when there is none.
inline bool kind_from_name(const std::string& name, ErrorKind& out) {
  for (const auto& k : error_kinds)
    if (name == k.name) {
      out = k.kind;
      return true;
    }
  return false;
}

// The exception every tensorscope error is: what() is the message for the user (it
// names the argument and the value where the core knows them).
struct ts_error : std::runtime_error {
  ErrorKind kind;
  ts_error(ErrorKind k, const std::string& message) : std::runtime_error(message), kind(k) {}
};

}  // namespace tensorscope
