// expect: compiles
// The control case: a correct backend compiles without a diagnostic, so the failures of the
// other cases come from their mistakes and not from the harness.
#include <tbk/tbk.hpp>
struct comp {
  static int64_t compile(const tbk::method_spec&, const c10::IValue&) { return 0; }
};
struct exec {
  static at::Tensor execute(const int64_t&, const at::Tensor& x, tbk::rest<at::Tensor>) { return x; }
};
template class tbk::backend<comp, exec>;
using valid_backend = tbk::backend<comp, exec>;
TBK_REGISTER_BACKEND(valid_backend, "valid");
