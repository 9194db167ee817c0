// tbk/detail/errors.hpp: how tbk raises errors and names what it received.
#pragma once

#include <tbk/detail/compat.hpp>  // make_error, make_type_error

#include <ATen/core/ivalue.h>  // c10::IValue

#include <exception>  // std::exception, std::rethrow_exception
#include <sstream>    // std::ostringstream
#include <string>     // std::string

namespace tbk::detail {

// Where an error happened: the backend name and the method ("" when not per method).
struct error_site {
  const std::string& backend;
  const std::string& method;
};

// "custom_backend.forward" or "custom_backend".
inline std::string site_name(const error_site& site) {
  return site.method.empty() ? site.backend : site.backend + "." + site.method;
}

// Throws a c10::Error whose what() is exactly `message` (no C++ backtrace appended).
[[noreturn]] inline void raise(std::string message) {
  throw make_error(std::move(message));
}

// Like raise(), as a c10::TypeError (Python sees a TypeError when called directly).
[[noreturn]] inline void raise_type_error(std::string message) {
  throw make_type_error(std::move(message));
}

// The message of the exception in flight, whatever its type.
inline std::string current_exception_text() {
  try {
    throw;
  } catch (const c10::Error& e) {
    return e.what_without_backtrace();
  } catch (const std::exception& e) {
    std::string what = e.what();
    return what.empty() ? std::string("an exception of a std::exception type with an empty message")
                        : what;
  } catch (...) {
    return "an exception that is not a std::exception (policies should throw "
           "std::exception or c10::Error)";
  }
}

// Whether `text` is a message tbk already attributed to `site` ("b.m: ..." or "b.m(): ...").
inline bool attributed_to(const std::string& text, const error_site& site) {
  const std::string name = site_name(site);
  return text.size() > name.size() && text.compare(0, name.size(), name) == 0 &&
         (text[name.size()] == ':' || text[name.size()] == '(');
}

// Rethrows the exception in flight as a c10::Error prefixed with the site and the hook
// ("custom_backend.forward: compile policy failed: ..."); an error already attributed to the
// site passes through as it is. Call it only inside a catch block.
[[noreturn]] inline void rethrow_with_site(const error_site& site, const char* hook) {
  std::string text = current_exception_text();
  if (attributed_to(text, site)) throw;
  raise(site_name(site) + ": " + hook + " failed: " + text);
}

// As rethrow_with_site, the site followed by `origin` in brackets ("tbk_onednn.forward (region 2
// of method forward: aten::conv2d (model.py:12)): execute policy failed: ..."); an error already
// attributed to the site gets it after the site's name. Without an origin, rethrow_with_site.
[[noreturn]] inline void rethrow_with_origin(const error_site& site, const std::string& origin, const char* hook) {
  if (origin.empty()) rethrow_with_site(site, hook);
  const std::string text = current_exception_text();
  const std::string name = site_name(site);
  if (attributed_to(text, site)) raise(name + " (" + origin + ")" + text.substr(name.size()));
  raise(name + " (" + origin + "): " + hook + " failed: " + text);
}

// A short description of a received value, for error messages:
// "Tensor(dtype=Float, shape=[2, 3])", "int(7)", "str", "None", "List[int]".
inline std::string describe(const c10::IValue& value) {
  std::ostringstream out;
  if (value.isTensor()) {
    const at::Tensor& t = value.toTensor();
    if (!t.defined()) return "Tensor(undefined)";
    out << "Tensor(dtype=" << t.scalar_type() << ", shape=" << t.sizes() << ")";
  } else if (value.isInt()) {
    out << "int(" << value.toInt() << ")";
  } else if (value.isDouble()) {
    out << "float(" << value.toDouble() << ")";
  } else if (value.isBool()) {
    out << "bool(" << (value.toBool() ? "True" : "False") << ")";
  } else if (value.isNone()) {
    out << "None";
  } else if (value.isCapsule()) {
    out << "Capsule";
  } else {
    out << value.type()->annotation_str();
  }
  return out.str();
}

}  // namespace tbk::detail
