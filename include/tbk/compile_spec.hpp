// tbk/compile_spec.hpp: compile specs. tbk::spec() builds one for tbk::lower; compile_spec and
// method_spec are the typed, read-only views a compile policy reads them through.
#pragma once

#include <tbk/detail/errors.hpp>
#include <tbk/fwd.hpp>
#include <tbk/cast.hpp>  // tbk::arg_caster, shared with execute parameters
#include <tbk/detail/torchbind.hpp>  // make_any_dict

#include <ATen/core/Dict.h>    // c10::Dict, c10::impl::GenericDict
#include <ATen/core/ivalue.h>  // c10::IValue
#include <ATen/core/jit_type.h>  // c10::StringType, c10::AnyType

#include <initializer_list>  // std::initializer_list
#include <string>            // std::string
#include <utility>           // std::pair
#include <vector>            // std::vector

namespace tbk {

// The compile-spec option that carries a method's example inputs: one value per parameter of the
// method after the module, in order (usually tensors), for backends that need shapes at lowering
// time. Written by tbk::spec().method(...).example_inputs(...), Python's tbk.lower(...,
// example_inputs=...) and tbk::partition (each region's own); read by method_spec::example_inputs.
inline constexpr const char* example_inputs_option = "example_inputs";

// The compile-spec option tbk::partition gives each region it lowers: which region of which
// method, with its nodes and their source lines ("region 2 of method forward: aten::conv2d
// (model.py:12), aten::relu (model.py:13)"). tbk keeps it with the handle and names it in the
// region's call-time errors; compile policies do not see it.
inline constexpr const char* region_option = "tbk_region";

// The compile-spec option (a bool) that preprocess sees when the runtime will call the method only
// at its example inputs' shapes: a backend need not keep anything for other shapes. Lowering for
// ExecuTorch sets it true for a program exported without dynamic shapes, whose shapes are fixed
// at export (tbk::executorch::preprocess_options). Absent: the method may be called at other
// shapes, as TorchScript's methods are.
inline constexpr const char* static_shapes_option = "tbk_static_shapes";

// The option that says which dimensions of each example input the runtime may call the method
// at other sizes of (List[List[int]]: per input, its dynamic dimensions): set by tbk.executorch,
// tbk.export and tbk.compile for a region whose inputs have symbolic sizes (torch.export's
// dynamic_shapes, Dynamo's dynamic shapes), so that a backend that prepares for other shapes need
// not guess where the batch is (a sequence model's may be dimension 1). Absent: not known.
inline constexpr const char* dynamic_dims_option = "tbk_dynamic_dims";

namespace detail {

// Example inputs as the option's value: List[Tensor] when they are all tensors, else List[Any].
inline c10::IValue example_inputs_value(const std::vector<c10::IValue>& inputs) {
  bool tensors = true;
  for (const c10::IValue& v : inputs) tensors = tensors && v.isTensor();
  if (tensors) {
    c10::List<at::Tensor> list;
    for (const c10::IValue& v : inputs) list.push_back(v.toTensor());
    return list;
  }
  c10::impl::GenericList list(c10::AnyType::get());
  for (const c10::IValue& v : inputs) list.push_back(v);
  return list;
}

// The options of one method, as given: usually Dict[str, Any], PyTorch's {"": ""} or None.
// Returns the value stored for `key`, or nullptr. Throws when the options are not a dict.
inline const c10::IValue* find_option(const c10::IValue& options, const std::string& key,
                                      const std::string& backend, const std::string& method) {
  if (options.isNone()) return nullptr;
  if (!options.isGenericDict()) {
    raise(backend + "." + method + ": the compile spec of method '" + method +
          "' should be a dict of options (Dict[str, Any]), got " + describe(options));
  }
  const auto dict = options.toGenericDict();
  const auto found = dict.find(c10::IValue(key));
  return found == dict.end() ? nullptr : &found->value();
}

}  // namespace detail

// The compile spec of one lowered method: its name and typed access to its options.
class method_spec {
 public:
  method_spec(std::string backend, std::string method, c10::IValue options)
      : backend_(std::move(backend)), method_(std::move(method)), options_(std::move(options)) {}

