// unit-partition.cpp: tbk::partition and tbk::report with the add/sub backend for partitioned
// models ("add_sub_graph": aten::add and aten::sub) and the model runner (any region), on methods
// that mix supported nodes with matmul, relu, lists, `if` and `for`; and a property test over
// random graphs.

#include "add_sub.hpp"
#include "add_sub_graph.hpp"

#include <tbk/testing.hpp>                  // TBK_TEST_BACKEND
#include <torch/csrc/jit/mobile/import.h>  // torch::jit::_load_for_mobile

#include <cstdio>         // std::fprintf
#include <random>         // std::mt19937
#include <set>            // std::set
#include <sstream>        // std::stringstream
#include <string>         // std::string
#include <unordered_set>  // std::unordered_set
#include <vector>         // std::vector

#include "support.hpp"  // last: doctest's CHECK macros over glog's

using tbk_test::error_of;
using tbk_test::round_trip;
using tbk_test::script;

namespace {

const char* const mixed_source = R"(
  def forward(self, x: Tensor, y: Tensor, n: int) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
      a = x + y
      b = a - x
      m = torch.matmul(b, self.w)
      c = torch.relu(m) + b
      d = c - 1
      for i in range(n):
          d = d + y
          d = torch.relu(d)
      if n > 2:
          z = d + 1 - y
      else:
          z = d * 2
      l = torch.cat([x + y, x - y])
      return d, a, z, l
  def helper(self, x: Tensor) -> Tensor:
      return x + self.w - 1
)";

torch::jit::Module mixed_module() {
  torch::jit::Module m("Mixed");
  m.register_parameter("w", torch::randn({3, 3}), false);
  m.define(mixed_source);
  return m;
}

std::vector<c10::IValue> mixed_inputs(int64_t n) {
  return {torch::randn({3, 3}), torch::randn({3, 3}), n};
}

// Whether two results are the same values (tensors equal, tuples element by element).
bool same(const c10::IValue& a, const c10::IValue& b) {
  if (a.isTuple() && b.isTuple()) {
    const auto& x = a.toTupleRef().elements();
    const auto& y = b.toTupleRef().elements();
    if (x.size() != y.size()) return false;
    for (std::size_t i = 0; i < x.size(); ++i) {
      if (!same(x[i], y[i])) return false;
    }
    return true;
  }
  if (a.isTensor() && b.isTensor()) return a.toTensor().equal(b.toTensor());
  return a == b;
}

// The region submodules of a partitioned module.
std::vector<std::string> regions_of(const torch::jit::Module& m) {
  std::vector<std::string> out;
  for (const auto& child : m.named_children()) {
    if (child.name.rfind("_tbk_region_", 0) == 0) out.push_back(child.name);
  }
  return out;
}

// How many nodes of `kind` a graph has, nested blocks included.
std::size_t count_kind(const torch::jit::Block* block, c10::Symbol kind) {
  std::size_t n = 0;
  for (const torch::jit::Node* node : block->nodes()) {
    n += node->kind() == kind;
    for (const torch::jit::Block* inner : node->blocks()) n += count_kind(inner, kind);
  }
  return n;
}

tbk::partition_options options(std::vector<std::string> methods = {"forward"}) {
  tbk::partition_options o;
  o.methods = std::move(methods);
  return o;
}

}  // namespace

// The conformance kit on the add/sub backend for partitioned models, with a method such as
// tbk::partition cuts (forward only, add and sub of tensors and constants).
TBK_TEST_BACKEND("add_sub_graph")
    .module(R"(
def forward(self, x: Tensor, y: Tensor) -> Tuple[Tensor, Tensor]:
    a = x + y
    return a - 0.5, a - y
)")
    .inputs([] { return std::vector<c10::IValue>{at::randn({256}), at::randn({256})}; });

