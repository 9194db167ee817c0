// tbk/availability.hpp: availability policies: whether a backend can run here, and if not, why.
#pragma once

#include <tbk/fwd.hpp>

#include <string>  // std::string

namespace tbk {

// What an availability policy's is_available() may return instead of a bare bool: a reason
// travels with "no", and tbk puts it in the errors users see.
class availability {
 public:
  static availability yes() { return availability(true, {}); }
  static availability no(std::string reason) { return availability(false, std::move(reason)); }

  explicit operator bool() const { return available_; }
  bool available() const { return available_; }
  const std::string& reason() const { return reason_; }

 private:
  availability(bool available, std::string reason)
      : available_(available), reason_(std::move(reason)) {}
  bool available_;
  std::string reason_;
};

inline availability available() { return availability::yes(); }
inline availability unavailable(std::string reason) { return availability::no(std::move(reason)); }

// The default availability policy.
struct always_available {
  static bool is_available() { return true; }
};

}  // namespace tbk
