// python/tbk/_C.cpp: the C++ half of the Python package `tbk`: lowering, partitioning, the
// placement report, loading and the registry, for Python callers. Python values become IValues
// here (compile-spec options of any mix of types), and tbk's errors become Python exceptions with
// tbk's message and nothing else. tbk/__init__.py is the API users call.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>
#include <torch/csrc/jit/api/compilation_unit.h>  // torch::jit::CompilationUnit (region modules)
#include <torch/csrc/jit/frontend/source_range.h>  // torch::jit::Source, SourceRange
#include <torch/csrc/jit/python/pybind_utils.h>  // torch::jit::toIValue (tensors from Python)

#include <tbk/executorch_codec.hpp>
#include <tbk/load.hpp>
#include <tbk/lower.hpp>
#include <tbk/node_text.hpp>
#include <tbk/partition.hpp>
#include <tbk/register.hpp>

#include <cstdint>    // std::intptr_t
#include <map>        // std::map
#include <optional>   // std::optional
#include <stdexcept>  // std::runtime_error
#include <string>     // std::string
#include <utility>    // std::pair
#include <vector>     // std::vector

namespace py = pybind11;

namespace {

// Runs `fn`; a c10::Error leaves as a Python exception carrying its message without PyTorch's
// C++ backtrace (TypeError for c10::TypeError, RuntimeError otherwise).
template <class F>
auto guarded(F&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const c10::TypeError& e) {
    throw py::type_error(e.what_without_backtrace());
  } catch (const c10::Error& e) {
    throw std::runtime_error(e.what_without_backtrace());
  }
}

// A Python value as a compile-spec option: bool, int, float, str, None, Tensor, and lists,
// tuples and dicts (str keys) of those. `where` names it in errors ("spec['forward']['scale']").
c10::IValue option_value(py::handle value, const std::string& where) {
  if (value.is_none()) return c10::IValue();
  if (py::isinstance<py::bool_>(value)) return value.cast<bool>();
  if (py::isinstance<py::int_>(value)) return value.cast<int64_t>();
  if (py::isinstance<py::float_>(value)) return value.cast<double>();
  if (py::isinstance<py::str>(value)) return value.cast<std::string>();
  if (THPVariable_Check(value.ptr())) return THPVariable_Unpack(value.ptr());
  if (py::isinstance<py::dict>(value)) {
    c10::impl::GenericDict dict = tbk::detail::make_any_dict();
    for (auto item : value.cast<py::dict>()) {
      if (!py::isinstance<py::str>(item.first)) {
        throw py::type_error(where + " has a key " + py::repr(item.first).cast<std::string>() +
                             " of type " + Py_TYPE(item.first.ptr())->tp_name +
                             "; option dicts take str keys");
      }
      const std::string key = item.first.cast<std::string>();
      dict.insert(key, option_value(item.second, where + "['" + key + "']"));
    }
    return dict;
  }
  if (py::isinstance<py::tuple>(value)) {
    std::vector<c10::IValue> elements;
    std::size_t i = 0;
    for (py::handle element : value) elements.push_back(option_value(element, where + "[" + std::to_string(i++) + "]"));
    return c10::ivalue::Tuple::create(std::move(elements));
  }
  if (py::isinstance<py::list>(value)) {
    // A list of one type is that typed list (List[int], List[float], ...), as TorchScript
    // would make it; a list of mixed types is a List[Any].
    std::vector<c10::IValue> elements;
    std::size_t i = 0;
    for (py::handle element : value) elements.push_back(option_value(element, where + "[" + std::to_string(i++) + "]"));
    c10::TypePtr type = elements.empty() ? c10::TensorType::get() : elements[0].type();
    for (const c10::IValue& e : elements) {
      if (*e.type() != *type) type = c10::AnyType::get();
    }
    c10::impl::GenericList list(type);
    for (c10::IValue& e : elements) list.push_back(std::move(e));
    return list;
  }
  throw py::type_error(where + " has type " + std::string(Py_TYPE(value.ptr())->tp_name) +
                       "; options may be bool, int, float, str, None, torch.Tensor, and lists, "
                       "tuples and dicts of those");
}