TEST_CASE("tbk::node_text names a node by its kind and source line, as the report does") {
  torch::jit::Module m = script(R"(
def forward(self, x: Tensor) -> Tensor:
    return torch.relu(x)
)");
  int named = 0;
  for (const torch::jit::Node* node : m.get_method("forward").graph()->nodes()) {
    if (node->kind() != c10::aten::relu) continue;
    CHECK(tbk::node_text(*node) == "aten::relu (line 3)");
    ++named;
  }
  CHECK(named == 1);
}

TEST_CASE("partition runs supported nodes in the backend and the rest in TorchScript, on both paths") {
  torch::jit::Module m = mixed_module();
  for (tbk::lowering_path path : {tbk::lowering_path::native, tbk::lowering_path::fast}) {
    CAPTURE(static_cast<int>(path));
    tbk::partition_options o = options({"forward", "helper"});
    o.path = path;
    torch::jit::Module p = tbk::partition(m, "add_sub_graph", o);
    for (int64_t n : {0, 3}) {
      const std::vector<c10::IValue> in = mixed_inputs(n);
      CHECK(same(m.forward(in), p.forward(in)));
      CHECK(same(m.run_method("helper", in[0]), p.run_method("helper", in[0])));
    }
    // Every add and sub went to the backend; matmul, relu, cat, mul, the loop and the if stay.
    const auto graph = p.get_method("forward").graph();
    CHECK(count_kind(graph->block(), c10::aten::add) == 0);
    CHECK(count_kind(graph->block(), c10::aten::sub) == 0);
    CHECK(count_kind(graph->block(), c10::aten::matmul) == 1);
    CHECK(count_kind(graph->block(), c10::prim::Loop) == 1);
    CHECK(count_kind(graph->block(), c10::prim::If) == 1);
    // forward: {a, b, x + y, x - y} (siblings read x and y), {c, d}, the loop's add, the if's
    // add and sub; helper: one region.
    CHECK(regions_of(p).size() == 5);

    const std::string report = tbk::report(p);
    CHECK_CONTAINS(report, "method forward: 4 regions, 9 of 19 nodes in the backend");
    CHECK_CONTAINS(report, "region 0 (_tbk_region_forward_0): 4 nodes [aten::add x2, aten::sub x2], 2 inputs, 4 outputs");
    CHECK_CONTAINS(report, "(inside prim::Loop (line 8)): 1 node [aten::add x1]");
    CHECK_CONTAINS(report, "(inside prim::If (line 11)): 2 nodes [aten::add x1, aten::sub x1]");
    CHECK_CONTAINS(report, "note: kept apart from the region of aten::sub (line 4): joining it "
                           "would make a cycle through aten::matmul (line 5)");
    CHECK_CONTAINS(report, "aten::matmul (line 5): not supported by the backend");
    CHECK_CONTAINS(report, "aten::mul (line 14) (inside prim::If (line 11)): not supported by the backend");
    CHECK_CONTAINS(report, "prim::Loop (line 8): control flow stays in TorchScript");
    CHECK_CONTAINS(report, "method helper: 1 region, 2 of 2 nodes in the backend");
  }
}

TEST_CASE("a partitioned model saves and loads in C++ and the lite interpreter, report included") {
  torch::jit::Module m = mixed_module();
  tbk::partition_options o = options({"forward", "helper"});
  torch::jit::Module p = tbk::partition(m, "add_sub_graph", o);
  const std::vector<c10::IValue> in = mixed_inputs(3);
  const c10::IValue expected = m.forward(in);

  torch::jit::Module loaded = round_trip(p);
  CHECK(same(expected, loaded.forward(in)));
  CHECK(tbk::report(loaded) == tbk::report(p));

  std::stringstream lite;
  p._save_for_mobile(lite);
  torch::jit::mobile::Module mobile = torch::jit::_load_for_mobile(lite);
  CHECK(same(expected, mobile.forward(in)));
  CHECK(same(m.run_method("helper", in[0]), mobile.run_method("helper", in[0])));

  o.path = tbk::lowering_path::fast;
  torch::jit::Module fast = tbk::partition(m, "add_sub_graph", o);
  CHECK(same(expected, round_trip(fast).forward(in)));
  std::stringstream fast_lite;
  fast._save_for_mobile(fast_lite);
  CHECK(same(expected, torch::jit::_load_for_mobile(fast_lite).forward(in)));
}

