// payload_checksums.hpp: the integrity of a tbk_onednn payload. Lowering records each part's
// form (data type and shape) and CRC-32 (zlib's) in the part ":checksums"; loading checks every
// part against it before any part is read, so a payload damaged on disk or in transfer (a
// flipped, lost or swapped byte, a part taken from another model) is refused with the part
// named, never run.
#pragma once
#include "checksums_text.hpp"  // the ':checksums' part's text
#include "codec.hpp"           // header_version, first_version_with_checksums

#include <ATen/ATen.h>
#include <zlib.h>  // crc32_z

#include <cstdint>    // uint32_t, int64_t
#include <cstring>    // std::memcpy
#include <map>        // std::map
#include <stdexcept>  // std::invalid_argument
#include <string>     // std::string

namespace tbk_onednn {

// Whether a tensor holds bytes as the payload keeps them (programs, notes, the frozen module): a
// contiguous 1-D uint8 CPU tensor.
inline bool is_byte_string(const at::Tensor& t) {
  return t.scalar_type() == at::kByte && t.dim() == 1 && t.is_contiguous() && t.device().is_cpu();
}

// The part that lists every other part (its text: checksums_text.hpp).
inline constexpr const char* checksums_key = ":checksums";

namespace detail {

// A part's name for a message: printable ASCII, any other byte as \xNN (a damaged name may hold
// any byte, and a message that is not UTF-8 cannot reach Python).
inline std::string shown(const std::string& key) {
  static constexpr char hex[] = "0123456789abcdef";
  std::string out;
  for (const char c : key) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte >= 0x20 && byte < 0x7f) {
      out += c;
    } else {
      out += {'\\', 'x', hex[byte >> 4], hex[byte & 15]};
    }
  }
  return out;
}

// What a part of the payload is, for messages: "the program of method forward".
inline std::string part_description(const std::string& key) {
  if (key == ":frozen_module") return "the frozen module kept to read methods at other shapes";
  const auto colon = key.find(':');
  if (colon == std::string::npos) return "the program and weights of method " + shown(key);
  const std::string method = shown(key.substr(0, colon)), what = key.substr(colon);
  if (what == ":batch_places") return "where method " + method + "'s program holds the batch size";
  if (what == ":other_shapes") return "the other-shapes note of method " + method;
  return "a part tbk_onednn does not write";
}

// A part's form, its data type and shape as one word: "Byte[10240]", "Long[3,2]".
inline std::string form_of(const at::Tensor& part) {
  std::string sizes;
  for (const int64_t size : part.sizes()) sizes += (sizes.empty() ? "" : ",") + std::to_string(size);
  return std::string(c10::toString(part.scalar_type())) + "[" + sizes + "]";
}

// zlib's CRC-32 of a part's bytes (a contiguous CPU tensor).
inline uint32_t crc32_of(const at::Tensor& part) {
  const auto* bytes = static_cast<const Bytef*>(part.data_ptr());
  const auto size = static_cast<z_size_t>(part.numel()) * static_cast<z_size_t>(part.element_size());
  return static_cast<uint32_t>(crc32_z(crc32_z(0L, Z_NULL, 0), bytes, size));
}

// The ":checksums" part read back (checksums_text.hpp); a malformed line is damage too.
inline std::map<std::string, recorded_part> parse_checksums(const at::Tensor& part) {
  if (!part.defined() || !is_byte_string(part)) {
    throw std::invalid_argument("its checksums part is not a 1-D uint8 CPU tensor");
  }
  return parse_checksums_text(static_cast<const char*>(part.data_ptr()), static_cast<std::size_t>(part.numel()));
}

}  // namespace detail

