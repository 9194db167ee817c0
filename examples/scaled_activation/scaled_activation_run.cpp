// scaled_activation_run.cpp: lowers a two-method module to the scaled activation backend with
// per-method options, checks its results after save and load, then shows what a mistyped
// option says.
#include <ATen/ATen.h>
#include <tbk/load.hpp>
#include <tbk/lower.hpp>

#include <cstdio>   // std::printf
#include <sstream>  // std::stringstream

int main() try {
  torch::jit::Module m("Head");
  m.define(R"(
    def forward(self, x: Tensor) -> Tensor:
        return torch.tanh(x * 0.5 + 1.0)
    def gate(self, x: Tensor) -> Tensor:
        return torch.sigmoid(x * 2.0)
  )");
  const auto spec = tbk::spec()
                        .method("forward", {{"scale", 0.5}, {"bias", 1.0}, {"activation", "tanh"}})
                        .method("gate", {{"scale", 2.0}, {"activation", "sigmoid"}});
  std::stringstream saved;
  tbk::lower(m, "scaled_activation", spec).save(saved);
  torch::jit::Module model = tbk::load(saved);
  const at::Tensor x = at::randn({1000});
  const bool ok = at::allclose(model.forward({x}).toTensor(), m.forward({x}).toTensor()) &&
                  at::allclose(model.get_method("gate")({x}).toTensor(),
                               m.get_method("gate")({x}).toTensor());
  std::printf("scaled_activation: forward and gate %s the scripted module after save and load\n",
              ok ? "match" : "DO NOT MATCH");

  try {
    tbk::lower(m, "scaled_activation", tbk::spec().method("forward", {{"scale", 0.5}, {"activation", "gelu"}}));
    std::printf("scaled_activation: an unknown activation was accepted\n");
    return 1;
  } catch (const c10::Error& e) {
    std::printf("an unknown activation is refused when lowering:\n  %s\n", e.what_without_backtrace());
  }
  return ok ? 0 : 1;
} catch (const std::exception& e) {
  std::fprintf(stderr, "scaled_activation_run: %s\n", e.what());
  return 1;
}
