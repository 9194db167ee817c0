// main.cpp: lowers a module to the consumer's backend, saves, loads and runs it (the part
// docs/getting-started.md quotes), then does the same on the fast path through memory.
#include <tbk/tbk.hpp>
#include <torch/script.h>

#include <cstdio>   // std::printf
#include <sstream>  // std::stringstream

int main() try {
  torch::jit::Module m("Scale");
  m.define("def forward(self, x: Tensor) -> Tensor:\n  return x\n");
  auto lowered = tbk::lower(m, "consumer_scale", tbk::spec().method("forward", {{"factor", 3.0}}));
  lowered.save("scale.pt");
  auto model = tbk::load("scale.pt");
  auto y = model.forward({torch::ones({5})}).toTensor();  // 3, 3, 3, 3, 3

  int wrong = torch::equal(y, torch::full({5}, 3.0)) ? 0 : 1;
  auto fast = tbk::lower(m, "consumer_scale", tbk::spec().method("forward", {{"factor", 3.0}}),
                         tbk::lowering_path::fast);
  std::stringstream saved;
  fast.save(saved);
  auto x = torch::randn({5});
  if (!torch::equal(tbk::load(saved).forward({x}).toTensor(), x * 3.0)) ++wrong;
  std::printf("consumer: %s\n", wrong == 0 ? "all results correct" : "WRONG results");
  return wrong == 0 ? 0 : 1;
} catch (const std::exception& e) {
  std::fprintf(stderr, "consumer: %s\n", e.what());
  return 1;
}
