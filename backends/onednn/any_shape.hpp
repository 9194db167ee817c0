// any_shape.hpp: a tbk_onednn method called with other input shapes than its example inputs'.
// Two ways to the program for new shapes. Another batch: at lowering, the method is read at the
// example batch N and at N + 1; when the two programs differ only in their inputs' first dimension
// and in sizes that are N in one and N + 1 in the other (a view(x.size(0), -1)), those sizes'
// places are kept beside the program, and set to the new batch (no graph is read at call time).
// Any other shape (spatial sizes, or a batch the places do not cover): the method's frozen graph,
// which the payload keeps, is read again at the call's shapes (frozen_graph.hpp). Either way the
// primitives for a new shape are built on its first call, once however many calls bring it at
// once, and cached (by default 4 shapes besides the example's, compile option "shape_cache";
// concurrent callers safe).
#pragma once
#include "engine.hpp"  // compiled_method
#include "program.hpp"

#include <ATen/ATen.h>

#include <chrono>         // std::chrono (the first call at a new shape is timed)
#include <cstdint>        // int64_t
#include <cstdio>         // std::fputs, std::snprintf
#include <cstdlib>        // std::getenv
#include <functional>     // std::function
#include <future>         // std::promise, std::shared_future (one build per new shape)
#include <list>           // std::list (least recently used first)
#include <map>            // std::map (shapes being built)
#include <memory>         // std::shared_ptr
#include <mutex>          // std::mutex
#include <optional>       // std::optional
#include <stdexcept>      // std::invalid_argument
#include <string>         // std::string
#include <utility>        // std::pair
#include <vector>         // std::vector

namespace tbk_onednn {

// Where a program holds the batch size: (operation, index into its ints) pairs.
using batch_places = std::vector<std::pair<std::size_t, std::size_t>>;

// The batch size of example inputs: their common first dimension, or nothing (no inputs, a 0-dim
// one, or first dimensions that differ).
inline std::optional<int64_t> batch_of(const std::vector<shape_t>& shapes) {
  if (shapes.empty()) return std::nullopt;
  for (const shape_t& s : shapes) {
    if (s.empty() || s[0] < 1 || s[0] != shapes[0][0]) return std::nullopt;
  }
  return shapes[0][0];
}

// The places of the batch size in `at_n` (read at batch N) given `at_n1` (the same method read at
// N + 1), or nothing when the two differ otherwise: then another batch is read again from the
// graph, or, with no graph kept, refused.
inline std::optional<batch_places> batch_places_of(const program& at_n, const program& at_n1) {
  const std::optional<int64_t> n = batch_of(at_n.input_shapes);
  if (!n || at_n.input_shapes.size() != at_n1.input_shapes.size() || at_n.ops.size() != at_n1.ops.size() ||
      at_n.outputs != at_n1.outputs || at_n.weights.size() != at_n1.weights.size()) {
    return std::nullopt;
  }
  for (std::size_t i = 0; i < at_n.input_shapes.size(); ++i) {
    shape_t grown = at_n.input_shapes[i];
    grown[0] = *n + 1;
    if (grown != at_n1.input_shapes[i]) return std::nullopt;
  }
  for (std::size_t w = 0; w < at_n.weights.size(); ++w) {  // constants folded from sizes differ too
    if (at_n.weights[w].shape != at_n1.weights[w].shape || at_n.weights[w].values != at_n1.weights[w].values) {
      return std::nullopt;
    }
  }
  batch_places places;
  for (std::size_t k = 0; k < at_n.ops.size(); ++k) {
    const operation& a = at_n.ops[k];
    const operation& b = at_n1.ops[k];
    if (a.kind != b.kind || a.inputs != b.inputs || a.weights != b.weights || a.floats != b.floats ||
        a.ints.size() != b.ints.size()) {
      return std::nullopt;
    }
    for (std::size_t j = 0; j < a.ints.size(); ++j) {
      if (a.ints[j] == b.ints[j]) continue;
      if (a.ints[j] != *n || b.ints[j] != *n + 1) return std::nullopt;
      places.emplace_back(k, j);
    }
  }
  return places;
}

// `p` (read at its inputs' batch) at batch `batch`: the inputs' first dimension and the batch
// size's places set to it. Its shapes are checked again when it is built (infer_shapes).
inline program at_batch(program p, const batch_places& places, int64_t batch) {
  for (shape_t& s : p.input_shapes) s[0] = batch;
  for (const auto& [op, index] : places) p.ops[op].ints[index] = batch;
  return p;
}

// The places as the payload keeps them, beside the method's program: an int64 tensor [k, 2].
inline at::Tensor places_tensor(const batch_places& places) {
  at::Tensor t = at::empty({static_cast<int64_t>(places.size()), 2}, at::kLong);
  for (std::size_t i = 0; i < places.size(); ++i) {
    t[static_cast<int64_t>(i)][0] = static_cast<int64_t>(places[i].first);
    t[static_cast<int64_t>(i)][1] = static_cast<int64_t>(places[i].second);
  }
  return t;
}

// The places read back from the payload, checked against the program they belong to.
inline batch_places places_from(const at::Tensor& t, const program& p, const std::string& method) {
  const std::string what = "the batch sizes' places of method " + method;
  if (t.scalar_type() != at::kLong || t.dim() != 2 || t.size(1) != 2 || !t.device().is_cpu()) {
    throw std::invalid_argument(what + " should be an int64 CPU tensor [k, 2]");
  }
  batch_places places;
  const at::Tensor c = t.contiguous();
  const int64_t* v = c.data_ptr<int64_t>();
  for (int64_t i = 0; i < c.size(0); ++i) {
    const int64_t op = v[2 * i], index = v[2 * i + 1];
    if (op < 0 || static_cast<std::size_t>(op) >= p.ops.size() || index < 0 ||
        static_cast<std::size_t>(index) >= p.ops[static_cast<std::size_t>(op)].ints.size()) {
      throw std::invalid_argument(what + " name operation " + std::to_string(op) + ", int " + std::to_string(index) +
                                  ", which the program does not have");
    }
    places.emplace_back(static_cast<std::size_t>(op), static_cast<std::size_t>(index));
  }
  if (!batch_of(p.input_shapes)) throw std::invalid_argument(what + " are given, but its inputs share no batch size");
  return places;
}

// Shapes besides the example's whose primitives a method keeps built, unless the compile option
// "shape_cache" says otherwise.
inline constexpr std::size_t default_shape_cache = 4;

// The method's program read again at other input shapes (frozen_graph_reader::at); it throws
// std::invalid_argument with tbk_onednn's refusal when the method cannot run them.
using shape_reader = std::function<program(const std::vector<shape_t>&)>;

// A compiled method and the same built for each other input shape it was called with and takes
// (least recently used dropped beyond the cache size). run() is safe to call from many threads.
class any_shape_method {
 public:
  using built_method = std::shared_ptr<const compiled_method>;

