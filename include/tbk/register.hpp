// tbk/register.hpp: registering a tbk backend under a name: TBK_REGISTER_BACKEND in a
// translation unit of the consumer's build, or tbk::register_backend<B>(name) called explicitly.
#pragma once

#include <tbk/backend.hpp>
#include <tbk/detail/preprocessor.hpp>  // TBK_DETAIL_CONCAT, TBK_DETAIL_STRINGIFY
#include <tbk/detail/registry.hpp>
#include <tbk/pt2.hpp>                   // register_region_support (torch.export, torch.compile)

#include <c10/util/Exception.h>  // TORCH_WARN

#include <mutex>   // std::lock_guard
#include <string>  // std::string
#include <vector>  // std::vector

namespace tbk {
namespace detail {

template <class Backend>
c10::intrusive_ptr<backend_base> make_backend() {
  return c10::make_intrusive<Backend>();
}

template <class Backend>
backend_parts parts_of() {
  return {&make_backend<Backend>, &Backend::preprocess, &Backend::check_methods,
          Backend::supports_hook(), Backend::fast_entry_points()};
}

template <class Backend>
constexpr bool check_registrable() {
  constexpr bool ok = std::is_base_of<backend_base, Backend>::value;
  static_assert(ok,
                "tbk::register_backend<B>: B must be a tbk::backend<Compile, Execute, "
                "Availability> whose policies pass tbk's checks.");
  return ok;
}

// TBK_REGISTER_BACKEND's worker: registers when the library or program is loaded.
template <class Backend>
bool register_at_load(const char* name, const char* where) {
  if constexpr (check_registrable<Backend>()) {
    pt2::register_region_support();
    return register_at_load(name, parts_of<Backend>(), where);
  } else {
    return false;
  }
}

}  // namespace detail

// Registers Backend's class and its preprocess function with PyTorch under `name`, both or
// neither. Throws a c10::Error when the name is taken or invalid. Safe under static linking:
// call it from code that is linked in (static initializers of unreferenced objects are not).
template <class Backend>
void register_backend(const std::string& name) {
  if constexpr (detail::check_registrable<Backend>()) {
    pt2::register_region_support();
    detail::register_parts(name, detail::parts_of<Backend>());
  }
}

// The names registered through tbk in this process, in registration order.
inline std::vector<std::string> registered_backends() { return detail::registered_names(); }

// For a library that loads a backend's own library itself (tbk_onednn's libtbk_onednn.so, which
// isolates oneDNN first): a failure to load it, printed now as a warning and kept, so that
// tbk::lower and tbk::load add it to their "backend ... is not registered" errors. Never throws.
inline void report_load_failure(const std::string& text) {
  TORCH_WARN(text);
  std::lock_guard<std::mutex> lock(detail::registration_mutex());
  detail::record_failure(text);
}

}  // namespace tbk

// Registers Backend (a type name without unparenthesized commas: use an alias) as `name` when
// the library or program that contains this line is loaded. A failure is reported as a warning
// and by tbk::lower / tbk::load, never by ending the process.
#define TBK_REGISTER_BACKEND(Backend, name)                                                 \
  static const bool TBK_DETAIL_CONCAT(tbk_detail_registered_, __COUNTER__) =                \
      ::tbk::detail::register_at_load<Backend>((name),                                       \
                                               __FILE__ ":" TBK_DETAIL_STRINGIFY(__LINE__))
