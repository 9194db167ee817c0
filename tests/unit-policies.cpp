// unit-policies.cpp: policies of every kind (stateless, stateful, struct and IValue handles),
// the execute signature types, compile spec views, registration and lowering, and the errors a
// user can cause in each.

#include <ATen/ATen.h>
#include <tbk/tbk.hpp>

#include <atomic>     // std::atomic
#include <thread>     // std::thread
#include <stdexcept>  // std::runtime_error
#include <string>     // std::string

#include "support.hpp"  // last: doctest's CHECK macros over glog's

using tbk_test::error_of;
using tbk_test::round_trip;
using tbk_test::script;

// A result type of our own, added through the extension point.
template <>
struct tbk::result_caster<std::string> {
  static constexpr bool supported = true;
  static std::string name() { return "str"; }
  static c10::impl::GenericList pack(std::string&& s) {
    c10::impl::GenericList out(c10::AnyType::get());
    out.push_back(std::move(s));
    return out;
  }
};

namespace {

// ---- a stateless backend with a struct handle and spec options -------------------------------

struct scale_handle {
  double factor;
  std::string method;
};

struct scale_compile {
  static scale_handle compile(const tbk::method_spec& method, const torch::jit::Module& module) {
    // The payload is the module itself (default preprocess), taken as a Module.
    CHECK(module.find_method(method.name()).has_value());
    return {method.get<double>("factor", 1.0), method.name()};
  }
};

struct scale_execute {
  static at::Tensor execute(const scale_handle& h, const at::Tensor& x) { return x * h.factor; }
};

using scale_backend = tbk::backend<scale_compile, scale_execute>;

// ---- a stateful backend: one policy object for compile and execute, per backend instance ----

std::atomic<int> stateful_instances{0};

struct counting_policy {
  counting_policy() { ++stateful_instances; }
  int64_t compiled = 0;  // state written at load time ...
  int64_t calls = 0;     // ... and at call time