  // `places`: where the program holds the batch size, when it takes any batch that way.
  // `reader`: the method read at other shapes, or empty when the payload keeps no graph; then
  // `fixed_reason` says why (shown when a call brings other shapes).
  // `cache_size`: shapes besides the example's kept built (each holds its own reordered weights:
  // memory grows by about the weights' size per shape kept).
  any_shape_method(program p, compile_options options, std::optional<batch_places> places, shape_reader reader,
                   std::string fixed_reason, std::size_t cache_size = default_shape_cache)
      : example_shapes_(p.input_shapes), options_(options), places_(std::move(places)), reader_(std::move(reader)),
        fixed_reason_(std::move(fixed_reason)), cache_size_(cache_size) {
    if (places_) program_ = p;  // kept to build other batches from
    example_ = std::make_shared<const compiled_method>(std::move(p), std::move(options));
  }

  std::vector<at::Tensor> run(const std::vector<at::Tensor>& inputs) const { return for_inputs(inputs)->run(inputs); }

  // The method built for the example's shapes.
  const compiled_method& example() const { return *example_; }

 private:
  // The compiled method for these inputs' shapes: the example's, a cached one, or one built now.
  // (shared: a caller keeps running one that another's call dropped from the cache)
  std::shared_ptr<const compiled_method> for_inputs(const std::vector<at::Tensor>& inputs) const {
    // the example's shapes, or inputs it refuses with its own message (their number, dtype, device)
    if (!other_float_shapes(inputs)) return example_;
    std::vector<shape_t> shapes;
    for (const at::Tensor& x : inputs) shapes.push_back(x.sizes().vec());
    std::promise<built_method> promise;
    std::shared_future<built_method> pending;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (auto cached = find(shapes)) return cached;
      if (auto other = building_.find(shapes); other != building_.end()) {
        pending = other->second;
      } else {
        building_.emplace(shapes, promise.get_future().share());
      }
    }
    // another call is building these shapes: its method, or its error
    if (pending.valid()) return pending.get();
    // built without the lock: calls at other shapes go on meanwhile
    try {
      const auto start = std::chrono::steady_clock::now();
      const bool from_places = places_ && only_batch_differs(shapes);
      auto built = std::make_shared<const compiled_method>(program_for(shapes), options_);
      const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
      report_build(shapes, ms, from_places, *built);
      {
        std::lock_guard<std::mutex> lock(mutex_);
        building_.erase(shapes);
        recent_.emplace_front(shapes, built);
        if (recent_.size() > cache_size_) recent_.pop_back();
      }
      promise.set_value(built);
      return built;
    } catch (...) {
      {
        std::lock_guard<std::mutex> lock(mutex_);
        building_.erase(shapes);
      }
      promise.set_exception(std::current_exception());
      throw;
    }
  }

