// tbk/tbk.hpp: torch-backend-kit, everything a backend author and its callers use (the doctest
// conformance kit, tbk/testing.hpp, is apart: it needs doctest).
#pragma once

#include <tbk/availability.hpp>
#include <tbk/backend.hpp>
#include <tbk/compile_spec.hpp>
#include <tbk/fwd.hpp>
#include <tbk/handle.hpp>
#include <tbk/load.hpp>
#include <tbk/lower.hpp>
#include <tbk/node_support.hpp>
#include <tbk/node_text.hpp>
#include <tbk/partition.hpp>
#include <tbk/policy.hpp>
#include <tbk/register.hpp>
#include <tbk/signature.hpp>