TEST_CASE("a region whose result comes back to it through an unsupported node is split") {
  torch::jit::Module m = script(R"(
    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        a = x + y
        u = torch.relu(a)
        return a - u
  )");
  const std::vector<c10::IValue> in{torch::randn({4}), torch::randn({4})};
  torch::jit::Module p = tbk::partition(m, "add_sub_graph");
  CHECK(same(m.forward(in), p.forward(in)));
  CHECK(regions_of(p).size() == 2);
  CHECK_CONTAINS(tbk::report(p), "would make a cycle through aten::relu (line 4)");

  // Too small to be worth a call: both stay, and say why.
  tbk::partition_options o;
  o.min_nodes = 2;
  torch::jit::Module none = tbk::partition(m, "add_sub_graph", o);
  CHECK(regions_of(none).empty());
  CHECK(same(m.forward(in), none.forward(in)));
  const std::string report = tbk::report(none);
  CHECK_CONTAINS(report, "method forward: 0 regions, 0 of 3 nodes in the backend");
  CHECK_CONTAINS(report, "aten::add (line 3): its region has 1 node, below min_nodes (2)");
  CHECK_CONTAINS(report, "aten::sub (line 5): its region has 1 node, below min_nodes (2); kept "
                         "apart from the region of aten::add (line 3): joining it would make a "
                         "cycle through aten::relu (line 4)");
}

TEST_CASE("a list only nodes outside a region read is built outside it, from the region's tensors") {
  // A backend's execute policy returns tensors, not a List: the list stays in TorchScript.
  torch::jit::Module m = script(R"(
    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        return torch.cat([x + y, x - y])
  )");
  const std::vector<c10::IValue> in{torch::randn({4}), torch::randn({4})};
  tbk::partition_options o;
  o.supports = [](const torch::jit::Node& node) { return node.kind() != c10::aten::cat; };
  torch::jit::Module p = tbk::partition(m, "add_sub_graph", o);
  CHECK(same(m.forward(in), p.forward(in)));
  CHECK(regions_of(p).size() == 1);
  CHECK_CONTAINS(tbk::report(p), "method forward: 1 region, 2 of 4 nodes in the backend");
  CHECK_CONTAINS(tbk::report(p), "prim::ListConstruct: a list the region would return is built "
                                 "outside it, from the tensors the region returns");
}

TEST_CASE("a tuple a branch returns only to be unpacked is one output per element; an unread one is none") {
  // as torch.nn.MultiheadAttention's (output, weights) with `out, _ = attention(...)`
  torch::jit::Module m = script(R"(
    def forward(self, x: Tensor, y: Tensor, flag: bool) -> Tensor:
        if flag:
            r = (x + y, x - y)
        else:
            r = (x - y, x + y)
        a, unread = r
        return torch.relu(a)
  )");
  torch::jit::Module p = tbk::partition(m, "add_sub_graph");
  for (bool flag : {true, false}) {
    const std::vector<c10::IValue> in{torch::randn({4}), torch::randn({4}), flag};
    CHECK(same(m.forward(in), p.forward(in)));
  }
  const std::string report = tbk::report(p);
  CHECK_CONTAINS(report, "method forward: 2 regions, 2 of 4 nodes in the backend");
  CHECK_CONTAINS(report, "1 node [aten::add x1], 2 inputs, 1 output");
  CHECK_CONTAINS(report, "1 node [aten::sub x1], 2 inputs, 1 output");

  // a tuple returned early from a nested branch: until then it is a placeholder
  // (prim::Uninitialized), as in torch.nn.MultiheadAttention's fast path
  torch::jit::Module early = script(R"(
    def pair(self, x: Tensor, y: Tensor, flag: bool, nested: bool) -> Tuple[Tensor, Tensor]:
        if flag:
            if nested:
                return x + y, x - y
        z = x * y
        return z - x, z + y
    def forward(self, x: Tensor, y: Tensor, flag: bool, nested: bool) -> Tensor:
        a, unread = self.pair(x, y, flag, nested)
        return torch.relu(a)
  )");
  torch::jit::Module q = tbk::partition(early, "add_sub_graph");
  for (bool flag : {true, false}) {
    for (bool nested : {true, false}) {
      const std::vector<c10::IValue> in{torch::randn({4}), torch::randn({4}), flag, nested};
      CHECK(same(early.forward(in), q.forward(in)));
    }
  }
}

