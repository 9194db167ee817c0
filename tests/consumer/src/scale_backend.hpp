// scale_backend.hpp: a consumer's own backend: multiplies its input by a per-method factor read
// from the compile spec (default 2). docs/getting-started.md quotes this file.
#pragma once
#include <ATen/ATen.h>
#include <tbk/tbk.hpp>

struct scale_compile {  // load time, once per lowered method: its handle
  static double compile(const tbk::method_spec& method, const c10::IValue&) {
    return method.get<double>("factor", 2.0);
  }
};

struct scale_execute {  // call time: typed parameters, deduced
  static at::Tensor execute(const double& factor, const at::Tensor& x) { return x * factor; }
};

using scale_backend = tbk::backend<scale_compile, scale_execute>;
