// expect: the compile policy (first template argument) needs exactly one function named compile
// Two compile overloads: tbk cannot deduce which one is the hook.
#include <tbk/tbk.hpp>
struct overloaded {
  static int64_t compile(const tbk::method_spec&, const c10::IValue&) { return 0; }
  static int64_t compile(const tbk::method_spec&, const torch::jit::Module&) { return 0; }
};
struct exec {
  static at::Tensor execute(const int64_t&, const at::Tensor& x) { return x; }
};
template class tbk::backend<overloaded, exec>;
