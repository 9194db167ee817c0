// tbk/detail/fast_entry.hpp: the typed methods of the fast path as registration sees them:
// their names, TorchScript types and boxed entry points. Non-template.
#pragma once

#include <ATen/core/jit_type.h>  // c10::TypePtr
#include <ATen/core/stack.h>     // torch::jit::Stack

#include <cstddef>     // std::size_t
#include <functional>  // std::function
#include <string>      // std::string
#include <utility>     // std::pair
#include <vector>      // std::vector

namespace tbk::detail {

// How many inputs a rest<T> parameter may take on the fast path, where each arity is a typed
// method of its own.
inline constexpr std::size_t max_fast_rest = 8;

// One typed method the fast path registers on the backend's class.
struct fast_method {
  std::string name;                        // "__tbk_execute_2": the suffix is the input count
  std::vector<c10::TypePtr> inputs;        // after self and the handle
  c10::TypePtr result;
  std::size_t input_count;
};

// Each typed method with the boxed function that serves it.
using fast_entry_points = std::vector<std::pair<fast_method, std::function<void(torch::jit::Stack&)>>>;

inline std::string fast_method_name(std::size_t inputs) {
  return "__tbk_execute_" + std::to_string(inputs);
}

}  // namespace tbk::detail
