/* kernels_avx512.cpp: the avx512 tier: softmax, log_softmax and logsumexp kernels
 * for float32 and float64 rows and column tiles.
 *
 * ISA: AVX-512 F/BW/DQ/VL (Skylake-X, Zen 4 and later). setup.py compiles this file, and only this file, with the flags
 * of its tier; dispatch.cpp calls into it only when the CPU has them.
 * Algorithm: kernels.hpp (loops) over vec_avx512.hpp (vector layer and exp).
 * Error of the whole softmax: the bounds in README.md "Accuracy", asserted by tests/ (_helpers.py).
 */
#include <stdint.h>
#include <string.h>
/* GCC 12's AVX-512 headers start some intrinsics from an undefined vector
 * (_mm512_undefined_ps) and then warn about it; the lanes are all overwritten. */
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#include "kernels.h"
#include "exp_constants.hpp"
#include "half.hpp"

namespace fs_avx512 {
#include "vec_avx512.hpp"
#include "kernels.hpp"
/* float16 with AVX-512F's conversions (round to nearest even), bfloat16 with
 * integer shifts; tails with the portable conversions (same bits). */
static void h2f(const uint16_t *s, int64_t n, float *d) {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(d + i, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(s + i))));
    fs_h2f_n(s + i, n - i, d + i);
}
static void f2h(const float *s, int64_t n, uint16_t *d) {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm256_storeu_si256((__m256i *)(d + i),
                            _mm512_cvtps_ph(_mm512_loadu_ps(s + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    fs_f2h_n(s + i, n - i, d + i);
}
static void b2f(const uint16_t *s, int64_t n, float *d) {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_si512((void *)(d + i),
                            _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(s + i))), 16));
    fs_b2f_n(s + i, n - i, d + i);
}
static void f2b(const float *s, int64_t n, uint16_t *d) {
    int64_t i = 0;
    const __m512i bias = _mm512_set1_epi32(0x7FFF), one = _mm512_set1_epi32(1), quiet = _mm512_set1_epi32(0x40);
    for (; i + 16 <= n; i += 16) {
        const __m512 f = _mm512_loadu_ps(s + i);
        const __m512i x = _mm512_castps_si512(f), hi = _mm512_srli_epi32(x, 16);
        __m512i r = _mm512_srli_epi32(_mm512_add_epi32(_mm512_add_epi32(x, bias), _mm512_and_si512(hi, one)), 16);
        r = _mm512_mask_mov_epi32(r, _mm512_cmp_ps_mask(f, f, _CMP_UNORD_Q), _mm512_or_si512(hi, quiet));
        _mm256_storeu_si256((__m256i *)(d + i), _mm512_cvtepi32_epi16(r));
    }
    fs_f2b_n(s + i, n - i, d + i);
}
/* Fused sweeps (kernels.h HalfConvert); C: 16 lanes of float16 (H16) or bfloat16 (B16). */
struct H16 {
    static __m512 in(const uint16_t *p) { return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p)); }
    static void out(uint16_t *p, __m512 v) {
        _mm256_storeu_si256((__m256i *)p, _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    }
    static float in1(uint16_t h) { return fs_h2f(h); }
    static uint16_t out1(float f) { return fs_f2h(f); }
};
struct B16 {
    static __m512 in(const uint16_t *p) {
        return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)p)), 16));
    }
    static void out(uint16_t *p, __m512 v) { f2b((const float *)&v, 16, p); }
    static float in1(uint16_t h) { return fs_b2f(h); }
    static uint16_t out1(float f) { return fs_f2b(f); }
};
template <class C> static float cvt_max(const uint16_t *s, int64_t n, float *d) {
    __m512 m0 = _mm512_set1_ps(-__builtin_inff()), m1 = m0;
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        const __m512 a = C::in(s + i), b = C::in(s + i + 16);
        _mm512_storeu_ps(d + i, a);
        _mm512_storeu_ps(d + i + 16, b);
        m0 = _mm512_max_ps(m0, a);
        m1 = _mm512_max_ps(m1, b);
    }
    for (; i + 16 <= n; i += 16) {
        const __m512 a = C::in(s + i);
        _mm512_storeu_ps(d + i, a);
        m0 = _mm512_max_ps(m0, a);
    }
    float m = VecF32::hmax(_mm512_max_ps(m0, m1));
    for (; i < n; ++i) {
        d[i] = C::in1(s[i]);
        m = d[i] > m ? d[i] : m;
    }
    return m;
}
template <class C> static void scale_cvt(const float *e, int64_t n, float s, uint16_t *d) {
    const __m512 vs = _mm512_set1_ps(s);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) C::out(d + i, _mm512_mul_ps(_mm512_loadu_ps(e + i), vs));
    for (; i < n; ++i) d[i] = C::out1(e[i] * s);
}
template <class C> static void shift_cvt(const float *x, int64_t n, float m, float c, uint16_t *d) {
    const __m512 vm = _mm512_set1_ps(m), vc = _mm512_set1_ps(c);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) C::out(d + i, _mm512_sub_ps(_mm512_sub_ps(_mm512_loadu_ps(x + i), vm), vc));
    for (; i < n; ++i) d[i] = C::out1((x[i] - m) - c);
}
}

extern const Tier fs_tier_avx512 = {
    "avx512f",
    fs_avx512::Kernels<fs_avx512::VecF32>::table(),
    fs_avx512::Kernels<fs_avx512::VecF64>::table(),
    {fs_avx512::h2f, fs_avx512::f2h, fs_avx512::b2f, fs_avx512::f2b,
     {fs_avx512::cvt_max<fs_avx512::H16>, fs_avx512::cvt_max<fs_avx512::B16>},
     {fs_avx512::scale_cvt<fs_avx512::H16>, fs_avx512::scale_cvt<fs_avx512::B16>},
     {fs_avx512::shift_cvt<fs_avx512::H16>, fs_avx512::shift_cvt<fs_avx512::B16>}},
};
