/* kernels_generic.cpp: the generic tier: softmax, log_softmax and logsumexp kernels
 * for float32 and float64 rows and column tiles.
 *
 * ISA: portable C++ (no ISA extension): the reference tier, and the only one off x86-64. setup.py compiles this file, and only this file, with the flags
 * of its tier; dispatch.cpp calls into it only when the CPU has them.
 * Algorithm: kernels.hpp (loops) over vec_generic.hpp (vector layer and exp).
 * Error of the whole softmax: the bounds in README.md "Accuracy", asserted by tests/ (_helpers.py).
 */
#include <stdint.h>
#include <string.h>
#include "kernels.h"
#include "exp_constants.hpp"
#include "half.hpp"

namespace fs_generic {
#include "vec_generic.hpp"
#include "kernels.hpp"
/* float16 / bfloat16: the portable conversions of half.hpp */
static void h2f(const uint16_t *s, int64_t n, float *d) { fs_h2f_n(s, n, d); }
static void f2h(const float *s, int64_t n, uint16_t *d) { fs_f2h_n(s, n, d); }
static void b2f(const uint16_t *s, int64_t n, float *d) { fs_b2f_n(s, n, d); }
static void f2b(const float *s, int64_t n, uint16_t *d) { fs_f2b_n(s, n, d); }
struct H16 {
    static float in(uint16_t h) { return fs_h2f(h); }
    static uint16_t out(float f) { return fs_f2h(f); }
};
struct B16 {
    static float in(uint16_t h) { return fs_b2f(h); }
    static uint16_t out(float f) { return fs_f2b(f); }
};
template <class C> static float cvt_max(const uint16_t *s, int64_t n, float *d) {
    float m = -__builtin_inff();
    for (int64_t i = 0; i < n; ++i) {
        d[i] = C::in(s[i]);
        m = d[i] > m ? d[i] : m;
    }
    return m;
}
template <class C> static void scale_cvt(const float *e, int64_t n, float s, uint16_t *d) {
    for (int64_t i = 0; i < n; ++i) d[i] = C::out(e[i] * s);
}
template <class C> static void shift_cvt(const float *x, int64_t n, float m, float c, uint16_t *d) {
    for (int64_t i = 0; i < n; ++i) d[i] = C::out((x[i] - m) - c);
}
}

extern const Tier fs_tier_generic = {
    "generic",
    fs_generic::Kernels<fs_generic::VecF32>::table(),
    fs_generic::Kernels<fs_generic::VecF64>::table(),
    {fs_generic::h2f, fs_generic::f2h, fs_generic::b2f, fs_generic::f2b,
     {fs_generic::cvt_max<fs_generic::H16>, fs_generic::cvt_max<fs_generic::B16>},
     {fs_generic::scale_cvt<fs_generic::H16>, fs_generic::scale_cvt<fs_generic::B16>},
     {fs_generic::shift_cvt<fs_generic::H16>, fs_generic::shift_cvt<fs_generic::B16>}},
};