  const std::string& name() const { return method_; }
  const std::string& backend() const { return backend_; }
  const c10::IValue& options() const { return options_; }

  bool contains(const std::string& key) const {
    return detail::find_option(options_, key, backend_, method_) != nullptr;
  }

  // The option `key` as a T; an error names backend, method and key when it is missing or
  // of another type.
  template <class T>
  T get(const std::string& key) const {
    const c10::IValue* value = detail::find_option(options_, key, backend_, method_);
    if (value == nullptr) missing(key, arg_caster<T>::name());
    return convert<T>(key, *value);
  }

  // The option `key` as a T, or `fallback` when the spec does not have it.
  template <class T>
  T get(const std::string& key, T fallback) const {
    const c10::IValue* value = detail::find_option(options_, key, backend_, method_);
    if (value == nullptr) return fallback;
    return convert<T>(key, *value);
  }

  bool has_example_inputs() const { return contains(example_inputs_option); }

  // Per example input, the dimensions the runtime may change (tbk::dynamic_dims_option); empty
  // when the spec does not say. An error names backend and method when it is not List[List[int]].
  c10::optional<std::vector<std::vector<int64_t>>> dynamic_dims() const {
    const c10::IValue* value = detail::find_option(options_, dynamic_dims_option, backend_, method_);
    if (value == nullptr) return c10::nullopt;
    std::vector<std::vector<int64_t>> out;
    if (value->isList()) {
      for (const c10::IValue& dims : value->toListRef()) {
        if (!dims.isIntList()) wrong_type(dynamic_dims_option, "List[List[int]]", *value);
        out.push_back(dims.toIntVector());
      }
      return out;
    }
    wrong_type(dynamic_dims_option, "List[List[int]]", *value);
  }

  // The method's example inputs (the option tbk::example_inputs_option: a list or tuple, or one
  // tensor); an error names backend and method when they are missing or not a list.
  std::vector<c10::IValue> example_inputs() const {
    const c10::IValue* value = detail::find_option(options_, example_inputs_option, backend_, method_);
    if (value == nullptr) {
      detail::raise(backend_ + "." + method_ + ": method '" + method_ +
                    "' needs example inputs (compile spec option 'example_inputs'): give them with "
                    "tbk.lower(..., example_inputs=(x,)) in Python, tbk::spec().method(\"" + method_ +
                    "\").example_inputs({x}) in C++, or partition_options::example_inputs");
    }
    if (value->isTensor()) return {*value};
    if (value->isTuple()) {
      const auto& elements = value->toTupleRef().elements();
      return std::vector<c10::IValue>(elements.begin(), elements.end());
    }
    if (!value->isList()) wrong_type(example_inputs_option, "a list of inputs", *value);
    const auto list = value->toListRef();
    return std::vector<c10::IValue>(list.begin(), list.end());
  }

  // The example inputs, each a tensor (an error names the first that is not).
  std::vector<at::Tensor> example_tensors() const {
    std::vector<at::Tensor> out;
    for (const c10::IValue& v : example_inputs()) {
      if (!v.isTensor()) {
        detail::raise(backend_ + "." + method_ + ": example input " + std::to_string(out.size()) + " of method '" +
                      method_ + "' should be a Tensor, got " + detail::describe(v));
      }
      out.push_back(v.toTensor());
    }
    return out;
  }

  // The option names the user gave, for a backend that refuses the ones it does not know:
  // PyTorch's placeholder key "" and tbk's own options (example_inputs_option,
  // static_shapes_option, dynamic_dims_option, region_option, which tbk.partition,
  // tbk.executorch, tbk.export and tbk.compile add) left out; contains() and get() read those.
  std::vector<std::string> keys() const {
    std::vector<std::string> out;
    if (!options_.isGenericDict()) return out;
    for (const auto& entry : options_.toGenericDict()) {
      if (!entry.key().isString()) continue;
      const std::string& key = entry.key().toStringRef();
      if (key.empty() || key == example_inputs_option || key == static_shapes_option || key == dynamic_dims_option ||
          key == region_option) {
        continue;
      }
      out.push_back(key);
    }
    return out;
  }

