// tbk/cast.hpp: conversions between TorchScript values and C++ types, as pybind11's cast.h:
// tbk::arg_caster<T> (an execute parameter or a compile-spec option) and tbk::result_caster<R>
// (an execute result). Extension points: specialize either for a type of your own.
#pragma once

#include <tbk/detail/arguments.hpp>  // tbk::detail::result_info
#include <tbk/detail/detected.hpp>

#include <ATen/core/List.h>      // c10::List, c10::impl::GenericList
#include <ATen/core/ivalue.h>    // c10::IValue
#include <ATen/core/jit_type.h>  // c10::AnyType, c10::TensorType
#include <c10/util/Optional.h>   // c10::optional

#include <cstdint>      // int64_t
#include <optional>     // std::optional
#include <string>       // std::string
#include <tuple>        // std::tuple
#include <type_traits>  // std::enable_if_t, std::is_constructible
#include <utility>      // std::move
#include <vector>       // std::vector

namespace tbk {

// How one execute parameter type is named, checked and loaded from an input IValue.
// Specialize it for a type of your own: name(), accepts(const IValue&), load(const IValue&).
template <class T, class Enable = void>
struct arg_caster {
  static constexpr bool supported = false;
};

namespace detail {
template <class Caster>
using caster_type_t = decltype(Caster::type());

// The TorchScript type a caster stands for; Any when an extension caster does not say.
template <class T>
c10::TypePtr type_of() {
  if constexpr (is_detected<caster_type_t, arg_caster<T>>) return arg_caster<T>::type();
  else return c10::AnyType::get();
}
}  // namespace detail

template <>
struct arg_caster<at::Tensor> {
  static constexpr bool supported = true;
  static std::string name() { return "Tensor"; }
  static c10::TypePtr type() { return c10::TensorType::get(); }
  static bool accepts(const c10::IValue& v) { return v.isTensor(); }
  static const at::Tensor& load(const c10::IValue& v) { return v.toTensor(); }
};

template <>
struct arg_caster<int64_t> {
  static constexpr bool supported = true;
  static std::string name() { return "int"; }
  static c10::TypePtr type() { return c10::IntType::get(); }
  static bool accepts(const c10::IValue& v) { return v.isInt(); }
  static int64_t load(const c10::IValue& v) { return v.toInt(); }
};

template <>
struct arg_caster<double> {
  static constexpr bool supported = true;
  static std::string name() { return "float"; }
  static c10::TypePtr type() { return c10::FloatType::get(); }
  // An int converts to float, as it does in TorchScript and Python.
  static bool accepts(const c10::IValue& v) { return v.isDouble() || v.isInt(); }
  static double load(const c10::IValue& v) {
    return v.isDouble() ? v.toDouble() : static_cast<double>(v.toInt());
  }
};

template <>
struct arg_caster<bool> {
  static constexpr bool supported = true;
  static std::string name() { return "bool"; }
  static c10::TypePtr type() { return c10::BoolType::get(); }
  static bool accepts(const c10::IValue& v) { return v.isBool(); }
  static bool load(const c10::IValue& v) { return v.toBool(); }
};

template <>
struct arg_caster<std::string> {
  static constexpr bool supported = true;
  static std::string name() { return "str"; }
  static c10::TypePtr type() { return c10::StringType::get(); }
  static bool accepts(const c10::IValue& v) { return v.isString(); }
  static const std::string& load(const c10::IValue& v) { return v.toStringRef(); }
};

template <>
struct arg_caster<c10::IValue> {
  static constexpr bool supported = true;
  static std::string name() { return "Any"; }
  static c10::TypePtr type() { return c10::AnyType::get(); }
  static bool accepts(const c10::IValue&) { return true; }
  static const c10::IValue& load(const c10::IValue& v) { return v; }
};

template <>
struct arg_caster<std::vector<at::Tensor>> {
  static constexpr bool supported = true;
  static std::string name() { return "List[Tensor]"; }
  static c10::TypePtr type() { return c10::ListType::ofTensors(); }
  static bool accepts(const c10::IValue& v) {
    if (v.isTensorList()) return true;
    if (!v.isList()) return false;
    for (const c10::IValue& element : v.toListRef()) {
      if (!element.isTensor()) return false;
    }
    return true;
  }
  static std::vector<at::Tensor> load(const c10::IValue& v) {
    if (v.isTensorList()) return v.toTensorVector();
    std::vector<at::Tensor> out;
    for (const c10::IValue& element : v.toListRef()) out.push_back(element.toTensor());
    return out;
  }
};

template <class T>
struct arg_caster<c10::optional<T>> {
  static constexpr bool supported = arg_caster<T>::supported;
  static std::string name() { return "Optional[" + arg_caster<T>::name() + "]"; }
  static c10::TypePtr type() { return c10::OptionalType::create(detail::type_of<T>()); }
  static bool accepts(const c10::IValue& v) { return v.isNone() || arg_caster<T>::accepts(v); }
  static c10::optional<T> load(const c10::IValue& v) {
    if (v.isNone()) return c10::nullopt;
    return T(arg_caster<T>::load(v));
  }
};

// std::optional<T> where it is a type of its own (torch 1.13; since 2.1 it is c10::optional).
template <class T>
struct arg_caster<std::optional<T>,
                  std::enable_if_t<!std::is_same<c10::optional<T>, std::optional<T>>::value>>
    : arg_caster<c10::optional<T>> {
  static std::optional<T> load(const c10::IValue& v) {
    if (v.isNone()) return std::nullopt;
    return T(arg_caster<T>::load(v));
  }
};

// How an execute result is named and packed into the List[Any] a lowered method unpacks:
// one element per output of the method.
template <class R, class Enable = void>
struct result_caster {
  static constexpr bool supported = false;
};

namespace detail {
template <class Caster>
using caster_info_t = decltype(Caster::info());

// What a result caster says about the outputs it packs; "any number of Any" when an extension
// caster does not say.
template <class R>
result_info result_info_of() {
  if constexpr (is_detected<caster_info_t, result_caster<R>>) return result_caster<R>::info();
  else return {false, {c10::AnyType::get()}};
}

inline c10::impl::GenericList make_output_list(std::size_t reserve) {
  c10::impl::GenericList out(c10::AnyType::get());
  out.reserve(reserve);
  return out;
}
}  // namespace detail

template <>
struct result_caster<at::Tensor> {
  static constexpr bool supported = true;
  static std::string name() { return "Tensor"; }
  static detail::result_info info() { return {true, {c10::TensorType::get()}}; }
  static c10::TypePtr fast_type() { return c10::TensorType::get(); }
  static c10::IValue to_ivalue(at::Tensor&& t) { return c10::IValue(std::move(t)); }
  static c10::impl::GenericList pack(at::Tensor&& t) {
    auto out = detail::make_output_list(1);
    out.push_back(std::move(t));
    return out;
  }
};

template <>
struct result_caster<std::vector<at::Tensor>> {
  static constexpr bool supported = true;
  static std::string name() { return "List[Tensor]"; }
  static detail::result_info info() { return {false, {c10::TensorType::get()}}; }
  static c10::TypePtr fast_type() { return c10::ListType::ofTensors(); }
  static c10::IValue to_ivalue(std::vector<at::Tensor>&& ts) {
    return c10::IValue(c10::List<at::Tensor>(std::move(ts)));
  }
  static c10::impl::GenericList pack(std::vector<at::Tensor>&& ts) {
    auto out = detail::make_output_list(ts.size());
    for (at::Tensor& t : ts) out.push_back(std::move(t));
    return out;
  }
};

template <>
struct result_caster<c10::impl::GenericList> {
  static constexpr bool supported = true;
  static std::string name() { return "List[Any]"; }
  static detail::result_info info() { return {false, {c10::AnyType::get()}}; }
  static c10::TypePtr fast_type() { return c10::ListType::create(c10::AnyType::get()); }
  static c10::IValue to_ivalue(c10::impl::GenericList&& list) { return c10::IValue(std::move(list)); }
  static c10::impl::GenericList pack(c10::impl::GenericList&& list) { return std::move(list); }
};

template <class... Ts>
struct result_caster<std::tuple<Ts...>> {
  static constexpr bool supported =
      (std::is_constructible<c10::IValue, Ts&&>::value && ...);
  static std::string name() {
    std::string text = "Tuple[";
    bool first = true;
    ((text += (first ? "" : ", ") + element_name<Ts>(), first = false), ...);
    return text + "]";
  }
  static detail::result_info info() { return {true, {detail::type_of<Ts>()...}}; }
  static c10::TypePtr fast_type() { return c10::TupleType::create({detail::type_of<Ts>()...}); }
  static c10::IValue to_ivalue(std::tuple<Ts...>&& values) {
    return std::apply(
        [](auto&&... v) { return c10::IValue(c10::ivalue::Tuple::create(c10::IValue(std::move(v))...)); },
        std::move(values));
  }
  static c10::impl::GenericList pack(std::tuple<Ts...>&& values) {
    auto out = detail::make_output_list(sizeof...(Ts));
    std::apply([&](auto&&... v) { (out.push_back(c10::IValue(std::move(v))), ...); },
               std::move(values));
    return out;
  }

 private:
  template <class T>
  static std::string element_name() {
    if constexpr (arg_caster<T>::supported) return arg_caster<T>::name();
    else return "Any";
  }
};

}  // namespace tbk