// {method: {option: value}} as the Dict[str, Any] of a compile spec.
c10::impl::GenericDict spec_dict(const py::dict& spec, const char* function) {
  c10::impl::GenericDict out = tbk::detail::make_any_dict();
  for (auto item : spec) {
    if (!py::isinstance<py::str>(item.first)) {
      throw py::type_error(std::string(function) + ": spec keys are method names (str), got " +
                           py::repr(item.first).cast<std::string>());
    }
    const std::string method = item.first.cast<std::string>();
    if (!py::isinstance<py::dict>(item.second)) {
      throw py::type_error(std::string(function) + ": spec['" + method +
                           "'] must be a dict of options, got " +
                           std::string(Py_TYPE(item.second.ptr())->tp_name));
    }
    out.insert(method, option_value(item.second, std::string(function) + ": spec['" + method + "']"));
  }
  return out;
}

std::vector<c10::IValue> input_values(const py::tuple& inputs, const std::string& where) {
  std::vector<c10::IValue> out;
  std::size_t i = 0;
  for (py::handle input : inputs) out.push_back(option_value(input, where + "[" + std::to_string(i++) + "]"));
  return out;
}

tbk::lowering_path path_named(const std::string& path, const char* function) {
  if (path == "native") return tbk::lowering_path::native;
  if (path == "fast") return tbk::lowering_path::fast;
  throw py::value_error(std::string(function) + ": path must be \"native\" or \"fast\", got \"" + path + "\"");
}

}  // namespace