TEST_CASE("max_regions keeps the largest regions; inside_blocks off leaves control flow alone") {
  torch::jit::Module m = mixed_module();
  const std::vector<c10::IValue> in = mixed_inputs(3);
  tbk::partition_options o;
  o.max_regions = 1;
  torch::jit::Module one = tbk::partition(m, "add_sub_graph", o);
  CHECK(regions_of(one) == std::vector<std::string>{"_tbk_region_forward_0"});
  CHECK(same(m.forward(in), one.forward(in)));
  CHECK_CONTAINS(tbk::report(one), "method forward: 1 region, 4 of 19 nodes in the backend");
  CHECK_CONTAINS(tbk::report(one), "its region is not among the 1 largest (max_regions)");

  tbk::partition_options flat;
  flat.inside_blocks = false;
  torch::jit::Module outside = tbk::partition(m, "add_sub_graph", flat);
  CHECK(regions_of(outside).size() == 2);
  CHECK(same(m.forward(in), outside.forward(in)));
  CHECK_CONTAINS(tbk::report(outside),
                 "aten::add (line 9) (inside prim::Loop (line 8)): inside a prim::Loop block "
                 "(inside_blocks is off)");
}

TEST_CASE("values modified in place stay in TorchScript, and results stay right") {
  torch::jit::Module m = script(R"(
    def forward(self, x: Tensor, y: Tensor) -> Tuple[Tensor, Tensor]:
        a = x + y
        b = a - 1
        a.add_(y)
        c = b + x
        return a, c - y
  )");
  const std::vector<c10::IValue> in{torch::randn({5}), torch::randn({5})};
  torch::jit::Module p = tbk::partition(m, "add_sub_graph");
  CHECK(same(m.forward(in), p.forward(in)));
  const std::string report = tbk::report(p);
  // b = a - 1 reads a before add_ writes it: it may go; a itself may not (the backend's result
  // would be another tensor than the one add_ changes).
  CHECK_CONTAINS(report, "aten::add (line 3): its result is modified in place later");
  CHECK_CONTAINS(report, "aten::add_ (line 5): writes memory in place");
  CHECK_CONTAINS(report, "method forward: 2 regions, 3 of 6 nodes in the backend");
}

TEST_CASE("parameters are passed in, or become constants of their regions with freeze") {
  torch::jit::Module m = mixed_module();
  m.eval();
  const std::vector<c10::IValue> in = mixed_inputs(1);
  tbk::partition_options o = options({"helper"});
  torch::jit::Module passed = tbk::partition(m, "add_sub_graph", o);
  CHECK_CONTAINS(tbk::report(passed), "2 nodes [aten::add x1, aten::sub x1], 2 inputs, 1 output");
  o.freeze = true;
  torch::jit::Module frozen = tbk::partition(m, "add_sub_graph", o);
  CHECK_CONTAINS(tbk::report(frozen), "2 nodes [aten::add x1, aten::sub x1], 1 input, 1 output");
  CHECK(same(m.run_method("helper", in[0]), frozen.run_method("helper", in[0])));
  CHECK(same(m.run_method("helper", in[0]), round_trip(frozen).run_method("helper", in[0])));
}