// At lowering, once every other part is in: records each part's form (data type and shape) and
// CRC-32 as the part ":checksums". Every part must be a contiguous CPU tensor.
inline void add_checksums(c10::impl::GenericDict& payload) {
  std::map<std::string, recorded_part> parts;
  for (const auto& entry : payload) {
    const std::string key = entry.key().toStringRef();
    const at::Tensor part = entry.value().toTensor();
    if (!part.device().is_cpu() || !part.is_contiguous()) {
      throw std::logic_error("tbk_onednn: payload part " + key + " is not a contiguous CPU tensor");
    }
    parts[key] = {detail::crc32_of(part), detail::form_of(part)};
  }
  const std::string text = checksums_text(parts);
  at::Tensor part = at::empty({static_cast<int64_t>(text.size())}, at::kByte);
  if (!text.empty()) std::memcpy(part.data_ptr(), text.data(), text.size());
  payload.insert(checksums_key, part);
}

// At load, before any part is read: every part the checksums list is present, of its recorded
// form and CRC-32, and no other part is there. A payload of a tbk_onednn before checksums (no
// ":checksums", programs of format version 2 or older) is taken as it comes, as long as its
// parts' names are ones tbk_onednn writes; a program of version 3 or newer without checksums is
// damage (the part's name changed, say). Throws std::invalid_argument naming the part and what
// it is.
inline void check_checksums(const c10::impl::GenericDict& payload) {
  auto found = payload.find(checksums_key);
  if (found == payload.end()) {
    for (const auto& entry : payload) {
      const std::string key = entry.key().isString() ? entry.key().toStringRef() : "(not a string)";
      const std::string what = detail::part_description(key);
      if (what == "a part tbk_onednn does not write") {
        throw std::invalid_argument("the payload has a part '" + detail::shown(key) + "' that tbk_onednn does not write, and no "
                                    "checksums (damaged, or not tbk_onednn's: lower the model again)");
      }
      const at::Tensor part = entry.value().isTensor() ? entry.value().toTensor() : at::Tensor();
      if (key.find(':') != std::string::npos || !part.defined() || !is_byte_string(part)) continue;
      const auto version = header_version(part.data_ptr<uint8_t>(), static_cast<std::size_t>(part.numel()));
      if (version && *version >= first_version_with_checksums) {
        throw std::invalid_argument("the payload has no checksums part, though its part '" + detail::shown(key) + "' (" + what +
                                    ") is of format version " + std::to_string(*version) + ", always written with one "
                                    "(damaged: lower the model again, or restore the file)");
      }
    }
    return;
  }
  if (!found->value().isTensor()) throw std::invalid_argument("the payload's checksums part is not a tensor");
  std::map<std::string, recorded_part> recorded;
  try {
    recorded = detail::parse_checksums(found->value().toTensor());
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(std::string("the payload is damaged: ") + e.what() + " (lower the model again, "
                                "or restore the file)");
  }
  for (const auto& entry : payload) {
    const std::string key = entry.key().isString() ? entry.key().toStringRef() : "(not a string)";
    if (key != checksums_key && recorded.find(key) == recorded.end()) {
      throw std::invalid_argument("the payload has a part '" + detail::shown(key) + "' its checksums do not list (damaged or "
                                  "edited after lowering: lower the model again)");
    }
  }
  for (const auto& [key, want] : recorded) {
    auto part = payload.find(key);
    const std::string what = "part '" + detail::shown(key) + "' (" + detail::part_description(key) + ")";
    if (part == payload.end()) {
      throw std::invalid_argument("the payload has no " + what + ", which its checksums list (damaged or edited "
                                  "after lowering: lower the model again)");
    }
    const at::Tensor bytes = part->value().isTensor() ? part->value().toTensor() : at::Tensor();
    if (!bytes.defined() || !bytes.device().is_cpu() || !bytes.is_contiguous()) {
      throw std::invalid_argument("the payload's " + what + " is not a contiguous CPU tensor (damaged or edited "
                                  "after lowering: lower the model again)");
    }
    const std::string form = detail::form_of(bytes);
    const uint32_t crc = detail::crc32_of(bytes);
    if (form != want.form || crc != want.crc) {
      throw std::invalid_argument("the payload's " + what + " is damaged: " + form + " of CRC-32 " + detail::hex32(crc) +
                                  ", lowering wrote " + detail::shown(want.form) + " of CRC-32 " +
                                  detail::hex32(want.crc) + " (the file changed after lowering: lower the model "
                                  "again, or restore it)");
    }
  }
}

}  // namespace tbk_onednn
