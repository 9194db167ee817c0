// expect: compiles
// Every public header, a backend with every execute parameter type, and the conformance kit,
// compiled with -Wall -Wextra -Werror in each C++ standard tbk supports (see meson.build):
// tbk's own headers must compile cleanly as C++17 and as C++20.
#include <tbk/tbk.hpp>
#include <tbk/testing.hpp>

#include <optional>

struct every_compile {
  static std::string compile(const tbk::method_spec& method, const c10::IValue&) { return method.name(); }
};
struct every_execute {
  static std::tuple<at::Tensor, int64_t> execute(const std::string&, at::Tensor x, int64_t n, double s,
                                                 bool b, const std::string& label,
                                                 c10::optional<at::Tensor> maybe,
                                                 std::vector<at::Tensor> xs, c10::IValue any,
                                                 tbk::rest<at::Tensor> others) {
    (void)s, (void)b, (void)label, (void)maybe, (void)xs, (void)any, (void)others;
    return {x, n};
  }
};
using every_backend = tbk::backend<every_compile, every_execute>;
TBK_REGISTER_BACKEND(every_backend, "every");
TBK_TEST_BACKEND("every").module("def forward(self, x: Tensor) -> Tensor:\n  return x\n");
