// tbk/detail/detected.hpp: the detection idiom, in one small place.
#pragma once

#include <type_traits>  // std::void_t, std::true_type

namespace tbk::detail {

template <class AlwaysVoid, template <class...> class Op, class... Args>
struct detector : std::false_type {};

template <template <class...> class Op, class... Args>
struct detector<std::void_t<Op<Args...>>, Op, Args...> : std::true_type {};

// is_detected<Op, Args...>: true when Op<Args...> names a valid type.
template <template <class...> class Op, class... Args>
inline constexpr bool is_detected = detector<void, Op, Args...>::value;

// A false that depends on T, for static_asserts in templates that must not fire early.
template <class...>
inline constexpr bool dependent_false = false;

}  // namespace tbk::detail
