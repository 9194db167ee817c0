// unit-lowering.cpp: lowering submodules selectively, and loading archives whose backends are
// not registered (tbk::load's diagnostics), with the add/sub backend "custom_backend".

#include "add_sub.hpp"

#include <caffe2/serialize/inline_container.h>  // rewriting an archive for the load tests
#include <tbk/load.hpp>
#include <tbk/lower.hpp>

#include <algorithm>   // std::count
#include <atomic>      // std::atomic
#include <chrono>      // std::chrono::steady_clock
#include <cstdio>      // std::remove
#include <filesystem>  // std::filesystem::temp_directory_path
#include <fstream>     // std::ofstream
#include <sstream>     // std::stringstream
#include <string>      // std::string
#include <thread>      // std::thread, std::this_thread::yield

#include "support.hpp"  // last: doctest's CHECK macros over glog's

using tbk_test::error_of;
using tbk_test::round_trip;
using tbk_test::script;

namespace {

const char* const pair_source = R"(
  def forward(self, a: Tensor, b: Tensor) -> Tuple[Tensor, Tensor]:
      return a + b, a - b
)";

// A module `name` whose forward(a, b) combines first(a, b) and second(a + b, a - b); `plain`
// is an attribute that is not a module.
torch::jit::Module combining_module(const std::string& name, const torch::jit::Module& first,
                                    const torch::jit::Module& second) {
  torch::jit::Module outer(name);
  outer.register_module("first", first);
  outer.register_module("second", second);
  outer.register_attribute("plain", c10::IntType::get(), int64_t(3));
  outer.define(R"(
    def forward(self, a: Tensor, b: Tensor) -> Tensor:
        s, d = self.first.forward(a, b)
        s2, d2 = self.second.forward(s, d)
        return s2 * d2 + self.plain
  )");
  return outer;
}

torch::jit::Module pair_module(const std::string& name) {
  torch::jit::Module m(name);
  m.define(pair_source);
  return m;
}

// Outer, with submodules of two distinct types, First and Second.
torch::jit::Module outer_module() {
  return combining_module("Outer", pair_module("First"), pair_module("Second"));
}

at::Tensor expected(const at::Tensor& a, const at::Tensor& b) {
  return ((a + b) + (a - b)) * ((a + b) - (a - b)) + 3;
}

bool is_lowered(const torch::jit::Module& m) {
  return m.type()->name()->qualifiedName().find("LoweredWrapper") != std::string::npos;
}

// The archive `module` saves to, with backends renamed in its code: a model made in a process
// that had backends this one lacks.
std::string archive_renaming(const torch::jit::Module& module,
                             const std::vector<std::pair<std::string, std::string>>& renames) {
  std::stringstream original;
  module.save(original);
  caffe2::serialize::PyTorchStreamReader reader(&original);
  std::string out;
  caffe2::serialize::PyTorchStreamWriter writer([&](const void* data, size_t size) {
    out.append(static_cast<const char*>(data), size);
    return size;
  });
  for (const std::string& record : reader.getAllRecords()) {
    auto [data, size] = reader.getRecord(record);
    std::string bytes(static_cast<const char*>(data.get()), size);
    const bool code = record.size() > 3 && record.compare(record.size() - 3, 3, ".py") == 0;
    for (const auto& [from, to] : renames) {
      for (auto at = bytes.find(from); code && at != std::string::npos;
           at = bytes.find(from, at + to.size())) {
        bytes.replace(at, from.size(), to);
      }
    }
    if (record != "version" && record != ".data/version") writer.writeRecord(record, bytes.data(), bytes.size());
  }
  writer.writeEndOfFile();
  return out;
}