PYBIND11_MODULE(_C, m) {
  m.doc() = "The C++ half of torch-backend-kit's Python package; use the functions of tbk.";

  m.def("lower", [](const torch::jit::Module& module, const std::string& backend, const py::dict& spec,
                    const std::string& path) {
    c10::impl::GenericDict dict = spec_dict(spec, "tbk.lower");
    const tbk::lowering_path how = path_named(path, "tbk.lower");
    return guarded([&] { return tbk::lower(module, backend, dict, how); });
  });

  m.def("partition", [](const torch::jit::Module& module, const std::string& backend, const py::dict& spec,
                        const std::vector<std::string>& methods, std::size_t min_nodes,
                        std::size_t max_regions, bool inside_blocks, bool freeze,
                        const std::string& path, const py::dict& example_inputs,
                        const py::object& supports) {
    tbk::partition_options options;
    options.spec = spec_dict(spec, "tbk.partition");
    options.methods = methods;
    options.min_nodes = min_nodes;
    options.max_regions = max_regions;
    options.inside_blocks = inside_blocks;
    options.freeze = freeze;
    options.path = path_named(path, "tbk.partition");
    for (auto item : example_inputs) {
      const std::string method = item.first.cast<std::string>();
      options.example_inputs[method] =
          input_values(item.second.cast<py::tuple>(), "tbk.partition: example_inputs['" + method + "']");
    }
    if (!supports.is_none()) {
      // tbk/__init__.py's wrapper: node -> (supported, reason); called with the GIL held (the
      // partition runs in this call)
      options.supports = [supports](const torch::jit::Node& node) -> tbk::node_support {
        const py::tuple answer = supports(py::cast(const_cast<torch::jit::Node*>(&node),
                                                   py::return_value_policy::reference));
        if (answer[0].cast<bool>()) return tbk::supported();
        return tbk::node_support::no(answer[1].cast<std::string>());
      };
    }
    return guarded([&] { return tbk::partition(module, backend, options); });
  });

  m.def("report", [](const torch::jit::Module& module) { return guarded([&] { return tbk::report(module); }); });

  m.def("load", [](const std::string& path) { return guarded([&] { return tbk::load(path); }); });

  // The compile-spec option that carries example inputs (tbk::example_inputs_option)
  m.attr("EXAMPLE_INPUTS_OPTION") = tbk::example_inputs_option;
  // The option that names a region in its call-time errors (tbk::region_option)
  m.attr("REGION_OPTION") = tbk::region_option;
  // The option that tells a backend which input dimensions change (tbk::dynamic_dims_option)
  m.attr("DYNAMIC_DIMS_OPTION") = tbk::dynamic_dims_option;
  // tbk.bridge: one region (its TorchScript module, made by tbk.bridge) through the backend's
  // preprocess, as the processed bytes of tbk/executorch_codec.hpp, which tbk.executorch,
  // tbk.export and tbk.compile all carry. `where` names the caller in errors.
  m.def("processed_region", [](const torch::jit::Module& module, const std::string& backend,
                               const py::dict& options, const py::tuple& example_inputs,
                               bool static_shapes, int64_t inputs, int64_t outputs, const std::string& where) {
    c10::impl::GenericDict method_options = tbk::detail::make_any_dict();
    for (auto item : options) {
      const std::string key = item.first.cast<std::string>();
      method_options.insert(key, option_value(item.second, where + ": option '" + key + "'"));
    }
    const std::vector<c10::IValue> examples = input_values(example_inputs, where + ": example inputs");
    return guarded([&] {
      tbk::detail::require_registered(where, backend);
      const auto registered = tbk::detail::find_registered(backend);
      if (!registered) {
        tbk::detail::raise(where + ": backend '" + backend + "' was not registered through tbk "
                           "(TBK_REGISTER_BACKEND); only tbk backends are lowered this way");
      }
      c10::impl::GenericDict spec = tbk::detail::make_any_dict();
      spec.insert("forward", tbk::executorch::preprocess_options(method_options, examples, static_shapes));
      registered->check_methods(module, spec);
      const c10::IValue payload = registered->preprocess(module, spec);
      const std::vector<char> bytes =
          tbk::executorch::encode_processed({backend, "forward", payload, inputs, outputs, examples});
      return py::bytes(bytes.data(), bytes.size());
    });
  });
  // tbk.bridge: a TorchScript graph whose first input is `self` as the module of one method
  // (a region's module, for a backend's preprocess).
  m.def("module_from_graph", [](const std::shared_ptr<torch::jit::Graph>& graph, const std::string& method) {
    auto unit = std::make_shared<torch::jit::CompilationUnit>();
    torch::jit::Module module(c10::QualifiedName("__torch__.tbk.bridge.Region"), unit, /*shouldMangle=*/true);
    std::shared_ptr<torch::jit::Graph> copy = graph->copy();
    copy->inputs().at(0)->setType(module.type());
    torch::jit::Function* function = unit->create_function(c10::QualifiedName(*module.type()->name(), method), copy);
    module.type()->addMethod(function);
    return module;
  });
  // tbk.bridge: a node's source range as the user's line `line` of `file`, whose text is `text`
  // (tbk::node_text then names it "aten::relu (model.py:12)").
  m.def("set_source_range", [](torch::jit::Node* node, const std::string& file, int64_t line, const std::string& text) {
    auto source = std::make_shared<torch::jit::Source>(text, file, static_cast<std::size_t>(line));
    node->setSourceRange(torch::jit::SourceRange(source, 0, text.size()));
  });
  m.def("node_text", [](const torch::jit::Node* node) { return tbk::node_text(*node); });
  // tbk.bridge: an empty list constant of int, float, bool or Tensor elements (which Python's
  // insertConstant cannot type).
  m.def("empty_list_constant", [](const std::shared_ptr<torch::jit::Graph>& graph, const std::string& element) {
    if (element == "float") return graph->insertConstant(c10::List<double>());
    if (element == "bool") return graph->insertConstant(c10::List<bool>());
    if (element == "Tensor") return graph->insertConstant(c10::List<at::Tensor>());
    return graph->insertConstant(c10::List<int64_t>());
  });
  // tbk.executorch's partitioner: whether a tbk backend has a supports hook, and its answer for
  // a TorchScript node ("" when supported).
  m.def("has_supports", [](const std::string& backend) {
    return guarded([&] {
      tbk::detail::require_registered("tbk.executorch.partitioner", backend);
      const auto registered = tbk::detail::find_registered(backend);
      return registered && registered->has_supports();
    });
  });
  m.def("supports_refusal", [](const std::string& backend, const torch::jit::Node* node) {
    return guarded([&] {
      const auto registered = tbk::detail::find_registered(backend);
      if (!registered || !registered->has_supports()) {
        tbk::detail::raise("tbk.executorch: backend '" + backend + "' has no supports hook");
      }
      return registered->refusal(*node);
    });
  });
  // tbk.compile: each tensor's (storage address, version counter), to notice a weight changed since
  // a graph was lowered (another tensor, or one written in place)
  m.def("tensor_versions", [](const std::vector<at::Tensor>& tensors) {
    std::vector<std::pair<std::intptr_t, int64_t>> out;
    out.reserve(tensors.size());
    for (const at::Tensor& t : tensors) {
      out.emplace_back(reinterpret_cast<std::intptr_t>(t.data_ptr()), static_cast<int64_t>(t._version()));
    }
    return out;
  });
  // tbk.compile: the values of 0-dim tensors (the numbers Dynamo passes as tensors)
  m.def("tensor_values", [](const std::vector<at::Tensor>& tensors) {
    std::vector<double> out;
    out.reserve(tensors.size());
    for (const at::Tensor& t : tensors) out.push_back(t.item<double>());
    return out;
  });
  m.def("registered_backends", [] { return guarded([] { return tbk::registered_backends(); }); });
}
