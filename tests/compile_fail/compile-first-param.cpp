// expect: the first parameter of the compile policy's compile must be `const tbk::method_spec& method`
#include <tbk/tbk.hpp>
struct takes_string {
  static int64_t compile(const std::string& method, const c10::IValue&) { return 0; }
};
struct exec {
  static at::Tensor execute(const int64_t&, const at::Tensor& x) { return x; }
};
template class tbk::backend<takes_string, exec>;
