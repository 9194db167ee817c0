// implementation.hpp: which oneDNN implementation runs each primitive of tbk_onednn, on the CPU
// at hand: the ISA and its blocked activation layout, the choice among the implementations
// oneDNN offers (never its reference one where another exists; a preferred one on request), and
// the warning given once when a primitive has nothing but the reference one.
#pragma once
#include <c10/util/Exception.h>  // TORCH_WARN
#include <dnnl.hpp>

#include <functional>  // std::function
#include <mutex>       // std::mutex, std::lock_guard
#include <set>         // std::set
#include <string>      // std::string
#include <vector>      // std::vector

namespace tbk_onednn {
namespace detail {

// oneDNN's name of an ISA level, as ONEDNN_MAX_CPU_ISA spells it (lower case).
inline const char* isa_name(dnnl::cpu_isa isa) {
  using i = dnnl::cpu_isa;
  switch (isa) {
    case i::sse41: return "sse41";
    case i::avx: return "avx";
    case i::avx2: return "avx2";
    case i::avx2_vnni: return "avx2_vnni";
    case i::avx512_core: return "avx512_core";
    case i::avx512_core_vnni: return "avx512_core_vnni";
    case i::avx512_core_bf16: return "avx512_core_bf16";
    case i::avx512_core_amx: return "avx512_core_amx";
    default: return "unknown";
  }
}
// The ISA oneDNN uses in this process: the CPU's, or less under ONEDNN_MAX_CPU_ISA.
inline std::string effective_isa() { return isa_name(dnnl::get_effective_cpu_isa()); }

// The channel block of oneDNN's blocked-layout kernels at the effective ISA: 16 floats with
// AVX-512 (nChw16c), 8 with AVX2, AVX and SSE4.1 (nChw8c), 0 when unknown. Never forced on a
// convolution (oneDNN 2.6 has no AVX2 kernel for nChw16c activations and falls back to its
// reference convolution, ~900x slower): a layout to try where a primitive has only the reference
// implementation for the layout its input has.
inline int activation_block() {
  using i = dnnl::cpu_isa;
  switch (dnnl::get_effective_cpu_isa()) {
    case i::avx512_core: case i::avx512_core_vnni: case i::avx512_core_bf16: case i::avx512_core_amx: return 16;
    case i::sse41: case i::avx: case i::avx2: case i::avx2_vnni: return 8;
    default: return 0;
  }
}

inline std::string implementation_of(const dnnl::primitive_desc_base& pd) { return pd.impl_info_str(); }

// oneDNN's reference implementations ("ref:any", "ref_int8:any", ...): correct for every case,
// written for clarity rather than speed.
inline bool is_reference(const dnnl::primitive_desc_base& pd) { return implementation_of(pd).rfind("ref", 0) == 0; }

// A primitive descriptor at the implementation to run. oneDNN lists implementations best first:
// the first one whose name contains `preferred` (a compile spec option, e.g. "gemm"), when
// given and offered; else the first that is not a reference one; else the first. `make` builds
// the descriptor at its first implementation (next_impl() moves a descriptor, so going back means
// building it again); the operation descriptor it builds from must outlive this call, since
// oneDNN's implementation iterator keeps a pointer to it.
template <class PrimitiveDesc>
PrimitiveDesc choose_implementation(const std::function<PrimitiveDesc()>& make, const std::string& preferred) {
  PrimitiveDesc pd = make();
  if (!preferred.empty()) {
    do {
      if (implementation_of(pd).find(preferred) != std::string::npos) return pd;
    } while (pd.next_impl());
    pd = make();
  }
  if (!is_reference(pd)) return pd;
  while (pd.next_impl()) {
    if (!is_reference(pd)) return pd;
  }
  return make();
}

// Says once per process and primitive description (`what`: the operation and its shapes) that
// oneDNN's reference implementation runs it on this CPU: because oneDNN has no other for it here,
// or because the compile option "implementation" asked for it (`asked`). The method's summary
// says it too.
inline void warn_reference(const std::string& method, const std::string& what, const std::string& implementation,
                           bool asked) {
  static std::mutex mutex;
  static std::set<std::string> said;
  {
    std::lock_guard<std::mutex> lock(mutex);
    if (!said.insert(what).second) return;
  }
  TORCH_WARN("tbk_onednn.", method, ": oneDNN's reference implementation (", implementation, ") runs ", what,
             " at ISA ", effective_isa(), ", correctly but slowly: ",
             asked ? "the compile option 'implementation' asked for it" : "oneDNN has no other for it here");
}

// Says that the compile option "implementation" (`preferred`) matched no step of a method, with
// the implementations that run instead: a misspelled name, or one this CPU does not offer.
inline void warn_preference_unmatched(const std::string& method, const std::string& preferred,
                                      const std::vector<std::string>& implementations) {
  std::string ran;
  for (const std::string& i : implementations) {
    if (ran.find(i) == std::string::npos) ran += (ran.empty() ? "" : ", ") + i;
  }
  TORCH_WARN("tbk_onednn.", method, ": compile spec option 'implementation' is '", preferred,
             "', which no step of this method offers at ISA ", effective_isa(), "; they run: ", ran);
}

}  // namespace detail
}  // namespace tbk_onednn
