// expect: tbk::rest<T> takes all remaining inputs, so it must be the last parameter of execute
#include <tbk/tbk.hpp>
struct comp {
  static int64_t compile(const tbk::method_spec&, const c10::IValue&) { return 0; }
};
struct exec {
  static at::Tensor execute(const int64_t&, tbk::rest<at::Tensor> xs, const at::Tensor& last) {
    return last;
  }
};
template class tbk::backend<comp, exec>;
