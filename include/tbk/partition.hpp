// tbk/partition.hpp: lowering only what a backend can run. tbk::partition cuts each method into
// regions of nodes the backend supports (its compile policy's `supports` hook), lowers each
// region as a module of its own, and leaves every other node in TorchScript; tbk::report says
// where each node went, from the partitioned module itself (after save and load too).
#pragma once

#include <tbk/compile_spec.hpp>
#include <tbk/detail/arguments.hpp>  // count_text
#include <tbk/detail/branch_tuples.hpp>  // flatten_branch_tuples: before planning
#include <tbk/detail/errors.hpp>
#include <tbk/detail/example_run.hpp>
#include <tbk/detail/partition_plan.hpp>
#include <tbk/detail/partition_rewrite.hpp>
#include <tbk/detail/registry.hpp>
#include <tbk/lower.hpp>
#include <tbk/node_support.hpp>  // partition_options::supports answers
#include <tbk/node_text.hpp>  // tbk::node_text (reports name nodes with it; kept for users of this header)

#include <torch/csrc/jit/api/module.h>                      // torch::jit::Module, freeze
#include <torch/csrc/jit/passes/dead_code_elimination.h>    // torch::jit::EliminateDeadCode
#include <torch/csrc/jit/passes/inliner.h>                  // torch::jit::Inline
#include <torch/csrc/jit/passes/remove_mutation.h>          // torch::jit::RemoveTensorMutation

#include <algorithm>      // std::find, std::sort
#include <cstddef>        // std::size_t
#include <functional>     // std::function
#include <map>            // std::map
#include <string>         // std::string
#include <unordered_map>  // std::unordered_map
#include <vector>         // std::vector