// A second tbk backend in this process (the add/sub policies again, under another name).
void register_second_backend() {
  static const bool done = (tbk::register_backend<add_sub_backend>("tbk_lowering_second"), true);
  (void)done;
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

TEST_CASE("tbk::load loads what torch::jit::load loads") {
  auto lowered = tbk::lower(script(pair_source), "custom_backend", tbk::spec().method("forward"));
  std::stringstream saved;
  lowered.save(saved);
  auto loaded = tbk::load(saved);
  auto a = torch::randn({2}), b = torch::randn({2});
  CHECK(torch::equal(loaded.forward({a, b}).toTuple()->elements()[0].toTensor(), a + b));
}

TEST_CASE("tbk::load names each backend the archive needs that is not registered") {
  register_second_backend();
  // A model with one submodule on each of two backends.
  auto mixed = combining_module(
      "Mixed", tbk::lower(pair_module("First"), "custom_backend", tbk::spec().method("forward")),
      tbk::lower(pair_module("Second"), "tbk_lowering_second", tbk::spec().method("forward")));
  auto a = torch::randn({3}), b = torch::randn({3});
  std::stringstream intact(archive_renaming(mixed, {}));
  CHECK(torch::allclose(tbk::load(intact).forward({a, b}).toTensor(), expected(a, b)));

  SUBCASE("one missing backend") {
    std::stringstream one(archive_renaming(mixed, {{"custom_backend", "gpu_backend"}}));
    auto text = error_of([&] { tbk::load(one); });
    CHECK_CONTAINS(text, "tbk::load: the model needs a backend that is not registered in this "
                         "process: gpu_backend (registered through tbk: ");
    CHECK_CONTAINS(text, "custom_backend");  // what is registered is listed
    CHECK_CONTAINS(text, "Link the library that registers it into the program, or load it first "
                         "(C++: dlopen; Python: torch.ops.load_library(path))");
    // PyTorch's own loader says much less about the same archive.
    one.clear();
    one.seekg(0);
    CHECK_CONTAINS(error_of([&] { torch::jit::load(one); }), "Unknown type name");
  }
  SUBCASE("two missing backends, both named") {
    std::stringstream two(archive_renaming(
        mixed, {{"custom_backend", "gpu_backend"}, {"tbk_lowering_second", "npu_backend"}}));
    auto text = error_of([&] { tbk::load(two); });
    CHECK_CONTAINS(text, "needs backends that are not registered in this process: ");
    CHECK_CONTAINS(text, "gpu_backend");
    CHECK_CONTAINS(text, "npu_backend");
  }
  SUBCASE("from a file, and with the lite interpreter") {
    auto path = (std::filesystem::temp_directory_path() / "tbk_unit_missing_backend.pt").string();
    {
      std::ofstream file(path, std::ios::binary);
      file << archive_renaming(mixed, {{"custom_backend", "gpu_backend"}});
    }
    CHECK_CONTAINS(error_of([&] { tbk::load(path); }),
                   "tbk::load: " + path + " needs a backend that is not registered");
    std::remove(path.c_str());

    std::stringstream lite;
    mixed._save_for_mobile(lite);
    CHECK(torch::allclose(tbk::load_for_mobile(lite).forward({a, b}).toTensor(), expected(a, b)));
  }
}

// ---- parameter defaults and keyword arguments, on both lowering paths -------------------------

namespace {

struct affine_compile {
  static std::string compile(const tbk::method_spec& method, const c10::IValue&) { return method.name(); }
};
struct affine_execute {  // x * scale + shift
  static at::Tensor execute(const std::string&, const at::Tensor& x, double scale, int64_t shift) {
    return x * scale + shift;
  }
};
using affine_backend = tbk::backend<affine_compile, affine_execute>;

void register_affine_backend() {
  static const bool done = (tbk::register_backend<affine_backend>("tbk_lowering_affine"), true);
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

// ---- registration and threads (docs/threading.md) ------------------------------------------------

TEST_CASE("registrations from several threads at once all take effect, each once") {
  std::vector<std::thread> threads;
  std::atomic<int> failed{0};
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([t, &failed] {
      try {
        tbk::register_backend<affine_backend>("tbk_threaded_" + std::to_string(t));
      } catch (...) {
        ++failed;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  CHECK(failed.load() == 0);
  const auto names = tbk::registered_backends();
  for (int t = 0; t < 8; ++t) {
    const std::string name = "tbk_threaded_" + std::to_string(t);
    CHECK_MESSAGE(std::count(names.begin(), names.end(), name) == 1, name);
  }
}

TEST_CASE("calls on lowered modules go on correctly while backends are registered") {
  auto lowered = tbk::lower(script(pair_source), "custom_backend", tbk::spec().method("forward"));
  std::atomic<bool> done{false};
  std::atomic<int> wrong{0}, calls{0};
  std::vector<std::thread> callers;
  for (int t = 0; t < 4; ++t) {
    callers.emplace_back([&] {
      const auto a = torch::randn({32}), b = torch::randn({32});
      while (!done) {
        auto out = lowered.forward({a, b}).toTuple();
        if (!torch::equal(out->elements()[0].toTensor(), a + b)) ++wrong;
        ++calls;
      }
    });
  }
  // The callers are calling before the first registration and after the last (on a loaded
  // machine a thread may not run at all for a while: wait for it, with a deadline).
  auto calls_reach = [&](int n) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (calls.load() < n && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
    return calls.load() >= n;
  };
  CHECK(calls_reach(4));
  for (int i = 0; i < 20; ++i) tbk::register_backend<affine_backend>("tbk_during_calls_" + std::to_string(i));
  CHECK(calls_reach(calls.load() + 4));
  done = true;
  for (auto& thread : callers) thread.join();
  CHECK(wrong.load() == 0);
}

// ---- std::optional parameters (one type with c10::optional since torch 2.1, another before) -----

namespace {

struct plus_maybe_execute {  // x + y, or x when y is None
  static at::Tensor execute(const std::string&, const at::Tensor& x, std::optional<at::Tensor> y) {
    return y ? x + *y : x.clone();
  }
};
using plus_maybe_backend = tbk::backend<affine_compile, plus_maybe_execute>;

}  // namespace

TEST_CASE("std::optional<T> is an execute parameter type on every torch release") {
  static const bool registered =
      (tbk::register_backend<plus_maybe_backend>("tbk_lowering_plus_maybe"), true);
  (void)registered;
  CHECK(plus_maybe_backend::execute_signature() == "(Tensor, Optional[Tensor]) -> Tensor");
  auto lowered = tbk::lower(script(R"(
    def forward(self, x: Tensor, y: Optional[Tensor] = None) -> Tensor:
        return x if y is None else x + y
  )"), "tbk_lowering_plus_maybe", tbk::spec().method("forward"));
  const auto x = torch::randn({3}), y = torch::randn({3});
  CHECK(torch::equal(lowered.forward({x, y}).toTensor(), x + y));
  CHECK(torch::equal(lowered.forward({x}).toTensor(), x));
}
