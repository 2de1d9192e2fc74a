// tensorscope core: NumPy .npy / .npz reading and .npy writing.
// Header-only C++17, std + zlib only; no R headers. Every size read from a file is
// validated against the bytes actually present before anything is allocated, so a
// corrupt or hostile file gives a ts_error, never a crash or a huge allocation.
//
// Format references: NEP 1 / numpy.lib.format (magic "\x93NUMPY", version 1.0, 2.0,
// 3.0, a Python dict literal header {'descr', 'fortran_order', 'shape'}); PKWARE
// APPNOTE (zip: end of central directory, central directory, local headers, ZIP64).
#pragma once

#include <zlib.h>

#include "errors.hpp"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

namespace tensorscope {
namespace npy {

// Failures are ts_error (errors.hpp) of kind file (open/read/write), corrupt (the bytes
// are not a valid file) or type (a valid file of a dtype R cannot hold).
[[noreturn]] inline void corrupt(const std::string& msg) { throw ts_error(ErrorKind::corrupt, msg); }

// S: fixed-width byte strings ('|S<n>', numpy bytes_); U: fixed-width UCS-4 strings
// ('<U<n>', numpy str_; itemsize 4n). Strings decode to UTF-8 (see decode_strings()).
enum class Type { b1, i1, i2, i4, i8, u1, u2, u4, u8, f2, f4, f8, S, U };

struct Header {
  Type type = Type::f8;
  int itemsize = 8;
  bool swap = false;     // bytes must be reversed to get host order
  bool fortran = false;  // data in column-major order
  std::vector<std::int64_t> shape;
  std::size_t data_offset = 0;  // from the start of the .npy bytes
  std::uint64_t count = 0;      // product of shape
};

inline bool host_little() {
  const std::uint16_t one = 1;
  unsigned char b;
  std::memcpy(&b, &one, 1);
  return b == 1;
}

// ---- header parsing ----------------------------------------------------------------

namespace detail {

struct Cursor {
  const std::string& s;
  std::size_t i = 0;
  void ws() {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) ++i;
  }
  bool eat(char c) {
    ws();
    if (i < s.size() && s[i] == c) { ++i; return true; }
    return false;
  }
  void expect(char c, const char* what) {
    if (!eat(c)) corrupt(std::string("malformed .npy header: expected '") + c + "' " + what);
  }
  std::string str() {
    ws();
    if (i >= s.size() || (s[i] != '\'' && s[i] != '"')) corrupt("malformed .npy header: expected a quoted string");
    char q = s[i++];
    std::size_t j = s.find(q, i);
    if (j == std::string::npos) corrupt("malformed .npy header: unterminated string");
    std::string out = s.substr(i, j - i);
    i = j + 1;
    return out;
  }
  bool word(const char* w) {
    ws();
    std::size_t n = std::strlen(w);
    if (s.compare(i, n, w) == 0) { i += n; return true; }
    return false;
  }
  std::int64_t integer() {
    ws();
    bool neg = false;
    if (i < s.size() && s[i] == '-') { neg = true; ++i; }
    if (i >= s.size() || s[i] < '0' || s[i] > '9') corrupt("malformed .npy header: expected an integer in 'shape'");
    std::uint64_t v = 0;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
      if (v > (std::uint64_t(1) << 58)) corrupt("invalid .npy header: a dimension in 'shape' is too large");
      v = v * 10 + static_cast<std::uint64_t>(s[i] - '0');
      ++i;
    }
    if (i < s.size() && s[i] == 'L') ++i;  // Python 2 long
    if (neg) corrupt("invalid .npy header: negative dimension in 'shape'");
    return static_cast<std::int64_t>(v);
  }
};

inline void parse_descr(const std::string& d, Header& h) {
  if (d.size() == 2 && (d[1] == 'O' || d[1] == 'V'))  // '|O': object arrays (pickled)
    throw ts_error(ErrorKind::type, "unsupported .npy dtype '" + d + "' (numeric, bool and string types only)");
  if (d.size() < 3) corrupt("invalid .npy header: unknown dtype '" + d + "'");
  char order = d[0];
  char kind = d[1];
  std::string rest = d.substr(2);
  int size = 0;
  for (char c : rest) {
    if (c < '0' || c > '9' || size > 1000) {
      if (kind == 'c' || kind == 'U' || kind == 'S' || kind == 'O' || kind == 'M' || kind == 'm' || kind == 'V')
        throw ts_error(ErrorKind::type, "unsupported .npy dtype '" + d + "'");
      corrupt("invalid .npy header: unknown dtype '" + d + "'");
    }
    size = size * 10 + (c - '0');
  }
  if (kind == 'c') throw ts_error(ErrorKind::type, "complex .npy dtype '" + d + "' is not supported (numeric real types only)");
  if (kind == 'O' || kind == 'M' || kind == 'm' || kind == 'V')
    throw ts_error(ErrorKind::type, "unsupported .npy dtype '" + d + "' (numeric, bool and string types only)");
  const bool little = host_little();
  if (order == '<') h.swap = !little;
  else if (order == '>') h.swap = little;
  else if (order == '|' || order == '=') h.swap = false;
  else corrupt("invalid .npy header: unknown byte order in dtype '" + d + "'");
  if (kind == 'S' || kind == 'a' || kind == 'U') {
    if (size < 1) throw ts_error(ErrorKind::type, "zero-width string dtype '" + d + "' is not supported");
    h.type = kind == 'U' ? Type::U : Type::S;
    h.itemsize = kind == 'U' ? 4 * size : size;
    return;
  }
  h.itemsize = size;
  if (kind == 'b' && size == 1) h.type = Type::b1;
  else if (kind == 'i' && size == 1) h.type = Type::i1;
  else if (kind == 'i' && size == 2) h.type = Type::i2;
  else if (kind == 'i' && size == 4) h.type = Type::i4;
  else if (kind == 'i' && size == 8) h.type = Type::i8;
  else if (kind == 'u' && size == 1) h.type = Type::u1;
  else if (kind == 'u' && size == 2) h.type = Type::u2;
  else if (kind == 'u' && size == 4) h.type = Type::u4;
  else if (kind == 'u' && size == 8) h.type = Type::u8;
  else if (kind == 'f' && size == 2) h.type = Type::f2;
  else if (kind == 'f' && size == 4) h.type = Type::f4;
  else if (kind == 'f' && size == 8) h.type = Type::f8;
  else if (kind == 'f') throw ts_error(ErrorKind::type, "unsupported .npy dtype '" + d + "' (float16/32/64 only)");
  else corrupt("invalid .npy header: unknown dtype '" + d + "'");
  if (size > 1 && order == '|') corrupt("invalid .npy header: dtype '" + d + "' needs a byte order");
}

}  // namespace detail

