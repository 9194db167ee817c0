// program.hpp: the tbk_onednn payload format: a method as a list of operations on fp32 tensors
// (with their weights), its versioned binary encoding, and the decoder that checks every count,
// index, shape and size before anything else reads it. Standard C++ only: the fuzz target links
// nothing else.
#pragma once
#include <cstdint>    // int64_t, uint8_t, uint32_t
#include <cstring>    // std::memcpy
#include <stdexcept>  // std::invalid_argument
#include <string>     // std::string
#include <vector>     // std::vector

namespace tbk_onednn {

// Version 1. A payload of another version is refused by name, never guessed at.
constexpr uint32_t format_version = 1;
constexpr char format_magic[8] = {'T', 'B', 'K', 'D', 'N', 'N', 'L', '1'};

// Bounds that keep a hostile payload from asking for absurd work or memory.
constexpr std::size_t max_rank = 6;
constexpr int64_t max_elements = int64_t{1} << 31;  // per tensor
constexpr std::size_t max_ops = 100000;
constexpr int64_t max_window = 65536;  // strides, paddings, dilations

enum class op_kind : uint8_t {
  conv2d = 1,   // ints: stride h/w, padding h/w, dilation h/w, groups; weights: w [, bias]
  linear = 2,   // inputs: x [N, in]; weights: w [out, in] [, bias [out]]
  eltwise = 3,  // ints: eltwise_kind; floats: alpha, beta
  binary = 4,   // ints: binary_kind; operands: two values, or a value and a weight (broadcast)
  pool = 5,     // ints: pool_kind, kernel h/w, stride h/w, padding top/left/bottom/right
  reshape = 6,  // ints: the new shape (same number of elements)
  cat = 7,      // ints: dim; inputs: one or more values
  softmax = 8,  // ints: dim
};

enum class eltwise_kind : int64_t {
  relu = 0,         // max(x, 0)
  clamp = 1,        // min(max(x, alpha), beta) (relu6, hardtanh, clamp)
  hardswish = 2,
  sigmoid = 3,
  hardsigmoid = 4,  // clamp(x / 6 + 1 / 2, 0, 1)
  tanh = 5,
  affine = 6,       // alpha * x + beta (a tensor and a number: add, sub, mul, div)
  gelu = 7,         // exact (erf) GELU
};
enum class binary_kind : int64_t { add = 0, sub = 1, mul = 2, div = 3 };
enum class pool_kind : int64_t { max = 0, avg_include_padding = 1, avg_exclude_padding = 2 };

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

inline const char* op_name(op_kind kind) {
  switch (kind) {
    case op_kind::conv2d: return "conv2d";
    case op_kind::linear: return "linear";
    case op_kind::eltwise: return "eltwise";
    case op_kind::binary: return "binary";
    case op_kind::pool: return "pool";
    case op_kind::reshape: return "reshape";
    case op_kind::cat: return "cat";
    case op_kind::softmax: return "softmax";
  }
  return "unknown";
}

inline std::string shape_text(const shape_t& shape) {
  std::string text = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) text += (i ? ", " : "") + std::to_string(shape[i]);
  return text + "]";
}

// ---- encoding: little-endian, fixed width --------------------------------------------------

namespace detail {

class writer {
 public:
  void u8(uint8_t v) { bytes_.push_back(v); }
  void u32(uint32_t v) { raw(&v, sizeof v); }
  void i64(int64_t v) { raw(&v, sizeof v); }
  void f32(float v) { raw(&v, sizeof v); }
  void raw(const void* data, std::size_t size) {
    const auto* p = static_cast<const uint8_t*>(data);
    bytes_.insert(bytes_.end(), p, p + size);
  }
  template <class T, class F>
  void list(const std::vector<T>& items, F&& each) {
    u32(static_cast<uint32_t>(items.size()));
    for (const T& item : items) each(item);
  }
  std::vector<uint8_t> take() { return std::move(bytes_); }

