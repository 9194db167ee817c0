// tbk/testing/doctest_over_glog.hpp: includes doctest with its CHECK macros over glog's.
// libtorch includes glog, whose CHECK, CHECK_EQ, ... replace doctest's when they are defined
// later (a failed glog CHECK aborts the process instead of failing the test). Include this after
// every libtorch header; it also restores doctest's macros when doctest came first. No include
// guard on purpose: each inclusion puts doctest's macros back.

#undef CHECK
#undef CHECK_EQ
#undef CHECK_NE
#undef CHECK_LT
#undef CHECK_LE
#undef CHECK_GT
#undef CHECK_GE
#include <doctest/doctest.h>
#ifndef DOCTEST_CONFIG_NO_SHORT_MACRO_NAMES
#define CHECK(...) DOCTEST_CHECK(__VA_ARGS__)
#define CHECK_EQ(...) DOCTEST_CHECK_EQ(__VA_ARGS__)
#define CHECK_NE(...) DOCTEST_CHECK_NE(__VA_ARGS__)
#define CHECK_LT(...) DOCTEST_CHECK_LT(__VA_ARGS__)
#define CHECK_LE(...) DOCTEST_CHECK_LE(__VA_ARGS__)
#define CHECK_GT(...) DOCTEST_CHECK_GT(__VA_ARGS__)
#define CHECK_GE(...) DOCTEST_CHECK_GE(__VA_ARGS__)
#endif
