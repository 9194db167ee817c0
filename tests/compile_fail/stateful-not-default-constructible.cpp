// expect: a compile policy with a member compile is created once per backend instance, so it must be default constructible
#include <tbk/tbk.hpp>
struct needs_arg {
  explicit needs_arg(int threads) : threads_(threads) {}
  int64_t compile(const tbk::method_spec&, const c10::IValue&) { return threads_; }
  int threads_;
};
struct exec {
  static at::Tensor execute(const int64_t&, const at::Tensor& x) { return x; }
};
template class tbk::backend<needs_arg, exec>;
