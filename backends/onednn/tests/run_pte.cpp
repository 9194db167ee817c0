// run_pte.cpp: a .pte program lowered to tbk_onednn (by test_onednn_executorch.py), run with
// ExecuTorch's C++ Module API and checked against the expected output.
// Usage: run_pte model.pte input.f32 expected.f32 D0 D1 ... (the input's sizes; the .f32 files
// are raw float32, as numpy's tofile writes them). Links libtbk_onednn, whose loading registers
// tbk_onednn for ExecuTorch before the program loads. Exit 0 when the output is within 1e-4 of
// the expected one's scale. It links ExecuTorch's kernels too, for the operators left outside the
// delegate.
#include <executorch/extension/module/module.h>          // executorch::extension::Module
#include <executorch/extension/tensor/tensor_ptr_maker.h>  // executorch::extension::from_blob

#include <algorithm>  // std::max
#include <cmath>      // std::fabs
#include <cstdio>     // std::printf, std::fprintf
#include <cstdlib>    // std::atoi
#include <fstream>    // std::ifstream
#include <iterator>   // std::istreambuf_iterator
#include <vector>     // std::vector

namespace {

std::vector<float> read_floats(const char* path) {
  std::ifstream in(path, std::ios::binary);
  const std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<float> values(bytes.size() / sizeof(float));
  std::copy(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(values.size() * sizeof(float)),
            reinterpret_cast<char*>(values.data()));
  return values;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 5) {
    std::fprintf(stderr, "usage: %s model.pte input.f32 expected.f32 D0 [D1 ...]\n", argv[0]);
    return 2;
  }
  std::vector<float> input = read_floats(argv[2]);
  const std::vector<float> expected = read_floats(argv[3]);
  std::vector<executorch::aten::SizesType> sizes;
  for (int i = 4; i < argc; ++i) sizes.push_back(std::atoi(argv[i]));
  executorch::extension::Module module(argv[1]);
  const auto tensor = executorch::extension::from_blob(input.data(), sizes);
  const auto result = module.forward(std::vector<executorch::runtime::EValue>{*tensor});
  if (!result.ok()) {
    std::fprintf(stderr, "run_pte: forward failed with ExecuTorch error 0x%x\n", static_cast<unsigned>(result.error()));
    return 1;
  }
  const auto& out = (*result)[0].toTensor();
  if (static_cast<std::size_t>(out.numel()) != expected.size()) {
    std::fprintf(stderr, "run_pte: %zd output elements, expected %zu\n", static_cast<ssize_t>(out.numel()), expected.size());
    return 1;
  }
  const float* got = static_cast<const float*>(out.const_data_ptr());
  double scale = 1e-30, worst = 0;
  for (std::size_t i = 0; i < expected.size(); ++i) {
    scale = std::max(scale, static_cast<double>(std::fabs(expected[i])));
    worst = std::max(worst, static_cast<double>(std::fabs(got[i] - expected[i])));
  }
  std::printf("run_pte: %zu outputs from %s, largest difference %.2e of the output's scale\n", expected.size(), argv[1],
              worst / scale);
  return worst / scale <= 1e-4 ? 0 : 1;
}
