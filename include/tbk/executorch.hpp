// tbk/executorch.hpp: a tbk::backend<Compile, Execute, Availability> as an ExecuTorch delegate,
// from the same policies: TBK_REGISTER_EXECUTORCH_BACKEND(add_sub_backend, "custom_backend")
// registers it with ExecuTorch's runtime (executorch::runtime::register_backend) when its library
// loads. Opt-in: needs ExecuTorch's headers and libexecutorch (the executorch wheel's), besides
// libtorch, in the same process; docs/executorch.md.
//
//   ExecuTorch (BackendInterface)      tbk
//   is_available()                      the availability policy
//   init(context, processed, specs)     compile(method_spec, payload): the payload and method
//                                       from `processed` (tbk/executorch_codec.hpp), options
//                                       from the compile specs
//   execute(context, handle, args)      execute(handle, inputs...): args are the inputs, then
//                                       the runtime's outputs, which the results are written to
//   destroy(handle)                     the handle's end
//
// No exception crosses into the runtime: a failure is an ExecuTorch error code and a log line
// (ET_LOG) with tbk's text: backend, method, argument, expected, got.
#pragma once

#include <tbk/backend.hpp>
#include <tbk/detail/arguments.hpp>  // count_text
#include <tbk/detail/preprocessor.hpp>  // TBK_DETAIL_CONCAT
#include <tbk/executorch_codec.hpp>

#include <executorch/runtime/backend/interface.h>           // BackendInterface, register_backend
#include <executorch/runtime/core/exec_aten/util/tensor_util.h>  // resize_tensor
#include <executorch/runtime/platform/log.h>                // ET_LOG

#include <ATen/ATen.h>  // at::from_blob

#include <algorithm>  // std::min
#include <cstdint>    // int64_t
#include <exception>  // std::exception
#include <string>     // std::string
#include <vector>     // std::vector

