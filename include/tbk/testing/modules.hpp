// tbk/testing/modules.hpp: what the conformance kit (tbk/testing.hpp) does with lowered
// modules: run a method in the full and the lite interpreter, round-trip an archive the ways
// users do, and reach the backend object below a natively lowered module. Non-template.
#pragma once

#include <tbk/detail/errors.hpp>     // tbk::detail::raise
#include <tbk/detail/torchbind.hpp>  // tbk::detail::backend_class_name
#include <tbk/load.hpp>              // tbk::load, tbk::load_for_mobile

#include <torch/csrc/jit/api/module.h>      // torch::jit::Module
#include <torch/csrc/jit/mobile/module.h>   // torch::jit::mobile::Module
#include <torch/custom_class.h>             // torch::getCustomClass

#include <cstdio>      // std::remove
#include <filesystem>  // std::filesystem::temp_directory_path
#include <sstream>     // std::stringstream
#include <string>      // std::string
#include <vector>      // std::vector

#if defined(__unix__) || defined(__APPLE__)
#include <unistd.h>  // getpid
#endif

namespace tbk::testing {

// How a lowered module reaches the kit's checks after lowering.
enum class kit_archive {
  none,       // the module tbk::lower returned
  memory,     // saved into memory, loaded with tbk::load
  file,       // saved to a file, loaded with tbk::load(path)
  lite,       // saved with _save_for_mobile, loaded with tbk::load_for_mobile
};

inline const char* archive_name(kit_archive a) {
  switch (a) {
    case kit_archive::none: return "as lowered";
    case kit_archive::memory: return "after save and load in memory";
    case kit_archive::file: return "after save and load through a file";
    case kit_archive::lite: return "in the lite interpreter (_save_for_mobile, _load_for_mobile)";
  }
  return "";
}

// A module to call: a full TorchScript module, or a lite interpreter one.
class kit_runnable {
 public:
  explicit kit_runnable(torch::jit::Module m) : full_(std::move(m)) {}
  explicit kit_runnable(torch::jit::mobile::Module m) : lite_(std::move(m)) {}

  c10::IValue run(const std::string& method, std::vector<c10::IValue> inputs) {
    if (lite_) return lite_->get_method(method)(std::move(inputs));
    return full_->get_method(method)(std::move(inputs));
  }

 private:
  c10::optional<torch::jit::Module> full_;  // one of the two
  c10::optional<torch::jit::mobile::Module> lite_;
};

// A file name in the temporary directory for the kit's archives, unique in this process.
inline std::string kit_temp_path(const std::string& backend) {
  static int counter = 0;
  std::string pid;
#if defined(__unix__) || defined(__APPLE__)
  pid = std::to_string(getpid());
#endif
  return (std::filesystem::temp_directory_path() /
          ("tbk-kit-" + backend + "-" + pid + "-" + std::to_string(counter++) + ".pt"))
      .string();
}

// `lowered`, as it comes back from `archive`.
inline kit_runnable through_archive(const torch::jit::Module& lowered, kit_archive archive,
                                    const std::string& backend) {
  switch (archive) {
    case kit_archive::none: return kit_runnable(lowered);
    case kit_archive::memory: {
      std::stringstream bytes;
      lowered.save(bytes);
      return kit_runnable(tbk::load(bytes));
    }
    case kit_archive::file: {
      const std::string path = kit_temp_path(backend);
      struct remove_at_exit {
        const std::string& path;
        ~remove_at_exit() { std::remove(path.c_str()); }
      } cleanup{path};
      lowered.save(path);
      return kit_runnable(tbk::load(path));
    }
    case kit_archive::lite: {
      std::stringstream bytes;
      lowered._save_for_mobile(bytes);
      return kit_runnable(tbk::load_for_mobile(bytes));
    }
  }
  detail::raise("tbk kit: unknown archive kind");
}

// Whether tbk registered typed methods for `backend`, so that it can be lowered on the fast path.
inline bool has_fast_path(const std::string& backend) {
  auto cls = torch::getCustomClass(detail::backend_class_name(backend));
  if (!cls) return false;
  for (torch::jit::Function* m : cls->methods()) {
    if (m->name().rfind("__tbk_execute_", 0) == 0) return true;
  }
  return false;
}

// Calls the backend's execute(handle, inputs) below a natively lowered module, for `method`: the
// untyped entry that PyTorch's generated code calls, so the inputs reach the backend unchecked.
inline c10::IValue call_backend_execute(const torch::jit::Module& lowered,
                                        const std::string& method,
                                        const std::vector<c10::IValue>& inputs) {
  if (!lowered.hasattr("__loweredModule__")) {
    detail::raise("tbk kit: the module has no __loweredModule__; lower it natively first");
  }
  const torch::jit::Module inner = lowered.attr("__loweredModule__").toModule();
  const c10::IValue backend = inner.attr("__backend");
  const c10::IValue handle = inner.attr("__handles").toGenericDict().at(method);
  c10::impl::GenericList list(c10::AnyType::get());
  for (const c10::IValue& v : inputs) list.push_back(v);
  torch::jit::Object object(backend.toObject());
  return object.get_method("execute")({handle, list});
}

}  // namespace tbk::testing
