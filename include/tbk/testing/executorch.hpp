// tbk/testing/executorch.hpp: the conformance kit's ExecuTorch leg (opt-in: needs ExecuTorch's
// headers and runtime, as tbk/executorch.hpp). TBK_TEST_EXECUTORCH_BACKEND("name") adds doctest
// cases to the kit that TBK_TEST_BACKEND("name") configured: the delegate ExecuTorch has under
// that name is driven as the runtime drives it, for each method of the kit's spec: the backend's
// preprocess on the kit's module, the payload as tbk.executorch encodes it, init with the
// method's options, execute on the kit's inputs as the runtime's tensors, destroy.
#pragma once

#include <tbk/executorch_codec.hpp>
#include <tbk/testing/registration.hpp>  // kits_by_backend, the scaffold

#include <executorch/extension/tensor/tensor_ptr_maker.h>  // executorch::extension::from_blob
#include <executorch/runtime/backend/interface.h>           // get_backend_class

#include <tbk/testing/doctest_over_glog.hpp>  // after libtorch: doctest's CHECK, not glog's

#include <memory>  // std::unique_ptr
#include <string>  // std::string
#include <vector>  // std::vector

namespace tbk::testing {

namespace et = ::executorch::runtime;

// The runtime's view of `t` (a contiguous CPU tensor): its memory, its sizes.
// Static: an output the delegate would resize to another shape than the reference's fails.
inline ::executorch::extension::TensorPtr runtime_tensor(const at::Tensor& t) {
  std::vector<::executorch::aten::SizesType> sizes(t.sizes().begin(), t.sizes().end());
  return ::executorch::extension::from_blob(t.data_ptr(), sizes,
                                            static_cast<::executorch::aten::ScalarType>(t.scalar_type()),
                                            ::executorch::aten::Device(::executorch::aten::DeviceType::CPU),
                                            ::executorch::aten::TensorShapeDynamism::STATIC);
}

// One method through the delegate: init, execute on `inputs`, destroy; the results, or a failed
// check and nothing.
inline c10::optional<std::vector<at::Tensor>> run_delegate(const kit_settings& kit, et::BackendInterface& delegate,
                                                           const std::string& method,
                                                           const std::vector<c10::IValue>& inputs,
                                                           const std::vector<at::Tensor>& want) {
  const std::string where = kit.backend + "." + method + ", ExecuTorch delegate";
  const auto registered = detail::find_registered(kit.backend);
  if (!registered) {
    FAIL_CHECK(where << ": the backend was not registered through tbk (TBK_REGISTER_BACKEND)");
    return c10::nullopt;
  }
  // as tbk.executorch lowers: example inputs go to preprocess and into the payload, the other
  // options become compile specs
  const c10::impl::GenericDict options = kit.spec.at(method).toGenericDict();
  std::vector<c10::IValue> examples;
  if (options.contains(example_inputs_option)) examples = options.at(example_inputs_option).toListRef().vec();
  c10::impl::GenericDict spec = detail::make_any_dict();
  spec.insert(method, executorch::preprocess_options(options, examples));
  std::vector<char> processed;
  try {
    processed = tbk::executorch::encode_processed({kit.backend, method, registered->preprocess(kit.make_module(), spec),
                                                   static_cast<int64_t>(inputs.size()),
                                                   static_cast<int64_t>(want.size()), examples});
  } catch (...) {
    FAIL_CHECK(where << ": preprocess failed: " << detail::current_exception_text());
    return c10::nullopt;
  }
  std::vector<std::string> keys;
  std::vector<std::vector<char>> values;
  for (const auto& option : options) {
    if (option.key().toStringRef() == example_inputs_option) continue;
    keys.push_back(option.key().toStringRef());
    values.push_back(torch::jit::pickle_save(option.value()));
  }
  std::vector<et::CompileSpec> specs;
  for (std::size_t i = 0; i < keys.size(); ++i) specs.push_back({keys[i].c_str(), {values[i].data(), values[i].size()}});
  et::FreeableBuffer buffer(processed.data(), processed.size(), nullptr);
  et::BackendInitContext init_context(nullptr, nullptr, method.c_str());
  et::Result<et::DelegateHandle*> handle = delegate.init(init_context, &buffer, {specs.data(), specs.size()});
  if (!handle.ok()) {
    FAIL_CHECK(where << ": init failed with ExecuTorch error 0x" << std::hex << static_cast<int>(handle.error())
                     << " (the log above says why)");
    return c10::nullopt;
  }
  std::vector<::executorch::extension::TensorPtr> tensors;
  std::vector<et::EValue> values_in;
  std::vector<at::Tensor> outputs, kept;
  for (const c10::IValue& input : inputs) {
    if (input.isTensor()) {
      kept.push_back(input.toTensor().contiguous());
      tensors.push_back(runtime_tensor(kept.back()));
      values_in.emplace_back(*tensors.back());
    } else if (input.isInt()) {
      values_in.emplace_back(input.toInt());
    } else if (input.isDouble()) {
      values_in.emplace_back(input.toDouble());
    } else if (input.isBool()) {
      values_in.emplace_back(input.toBool());
    } else {
      delegate.destroy(handle.get());
      MESSAGE(where << ": input of type " << input.tagKind() << " has no ExecuTorch form here; method skipped");
      return c10::nullopt;
    }
  }
  for (const at::Tensor& w : want) {
    outputs.push_back(at::empty_like(w, at::MemoryFormat::Contiguous));
    tensors.push_back(runtime_tensor(outputs.back()));
    values_in.emplace_back(*tensors.back());
  }
  std::vector<et::EValue*> args;
  for (et::EValue& v : values_in) args.push_back(&v);
  et::BackendExecutionContext context;
  const et::Error status = delegate.execute(context, handle.get(), {args.data(), args.size()});
  // one argument fewer: an error code, never an exception into the runtime
  const et::Error short_call = delegate.execute(context, handle.get(), {args.data(), args.size() - 1});
  delegate.destroy(handle.get());
  CHECK_MESSAGE(short_call != et::Error::Ok, where << ": a call with one argument fewer than lowered succeeded");
  if (status != et::Error::Ok) {
    FAIL_CHECK(where << ": execute failed with ExecuTorch error 0x" << std::hex << static_cast<int>(status)
                     << " (the log above says why)");
    return c10::nullopt;
  }
  return outputs;
}

// The ExecuTorch leg: every method of the kit's spec through the delegate, against the reference.
inline void check_executorch(const std::string& backend) {
  auto found = kits_by_backend().find(backend);
  if (found == kits_by_backend().end()) {
    FAIL_CHECK(backend << ": no TBK_TEST_BACKEND(\"" << backend
                       << "\") configures this backend's kit; the ExecuTorch leg uses its module and inputs");
    return;
  }
  const kit_settings& kit = *found->second;
  et::BackendInterface* delegate = et::get_backend_class(backend.c_str());
  if (delegate == nullptr) {
    FAIL_CHECK(backend << ": ExecuTorch has no backend of this name: register it with "
                          "TBK_REGISTER_EXECUTORCH_BACKEND(Backend, \"" << backend << "\") (tbk/executorch.hpp)");
    return;
  }
  if (!ready(kit)) return;
  CHECK_MESSAGE(delegate->is_available(), backend << ": the ExecuTorch delegate says it is not available");
  torch::jit::Module unlowered = kit.make_module();
  for (const std::string& method : methods(kit)) {
    const std::vector<c10::IValue> inputs = inputs_for(kit, method);
    std::vector<at::Tensor> want;
    try {
      collect_tensors(reference_for(kit, method, inputs, unlowered), want);
    } catch (...) {
      FAIL_CHECK(backend << "." << method << ": the reference itself failed: " << detail::current_exception_text());
      continue;
    }
    if (auto got = run_delegate(kit, *delegate, method, inputs, want)) {
      for (std::size_t k = 0; k < want.size(); ++k) {
        const std::string problem =
            compare_tensors((*got)[k], want[k], kit.tolerance, backend + "." + method + ", ExecuTorch delegate, output " +
                                                                   std::to_string(k));
        CHECK_MESSAGE(problem.empty(), problem);
      }
    }
  }
}

// The ExecuTorch leg's memory check: init, execute and destroy of every method, 30 times, then
// the kit's memory cycles (.memory(cycles, bound_mb)); resident memory may grow by the bound at
// most, so a handle that destroy does not free, or a compile or execute that leaks, fails.
inline void check_executorch_memory(const std::string& backend) {
  auto found = kits_by_backend().find(backend);
  et::BackendInterface* delegate = et::get_backend_class(backend.c_str());
  if (found == kits_by_backend().end() || delegate == nullptr) return;  // the results case says why
  const kit_settings& kit = *found->second;
  if (!ready(kit)) return;
  if (resident_megabytes() < 0) {
    FAIL_CHECK(backend << ": resident memory cannot be read on this system");
    return;
  }
  torch::jit::Module unlowered = kit.make_module();
  struct method_case {
    std::string name;
    std::vector<c10::IValue> inputs;
    std::vector<at::Tensor> want;
  };
  std::vector<method_case> cases;
  for (const std::string& method : methods(kit)) {
    method_case c{method, inputs_for(kit, method), {}};
    try {
      collect_tensors(reference_for(kit, method, c.inputs, unlowered), c.want);
    } catch (...) {
      return;  // the results case reports it
    }
    cases.push_back(std::move(c));
  }
  auto cycle = [&] {
    for (const method_case& c : cases) {
      if (!run_delegate(kit, *delegate, c.name, c.inputs, c.want)) return false;
    }
    return true;
  };
  const int warm_up = 30;
  for (int i = 0; i < warm_up; ++i) {
    if (!cycle()) return;  // run_delegate has said why
  }
  const double before = resident_megabytes();
  for (int i = 0; i < kit.memory_cycles; ++i) {
    if (!cycle()) return;
  }
  const double growth = resident_megabytes() - before;
  CHECK_MESSAGE(growth <= kit.memory_bound_mb,
                backend << ": resident memory grew by " << growth << " MB over " << kit.memory_cycles
                        << " cycles of ExecuTorch init, execute and destroy (" << growth * 1000.0 / kit.memory_cycles
                        << " KB per cycle; bound " << kit.memory_bound_mb << " MB), from " << before << " MB after "
                        << warm_up << " warm-up cycles");
}

}  // namespace tbk::testing

