// unit-compile-spec.cpp: compile specs (tbk/compile_spec.hpp): method_spec's typed options, the
// spellings of "no options" it accepts and the errors it gives, a spec error raised inside
// compile, the spec builder's refusals, and example inputs.

#include <ATen/ATen.h>
#include <tbk/tbk.hpp>

#include <initializer_list>  // std::initializer_list
#include <string>            // std::string
#include <vector>            // std::vector

#include "test_backends.hpp"  // "tbk_test_scale"
#include "support.hpp"        // last: doctest's CHECK macros over glog's

using tbk_test::error_of;
using tbk_test::scale_source;
using tbk_test::script;

namespace {

// Registers the backend these tests lower to, "tbk_test_scale", once per process.
void register_test_backends() { tbk_test::register_shared_test_backends(); }

tbk::method_spec view(c10::IValue options) {
  return tbk::method_spec("my_backend", "forward", std::move(options));
}
c10::impl::GenericDict options(std::initializer_list<tbk::spec_builder::option> entries) {
  c10::impl::GenericDict d(c10::StringType::get(), c10::AnyType::get());
  for (const auto& e : entries) d.insert(e.first, e.second);
  return d;
}

}  // namespace

TEST_CASE("method_spec reads typed options, with fallbacks") {
  auto spec = view(options({{"threads", 4}, {"scale", 0.5}, {"mode", std::string("fast")},
                            {"fuse", true}}));
  CHECK(spec.name() == "forward");
  CHECK(spec.get<int64_t>("threads") == 4);
  CHECK(spec.get<double>("scale") == 0.5);
  CHECK(spec.get<std::string>("mode") == "fast");
  CHECK(spec.get<bool>("fuse"));
  CHECK(spec.get<int64_t>("missing", 7) == 7);
  CHECK(spec.contains("threads"));
  CHECK_FALSE(spec.contains("missing"));
  CHECK(spec.keys().size() == 4);
}

TEST_CASE("method_spec's keys are the user's options, not tbk's own") {
  auto spec = view(options({{"scale", 0.5}, {tbk::example_inputs_option, c10::impl::GenericList(c10::AnyType::get())},
                            {tbk::static_shapes_option, true}, {tbk::region_option, std::string("region 0: ...")}}));
  CHECK(spec.keys() == std::vector<std::string>{"scale"});
  CHECK(spec.contains(tbk::static_shapes_option));  // still read by name
}

TEST_CASE("method_spec accepts PyTorch's {\"\": \"\"}, an empty dict and None") {
  c10::Dict<std::string, std::string> pytorch_style;
  pytorch_style.insert("", "");
  for (c10::IValue options : {c10::IValue(pytorch_style), c10::IValue(options({})), c10::IValue()}) {
    auto spec = view(options);
    CHECK(spec.keys().empty());
    CHECK(spec.get<int64_t>("threads", 1) == 1);
  }
}

TEST_CASE("method_spec errors name backend, method, key, expected and received type") {
  auto spec = view(options({{"threads", std::string("four")}}));
  auto text = error_of([&] { spec.get<int64_t>("threads"); });
  CHECK(text == "my_backend.forward: compile spec option 'threads' of method 'forward' should be "
                "int, got str");
  CHECK(error_of([&] { spec.get<int64_t>("threads", 1); }) == text);  // a fallback does not hide it
  CHECK(error_of([&] { spec.get<double>("scale"); }) ==
        "my_backend.forward: the compile spec of method 'forward' needs option 'scale' (float), "
        "which is missing");
  CHECK(error_of([&] { view(c10::IValue(std::string("fast"))).get<int64_t>("x", 0); }) ==
        "my_backend.forward: the compile spec of method 'forward' should be a dict of options "
        "(Dict[str, Any]), got str");
}

TEST_CASE("a compile spec error inside compile reaches the lowering caller") {
  register_test_backends();
  auto text = error_of([&] {
    tbk::lower(script(scale_source), "tbk_test_scale",
               tbk::spec().method("forward", {{"factor", std::string("big")}}));
  });
  CHECK_CONTAINS(text, "tbk_test_scale.forward: compile spec option 'factor' of method 'forward' "
                       "should be float, got str");
}

TEST_CASE("spec builder refuses a duplicate or empty method name") {
  CHECK(error_of([] { tbk::spec().method("forward").method("forward"); }) ==
        "tbk::spec: method 'forward' is named twice");
  CHECK(error_of([] { tbk::spec().method(""); }) == "tbk::spec: a method name cannot be empty");
}

TEST_CASE("example inputs: written by the spec builder, read typed by method_spec, with named errors") {
  const at::Tensor x = at::randn({2, 3});
  const auto built = tbk::spec().method("helper").method("forward", {{"threads", 4}}).example_inputs({x, int64_t(5)});
  auto spec = tbk::method_spec("my_backend", "forward", built.dict().at("forward"));
  CHECK(spec.has_example_inputs());
  CHECK(spec.get<int64_t>("threads") == 4);  // the method's other options stay
  const std::vector<c10::IValue> inputs = spec.example_inputs();
  REQUIRE(inputs.size() == 2);
  CHECK(inputs[0].toTensor().equal(x));
  CHECK(inputs[1].toInt() == 5);
  CHECK(error_of([&] { spec.example_tensors(); }) ==
        "my_backend.forward: example input 1 of method 'forward' should be a Tensor, got int(5)");
  auto tensors_only = tbk::method_spec("my_backend", "forward",
                                       tbk::spec().method("forward").example_inputs({x}).dict().at("forward"));
  CHECK(tensors_only.example_tensors().size() == 1);
  CHECK_FALSE(tbk::method_spec("my_backend", "helper", built.dict().at("helper")).has_example_inputs());
  // a tuple or a single tensor, as Python may give them, reads the same
  CHECK(view(options({{"example_inputs", c10::ivalue::Tuple::create({x, x})}})).example_tensors().size() == 2);
  CHECK(view(options({{"example_inputs", x}})).example_tensors().size() == 1);
  CHECK_CONTAINS(error_of([&] { view(options({})).example_inputs(); }),
                 "my_backend.forward: method 'forward' needs example inputs (compile spec option 'example_inputs')");
  CHECK(error_of([&] { view(options({{"example_inputs", int64_t(3)}})).example_inputs(); }) ==
        "my_backend.forward: compile spec option 'example_inputs' of method 'forward' should be a list of "
        "inputs, got int(3)");
  CHECK(error_of([] { tbk::spec().example_inputs({at::ones({1})}); }) ==
        "tbk::spec: example_inputs(...) follows the method it is for: tbk::spec().method(\"forward\").example_inputs({x})");
}
