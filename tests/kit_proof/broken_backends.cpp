// broken_backends.cpp: backends that are each wrong in one way, and one that is sound, all put
// through the conformance kit. This program is expected to fail: check_kit.py reads its doctest
// report and requires exactly the kit checks that correspond to each fault to fail, with a
// message that says what broke, and every other check to pass.

#include <tbk/backend.hpp>
#include <tbk/register.hpp>
#include <tbk/testing.hpp>

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
  return {torch::randn({1 << 16}, options), torch::randn({1 << 16}, options)};
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

// Errors that name nothing: written by hand against PyTorch's interface (the kit checks any
// registered backend), refusing bad inputs with a bare "bad input".
class anonymous_errors_backend : public torch::jit::PyTorchBackendInterface {
 public:
  bool is_available() override { return true; }
  c10::impl::GenericDict compile(c10::IValue, c10::impl::GenericDict spec) override {
    auto handles = c10::Dict<std::string, std::string>();
    for (const auto& entry : spec) handles.insert(entry.key().toStringRef(), "handle");
    return c10::impl::toGenericDict(handles);
  }
  c10::impl::GenericList execute(c10::IValue, c10::impl::GenericList inputs) override {
    if (inputs.size() != 2 || !inputs.get(0).isTensor() || !inputs.get(1).isTensor()) {
      throw std::runtime_error("bad input");
    }
    const at::Tensor a = inputs.get(0).toTensor(), b = inputs.get(1).toTensor();
    return c10::impl::toList(c10::List<at::Tensor>({a + b, a - b}));
  }
};
c10::IValue keep_module(const torch::jit::Module& module, const c10::Dict<c10::IValue, c10::IValue>&,
                        const torch::jit::BackendDebugHandleGenerator&) {
  return module._ivalue();
}
const auto anonymous_errors_class = torch::jit::backend<anonymous_errors_backend>("anonymous_errors");
const auto anonymous_errors_preprocess =
    torch::jit::backend_preprocess_register("anonymous_errors", keep_module);

}  // namespace

TBK_REGISTER_BACKEND(sound_backend, "sound");
TBK_REGISTER_BACKEND(add_sub_graph_backend, "sound_graph");
TBK_REGISTER_BACKEND(claims_nothing_backend, "claims_nothing");
TBK_REGISTER_BACKEND(reuses_outputs_backend, "reuses_outputs");
TBK_REGISTER_BACKEND(accepts_bad_calls_backend, "accepts_bad_calls");
TBK_REGISTER_BACKEND(unavailable_without_reason_backend, "unavailable_without_reason");
TBK_REGISTER_BACKEND(wrong_result_backend, "wrong_result");
TBK_REGISTER_BACKEND(loses_dtype_backend, "loses_dtype");
TBK_REGISTER_BACKEND(not_thread_safe_backend, "not_thread_safe");
TBK_REGISTER_BACKEND(crashes_on_bad_argument_backend, "crashes_on_bad_argument");
TBK_REGISTER_BACKEND(loses_state_backend, "loses_state");
TBK_REGISTER_BACKEND(leaking_backend, "leaks");
TBK_REGISTER_BACKEND(ignores_switch_backend, "ignores_switch");

TBK_TEST_BACKEND("sound")
    .module(add_sub_source)
    .inputs(double_inputs)
    .unavailable_when([] { switched_off = true; }, [] { switched_off = false; },
                      "the test switched it off")
    .memory(100, 2.0);

TBK_TEST_BACKEND("wrong_result").module(add_sub_source).inputs(double_inputs).memory(100, 2.0);
TBK_TEST_BACKEND("loses_dtype").module(add_sub_source).inputs(double_inputs).memory(100, 2.0);
TBK_TEST_BACKEND("not_thread_safe").module(add_sub_source).inputs(double_inputs).memory(100, 2.0);
TBK_TEST_BACKEND("crashes_on_bad_argument")
    .module(add_sub_source)
    .inputs(double_inputs)
    .memory(100, 2.0);
TBK_TEST_BACKEND("loses_state")
    .module(R"(
  def forward(self, a: Tensor, b: Tensor) -> Tuple[Tensor, Tensor]:
      return (a + b) * 2.0, (a - b) * 2.0
)")
    .spec(tbk::spec().method("forward", {{"factor", 2.0}}))
    .inputs(double_inputs)
    .memory(100, 2.0);
TBK_TEST_BACKEND("leaks").module(add_sub_source).inputs(double_inputs).memory(100, 2.0);
TBK_TEST_BACKEND("ignores_switch")
    .module(add_sub_source)
    .inputs(double_inputs)
    .unavailable_when([] { cached_switched_off = true; }, [] { cached_switched_off = false; },
                      "the test switched it off")
    .memory(100, 2.0);
TBK_TEST_BACKEND("reuses_outputs").module(add_sub_source).inputs(double_inputs).memory(100, 2.0);
TBK_TEST_BACKEND("accepts_bad_calls").module(add_sub_source).inputs(double_inputs).memory(100, 2.0);
TBK_TEST_BACKEND("unavailable_without_reason")
    .module(add_sub_source)
    .inputs(double_inputs)
    .unavailable_when([] { terse_switched_off = true; }, [] { terse_switched_off = false; },
                      "the test switched it off")
    .memory(100, 2.0);
TBK_TEST_BACKEND("sound_graph").module(add_sub_source).inputs(double_inputs).memory(100, 2.0);
TBK_TEST_BACKEND("claims_nothing").module(add_sub_source).inputs(double_inputs).memory(100, 2.0);
TBK_TEST_BACKEND("anonymous_errors").module(add_sub_source).inputs(double_inputs).memory(100, 2.0);

#ifdef TBK_KIT_PROOF_EXECUTORCH  // tests/meson.build sets it when ExecuTorch is found
// The kit's ExecuTorch leg: the sound backend passes it, the broken ones fail it.
#include <tbk/executorch.hpp>
#include <tbk/testing/executorch.hpp>
TBK_REGISTER_EXECUTORCH_BACKEND(sound_backend, "sound");
TBK_REGISTER_EXECUTORCH_BACKEND(wrong_result_backend, "wrong_result");
TBK_REGISTER_EXECUTORCH_BACKEND(loses_dtype_backend, "loses_dtype");
TBK_REGISTER_EXECUTORCH_BACKEND(leaking_backend, "leaks");
TBK_TEST_EXECUTORCH_BACKEND("sound");
TBK_TEST_EXECUTORCH_BACKEND("wrong_result");
TBK_TEST_EXECUTORCH_BACKEND("loses_dtype");
TBK_TEST_EXECUTORCH_BACKEND("leaks");
#endif
