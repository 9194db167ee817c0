// test_backends.hpp: the small test backends several unit test files lower or register (scale,
// raw list, affine), the std::string result type some need, and compiling a backend directly, as
// a lowered module holds it. It includes support.hpp itself (scale_compile checks with doctest's
// CHECK): include it after every libtorch header, just before support.hpp.
#pragma once

#include "support.hpp"  // libtorch, tbk, and doctest's CHECK macros over glog's

#include <initializer_list>  // std::initializer_list
#include <string>            // std::string
#include <vector>            // std::vector

// A result type of our own, added through the extension point. Every file that instantiates a
// backend returning std::string must see this specialization, and the same one: it lives here.
template <>
struct tbk::result_caster<std::string> {
  static constexpr bool supported = true;
  static std::string name() { return "str"; }
  static c10::impl::GenericList pack(std::string&& s) {
    c10::impl::GenericList out(c10::AnyType::get());
    out.push_back(std::move(s));
    return out;
  }
};

namespace tbk_test {

// ---- a stateless backend with a struct handle and spec options -------------------------------

struct scale_handle {
  double factor;
  std::string method;
};

struct scale_compile {
  static scale_handle compile(const tbk::method_spec& method, const torch::jit::Module& module) {
    // The payload is the module itself (default preprocess), taken as a Module.
    CHECK(module.find_method(method.name()).has_value());
    return {method.get<double>("factor", 1.0), method.name()};
  }
};

struct scale_execute {
  static at::Tensor execute(const scale_handle& h, const at::Tensor& x) { return x * h.factor; }
};

using scale_backend = tbk::backend<scale_compile, scale_execute>;

inline const char* const scale_source = R"(
  def forward(self, x: Tensor) -> Tensor:
      return x
  def twice(self, x: Tensor) -> Tensor:
      return x
)";

// Registers scale_backend as "tbk_test_scale", once per process (each file's own
// register_test_backends() calls this, then registers the backends only that file uses).
inline void register_shared_test_backends() {
  static const bool done = (tbk::register_backend<scale_backend>("tbk_test_scale"), true);
  (void)done;
}

// ---- results: a raw list, and rest<int64_t> ---------------------------------------------------

struct name_compile {
  static std::string compile(const tbk::method_spec& method, const c10::IValue&) {
    return method.name();
  }
};
struct raw_list_execute {
  static c10::impl::GenericList execute(const std::string&, tbk::rest<int64_t> numbers) {
    int64_t total = 0;
    for (int64_t n : numbers) total += n;
    c10::impl::GenericList out(c10::AnyType::get());
    out.push_back(torch::full({1}, total, torch::kLong));
    out.push_back(static_cast<int64_t>(numbers.size()));
    return out;
  }
};
using raw_list_backend = tbk::backend<name_compile, raw_list_execute>;

// ---- parameters with defaults: x * scale + shift ----------------------------------------------

struct affine_compile {
  static std::string compile(const tbk::method_spec& method, const c10::IValue&) { return method.name(); }
};
struct affine_execute {  // x * scale + shift
  static at::Tensor execute(const std::string&, const at::Tensor& x, double scale, int64_t shift) {
    return x * scale + shift;
  }
};
using affine_backend = tbk::backend<affine_compile, affine_execute>;

// ---- a backend called directly, below the lowered module ------------------------------------

// A compiled backend instance and its handles, as a lowered module holds them.
struct compiled {
  c10::intrusive_ptr<tbk::detail::backend_base> backend;
  c10::impl::GenericDict handles;
};

// `payload` is what preprocess would have made; a module is checked against the signature.
template <class Backend>
compiled compile_directly(const std::string& name, const std::vector<std::string>& methods,
                          c10::IValue payload = c10::IValue()) {
  auto backend = c10::make_intrusive<Backend>();
  backend->set_name(name);
  tbk::spec_builder spec;
  for (const auto& m : methods) spec.method(m);
  auto handles = backend->compile(std::move(payload), spec.dict());
  return {backend, handles};
}

// The inputs of one call, as execute receives them.
inline c10::impl::GenericList inputs(std::initializer_list<c10::IValue> values) {
  c10::impl::GenericList out(c10::AnyType::get());
  for (const auto& v : values) out.push_back(v);
  return out;
}

}  // namespace tbk_test
