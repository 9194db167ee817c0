// register_onednn.cpp: registers the oneDNN backend as "tbk_onednn" when loaded.
#include <tbk/register.hpp>

#include "onednn_backend.hpp"
TBK_REGISTER_BACKEND(onednn_backend, "tbk_onednn");
