// register_add_sub.cpp: registers the add/sub backend as "custom_backend" when loaded.
#include "add_sub.hpp"
TBK_REGISTER_BACKEND(add_sub_backend, "custom_backend");
