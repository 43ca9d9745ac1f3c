/* vec_avx512.hpp: the AVX-512 vector layer (F/BW/DQ/VL) that kernels.hpp runs on.
 *
 * Tails use masked loads and stores: lanes past the end are neither read nor
 * written (a masked-off lane never faults), so no byte past an array is touched
 * (sanitize.hpp lets ASan check the lanes that are).
 * exp: see exp_constants.hpp. float32 takes the table variant (VecF32's exp
 * section says why); float64 applies 2^k with vscalefpd, which rounds once into
 * the subnormal range and needs no integer tricks. Lanes whose result rounds
 * to 0 (t < lowest, -inf) are masked out of that scalef, which is the only step
 * that could produce a tiny value: computing a value that underflows costs a
 * microcode assist on Intel cores (NaN and inf cost none).
 * Needs: -mavx512f -mavx512bw -mavx512dq -mavx512vl -mfma (see setup.py).
 */
#ifndef FS_VEC_AVX512_HPP
#define FS_VEC_AVX512_HPP

struct VecF32 {
    typedef float T;
    typedef ExpF32 Exp;
    typedef __m512 V;
    enum { W = 16 };
    static inline __mmask16 first(int64_t n) { return (__mmask16)((1u << n) - 1u); }
    static inline V set1(T a) { return _mm512_set1_ps(a); }
    static inline V load(const T *p) { return _mm512_loadu_ps(p); }
    static inline V load_part(const T *p, int64_t n, T fill) {
        FS_ASAN_READ(p, n);
        return _mm512_mask_loadu_ps(_mm512_set1_ps(fill), first(n), p);
    }
    static inline void store(T *p, V v) { _mm512_storeu_ps(p, v); }
    static inline void store_part(T *p, V v, int64_t n) {
        FS_ASAN_WRITE(p, n);
        _mm512_mask_storeu_ps(p, first(n), v);
    }
    static inline void store_stream(T *p, V v) {  /* p 64-byte aligned */
        FS_ASAN_WRITE(p, W);
        _mm512_stream_ps(p, v);
    }
    static inline void stream_fence() { _mm_sfence(); }
    static inline V add(V a, V b) { return _mm512_add_ps(a, b); }
    static inline V sub(V a, V b) { return _mm512_sub_ps(a, b); }
    static inline V mul(V a, V b) { return _mm512_mul_ps(a, b); }
    static inline V max(V a, V b) { return _mm512_max_ps(a, b); }
    static inline V fmadd(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
    /* Lanes where x == m (ordered: never for NaN), their count, and c + 1 there. */
    static inline __mmask16 eq_mask(V x, V m) { return _mm512_cmp_ps_mask(x, m, _CMP_EQ_OQ); }
    static inline int64_t count(__mmask16 eq) { return __builtin_popcount((unsigned)eq); }
    static inline V add_one(V c, __mmask16 eq) { return _mm512_mask_add_ps(c, eq, c, _mm512_set1_ps(1.0f)); }
    /* The horizontal max and sum as a tree: halves of 8, 4, then pairs 2
     * apart, then the last two (the order of GCC's _mm512_reduce_max_ps /
     * _add_ps), written out so that hmax_cols / hadd_cols can repeat it. */
    static inline T hmax(V v) {
        const __m256 a = _mm256_max_ps(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)), _mm512_castps512_ps256(v));
        const __m128 b = _mm_max_ps(_mm256_extractf128_ps(a, 1), _mm256_castps256_ps128(a));
        const __m128 d = _mm_max_ps(b, _mm_shuffle_ps(b, b, _MM_SHUFFLE(1, 0, 3, 2)));
        return _mm_cvtss_f32(_mm_max_ss(d, _mm_shuffle_ps(d, d, 1)));
    }
    /* where= masks: one byte per element, nonzero = take part; M is a lane mask. */
    typedef __mmask16 M;
    static inline M first_mask(int64_t n) { return first(n); }  /* lanes < n */
    static inline M mask_load(const uint8_t *w) {
        const __m128i b = _mm_loadu_si128((const __m128i *)w);
        return _mm_test_epi8_mask(b, b);
    }
    static inline M mask_load_part(const uint8_t *w, int64_t n) {
        const __m128i b = _mm_maskz_loadu_epi8(first(n), w);
        return _mm_test_epi8_mask(b, b);
    }
    static inline V select(M m, V a, V fill) { return _mm512_mask_mov_ps(fill, m, a); }
    /* every lane of a, b, c, d >= lo (NaN: no) */
    static inline bool all_ge(V a, V b, V c, V d, V lo) {
        return (__mmask16)(_mm512_cmp_ps_mask(a, lo, _CMP_GE_OQ) & _mm512_cmp_ps_mask(b, lo, _CMP_GE_OQ) &
                    _mm512_cmp_ps_mask(c, lo, _CMP_GE_OQ) & _mm512_cmp_ps_mask(d, lo, _CMP_GE_OQ)) == (__mmask16)~0u;
    }
    /* Sum accumulator: double lanes (float32 terms add exactly enough in double). */
    struct Acc { __m512d lo, hi; };
    static inline Acc acc_zero() { return {_mm512_setzero_pd(), _mm512_setzero_pd()}; }
    static inline void acc_add(Acc &a, V v) {
        a.lo = _mm512_add_pd(a.lo, _mm512_cvtps_pd(_mm512_castps512_ps256(v)));
        a.hi = _mm512_add_pd(a.hi, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1))));
    }
    static inline void acc_lanes(const Acc &a, double *d) {
        _mm512_storeu_pd(d, a.lo);
        _mm512_storeu_pd(d + 8, a.hi);
    }
    /* The total: a tree in double is far inside float32 precision. */
    static inline double acc_total(const Acc &a) { return _mm512_reduce_add_pd(_mm512_add_pd(a.lo, a.hi)); }
    static inline T hadd(V v) {
        const __m256 a = _mm256_add_ps(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)), _mm512_castps512_ps256(v));
        const __m128 b = _mm_add_ps(_mm256_extractf128_ps(a, 1), _mm256_castps256_ps128(a));
        const __m128 d = _mm_add_ps(b, _mm_shuffle_ps(b, b, _MM_SHUFFLE(1, 0, 3, 2)));
        return _mm_cvtss_f32(_mm_add_ss(d, _mm_shuffle_ps(d, d, 1)));
    }
    /* Transposed rows (kernels.hpp small_blocks): c[l] holds lane l of W
     * vectors, one per lane; lane r of hmax_cols / hadd_cols is hmax / hadd of
     * the vector lane r stands for, the same pairs in the same operand order,
     * so the same bits (max's NaN choice included; which of two NaNs an add
     * passes on is the compiler's choice, on either path). */
    enum { TRANSPOSE = 1 };  /* rows of one vector go transposed: two ran slower (kernels.hpp small_rows_nv) */
    enum { TEST_EQ = 0 };  /* kernels.hpp SumExclSweep::four_fast */
    static inline __attribute__((always_inline)) V hmax_cols(const V *c) {
        V a[8], b[4];
        for (int i = 0; i < 8; ++i) a[i] = _mm512_max_ps(c[i + 8], c[i]);
        for (int i = 0; i < 4; ++i) b[i] = _mm512_max_ps(a[i + 4], a[i]);
        return _mm512_max_ps(_mm512_max_ps(b[0], b[2]), _mm512_max_ps(b[1], b[3]));
    }
    static inline __attribute__((always_inline)) V hadd_cols(const V *c) {
        V a[8], b[4];
        for (int i = 0; i < 8; ++i) a[i] = _mm512_add_ps(c[i + 8], c[i]);
        for (int i = 0; i < 4; ++i) b[i] = _mm512_add_ps(a[i + 4], a[i]);
        return _mm512_add_ps(_mm512_add_ps(b[0], b[2]), _mm512_add_ps(b[1], b[3]));
    }
    static inline V div(V a, V b) { return _mm512_div_ps(a, b); }
    /* r[0..16) in place: row i lane j -> row j lane i. Within each 128-bit
     * lane L, unpack and shuffle transpose the 4 x 4 blocks (u[4k + j] holds
     * column 4L + j of rows 4k..4k+3); two rounds of vshuff32x4 then gather
     * column 4L + j's four blocks. */
    static inline __attribute__((always_inline)) void transpose(V *r) {
        V t[16], u[16], v[16];
        for (int k = 0; k < 8; ++k) {
            t[2 * k] = _mm512_unpacklo_ps(r[2 * k], r[2 * k + 1]);
            t[2 * k + 1] = _mm512_unpackhi_ps(r[2 * k], r[2 * k + 1]);
        }
        for (int k = 0; k < 4; ++k) {
            u[4 * k] = _mm512_shuffle_ps(t[4 * k], t[4 * k + 2], 0x44);
            u[4 * k + 1] = _mm512_shuffle_ps(t[4 * k], t[4 * k + 2], 0xEE);
            u[4 * k + 2] = _mm512_shuffle_ps(t[4 * k + 1], t[4 * k + 3], 0x44);
            u[4 * k + 3] = _mm512_shuffle_ps(t[4 * k + 1], t[4 * k + 3], 0xEE);
        }
        for (int j = 0; j < 4; ++j) {  /* v[4j + h]: lanes (0, 2) or (1, 3) of row groups 0, 1 (h < 2) or 2, 3 */
            v[4 * j] = _mm512_shuffle_f32x4(u[j], u[4 + j], 0x88);
            v[4 * j + 1] = _mm512_shuffle_f32x4(u[j], u[4 + j], 0xDD);
            v[4 * j + 2] = _mm512_shuffle_f32x4(u[8 + j], u[12 + j], 0x88);
            v[4 * j + 3] = _mm512_shuffle_f32x4(u[8 + j], u[12 + j], 0xDD);
        }
        for (int j = 0; j < 4; ++j) {
            r[j] = _mm512_shuffle_f32x4(v[4 * j], v[4 * j + 2], 0x88);
            r[8 + j] = _mm512_shuffle_f32x4(v[4 * j], v[4 * j + 2], 0xDD);
            r[4 + j] = _mm512_shuffle_f32x4(v[4 * j + 1], v[4 * j + 3], 0x88);
            r[12 + j] = _mm512_shuffle_f32x4(v[4 * j + 1], v[4 * j + 3], 0xDD);
        }
    }
    static inline void to_double(V v, double *d) {
        _mm512_storeu_pd(d, _mm512_cvtps_pd(_mm512_castps512_ps256(v)));
        _mm512_storeu_pd(d + 8, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1))));
    }
    /* exp (float32) by the table of exp_constants.hpp: 2^(j/16) for the low
     * four bits j of k, then a degree-3 polynomial on |r| <= ln2/32. On a Zen 4
     * core a zmm FMA, multiply, compare or scalef each take the FMA pipes a
     * cycle (vscalefps two), while adds, integer ops and vpermd mostly go
     * elsewhere, and the exp sweeps wait on the FMA pipes: degree 6 with
     * vscalef took eleven of their cycles a vector, the table's fast path
     * seven (kf, two for r, three for q, one for s + s q): the exp sweep of
     * softmax 10.9 -> 9.4 cycles a vector, log_softmax's 14.1 -> 11.4. It is
     * also more accurate, 0.97 ULP over every float32 t in [-104, 0] against
     * 1.19 (every 7th): s + s q rounds once, and only the table adds its own
     * rounding (<= 0.46 ulp). The fast path puts 2^(k >> 4) into the table
     * entry's exponent with one integer add: the table holds T[j]'s bits less
     * j << 19, so adding the bits of kf (k in the low bits) shifted up by 19
     * adds 2^(k >> 4) and puts the entry's own bits back. The general path
     * takes T[j] itself and vscalef by floor(k / 16), which rounds once into
     * the subnormal range; where the result is normal that scaling is exact,
     * so both paths give the same bits. Lanes whose result rounds to 0
     * (t < lowest, -inf) are masked out (a value that underflows costs a
     * microcode assist on Intel cores). */
    static inline V exp_table(bool scaled) {
        /* scaled: T[j] * 2^sum_scale, an exact scaling, for the log sums' terms */
        alignas(64) static const int32_t adj[2][16] = {
#define FS_ADJ(j, e) (int32_t)(__builtin_bit_cast(uint32_t, ExpF32::exp2_16th[j]) - ((uint32_t)(j) << 19) + ((uint32_t)(e) << 23))
#define FS_ADJ_ROW(e) {FS_ADJ(0, e), FS_ADJ(1, e), FS_ADJ(2, e), FS_ADJ(3, e), FS_ADJ(4, e), FS_ADJ(5, e), FS_ADJ(6, e), FS_ADJ(7, e), \
                       FS_ADJ(8, e), FS_ADJ(9, e), FS_ADJ(10, e), FS_ADJ(11, e), FS_ADJ(12, e), FS_ADJ(13, e), FS_ADJ(14, e), FS_ADJ(15, e)}
            FS_ADJ_ROW(0), FS_ADJ_ROW(64)};
