// tbk/detail/partition_plan.hpp: which nodes of a method's graph a backend runs, grouped into
// regions, and why every other node stays in TorchScript. Regions are maximal, connected (by a
// value one node makes and another reads, or by a value both read) and never make a cycle with
// the rest of the graph; each block (prim::If / prim::Loop bodies) is
// planned on its own. Non-template; the graph is only read here (tbk/detail/partition_rewrite.hpp
// changes it).
#pragma once

#include <tbk/detail/errors.hpp>
#include <tbk/detail/messages.hpp>  // node_text

#include <torch/csrc/jit/ir/alias_analysis.h>  // torch::jit::AliasDb
#include <torch/csrc/jit/ir/ir.h>              // torch::jit::Graph, Block, Node, Value

#include <algorithm>      // std::sort, std::stable_sort, std::remove_if
#include <cstddef>        // std::size_t
#include <functional>     // std::function
#include <set>            // std::set
#include <string>         // std::string
#include <unordered_map>  // std::unordered_map
#include <unordered_set>  // std::unordered_set
#include <vector>         // std::vector

namespace tbk::detail {

// The options that shape regions (tbk::partition_options holds them for users).
struct region_limits {
  std::size_t min_nodes = 1;    // smaller regions stay in TorchScript
  std::size_t max_regions = 0;  // per method, the largest kept; 0: no limit
  bool inside_blocks = true;    // partition the bodies of prim::If and prim::Loop too
};

// Supported nodes of one block that run as one call of the backend, in the block's order.
struct planned_region {
  std::vector<torch::jit::Node*> nodes;
  std::vector<std::string> notes;  // why it was kept apart from a neighbour, if it was
};

// A node that stays in TorchScript, and why.
struct left_node {
  torch::jit::Node* node;
  std::string reason;
};

struct partition_plan {
  std::vector<planned_region> regions;  // in graph order
  std::vector<left_node> left;          // in graph order
};

// Nodes that are bookkeeping rather than work: never placed, never reported. Constants are
// copied into every region that uses them; attribute reads stay with the module.
inline bool is_bookkeeping(const torch::jit::Node* node) {
  const auto kind = node->kind();
  return kind == c10::prim::Constant || kind == c10::prim::GetAttr;
}

// Whether values of `type` can be passed to or returned from a lowered method.
inline bool crosses_to_backend(const c10::TypePtr& type) {
  switch (type->kind()) {
    case c10::TypeKind::TensorType:
    case c10::TypeKind::IntType:
    case c10::TypeKind::FloatType:
    case c10::TypeKind::BoolType:
    case c10::TypeKind::StringType:
    case c10::TypeKind::NumberType:
    case c10::TypeKind::DeviceObjType:
    case c10::TypeKind::ScalarTypeType:
    case c10::TypeKind::LayoutType:
      return true;
    case c10::TypeKind::ListType:
    case c10::TypeKind::OptionalType:
    case c10::TypeKind::TupleType: {
      for (const c10::TypePtr& element : type->containedTypes()) {
        if (!crosses_to_backend(element)) return false;
      }
      return !type->containedTypes().empty();
    }
    default:
      return false;
  }
}

// A node that orders the nodes around it: it has side effects (other than raising), or writes
// memory. Regions never span one, so the region's call can sit where its last node was.
inline bool is_barrier(const torch::jit::Node* node) {
  if (node->kind() == c10::prim::RaiseException) return false;
  if (node->hasSideEffects() || node->kind() == c10::prim::SetAttr) return true;
  if (const c10::FunctionSchema* schema = node->maybeSchema()) {
    if (schema->is_mutable()) return true;
  }
  for (const torch::jit::Block* block : node->blocks()) {
    for (const torch::jit::Node* inner : block->nodes()) {
      if (is_barrier(inner)) return true;
    }
  }
  return false;
}

// The node of `block` that contains `node` (itself, or the prim::If / prim::Loop it is nested
// in); null when `node` is not inside `block`.
inline torch::jit::Node* ancestor_in(torch::jit::Node* node, const torch::jit::Block* block) {
  while (node != nullptr && node->owningBlock() != block) {
    torch::jit::Block* owner = node->owningBlock();
    node = owner == nullptr ? nullptr : owner->owningNode();
  }
  return node;
}

// The values a node reads, its nested blocks' reads included.
inline void collect_reads(torch::jit::Node* node, std::vector<torch::jit::Value*>& out) {
  for (torch::jit::Value* v : node->inputs()) out.push_back(v);
  for (torch::jit::Block* block : node->blocks()) {
    for (torch::jit::Node* inner : block->nodes()) collect_reads(inner, out);
    for (torch::jit::Value* v : block->outputs()) out.push_back(v);
  }
}

// One block's nodes as a DAG: positions, and edges between nodes of the block (a read inside a
// nested block is an edge to the node that owns that block).
class block_dag {
 public:
  explicit block_dag(torch::jit::Block* block) {
    for (torch::jit::Node* node : block->nodes()) {
      position_[node] = nodes_.size();
      nodes_.push_back(node);
    }
    producers_.resize(nodes_.size());
    consumers_.resize(nodes_.size());
    for (std::size_t i = 0; i < nodes_.size(); ++i) {
      std::vector<torch::jit::Value*> reads;
      collect_reads(nodes_[i], reads);
      for (torch::jit::Value* v : reads) {
        torch::jit::Node* producer = ancestor_in(v->node(), block);
        if (producer == nullptr || producer == nodes_[i] ||
            producer->kind() == c10::prim::Param) {
          continue;
        }
        const std::size_t p = position_.at(producer);
        if (!contains(producers_[i], p)) {
          producers_[i].push_back(p);
          consumers_[p].push_back(i);
        }
      }
    }
  }

