// precision.hpp: the data type a tbk_onednn method computes its convolutions and linear layers in,
// the method option "precision": "fp32" (the default: results within 1e-4 of eager), "bf16"
// (weights and the activations between steps in bfloat16, fp32 at the method's inputs and
// outputs), or "auto" (bf16 where the CPU has bf16 instructions that oneDNN uses, avx512_bf16 or
// AMX; fp32 elsewhere: oneDNN 2.6 emulates bf16 on plain AVX-512, about 3x slower than its fp32,
// and has no bf16 below). Measured with backends/onednn/benchmarks/precision.py (docs/onednn.md,
// "Precision"). Read where the method is compiled, so that "auto" answers for the CPU that runs it.
#pragma once
#include <c10/util/Exception.h>  // TORCH_WARN
#include <dnnl.hpp>

#include <cstddef>    // std::size_t
#include <mutex>      // std::mutex, std::lock_guard
#include <set>        // std::set
#include <stdexcept>  // std::invalid_argument
#include <string>     // std::string

namespace tbk_onednn {

enum class precision { fp32, bf16 };

inline const char* precision_name(precision p) { return p == precision::bf16 ? "bf16" : "fp32"; }

// Whether oneDNN, at the ISA it uses in this process, has bf16 instructions (avx512_core_bf16:
// AVX512_BF16's dot products; avx512_core_amx: AMX tiles too): the CPUs where "auto" picks bf16.
inline bool native_bf16() {
  const dnnl::cpu_isa isa = dnnl::get_effective_cpu_isa();
  return isa == dnnl::cpu_isa::avx512_core_bf16 || isa == dnnl::cpu_isa::avx512_core_amx;
}

// Whether oneDNN's int8 convolutions and matmuls at the ISA it uses in this process compute what
// PT2E's reference does: with VNNI's 32-bit dot products (avx512_core_vnni, avx2_vnni and the ISAs
// above them). Below, oneDNN 2.6 multiplies u8 by s8 with vpmaddubsw, whose 16-bit pair sums
// saturate, so it halves the weights (7 bits, its "scale adjust"): measured 2e-2 to 4.8e-1 of the
// output's scale off the quantized model on backends/onednn/models.py's networks at AVX2. There,
// tbk_onednn computes its int8 layers in fp32 from the dequantized input and weights instead.
inline bool native_int8() {
  const dnnl::cpu_isa isa = dnnl::get_effective_cpu_isa();
  return isa == dnnl::cpu_isa::avx512_core_vnni || isa == dnnl::cpu_isa::avx512_core_bf16 ||
         isa == dnnl::cpu_isa::avx512_core_amx || isa == dnnl::cpu_isa::avx2_vnni;
}

// The precision the option's value asks for, "auto" answered for this process's ISA. Throws
// std::invalid_argument naming the option and the value for any other value.
inline precision precision_from_option(const std::string& value) {
  if (value == "fp32") return precision::fp32;
  if (value == "bf16") return precision::bf16;
  if (value == "auto") return native_bf16() ? precision::bf16 : precision::fp32;
  throw std::invalid_argument("option 'precision' must be \"fp32\", \"bf16\" or \"auto\", got \"" + value + "\"");
}

namespace detail {

// oneDNN's data type for a precision's activations and weights.
inline dnnl::memory::data_type data_type_of(precision p) {
  return p == precision::bf16 ? dnnl::memory::data_type::bf16 : dnnl::memory::data_type::f32;
}

// oneDNN's name of a data type, as the method's summary gives it ("f32", "bf16").
inline std::string data_type_name(dnnl::memory::data_type type) {
  switch (type) {
    case dnnl::memory::data_type::f32: return "f32";
    case dnnl::memory::data_type::bf16: return "bf16";
    case dnnl::memory::data_type::f16: return "f16";
    case dnnl::memory::data_type::s32: return "s32";
    case dnnl::memory::data_type::s8: return "s8";
    case dnnl::memory::data_type::u8: return "u8";
    default: return "undef";
  }
}

// Says once per process and method that `fell_back` of its `weighted` convolution and linear
// steps run in fp32 although its precision (the option, or what "auto" picked) is `asked`: oneDNN
// has no implementation for them in that precision at ISA `isa` but its reference one (bf16 below
// AVX-512: not even that; a fused 3-channel convolution on AVX512_BF16), which tbk_onednn never runs.
inline void warn_fp32_instead(const std::string& method, precision asked, std::size_t fell_back, std::size_t weighted,
                              const std::string& isa) {
  static std::mutex mutex;
  static std::set<std::string> said;
  {
    std::lock_guard<std::mutex> lock(mutex);
    if (!said.insert(method).second) return;
  }
  TORCH_WARN("tbk_onednn.", method, ": ", fell_back, " of its ", weighted, " convolution and linear steps run in fp32, not ",
             precision_name(asked), " as the option 'precision' asks: oneDNN has no ", precision_name(asked),
             " implementation for them at ISA ", isa, " other than its slow reference one, if any");
}

// Says once per process and method that its `int8` int8 convolution and linear steps run in fp32
// (native_int8: oneDNN's int8 kernels at ISA `isa` would keep the weights at 7 bits).
inline void warn_int8_as_fp32(const std::string& method, std::size_t int8, const std::string& isa) {
  static std::mutex mutex;
  static std::set<std::string> said;
  {
    std::lock_guard<std::mutex> lock(mutex);
    if (!said.insert(method).second) return;
  }
  TORCH_WARN("tbk_onednn.", method, ": its ", int8, " int8 convolution and linear steps run in fp32 on their dequantized ",
             "inputs and weights: at ISA ", isa, " (no VNNI) oneDNN's int8 kernels keep the weights at 7 bits, which the ",
             "quantized model does not");
}

}  // namespace detail
}  // namespace tbk_onednn
