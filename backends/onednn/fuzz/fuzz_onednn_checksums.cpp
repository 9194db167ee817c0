// fuzz_onednn_checksums.cpp: a libFuzzer target for the text of a tbk_onednn payload's
// ":checksums" part (backends/onednn/checksums_text.hpp), which loading reads before any other
// part: any bytes must either parse or be refused with std::invalid_argument, and what parses
// writes back to a text that parses to the same parts. Any other exception, a crash, a leak or a
// sanitizer report is a finding. Built and run by run_fuzz.sh.
#include "checksums_text.hpp"

#include <cstddef>    // std::size_t
#include <cstdint>    // uint8_t
#include <map>        // std::map
#include <stdexcept>  // std::invalid_argument
#include <string>     // std::string

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  std::map<std::string, tbk_onednn::recorded_part> parts;
  try {
    parts = tbk_onednn::parse_checksums_text(reinterpret_cast<const char*>(data), size);
  } catch (const std::invalid_argument&) {
    return 0;
  }
  const std::string text = tbk_onednn::checksums_text(parts);
  const auto again = tbk_onednn::parse_checksums_text(text.data(), text.size());
  if (again.size() != parts.size()) __builtin_trap();
  for (const auto& [name, part] : parts) {
    auto found = again.find(name);
    if (found == again.end() || found->second.crc != part.crc || found->second.form != part.form) __builtin_trap();
  }
  return 0;
}
