// tbk/testing.hpp: a doctest conformance kit for backend authors. TBK_TEST_BACKEND("name")
// registers the test cases every backend needs: results against a reference on both lowering
// paths, new results on every call, save/load round trips (memory, file, lite interpreter), bad
// calls, concurrent calls, availability, and memory over repeated cycles. See docs/testing.md.
#pragma once

#include <tbk/testing/checks.hpp>        // the checks
#include <tbk/testing/kit.hpp>           // tbk::testing::backend_kit: the configuration
#include <tbk/testing/registration.hpp>  // TBK_TEST_BACKEND

#include <tbk/testing/doctest_over_glog.hpp>  // last: doctest's CHECK, not glog's