TEST_CASE("freeze refuses a module in training mode, as torch.jit.freeze does") {
  torch::jit::Module m = mixed_module();
  m.register_attribute("training", c10::BoolType::get(), true);  // as torch.jit.script gives it
  tbk::partition_options o = options({"helper"});
  o.freeze = true;
  CHECK_CONTAINS(error_of([&] { tbk::partition(m, "add_sub_graph", o); }),
                 "tbk::partition(add_sub_graph): freeze needs the module in eval mode, as torch.jit.freeze does; "
                 "module '__torch__.");
  CHECK_CONTAINS(error_of([&] { tbk::partition(m, "add_sub_graph", o); }),
                 "' is in training mode: call .eval() on it first");
  m.eval();
  CHECK_NOTHROW(tbk::partition(m, "add_sub_graph", o));
}

TEST_CASE("example inputs reach each region's compile spec as that region's own inputs") {
  torch::jit::Module m = mixed_module();
  tbk::partition_options o;
  o.example_inputs["forward"] = {torch::ones({3, 3}), torch::zeros({3, 3}), int64_t(2)};
  o.spec = tbk::spec().method("forward", {{"level", int64_t(2)}}).dict();
  torch::jit::Module p = tbk::partition(m, "add_sub_graph", o);
  // Region 1 ({c, d}) reads relu(matmul(b, w)) + ... : its inputs are relu(m) and b.
  // (PyTorch's code generation keeps the spec in the wrapper's __loweredModule__)
  auto spec_of = [&](const std::string& region) {
    return p.attr(region).toModule().attr("__loweredModule__").toModule().attr("__method_compile_spec").toGenericDict();
  };
  const auto spec = spec_of("_tbk_region_forward_1");
  const auto forward = spec.at("forward").toGenericDict();
  CHECK(forward.at("level").toInt() == 2);
  const auto examples = forward.at("example_inputs").toListRef();
  REQUIRE(examples.size() == 2);
  const at::Tensor x = torch::ones({3, 3}), y = torch::zeros({3, 3});
  const at::Tensor b = x + y - x;
  CHECK(examples[0].toTensor().equal(torch::relu(torch::matmul(b, m.attr("w").toTensor()))));
  CHECK(examples[1].toTensor().equal(b));
  // A region inside control flow gets the values of its first run: d + y in the loop's first
  // iteration reads d = c - 1 = relu(0) + 0 - 1 and y.
  const auto inside = spec_of("_tbk_region_forward_2").at("forward").toGenericDict();
  REQUIRE(inside.contains("example_inputs"));
  const auto first = inside.at("example_inputs").toListRef();
  REQUIRE(first.size() == 2);
  CHECK(first[0].toTensor().equal(torch::full({3, 3}, -1.0)));
  CHECK(first[1].toTensor().equal(y));
}

TEST_CASE("the model runner, a backend without a supports hook, partitions with a given one") {
  torch::jit::Module m = script(R"(
    def forward(self, x: Tensor) -> Tensor:
        y = torch.relu(torch.sigmoid(x) * 2.0)
        s = torch.sort(y)[0]
        return torch.tanh(s) + y
  )");
  const std::vector<c10::IValue> in{torch::randn({8})};
  CHECK_CONTAINS(error_of([&] { tbk::partition(m, "model_runner"); }),
                 "tbk::partition: backend 'model_runner' does not say which nodes it supports: "
                 "give its compile policy `static bool supports(const torch::jit::Node& node);`, "
                 "or pass a capability of your own (C++: partition_options::supports; Python: "
                 "tbk.partition(..., supports=callable))");
  tbk::partition_options o;
  o.supports = [](const torch::jit::Node& node) { return node.kind() != c10::aten::sort; };
  torch::jit::Module p = tbk::partition(m, "model_runner", o);
  CHECK(same(m.forward(in), p.forward(in)));
  CHECK(same(m.forward(in), round_trip(p).forward(in)));
  CHECK_CONTAINS(tbk::report(p), "aten::sort (line 4): not supported by the backend\n");

  // With a reason: the report gives it after the node
  o.supports = [](const torch::jit::Node& node) -> tbk::node_support {
    if (node.kind() == c10::aten::sort) return tbk::unsupported("sorting is not a kernel of this backend");
    return tbk::supported();
  };
  CHECK_CONTAINS(tbk::report(tbk::partition(m, "model_runner", o)),
                 "aten::sort (line 4): not supported by the backend: sorting is not a kernel of this backend");
}

