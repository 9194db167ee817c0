// broken_backends.hpp: backends that are each wrong in one way, and one that is sound, for the
// conformance kit's proof: kit_proof (broken_backends.cpp) puts them through the C++ kit, and
// libkit_proof_pt2 (register_pt2_proof.cpp) registers some for the Python kit's legs
// (check_pt2_kit.py). Each translation unit that includes it gets its own copy (one per binary).
#pragma once

#include <tbk/backend.hpp>
#include <tbk/register.hpp>

#include "add_sub_graph.hpp"  // add_sub_graph_backend: a sound backend for partitioned models

#include <torch/csrc/jit/backends/backend.h>             // torch::jit::backend
#include <torch/csrc/jit/backends/backend_preprocess.h>  // torch::jit::backend_preprocess_register

#include <atomic>   // std::atomic
#include <csignal>  // std::raise, SIGSEGV
#include <memory>   // std::unique_ptr
#include <tuple>    // std::tuple
#include <vector>   // std::vector

namespace {

using tensor_pair = std::tuple<at::Tensor, at::Tensor>;

// The module every backend here lowers, and its inputs: large enough that calls from several
// threads overlap.
const char* const add_sub_source = R"(
  def forward(self, a: Tensor, b: Tensor) -> Tuple[Tensor, Tensor]:
      return a + b, a - b
)";
std::vector<c10::IValue> double_inputs() {
  const auto options = at::TensorOptions().dtype(at::kDouble);
  return {at::randn({1 << 16}, options), at::randn({1 << 16}, options)};
}

struct method_only {
  static std::string compile(const tbk::method_spec& method, const c10::IValue&) {
    return method.name();
  }
};

// Sound: computes (a + b, a - b), and is unavailable while `switched_off` is set.
std::atomic<bool> switched_off{false};
struct sound_execute {
  static tensor_pair execute(const std::string&, const at::Tensor& a, const at::Tensor& b) {
    return {a + b, a - b};
  }
};
struct switchable {
  static tbk::availability is_available() {
    if (switched_off) return tbk::unavailable("the test switched it off");
    return tbk::available();
  }
};
using sound_backend = tbk::backend<method_only, sound_execute, switchable>;

// Wrong result: returns a + b twice.
struct wrong_result_execute {
  static tensor_pair execute(const std::string&, const at::Tensor& a, const at::Tensor& b) {
    return {a + b, a + b};
  }
};
using wrong_result_backend = tbk::backend<method_only, wrong_result_execute>;

// Loses the dtype: computes in float whatever comes in.
struct loses_dtype_execute {
  static tensor_pair execute(const std::string&, const at::Tensor& a, const at::Tensor& b) {
    return {(a + b).to(at::kFloat), (a - b).to(at::kFloat)};
  }
};
using loses_dtype_backend = tbk::backend<method_only, loses_dtype_execute>;

// Writes a + b and a - b into kept buffers and returns those very tensors; what a caller did to
// them (requires_grad_(), a reshape) is undone first, but for their values.
tensor_pair add_sub_into(at::Tensor& sum, at::Tensor& difference, const at::Tensor& a,
                         const at::Tensor& b) {
  sum.detach_();
  difference.detach_();
  sum.resize_(a.sizes());
  difference.resize_(a.sizes());
  at::add_out(sum, a, b);
  at::sub_out(difference, a, b);
  return {sum, difference};
}

// Not thread-safe: writes every result into one shared pair of buffers and returns them. (The
// buffers are made once, at the inputs' size, so that the race gives wrong values rather than a
// crash in a resize.)
struct shared_buffers_execute {
  static tensor_pair execute(const std::string&, const at::Tensor& a, const at::Tensor& b) {
    static at::Tensor sum = at::empty_like(a), difference = at::empty_like(a);
    return add_sub_into(sum, difference, a, b);
  }
};
using not_thread_safe_backend = tbk::backend<method_only, shared_buffers_execute>;

