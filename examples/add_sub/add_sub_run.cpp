// add_sub_run.cpp: the add/sub backend end to end. Without arguments: script a module whose
// forward(a, b) returns (a + b, a - b), lower it to "custom_backend", save it, load it back,
// run it and check it. With a path: load that saved model (lowered in C++ or Python), run it
// and check it. Exits non-zero when a result is wrong.
#include <torch/script.h>  // torch::jit::load, torch::jit::Module

#include <tbk/lower.hpp>

#include <cstdio>      // std::printf
#include <filesystem>  // std::filesystem::temp_directory_path
#include <string>      // std::string

namespace {

// Runs each add/sub method the model has on random inputs; returns how many results were wrong.
int run_and_check(torch::jit::Module& model) {
  int wrong = 0;
  auto a = torch::randn({2, 3});
  auto b = torch::randn({2, 3});
  auto check = [&](const char* what, const at::Tensor& got, const at::Tensor& want) {
    bool ok = got.sizes() == want.sizes() && got.dtype() == want.dtype() && torch::allclose(got, want);
    std::printf("  %-22s %s\n", what, ok ? "ok" : "WRONG");
    if (!ok) ++wrong;
  };
  if (model.find_method("forward")) {
    auto out = model.forward({a, b}).toTuple();
    check("forward(a, b)[0] = a+b", out->elements()[0].toTensor(), a + b);
    check("forward(a, b)[1] = a-b", out->elements()[1].toTensor(), a - b);
  }
  if (model.find_method("accum")) {
    check("accum(a, b) = a+b", model.run_method("accum", a, b).toTensor(), a + b);
  }
  if (model.find_method("sub_accum")) {
    check("sub_accum(a, b) = a-b", model.run_method("sub_accum", a, b).toTensor(), a - b);
  }
  return wrong;
}

}  // namespace

int main(int argc, char** argv) try {
  if (argc > 2) {
    std::fprintf(stderr, "usage: %s [MODEL.pt]\n", argv[0]);
    return 2;
  }
  std::string path;
  if (argc == 2) {
    path = argv[1];
  } else {
    torch::jit::Module m("AddSub");
    m.define(R"(
      def forward(self, a: Tensor, b: Tensor) -> Tuple[Tensor, Tensor]:
          return a + b, a - b
    )");
    std::printf("scripted AddSub.forward(a, b) -> (a + b, a - b)\n");
    auto lowered = tbk::lower(m, "custom_backend", tbk::spec().method("forward"));
    std::printf("lowered it to backend 'custom_backend'\n");
    path = (std::filesystem::temp_directory_path() / "tbk_add_sub_model.pt").string();
    lowered.save(path);
    std::printf("saved it to %s\n", path.c_str());
  }
  auto model = torch::jit::load(path);
  std::printf("loaded %s and ran it:\n", path.c_str());
  int wrong = run_and_check(model);
  std::printf(wrong == 0 ? "all results correct\n" : "%d results WRONG\n", wrong);
  return wrong == 0 ? 0 : 1;
} catch (const std::exception& e) {
  std::fprintf(stderr, "add_sub_run: %s\n", e.what());
  return 1;
}