 private:
  std::vector<uint8_t> bytes_;
};

// Reads what writer wrote; every read is checked against the end of the data.
class reader {
 public:
  reader(const uint8_t* data, std::size_t size) : p_(data), end_(data + size) {}
  void raw(void* out, std::size_t size, const char* what) {
    if (static_cast<std::size_t>(end_ - p_) < size) {
      throw std::invalid_argument(std::string("payload ends inside ") + what);
    }
    std::memcpy(out, p_, size);
    p_ += size;
  }
  uint8_t u8(const char* what) { uint8_t v; raw(&v, sizeof v, what); return v; }
  uint32_t u32(const char* what) { uint32_t v; raw(&v, sizeof v, what); return v; }
  int64_t i64(const char* what) { int64_t v; raw(&v, sizeof v, what); return v; }
  float f32(const char* what) { float v; raw(&v, sizeof v, what); return v; }
  // A count of items of at least `item_size` bytes each: never more than the bytes left.
  std::size_t count(const char* what, std::size_t item_size) {
    const uint32_t n = u32(what);
    if (n > static_cast<std::size_t>(end_ - p_) / item_size) {
      throw std::invalid_argument(std::string("payload says ") + std::to_string(n) + " " + what +
                                  " but has only " + std::to_string(end_ - p_) + " bytes left");
    }
    return n;
  }
  bool at_end() const { return p_ == end_; }

 private:
  const uint8_t* p_;
  const uint8_t* end_;
};

inline void write_shape(writer& w, const shape_t& shape) {
  w.list(shape, [&](int64_t d) { w.i64(d); });
}

inline shape_t read_shape(reader& r, const char* what) {
  const std::size_t rank = r.count(what, sizeof(int64_t));
  if (rank > max_rank) {
    throw std::invalid_argument(std::string(what) + " has rank " + std::to_string(rank) +
                                "; at most " + std::to_string(max_rank));
  }
  shape_t shape(rank);
  for (int64_t& d : shape) d = r.i64(what);
  return shape;
}

}  // namespace detail

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

inline std::vector<uint8_t> encode(const program& p) {
  detail::writer w;
  w.raw(format_magic, sizeof format_magic);
  w.u32(format_version);
  w.list(p.input_shapes, [&](const shape_t& s) { detail::write_shape(w, s); });
  w.list(p.weights, [&](const weight& t) {
    detail::write_shape(w, t.shape);
    w.raw(t.values.data(), t.values.size() * sizeof(float));
  });
  w.list(p.ops, [&](const operation& op) {
    w.u8(static_cast<uint8_t>(op.kind));
    w.list(op.inputs, [&](uint32_t v) { w.u32(v); });
    w.list(op.ints, [&](int64_t v) { w.i64(v); });
    w.list(op.floats, [&](float v) { w.f32(v); });
    w.list(op.weights, [&](uint32_t v) { w.u32(v); });
  });
  w.list(p.outputs, [&](uint32_t v) { w.u32(v); });
  return w.take();
}

// The shapes of every value of a program (inputs, then one per operation), computed from the
// input shapes, the operations and the weights; an error naming the operation for anything a
// well-formed program cannot have.
inline std::vector<shape_t> infer_shapes(const program& p);

