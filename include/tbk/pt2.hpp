// tbk/pt2.hpp: tbk backends in PT2 programs (torch.export's ExportedProgram and .pt2 files, and
// graphs torch.compile runs): the torchbind class tbk.Region, one region lowered to a backend
// (its processed payload, compiled when it is made or loaded), and the operator
// tbk::call_region(Tensor[] inputs, Region region) -> Tensor[] that runs it, as Torch-TensorRT's
// engine and execute_engine do. Registered once per process, by the first tbk backend that
// registers (tbk/register.hpp); tbk.export and tbk.compile (Python) make the regions.
//
//   PT2                                   tbk
//   Region(backend, processed, options)   compile(method_spec, payload): the payload and method
//                                         from `processed` (tbk/executorch_codec.hpp), the options
//   call_region(inputs, region)           execute(handle, inputs...): the results, as tensors
//   torch.export.save / load              __getstate__ / __setstate__ (compiled again on load)
//
// Every failure is a c10::Error naming the backend, the region (the option tbk::region_option,
// which tbk.export sets: "region 0 of forward: aten::conv2d (model.py:12), ...") and what was
// expected; a saved program whose backend is not registered names it, as tbk::load does.
#pragma once

#include <tbk/executorch_codec.hpp>  // decode_processed, bytes (the processed payload)
#include <tbk/detail/errors.hpp>     // raise, describe, current_exception_text
#include <tbk/detail/registry.hpp>   // find_registered, registration_hint, registration_mutex
#include <tbk/detail/torchbind.hpp>  // make_any_dict, any_dict_type

#include <ATen/core/dispatch/Dispatcher.h>  // c10::Dispatcher (is the operator there?)
#include <torch/custom_class.h>             // torch::class_, torch::getCustomClass
#include <torch/library.h>                  // torch::Library

#include <memory>   // std::make_shared
#include <mutex>    // std::lock_guard
#include <string>   // std::string
#include <utility>  // std::move
#include <vector>   // std::vector

