// snippets.cpp: the C++ code blocks of README.md, lowering.md, partitioning.md, policies.md and
// serialization.md,
// compiled and run as unit tests (tests/docs/check_snippets.py requires each block to be a quote
// of a tested file). Between the quoted lines: what makes them a test.

#include <tbk/backend.hpp>
#include <tbk/detail/fast_module.hpp>  // tbk::detail::fast_method_source, for the generated code
#include <tbk/load.hpp>
#include <tbk/lower.hpp>
#include <tbk/partition.hpp>
#include <tbk/register.hpp>

#include <atomic>   // std::atomic
#include <cstdio>   // std::remove
#include <fstream>  // std::ifstream
#include <iostream> // std::cout
#include <sstream>  // std::stringstream
#include <tuple>    // std::tuple

#include "support.hpp"  // last: doctest's CHECK macros over glog's

using tbk_test::script;

namespace {

torch::jit::Module add_sub_module() {
  return script(R"(
    def forward(self, a: Tensor, b: Tensor) -> Tuple[Tensor, Tensor]:
        return a + b, a - b
  )");
}

void check_add_sub(torch::jit::Module& model) {
  const at::Tensor a = at::randn({4}), b = at::randn({4});
  auto out = model.forward({a, b}).toTuple();
  CHECK(at::equal(out->elements()[0].toTensor(), a + b));
  CHECK(at::equal(out->elements()[1].toTensor(), a - b));
}

// policies.md, "Stateless and stateful policies"
struct offset_policy {
  std::atomic<int64_t> calls{0};
  double offset = 0;
  int64_t compile(const tbk::method_spec& method, const c10::IValue&) {
    offset = method.get<double>("offset", 0.0);
    return 0;
  }
  std::tuple<at::Tensor, int64_t> execute(const int64_t&, const at::Tensor& x) {
    return {x + offset, ++calls};
  }
};
using offset_backend = tbk::backend<offset_policy, offset_policy>;

// policies.md, "Availability": what the snippet assumes exists.
bool cpu_has_avx2() { return __builtin_cpu_supports("avx2"); }
struct my_compile {
  static int64_t compile(const tbk::method_spec&, const c10::IValue&) { return 0; }
};
struct my_execute {
  static at::Tensor execute(const int64_t&, const at::Tensor& x) { return x; }
};

struct needs_avx2 {
  static tbk::availability is_available() {
    return cpu_has_avx2() ? tbk::available() : tbk::unavailable("needs AVX2");
  }
};
using my_backend = tbk::backend<my_compile, my_execute, needs_avx2>;

}  // namespace

TBK_REGISTER_BACKEND(offset_backend, "docs_offset");
TBK_REGISTER_BACKEND(my_backend, "my_backend");

TEST_CASE("docs: lowering natively and on the fast path, saving and loading (README, lowering.md)") {
  torch::jit::Module scripted = add_sub_module();
  auto lowered = tbk::lower(scripted, "custom_backend", tbk::spec().method("forward"));
  auto fast = tbk::lower(scripted, "custom_backend", tbk::spec().method("forward"),
                         tbk::lowering_path::fast);
  lowered.save("model.pt");
  auto model = tbk::load("model.pt");  // names any backend the archive needs and this process lacks
  std::remove("model.pt");
  check_add_sub(model);
  check_add_sub(fast);
}

TEST_CASE("docs: the fast path's generated method (lowering.md)") {
  // The TorchScript that lowering.md shows is what the fast path generates for this module.
  torch::jit::Module scripted = add_sub_module();
  const auto& typed = torch::getCustomClass(tbk::detail::backend_class_name("custom_backend"))
                         ->getMethod("__tbk_execute_2")
                         .getSchema();
  const std::string generated = tbk::detail::fast_method_source(
      "forward", scripted.get_method("forward").function().getSchema(), typed);
  std::ifstream shown(TBK_DOCS_SNIPPETS_DIR "/fast_forward.py");
  std::stringstream text;
  text << shown.rdbuf();
  auto strip = [](std::string s) {
    std::string out;
    std::istringstream lines(s);
    for (std::string line; std::getline(lines, line);) {
      line.erase(0, line.find_first_not_of(' '));
      if (!line.empty() && line[0] != '#') out += line + "\n";
    }
    return out;
  };
  CHECK_MESSAGE(strip(generated) == strip(text.str()), "generated:\n" << generated);
}

TEST_CASE("docs: selective lowering (lowering.md)") {
  torch::jit::Module block("Block"), encoder("Encoder"), head("Head"), scripted("Net");
  const char* const add_sub = R"(
    def forward(self, a: Tensor, b: Tensor) -> Tuple[Tensor, Tensor]:
        return a + b, a - b
  )";
  block.define(add_sub);
  head.define(add_sub);
  encoder.register_module("block1", block);
  encoder.define(R"(
    def forward(self, a: Tensor, b: Tensor) -> Tuple[Tensor, Tensor]:
        return self.block1.forward(a, b)
  )");
  scripted.register_module("encoder", encoder);
  scripted.register_module("head", head);
  scripted.define(R"(
    def forward(self, a: Tensor, b: Tensor) -> Tuple[Tensor, Tensor]:
        x, y = self.encoder.forward(a, b)
        return self.head.forward(x, y)
  )");
  auto model = tbk::lower_submodules(scripted, {"encoder.block1", "head"}, "custom_backend",
                                     tbk::spec().method("forward"));
  const at::Tensor a = at::randn({4}), b = at::randn({4});
  auto out = model.forward({a, b}).toTuple();
  CHECK(at::allclose(out->elements()[0].toTensor(), (a + b) + (a - b)));
  CHECK(at::allclose(out->elements()[1].toTensor(), (a + b) - (a - b)));
  CHECK(model.attr("head").toModule().hasattr("__loweredModule__"));
}

