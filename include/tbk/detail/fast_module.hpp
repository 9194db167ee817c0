// tbk/detail/fast_module.hpp: the fast lowering path's code generation. The lowered module it
// makes calls the backend's typed method for each lowered method directly, with the method's
// handle as a module attribute: no List[Any], no per-call is_available, no dict lookup, no
// isinstance unpacking. It is an ordinary TorchScript module: it saves its compile spec and
// payload, and compiles again when loaded. Non-template.
#pragma once

#include <tbk/detail/arguments.hpp>  // count_text
#include <tbk/detail/errors.hpp>
#include <tbk/detail/fast_entry.hpp>  // fast_method_name
#include <tbk/detail/method_schema.hpp>  // explicit_arguments
#include <tbk/detail/registry.hpp>
#include <tbk/detail/torchbind.hpp>

#include <torch/csrc/jit/api/module.h>                 // torch::jit::Module
#include <torch/csrc/jit/backends/backend_resolver.h>  // torch::jit::loweredModuleResolver

#include <string>  // std::string
#include <vector>  // std::vector

namespace tbk::detail {

// TorchScript source of one lowered method on the fast path.
inline std::string fast_method_source(const std::string& method,
                                      const c10::FunctionSchema& schema,
                                      const c10::FunctionSchema& typed) {
  std::string params, args;
  for (const c10::Argument* arg : explicit_arguments(schema)) {
    params += ", " + arg->name() + ": " + arg->type()->annotation_str();
    args += ", " + arg->name();
  }
  const c10::TypePtr& declared = schema.returns()[0].type();
  const c10::TypePtr& produced = typed.returns()[0].type();
  const std::string call = "self.__backend." + typed.name() + "(self.__handle_" + method + args + ")";
  std::string body;
  if (produced->isSubtypeOf(*declared)) {
    body = "        return " + call + "\n";
  } else {
    // A list result (its length known at call time): unpack it into the declared outputs.
    auto tuple = declared->cast<c10::TupleType>();
    const std::size_t outputs = tuple ? tuple->elements().size() : 1;
    std::string names;
    for (std::size_t i = 0; i < outputs; ++i) names += "_" + std::to_string(i) + ", ";
    body = "        " + names + "= " + call + "\n";
    const bool refine = produced->cast<c10::ListType>() &&
                        produced->expectRef<c10::ListType>().getElementType()->kind() ==
                            c10::TypeKind::AnyType;
    for (std::size_t i = 0; refine && i < outputs; ++i) {
      const c10::TypePtr& t = tuple ? tuple->elements()[i] : declared;
      body += "        assert isinstance(_" + std::to_string(i) + ", " + t->annotation_str() + ")\n";
    }
    body += "        return " + (tuple ? names.substr(0, names.size() - 2) + (outputs == 1 ? "," : "")
                                       : std::string("_0")) + "\n";
  }
  return "    def " + method + "(self" + params + ") -> " + declared->annotation_str() + ":\n" + body;
}

// Gives each method of `lowered` named in `spec` the defaults and keyword-only flags of the same
// method of `original` (TorchScript source cannot spell every default, nor keyword-only
// parameters, and PyTorch's own code generation drops them). The schema is what call-time
// argument matching and the saved code both read, so `forward(x)` for
// `forward(self, x, scale: float = 1.0)` works on either path, after loading too, and so do
// calls by keyword.
inline void keep_parameter_defaults(torch::jit::Module& lowered, const torch::jit::Module& original,
                                    const c10::impl::GenericDict& spec) {
  for (const auto& entry : spec) {
    const std::string& method = entry.key().toStringRef();
    const c10::FunctionSchema& given = original.get_method(method).function().getSchema();
    torch::jit::Function& generated = lowered.get_method(method).function();
    const c10::FunctionSchema& schema = generated.getSchema();
    std::vector<c10::Argument> arguments;
    for (std::size_t i = 0; i < schema.arguments().size(); ++i) {
      const c10::Argument& made = schema.arguments()[i];
      arguments.emplace_back(made.name(), made.type(), made.N(), given.arguments()[i].default_value(),
                             given.arguments()[i].kwarg_only());
    }
    generated.setSchema(schema.cloneWithArguments(std::move(arguments)));
  }
}

// The fast path's lowered module for `module`, its methods named in `spec` on `backend`.
inline torch::jit::Module codegen_fast_module(const std::string& backend,
                                              const torch::jit::Module& module,
                                              const c10::impl::GenericDict& spec) {
  const auto registered = find_registered(backend);
  if (!registered) {
    raise("tbk::lower: the fast path needs a backend registered through tbk; '" + backend +
          "' was registered some other way (lower it natively)");
  }
  const c10::ClassTypePtr cls = torch::getCustomClass(backend_class_name(backend));
  const std::string qualified = backend_class_name(backend);
  auto any_dict = any_dict_type();

  torch::jit::Module cloned = module.clone();
  torch::jit::Module lowered(
      "torch.jit.tbk.FastLowered." + backend + "." + module.type()->name()->name(),
      std::make_shared<torch::jit::CompilationUnit>(), /*shouldMangle=*/true);
  lowered.register_attribute("__processed_module", c10::AnyType::get(),
                             registered->preprocess(cloned, spec));
  lowered.register_attribute("__method_compile_spec", any_dict, spec);
  lowered.register_attribute("__backend", cls,
                             c10::IValue::make_capsule(c10::intrusive_ptr<torch::CustomClassHolder>()));

  std::string source = "    def __create_backend(self):\n        self.__backend = " + qualified + "()\n" +
                       "    def __getstate__(self):\n"
                       "        return self.__method_compile_spec, self.__processed_module\n"
                       "    def __setstate__(self, state):\n"
                       "        self.__method_compile_spec = state[0]\n"
                       "        self.__processed_module = state[1]\n"
                       "        self.__create_backend()\n"
                       "        handles = self.__backend.compile(self.__processed_module, "
                       "self.__method_compile_spec)\n";
  for (const auto& entry : spec) {
    const std::string& method = entry.key().toStringRef();
    lowered.register_attribute("__handle_" + method, c10::AnyType::get(), c10::IValue());
    source += "        self.__handle_" + method + " = handles[\"" + method + "\"]\n";
  }
  for (const auto& entry : spec) {
    const std::string& method = entry.key().toStringRef();
    const c10::FunctionSchema& schema = module.get_method(method).function().getSchema();
    const std::size_t inputs = schema.arguments().size() - 1;  // less self
    torch::jit::Function* typed = cls->findMethod(fast_method_name(inputs));
    if (typed == nullptr) {
      raise("tbk::lower: " + backend + "." + method + ": the fast path has no typed method for " +
            count_text(inputs) + " (the execute policy's signature has no fixed form of that "
            "arity, or returns a type without a typed form); lower this method natively");
    }
    source += fast_method_source(method, schema, typed->getSchema());
  }
  // Strip the common indentation: define() takes methods at column 0.
  std::string dedented;
  for (std::size_t at = 0; at < source.size();) {
    std::size_t end = source.find('\n', at);
    std::string line = source.substr(at, end - at);
    dedented += (line.compare(0, 4, "    ") == 0 ? line.substr(4) : line) + "\n";
    at = end + 1;
  }
  lowered.define(dedented, torch::jit::loweredModuleResolver());

  lowered.run_method("__create_backend");
  lowered.run_method("__setstate__",
                     c10::ivalue::Tuple::create(spec, lowered.attr("__processed_module")));
  return lowered;
}

}  // namespace tbk::detail
