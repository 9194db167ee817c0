// program.hpp: the tbk_onednn payload format, whole: the program (ir.hpp), its validation
// (shapes.hpp, with each operation kind's shape rule in operators/<family>_shape.hpp) and its
// encoding (codec.hpp). Standard C++ only: the payload fuzz target links nothing else.
#pragma once
#include "codec.hpp"
#include "ir.hpp"
#include "shapes.hpp"
