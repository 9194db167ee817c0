// tbk/signature.hpp: typed execute signatures. Converts the List[Any] a lowered method passes
// into the execute policy's parameters (through tbk/cast.hpp's casters), and its result back
// into a List[Any]; describes the typed methods of the fast path.
#pragma once

#include <tbk/cast.hpp>
#include <tbk/detail/arguments.hpp>
#include <tbk/detail/detected.hpp>
#include <tbk/detail/fast_entry.hpp>
#include <tbk/detail/method_schema.hpp>
#include <tbk/fwd.hpp>

#include <ATen/core/List.h>    // c10::List, c10::impl::GenericList
#include <ATen/core/ivalue.h>  // c10::IValue
#include <ATen/core/jit_type.h>  // c10::AnyType
#include <ATen/core/stack.h>     // torch::jit::Stack
#include <c10/util/Optional.h> // c10::optional

#include <cstdint>      // int64_t
#include <optional>     // std::optional
#include <iterator>     // std::input_iterator_tag
#include <functional>   // std::function
#include <string>       // std::string
#include <tuple>        // std::tuple
#include <type_traits>  // std::decay_t
#include <utility>      // std::index_sequence
#include <vector>       // std::vector

namespace tbk {

// An execute parameter that takes all remaining inputs, each of type T. Cheap to pass by
// value: a view over the call's inputs, valid for the duration of the call.
template <class T>
class rest {
  static_assert(arg_caster<T>::supported,
                "tbk::rest<T>: T is not a supported execute parameter type; use at::Tensor, "
                "int64_t, double, bool, std::string, c10::IValue, std::vector<at::Tensor>, "
                "c10::optional<T>, or specialize tbk::arg_caster<T>.");

 public:
  explicit rest(c10::ArrayRef<c10::IValue> values) : values_(values) {}

  std::size_t size() const { return values_.size(); }
  bool empty() const { return values_.empty(); }
  decltype(auto) operator[](std::size_t i) const { return arg_caster<T>::load(values_[i]); }
  decltype(auto) front() const { return (*this)[0]; }

  class iterator {
   public:
    using iterator_category = std::input_iterator_tag;
    using value_type = T;
    using difference_type = std::ptrdiff_t;
    using pointer = void;
    using reference = decltype(arg_caster<T>::load(std::declval<const c10::IValue&>()));
    explicit iterator(const c10::IValue* at) : at_(at) {}
    decltype(auto) operator*() const { return arg_caster<T>::load(*at_); }
    iterator& operator++() { ++at_; return *this; }
    bool operator==(const iterator& other) const { return at_ == other.at_; }
    bool operator!=(const iterator& other) const { return at_ != other.at_; }

   private:
    const c10::IValue* at_;
  };
  iterator begin() const { return iterator(values_.begin()); }
  iterator end() const { return iterator(values_.end()); }

  std::vector<T> to_vector() const { return std::vector<T>(begin(), end()); }

 private:
  c10::ArrayRef<c10::IValue> values_;
};

namespace detail {

template <class T>
struct is_rest : std::false_type {};
template <class T>
struct is_rest<rest<T>> : std::true_type {};

template <class... Ts>
struct last_type {
  using type = void;
};
template <class T, class... Ts>
struct last_type<T, Ts...> {
  using type = std::conditional_t<sizeof...(Ts) == 0, T, typename last_type<Ts...>::type>;
};
template <class... Ts>
using last_t = typename last_type<Ts...>::type;

// c10::optional<T>, or std::optional<T> where that is another type (torch 1.13).
template <class T>
struct is_c10_optional : std::false_type {};
template <class T>
struct is_c10_optional<c10::optional<T>> : std::true_type {};
template <class T>
struct is_std_optional : std::false_type {};
template <class T>
struct is_std_optional<std::optional<T>> : std::true_type {};
template <class T>
struct is_optional : std::bool_constant<is_c10_optional<T>::value || is_std_optional<T>::value> {};

template <class P>
struct rest_element;
template <class T>
struct rest_element<rest<T>> {
  using type = T;
};

// Whether P can be an execute parameter (rest<T> checks its T when instantiated).
template <class P>
constexpr bool param_supported() {
  using D = std::decay_t<P>;
  if constexpr (is_rest<D>::value) return arg_caster<typename rest_element<D>::type>::supported;
  else return arg_caster<D>::supported;
}

template <class P>
param_info describe_param() {
  using D = std::decay_t<P>;
  if constexpr (is_rest<D>::value) {
    using C = arg_caster<typename rest_element<D>::type>;
    return {&C::name, &C::accepts, &type_of<typename rest_element<D>::type>, param_kind::rest};
  } else {
    using C = arg_caster<D>;
    return {&C::name, &C::accepts, &type_of<D>,
            is_optional<D>::value ? param_kind::optional : param_kind::required};
  }
}

// Loads parameter I of type P from the call's inputs (already checked).
template <class P, std::size_t I>
decltype(auto) load_param(c10::ArrayRef<c10::IValue> args) {
  using D = std::decay_t<P>;
  if constexpr (is_rest<D>::value) {
    return D(args.slice(std::min(I, args.size())));
  } else if constexpr (is_optional<D>::value) {
    return I < args.size() ? arg_caster<D>::load(args[I]) : D();
  } else {
    return arg_caster<D>::load(args[I]);
  }
}

template <class Caster>
using caster_fast_t = decltype(Caster::to_ivalue);

// Whether a result type can be returned by a typed (fast path) method.
template <class R>
constexpr bool fast_result_supported() {
  return is_detected<caster_fast_t, result_caster<R>>;
}

// Everything tbk needs to call an execute hook with parameters Params... after the handle.
template <class Result, class... Params>
struct execute_signature {
  static constexpr std::size_t count = sizeof...(Params);

