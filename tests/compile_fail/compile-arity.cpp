// expect: the compile policy's compile must take two parameters: (const tbk::method_spec& method, const c10::IValue& payload)
#include <tbk/tbk.hpp>
struct one_param {
  static int64_t compile(const tbk::method_spec&) { return 0; }
};
struct exec {
  static at::Tensor execute(const int64_t&, const at::Tensor& x) { return x; }
};
template class tbk::backend<one_param, exec>;
