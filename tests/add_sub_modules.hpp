// add_sub_modules.hpp: the TorchScript modules several unit test files lower to the add/sub
// reference backend ("custom_backend"), and what they compute. It includes support.hpp itself:
// include it after every libtorch header, just before support.hpp.
#pragma once

#include "support.hpp"  // libtorch, tbk, and doctest's CHECK macros over glog's

#include <string>  // std::string

namespace tbk_test {

// forward(a, b) -> (a + b, a - b): the backend's own forward.
inline constexpr const char* two_input_source = R"(
  def forward(self, a: Tensor, b: Tensor) -> Tuple[Tensor, Tensor]:
      return a + b, a - b
)";
// The same module, under the name the lowering, loading and registration tests give it.
inline constexpr const char* pair_source = two_input_source;

// The backend's three methods, on three inputs.
inline constexpr const char* three_method_source = R"(
  def forward(self, a: Tensor, b: Tensor, c: Tensor) -> Tuple[Tensor, Tensor]:
      return a + b + c, a - b - c
  def accum(self, a: Tensor, b: Tensor, c: Tensor) -> Tensor:
      return a + b + c
  def sub_accum(self, a: Tensor, b: Tensor, c: Tensor) -> Tensor:
      return a - b - c
)";

inline torch::jit::Module lowered_two_input() {
  return tbk::lower(script(two_input_source), "custom_backend", tbk::spec().method("forward"));
}

// A module `name` whose forward(a, b) combines first(a, b) and second(a + b, a - b); `plain`
// is an attribute that is not a module.
inline torch::jit::Module combining_module(const std::string& name, const torch::jit::Module& first,
                                           const torch::jit::Module& second) {
  torch::jit::Module outer(name);
  outer.register_module("first", first);
  outer.register_module("second", second);
  outer.register_attribute("plain", c10::IntType::get(), int64_t(3));
  outer.define(R"(
    def forward(self, a: Tensor, b: Tensor) -> Tensor:
        s, d = self.first.forward(a, b)
        s2, d2 = self.second.forward(s, d)
        return s2 * d2 + self.plain
  )");
  return outer;
}

inline torch::jit::Module pair_module(const std::string& name) {
  torch::jit::Module m(name);
  m.define(pair_source);
  return m;
}

// What combining_module(..., pair_module(...), pair_module(...)) returns for a and b.
inline at::Tensor expected(const at::Tensor& a, const at::Tensor& b) {
  return ((a + b) + (a - b)) * ((a + b) - (a - b)) + 3;
}

}  // namespace tbk_test
