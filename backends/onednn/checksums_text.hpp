// checksums_text.hpp: the text of a tbk_onednn payload's ":checksums" part, written and read:
// a line "<CRC-32, 8 lowercase hex digits> <form> <part name>\n" per part, sorted by name (the
// form: data type and shape, "Byte[10240]"). Standard C++ only: the checksums fuzz target
// (fuzz/fuzz_onednn_checksums.cpp) links nothing else; payload_checksums.hpp computes and checks.
#pragma once

#include <cstddef>    // std::size_t
#include <cstdint>    // uint32_t
#include <cstdio>     // std::snprintf
#include <map>        // std::map
#include <stdexcept>  // std::invalid_argument
#include <string>     // std::string

namespace tbk_onednn {

// What lowering recorded of one part.
struct recorded_part {
  uint32_t crc;
  std::string form;  // "Byte[10240]"
};

namespace detail {

inline std::string hex32(uint32_t crc) {
  char hex[9];
  std::snprintf(hex, sizeof hex, "%08x", crc);
  return hex;
}

}  // namespace detail

// The text for `parts` (name -> what was recorded), one line per part in name order. A name or
// form holding a newline, or a form holding a space, cannot be written (std::invalid_argument).
inline std::string checksums_text(const std::map<std::string, recorded_part>& parts) {
  std::string text;
  for (const auto& [name, part] : parts) {
    if (name.empty() || name.find('\n') != std::string::npos || part.form.empty() ||
        part.form.find_first_of(" \n") != std::string::npos) {
      throw std::invalid_argument("a payload part's name or form cannot be written in its checksums");
    }
    text += detail::hex32(part.crc) + " " + part.form + " " + name + "\n";
  }
  return text;
}

// The text read back: every line well formed and every name once, else std::invalid_argument
// ("its checksums part is damaged (line N)"): a malformed line is damage too.
inline std::map<std::string, recorded_part> parse_checksums_text(const char* data, std::size_t size) {
  const std::string all(data, data + size);
  std::map<std::string, recorded_part> out;
  std::size_t at = 0;
  for (int line = 1; at < all.size(); ++line) {
    const std::size_t end = all.find('\n', at);
    const std::string row = all.substr(at, end == std::string::npos ? std::string::npos : end - at);
    const std::size_t second = row.size() > 9 ? row.find(' ', 9) : std::string::npos;
    bool ok = end != std::string::npos && row.size() > 9 && row[8] == ' ' &&
              row.find_first_not_of("0123456789abcdef") == 8 && second != std::string::npos && second > 9 &&
              second + 1 < row.size();
    if (ok) {
      ok = out.emplace(row.substr(second + 1), recorded_part{static_cast<uint32_t>(std::stoul(row.substr(0, 8), nullptr, 16)),
                                                             row.substr(9, second - 9)}).second;
    }
    if (!ok) throw std::invalid_argument("its checksums part is damaged (line " + std::to_string(line) + ")");
    at = end + 1;
  }
  return out;
}

}  // namespace tbk_onednn
