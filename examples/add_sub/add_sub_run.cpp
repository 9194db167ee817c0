// add_sub_run.cpp: the add/sub backend end to end.
//   add_sub_run [--lite] [--save PATH]   script a module whose forward(a, b) returns
//       (a + b, a - b) (with accum and sub_accum beside it), lower it to "custom_backend", save
//       it (to PATH, or a temporary file), load it back, run it and check every result.
//   add_sub_run [--lite] MODEL.pt        load a saved model (lowered in C++ or Python), run it
//       and check it.
// --lite uses the lite interpreter's format (_save_for_mobile / _load_for_mobile).
// --selective lowers only the submodule `inner` of a module whose methods call it
//       (tbk::lower_submodules); the rest stays TorchScript.
// --fast uses tbk's fast lowering path (typed calls) instead of PyTorch's code generation.
// Exits non-zero when a result is wrong or anything fails.
#include <torch/csrc/jit/mobile/import.h>  // torch::jit::_load_for_mobile
#include <torch/script.h>                  // torch::jit::load, torch::jit::Module

#include <tbk/load.hpp>
#include <tbk/lower.hpp>

#include <cstdio>      // std::printf
#include <cstring>     // std::strcmp
#include <filesystem>  // std::filesystem::temp_directory_path
#include <stdexcept>   // std::invalid_argument
#include <string>      // std::string

namespace {

const char* const add_sub_source = R"(
  def forward(self, a: Tensor, b: Tensor) -> Tuple[Tensor, Tensor]:
      return a + b, a - b
  def accum(self, a: Tensor, b: Tensor) -> Tensor:
      return a + b
  def sub_accum(self, a: Tensor, b: Tensor) -> Tensor:
      return a - b
)";

// Runs each add/sub method the model has on random inputs; returns how many results were
// wrong. Model is torch::jit::Module or torch::jit::mobile::Module.
template <class Model>
int run_and_check(Model& model) {
  int wrong = 0, checked = 0;
  auto a = torch::randn({2, 3});
  auto b = torch::randn({2, 3});
  auto check = [&](const char* what, const at::Tensor& got, const at::Tensor& want) {
    bool ok = got.sizes() == want.sizes() && got.dtype() == want.dtype() && torch::equal(got, want);
    std::printf("  %-24s %s\n", what, ok ? "ok" : "WRONG");
    wrong += ok ? 0 : 1;
    ++checked;
  };
  if (model.find_method("forward")) {
    auto out = model.forward({a, b}).toTuple();
    check("forward(a, b)[0] == a+b", out->elements()[0].toTensor(), a + b);
    check("forward(a, b)[1] == a-b", out->elements()[1].toTensor(), a - b);
  }
  if (model.find_method("accum")) {
    check("accum(a, b) == a+b", model.run_method("accum", a, b).toTensor(), a + b);
  }
  if (model.find_method("sub_accum")) {
    check("sub_accum(a, b) == a-b", model.run_method("sub_accum", a, b).toTensor(), a - b);
  }
  if (checked == 0) {
    std::printf("  the model has none of forward, accum, sub_accum\n");
    return 1;
  }
  return wrong;
}

// A module whose methods compute the same through a submodule `inner`.
const char* const inner_source = R"(
  def forward(self, a: Tensor, b: Tensor) -> Tuple[Tensor, Tensor]:
      return a + b, a - b
)";
const char* const outer_source = R"(
  def forward(self, a: Tensor, b: Tensor) -> Tuple[Tensor, Tensor]:
      return self.inner.forward(a, b)
  def accum(self, a: Tensor, b: Tensor) -> Tensor:
      return self.inner.forward(a, b)[0]
  def sub_accum(self, a: Tensor, b: Tensor) -> Tensor:
      return self.inner.forward(a, b)[1]
)";

torch::jit::Module lowered_model(bool selective, bool fast) {
  torch::jit::Module m("AddSub");
  if (!selective) {
    m.define(add_sub_source);
    std::printf("scripted AddSub: forward(a, b) -> (a + b, a - b), accum, sub_accum\n");
    auto lowered = tbk::lower(m, "custom_backend",
                              tbk::spec().method("forward").method("accum").method("sub_accum"),
                              fast ? tbk::lowering_path::fast : tbk::lowering_path::native);
    std::printf("lowered its three methods to backend 'custom_backend' (%s path)\n",
                fast ? "fast" : "native");
    return lowered;
  }
  if (fast) throw std::invalid_argument("--selective lowers natively; drop --fast");
  torch::jit::Module inner("AddSubInner");
  inner.define(inner_source);
  m.register_module("inner", inner);
  m.define(outer_source);
  std::printf("scripted AddSub with a submodule inner: forward(a, b) -> (a + b, a - b)\n");
  auto lowered = tbk::lower_submodules(m, {"inner"}, "custom_backend", tbk::spec().method("forward"));
  std::printf("lowered only the submodule 'inner' to backend 'custom_backend'\n");
  return lowered;
}

int usage(const char* program) {
  std::fprintf(stderr, "usage: %s [--lite] [--selective | --fast] [--save PATH | MODEL.pt]\n",
               program);
  return 2;
}

}  // namespace

int main(int argc, char** argv) try {
  bool lite = false, selective = false, fast = false;
  std::string save_path, model_path;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--lite") == 0) {
      lite = true;
    } else if (std::strcmp(argv[i], "--selective") == 0) {
      selective = true;
    } else if (std::strcmp(argv[i], "--fast") == 0) {
      fast = true;
    } else if (std::strcmp(argv[i], "--save") == 0 && i + 1 < argc) {
      save_path = argv[++i];
    } else if (argv[i][0] != '-' && model_path.empty()) {
      model_path = argv[i];
    } else {
      return usage(argv[0]);
    }
  }
  if (!model_path.empty() && (!save_path.empty() || selective || fast)) return usage(argv[0]);
  const char* format = lite ? "lite interpreter" : "TorchScript";

  if (model_path.empty()) {
    auto lowered = lowered_model(selective, fast);
    model_path = !save_path.empty() ? save_path
                 : (std::filesystem::temp_directory_path() /
                    (lite ? "tbk_add_sub_model.ptl" : "tbk_add_sub_model.pt")).string();
    if (lite) lowered._save_for_mobile(model_path);
    else lowered.save(model_path);
    std::printf("saved it as a %s archive: %s\n", format, model_path.c_str());
  }

  int wrong;
  if (lite) {
    auto model = tbk::load_for_mobile(model_path);
    std::printf("loaded %s with the lite interpreter and ran it:\n", model_path.c_str());
    wrong = run_and_check(model);
  } else {
    auto model = tbk::load(model_path);
    std::printf("loaded %s and ran it:\n", model_path.c_str());
    wrong = run_and_check(model);
  }
  if (wrong == 0) std::printf("all results correct\n");
  else std::printf("%d results WRONG\n", wrong);
  return wrong == 0 ? 0 : 1;
} catch (const c10::Error& e) {
  std::fprintf(stderr, "add_sub_run: %s\n", e.what_without_backtrace());
  return 1;
} catch (const std::exception& e) {
  std::fprintf(stderr, "add_sub_run: %s\n", e.what());
  return 1;
}
