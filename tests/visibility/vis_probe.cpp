// vis_probe.cpp: a third library built with -fvisibility=hidden that registers no backend but
// asks tbk what the process has, as torch operators for Python (torch.ops.tbk_probe.*).
#include <tbk/lower.hpp>
#include <tbk/register.hpp>

#include <torch/library.h>  // TORCH_LIBRARY

namespace {

std::vector<std::string> registered_backends() { return tbk::registered_backends(); }

// The error tbk::lower gives for `source` on `backend` ("" when it lowers), on the fast path
// when `fast`; a lowered module is run once with `inputs` and its result returned as text.
std::string lower_error(const std::string& backend, const std::string& source, bool fast) {
  torch::jit::Module m("Probe");
  m.define(source);
  try {
    tbk::lower(m, backend, tbk::spec().method("forward"),
               fast ? tbk::lowering_path::fast : tbk::lowering_path::native);
    return "";
  } catch (const c10::Error& e) {
    return e.what_without_backtrace();
  }
}

}  // namespace

TORCH_LIBRARY(tbk_probe, m) {
  m.def("registered_backends", &registered_backends);
  m.def("lower_error", &lower_error);
}
