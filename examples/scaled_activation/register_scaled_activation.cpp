// register_scaled_activation.cpp: registers the backend as "scaled_activation" when loaded.
#include "scaled_activation.hpp"
TBK_REGISTER_BACKEND(scaled_activation_backend, "scaled_activation");
