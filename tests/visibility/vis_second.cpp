// vis_second.cpp: a second backend, "vis_second" (x * factor, factor from the compile spec),
// in another library built with -fvisibility=hidden.
#include <tbk/backend.hpp>
#include <tbk/register.hpp>

#include <ATen/ATen.h>  // at::Tensor arithmetic

namespace {

struct scale_compile {
  static double compile(const tbk::method_spec& method, const c10::IValue&) {
    return method.get<double>("factor", 2.0);
  }
};
struct scale_execute {
  static at::Tensor execute(const double& factor, const at::Tensor& x) { return x * factor; }
};
using scale_backend = tbk::backend<scale_compile, scale_execute>;

}  // namespace

TBK_REGISTER_BACKEND(scale_backend, "vis_second");
// A registration that fails (the name is not an identifier): the failure must be visible to
// every library of the process (tbk::lower and tbk::load name it).
TBK_REGISTER_BACKEND(scale_backend, "vis-bad-name");