#undef FS_ADJ_ROW
#undef FS_ADJ
        static_assert(ExpF32::sum_scale == 64.0f, "exp_table's scaled row");
        return _mm512_castsi512_ps(_mm512_load_si512(adj[scaled ? 1 : 0]));
    }
    /* kf = t 16 log2(e) + round_magic (k in its low bits) and q(r) =
     * r + r^2 (c2 + c3 r), r = t - k ln2/16: as many operations as Horner's,
     * two fewer latencies deep. NEG: t is u = -t (exp_arg): kf and k come
     * out equal and r negated; c2 - c3 (-r) and (-r)^2 a - (-r) are the same
     * values as in the t form, each rounded once, so q has the same bits.
     * CORR: exp(t + err), err added to r with ln2/16's low part
     * (t - k ln2_16_hi is exact: |r| < 1/32 and k ln2_16_hi ends at its last
     * bit), one rounding as without err. */
    template <bool CORR, bool NEG = false> static inline __attribute__((always_inline)) V reduce_poly(V t, V err, V &kf) {
        typedef ExpF32 C;
        if constexpr (NEG) {
            kf = _mm512_fnmadd_ps(t, _mm512_set1_ps(C::log2e_16), _mm512_set1_ps(C::round_magic));
            const V k = _mm512_sub_ps(kf, _mm512_set1_ps(C::round_magic));
            const V r = _mm512_fmadd_ps(k, _mm512_set1_ps(C::ln2_16_lo), _mm512_fmadd_ps(k, _mm512_set1_ps(C::ln2_16_hi), t));
            const V a = _mm512_fnmadd_ps(_mm512_set1_ps(C::t_c3), r, _mm512_set1_ps(C::t_c2));
            return _mm512_fmsub_ps(_mm512_mul_ps(r, r), a, r);
        }
        kf = _mm512_fmadd_ps(t, _mm512_set1_ps(C::log2e_16), _mm512_set1_ps(C::round_magic));
        const V k = _mm512_sub_ps(kf, _mm512_set1_ps(C::round_magic));
        const V r1 = _mm512_fnmadd_ps(k, _mm512_set1_ps(C::ln2_16_hi), t);
        const V lo = _mm512_fnmadd_ps(k, _mm512_set1_ps(C::ln2_16_lo), CORR ? err : r1);
        const V r = CORR ? _mm512_add_ps(r1, lo) : lo;
        const V a = _mm512_fmadd_ps(_mm512_set1_ps(C::t_c3), r, _mm512_set1_ps(C::t_c2));
        return _mm512_fmadd_ps(_mm512_mul_ps(r, r), a, r);
    }
    /* The fast path: s = T[j] 2^(k >> 4) from the bits (normal: the caller or
     * exp_body checked the bound), then s + s q. MASKED: 0 outside live. */
    template <bool SCALED, bool CORR, bool NEG = false, bool MASKED = SCALED>
    static inline __attribute__((always_inline)) V exp_fast(V t, V err, __mmask16 live) {
        V kf;
        const V q = reduce_poly<CORR, NEG>(t, err, kf);
        const __m512i kb = _mm512_castps_si512(kf);
        const V s = _mm512_castsi512_ps(_mm512_add_epi32(_mm512_permutexvar_epi32(kb, _mm512_castps_si512(exp_table(SCALED))),
                                                         _mm512_slli_epi32(kb, 19)));
        return MASKED ? _mm512_maskz_fmadd_ps(live, q, s, s) : _mm512_fmadd_ps(q, s, s);
    }
    /* Each vector tests itself. Lanes below lowest (-inf: the fill of short
     * rows' tails) round to 0 and are masked out of the fast path; NaN goes
     * through it (q is NaN, so is the result, as on the general path). Only
     * lanes in [lowest, fast_lowest) need the general path. Testing only for
     * lanes below fast_lowest sent every short row's tail (its -inf fill)
     * down the general path: (100000, 10) softmax 10% slower; and a call to
     * an out-of-line general path, even as a cold branch, cost the log sums'
     * loop about a cycle a vector (Zen 4). */
    template <bool SCALED, bool CORR> static inline __attribute__((always_inline)) V exp_body(V t, V err, __mmask16 live) {
        typedef ExpF32 C;
        const __mmask16 below = _mm512_cmp_ps_mask(t, _mm512_set1_ps(SCALED ? C::fast_lowest_scaled : C::fast_lowest), _CMP_LT_OQ);
        if (__builtin_expect(below == 0, 1)) return exp_fast<SCALED, CORR>(t, err, live);
        const __mmask16 zero = _mm512_mask_cmp_ps_mask(below, t, _mm512_set1_ps(SCALED ? C::lowest_scaled : C::lowest), _CMP_LT_OQ);
        if (below == zero) return exp_fast<SCALED, CORR, false, true>(t, err, live & (__mmask16)~zero);
        return exp_general<SCALED, CORR>(t, err, live);
    }
    template <bool SCALED, bool CORR> static inline __attribute__((always_inline)) V exp_general(V t, V err, __mmask16 live) {
        typedef ExpF32 C;
        const __mmask16 keep = _mm512_mask_cmp_ps_mask(live, t, _mm512_set1_ps(SCALED ? C::lowest_scaled : C::lowest), _CMP_NLT_UQ);
        V kf;
        const V q = reduce_poly<CORR>(t, err, kf);
        const __m512i kb = _mm512_castps_si512(kf);
        /* T[j] itself: the table's bits with j << 19 put back */
        const V s = _mm512_castsi512_ps(_mm512_add_epi32(_mm512_permutexvar_epi32(kb, _mm512_castps_si512(exp_table(SCALED))),
                                                         _mm512_and_si512(_mm512_slli_epi32(kb, 19), _mm512_set1_epi32(15 << 19))));
        const V k = _mm512_sub_ps(kf, _mm512_set1_ps(C::round_magic));
        const V e = _mm512_roundscale_ps(_mm512_mul_ps(k, _mm512_set1_ps(1.0f / 16)), _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
        return _mm512_maskz_scalef_ps(keep, _mm512_fmadd_ps(q, s, s), e);
    }
    static inline __attribute__((always_inline)) V exp_nonpos(V t) { return exp_body<false, false>(t, t, (__mmask16)0xffff); }
    /* A term of the log1p sums: exp(t + err) * 2^sum_scale (CORR; a NaN err
     * comes only with an inf/NaN x beside a finite max: t is -inf, a lane
     * masked out, or NaN either way), and 0 where eq is set (x == max,
     * counted apart). */
    template <bool CORR> static inline __attribute__((always_inline)) V exp_term(V t, V err, __mmask16 eq) {
        return exp_body<true, CORR>(t, err, (__mmask16)~eq);
    }
    /* whether the fast path gives the exp of all four vectors' lanes (no NaN,
     * none below the bound): the log sums test four vectors at once */
    template <bool SCALED> static inline __attribute__((always_inline)) bool exp_fast_ok(V t0, V t1, V t2, V t3) {
        return all_ge(t0, t1, t2, t3, _mm512_set1_ps(SCALED ? ExpF32::fast_lowest_scaled : ExpF32::fast_lowest));
    }
    template <bool CORR> static inline __attribute__((always_inline)) V exp_term_fast(V t, V err, __mmask16 eq) {
        return exp_fast<true, CORR>(t, err, (__mmask16)~eq);
    }
    /* The exp sweeps' argument (kernels.hpp exp4): u = m - x, exp(-u), as the
     * AVX2 tier. The fast path needs u in [+0, -fast_lowest]: as unsigned
     * bits one interval from 0 (NaN of either sign, inf, -0 and u < 0 lie
     * above it), so four vectors take three vpmaxud and one compare. */
    static inline V exp_arg(V x, V m) { return sub(m, x); }
    static inline bool exp_args_fast(V a, V b, V c, V d) {
        const __m512i mx = _mm512_max_epu32(_mm512_max_epu32(_mm512_castps_si512(a), _mm512_castps_si512(b)),
                                            _mm512_max_epu32(_mm512_castps_si512(c), _mm512_castps_si512(d)));
        const float bound = -ExpF32::fast_lowest;
        return _mm512_cmpgt_epu32_mask(mx, _mm512_set1_epi32((int)__builtin_bit_cast(uint32_t, bound))) == 0;
    }
    static inline __attribute__((always_inline)) V exp_arg_fast(V u) { return exp_fast<false, false, true>(u, u, (__mmask16)0xffff); }
    static inline __attribute__((always_inline)) V exp_arg_slow(V u) { return exp_general<false, false>(sub(_mm512_setzero_ps(), u), u, (__mmask16)0xffff); }
};

