// fuzz_onednn_payload.cpp: a libFuzzer target for tbk_onednn's payload decoder and validator
// (backends/onednn/program.hpp): any bytes must either decode into a checked program or be
// refused with std::invalid_argument. Any other exception, a crash, a leak or an AddressSanitizer
// report is a finding. Built and run by run_fuzz.sh.
#include "program.hpp"

#include <cstddef>    // std::size_t
#include <cstdint>    // uint8_t
#include <stdexcept>  // std::invalid_argument
#include <vector>     // std::vector

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  try {
    const tbk_onednn::program program = tbk_onednn::decode(data, size);
    // a program that decodes re-encodes to the same bytes, stamped with this build's version (a
    // payload of an older version is read and written as this build's)
    std::vector<uint8_t> expected(data, data + size);
    for (std::size_t k = 0; k < 4; ++k) expected[8 + k] = static_cast<uint8_t>(tbk_onednn::format_version >> (8 * k));
    if (tbk_onednn::encode(program) != expected) __builtin_trap();
  } catch (const std::invalid_argument&) {
  }
  return 0;
}