// Bytes to a checked program: the format (magic, version, sizes), then infer_shapes. Any failure
// is a std::invalid_argument saying what is wrong; nothing is read past `size`.
inline program decode(const uint8_t* data, std::size_t size) {
  detail::reader r(data, size);
  char magic[sizeof format_magic];
  r.raw(magic, sizeof magic, "the header");
  if (std::memcmp(magic, format_magic, sizeof magic) != 0) {
    throw std::invalid_argument("not a tbk_onednn payload (its first bytes are not TBKDNNL1)");
  }
  const uint32_t version = r.u32("the header");
  if (version != format_version) {
    throw std::invalid_argument("payload format version " + std::to_string(version) +
                                "; this build of tbk_onednn reads version " +
                                std::to_string(format_version) + " (lower the model again)");
  }
  program p;
  p.input_shapes.resize(r.count("inputs", sizeof(uint32_t)));
  for (shape_t& s : p.input_shapes) s = detail::read_shape(r, "an input shape");
  p.weights.resize(r.count("weights", sizeof(uint32_t)));
  for (std::size_t i = 0; i < p.weights.size(); ++i) {
    weight& t = p.weights[i];
    t.shape = detail::read_shape(r, "a weight shape");
    const int64_t n = element_count(t.shape, "weight " + std::to_string(i));
    if (static_cast<uint64_t>(n) > size / sizeof(float)) {
      throw std::invalid_argument("weight " + std::to_string(i) + " of shape " + shape_text(t.shape) +
                                  " is larger than the whole payload");
    }
    t.values.resize(static_cast<std::size_t>(n));
    r.raw(t.values.data(), t.values.size() * sizeof(float), "weight data");
  }
  const std::size_t ops = r.count("operations", 17);
  if (ops > max_ops) throw std::invalid_argument("payload has " + std::to_string(ops) + " operations");
  p.ops.resize(ops);
  for (operation& op : p.ops) {
    const uint8_t kind = r.u8("an operation");
    if (kind < 1 || kind > 8) {
      throw std::invalid_argument("operation " + std::to_string(&op - p.ops.data()) +
                                  " has unknown kind " + std::to_string(kind));
    }
    op.kind = static_cast<op_kind>(kind);
    op.inputs.resize(r.count("operation inputs", sizeof(uint32_t)));
    for (uint32_t& v : op.inputs) v = r.u32("operation inputs");
    op.ints.resize(r.count("operation ints", sizeof(int64_t)));
    for (int64_t& v : op.ints) v = r.i64("operation ints");
    op.floats.resize(r.count("operation floats", sizeof(float)));
    for (float& v : op.floats) v = r.f32("operation floats");
    op.weights.resize(r.count("operation weights", sizeof(uint32_t)));
    for (uint32_t& v : op.weights) v = r.u32("operation weights");
  }
  p.outputs.resize(r.count("outputs", sizeof(uint32_t)));
  for (uint32_t& v : p.outputs) v = r.u32("outputs");
  if (!r.at_end()) throw std::invalid_argument("payload has bytes after its outputs");
  infer_shapes(p);
  return p;
}

// ---- shape inference and validation -------------------------------------------------------

namespace detail {

// Output size of a window of `kernel` (dilated extent) sliding with `stride` over `in` padded
// by `pad_a` and `pad_b`; below 1 is an error.
inline int64_t window_output(int64_t in, int64_t pad_a, int64_t pad_b, int64_t extent, int64_t stride,
                             const std::string& where) {
  const int64_t span = in + pad_a + pad_b - extent;
  if (span < 0) {
    throw std::invalid_argument(where + ": window of " + std::to_string(extent) +
                                " is larger than the padded input of " + std::to_string(in + pad_a + pad_b));
  }
  return span / stride + 1;
}

}  // namespace detail