namespace {

// A backend whose supports hook throws for additions.
struct throwing_supports_compile {
  static int64_t compile(const tbk::method_spec&, const c10::IValue&) { return 0; }
  static bool supports(const torch::jit::Node& node) {
    if (node.kind() == c10::aten::add) {
      throw std::runtime_error(std::string("cannot decide about ") + node.kind().toQualString());
    }
    return false;
  }
};
struct throwing_supports_execute {
  static at::Tensor execute(const int64_t&, const at::Tensor& x) { return x; }
};
using throwing_supports_backend = tbk::backend<throwing_supports_compile, throwing_supports_execute>;
TBK_REGISTER_BACKEND(throwing_supports_backend, "partition_throwing_supports");

}  // namespace

TEST_CASE("partition's mistakes are reported with what was expected and what came") {
  torch::jit::Module m = mixed_module();
  CHECK_CONTAINS(error_of([&] { tbk::partition(m, "no_such_backend"); }),
                 "tbk::partition: backend 'no_such_backend' is not registered in this process");
  CHECK_CONTAINS(error_of([&] { tbk::partition(m, "add_sub_graph", options({"backward"})); }),
                 "tbk::partition(add_sub_graph): module '__torch__.Mixed' has no method 'backward' "
                 "(its methods: forward, helper)");
  CHECK_CONTAINS(error_of([&] { tbk::partition(m, "add_sub_graph", options({})); }),
                 "tbk::partition(add_sub_graph): no method to partition");
  CHECK_CONTAINS(error_of([&] { tbk::partition(m, "add_sub_graph", options({"forward", "forward"})); }),
                 "method 'forward' is named twice");
  tbk::partition_options zero;
  zero.min_nodes = 0;
  CHECK_CONTAINS(error_of([&] { tbk::partition(m, "add_sub_graph", zero); }),
                 "tbk::partition(add_sub_graph): min_nodes must be at least 1");
  tbk::partition_options spec;
  spec.spec.insert("helper", tbk::detail::make_any_dict());
  CHECK_CONTAINS(error_of([&] { tbk::partition(m, "add_sub_graph", spec); }),
                 "the spec has options for method 'helper', which is not partitioned (methods: forward)");
  tbk::partition_options count;
  count.example_inputs["forward"] = {torch::ones({3, 3})};
  CHECK_CONTAINS(error_of([&] { tbk::partition(m, "add_sub_graph", count); }),
                 "tbk::partition(add_sub_graph): method 'forward' takes 3 inputs, but 1 example "
                 "input was given");
  tbk::partition_options shapes;
  shapes.example_inputs["forward"] = {torch::ones({3, 3}), torch::ones({2, 2}), int64_t(1)};
  CHECK_CONTAINS(error_of([&] { tbk::partition(m, "add_sub_graph", shapes); }),
                 "tbk::partition(add_sub_graph): running method 'forward' on its example inputs failed: ");
  torch::jit::Module p = tbk::partition(m, "add_sub_graph");
  CHECK_CONTAINS(error_of([&] { tbk::partition(p, "add_sub_graph"); }),
                 "tbk::partition(add_sub_graph): the module is partitioned already");
  CHECK_CONTAINS(error_of([&] { tbk::report(m); }),
                 "tbk::report: module '__torch__.Mixed' was not made by tbk::partition (it has no "
                 "partition report)");
  // A supports hook that throws: its message, with the backend and the node it was asked about.
  CHECK_CONTAINS(error_of([&] { tbk::partition(m, "partition_throwing_supports"); }),
                 "partition_throwing_supports: supports (asked about aten::add) failed: cannot "
                 "decide about aten::add");
  // The backend's own compile error, with the region it was lowering.
  tbk::partition_options adds;
  adds.supports = [](const torch::jit::Node& n) { return n.kind() == c10::aten::add; };
  CHECK_CONTAINS(error_of([&] { tbk::partition(m, "scaled_activation", adds); }),
                 "tbk::partition(scaled_activation): method 'forward', region 0 [aten::add x2]: "
                 "lowering failed: scaled_activation.forward: the method's TorchScript signature "
                 "does not fit the execute policy: the method takes 2 inputs, the execute policy 1 input.");
}

