// leak_check.cpp: scripts, lowers, saves, loads and runs the add/sub model CYCLES times in one
// process and fails when resident memory grew by more than BOUND_MB over the cycles after a
// warm-up.
//   leak_check [CYCLES=10000] [BOUND_MB=5] [--same-module] [--statm PATH]
// (--statm reads resident memory from PATH instead of /proc/self/statm: the tests use it to
// prove that an unreadable file fails the check.)
// Each cycle scripts its own module, as an application that lowers, saves and drops a model
// does. With --same-module every cycle lowers one long-lived module instead: that grows the
// module's compilation unit on each lowering, because PyTorch's Module::clone (which lowering
// calls, with or without tbk) adds a class type to it every time; the figure shows how much.
#include <torch/script.h>

#include <tbk/load.hpp>
#include <tbk/lower.hpp>

#include <cstdio>    // std::printf
#include <cstdlib>   // std::atoi, std::atof
#include <fstream>   // std::ifstream
#include <sstream>   // std::stringstream
#include <string>    // std::string
#include <unistd.h>  // sysconf

namespace {

// Resident memory in MB; ends the check (as a failure) when it cannot be read: a reading of
// zero would pass any bound.
std::string statm_path = "/proc/self/statm";

double resident_mb() {
  std::ifstream statm(statm_path);
  long pages_total = 0, pages_resident = 0;
  if (!(statm >> pages_total >> pages_resident) || pages_resident <= 0) {
    std::fprintf(stderr, "leak check: cannot read resident memory from %s\n", statm_path.c_str());
    std::exit(1);
  }
  return double(pages_resident) * double(sysconf(_SC_PAGESIZE)) / (1024.0 * 1024.0);
}

torch::jit::Module add_sub_module() {
  torch::jit::Module scripted("AddSub");
  scripted.define(R"(
    def forward(self, a: Tensor, b: Tensor) -> Tuple[Tensor, Tensor]:
        return a + b, a - b
  )");
  return scripted;
}

// One cycle; returns false when a result is wrong. `shared` is lowered when given, else a
// module scripted for this cycle.
bool cycle(const torch::jit::Module* shared, const at::Tensor& a, const at::Tensor& b) {
  const torch::jit::Module scripted = shared ? *shared : add_sub_module();
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
  bool same_module = false;
  for (int i = 3; i < argc; ++i) {
    if (std::string(argv[i]) == "--same-module") same_module = true;
    if (std::string(argv[i]) == "--statm" && i + 1 < argc) statm_path = argv[++i];
  }
  const torch::jit::Module shared = add_sub_module();
  const torch::jit::Module* reused = same_module ? &shared : nullptr;
  const int warmup = cycles / 10;
  auto a = torch::randn({16}), b = torch::randn({16});

  for (int i = 0; i < warmup; ++i) {
    if (!cycle(reused, a, b)) return std::printf("wrong result in cycle %d\n", i), 1;
  }
  const double before = resident_mb();
  for (int i = warmup; i < cycles; ++i) {
    if (!cycle(reused, a, b)) return std::printf("wrong result in cycle %d\n", i), 1;
  }
  const double growth = resident_mb() - before;
  std::printf("leak check: %d cycles of %s; resident memory after %d warm-up cycles %.1f MB, "
              "growth over the next %d cycles %.2f MB (%.1f KB a cycle; bound %.1f MB): %s\n",
              cycles, same_module ? "lower (one module), save, load, execute"
                                  : "script, lower, save, load, execute",
              warmup, before, cycles - warmup, growth, growth * 1024 / (cycles - warmup), bound_mb,
              growth < bound_mb ? "PASS" : "FAIL");
  return growth < bound_mb ? 0 : 1;
} catch (const std::exception& e) {
  std::fprintf(stderr, "leak_check: %s\n", e.what());
  return 1;
}