// Parse the header of the .npy bytes p[0, n); data_bytes is checked against n.
inline Header parse_header(const unsigned char* p, std::size_t n) {
  static const unsigned char magic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};
  if (n < 10 || std::memcmp(p, magic, 6) != 0) corrupt("not a .npy file (bad magic string)");
  const int major = p[6];
  const int minor = p[7];
  if (major < 1 || major > 3 || minor != 0)
    corrupt("unsupported .npy format version " + std::to_string(major) + "." + std::to_string(minor));
  std::size_t hlen, start;
  if (major == 1) {
    hlen = std::size_t(p[8]) | (std::size_t(p[9]) << 8);
    start = 10;
  } else {
    if (n < 12) corrupt("truncated .npy header");
    hlen = std::size_t(p[8]) | (std::size_t(p[9]) << 8) | (std::size_t(p[10]) << 16) | (std::size_t(p[11]) << 24);
    start = 12;
  }
  if (hlen > n - start) corrupt("truncated .npy file: header length " + std::to_string(hlen) + " runs past the end of the data");
  for (std::size_t k = 0; k < hlen; ++k) {
    unsigned char c = p[start + k];
    if (c >= 0x80 || (c < 0x20 && c != '\n' && c != '\t' && c != '\r'))
      corrupt("malformed .npy header: non-ASCII or control byte at header offset " + std::to_string(k));
  }
  const std::string s(reinterpret_cast<const char*>(p + start), hlen);
  Header h;
  bool have_descr = false, have_fortran = false, have_shape = false;
  detail::Cursor c{s};
  c.expect('{', "at the start of the header");
  while (!c.eat('}')) {
    std::string key = c.str();
    c.expect(':', "after a key");
    if (key == "descr") {
      c.ws();
      if (c.i < s.size() && s[c.i] == '[') throw ts_error(ErrorKind::type, "structured .npy dtypes are not supported (numeric arrays only)");
      detail::parse_descr(c.str(), h);
      have_descr = true;
    } else if (key == "fortran_order") {
      if (c.word("True")) h.fortran = true;
      else if (c.word("False")) h.fortran = false;
      else corrupt("malformed .npy header: 'fortran_order' must be True or False");
      have_fortran = true;
    } else if (key == "shape") {
      c.expect('(', "to open 'shape'");
      while (!c.eat(')')) {
        if (h.shape.size() >= 64) corrupt("invalid .npy header: more than 64 dimensions");
        h.shape.push_back(c.integer());
        if (!c.eat(',')) { c.expect(')', "to close 'shape'"); break; }
      }
      have_shape = true;
    } else {
      corrupt("malformed .npy header: unknown key '" + key + "'");
    }
    if (!c.eat(',')) { c.expect('}', "to close the header"); break; }
  }
  if (!have_descr || !have_fortran || !have_shape)
    corrupt("malformed .npy header: 'descr', 'fortran_order' and 'shape' are all required");
  // count and byte size, checked for overflow and against the bytes present
  std::uint64_t count = 1;
  for (auto d : h.shape) {
    std::uint64_t ud = static_cast<std::uint64_t>(d);
    if (ud != 0 && count > std::numeric_limits<std::uint64_t>::max() / ud)
      corrupt("invalid .npy header: the product of 'shape' overflows");
    count *= ud;
  }
  h.count = count;
  h.data_offset = start + hlen;
  const std::uint64_t avail = n - h.data_offset;
  if (count > avail / static_cast<std::uint64_t>(h.itemsize))
    corrupt("truncated .npy file: 'shape' needs " + std::to_string(count) + " elements of " +
            std::to_string(h.itemsize) + " bytes but only " + std::to_string(avail) + " data bytes are present");
  return h;
}

