// tbk/node_text.hpp: how tbk names a TorchScript node in reports and errors, for backends' own
// messages about a node too (a compile policy refusing one at lowering), without the partitioner.
#pragma once

#include <tbk/detail/messages.hpp>

namespace tbk {

// "aten::relu (model.py:4)", or "aten::relu (line 4)" for code without a file name; the kind
// alone for a node without source (one a pass made).
inline std::string node_text(const torch::jit::Node& node) { return detail::node_text(node); }

}  // namespace tbk
