// small_convnet.hpp: the model the model runner example lowers: two convolutions with batch
// norm and ReLU, pooling, and a linear layer, scripted from C++ with parameters drawn from a
// generator seeded with `seed` (the same seed makes the same model).
#pragma once
#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>  // at::detail::createCPUGenerator
#include <torch/csrc/jit/api/module.h>  // torch::jit::Module

inline torch::jit::Module make_small_convnet(uint64_t seed = 0) {
  torch::jit::Module m("SmallConvNet");
  at::Generator generator = at::detail::createCPUGenerator(seed);
  auto parameter = [&](const char* name, at::IntArrayRef shape) {
    m.register_parameter(name, at::randn(shape, generator) * 0.2, /*is_buffer=*/false);
  };
  parameter("conv1_w", {8, 3, 3, 3});
  parameter("conv1_b", {8});
  parameter("conv2_w", {16, 8, 3, 3});
  parameter("conv2_b", {16});
  parameter("fc_w", {10, 16 * 4 * 4});
  parameter("fc_b", {10});
  m.register_buffer("bn_mean", at::randn({16}, generator) * 0.1);
  m.register_buffer("bn_var", at::rand({16}, generator) + 0.5);
  parameter("bn_w", {16});
  parameter("bn_b", {16});
  m.define(R"(
    def features(self, x: Tensor) -> Tensor:
        y = torch.relu(torch.conv2d(x, self.conv1_w, self.conv1_b, [1, 1], [1, 1]))
        y = torch.conv2d(y, self.conv2_w, self.conv2_b, [1, 1], [1, 1])
        y = torch.batch_norm(y, self.bn_w, self.bn_b, self.bn_mean, self.bn_var, False, 0.1, 1e-5, False)
        return torch.flatten(torch.adaptive_avg_pool2d(torch.relu(y), [4, 4]), 1)

    def forward(self, x: Tensor) -> Tensor:
        return torch.matmul(self.features(x), self.fc_w.t()) + self.fc_b

    def classify(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        logits = self.forward(x)
        return logits, torch.argmax(logits, 1)
  )");
  return m;
}