namespace tbk {
namespace executorch {

namespace et = ::executorch::runtime;

// One delegated subgraph, ready to run: what init made, destroy ends.
struct delegate_handle {
  c10::IValue handle;  // the compile policy's handle, boxed as tbk's TorchScript side boxes it
  std::string method;  // the method it was compiled as
  int64_t inputs = 0;
  int64_t outputs = 0;
};

namespace detail {

inline c10::ScalarType torch_dtype(::executorch::aten::ScalarType t) {
  return static_cast<c10::ScalarType>(static_cast<int8_t>(t));  // the same numbering
}

// An ExecuTorch tensor as an at::Tensor over the same memory (no copy).
inline at::Tensor tensor_view(const ::executorch::aten::Tensor& t) {
  std::vector<int64_t> sizes(t.sizes().begin(), t.sizes().end());
  std::vector<int64_t> strides(t.strides().begin(), t.strides().end());
  return at::from_blob(t.mutable_data_ptr(), sizes, strides, at::TensorOptions().dtype(torch_dtype(t.scalar_type())));
}

// An argument of the delegate call as the IValue an execute policy reads.
inline c10::IValue argument_value(const et::EValue& v, const std::string& site, std::size_t index) {
  if (v.isTensor()) return tensor_view(v.toTensor());
  if (v.isInt()) return v.toInt();
  if (v.isDouble()) return v.toDouble();
  if (v.isBool()) return v.toBool();
  if (v.isNone()) return c10::IValue();
  tbk::detail::raise(site + ": input " + std::to_string(index) +
                     " is an ExecuTorch value tbk does not pass on (tag " +
                     std::to_string(static_cast<int>(v.tag)) + "); tensors, ints, floats, bools and None pass");
}

// The tensors of an execute policy's result, in order (a tensor, or a tuple or list of them).
inline void result_tensors(const c10::IValue& v, std::vector<at::Tensor>& out, const std::string& site) {
  if (v.isTensor()) {
    out.push_back(v.toTensor());
  } else if (v.isTuple()) {
    for (const c10::IValue& e : v.toTupleRef().elements()) result_tensors(e, out, site);
  } else if (v.isList()) {
    for (const c10::IValue& e : v.toListRef()) result_tensors(e, out, site);
  } else {
    tbk::detail::raise(site + ": the execute policy returned " + tbk::detail::describe(v) +
                       "; an ExecuTorch delegate's outputs are tensors");
  }
}

// Writes `result` into the runtime's output tensor `out`, resizing it when its shape differs
// (a dynamic shape) and the runtime allows.
inline void write_output(const at::Tensor& result, ::executorch::aten::Tensor& out, const std::string& site,
                         std::size_t index) {
  const std::string which = site + ": output " + std::to_string(index);
  if (torch_dtype(out.scalar_type()) != result.scalar_type()) {
    tbk::detail::raise(which + ": the execute policy returned " + std::string(c10::toString(result.scalar_type())) +
                       ", the program expects " + c10::toString(torch_dtype(out.scalar_type())));
  }
  std::vector<::executorch::aten::SizesType> sizes(result.sizes().begin(), result.sizes().end());
  const std::vector<int64_t> planned(out.sizes().begin(), out.sizes().end());
  if (planned.size() != sizes.size()) {
    tbk::detail::raise(which + ": the execute policy returned shape " + c10::str(result.sizes()) +
                       ", the program's output has " + std::to_string(planned.size()) + " dimensions " +
                       c10::str(c10::IntArrayRef(planned)));
  }
  bool same = true;
  for (std::size_t d = 0; same && d < sizes.size(); ++d) same = planned[d] == sizes[d];
  if (!same && et::resize_tensor(out, {sizes.data(), sizes.size()}) != et::Error::Ok) {
    tbk::detail::raise(which + ": the execute policy returned shape " + c10::str(result.sizes()) +
                       ", and the program's output " + c10::str(c10::IntArrayRef(planned)) +
                       " cannot take it (its shape is static, or its bound smaller)");
  }
  tensor_view(out).copy_(result);
}

// A message as printable ASCII: any other byte as \xNN. ExecuTorch's Python runtime hands each
// log line to Python as UTF-8, and a line that is not (bytes a damaged payload put in a
// message, or a character cut in two where a long line breaks) ends the process there.
inline std::string printable(const std::string& text) {
  static constexpr char hex[] = "0123456789abcdef";
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if ((byte >= 0x20 && byte < 0x7f) || byte == '\n' || byte == '\t') {
      out += c;
    } else {
      out += {'\\', 'x', hex[byte >> 4], hex[byte & 15]};
    }
  }
  return out;
}

// One failure in ExecuTorch's log, as printable ASCII: ET_LOG cuts a message at 256 bytes, so a
// longer text goes out as several lines of at most 192 bytes, broken after a space where one is
// in the line's last third (a name such as aten::_convolution stays whole), the later lines
// marked as its continuation.
inline void log_failure(const char* hook, const std::string& message) {
  const std::string text = printable(message);
  constexpr std::size_t piece = 192;
  std::size_t at = 0;
  do {
    std::size_t length = std::min(piece, text.size() - at);
    if (at + length < text.size()) {
      const std::size_t space = text.rfind(' ', at + length - 1);
      if (space != std::string::npos && space >= at + piece * 2 / 3) length = space + 1 - at;
    }
    const std::string part = text.substr(at, length);
    if (at == 0) {
      ET_LOG(Error, "tbk %s: %s", hook, part.c_str());
    } else {
      ET_LOG(Error, "tbk %s (continued): %s", hook, part.c_str());
    }
    at += length;
  } while (at < text.size());
}

}  // namespace detail

// The ExecuTorch delegate of tbk backend `Backend` registered as `name`.
template <class Backend>
class delegate final : public et::BackendInterface {
 public:
  explicit delegate(std::string name) : name_(std::move(name)), backend_(c10::make_intrusive<Backend>()) {
    backend_->set_name(name_);  // tbk's messages name it
  }

  const std::string& name() const { return name_; }

  bool is_available() const override {
    const availability answer = backend_->availability_report();
    if (!answer.available()) detail::log_failure("is_available", name_ + " is not available: " + answer.reason());
    return answer.available();
  }

  et::Result<et::DelegateHandle*> init(et::BackendInitContext& /*context*/, et::FreeableBuffer* processed,
                                       et::ArrayRef<et::CompileSpec> specs) const override {
    processed_method method;
    try {
      method = decode_processed(name_, processed->data(), processed->size());
    } catch (...) {  // not tbk's bytes, a newer format, or another backend's
      detail::log_failure("init", tbk::detail::current_exception_text());
      return et::Error::DelegateInvalidCompatibility;
    }
    try {
      processed->Free();  // compile took what it needs
      c10::impl::GenericDict options = tbk::detail::make_any_dict();
      for (const et::CompileSpec& spec : specs) {
        options.insert_or_assign(spec.key, decode_option(name_, spec.key, spec.value.buffer, spec.value.nbytes));
      }
      if (!method.example_inputs.empty() && !options.contains(example_inputs_option)) {
        options.insert(example_inputs_option, tbk::detail::example_inputs_value(method.example_inputs));
      }
      c10::impl::GenericDict spec = tbk::detail::make_any_dict();
      spec.insert(method.method, options);
      c10::impl::GenericDict handles = backend_->compile(method.payload, spec);
      return new delegate_handle{handles.at(method.method), method.method, method.inputs, method.outputs};
    } catch (...) {
      detail::log_failure("init", tbk::detail::current_exception_text());
      return et::Error::InvalidProgram;
    }
  }