  int64_t compile(const tbk::method_spec&, const c10::IValue&) { return ++compiled; }
  std::tuple<int64_t, int64_t> execute(const int64_t& handle) { return {handle, ++calls}; }
};

using counting_backend = tbk::backend<counting_policy, counting_policy>;

// A stateful policy whose execute may run on many threads at once: per-instance state read by
// every call (the offset, set at compile time) and updated atomically (the call count).
struct offset_policy {
  std::atomic<int64_t> calls{0};
  double offset = 0;
  int64_t compile(const tbk::method_spec& method, const c10::IValue&) {
    offset = method.get<double>("offset", 0.0);  // load time: no call runs yet
    return 0;
  }
  std::tuple<at::Tensor, int64_t> execute(const int64_t&, const at::Tensor& x) {
    return {x + offset, ++calls};
  }
};
using offset_backend = tbk::backend<offset_policy, offset_policy>;

// ---- IValue handles: compile returns c10::IValue or std::string --------------------------------

struct ivalue_handle_compile {
  static c10::IValue compile(const tbk::method_spec& method, const c10::IValue&) {
    return c10::IValue(method.name() + "!");
  }
};
struct ivalue_handle_execute {
  static std::string execute(const c10::IValue& handle) { return handle.toStringRef(); }
};
using ivalue_handle_backend = tbk::backend<ivalue_handle_compile, ivalue_handle_execute>;

// ---- every parameter type, and a tuple of mixed results ----------------------------------------

struct all_types_compile {
  static std::string compile(const tbk::method_spec& method, const c10::IValue&) {
    return method.name();
  }
};
struct all_types_execute {
  static std::tuple<at::Tensor, int64_t, double, bool, std::string> execute(
      const std::string& method, at::Tensor x, int64_t n, double s, bool flag,
      const std::string& label, c10::optional<at::Tensor> maybe, std::vector<at::Tensor> xs,
      c10::IValue anything) {
    at::Tensor sum = x.clone();
    for (const auto& t : xs) sum = sum + t;
    if (maybe) sum = sum + *maybe;
    return {sum * s, n * 2, s / 2, !flag, method + ":" + label + ":" + anything.tagKind()};
  }
};
using all_types_backend = tbk::backend<all_types_compile, all_types_execute>;

// ---- results: a raw list, and rest<int64_t> ---------------------------------------------------

struct name_compile {
  static std::string compile(const tbk::method_spec& method, const c10::IValue&) {
    return method.name();
  }
};
struct raw_list_execute {
  static c10::impl::GenericList execute(const std::string&, tbk::rest<int64_t> numbers) {
    int64_t total = 0;
    for (int64_t n : numbers) total += n;
    c10::impl::GenericList out(c10::AnyType::get());
    out.push_back(torch::full({1}, total, torch::kLong));
    out.push_back(static_cast<int64_t>(numbers.size()));
    return out;
  }
};
using raw_list_backend = tbk::backend<name_compile, raw_list_execute>;

// ---- policies that throw, and an availability policy with a reason ----------------------------

struct throwing_compile {
  static std::string compile(const tbk::method_spec& method, const c10::IValue&) {
    if (method.name() == "bad_compile") throw std::runtime_error("no kernel for this method");
    if (method.name() == "bad_compile_odd") throw 42;
    return method.name();
  }
  static c10::IValue preprocess(const torch::jit::Module& module, const tbk::compile_spec& spec) {
    if (spec.contains("bad_preprocess")) TORCH_CHECK(false, "the module is too large");
    return module._ivalue();
  }
};
struct throwing_execute {
  static at::Tensor execute(const std::string& method, const at::Tensor& x) {
    if (method == "runtime") throw std::runtime_error("kernel launch failed");
    if (method == "c10") TORCH_CHECK(false, "device lost");
    if (method == "odd") throw 7;
    return x;
  }
};
using throwing_backend = tbk::backend<throwing_compile, throwing_execute>;

struct needs_avx_availability {
  static tbk::availability is_available() { return tbk::unavailable("needs AVX-1024"); }
};
using unavailable_backend = tbk::backend<name_compile, throwing_execute, needs_avx_availability>;

std::atomic<bool> switchable_available{true};
struct switchable_availability {
  static tbk::availability is_available() {
    return switchable_available ? tbk::available() : tbk::unavailable("the device is switched off");
  }
};
using switchable_backend = tbk::backend<name_compile, throwing_execute, switchable_availability>;

// Registers each test backend once per process.
void register_test_backends() {
  static const bool done = [] {
    tbk::register_backend<scale_backend>("tbk_test_scale");
    tbk::register_backend<scale_backend>("tbk_test_scale_again");  // one type, two names
    tbk::register_backend<counting_backend>("tbk_test_counting");
    tbk::register_backend<offset_backend>("tbk_test_offset");
    tbk::register_backend<ivalue_handle_backend>("tbk_test_ivalue_handle");
    tbk::register_backend<all_types_backend>("tbk_test_all_types");
    tbk::register_backend<raw_list_backend>("tbk_test_raw_list");
    tbk::register_backend<throwing_backend>("tbk_test_throwing");
    tbk::register_backend<unavailable_backend>("tbk_test_unavailable");
    tbk::register_backend<switchable_backend>("tbk_test_switchable");
    return true;
  }();
  (void)done;
}

const char* const scale_source = R"(
  def forward(self, x: Tensor) -> Tensor:
      return x
  def twice(self, x: Tensor) -> Tensor:
      return x
)";

}  // namespace

TEST_CASE("stateless policies, a struct handle and typed spec options") {
  register_test_backends();
  auto lowered = tbk::lower(script(scale_source), "tbk_test_scale",
                            tbk::spec().method("forward").method("twice", {{"factor", 2.0}}));
  auto x = torch::randn({5});
  CHECK(torch::equal(lowered.forward({x}).toTensor(), x * 1.0));
  CHECK(torch::equal(lowered.run_method("twice", x).toTensor(), x * 2.0));
  auto loaded = round_trip(lowered);  // compile runs again on load, with the saved spec
  CHECK(torch::equal(loaded.run_method("twice", x).toTensor(), x * 2.0));
}

