/* kernels_avx512.cpp: the avx512 tier: softmax, log_softmax and logsumexp kernels
 * for float32 and float64 rows and column tiles.
 *
 * ISA: AVX-512 F/BW/DQ/VL, with AVX2, FMA, F16C and POPCNT (Skylake-X, Zen 4 and later). setup.py compiles this file, and only this file, with the flags
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
#include "sanitize.hpp"

namespace fs_avx512 {
#include "vec_avx512.hpp"
#include "kernels.hpp"
/* float16 with AVX-512F's conversions (round to nearest even), bfloat16
 * with integer shifts; tails with masked loads and stores (AVX-512BW/VL),
 * the same bits as the portable conversions. */
static inline __mmask16 lanes(int64_t k) { return (__mmask16)((1u << k) - 1u); }
static inline __m512 h2f16(__m256i h) { return _mm512_cvtph_ps(h); }
static inline __m256i f2h16(__m512 f) { return _mm512_cvtps_ph(f, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
static inline __m512 b2f16(__m256i b) { return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(b), 16)); }
static inline __m512i f2b16(__m512 f) {  /* the bfloat16 bits in the low half of each 32-bit lane */
    const __m512i x = _mm512_castps_si512(f), hi = _mm512_srli_epi32(x, 16);
    const __m512i r = _mm512_srli_epi32(
        _mm512_add_epi32(_mm512_add_epi32(x, _mm512_set1_epi32(0x7FFF)), _mm512_and_si512(hi, _mm512_set1_epi32(1))), 16);
    return _mm512_mask_mov_epi32(r, _mm512_cmp_ps_mask(f, f, _CMP_UNORD_Q), _mm512_or_si512(hi, _mm512_set1_epi32(0x40)));
}
static void h2f(const uint16_t *s, int64_t n, float *d) {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(d + i, h2f16(_mm256_loadu_si256((const __m256i *)(s + i))));
    if (i < n) _mm512_mask_storeu_ps(d + i, lanes(n - i), h2f16(_mm256_maskz_loadu_epi16(lanes(n - i), s + i)));
}
static void f2h(const float *s, int64_t n, uint16_t *d) {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) _mm256_storeu_si256((__m256i *)(d + i), f2h16(_mm512_loadu_ps(s + i)));
    if (i < n) _mm256_mask_storeu_epi16(d + i, lanes(n - i), f2h16(_mm512_maskz_loadu_ps(lanes(n - i), s + i)));
}
static void b2f(const uint16_t *s, int64_t n, float *d) {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(d + i, b2f16(_mm256_loadu_si256((const __m256i *)(s + i))));
    if (i < n) _mm512_mask_storeu_ps(d + i, lanes(n - i), b2f16(_mm256_maskz_loadu_epi16(lanes(n - i), s + i)));
}
static void f2b(const float *s, int64_t n, uint16_t *d) {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) _mm256_storeu_si256((__m256i *)(d + i), _mm512_cvtepi32_epi16(f2b16(_mm512_loadu_ps(s + i))));
    if (i < n) _mm512_mask_cvtepi32_storeu_epi16(d + i, lanes(n - i), f2b16(_mm512_maskz_loadu_ps(lanes(n - i), s + i)));
}
/* Fused sweeps (kernels.h HalfConvert); C: 16 lanes of float16 (H16) or bfloat16 (B16). */
struct H16 {
    static __m512 in(const uint16_t *p) { return h2f16(_mm256_loadu_si256((const __m256i *)p)); }
    static __m512 in_part(const uint16_t *p, int64_t k) { return h2f16(_mm256_maskz_loadu_epi16(lanes(k), p)); }
    static void out(uint16_t *p, __m512 v) { _mm256_storeu_si256((__m256i *)p, f2h16(v)); }
    static void out_part(uint16_t *p, __m512 v, int64_t k) { _mm256_mask_storeu_epi16(p, lanes(k), f2h16(v)); }
};
struct B16 {
    static __m512 in(const uint16_t *p) { return b2f16(_mm256_loadu_si256((const __m256i *)p)); }
    static __m512 in_part(const uint16_t *p, int64_t k) { return b2f16(_mm256_maskz_loadu_epi16(lanes(k), p)); }
    static void out(uint16_t *p, __m512 v) { _mm256_storeu_si256((__m256i *)p, _mm512_cvtepi32_epi16(f2b16(v))); }
    static void out_part(uint16_t *p, __m512 v, int64_t k) { _mm512_mask_cvtepi32_storeu_epi16(p, lanes(k), f2b16(v)); }
};
template <class C> static float cvt_max(const uint16_t *s, int64_t n, float *d) {
    const __m512 ninf = _mm512_set1_ps(-__builtin_inff());
    __m512 m0 = ninf, m1 = m0;
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
    if (i < n) {
        const __m512 a = C::in_part(s + i, n - i);
        _mm512_mask_storeu_ps(d + i, lanes(n - i), a);
        m1 = _mm512_mask_max_ps(m1, lanes(n - i), m1, a);
    }
    return VecF32::hmax(_mm512_max_ps(m0, m1));
}
template <class C> static void scale_cvt(const float *e, int64_t n, float s, uint16_t *d) {
    const __m512 vs = _mm512_set1_ps(s);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) C::out(d + i, _mm512_mul_ps(_mm512_loadu_ps(e + i), vs));
    if (i < n) C::out_part(d + i, _mm512_mul_ps(_mm512_maskz_loadu_ps(lanes(n - i), e + i), vs), n - i);
}
template <class C> static void shift_cvt(const float *x, int64_t n, float m, float c, uint16_t *d) {
    const __m512 vm = _mm512_set1_ps(m), vc = _mm512_set1_ps(c);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) C::out(d + i, _mm512_sub_ps(_mm512_sub_ps(_mm512_loadu_ps(x + i), vm), vc));
    if (i < n) C::out_part(d + i, _mm512_sub_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(lanes(n - i), x + i), vm), vc), n - i);
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