  // Links nodes that read a common value (not a constant): grouping them saves a call, and
  // they count as connected. `can_group` says which nodes may be linked.
  template <class Pred>
  void link_shared_reads(Pred can_group) {
    siblings_.assign(nodes_.size(), {});
    std::unordered_map<const torch::jit::Value*, std::vector<std::size_t>> readers;
    for (std::size_t i = 0; i < nodes_.size(); ++i) {
      if (!can_group(i)) continue;
      for (const torch::jit::Value* v : nodes_[i]->inputs()) {
        if (v->node()->kind() == c10::prim::Constant) continue;
        auto& list = readers[v];
        if (std::find(list.begin(), list.end(), i) == list.end()) list.push_back(i);
      }
    }
    for (const auto& entry : readers) {
      const std::vector<std::size_t>& list = entry.second;
      for (std::size_t a = 0; a < list.size(); ++a) {
        for (std::size_t b = a + 1; b < list.size(); ++b) {
          if (!contains(siblings_[list[a]], list[b])) siblings_[list[a]].push_back(list[b]);
          if (!contains(siblings_[list[b]], list[a])) siblings_[list[b]].push_back(list[a]);
        }
      }
    }
  }

  // The nodes a region containing node i may grow to: its producers, its consumers, and the
  // nodes that read a value it reads.
  std::vector<std::size_t> neighbours(std::size_t i) const {
    std::vector<std::size_t> out = producers_[i];
    for (std::size_t c : consumers_[i]) out.push_back(c);
    if (!siblings_.empty()) {
      for (std::size_t s : siblings_[i]) {
        if (!contains(out, s)) out.push_back(s);
      }
    }
    return out;
  }

  std::size_t size() const { return nodes_.size(); }
  torch::jit::Node* node(std::size_t i) const { return nodes_[i]; }

  // Whether some path leaves the set `member` and comes back into it: grouping the set would
  // make a cycle. Other regions count as one node each (`group[i]`: node i's region, or -1): a
  // path that enters one leaves it from any of its nodes. Returns the first node outside the
  // set on such a path, or -1.
  long outside_path(const std::vector<char>& member, const std::vector<long>& group) const {
    std::unordered_map<long, std::vector<std::size_t>> members_of;
    for (std::size_t i = 0; i < nodes_.size(); ++i) {
      if (group[i] >= 0 && !member[i]) members_of[group[i]].push_back(i);
    }
    std::vector<char> seen(nodes_.size(), 0);
    std::vector<std::pair<std::size_t, std::size_t>> stack;  // (node, first outside node)
    auto visit = [&](std::size_t c, std::size_t first) {
      if (seen[c]) return;
      seen[c] = 1;
      stack.emplace_back(c, first);
      if (group[c] < 0) return;
      for (std::size_t other : members_of[group[c]]) {  // the whole region is reached
        if (!seen[other]) {
          seen[other] = 1;
          stack.emplace_back(other, first);
        }
      }
    };
    for (std::size_t i = 0; i < nodes_.size(); ++i) {
      if (!member[i]) continue;
      for (std::size_t c : consumers_[i]) {
        if (!member[c]) visit(c, c);
      }
    }
    while (!stack.empty()) {
      auto [at, first] = stack.back();
      stack.pop_back();
      for (std::size_t c : consumers_[at]) {
        if (member[c]) return static_cast<long>(first);
        visit(c, first);
      }
    }
    return -1;
  }

