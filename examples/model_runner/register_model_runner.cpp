// register_model_runner.cpp: registers the model runner as "model_runner" when loaded.
#include "model_runner.hpp"
TBK_REGISTER_BACKEND(model_runner_backend, "model_runner");
