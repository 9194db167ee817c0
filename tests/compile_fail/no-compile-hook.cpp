// expect: the compile policy (first template argument) needs exactly one function named compile
// A compile policy without a compile function.
#include <tbk/tbk.hpp>
struct no_compile {};
struct exec {
  static at::Tensor execute(const int64_t&, const at::Tensor& x) { return x; }
};
template class tbk::backend<no_compile, exec>;
