// visibility_check.cpp: two backend libraries built with -fvisibility=hidden, linked into one
// program (built the same way): each library's registration must be visible to the program
// and to the other library, through PyTorch's process-wide registries.
#include <ATen/ATen.h>  // at::randn
#include <tbk/load.hpp>
#include <tbk/lower.hpp>
#include <tbk/register.hpp>

#include <algorithm>  // std::find
#include <iostream>   // std::cout
#include <string>     // std::string

namespace {

int failures = 0;

void check(bool ok, const std::string& what) {
  std::cout << (ok ? "ok:     " : "FAILED: ") << what << "\n";
  if (!ok) ++failures;
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

std::string error_of_lowering(const std::string& backend, const std::string& source,
                              tbk::lowering_path path) {
  torch::jit::Module m("Probe");
  m.define(source);
  try {
    tbk::lower(m, backend, tbk::spec().method("forward"), path);
  } catch (const c10::Error& e) {
    return e.what_without_backtrace();
  }
  return "";
}

}  // namespace

int main() {
  const auto names = tbk::registered_backends();
  for (const char* name : {"vis_first", "vis_second"}) {
    check(std::find(names.begin(), names.end(), name) != names.end(),
          std::string("tbk::registered_backends() lists ") + name);
  }
  // The fast path finds each library's backend and lowers and runs it.
  torch::jit::Module m("Pair");
  m.define(R"(
    def forward(self, a: Tensor, b: Tensor) -> Tuple[Tensor, Tensor]:
        return a + b, a - b
  )");
  auto a = at::randn({4}), b = at::randn({4});
  auto fast = tbk::lower(m, "vis_first", tbk::spec().method("forward"), tbk::lowering_path::fast);
  auto out = fast.forward({a, b}).toTuple();
  check(at::equal(out->elements()[0].toTensor(), a + b), "fast path of vis_first runs");
  torch::jit::Module s("Scale");
  s.define("def forward(self, x: Tensor) -> Tensor:\n  return x * 2.0\n");
  auto scaled = tbk::lower(s, "vis_second", tbk::spec().method("forward"), tbk::lowering_path::fast);
  check(at::equal(scaled.forward({a}).toTensor(), a * 2.0), "fast path of vis_second runs");
  // The lowering-time signature check of each library's backend runs.
  const std::string wrong = "def forward(self, x: int) -> Tensor:\n  return torch.zeros(1)\n";
  for (const char* name : {"vis_first", "vis_second"}) {
    const std::string text = error_of_lowering(name, wrong, tbk::lowering_path::native);
    check(contains(text, std::string(name) + ".forward") && contains(text, "int"),
          std::string("lowering checks the signature for ") + name + ": " + text);
  }
  // The failed second registration of "vis_first" (in vis_second's library) is reported.
  const std::string missing =
      error_of_lowering("vis_missing", "def forward(self, x: Tensor) -> Tensor:\n  return x\n",
                        tbk::lowering_path::native);
  check(contains(missing, "registered through tbk: vis_first, vis_second") ||
            contains(missing, "registered through tbk: vis_second, vis_first"),
        "the not-registered hint lists both libraries' backends: " + missing);
  check(contains(missing, "vis_second.cpp") && contains(missing, "TBK_REGISTER_BACKEND failed"),
        "the not-registered hint names the failed registration in the other library");
  std::cout << (failures == 0 ? "all checks passed" : "some checks failed") << "\n";
  return failures == 0 ? 0 : 1;
}
