// support.hpp: helpers the unit tests share: scripting a module, catching an error's text,
// comparing a result with the tensor it should be.
#pragma once

// libtorch includes glog, whose CHECK, CHECK_EQ, ... macros would replace doctest's (a failed
// glog CHECK aborts the process instead of failing the test). Include every libtorch header a
// test needs before this file, or through it; doctest's macros are then defined last.
#include <ATen/ATen.h>
#include <tbk/tbk.hpp>
#include <torch/script.h>  // torch::jit::Module, torch::jit::load

#include <tbk/testing/doctest_over_glog.hpp>

#include <sstream>  // std::stringstream
#include <string>   // std::string

namespace tbk_test {

// A scripted module of class `name` with the given TorchScript methods.
inline torch::jit::Module script(const std::string& source, const std::string& name = "M") {
  torch::jit::Module m(name);
  m.define(source);
  return m;
}

// Saves `module` into memory and loads it back.
inline torch::jit::Module round_trip(const torch::jit::Module& module) {
  std::stringstream bytes;
  module.save(bytes);
  return torch::jit::load(bytes);
}

// The text of the exception `fn` throws; the test fails when it throws none.
template <class F>
std::string error_of(F&& fn) {
  try {
    fn();
  } catch (const c10::Error& e) {
    return e.what_without_backtrace();
  } catch (const std::exception& e) {
    return e.what();
  }
  FAIL_CHECK("expected an exception, but none was thrown");
  return "<no exception>";
}

// Checks that `got` has the dtype, shape and values of `want`.
inline void check_same(const at::Tensor& got, const at::Tensor& want) {
  CHECK_MESSAGE((got.scalar_type() == want.scalar_type()),
                "dtype " << c10::toString(got.scalar_type()) << ", expected "
                         << c10::toString(want.scalar_type()));
  CHECK_MESSAGE(got.sizes() == want.sizes(), "shape " << c10::str(got.sizes()) << ", expected "
                                                      << c10::str(want.sizes()));
  CHECK(torch::equal(got, want));
}

}  // namespace tbk_test

#define CHECK_CONTAINS(text, part)                                   \
  CHECK_MESSAGE(std::string(text).find(part) != std::string::npos,   \
                "expected to find \"" << (part) << "\" in:\n" << (text))