 private:
  static bool contains(const std::vector<std::size_t>& v, std::size_t x) {
    return std::find(v.begin(), v.end(), x) != v.end();
  }

  std::vector<torch::jit::Node*> nodes_;
  std::unordered_map<const torch::jit::Node*, std::size_t> position_;
  std::vector<std::vector<std::size_t>> producers_, consumers_, siblings_;
};

// Plans the regions of a graph for a backend whose capability is `refusal_of` (why it cannot
// run a node; empty when it can).
class region_planner {
 public:
  region_planner(const std::shared_ptr<torch::jit::Graph>& graph,
                 std::function<std::string(const torch::jit::Node&)> refusal_of, region_limits limits)
      : graph_(graph), alias_(graph), backend_refusal_(std::move(refusal_of)), limits_(limits) {}

  partition_plan plan() {
    partition_plan out;
    plan_block(graph_->block(), out);
    apply_limits(out);
    return out;
  }

 private:
  // Why `node` cannot be in a region; empty when it can.
  std::string refusal(torch::jit::Node* node) {
    if (node->hasSideEffects() && node->kind() != c10::prim::RaiseException) {
      return "has side effects";
    }
    if (is_barrier(node)) return "writes memory in place";
    for (torch::jit::Value* v : node->outputs()) {
      if (alias_.hasWriters(v)) return "its result is modified in place later";
      if (!crosses_to_backend(v->type())) {
        return "its result (" + v->type()->annotation_str() + ") cannot be a backend's output";
      }
    }
    // (Reading a value that is written later is fine: the write is a barrier, so the region's
    // call runs before it, as the node did.)
    for (torch::jit::Value* v : node->inputs()) {
      if (v->node()->kind() == c10::prim::Constant) continue;
      if (!crosses_to_backend(v->type())) {
        return "reads a " + v->type()->annotation_str() + ", which cannot be a backend's input";
      }
    }
    return backend_refusal_(*node);  // "not supported by the backend[: reason]", or empty
  }

  // Reports every node nested in `node`'s blocks as left, for `reason`.
  void leave_nested(torch::jit::Node* node, const std::string& reason, partition_plan& out) {
    for (torch::jit::Block* block : node->blocks()) {
      for (torch::jit::Node* inner : block->nodes()) {
        if (is_bookkeeping(inner)) continue;
        out.left.push_back({inner, reason});
        leave_nested(inner, reason, out);
      }
    }
  }

  // One block's regions, in four phases: which nodes may go (blocks of control flow planned on
  // their own), regions grown greedily in the block's order, neighbouring regions merged until
  // each is maximal, then collected in order.
  void plan_block(torch::jit::Block* block, partition_plan& out) {
    block_regions regions(block);
    mark_eligible(regions, out);
    regions.dag.link_shared_reads([&](std::size_t i) { return regions.eligible[i] != 0; });
    grow_regions(regions);
    merge_regions(regions);
    collect_regions(regions, out);
  }

  // One block's nodes as they are grouped: union-find links over node positions, and what the
  // cycle check needs.
  struct block_regions {
    explicit block_regions(torch::jit::Block* block)
        : dag(block), n(dag.size()), eligible(n, 0), epoch(n, 0), cycle_note(n), region(n, -1) {}

    block_dag dag;
    std::size_t n;
    std::vector<char> eligible;
    std::vector<std::size_t> epoch;       // barriers before the node: regions never cross one
    std::vector<std::string> cycle_note;  // why the node was kept apart from a neighbour's region
    std::vector<long> region;             // union-find parent links; -1: in no region

    std::size_t find(std::size_t i) {
      std::size_t r = i;
      while (region[r] != static_cast<long>(r)) r = static_cast<std::size_t>(region[r]);
      while (region[i] != static_cast<long>(r)) {
        const std::size_t next = static_cast<std::size_t>(region[i]);
        region[i] = static_cast<long>(r);
        i = next;
      }
      return r;
    }

