/* kernels.hpp: the softmax loops, written once over a vector layer K
 * (vec_generic.hpp, vec_avx2.hpp, vec_avx512.hpp) and compiled once per tier
 * by kernels_<isa>.cpp, each inside its own namespace and with its own
 * target flags, so no instruction of one tier leaks into another.
 *
 * Row kernels work on four vectors at a time (independent exp chains); sums
 * add those four as a tree and then into a double accumulator per lane
 * (compensated for float64), so the order of additions depends only on n,
 * never on threads, and equal terms do not pile up rounding errors. Column
 * kernels do the same with four rows at a time per vector of columns. Many
 * short rows go W at a time, transposed (small_blocks), repeating the row
 * kernel's additions lane by lane.
 */

/* The masked and unmasked kernels share one templated body (the *_t
 * functions); forcing it inline into each table entry keeps the unmasked
 * entries compiled as one function each, as they were before masks, so the
 * compiler's inlining choices inside them (the exp) do not shift. */
#ifndef FS_BODY
#define FS_BODY inline __attribute__((always_inline))
#endif

template <class K> struct Kernels {
    typedef typename K::T T;
    typedef typename K::V V;
    enum { W = K::W, SMALL_MAX = 8 * K::W, COL_PREFETCH_ROWS = 16, COL_AHEAD = 4, PREFETCH_AHEAD_BYTES = 16384 };

    static inline T neg_inf() { return -__builtin_inf(); }
    /* log_softmax's offset where the max is +inf: a NaN the optimiser cannot
     * see. A NaN constant let GCC fold x - NaN into x + (-NaN) in some
     * instantiations, so that one path's NaNs came out with the sign flipped. */
    static inline T opaque_nan() {
        T v = T(__builtin_nan(""));
        __asm__("" : "+m"(v));
        return v;
    }

    static constexpr double unscale = K::Exp::sum_unscale;

    /* log1p(v) for the log sums' rest, v in [0, 2^1000] (v >= 0: the count
     * of the max is at least 1 where the max is finite). glibc's log1p took
     * 14.6 ns a call, and log_softmax of many short rows makes one call a
     * row; this one is branch-free, so log1p_rows' loop vectorises. u = 1 + v
     * and its rounding error c (2Sum), u = 2^k m with m in [sqrt(2)/2,
     * sqrt(2)) from the bits, f = m - 1 (exact), s = f / (2 + f), and
     * log(1 + f) = 2 atanh(s) = f - f^2/2 + s (f^2/2 + R), R the atanh
     * series in s^2 (exact coefficients 2 / (2j + 1), nine terms: the tenth
     * is below 2^-54 at |s| <= 0.1716), then + k ln2 + c / u. Double
     * operations only, no FMA (-ffp-contract=off): a lane gets the same bits
     * in any loop, vectorised or not, on every tier. Within 1.03 ULP of
     * double (glibc: 0.84), mean 0.22, over 24M values from 2^-1070 to 2^31
     * (a long double reference). One Zen 3 core, medians: (100000, 10)
     * float32 log_softmax 2.60 -> 1.64 ms, logsumexp 2.32 -> 1.30 ms;
     * float64 log_softmax 3.75 -> 3.09 ms. */
    static inline double log1p_rest(double v) {
        const double u = 1.0 + v;
        const double bv = u - 1.0, c = (1.0 - (u - bv)) + (v - bv);
        uint64_t i;
        __builtin_memcpy(&i, &u, 8);
        i += 0x3ff0000000000000ull - 0x3fe6a09e667f3bcdull;  /* a carry into the exponent where m >= sqrt(2) */
        const uint64_t kb = (i >> 52) | 0x4330000000000000ull, mb = (i & 0x000fffffffffffffull) + 0x3fe6a09e667f3bcdull;
        double kd, m;
        __builtin_memcpy(&kd, &kb, 8);
        __builtin_memcpy(&m, &mb, 8);
        kd -= 0x1p52 + 1023.0;  /* k, without an int64 conversion (none in AVX2) */
        const double f = m - 1.0, hfsq = 0.5 * f * f, s = f / (2.0 + f), z = s * s;
        double R = 0x1.af286bca1af28p-4;  /* 2/19, ..., 2/3 */
        R = R * z + 0x1.e1e1e1e1e1e1ep-4;
        R = R * z + 0x1.1111111111111p-3;
        R = R * z + 0x1.3b13b13b13b14p-3;
        R = R * z + 0x1.745d1745d1746p-3;
        R = R * z + 0x1.c71c71c71c71cp-3;
        R = R * z + 0x1.2492492492492p-2;
        R = R * z + 0x1.999999999999ap-2;
        R = R * z + 0x1.5555555555555p-1;
        R *= z;
        /* ln2 = hi + lo, hi with 42 bits: k hi is exact */
        return kd * 0x1.62e42fefa3800p-1 - ((hfsq - (s * (hfsq + R) + (kd * 0x1.ef35793c76730p-45 + c / u))) - f);
    }
    /* v[i] = log1p(v[i]) for N rows' rests; NaN, inf and below 0 (rows of
     * -inf or NaN) take glibc's log1p */
    template <int N> static inline void log1p_rows(double *v) {
        double r[N];
        for (int i = 0; i < N; ++i) r[i] = log1p_rest(v[i]);
        for (int i = 0; i < N; ++i) v[i] = v[i] >= 0.0 && v[i] <= 0x1p1000 ? r[i] : __builtin_log1p(v[i]);
    }

    /* Terms of the log1p sums: exp(x - m) * 2^sum_scale (they stay normal:
     * exp_constants.hpp), 0 where eq is set (x == m: counted apart). EXACT
     * (log_softmax, logsumexp) puts back the rounding error of x - m (2Sum:
     * x - m = t + err exactly; the layer's exp_term gives exp(t + err), err
     * added to the reduced argument or as exp(t) * (1 + err)): log_softmax
     * of the max element is -log1p(sum of the others), so its relative accuracy
     * rests on every other term's x - m. t = x - m, neg_m = -m. FAST: the
     * caller checked K::exp_fast_ok for t. */
    enum { TWO_SUM, X_LARGER, M_LARGER };  /* how term() gets err; the same value every way */
    template <bool EXACT, bool FAST = false, int ERR = TWO_SUM>
    static FS_BODY V term(V x, V t, V neg_m, typename K::M eq) {
        auto e = [&](V err) __attribute__((always_inline)) {
            return FAST ? K::template exp_term_fast<EXACT>(t, err, eq) : K::template exp_term<EXACT>(t, err, eq);
        };
        if constexpr (!EXACT) return e(t);
        /* Fast2Sum, where the caller knows which operand is larger in magnitude:
         * two operations instead of 2Sum's five, the same exact error */
        if constexpr (ERR == X_LARGER) return e(K::sub(neg_m, K::sub(t, x)));
        if constexpr (ERR == M_LARGER) return e(K::sub(x, K::sub(t, neg_m)));
        const V bp = K::sub(t, x);
        return e(K::add(K::sub(x, K::sub(t, bp)), K::sub(neg_m, bp)));
    }

    /* Neumaier: the running sum keeps the low part that each add would lose. */
    struct Sum2 {
        double hi, lo;
        inline void add(double v) {
            double t = hi + v;
            lo += (__builtin_fabs(hi) >= __builtin_fabs(v)) ? (hi - t) + v : (v - t) + hi;
            hi = t;
        }
        inline double value() const { return hi + lo; }
    };

    static inline double acc_total(const typename K::Acc &a) { return K::acc_total(a); }

    /* k lanes at p: a full vector when k == W (folded at compile time), else masked. */
    static inline V ld(const T *p, int64_t k, T fill) { return k == W ? K::load(p) : K::load_part(p, k, fill); }
    static inline void st(T *p, V v, int64_t k) {
        if (k == W) K::store(p, v); else K::store_part(p, v, k);
    }
    /* where= masks (MK true): w holds one byte per element, nonzero = the element
     * takes part; keep() puts `fill` in the lanes that do not. With MK false
     * these fold away, so the unmasked kernels are the code they always were. */
    static FS_BODY typename K::M wm(const uint8_t *w, int64_t k) {
        return k == W ? K::mask_load(w) : K::mask_load_part(w, k);
    }
    template <bool MK> static FS_BODY V keep(const uint8_t *w, int64_t k, V v, T fill) {
        if constexpr (MK) return K::select(wm(w, k), v, K::set1(fill));
        else return v;
    }
    template <class F> static inline void each_vector(int64_t w, F f) {
        int64_t c = 0;
        for (; c + W <= w; c += W) f(c, (int64_t)W);
        if (c < w) f(c, w - c);
    }

    /* Touch the cache lines of next[0, 4W): the next row streams in while this
     * one computes. Forced inline: GCC 12 marked the out-of-line helper
     * "looping const" (a prefetch has no visible effect) and deleted every
     * call, so none of the row kernels prefetched. With the prefetches, one
     * Zen 4 core, medians: (4096, 4096) float32 softmax 8.3 -> 5.3 ms,
     * log_softmax 9.9 -> 5.2 ms, float64 softmax 19.7 -> 11.4 ms, softmax of
     * one row of 10M 5.1 -> 3.9 ms. */
    static inline __attribute__((always_inline)) void prefetch(const T *next) {
        if (!next) return;
        for (unsigned b = 0; b < 4 * W * sizeof(T); b += 64) __builtin_prefetch((const char *)next + b, 0, 2);
    }

    /* y[i] = f(i) over n elements. NT: non-temporal stores for outputs far larger
     * than the cache (no read-for-ownership, no eviction of the input); they need
     * aligned addresses, so the head up to the first aligned vector is masked. */
    template <bool NT, class F, bool FENCE = true> static inline void map_store(T *y, int64_t n, F f) {
        int64_t i = 0;
        if (NT) {
            const uintptr_t vb = W * sizeof(T), mis = (uintptr_t)y % vb;
            int64_t h = mis ? (int64_t)((vb - mis) / sizeof(T)) : 0;
            if (h > n) h = n;
            if (h) K::store_part(y, f(0, h), h);
            i = h;
            for (; i + W <= n; i += W) K::store_stream(y + i, f(i, (int64_t)W));
        }
        for (; i + 2 * W <= n; i += 2 * W) {
            K::store(y + i, f(i, (int64_t)W));
            K::store(y + i + W, f(i + W, (int64_t)W));
        }
        for (; i + W <= n; i += W) K::store(y + i, f(i, (int64_t)W));
        if (i < n) K::store_part(y + i, f(i, n - i), n - i);
        if (NT && FENCE) K::stream_fence();
    }

    static T max(const T *x, int64_t n) { return max_t<false>(x, nullptr, n); }
    static T max_w(const T *x, const uint8_t *w, int64_t n) { return max_t<true>(x, w, n); }
    template <bool MK> static FS_BODY T max_t(const T *x, const uint8_t *w, int64_t n) {
        MaxSweep<MK> s;
        return s.finish(x, w, s.head(x, w, n), n);
    }

    /* The sweeps of a row as objects: their state, a step over the next 4W or
     * 8W elements, and finish() for the rest from element i on. The single-row
     * kernels are finish(0); rows() runs the sweeps of three rows step by step
     * side by side, so both give the same bits. */

    /* max: four running maxima over steps of 4W, then single vectors, then a masked tail */
    template <bool MK> struct MaxSweep {
        V a0, a1, a2, a3;
        FS_BODY MaxSweep() : a0(K::set1(neg_inf())), a1(a0), a2(a0), a3(a0) {}
        /* The elements before x's first whole vector (all n if fewer) in one
         * masked load; returns their count, where the aligned steps start. A
         * load across two cache lines costs about two: NumPy's large arrays
         * start 16 bytes into a page, and streaming 64 MiB from memory that
         * way took 2.1 ms against 1.6 ms aligned. The max, unlike the sums,
         * gives the same bits in any order. */
        FS_BODY int64_t head(const T *x, const uint8_t *w, int64_t n) {
            const uintptr_t vb = W * sizeof(T), mis = (uintptr_t)x % vb;
            int64_t h = mis && mis % sizeof(T) == 0 ? (int64_t)((vb - mis) / sizeof(T)) : 0;
            if (h > n) h = n;
            if (h) a0 = K::max(a0, keep<MK>(w, h, K::load_part(x, h, neg_inf()), neg_inf()));
            return h;
        }
        FS_BODY void four(const T *x, const uint8_t *w, int64_t i) {
            const T ni = neg_inf();
            a0 = K::max(a0, keep<MK>(w + i, W, K::load(x + i), ni));
            a1 = K::max(a1, keep<MK>(w + i + W, W, K::load(x + i + W), ni));
            a2 = K::max(a2, keep<MK>(w + i + 2 * W, W, K::load(x + i + 2 * W), ni));
            a3 = K::max(a3, keep<MK>(w + i + 3 * W, W, K::load(x + i + 3 * W), ni));
        }
        FS_BODY T finish(const T *x, const uint8_t *w, int64_t i, int64_t n) {
            const T ni = neg_inf();
            for (; i + 4 * W <= n; i += 4 * W) four(x, w, i);
            for (; i + W <= n; i += W) a0 = K::max(a0, keep<MK>(w + i, W, K::load(x + i), ni));
            if (i < n) a1 = K::max(a1, keep<MK>(w + i, n - i, K::load_part(x + i, n - i, ni), ni));
            return K::hmax(K::max(K::max(a0, a1), K::max(a2, a3)));
        }
    };

    /* e[j] = exp(x_j - m) for four vectors behind one test for the layer's fast
     * exp (the same bits as exp_nonpos). The layer picks the argument's form:
     * AVX2 float32 tests m - x with integer ops (vec_avx2.hpp exp_arg). */
    static FS_BODY void exp4(V x0, V x1, V x2, V x3, V vm, V *e) {
        const V a0 = K::exp_arg(x0, vm), a1 = K::exp_arg(x1, vm), a2 = K::exp_arg(x2, vm), a3 = K::exp_arg(x3, vm);
        if (K::exp_args_fast(a0, a1, a2, a3)) {
            e[0] = K::exp_arg_fast(a0), e[1] = K::exp_arg_fast(a1), e[2] = K::exp_arg_fast(a2), e[3] = K::exp_arg_fast(a3);
        } else {
            e[0] = K::exp_arg_slow(a0), e[1] = K::exp_arg_slow(a1), e[2] = K::exp_arg_slow(a2), e[3] = K::exp_arg_slow(a3);
        }
    }

    /* Sums: four vectors are added as a tree, then into K::Acc (double lanes for
     * float32, compensated double lanes for float64), so even n equal terms
     * sum to within ~1 ulp; the order depends only on n. */
    static double rexp_store(const T *x, int64_t n, T m, T *y, const T *next) {
        return rexp_store_t<false>(x, nullptr, n, m, y, next);
    }
    /* masked: elements that take no part store and add 0 */
    static double rexp_store_w(const T *x, const uint8_t *w, int64_t n, T m, T *y, const T *next) {
        return rexp_store_t<true>(x, w, n, m, y, next);
    }
    template <bool MK>
    static FS_BODY double rexp_store_t(const T *x, const uint8_t *w, int64_t n, T m, T *y, const T *next) {
        ExpStoreSweep<MK> s(m);
        return s.finish(x, w, 0, n, y, next);
    }
    /* The sum alone, the same bits (softmax's long slices: driver.cpp) */
    static double rexp_sum(const T *x, int64_t n, T m, const T *next) { return rexp_sum_t<false>(x, nullptr, n, m, next); }
    static double rexp_sum_w(const T *x, const uint8_t *w, int64_t n, T m, const T *next) {
        return rexp_sum_t<true>(x, w, n, m, next);
    }
    template <bool MK> static FS_BODY double rexp_sum_t(const T *x, const uint8_t *w, int64_t n, T m, const T *next) {
        ExpStoreSweep<MK, false> s(m);
        return s.finish(x, w, 0, n, nullptr, next);
    }
    /* y = exp(x - m) (STORE) and its sum: steps of 8W, each a tree of eight vectors added into acc */
    template <bool MK, bool STORE = true> struct ExpStoreSweep {
        typename K::Acc acc;
        const V vm;
        FS_BODY explicit ExpStoreSweep(T m) : acc(K::acc_zero()), vm(K::set1(m)) {}
        FS_BODY V four(const T *x, const uint8_t *w, int64_t j, T *y, const T *next) {  /* stored; their tree sum */
            prefetch(next ? next + j : nullptr);
            V e[4];
            exp4(K::load(x + j), K::load(x + j + W), K::load(x + j + 2 * W), K::load(x + j + 3 * W), vm, e);
            const V e0 = keep<MK>(w + j, W, e[0], T(0)), e1 = keep<MK>(w + j + W, W, e[1], T(0));
            const V e2 = keep<MK>(w + j + 2 * W, W, e[2], T(0)), e3 = keep<MK>(w + j + 3 * W, W, e[3], T(0));
            if constexpr (STORE) {
                K::store(y + j, e0);
                K::store(y + j + W, e1);
                K::store(y + j + 2 * W, e2);
                K::store(y + j + 3 * W, e3);
            }
            return K::add(K::add(e0, e1), K::add(e2, e3));
        }
        FS_BODY void eight(const T *x, const uint8_t *w, int64_t i, T *y, const T *next) {
            K::acc_add(acc, K::add(four(x, w, i, y, next), four(x, w, i + 4 * W, y, next)));
        }
        FS_BODY double finish(const T *x, const uint8_t *w, int64_t i, int64_t n, T *y, const T *next) {
            for (; i + 8 * W <= n; i += 8 * W) eight(x, w, i, y, next);
            for (; i + 4 * W <= n; i += 4 * W) K::acc_add(acc, four(x, w, i, y, next));
            for (; i < n; i += W) {  /* -inf fill: exp gives 0 in the unused lanes */
                const int64_t k = n - i < W ? n - i : (int64_t)W;
                V e = keep<MK>(w + i, k, K::exp_nonpos(K::sub(ld(x + i, k, neg_inf()), vm)), T(0));
                if constexpr (STORE) st(y + i, e, k);
                K::acc_add(acc, e);
            }
            return acc_total(acc);
        }
    };

    /* Sum of exp(x - m) * 2^sum_scale over x != m, and the count of x == m,
     * each term's rounding of x - m put back (log_softmax, logsumexp). The
     * count may include tail lanes when m == -inf; every caller then gets
     * NaN or -inf whatever the count, so it is not masked. */
    static double rexp_sum_excl(const T *x, int64_t n, T m, double *count, const T *next) {
        return rexp_sum_excl_t<false>(x, nullptr, n, m, count, next);
    }
    /* masked: elements that take no part are neither summed nor counted */
    static double rexp_sum_excl_w(const T *x, const uint8_t *w, int64_t n, T m, double *count, const T *next) {
        return rexp_sum_excl_t<true>(x, w, n, m, count, next);
    }
    template <bool MK>
    static double rexp_sum_excl_t(const T *x, const uint8_t *w, int64_t n, T m, double *count, const T *next) {
        SumExclSweep<MK> s(m);
        return s.finish(x, w, 0, n, next, count);
    }
    /* The sum over x != m (steps of 4W, a tree of four vectors into acc) and the
     * count of x == m (a popcount of the compare the sum needs anyway; for it,
     * lanes that take no part hold NaN, equal to nothing); each term exact
     * (term<true>: softmax's sums are plain, ExpStoreSweep) */
    template <bool MK> struct SumExclSweep {
        typename K::Acc acc;
        const V vm, nm;
        int64_t cnt;
        const bool m_nonpos;
        /* m > 0: t >= lo_m says both that the fast exp holds and that x >= -m
         * (|m| >= |x|), in one test: x < -m gives x - m < -2m, which rounds
         * to at most -2m (exact), below lo_m; NaN fails it too. Rows of logits
         * (m > 0, spread under 2m) so skip the second test, of x itself. */
        const V lo_m;
        static T pos_bound(T m) {  /* for m > 0: the float next above -2m, or fast_lowest_scaled if higher */
            T b = -2 * m;  /* exact, or -inf */
            if constexpr (sizeof(T) == 4) {
                uint32_t u;
                __builtin_memcpy(&u, &b, 4);
                u -= 1;  /* a negative number's magnitude one ulp less */
                __builtin_memcpy(&b, &u, 4);
            } else {
                uint64_t u;
                __builtin_memcpy(&u, &b, 8);
                u -= 1;
                __builtin_memcpy(&b, &u, 8);
            }
            return b > T(K::Exp::fast_lowest_scaled) ? b : T(K::Exp::fast_lowest_scaled);
        }
        FS_BODY explicit SumExclSweep(T m)
            : acc(K::acc_zero()), vm(K::set1(m)), nm(K::set1(-m)), cnt(0), m_nonpos(m <= T(0)),
              lo_m(K::set1(m > T(0) ? pos_bound(m) : T(0))) {}
        template <bool FAST = false, int ERR = TWO_SUM> FS_BODY V one(const uint8_t *w, int64_t i, int64_t k, V xv, V t) {
            const typename K::M eq = K::eq_mask(keep<MK>(w + i, k, xv, T(__builtin_nan(""))), vm);
            /* a scalar count keeps this off the vector pipes, the limit here: a
             * per-lane vector count took log_softmax (8, 32000) 7% longer on Zen 3 */
            cnt += K::count(eq);
            return keep<MK>(w + i, k, term<true, FAST, ERR>(xv, t, nm, eq), T(0));
        }
        template <int ERR> FS_BODY void four_fast(const uint8_t *w, int64_t i, const V *xv, const V *t, V *e) {
            /* No lane at the max (t == 0; t <= 0, no NaN: exp_fast_ok passed)
             * in most steps of a row: then one test for four vectors replaces
             * each one's compare, count and zeroing, the same bits. On AVX2
             * those were about a tenth of the work of a term. AVX-512 keeps
             * them: its compares go to mask registers, and on Zen 4 the test
             * made the sweep slower (11.35 against 11.2 cycles a vector). So
             * does the generic tier, whose exp_fast_ok lets NaN reach here. */
            if (!MK && K::TEST_EQ) {
                const V tm = K::max(K::max(t[0], t[1]), K::max(t[2], t[3]));
                if (K::count(K::eq_mask(tm, K::set1(T(0)))) == 0) {
                    for (int j = 0; j < 4; ++j) e[j] = term<true, true, ERR>(xv[j], t[j], nm, typename K::M());
                    return;
                }
            }
            for (int j = 0; j < 4; ++j) e[j] = one<true, ERR>(w, i + j * W, W, xv[j], t[j]);
        }
        FS_BODY V one(const T *x, const uint8_t *w, int64_t i, int64_t k) {
            const V xv = ld(x + i, k, neg_inf());
            return one(w, i, k, xv, K::sub(xv, vm));
        }
        FS_BODY void four(const T *x, const uint8_t *w, int64_t i, const T *next) {
            prefetch(next ? next + i : nullptr);
            const V xv[4] = {K::load(x + i), K::load(x + i + W), K::load(x + i + 2 * W), K::load(x + i + 3 * W)};
            const V t[4] = {K::sub(xv[0], vm), K::sub(xv[1], vm), K::sub(xv[2], vm), K::sub(xv[3], vm)};
            V e[4];
            if (!m_nonpos && K::all_ge(t[0], t[1], t[2], t[3], lo_m)) {
                four_fast<M_LARGER>(w, i, xv, t, e);
            } else if (K::template exp_fast_ok<true>(t[0], t[1], t[2], t[3])) {  /* one test for four vectors */
                /* x <= m: with m <= 0 every |x| >= |m|; else |m| >= |x| where x >= -m */
                if (m_nonpos) four_fast<X_LARGER>(w, i, xv, t, e);
                else if (K::all_ge(xv[0], xv[1], xv[2], xv[3], nm)) four_fast<M_LARGER>(w, i, xv, t, e);
                else four_fast<TWO_SUM>(w, i, xv, t, e);
            } else {
                for (int j = 0; j < 4; ++j) e[j] = one(w, i + j * W, W, xv[j], t[j]);
            }
            K::acc_add(acc, K::add(K::add(e[0], e[1]), K::add(e[2], e[3])));
        }
        FS_BODY double finish(const T *x, const uint8_t *w, int64_t i, int64_t n, const T *next, double *count) {
            for (; i + 4 * W <= n; i += 4 * W) four(x, w, i, next);
            for (; i < n; i += W) K::acc_add(acc, one(x, w, i, n - i < W ? n - i : (int64_t)W));
            *count = (double)cnt;
            return acc_total(acc) * unscale;
        }
    };

    /* ---- backward (gradients of softmax and log_softmax) ---- */

    /* sum of a * b (b null: of a), tree of four then the accumulator, as rexp_store;
     * dot_w: over the elements the mask w lets through only */
    static double dot(const T *a, const T *b, int64_t n) { return dot_t<false>(a, b, nullptr, n); }
    static double dot_w(const T *a, const T *b, const uint8_t *w, int64_t n) { return dot_t<true>(a, b, w, n); }
    template <bool MK> static FS_BODY double dot_t(const T *a, const T *b, const uint8_t *w, int64_t n) {
        typename K::Acc acc = K::acc_zero();
        auto term = [&](int64_t i, int64_t k) {
            /* the mask goes on the inputs, not the product: the compiler may fuse
             * the product into the sum's add, and must be able to in both variants */
            V va = keep<MK>(w + i, k, ld(a + i, k, T(0)), T(0));
            return b ? K::mul(va, keep<MK>(w + i, k, ld(b + i, k, T(0)), T(0))) : va;
        };
        int64_t i = 0;
        for (; i + 4 * W <= n; i += 4 * W)
            K::acc_add(acc, K::add(K::add(term(i, W), term(i + W, W)), K::add(term(i + 2 * W, W), term(i + 3 * W, W))));
        for (; i < n; i += W) K::acc_add(acc, term(i, n - i < W ? n - i : (int64_t)W));
        return acc_total(acc);
    }

    /* softmax: dx = y * (g - d), d = sum(g * y); masked (MK): 0 where w is 0 */
    template <bool NT, bool MK = false>
    static FS_BODY void softmax_grad(const T *y, const T *g, const uint8_t *w, int64_t n, T d, T *dx) {
        const V vd = K::set1(d);
        map_store<NT>(dx, n, [&](int64_t i, int64_t k) {
            return keep<MK>(w + i, k, K::mul(ld(y + i, k, T(0)), K::sub(ld(g + i, k, T(0)), vd)), T(0));
        });
    }
    template <bool NT> static void softmax_grad_u(const T *y, const T *g, int64_t n, T d, T *dx) {
        softmax_grad<NT, false>(y, g, nullptr, n, d, dx);
    }

    /* log_softmax: dx = g - exp(y) * s, s = sum(g), y <= 0; masked (MK): 0 where w is 0 */
    template <bool NT, bool MK = false>
    static FS_BODY void log_softmax_grad(const T *y, const T *g, const uint8_t *w, int64_t n, T s, T *dx) {
        const V vs = K::set1(s);
        map_store<NT>(dx, n, [&](int64_t i, int64_t k) {
            return keep<MK>(w + i, k, K::sub(ld(g + i, k, T(0)), K::mul(K::exp_nonpos(ld(y + i, k, T(0))), vs)), T(0));
        });
    }
    template <bool NT> static void log_softmax_grad_u(const T *y, const T *g, int64_t n, T s, T *dx) {
        log_softmax_grad<NT, false>(y, g, nullptr, n, s, dx);
    }

    /* ---- backward column tiles: n rows of w contiguous columns; row r of an
     * array starts at its pointer + r * its pitch (elements). Every column is
     * summed on its own lane, so a column's result depends on n only, never on
     * w or where its tile starts: tiles can be cut to fit the threads. ---- */

    /* Whether rows of a column tile (w columns at pitch px) want software
     * prefetches: not where the tile is whole rows of 8 KiB or more, one
     * stream the hardware prefetchers follow (prefetching it rows ahead was
     * too far). Interleaved A/B, Zen 4, one thread, medians, float32 axis=0:
     * (4096, 4096) logsumexp 8.91 -> 8.24 ms, log_softmax 13.96 -> 12.94 ms
     * without; (32768, 512) logsumexp 7.67 ms with, 9.26 ms without. */
    static inline bool prefetch_rows(int64_t px, int64_t w) { return px != w || w * (int64_t)sizeof(T) < 8192; }

    /* column vectors per pass: whole tiles, so that DRAM is read in rows of up
     * to 16 KiB (kernels.h); the accumulators then sit in L1 or L2 */
    enum { COL_DOT_VECS = FS_COL_TILE_BYTES / sizeof(T) / W,
           COL_PF_ROWS = 8 };    /* rows ahead to prefetch: rows are pages apart, beyond the hardware prefetchers */

    /* Per-column sum of a * b (b null: of a), in the order of dot along each
     * column: four rows as a tree, then into K::Acc (double lanes, compensated
     * for float64). Rows outside, columns inside: each pass streams the same
     * COL_DOT_VECS vectors of four rows at a time. */
    template <bool B>
    static void col_dot_t(const T *a, int64_t pa, const T *b, int64_t pb, int64_t n, int64_t w, double *sum) {
        typename K::Acc acc[COL_DOT_VECS];
        for (int64_t c0 = 0; c0 < w; c0 += COL_DOT_VECS * W) {
            const int64_t cw = w - c0 < COL_DOT_VECS * W ? w - c0 : (int64_t)COL_DOT_VECS * W;
            const T *ac = a + c0, *bc = B ? b + c0 : nullptr;
            for (int64_t v = 0; v < (cw + W - 1) / W; ++v) acc[v] = K::acc_zero();
            auto term = [&](int64_t r, int64_t c, int64_t k) {
                V va = ld(ac + r * pa + c, k, T(0));
                return B ? K::mul(va, ld(bc + r * pb + c, k, T(0))) : va;
            };
            int64_t r = 0;
            for (; r + 4 <= n; r += 4) {
                const bool pf = r + COL_PF_ROWS + 4 <= n && prefetch_rows(pa, cw);
                each_vector(cw, [&](int64_t c, int64_t k) {
                    if (pf)
                        for (int j = 0; j < 4; ++j) {
                            __builtin_prefetch(ac + (r + COL_PF_ROWS + j) * pa + c, 0, 3);
                            if (B) __builtin_prefetch(bc + (r + COL_PF_ROWS + j) * pb + c, 0, 3);
                        }
                    K::acc_add(acc[c / W], K::add(K::add(term(r, c, k), term(r + 1, c, k)),
                                                  K::add(term(r + 2, c, k), term(r + 3, c, k))));
                });
            }
            for (; r < n; ++r) each_vector(cw, [&](int64_t c, int64_t k) { K::acc_add(acc[c / W], term(r, c, k)); });
            for (int64_t v = 0; v * W < cw; ++v) {
                double d[W];
                K::acc_lanes(acc[v], d);
                for (int64_t i = 0; i < W && v * W + i < cw; ++i) sum[c0 + v * W + i] = d[i];
            }
        }
    }
    static void col_dot(const T *a, int64_t pa, const T *b, int64_t pb, int64_t n, int64_t w, double *sum) {
        if (b)
            col_dot_t<true>(a, pa, b, pb, n, w, sum);
        else
            col_dot_t<false>(a, pa, nullptr, 0, n, w, sum);
    }

    /* dx row r, lanes [c, c + k) = f(yr + c, gr + c, c, k) for n rows of w columns,
     * prefetching y and g COL_PF_ROWS rows ahead. NT: non-temporal stores after a
     * masked head up to the first aligned vector of each row, and one fence at
     * the end (not one per row). */
    template <bool NT, class F>
    static inline void col_grad_rows(const T *y, int64_t py, const T *g, int64_t pg, int64_t n, int64_t w, T *dx,
                                     int64_t pd, F f) {
        for (int64_t r = 0; r < n; ++r) {
            const T *yr = y + r * py, *gr = g + r * pg;
            const T *yp = r + COL_PF_ROWS < n ? yr + COL_PF_ROWS * py : nullptr;
            const T *gp = r + COL_PF_ROWS < n ? gr + COL_PF_ROWS * pg : nullptr;
            T *dr = dx + r * pd;
            auto at = [&](int64_t c, int64_t k) {
                if (yp) {
                    __builtin_prefetch(yp + c, 0, 3);
                    __builtin_prefetch(gp + c, 0, 3);
                }
                return f(yr + c, gr + c, c, k);
            };
            map_store<NT, decltype(at), false>(dr, w, at);
        }
        if (NT) K::stream_fence();
    }

    /* softmax: dx = y * (g - d[c]) per column */
    template <bool NT>
    static void col_softmax_grad(const T *y, int64_t py, const T *g, int64_t pg, int64_t n, int64_t w, const T *d,
                                 T *dx, int64_t pd) {
        col_grad_rows<NT>(y, py, g, pg, n, w, dx, pd, [&](const T *yc, const T *gc, int64_t c, int64_t k) {
            return K::mul(ld(yc, k, T(0)), K::sub(ld(gc, k, T(0)), ld(d + c, k, T(0))));
        });
    }

    /* log_softmax: dx = g - exp(y) * s[c] per column (y <= 0) */
    template <bool NT>
    static void col_log_softmax_grad(const T *y, int64_t py, const T *g, int64_t pg, int64_t n, int64_t w,
                                     const T *s, T *dx, int64_t pd) {
        col_grad_rows<NT>(y, py, g, pg, n, w, dx, pd, [&](const T *yc, const T *gc, int64_t c, int64_t k) {
            return K::sub(ld(gc, k, T(0)), K::mul(K::exp_nonpos(ld(yc, k, T(0))), ld(s + c, k, T(0))));
        });
    }

    /* The largest of max(y, 0) over n rows of w columns: above 0 iff some y is.
     * max(y, 0) is 0 for a NaN y (the second operand wins on every tier), so a
     * NaN never hides a positive value (a running max(acc, y) would lose it).
     * One row (n = 1, w = the length) checks a contiguous slice. */
    static T col_pos_max(const T *y, int64_t n, int64_t py, int64_t w) {
        const V zero = K::set1(T(0));
        V a0 = zero, a1 = zero;
        for (int64_t r = 0; r < n; ++r) {
            const T *yr = y + r * py;
            int64_t c = 0;
            for (; c + 2 * W <= w; c += 2 * W) {
                a0 = K::max(K::max(K::load(yr + c), zero), a0);
                a1 = K::max(K::max(K::load(yr + c + W), zero), a1);
            }
            for (; c < w; c += W) a0 = K::max(K::max(ld(yr + c, w - c < W ? w - c : (int64_t)W, T(0)), zero), a0);
        }
        return K::hmax(K::max(a0, a1));
    }

    /* y = exp(x) for x <= 0 (and NaN): the tier's exp alone, for its tests. */
    static void exp_nonpos(const T *x, int64_t n, T *y) {
        map_store<false>(y, n, [&](int64_t i, int64_t k) { return K::exp_nonpos(ld(x + i, k, T(0))); });
    }

    /* The writing kernels; the masked ones (MK) write 0 (softmax) or -inf
     * (log_softmax) where an element takes no part, whatever x holds there. */
    /* FENCE false: the caller fences its non-temporal stores once, at its end */
    template <bool NT, bool MK = false, bool FENCE = true>
    static FS_BODY void scale_store(const T *e, const uint8_t *w, int64_t n, T s, T *y) {
        const V vs = K::set1(s);
        auto f = [&](int64_t i, int64_t k) { return keep<MK>(w + i, k, K::mul(ld(e + i, k, T(0)), vs), T(0)); };
        map_store<NT, decltype(f), FENCE>(y, n, f);
    }
    template <bool NT> static void scale_store_u(const T *e, int64_t n, T s, T *y) {
        scale_store<NT, false>(e, nullptr, n, s, y);
    }

    template <bool NT, bool MK = false>
    static FS_BODY void rexp_scale_store(const T *x, const uint8_t *w, int64_t n, T m, T s, T *y) {
        const V vm = K::set1(m), vs = K::set1(s);
        map_store<NT>(y, n, [&](int64_t i, int64_t k) {
            return keep<MK>(w + i, k, K::mul(K::exp_nonpos(K::sub(ld(x + i, k, neg_inf()), vm)), vs), T(0));
        });
    }
    template <bool NT> static void rexp_scale_store_u(const T *x, int64_t n, T m, T s, T *y) {
        rexp_scale_store<NT, false>(x, nullptr, n, m, s, y);
    }

    /* (x - m) - c: x - m is exact or rounds once, and never cancels against c. */
    template <bool NT, bool MK = false, bool FENCE = true>
    static FS_BODY void shift_store(const T *x, const uint8_t *w, int64_t n, T m, T c, T *y) {
        const V vm = K::set1(m), vc = K::set1(c);
        auto f = [&](int64_t i, int64_t k) {
            return keep<MK>(w + i, k, K::sub(K::sub(ld(x + i, k, T(0)), vm), vc), neg_inf());
        };
        map_store<NT, decltype(f), FENCE>(y, n, f);
    }
    template <bool NT> static void shift_store_u(const T *x, int64_t n, T m, T c, T *y) {
        shift_store<NT, false>(x, nullptr, n, m, c, y);
    }

    /* ---- many rows of one length, pipelined ----
     * On its own each sweep of a row leaves most of the core idle: the max
     * waits on loads, the exp sweep on arithmetic, the writing sweep on stores.
     * rows() runs the max of row k, the exp sweep of row k - 1 and the writing
     * sweep of row k - 2 in one loop, so the three overlap (one Zen 5 core,
     * (8, 32000) float32: softmax 45 -> 39 us, log_softmax 79 -> 55 us). Each
     * sweep is the single-row kernels' own, step for step: the same bits.
     * y holds rows at pitch py (softmax, log_softmax) or one value per row at
     * y + r * py (logsumexp). Rows may be y's own (in place), not partly. */
    static void rows(int op, const T *x, int64_t px, T *y, int64_t py, int64_t n, int64_t nrows, int nt, int far,
                     T *stage) {
        if (far) rows_far<true>(op, x, px, y, py, n, nrows, nt, stage);
        else rows_far<false>(op, x, px, y, py, n, nrows, nt, stage);
    }
    /* FAR a template argument: in cache the loops hold no prefetch code at
     * all (a null test per step cost (64, 1000) float32 softmax 4%, Zen 4) */
    template <bool FAR> static void rows_far(int op, const T *x, int64_t px, T *y, int64_t py, int64_t n, int64_t nrows, int nt,
                                             T *stage) {
        if (op == 0)
            nt ? rows_t<0, true, false, FAR>(x, px, y, py, n, nrows, stage) : rows_t<0, false, false, FAR>(x, px, y, py, n, nrows, stage);
        else if (op == 1)
            nt ? rows_t<1, true, false, FAR>(x, px, y, py, n, nrows, stage) : rows_t<1, false, false, FAR>(x, px, y, py, n, nrows, stage);
        else
            rows_t<2, false, false, FAR>(x, px, y, py, n, nrows, stage);
    }
    /* The first sweep of a long slice (driver.cpp): nb blocks of n elements back
     * to back, each one's max and sum, as max and rexp_sum (softmax) or
     * rexp_sum_excl (with the count) give them: the same bits. It is rows()
     * without the writing sweep: block k's max, read from memory, overlaps
     * block k - 1's exps. One after the other they did not overlap: (1, 10M)
     * float32 log_softmax's first sweep on a Zen 3 core, 7.8 ms so, 5.8 ms here. */
    static void block_stats(const T *x, int64_t n, int64_t nb, BlockStats<T> st, int op) {
        if (op == 0)
            rows_t<0, false, true, true>(x, n, nullptr, 0, n, nb, nullptr, &st);
        else
            rows_t<2, false, true, true>(x, n, nullptr, 0, n, nb, nullptr, &st);
    }
    /* Rows of the softmax exp values with non-temporal output: two rows of stage
     * in turn (the one being summed, the one being scaled), each on whole lines. */
    static int64_t stage_pitch(int64_t n) { return (n + 64 / (int64_t)sizeof(T) - 1) / (64 / (int64_t)sizeof(T)) * (64 / (int64_t)sizeof(T)); }

    /* STATS: each row's max and sum (softmax's, OP 0: not stored) or sum and
     * count (logsumexp's, OP 2) go to st, and nothing is written */
    template <int OP, bool NT, bool STATS, bool FAR>
    static void rows_t(const T *x, int64_t px, T *y, int64_t py, int64_t n, int64_t nrows, T *stage,
                       const BlockStats<T> *st = nullptr) {
        constexpr bool far = FAR;
        constexpr int64_t S = 8 * W;  /* the step all three sweeps take together */
        const int64_t steady_end = n - n % S;
        constexpr bool sweeps2 = OP == 2 || STATS;  /* no writing sweep */
        const int64_t last = sweeps2 ? nrows : nrows + 1;  /* the last k: the writing sweep of the last row */
        const int64_t sp = stage_pitch(n);
        /* far: the row fetched is 16 KiB ahead of the max sweep, rounded up
         * to whole rows (one row from 16 KiB on); see next below */
        const int64_t row_bytes = n * (int64_t)sizeof(T), ahead = (PREFETCH_AHEAD_BYTES + row_bytes - 1) / row_bytes;
        T m1 = 0, m2 = 0, c2 = 0;  /* the max of rows k - 1 and k - 2; row k - 2's 1/sum or log offset */
        bool joined = false;  /* row k - 2's first line went out with row k - 3's last */
        for (int64_t k = 0; k <= last; ++k) {
            const bool a = k < nrows, b = k >= 1 && k <= nrows, c = !sweeps2 && k >= 2;
            const T *xa = x + (a ? k : 0) * px, *xb = x + (b ? k - 1 : 0) * px, *xc = x + (c ? k - 2 : 0) * px;
            T *yb = y + (b ? k - 1 : 0) * py, *yc = y + (c ? k - 2 : 0) * py;
            /* softmax's exp values: in y itself, or in stage (if given: always
             * with NT), to be written once */
            T *eb = OP == 0 && stage ? stage + ((k - 1) & 1) * sp : yb;
            const T *ec = OP == 0 && stage ? stage + ((k - 2) & 1) * sp : yc;
            /* the writing sweep starts at row k - 2's first whole line of y, so that
             * its stores (all of them in the steady state) are aligned */
            int64_t h = (int64_t)((64 - (uintptr_t)yc % 64) % 64 / sizeof(T));
            if (h > n) h = n;
            auto write = [&](int64_t i, int64_t len) {  /* y[i, i + len) of row k - 2; fenced once, at the end */
                if constexpr (OP == 0) scale_store<NT, false, false>(ec + i, nullptr, len, c2, yc + i);
                if constexpr (OP == 1) shift_store<NT, false, false>(xc + i, nullptr, len, m2, c2, yc + i);
            };
            MaxSweep<false> sa;
            ExpStoreSweep<false, !STATS> sb(m1);
            SumExclSweep<false> sx(m1);
            /* far: row k's max runs ha elements ahead (from its first whole
             * vector), so it leaves the joint steps before it would pass the
             * row's end. In cache the split loads cost less than the extra steps:
             * (12, 512, 512) float32 took 7% longer with them. */
            const int64_t ha = a && far ? sa.head(xa, nullptr, n) : 0, max_end = (n - ha) - (n - ha) % S;
            int64_t j = 0, ja = 0, cw = joined ? h : 0;  /* ja: row k's max is done up to ha + ja; cw: row k - 2 is written up to here */
            /* the joint steps whenever the exp sweep has a partner, at the first
             * and last rows too: a thread's share of 2 or 4 long rows is mostly
             * those (one Zen 4 core, float32, medians: 2 rows of 128256 softmax
             * 67.6 -> 57.9 us, log_softmax 87 -> 72 us; 4 rows of 32000
             * log_softmax 44 -> 41 us) */
            if (b && (a || c)) {
                const V vm2 = K::set1(m2), vc2 = K::set1(c2);
                /* far (x far larger than the caches, so it comes from memory): row
                 * k + ahead is fetched while row k is read, step by step, then the
                 * part of it past the steps (below). One row ahead, short rows came
                 * in too late; ahead without the rest of each row, rows with a
                 * rest (n % 8W) ran slower than before, up to 1.4x. Both, one Zen 4
                 * core, float32 softmax of 64 MiB (in-process A/B, medians): rows
                 * of 576 8.5 -> 5.7 ms, 1000 7.9 -> 5.6 ms, 1500 6.3 -> 4.8 ms,
                 * (16, 8, 512, 512) 13.8 -> 11.3 ms, log_softmax and logsumexp
                 * of rows of 1000 -22% and -25%; rows of 16 KiB (one row ahead
                 * either way) and rows of 160 or 320 unchanged. Two threads
                 * gain about as much. Into L1, one row ahead: 1.15-1.45x slower. */
                const T *next = far && k + ahead < nrows ? x + (k + ahead) * px : nullptr;
                if (c && cw < h) write(0, h);
                cw = h;
                for (; j < steady_end; j += S) {
                    if (a && j < max_end) {
                        sa.four(xa, nullptr, ha + j);
                        sa.four(xa, nullptr, ha + j + 4 * W);
                        ja = j + S;
                    }
                    if constexpr (OP == 0)
                        sb.eight(xb, nullptr, j, eb, next);
                    else {
                        sx.four(xb, nullptr, j, next);
                        sx.four(xb, nullptr, j + 4 * W, next);
                    }
                    if (c && cw + S <= n) {
                        for (int64_t i = cw; i < cw + S; i += W) {
                            const V v = OP == 0 ? K::mul(K::load(ec + i), vc2) : K::sub(K::sub(K::load(xc + i), vm2), vc2);
                            if (NT) K::store_stream(yc + i, v); else K::store(yc + i, v);
                        }
                        cw += S;
                    }
                }
                if (next) {  /* the steps fetched row k + ahead up to steady_end: now the rest */
                    for (int64_t b = steady_end * (int64_t)sizeof(T); b < row_bytes; b += 64) __builtin_prefetch((const char *)next + b, 0, 2);
                    __builtin_prefetch((const char *)next + row_bytes - 1, 0, 2);  /* its last line, if the row starts mid-line */
                }
            }
            /* the rest of each sweep (all of it outside the steady state) */
            const T m0 = a ? sa.finish(xa, nullptr, ha + ja, n) : T(0);
            T c1 = 0;
            if (b) {
                if constexpr (OP == 0) {
                    const double sum = sb.finish(xb, nullptr, j, n, eb, nullptr);
                    if constexpr (STATS) {
                        st->m[k - 1] = m1;
                        st->sum[k - 1] = sum;
                        st->count[k - 1] = 0;
                    } else {
                        c1 = (T)(1.0 / sum);
                    }
                } else {
                    double count;
                    const double rest = sx.finish(xb, nullptr, j, n, nullptr, &count);
                    if constexpr (OP == 1) {
                        c1 = (T)fs_log_softmax_offset(m1, rest, count);
                    } else if constexpr (STATS) {
                        st->m[k - 1] = m1;
                        st->sum[k - 1] = rest;
                        st->count[k - 1] = count;
                    } else {
                        *yb = (T)((double)m1 + fs_log_sum(rest, count));
                    }
                }
            }
            /* NT, y rows back to back: the line that row k - 2 ends in and row
             * k - 1 starts in is written whole, with one streaming store, now
             * that row k - 1's offset c1 is known. Its two parts written apart
             * with plain stores each read the line from memory: (16384, 1024)
             * float32 with y 16 bytes past a line took 4.7 ms so, 3.5 ms joined. */
            const int64_t r = (int64_t)((uintptr_t)(yc + n) % 64 / sizeof(T));  /* row k - 2's part */
            const bool join = NT && c && b && yc + n == yb && r != 0;
            if (join) {
                constexpr int64_t L = 64 / sizeof(T);
                alignas(64) T line[L];
                for (int64_t i = 0; i < r; ++i) line[i] = OP == 0 ? ec[n - r + i] * c2 : (xc[n - r + i] - m2) - c2;
                for (int64_t i = r; i < L; ++i) line[i] = OP == 0 ? eb[i - r] * c1 : (xb[i - r] - m1) - c1;
                write(cw, n - r - cw);
                for (int64_t i = 0; i < L; i += W) K::store_stream(yc + n - r + i, K::load(line + i));
            } else if (c) {
                write(cw, n - cw);
            }
            joined = join;
            m2 = m1;
            m1 = m0;
            c2 = c1;
        }
        /* one fence for all the streaming stores: one per row cost (65536, 1024) float32
         * log_softmax 18.3 -> 17.1 ms, one Zen 5 core */
        if (NT) K::stream_fence();
    }

    /* ---- many short rows (n <= 8W): each row stays in registers ---- */

    /* e[0] = the sum of e[0..NV) as a tree (NV known at compile time: unrolled) */
    template <int NV> static inline V tree_sum(V *e) {
        for (int s = 1; s < NV; s *= 2)
            for (int i = 0; i + s < NV; i += 2 * s) e[i] = K::add(e[i], e[i + s]);
        return e[0];
    }

    /* B blocks of W short rows at once, transposed (vector layers with
     * K::TRANSPOSE > 0). The row path below spends most of a short row on steps
     * across lanes (hmax, hadd, a scalar division) that wait on one another.
     * Here W rows are loaded and transposed in W x W blocks, so lane r of c[j]
     * holds row r's element j: the max, the exps, the sums and the reciprocal
     * each take one vector operation for W rows. Every lane repeats its row's
     * arithmetic: the max and the sums pair elements as the row path does
     * (tree_sum over vectors, then hmax_cols / hadd_cols, which mirror hmax /
     * hadd), the last vector's fill included (softmax's fill columns add 0;
     * the log sums' fill terms are the same in each column, so computed once).
     * So a row gets the row path's bits whichever path it takes, and the split
     * of rows between threads cannot change them.
     * A block alone is one long chain (load, max, exp, sum, divide, store)
     * of more operations than the out-of-order window holds, so B blocks go
     * through each stage in turn: the stages' work is independent across
     * blocks. op as small_rows_nv; rows at x + r * px, results at y + r * py. */
    template <int NV, int B> static FS_BODY void small_blocks(int op, const T *x, int64_t px, T *y, int64_t py, int64_t n) {
        enum { NC = NV * W };
        const int64_t tail = n - (int64_t)(NV - 1) * W;
        const V fill = K::set1(neg_inf());
        V c[B][NC], e[B][NC], m[B];
        for (int b = 0; b < B; ++b) {
            const T *xb = x + b * W * px;
            for (int i = 0; i < NV; ++i) {
                for (int r = 0; r < W; ++r)
                    c[b][i * W + r] = i + 1 < NV ? K::load(xb + r * px + i * W) : ld(xb + r * px + i * W, tail, neg_inf());
                K::transpose(c[b] + i * W);
            }
            V mc[W];
            for (int l = 0; l < W; ++l) {
                mc[l] = c[b][l];
                for (int i = 1; i < NV; ++i) mc[l] = K::max(mc[l], c[b][i * W + l]);
            }
            m[b] = K::hmax_cols(mc);
        }
        /* lane r: the row path's K::hadd(tree_sum<NV>(e)) of row r */
        auto row_sums = [&](const V *eb) {
            V s[W];
            for (int l = 0; l < W; ++l) {
                V t[NV];
                for (int i = 0; i < NV; ++i) t[i] = eb[i * W + l];
                s[l] = tree_sum<NV>(t);
            }
            return K::hadd_cols(s);
        };
        /* o[j] (columns) back into rows, stored */
        auto store_rows = [&](T *yb, V *o) {
            for (int i = 0; i < NV; ++i) {
                K::transpose(o + i * W);
                for (int r = 0; r < W; ++r) {
                    if (i + 1 < NV) K::store(yb + r * py + i * W, o[i * W + r]);
                    else K::store_part(yb + r * py + i * W, o[i * W + r], tail);
                }
            }
        };
        /* Columns go in groups of four, a group's exps behind one test for
         * the fast exp (the same bits as exp_nonpos); columns past n hold the
         * fill. */
        if (op == 0) {  /* softmax */
            const V zero = K::set1(T(0));  /* the fill adds 0, as in the row path */
            for (int b = 0; b < B; ++b) {
                for (int j = 0; j < NC; j += 4) {
                    if (j >= n) {
                        e[b][j] = e[b][j + 1] = e[b][j + 2] = e[b][j + 3] = zero;
                        continue;
                    }
                    /* a group that ends in the fill tests only its columns before n
                     * (the others take x = m there) */
                    V g[4];
                    exp4(c[b][j], j + 1 < n ? c[b][j + 1] : m[b], j + 2 < n ? c[b][j + 2] : m[b],
                         j + 3 < n ? c[b][j + 3] : m[b], m[b], g);
                    for (int k = 0; k < 4; ++k) e[b][j + k] = j + k < n ? g[k] : zero;
                }
            }
            V inv[B];
            for (int b = 0; b < B; ++b) inv[b] = K::div(K::set1(T(1)), row_sums(e[b]));
            for (int b = 0; b < B; ++b) {
                for (int k = 0; k < NC; ++k) e[b][k] = K::mul(e[b][k], inv[b]);
                store_rows(y + b * W * py, e[b]);
            }
            return;
        }
        /* log_softmax, logsumexp: the terms and count of small_rows_nv's log1p sums */
        V cnt[B];
        for (int b = 0; b < B; ++b) {
            const V mb = m[b], neg_m = K::sub(K::set1(T(0)), mb);
            const typename K::M qpad = K::eq_mask(fill, mb);  /* m == -inf counts the fill, as the row path does */
            const V pad = term<true>(fill, K::sub(fill, mb), neg_m, qpad);
            V cb = K::set1(T(0));
            for (int j = 0; j < NC; j += 4) {
                if (j >= n) {
                    e[b][j] = e[b][j + 1] = e[b][j + 2] = e[b][j + 3] = pad;
                    cb = K::add_one(K::add_one(K::add_one(K::add_one(cb, qpad), qpad), qpad), qpad);
                    continue;
                }
                const V *cj = c[b] + j;
                const V t0 = K::sub(cj[0], mb), t1 = K::sub(cj[1], mb), t2 = K::sub(cj[2], mb), t3 = K::sub(cj[3], mb);
                const typename K::M q0 = K::eq_mask(cj[0], mb), q1 = K::eq_mask(cj[1], mb);
                const typename K::M q2 = K::eq_mask(cj[2], mb), q3 = K::eq_mask(cj[3], mb);
                V *ej = e[b] + j;
                if (K::template exp_fast_ok<true>(t0, t1, t2, t3)) {
                    ej[0] = term<true, true>(cj[0], t0, neg_m, q0), ej[1] = term<true, true>(cj[1], t1, neg_m, q1);
                    ej[2] = term<true, true>(cj[2], t2, neg_m, q2), ej[3] = term<true, true>(cj[3], t3, neg_m, q3);
                } else {
                    ej[0] = term<true>(cj[0], t0, neg_m, q0), ej[1] = term<true>(cj[1], t1, neg_m, q1);
                    ej[2] = term<true>(cj[2], t2, neg_m, q2), ej[3] = term<true>(cj[3], t3, neg_m, q3);
                }
                cb = K::add_one(K::add_one(cb, q0), q1);
                cb = K::add_one(K::add_one(cb, q2), q3);
            }
            cnt[b] = cb;
        }
        T sums[B][W], counts[B][W], ms[B][W], off[B][W];
        for (int b = 0; b < B; ++b) {
            K::store(sums[b], row_sums(e[b]));
            K::store(counts[b], cnt[b]);
            K::store(ms[b], m[b]);
        }
        /* the row path's log1p, lane for lane */
        double rest[B * W];
        for (int b = 0; b < B; ++b)
            for (int r = 0; r < W; ++r) rest[b * W + r] = (double)sums[b][r] * unscale + ((double)counts[b][r] - 1.0);
        log1p_rows<B * W>(rest);
        for (int b = 0; b < B; ++b)
            for (int r = 0; r < W; ++r) {
                if (op == 2)  /* logsumexp */
                    y[(b * W + r) * py] = (T)((double)ms[b][r] + rest[b * W + r]);
                else
                    off[b][r] = ms[b][r] == __builtin_inf() ? opaque_nan() : (T)rest[b * W + r];
            }
        if (op == 2) return;
        for (int b = 0; b < B; ++b) {
            const V vo = K::load(off[b]);
            for (int k = 0; k < NC; ++k) e[b][k] = K::sub(K::sub(c[b][k], m[b]), vo);
            store_rows(y + b * W * py, e[b]);
        }
    }

    /* MK: row r's mask bytes at w + r * pw (see keep()). */
    template <int NV, bool MK> static void small_rows_nv(int op, const T *x, int64_t px, const uint8_t *w, int64_t pw,
                                                         T *y, int64_t py, int64_t n, int64_t rows) {
        const int64_t tail = n - (int64_t)(NV - 1) * W;
        /* row r's vectors and mask, and kp: the lanes of wk that take no part set to fill (MK only) */
        auto load = [&](const T *xr, const uint8_t *wr, V *v, typename K::M *wk) {
            for (int i = 0; i < NV; ++i) v[i] = i + 1 < NV ? K::load(xr + i * W) : K::load_part(xr + i * W, tail, neg_inf());
            if constexpr (MK)
                for (int i = 0; i < NV; ++i) wk[i] = i + 1 < NV ? K::mask_load(wr + i * W) : K::mask_load_part(wr + i * W, tail);
        };
        auto kp = [&](const typename K::M *wk, int i, V a, T fill) {
            if constexpr (MK) return K::select(wk[i], a, K::set1(fill));
            else return a;
        };
        auto row_max = [&](const V *v, const typename K::M *wk) {
            V mv = kp(wk, 0, v[0], neg_inf());
            for (int i = 1; i < NV; ++i) mv = K::max(mv, kp(wk, i, v[i], neg_inf()));
            return K::hmax(mv);
        };
        /* rows of at most K::TRANSPOSE vectors and shorter than two:
         * longer ones, and two whole vectors, ran no faster transposed.
         * Interleaved A/B on a Zen 3 core, AVX2, 100000 rows: float32 n = 4
         * 1.67 -> 0.97 ms, n = 10 2.05 -> 1.43 ms, n = 12 2.01 -> 1.69 ms;
         * float64 n = 2 1.78 -> 1.09 ms; but float32 n = 16 1.61 -> 2.26 ms,
         * and in L2 n >= 24 up to 1.3x slower. On a Zen 4 core, AVX-512
         * float32 (W = 16): n = 4 0.84 -> 0.45 ms, n = 10 0.84 -> 0.58 ms,
         * n = 16 0.77 -> 0.66 ms, but n = 20 1.27 -> 1.87 ms (TRANSPOSE = 1). */
        if constexpr (!MK && NV <= K::TRANSPOSE) {
            if (n < 2 * W) {
                enum { B = 4 };
                for (; rows >= B * W; rows -= B * W, x += B * W * px, y += B * W * py) small_blocks<NV, B>(op, x, px, y, py, n);
                for (; rows >= W; rows -= W, x += W * px, y += W * py) small_blocks<NV, 1>(op, x, px, y, py, n);
            }
        }
        if (op == 0) {  /* softmax */
            const typename K::M fill_out = K::first_mask(tail);
            /* Pipelined: the next row's max is taken while this row's exps
             * run, so its load -> max -> hmax chain is off the critical path
             * (a row waits on max, exp, sum, 1 / sum in turn); each row is
             * loaded again on its own turn, from L1, rather than kept in
             * registers beside this row's exps. One Zen 4
             * core, AVX-512, medians, ns a row before -> after: float32 rows
             * of 32: 11.9 -> 9.2; 48: 14.6 -> 12.1; 64: 20.8 -> 19.0; 100:
             * 46.1 -> 44.0; 128: 47.3 -> 46.4; float64 of 128: 57.8 -> 55.8. */
            T m_next = neg_inf();
            if (rows > 0) {
                V v[NV];
                typename K::M wk[NV];
                load(x, w, v, wk);
                m_next = row_max(v, wk);
            }
            for (int64_t r = 0; r < rows; ++r, x += px, y += py, w += MK ? pw : 0) {
                V v[NV], e[NV], s[NV];
                typename K::M wk[NV];
                load(x, w, v, wk);
                const V mv = K::set1(m_next);
                if (r + 1 < rows) {
                    V vn[NV];
                    typename K::M wkn[NV];
                    load(x + px, w + (MK ? pw : 0), vn, wkn);
                    m_next = row_max(vn, wkn);
                }
                for (int i = 0; i < NV; ++i) e[i] = kp(wk, i, K::exp_nonpos(K::sub(v[i], mv)), T(0));
                /* the fill adds 0, as with a mask: exp(-inf - m) would be a NaN
                 * of its own where m is -inf (a NaN the max passed over), and
                 * which of two NaNs a sum passes on is the compiler's choice */
                if constexpr (!MK)
                    if (tail < W) e[NV - 1] = K::select(fill_out, e[NV - 1], K::set1(T(0)));
                for (int i = 0; i < NV; ++i) s[i] = e[i];
                const V inv = K::set1(T(1) / K::hadd(tree_sum<NV>(s)));  /* a tree of <= 8W terms: T is enough */
                for (int i = 0; i < NV; ++i) {
                    if (i + 1 < NV) K::store(y + i * W, kp(wk, i, K::mul(e[i], inv), T(0)));
                    else K::store_part(y + i * W, kp(wk, i, K::mul(e[i], inv), T(0)), tail);
                }
            }
            return;
        }
        /* log_softmax, logsumexp: G rows' sums, then their log1p, then their
         * outputs (x read again, from L1). One row at a time, each row waited on
         * its own log1p: (100000, 10) float32 log_softmax took 33 ns a row
         * against 7 for softmax. */
        enum { G = 16 };
        for (int64_t r0 = 0; r0 < rows; r0 += G) {
            const int64_t g_n = rows - r0 < G ? rows - r0 : (int64_t)G;
            T ms[G] = {};  /* (all g_n set below; GCC could not tell) */
            double rest[G] = {};
            for (int64_t g = 0; g < g_n; ++g) {
                V v[NV], e[NV];
                typename K::M wk[NV];
                load(x + g * px, w + (MK ? g * pw : 0), v, wk);
                const T m = row_max(v, wk);
                const V mv = K::set1(m), neg_m = K::sub(K::set1(T(0)), mv);
                int64_t c = 0;
                for (int i = 0; i < NV; ++i) {
                    const typename K::M eq = K::eq_mask(kp(wk, i, v[i], T(__builtin_nan(""))), mv);
                    e[i] = kp(wk, i, term<true>(v[i], K::sub(v[i], mv), neg_m, eq), T(0));
                    c += K::count(eq);
                }
                ms[g] = m;
                rest[g] = (double)K::hadd(tree_sum<NV>(e)) * unscale + ((double)c - 1.0);
            }
            log1p_rows<G>(rest);  /* all G: the unused ones are 0 */
            if (op == 2)  /* logsumexp */
                for (int64_t g = 0; g < g_n; ++g) y[g * py] = (T)((double)ms[g] + rest[g]);
            if (op != 2) {
                for (int64_t g = 0; g < g_n; ++g) {
                    V v[NV];
                    typename K::M wk[NV];
                    load(x + g * px, w + (MK ? g * pw : 0), v, wk);
                    const V mv = K::set1(ms[g]);
                    const V off = K::set1(ms[g] == __builtin_inf() ? opaque_nan() : (T)rest[g]);
                    T *yr = y + g * py;
                    for (int i = 0; i < NV; ++i) {
                        V o = kp(wk, i, K::sub(K::sub(v[i], mv), off), neg_inf());
                        if (i + 1 < NV) K::store(yr + i * W, o);
                        else K::store_part(yr + i * W, o, tail);
                    }
                }
            }
            x += G * px;
            y += G * py;
            if constexpr (MK) w += G * pw;
        }
    }

    template <bool MK> static FS_BODY void small_rows_t(int op, const T *x, int64_t px, const uint8_t *w, int64_t pw,
                                                       T *y, int64_t py, int64_t n, int64_t rows) {
        switch ((n + W - 1) / W) {
        case 1: small_rows_nv<1, MK>(op, x, px, w, pw, y, py, n, rows); break;
        case 2: small_rows_nv<2, MK>(op, x, px, w, pw, y, py, n, rows); break;
        case 3: small_rows_nv<3, MK>(op, x, px, w, pw, y, py, n, rows); break;
        case 4: small_rows_nv<4, MK>(op, x, px, w, pw, y, py, n, rows); break;
        case 5: small_rows_nv<5, MK>(op, x, px, w, pw, y, py, n, rows); break;
        case 6: small_rows_nv<6, MK>(op, x, px, w, pw, y, py, n, rows); break;
        case 7: small_rows_nv<7, MK>(op, x, px, w, pw, y, py, n, rows); break;
        default: small_rows_nv<8, MK>(op, x, px, w, pw, y, py, n, rows); break;
        }
    }
    static void small_rows(int op, const T *x, int64_t px, T *y, int64_t py, int64_t n, int64_t rows) {
        small_rows_t<false>(op, x, px, nullptr, 0, y, py, n, rows);
    }
    static void small_rows_w(int op, const T *x, int64_t px, const uint8_t *w, int64_t pw, T *y, int64_t py, int64_t n,
                             int64_t rows) {
        small_rows_t<true>(op, x, px, w, pw, y, py, n, rows);
    }

    /* ---- column tiles: n rows of w <= COL_TILE contiguous columns, row r at
     * x + r * px. Rows outside, columns inside: each row segment is read as
     * one contiguous stream; per-column state lives in small arrays (L1, or
     * L2 for tiles of FS_COL_TILE_BYTES). ---- */

    /* Masked column kernels (MK): row r's mask bytes for the tile's columns are
     * at mk + r * pk (pk may be 0: one mask row for every row). */
    static void col_max(const T *x, int64_t n, int64_t px, int64_t w, T *m) {
        col_max_t<false>(x, n, px, w, nullptr, 0, m);
    }
    static void col_max_w(const T *x, int64_t n, int64_t px, int64_t w, const uint8_t *mk, int64_t pk, T *m) {
        col_max_t<true>(x, n, px, w, mk, pk, m);
    }
    template <bool MK>
    static FS_BODY void col_max_t(const T *x, int64_t n, int64_t px, int64_t w, const uint8_t *mk, int64_t pk, T *m) {
        for (int64_t g0 = 0; g0 < w; g0 += 4 * W) {
            int64_t k[4];
            V acc[4];
            for (int j = 0; j < 4; ++j) {
                const int64_t left = w - g0 - j * W;
                k[j] = left < 0 ? 0 : left > W ? (int64_t)W : left;
                acc[j] = K::set1(neg_inf());
            }
            int64_t r = 0;
            if (!MK && k[3] == W)  /* a whole group: plain loads, no lane count to check */
                for (; r < n; ++r) {
                    const T *xr = x + r * px + g0;
                    if (r + COL_PREFETCH_ROWS < n)
                        for (int j = 0; j < 4; ++j) __builtin_prefetch(xr + COL_PREFETCH_ROWS * px + j * W, 0, 3);
                    for (int j = 0; j < 4; ++j) acc[j] = K::max(acc[j], K::load(xr + j * W));
                }
            for (; r < n; ++r) {
                /* Rows are pages apart, beyond the hardware prefetchers' reach. */
                if (r + COL_PREFETCH_ROWS < n)
                    for (int j = 0; j < 4; ++j)
                        if (k[j]) __builtin_prefetch(x + (r + COL_PREFETCH_ROWS) * px + g0 + j * W, 0, 3);
                for (int j = 0; j < 4; ++j)
                    if (k[j])
                        acc[j] = K::max(acc[j], keep<MK>(mk + r * pk + g0 + j * W, k[j],
                                                         ld(x + r * px + g0 + j * W, k[j], neg_inf()), neg_inf()));
            }
            for (int j = 0; j < 4; ++j)
                if (k[j]) st(m + g0 + j * W, acc[j], k[j]);
        }
    }

    /* What col_sum's e() reads and writes for unmasked x: x, and y at pitch py
     * if the exps are stored (y not null). With col_sum's count, e() gives the
     * exact terms over x != m (col_excl4), else plain exps (col_exp4). */
    struct ColExp {
        const T *x;
        T *y;
        int64_t py;
    };
    /* Four rows from xr (pitch px) of one whole vector of columns: their exps
     * (stored if yr), tree-added into acc. e() in col_sum's order with the same
     * bits, but one exp test for the four vectors, as ExpStoreSweep::four, and
     * no lane count to check: (1000, 64) float32 tiles in L2, Zen 3, took 30%
     * less time than through e(). */
    static FS_BODY void col_exp4(const T *xr, int64_t px, T *yr, int64_t py, V mv, typename K::Acc &acc) {
        V e[4];
        exp4(K::load(xr), K::load(xr + px), K::load(xr + 2 * px), K::load(xr + 3 * px), mv, e);
        if (yr) {
            K::store(yr, e[0]);
            K::store(yr + py, e[1]);
            K::store(yr + 2 * py, e[2]);
            K::store(yr + 3 * py, e[3]);
        }
        K::acc_add(acc, K::add(K::add(e[0], e[1]), K::add(e[2], e[3])));
    }

    /* col_exp4 for the exact sums over x != m: e() of col_rexp_sum_t,
     * four rows at a time with one exp test (the same bits: term() gives the
     * same value every way). */
    static FS_BODY void col_excl4(const T *xr, int64_t px, V mv, V &cnt, typename K::Acc &acc) {
        const V nm = K::sub(K::set1(T(0)), mv);
        V xv[4], t[4], e[4];
        typename K::M eq[4];
        for (int j = 0; j < 4; ++j) {
            xv[j] = K::load(xr + j * px);
            t[j] = K::sub(xv[j], mv);
            eq[j] = K::eq_mask(xv[j], mv);
            cnt = K::add_one(cnt, eq[j]);
        }
        if (K::template exp_fast_ok<true>(t[0], t[1], t[2], t[3]))
            for (int j = 0; j < 4; ++j) e[j] = term<true, true>(xv[j], t[j], nm, eq[j]);
        else
            for (int j = 0; j < 4; ++j) e[j] = term<true>(xv[j], t[j], nm, eq[j]);
        K::acc_add(acc, K::add(K::add(e[0], e[1]), K::add(e[2], e[3])));
    }

    /* Column sums, four vectors of columns at a time: four rows are added as a
     * tree, then into K::Acc per vector, as in rexp_store; the order depends only
     * on n. e(r, c, k, mv, cnt) returns row r's exp values at lanes [c, c+k)
     * (and may add to cnt). nx (or null): the next block, see col_sum_rows.
     * pe (or null): x is unmasked (ColExp), so whole groups of four vectors
     * take col_excl4 (with count) or col_exp4. */
    template <bool MK, class F>
    static inline void col_sum(int64_t n, int64_t px, int64_t w, const T *m, double *sum, double *count, F e,
                               const ColNext<T> *nx, int64_t pk, const ColExp *pe = nullptr) {
        if (nx && nx->m) return col_sum_rows<MK>(n, px, w, m, sum, count, e, nx, pk, pe);
        /* the next short tile (nx, m null) goes to L2 a line per four rows
         * and group, while the exps keep the core busy: its max sweep then
         * reads from L2, not DRAM */
        const T *pf = nx ? nx->x : nullptr;
        const int64_t pfn = nx && nx->n < n ? nx->n : n, pfw = nx ? nx->w : 0;
        auto prefetch4 = [&](int64_t r, int64_t c) {
            if (pf && c < pfw && r + 4 <= pfn && (c * (int64_t)sizeof(T)) % 64 == 0)
                for (int64_t i = 0; i < 4; ++i) __builtin_prefetch(pf + (r + i) * px + c, 0, 2);
        };
        for (int64_t g0 = 0; g0 < w; g0 += 4 * W) {
            int64_t k[4];
            V mv[4], cnt[4];
            typename K::Acc acc[4];
            for (int j = 0; j < 4; ++j) {
                const int64_t left = w - g0 - j * W;
                k[j] = left < 0 ? 0 : left > W ? (int64_t)W : left;
                mv[j] = k[j] ? ld(m + g0 + j * W, k[j], T(0)) : K::set1(T(0));
                cnt[j] = K::set1(T(0));
                acc[j] = K::acc_zero();
            }
            int64_t r = 0;
            if (pe && k[3] == W && count)
                for (; r + 4 <= n; r += 4)
                    for (int j = 0; j < 4; ++j) {
                        prefetch4(r, g0 + j * W);
                        col_excl4(pe->x + r * px + g0 + j * W, px, mv[j], cnt[j], acc[j]);
                    }
            if (pe && k[3] == W && !count)
                for (; r + 4 <= n; r += 4)
                    for (int j = 0; j < 4; ++j) {
                        const int64_t c = g0 + j * W;
                        prefetch4(r, c);
                        col_exp4(pe->x + r * px + c, px, pe->y ? pe->y + r * pe->py + c : nullptr, pe->py, mv[j], acc[j]);
                    }
            for (; r + 4 <= n; r += 4)
                for (int j = 0; j < 4; ++j)
                    if (k[j]) {
                        const int64_t c = g0 + j * W;
                        V e0 = e(r, c, k[j], mv[j], cnt[j]), e1 = e(r + 1, c, k[j], mv[j], cnt[j]);
                        V e2 = e(r + 2, c, k[j], mv[j], cnt[j]), e3 = e(r + 3, c, k[j], mv[j], cnt[j]);
                        K::acc_add(acc[j], K::add(K::add(e0, e1), K::add(e2, e3)));
                    }
            for (; r < n; ++r)
                for (int j = 0; j < 4; ++j)
                    if (k[j]) K::acc_add(acc[j], e(r, g0 + j * W, k[j], mv[j], cnt[j]));
            for (int j = 0; j < 4 && k[j]; ++j) {
                double d[W];
                K::acc_lanes(acc[j], d);
                for (int64_t i = 0; i < k[j]; ++i) sum[g0 + j * W + i] = d[i];
                if (count) {
                    K::to_double(cnt[j], d);
                    for (int64_t i = 0; i < k[j]; ++i) count[g0 + j * W + i] = d[i];
                }
            }
        }
    }

    /* col_sum's additions, in the same order, row-major, with the accumulators
     * in L1 or L2: each row of the tile is read as one stream, and the next block nx
     * (its rows read by nobody yet) has its column max (in col_max's order)
     * taken in the same loop, so its DRAM reads overlap this block's exps.
     * Tile rows are pages apart, so the hardware prefetchers restart at every
     * row: nx's rows are prefetched COL_AHEAD ahead (reading a 4 KiB-wide tile
     * of a DRAM array on a Zen 3 core: 4.4 ms without, 2.4 ms with, 2.0 ms for
     * the same bytes read in order; a Zen 4 core gains from whole rows, see
     * kernels.h). */
    template <bool MK, class F>
    static inline void col_sum_rows(int64_t n, int64_t px, int64_t w, const T *m, double *sum, double *count, F e,
                                    const ColNext<T> *nx, int64_t pk, const ColExp *pe) {
        enum { NV = FS_COL_TILE_BYTES / sizeof(T) / W };
        typename K::Acc acc[NV];
        V cnt[NV], nmax[NV];
        const int64_t nv = (w + W - 1) / W, nn = nx ? nx->n : 0, ahead = nx && prefetch_rows(px, w) ? nx->ahead : 0;
        const T *nxx = nx ? nx->x : nullptr;
        const uint8_t *nmk = nx ? nx->mk : nullptr;
        for (int64_t v = 0; v < nv; ++v) {
            acc[v] = K::acc_zero();
            cnt[v] = K::set1(T(0));
            nmax[v] = K::set1(neg_inf());
        }
        int64_t r = 0;
        if (!MK && pe && !pe->y && w % W == 0) {
            /* Unmasked whole vectors: four rows' terms behind one exp test
             * (col_exp4, col_excl4: the same bits as e()), and nx's rows
             * COL_AHEAD ahead fetched into L2 (tiles of whole rows: within
             * nx; narrower ones: up to `ahead`). The hardware prefetchers
             * alone left DRAM idle while the exps ran, and fetching into L1
             * was too far ahead. Zen 4, one thread, float32 axis=0 softmax,
             * medians, with blocks of 128 rows (driver.cpp): (4096, 4096)
             * 11.7 -> 8.8 ms (log_softmax 13.1 -> 11.6, logsumexp 8.1 -> 6.5);
             * tiles narrower than their rows, (2048, 16384) 21.4 -> 18.2 ms,
             * (8192, 1024) 7.4 -> 6.6 ms. */
            const int64_t pf_end = ahead ? ahead : nn;
            for (; r + 4 <= n; r += 4) {
                const int64_t rn = nn - r < 4 ? nn - r : 4;
                for (int64_t v = 0; v < nv; ++v) {
                    const int64_t c = v * W;
                    if (rn > 0) {
                        for (int64_t j = 0; j < 4; ++j)
                            if (r + COL_AHEAD + j < pf_end) __builtin_prefetch(nxx + (r + COL_AHEAD + j) * px + c, 0, 2);
                        const T *xr = nxx + r * px + c;
                        V a = nmax[v];
                        for (int64_t j = 0; j < rn; ++j) a = K::max(a, K::load(xr + j * px));
                        nmax[v] = a;
                    }
                    const V mv = K::load(m + c);
                    if (count)
                        col_excl4(pe->x + r * px + c, px, mv, cnt[v], acc[v]);
                    else
                        col_exp4(pe->x + r * px + c, px, nullptr, 0, mv, acc[v]);
                }
            }
        }
        for (; r < n; r += 4) {  /* nn <= n */
            const int64_t rn = nn - r < 4 ? nn - r : 4;  /* rows of nx in this step (<= 0: none) */
            const int64_t pf = ahead - r - COL_AHEAD < 4 ? ahead - r - COL_AHEAD : 4;  /* rows to prefetch */
            each_vector(w, [&](int64_t c, int64_t k) {
                const int64_t v = c / W;
                if (rn > 0) {
                    const T *q = nxx + (r + COL_AHEAD) * px + c, *xr = nxx + r * px + c;
                    const uint8_t *mr = nmk + r * pk + c;
                    for (int64_t j = 0; j < 4; ++j)  /* unrolled: pf is 4 but near the end */
                        if (j < pf) __builtin_prefetch(q + j * px, 0, 3);
                    V a = nmax[v];
                    for (int64_t j = 0; j < 4; ++j)
                        if (j < rn) a = K::max(a, keep<MK>(mr + j * pk, k, ld(xr + j * px, k, neg_inf()), neg_inf()));
                    nmax[v] = a;
                }
                const V mv = ld(m + c, k, T(0));
                if (r + 4 <= n) {
                    V e0 = e(r, c, k, mv, cnt[v]), e1 = e(r + 1, c, k, mv, cnt[v]);
                    V e2 = e(r + 2, c, k, mv, cnt[v]), e3 = e(r + 3, c, k, mv, cnt[v]);
                    K::acc_add(acc[v], K::add(K::add(e0, e1), K::add(e2, e3)));
                } else {
                    for (int64_t j = r; j < n; ++j) K::acc_add(acc[v], e(j, c, k, mv, cnt[v]));
                }
            });
        }
        each_vector(w, [&](int64_t c, int64_t k) {
            const int64_t v = c / W;
            double d[W];
            K::acc_lanes(acc[v], d);
            for (int64_t i = 0; i < k; ++i) sum[c + i] = d[i];
            if (count) {
                K::to_double(cnt[v], d);
                for (int64_t i = 0; i < k; ++i) count[c + i] = d[i];
            }
            if (nn) st(nx->m + c, nmax[v], k);
        });
    }

    /* next: only a next tile to prefetch (m null), or null */
    static void col_rexp_store(const T *x, int64_t n, int64_t px, int64_t w, const T *m, T *y, int64_t py,
                               double *sum, const ColNext<T> *next) {
        col_rexp_store_t<false>(x, n, px, w, nullptr, 0, m, y, py, sum, next);
    }
    static void col_rexp_store_w(const T *x, int64_t n, int64_t px, int64_t w, const uint8_t *mk, int64_t pk,
                                 const T *m, T *y, int64_t py, double *sum) {
        col_rexp_store_t<true>(x, n, px, w, mk, pk, m, y, py, sum, nullptr);
    }
    template <bool MK>
    static FS_BODY void col_rexp_store_t(const T *x, int64_t n, int64_t px, int64_t w, const uint8_t *mk, int64_t pk,
                                        const T *m, T *y, int64_t py, double *sum, const ColNext<T> *next) {
        const ColExp pe = {x, y, py};
        col_sum<MK>(n, px, w, m, sum, nullptr, [&](int64_t r, int64_t c, int64_t k, V mv, V &) {
            V e = keep<MK>(mk + r * pk + c, k, K::exp_nonpos(K::sub(ld(x + r * px + c, k, T(0)), mv)), T(0));
            st(y + r * py + c, e, k);
            return e;
        }, next, pk, MK ? nullptr : &pe);
    }

    /* Column sums of exp(x - m) * 2^sum_scale over x != m, and the counts of
     * x == m, each term's rounding of x - m put back (as rexp_sum_excl).
     * Without count: the plain sums of exp(x - m). */
    static void col_rexp_sum(const T *x, int64_t n, int64_t px, int64_t w, const T *m, double *sum, double *count,
                             const ColNext<T> *next) {
        col_rexp_sum_m<false>(x, n, px, w, nullptr, 0, m, sum, count, next);
    }
    static void col_rexp_sum_w(const T *x, int64_t n, int64_t px, int64_t w, const uint8_t *mk, int64_t pk,
                               const T *m, double *sum, double *count, const ColNext<T> *next) {
        col_rexp_sum_m<true>(x, n, px, w, mk, pk, m, sum, count, next);
    }
    template <bool MK>
    static FS_BODY void col_rexp_sum_m(const T *x, int64_t n, int64_t px, int64_t w, const uint8_t *mk, int64_t pk,
                                      const T *m, double *sum, double *count, const ColNext<T> *next) {
        if (!count) {  /* the plain sum of exp(x - m) (unscaled) */
            const ColExp pe = {x, nullptr, 0};
            col_sum<MK>(n, px, w, m, sum, nullptr, [&](int64_t r, int64_t c, int64_t k, V mv, V &) {
                return keep<MK>(mk + r * pk + c, k, K::exp_nonpos(K::sub(ld(x + r * px + c, k, T(0)), mv)), T(0));
            }, next, pk, MK ? nullptr : &pe);
            return;
        }
        col_rexp_sum_t<MK>(x, n, px, w, mk, pk, m, sum, count, next);
        for (int64_t c = 0; c < w; ++c) sum[c] *= unscale;
    }
    template <bool MK>
    static void col_rexp_sum_t(const T *x, int64_t n, int64_t px, int64_t w, const uint8_t *mk, int64_t pk,
                               const T *m, double *sum, double *count, const ColNext<T> *next) {
        const ColExp pe = {x, nullptr, 0};
        col_sum<MK>(n, px, w, m, sum, count, [&](int64_t r, int64_t c, int64_t k, V mv, V &cnt) {
            V xv = ld(x + r * px + c, k, T(0));
            const uint8_t *mr = mk + r * pk + c;
            const typename K::M eq = K::eq_mask(keep<MK>(mr, k, xv, T(__builtin_nan(""))), mv);
            cnt = K::add_one(cnt, eq);
            return keep<MK>(mr, k, term<true>(xv, K::sub(xv, mv), K::sub(K::set1(T(0)), mv), eq), T(0));
        }, next, pk, MK ? nullptr : &pe);
    }

    template <bool MK = false>
    static FS_BODY void col_scale(T *y, int64_t n, int64_t py, int64_t w, const uint8_t *mk, int64_t pk, const T *s) {
        for (int64_t r = 0; r < n; ++r) {
            T *yr = y + r * py;
            const uint8_t *mr = mk + r * pk;
            map_store<false>(yr, w, [&](int64_t c, int64_t k) {
                return keep<MK>(mr + c, k, K::mul(ld(yr + c, k, T(0)), ld(s + c, k, T(0))), T(0));
            });
        }
    }
    static void col_scale_u(T *y, int64_t n, int64_t py, int64_t w, const T *s) {
        col_scale<false>(y, n, py, w, nullptr, 0, s);
    }

    template <bool NT, bool MK = false>
    static FS_BODY void col_rexp_scale_store(const T *x, int64_t n, int64_t px, int64_t w, const uint8_t *mk, int64_t pk,
                                     const T *m, const T *s, T *y, int64_t py) {
        for (int64_t r = 0; r < n; ++r) {
            const T *xr = x + r * px, *next = r + 1 < n ? xr + px : nullptr;
            const uint8_t *mr = mk + r * pk;
            map_store<NT>(y + r * py, w, [&](int64_t c, int64_t k) {
                if (next) __builtin_prefetch(next + c, 0, 2);  /* one line per vector (AVX-512) or two */
                return keep<MK>(mr + c, k,
                                K::mul(K::exp_nonpos(K::sub(ld(xr + c, k, T(0)), ld(m + c, k, T(0)))), ld(s + c, k, T(0))),
                                T(0));
            });
        }
    }
    template <bool NT>
    static void col_rexp_scale_store_u(const T *x, int64_t n, int64_t px, int64_t w, const T *m, const T *s, T *y,
                                       int64_t py) {
        col_rexp_scale_store<NT, false>(x, n, px, w, nullptr, 0, m, s, y, py);
    }

    template <bool NT, bool MK = false>
    static FS_BODY void col_shift_store(const T *x, int64_t n, int64_t px, int64_t w, const uint8_t *mk, int64_t pk,
                                const T *m, const T *off, T *y, int64_t py) {
        for (int64_t r = 0; r < n; ++r) {
            const T *xr = x + r * px, *next = r + 1 < n ? xr + px : nullptr;
            const uint8_t *mr = mk + r * pk;
            map_store<NT>(y + r * py, w, [&](int64_t c, int64_t k) {
                if (next) __builtin_prefetch(next + c, 0, 2);  /* as col_rexp_scale_store */
                return keep<MK>(mr + c, k, K::sub(K::sub(ld(xr + c, k, T(0)), ld(m + c, k, T(0))), ld(off + c, k, T(0))),
                                neg_inf());
            });
        }
    }
    template <bool NT>
    static void col_shift_store_u(const T *x, int64_t n, int64_t px, int64_t w, const T *m, const T *off, T *y,
                                  int64_t py) {
        col_shift_store<NT, false>(x, n, px, w, nullptr, 0, m, off, y, py);
    }

    /* Merge a block's per-column (max bm, sum over x != bm, count of x == bm) into the
     * running (M, sum hi/lo, count), rescaling whichever side has the smaller max.
     * hi/lo are kept times 2^sum_scale (the caller unscales them once, at the
     * end), and so are the factors exp(-|M - bm|): where the sum is tiny
     * (log_softmax's result at the max), unscaled ones were subnormal and lost
     * bits. Was: a float64 column of one 0 and 2999 times -718 gave its
     * log_softmax at the 0 1446 ULP off (float32, -95: 70 ULP). */
    static void col_merge(int64_t w, const T *bm, const double *bsum, const double *bcount, T *M, double *hi,
                          double *lo, double *count) {
        const V zero = K::set1(T(0));
        const typename K::M none = K::eq_mask(zero, K::set1(T(__builtin_nan(""))));
        const double factor = 1.0 / unscale;
        each_vector(w, [&](int64_t c, int64_t k) {
            const V mo = ld(M + c, k, T(0)), b = ld(bm + c, k, T(0));
            const V d = K::sub(mo, b);
            const V t = K::sub(zero, K::max(d, K::sub(zero, d)));
            /* exp(-|M - m|) * 2^sum_scale as a term(): t = smaller - larger
             * with its rounding error put back. |M - m| reaches tens, where
             * one rounding is several ULP of the factor: a tall float32
             * column whose max stood 30 above the rest had its log_softmax at
             * the max 17 ULP off. t == d: M is the smaller (d == 0 is exact). */
            const typename K::M lo_m = K::eq_mask(t, d);
            const V e = term<true>(K::select(lo_m, mo, b), t, K::sub(zero, K::select(lo_m, b, mo)), none);
            double f[W];
            K::to_double(e, f);
            for (int64_t i = 0; i < k; ++i) {
                const int64_t j = c + i;
                if (bm[j] > M[j]) {  /* the old (sum + count) >= 1 where M is finite: normal once unscaled */
                    hi[j] = bsum[j] * factor + ((hi[j] + lo[j]) * unscale + count[j]) * f[i];
                    lo[j] = 0.0;
                    count[j] = bcount[j];
                    M[j] = bm[j];
                    continue;
                }
                const double v = bm[j] == M[j] ? bsum[j] * factor : (bsum[j] + bcount[j]) * f[i];
                if (bm[j] == M[j]) count[j] += bcount[j];
                Sum2 s = {hi[j], lo[j]};
                s.add(v);
                hi[j] = s.hi;
                lo[j] = s.lo;
            }
        });
    }

    /* constexpr: the tier tables are filled at compile time, so no code of
     * this tier runs at load time on a CPU that may lack it. */
    static constexpr KernelTable<T> table() {
        return {max, rexp_store, rexp_sum_excl,
                {scale_store_u<false>, scale_store_u<true>},
                {rexp_scale_store_u<false>, rexp_scale_store_u<true>},
                {shift_store_u<false>, shift_store_u<true>},
                SMALL_MAX, small_rows, rows, stage_pitch, block_stats, rexp_sum,
                col_max, col_rexp_store, col_rexp_sum, col_scale_u,
                {col_rexp_scale_store_u<false>, col_rexp_scale_store_u<true>},
                {col_shift_store_u<false>, col_shift_store_u<true>},
                col_merge, exp_nonpos, dot,
                {softmax_grad_u<false>, softmax_grad_u<true>},
                {log_softmax_grad_u<false>, log_softmax_grad_u<true>},
                col_dot,
                {col_softmax_grad<false>, col_softmax_grad<true>},
                {col_log_softmax_grad<false>, col_log_softmax_grad<true>},
                col_pos_max,
                /* where= */
                max_w, rexp_store_w, rexp_sum_excl_w, rexp_sum_w,
                {scale_store<false, true>, scale_store<true, true>},
                {rexp_scale_store<false, true>, rexp_scale_store<true, true>},
                {shift_store<false, true>, shift_store<true, true>},
                small_rows_w,
                col_max_w, col_rexp_store_w, col_rexp_sum_w, col_scale<true>,
                {col_rexp_scale_store<false, true>, col_rexp_scale_store<true, true>},
                {col_shift_store<false, true>, col_shift_store<true, true>},
                dot_w,
                {softmax_grad<false, true>, softmax_grad<true, true>},
                {log_softmax_grad<false, true>, log_softmax_grad<true, true>}};
    }
};
