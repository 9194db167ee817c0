// expect: the compile policy has a member named `support`, one edit away from the hook `supports`
// A capability hook misspelled: without the check, tbk would see no supports hook and
// tbk::partition would later say the backend declares none.
#include <tbk/tbk.hpp>
struct compile_with_typo {
  static int64_t compile(const tbk::method_spec&, const c10::IValue&) { return 0; }
  static bool support(const torch::jit::Node& node) { return node.kind() == c10::aten::add; }
};
struct exec {
  static at::Tensor execute(const int64_t&, const at::Tensor& x) { return x; }
};
template class tbk::backend<compile_with_typo, exec>;
