// expect: the execute policy's execute returns a type tbk cannot pack
#include <tbk/tbk.hpp>
struct comp {
  static int64_t compile(const tbk::method_spec&, const c10::IValue&) { return 0; }
};
struct exec {
  static float execute(const int64_t&, const at::Tensor& x) { return 1.0f; }
};
template class tbk::backend<comp, exec>;
