// leak_check.cpp: scripts, lowers, saves, loads and runs the add/sub model CYCLES times in one
// process and fails when resident memory grew by more than BOUND_MB over the cycles after a
// warm-up.
//   leak_check [CYCLES=10000] [BOUND_MB=5]
// Each cycle scripts its own module, as an application that lowers, saves and drops a model
// does. (Lowering one long-lived module again and again grows that module's compilation unit by
// about 8 KB a time: PyTorch's Module::clone, which lowering calls, adds a class type to it each
// time, with or without tbk.)
#include <torch/script.h>

#include <tbk/load.hpp>
#include <tbk/lower.hpp>

#include <cstdio>    // std::printf
#include <cstdlib>   // std::atoi, std::atof
#include <fstream>   // std::ifstream
#include <sstream>   // std::stringstream
#include <unistd.h>  // sysconf

namespace {

double resident_mb() {
  std::ifstream statm("/proc/self/statm");
  long pages_total = 0, pages_resident = 0;
  statm >> pages_total >> pages_resident;
  return double(pages_resident) * double(sysconf(_SC_PAGESIZE)) / (1024.0 * 1024.0);
}

// One cycle; returns false when a result is wrong.
bool cycle(const at::Tensor& a, const at::Tensor& b) {
  torch::jit::Module scripted("AddSub");
  scripted.define(R"(
    def forward(self, a: Tensor, b: Tensor) -> Tuple[Tensor, Tensor]:
        return a + b, a - b
  )");
  auto lowered = tbk::lower(scripted, "custom_backend", tbk::spec().method("forward"));
  std::stringstream bytes;
  lowered.save(bytes);
  auto loaded = tbk::load(bytes);
  auto out = loaded.forward({a, b}).toTuple();
  return torch::equal(out->elements()[0].toTensor(), a + b) &&
         torch::equal(out->elements()[1].toTensor(), a - b);
}

}  // namespace

int main(int argc, char** argv) try {
  const int cycles = argc > 1 ? std::atoi(argv[1]) : 10000;
  const double bound_mb = argc > 2 ? std::atof(argv[2]) : 5.0;
  const int warmup = cycles / 10;
  auto a = torch::randn({16}), b = torch::randn({16});

  for (int i = 0; i < warmup; ++i) {
    if (!cycle(a, b)) return std::printf("wrong result in cycle %d\n", i), 1;
  }
  const double before = resident_mb();
  for (int i = warmup; i < cycles; ++i) {
    if (!cycle(a, b)) return std::printf("wrong result in cycle %d\n", i), 1;
  }
  const double growth = resident_mb() - before;
  std::printf("leak check: %d cycles of script, lower, save, load, execute; resident memory after %d "
              "warm-up cycles %.1f MB, growth over the next %d cycles %.2f MB (bound %.1f MB): %s\n",
              cycles, warmup, before, cycles - warmup, growth, bound_mb,
              growth < bound_mb ? "PASS" : "FAIL");
  return growth < bound_mb ? 0 : 1;
} catch (const std::exception& e) {
  std::fprintf(stderr, "leak_check: %s\n", e.what());
  return 1;
}