TEST_CASE("one backend type registered under two names works under both") {
  register_test_backends();
  auto spec = tbk::spec().method("twice", {{"factor", 3}});  // an int converts to float
  auto first = tbk::lower(script(scale_source), "tbk_test_scale", spec);
  auto second = tbk::lower(script(scale_source), "tbk_test_scale_again", spec);
  auto x = torch::randn({3});
  CHECK(torch::equal(first.run_method("twice", x).toTensor(), x * 3.0));
  CHECK(torch::equal(round_trip(second).run_method("twice", x).toTensor(), x * 3.0));
  auto names = tbk::registered_backends();
  CHECK(std::count(names.begin(), names.end(), "tbk_test_scale_again") == 1);
}

TEST_CASE("stateful policies: one object per backend instance, shared by compile and execute") {
  register_test_backends();
  auto module = script(R"(
    def forward(self) -> Tuple[int, int]:
        return 0, 0
    def other(self) -> Tuple[int, int]:
        return 0, 0
  )");
  int before = stateful_instances.load();
  auto lowered = tbk::lower(module, "tbk_test_counting", tbk::spec().method("forward").method("other"));
  CHECK(stateful_instances.load() == before + 1);
  // compile ran once per method on this instance: handles 1 and 2 (dict order: forward, other)
  auto first = lowered.forward({}).toTuple();
  CHECK(first->elements()[0].toInt() == 1);
  CHECK(first->elements()[1].toInt() == 1);
  auto second = lowered.run_method("other").toTuple();
  CHECK(second->elements()[0].toInt() == 2);
  CHECK(second->elements()[1].toInt() == 2);  // execute's state persists across calls

  auto loaded = round_trip(lowered);  // a new instance, with fresh state
  CHECK(stateful_instances.load() == before + 2);
  CHECK(loaded.forward({}).toTuple()->elements()[1].toInt() == 1);
}

TEST_CASE("a stateful policy called from 8 threads, 10,000 calls each") {
  register_test_backends();
  auto lowered = tbk::lower(
      script("def forward(self, x: Tensor) -> Tuple[Tensor, int]:\n  return x, 0\n"),
      "tbk_test_offset", tbk::spec().method("forward", {{"offset", 0.5}}));
  constexpr int threads = 8, calls = 10000;
  std::atomic<int> wrong{0}, failed{0};
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      auto x = torch::full({3}, double(t), torch::kDouble);
      try {
        for (int i = 0; i < calls; ++i) {
          auto out = lowered.forward({x}).toTuple();
          if (!torch::equal(out->elements()[0].toTensor(), x + 0.5)) ++wrong;
        }
      } catch (...) {
        ++failed;
      }
    });
  }
  for (auto& thread : pool) thread.join();
  CHECK(wrong.load() == 0);
  CHECK(failed.load() == 0);
  // every call was counted once: the next call is number threads * calls + 1
  CHECK(lowered.forward({torch::zeros(1)}).toTuple()->elements()[1].toInt() == threads * calls + 1);
}

TEST_CASE("IValue handles and a result type added through tbk::result_caster") {
  register_test_backends();
  auto module = script("def hello(self) -> str:\n  return ''\n");
  auto lowered = tbk::lower(module, "tbk_test_ivalue_handle", tbk::spec().method("hello"));
  CHECK(lowered.run_method("hello").toStringRef() == "hello!");
  CHECK(round_trip(lowered).run_method("hello").toStringRef() == "hello!");
}