// ---- property test: random graphs ----------------------------------------------------------

namespace {

// A random method over `inputs` tensors: each statement adds one value made by add/sub (the
// backend's) or mul/relu/neg/cat-and-sum/in-place add (not the backend's) from earlier values;
// it returns a few of the values.
std::string random_method(std::mt19937& rng, int inputs, int statements) {
  auto pick = [&](int below) { return std::uniform_int_distribution<int>(0, below - 1)(rng); };
  std::vector<std::string> values;
  std::string params;
  for (int i = 0; i < inputs; ++i) {
    values.push_back("x" + std::to_string(i));
    params += ", x" + std::to_string(i) + ": Tensor";
  }
  std::string body;
  for (int s = 0; s < statements; ++s) {
    const std::string a = values[pick(static_cast<int>(values.size()))];
    const std::string b = values[pick(static_cast<int>(values.size()))];
    const std::string v = "v" + std::to_string(s);
    switch (pick(9)) {
      case 0: case 1: body += v + " = " + a + " + " + b + "\n"; break;
      case 2: body += v + " = " + a + " - " + b + "\n"; break;
      case 3: body += v + " = " + a + " - 0.5\n"; break;
      case 4: body += v + " = torch.mul(" + a + ", " + b + ")\n"; break;
      case 5: body += v + " = torch.relu(" + a + ")\n"; break;
      case 6: body += v + " = torch.neg(" + a + ")\n"; break;
      case 7: body += v + " = torch.stack([" + a + ", " + b + "]).sum(0)\n"; break;
      default: body += v + " = " + a + " * 1.5\n" + "        " + v + ".add_(" + b + ")\n"; break;
    }
    values.push_back(v);
  }
  std::string returned = values.back();
  for (int k = 0; k < 2; ++k) returned += ", " + values[inputs + pick(statements)];
  return "def forward(self" + params + "):\n" + [&] {
    std::string indented;
    std::stringstream lines(body);
    for (std::string line; std::getline(lines, line);) {
      indented += line.rfind("        ", 0) == 0 ? "    " + line.substr(8) + "\n" : "    " + line + "\n";
    }
    return indented;
  }() + "    return (" + returned + ")\n";
}

// Whether some path leads from `from` to `to` through at least one other node (a path that
// would make a cycle if the two were one region).
bool indirect_path(const torch::jit::Node* from, const torch::jit::Node* to,
                   const std::unordered_set<const torch::jit::Node*>& unit_of_from) {
  std::vector<const torch::jit::Node*> stack;
  std::unordered_set<const torch::jit::Node*> seen;
  for (const torch::jit::Node* n : unit_of_from) {
    for (const torch::jit::Value* v : n->outputs()) {
      for (const torch::jit::Use& use : v->uses()) {
        if (use.user != to && unit_of_from.count(use.user) == 0) stack.push_back(use.user);
      }
    }
  }
  (void)from;
  while (!stack.empty()) {
    const torch::jit::Node* n = stack.back();
    stack.pop_back();
    if (n == to) return true;
    if (!seen.insert(n).second) continue;
    for (const torch::jit::Value* v : n->outputs()) {
      for (const torch::jit::Use& use : v->uses()) stack.push_back(use.user);
    }
  }
  return false;
}

}  // namespace

