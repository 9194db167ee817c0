// expect: the availability policy (third template argument) needs `static bool is_available();`
#include <tbk/tbk.hpp>
struct comp {
  static int64_t compile(const tbk::method_spec&, const c10::IValue&) { return 0; }
};
struct exec {
  static at::Tensor execute(const int64_t&, const at::Tensor& x) { return x; }
};
struct maybe {
  static int is_available(int device) { return device; }
};
template class tbk::backend<comp, exec, maybe>;