struct VecF64 {
    typedef double T;
    typedef ExpF64 Exp;
    typedef __m512d V;
    enum { W = 8 };
    static inline __mmask8 first(int64_t n) { return (__mmask8)((1u << n) - 1u); }
    static inline V set1(T a) { return _mm512_set1_pd(a); }
    static inline V load(const T *p) { return _mm512_loadu_pd(p); }
    static inline V load_part(const T *p, int64_t n, T fill) {
        FS_ASAN_READ(p, n);
        return _mm512_mask_loadu_pd(_mm512_set1_pd(fill), first(n), p);
    }
    static inline void store(T *p, V v) { _mm512_storeu_pd(p, v); }
    static inline void store_part(T *p, V v, int64_t n) {
        FS_ASAN_WRITE(p, n);
        _mm512_mask_storeu_pd(p, first(n), v);
    }
    static inline void store_stream(T *p, V v) {
        FS_ASAN_WRITE(p, W);
        _mm512_stream_pd(p, v);
    }
    static inline void stream_fence() { _mm_sfence(); }
    static inline V add(V a, V b) { return _mm512_add_pd(a, b); }
    static inline V sub(V a, V b) { return _mm512_sub_pd(a, b); }
    static inline V mul(V a, V b) { return _mm512_mul_pd(a, b); }
    static inline V max(V a, V b) { return _mm512_max_pd(a, b); }
    static inline V fmadd(V a, V b, V c) { return _mm512_fmadd_pd(a, b, c); }
    /* Lanes where x == m (ordered: never for NaN), their count, and c + 1 there. */
    static inline __mmask8 eq_mask(V x, V m) { return _mm512_cmp_pd_mask(x, m, _CMP_EQ_OQ); }
    static inline int64_t count(__mmask8 eq) { return __builtin_popcount((unsigned)eq); }
    static inline V add_one(V c, __mmask8 eq) { return _mm512_mask_add_pd(c, eq, c, _mm512_set1_pd(1.0)); }
    static inline T hmax(V v) { return _mm512_reduce_max_pd(v); }
    /* where= masks: one byte per element, nonzero = take part; M is a lane mask. */
    typedef __mmask8 M;
    static inline M first_mask(int64_t n) { return first(n); }  /* lanes < n */
    static inline M mask_load(const uint8_t *w) {
        const __m128i b = _mm_loadl_epi64((const __m128i *)w);
        return (M)_mm_test_epi8_mask(b, b);
    }
    static inline M mask_load_part(const uint8_t *w, int64_t n) {
        const __m128i b = _mm_maskz_loadu_epi8((__mmask16)first(n), w);
        return (M)_mm_test_epi8_mask(b, b);
    }
    static inline V select(M m, V a, V fill) { return _mm512_mask_mov_pd(fill, m, a); }
    /* every lane of a, b, c, d >= lo (NaN: no) */
    static inline bool all_ge(V a, V b, V c, V d, V lo) {
        return (__mmask8)(_mm512_cmp_pd_mask(a, lo, _CMP_GE_OQ) & _mm512_cmp_pd_mask(b, lo, _CMP_GE_OQ) &
                    _mm512_cmp_pd_mask(c, lo, _CMP_GE_OQ) & _mm512_cmp_pd_mask(d, lo, _CMP_GE_OQ)) == (__mmask8)~0u;
    }
    /* Sum accumulator: compensated lanes (2Sum keeps each add's rounding error). */
    struct Acc { V s, c; };
    static inline Acc acc_zero() { return {_mm512_setzero_pd(), _mm512_setzero_pd()}; }
    static inline void acc_add(Acc &a, V v) {
        V t = _mm512_add_pd(a.s, v), bp = _mm512_sub_pd(t, a.s);
        a.c = _mm512_add_pd(a.c, _mm512_add_pd(_mm512_sub_pd(a.s, _mm512_sub_pd(t, bp)), _mm512_sub_pd(v, bp)));
        a.s = t;
    }
    static inline void acc_lanes(const Acc &a, double *d) { _mm512_storeu_pd(d, _mm512_add_pd(a.s, a.c)); }
    static inline double acc_total(const Acc &a) {
        double s[W], c[W];
        _mm512_storeu_pd(s, a.s);
        _mm512_storeu_pd(c, a.c);
        return fs_compensated_sum(s, c, W);
    }
    static inline T hadd(V v) { return _mm512_reduce_add_pd(v); }
    /* no transposed short rows for float64 yet (kernels.hpp small_blocks): it
     * would need an 8 x 8 transpose and hmax / hadd written out as VecF32's
     * are; the row path runs */
    enum { TRANSPOSE = 0 };
    enum { TEST_EQ = 0 };  /* kernels.hpp SumExclSweep::four_fast */
    static inline void to_double(V v, double *d) { _mm512_storeu_pd(d, v); }
    static inline V exp_nonpos(V t) { return exp_body<false, false>(t, t, (__mmask8)0xff); }
    /* A term of the log1p sums: exp(t) * 2^sum_scale, times (1 + err) with CORR
     * (err folded in before the scaling; a NaN err comes only with an inf/NaN x
     * beside a finite max: t is -inf, a lane masked out, or NaN either way), and
     * 0 where eq is set (x == max, counted apart). eq joins the mask that keeps
     * the lanes that round to 0 out of vscalef: no blend. */
    template <bool CORR> static inline V exp_term(V t, V err, __mmask8 eq) { return exp_body<true, CORR>(t, err, (__mmask8)~eq); }
    /* vscalef covers every range in one instruction: no separate fast path */
    template <bool SCALED> static inline bool exp_fast_ok(V, V, V, V) { return true; }
    /* The exp sweeps' argument (kernels.hpp exp4): t = x - m itself */
    static inline V exp_arg(V x, V m) { return sub(x, m); }
    static inline bool exp_args_fast(V, V, V, V) { return true; }
    static inline V exp_arg_fast(V t) { return exp_nonpos(t); }
    static inline V exp_arg_slow(V t) { return exp_nonpos(t); }
    template <bool CORR> static inline V exp_term_fast(V t, V err, __mmask8 eq) { return exp_term<CORR>(t, err, eq); }
    /* live (SCALED only): the lanes to compute, others give 0. SCALED: the polynomial's
     * coefficients carry 2^sum_scale, an exact scaling, which saves adding it to k. */
    template <bool SCALED, bool CORR> static inline V exp_body(V t, V err, __mmask8 live) {
        typedef ExpF64 C;
        constexpr T s = SCALED ? C::sum_factor : T(1);
        const V lowest = _mm512_set1_pd(SCALED ? C::lowest_scaled : C::lowest);
        const __mmask8 keep = SCALED ? _mm512_mask_cmp_pd_mask(live, t, lowest, _CMP_NLT_UQ) : _mm512_cmp_pd_mask(t, lowest, _CMP_NLT_UQ);
        V k = _mm512_sub_pd(_mm512_fmadd_pd(t, _mm512_set1_pd(C::log2e), _mm512_set1_pd(C::round_magic)),
                            _mm512_set1_pd(C::round_magic));
        V r = _mm512_fnmadd_pd(k, _mm512_set1_pd(C::ln2_hi), t);
        r = _mm512_fnmadd_pd(k, _mm512_set1_pd(C::ln2_lo), r);
        V p = _mm512_fmadd_pd(_mm512_set1_pd(C::c11 * s), r, _mm512_set1_pd(C::c10 * s));
        p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(C::c9 * s));
        p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(C::c8 * s));
        p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(C::c7 * s));
        p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(C::c6 * s));
        p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(C::c5 * s));
        p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(C::c4 * s));
        p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(C::c3 * s));
        p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(C::c2 * s));
        p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(C::c1 * s));
        p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(s));
        if (CORR) p = _mm512_fmadd_pd(p, err, p);
        return _mm512_maskz_scalef_pd(keep, p, k);
    }
};

#endif
