// scaled_activation.hpp: a backend with per-method state read from typed compile-spec options:
// each lowered method computes activation(x * scale + bias) in one allocation, with "scale"
// (float, required, finite and not 0), "bias" (float, default 0) and "activation" (str: none,
// relu, tanh or sigmoid; default none). Options are validated when the model is lowered, and
// again when it is loaded. It is unavailable while SCALED_ACTIVATION_DISABLE is set.
#pragma once
#include <ATen/ATen.h>
#include <tbk/backend.hpp>   // tbk::backend, tbk::method_spec, tbk::availability
#include <tbk/register.hpp>  // TBK_REGISTER_BACKEND

#include <cmath>      // std::isfinite
#include <cstdlib>    // std::getenv
#include <stdexcept>  // std::invalid_argument
#include <string>     // std::string

enum class activation_kind { none, relu, tanh, sigmoid };

// What compile makes of one method's options: the method's state.
struct scaled_activation_handle {
  double scale;
  double bias;
  activation_kind activation;
};

struct scaled_activation_compile {
  static scaled_activation_handle compile(const tbk::method_spec& method, const c10::IValue&) {
    for (const std::string& key : method.keys()) {
      if (key != "scale" && key != "bias" && key != "activation") {
        throw std::invalid_argument("unknown option '" + key +
                                    "'; the options are scale (float), bias (float) and "
                                    "activation (str)");
      }
    }
    const double scale = method.get<double>("scale");  // tbk's error names a missing or mistyped one
    if (!std::isfinite(scale) || scale == 0.0) {
      throw std::invalid_argument("option 'scale' must be finite and not 0, got " +
                                  std::to_string(scale));
    }
    return {scale, method.get<double>("bias", 0.0),
            parse_activation(method.get<std::string>("activation", "none"))};
  }

  static activation_kind parse_activation(const std::string& name) {
    if (name == "none") return activation_kind::none;
    if (name == "relu") return activation_kind::relu;
    if (name == "tanh") return activation_kind::tanh;
    if (name == "sigmoid") return activation_kind::sigmoid;
    throw std::invalid_argument("option 'activation' is '" + name +
                                "'; the activations are none, relu, tanh and sigmoid");
  }
};

struct scaled_activation_execute {
  static at::Tensor execute(const scaled_activation_handle& h, const at::Tensor& x) {
    at::Tensor y = at::mul(x, h.scale);  // the one new tensor; the rest works in place
    if (h.bias != 0.0) y.add_(h.bias);
    switch (h.activation) {
      case activation_kind::none: break;
      case activation_kind::relu: y.relu_(); break;
      case activation_kind::tanh: y.tanh_(); break;
      case activation_kind::sigmoid: y.sigmoid_(); break;
    }
    return y;
  }
};

struct scaled_activation_availability {
  static tbk::availability is_available() {
    if (std::getenv("SCALED_ACTIVATION_DISABLE") != nullptr) {
      return tbk::unavailable("SCALED_ACTIVATION_DISABLE is set");
    }
    return tbk::available();
  }
};

using scaled_activation_backend = tbk::backend<scaled_activation_compile, scaled_activation_execute,
                                               scaled_activation_availability>;