TEST_CASE("every supported parameter type, and a tuple of mixed results") {
  register_test_backends();
  auto module = script(R"(
    def forward(self, x: Tensor, n: int, s: float, flag: bool, label: str,
                maybe: Optional[Tensor], xs: List[Tensor], anything: Any
                ) -> Tuple[Tensor, int, float, bool, str]:
        return x, n, s, flag, label
  )");
  auto lowered = tbk::lower(module, "tbk_test_all_types", tbk::spec().method("forward"));
  auto x = torch::ones({2}), y = torch::full({2}, 2.0);
  std::vector<at::Tensor> xs = {y, y};

  auto out = lowered.forward({x, int64_t(21), 0.5, true, std::string("hi"), y, xs, 1.5})
                 .toTuple()->elements().vec();
  CHECK(torch::equal(out[0].toTensor(), (x + y + y + y) * 0.5));
  CHECK(out[1].toInt() == 42);
  CHECK(out[2].toDouble() == 0.25);
  CHECK(out[3].toBool() == false);
  CHECK(out[4].toStringRef() == "forward:hi:Double");

  auto none = lowered.forward({x, int64_t(1), 2.0, false, std::string(""), c10::IValue(), xs,
                               std::string("s")}).toTuple()->elements().vec();
  CHECK(torch::equal(none[0].toTensor(), (x + y + y) * 2.0));
  CHECK(none[4].toStringRef() == "forward::String");
}

TEST_CASE("a raw list result and rest<int64_t>") {
  register_test_backends();
  auto module = script(R"(
    def forward(self, a: int, b: int, c: int) -> Tuple[Tensor, int]:
        return torch.zeros(1), 0
  )");
  auto lowered = tbk::lower(module, "tbk_test_raw_list", tbk::spec().method("forward"));
  auto out = lowered.forward({int64_t(1), int64_t(2), int64_t(3)}).toTuple();
  CHECK(out->elements()[0].toTensor().item<int64_t>() == 6);
  CHECK(out->elements()[1].toInt() == 3);
}

TEST_CASE("the execute signature reads like TorchScript") {
  CHECK(all_types_backend::execute_signature() ==
        "(Tensor, int, float, bool, str, Optional[Tensor], List[Tensor], Any) -> "
        "Tuple[Tensor, int, float, bool, str]");
  CHECK(raw_list_backend::execute_signature() == "(*rest: int) -> List[Any]");
}

// ---- call-time mismatches, on the backend object itself ---------------------------------------

namespace {
// A compiled backend instance and its handles, as a lowered module holds them.
struct compiled {
  c10::intrusive_ptr<tbk::detail::backend_base> backend;
  c10::impl::GenericDict handles;
};

// `payload` is what preprocess would have made; a module is checked against the signature.
template <class Backend>
compiled compile_directly(const std::string& name, const std::vector<std::string>& methods,
                          c10::IValue payload = c10::IValue()) {
  auto backend = c10::make_intrusive<Backend>();
  backend->set_name(name);
  tbk::spec_builder spec;
  for (const auto& m : methods) spec.method(m);
  auto handles = backend->compile(std::move(payload), spec.dict());
  return {backend, handles};
}

c10::impl::GenericList inputs(std::initializer_list<c10::IValue> values) {
  c10::impl::GenericList out(c10::AnyType::get());
  for (const auto& v : values) out.push_back(v);
  return out;
}
}  // namespace