namespace tbk {
namespace pt2 {

// The class's and the operator's names, and the version of the state a Region saves.
inline const char* region_class_name() { return "__torch__.torch.classes.tbk.Region"; }
inline const char* call_region_name() { return "tbk::call_region"; }
inline constexpr int64_t region_state_version = 1;

namespace detail {

using tbk::detail::raise;

// One region, ready to run: what the state says, and what compiling it made. Lives in slot 0 of
// a Region object as a capsule (read with static_cast only, as backends are: every library of
// the process may have its own copy of this type).
struct region_state : torch::CustomClassHolder {
  std::string backend;
  at::Tensor processed;  // uint8: the processed payload, as lowered
  at::Tensor options;    // uint8: the user's options, a Dict[str, Any] as torch.save writes it
  std::string meta;      // for the Python side (its outputs' shapes, for fake tensors); opaque here
  std::string method;    // from the payload
  std::string origin;    // the region, as its errors name it (tbk::region_option), or ""
  int64_t inputs = 0;
  int64_t outputs = 0;
  c10::IValue instance;  // an object of the backend's torchbind class
  c10::IValue handle;    // compile's handle for `method`
  c10::ClassTypePtr cls;
};

inline region_state& state_of(const c10::IValue& self) {
  const c10::IValue& slot = self.toObjectRef().getSlot(0);
  if (!slot.isCapsule()) raise("tbk.Region: the region was not made (no state)");
  return *static_cast<region_state*>(
      static_cast<torch::CustomClassHolder*>(slot.toCapsule().get()));
}

inline std::string site_of(const region_state& s) {
  return s.backend + "." + s.method + (s.origin.empty() ? std::string() : " (" + s.origin + ")");
}

// Runs a method of the backend's class on `stack` (self first); its result.
inline c10::IValue run_method(const region_state& s, const char* name, torch::jit::Stack stack) {
  s.cls->getMethod(name).run(stack);
  return torch::jit::pop(stack);
}

// Decodes `processed`, makes a backend object and compiles the method, as ExecuTorch's init does
// (tbk/executorch.hpp).
inline c10::intrusive_ptr<region_state> make_state(std::string backend, at::Tensor processed, at::Tensor options,
                                                   std::string meta) {
  auto s = c10::make_intrusive<region_state>();
  s->backend = std::move(backend);
  s->meta = std::move(meta);
  if (processed.scalar_type() != at::kByte || processed.dim() != 1 || options.scalar_type() != at::kByte ||
      options.dim() != 1) {
    raise("tbk.Region(" + s->backend + "): the processed payload and the options must be 1-D uint8 tensors, got " +
          tbk::detail::describe(processed) + " and " + tbk::detail::describe(options));
  }
  s->processed = processed.contiguous();
  s->options = options.contiguous();
  const auto registered = tbk::detail::find_registered(s->backend);
  if (!registered) {
    raise("tbk.Region: the program has a region lowered to backend '" + s->backend +
          "', which is not registered in this process" + tbk::detail::registration_hint(false));
  }
  s->cls = registered->cls;
  const executorch::processed_method method =
      executorch::decode_processed(s->backend, s->processed.data_ptr(), static_cast<std::size_t>(s->processed.numel()));
  s->method = method.method;
  s->inputs = method.inputs;
  s->outputs = method.outputs;
  c10::IValue read = executorch::decode_option(s->backend, "options", s->options.data_ptr(),
                                               static_cast<std::size_t>(s->options.numel()));
  if (!read.isGenericDict()) raise("tbk.Region(" + s->backend + "): the options are not a dict, got " + tbk::detail::describe(read));
  c10::impl::GenericDict given = read.toGenericDict();
  c10::impl::GenericDict method_options = tbk::detail::make_any_dict();
  for (const auto& entry : given) {
    if (!entry.key().isString()) raise("tbk.Region(" + s->backend + "): an option's name is not a str");
    method_options.insert_or_assign(entry.key(), entry.value());
  }
  if (method_options.contains(region_option)) s->origin = method_options.at(region_option).toStringRef();
  if (!method.example_inputs.empty() && !method_options.contains(example_inputs_option)) {
    method_options.insert(example_inputs_option, tbk::detail::example_inputs_value(method.example_inputs));
  }
  s->instance = c10::ivalue::Object::create(c10::StrongTypePtr(nullptr, s->cls), 1);
  run_method(*s, "__init__", {s->instance});
  run_method(*s, "is_available", {s->instance});  // raises with the availability policy's reason
  c10::impl::GenericDict spec = tbk::detail::make_any_dict();
  spec.insert(s->method, method_options);
  const c10::IValue handles = run_method(*s, "compile", {s->instance, method.payload, spec});
  s->handle = handles.toGenericDict().at(s->method);
  return s;
}

// The results of execute as the region's tensors (a tensor, or a tuple or list of them).
inline void result_tensors(const c10::IValue& v, std::vector<at::Tensor>& out, const std::string& site) {
  if (v.isTensor()) {
    out.push_back(v.toTensor());
  } else if (v.isTuple()) {
    for (const c10::IValue& e : v.toTupleRef().elements()) result_tensors(e, out, site);
  } else if (v.isList()) {
    for (const c10::IValue& e : v.toListRef()) result_tensors(e, out, site);
  } else {
    raise(site + ": the execute policy returned " + tbk::detail::describe(v) + "; a region's outputs are tensors");
  }
}

// tbk::call_region's kernel, boxed: (Tensor[] inputs, Region region) -> Tensor[].
inline void call_region(const c10::OperatorHandle& /*op*/, torch::jit::Stack* stack) {
  const c10::IValue self = torch::jit::pop(*stack);
  const c10::IValue given = torch::jit::pop(*stack);
  region_state& s = state_of(self);
  const std::string site = site_of(s);
  const c10::List<at::Tensor> tensors = given.toTensorList();
  if (static_cast<int64_t>(tensors.size()) != s.inputs) {
    raise(site + ": the region takes " + std::to_string(s.inputs) + " input tensor" + (s.inputs == 1 ? "" : "s") +
          ", got " + std::to_string(tensors.size()));
  }
  c10::impl::GenericList inputs(c10::AnyType::get());
  inputs.reserve(tensors.size());
  for (const at::Tensor& t : tensors) inputs.push_back(t);
  const c10::IValue results = run_method(s, "execute", {s.instance, s.handle, inputs});
  std::vector<at::Tensor> out;
  for (const c10::IValue& r : results.toListRef()) result_tensors(r, out, site);
  if (static_cast<int64_t>(out.size()) != s.outputs) {
    raise(site + ": the execute policy returned " + std::to_string(out.size()) + " tensors; the region has " +
          std::to_string(s.outputs) + " output" + (s.outputs == 1 ? "" : "s"));
  }
  torch::jit::push(*stack, c10::List<at::Tensor>(out));
}

// A method of tbk.Region: name, schema, boxed function.
struct region_method {
  std::string name;
  c10::FunctionSchema schema;
  std::function<void(torch::jit::Stack&)> run;
};

inline c10::TupleTypePtr state_type() {
  return c10::TupleType::create({c10::IntType::get(), c10::StringType::get(), c10::TensorType::get(),
                                 c10::TensorType::get(), c10::StringType::get()});
}

inline void set_state(c10::IValue& self, c10::intrusive_ptr<region_state> s) {
  self.toObjectRef().setSlot(0, c10::IValue::make_capsule(std::move(s)));
}

inline std::vector<region_method> region_methods(const c10::ClassTypePtr& cls) {
  auto schema = [&](const char* name, std::vector<c10::Argument> args, c10::TypePtr result) {
    args.insert(args.begin(), c10::Argument("self", cls));
    return c10::FunctionSchema(name, "", std::move(args), {c10::Argument("", std::move(result))});
  };
  std::vector<region_method> methods;
  methods.push_back({"__init__",
                     schema("__init__",
                            {c10::Argument("backend", c10::StringType::get()),
                             c10::Argument("processed", c10::TensorType::get()),
                             c10::Argument("options", c10::TensorType::get()),
                             c10::Argument("meta", c10::StringType::get())},
                            c10::NoneType::get()),
                     [](torch::jit::Stack& stack) {
                       std::string meta = torch::jit::pop(stack).toStringRef();
                       at::Tensor options = torch::jit::pop(stack).toTensor();
                       at::Tensor processed = torch::jit::pop(stack).toTensor();
                       std::string backend = torch::jit::pop(stack).toStringRef();
                       c10::IValue self = torch::jit::pop(stack);
                       set_state(self, make_state(std::move(backend), processed, options, std::move(meta)));
                       torch::jit::push(stack, c10::IValue());
                     }});
  methods.push_back({"__getstate__", schema("__getstate__", {}, state_type()), [](torch::jit::Stack& stack) {
                       const region_state& s = state_of(torch::jit::pop(stack));
                       torch::jit::push(stack, c10::ivalue::Tuple::create({c10::IValue(region_state_version),
                                                                           c10::IValue(s.backend), s.processed,
                                                                           s.options, c10::IValue(s.meta)}));
                     }});
  methods.push_back({"__setstate__", schema("__setstate__", {c10::Argument("state", state_type())}, c10::NoneType::get()),
                     [](torch::jit::Stack& stack) {
                       const c10::IValue state = torch::jit::pop(stack);
                       c10::IValue self = torch::jit::pop(stack);
                       const std::vector<c10::IValue> e = state.toTupleRef().elements().vec();  // (g++ 12 warns on the inline storage past 3)
                       if (e.size() != 5 || !e[0].isInt() || e[0].toInt() != region_state_version) {
                         raise("tbk.Region: the saved region has state version " +
                               (e.size() > 0 && e[0].isInt() ? std::to_string(e[0].toInt()) : std::string("?")) +
                               "; this build of tbk reads version " + std::to_string(region_state_version) +
                               ": lower the program again with this tbk");
                       }
                       set_state(self, make_state(e[1].toStringRef(), e[2].toTensor(), e[3].toTensor(), e[4].toStringRef()));
                       torch::jit::push(stack, c10::IValue());
                     }});
  // torch.export's fake objects (tbk.export registers the fake class) are made from this
  auto pair = c10::TupleType::create({c10::StringType::get(), c10::StringType::get()});
  methods.push_back({"__obj_flatten__", schema("__obj_flatten__", {}, c10::TupleType::create({pair, pair})),
                     [](torch::jit::Stack& stack) {
                       const region_state& s = state_of(torch::jit::pop(stack));
                       auto item = [](const char* k, const std::string& v) {
                         return c10::ivalue::Tuple::create({c10::IValue(k), c10::IValue(v)});
                       };
                       torch::jit::push(stack, c10::ivalue::Tuple::create({item("backend", s.backend), item("meta", s.meta)}));
                     }});
  methods.push_back({"backend", schema("backend", {}, c10::StringType::get()), [](torch::jit::Stack& stack) {
                       torch::jit::push(stack, state_of(torch::jit::pop(stack)).backend);
                     }});
  methods.push_back({"meta", schema("meta", {}, c10::StringType::get()), [](torch::jit::Stack& stack) {
                       torch::jit::push(stack, state_of(torch::jit::pop(stack)).meta);
                     }});
  return methods;
}

}  // namespace detail

// Registers tbk.Region and tbk::call_region unless a library of this process did already.
// Called by every tbk backend registration; never throws (a failure is a warning, and the
// PT2 paths then say the operator is missing).
inline void register_region_support() noexcept {
  try {
    std::lock_guard<std::mutex> lock(tbk::detail::registration_mutex());
    if (torch::getCustomClass(region_class_name()) == nullptr) {
      auto cls = torch::class_<detail::region_state>("tbk", "Region");
      const c10::ClassTypePtr type = torch::getCustomClass(region_class_name());
      for (detail::region_method& m : detail::region_methods(type)) {
        cls._def_unboxed(m.name, std::move(m.run), std::move(m.schema));
      }
    }
    if (!c10::Dispatcher::singleton().findSchema({call_region_name(), ""}).has_value()) {
      // Kept for the life of the process (its destructor would take the operator away), in a
      // static pointer so that leak checkers see it reachable rather than lost.
      static torch::Library* library = nullptr;
      library = new torch::Library(torch::Library::FRAGMENT, "tbk", c10::nullopt, __FILE__, __LINE__);
      library->def("call_region(Tensor[] inputs, __torch__.torch.classes.tbk.Region region) -> Tensor[]",
                   torch::dispatch(c10::DispatchKey::CompositeExplicitAutograd,
                                   torch::CppFunction::makeFromBoxedFunction<&detail::call_region>()));
    }
  } catch (const std::exception& e) {
    TORCH_WARN("tbk: registering tbk.Region and tbk::call_region (torch.export and torch.compile) failed: ", e.what());
  }
}

}  // namespace pt2
}  // namespace tbk
