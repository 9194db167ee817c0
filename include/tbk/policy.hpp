// tbk/policy.hpp: what compile, execute and availability policies must provide. One named
// trait per rule, and one static_assert per rule whose sentence says exactly what to write.
#pragma once

#include <tbk/availability.hpp>
#include <tbk/compile_spec.hpp>
#include <tbk/detail/detected.hpp>
#include <tbk/detail/function_traits.hpp>
#include <tbk/detail/hook_name_typos.hpp>  // compile_hook_names_ok, ...
#include <tbk/node_support.hpp>
#include <tbk/signature.hpp>

#include <ATen/core/ivalue.h>            // c10::IValue
#include <torch/csrc/jit/api/module.h>   // torch::jit::Module
#include <torch/csrc/jit/ir/ir.h>        // torch::jit::Node

#include <type_traits>  // std::is_same, std::decay_t

namespace tbk {
namespace detail {

template <class P>
using compile_hook_t = decltype(&P::compile);
template <class P>
using preprocess_hook_t = decltype(&P::preprocess);
template <class P>
using supports_hook_t = decltype(&P::supports);
template <class P>
using execute_hook_t = decltype(&P::execute);
template <class P>
using availability_hook_t = decltype(&P::is_available);

template <class P, template <class> class Hook>
struct hook_traits_helper {
  template <class Q, bool = is_detected<Hook, Q>>
  struct pick {
    using type = function_traits<void>;
  };
  template <class Q>
  struct pick<Q, true> {
    using type = function_traits<Hook<Q>>;
  };
  using type = typename pick<P>::type;
};

// function_traits of a policy's hook; `valid` is false when the hook is missing, overloaded or
// a template.
template <class P, template <class> class Hook>
using hook_traits = typename hook_traits_helper<P, Hook>::type;

template <class Traits, std::size_t I>
using param_t = typename param_at<Traits, I>::type;

template <class T>
using decay_or_void_t = std::conditional_t<std::is_void<T>::value, void, std::decay_t<T>>;

// A payload parameter type compile may take.
template <class P>
constexpr bool payload_supported() {
  using D = std::decay_t<P>;
  if constexpr (std::is_void<P>::value) return false;
  else if constexpr (std::is_same<D, torch::jit::Module>::value) return true;
  else return arg_caster<D>::supported;
}

}  // namespace detail

// What tbk reads off a compile policy.
template <class Compile>
struct compile_policy_traits {
  using hook = detail::hook_traits<Compile, detail::compile_hook_t>;
  static constexpr bool has_compile = hook::valid;
  using handle_type = detail::decay_or_void_t<typename hook::result>;
  static constexpr bool has_preprocess = detail::is_detected<detail::preprocess_hook_t, Compile>;
  // The capability hook tbk::partition asks (tbk/partition.hpp): optional.
  static constexpr bool has_supports = detail::is_detected<detail::supports_hook_t, Compile>;
};

// What tbk reads off an execute policy.
template <class Execute>
struct execute_policy_traits {
  using hook = detail::hook_traits<Execute, detail::execute_hook_t>;
  static constexpr bool has_execute = hook::valid && hook::arity >= 1;
};

namespace detail {

template <class P>
constexpr bool check_execute_param() {
  static_assert(param_supported<P>(),
                "tbk::backend: this execute parameter has a type tbk cannot convert inputs to; use "
                "at::Tensor, std::vector<at::Tensor>, int64_t, double, bool, std::string, "
                "c10::optional<T>, tbk::rest<T> or c10::IValue, or specialize tbk::arg_caster<T>.");
  return param_supported<P>();
}

template <class... Params>
constexpr bool rest_is_last(std::tuple<Params...>*) {
  constexpr bool flags[] = {false, is_rest<std::decay_t<Params>>::value...};
  for (std::size_t i = 1; i + 1 < sizeof(flags) / sizeof(bool); ++i) {
    if (flags[i]) return false;
  }
  return true;
}

template <class Handle, class First, class... Params>
constexpr bool check_execute_params(std::tuple<First, Params...>*) {
  using first = First;
  constexpr bool handle_ok = std::is_same<std::decay_t<first>, Handle>::value &&
                             (!std::is_reference<first>::value ||
                              std::is_const<std::remove_reference_t<first>>::value);
  static_assert(handle_ok,
                "tbk::backend: the execute policy's execute must take the handle that compile "
                "returns as its first parameter, as `const Handle& handle` where Handle is "
                "compile's return type.");
  constexpr bool params_ok = (true && ... && check_execute_param<Params>());
  constexpr bool rest_ok = rest_is_last(static_cast<std::tuple<Params...>*>(nullptr));
  static_assert(rest_ok,
                "tbk::backend: tbk::rest<T> takes all remaining inputs, so it must be the last "
                "parameter of execute.");
  return handle_ok && params_ok && rest_ok;
}

template <class Compile>
constexpr bool check_supports() {
  if constexpr (compile_policy_traits<Compile>::has_supports) {
    using hook = hook_traits<Compile, supports_hook_t>;
    using result = decay_or_void_t<typename hook::result>;
    constexpr bool ok = hook::valid && !hook::is_member && hook::arity == 1 &&
                        (std::is_same<result, bool>::value || std::is_same<result, node_support>::value) &&
                        std::is_invocable<supports_hook_t<Compile>, const torch::jit::Node&>::value;
    static_assert(ok,
                  "tbk::backend: the compile policy's supports must be `static bool "
                  "supports(const torch::jit::Node& node);` or return tbk::node_support "
                  "(tbk::unsupported(\"reason\") puts the reason in the partition report); "
                  "tbk::partition asks it at lowering time, before any backend instance exists, "
                  "so it cannot be a member.");
    return ok;
  }
  return true;
}

template <class Compile>
constexpr bool check_compile_policy() {
  using traits = compile_policy_traits<Compile>;
  using hook = typename traits::hook;
  static_assert(traits::has_compile,
                "tbk::backend: the compile policy (first template argument) needs exactly one "
                "function named compile, e.g. `static MyHandle compile(const tbk::method_spec& "
                "method, const c10::IValue& payload);` (a member function of that shape makes the "
                "policy stateful; overloaded or template compile functions cannot be deduced).");
  if constexpr (traits::has_compile) {
    constexpr bool arity_ok = hook::arity == 2;
    static_assert(arity_ok,
                  "tbk::backend: the compile policy's compile must take two parameters: "
                  "(const tbk::method_spec& method, const c10::IValue& payload).");
    if constexpr (arity_ok) {
      constexpr bool spec_ok =
          std::is_same<std::decay_t<param_t<hook, 0>>, method_spec>::value;
      static_assert(spec_ok,
                    "tbk::backend: the first parameter of the compile policy's compile must be "
                    "`const tbk::method_spec& method`.");
      constexpr bool payload_ok = payload_supported<param_t<hook, 1>>();
      static_assert(payload_ok,
                    "tbk::backend: the second parameter of the compile policy's compile (the "
                    "payload preprocess made) must be `const c10::IValue&`, "
                    "`const torch::jit::Module&`, or a type tbk::arg_caster<T> supports.");
      using handle = typename hook::result;
      constexpr bool handle_ok =
          !std::is_void<handle>::value && std::is_move_constructible<std::decay_t<handle>>::value;
      static_assert(handle_ok,
                    "tbk::backend: the compile policy's compile must return the method's handle: "
                    "any movable C++ type (a struct, a string, c10::IValue...), not void.");
      constexpr bool state_ok = !hook::is_member || std::is_default_constructible<Compile>::value;
      static_assert(state_ok,
                    "tbk::backend: a compile policy with a member compile is created once per "
                    "backend instance, so it must be default constructible.");
      if constexpr (traits::has_preprocess) {
        using pre = hook_traits<Compile, preprocess_hook_t>;
        constexpr bool pre_ok =
            pre::valid && !pre::is_member && pre::arity == 2 &&
            std::is_invocable_r<c10::IValue, preprocess_hook_t<Compile>,
                                const torch::jit::Module&, const compile_spec&>::value;
        static_assert(pre_ok,
                      "tbk::backend: the compile policy's preprocess must be "
                      "`static c10::IValue preprocess(const torch::jit::Module& module, const "
                      "tbk::compile_spec& spec);` (it runs at lowering time, before any backend "
                      "instance exists, so it cannot be a member).");
        return spec_ok && payload_ok && handle_ok && state_ok && pre_ok && check_supports<Compile>();
      }
      return spec_ok && payload_ok && handle_ok && state_ok && check_supports<Compile>();
    }
  }
  return false;
}

template <class Compile, class Execute>
constexpr bool check_execute_policy() {
  using traits = execute_policy_traits<Execute>;
  using hook = typename traits::hook;
  static_assert(traits::has_execute,
                "tbk::backend: the execute policy (second template argument) needs exactly one "
                "function named execute whose first parameter is the handle, e.g. `static "
                "at::Tensor execute(const MyHandle& handle, const at::Tensor& input);` (a member "
                "function of that shape makes the policy stateful; overloaded or template "
                "execute functions cannot be deduced).");
  if constexpr (traits::has_execute) {
    using handle = typename compile_policy_traits<Compile>::handle_type;
    constexpr bool params_ok =
        check_execute_params<handle>(static_cast<typename hook::args*>(nullptr));
    using result = std::decay_t<typename hook::result>;
    constexpr bool result_ok = result_caster<result>::supported;
    static_assert(result_ok,
                  "tbk::backend: the execute policy's execute returns a type tbk cannot pack; "
                  "return at::Tensor, std::tuple<...> of IValue-convertible values, "
                  "std::vector<at::Tensor> or c10::impl::GenericList, or specialize "
                  "tbk::result_caster<R>.");
    constexpr bool state_ok = !hook::is_member || std::is_default_constructible<Execute>::value;
    static_assert(state_ok,
                  "tbk::backend: an execute policy with a member execute is created once per "
                  "backend instance, so it must be default constructible.");
    return params_ok && result_ok && state_ok;
  }
  return false;
}

template <class Availability>
constexpr bool check_availability_policy() {
  using hook = hook_traits<Availability, availability_hook_t>;
  using result = decay_or_void_t<typename hook::result>;
  constexpr bool ok = hook::valid && hook::arity == 0 &&
                      (std::is_same<result, bool>::value || std::is_same<result, availability>::value) &&
                      (!hook::is_member || std::is_default_constructible<Availability>::value);
  static_assert(ok,
                "tbk::backend: the availability policy (third template argument) needs `static "
                "bool is_available();` or `static tbk::availability is_available();` (returning "
                "tbk::unavailable(\"reason\") puts the reason in the errors users see); a member "
                "function makes it stateful and the policy must then be default constructible.");
  return ok;
}

// All rules at once; tbk::backend picks an empty shell when this is false, so that a failed
// rule shows its sentence and little else.
template <class Compile, class Execute, class Availability>
constexpr bool check_policies() {
  // First: a misspelled hook (`support`, `excute`) named as such, before "needs compile".
  constexpr bool names_ok = compile_hook_names_ok<Compile>() && execute_hook_names_ok<Execute>() &&
                            availability_hook_names_ok<Availability>();
  if constexpr (!names_ok) {
    return false;
  } else {
    constexpr bool compile_ok = check_compile_policy<Compile>();
    if constexpr (compile_ok) {
      constexpr bool execute_ok = check_execute_policy<Compile, Execute>();
      constexpr bool availability_ok = check_availability_policy<Availability>();
      return execute_ok && availability_ok;
    }
    return false;
  }
}

}  // namespace detail
}  // namespace tbk
