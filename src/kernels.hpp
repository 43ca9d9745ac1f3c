/* kernels.hpp: the softmax loops, written once over a vector layer K
 * (vec_generic.hpp, vec_avx2.hpp, vec_avx512.hpp) and compiled once per tier
 * by kernels_<isa>.cpp, each inside its own namespace and with its own
 * target flags, so no instruction of one tier leaks into another.
 *
 * Row kernels keep four independent accumulators (latency of add/max/exp
 * chains); sums are taken in the vector type over chunks of 16 * 4 vectors and
 * folded into a compensated double, so the order of additions depends only on
 * n, never on threads. Column kernels keep one accumulator per column, folded
 * into a compensated double every 32 rows.
 */

template <class K> struct Kernels {
    typedef typename K::T T;
    typedef typename K::V V;
    enum { W = K::W, TILE = 4 * K::W, CHUNK = 64 * K::W, FOLD_ROWS = 32 };

    static inline T neg_inf() { return -__builtin_inf(); }

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

    static inline double hsum(V v) {
        double d[W];
        K::to_double(v, d);
        double s = 0.0;
        for (int i = 0; i < W; ++i) s += d[i];
        return s;
    }

    static T max(const T *x, int64_t n) {
        V a0 = K::set1(neg_inf()), a1 = a0, a2 = a0, a3 = a0;
        int64_t i = 0;
        for (; i + 4 * W <= n; i += 4 * W) {
            a0 = K::max(a0, K::load(x + i));
            a1 = K::max(a1, K::load(x + i + W));
            a2 = K::max(a2, K::load(x + i + 2 * W));
            a3 = K::max(a3, K::load(x + i + 3 * W));
        }
        for (; i + W <= n; i += W) a0 = K::max(a0, K::load(x + i));
        if (i < n) a1 = K::max(a1, K::load_part(x + i, n - i, neg_inf()));
        return K::hmax(K::max(K::max(a0, a1), K::max(a2, a3)));
    }

    static double rexp_store(const T *x, int64_t n, T m, T *y) {
        const V vm = K::set1(m);
        Sum2 total = {0.0, 0.0};
        for (int64_t i = 0; i < n;) {
            const int64_t end = n - i > CHUNK ? i + CHUNK : n;
            V s0 = K::set1(T(0)), s1 = s0, s2 = s0, s3 = s0;
            for (; i + 4 * W <= end; i += 4 * W) {
                V e0 = K::exp_nonpos(K::sub(K::load(x + i), vm));
                V e1 = K::exp_nonpos(K::sub(K::load(x + i + W), vm));
                V e2 = K::exp_nonpos(K::sub(K::load(x + i + 2 * W), vm));
                V e3 = K::exp_nonpos(K::sub(K::load(x + i + 3 * W), vm));
                K::store(y + i, e0);
                K::store(y + i + W, e1);
                K::store(y + i + 2 * W, e2);
                K::store(y + i + 3 * W, e3);
                s0 = K::add(s0, e0);
                s1 = K::add(s1, e1);
                s2 = K::add(s2, e2);
                s3 = K::add(s3, e3);
            }
            for (; i + W <= end; i += W) {
                V e = K::exp_nonpos(K::sub(K::load(x + i), vm));
                K::store(y + i, e);
                s0 = K::add(s0, e);
            }
            if (i < end) {  /* -inf fill: exp gives 0 in the unused lanes */
                V e = K::exp_nonpos(K::sub(K::load_part(x + i, end - i, neg_inf()), vm));
                K::store_part(y + i, e, end - i);
                s1 = K::add(s1, e);
                i = end;
            }
            total.add(hsum(K::add(K::add(s0, s1), K::add(s2, s3))));
        }
        return total.value();
    }

    /* The count may include tail lanes when m == -inf; every caller then gets
     * NaN or -inf whatever the count, so it is not masked. */
    static double rexp_sum_excl(const T *x, int64_t n, T m, double *count) {
        const V vm = K::set1(m);
        Sum2 total = {0.0, 0.0};
        double cnt = 0.0;
        for (int64_t i = 0; i < n;) {
            const int64_t end = n - i > CHUNK ? i + CHUNK : n;
            V s0 = K::set1(T(0)), s1 = s0, c0 = s0, c1 = s0;
            for (; i + 2 * W <= end; i += 2 * W) {
                V x0 = K::load(x + i), x1 = K::load(x + i + W);
                s0 = K::add(s0, K::zero_where_eq(K::exp_nonpos(K::sub(x0, vm)), x0, vm));
                s1 = K::add(s1, K::zero_where_eq(K::exp_nonpos(K::sub(x1, vm)), x1, vm));
                c0 = K::add(c0, K::one_where_eq(x0, vm));
                c1 = K::add(c1, K::one_where_eq(x1, vm));
            }
            for (; i < end; i += W) {
                V x0 = i + W <= end ? K::load(x + i) : K::load_part(x + i, end - i, neg_inf());
                s0 = K::add(s0, K::zero_where_eq(K::exp_nonpos(K::sub(x0, vm)), x0, vm));
                c0 = K::add(c0, K::one_where_eq(x0, vm));
            }
            i = end;
            total.add(hsum(K::add(s0, s1)));
            cnt += hsum(K::add(c0, c1));
        }
        *count = cnt;
        return total.value();
    }

    static void scale(T *y, int64_t n, T s) {
        const V vs = K::set1(s);
        int64_t i = 0;
        for (; i + 2 * W <= n; i += 2 * W) {
            K::store(y + i, K::mul(K::load(y + i), vs));
            K::store(y + i + W, K::mul(K::load(y + i + W), vs));
        }
        for (; i + W <= n; i += W) K::store(y + i, K::mul(K::load(y + i), vs));
        if (i < n) K::store_part(y + i, K::mul(K::load_part(y + i, n - i, T(0)), vs), n - i);
    }

    static void rexp_scale_store(const T *x, int64_t n, T m, T s, T *y) {
        const V vm = K::set1(m), vs = K::set1(s);
        int64_t i = 0;
        for (; i + 2 * W <= n; i += 2 * W) {
            K::store(y + i, K::mul(K::exp_nonpos(K::sub(K::load(x + i), vm)), vs));
            K::store(y + i + W, K::mul(K::exp_nonpos(K::sub(K::load(x + i + W), vm)), vs));
        }
        for (; i + W <= n; i += W) K::store(y + i, K::mul(K::exp_nonpos(K::sub(K::load(x + i), vm)), vs));
        if (i < n)
            K::store_part(y + i, K::mul(K::exp_nonpos(K::sub(K::load_part(x + i, n - i, neg_inf()), vm)), vs), n - i);
    }

    /* (x - m) - c: x - m is exact or rounds once, and never cancels against c. */
    static void shift_store(const T *x, int64_t n, T m, T c, T *y) {
        const V vm = K::set1(m), vc = K::set1(c);
        int64_t i = 0;
        for (; i + 2 * W <= n; i += 2 * W) {
            K::store(y + i, K::sub(K::sub(K::load(x + i), vm), vc));
            K::store(y + i + W, K::sub(K::sub(K::load(x + i + W), vm), vc));
        }
        for (; i + W <= n; i += W) K::store(y + i, K::sub(K::sub(K::load(x + i), vm), vc));
        if (i < n) K::store_part(y + i, K::sub(K::sub(K::load_part(x + i, n - i, T(0)), vm), vc), n - i);
    }

    /* ---- column tiles: w <= TILE columns, vector g covers columns [g*W, g*W+W) ---- */

    static inline int lanes(int w, int g) { return w - g * W < W ? w - g * W : W; }
    static inline V load_cols(const T *p, int w, int g, T fill) {
        int k = lanes(w, g);
        return k == W ? K::load(p + g * W) : K::load_part(p + g * W, k, fill);
    }
    static inline void store_cols(T *p, V v, int w, int g) {
        int k = lanes(w, g);
        if (k == W) K::store(p + g * W, v); else K::store_part(p + g * W, v, k);
    }

    /* Add each lane of v into the compensated per-column sums. */
    static inline void fold(V v, double *hi, double *lo, int count) {
        double d[W];
        K::to_double(v, d);
        for (int i = 0; i < count; ++i) {
            Sum2 s = {hi[i], lo[i]};
            s.add(d[i]);
            hi[i] = s.hi;
            lo[i] = s.lo;
        }
    }

    static void col_max(const T *x, int64_t n, int64_t px, int w, T *m) {
        const int ng = (w + W - 1) / W;
        V acc[4];
        for (int g = 0; g < ng; ++g) acc[g] = K::set1(neg_inf());
        for (int64_t r = 0; r < n; ++r)
            for (int g = 0; g < ng; ++g) acc[g] = K::max(acc[g], load_cols(x + r * px, w, g, neg_inf()));
        for (int g = 0; g < ng; ++g) store_cols(m, acc[g], w, g);
    }

    static void col_rexp_store(const T *x, int64_t n, int64_t px, int w, const T *m, T *y, int64_t py,
                               double *sum) {
        const int ng = (w + W - 1) / W;
        V vm[4], acc[4];
        double hi[TILE], lo[TILE];
        for (int c = 0; c < w; ++c) hi[c] = lo[c] = 0.0;
        for (int g = 0; g < ng; ++g) vm[g] = load_cols(m, w, g, T(0));
        for (int64_t r0 = 0; r0 < n; r0 += FOLD_ROWS) {
            const int64_t r1 = n - r0 > FOLD_ROWS ? r0 + FOLD_ROWS : n;
            for (int g = 0; g < ng; ++g) acc[g] = K::set1(T(0));
            for (int64_t r = r0; r < r1; ++r)
                for (int g = 0; g < ng; ++g) {
                    V e = K::exp_nonpos(K::sub(load_cols(x + r * px, w, g, T(0)), vm[g]));
                    store_cols(y + r * py, e, w, g);
                    acc[g] = K::add(acc[g], e);
                }
            for (int g = 0; g < ng; ++g) fold(acc[g], hi + g * W, lo + g * W, lanes(w, g));
        }
        for (int c = 0; c < w; ++c) sum[c] = hi[c] + lo[c];
    }

    static void col_rexp_sum_excl(const T *x, int64_t n, int64_t px, int w, const T *m, double *sum,
                                  double *count) {
        const int ng = (w + W - 1) / W;
        V vm[4], acc[4], cnt[4];
        double hi[TILE], lo[TILE];
        for (int c = 0; c < w; ++c) hi[c] = lo[c] = count[c] = 0.0;
        for (int g = 0; g < ng; ++g) vm[g] = load_cols(m, w, g, T(0));
        for (int64_t r0 = 0; r0 < n; r0 += FOLD_ROWS) {
            const int64_t r1 = n - r0 > FOLD_ROWS ? r0 + FOLD_ROWS : n;
            for (int g = 0; g < ng; ++g) acc[g] = cnt[g] = K::set1(T(0));
            for (int64_t r = r0; r < r1; ++r)
                for (int g = 0; g < ng; ++g) {
                    V xv = load_cols(x + r * px, w, g, T(0));
                    acc[g] = K::add(acc[g], K::zero_where_eq(K::exp_nonpos(K::sub(xv, vm[g])), xv, vm[g]));
                    cnt[g] = K::add(cnt[g], K::one_where_eq(xv, vm[g]));
                }
            for (int g = 0; g < ng; ++g) {
                fold(acc[g], hi + g * W, lo + g * W, lanes(w, g));
                double d[W];
                K::to_double(cnt[g], d);
                for (int i = 0; i < lanes(w, g); ++i) count[g * W + i] += d[i];
            }
        }
        for (int c = 0; c < w; ++c) sum[c] = hi[c] + lo[c];
    }

    static void col_scale(T *y, int64_t n, int64_t py, int w, const T *s) {
        const int ng = (w + W - 1) / W;
        V vs[4];
        for (int g = 0; g < ng; ++g) vs[g] = load_cols(s, w, g, T(0));
        for (int64_t r = 0; r < n; ++r)
            for (int g = 0; g < ng; ++g)
                store_cols(y + r * py, K::mul(load_cols(y + r * py, w, g, T(0)), vs[g]), w, g);
    }

    static void col_shift_store(const T *x, int64_t n, int64_t px, int w, const T *m, const T *c, T *y,
                                int64_t py) {
        const int ng = (w + W - 1) / W;
        V vm[4], vc[4];
        for (int g = 0; g < ng; ++g) {
            vm[g] = load_cols(m, w, g, T(0));
            vc[g] = load_cols(c, w, g, T(0));
        }
        for (int64_t r = 0; r < n; ++r)
            for (int g = 0; g < ng; ++g)
                store_cols(y + r * py, K::sub(K::sub(load_cols(x + r * px, w, g, T(0)), vm[g]), vc[g]), w, g);
    }

    /* constexpr: the tier tables are filled at compile time, so no code of
     * this tier runs at load time on a CPU that may lack it. */
    static constexpr KernelTable<T> table() {
        return {max, rexp_store, rexp_sum_excl, scale, rexp_scale_store, shift_store,
                TILE, col_max, col_rexp_store, col_rexp_sum_excl, col_scale, col_shift_store};
    }
};