namespace tbk {

struct partition_options {
  // The methods to partition; the others stay as they are.
  std::vector<std::string> methods{"forward"};
  // Regions of fewer nodes stay in TorchScript (a call of the backend costs more than a node).
  std::size_t min_nodes = 1;
  // At most this many regions per method, the largest; 0: no limit.
  std::size_t max_regions = 0;
  // Partition inside the bodies of prim::If and prim::Loop too (each body on its own).
  bool inside_blocks = true;
  // Freeze the module first (torch::jit::freeze): parameters and attributes become constants,
  // which regions then carry; without it, they are read by the method and passed in.
  bool freeze = false;
  // How each region is lowered: PyTorch's code generation or tbk's fast path.
  lowering_path path = lowering_path::native;
  // Compile-spec options per method, given to every region cut from it:
  // {"forward": {"threads": 4}}. A method not named gets no options.
  c10::impl::GenericDict spec = detail::make_any_dict();
  // Example inputs per method (its parameters, self excluded). When given, each region of that
  // method gets its own inputs from a run of the method as the compile-spec option
  // "example_inputs" (a list), for backends that need shapes; inside prim::If and prim::Loop
  // bodies, the first values the run gave them. A region the run never reached (a branch not
  // taken) gets none, and stays in TorchScript if its backend cannot lower it without them.
  std::map<std::string, std::vector<c10::IValue>> example_inputs;
  // Overrides the backend's supports hook (for backends registered without one, or to run fewer
  // nodes in it): returns a bool, or tbk::unsupported("reason") for the report.
  std::function<node_support(const torch::jit::Node&)> supports;
};

namespace detail {

inline const char* report_attribute() { return "_tbk_partition_report"; }

// Why the backend cannot run a node, empty when it can: the override of partition_options, or
// the backend's supports hook.
inline std::function<std::string(const torch::jit::Node&)> capability_of(const std::string& backend,
                                                                         const partition_options& options) {
  require_registered("tbk::partition", backend);
  if (options.supports) {
    return [supports = options.supports](const torch::jit::Node& node) { return supports(node).refusal(); };
  }
  auto registered = find_registered(backend);
  if (!registered || !registered->has_supports()) {
    raise("tbk::partition: backend '" + backend +
          "' does not say which nodes it supports: give its compile policy `static bool "
          "supports(const torch::jit::Node& node);`, or pass a capability of your own "
          "(C++: partition_options::supports; Python: tbk.partition(..., supports=callable))");
  }
  return [registered = *registered](const torch::jit::Node& node) { return registered.refusal(node); };
}

inline void check_partition_options(const torch::jit::Module& module, const std::string& backend,
                                    const partition_options& options) {
  const std::string where = "tbk::partition(" + backend + "): ";
  if (module.hasattr(report_attribute())) {
    raise(where + "the module is partitioned already (its regions' handles cannot be copied); "
                  "partition the original module, all methods in one call");
  }
  if (options.methods.empty()) raise(where + "no method to partition (partition_options::methods)");
  if (options.min_nodes == 0) raise(where + "min_nodes must be at least 1");
  std::vector<std::string> seen;
  for (const std::string& method : options.methods) {
    if (std::find(seen.begin(), seen.end(), method) != seen.end()) {
      raise(where + "method '" + method + "' is named twice");
    }
    seen.push_back(method);
    if (!module.find_method(method)) {
      raise(where + "module '" + module.type()->name()->qualifiedName() + "' has no method '" +
            method + "' (its methods: " + method_names_of(module) + ")");
    }
  }
  auto partitioned = [&](const std::string& method) {
    return std::find(seen.begin(), seen.end(), method) != seen.end();
  };
  for (const auto& entry : options.spec) {
    if (!entry.key().isString()) {
      raise(where + "spec keys must be method names (str), got " + describe(entry.key()));
    }
    if (!partitioned(entry.key().toStringRef())) {
      raise(where + "the spec has options for method '" + entry.key().toStringRef() +
            "', which is not partitioned (methods: " + joined_names(options.methods) + ")");
    }
    if (!entry.value().isGenericDict()) {
      raise(where + "the options of method '" + entry.key().toStringRef() +
            "' must be a dict, got " + describe(entry.value()));
    }
  }
  for (const auto& [method, inputs] : options.example_inputs) {
    if (!partitioned(method)) {
      raise(where + "example inputs are given for method '" + method +
            "', which is not partitioned (methods: " + joined_names(options.methods) + ")");
    }
    const std::size_t expected = module.get_method(method).function().getSchema().arguments().size() - 1;
    if (inputs.size() != expected) {
      raise(where + "method '" + method + "' takes " + count_text(expected) + ", but " +
            std::to_string(inputs.size()) + " example input" + (inputs.size() == 1 ? " was" : "s were") +
            " given");
    }
  }
}

// "aten::add x2, aten::sub x1": the node kinds of a region, by count, in order of appearance.
inline std::string kinds_text(const std::vector<torch::jit::Node*>& nodes) {
  std::vector<std::pair<std::string, std::size_t>> counts;
  for (const torch::jit::Node* node : nodes) {
    const std::string kind = node->kind().toQualString();
    auto found = std::find_if(counts.begin(), counts.end(), [&](const auto& c) { return c.first == kind; });
    if (found == counts.end()) counts.emplace_back(kind, 1);
    else ++found->second;
  }
  std::string text;
  for (const auto& [kind, count] : counts) {
    text += (text.empty() ? "" : ", ") + kind + " x" + std::to_string(count);
  }
  return text;
}

// "" for the method's own block, " (inside prim::Loop, line 7)" for a nested one.
inline std::string block_text(const torch::jit::Node* node) {
  const torch::jit::Node* owner = node->owningBlock()->owningNode();
  return owner == nullptr ? std::string() : " (inside " + node_text(owner) + ")";
}

inline std::size_t countable_nodes(const torch::jit::Block* block) {
  std::size_t count = 0;
  for (const torch::jit::Node* node : block->nodes()) {
    if (!is_bookkeeping(node)) ++count;
    for (const torch::jit::Block* inner : node->blocks()) count += countable_nodes(inner);
  }
  return count;
}

inline std::string region_name(const std::string& method, std::size_t k) {
  return "_tbk_region_" + method + "_" + std::to_string(k);
}

// The report's section for one method (made before the graph changes).
inline std::string method_report(const std::string& method, const torch::jit::Graph& graph,
                                 const partition_plan& plan,
                                 const std::vector<region_boundary>& boundaries) {
  std::size_t placed = 0;
  for (const planned_region& r : plan.regions) placed += r.nodes.size();
  std::string text = "method " + method + ": " + std::to_string(plan.regions.size()) + " region" +
                     (plan.regions.size() == 1 ? "" : "s") + ", " + std::to_string(placed) + " of " +
                     std::to_string(countable_nodes(graph.block())) + " nodes in the backend\n";
  for (std::size_t k = 0; k < plan.regions.size(); ++k) {
    const planned_region& r = plan.regions[k];
    text += "  region " + std::to_string(k) + " (" + region_name(method, k) + ")" +
            block_text(r.nodes.front()) + ": " + std::to_string(r.nodes.size()) + " node" +
            (r.nodes.size() == 1 ? "" : "s") + " [" + kinds_text(r.nodes) + "], " +
            count_text(boundaries[k].inputs.size()) + ", " +
            std::to_string(boundaries[k].outputs.size()) + " output" +
            (boundaries[k].outputs.size() == 1 ? "" : "s") + "\n";
    for (const std::string& note : r.notes) text += "    note: " + note + "\n";
  }
  if (!plan.left.empty()) text += "  in TorchScript:\n";
  for (const left_node& l : plan.left) {
    text += "    " + node_text(l.node) + block_text(l.node) + ": " + l.reason + "\n";
  }
  return text;
}

// "region 2 of method forward: aten::conv2d (model.py:12), aten::relu (model.py:13)": what a
// region's call-time errors name (tbk::region_option); at most 8 nodes, then how many more.
inline std::string region_origin(const std::string& method, std::size_t k, const planned_region& region) {
  std::string text = "region " + std::to_string(k) + " of method " + method + ":";
  const std::size_t shown = std::min<std::size_t>(region.nodes.size(), 8);
  for (std::size_t i = 0; i < shown; ++i) text += (i ? ", " : " ") + node_text(region.nodes[i]);
  if (region.nodes.size() > shown) text += " and " + std::to_string(region.nodes.size() - shown) + " more";
  return text;
}

// The compile spec of one region: the method's options, the region's example inputs, and what
// its call-time errors name it (tbk::region_option).
inline c10::impl::GenericDict region_spec(const partition_options& options, const std::string& method,
                                          const c10::optional<std::vector<c10::IValue>>& examples,
                                          const std::string& origin) {
  c10::impl::GenericDict region_options = make_any_dict();
  if (auto found = options.spec.find(method); found != options.spec.end()) {
    for (const auto& entry : found->value().toGenericDict()) {
      region_options.insert_or_assign(entry.key(), entry.value());
    }
  }
  if (examples) region_options.insert_or_assign(example_inputs_option, example_inputs_value(*examples));
  region_options.insert_or_assign(region_option, origin);
  c10::impl::GenericDict spec = make_any_dict();
  spec.insert("forward", region_options);
  return spec;
}

// The nodes of `region` that a backend's lowering error names as tbk::node_text does
// ("aten::relu (model.py:4)"), with what the message says after the name: the backend's reason.
inline std::vector<std::pair<torch::jit::Node*, std::string>> nodes_named_in(const planned_region& region,
                                                                           const std::string& message) {
  std::vector<std::pair<torch::jit::Node*, std::string>> named;
  for (torch::jit::Node* node : region.nodes) {
    const std::string text = node_text(node);
    const std::size_t at = message.find(text + ": ");
    if (at == std::string::npos || node->sourceRange().file_line_col() == c10::nullopt) continue;
    named.emplace_back(node, message.substr(at + text.size() + 2));
  }
  return named;
}

// A method's regions, each lowered: planned, and planned again without the nodes a backend
// refused when it lowered their region (it named them, as tbk::node_text does), until every
// region lowers. A region the example run never reached stays in TorchScript if it fails to
// lower without example inputs; any other lowering error that names no node of it is raised.
struct lowered_plan {
  partition_plan plan;
  std::vector<region_boundary> boundaries;
  std::vector<torch::jit::Module> modules;  // per region
};

inline lowered_plan plan_and_lower(const std::shared_ptr<torch::jit::Graph>& graph, torch::jit::Module& root,
                                   const std::string& method, const std::string& backend,
                                   const std::function<std::string(const torch::jit::Node&)>& supports,
                                   const partition_options& options) {
  std::unordered_map<const torch::jit::Node*, std::string> refused;  // at lowering, with the reason
  auto refusal = [&](const torch::jit::Node& node) {
    auto found = refused.find(&node);
    return found != refused.end() ? found->second : supports(node);
  };
  const example_run run(graph, root, options.example_inputs, method, backend);
  for (;;) {
    lowered_plan out;
    out.plan = region_planner(graph, refusal, {options.min_nodes, options.max_regions, options.inside_blocks}).plan();
    for (const planned_region& r : out.plan.regions) out.boundaries.push_back(boundary_of(r));
    const std::vector<c10::optional<std::vector<c10::IValue>>> examples = run.region_inputs(out.plan, out.boundaries);
    bool again = false;
    for (std::size_t k = 0; k < out.plan.regions.size(); ++k) {
      const planned_region& region = out.plan.regions[k];
      torch::jit::Module piece = region_module(
          "__torch__.tbk.partition." + method + "_region" + std::to_string(k), region, out.boundaries[k]);
      try {
        out.modules.push_back(lower(piece, backend,
                                    region_spec(options, method, examples[k], region_origin(method, k, region)),
                                    options.path));
      } catch (...) {
        const std::string why = current_exception_text();
        auto named = nodes_named_in(region, why);
        if (named.empty() && run.observed() && !examples[k]) {
          // The run never reached the region (a branch not taken): its failure without example
          // inputs is not the user's, and the region stays in TorchScript.
          for (torch::jit::Node* node : region.nodes) {
            named.emplace_back(node, "the example run never reached it (a branch not taken), and lowering "
                                     "without example inputs failed: " + why);
          }
        }
        if (named.empty()) {
          raise("tbk::partition(" + backend + "): method '" + method + "', region " + std::to_string(k) + " [" +
                kinds_text(region.nodes) + "]: lowering failed: " + why);
        }
        for (const auto& [node, reason] : named) refused[node] = "refused by the backend at lowering: " + reason;
        again = true;
        break;
      }
    }
    if (!again) return out;
  }
}

// Partitions `method` of `root` in place: its graph made functional where alias analysis allows
// (an in-place activation joins its convolution's region) and tuples returned by branches only
// to be unpacked flattened (an unread element is no output), its regions planned and lowered, its
// nodes replaced by the calls. Returns the method's section of the report.
inline std::string partition_method(torch::jit::Module& root, const std::string& method,
                                    const std::string& backend,
                                    const std::function<std::string(const torch::jit::Node&)>& supports,
                                    const partition_options& options) {
  std::shared_ptr<torch::jit::Graph> graph = toGraphFunction(root.get_method(method).function()).graph();
  torch::jit::Inline(*graph);
  torch::jit::RemoveTensorMutation(graph);
  flatten_branch_tuples(graph);
  torch::jit::EliminateDeadCode(graph);

  lowered_plan lowered = plan_and_lower(graph, root, method, backend, supports, options);
  std::string report = method_report(method, *graph, lowered.plan, lowered.boundaries);

  // Rewriting a region replaces the values it made: later regions read the call's results.
  std::unordered_map<const torch::jit::Value*, torch::jit::Value*> replaced;
  for (std::size_t k = 0; k < lowered.plan.regions.size(); ++k) {
    planned_region& region = lowered.plan.regions[k];
    region_boundary& boundary = lowered.boundaries[k];
    for (torch::jit::Value*& v : boundary.inputs) {
      if (auto found = replaced.find(v); found != replaced.end()) v = found->second;
    }
    // Earlier rewrites may have moved some of its nodes after their calls.
    std::sort(region.nodes.begin(), region.nodes.end(),
              [](const torch::jit::Node* a, const torch::jit::Node* b) { return a->isBefore(b); });
    const std::string name = region_name(method, k);
    root.register_module(name, lowered.modules[k]);
    const c10::TypePtr result = lowered.modules[k].get_method("forward").function().getSchema().returns()[0].type();
    const std::vector<torch::jit::Value*> results =
        replace_region(region, boundary, name, lowered.modules[k].type(), result);
    for (std::size_t i = 0; i < results.size(); ++i) replaced[boundary.outputs[i]] = results[i];
  }
  torch::jit::EliminateDeadCode(graph);
  graph->lint();
  return report;
}

}  // namespace detail

// A copy of `module` in which each method named in `options.methods` runs every maximal,
// connected region of nodes that `backend` supports as a call of that region's lowered module
// (submodule `_tbk_region_<method>_<k>`), and the rest in TorchScript. The result is an ordinary
// TorchScript module: it saves, loads (C++, Python, the lite interpreter) and runs with only the
// backend's registration present. Its report (tbk::report) is kept in it.
inline torch::jit::Module partition(const torch::jit::Module& module, const std::string& backend,
                                    const partition_options& options = {}) {
  detail::check_partition_options(module, backend, options);
  const auto supports = detail::capability_of(backend, options);

  torch::jit::Module root = module.clone();
  if (options.freeze) {
    // as torch::jit::freeze: freezing is for inference, and a module in training mode would be
    // frozen as something else than what it computes (dropout, batch norm's batch statistics)
    if (module.hasattr("training") && module.is_training()) {  // torch::jit::freeze's own test
      detail::raise("tbk::partition(" + backend + "): freeze needs the module in eval mode, as "
                    "torch.jit.freeze does; module '" + module.type()->name()->qualifiedName() +
                    "' is in training mode: call .eval() on it first");
    }
    std::vector<std::string> others;  // freeze keeps forward; the other methods are named
    for (const std::string& m : options.methods) {
      if (m != "forward") others.push_back(m);
    }
    root = torch::jit::freeze(root, others);
  }

  std::string report = "tbk.partition: backend " + backend + ", path " +
                       (options.path == lowering_path::fast ? "fast" : "native") + ", min_nodes " +
                       std::to_string(options.min_nodes) + ", max_regions " +
                       (options.max_regions == 0 ? std::string("none")
                                                 : std::to_string(options.max_regions)) +
                       (options.freeze ? ", frozen" : "") + "\n";
  for (const std::string& method : options.methods) {
    report += detail::partition_method(root, method, backend, supports, options);
  }
  root.register_attribute(detail::report_attribute(), c10::StringType::get(), report);
  return root;
}

// The placement report of a module made by tbk::partition (kept in the module, so a loaded one
// has it too).
inline std::string report(const torch::jit::Module& module) {
  if (!module.hasattr(detail::report_attribute())) {
    detail::raise("tbk::report: module '" + module.type()->name()->qualifiedName() +
                  "' was not made by tbk::partition (it has no partition report)");
  }
  return module.attr(detail::report_attribute()).toStringRef();
}

}  // namespace tbk