    // The node through which grouping the regions `roots` with node `extra` (or none, -1) would
    // make a cycle with the rest of the block; -1 when none would.
    long cycle_through(const std::vector<std::size_t>& roots, long extra) {
      std::vector<char> member(n, 0);
      std::vector<long> group(n, -1);
      for (std::size_t i = 0; i < n; ++i) {
        if (region[i] < 0 || static_cast<long>(i) == extra) continue;
        const std::size_t r = find(i);
        group[i] = static_cast<long>(r);
        member[i] = std::find(roots.begin(), roots.end(), r) != roots.end();
      }
      if (extra >= 0) member[static_cast<std::size_t>(extra)] = 1;
      return dag.outside_path(member, group);
    }
  };

  // Phase 1: which nodes may go; every other one is left with its reason. Control flow stays in
  // TorchScript, its blocks planned on their own (or left whole, inside_blocks off).
  void mark_eligible(block_regions& b, partition_plan& out) {
    std::size_t barriers = 0;
    for (std::size_t i = 0; i < b.n; ++i) {
      torch::jit::Node* node = b.dag.node(i);
      b.epoch[i] = barriers;
      if (is_barrier(node)) ++barriers;
      if (is_bookkeeping(node)) continue;
      if (!node->blocks().empty()) {
        const std::string kind = node->kind().toQualString();
        if (limits_.inside_blocks) {
          out.left.push_back({node, "control flow stays in TorchScript (its blocks are "
                                    "partitioned on their own)"});
          for (torch::jit::Block* inner : node->blocks()) plan_block(inner, out);
        } else {
          out.left.push_back({node, "control flow stays in TorchScript"});
          leave_nested(node, "inside a " + kind + " block (inside_blocks is off)", out);
        }
        continue;
      }
      std::string why = refusal(node);
      if (why.empty()) {
        b.eligible[i] = 1;
      } else {
        out.left.push_back({node, std::move(why)});
      }
    }
  }

  // Phase 2, greedy, in the block's order: a node joins the regions of its neighbours placed
  // before it (producers, nodes reading what it reads) when that makes no cycle.
  static void grow_regions(block_regions& b) {
    for (std::size_t i = 0; i < b.n; ++i) {
      if (!b.eligible[i]) continue;
      std::vector<std::size_t> candidates;
      for (std::size_t p : b.dag.neighbours(i)) {
        if (p > i || b.region[p] < 0 || b.epoch[p] != b.epoch[i]) continue;
        const std::size_t r = b.find(p);
        if (std::find(candidates.begin(), candidates.end(), r) == candidates.end()) {
          candidates.push_back(r);
        }
      }
      b.region[i] = static_cast<long>(i);
      if (candidates.empty()) continue;
      if (candidates.size() > 1 && b.cycle_through(candidates, static_cast<long>(i)) < 0) {
        for (std::size_t r : candidates) b.region[r] = static_cast<long>(i);
        continue;
      }
      for (std::size_t r : candidates) {
        const long through = b.cycle_through({r}, static_cast<long>(i));
        if (through < 0) {
          b.region[r] = static_cast<long>(i);
          break;
        }
        b.cycle_note[i] = "kept apart from the region of " + node_text(b.dag.node(r)) +
                          ": joining it would make a cycle through " +
                          node_text(b.dag.node(static_cast<std::size_t>(through)));
      }
    }
  }

  // Phase 3: neighbouring regions merge while that makes no cycle, until none can: each region
  // ends maximal.
  static void merge_regions(block_regions& b) {
    for (bool merged = true; merged;) {
      merged = false;
      std::set<std::pair<std::size_t, std::size_t>> tried;  // region pairs, since the last merge
      for (std::size_t i = 0; i < b.n && !merged; ++i) {
        if (b.region[i] < 0) continue;
        for (std::size_t c : b.dag.neighbours(i)) {
          if (b.region[c] < 0 || b.epoch[c] != b.epoch[i]) continue;
          const std::size_t first = b.find(i), second = b.find(c);
          if (first == second || !tried.emplace(std::min(first, second), std::max(first, second)).second ||
              b.cycle_through({first, second}, -1) >= 0) {
            continue;
          }
          b.region[second] = static_cast<long>(first);
          merged = true;
          break;
        }
      }
    }
  }

  // Phase 4: the regions, each in the block's order, in the order of their first nodes.
  static void collect_regions(block_regions& b, partition_plan& out) {
    std::unordered_map<std::size_t, std::size_t> index;  // root -> position in `found`
    std::vector<planned_region> found;
    for (std::size_t i = 0; i < b.n; ++i) {
      if (b.region[i] < 0) continue;
      const std::size_t r = b.find(i);
      auto [at, fresh] = index.emplace(r, found.size());
      if (fresh) found.emplace_back();
      found[at->second].nodes.push_back(b.dag.node(i));
      if (!b.cycle_note[i].empty()) found[at->second].notes.push_back(b.cycle_note[i]);
    }
    for (planned_region& r : found) {
      leave_lists_read_outside(r, out);
      if (!r.nodes.empty()) out.regions.push_back(std::move(r));
    }
  }

