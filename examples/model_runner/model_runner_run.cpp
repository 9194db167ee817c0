// model_runner_run.cpp: lowers the small convolutional network to the model runner on both
// paths, saves and loads it, and checks its results against the unlowered network.
#include "small_convnet.hpp"

#include <tbk/load.hpp>
#include <tbk/lower.hpp>

#include <cstdio>   // std::printf
#include <sstream>  // std::stringstream

int main() try {
  at::manual_seed(0);
  torch::jit::Module net = make_small_convnet();
  const at::Tensor images = at::randn({4, 3, 16, 16});
  const at::Tensor want = net.forward({images}).toTensor();
  const auto want_classes = net.get_method("classify")({images}).toTupleRef().elements()[1].toTensor();
  int wrong = 0;
  for (auto path : {tbk::lowering_path::native, tbk::lowering_path::fast}) {
    const char* name = path == tbk::lowering_path::fast ? "fast" : "native";
    auto lowered = tbk::lower(net, "model_runner", tbk::spec().method("forward").method("classify"), path);
    std::stringstream saved;
    lowered.save(saved);
    torch::jit::Module model = tbk::load(saved);
    const at::Tensor got = model.forward({images}).toTensor();
    const auto classes = model.get_method("classify")({images}).toTupleRef().elements()[1].toTensor();
    const double difference = (got - want).abs().max().item<double>();
    const bool ok = at::allclose(got, want, 1e-4, 1e-5) && at::equal(classes, want_classes);
    std::printf("model_runner, %s path: logits %s, largest difference %.3g; classes %s\n", name,
                ok ? "match" : "DIFFER", difference, at::equal(classes, want_classes) ? "match" : "DIFFER");
    if (!ok) ++wrong;
  }
  return wrong == 0 ? 0 : 1;
} catch (const std::exception& e) {
  std::fprintf(stderr, "model_runner_run: %s\n", e.what());
  return 1;
}
