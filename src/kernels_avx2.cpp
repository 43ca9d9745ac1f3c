/* kernels_avx2.cpp: the avx2 tier: softmax, log_softmax and logsumexp kernels
 * for float32 and float64 rows and column tiles.
 *
 * ISA: AVX2 + FMA + F16C + POPCNT (Haswell, Zen 1 and later). setup.py compiles this file, and only this file, with the flags
 * of its tier; dispatch.cpp calls into it only when the CPU has them.
 * Algorithm: kernels.hpp (loops) over vec_avx2.hpp (vector layer and exp).
 * Error of the whole softmax: the bounds in README.md "Accuracy", asserted by tests/ (_helpers.py).
 */
#include <stdint.h>
#include <string.h>
#include <immintrin.h>
#include "kernels.h"
#include "exp_constants.hpp"
#include "half.hpp"
#include "sanitize.hpp"

namespace fs_avx2 {
#include "vec_avx2.hpp"
#include "kernels.hpp"
/* float16 with F16C (every AVX2 CPU has it; round to nearest even), bfloat16
 * with integer shifts; tails with the portable conversions (same bits). */
static void h2f(const uint16_t *s, int64_t n, float *d) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(d + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(s + i))));
    if (i < n) {
        uint16_t t[8] = {0};
        float f[8];
        memcpy(t, s + i, (size_t)(n - i) * 2);
        _mm256_storeu_ps(f, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)t)));
        memcpy(d + i, f, (size_t)(n - i) * 4);
    }
}
static void f2h(const float *s, int64_t n, uint16_t *d) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(d + i),
                         _mm256_cvtps_ph(_mm256_loadu_ps(s + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    if (i < n) {
        float f[8] = {0};
        uint16_t t[8];
        memcpy(f, s + i, (size_t)(n - i) * 4);
        _mm_storeu_si128((__m128i *)t, _mm256_cvtps_ph(_mm256_loadu_ps(f), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
        memcpy(d + i, t, (size_t)(n - i) * 2);
    }
}
static void b2f(const uint16_t *s, int64_t n, float *d) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_si256((__m256i *)(d + i),
                            _mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(s + i))), 16));
    fs_b2f_n(s + i, n - i, d + i);
}
static void f2b(const float *s, int64_t n, uint16_t *d) {
    int64_t i = 0;
    const __m256i bias = _mm256_set1_epi32(0x7FFF), one = _mm256_set1_epi32(1), quiet = _mm256_set1_epi32(0x40);
    for (; i + 8 <= n; i += 8) {
        const __m256 f = _mm256_loadu_ps(s + i);
        const __m256i x = _mm256_castps_si256(f), hi = _mm256_srli_epi32(x, 16);
        __m256i r = _mm256_srli_epi32(_mm256_add_epi32(_mm256_add_epi32(x, bias), _mm256_and_si256(hi, one)), 16);
        r = _mm256_blendv_epi8(r, _mm256_or_si256(hi, quiet), _mm256_castps_si256(_mm256_cmp_ps(f, f, _CMP_UNORD_Q)));
        _mm_storeu_si128((__m128i *)(d + i), _mm_packus_epi32(_mm256_castsi256_si128(r), _mm256_extracti128_si256(r, 1)));
    }
    fs_f2b_n(s + i, n - i, d + i);
}
/* Fused sweeps (kernels.h HalfConvert); C: 8 lanes of float16 (H16) or bfloat16 (B16). */
struct H16 {
    static __m256 in(const uint16_t *p) { return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p)); }
    static void out(uint16_t *p, __m256 v) {
        _mm_storeu_si128((__m128i *)p, _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    }
    static float in1(uint16_t h) { return fs_h2f(h); }
    static uint16_t out1(float f) { return fs_f2h(f); }
};
struct B16 {
    static __m256 in(const uint16_t *p) {
        return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p)), 16));
    }
    static void out(uint16_t *p, __m256 v) { f2b((const float *)&v, 8, p); }
    static float in1(uint16_t h) { return fs_b2f(h); }
    static uint16_t out1(float f) { return fs_f2b(f); }
};
template <class C> static float cvt_max(const uint16_t *s, int64_t n, float *d) {
    __m256 m0 = _mm256_set1_ps(-__builtin_inff()), m1 = m0;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m256 a = C::in(s + i), b = C::in(s + i + 8);
        _mm256_storeu_ps(d + i, a);
        _mm256_storeu_ps(d + i + 8, b);
        m0 = _mm256_max_ps(m0, a);
        m1 = _mm256_max_ps(m1, b);
    }
    for (; i + 8 <= n; i += 8) {
        const __m256 a = C::in(s + i);
        _mm256_storeu_ps(d + i, a);
        m0 = _mm256_max_ps(m0, a);
    }
    float m = VecF32::hmax(_mm256_max_ps(m0, m1));
    for (; i < n; ++i) {
        d[i] = C::in1(s[i]);
        m = d[i] > m ? d[i] : m;
    }
    return m;
}
template <class C> static void scale_cvt(const float *e, int64_t n, float s, uint16_t *d) {
    const __m256 vs = _mm256_set1_ps(s);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) C::out(d + i, _mm256_mul_ps(_mm256_loadu_ps(e + i), vs));
    for (; i < n; ++i) d[i] = C::out1(e[i] * s);
}
template <class C> static void shift_cvt(const float *x, int64_t n, float m, float c, uint16_t *d) {
    const __m256 vm = _mm256_set1_ps(m), vc = _mm256_set1_ps(c);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) C::out(d + i, _mm256_sub_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), vm), vc));
    for (; i < n; ++i) d[i] = C::out1((x[i] - m) - c);
}
}

extern const Tier fs_tier_avx2 = {
    "avx2",
    fs_avx2::Kernels<fs_avx2::VecF32>::table(),
    fs_avx2::Kernels<fs_avx2::VecF64>::table(),
    {fs_avx2::h2f, fs_avx2::f2h, fs_avx2::b2f, fs_avx2::f2b,
     {fs_avx2::cvt_max<fs_avx2::H16>, fs_avx2::cvt_max<fs_avx2::B16>},
     {fs_avx2::scale_cvt<fs_avx2::H16>, fs_avx2::scale_cvt<fs_avx2::B16>},
     {fs_avx2::shift_cvt<fs_avx2::H16>, fs_avx2::shift_cvt<fs_avx2::B16>}},
};
