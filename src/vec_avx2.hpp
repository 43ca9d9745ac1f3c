/* vec_avx2.hpp: the AVX2 + FMA vector layer that kernels.hpp runs on.
 *
 * Tails load with vmaskmov and store with plain stores of 4, 2 and 1 lanes:
 * lanes past the tail are neither read nor written and never fault
 * (sanitize.hpp lets ASan check the lanes a masked load reads).
 * exp: see exp_constants.hpp; AVX2 has no vscalef. Where every lane's result
 * is normal (t >= fast_lowest: nearly always in softmax) k is added to p's
 * exponent field with one integer add (exp_body's FAST path; float32 softmax
 * sweeps test u = m - x for it as unsigned bits, exp_arg); else 2^k1 and 2^k2 are built
 * from exponent bits (the round-to-integer magic number leaves k in the low
 * mantissa bits; a shift moves it into the exponent), with the same bits.
 * Lanes whose result rounds to 0 (t < lowest, -inf) are computed as exp(0) and
 * zeroed: computing a value that underflows costs a microcode assist on Intel.
 * Interleaved A/B on a Zen 3 core, float32, one thread: softmax (8, 32000)
 * 161 -> 125 us, (64, 1000) 42 -> 33 us; float64 (1000, 1000) 1.73 -> 1.36 ms.
 * exp_nonpos is always inlined: the kernels keep four exp chains in flight,
 * which a call per vector would serialise (GCC's unit-growth limit otherwise
 * decides per call site, and the where= kernels share the unit).
 * Needs: -mavx2 -mfma (see setup.py).
 */
#ifndef FS_VEC_AVX2_HPP
#define FS_VEC_AVX2_HPP