// ---- decoding -------------------------------------------------------------------------

namespace detail {

inline void load_bytes(const unsigned char* src, unsigned char* dst, int size, bool swap) {
  if (swap) for (int k = 0; k < size; ++k) dst[k] = src[size - 1 - k];
  else std::memcpy(dst, src, static_cast<std::size_t>(size));
}

inline double half_to_double(std::uint16_t h) {
  const int sign = (h >> 15) & 1;
  const int e = (h >> 10) & 0x1f;
  const int m = h & 0x3ff;
  double v;
  if (e == 0) v = std::ldexp(static_cast<double>(m), -24);
  else if (e == 31) v = m ? std::numeric_limits<double>::quiet_NaN() : std::numeric_limits<double>::infinity();
  else v = std::ldexp(static_cast<double>(m | 0x400), e - 25);
  return sign ? -v : v;
}

template <typename T>
inline T get(const unsigned char* p, bool swap) {
  T v;
  unsigned char b[sizeof(T)];
  load_bytes(p, b, sizeof(T), swap);
  std::memcpy(&v, b, sizeof(T));
  return v;
}

inline double value(const unsigned char* p, const Header& h) {
  switch (h.type) {
    case Type::b1: return p[0] != 0;
    case Type::i1: return static_cast<std::int8_t>(p[0]);
    case Type::u1: return p[0];
    case Type::i2: return get<std::int16_t>(p, h.swap);
    case Type::u2: return get<std::uint16_t>(p, h.swap);
    case Type::i4: return get<std::int32_t>(p, h.swap);
    case Type::u4: return get<std::uint32_t>(p, h.swap);
    case Type::i8: return static_cast<double>(get<std::int64_t>(p, h.swap));
    case Type::u8: return static_cast<double>(get<std::uint64_t>(p, h.swap));
    case Type::f2: return half_to_double(get<std::uint16_t>(p, h.swap));
    case Type::f4: return get<float>(p, h.swap);
    case Type::f8: return get<double>(p, h.swap);
    case Type::S: case Type::U: break;  // strings: decode_strings()
  }
  return 0;
}

// One fixed-width string element as UTF-8, trailing NULs removed (numpy pads with
// them). 'U' holds UCS-4 code points in the header's byte order.
inline std::string string_value(const unsigned char* p, const Header& h) {
  std::string out;
  if (h.type == Type::S) {
    std::size_t len = static_cast<std::size_t>(h.itemsize);
    while (len > 0 && p[len - 1] == 0) --len;
    if (len > 0 && std::memchr(p, 0, len) != nullptr)
      throw ts_error(ErrorKind::type, "a byte string ('S' dtype) with an embedded NUL cannot be an R string");
    out.assign(reinterpret_cast<const char*>(p), len);
    return out;
  }
  const int n = h.itemsize / 4;
  int len = n;
  while (len > 0 && get<std::uint32_t>(p + 4 * (len - 1), h.swap) == 0) --len;
  for (int k = 0; k < len; ++k) {
    std::uint32_t c = get<std::uint32_t>(p + 4 * k, h.swap);
    if (c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) corrupt("invalid .npy data: a 'U' string holds code point " + std::to_string(c));
    if (c == 0) corrupt("invalid .npy data: a 'U' string holds an embedded NUL");
    if (c < 0x80) {
      out += static_cast<char>(c);
    } else if (c < 0x800) {
      out += static_cast<char>(0xC0 | (c >> 6));
      out += static_cast<char>(0x80 | (c & 0x3F));
    } else if (c < 0x10000) {
      out += static_cast<char>(0xE0 | (c >> 12));
      out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (c & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (c >> 18));
      out += static_cast<char>(0x80 | ((c >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (c & 0x3F));
    }
  }
  return out;
}

}  // namespace detail

// The R type an array decodes to: logical (bool), integer (types that fit R's int
// without meeting NA_integer_) or double (everything else).
enum class Target { logical, integer, real, string };

inline Target target_of(const Header& h, const unsigned char* data) {
  switch (h.type) {
    case Type::S: case Type::U: return Target::string;
    case Type::b1: return Target::logical;
    case Type::i1: case Type::u1: case Type::i2: case Type::u2: return Target::integer;
    case Type::i4:
      // INT_MIN is R's NA_integer_: such an array is returned as double, exactly.
      for (std::uint64_t k = 0; k < h.count; ++k)
        if (detail::get<std::int32_t>(data + k * 4, h.swap) == std::numeric_limits<std::int32_t>::min()) return Target::real;
      return Target::integer;
    default: return Target::real;
  }
}

// Decode the data (h.count elements at `data`) into out[] in column-major order of
// h.shape: out has the same logical index order as numpy's array (out[i0 + d0*i1 +
// ...] == a[i0, i1, ...]), whichever order the file stores.
// walk(h, f) calls f(file element k, destination offset) for every element.
template <typename F>
inline void walk(const Header& h, F f) {
  const std::uint64_t n = h.count;
  const std::size_t rank = h.shape.size();
  if (h.fortran || rank <= 1) {
    for (std::uint64_t k = 0; k < n; ++k) f(k, k);
    return;
  }
  if (n == 0) return;
  // C order: walk the file in order, keep the column-major destination offset.
  std::vector<std::uint64_t> cstride(rank), idx(rank, 0);
  cstride[0] = 1;
  for (std::size_t j = 1; j < rank; ++j) cstride[j] = cstride[j - 1] * static_cast<std::uint64_t>(h.shape[j - 1]);
  std::uint64_t dst = 0;
  for (std::uint64_t k = 0; k < n; ++k) {
    f(k, dst);
    // increment the C-order multi-index (last dimension fastest)
    for (std::size_t j = rank; j-- > 0;) {
      if (++idx[j] < static_cast<std::uint64_t>(h.shape[j])) { dst += cstride[j]; break; }
      dst -= cstride[j] * (idx[j] - 1);
      idx[j] = 0;
    }
  }
}

template <typename T>
inline void decode(const unsigned char* data, const Header& h, T* out) {
  const std::size_t sz = static_cast<std::size_t>(h.itemsize);
  walk(h, [&](std::uint64_t k, std::uint64_t dst) { out[dst] = static_cast<T>(detail::value(data + k * sz, h)); });
}

// String arrays ('S', 'U'): UTF-8 strings in the same column-major order as decode().
inline std::vector<std::string> decode_strings(const unsigned char* data, const Header& h) {
  std::vector<std::string> out(static_cast<std::size_t>(h.count));
  const std::size_t sz = static_cast<std::size_t>(h.itemsize);
  walk(h, [&](std::uint64_t k, std::uint64_t dst) { out[dst] = detail::string_value(data + k * sz, h); });
  return out;
}

// ---- files ------------------------------------------------------------------------------

inline std::vector<unsigned char> read_file(const std::string& path) {
  // only regular files: opening a named pipe (or a device) would block or never end
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec))
    throw ts_error(ErrorKind::file, "'" + path + "' is not a regular file");
  std::ifstream f(path, std::ios::binary | std::ios::ate);
  if (!f) throw ts_error(ErrorKind::file, "cannot open '" + path + "'");
  std::streamoff size = f.tellg();
  if (size < 0) throw ts_error(ErrorKind::file, "cannot read '" + path + "'");
  std::vector<unsigned char> buf(static_cast<std::size_t>(size));
  f.seekg(0);
  if (size > 0 && !f.read(reinterpret_cast<char*>(buf.data()), size)) throw ts_error(ErrorKind::file, "cannot read '" + path + "'");
  return buf;
}