  et::Error execute(et::BackendExecutionContext& /*context*/, et::DelegateHandle* handle,
                    et::Span<et::EValue*> args) const override {
    try {
      auto* h = static_cast<delegate_handle*>(handle);
      if (h == nullptr) tbk::detail::raise(name_ + ": execute without a handle (init failed?)");
      const std::string site = name_ + "." + h->method;
      if (static_cast<int64_t>(args.size()) != h->inputs + h->outputs) {
        tbk::detail::raise(site + ": the delegate call has " + std::to_string(args.size()) +
                           " arguments; the subgraph was lowered with " + tbk::detail::count_text(h->inputs) +
                           " and " + std::to_string(h->outputs) + (h->outputs == 1 ? " output" : " outputs"));
      }
      c10::impl::GenericList inputs(c10::AnyType::get());
      for (int64_t i = 0; i < h->inputs; ++i) inputs.push_back(detail::argument_value(*args[i], site, i));
      const c10::impl::GenericList results = backend_->execute(h->handle, inputs);
      std::vector<at::Tensor> tensors;
      for (const c10::IValue& r : results) detail::result_tensors(r, tensors, site);
      if (static_cast<int64_t>(tensors.size()) != h->outputs) {
        tbk::detail::raise(site + ": the execute policy returned " + std::to_string(tensors.size()) +
                           " tensors; the subgraph has " + std::to_string(h->outputs) + " outputs");
      }
      for (int64_t k = 0; k < h->outputs; ++k) {
        et::EValue* out = args[h->inputs + k];
        if (!out->isTensor()) tbk::detail::raise(site + ": output " + std::to_string(k) + " is not a tensor");
        ::executorch::aten::Tensor t = out->toTensor();
        detail::write_output(tensors[k], t, site, k);
      }
      return et::Error::Ok;
    } catch (...) {
      detail::log_failure("execute", tbk::detail::current_exception_text());
      return et::Error::InvalidArgument;
    }
  }

  void destroy(et::DelegateHandle* handle) const override { delete static_cast<delegate_handle*>(handle); }

 private:
  std::string name_;
  c10::intrusive_ptr<Backend> backend_;
};

// Registers `Backend` with ExecuTorch's runtime as `name` (the name the .pte file was lowered
// for: tbk.executorch.partitioner(name)). Each registration makes a delegate that lives as long as
// the process and owns the name ExecuTorch keeps (a caller's string may go). Returns
// Error::RegistrationAlreadyRegistered when ExecuTorch has a backend of that name already (it
// keeps the first), else ExecuTorch's answer.
template <class Backend>
et::Error register_executorch_backend(const std::string& name) {
  // ExecuTorch's own answer to a second registration is a bare InvalidArgument: tbk looks first
  if (et::get_backend_class(name.c_str()) != nullptr) return et::Error::RegistrationAlreadyRegistered;
  auto* instance = new delegate<Backend>(name);  // never freed: the runtime may use it until exit
  const et::Error status = et::register_backend({instance->name().c_str(), instance});
  if (status != et::Error::Ok) delete instance;
  return status;
}

namespace detail {

// Registers at load time, and says so on stderr when ExecuTorch refused.
template <class Backend>
struct executorch_registration {
  explicit executorch_registration(const char* name) {
    const et::Error status = register_executorch_backend<Backend>(std::string(name));
    if (status != et::Error::Ok) {
      ET_LOG(Error, "tbk: registering backend '%s' with ExecuTorch failed (error 0x%x%s)", name,
             static_cast<unsigned>(status),
             status == et::Error::RegistrationAlreadyRegistered ? ": a backend of that name is registered already"
                                                                 : "");
    }
  }
};

}  // namespace detail
}  // namespace executorch
}  // namespace tbk

// In a backend library's registration TU, beside TBK_REGISTER_BACKEND: registers `Backend` as
// the ExecuTorch delegate `name` when the library loads.
#define TBK_REGISTER_EXECUTORCH_BACKEND(Backend, name)                          \
  static const ::tbk::executorch::detail::executorch_registration<Backend>      \
      TBK_DETAIL_CONCAT(tbk_detail_executorch_registered_, __COUNTER__)(name)
