// unit-examples.cpp: the example backends beyond the reference: the model runner
// (examples/model_runner) and the scaled activation backend (examples/scaled_activation), each
// through the conformance kit and in what is particular to it.

#include "model_runner/small_convnet.hpp"

#include <tbk/lower.hpp>
#include <tbk/testing.hpp>  // TBK_TEST_BACKEND

#include <cstdlib>  // setenv, unsetenv
#include <vector>   // std::vector

#include "support.hpp"  // last: doctest's CHECK macros over glog's

using tbk_test::error_of;
using tbk_test::script;

namespace {

std::vector<c10::IValue> images() { return {at::randn({2, 3, 16, 16})}; }

const char* const activation_source = R"(
  def forward(self, x: Tensor) -> Tensor:
      return torch.tanh(x * 0.5 + 1.0)
  def gate(self, x: Tensor) -> Tensor:
      return torch.sigmoid(x * 2.0)
)";

tbk::spec_builder activation_spec() {
  return tbk::spec()
      .method("forward", {{"scale", 0.5}, {"bias", 1.0}, {"activation", "tanh"}})
      .method("gate", {{"scale", 2.0}, {"activation", "sigmoid"}});
}

std::string lowering_error(std::initializer_list<tbk::spec_builder::option> options) {
  return error_of([&] {
    tbk::lower(script(activation_source), "scaled_activation", tbk::spec().method("forward", options));
  });
}

}  // namespace

// ---- model_runner -----------------------------------------------------------------------------

TBK_TEST_BACKEND("model_runner")
    .module([] { return make_small_convnet(7); })
    .spec(tbk::spec().method("forward").method("classify"))
    .inputs(images)
    .tolerance(1e-4, 1e-5)
    .threads(4, 25)
    .memory(60, 2.0);

TEST_CASE("model_runner saves the frozen model: parameters became constants, batch norm is folded") {
  auto lowered = tbk::lower(make_small_convnet(), "model_runner", tbk::spec().method("forward"));
  const at::Tensor archive =
      lowered.attr("__loweredModule__").toModule().attr("__processed_module").toTensor();
  CHECK((archive.scalar_type() == at::kByte));
  std::stringstream in(std::string(static_cast<const char*>(archive.data_ptr()), archive.numel()));
  torch::jit::Module frozen = torch::jit::load(in);
  CHECK_FALSE(frozen.hasattr("conv1_w"));
  CHECK_FALSE(frozen.hasattr("bn_mean"));
  const std::string graph = frozen.get_method("forward").graph()->toString();
  CHECK_MESSAGE(graph.find("batch_norm") == std::string::npos, "the frozen graph:\n" << graph);
}

TEST_CASE("model_runner lowers only methods the model has, and says which") {
  // tbk::lower checks the module first; the message lists the module's methods.
  const std::string text = error_of([] {
    tbk::lower(make_small_convnet(), "model_runner", tbk::spec().method("predict"));
  });
  CHECK_CONTAINS(text, "has no such method (its methods: ");
  CHECK_CONTAINS(text, "'predict'");
}

// ---- scaled_activation ------------------------------------------------------------------------

TBK_TEST_BACKEND("scaled_activation")
    .module(activation_source)
    .spec(activation_spec())
    .inputs([] { return std::vector<c10::IValue>{at::randn({4096})}; })
    .unavailable_when([] { setenv("SCALED_ACTIVATION_DISABLE", "1", 1); },
                      [] { unsetenv("SCALED_ACTIVATION_DISABLE"); },
                      "SCALED_ACTIVATION_DISABLE is set");

TEST_CASE("scaled_activation keeps each method's own options as its state") {
  auto model = tbk::lower(script(activation_source), "scaled_activation", activation_spec());
  const at::Tensor x = at::linspace(-3, 3, 13);
  CHECK(at::allclose(model.forward({x}).toTensor(), at::tanh(x * 0.5 + 1.0)));
  CHECK(at::allclose(model.get_method("gate")({x}).toTensor(), at::sigmoid(x * 2.0)));
}

TEST_CASE("scaled_activation validates its compile spec when a model is lowered") {
  CHECK(lowering_error({{"scale", 0.5}, {"activation", "gelu"}}) ==
        "scaled_activation.forward: compile policy failed: option 'activation' is 'gelu'; the "
        "activations are none, relu, tanh and sigmoid");
  CHECK(lowering_error({{"sacle", 0.5}}) ==
        "scaled_activation.forward: compile policy failed: unknown option 'sacle'; the options "
        "are scale (float), bias (float) and activation (str)");
  CHECK(lowering_error({{"activation", "relu"}}) ==
        "scaled_activation.forward: the compile spec of method 'forward' needs option 'scale' "
        "(float), which is missing");
  CHECK(lowering_error({{"scale", "big"}}) ==
        "scaled_activation.forward: compile spec option 'scale' of method 'forward' should be "
        "float, got str");
  CHECK(lowering_error({{"scale", 0.0}}) ==
        "scaled_activation.forward: compile policy failed: option 'scale' must be finite and not "
        "0, got 0.000000");
}