struct VecF32 {
    typedef float T;
    typedef ExpF32 Exp;
    typedef __m256 V;
    enum { W = 8 };
    static inline __m256i first(int64_t n) {
        return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    }
    static inline V set1(T a) { return _mm256_set1_ps(a); }
    static inline V load(const T *p) { return _mm256_loadu_ps(p); }
    static inline V load_part(const T *p, int64_t n, T fill) {
        FS_ASAN_READ(p, n);
        __m256i m = first(n);
        return _mm256_blendv_ps(_mm256_set1_ps(fill), _mm256_maskload_ps(p, m), _mm256_castsi256_ps(m));
    }
    static inline void store(T *p, V v) { _mm256_storeu_ps(p, v); }
    /* n < W lanes as plain stores of 4, 2 and 1 lanes: vmaskmovps to memory is
     * slow on AMD cores, and every row whose y is not on whole lines ends in
     * one or two: one Zen 3 thread, y 16 bytes past a line, softmax
     * (1, 12, 128, 128) 133 -> 122 us, (100000, 10) 1.74 -> 1.43 ms */
    static inline void store_part(T *p, V v, int64_t n) {  /* n >= W: all W (some callers pass W) */
        FS_ASAN_WRITE(p, n < W ? n : (int64_t)W);
        if (n >= W) return _mm256_storeu_ps(p, v);
        __m128 lo = _mm256_castps256_ps128(v);
        if (n & 4) {
            _mm_storeu_ps(p, lo);
            lo = _mm256_extractf128_ps(v, 1);
            p += 4;
        }
        if (n & 2) {
            _mm_storel_pi((__m64 *)p, lo);
            lo = _mm_movehl_ps(lo, lo);
            p += 2;
        }
        if (n & 1) _mm_store_ss(p, lo);
    }
    static inline void store_stream(T *p, V v) {  /* p 32-byte aligned */
        FS_ASAN_WRITE(p, W);
        _mm256_stream_ps(p, v);
    }
    static inline void stream_fence() { _mm_sfence(); }
    static inline V add(V a, V b) { return _mm256_add_ps(a, b); }
    static inline V sub(V a, V b) { return _mm256_sub_ps(a, b); }
    static inline V mul(V a, V b) { return _mm256_mul_ps(a, b); }
    static inline V max(V a, V b) { return _mm256_max_ps(a, b); }
    static inline V fmadd(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
    /* Lanes where x == m (ordered: never for NaN), as all-ones lanes; their count, and c + 1 there. */
    static inline V eq_mask(V x, V m) { return _mm256_cmp_ps(x, m, _CMP_EQ_OQ); }
    static inline int64_t count(V eq) { return __builtin_popcount(_mm256_movemask_ps(eq)); }
    static inline V add_one(V c, V eq) { return _mm256_add_ps(c, _mm256_and_ps(eq, _mm256_set1_ps(1.0f))); }
    /* where= masks: one byte per element, nonzero = take part; M has all bits
     * set in the lanes that take part (bytes widened with vpmovzxbd, compared to 0). */
    typedef __m256 M;
    static inline M first_mask(int64_t n) { return _mm256_castsi256_ps(first(n)); }  /* lanes < n */
    static inline M mask_widen(__m128i b) {
        const __m256i d = _mm256_cvtepu8_epi32(b);
        return _mm256_castsi256_ps(_mm256_xor_si256(_mm256_cmpeq_epi32(d, _mm256_setzero_si256()),
                                                    _mm256_set1_epi32(-1)));
    }
    static inline M mask_load(const uint8_t *w) { return mask_widen(_mm_loadl_epi64((const __m128i *)w)); }
    static inline M mask_load_part(const uint8_t *w, int64_t n) {  /* only n bytes are read */
        uint8_t b[16] = {0};
        memcpy(b, w, (size_t)n);
        return mask_widen(_mm_loadu_si128((const __m128i *)b));
    }
    static inline V select(M m, V a, V fill) { return _mm256_blendv_ps(fill, a, m); }
    /* every lane of a, b, c, d >= lo (NaN: no) */
    static inline bool all_ge(V a, V b, V c, V d, V lo) {
        const V out = _mm256_or_ps(_mm256_or_ps(_mm256_cmp_ps(a, lo, _CMP_NGE_UQ), _mm256_cmp_ps(b, lo, _CMP_NGE_UQ)),
                                   _mm256_or_ps(_mm256_cmp_ps(c, lo, _CMP_NGE_UQ), _mm256_cmp_ps(d, lo, _CMP_NGE_UQ)));
        return _mm256_testz_ps(out, out);
    }
    static inline T hmax(V v) {
        __m128 a = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
        a = _mm_max_ps(a, _mm_movehl_ps(a, a));
        a = _mm_max_ss(a, _mm_shuffle_ps(a, a, 1));
        return _mm_cvtss_f32(a);
    }
    /* Sum accumulator: double lanes (float32 terms add exactly enough in double). */
    struct Acc { __m256d lo, hi; };
    static inline Acc acc_zero() { return {_mm256_setzero_pd(), _mm256_setzero_pd()}; }
    static inline void acc_add(Acc &a, V v) {
        a.lo = _mm256_add_pd(a.lo, _mm256_cvtps_pd(_mm256_castps256_ps128(v)));
        a.hi = _mm256_add_pd(a.hi, _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
    }
    static inline void acc_lanes(const Acc &a, double *d) {
        _mm256_storeu_pd(d, a.lo);
        _mm256_storeu_pd(d + 4, a.hi);
    }
    /* The total: a tree in double is far inside float32 precision. */
    static inline double acc_total(const Acc &a) {
        __m256d t = _mm256_add_pd(a.lo, a.hi);
        __m128d h = _mm_add_pd(_mm256_castpd256_pd128(t), _mm256_extractf128_pd(t, 1));
        return _mm_cvtsd_f64(_mm_add_sd(h, _mm_unpackhi_pd(h, h)));
    }
    static inline T hadd(V v) {
        __m128 a = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
        a = _mm_add_ps(a, _mm_movehl_ps(a, a));
        a = _mm_add_ss(a, _mm_shuffle_ps(a, a, 1));
        return _mm_cvtss_f32(a);
    }
    /* Transposed rows (kernels.hpp small_blocks): c[l] holds lane l of W vectors,
     * one per lane. hmax_cols and hadd_cols give, in lane r, hmax and hadd of
     * the vector that lane r stands for, in the same pairs and operand order,
     * so the same bits (max's NaN choice included). */
    enum { TRANSPOSE = 2 };  /* rows of up to two vectors go transposed (kernels.hpp small_rows_nv) */
    enum { TEST_EQ = 1 };  /* kernels.hpp SumExclSweep::four_fast */
    static inline __attribute__((always_inline)) V hmax_cols(const V *c) {
        const V a0 = _mm256_max_ps(c[0], c[4]), a1 = _mm256_max_ps(c[1], c[5]);
        const V a2 = _mm256_max_ps(c[2], c[6]), a3 = _mm256_max_ps(c[3], c[7]);
        return _mm256_max_ps(_mm256_max_ps(a0, a2), _mm256_max_ps(a1, a3));
    }
    static inline __attribute__((always_inline)) V hadd_cols(const V *c) {
        const V a0 = _mm256_add_ps(c[0], c[4]), a1 = _mm256_add_ps(c[1], c[5]);
        const V a2 = _mm256_add_ps(c[2], c[6]), a3 = _mm256_add_ps(c[3], c[7]);
        return _mm256_add_ps(_mm256_add_ps(a0, a2), _mm256_add_ps(a1, a3));
    }
    static inline V div(V a, V b) { return _mm256_div_ps(a, b); }
    /* r[0..8) in place: row i lane j -> row j lane i */
    static inline __attribute__((always_inline)) void transpose(V *r) {
        const V t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
        const V t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
        const V t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
        const V t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
        const V s0 = _mm256_shuffle_ps(t0, t2, 0x44), s1 = _mm256_shuffle_ps(t0, t2, 0xEE);
        const V s2 = _mm256_shuffle_ps(t1, t3, 0x44), s3 = _mm256_shuffle_ps(t1, t3, 0xEE);
        const V s4 = _mm256_shuffle_ps(t4, t6, 0x44), s5 = _mm256_shuffle_ps(t4, t6, 0xEE);
        const V s6 = _mm256_shuffle_ps(t5, t7, 0x44), s7 = _mm256_shuffle_ps(t5, t7, 0xEE);
        r[0] = _mm256_permute2f128_ps(s0, s4, 0x20), r[1] = _mm256_permute2f128_ps(s1, s5, 0x20);
        r[2] = _mm256_permute2f128_ps(s2, s6, 0x20), r[3] = _mm256_permute2f128_ps(s3, s7, 0x20);
        r[4] = _mm256_permute2f128_ps(s0, s4, 0x31), r[5] = _mm256_permute2f128_ps(s1, s5, 0x31);
        r[6] = _mm256_permute2f128_ps(s2, s6, 0x31), r[7] = _mm256_permute2f128_ps(s3, s7, 0x31);
    }
    static inline void to_double(V v, double *d) {
        _mm256_storeu_pd(d, _mm256_cvtps_pd(_mm256_castps256_ps128(v)));
        _mm256_storeu_pd(d + 4, _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
    }
    static inline V pow2(V k) {  /* 2^k for integral k in [-126, 127] */
        typedef ExpF32 C;
        __m256i bits = _mm256_castps_si256(_mm256_add_ps(k, _mm256_set1_ps(C::round_magic + C::exponent_bias)));
        return _mm256_castsi256_ps(_mm256_slli_epi32(bits, C::mantissa_bits));
    }
    static inline __attribute__((always_inline)) V exp_nonpos(V t) { return exp_body<false, false>(t, t, _mm256_setzero_ps()); }
    /* A term of the log1p sums: exp(t) * 2^sum_scale, of t + err with CORR
     * (reduce_poly; a NaN err comes only where t is -inf, zeroed by keep, or
     * NaN), and 0 where eq is set (x == max, counted apart). */
    template <bool CORR> static inline __attribute__((always_inline)) V exp_term(V t, V err, V eq) {
        return exp_body<true, CORR>(t, err, eq);
    }
    /* The fast exp: for t >= fast_lowest(_scaled) every result is normal, so
     * 2^k goes straight into p's exponent field with one integer add, where the
     * general path needs two products (max, sub, two pow2, two mul). Same bits:
     * there p * 2^k1 is exact and 2^k2 is 1. exp_fast_ok: whether the fast exp
     * gives the exp of all four vectors' lanes (no NaN, no lane below the bound);
     * the sweeps test four vectors at once, one branch for all four. */
    template <bool SCALED> static inline __attribute__((always_inline)) bool exp_fast_ok(V t0, V t1, V t2, V t3) {
        return all_ge(t0, t1, t2, t3, _mm256_set1_ps(SCALED ? ExpF32::fast_lowest_scaled : ExpF32::fast_lowest));
    }
    /* The exp sweeps' argument (kernels.hpp exp4): u = m - x, exp(-u). The
     * fast exp needs u in [+0, -fast_lowest]. As unsigned bits that is one
     * interval starting at 0, and NaN of either sign, inf, -0 and u < 0 all
     * lie above it; the upper 16 bits alone decide it (to within 2^-7 of the
     * bound, erring low). So the test for four vectors is three 16-bit
     * unsigned max, a saturating subtract of the bound (0 in lanes under it;
     * the lower halves subtract 0xffff, always 0) and one vptest, where
     * t = x - m took four compares and three ors (x == m gives t = +0, bits
     * 0, beside -0 at 0x80000000: no interval). exp(-u) from u gives the same
     * bits as the fast exp from t: kr, r and lo come out equal or negated, each
     * rounded the same way, and the polynomial takes -r with its odd
     * coefficients negated. One Zen 3 core: the exp sweep of an L1 row
     * 6.8 -> 6.4 cycles a vector. */
    static inline __attribute__((always_inline)) V exp_arg(V x, V m) { return _mm256_sub_ps(m, x); }
    static inline __attribute__((always_inline)) bool exp_args_fast(V a, V b, V c, V d) {
        const float bound = -ExpF32::fast_lowest;
        uint32_t bits;
        memcpy(&bits, &bound, 4);
        const __m256i lim = _mm256_set1_epi32((int)((((bits >> 16) - 1) << 16) | 0xffff));
        const __m256i ab = _mm256_max_epu16(_mm256_castps_si256(a), _mm256_castps_si256(b));
        const __m256i cd = _mm256_max_epu16(_mm256_castps_si256(c), _mm256_castps_si256(d));
        const __m256i over = _mm256_subs_epu16(_mm256_max_epu16(ab, cd), lim);
        return _mm256_testz_si256(over, over);
    }
    static inline __attribute__((always_inline)) V exp_arg_fast(V u) { return exp_body<false, false, true, true>(u, u, _mm256_setzero_ps()); }
    static inline __attribute__((always_inline)) V exp_arg_slow(V u) { return exp_nonpos(_mm256_sub_ps(_mm256_setzero_ps(), u)); }
    template <bool CORR> static inline __attribute__((always_inline)) V exp_term_fast(V t, V err, V eq) {
        return exp_body<true, CORR, true>(t, err, eq);
    }
    /* float32: the degree-5 polynomial (exp_constants.hpp: max 1.94 ULP, the
     * issue's "<= 2 ULP" lever) as Horner's, five FMAs. On a Zen 3 core the
     * sweeps wait on the FMA pipes, so each operation there counts: degree 6
     * (1.13 ULP) took softmax (8, 32000) 8% longer, and Horner's five FMAs
     * ran 2-3% faster than four latencies deep with r^2 (one multiply more).
     * Over every float32 t in [-104, 0]: max 1.941 ULP (1.948 with r^2),
     * mean the same. (For degree 6, pairs up to c1 measured 1.31-1.39 ULP
     * against 1.13: Horner's outer steps keep the error.) */
    template <bool SCALED, bool NEG = false> static inline __attribute__((always_inline)) V poly(V r) {
        typedef ExpF32 C;
        constexpr T s = SCALED ? C::sum_factor : T(1), o = NEG ? T(-1) : T(1);  /* NEG: p(-r) */
        V q = _mm256_fmadd_ps(_mm256_set1_ps(C::d5_c5 * s * o), r, _mm256_set1_ps(C::d5_c4 * s));
        q = _mm256_fmadd_ps(q, r, _mm256_set1_ps(C::d5_c3 * s * o));
        q = _mm256_fmadd_ps(q, r, _mm256_set1_ps(C::d5_c2 * s));
        q = _mm256_fmadd_ps(q, r, _mm256_set1_ps(C::d5_c1 * s * o));
        return _mm256_fmadd_ps(q, r, _mm256_set1_ps(s));
    }
    /* Both paths' common part: kr = t log2(e) + round_magic (k in its low bits),
     * r = t - k ln2 (Cody-Waite), and p(r). CORR: exp(t + err), err added to
     * r with ln2's low part: t - k ln2_hi is exact (|r| < 1/2, and k ln2_hi
     * ends at ln2_hi's last bit), so r + (err - k ln2_lo) rounds once, as
     * r - k ln2_lo does without err. That is one FMA-pipe operation fewer than
     * p * (1 + err), and the FMA pipes are what log_softmax's sums wait on on
     * Zen 3. With SumExclSweep's one eq test for four vectors (kernels.hpp),
     * one Zen 3 core, medians: float32 (8, 32000) log_softmax 240 -> 200 us,
     * logsumexp 207 -> 166 us; (4096, 4096) log_softmax 19.1 -> 15.3 ms. */
    template <bool SCALED, bool CORR, bool NEG = false>
    static inline __attribute__((always_inline)) V reduce_poly(V t, V err, V &kr) {
        typedef ExpF32 C;
        if constexpr (NEG) {  /* t is u = -t: r and lo come out negated (exp_arg) */
            kr = _mm256_fnmadd_ps(t, _mm256_set1_ps(C::log2e), _mm256_set1_ps(C::round_magic));
            const V k = _mm256_sub_ps(kr, _mm256_set1_ps(C::round_magic));
            const V r = _mm256_fmadd_ps(k, _mm256_set1_ps(C::ln2_hi), t);
            return poly<SCALED, true>(_mm256_fmadd_ps(k, _mm256_set1_ps(C::ln2_lo), r));
        }
        kr = _mm256_fmadd_ps(t, _mm256_set1_ps(C::log2e), _mm256_set1_ps(C::round_magic));
        const V k = _mm256_sub_ps(kr, _mm256_set1_ps(C::round_magic));
        const V r = _mm256_fnmadd_ps(k, _mm256_set1_ps(C::ln2_hi), t);
        const V lo = _mm256_fnmadd_ps(k, _mm256_set1_ps(C::ln2_lo), CORR ? err : r);
        return poly<SCALED>(CORR ? _mm256_add_ps(r, lo) : lo);
    }
    /* zero: the lanes that give 0 (all-ones lanes). SCALED: the polynomial's
     * coefficients carry 2^sum_scale, an exact scaling, which saves adding it to k
     * (p * 2^k1 stays exact for k1 >= k_normal, and the second product rounds
     * the same number once). FAST: the caller checked exp_fast_ok; otherwise
     * each vector checks itself and takes the fast path when it can. */
    template <bool SCALED, bool CORR, bool FAST = false, bool NEG = false>
    static inline __attribute__((always_inline)) V exp_body(V t, V err, V zero) {
        typedef ExpF32 C;
        static_assert(!NEG || (FAST && !CORR), "NEG: exp_arg_fast only");
        const V lo = _mm256_set1_ps(SCALED ? C::fast_lowest_scaled : C::fast_lowest);
        if (FAST || __builtin_expect(_mm256_movemask_ps(_mm256_cmp_ps(t, lo, _CMP_NGE_UQ)) == 0, 1)) {
            V kr;
            const V p = reduce_poly<SCALED, CORR, NEG>(t, err, kr);
            /* kr holds k in its low bits: shifted up, it adds k to p's exponent */
            const V e = _mm256_castsi256_ps(
                _mm256_add_epi32(_mm256_castps_si256(p), _mm256_slli_epi32(_mm256_castps_si256(kr), C::mantissa_bits)));
            return SCALED ? _mm256_andnot_ps(zero, e) : e;
        }
        const V keep = _mm256_cmp_ps(t, _mm256_set1_ps(SCALED ? C::lowest_scaled : C::lowest), _CMP_NLT_UQ);
        t = _mm256_and_ps(t, keep);
        V kr;
        const V p = reduce_poly<SCALED, CORR>(t, err, kr);
        const V k = _mm256_sub_ps(kr, _mm256_set1_ps(C::round_magic));
        V k1 = _mm256_max_ps(k, _mm256_set1_ps(C::k_normal));
        V k2 = _mm256_sub_ps(k, k1);
        return _mm256_and_ps(_mm256_mul_ps(_mm256_mul_ps(p, pow2(k1)), pow2(k2)), SCALED ? _mm256_andnot_ps(zero, keep) : keep);
    }
};

struct VecF64 {
    typedef double T;
    typedef ExpF64 Exp;
    typedef __m256d V;
    enum { W = 4 };
    static inline __m256i first(int64_t n) {
        return _mm256_cmpgt_epi64(_mm256_set1_epi64x(n), _mm256_setr_epi64x(0, 1, 2, 3));
    }
    static inline V set1(T a) { return _mm256_set1_pd(a); }
    static inline V load(const T *p) { return _mm256_loadu_pd(p); }
    static inline V load_part(const T *p, int64_t n, T fill) {
        FS_ASAN_READ(p, n);
        __m256i m = first(n);
        return _mm256_blendv_pd(_mm256_set1_pd(fill), _mm256_maskload_pd(p, m), _mm256_castsi256_pd(m));
    }
    static inline void store(T *p, V v) { _mm256_storeu_pd(p, v); }
    static inline void store_part(T *p, V v, int64_t n) {  /* plain stores, as VecF32's */
        FS_ASAN_WRITE(p, n < W ? n : (int64_t)W);
        if (n >= W) return _mm256_storeu_pd(p, v);
        __m128d lo = _mm256_castpd256_pd128(v);
        if (n & 2) {
            _mm_storeu_pd(p, lo);
            lo = _mm256_extractf128_pd(v, 1);
            p += 2;
        }
        if (n & 1) _mm_store_sd(p, lo);
    }
    static inline void store_stream(T *p, V v) {
        FS_ASAN_WRITE(p, W);
        _mm256_stream_pd(p, v);
    }
    static inline void stream_fence() { _mm_sfence(); }
    static inline V add(V a, V b) { return _mm256_add_pd(a, b); }
    static inline V sub(V a, V b) { return _mm256_sub_pd(a, b); }
    static inline V mul(V a, V b) { return _mm256_mul_pd(a, b); }
    static inline V max(V a, V b) { return _mm256_max_pd(a, b); }
    static inline V fmadd(V a, V b, V c) { return _mm256_fmadd_pd(a, b, c); }
    /* Lanes where x == m (ordered: never for NaN), as all-ones lanes; their count, and c + 1 there. */
    static inline V eq_mask(V x, V m) { return _mm256_cmp_pd(x, m, _CMP_EQ_OQ); }
    static inline int64_t count(V eq) { return __builtin_popcount(_mm256_movemask_pd(eq)); }
    static inline V add_one(V c, V eq) { return _mm256_add_pd(c, _mm256_and_pd(eq, _mm256_set1_pd(1.0))); }
    /* where= masks: one byte per element, nonzero = take part; M has all bits
     * set in the lanes that take part (bytes widened with vpmovzxbq, compared to 0). */
    typedef __m256d M;
    static inline M first_mask(int64_t n) { return _mm256_castsi256_pd(first(n)); }  /* lanes < n */
    static inline M mask_widen(__m128i b) {
        const __m256i d = _mm256_cvtepu8_epi64(b);
        return _mm256_castsi256_pd(_mm256_xor_si256(_mm256_cmpeq_epi64(d, _mm256_setzero_si256()),
                                                    _mm256_set1_epi64x(-1)));
    }
    static inline M mask_load(const uint8_t *w) {
        int32_t v;
        memcpy(&v, w, 4);
        return mask_widen(_mm_cvtsi32_si128(v));
    }
    static inline M mask_load_part(const uint8_t *w, int64_t n) {  /* only n bytes are read */
        uint8_t b[16] = {0};
        memcpy(b, w, (size_t)n);
        return mask_widen(_mm_loadu_si128((const __m128i *)b));
    }
    static inline V select(M m, V a, V fill) { return _mm256_blendv_pd(fill, a, m); }
    /* every lane of a, b, c, d >= lo (NaN: no) */
    static inline bool all_ge(V a, V b, V c, V d, V lo) {
        const V out = _mm256_or_pd(_mm256_or_pd(_mm256_cmp_pd(a, lo, _CMP_NGE_UQ), _mm256_cmp_pd(b, lo, _CMP_NGE_UQ)),
                                   _mm256_or_pd(_mm256_cmp_pd(c, lo, _CMP_NGE_UQ), _mm256_cmp_pd(d, lo, _CMP_NGE_UQ)));
        return _mm256_testz_pd(out, out);
    }
    static inline T hmax(V v) {
        __m128d a = _mm_max_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
        a = _mm_max_sd(a, _mm_unpackhi_pd(a, a));
        return _mm_cvtsd_f64(a);
    }
    /* Sum accumulator: compensated lanes (2Sum keeps each add's rounding error). */
    struct Acc { V s, c; };
    static inline Acc acc_zero() { return {_mm256_setzero_pd(), _mm256_setzero_pd()}; }
    static inline void acc_add(Acc &a, V v) {
        V t = _mm256_add_pd(a.s, v), bp = _mm256_sub_pd(t, a.s);
        a.c = _mm256_add_pd(a.c, _mm256_add_pd(_mm256_sub_pd(a.s, _mm256_sub_pd(t, bp)), _mm256_sub_pd(v, bp)));
        a.s = t;
    }
    static inline void acc_lanes(const Acc &a, double *d) { _mm256_storeu_pd(d, _mm256_add_pd(a.s, a.c)); }
    static inline double acc_total(const Acc &a) {
        double s[W], c[W];
        _mm256_storeu_pd(s, a.s);
        _mm256_storeu_pd(c, a.c);
        return fs_compensated_sum(s, c, W);
    }
    static inline T hadd(V v) {
        __m128d a = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
        a = _mm_add_sd(a, _mm_unpackhi_pd(a, a));
        return _mm_cvtsd_f64(a);
    }
    /* Transposed rows: as VecF32's */
    enum { TRANSPOSE = 2 };  /* rows of up to two vectors go transposed (kernels.hpp small_rows_nv) */
    enum { TEST_EQ = 1 };  /* kernels.hpp SumExclSweep::four_fast */
    static inline __attribute__((always_inline)) V hmax_cols(const V *c) { return _mm256_max_pd(_mm256_max_pd(c[0], c[2]), _mm256_max_pd(c[1], c[3])); }
    static inline __attribute__((always_inline)) V hadd_cols(const V *c) { return _mm256_add_pd(_mm256_add_pd(c[0], c[2]), _mm256_add_pd(c[1], c[3])); }
    static inline V div(V a, V b) { return _mm256_div_pd(a, b); }
    static inline __attribute__((always_inline)) void transpose(V *r) {
        const V t0 = _mm256_unpacklo_pd(r[0], r[1]), t1 = _mm256_unpackhi_pd(r[0], r[1]);
        const V t2 = _mm256_unpacklo_pd(r[2], r[3]), t3 = _mm256_unpackhi_pd(r[2], r[3]);
        r[0] = _mm256_permute2f128_pd(t0, t2, 0x20), r[1] = _mm256_permute2f128_pd(t1, t3, 0x20);
        r[2] = _mm256_permute2f128_pd(t0, t2, 0x31), r[3] = _mm256_permute2f128_pd(t1, t3, 0x31);
    }
    static inline void to_double(V v, double *d) { _mm256_storeu_pd(d, v); }
    static inline V pow2(V k) {  /* 2^k for integral k in [-1022, 1023] */
        typedef ExpF64 C;
        __m256i bits = _mm256_castpd_si256(_mm256_add_pd(k, _mm256_set1_pd(C::round_magic + C::exponent_bias)));
        return _mm256_castsi256_pd(_mm256_slli_epi64(bits, C::mantissa_bits));
    }
    static inline __attribute__((always_inline)) V exp_nonpos(V t) { return exp_body<false, false>(t, t, _mm256_setzero_pd()); }
    /* A term of the log1p sums: exp(t) * 2^sum_scale, of t + err with CORR
     * (reduce_poly; a NaN err comes only where t is -inf, zeroed by keep, or
     * NaN), and 0 where eq is set (x == max, counted apart). */
    template <bool CORR> static inline __attribute__((always_inline)) V exp_term(V t, V err, V eq) {
        return exp_body<true, CORR>(t, err, eq);
    }
    /* The fast exp and its check: as VecF32's. */
    template <bool SCALED> static inline __attribute__((always_inline)) bool exp_fast_ok(V t0, V t1, V t2, V t3) {
        return all_ge(t0, t1, t2, t3, _mm256_set1_pd(SCALED ? ExpF64::fast_lowest_scaled : ExpF64::fast_lowest));
    }
    /* The exp sweeps' argument: t = x - m itself (no unsigned 64-bit max in AVX2) */
    static inline __attribute__((always_inline)) V exp_arg(V x, V m) { return _mm256_sub_pd(x, m); }
    static inline __attribute__((always_inline)) bool exp_args_fast(V a, V b, V c, V d) { return exp_fast_ok<false>(a, b, c, d); }
    static inline __attribute__((always_inline)) V exp_arg_fast(V t) { return exp_body<false, false, true>(t, t, _mm256_setzero_pd()); }
    static inline __attribute__((always_inline)) V exp_arg_slow(V t) { return exp_nonpos(t); }
    template <bool CORR> static inline __attribute__((always_inline)) V exp_term_fast(V t, V err, V eq) {
        return exp_body<true, CORR, true>(t, err, eq);
    }
    /* p(r) = s * (1 + r (c1 + r (c2 + r R(r)))), R = c3 + ... + c11 r^8 in pairs
     * qi = c2i+1 + c2i+2 r by Horner in r2: eight FMA latencies deep where
     * Horner in r is eleven. The three outer steps as Horner's keep its error
     * (R's roundings count times r^3; pairs right up to c1 measured 1.39 ULP). */
    template <bool SCALED> static inline __attribute__((always_inline)) V poly(V r) {
        typedef ExpF64 C;
        constexpr T s = SCALED ? C::sum_factor : T(1);
        const V r2 = _mm256_mul_pd(r, r);
        const V q1 = _mm256_fmadd_pd(_mm256_set1_pd(C::c4 * s), r, _mm256_set1_pd(C::c3 * s));
        const V q2 = _mm256_fmadd_pd(_mm256_set1_pd(C::c6 * s), r, _mm256_set1_pd(C::c5 * s));
        const V q3 = _mm256_fmadd_pd(_mm256_set1_pd(C::c8 * s), r, _mm256_set1_pd(C::c7 * s));
        const V q4 = _mm256_fmadd_pd(_mm256_set1_pd(C::c10 * s), r, _mm256_set1_pd(C::c9 * s));
        V q = _mm256_fmadd_pd(_mm256_set1_pd(C::c11 * s), r2, q4);
        q = _mm256_fmadd_pd(q, r2, q3);
        q = _mm256_fmadd_pd(q, r2, q2);
        q = _mm256_fmadd_pd(q, r2, q1);
        q = _mm256_fmadd_pd(q, r, _mm256_set1_pd(C::c2 * s));
        q = _mm256_fmadd_pd(q, r, _mm256_set1_pd(C::c1 * s));
        return _mm256_fmadd_pd(q, r, _mm256_set1_pd(s));
    }
    /* Both paths' common part, CORR included: as VecF32's */
    template <bool SCALED, bool CORR> static inline __attribute__((always_inline)) V reduce_poly(V t, V err, V &kr) {
        typedef ExpF64 C;
        kr = _mm256_fmadd_pd(t, _mm256_set1_pd(C::log2e), _mm256_set1_pd(C::round_magic));
        const V k = _mm256_sub_pd(kr, _mm256_set1_pd(C::round_magic));
        const V r = _mm256_fnmadd_pd(k, _mm256_set1_pd(C::ln2_hi), t);
        const V lo = _mm256_fnmadd_pd(k, _mm256_set1_pd(C::ln2_lo), CORR ? err : r);
        return poly<SCALED>(CORR ? _mm256_add_pd(r, lo) : lo);
    }
    /* zero, SCALED, FAST: as VecF32's */
    template <bool SCALED, bool CORR, bool FAST = false>
    static inline __attribute__((always_inline)) V exp_body(V t, V err, V zero) {
        typedef ExpF64 C;
        const V lo = _mm256_set1_pd(SCALED ? C::fast_lowest_scaled : C::fast_lowest);
        if (FAST || __builtin_expect(_mm256_movemask_pd(_mm256_cmp_pd(t, lo, _CMP_NGE_UQ)) == 0, 1)) {
            V kr;
            const V p = reduce_poly<SCALED, CORR>(t, err, kr);
            const V e = _mm256_castsi256_pd(
                _mm256_add_epi64(_mm256_castpd_si256(p), _mm256_slli_epi64(_mm256_castpd_si256(kr), C::mantissa_bits)));
            return SCALED ? _mm256_andnot_pd(zero, e) : e;
        }
        const V keep = _mm256_cmp_pd(t, _mm256_set1_pd(SCALED ? C::lowest_scaled : C::lowest), _CMP_NLT_UQ);
        t = _mm256_and_pd(t, keep);
        V kr;
        const V p = reduce_poly<SCALED, CORR>(t, err, kr);
        const V k = _mm256_sub_pd(kr, _mm256_set1_pd(C::round_magic));
        V k1 = _mm256_max_pd(k, _mm256_set1_pd(C::k_normal));
        V k2 = _mm256_sub_pd(k, k1);
        return _mm256_and_pd(_mm256_mul_pd(_mm256_mul_pd(p, pow2(k1)), pow2(k2)), SCALED ? _mm256_andnot_pd(zero, keep) : keep);
    }
};

#endif
