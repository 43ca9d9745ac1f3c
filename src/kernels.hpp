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
    enum { W = K::W, SMALL_MAX = 4 * K::W, CHUNK = 64 * K::W, FOLD_ROWS = 32, COL_PREFETCH_ROWS = 16 };

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

    /* k lanes at p: a full vector when k == W (folded at compile time), else masked. */
    static inline V ld(const T *p, int64_t k, T fill) { return k == W ? K::load(p) : K::load_part(p, k, fill); }
    static inline void st(T *p, V v, int64_t k) {
        if (k == W) K::store(p, v); else K::store_part(p, v, k);
    }
    template <class F> static inline void each_vector(int64_t w, F f) {
        int64_t c = 0;
        for (; c + W <= w; c += W) f(c, (int64_t)W);
        if (c < w) f(c, w - c);
    }

    /* Touch the cache lines of next[0, 4W): the next row streams in while this one computes. */
    static inline void prefetch(const T *next) {
        if (!next) return;
        for (unsigned b = 0; b < 4 * W * sizeof(T); b += 64) __builtin_prefetch((const char *)next + b, 0, 2);
    }

    /* y[i] = f(i) over n elements. NT: non-temporal stores for outputs far larger
     * than the cache (no read-for-ownership, no eviction of the input); they need
     * aligned addresses, so the head up to the first aligned vector is masked. */
    template <bool NT, class F> static inline void map_store(T *y, int64_t n, F f) {
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
        if (NT) K::stream_fence();
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

    static double rexp_store(const T *x, int64_t n, T m, T *y, const T *next) {
        const V vm = K::set1(m);
        Sum2 total = {0.0, 0.0};
        for (int64_t i = 0; i < n;) {
            const int64_t end = n - i > CHUNK ? i + CHUNK : n;
            V s0 = K::set1(T(0)), s1 = s0, s2 = s0, s3 = s0;
            for (; i + 4 * W <= end; i += 4 * W) {
                prefetch(next ? next + i : nullptr);
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
    static double rexp_sum_excl(const T *x, int64_t n, T m, double *count, const T *next) {
        const V vm = K::set1(m);
        Sum2 total = {0.0, 0.0};
        double cnt = 0.0;
        for (int64_t i = 0; i < n;) {
            const int64_t end = n - i > CHUNK ? i + CHUNK : n;
            V s0 = K::set1(T(0)), s1 = s0, c0 = s0, c1 = s0;
            for (; i + 2 * W <= end; i += 2 * W) {
                if (next && (i & (4 * W - 1)) == 0) prefetch(next + i);
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

    template <bool NT> static void scale_store(const T *e, int64_t n, T s, T *y) {
        const V vs = K::set1(s);
        map_store<NT>(y, n, [&](int64_t i, int64_t k) { return K::mul(ld(e + i, k, T(0)), vs); });
    }

    template <bool NT> static void rexp_scale_store(const T *x, int64_t n, T m, T s, T *y) {
        const V vm = K::set1(m), vs = K::set1(s);
        map_store<NT>(y, n, [&](int64_t i, int64_t k) {
            return K::mul(K::exp_nonpos(K::sub(ld(x + i, k, neg_inf()), vm)), vs);
        });
    }

    /* (x - m) - c: x - m is exact or rounds once, and never cancels against c. */
    template <bool NT> static void shift_store(const T *x, int64_t n, T m, T c, T *y) {
        const V vm = K::set1(m), vc = K::set1(c);
        map_store<NT>(y, n, [&](int64_t i, int64_t k) { return K::sub(K::sub(ld(x + i, k, T(0)), vm), vc); });
    }

    /* ---- many short rows (n <= 4W): each row stays in registers ---- */

    static void small_rows(int op, const T *x, int64_t px, T *y, int64_t py, int64_t n, int64_t rows) {
        const int nv = (int)((n + W - 1) / W);
        const int64_t tail = n - (int64_t)(nv - 1) * W;
        for (int64_t r = 0; r < rows; ++r, x += px, y += py) {
            V v[4] = {}, e[4] = {};
            for (int i = 0; i < nv; ++i) v[i] = i + 1 < nv ? K::load(x + i * W) : K::load_part(x + i * W, tail, neg_inf());
            V mv = v[0];
            for (int i = 1; i < nv; ++i) mv = K::max(mv, v[i]);
            const T m = K::hmax(mv);
            mv = K::set1(m);
            if (op == 0) {  /* softmax */
                V s = K::set1(T(0));
                for (int i = 0; i < nv; ++i) s = K::add(s, e[i] = K::exp_nonpos(K::sub(v[i], mv)));
                const V inv = K::set1(T(1) / K::hadd(s));  /* a tree sum of <= 4W terms: T is enough */
                for (int i = 0; i < nv; ++i) {
                    if (i + 1 < nv) K::store(y + i * W, K::mul(e[i], inv));
                    else K::store_part(y + i * W, K::mul(e[i], inv), tail);
                }
                continue;
            }
            V s = K::set1(T(0)), c = s;
            for (int i = 0; i < nv; ++i) {
                s = K::add(s, K::zero_where_eq(K::exp_nonpos(K::sub(v[i], mv)), v[i], mv));
                c = K::add(c, K::one_where_eq(v[i], mv));
            }
            const double rest = (double)K::hadd(s) + ((double)K::hadd(c) - 1.0);
            if (op == 2) {  /* logsumexp */
                *y = (T)((double)m + __builtin_log1p(rest));
                continue;
            }
            const V off = K::set1((T)(m == __builtin_inf() ? __builtin_nan("") : __builtin_log1p(rest)));
            for (int i = 0; i < nv; ++i) {
                V o = K::sub(K::sub(v[i], mv), off);
                if (i + 1 < nv) K::store(y + i * W, o);
                else K::store_part(y + i * W, o, tail);
            }
        }
    }

    /* ---- column tiles: n rows of w <= COL_TILE contiguous columns, row r at
     * x + r * px. Rows outside, columns inside: each row segment is read as
     * one contiguous stream; per-column state lives in small arrays (L1). ---- */

    static void col_max(const T *x, int64_t n, int64_t px, int64_t w, T *m) {
        for (int64_t g0 = 0; g0 < w; g0 += 4 * W) {
            int64_t k[4];
            V acc[4];
            for (int j = 0; j < 4; ++j) {
                const int64_t left = w - g0 - j * W;
                k[j] = left < 0 ? 0 : left > W ? (int64_t)W : left;
                acc[j] = K::set1(neg_inf());
            }
            for (int64_t r = 0; r < n; ++r) {
                /* Rows are pages apart, beyond the hardware prefetchers' reach. */
                if (r + COL_PREFETCH_ROWS < n)
                    for (int j = 0; j < 4; ++j)
                        if (k[j]) __builtin_prefetch(x + (r + COL_PREFETCH_ROWS) * px + g0 + j * W, 0, 3);
                for (int j = 0; j < 4; ++j)
                    if (k[j]) acc[j] = K::max(acc[j], ld(x + r * px + g0 + j * W, k[j], neg_inf()));
            }
            for (int j = 0; j < 4; ++j)
                if (k[j]) st(m + g0 + j * W, acc[j], k[j]);
        }
    }

    /* Column sums, four vectors of columns at a time held in registers over
     * FOLD_ROWS rows, then folded into compensated doubles: the order of the
     * additions per column depends only on n. f(r, c, k, acc, cnt) adds row r's
     * lanes [c, c+k) into acc (and cnt). */
    template <class F>
    static inline void col_sum(int64_t n, int64_t w, const T *m, double *sum, double *count, F f) {
        for (int64_t g0 = 0; g0 < w; g0 += 4 * W) {
            int64_t k[4];
            for (int j = 0; j < 4; ++j) {
                const int64_t left = w - g0 - j * W;
                k[j] = left < 0 ? 0 : left > W ? (int64_t)W : left;
            }
            const int64_t gw = w - g0 < 4 * W ? w - g0 : 4 * W;
            V mv[4];
            for (int j = 0; j < 4; ++j) mv[j] = k[j] ? ld(m + g0 + j * W, k[j], T(0)) : K::set1(T(0));
            double hi[4 * W], lo[4 * W], cn[4 * W];
            for (int64_t c = 0; c < gw; ++c) hi[c] = lo[c] = cn[c] = 0.0;
            for (int64_t r0 = 0; r0 < n; r0 += FOLD_ROWS) {
                const int64_t r1 = n - r0 > FOLD_ROWS ? r0 + FOLD_ROWS : n;
                V acc[4], cnt[4];
                for (int j = 0; j < 4; ++j) acc[j] = cnt[j] = K::set1(T(0));
                for (int64_t r = r0; r < r1; ++r)
                    for (int j = 0; j < 4; ++j)
                        if (k[j]) f(r, g0 + j * W, k[j], mv[j], acc[j], cnt[j]);
                for (int j = 0; j < 4 && k[j]; ++j) {
                    double d[W];
                    K::to_double(acc[j], d);
                    for (int64_t i = 0; i < k[j]; ++i) {
                        Sum2 s2 = {hi[j * W + i], lo[j * W + i]};
                        s2.add(d[i]);
                        hi[j * W + i] = s2.hi;
                        lo[j * W + i] = s2.lo;
                    }
                    if (count) {
                        K::to_double(cnt[j], d);
                        for (int64_t i = 0; i < k[j]; ++i) cn[j * W + i] += d[i];
                    }
                }
            }
            for (int64_t c = 0; c < gw; ++c) sum[g0 + c] = hi[c] + lo[c];
            if (count)
                for (int64_t c = 0; c < gw; ++c) count[g0 + c] = cn[c];
        }
    }

    static void col_rexp_store(const T *x, int64_t n, int64_t px, int64_t w, const T *m, T *y, int64_t py,
                               double *sum) {
        col_sum(n, w, m, sum, nullptr, [&](int64_t r, int64_t c, int64_t k, V mv, V &acc, V &) {
            V e = K::exp_nonpos(K::sub(ld(x + r * px + c, k, T(0)), mv));
            st(y + r * py + c, e, k);
            acc = K::add(acc, e);
        });
    }

    /* With count: the sum leaves out x == m and counts those (for log1p);
     * without: the plain sum of exp(x - m). */
    static void col_rexp_sum(const T *x, int64_t n, int64_t px, int64_t w, const T *m, double *sum, double *count,
                             const T *next) {
        if (!count) {
            col_sum(n, w, m, sum, nullptr, [&](int64_t r, int64_t c, int64_t k, V mv, V &acc, V &) {
                if (next) __builtin_prefetch(next + r * px + c, 0, 3);
                acc = K::add(acc, K::exp_nonpos(K::sub(ld(x + r * px + c, k, T(0)), mv)));
            });
            return;
        }
        col_sum(n, w, m, sum, count, [&](int64_t r, int64_t c, int64_t k, V mv, V &acc, V &cnt) {
            if (next) __builtin_prefetch(next + r * px + c, 0, 3);
            V xv = ld(x + r * px + c, k, T(0));
            acc = K::add(acc, K::zero_where_eq(K::exp_nonpos(K::sub(xv, mv)), xv, mv));
            cnt = K::add(cnt, K::one_where_eq(xv, mv));
        });
    }

    static void col_scale(T *y, int64_t n, int64_t py, int64_t w, const T *s) {
        for (int64_t r = 0; r < n; ++r) {
            T *yr = y + r * py;
            map_store<false>(yr, w, [&](int64_t c, int64_t k) { return K::mul(ld(yr + c, k, T(0)), ld(s + c, k, T(0))); });
        }
    }

    template <bool NT>
    static void col_rexp_scale_store(const T *x, int64_t n, int64_t px, int64_t w, const T *m, const T *s, T *y,
                                     int64_t py) {
        for (int64_t r = 0; r < n; ++r) {
            const T *xr = x + r * px;
            map_store<NT>(y + r * py, w, [&](int64_t c, int64_t k) {
                return K::mul(K::exp_nonpos(K::sub(ld(xr + c, k, T(0)), ld(m + c, k, T(0)))), ld(s + c, k, T(0)));
            });
        }
    }

    template <bool NT>
    static void col_shift_store(const T *x, int64_t n, int64_t px, int64_t w, const T *m, const T *off, T *y,
                                int64_t py) {
        for (int64_t r = 0; r < n; ++r) {
            const T *xr = x + r * px;
            map_store<NT>(y + r * py, w, [&](int64_t c, int64_t k) {
                return K::sub(K::sub(ld(xr + c, k, T(0)), ld(m + c, k, T(0))), ld(off + c, k, T(0)));
            });
        }
    }

    /* Merge a block's per-column (max bm, sum over x != bm, count of x == bm) into the
     * running (M, sum hi/lo, count), rescaling whichever side has the smaller max. */
    static void col_merge(int64_t w, const T *bm, const double *bsum, const double *bcount, T *M, double *hi,
                          double *lo, double *count) {
        const V zero = K::set1(T(0));
        each_vector(w, [&](int64_t c, int64_t k) {
            V d = K::sub(ld(M + c, k, T(0)), ld(bm + c, k, T(0)));
            V e = K::exp_nonpos(K::sub(zero, K::max(d, K::sub(zero, d))));  /* exp(-|M - m|) */
            double f[W];
            K::to_double(e, f);
            for (int64_t i = 0; i < k; ++i) {
                const int64_t j = c + i;
                if (bm[j] > M[j]) {
                    hi[j] = bsum[j] + (hi[j] + lo[j] + count[j]) * f[i];
                    lo[j] = 0.0;
                    count[j] = bcount[j];
                    M[j] = bm[j];
                    continue;
                }
                const double v = bm[j] == M[j] ? bsum[j] : (bsum[j] + bcount[j]) * f[i];
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
                {scale_store<false>, scale_store<true>},
                {rexp_scale_store<false>, rexp_scale_store<true>},
                {shift_store<false>, shift_store<true>},
                SMALL_MAX, small_rows,
                col_max, col_rexp_store, col_rexp_sum, col_scale,
                {col_rexp_scale_store<false>, col_rexp_scale_store<true>},
                {col_shift_store<false>, col_shift_store<true>},
                col_merge};
    }
};
