// test_scale.cpp: the consumer's backend put through tbk's conformance kit, from outside tbk.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <tbk/testing.hpp>

TBK_TEST_BACKEND("consumer_scale")
    .module("def forward(self, x: Tensor) -> Tensor:\n  return x * 3.0\n")
    .spec(tbk::spec().method("forward", {{"factor", 3.0}}))
    .inputs([] { return std::vector<c10::IValue>{at::randn({16})}; });