// ---- zip (.npz) ---------------------------------------------------------------------------

struct ZipMember {
  std::string name;
  std::uint16_t method = 0;  // 0 stored, 8 deflate
  std::uint32_t crc = 0;
  std::uint64_t csize = 0, usize = 0, local_offset = 0;
};

namespace detail {
inline std::uint16_t le16(const unsigned char* p) { return std::uint16_t(p[0] | (p[1] << 8)); }
inline std::uint32_t le32(const unsigned char* p) {
  return std::uint32_t(p[0]) | (std::uint32_t(p[1]) << 8) | (std::uint32_t(p[2]) << 16) | (std::uint32_t(p[3]) << 24);
}
inline std::uint64_t le64(const unsigned char* p) { return std::uint64_t(le32(p)) | (std::uint64_t(le32(p + 4)) << 32); }
}  // namespace detail

// The members listed in the central directory of the zip archive z[0, n).
inline std::vector<ZipMember> zip_members(const unsigned char* z, std::size_t n) {
  using namespace detail;
  if (n < 22) corrupt("not a zip archive (too short for an end-of-central-directory record)");
  // the end-of-central-directory record is in the last 22 + 65535 bytes
  std::size_t lo = n > 22 + 65535 ? n - 22 - 65535 : 0;
  std::size_t eocd = std::string::npos;
  for (std::size_t k = n - 22 + 1; k-- > lo;) {
    if (le32(z + k) == 0x06054b50u) { eocd = k; break; }
  }
  if (eocd == std::string::npos) corrupt("not a zip archive (no end-of-central-directory record)");
  std::uint64_t entries = le16(z + eocd + 10);
  std::uint64_t cd_size = le32(z + eocd + 12);
  std::uint64_t cd_off = le32(z + eocd + 16);
  if (entries == 0xffff || cd_size == 0xffffffffu || cd_off == 0xffffffffu) {
    // ZIP64: locator (20 bytes) just before the EOCD
    if (eocd < 20 || le32(z + eocd - 20) != 0x07064b50u) corrupt("corrupt zip archive: ZIP64 locator missing");
    std::uint64_t rec = le64(z + eocd - 20 + 8);
    if (rec > n || n - rec < 56 || le32(z + rec) != 0x06064b50u) corrupt("corrupt zip archive: bad ZIP64 end record");
    entries = le64(z + rec + 32);
    cd_size = le64(z + rec + 40);
    cd_off = le64(z + rec + 48);
  }
  if (cd_off > n || cd_size > n - cd_off) corrupt("corrupt zip archive: central directory runs past the end of the file");
  if (entries > cd_size / 46) corrupt("corrupt zip archive: more entries than the central directory can hold");
  std::vector<ZipMember> out;
  std::size_t p = static_cast<std::size_t>(cd_off);
  const std::size_t end = static_cast<std::size_t>(cd_off + cd_size);
  for (std::uint64_t e = 0; e < entries; ++e) {
    if (end - p < 46 || le32(z + p) != 0x02014b50u) corrupt("corrupt zip archive: bad central directory entry");
    ZipMember m;
    const std::uint16_t flags = le16(z + p + 8);
    m.method = le16(z + p + 10);
    m.crc = le32(z + p + 16);
    m.csize = le32(z + p + 20);
    m.usize = le32(z + p + 24);
    const std::size_t nlen = le16(z + p + 28), xlen = le16(z + p + 30), clen = le16(z + p + 32);
    m.local_offset = le32(z + p + 42);
    if (end - p - 46 < nlen + xlen + clen) corrupt("corrupt zip archive: central directory entry runs past its end");
    m.name.assign(reinterpret_cast<const char*>(z + p + 46), nlen);
    // ZIP64 extra field: the 0xffffffff values, in order usize, csize, offset
    const unsigned char* x = z + p + 46 + nlen;
    for (std::size_t q = 0; q + 4 <= xlen;) {
      const std::size_t id = le16(x + q), len = le16(x + q + 2);
      if (q + 4 + len > xlen) corrupt("corrupt zip archive: bad extra field");
      if (id == 0x0001) {
        std::size_t r = q + 4;
        auto take = [&](std::uint64_t& v) {
          if (v != 0xffffffffu) return;
          if (r + 8 > q + 4 + len) corrupt("corrupt zip archive: short ZIP64 extra field");
          v = le64(x + r);
          r += 8;
        };
        take(m.usize);
        take(m.csize);
        take(m.local_offset);
      }
      q += 4 + len;
    }
    if (flags & 1u) throw ts_error(ErrorKind::type, "encrypted zip member '" + m.name + "' is not supported");
    out.push_back(std::move(m));
    p += 46 + nlen + xlen + clen;
  }
  return out;
}

