// unit-lower.cpp: lowering (tbk/lower.hpp): tbk::lower_submodules, parameter defaults and keyword
// arguments on both lowering paths, a module parameter not named self, and lowering's errors
// (an unknown backend, a method the module lacks, an empty spec).

#include <ATen/ATen.h>
#include <tbk/load.hpp>
#include <tbk/lower.hpp>

#include <sstream>  // std::stringstream
#include <string>   // std::string

#include "add_sub_modules.hpp"  // pair_source, combining_module, pair_module, expected
#include "test_backends.hpp"    // affine_backend, "tbk_test_scale"
#include "support.hpp"          // last: doctest's CHECK macros over glog's

using tbk_test::combining_module;
using tbk_test::error_of;
using tbk_test::expected;
using tbk_test::pair_module;
using tbk_test::pair_source;
using tbk_test::round_trip;
using tbk_test::scale_source;
using tbk_test::script;

namespace {

// Outer, with submodules of two distinct types, First and Second.
torch::jit::Module outer_module() {
  return combining_module("Outer", pair_module("First"), pair_module("Second"));
}

bool is_lowered(const torch::jit::Module& m) {
  return m.type()->name()->qualifiedName().find("LoweredWrapper") != std::string::npos;
}

}  // namespace

TEST_CASE("lower_submodules lowers only the named submodules; the parent stays TorchScript") {
  auto outer = outer_module();
  auto a = torch::randn({4}), b = torch::randn({4});
  auto lowered = tbk::lower_submodules(outer, {"first"}, "custom_backend",
                                       tbk::spec().method("forward"));
  CHECK(is_lowered(lowered.attr("first").toModule()));
  CHECK_FALSE(is_lowered(lowered.attr("second").toModule()));
  CHECK_FALSE(is_lowered(lowered));
  CHECK(torch::allclose(lowered.forward({a, b}).toTensor(), expected(a, b)));
  CHECK(torch::allclose(round_trip(lowered).forward({a, b}).toTensor(), expected(a, b)));
  // the original is untouched
  CHECK_FALSE(is_lowered(outer.attr("first").toModule()));
  CHECK(torch::allclose(outer.forward({a, b}).toTensor(), expected(a, b)));

  auto both = tbk::lower_submodules(outer, {"first", "second"}, "custom_backend",
                                    tbk::spec().method("forward"));
  CHECK(is_lowered(both.attr("second").toModule()));
  CHECK(torch::allclose(round_trip(both).forward({a, b}).toTensor(), expected(a, b)));
}

TEST_CASE("lower_submodules: nested paths") {
  torch::jit::Module root("Root"), middle("Middle"), leaf("Leaf");
  leaf.define(pair_source);
  middle.register_module("leaf", leaf);
  middle.define("def forward(self, a: Tensor, b: Tensor) -> Tuple[Tensor, Tensor]:\n"
                "  return self.leaf.forward(a, b)\n");
  root.register_module("middle", middle);
  root.define("def forward(self, a: Tensor, b: Tensor) -> Tensor:\n"
              "  s, d = self.middle.forward(a, b)\n  return s * d\n");
  auto lowered = tbk::lower_submodules(root, {"middle.leaf"}, "custom_backend",
                                       tbk::spec().method("forward"));
  auto a = torch::randn({3}), b = torch::randn({3});
  CHECK(is_lowered(lowered.attr("middle").toModule().attr("leaf").toModule()));
  CHECK(torch::allclose(round_trip(lowered).forward({a, b}).toTensor(), (a + b) * (a - b)));
}

TEST_CASE("lower_submodules errors: a missing path, an attribute that is not a module, a shared type") {
  auto outer = outer_module();
  auto spec = tbk::spec().method("forward");
  CHECK_CONTAINS(error_of([&] { tbk::lower_submodules(outer, {"third"}, "custom_backend", spec); }),
                 "tbk::lower_submodules: 'third' does not exist: the root module (__torch__.Outer) "
                 "has no attribute 'third'");
  CHECK_CONTAINS(error_of([&] { tbk::lower_submodules(outer, {"first.deeper"}, "custom_backend", spec); }),
                 "'first.deeper' does not exist: 'first' (__torch__.First) has no attribute 'deeper'");
  CHECK_CONTAINS(error_of([&] { tbk::lower_submodules(outer, {"plain"}, "custom_backend", spec); }),
                 "tbk::lower_submodules: 'plain' is not a module: attribute 'plain' of the root "
                 "module is int(3)");
  CHECK_CONTAINS(error_of([&] { tbk::lower_submodules(outer, {}, "custom_backend", spec); }),
                 "no submodule path given");

  torch::jit::Module twice("Twice"), shared("Shared");
  shared.define(pair_source);
  twice.register_module("left", shared);
  twice.register_module("right", shared);
  CHECK_CONTAINS(error_of([&] { tbk::lower_submodules(twice, {"left"}, "custom_backend", spec); }),
                 "cannot lower 'left': the type of the submodule (__torch__.");
  CHECK_CONTAINS(error_of([&] { tbk::lower_submodules(twice, {"left"}, "custom_backend", spec); }),
                 "Shared) is shared by several submodules, and lowering changes it for all of them");
}

