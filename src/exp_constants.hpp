/* exp_constants.hpp: the constants of the exp used by every SIMD tier.
 *
 * All tiers compute exp(t) for t <= 0 (softmax only ever needs exp(x - max))
 * the same way:
 *   1. t < lowest (and -inf) gives exactly 0: the true result rounds to 0.
 *      Those lanes are kept out of the arithmetic (NaN is not: it passes).
 *   2. k = round(t * log2(e)), r = t - k*ln2 with ln2 split in two (Cody-Waite;
 *      with FMA the first step is exact), |r| <= ln2/2.
 *   3. p = 1 + r*(c1 + r*(c2 + ...)) by Horner with FMA; c0 = 1 is exact so
 *      exp(0) == 1 exactly, which logsumexp relies on.
 *   4. exp(t) = p * 2^k1 * 2^k2 with k1 = max(k, K_NORMAL): p * 2^k1 is an
 *      exact power-of-two scaling into the normal range, the second multiply
 *      rounds once into the subnormal range, so tiny results stay accurate.
 *
 * Coefficients: weighted minimax (Remez, 50 digits) for the relative error of
 * exp on [-ln2/2, ln2/2] with c0 fixed to 1:
 *   float32, degree 6:  approximation error 3.9e-9  (0.03 eps)
 *   float64, degree 11: approximation error 1.8e-17 (0.08 eps)
 *   float32, degree 5 (AVX2 tier only): 1.05 ULP of the result (minimax for
 *   that error: a linear program on 6,000 points)
 * Measured whole exp (tests/test_exp.py, 1.8M points over [lowest, 0]):
 *   max 1.17 ULP (float32) / 1.27 ULP (float64) for degree 6 / 11 (Horner,
 *   FMA; the AVX-512 tier's float32 now takes the table variant below:
 *   0.97 ULP over every float32 in [lowest, 0]),
 *   1.94 / 1.25 ULP AVX2 (float32 degree 5; float64 partly in pairs:
 *   vec_avx2.hpp), 1.42 / 1.53 ULP generic (no FMA); mean 0.27-0.29 ULP,
 *   0.64 for AVX2 float32. Degree 5 is the "cheaper exp, <= 2 ULP":
 *   one FMA fewer in a chain of fourteen operations, which on a core without
 *   AVX-512 is what holds the sweeps back (softmax (8, 32000) 8% faster, Zen 3).
 *
 * Scaled variant (exp_term): exp(t) * 2^sum_scale, for the sums of
 * logsumexp and log_softmax. Their result is log1p(sum of the terms below the
 * max), which can be tiny; scaling keeps terms down to exp(lowest_scaled)
 * normal, so that sum keeps its relative accuracy (the callers multiply by
 * sum_unscale in double, exactly). The SIMD tiers scale the polynomial's
 * coefficients by sum_factor = 2^sum_scale instead of adding sum_scale to k:
 * every step is scaled exactly, so the bits are the same, one add fewer.
 *
 * Fast path (tiers without a scaling instruction): for t >= fast_lowest every
 * k is >= k_normal, so p * 2^k is normal and exact, and 2^k can be added to
 * p's exponent field as an integer; the same bits as step 4. fast_lowest_scaled
 * is the bound for the scaled terms (p carries 2^sum_scale).
 */
#ifndef FS_EXP_CONSTANTS_HPP
#define FS_EXP_CONSTANTS_HPP

