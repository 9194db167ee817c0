// main.cpp: lowers a module to the consumer's backend on both paths, saves, loads and runs it.
#include <tbk/tbk.hpp>
#include <torch/script.h>

#include <cstdio>   // std::printf
#include <sstream>  // std::stringstream

int main() try {
  torch::jit::Module m("Scale");
  m.define("def forward(self, x: Tensor) -> Tensor:\n  return x\n");
  auto x = torch::randn({5});
  int wrong = 0;
  for (auto path : {tbk::lowering_path::native, tbk::lowering_path::fast}) {
    auto lowered = tbk::lower(m, "consumer_scale", tbk::spec().method("forward", {{"factor", 3.0}}), path);
    std::stringstream saved;
    lowered.save(saved);
    auto loaded = tbk::load(saved);
    if (!torch::equal(loaded.forward({x}).toTensor(), x * 3.0)) ++wrong;
  }
  std::printf("consumer: %s\n", wrong == 0 ? "all results correct" : "WRONG results");
  return wrong == 0 ? 0 : 1;
} catch (const std::exception& e) {
  std::fprintf(stderr, "consumer: %s\n", e.what());
  return 1;
}
