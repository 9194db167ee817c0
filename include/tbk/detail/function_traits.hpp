// tbk/detail/function_traits.hpp: the parameters and result of a policy hook, static or member.
#pragma once

#include <tuple>  // std::tuple

namespace tbk::detail {

// Primary template: not a single, non-template function (missing, overloaded or a template).
// Its members are still defined, so that checks on an invalid hook add no errors of their own.
template <class F>
struct function_traits {
  static constexpr bool valid = false;
  static constexpr bool is_member = false;
  using result = void;
  using args = std::tuple<>;
  static constexpr std::size_t arity = 0;
};

template <class R, class... Args>
struct function_traits<R (*)(Args...)> {
  static constexpr bool valid = true;
  static constexpr bool is_member = false;
  using result = R;
  using args = std::tuple<Args...>;
  static constexpr std::size_t arity = sizeof...(Args);
};

template <class R, class... Args>
struct function_traits<R (*)(Args...) noexcept> : function_traits<R (*)(Args...)> {};

template <class R, class C, class... Args>
struct function_traits<R (C::*)(Args...)> : function_traits<R (*)(Args...)> {
  static constexpr bool is_member = true;
};

template <class R, class C, class... Args>
struct function_traits<R (C::*)(Args...) const> : function_traits<R (C::*)(Args...)> {};

template <class R, class C, class... Args>
struct function_traits<R (C::*)(Args...) noexcept> : function_traits<R (C::*)(Args...)> {};

template <class R, class C, class... Args>
struct function_traits<R (C::*)(Args...) const noexcept> : function_traits<R (C::*)(Args...)> {};

// The I-th parameter type of a hook (void when there is none).
template <class Traits, std::size_t I, class = void>
struct param_at {
  using type = void;
};
template <class Traits, std::size_t I>
struct param_at<Traits, I, std::enable_if_t<(I < std::tuple_size<typename Traits::args>::value)>> {
  using type = std::tuple_element_t<I, typename Traits::args>;
};

// Calls a hook: a static function, or a member function on `object`.
template <auto Hook, class Object, class... Args>
decltype(auto) invoke_hook(Object& object, Args&&... args) {
  if constexpr (function_traits<decltype(Hook)>::is_member) {
    return (object.*Hook)(std::forward<Args>(args)...);
  } else {
    (void)object;
    return Hook(std::forward<Args>(args)...);
  }
}

}  // namespace tbk::detail
