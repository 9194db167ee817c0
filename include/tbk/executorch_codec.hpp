// tbk/executorch_codec.hpp: the bytes a tbk backend hands to ExecuTorch and reads back: the
// processed payload of one delegated subgraph (versioned) and compile-spec options. libtorch
// only, so that lowering (tbk.executorch, in Python) and the runtime (tbk/executorch.hpp) share it.
//
// Processed payload, format version 1: torch::jit::pickle_save of the tuple
//   ("tbk.executorch", 1, backend: str, method: str, payload_kind: str, payload, inputs: int,
//    outputs: int, example_inputs: List[Any])
// where payload_kind is "value" (payload: what the backend's preprocess returned, as an IValue)
// or "module" (payload: the module itself, saved with torch::jit::ExportModule, as a 1-D uint8
// tensor); inputs/outputs count the delegate call's arguments (ExecuTorch passes the inputs,
// then the runtime's outputs, in one span), 0 to max_arguments each; example_inputs are those
// preprocess was given (empty: none), which compile sees as the option "example_inputs", as in
// TorchScript (a compile spec of that name wins).
//
// A compile-spec option: key = the option's name, value = the option's value as torch.save
// writes it in Python (torch::jit::pickle_save in C++): any mix of int, float, bool, str, lists,
// dicts and tensors reads back as the IValue the compile policy sees in TorchScript.
#pragma once

#include <tbk/compile_spec.hpp>   // example_inputs_option, static_shapes_option, example_inputs_value
#include <tbk/detail/errors.hpp>  // raise, describe, current_exception_text

#include <ATen/ATen.h>                                // at::empty (bytes as a uint8 tensor)
#include <torch/csrc/jit/api/module.h>                 // torch::jit::Module
#include <torch/csrc/jit/serialization/export.h>       // torch::jit::ExportModule
#include <torch/csrc/jit/serialization/import.h>       // torch::jit::load
#include <torch/csrc/jit/serialization/pickle.h>       // torch::jit::pickle_save, pickle_load

#include <cstddef>  // std::size_t
#include <cstdint>  // int64_t
#include <cstring>  // std::memcpy
#include <sstream>  // std::stringstream (module bytes)
#include <string>   // std::string
#include <vector>   // std::vector