  static const param_info* params() {
    static const param_info infos[count + 1] = {describe_param<Params>()..., {}};
    return infos;
  }
  static const std::string& result_name() {
    static const std::string name = result_caster<std::decay_t<Result>>::name();
    return name;
  }
  static const result_info& result() {
    static const result_info info = result_info_of<std::decay_t<Result>>();
    return info;
  }
  static std::string text() { return signature_text(params(), count, result_name()); }

  // Throws when a lowered method's TorchScript schema does not fit this signature.
  static void check_schema(const error_site& site, const c10::FunctionSchema& schema) {
    check_method_schema(site, schema, params(), count, result_name(), result());
  }

  static constexpr bool has_rest = count != 0 && is_rest<std::decay_t<last_t<Params...>>>::value;
  static constexpr bool fast_supported = fast_result_supported<std::decay_t<Result>>();

  // The typed methods of the fast path: one for a fixed signature, one per input count with a
  // rest<T> parameter.
  static std::vector<fast_method> fast_methods() {
    std::vector<fast_method> out;
    if constexpr (fast_supported) {
      const std::size_t fixed = has_rest ? count - 1 : count;
      const std::size_t most = has_rest ? fixed + max_fast_rest : fixed;
      for (std::size_t n = has_rest ? fixed : count; n <= most; ++n) {
        fast_method m{fast_method_name(n), {}, result_caster<std::decay_t<Result>>::fast_type(), n};
        for (std::size_t i = 0; i < n; ++i) m.inputs.push_back(params()[i < fixed ? i : fixed].type());
        out.push_back(std::move(m));
      }
    }
    return out;
  }

  // The fast path's call: inputs already typed by the method's schema, result as one IValue.
  // `declared` are the method's outputs, checked when the result's count is dynamic.
  template <class Call, class Handle>
  static c10::IValue invoke_fast(const error_site& site, Call&& call, const Handle& handle,
                                 c10::ArrayRef<c10::IValue> args,
                                 const std::vector<c10::TypePtr>& declared) {
    using R = std::decay_t<Result>;
    if constexpr (fast_supported) {
      c10::IValue out = result_caster<R>::to_ivalue(
          call_unchecked(call, handle, args, std::index_sequence_for<Params...>()));
      if (!result().fixed && !declared.empty()) check_outputs(site, declared, out.toListRef());
      return out;
    } else {  // not reached: no typed method is registered for such a result
      raise(site_name(site) + ": this execute policy's result has no typed form");
    }
  }

  // Checks the inputs, calls `call(handle, params...)` and packs the result.
  template <class Call, class Handle>
  static c10::impl::GenericList invoke(const error_site& site, Call&& call, const Handle& handle,
                                       c10::ArrayRef<c10::IValue> args) {
    check_arguments(site, params(), count, result_name(), args);
    return invoke_unchecked(call, handle, args, std::index_sequence_for<Params...>());
  }

 private:
  template <class Call, class Handle, std::size_t... I>
  static std::decay_t<Result> call_unchecked(Call& call, const Handle& handle,
                                             c10::ArrayRef<c10::IValue> args,
                                             std::index_sequence<I...>) {
    (void)args;  // unused when execute takes only the handle
    return std::decay_t<Result>(call(handle, load_param<Params, I>(args)...));
  }

  template <class Call, class Handle, std::size_t... I>
  static c10::impl::GenericList invoke_unchecked(Call& call, const Handle& handle,
                                                 c10::ArrayRef<c10::IValue> args,
                                                 std::index_sequence<I...> indices) {
    return result_caster<std::decay_t<Result>>::pack(call_unchecked(call, handle, args, indices));
  }
};

template <class Result, class ArgsTuple>
struct execute_signature_from;
template <class Result, class Handle, class... Params>
struct execute_signature_from<Result, std::tuple<Handle, Params...>> {
  using type = execute_signature<Result, Params...>;
};

}  // namespace detail
}  // namespace tbk
