/* half.hpp: portable, bit-exact conversions between float16 / bfloat16 bits
 * and float32 / float64 (integer arithmetic only: no dependence on the FP
 * rounding mode, FTZ/DAZ or the compiler's float16 support).
 *
 *   fs_h2f   float16 -> float32: exact (subnormals, +-inf; NaN stays NaN, made quiet)
 *   fs_f2h   float32 -> float16: round to nearest even, overflow to +-inf,
 *            float16 subnormals, NaN -> quiet NaN (payload's top bits), as F16C
 *   fs_d2h   float64 -> float16: rounded once (as NumPy's cast), same rules
 *   fs_b2f   bfloat16 -> float32: the 16 bits shifted up (exact)
 *   fs_f2b   float32 -> bfloat16: round to nearest even; NaN stays NaN (quiet)
 *
 * The SIMD tiers convert whole vectors with F16C / AVX-512 and use these for
 * tails; the results are the same bits, so every tier agrees.
 */
#ifndef FS_HALF_HPP
#define FS_HALF_HPP
#include <stdint.h>
#include <string.h>

static inline uint32_t fs_fbits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static inline float fs_bitsf(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

static inline float fs_h2f(uint16_t h) {
    const uint32_t s = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 0x1Fu, m = h & 0x3FFu;
    if (e == 0x1F) return fs_bitsf(s | 0x7F800000u | (m << 13) | (m ? 0x400000u : 0u));
    if (e == 0) {
        if (!m) return fs_bitsf(s);
        /* subnormal: m * 2^-24; normalise m */
        uint32_t ee = 113, mm = m;
        while (!(mm & 0x400u)) { mm <<= 1; --ee; }
        return fs_bitsf(s | (ee << 23) | ((mm & 0x3FFu) << 13));
    }
    return fs_bitsf(s | ((e + 112) << 23) | (m << 13));
}

static inline uint16_t fs_f2h(float f) {
    const uint32_t x = fs_fbits(f), a = x & 0x7FFFFFFFu;
    const uint16_t s = (uint16_t)((x >> 16) & 0x8000u);
    if (a > 0x7F800000u) return (uint16_t)(s | 0x7E00u | ((a >> 13) & 0x3FFu));  /* NaN */
    if (a >= 0x477FF000u) return (uint16_t)(s | 0x7C00u);  /* >= 65520 (or inf): inf */
    if (a >= 0x38800000u) {  /* normal float16 */
        uint32_t h = (a >> 13) - (112u << 10);
        const uint32_t rem = a & 0x1FFFu;
        h += rem > 0x1000u || (rem == 0x1000u && (h & 1u));
        return (uint16_t)(s | h);
    }
    const uint32_t E = a >> 23;
    if (E < 102) return s;  /* below 2^-25: rounds to 0 */
    const uint32_t M = (a & 0x7FFFFFu) | 0x800000u, shift = 126 - E;
    uint32_t q = M >> shift;
    const uint32_t rem = M & ((1u << shift) - 1u), half = 1u << (shift - 1);
    q += rem > half || (rem == half && (q & 1u));
    return (uint16_t)(s | q);
}

static inline uint16_t fs_d2h(double d) {
    uint64_t x;
    memcpy(&x, &d, 8);
    const uint64_t a = x & 0x7FFFFFFFFFFFFFFFull;
    const uint16_t s = (uint16_t)((x >> 48) & 0x8000u);
    if (a > 0x7FF0000000000000ull) return (uint16_t)(s | 0x7E00u | ((a >> 42) & 0x3FFu));
    if (a >= 0x40EFFE0000000000ull) return (uint16_t)(s | 0x7C00u);  /* >= 65520 */
    const uint64_t E = a >> 52;
    if (E >= 1009) {  /* >= 2^-14: normal float16 */
        uint64_t h = ((E - 1008) << 10) | ((a >> 42) & 0x3FFu);
        const uint64_t rem = a & ((1ull << 42) - 1), half = 1ull << 41;
        h += rem > half || (rem == half && (h & 1u));
        return (uint16_t)(s | h);
    }
    if (E < 998) return s;  /* below 2^-25 */
    const uint64_t M = (a & 0xFFFFFFFFFFFFFull) | (1ull << 52), shift = 1051 - E;
    uint64_t q = M >> shift;
    const uint64_t rem = M & ((1ull << shift) - 1), half = 1ull << (shift - 1);
    q += rem > half || (rem == half && (q & 1u));
    return (uint16_t)(s | q);
}

static inline float fs_b2f(uint16_t b) { return fs_bitsf((uint32_t)b << 16); }

static inline uint16_t fs_f2b(float f) {
    const uint32_t x = fs_fbits(f);
    if ((x & 0x7FFFFFFFu) > 0x7F800000u) return (uint16_t)((x >> 16) | 0x40u);
    return (uint16_t)((x + 0x7FFFu + ((x >> 16) & 1u)) >> 16);
}

/* Contiguous runs, scalar (the generic tier, and the SIMD tiers' tails). */
static inline void fs_h2f_n(const uint16_t *s, int64_t n, float *d) { for (int64_t i = 0; i < n; ++i) d[i] = fs_h2f(s[i]); }
static inline void fs_f2h_n(const float *s, int64_t n, uint16_t *d) { for (int64_t i = 0; i < n; ++i) d[i] = fs_f2h(s[i]); }
static inline void fs_b2f_n(const uint16_t *s, int64_t n, float *d) { for (int64_t i = 0; i < n; ++i) d[i] = fs_b2f(s[i]); }
static inline void fs_f2b_n(const float *s, int64_t n, uint16_t *d) { for (int64_t i = 0; i < n; ++i) d[i] = fs_f2b(s[i]); }

#endif