struct ExpF32 {
    static constexpr float lowest = -104.0f;      /* exp(-104) < 2^-150: rounds to 0 */
    static constexpr float log2e = 0x1.715476p+0f;
    static constexpr float ln2_hi = 0x1.62e430p-1f;
    static constexpr float ln2_lo = -0x1.05c610p-29f;
    static constexpr float round_magic = 0x1.8p23f;  /* adding it rounds to an integer */
    static constexpr float k_normal = -125.0f;     /* p * 2^k stays normal for k >= this */
    static constexpr int mantissa_bits = 23;
    static constexpr int exponent_bias = 127;
    static constexpr float c1 = 0x1.000002p+0f;
    static constexpr float c2 = 0x1.000000p-1f;
    static constexpr float c3 = 0x1.55538ap-3f;
    static constexpr float c4 = 0x1.555470p-5f;
    static constexpr float c5 = 0x1.12a23ep-7f;
    static constexpr float c6 = 0x1.6da7bep-10f;
    /* degree 5 (the AVX2 tier): minimax for the error in ULP of the result,
     * then each coefficient nudged by a few float32 ulps to the lowest
     * measured max error (1.94 ULP on 20M points) */
    static constexpr float d5_c1 = 0x1.fffff0p-1f;
    static constexpr float d5_c2 = 0x1.fffdc0p-2f;
    static constexpr float d5_c3 = 0x1.555cdep-3f;
    static constexpr float d5_c4 = 0x1.573c9cp-5f;
    static constexpr float d5_c5 = 0x1.0edba0p-7f;
    static constexpr float sum_scale = 64.0f;
    static constexpr float sum_factor = 0x1p64f;  /* 2^sum_scale */
    static constexpr float lowest_scaled = -148.0f;  /* exp(-148) * 2^64 < 2^-149 */
    /* t >= -86.5: k >= round(-124.8) = -125 = k_normal; scaled: p * 2^64 * 2^k
     * stays normal for k >= -188 = round(-130 * log2e) */
    static constexpr float fast_lowest = -86.5f;
    static constexpr float fast_lowest_scaled = -130.0f;
    static constexpr double sum_unscale = 0x1p-64;
    /* The table exp (AVX-512 tier): k = round(t * 16 log2(e)), r = t - k ln2/16
     * (Cody-Waite, |r| <= ln2/32), exp(t) = 2^(k >> 4) * T[k & 15] * (1 + q(r)),
     * q(r) = r + c2 r^2 + c3 r^3 (c1 = 1 exact, so exp(0) == 1; minimax for the
     * relative error with float32 coefficients, a linear program on 4,001
     * points: 2.3e-9 = 0.02 eps). T[j] = 2^(j/16) rounded (within 0.46 ulp);
     * the last step s + s q rounds once, so the whole exp is within the
     * table's error plus half an ulp and a little: 0.974 ULP measured over
     * every float32 t in [-104, 0] (the degree-6 polynomial: 1.19, every 7th). */
    static constexpr float log2e_16 = 0x1.715476p+4f;
    static constexpr float ln2_16_hi = 0x1.62e430p-5f;  /* ln2_hi / 16, ln2_lo / 16: exact */
    static constexpr float ln2_16_lo = -0x1.05c610p-33f;
    static constexpr float t_c2 = 0x1.00028ep-1f;
    static constexpr float t_c3 = 0x1.55575cp-3f;
    static constexpr float exp2_16th[16] = {
        0x1.000000p+0f, 0x1.0b5586p+0f, 0x1.172b84p+0f, 0x1.2387a6p+0f, 0x1.306fe0p+0f, 0x1.3dea64p+0f,
        0x1.4bfdaep+0f, 0x1.5ab07ep+0f, 0x1.6a09e6p+0f, 0x1.7a1148p+0f, 0x1.8ace54p+0f, 0x1.9c4918p+0f,
        0x1.ae89fap+0f, 0x1.c199bep+0f, 0x1.d5818ep+0f, 0x1.ea4afap+0f};
};

struct ExpF64 {
    static constexpr double lowest = -746.0;       /* exp(-746) < 2^-1075: rounds to 0 */
    static constexpr double log2e = 0x1.71547652b82fep+0;
    static constexpr double ln2_hi = 0x1.62e42fefa39efp-1;
    static constexpr double ln2_lo = 0x1.abc9e3b39803fp-56;
    static constexpr double round_magic = 0x1.8p52;
    static constexpr double k_normal = -1021.0;
    static constexpr int mantissa_bits = 52;
    static constexpr int exponent_bias = 1023;
    static constexpr double c1 = 0x1.0000000000003p+0;
    static constexpr double c2 = 0x1.0000000000005p-1;
    static constexpr double c3 = 0x1.555555555481ap-3;
    static constexpr double c4 = 0x1.55555555520c1p-5;
    static constexpr double c5 = 0x1.111111137ba72p-7;
    static constexpr double c6 = 0x1.6c16c17f41b14p-10;
    static constexpr double c7 = 0x1.a019f62058ba4p-13;
    static constexpr double c8 = 0x1.a019a66a00698p-16;
    static constexpr double c9 = 0x1.71f6152e4b934p-19;
    static constexpr double c10 = 0x1.28a2c68333593p-22;
    static constexpr double c11 = 0x1.8ad0f40784e9dp-26;
    static constexpr double sum_scale = 512.0;
    static constexpr double sum_factor = 0x1p512;  /* 2^sum_scale */
    static constexpr double lowest_scaled = -1100.0;  /* exp(-1100) * 2^512 < 2^-1074 */
    /* t >= -707: k >= round(-1019.99) = -1020 >= k_normal; scaled: p * 2^512 * 2^k
     * stays normal for k >= -1529 = round(-1060 * log2e) */
    static constexpr double fast_lowest = -707.0;
    static constexpr double fast_lowest_scaled = -1060.0;
    static constexpr double sum_unscale = 0x1p-512;
};

/* Sum of s[i] + c[i] (lanes and their compensation terms), itself compensated
 * (Neumaier), in a fixed order: the total of a float64 accumulator. */
static inline double fs_compensated_sum(const double *s, const double *c, int n) {
    double hi = 0.0, lo = 0.0;
    for (int i = 0; i < n; ++i) {
        const double v = s[i], t = hi + v;
        lo += (__builtin_fabs(hi) >= __builtin_fabs(v) ? (hi - t) + v : (v - t) + hi) + c[i];
        hi = t;
    }
    return hi + lo;
}

#endif
