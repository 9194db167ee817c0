// tbk/node_support.hpp: what a compile policy's supports hook may answer instead of a bare bool:
// whether the backend runs a node, and if not, why (tbk::partition's report shows the reason).
#pragma once

#include <string>   // std::string
#include <utility>  // std::move

namespace tbk {

// The answer of `static tbk::node_support supports(const torch::jit::Node& node);`. A bool
// converts to it (true: supported; false: no reason given), so hooks and
// partition_options::supports written for bool keep working.
class node_support {
 public:
  node_support(bool supported) : supported_(supported) {}  // NOLINT: implicit, as bool answers were
  static node_support yes() { return node_support(true); }
  static node_support no(std::string reason) { return node_support(false, std::move(reason)); }

  explicit operator bool() const { return supported_; }
  bool supported() const { return supported_; }
  // Why not, in the backend's words ("the weight must be a constant: partition with
  // freeze=True"); empty when supported or when no reason was given.
  const std::string& reason() const { return reason_; }

  // How tbk::partition's report says why a node stays in TorchScript: "not supported by the
  // backend", then ": " and the reason when there is one; empty when supported.
  std::string refusal() const {
    if (supported_) return {};
    return reason_.empty() ? "not supported by the backend" : "not supported by the backend: " + reason_;
  }

 private:
  node_support(bool supported, std::string reason) : supported_(supported), reason_(std::move(reason)) {}
  bool supported_;
  std::string reason_;
};

inline node_support supported() { return node_support::yes(); }
inline node_support unsupported(std::string reason) { return node_support::no(std::move(reason)); }

}  // namespace tbk