// The uncompressed bytes of one member, its sizes and CRC checked.
inline std::vector<unsigned char> zip_extract(const unsigned char* z, std::size_t n, const ZipMember& m) {
  using namespace detail;
  if (m.local_offset > n || n - m.local_offset < 30 || le32(z + m.local_offset) != 0x04034b50u)
    corrupt("corrupt zip archive: bad local header for '" + m.name + "'");
  const std::size_t lh = static_cast<std::size_t>(m.local_offset);
  const std::uint64_t data = lh + 30 + std::uint64_t(le16(z + lh + 26)) + le16(z + lh + 28);
  if (data > n || m.csize > n - data) corrupt("corrupt zip archive: member '" + m.name + "' runs past the end of the file");
  const unsigned char* src = z + data;
  std::vector<unsigned char> out;
  if (m.method == 0) {
    if (m.usize != m.csize) corrupt("corrupt zip archive: stored member '" + m.name + "' has inconsistent sizes");
    out.assign(src, src + m.csize);
  } else if (m.method == 8) {
    // deflate cannot expand by more than ~1032x: refuse sizes no valid stream could have
    if (m.usize > m.csize * 1032 + 1024) corrupt("corrupt zip archive: member '" + m.name + "' claims an impossible size");
    out.resize(static_cast<std::size_t>(m.usize));
    z_stream s{};
    if (inflateInit2(&s, -MAX_WBITS) != Z_OK) throw ts_error(ErrorKind::internal, "zlib inflateInit2 failed");
    s.next_in = const_cast<Bytef*>(src);
    s.next_out = out.data();
    std::uint64_t in_left = m.csize, out_left = m.usize;
    int rc = Z_OK;
    while (rc == Z_OK) {
      const uInt cin = static_cast<uInt>(in_left > 0x40000000u ? 0x40000000u : in_left);
      const uInt cout = static_cast<uInt>(out_left > 0x40000000u ? 0x40000000u : out_left);
      s.avail_in = cin;
      s.avail_out = cout;
      rc = inflate(&s, Z_NO_FLUSH);
      in_left -= cin - s.avail_in;
      out_left -= cout - s.avail_out;
      if (rc == Z_OK && cin == s.avail_in && cout == s.avail_out) rc = Z_BUF_ERROR;  // no progress
    }
    inflateEnd(&s);
    if (rc != Z_STREAM_END || out_left != 0) corrupt("corrupt zip archive: member '" + m.name + "' does not inflate to its recorded size");
  } else {
    throw ts_error(ErrorKind::type, "zip member '" + m.name + "' uses compression method " + std::to_string(m.method) +
                                      " (only stored and deflate are supported)");
  }
  uLong crc = crc32(0L, Z_NULL, 0);
  for (std::size_t done = 0; done < out.size();) {
    const uInt chunk = static_cast<uInt>(std::min<std::size_t>(out.size() - done, 0x40000000u));
    crc = crc32(crc, out.data() + done, chunk);
    done += chunk;
  }
  if (static_cast<std::uint32_t>(crc) != m.crc) corrupt("corrupt zip archive: CRC mismatch in member '" + m.name + "'");
  return out;
}

