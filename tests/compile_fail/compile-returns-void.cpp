// expect: the compile policy's compile must return the method's handle: any movable C++ type
#include <tbk/tbk.hpp>
struct returns_void {
  static void compile(const tbk::method_spec&, const c10::IValue&) {}
};
struct exec {
  static at::Tensor execute(const int64_t&, const at::Tensor& x) { return x; }
};
template class tbk::backend<returns_void, exec>;
