// add_sub_executorch_run.cpp: the add/sub model as an ExecuTorch program (.pte, lowered to
// "custom_backend" by tbk.executorch, e.g. by examples/add_sub/export_executorch.py), loaded and
// run with ExecuTorch's C++ Module API: forward(a, b) must give (a + b, a - b).
// Usage: add_sub_executorch_run model.pte. Links libcustom_backend (built with ExecuTorch), whose
// registration makes "custom_backend" known to the runtime before the program loads.
#include <ATen/ATen.h>  // the reference results

#include <executorch/extension/module/module.h>          // executorch::extension::Module
#include <executorch/extension/tensor/tensor_ptr_maker.h>  // executorch::extension::from_blob

#include <cstdio>   // std::printf, std::fprintf
#include <vector>   // std::vector

namespace et = ::executorch::extension;

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s model.pte\n", argv[0]);
    return 2;
  }
  et::Module module(argv[1]);
  at::Tensor a = at::randn({2, 3}), b = at::randn({2, 3});
  auto a_view = et::from_blob(a.data_ptr<float>(), {2, 3});
  auto b_view = et::from_blob(b.data_ptr<float>(), {2, 3});
  const auto result = module.forward({a_view, b_view});
  if (!result.ok()) {
    std::fprintf(stderr, "add_sub_executorch_run: forward failed with ExecuTorch error 0x%x\n",
                 static_cast<unsigned>(result.error()));
    return 1;
  }
  const std::vector<at::Tensor> want = {a + b, a - b};
  if (result->size() != want.size()) {
    std::fprintf(stderr, "add_sub_executorch_run: %zu outputs, expected 2\n", result->size());
    return 1;
  }
  for (std::size_t k = 0; k < want.size(); ++k) {
    const auto& got = (*result)[k].toTensor();
    const at::Tensor view = at::from_blob(const_cast<void*>(got.const_data_ptr()), {got.size(0), got.size(1)});
    if (!at::allclose(view, want[k])) {
      std::fprintf(stderr, "add_sub_executorch_run: output %zu differs from eager\n", k);
      return 1;
    }
  }
  std::printf("add_sub_executorch_run: forward(a, b) = (a + b, a - b) from %s, as eager\n", argv[1]);
  return 0;
}
