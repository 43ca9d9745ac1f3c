/* vec_generic.hpp: the portable vector layer that kernels.hpp runs on.
 *
 * A "vector" is four lanes in a plain array; the compiler vectorises the lane
 * loops for whatever baseline it targets (SSE2 on x86-64, NEON on arm64).
 * Tails touch only the lanes that exist. exp: the algorithm of
 * exp_constants.hpp without FMA, so ln2 is split Cody-Waite style with a short
 * high part (k * ln2_hi is exact for |k| < 2^8 in float32, 2^11 in float64).
 * Needs: nothing beyond ISO C++.
 */
#ifndef FS_VEC_GENERIC_HPP
#define FS_VEC_GENERIC_HPP

template <class Tp, class Bits, class C> struct VecGeneric {
    typedef Tp T;
    typedef C Exp;
    enum { W = 4 };
    struct V { T v[W]; };
    static inline V set1(T a) { V r; for (int i = 0; i < W; ++i) r.v[i] = a; return r; }
    static inline V load(const T *p) { V r; for (int i = 0; i < W; ++i) r.v[i] = p[i]; return r; }
    static inline V load_part(const T *p, int64_t n, T fill) {
        V r; for (int i = 0; i < W; ++i) r.v[i] = i < n ? p[i] : fill; return r;
    }
    static inline void store(T *p, V a) { for (int i = 0; i < W; ++i) p[i] = a.v[i]; }
    static inline void store_part(T *p, V a, int64_t n) { for (int i = 0; i < n; ++i) p[i] = a.v[i]; }
    static inline void store_stream(T *p, V a) { store(p, a); }  /* no portable non-temporal store */
    static inline void stream_fence() {}
    static inline V add(V a, V b) { for (int i = 0; i < W; ++i) a.v[i] += b.v[i]; return a; }
    static inline V sub(V a, V b) { for (int i = 0; i < W; ++i) a.v[i] -= b.v[i]; return a; }
    static inline V mul(V a, V b) { for (int i = 0; i < W; ++i) a.v[i] *= b.v[i]; return a; }
    static inline V max(V a, V b) { for (int i = 0; i < W; ++i) a.v[i] = a.v[i] > b.v[i] ? a.v[i] : b.v[i]; return a; }
    static inline V fmadd(V a, V b, V c) { for (int i = 0; i < W; ++i) a.v[i] = a.v[i] * b.v[i] + c.v[i]; return a; }
    /* where= masks: one byte per element, nonzero = take part. */
    struct M { bool b[W]; };
    static inline M first_mask(int64_t n) { M m; for (int i = 0; i < W; ++i) m.b[i] = i < n; return m; }  /* lanes < n */
    /* Lanes where x == m (never for NaN), their count, and c + 1 there. */
    static inline M eq_mask(V x, V m) { M e; for (int i = 0; i < W; ++i) e.b[i] = x.v[i] == m.v[i]; return e; }
    static inline int64_t count(M e) { int64_t c = 0; for (int i = 0; i < W; ++i) c += e.b[i]; return c; }
    static inline V add_one(V c, M e) { for (int i = 0; i < W; ++i) c.v[i] += e.b[i] ? T(1) : T(0); return c; }
    static inline M mask_load(const uint8_t *w) { M m; for (int i = 0; i < W; ++i) m.b[i] = w[i] != 0; return m; }
    static inline M mask_load_part(const uint8_t *w, int64_t n) {
        M m; for (int i = 0; i < W; ++i) m.b[i] = i < n && w[i] != 0; return m;
    }
    static inline V select(M m, V a, V fill) { for (int i = 0; i < W; ++i) a.v[i] = m.b[i] ? a.v[i] : fill.v[i]; return a; }
    static inline T hmax(V a) {
        T m = a.v[0];
        for (int i = 1; i < W; ++i) m = a.v[i] > m ? a.v[i] : m;
        return m;
    }
    /* Sum accumulator: double lanes, compensated (2Sum) so float64 terms keep
     * each add's rounding error too. */
    struct Acc { double s[W], c[W]; };
    static inline Acc acc_zero() { Acc a; for (int i = 0; i < W; ++i) a.s[i] = a.c[i] = 0.0; return a; }
    static inline void acc_add(Acc &a, V v) {
        for (int i = 0; i < W; ++i) {
            double x = (double)v.v[i], t = a.s[i] + x, bp = t - a.s[i];
            a.c[i] += (a.s[i] - (t - bp)) + (x - bp);
            a.s[i] = t;
        }
    }
    static inline void acc_lanes(const Acc &a, double *d) { for (int i = 0; i < W; ++i) d[i] = a.s[i] + a.c[i]; }
    static inline double acc_total(const Acc &a) { return fs_compensated_sum(a.s, a.c, W); }
    static inline T hadd(V a) { return (a.v[0] + a.v[2]) + (a.v[1] + a.v[3]); }
    /* Transposed rows (kernels.hpp small_blocks): c[l] holds lane l of W
     * vectors, one per lane; lane r of hmax_cols / hadd_cols is hmax / hadd of
     * the vector lane r stands for, the same steps in the same order. */
    enum { TRANSPOSE = 2 };  /* rows of up to two vectors go transposed (kernels.hpp small_rows_nv) */
    enum { TEST_EQ = 0 };  /* kernels.hpp SumExclSweep::four_fast: exp_fast_ok lets NaN through here */
    static inline __attribute__((always_inline)) V hmax_cols(const V *c) {
        V m = c[0];
        for (int i = 1; i < W; ++i)
            for (int r = 0; r < W; ++r) m.v[r] = c[i].v[r] > m.v[r] ? c[i].v[r] : m.v[r];
        return m;
    }
    static inline __attribute__((always_inline)) V hadd_cols(const V *c) { return add(add(c[0], c[2]), add(c[1], c[3])); }
    static inline V div(V a, V b) { for (int i = 0; i < W; ++i) a.v[i] /= b.v[i]; return a; }
    static inline __attribute__((always_inline)) void transpose(V *r) {
        for (int i = 0; i < W; ++i)
            for (int j = i + 1; j < W; ++j) {
                const T t = r[i].v[j];
                r[i].v[j] = r[j].v[i];
                r[j].v[i] = t;
            }
    }
    static inline void to_double(V a, double *d) { for (int i = 0; i < W; ++i) d[i] = (double)a.v[i]; }
    static inline T pow2(T k) {  /* 2^k for integral k in the normal range */
        Bits b = (Bits)((int)k + C::exponent_bias) << C::mantissa_bits;
        T r; memcpy(&r, &b, sizeof r); return r;
    }
    template <bool SCALED, bool CORR = false> static inline T exp1(T t, T err = T(0)) {
        if (!(t == t)) return t;  /* NaN: no float-to-int conversion below */
        if (t < (SCALED ? C::lowest_scaled : C::lowest)) return T(0);
        T k = (t * C::log2e + C::round_magic) - C::round_magic;
        T r = (t - k * C::ln2_hi) - k * C::ln2_lo;
        T p = C::poly(r);
        if (CORR) p = p * err + p;  /* times (1 + err), before the scaling */
        if (SCALED) k += C::sum_scale;
        T k1 = k > C::k_normal ? k : C::k_normal;
        return p * pow2(k1) * pow2(k - k1);
    }
    static inline V exp_nonpos(V t) {
        for (int i = 0; i < W; ++i) t.v[i] = exp1<false>(t.v[i]);
        return t;
    }
    /* A term of the log1p sums: exp(t) * 2^sum_scale, times (1 + err) with CORR
     * (err is NaN only where t is -inf or NaN), and 0 where eq is set. */
    template <bool CORR> static inline V exp_term(V t, V err, M eq) {
        for (int i = 0; i < W; ++i) t.v[i] = eq.b[i] ? T(0) : exp1<true, CORR>(t.v[i], err.v[i]);
        return t;
    }
    /* one scalar exp per lane: no separate fast path */
    template <bool SCALED> static inline bool exp_fast_ok(V, V, V, V) { return true; }
    /* every lane of a, b, c, d >= lo (NaN: no) */
    static inline bool all_ge(V a, V b, V c, V d, V lo) {
        bool ok = true;
        for (int i = 0; i < W; ++i) ok &= a.v[i] >= lo.v[i] && b.v[i] >= lo.v[i] && c.v[i] >= lo.v[i] && d.v[i] >= lo.v[i];
        return ok;
    }
    /* The exp sweeps' argument (kernels.hpp exp4): t = x - m itself */
    static inline V exp_arg(V x, V m) { return sub(x, m); }
    static inline bool exp_args_fast(V, V, V, V) { return true; }
    static inline V exp_arg_fast(V t) { return exp_nonpos(t); }
    static inline V exp_arg_slow(V t) { return exp_nonpos(t); }
    template <bool CORR> static inline V exp_term_fast(V t, V err, M eq) { return exp_term<CORR>(t, err, eq); }
};

/* Constants without FMA: a short ln2_hi so that k * ln2_hi is exact. */
struct GenericExpF32 : ExpF32 {
    static constexpr float ln2_hi = 0x1.62e400p-1f;
    static constexpr float ln2_lo = 0x1.7f7d1cp-20f;
    static inline float poly(float r) {
        return 1.0f + r * (c1 + r * (c2 + r * (c3 + r * (c4 + r * (c5 + r * c6)))));
    }
};
struct GenericExpF64 : ExpF64 {
    static constexpr double ln2_hi = 0x1.62e42feep-1;
    static constexpr double ln2_lo = 0x1.a39ef35793c76p-33;
    static inline double poly(double r) {
        return 1.0 + r * (c1 + r * (c2 + r * (c3 + r * (c4 + r * (c5 + r * (c6 + r * (c7 + r * (c8 + r * (c9 + r * (c10 + r * c11))))))))));
    }
};

typedef VecGeneric<float, uint32_t, GenericExpF32> VecF32;
typedef VecGeneric<double, uint64_t, GenericExpF64> VecF64;

#endif
