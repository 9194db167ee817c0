// tbk/load.hpp: loading models that use backends, with a clear error when a backend the archive
// needs is not registered in this process (instead of PyTorch's "Unknown type name
// '__torch__.torch.classes.__backends__.NAME'").
#pragma once

#include <tbk/detail/errors.hpp>
#include <tbk/detail/registry.hpp>

#include <caffe2/serialize/inline_container.h>  // caffe2::serialize::PyTorchStreamReader
#include <torch/csrc/jit/mobile/import.h>        // torch::jit::_load_for_mobile
#include <torch/csrc/jit/serialization/import.h> // torch::jit::load

#include <algorithm>  // std::find
#include <cctype>     // std::isalnum
#include <istream>    // std::istream
#include <string>     // std::string
#include <vector>     // std::vector

namespace tbk {
namespace detail {

// The backend names the TorchScript code in an archive refers to, in order of first mention.
inline std::vector<std::string> backends_named_in(caffe2::serialize::PyTorchStreamReader& reader) {
  static const std::string marker = std::string("__torch__.torch.classes.") + backends_namespace() + ".";
  std::vector<std::string> names;
  for (const std::string& record : reader.getAllRecords()) {
    if (record.rfind("code/", 0) != 0 || record.size() < 3 ||
        record.compare(record.size() - 3, 3, ".py") != 0) {
      continue;
    }
    auto [data, size] = reader.getRecord(record);
    const std::string code(static_cast<const char*>(data.get()), size);
    for (auto at = code.find(marker); at != std::string::npos; at = code.find(marker, at + 1)) {
      std::size_t end = at + marker.size();
      while (end < code.size() &&
             (std::isalnum(static_cast<unsigned char>(code[end])) || code[end] == '_')) {
        ++end;
      }
      std::string name = code.substr(at + marker.size(), end - at - marker.size());
      if (!name.empty() && std::find(names.begin(), names.end(), name) == names.end()) {
        names.push_back(std::move(name));
      }
    }
  }
  return names;
}

// Throws, naming every missing backend, unless each backend the archive needs is registered.
inline void check_backends_registered(caffe2::serialize::PyTorchStreamReader& reader,
                                      const std::string& what) {
  std::vector<std::string> missing;
  for (const std::string& name : backends_named_in(reader)) {
    if (torch::getCustomClass(backend_class_name(name)) == nullptr) missing.push_back(name);
  }
  if (missing.empty()) return;
  std::string text = "tbk::load: " + what + " needs " +
                     (missing.size() == 1 ? "a backend that is" : "backends that are") +
                     " not registered in this process: " + joined_names(missing) +
                     registration_hint(missing.size() > 1);
  raise(std::move(text));
}

inline void check_backends_registered(const std::string& path) {
  caffe2::serialize::PyTorchStreamReader reader(path);
  check_backends_registered(reader, path);
}

template <class Load>
auto load_checked(std::istream& in, const std::string& what, Load&& load) {
  const auto start = in.tellg();
  {
    caffe2::serialize::PyTorchStreamReader reader(&in);
    check_backends_registered(reader, what);
  }
  in.clear();
  in.seekg(start);
  return load(in);
}

}  // namespace detail

// torch::jit::load, after checking that every backend the archive uses is registered.
inline torch::jit::Module load(const std::string& path) {
  detail::check_backends_registered(path);
  return torch::jit::load(path);
}

inline torch::jit::Module load(std::istream& in) {
  return detail::load_checked(in, "the model", [](std::istream& s) { return torch::jit::load(s); });
}

// torch::jit::_load_for_mobile (the lite interpreter), with the same check.
inline torch::jit::mobile::Module load_for_mobile(const std::string& path) {
  detail::check_backends_registered(path);
  return torch::jit::_load_for_mobile(path);
}

inline torch::jit::mobile::Module load_for_mobile(std::istream& in) {
  return detail::load_checked(in, "the model",
                              [](std::istream& s) { return torch::jit::_load_for_mobile(s); });
}

}  // namespace tbk
