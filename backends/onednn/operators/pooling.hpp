// pooling.hpp: aten::max_pool2d, avg_pool2d, adaptive_avg_pool2d, adaptive_max_pool2d and mean
// over H and W (global average pooling) in tbk_onednn: which nodes it runs, how one becomes a pool
// operation (PyTorch's output size, ceil mode as extra bottom/right padding; an adaptive pool as a
// fixed window where PyTorch's windows are regular, else composed: the average as a linear layer
// over each plane, the max of slices pooled whole; mean as a window of the whole plane, then a
// reshape unless keepdim), and
// its oneDNN pooling primitive; avg_pool2d in ceil mode counting padding, where a last window
// overhangs, is then scaled per output position. The payload attributes and shape rule:
// pooling_shape.hpp.
#pragma once
#include "binary.hpp"  // binary::add_constant: the overhang's divisors
#include "pooling_shape.hpp"
#include "../lowering.hpp"
#include "../method_builder.hpp"

#include <algorithm>  // std::max, std::sort

namespace tbk_onednn::operators::pooling {

// An adaptive pool's windows along one dimension, by PyTorch's rule (ATen's AdaptivePooling.h):
// window i spans [floor(i * in / out), ceil((i + 1) * in / out)). Regular when every window has
// the same size and they start a fixed stride apart: then it is an ordinary pooling window.
struct adaptive_windows {
  int64_t kernel = 0, stride = 0;
  bool regular = true;
};
inline int64_t window_start(int64_t i, int64_t in, int64_t out) { return i * in / out; }
inline int64_t window_end(int64_t i, int64_t in, int64_t out) { return ((i + 1) * in + out - 1) / out; }
inline adaptive_windows windows_of(int64_t in, int64_t out) {
  adaptive_windows w;
  w.kernel = window_end(0, in, out);
  w.stride = out > 1 ? window_start(1, in, out) : in;
  for (int64_t i = 0; i < out; ++i) {
    if (window_end(i, in, out) - window_start(i, in, out) != w.kernel || window_start(i, in, out) != i * w.stride) {
      w.regular = false;
    }
  }
  w.regular = w.regular && w.stride >= 1;
  return w;
}

// The largest composed average (a [OH * OW, H * W] matrix of weights, in elements).
constexpr int64_t max_composed_weights = int64_t{1} << 22;

// The most irregular windows a composed max pools along one dimension (one cat joins them).
constexpr int64_t max_composed_windows = 64;

// Where the input's sizes are known: an output size of two positive sizes; a composed max at most
// max_composed_windows irregular windows along each dimension, a composed average a matrix of at
// most max_composed_weights.
inline std::string adaptive_refusal(const c10::optional<std::vector<int64_t>>& input, const std::vector<int64_t>& size,
                                    bool max) {
  if (size.size() != 2 || size[0] < 1 || size[1] < 1) return "the output size must be two sizes of 1 or more";
  if (!input) return "";
  const shape_t& x = *input;
  if (x.size() != 4) return "the input must be 4-D (NCHW)";
  const bool regular = windows_of(x[2], size[0]).regular && windows_of(x[3], size[1]).regular;
  if (max) {
    for (std::size_t d = 0; d < 2; ++d) {
      if (!windows_of(x[2 + d], size[d]).regular && size[d] > max_composed_windows) {
        return "PyTorch's windows from " + shape_text(x) + " to " + shape_text(size) +
               " differ in size or spacing, and the max composed of them would join more than 64 windows";
      }
    }
    return "";
  }
  if (!regular && x[2] * x[3] * size[0] * size[1] > max_composed_weights) {
    return "PyTorch's windows from " + shape_text(x) + " to " + shape_text(size) +
           " differ in size or spacing, and the average composed of them would take a matrix of more than 2^22 weights";
  }
  return "";
}

// mean(x, dim, keepdim, dtype): dim must be the last two of a 4-D input ({2, 3}, {-1, -2}, ...).
inline std::string mean_refusal(const torch::jit::Node& node) {
  const auto in = node.inputs();
  if (in.size() != 4 || !detail::is_int_list(in[1])) return "the dimensions must be a constant list";
  if (!detail::constant(in[2]) || !detail::is_none(in[3])) return "keepdim must be constant and dtype None";
  std::vector<int64_t> dims = detail::constant(in[1])->toIntVector();
  for (int64_t& d : dims) d = d < 0 ? d + 4 : d;
  std::sort(dims.begin(), dims.end());
  if (dims != std::vector<int64_t>{2, 3}) return "supported over the last two dimensions of an NCHW tensor (global average pooling)";
  if (auto sizes = detail::known_sizes(in[0]); sizes && sizes->size() != 4) return "the input must be 4-D (NCHW)";
  return "";
}

// The result of a node whose first result only is read: adaptive_max_pool2d's indices must be
// unused.
inline std::string result_refusal(const torch::jit::Node& node) {
  if (node.kind() != c10::aten::adaptive_max_pool2d) return detail::tensor_to_tensor_refusal(node);
  if (node.outputs().size() != 2 || !node.outputs()[1]->uses().empty()) return "its indices are used (tbk_onednn computes the values only)";
  if (node.inputs().empty() || !detail::is_tensor(node.inputs()[0])) return "its first argument is not a tensor";
  return detail::operand_refusal(node.inputs()[0]);
}

inline std::string refusal(const torch::jit::Node& node) {
  namespace aten = c10::aten;
  if (auto why = result_refusal(node); !why.empty()) return why;
  const auto in = node.inputs();
  const auto kind = node.kind();
  if (kind == aten::mean) return mean_refusal(node);
  if (kind == aten::adaptive_avg_pool2d || kind == aten::adaptive_max_pool2d) {
    // constant, or F.adaptive_avg_pool2d's list_with_default of a constant (known when lowering)
    const torch::jit::Node* list = in[1]->node();
    const torch::jit::Value* size = list->kind() == detail::list_with_default() ? list->input(0) : in[1];
    if (!detail::is_int_list(size)) return "the output size must be constant";
    return adaptive_refusal(detail::known_sizes(in[0]), detail::pair(*detail::constant(size), 1), kind == aten::adaptive_max_pool2d);
  }
  for (std::size_t k = 1; k < 4; ++k) {
    if (!detail::is_int_list(in[k])) return "kernel, stride and padding must be constant";
  }
  if (kind == aten::max_pool2d) {
    auto dilation = detail::constant(in[4]);
    if (!dilation || !dilation->isIntList()) return "dilation must be constant";
    for (int64_t d : dilation->toIntVector()) {
      if (d != 1) return "dilation other than 1 is not supported";
    }
    if (!detail::constant(in[5])) return "ceil_mode must be constant";
  } else {
    auto ceil = detail::constant(in[4]);
    if (!ceil || !ceil->isBool()) return "ceil_mode must be constant";
    if (!detail::constant(in[5]) || !detail::is_none(in[6])) return "divisor_override is not supported";
  }
  return "";
}

// An average over irregular windows as a linear layer over each plane: [N, C, H, W] viewed as
// [N * C, H * W], times a [OH * OW, H * W] matrix whose row (i, j) holds 1 / |window| over the
// window of output (i, j), viewed back as [N, C, OH, OW].
inline uint32_t composed_average(detail::graph_translator& t, const torch::jit::Node& node, uint32_t x,
                                 const std::vector<int64_t>& size) {
  const shape_t sx = t.shape(x);
  const int64_t h = sx[2], w = sx[3], oh = size[0], ow = size[1];
  at::Tensor matrix = at::zeros({oh * ow, h * w});
  auto m = matrix.accessor<float, 2>();
  for (int64_t i = 0; i < oh; ++i) {
    for (int64_t j = 0; j < ow; ++j) {
      const int64_t h0 = window_start(i, h, oh), h1 = window_end(i, h, oh);
      const int64_t w0 = window_start(j, w, ow), w1 = window_end(j, w, ow);
      const float share = 1.f / static_cast<float>((h1 - h0) * (w1 - w0));
      for (int64_t r = h0; r < h1; ++r) {
        for (int64_t c = w0; c < w1; ++c) m[i * ow + j][r * w + c] = share;
      }
    }
  }
  const uint32_t planes = t.add(node, op_kind::reshape, {x}, {sx[0] * sx[1], h * w});
  const uint32_t pooled = t.add(node, op_kind::linear, {planes}, {}, {}, {t.weight_of(matrix)});
  return t.add(node, op_kind::reshape, {pooled}, {sx[0], sx[1], oh, ow});
}

// A max over PyTorch's windows along dimension `dim` (2: rows, 3: columns) of x, `out` of them:
// one pooling window where they are regular; else, for each window, a slice of its rows (or
// columns) pooled whole, the pieces joined by cat.
inline uint32_t max_along(detail::graph_translator& t, const torch::jit::Node& node, uint32_t x, std::size_t dim,
                          int64_t out) {
  const int64_t in = t.shape(x)[dim];
  auto pool = [&](uint32_t v, int64_t kernel, int64_t stride) {
    const int64_t kh = dim == 2 ? kernel : 1, kw = dim == 3 ? kernel : 1;
    const int64_t sh = dim == 2 ? stride : 1, sw = dim == 3 ? stride : 1;
    return t.add(node, op_kind::pool, {v}, {static_cast<int64_t>(pool_kind::max), kh, kw, sh, sw, 0, 0, 0, 0});
  };
  const adaptive_windows w = windows_of(in, out);
  if (w.regular) return w.kernel == 1 && w.stride == 1 ? x : pool(x, w.kernel, w.stride);
  std::vector<uint32_t> pieces;
  for (int64_t i = 0; i < out; ++i) {
    const int64_t start = window_start(i, in, out), length = window_end(i, in, out) - start;
    pieces.push_back(pool(t.add(node, op_kind::slice, {x}, {static_cast<int64_t>(dim), start, length}), length, length));
  }
  return t.add(node, op_kind::cat, pieces, {static_cast<int64_t>(dim)});
}

// adaptive_avg_pool2d(x, output_size), adaptive_max_pool2d(x, output_size): a fixed window where
// PyTorch's windows are regular; else composed: the average by composed_average, the max along
// the rows, then the columns (max_along; a max over a window is the max of its rows' maxima).
inline void translate_adaptive(detail::graph_translator& t, const torch::jit::Node& node, uint32_t x) {
  const shape_t sx = t.shape(x);
  const auto size = detail::pair(c10::IValue(t.known_int_list(node, node.inputs()[1])), 1);
  const bool max = node.kind() == c10::aten::adaptive_max_pool2d;
  t.refuse_if(node, adaptive_refusal(sx, size, max));
  const adaptive_windows rows = windows_of(sx[2], size[0]), columns = windows_of(sx[3], size[1]);
  if (max && (!rows.regular || !columns.regular)) {
    return t.bind(node.outputs()[0], max_along(t, node, max_along(t, node, x, 2, size[0]), 3, size[1]));
  }
  if (!rows.regular || !columns.regular) return t.bind(node.outputs()[0], composed_average(t, node, x, size));
  const pool_kind kind = max ? pool_kind::max : pool_kind::avg_exclude_padding;
  t.bind(node.outputs()[0], t.add(node, op_kind::pool, {x}, {static_cast<int64_t>(kind), rows.kernel, columns.kernel,
                                                             rows.stride, columns.stride, 0, 0, 0, 0}));
}

// mean(x, [2, 3], keepdim): an average over the whole plane, [N, C, 1, 1], reshaped to [N, C]
// unless keepdim.
inline void translate_mean(detail::graph_translator& t, const torch::jit::Node& node, uint32_t x) {
  const shape_t sx = t.shape(x);
  if (sx.size() != 4) t.refuse(node, "the input must be 4-D (NCHW)");
  const int64_t h = sx[2], w = sx[3];
  uint32_t out = t.add(node, op_kind::pool, {x}, {static_cast<int64_t>(pool_kind::avg_exclude_padding), h, w, h, w, 0, 0, 0, 0});
  if (!detail::constant(node.inputs()[2])->toBool()) out = t.add(node, op_kind::reshape, {out}, {sx[0], sx[1]});
  t.bind(node, out);
}

// max_pool2d(x, kernel, stride, padding, dilation, ceil_mode),
// avg_pool2d(x, kernel, stride, padding, ceil_mode, count_include_pad, divisor_override)
inline void translate(detail::graph_translator& t, const torch::jit::Node& node) {
  namespace aten = c10::aten;
  t.refuse_if(node, refusal(node));
  const auto in = node.inputs();
  const auto kind = node.kind();
  auto c = [&](std::size_t k) { return *detail::constant(in[k]); };
  const uint32_t x = t.value(node, in[0]);
  if (kind == aten::adaptive_avg_pool2d || kind == aten::adaptive_max_pool2d) return translate_adaptive(t, node, x);
  if (kind == aten::mean) return translate_mean(t, node, x);
  const shape_t sx = t.shape(x);
  if (sx.size() != 4) t.refuse(node, "the input must be 4-D (NCHW)");
  const auto kernel = detail::pair(c(1), 1);
  const auto stride = c(2).toIntVector().empty() ? kernel : detail::pair(c(2), 1);
  const auto padding = detail::pair(c(3), 0);
  const bool max = kind == aten::max_pool2d;
  const bool ceil = c(max ? 5 : 4).toBool(), include_padding = !max && c(5).toBool();
  std::vector<int64_t> outputs;  // per dimension
  std::vector<int64_t> ints{max ? static_cast<int64_t>(pool_kind::max)
                            : include_padding ? static_cast<int64_t>(pool_kind::avg_include_padding)
                                              : static_cast<int64_t>(pool_kind::avg_exclude_padding),
                            kernel[0], kernel[1], stride[0], stride[1], padding[0], padding[1]};
  for (std::size_t d = 0; d < 2; ++d) {
    // PyTorch's output size, then the bottom/right padding that gives it
    const int64_t span = sx[2 + d] + 2 * padding[d] - kernel[d];
    if (span < 0 || stride[d] < 1) t.refuse(node, "the window is larger than the padded input");
    int64_t out = (ceil ? (span + stride[d] - 1) / stride[d] : span / stride[d]) + 1;
    if (ceil && (out - 1) * stride[d] >= sx[2 + d] + padding[d]) --out;
    const int64_t end_padding = (out - 1) * stride[d] + kernel[d] - sx[2 + d] - padding[d];
    ints.push_back(std::max<int64_t>(padding[d], end_padding));
    outputs.push_back(out);
  }
  const uint32_t pooled = t.add(node, op_kind::pool, {x}, ints);
  if (!include_padding || (ints[7] == padding[0] && ints[8] == padding[1])) return t.bind(node, pooled);
  // ceil mode with count_include_pad: a last window that overhangs the padded input is divided by
  // its part inside it (PyTorch's divisor), oneDNN's by the whole window; a constant factor per
  // output position, kernel size / PyTorch's divisor, makes one the other
  at::Tensor factor = at::empty({outputs[0], outputs[1]});
  auto f = factor.accessor<float, 2>();
  for (int64_t i = 0; i < outputs[0]; ++i) {
    for (int64_t j = 0; j < outputs[1]; ++j) {
      const int64_t h0 = i * stride[0] - padding[0], w0 = j * stride[1] - padding[1];
      const int64_t h = std::min(h0 + kernel[0], sx[2] + padding[0]) - h0, w = std::min(w0 + kernel[1], sx[3] + padding[1]) - w0;
      f[i][j] = static_cast<float>(kernel[0] * kernel[1]) / static_cast<float>(h * w);
    }
  }
  t.bind(node, binary::add_constant(t, node, binary_kind::mul, pooled, factor));
}

inline bool build(detail::method_builder& b, const detail::fused_op& f) {
  static const dnnl::algorithm algorithms[] = {dnnl::algorithm::pooling_max, dnnl::algorithm::pooling_avg_include_padding,
                                               dnnl::algorithm::pooling_avg_exclude_padding};
  const operation& op = b.op(f);
  const auto& i = op.ints;
  auto make = [&](const detail::md& src) {
    const dnnl::pooling_forward::desc d(dnnl::prop_kind::forward_inference, algorithms[i[0]], src,
                                        detail::any_desc(b.shape(f.result), src.data_type()), {i[3], i[4]}, {i[1], i[2]}, {i[5], i[6]},
                                        {i[7], i[8]});
    return b.choose<dnnl::pooling_forward::primitive_desc>(
        [&] { return dnnl::pooling_forward::primitive_desc(d, detail::user_scratchpad(), cpu_engine()); });
  };
  const auto [pd, src] = b.with_input_layout<dnnl::pooling_forward::primitive_desc>(op.inputs[0], make);
  b.add_step(dnnl::pooling_forward(pd), pd, b.description(f),
             {{DNNL_ARG_SRC, b.as(op.inputs[0], src)}, {DNNL_ARG_DST, b.define(f.result, pd.dst_desc())}});
  return true;
}

}  // namespace tbk_onednn::operators::pooling