 private:
  template <class T>
  T convert(const std::string& key, const c10::IValue& value) const {
    static_assert(arg_caster<T>::supported,
                  "method_spec::get<T>: T is not a supported option type; use int64_t, double, "
                  "bool, std::string, at::Tensor, c10::IValue, or specialize tbk::arg_caster<T>.");
    if (!arg_caster<T>::accepts(value)) wrong_type(key, arg_caster<T>::name(), value);
    return T(arg_caster<T>::load(value));
  }

  [[noreturn]] void missing(const std::string& key, const std::string& expected) const {
    detail::raise(backend_ + "." + method_ + ": the compile spec of method '" + method_ +
                  "' needs option '" + key + "' (" + expected + "), which is missing");
  }
  [[noreturn]] void wrong_type(const std::string& key, const std::string& expected,
                               const c10::IValue& got) const {
    detail::raise(backend_ + "." + method_ + ": compile spec option '" + key + "' of method '" +
                  method_ + "' should be " + expected + ", got " + detail::describe(got));
  }

  std::string backend_;
  std::string method_;
  c10::IValue options_;
};

// The whole compile spec of a lowering (what preprocess sees): one method_spec per method.
class compile_spec {
 public:
  compile_spec(std::string backend, c10::impl::GenericDict methods)
      : backend_(std::move(backend)), methods_(std::move(methods)) {}

  const std::string& backend() const { return backend_; }
  const c10::impl::GenericDict& dict() const { return methods_; }
  std::size_t size() const { return methods_.size(); }

  std::vector<std::string> method_names() const {
    std::vector<std::string> out;
    for (const auto& entry : methods_) out.push_back(entry.key().toStringRef());
    return out;
  }

  bool contains(const std::string& method) const {
    return methods_.find(c10::IValue(method)) != methods_.end();
  }

  method_spec method(const std::string& name) const {
    const auto found = methods_.find(c10::IValue(name));
    if (found == methods_.end()) {
      detail::raise(backend_ + ": the compile spec has no method '" + name + "'");
    }
    return method_spec(backend_, name, found->value());
  }

 private:
  std::string backend_;
  c10::impl::GenericDict methods_;
};

// Builds a compile spec for tbk::lower:
//   tbk::spec().method("forward").method("accum", {{"threads", 4}})
//   tbk::spec().method("forward").example_inputs({x})  // for the method named last
class spec_builder {
 public:
  using option = std::pair<std::string, c10::IValue>;

  spec_builder& method(const std::string& name, std::initializer_list<option> options = {}) {
    if (name.empty()) detail::raise("tbk::spec: a method name cannot be empty");
    if (methods_.contains(c10::IValue(name))) {
      detail::raise("tbk::spec: method '" + name + "' is named twice");
    }
    auto dict = detail::make_any_dict();
    for (const option& o : options) dict.insert_or_assign(o.first, o.second);
    methods_.insert(name, std::move(dict));
    last_ = name;
    return *this;
  }

  // The example inputs of the method named last (the option tbk::example_inputs_option).
  spec_builder& example_inputs(const std::vector<c10::IValue>& inputs) {
    if (last_.empty()) {
      detail::raise("tbk::spec: example_inputs(...) follows the method it is for: "
                    "tbk::spec().method(\"forward\").example_inputs({x})");
    }
    methods_.at(last_).toGenericDict().insert_or_assign(example_inputs_option, detail::example_inputs_value(inputs));
    return *this;
  }

  // The Dict[str, Any] that PyTorch's lowering takes.
  const c10::impl::GenericDict& dict() const { return methods_; }
  operator const c10::impl::GenericDict&() const { return methods_; }

 private:
  c10::impl::GenericDict methods_ = detail::make_any_dict();
  std::string last_;  // the method named last
};

inline spec_builder spec() { return spec_builder(); }

}  // namespace tbk
