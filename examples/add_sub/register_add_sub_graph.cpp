// register_add_sub_graph.cpp: registers the add/sub backend for partitioned models as
// "add_sub_graph" when loaded.
#include <tbk/register.hpp>

#include "add_sub_graph.hpp"
TBK_REGISTER_BACKEND(add_sub_graph_backend, "add_sub_graph");
