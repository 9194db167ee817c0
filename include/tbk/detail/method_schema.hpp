// tbk/detail/method_schema.hpp: comparing a lowered method's TorchScript schema with the
// execute policy's signature (at lowering and load time), and the outputs execute returned
// with what the method declares (at call time). Non-template.
#pragma once

#include <tbk/detail/arguments.hpp>
#include <tbk/detail/errors.hpp>

#include <ATen/core/function_schema.h>  // c10::FunctionSchema
#include <ATen/core/ivalue.h>           // c10::IValue
#include <ATen/core/jit_type.h>         // c10::Type, c10::TupleType

#include <string>  // std::string
#include <vector>  // std::vector

namespace tbk::detail {

// The outputs a method declares: the elements of a tuple return, or the one return.
inline std::vector<c10::TypePtr> declared_outputs(const c10::FunctionSchema& schema) {
  if (schema.returns().size() != 1) return {};
  const c10::TypePtr& out = schema.returns()[0].type();
  if (auto tuple = out->cast<c10::TupleType>()) {
    return std::vector<c10::TypePtr>(tuple->elements().begin(), tuple->elements().end());
  }
  return {out};
}

// A module method's arguments after the module itself: the first, `self` by convention, though
// TorchScript takes any name for it (`def forward(s, x)`).
inline std::vector<const c10::Argument*> explicit_arguments(const c10::FunctionSchema& schema) {
  std::vector<const c10::Argument*> out;
  for (std::size_t i = 1; i < schema.arguments().size(); ++i) out.push_back(&schema.arguments()[i]);
  return out;
}

// "forward(a: Tensor, b: Tensor) -> Tuple[Tensor, Tensor]"
inline std::string schema_text(const c10::FunctionSchema& schema) {
  std::string text = schema.name() + "(";
  bool first = true;
  for (const c10::Argument* arg : explicit_arguments(schema)) {
    text += (first ? "" : ", ") + arg->name() + ": " + arg->type()->annotation_str();
    first = false;
  }
  text += ") -> ";
  if (schema.returns().size() == 1) text += schema.returns()[0].type()->annotation_str();
  else text += "None";
  return text;
}

// Whether a value of TorchScript type `given` can be passed where `wanted` is expected
// (an int may go where a float is wanted, as TorchScript and Python allow).
inline bool type_fits(const c10::Type& given, const c10::Type& wanted) {
  if (given.isSubtypeOf(wanted)) return true;
  return given.kind() == c10::TypeKind::IntType && wanted.kind() == c10::TypeKind::FloatType;
}

// Whether a value is an instance of `type`, cheaply for the common types (no Type allocation).
inline bool value_fits(const c10::IValue& value, const c10::Type& type) {
  switch (type.kind()) {
    case c10::TypeKind::AnyType: return true;
    case c10::TypeKind::TensorType: return value.isTensor();
    case c10::TypeKind::IntType: return value.isInt();
    case c10::TypeKind::FloatType: return value.isDouble();
    case c10::TypeKind::BoolType: return value.isBool();
    case c10::TypeKind::StringType: return value.isString();
    case c10::TypeKind::NoneType: return value.isNone();
    case c10::TypeKind::OptionalType:
      return value.isNone() || value_fits(value, *type.expectRef<c10::OptionalType>().getElementType());
    default: return value.type()->isSubtypeOf(type);
  }
}

[[noreturn]] inline void raise_schema_mismatch(const error_site& site,
                                               const c10::FunctionSchema& schema,
                                               const std::string& policy_signature,
                                               const std::string& problem) {
  raise(site_name(site) + ": the method's TorchScript signature does not fit the execute "
        "policy: " + problem + ".\n    method:         " + schema_text(schema) +
        "\n    execute policy: " + policy_signature);
}

// Throws, showing both signatures, when `schema` cannot be served by an execute policy with
// these parameters and result.
inline void check_method_schema(const error_site& site, const c10::FunctionSchema& schema,
                                const param_info* params, std::size_t count,
                                const std::string& result_name, const result_info& result) {
  const std::string policy = signature_text(params, count, result_name);
  const std::vector<const c10::Argument*> args = explicit_arguments(schema);
  std::size_t fixed = count;
  const bool has_rest = count != 0 && params[count - 1].kind == param_kind::rest;
  if (has_rest) --fixed;
  std::size_t min_count = fixed;
  while (min_count != 0 && params[min_count - 1].kind == param_kind::optional) --min_count;
  if (args.size() < min_count || (!has_rest && args.size() > fixed)) {
    raise_schema_mismatch(site, schema, policy,
                          "the method takes " + count_text(args.size()) +
                              ", the execute policy " +
                              (has_rest ? "at least " + count_text(min_count)
                                        : count_text(fixed)));
  }
  for (std::size_t i = 0; i < args.size(); ++i) {
    const param_info& param = params[i < fixed ? i : fixed];
    const c10::TypePtr wanted = param.type();
    if (!type_fits(*args[i]->type(), *wanted)) {
      raise_schema_mismatch(site, schema, policy,
                            "argument '" + args[i]->name() + "' (inputs[" + std::to_string(i) +
                                "]) is " + args[i]->type()->annotation_str() +
                                ", the execute policy takes " + param.name() + " there");
    }
  }
  const std::vector<c10::TypePtr> outputs = declared_outputs(schema);
  if (result.fixed && result.types.size() != outputs.size()) {
    raise_schema_mismatch(site, schema, policy,
                          "the method returns " + std::to_string(outputs.size()) +
                              " output(s), the execute policy " +
                              std::to_string(result.types.size()));
  }
  for (std::size_t i = 0; i < outputs.size(); ++i) {
    const c10::TypePtr& produced = result.fixed ? result.types[i] : result.types[0];
    if (produced->kind() == c10::TypeKind::AnyType) continue;  // known only at call time
    if (!produced->isSubtypeOf(*outputs[i])) {
      raise_schema_mismatch(site, schema, policy,
                            "output " + std::to_string(i) + " of the method is " +
                                outputs[i]->annotation_str() + ", the execute policy returns " +
                                produced->annotation_str() + " there");
    }
  }
}

// Throws when the outputs execute returned do not match the method's declared outputs
// (instead of PyTorch's empty AssertionError or an unpacking error in the lowered module).
inline void check_outputs(const error_site& site, const std::vector<c10::TypePtr>& declared,
                          c10::ArrayRef<c10::IValue> outputs) {
  if (outputs.size() != declared.size()) {
    raise(site_name(site) + ": execute returned " + std::to_string(outputs.size()) +
          " output(s), but the method returns " + std::to_string(declared.size()));
  }
  for (std::size_t i = 0; i < declared.size(); ++i) {
    const c10::IValue& value = outputs[i];
    if (!value_fits(value, *declared[i])) {
      raise(site_name(site) + ": execute returned " + describe(value) + " as output " +
            std::to_string(i) + ", but the method declares " + declared[i]->annotation_str());
    }
  }
}

}  // namespace tbk::detail
