// tbk/backend.hpp: tbk::backend<Compile, Execute, Availability>, the adapter that implements
// torch::jit::PyTorchBackendInterface from a compile policy and an execute policy.
#pragma once

#include <tbk/availability.hpp>
#include <tbk/compile_spec.hpp>
#include <tbk/detail/backend_base.hpp>
#include <tbk/detail/errors.hpp>
#include <tbk/detail/function_traits.hpp>
#include <tbk/detail/method_schema.hpp>
#include <tbk/detail/torchbind.hpp>
#include <tbk/fwd.hpp>
#include <tbk/handle.hpp>
#include <tbk/policy.hpp>
#include <tbk/signature.hpp>

#include <torch/csrc/jit/api/module.h>  // torch::jit::Module

#include <string>       // std::string
#include <type_traits>  // std::is_same
#include <utility>      // std::pair

namespace tbk {
namespace detail {

// One object per policy type, owned by the backend instance (one object when Compile and
// Execute are the same type, so that a stateful policy shares its state between both hooks).
template <class Compile, class Execute>
struct policy_objects {
  Compile compile;
  Execute execute;
  Compile& compile_policy() { return compile; }
  Execute& execute_policy() { return execute; }
};
template <class Policy>
struct policy_objects<Policy, Policy> {
  Policy both;
  Policy& compile_policy() { return both; }
  Policy& execute_policy() { return both; }
};

// The payload as the type compile takes it.
template <class Payload>
decltype(auto) load_payload(const c10::IValue& payload, const error_site& site) {
  using D = std::decay_t<Payload>;
  if constexpr (std::is_same<D, torch::jit::Module>::value) {
    if (!payload.isObject()) {
      raise(site_name(site) + ": the compile policy takes the payload as a Module, but "
                              "preprocess produced " + describe(payload));
    }
    return torch::jit::Module(payload.toObject());
  } else {
    if (!arg_caster<D>::accepts(payload)) {
      raise(site_name(site) + ": the compile policy takes the payload as " +
            arg_caster<D>::name() + ", but preprocess produced " + describe(payload));
    }
    return arg_caster<D>::load(payload);
  }
}

// A method's options without tbk::region_option, and that option's text ("" without it).
inline std::pair<c10::IValue, std::string> without_region_option(const c10::IValue& options) {
  if (!options.isGenericDict() || !options.toGenericDict().contains(region_option)) return {options, {}};
  const c10::impl::GenericDict all = options.toGenericDict();
  const c10::IValue origin = all.at(region_option);
  c10::impl::GenericDict rest = all.copy();
  (void)rest.erase(region_option);
  return {rest, origin.isString() ? origin.toStringRef() : std::string()};
}

// Turns a bool or a tbk::availability into a tbk::availability.
inline availability to_availability(bool ok) {
  return ok ? tbk::available() : tbk::unavailable("its availability policy said no");
}
inline availability to_availability(availability a) { return a; }

// The shell tbk::backend derives from when a policy breaks a rule: the static_assert has said
// what is wrong, and nothing else should pile up errors behind it.
struct invalid_backend {};

// Holds the availability policy object in a base that is built before backend_base, which
// needs its answer.
template <class Availability>
struct availability_holder {
  Availability availability_object;
};

template <class Compile, class Execute, class Availability>
class backend_impl : private availability_holder<Availability>, public backend_base {
  using compile_hook = compile_policy_traits<Compile>;
  using execute_hook = typename execute_policy_traits<Execute>::hook;
  using signature = typename execute_signature_from<typename execute_hook::result,
                                                    typename execute_hook::args>::type;

 public:
  using compile_policy = Compile;
  using execute_policy = Execute;
  using availability_policy = Availability;
  using handle_type = typename compile_hook::handle_type;

  // The execute signature as TorchScript would spell it: "(Tensor, *rest: Tensor) -> Tensor".
  static std::string execute_signature() { return signature::text(); }

