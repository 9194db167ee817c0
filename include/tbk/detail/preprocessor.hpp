// tbk/detail/preprocessor.hpp: the two token helpers tbk's macros share.
#pragma once

#define TBK_DETAIL_CONCAT_IMPL(a, b) a##b
#define TBK_DETAIL_CONCAT(a, b) TBK_DETAIL_CONCAT_IMPL(a, b)
#define TBK_DETAIL_STRINGIFY_IMPL(x) #x
#define TBK_DETAIL_STRINGIFY(x) TBK_DETAIL_STRINGIFY_IMPL(x)
