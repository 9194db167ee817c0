// ir.hpp: the tbk_onednn program: a method as a list of operations on fp32 tensors (int8 ones
// between a quantize and the convolution or linear operations that read them; weights in fp32), the limits a payload must keep, and the shape helpers every layer uses. Each
// operation kind's attributes and shape rule are in operators/<family>_shape.hpp. Standard C++
// only: the payload fuzz target links nothing else.
#pragma once
#include <cstdint>    // int64_t, uint8_t, uint32_t
#include <stdexcept>  // std::invalid_argument
#include <string>     // std::string
#include <vector>     // std::vector

namespace tbk_onednn {

// Bounds that keep a hostile payload from asking for absurd work or memory.
constexpr std::size_t max_rank = 6;
constexpr int64_t max_elements = int64_t{1} << 31;  // per tensor
constexpr std::size_t max_ops = 100000;
constexpr int64_t max_window = 65536;  // strides, paddings, dilations

// The operation kinds, as the payload stores them (one byte). Their attributes (ints, floats,
// weights) are described beside each shape rule: operators/<family>_shape.hpp.
enum class op_kind : uint8_t {
  conv2d = 1,       // operators/convolution_shape.hpp
  linear = 2,       // operators/linear_shape.hpp
  eltwise = 3,      // operators/eltwise_shape.hpp
  binary = 4,       // operators/binary_shape.hpp
  pool = 5,         // operators/pooling_shape.hpp
  reshape = 6,      // operators/reshape_shape.hpp
  cat = 7,          // operators/concat_shape.hpp
  softmax = 8,      // operators/softmax_shape.hpp
  permute = 9,      // operators/permute_shape.hpp
  slice = 10,       // operators/split_shape.hpp
  layer_norm = 11,  // operators/layer_norm_shape.hpp
  matmul = 12,      // operators/matmul_shape.hpp
  constant = 13,    // operators/constant_shape.hpp
  quantize = 14,    // operators/quantize_shape.hpp
  dequantize = 15,  // operators/quantize_shape.hpp
};

using shape_t = std::vector<int64_t>;

struct weight {
  shape_t shape;
  std::vector<float> values;
};

struct operation {
  op_kind kind;
  std::vector<uint32_t> inputs;   // values: the method's inputs first, then one per operation
  std::vector<int64_t> ints;
  std::vector<float> floats;
  std::vector<uint32_t> weights;  // indices into program::weights
};

// A method: value k < input_shapes.size() is input k; value input_shapes.size() + i is the
// result of ops[i], which reads only values made before it.
struct program {
  std::vector<shape_t> input_shapes;
  std::vector<weight> weights;
  std::vector<operation> ops;
  std::vector<uint32_t> outputs;
};

inline std::string shape_text(const shape_t& shape) {
  std::string text = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) text += (i ? ", " : "") + std::to_string(shape[i]);
  return text + "]";
}

// The number of elements of a shape; an error for a dimension below 1 or a product above
// max_elements (so no later product overflows).
inline int64_t element_count(const shape_t& shape, const std::string& what) {
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 1 || d > max_elements || n > max_elements / d) {
      throw std::invalid_argument(what + " has shape " + shape_text(shape) +
                                  ": dimensions must be 1 or more and the size at most 2^31 elements");
    }
    n *= d;
  }
  return n;
}

}  // namespace tbk_onednn
