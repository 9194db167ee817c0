// register_handwritten.cpp: the hand-written backend's registration translation unit, the
// counterpart of examples/add_sub/register_add_sub.cpp in benchmarks/run's build-cost figure.
#include "handwritten_add_sub.hpp"
static const bool registered = (handwritten::register_backend("handwritten_backend"), true);