namespace tbk {
namespace executorch {

// The options a backend's preprocess sees for one delegated subgraph: `options` (the method's,
// as the user gave them) with its example inputs and, when `static_shapes` (the subgraph's
// inputs have the sizes fixed at export), tbk::static_shapes_option true. tbk.executorch passes
// false for a program exported with dynamic shapes (torch.export's dynamic_shapes: some input
// size is symbolic), which the runtime calls at other sizes. tbk.executorch and the kit's
// ExecuTorch leg both lower with it.
inline c10::impl::GenericDict preprocess_options(const c10::impl::GenericDict& options,
                                                 const std::vector<c10::IValue>& examples,
                                                 bool static_shapes = true) {
  c10::impl::GenericDict out = options.copy();
  if (!examples.empty()) out.insert_or_assign(example_inputs_option, detail::example_inputs_value(examples));
  if (static_shapes) out.insert_or_assign(static_shapes_option, true);
  return out;
}

inline const char* processed_format() { return "tbk.executorch"; }
inline constexpr int64_t processed_version = 1;
// At most this many inputs, and as many outputs, per delegated subgraph (a damaged payload is
// refused rather than trusted).
inline constexpr int64_t max_arguments = 1 << 16;

// What one delegated subgraph carries from lowering to ExecuTorch's init.
struct processed_method {
  std::string backend;   // the backend it was lowered for
  std::string method;    // the method the payload was made for (a subgraph is lowered as "forward")
  c10::IValue payload;   // what the compile policy takes: preprocess's result, or the module
  int64_t inputs = 0;    // the delegate call's inputs ...
  int64_t outputs = 0;   // ... and outputs
  std::vector<c10::IValue> example_inputs;  // what preprocess was given (empty: none)
};

namespace detail {

inline at::Tensor bytes_tensor(const std::string& bytes) {
  at::Tensor t = at::empty({static_cast<int64_t>(bytes.size())}, at::kByte);
  if (!bytes.empty()) std::memcpy(t.data_ptr(), bytes.data(), bytes.size());
  return t;
}

inline std::string tensor_bytes(const at::Tensor& t) {
  const at::Tensor c = t.contiguous();
  return std::string(static_cast<const char*>(c.data_ptr()), static_cast<std::size_t>(c.numel()));
}

}  // namespace detail

// The processed bytes of `method` (format version 1, above).
inline std::vector<char> encode_processed(const processed_method& method) {
  c10::IValue payload = method.payload;
  std::string kind = "value";
  if (payload.isObject()) {  // the module itself (a backend without preprocess)
    std::stringstream bytes;
    torch::jit::Module(payload.toObject()).save(bytes);
    payload = detail::bytes_tensor(bytes.str());
    kind = "module";
  }
  c10::impl::GenericList examples(c10::AnyType::get());
  for (const c10::IValue& x : method.example_inputs) examples.push_back(x);
  return torch::jit::pickle_save(c10::ivalue::Tuple::create(
      {c10::IValue(processed_format()), c10::IValue(processed_version), c10::IValue(method.backend),
       c10::IValue(method.method), c10::IValue(kind), payload, c10::IValue(method.inputs),
       c10::IValue(method.outputs), c10::IValue(examples)}));
}

// Reads what encode_processed wrote. Throws, naming `backend`, when the bytes are not a tbk
// payload, were written by a newer format, or were lowered for another backend.
inline processed_method decode_processed(const std::string& backend, const void* data, std::size_t size) {
  const std::string where = backend + ": the delegate's processed payload";
  c10::IValue read;
  try {
    const char* bytes = static_cast<const char*>(data);
    read = torch::jit::pickle_load(std::vector<char>(bytes, bytes + size));
  } catch (...) {
    tbk::detail::raise(where + " (" + std::to_string(size) + " bytes) is not tbk's format (" +
                       processed_format() + "): " + tbk::detail::current_exception_text());
  }
  // (a vector, not the tuple's inline storage, which g++ 12 warns about when indexed past 3)
  const std::vector<c10::IValue> e = read.isTuple() ? read.toTupleRef().elements().vec() : std::vector<c10::IValue>();
  if (e.size() < 2 || !e[0].isString() || e[0].toStringRef() != processed_format()) {
    tbk::detail::raise(where + " is not tbk's format (" + processed_format() + "), got " +
                       tbk::detail::describe(read));
  }
  if (!e[1].isInt() || e[1].toInt() != processed_version) {
    tbk::detail::raise(where + " has format version " + (e[1].isInt() ? std::to_string(e[1].toInt()) : "?") +
                       "; this build of tbk reads version " + std::to_string(processed_version) +
                       ": lower the model again with this tbk");
  }
  if (e.size() != 9 || !e[2].isString() || !e[3].isString() || !e[4].isString() || !e[6].isInt() ||
      !e[7].isInt() || !e[8].isList() || (e[4].toStringRef() == "module" && !e[5].isTensor()) ||
      e[6].toInt() < 0 || e[6].toInt() > max_arguments || e[7].toInt() < 0 || e[7].toInt() > max_arguments) {
    tbk::detail::raise(where + " is damaged: format version 1 is a tuple (format, version, backend, method, "
                       "payload kind, payload, inputs, outputs (0 to " + std::to_string(max_arguments) +
                       " each), example inputs), got " + tbk::detail::describe(read));
  }
  processed_method out{e[2].toStringRef(), e[3].toStringRef(), e[5], e[6].toInt(), e[7].toInt(),
                       e[8].toListRef().vec()};
  if (out.backend != backend) {
    tbk::detail::raise(where + " was lowered for backend '" + out.backend + "', not '" + backend + "'");
  }
  if (e[4].toStringRef() == "module") {
    std::istringstream bytes(detail::tensor_bytes(out.payload.toTensor()));
    out.payload = torch::jit::load(bytes)._ivalue();
  }
  return out;
}

// One compile-spec option's value from its bytes (torch.save's format). Throws, naming the
// backend and the option, when the bytes are not that format.
inline c10::IValue decode_option(const std::string& backend, const std::string& key, const void* data,
                                 std::size_t size) {
  try {
    const char* bytes = static_cast<const char*>(data);
    return torch::jit::pickle_load(std::vector<char>(bytes, bytes + size));
  } catch (...) {
    tbk::detail::raise(backend + ": compile spec '" + key + "' (" + std::to_string(size) +
                       " bytes) is not an option value as torch.save writes it (tbk.executorch "
                       "encodes options so): " + tbk::detail::current_exception_text());
  }
}

}  // namespace executorch
}  // namespace tbk
