// vis_first.cpp: the add/sub backend registered as "vis_first", in a library built with
// -fvisibility=hidden (its own copy of every tbk inline function and static).
#include "add_sub.hpp"

TBK_REGISTER_BACKEND(add_sub_backend, "vis_first");