// Crashes on a bad argument: trusts that it gets two tensors, as a kernel reading raw memory
// would (the signal stands for what such a read does).
struct trusting_execute {
  static tensor_pair execute(const std::string&, tbk::rest<c10::IValue> inputs) {
    if (inputs.size() < 2 || !inputs[0].isTensor() || !inputs[1].isTensor()) std::raise(SIGSEGV);
    const at::Tensor &a = inputs[0].toTensor(), &b = inputs[1].toTensor();
    return {a + b, a - b};
  }
};
using crashes_on_bad_argument_backend = tbk::backend<method_only, trusting_execute>;

// Loses its state on save/load: preprocess hands the "factor" option to compile through a
// process-wide variable instead of the payload, and the first compile takes it; a loaded model
// compiles again and finds nothing there.
std::atomic<double> handed_over_factor{1.0};
struct hand_over_compile {
  static c10::IValue preprocess(const torch::jit::Module& module, const tbk::compile_spec& spec) {
    handed_over_factor = spec.method("forward").get<double>("factor");
    return module._ivalue();
  }
  static double compile(const tbk::method_spec&, const c10::IValue&) {
    return handed_over_factor.exchange(1.0);
  }
};
struct scaled_execute {
  static tensor_pair execute(double factor, const at::Tensor& a, const at::Tensor& b) {
    return {(a + b) * factor, (a - b) * factor};
  }
};
using loses_state_backend = tbk::backend<hand_over_compile, scaled_execute>;

// Leaks: every compile allocates 64 KB it never frees.
struct leaking_compile {
  static std::string compile(const tbk::method_spec& method, const c10::IValue&) {
    auto* lost = new std::vector<char>(64 * 1024, 1);
    (void)lost;
    return method.name();
  }
};
using leaking_backend = tbk::backend<leaking_compile, sound_execute>;

// Ignores its switch: asks once and keeps the first answer.
std::atomic<bool> cached_switched_off{false};
struct cached_availability {
  static tbk::availability is_available() {
    static const bool off = cached_switched_off.load();
    if (off) return tbk::unavailable("the test switched it off");
    return tbk::available();
  }
};
using ignores_switch_backend = tbk::backend<method_only, sound_execute, cached_availability>;

// Reuses its outputs: returns the same two tensor objects (one pair per thread) on every call,
// so a caller's in-place change to one result shows in the next.
struct reused_outputs_execute {
  static tensor_pair execute(const std::string&, const at::Tensor& a, const at::Tensor& b) {
    thread_local at::Tensor sum = at::empty_like(a), difference = at::empty_like(a);
    return add_sub_into(sum, difference, a, b);
  }
};
using reuses_outputs_backend = tbk::backend<method_only, reused_outputs_execute>;

// Accepts bad calls: takes whatever comes and returns zeros when it is not two tensors.
struct accepting_execute {
  static tensor_pair execute(const std::string&, tbk::rest<c10::IValue> inputs) {
    if (inputs.size() != 2 || !inputs[0].isTensor() || !inputs[1].isTensor()) {
      return {at::zeros({1}), at::zeros({1})};
    }
    const at::Tensor &a = inputs[0].toTensor(), &b = inputs[1].toTensor();
    return {a + b, a - b};
  }
};
using accepts_bad_calls_backend = tbk::backend<method_only, accepting_execute>;

// Unavailable without a reason that says why: its reason is only "off".
std::atomic<bool> terse_switched_off{false};
struct terse_availability {
  static tbk::availability is_available() {
    if (terse_switched_off) return tbk::unavailable("off");
    return tbk::available();
  }
};
using unavailable_without_reason_backend = tbk::backend<method_only, sound_execute, terse_availability>;

// Claims nothing: the add/sub backend for partitioned models (sound_graph, sound) with a supports
// hook that accepts no node, so a partitioned model runs nothing in it.
struct claims_nothing_compile : add_sub_graph_compile {
  static bool supports(const torch::jit::Node&) { return false; }
};
using claims_nothing_backend = tbk::backend<claims_nothing_compile, add_sub_graph_execute>;


}  // namespace
