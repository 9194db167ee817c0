// expect: tbk::register_backend<B>: B must be a tbk::backend<Compile, Execute, Availability>
#include <tbk/tbk.hpp>
struct not_a_backend {};
TBK_REGISTER_BACKEND(not_a_backend, "nope");