  // The program at these shapes (not the example's): from the batch places when only the batch
  // differs, else read from the graph; else the reason the method takes no other shapes.
  program program_for(const std::vector<shape_t>& shapes) const {
    const std::optional<int64_t> batch = only_batch_differs(shapes);
    if (places_ && batch) return at_batch(program_, *places_, *batch);
    const std::size_t i = first_difference(shapes);
    const std::string called = "input " + std::to_string(i) + " has shape " + shape_text(shapes[i]) +
                               "; this method was compiled for " + shape_text(example_shapes_[i]);
    if (reader_) {
      try {
        return reader_(shapes);
      } catch (const std::invalid_argument& e) {
        throw std::invalid_argument(called + ", and read again at the shapes of this call, " + e.what());
      }
    }
    if (batch) {
      throw std::invalid_argument(
          "input 0 has shape " + shape_text(shapes[0]) + "; this method was compiled for batch " +
          std::to_string(example_shapes_[0][0]) + " and takes no other: its graph reads differently at another "
          "batch (it computes other sizes from the batch size, as x.size(0) * 2 does, or checks the batch size; "
          "lower it with example inputs of the batch you call it with)" + fixed_reason_text());
    }
    throw std::invalid_argument(called + (places_ ? " and takes other batch sizes only" : " and takes no other shapes") +
                                " (lower it with example inputs of the shape you call it with)" + fixed_reason_text());
  }

  std::string fixed_reason_text() const {
    return fixed_reason_.empty() ? "" : "; it is not read again at other shapes: " + fixed_reason_;
  }

  // The cached method for `shapes`, made the most recently used; nullptr when there is none. The
  // caller holds mutex_.
  std::shared_ptr<const compiled_method> find(const std::vector<shape_t>& shapes) const {
    for (auto it = recent_.begin(); it != recent_.end(); ++it) {
      if (it->first == shapes) {
        recent_.splice(recent_.begin(), recent_, it);
        return recent_.front().second;
      }
    }
    return nullptr;
  }

  // Whether the inputs are as many as the example's, float32 CPU tensors, and of other shapes.
  bool other_float_shapes(const std::vector<at::Tensor>& inputs) const {
    if (inputs.size() != example_shapes_.size()) return false;
    bool other = false;
    for (std::size_t i = 0; i < inputs.size(); ++i) {
      const at::Tensor& x = inputs[i];
      if (x.scalar_type() != at::kFloat || !x.device().is_cpu() || x.is_sparse()) return false;
      other = other || x.sizes().vec() != example_shapes_[i];
    }
    return other;
  }

  // The batch of `shapes` when they are the example's but for a first dimension they share.
  std::optional<int64_t> only_batch_differs(const std::vector<shape_t>& shapes) const {
    if (!batch_of(example_shapes_)) return std::nullopt;
    const std::optional<int64_t> batch = batch_of(shapes);
    if (!batch) return std::nullopt;
    for (std::size_t i = 0; i < shapes.size(); ++i) {
      shape_t want = example_shapes_[i];
      want[0] = *batch;
      if (shapes[i] != want) return std::nullopt;
    }
    return batch;
  }

  std::size_t first_difference(const std::vector<shape_t>& shapes) const {
    for (std::size_t i = 0; i < shapes.size(); ++i) {
      if (shapes[i] != example_shapes_[i]) return i;
    }
    return 0;
  }

  // A build at shapes not kept built (their first call, or one after they left the cache) is
  // timed; TBK_ONEDNN_VERBOSE prints it, how the program was made, and the steps built.
  void report_build(const std::vector<shape_t>& shapes, double ms, bool from_places, const compiled_method& built) const {
    const char* verbose = std::getenv("TBK_ONEDNN_VERBOSE");
    if (verbose == nullptr || std::string(verbose).empty() || std::string(verbose) == "0") return;
    const std::string prefix = "tbk_onednn." + options_.method + ": ";
    std::string text = prefix + "built for input shapes";
    for (const shape_t& s : shapes) text += " " + shape_text(s);
    char took[32];
    std::snprintf(took, sizeof took, "%.1f", ms);
    text += std::string(from_places ? " from the batch places" : " from its graph, read again") + ", in " +
            took + " ms (not among the shapes kept built)\n";
    for (const std::string& line : built.summary()) text += prefix + "  " + line + "\n";
    std::fputs(text.c_str(), stderr);
  }

  std::vector<shape_t> example_shapes_;
  program program_;  // as read at the example's shapes, when batch places build other batches
  compile_options options_;
  std::optional<batch_places> places_;
  shape_reader reader_;
  std::string fixed_reason_;
  std::size_t cache_size_;
  std::shared_ptr<const compiled_method> example_;
  mutable std::mutex mutex_;  // guards recent_ and building_
  mutable std::list<std::pair<std::vector<shape_t>, built_method>> recent_;
  // shapes being built now, so that concurrent first calls at one new shape build it once
  mutable std::map<std::vector<shape_t>, std::shared_future<built_method>> building_;
};

}  // namespace tbk_onednn
