// tbk/detail/arguments.hpp: checking a call's inputs against an execute signature, and the
// pybind11-style message when they do not match. Non-template: the templates only describe.
#pragma once

#include <tbk/detail/errors.hpp>

#include <ATen/core/ivalue.h>  // c10::IValue
#include <ATen/core/jit_type.h>  // c10::TypePtr
#include <c10/util/ArrayRef.h> // c10::ArrayRef

#include <cstddef>  // std::size_t
#include <string>   // std::string
#include <vector>   // std::vector

namespace tbk::detail {

enum class param_kind { required, optional, rest };

// What a template tells this file about one execute parameter.
struct param_info {
  std::string (*name)();                  // TorchScript spelling: "Tensor", "Optional[int]"
  bool (*accepts)(const c10::IValue&);    // whether a received value converts
  c10::TypePtr (*type)();                 // the TorchScript type it stands for
  param_kind kind;
};

// What tbk knows of an execute result before it runs: a fixed list of output types (a Tensor,
// a tuple), or any number of outputs of one type (a vector, a raw list).
struct result_info {
  bool fixed;
  std::vector<c10::TypePtr> types;  // fixed: one per output; otherwise: the element type
};

// "(Tensor, Tensor, *rest: Tensor) -> Tuple[Tensor, Tensor]"
inline std::string signature_text(const param_info* params, std::size_t count,
                                  const std::string& result) {
  std::string text = "(";
  for (std::size_t i = 0; i < count; ++i) {
    if (i != 0) text += ", ";
    if (params[i].kind == param_kind::rest) text += "*rest: ";
    text += params[i].name();
  }
  return text + ") -> " + result;
}

// "(Tensor(dtype=Float, shape=[4]), int(3))"
inline std::string invoked_with_text(c10::ArrayRef<c10::IValue> args) {
  std::string text = "(";
  for (std::size_t i = 0; i < args.size(); ++i) {
    if (i != 0) text += ", ";
    text += describe(args[i]);
  }
  return text + ")";
}

[[noreturn]] inline void raise_incompatible(const error_site& site, const param_info* params,
                                            std::size_t count, const std::string& result,
                                            c10::ArrayRef<c10::IValue> args,
                                            const std::string& problem) {
  raise_type_error(site_name(site) + "(): incompatible inputs for the execute policy: " + problem +
                   ".\nThe execute policy accepts:\n    " +
                   signature_text(params, count, result) + "\nInvoked with:\n    " +
                   invoked_with_text(args));
}

inline std::string count_text(std::size_t n) {
  return std::to_string(n) + (n == 1 ? " input" : " inputs");
}

// Throws a c10::TypeError naming the site, the position, what was expected and what came,
// unless `args` fits the parameters.
inline void check_arguments(const error_site& site, const param_info* params, std::size_t count,
                            const std::string& result, c10::ArrayRef<c10::IValue> args) {
  std::size_t fixed = count;
  bool has_rest = count != 0 && params[count - 1].kind == param_kind::rest;
  if (has_rest) --fixed;
  std::size_t min_count = fixed;
  while (min_count != 0 && params[min_count - 1].kind == param_kind::optional) --min_count;

  if (args.size() < min_count || (!has_rest && args.size() > fixed)) {
    std::string expected = has_rest           ? "at least " + count_text(min_count)
                           : min_count == fixed ? count_text(fixed)
                                                : "from " + std::to_string(min_count) + " to " +
                                                      count_text(fixed);
    raise_incompatible(site, params, count, result, args,
                       "expected " + expected + ", got " + std::to_string(args.size()));
  }
  for (std::size_t i = 0; i < args.size(); ++i) {
    const param_info& param = params[i < fixed ? i : fixed];
    if (!param.accepts(args[i])) {
      raise_incompatible(site, params, count, result, args,
                         "inputs[" + std::to_string(i) + "] should be " + param.name() +
                             ", got " + describe(args[i]));
    }
  }
}

}  // namespace tbk::detail
