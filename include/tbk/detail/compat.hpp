// tbk/detail/compat.hpp: every difference between the torch releases tbk supports (1.13 to 2.13),
// keyed on TORCH_VERSION_MAJOR/MINOR, so no other file needs an #if on the torch version.
#pragma once

#include <c10/util/Exception.h>  // c10::Error, c10::TypeError
#include <torch/csrc/api/include/torch/version.h>  // TORCH_VERSION_MAJOR, TORCH_VERSION_MINOR

#include <string>       // std::string

// The torch release as one number: 1.13 -> 113, 2.13 -> 213.
#define TBK_TORCH_VERSION (TORCH_VERSION_MAJOR * 100 + TORCH_VERSION_MINOR)

#if TBK_TORCH_VERSION < 113
#error "torch-backend-kit needs torch 1.13 or newer"
#endif

// An installed tbk records the torch it was configured with (its pkg-config Cflags and CMake
// package define TBK_CONFIGURED_TORCH_VERSION); compiling against another torch is refused here,
// before the mismatch turns into link errors.
#if defined(TBK_CONFIGURED_TORCH_VERSION) && TBK_CONFIGURED_TORCH_VERSION != TBK_TORCH_VERSION
#error "torch-backend-kit was configured for another torch release than the one being compiled against: TBK_CONFIGURED_TORCH_VERSION (major*100+minor) differs from TBK_TORCH_VERSION; reinstall torch-backend-kit configured for this torch (meson setup -Dtorch=system or -Dtorch=python)"
#endif

namespace tbk::detail {

// c10::Error's (message, backtrace) constructor took a std::string backtrace up to 2.3 and a
// lazily computed Backtrace object since 2.4 (pytorch/pytorch#125682); an empty one either way,
// so what() is exactly the message.
#if TBK_TORCH_VERSION >= 204
inline c10::Error make_error(std::string message) { return c10::Error(std::move(message), nullptr); }
inline c10::TypeError make_type_error(std::string message) {
  return c10::TypeError(std::move(message), nullptr);
}
#else
inline c10::Error make_error(std::string message) { return c10::Error(std::move(message), ""); }
inline c10::TypeError make_type_error(std::string message) {
  return c10::TypeError(std::move(message), "");
}
#endif

}  // namespace tbk::detail