 private:
  static availability_answer ask_availability(Availability& policy) {
    try {
      const availability a = to_availability(invoke_hook<&Availability::is_available>(policy));
      return {a.available(), a.reason()};
    } catch (...) {
      return {false, "its availability policy failed: " + current_exception_text()};
    }
  }

  // The execute hook, on this instance's policy object when it is stateful.
  template <class... Args>
  decltype(auto) call_execute(const handle_type& handle, Args&&... args) {
    return invoke_hook<&Execute::execute>(policies_.execute_policy(), handle,
                                          std::forward<Args>(args)...);
  }

  // The schema of `method` when the payload is a module that has it.
  static const c10::FunctionSchema* schema_of(const c10::IValue& payload,
                                              const std::string& method) {
    if (!payload.isObject()) return nullptr;
    auto found = torch::jit::Module(payload.toObject()).find_method(method);
    return found ? &found->function().getSchema() : nullptr;
  }

 public:

  backend_impl() : backend_base(ask_availability(this->availability_object)) {}

  // The availability policy's answer, asked once when the instance was made, with its reason.
  availability availability_report() const {
    const availability_answer& answer = availability_answer_of_instance();
    return answer.available ? tbk::available() : tbk::unavailable(answer.reason);
  }

  // Load time: one handle per method named in the compile spec. When the payload is the
  // module, each method's TorchScript signature is checked against the execute policy first.
  c10::impl::GenericDict compile(c10::IValue processed,
                                 c10::impl::GenericDict method_compile_spec) override {
    require_available();
    c10::impl::GenericDict handles = make_any_dict();
    for (const auto& entry : method_compile_spec) {
      const std::string& method = entry.key().toStringRef();
      const error_site site{display_name(), method};
      try {
        std::vector<c10::TypePtr> outputs;
        if (const c10::FunctionSchema* schema = schema_of(processed, method)) {
          signature::check_schema(site, *schema);
          outputs = declared_outputs(*schema);
        }
        using payload_param = param_t<typename compile_hook::hook, 1>;
        auto [options, origin] = without_region_option(entry.value());
        method_spec spec(display_name(), method, std::move(options));
        handles.insert(method, box_handle(method, std::move(outputs),
                                          invoke_hook<&Compile::compile>(
                                              policies_.compile_policy(), spec,
                                              load_payload<payload_param>(processed, site)),
                                          std::move(origin)));
      } catch (...) {
        rethrow_with_site(site, "compile policy");
      }
    }
    return handles;
  }

  // Call time: typed inputs in, typed result out.
  c10::impl::GenericList execute(c10::IValue handle, c10::impl::GenericList inputs) override {
    const auto& box = unbox_handle<handle_type>(handle, display_name());
    const error_site site{display_name(), box.method};
    const c10::IValue list(std::move(inputs));
    try {
      auto call = [this](auto&&... args) -> decltype(auto) {
        return call_execute(std::forward<decltype(args)>(args)...);
      };
      c10::impl::GenericList outputs = signature::invoke(site, call, box.value, list.toListRef());
      if (!box.outputs.empty()) check_outputs(site, box.outputs, c10::IValue(outputs).toListRef());
      return outputs;
    } catch (...) {
      rethrow_with_origin(site, box.origin, "execute policy");
    }
  }

  // Call time on the fast path: inputs typed by the lowered method's schema, result as the
  // typed method returns it.
  c10::IValue execute_fast(const c10::IValue& handle, c10::ArrayRef<c10::IValue> inputs) {
    const auto& box = unbox_handle<handle_type>(handle, display_name());
    const error_site site{display_name(), box.method};
    try {
      auto call = [this](auto&&... args) -> decltype(auto) {
        return call_execute(std::forward<decltype(args)>(args)...);
      };
      return signature::invoke_fast(site, call, box.value, inputs, box.outputs);
    } catch (...) {
      rethrow_with_origin(site, box.origin, "execute policy");
    }
  }