// ---- writing ------------------------------------------------------------------------------

// The .npy v1.0 header for descr and shape, padded with spaces to a multiple of 64.
inline std::string make_header(const std::string& descr, bool fortran, const std::vector<std::int64_t>& shape) {
  std::string dict = "{'descr': '" + descr + "', 'fortran_order': " + (fortran ? "True" : "False") + ", 'shape': (";
  for (std::size_t k = 0; k < shape.size(); ++k) {
    dict += std::to_string(shape[k]);
    if (shape.size() == 1 || k + 1 < shape.size()) dict += shape.size() == 1 ? "," : ", ";
  }
  dict += "), }";
  std::size_t total = 10 + dict.size() + 1;
  std::size_t pad = (64 - total % 64) % 64;
  dict.append(pad, ' ');
  dict += '\n';
  if (dict.size() > 65535) throw ts_error(ErrorKind::type, "array has too many dimensions for a .npy v1.0 header");
  std::string out("\x93NUMPY\x01\x00", 8);
  out += static_cast<char>(dict.size() & 0xff);
  out += static_cast<char>((dict.size() >> 8) & 0xff);
  return out + dict;
}

// Write n elements of column-major data with dims `shape` as .npy: fortran = true
// writes the memory as is (fortran_order True); false writes C order (transposed
// on the fly) with the same shape, so numpy sees the same logical array.
template <typename Out, typename In>
inline void write_npy(const std::string& path, const std::string& descr, const In* data,
                      const std::vector<std::int64_t>& shape, bool fortran) {
  std::uint64_t n = 1;
  for (auto d : shape) n *= static_cast<std::uint64_t>(d);
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  if (!f) throw ts_error(ErrorKind::file, "cannot open '" + path + "' for writing");
  const std::string hdr = make_header(descr, fortran, shape);
  f.write(hdr.data(), static_cast<std::streamsize>(hdr.size()));
  const bool swap = !host_little();  // always write little-endian
  std::vector<unsigned char> buf;
  buf.reserve(1 << 16);
  auto put = [&](const In& v) {
    Out o = static_cast<Out>(v);
    unsigned char b[sizeof(Out)];
    std::memcpy(b, &o, sizeof(Out));
    for (std::size_t k = 0; k < sizeof(Out); ++k) buf.push_back(b[swap ? sizeof(Out) - 1 - k : k]);
    if (buf.size() >= (1u << 16)) {
      f.write(reinterpret_cast<const char*>(buf.data()), static_cast<std::streamsize>(buf.size()));
      buf.clear();
    }
  };
  const std::size_t rank = shape.size();
  if (fortran || rank <= 1) {
    for (std::uint64_t k = 0; k < n; ++k) put(data[k]);
  } else if (n > 0) {
    std::vector<std::uint64_t> fstride(rank), idx(rank, 0);
    fstride[0] = 1;
    for (std::size_t j = 1; j < rank; ++j) fstride[j] = fstride[j - 1] * static_cast<std::uint64_t>(shape[j - 1]);
    std::uint64_t src = 0;
    for (std::uint64_t k = 0; k < n; ++k) {
      put(data[src]);
      for (std::size_t j = rank; j-- > 0;) {
        if (++idx[j] < static_cast<std::uint64_t>(shape[j])) { src += fstride[j]; break; }
        src -= fstride[j] * (idx[j] - 1);
        idx[j] = 0;
      }
    }
  }
  f.write(reinterpret_cast<const char*>(buf.data()), static_cast<std::streamsize>(buf.size()));
  if (!f) throw ts_error(ErrorKind::file, "error while writing '" + path + "'");
}

}  // namespace npy
}  // namespace tensorscope
