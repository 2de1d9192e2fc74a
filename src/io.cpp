// Rcpp glue for NumPy .npy / .npz files (core: npy.hpp). Failures are ts_errors of
// kind file, corrupt or type, raised in R with their class by glue::guard().
#include "glue.h"

#include <tensorscope/npy.hpp>

#include <climits>

namespace npy = tensorscope::npy;

namespace {

// One array from the .npy bytes p[0, n).
SEXP array_from(const unsigned char* p, std::size_t n) {
  const npy::Header h = npy::parse_header(p, n);
  for (auto d : h.shape)
    if (d > INT_MAX) throw tensorscope::ts_error(tensorscope::ErrorKind::type, "a dimension of " + std::to_string(d) + " is too large for an R array");
  const unsigned char* data = p + h.data_offset;
  const R_xlen_t len = static_cast<R_xlen_t>(h.count);
  SEXP out;
  switch (npy::target_of(h, data)) {
    case npy::Target::logical:
      out = PROTECT(Rf_allocVector(LGLSXP, len));
      npy::decode(data, h, LOGICAL(out));
      break;
    case npy::Target::integer:
      out = PROTECT(Rf_allocVector(INTSXP, len));
      npy::decode(data, h, INTEGER(out));
      break;
    case npy::Target::string: {
      const std::vector<std::string> v = npy::decode_strings(data, h);
      out = PROTECT(Rf_allocVector(STRSXP, len));
      for (R_xlen_t k = 0; k < len; ++k) SET_STRING_ELT(out, k, Rf_mkCharLenCE(v[k].data(), static_cast<int>(v[k].size()), CE_UTF8));
      break;
    }
    default:
      out = PROTECT(Rf_allocVector(REALSXP, len));
      npy::decode(data, h, REAL(out));
  }
  if (h.shape.size() >= 2) {
    SEXP dim = PROTECT(Rf_allocVector(INTSXP, static_cast<R_xlen_t>(h.shape.size())));
    for (std::size_t k = 0; k < h.shape.size(); ++k) INTEGER(dim)[k] = static_cast<int>(h.shape[k]);
    Rf_setAttrib(out, R_DimSymbol, dim);
    UNPROTECT(1);
  }
  UNPROTECT(1);
  return out;
}

// All members of the zip archive z, by name (without ".npy").
SEXP npz_from(const std::vector<unsigned char>& z) {
  const std::vector<npy::ZipMember> members = npy::zip_members(z.data(), z.size());
  Rcpp::List out(members.size());
  Rcpp::CharacterVector names(members.size());
  std::vector<std::string> skipped;  // well-formed members of an unsupported dtype
  for (std::size_t k = 0; k < members.size(); ++k) {
    std::vector<unsigned char> bytes = npy::zip_extract(z.data(), z.size(), members[k]);
    try {
      out[k] = array_from(bytes.data(), bytes.size());
    } catch (const tensorscope::ts_error& e) {
      if (e.kind != tensorscope::ErrorKind::type) throw tensorscope::ts_error(e.kind, "member '" + members[k].name + "': " + e.what());
      out[k] = R_NilValue;
      skipped.push_back(members[k].name + ": " + e.what());
    }
    std::string nm = members[k].name;
    if (nm.size() > 4 && nm.compare(nm.size() - 4, 4, ".npy") == 0) nm.resize(nm.size() - 4);
    names[k] = nm;
  }
  out.attr("names") = names;
  if (!skipped.empty()) out.attr("skipped") = Rcpp::wrap(skipped);
  return out;
}

}  // namespace

// [[Rcpp::export]]
SEXP cpp_read_npy(std::string path) {
  return glue::guard([&] {
    const std::vector<unsigned char> bytes = npy::read_file(path);
    return array_from(bytes.data(), bytes.size());
  });
}

// [[Rcpp::export]]
SEXP cpp_read_npz(std::string path) {
  return glue::guard([&] { return npz_from(npy::read_file(path)); });
}

// The same readers on bytes already in memory (a raw vector): used by the fuzz tests.
// [[Rcpp::export]]
SEXP cpp_read_npy_raw(Rcpp::RawVector bytes, bool npz) {
  return glue::guard([&] {
    std::vector<unsigned char> b(bytes.begin(), bytes.end());
    return npz ? npz_from(b) : array_from(b.data(), b.size());
  });
}

// x: a double, integer or logical vector/array (R validated: no NA in integer or
// logical data); dims: its shape.
// [[Rcpp::export]]
SEXP cpp_write_npy(SEXP x, std::string path, Rcpp::NumericVector dims, bool fortran) {
  return glue::guard([&] {
    std::vector<std::int64_t> shape(dims.begin(), dims.end());
    switch (TYPEOF(x)) {
      case REALSXP: npy::write_npy<double>(path, "<f8", REAL(x), shape, fortran); break;
      case INTSXP: npy::write_npy<std::int32_t>(path, "<i4", INTEGER(x), shape, fortran); break;
      case LGLSXP: npy::write_npy<std::uint8_t>(path, "|b1", LOGICAL(x), shape, fortran); break;
      default: glue::fail(tensorscope::ErrorKind::type, "cpp_write_npy: unsupported type");
    }
    return R_NilValue;
  });
}

// Name of the first member of the zip archive at path whose CRC-32 does not match its
// data (a TorchScript .pt with flipped bytes, which LibTorch would load), or NULL when
// every CRC matches or the archive is not one this reader understands (LibTorch then
// reports what is wrong with it).
// [[Rcpp::export]]
SEXP cpp_zip_bad_member(std::string path) {
  try {
    const std::vector<unsigned char> bytes = npy::read_file(path);
    for (const auto& m : npy::zip_members(bytes.data(), bytes.size())) {
      try {
        npy::zip_extract(bytes.data(), bytes.size(), m);
      } catch (const tensorscope::ts_error& e) {
        if (std::string(e.what()).find("CRC mismatch") != std::string::npos) return Rcpp::wrap(m.name);
      }
    }
  } catch (const tensorscope::ts_error&) {
  }
  return R_NilValue;
}