  // A list the region builds (prim::ListConstruct) and only nodes outside it read stays in
  // TorchScript: its elements leave the region as values, and the list is built where it is read.
  // A backend's execute policy returns tensors; a List output would not fit it (cat([y[:, :2],
  // y[:, 2:2], y[:, 2:]]) with the empty slice and its cat left out did that).
  // (Last node first, so that a list read only by a list left out is left out too.)
  static void leave_lists_read_outside(planned_region& r, partition_plan& out) {
    std::unordered_set<const torch::jit::Node*> members(r.nodes.begin(), r.nodes.end());
    auto read_inside = [&](const torch::jit::Node* node) {
      for (const torch::jit::Use& use : node->output()->uses()) {
        if (members.count(use.user) != 0) return true;
      }
      return false;
    };
    std::vector<torch::jit::Node*> left;
    for (auto it = r.nodes.rbegin(); it != r.nodes.rend(); ++it) {
      if ((*it)->kind() == c10::prim::ListConstruct && !read_inside(*it)) {
        members.erase(*it);
        left.push_back(*it);
      }
    }
    for (auto it = left.rbegin(); it != left.rend(); ++it) {
      out.left.push_back({*it, "a list the region would return is built outside it, from the tensors the "
                               "region returns (every node that reads the list is outside the region)"});
    }
    r.nodes.erase(std::remove_if(r.nodes.begin(), r.nodes.end(),
                                 [&](const torch::jit::Node* node) { return members.count(node) == 0; }),
                  r.nodes.end());
  }

  // min_nodes and max_regions; what they drop is reported with the reason.
  void apply_limits(partition_plan& out) const {
    std::vector<planned_region> kept;
    auto leave = [&](const planned_region& r, const std::string& reason) {
      std::string why = reason;
      for (const std::string& note : r.notes) why += "; " + note;
      for (torch::jit::Node* node : r.nodes) out.left.push_back({node, why});
    };
    for (planned_region& r : out.regions) {
      if (r.nodes.size() < limits_.min_nodes) {
        leave(r, "its region has " + std::to_string(r.nodes.size()) + " node" +
                     (r.nodes.size() == 1 ? "" : "s") + ", below min_nodes (" +
                     std::to_string(limits_.min_nodes) + ")");
      } else {
        kept.push_back(std::move(r));
      }
    }
    std::stable_sort(kept.begin(), kept.end(), [](const planned_region& a, const planned_region& b) {
      return a.nodes.size() > b.nodes.size();
    });
    if (limits_.max_regions > 0 && kept.size() > limits_.max_regions) {
      for (std::size_t i = limits_.max_regions; i < kept.size(); ++i) {
        leave(kept[i], "its region is not among the " + std::to_string(limits_.max_regions) +
                           " largest (max_regions)");
      }
      kept.resize(limits_.max_regions);
    }
    // Regions and left nodes in graph order (nested blocks where they appear).
    std::unordered_map<const torch::jit::Node*, std::size_t> order;
    std::size_t k = 0;
    for (const torch::jit::Node* node : graph_->nodes()) walk_order(node, order, k);
    std::stable_sort(kept.begin(), kept.end(), [&](const planned_region& a, const planned_region& b) {
      return order.at(a.nodes.front()) < order.at(b.nodes.front());
    });
    out.regions = std::move(kept);
    std::stable_sort(out.left.begin(), out.left.end(), [&](const left_node& a, const left_node& b) {
      return order.at(a.node) < order.at(b.node);
    });
  }

  static void walk_order(const torch::jit::Node* node,
                         std::unordered_map<const torch::jit::Node*, std::size_t>& order,
                         std::size_t& k) {
    order[node] = k++;
    for (const torch::jit::Block* block : node->blocks()) {
      for (const torch::jit::Node* inner : block->nodes()) walk_order(inner, order, k);
    }
  }

  std::shared_ptr<torch::jit::Graph> graph_;
  torch::jit::AliasDb alias_;
  std::function<std::string(const torch::jit::Node&)> backend_refusal_;  // why not, empty: supported
  region_limits limits_;
};

}  // namespace tbk::detail