TEST_CASE("random graphs: equal results, no cycles, every region maximal") {
  std::mt19937 rng(20261128);
  std::size_t graphs = 0, nodes = 0, regions = 0, splits = 0;
  for (int g = 0; g < 300; ++g) {
    const int inputs = 2 + g % 2;
    const int statements = 4 + g % 17;
    const std::string source = random_method(rng, inputs, statements);
    CAPTURE(source);
    torch::jit::Module m = script(source, "Random");
    std::vector<c10::IValue> in;
    for (int i = 0; i < inputs; ++i) in.push_back(torch::randn({4}));

    tbk::partition_options o;
    o.path = g % 3 == 0 ? tbk::lowering_path::fast : tbk::lowering_path::native;
    torch::jit::Module p = tbk::partition(m, "add_sub_graph", o);
    REQUIRE(same(m.forward(in), p.forward(in)));  // lint passed inside partition; it ran

    // Every add/sub not modified in place went to the backend.
    const auto graph = p.get_method("forward").graph();
    const std::string report = tbk::report(p);
    const std::size_t left_adds = count_kind(graph->block(), c10::aten::add) +
                                  count_kind(graph->block(), c10::aten::sub);
    std::size_t refused = 0;
    for (std::size_t at = report.find("modified in place"); at != std::string::npos;
         at = report.find("modified in place", at + 1)) {
      ++refused;
    }
    CHECK(left_adds <= refused);

    // Maximal: two region calls that are neighbours (one reads the other's result, or both
    // read a value) could not be one region without a cycle.
    std::vector<const torch::jit::Node*> calls;
    for (const torch::jit::Node* n : graph->nodes()) {
      if (n->kind() == c10::prim::CallMethod) calls.push_back(n);
    }
    auto unit = [](const torch::jit::Node* call) {
      std::unordered_set<const torch::jit::Node*> u{call};
      for (const torch::jit::Use& use : call->output()->uses()) {
        if (use.user->kind() == c10::prim::TupleUnpack) u.insert(use.user);
      }
      return u;
    };
    for (std::size_t i = 0; i < calls.size(); ++i) {
      for (std::size_t j = i + 1; j < calls.size(); ++j) {
        const auto ui = unit(calls[i]);
        bool neighbours = false;
        for (const torch::jit::Node* n : ui) {
          for (const torch::jit::Value* v : n->outputs()) {
            for (const torch::jit::Use& use : v->uses()) neighbours = neighbours || use.user == calls[j];
          }
        }
        for (std::size_t a = 1; a < calls[i]->inputs().size(); ++a) {
          for (std::size_t b = 1; b < calls[j]->inputs().size(); ++b) {
            neighbours = neighbours || (calls[i]->input(a) == calls[j]->input(b) &&
                                        calls[i]->input(a)->node()->kind() != c10::prim::Constant);
          }
        }
        bool barrier_between = false;  // (regions never span a node that writes memory)
        for (const torch::jit::Node* n = calls[i]; n != calls[j]; n = n->next()) {
          barrier_between = barrier_between || n->kind() == c10::aten::add_;
        }
        if (!neighbours || barrier_between) continue;
        CHECK_MESSAGE(indirect_path(calls[i], calls[j], ui),
                      "regions " << i << " and " << j << " could be one:\n" << *graph);
      }
    }
    ++graphs;
    nodes += static_cast<std::size_t>(statements);
    regions += calls.size();
    for (std::size_t at = report.find("note: kept apart"); at != std::string::npos;
         at = report.find("note: kept apart", at + 1)) {
      ++splits;
    }
  }
  std::fprintf(stderr, "random graphs: %zu graphs, %zu statements, %zu regions, %zu kept apart "
               "to avoid a cycle\n", graphs, nodes, regions, splits);
  CHECK(graphs == 300);
  CHECK(splits > 0);  // the generator does make the cycles the planner must avoid
}
