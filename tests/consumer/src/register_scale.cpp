// register_scale.cpp: the consumer's registration translation unit.
#include "scale_backend.hpp"
TBK_REGISTER_BACKEND(scale_backend, "consumer_scale");
