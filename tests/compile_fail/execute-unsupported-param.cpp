// expect: this execute parameter has a type tbk cannot convert inputs to
// float is not a TorchScript type: TorchScript's float is double.
#include <tbk/tbk.hpp>
struct comp {
  static int64_t compile(const tbk::method_spec&, const c10::IValue&) { return 0; }
};
struct exec {
  static at::Tensor execute(const int64_t&, const at::Tensor& x, float scale) { return x; }
};
template class tbk::backend<comp, exec>;
