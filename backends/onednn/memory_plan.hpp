// memory_plan.hpp: where each intermediate value of a compiled method lives in its callers'
// arena: two slots share memory only when no step touches both (greedy, largest first), each
// offset aligned to 64 bytes.
#pragma once
#include "method_builder.hpp"  // slot

#include <algorithm>  // std::max, std::sort
#include <cstddef>    // std::size_t
#include <utility>    // std::pair
#include <vector>     // std::vector

namespace tbk_onednn {
namespace detail {

// Sets every slot's offset; returns the arena's size in bytes.
inline std::size_t plan_memory(std::vector<slot>& slots) {
  std::vector<std::size_t> order(slots.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return slots[a].bytes > slots[b].bytes; });
  std::vector<std::size_t> placed;
  std::size_t arena_bytes = 0;
  for (std::size_t s : order) {
    slot& me = slots[s];
    std::vector<std::pair<std::size_t, std::size_t>> taken;  // [begin, end) of overlapping lives
    for (std::size_t o : placed) {
      const slot& other = slots[o];
      if (other.first <= me.last && me.first <= other.last) taken.push_back({other.offset, other.offset + other.bytes});
    }
    std::sort(taken.begin(), taken.end());
    std::size_t offset = 0;
    for (auto [begin, end] : taken) {
      if (offset + me.bytes <= begin) break;
      offset = std::max(offset, (end + 63) / 64 * 64);
    }
    me.offset = offset;
    arena_bytes = std::max(arena_bytes, offset + me.bytes);
    placed.push_back(s);
  }
  return arena_bytes;
}

}  // namespace detail
}  // namespace tbk_onednn
