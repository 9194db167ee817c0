// expect: the compile policy has a member named `compile_`, one edit away from the hook `compile`
// compile misspelled: named first, before "needs exactly one function named compile".
#include <tbk/tbk.hpp>
struct compile_with_typo {
  static int64_t compile_(const tbk::method_spec&, const c10::IValue&) { return 0; }
};
struct exec {
  static at::Tensor execute(const int64_t&, const at::Tensor& x) { return x; }
};
template class tbk::backend<compile_with_typo, exec>;
