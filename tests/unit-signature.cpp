// unit-signature.cpp: typed execute signatures and the casts behind them (tbk/signature.hpp,
// tbk/cast.hpp): every parameter type, a raw list result and rest<T>, std::optional<T>, the
// signature as TorchScript text, call-time mismatches, lowering's check of each method's schema,
// and outputs known only at call time.

#include <ATen/ATen.h>
#include <tbk/tbk.hpp>

#include <optional>  // std::optional
#include <string>    // std::string
#include <tuple>     // std::tuple
#include <vector>    // std::vector

#include "test_backends.hpp"  // raw_list_backend, affine_compile, compile_directly
#include "support.hpp"        // last: doctest's CHECK macros over glog's

using tbk_test::affine_compile;
using tbk_test::compile_directly;
using tbk_test::error_of;
using tbk_test::inputs;
using tbk_test::raw_list_backend;
using tbk_test::script;

namespace {

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

// Registers each backend these tests lower to once per process: the shared "tbk_test_scale",
// then this file's own.
void register_test_backends() {
  tbk_test::register_shared_test_backends();
  static const bool done = [] {
    tbk::register_backend<all_types_backend>("tbk_test_all_types");
    tbk::register_backend<raw_list_backend>("tbk_test_raw_list");
    return true;
  }();
  (void)done;
}

}  // namespace

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

// ---- std::optional parameters (one type with c10::optional since torch 2.1, another before) -----

namespace {

struct plus_maybe_execute {  // x + y, or x when y is None
  static at::Tensor execute(const std::string&, const at::Tensor& x, std::optional<at::Tensor> y) {
    return y ? x + *y : x.clone();
  }
};
using plus_maybe_backend = tbk::backend<affine_compile, plus_maybe_execute>;

}  // namespace

TEST_CASE("std::optional<T> is an execute parameter type on every torch release") {
  static const bool registered =
      (tbk::register_backend<plus_maybe_backend>("tbk_lowering_plus_maybe"), true);
  (void)registered;
  CHECK(plus_maybe_backend::execute_signature() == "(Tensor, Optional[Tensor]) -> Tensor");
  auto lowered = tbk::lower(script(R"(
    def forward(self, x: Tensor, y: Optional[Tensor] = None) -> Tensor:
        return x if y is None else x + y
  )"), "tbk_lowering_plus_maybe", tbk::spec().method("forward"));
  const auto x = torch::randn({3}), y = torch::randn({3});
  CHECK(torch::equal(lowered.forward({x, y}).toTensor(), x + y));
  CHECK(torch::equal(lowered.forward({x}).toTensor(), x));
}
