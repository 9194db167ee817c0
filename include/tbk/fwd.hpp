// tbk/fwd.hpp: a map of torch-backend-kit: its public templates, default policies and names.
#pragma once

namespace tbk {

// Availability policy used when a backend does not name one: always available.
struct always_available;

// The adapter that turns a compile policy and an execute policy into a
// torch::jit::PyTorchBackendInterface (tbk/backend.hpp).
template <class Compile, class Execute, class Availability = always_available>
class backend;

// Execute parameter that takes all remaining inputs, each converted to T (tbk/signature.hpp).
template <class T>
class rest;

// Read-only views over a lowering's compile spec (tbk/compile_spec.hpp).
class compile_spec;
class method_spec;

// Builder for compile specs, for C++ callers of tbk::lower (tbk/compile_spec.hpp).
class spec_builder;

// What an availability policy reports (tbk/availability.hpp).
class availability;

}  // namespace tbk
