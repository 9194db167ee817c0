// codec.hpp: the tbk_onednn payload's binary encoding (little-endian, fixed width, versioned)
// and the decoder that checks every count, index, shape and size (shapes.hpp) before anything
// else reads it. Standard C++ only: the payload fuzz target links nothing else.
#pragma once
#include "ir.hpp"
#include "shapes.hpp"  // infer_shapes, is_op_kind

#include <cstdint>    // int64_t, uint8_t, uint32_t
#include <cstring>    // std::memcpy, std::memcmp
#include <optional>   // std::optional
#include <stdexcept>  // std::invalid_argument
#include <string>     // std::string
#include <vector>     // std::vector

namespace tbk_onednn {

// Version 2: version 1's operation kinds (conv2d to softmax) and permute, slice, layer_norm,
// matmul, constant, and eltwise's gelu_tanh. Version 3: version 2's program, in a payload that
// always has the part ":checksums" (payload_checksums.hpp), so one without it is damaged.
// Version 4: version 3's and int8 (quantize, dequantize, conv2d and linear with int8 inputs).
// Payloads of versions 1 to 3 are read too; one of another version is refused by name, never
// guessed at.
constexpr uint32_t format_version = 4;
constexpr uint32_t first_version_with_int8 = 4;
constexpr uint32_t oldest_format_version = 1;
constexpr uint32_t first_version_with_checksums = 3;
constexpr uint8_t last_kind_of_version_1 = static_cast<uint8_t>(op_kind::softmax);
constexpr uint8_t last_kind_of_version_3 = static_cast<uint8_t>(op_kind::constant);
constexpr char format_magic[8] = {'T', 'B', 'K', 'D', 'N', 'N', 'L', '1'};

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

// The format version a program's header gives; nullopt when the bytes do not start with
// tbk_onednn's magic and a version.
inline std::optional<uint32_t> header_version(const uint8_t* data, std::size_t size) {
  uint32_t version = 0;
  if (size < sizeof format_magic + sizeof version || std::memcmp(data, format_magic, sizeof format_magic) != 0) {
    return std::nullopt;
  }
  std::memcpy(&version, data + sizeof format_magic, sizeof version);
  return version;
}

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
  if (version < oldest_format_version || version > format_version) {
    throw std::invalid_argument("payload format version " + std::to_string(version) +
                                "; this build of tbk_onednn reads versions " + std::to_string(oldest_format_version) +
                                " to " + std::to_string(format_version) + " (lower the model again)");
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
    if (!is_op_kind(kind) || (version == 1 && kind > last_kind_of_version_1) ||
        (version < first_version_with_int8 && kind > last_kind_of_version_3)) {
      throw std::invalid_argument("operation " + std::to_string(&op - p.ops.data()) + " has unknown kind " +
                                  std::to_string(kind) + " for a payload of version " + std::to_string(version));
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
    const bool int8 = (op.kind == op_kind::conv2d && operators::convolution::is_int8(op)) ||
                      (op.kind == op_kind::linear && operators::linear::is_int8(op));
    if (int8 && version < first_version_with_int8) {
      throw std::invalid_argument("operation " + std::to_string(&op - p.ops.data()) + " is an int8 " +
                                  op_name(op.kind) + ", which a payload of version " + std::to_string(version) +
                                  " cannot hold");
    }
  }
  p.outputs.resize(r.count("outputs", sizeof(uint32_t)));
  for (uint32_t& v : p.outputs) v = r.u32("outputs");
  if (!r.at_end()) throw std::invalid_argument("payload has bytes after its outputs");
  infer_shapes(p);
  return p;
}

}  // namespace tbk_onednn