  // The typed methods registered for the fast path, with their boxed entry points.
  static detail::fast_entry_points fast_entry_points() {
    detail::fast_entry_points out;
    for (fast_method& m : signature::fast_methods()) {
      const std::size_t n = m.input_count;
      out.emplace_back(std::move(m), [n](torch::jit::Stack& stack) {
        const c10::ArrayRef<c10::IValue> inputs = torch::jit::last(stack, n);
        const c10::IValue& handle = stack[stack.size() - n - 1];
        const c10::IValue& self = stack[stack.size() - n - 2];
        c10::IValue out = static_cast<backend_impl&>(backend_of(self)).execute_fast(handle, inputs);
        torch::jit::drop(stack, n + 2);
        torch::jit::push(stack, std::move(out));
      });
    }
    return out;
  }

  // Lowering time, before PyTorch's code generation: checks each method of `module` named in
  // the spec against the execute policy, whatever preprocess will make of the module.
  static void check_methods(const std::string& backend, const torch::jit::Module& module,
                            const c10::impl::GenericDict& spec) {
    for (const auto& entry : spec) {
      const std::string& method = entry.key().toStringRef();
      if (auto m = module.find_method(method)) {
        signature::check_schema(error_site{backend, method}, m->function().getSchema());
      }
    }
  }

  // Lowering time, for tbk::partition: why the backend cannot run `node` (empty when it can);
  // null when the compile policy declares no supports hook. The hook answers a bool or a
  // tbk::node_support (with a reason).
  static supports_function supports_hook() {
    if constexpr (compile_hook::has_supports) {
      return [](const std::string& backend, const torch::jit::Node& node) -> std::string {
        try {
          return node_support(Compile::supports(node)).refusal();
        } catch (...) {
          const std::string none;
          rethrow_with_site(error_site{backend, none},
                            ("supports (asked about " + std::string(node.kind().toQualString()) +
                             ")").c_str());
        }
      };
    } else {
      return nullptr;
    }
  }

  // Lowering time: what is pickled into the model. Default: the module itself.
  static c10::IValue preprocess(const std::string& backend, const torch::jit::Module& module,
                                const c10::impl::GenericDict& spec) {
    if constexpr (compile_hook::has_preprocess) {
      try {
        return Compile::preprocess(module, compile_spec(backend, spec));
      } catch (...) {
        const std::string none;
        rethrow_with_site(error_site{backend, none}, "preprocess");
      }
    } else {
      (void)backend, (void)spec;
      return module._ivalue();
    }
  }

 private:
  policy_objects<Compile, Execute> policies_;
};

// What tbk::backend derives from: the adapter, or an empty shell when a policy breaks a rule.
template <class Compile, class Execute, class Availability, bool Valid>
struct adapter_for_policies {
  using type = backend_impl<Compile, Execute, Availability>;
};
template <class Compile, class Execute, class Availability>
struct adapter_for_policies<Compile, Execute, Availability, false> {
  using type = invalid_backend;
};

}  // namespace detail

// A TorchScript backend made of policies:
//   Compile:      static Handle compile(const tbk::method_spec&, const c10::IValue& payload);
//                 optional static c10::IValue preprocess(const torch::jit::Module&,
//                                                        const tbk::compile_spec&);
//   Execute:      static Result execute(const Handle&, Params...);
//   Availability: static bool is_available();  (or returning tbk::availability)
// Hooks may also be member functions; the backend instance then owns one policy object.
// Register it with TBK_REGISTER_BACKEND or tbk::register_backend<B>(name) (tbk/register.hpp).
template <class Compile, class Execute, class Availability>
class backend final
    : public detail::adapter_for_policies<Compile, Execute, Availability,
                                      detail::check_policies<Compile, Execute, Availability>()>::type {
};

}  // namespace tbk