TEST_CASE("docs: a stateful policy shares compile's state with execute (policies.md)") {
  auto lowered = tbk::lower(script(R"(
    def forward(self, x: Tensor) -> Tuple[Tensor, int]:
        return x + 1.5, 0
  )"), "docs_offset", tbk::spec().method("forward", {{"offset", 1.5}}));
  const at::Tensor x = at::randn({3});
  auto first = lowered.forward({x}).toTuple();
  auto second = lowered.forward({x}).toTuple();
  CHECK(at::equal(first->elements()[0].toTensor(), x + 1.5));
  CHECK(first->elements()[1].toInt() == 1);
  CHECK(second->elements()[1].toInt() == 2);
}

TEST_CASE("docs: a compile spec with typed options (policies.md)") {
  auto spec = tbk::spec().method("forward").method("accum", {{"threads", 4}, {"mode", std::string("fast")}});
  tbk::method_spec accum("b", "accum", spec.dict().at("accum"));
  CHECK(accum.get<int64_t>("threads") == 4);
  CHECK(accum.get<std::string>("mode") == "fast");
  CHECK(spec.dict().contains("forward"));
}

// A helper of your own that takes a spec: tbk::spec() returns a tbk::spec_builder.
torch::jit::Module lower_to_custom_backend(const torch::jit::Module& m, const tbk::spec_builder& spec) {
  return tbk::lower(m, "custom_backend", spec);
}

TEST_CASE("docs: a helper taking a tbk::spec_builder (policies.md)") {
  auto lowered = lower_to_custom_backend(add_sub_module(), tbk::spec().method("forward"));
  auto a = torch::randn({3}), b = torch::randn({3});
  CHECK(torch::equal(lowered.forward({a, b}).toTupleRef().elements()[0].toTensor(), a + b));
}

TEST_CASE("docs: option types and the one widening (policies.md)") {
  tbk::method_spec options("b", "forward", tbk::spec().method("forward", {{"scale", 2}}).dict().at("forward"));
  CHECK(options.get<double>("scale") == 2.0);  // an int where a float is asked: widened
  CHECK_THROWS(options.get<bool>("scale"));    // nothing else converts
  CHECK_THROWS(options.get<std::string>("scale"));
  tbk::method_spec floats("b", "forward", tbk::spec().method("forward", {{"n", 2.0}}).dict().at("forward"));
  CHECK_THROWS(floats.get<int64_t>("n"));      // a float is never narrowed to an int
}

TEST_CASE("docs: an availability policy with a reason (policies.md)") {
  auto lower = [] {
    return tbk::lower(script("def forward(self, x: Tensor) -> Tensor:\n  return x\n"),
                      "my_backend", tbk::spec().method("forward"));
  };
  if (cpu_has_avx2()) {
    auto lowered = lower();
    const at::Tensor x = at::randn({2});
    CHECK(at::equal(lowered.forward({x}).toTensor(), x));
  } else {
    CHECK(tbk_test::error_of(lower) == "my_backend is not available: needs AVX2");
  }
}

TEST_CASE("docs: save and load, and the lite interpreter (serialization.md)") {
  auto lowered = tbk::lower(add_sub_module(), "custom_backend", tbk::spec().method("forward"));
  lowered.save("model.pt");                 // or lowered.save(std::ostream&)
  auto model = tbk::load("model.pt");       // or tbk::load(std::istream&)
  check_add_sub(model);

  lowered._save_for_mobile("model.ptl");
  auto mobile = tbk::load_for_mobile("model.ptl");  // torch::jit::_load_for_mobile, checked
  const at::Tensor a = at::randn({4}), b = at::randn({4});
  auto out = mobile.forward({a, b}).toTuple();
  CHECK(at::equal(out->elements()[0].toTensor(), a + b));
  std::remove("model.pt");
  std::remove("model.ptl");
}

TEST_CASE("docs: partitioning from C++ (partitioning.md)") {
  torch::jit::Module model = script(R"(
    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        h = torch.relu(x + y) - y
        return torch.matmul(h, y.t()) + 1
  )");
  const at::Tensor x = at::randn({3, 3}), y = at::randn({3, 3});
  tbk::partition_options options;
  options.path = tbk::lowering_path::fast;         // or native: PyTorch's code generation
  options.min_nodes = 1;                            // smaller regions stay in TorchScript
  options.example_inputs["forward"] = {x, y};       // for backends that need shapes
  torch::jit::Module partitioned = tbk::partition(model, "add_sub_graph", options);
  std::cout << tbk::report(partitioned);            // where each node went
  partitioned.save("partitioned.pt");               // an ordinary TorchScript archive

  torch::jit::Module loaded = tbk::load("partitioned.pt");
  CHECK(at::equal(loaded.forward({x, y}).toTensor(), model.forward({x, y}).toTensor()));
  CHECK(tbk::report(loaded).find("method forward: 3 regions, 3 of 6 nodes in the backend") !=
        std::string::npos);
  std::remove("partitioned.pt");
}