// The shape of ops[i]'s result, given the shapes of the values before it; an error naming the
// operation for anything a well-formed program cannot have. Marks the weights it uses.
inline shape_t op_shape(const program& p, std::size_t i, const std::vector<shape_t>& shapes,
                        std::vector<bool>& weight_used) {
  const operation& op = p.ops[i];
  const std::string where = "operation " + std::to_string(i) + " (" + op_name(op.kind) + ")";
  auto fail = [&](const std::string& what) { throw std::invalid_argument(where + ": " + what); };
  auto arity = [&](std::size_t inputs_min, std::size_t inputs_max, std::size_t ints,
                   std::size_t floats, std::size_t weights_min, std::size_t weights_max) {
    if (op.inputs.size() < inputs_min || op.inputs.size() > inputs_max || op.ints.size() != ints ||
        op.floats.size() != floats || op.weights.size() < weights_min || op.weights.size() > weights_max) {
      fail("has " + std::to_string(op.inputs.size()) + " inputs, " + std::to_string(op.ints.size()) +
           " ints, " + std::to_string(op.floats.size()) + " floats and " +
           std::to_string(op.weights.size()) + " weights, which this operation cannot have");
    }
  };
  for (uint32_t v : op.inputs) {
    if (v >= shapes.size()) {
      fail("reads value " + std::to_string(v) + ", which is not made before it (" +
           std::to_string(shapes.size()) + " values so far)");
    }
  }
  for (uint32_t w : op.weights) {
    if (w >= p.weights.size()) {
      fail("uses weight " + std::to_string(w) + " of " + std::to_string(p.weights.size()));
    }
    weight_used[w] = true;
  }
  auto in = [&](std::size_t k) -> const shape_t& { return shapes[op.inputs[k]]; };
  auto w = [&](std::size_t k) -> const shape_t& { return p.weights[op.weights[k]].shape; };
  auto rank = [&](const shape_t& s, std::size_t r, const char* what) {
    if (s.size() != r) fail(std::string(what) + " has shape " + shape_text(s) + "; expected rank " + std::to_string(r));
  };
  shape_t out;
  switch (op.kind) {
    case op_kind::conv2d: {
      arity(1, 1, 7, 0, 1, 2);
      const shape_t& x = in(0);
      rank(x, 4, "the input");
      rank(w(0), 4, "the weight");
      const int64_t sh = op.ints[0], sw = op.ints[1], ph = op.ints[2], pw = op.ints[3];
      const int64_t dh = op.ints[4], dw = op.ints[5], groups = op.ints[6];
      if (sh < 1 || sw < 1 || ph < 0 || pw < 0 || dh < 1 || dw < 1 || groups < 1 ||
          sh > max_window || sw > max_window || ph > max_window || pw > max_window ||
          dh > max_window || dw > max_window) {
        fail("stride, padding, dilation or groups out of range");
      }
      const int64_t oc = w(0)[0];
      if (x[1] % groups != 0 || oc % groups != 0 || w(0)[1] != x[1] / groups) {
        fail("weight " + shape_text(w(0)) + " does not fit input channels " + std::to_string(x[1]) +
             " in " + std::to_string(groups) + " groups");
      }
      if (op.weights.size() == 2 && w(1) != shape_t{oc}) fail("bias has shape " + shape_text(w(1)) + "; expected [" + std::to_string(oc) + "]");
      out = {x[0], oc, detail::window_output(x[2], ph, ph, dh * (w(0)[2] - 1) + 1, sh, where),
             detail::window_output(x[3], pw, pw, dw * (w(0)[3] - 1) + 1, sw, where)};
      break;
    }
    case op_kind::linear: {
      arity(1, 1, 0, 0, 1, 2);
      rank(in(0), 2, "the input");
      rank(w(0), 2, "the weight");
      if (w(0)[1] != in(0)[1]) fail("weight " + shape_text(w(0)) + " does not fit input " + shape_text(in(0)));
      if (op.weights.size() == 2 && w(1) != shape_t{w(0)[0]}) fail("bias has shape " + shape_text(w(1)));
      out = {in(0)[0], w(0)[0]};
      break;
    }
    case op_kind::eltwise: {
      arity(1, 1, 1, 2, 0, 0);
      if (op.ints[0] < 0 || op.ints[0] > static_cast<int64_t>(eltwise_kind::gelu)) fail("unknown eltwise kind");
      if (!(op.floats[0] == op.floats[0]) || !(op.floats[1] == op.floats[1])) fail("alpha or beta is NaN");
      out = in(0);
      break;
    }
    case op_kind::binary: {
      arity(1, 2, 1, 0, 0, 1);
      if (op.inputs.size() + op.weights.size() != 2) fail("needs exactly two operands");
      if (op.ints[0] < 0 || op.ints[0] > static_cast<int64_t>(binary_kind::div)) fail("unknown binary kind");
      const shape_t& a = in(0);
      const shape_t& b = op.inputs.size() == 2 ? in(1) : w(0);
      if (a.size() != b.size()) fail("operands of rank " + std::to_string(a.size()) + " and " + std::to_string(b.size()));
      for (std::size_t d = 0; d < a.size(); ++d) {
        if (b[d] != a[d] && b[d] != 1) fail("operand " + shape_text(b) + " does not broadcast to " + shape_text(a));
      }
      out = a;
      break;
    }
    case op_kind::pool: {
      arity(1, 1, 9, 0, 0, 0);
      const shape_t& x = in(0);
      rank(x, 4, "the input");
      const int64_t kind = op.ints[0], kh = op.ints[1], kw = op.ints[2], sh = op.ints[3], sw = op.ints[4];
      const int64_t pt = op.ints[5], pl = op.ints[6], pb = op.ints[7], pr = op.ints[8];
      if (kind < 0 || kind > 2) fail("unknown pool kind");
      // each bound alone first, so that the sums after them cannot overflow (found by fuzzing)
      if (kh < 1 || kw < 1 || sh < 1 || sw < 1 || sh > max_window || sw > max_window || pt < 0 ||
          pl < 0 || pb < 0 || pr < 0 || pt >= kh || pb >= kh || pl >= kw || pr >= kw ||
          kh > x[2] + pt + pb || kw > x[3] + pl + pr) {
        fail("kernel, stride or padding out of range");
      }
      out = {x[0], x[1], detail::window_output(x[2], pt, pb, kh, sh, where),
             detail::window_output(x[3], pl, pr, kw, sw, where)};
      break;
    }
    case op_kind::reshape: {
      if (op.inputs.size() != 1 || op.ints.empty() || op.ints.size() > max_rank || !op.floats.empty() || !op.weights.empty()) {
        fail("needs one input and a shape of rank 1 to " + std::to_string(max_rank));
      }
      out = op.ints;
      if (element_count(out, where + ": the new shape") != element_count(in(0), where + ": the input")) {
        fail("cannot reshape " + shape_text(in(0)) + " to " + shape_text(out));
      }
      break;
    }
    case op_kind::cat: {
      arity(1, 64, 1, 0, 0, 0);
      const shape_t& first = in(0);
      const int64_t dim = op.ints[0];
      if (dim < 0 || dim >= static_cast<int64_t>(first.size())) fail("dim " + std::to_string(dim) + " out of range");
      out = first;
      for (std::size_t k = 1; k < op.inputs.size(); ++k) {
        const shape_t& s = in(k);
        if (s.size() != first.size()) fail("inputs of different ranks");
        for (std::size_t d = 0; d < s.size(); ++d) {
          if (static_cast<int64_t>(d) != dim && s[d] != first[d]) fail("inputs differ outside dim " + std::to_string(dim));
        }
        out[dim] += s[dim];
      }
      element_count(out, where + ": the result");
      break;
    }
    case op_kind::softmax: {
      arity(1, 1, 1, 0, 0, 0);
      if (op.ints[0] < 0 || op.ints[0] >= static_cast<int64_t>(in(0).size())) fail("dim out of range");
      out = in(0);
      break;
    }
  }
  element_count(out, where + ": the result");
  return out;
}

inline std::vector<shape_t> infer_shapes(const program& p) {
  std::vector<shape_t> shapes;
  if (p.input_shapes.empty()) throw std::invalid_argument("the method has no inputs");
  for (std::size_t i = 0; i < p.input_shapes.size(); ++i) {
    element_count(p.input_shapes[i], "input " + std::to_string(i));
    shapes.push_back(p.input_shapes[i]);
  }
  std::vector<bool> weight_used(p.weights.size(), false);
  for (std::size_t i = 0; i < p.ops.size(); ++i) shapes.push_back(op_shape(p, i, shapes, weight_used));
  if (p.outputs.empty()) throw std::invalid_argument("the method has no outputs");
  for (uint32_t v : p.outputs) {
    if (v >= shapes.size()) {
      throw std::invalid_argument("output names value " + std::to_string(v) + " of " + std::to_string(shapes.size()));
    }
  }
  for (std::size_t w = 0; w < weight_used.size(); ++w) {
    if (!weight_used[w]) throw std::invalid_argument("weight " + std::to_string(w) + " is used by no operation");
  }
  return shapes;
}

}  // namespace tbk_onednn
