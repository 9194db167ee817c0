// expect: the compile policy's preprocess must be `static c10::IValue preprocess(const torch::jit::Module& module, const tbk::compile_spec& spec);`
#include <tbk/tbk.hpp>
struct member_preprocess {
  static int64_t compile(const tbk::method_spec&, const c10::IValue&) { return 0; }
  c10::IValue preprocess(const torch::jit::Module& m, const tbk::compile_spec&) { return m._ivalue(); }
};
struct exec {
  static at::Tensor execute(const int64_t&, const at::Tensor& x) { return x; }
};
template class tbk::backend<member_preprocess, exec>;
