// expect: the execute policy has a member named `excute`, one edit away from the hook `execute`
// execute misspelled: named first, before "needs exactly one function named execute".
#include <tbk/tbk.hpp>
struct comp {
  static int64_t compile(const tbk::method_spec&, const c10::IValue&) { return 0; }
};
struct exec_with_typo {
  static at::Tensor excute(const int64_t&, const at::Tensor& x) { return x; }
};
template class tbk::backend<comp, exec_with_typo>;
