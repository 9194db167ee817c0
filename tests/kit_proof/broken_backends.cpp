// broken_backends.cpp: the backends of broken_backends.hpp, and a hand-written one, put through
// the conformance kit. This program is expected to fail: check_kit.py reads its doctest report and
// requires exactly the kit checks that correspond to each fault to fail, with a message that says
// what broke, and every other check to pass.

#include "broken_backends.hpp"

#include <tbk/testing.hpp>

namespace {

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