// The kit's ExecuTorch leg for the backend registered as `name` (a string literal) both with
// TBK_REGISTER_BACKEND and TBK_REGISTER_EXECUTORCH_BACKEND; its module, spec, inputs and
// references are those of TBK_TEST_BACKEND(name), in any translation unit of the program.
#define TBK_TEST_EXECUTORCH_BACKEND(name) TBK_TEST_EXECUTORCH_BACKEND_IMPL(TBK_DETAIL_CONCAT(tbk_kit_et_, __COUNTER__), name)
#define TBK_TEST_EXECUTORCH_BACKEND_IMPL(id, name)                                                    \
  static void id() { ::tbk::testing::check_executorch(name); }                                       \
  static void TBK_DETAIL_CONCAT(id, _memory)() { ::tbk::testing::check_executorch_memory(name); }    \
  [[maybe_unused]] static const bool TBK_DETAIL_CONCAT(id, _registered) =                           \
      (::tbk::testing::register_case(name, "the ExecuTorch delegate gives the reference results", &id, __FILE__, \
                                     __LINE__),                                                            \
       ::tbk::testing::register_case(name, "the ExecuTorch delegate's init, execute and destroy leak nothing", \
                                     &TBK_DETAIL_CONCAT(id, _memory), __FILE__, __LINE__),                  \
       true)