TEST_CASE("call-time mismatches name backend, method, position, expected and received") {
  auto c = compile_directly<all_types_backend>("tbk_test_all_types", {"forward"});
  auto call = [&](c10::impl::GenericList in) {
    return error_of([&] { c.backend->execute(c.handles.at("forward"), in); });
  };
  auto x = torch::ones({2, 3});
  const std::string accepts =
      "The execute policy accepts:\n    (Tensor, int, float, bool, str, Optional[Tensor], "
      "List[Tensor], Any) -> Tuple[Tensor, int, float, bool, str]";

  SUBCASE("too few inputs") {
    auto text = call(inputs({x, int64_t(1)}));
    CHECK_CONTAINS(text, "tbk_test_all_types.forward(): incompatible inputs for the execute policy");
    CHECK_CONTAINS(text, "expected 8 inputs, got 2");
    CHECK_CONTAINS(text, accepts);
    CHECK_CONTAINS(text, "Invoked with:\n    (Tensor(dtype=Float, shape=[2, 3]), int(1))");
  }
  SUBCASE("too many inputs") {
    auto text = call(inputs({x, int64_t(1), 1.0, true, std::string("s"), c10::IValue(),
                             std::vector<at::Tensor>{}, 1, 2}));
    CHECK_CONTAINS(text, "expected 8 inputs, got 9");
  }
  SUBCASE("an int where a Tensor is expected") {
    auto text = call(inputs({int64_t(3), int64_t(1), 1.0, true, std::string("s"), c10::IValue(),
                             std::vector<at::Tensor>{}, 1}));
    CHECK_CONTAINS(text, "inputs[0] should be Tensor, got int(3)");
  }
  SUBCASE("a string where an int is expected") {
    auto text = call(inputs({x, std::string("seven"), 1.0, true, std::string("s"), c10::IValue(),
                             std::vector<at::Tensor>{}, 1}));
    CHECK_CONTAINS(text, "inputs[1] should be int, got str");
  }
  SUBCASE("None where a float is expected") {
    auto text = call(inputs({x, int64_t(1), c10::IValue(), true, std::string("s"),
                             c10::IValue(), std::vector<at::Tensor>{}, 1}));
    CHECK_CONTAINS(text, "inputs[2] should be float, got None");
  }
  SUBCASE("an int where an optional tensor is expected") {
    auto text = call(inputs({x, int64_t(1), 1.0, true, std::string("s"), int64_t(5),
                             std::vector<at::Tensor>{}, 1}));
    CHECK_CONTAINS(text, "inputs[5] should be Optional[Tensor], got int(5)");
  }
  SUBCASE("a list of ints where a list of tensors is expected") {
    auto text = call(inputs({x, int64_t(1), 1.0, true, std::string("s"), c10::IValue(),
                             std::vector<int64_t>{1, 2}, 1}));
    CHECK_CONTAINS(text, "inputs[6] should be List[Tensor], got List[int]");
  }
}

