// load_onednn.cpp: libtbk_onednn.so, the library users load to register tbk_onednn. It loads
// Debian's oneDNN isolated from any other oneDNN in the process, then the backend itself
// (libtbk_onednn_backend.so, beside this library), which registers "tbk_onednn".
//
// Why: pip's torch carries oneDNN 3.x inside libtorch_cpu and exports some of its weak symbols
// (std::call_once trampolines of gemm_info_t<...>::jit_init among them); Debian's oneDNN 2.6
// exports the same names. Loaded the ordinary way after torch, oneDNN 2.6 binds its own
// references to torch's copies and its gemm-based kernels fail ("unimplemented"). Loaded with
// RTLD_DEEPBIND, a library looks up its own symbols first: each oneDNN keeps to itself. With
// Debian's torch, libtorch_cpu links Debian's oneDNN itself: it is then loaded already, one copy,
// and nothing is done (so AddressSanitizer, which refuses RTLD_DEEPBIND, is never asked).
#include <tbk/register.hpp>  // tbk::report_load_failure

#include <dlfcn.h>  // dlopen, dladdr, dlerror

#include <string>  // std::string

#ifndef TBK_ONEDNN_DNNL_SONAME
#error "TBK_ONEDNN_DNNL_SONAME: the soname of the oneDNN the backend was built against (set by meson.build)"
#endif

namespace {

// The directory of this library, with a trailing slash.
std::string directory_of_this_library() {
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(&directory_of_this_library), &info) == 0 || info.dli_fname == nullptr) return "";
  const std::string path = info.dli_fname;
  const std::size_t slash = path.rfind('/');
  return slash == std::string::npos ? "" : path.substr(0, slash + 1);
}

// A failure, with the loader's reason.
void fail(const std::string& what) {
  const char* reason = dlerror();
  tbk::report_load_failure("libtbk_onednn.so: " + what + ": " + (reason ? reason : "unknown error"));
}

void load_backend() {
  if (dlopen(TBK_ONEDNN_DNNL_SONAME, RTLD_NOW | RTLD_NOLOAD) == nullptr &&
      dlopen(TBK_ONEDNN_DNNL_SONAME, RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND) == nullptr) {
    return fail("could not load oneDNN (" TBK_ONEDNN_DNNL_SONAME ", Debian's libdnnl2)");
  }
  const std::string backend = directory_of_this_library() + "libtbk_onednn_backend.so";
  // RTLD_LOCAL: global would put oneDNN, its dependency, in the global scope, where libraries
  // loaded later could bind to its symbols; registration needs nothing global
  if (dlopen(backend.c_str(), RTLD_NOW | RTLD_LOCAL) == nullptr) fail("could not load " + backend);
}

[[maybe_unused]] const bool loaded = (load_backend(), true);

}  // namespace
