// tbk/signature.hpp: typed execute signatures. Converts the List[Any] a lowered method passes
// into the execute policy's parameters, and its result back into a List[Any].
// Extension points: tbk::arg_caster<T> (a parameter type), tbk::result_caster<R> (a result).
#pragma once

#include <tbk/detail/arguments.hpp>
#include <tbk/detail/method_schema.hpp>
#include <tbk/detail/detected.hpp>
#include <tbk/fwd.hpp>

#include <ATen/core/List.h>    // c10::List, c10::impl::GenericList
#include <ATen/core/ivalue.h>  // c10::IValue
#include <ATen/core/jit_type.h>  // c10::AnyType
#include <ATen/core/stack.h>     // torch::jit::Stack
#include <c10/util/Optional.h> // c10::optional

#include <cstdint>      // int64_t
#include <iterator>     // std::input_iterator_tag
#include <functional>   // std::function
#include <string>       // std::string
#include <tuple>        // std::tuple
#include <type_traits>  // std::decay_t
#include <utility>      // std::index_sequence
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

template <class T>
struct is_optional : std::false_type {};
template <class T>
struct is_optional<c10::optional<T>> : std::true_type {};

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