TEST_CASE("lowering checks each method's TorchScript signature against the execute policy") {
  register_test_backends();
  auto lower = [](const std::string& source, const std::string& backend) {
    return error_of([&] { tbk::lower(script(source), backend, tbk::spec().method("forward")); });
  };
  SUBCASE("an argument of another type") {
    auto text = lower("def forward(self, x: float) -> Tensor:\n  return torch.zeros(1)\n",
                      "tbk_test_scale");
    CHECK_CONTAINS(text, "tbk_test_scale.forward: the method's TorchScript signature does not fit "
                         "the execute policy: argument 'x' (inputs[0]) is float, the execute "
                         "policy takes Tensor there.\n"
                         "    method:         forward(x: float) -> Tensor\n"
                         "    execute policy: (Tensor) -> Tensor");
  }
  SUBCASE("too many arguments") {
    auto text = lower("def forward(self, x: Tensor, y: Tensor) -> Tensor:\n  return x\n",
                      "tbk_test_scale");
    CHECK_CONTAINS(text, "the method takes 2 inputs, the execute policy 1 input");
  }
  SUBCASE("a tuple where the policy returns one tensor") {
    auto text = lower("def forward(self, x: Tensor) -> Tuple[Tensor, Tensor]:\n  return x, x\n",
                      "tbk_test_scale");
    CHECK_CONTAINS(text, "the method returns 2 output(s), the execute policy 1");
  }
  SUBCASE("an int goes where the policy takes a float, as in TorchScript") {
    CHECK_NOTHROW(tbk::lower(script(R"(
      def forward(self, x: Tensor, n: int, s: int, flag: bool, label: str,
                  maybe: Tensor, xs: List[Tensor], anything: int
                  ) -> Tuple[Tensor, int, float, bool, str]:
          return x, n, 1.0, flag, label
    )"), "tbk_test_all_types", tbk::spec().method("forward")));
  }
}

TEST_CASE("outputs known only at call time are checked against the method's declaration") {
  register_test_backends();
  // The raw list holds (Tensor, int); this method declares (Tensor, float). Lowering cannot
  // know, so the call says it.
  auto lowered = tbk::lower(script("def forward(self, a: int, b: int) -> Tuple[Tensor, float]:\n"
                                   "  return torch.zeros(1), 0.0\n"),
                            "tbk_test_raw_list", tbk::spec().method("forward"));
  CHECK_CONTAINS(error_of([&] { lowered.forward({int64_t(1), int64_t(2)}); }),
                 "tbk_test_raw_list.forward: execute returned int(2) as output 1, but the method "
                 "declares float");
  // forward of the add/sub backend returns two tensors; this method declares one.
  auto one = tbk::lower(script("def forward(self, a: Tensor, b: Tensor) -> Tensor:\n  return a\n"),
                        "custom_backend", tbk::spec().method("forward"));
  CHECK_CONTAINS(error_of([&] { one.forward({torch::ones(1), torch::ones(1)}); }),
                 "custom_backend.forward: execute returned 2 output(s), but the method returns 1");
}

TEST_CASE("a handle the backend did not make is refused clearly") {
  auto c = compile_directly<scale_backend>("tbk_test_scale", {"forward"},
                                           script(scale_source)._ivalue());
  auto text = error_of([&] { c.backend->execute(c10::IValue("forward"), inputs({torch::ones(1)})); });
  CHECK_CONTAINS(text, "tbk_test_scale: execute was given a handle (str) that this backend's "
                       "compile did not make");
  auto other = compile_directly<ivalue_handle_backend>("tbk_test_ivalue_handle", {"forward"});
  text = error_of([&] { c.backend->execute(other.handles.at("forward"), inputs({torch::ones(1)})); });
  CHECK_CONTAINS(text, "execute was given a handle (Capsule)");
}

TEST_CASE("errors thrown by policies reach the caller prefixed with backend and method") {
  register_test_backends();
  auto identity = [](const std::string& method) {
    return script("def " + method + "(self, x: Tensor) -> Tensor:\n  return x\n");
  };
  auto lower = [&](const std::string& method) {
    return tbk::lower(identity(method), "tbk_test_throwing", tbk::spec().method(method));
  };
  auto x = torch::ones({1});

  SUBCASE("std::runtime_error in execute") {
    auto lowered = lower("runtime");
    CHECK_CONTAINS(error_of([&] { lowered.run_method("runtime", x); }),
                   "tbk_test_throwing.runtime: execute policy failed: kernel launch failed");
  }
  SUBCASE("c10::Error in execute") {
    auto lowered = lower("c10");
    CHECK_CONTAINS(error_of([&] { lowered.run_method("c10", x); }),
                   "tbk_test_throwing.c10: execute policy failed: device lost");
  }
  SUBCASE("a non-std::exception in execute") {
    auto lowered = lower("odd");
    CHECK_CONTAINS(error_of([&] { lowered.run_method("odd", x); }),
                   "tbk_test_throwing.odd: execute policy failed: an exception that is not a "
                   "std::exception");
  }
  SUBCASE("std::runtime_error in compile") {
    CHECK_CONTAINS(error_of([&] { lower("bad_compile"); }),
                   "tbk_test_throwing.bad_compile: compile policy failed: no kernel for this method");
  }
  SUBCASE("a non-std::exception in compile") {
    CHECK_CONTAINS(error_of([&] { lower("bad_compile_odd"); }),
                   "tbk_test_throwing.bad_compile_odd: compile policy failed: an exception that "
                   "is not a std::exception");
  }
  SUBCASE("c10::Error in preprocess") {
    CHECK_CONTAINS(error_of([&] { lower("bad_preprocess"); }),
                   "tbk_test_throwing: preprocess failed: the module is too large");
  }
}

TEST_CASE("an unavailable backend says why, at lowering and at load time") {
  register_test_backends();
  auto backend = c10::make_intrusive<unavailable_backend>();
  CHECK_FALSE(backend->is_available());
  CHECK(backend->availability_report().reason() == "needs AVX-1024");

  auto module = script("def forward(self, x: Tensor) -> Tensor:\n  return x\n");
  CHECK_CONTAINS(error_of([&] {
                   tbk::lower(module, "tbk_test_unavailable", tbk::spec().method("forward"));
                 }),
                 "tbk_test_unavailable is not available: needs AVX-1024");

  switchable_available = true;
  auto lowered = tbk::lower(module, "tbk_test_switchable", tbk::spec().method("forward"));
  std::stringstream saved;
  lowered.save(saved);
  switchable_available = false;  // as on a machine without the device
  CHECK_CONTAINS(error_of([&] { torch::jit::load(saved); }),
                 "tbk_test_switchable is not available: the device is switched off");
  // The instance made while available keeps its answer: availability is asked once per instance.
  auto x = torch::ones({2});
  CHECK(torch::equal(lowered.forward({x}).toTensor(), x));
  switchable_available = true;
}

// ---- compile spec views -----------------------------------------------------------------------

namespace {
tbk::method_spec view(c10::IValue options) {
  return tbk::method_spec("my_backend", "forward", std::move(options));
}
c10::impl::GenericDict options(std::initializer_list<tbk::spec_builder::option> entries) {
  c10::impl::GenericDict d(c10::StringType::get(), c10::AnyType::get());
  for (const auto& e : entries) d.insert(e.first, e.second);
  return d;
}
}  // namespace

TEST_CASE("method_spec reads typed options, with fallbacks") {
  auto spec = view(options({{"threads", 4}, {"scale", 0.5}, {"mode", std::string("fast")},
                            {"fuse", true}}));
  CHECK(spec.name() == "forward");
  CHECK(spec.get<int64_t>("threads") == 4);
  CHECK(spec.get<double>("scale") == 0.5);
  CHECK(spec.get<std::string>("mode") == "fast");
  CHECK(spec.get<bool>("fuse"));
  CHECK(spec.get<int64_t>("missing", 7) == 7);
  CHECK(spec.contains("threads"));
  CHECK_FALSE(spec.contains("missing"));
  CHECK(spec.keys().size() == 4);
}

TEST_CASE("method_spec accepts PyTorch's {\"\": \"\"}, an empty dict and None") {
  c10::Dict<std::string, std::string> pytorch_style;
  pytorch_style.insert("", "");
  for (c10::IValue options : {c10::IValue(pytorch_style), c10::IValue(options({})), c10::IValue()}) {
    auto spec = view(options);
    CHECK(spec.keys().empty());
    CHECK(spec.get<int64_t>("threads", 1) == 1);
  }
}

TEST_CASE("method_spec errors name backend, method, key, expected and received type") {
  auto spec = view(options({{"threads", std::string("four")}}));
  auto text = error_of([&] { spec.get<int64_t>("threads"); });
  CHECK(text == "my_backend.forward: compile spec option 'threads' of method 'forward' should be "
                "int, got str");
  CHECK(error_of([&] { spec.get<int64_t>("threads", 1); }) == text);  // a fallback does not hide it
  CHECK(error_of([&] { spec.get<double>("scale"); }) ==
        "my_backend.forward: the compile spec of method 'forward' needs option 'scale' (float), "
        "which is missing");
  CHECK(error_of([&] { view(c10::IValue(std::string("fast"))).get<int64_t>("x", 0); }) ==
        "my_backend.forward: the compile spec of method 'forward' should be a dict of options "
        "(Dict[str, Any]), got str");
}

TEST_CASE("a compile spec error inside compile reaches the lowering caller") {
  register_test_backends();
  auto text = error_of([&] {
    tbk::lower(script(scale_source), "tbk_test_scale",
               tbk::spec().method("forward", {{"factor", std::string("big")}}));
  });
  CHECK_CONTAINS(text, "tbk_test_scale.forward: compile spec option 'factor' of method 'forward' "
                       "should be float, got str");
}

TEST_CASE("spec builder refuses a duplicate or empty method name") {
  CHECK(error_of([] { tbk::spec().method("forward").method("forward"); }) ==
        "tbk::spec: method 'forward' is named twice");
  CHECK(error_of([] { tbk::spec().method(""); }) == "tbk::spec: a method name cannot be empty");
}

TEST_CASE("example inputs: written by the spec builder, read typed by method_spec, with named errors") {
  const at::Tensor x = at::randn({2, 3});
  const auto built = tbk::spec().method("helper").method("forward", {{"threads", 4}}).example_inputs({x, int64_t(5)});
  auto spec = tbk::method_spec("my_backend", "forward", built.dict().at("forward"));
  CHECK(spec.has_example_inputs());
  CHECK(spec.get<int64_t>("threads") == 4);  // the method's other options stay
  const std::vector<c10::IValue> inputs = spec.example_inputs();
  REQUIRE(inputs.size() == 2);
  CHECK(inputs[0].toTensor().equal(x));
  CHECK(inputs[1].toInt() == 5);
  CHECK(error_of([&] { spec.example_tensors(); }) ==
        "my_backend.forward: example input 1 of method 'forward' should be a Tensor, got int(5)");
  auto tensors_only = tbk::method_spec("my_backend", "forward",
                                       tbk::spec().method("forward").example_inputs({x}).dict().at("forward"));
  CHECK(tensors_only.example_tensors().size() == 1);
  CHECK_FALSE(tbk::method_spec("my_backend", "helper", built.dict().at("helper")).has_example_inputs());
  // a tuple or a single tensor, as Python may give them, reads the same
  CHECK(view(options({{"example_inputs", c10::ivalue::Tuple::create({x, x})}})).example_tensors().size() == 2);
  CHECK(view(options({{"example_inputs", x}})).example_tensors().size() == 1);
  CHECK_CONTAINS(error_of([&] { view(options({})).example_inputs(); }),
                 "my_backend.forward: method 'forward' needs example inputs (compile spec option 'example_inputs')");
  CHECK(error_of([&] { view(options({{"example_inputs", int64_t(3)}})).example_inputs(); }) ==
        "my_backend.forward: compile spec option 'example_inputs' of method 'forward' should be a list of "
        "inputs, got int(3)");
  CHECK(error_of([] { tbk::spec().example_inputs({at::ones({1})}); }) ==
        "tbk::spec: example_inputs(...) follows the method it is for: tbk::spec().method(\"forward\").example_inputs({x})");
}

// ---- registration and lowering errors ---------------------------------------------------------

TEST_CASE("registering one name twice is a clear error, and the first registration stays") {
  register_test_backends();
  auto text = error_of([] { tbk::register_backend<raw_list_backend>("tbk_test_scale"); });
  CHECK_CONTAINS(text, "a backend named 'tbk_test_scale' is already registered in this process");
  auto lowered = tbk::lower(script(scale_source), "tbk_test_scale", tbk::spec().method("forward"));
  auto x = torch::ones({2});
  CHECK(torch::equal(lowered.forward({x}).toTensor(), x));
}

TEST_CASE("an invalid backend name is refused before anything is registered") {
  auto text = error_of([] { tbk::register_backend<scale_backend>("my-backend"); });
  CHECK_CONTAINS(text, "'my-backend' is not a valid backend name");
  CHECK(torch::getCustomClass("__torch__.torch.classes.__backends__.my-backend") == nullptr);
}

TEST_CASE("lowering errors: unknown backend, a method the module lacks, an empty spec") {
  register_test_backends();
  auto module = script(scale_source);
  auto text = error_of([&] { tbk::lower(module, "no_such_backend", tbk::spec().method("forward")); });
  CHECK_CONTAINS(text, "backend 'no_such_backend' is not registered in this process");
  CHECK_CONTAINS(text, "tbk_test_scale");  // lists what is registered

  text = error_of([&] { tbk::lower(module, "tbk_test_scale", tbk::spec().method("fwd")); });
  CHECK_CONTAINS(text, "the compile spec names method 'fwd', but module '__torch__.M' has no such "
                       "method (its methods: forward, twice)");

  text = error_of([&] { tbk::lower(module, "tbk_test_scale", tbk::spec()); });
  CHECK_CONTAINS(text, "names no method");
}