// ---- parameter defaults and keyword arguments, on both lowering paths -------------------------

namespace {

void register_affine_backend() {
  static const bool done = (tbk::register_backend<tbk_test::affine_backend>("tbk_lowering_affine"), true);
  (void)done;
}

const char* const affine_source = R"(
  def forward(self, x: Tensor, scale: float = 2.0, shift: int = 1) -> Tensor:
      return x * scale + shift
)";

}  // namespace

TEST_CASE("lowered methods keep their parameters' defaults and take keyword arguments") {
  register_affine_backend();
  const auto x = torch::randn({5});
  for (const auto path : {tbk::lowering_path::native, tbk::lowering_path::fast}) {
    CAPTURE(static_cast<int>(path));
    auto lowered = tbk::lower(script(affine_source), "tbk_lowering_affine",
                              tbk::spec().method("forward"), path);
    auto check = [&](auto& model) {
      CHECK(torch::allclose(model.forward({x}).toTensor(), x * 2.0 + 1));
      CHECK(torch::allclose(model.forward({x, 3.0}).toTensor(), x * 3.0 + 1));
      CHECK(torch::allclose(model.get_method("forward")({x}, {{"shift", int64_t(5)}}).toTensor(),
                            x * 2.0 + 5));
      CHECK(torch::allclose(
          model.get_method("forward")({}, {{"x", x}, {"scale", 0.5}}).toTensor(), x * 0.5 + 1));
    };
    check(lowered);
    auto loaded = round_trip(lowered);
    check(loaded);
    std::stringstream lite;
    lowered._save_for_mobile(lite);
    auto mobile = tbk::load_for_mobile(lite);
    CHECK(torch::allclose(mobile.forward({x}).toTensor(), x * 2.0 + 1));
    CHECK(torch::allclose(mobile.forward({x, 3.0, int64_t(4)}).toTensor(), x * 3.0 + 4));
  }
}

TEST_CASE("a method whose module parameter is not called self: the fast path lowers it, the native path says why not") {
  // TorchScript takes any name for a method's first parameter, the module: `def forward(s, x)`
  register_affine_backend();
  const auto x = torch::randn({5});
  auto module = script(R"(
  def forward(s, x: Tensor, scale: float = 2.0, shift: int = 1) -> Tensor:
      return x * scale + shift
)");
  auto lowered = tbk::lower(module, "tbk_lowering_affine", tbk::spec().method("forward"), tbk::lowering_path::fast);
  CHECK(torch::allclose(lowered.forward({x, 3.0}).toTensor(), x * 3.0 + 1));
  CHECK(torch::allclose(round_trip(lowered).forward({x}).toTensor(), x * 2.0 + 1));
  CHECK(error_of([&] { tbk::lower(module, "tbk_lowering_affine", tbk::spec().method("forward")); }) ==
        "tbk::lower: method 'forward' names its module parameter 's'; PyTorch's code generation (the "
        "native path, as torch._C._jit_to_backend) needs it named 'self': rename it, or lower on the "
        "fast path (tbk::lowering_path::fast), which takes any name");
}

// ---- lowering errors ----------------------------------------------------------------------------

namespace {

// Registers the backend these tests lower to, "tbk_test_scale", once per process.
void register_test_backends() { tbk_test::register_shared_test_backends(); }

}  // namespace

TEST_CASE("lowering errors: unknown backend, a method the module lacks, an empty spec") {
  register_test_backends();
  auto module = script(scale_source);
  auto text = error_of([&] { tbk::lower(module, "no_such_backend", tbk::spec().method("forward")); });
  CHECK_CONTAINS(text, "backend 'no_such_backend' is not registered in this process");
  CHECK_CONTAINS(text, "tbk_test_scale");  // lists what is registered

  text = error_of([&] { tbk::lower(module, "tbk_test_scale", tbk::spec().method("fwd")); });
  CHECK_CONTAINS(text, "the compile spec names method 'fwd', but module '__torch__.M' has no such "
                       "method (its methods: forward, twice)");

  text = error_of([&] { tbk::lower(module, "tbk_test_scale", tbk::spec()); });
  CHECK_CONTAINS(text, "names no method");
}
