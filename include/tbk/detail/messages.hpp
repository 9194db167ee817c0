// tbk/detail/messages.hpp: how tbk names things in its messages that more than one part of it
// names: a TorchScript node (reports, partitioning, backends' refusals via tbk/node_text.hpp).
#pragma once

#include <torch/csrc/jit/ir/ir.h>  // torch::jit::Node

#include <string>  // std::string
#include <tuple>   // std::get

namespace tbk::detail {

// "aten::relu (model.py:4)", or "aten::relu (line 4)" for code without a file name; the kind
// alone for a node without source (one a pass made). For a model loaded from an archive, the line
// of the user's code it was made from where the archive keeps it (its debug information), else the
// line of the archive's code/.
inline std::string node_text(const torch::jit::Node& node) {
  std::string text = node.kind().toQualString();
  const c10::optional<torch::jit::SourceRange> original = node.sourceRange().findSourceRangeThatGenerated();
  auto where = original ? original->file_line_col() : c10::nullopt;
  if (!where) where = node.sourceRange().file_line_col();
  if (where) {
    const std::string& file = std::get<0>(*where);
    const std::string line = std::to_string(std::get<1>(*where));
    text += file.empty() || file == "<string>" ? " (line " + line + ")" : " (" + file + ":" + line + ")";
  }
  return text;
}
inline std::string node_text(const torch::jit::Node* node) { return node_text(*node); }

}  // namespace tbk::detail
