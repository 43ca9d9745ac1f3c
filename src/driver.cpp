/* driver.cpp: turns one strided reduction into a plan and runs it on threads.
 *
 * The array is seen as (outer..., n) where n is the reduced axis. Plans:
 *   row     the axis has unit stride: one slice after another, SIMD along it.
 *   column  another dimension has unit stride: SIMD across it, in tiles of
 *           whole vectors, walking the axis by its stride (axis=0, middle
 *           axes, transposed and Fortran-ordered input; no transpose, no copy).
 *   gather  no usable unit stride: each slice is copied into a per-thread
 *           buffer (small, in cache), computed there and copied out.
 * Slices longer than LONG_BYTES use two sweeps over fixed blocks: per block
 * (max, sum of exp), folded in block order, then one writing sweep; a single
 * long row is split across threads by those blocks. Rows of at most 8 vectors
 * are done many per kernel call, each in registers (small_rows); outputs of
 * STREAM_BYTES or more are written with non-temporal stores.
 *
 * Determinism: every sum is formed in an order fixed by n and the plan, never
 * by the thread count, so results are bit-identical at any thread count.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "fastsoftmax.h"
#include "dispatch.h"
#include "threads.hpp"

namespace {

/* Slices longer than this (bytes) take the two-sweep blocked path. */
const int64_t LONG_BYTES = 1024 * 1024;
/* Block of the two-sweep path: read twice per pass, so it should sit in L1. */
const int64_t BLOCK_BYTES = 16 * 1024;
/* Outputs of at least this many bytes are written with non-temporal stores. */
const int64_t STREAM_BYTES = 32 * 1024 * 1024;
/* Column tiles up to this size (bytes) take three sweeps in cache. */
const int64_t COL_SHORT_BYTES = 512 * 1024;
/* Widest column tile, bytes per row (the per-column state then fits in L1/L2). */
const int64_t COL_TILE_BYTES = 4 * 1024;
/* Rows per block of tall column tiles: read twice (max, then sum) from cache. */
const int64_t COL_BLOCK_ROWS = 64;

struct Outer {             /* the non-reduced dimensions, coalesced */
    int nd;
    int64_t shape[FS_MAX_DIMS];
    int64_t xs[FS_MAX_DIMS]; /* strides in elements */
    int64_t ys[FS_MAX_DIMS];
    int64_t count;           /* product of shape */
};

/* Walks the outer index space from any start, adding strides like an odometer. */
struct Odometer {
    const Outer *o;
    int64_t idx[FS_MAX_DIMS];
    int64_t xoff, yoff;
    void start(const Outer *outer, int64_t linear) {
        o = outer;
        xoff = yoff = 0;
        for (int d = o->nd - 1; d >= 0; --d) {
            idx[d] = linear % o->shape[d];
            linear /= o->shape[d];
            xoff += idx[d] * o->xs[d];
            yoff += idx[d] * o->ys[d];
        }
    }
    /* x offset of the next index if only the last dimension moves, else this one's
     * (a prefetch hint: no need to be exact at a wrap). */
    int64_t next_x() const {
        const int d = o->nd - 1;
        return d >= 0 && idx[d] + 1 < o->shape[d] ? xoff + o->xs[d] : xoff;
    }
    void next() {
        for (int d = o->nd - 1; d >= 0; --d) {
            xoff += o->xs[d];
            yoff += o->ys[d];
            if (++idx[d] < o->shape[d]) return;
            xoff -= o->shape[d] * o->xs[d];
            yoff -= o->shape[d] * o->ys[d];
            idx[d] = 0;
        }
    }
};

/* log(sum of exp(x - m)) from the sum over x != m and the count of x == m:
 * log1p keeps logsumexp([0, -40]) = 4.2e-18 instead of 0. */
inline double log_sum(double sum_rest, double count) { return log1p(sum_rest + (count - 1.0)); }

/* log_softmax of a slice holding +inf is NaN, as softmax's is. */
inline double log_softmax_offset(double m, double sum_rest, double count) {
    return m == HUGE_VAL ? NAN : log_sum(sum_rest, count);
}

template <class T> struct Plan {
    const KernelTable<T> *k;
    int op;
    int64_t n, xsn, ysn;   /* axis length and strides in elements */
    int64_t block;         /* two-sweep block, elements */
    bool long_slices;
    bool stream;           /* output far larger than the caches: non-temporal stores */

    /* Combine per-block (max, sum over x != max, count of x == max). */
    struct Stat { T m; double sum, count; };
    void fold(const Stat *st, int64_t nb, T *M, double *sum_rest, double *count) const {
        T mx = -__builtin_inf();
        for (int64_t b = 0; b < nb; ++b)
            if (st[b].m > mx) mx = st[b].m;  /* NaN blocks are skipped here; their sum is NaN */
        double hi = 0.0, lo = 0.0, cnt = 0.0;
        for (int64_t b = 0; b < nb; ++b) {
            double v;
            if (st[b].m == mx) {
                v = st[b].sum;
                cnt += st[b].count;
            } else {
                v = (st[b].sum + st[b].count) * exp((double)st[b].m - (double)mx);
            }
            double t = hi + v;  /* Neumaier, as in the kernels */
            lo += fabs(hi) >= fabs(v) ? (hi - t) + v : (v - t) + hi;
            hi = t;
        }
        *M = mx;
        *sum_rest = hi + lo;
        *count = cnt;
    }

    /* One slice of length n at most LONG_BYTES, contiguous. `next` is the next
     * row's start (prefetched) or null; with `stage` (streaming outputs) the
     * exp values go to that per-thread buffer, so y is written once, non-temporally. */
    void short_contiguous(const T *x, T *y, const T *next = nullptr, T *stage = nullptr) const {
        T m = k->max(x, n);
        if (op == FS_SOFTMAX) {
            T *e = stage ? stage : y;
            double s = k->rexp_store(x, n, m, e, next);
            k->scale_store[stage != nullptr](e, n, (T)(1.0 / s), y);
            return;
        }
        double count;
        double rest = k->rexp_sum_excl(x, n, m, &count, next, 1);
        if (op == FS_LOG_SOFTMAX)
            k->shift_store[stream](x, n, m, (T)log_softmax_offset(m, rest, count), y);
        else
            *y = (T)((double)m + log_sum(rest, count));
    }

    static void gather(const T *x, int64_t stride, int64_t n, T *buf) {
        for (int64_t i = 0; i < n; ++i) buf[i] = x[i * stride];
    }
    static void scatter(const T *buf, int64_t n, T *y, int64_t stride) {
        for (int64_t i = 0; i < n; ++i) y[i * stride] = buf[i];
    }

    /* One short slice with any strides; buf holds n elements. */
    void short_slice(const T *x, T *y, T *buf) const {
        const bool lse = op == FS_LOGSUMEXP;
        if (xsn == 1 && (lse || ysn == 1)) {
            short_contiguous(x, y);
            return;
        }
        const T *xr = x;
        if (xsn != 1) {
            gather(x, xsn, n, buf);
            xr = buf;
        }
        if (lse || ysn == 1) {
            short_contiguous(xr, y);
        } else {
            short_contiguous(xr, buf);  /* in place when xr == buf */
            scatter(buf, n, y, ysn);
        }
    }

    /* Block b of a long slice: its pointer, or a gathered copy in buf. */
    const T *block_in(const T *x, int64_t b, int64_t *len, T *buf) const {
        int64_t start = b * block;
        *len = n - start < block ? n - start : block;
        if (xsn == 1) return x + start;
        gather(x + start * xsn, xsn, *len, buf);
        return buf;
    }

    void block_stat(const T *x, int64_t b, Stat *st, T *buf) const {
        int64_t len;
        const T *xb = block_in(x, b, &len, buf);
        st->m = k->max(xb, len);
        const T *next = xsn == 1 && (b + 1) * block < n ? x + (b + 1) * block : nullptr;
        st->sum = k->rexp_sum_excl(xb, len, st->m, &st->count, next, op != FS_SOFTMAX);
    }

    /* Second sweep over block b: c is 1/sum (softmax) or the log offset. */
    void block_write(const T *x, T *y, int64_t b, T M, T c, T *buf) const {
        int64_t len;
        const T *xb = block_in(x, b, &len, buf);
        T *yb = ysn == 1 ? y + b * block : buf;
        const bool nt = stream && ysn == 1;
        if (op == FS_SOFTMAX)
            k->rexp_scale_store[nt](xb, len, M, c, yb);
        else
            k->shift_store[nt](xb, len, M, c, yb);
        if (ysn != 1) scatter(buf, len, y + b * block * ysn, ysn);
    }

    /* The value sweep 2 needs; logsumexp is written here, returns false then. */
    bool finish(T M, double rest, double count, T *y, T *c) const {
        if (op == FS_SOFTMAX) {  /* a slice holding +inf is NaN (inf - inf) */
            *c = M == (T)__builtin_inf() ? (T)__builtin_nan("") : (T)(1.0 / (rest + count));
            return true;
        }
        if (op == FS_LOGSUMEXP) {
            *y = (T)((double)M + log_sum(rest, count));
            return false;
        }
        *c = (T)log_softmax_offset(M, rest, count);
        return true;
    }

    /* A long slice on the calling thread. */
    void long_slice(const T *x, T *y, Stat *st, T *buf) const {
        const int64_t nb = (n + block - 1) / block;
        for (int64_t b = 0; b < nb; ++b) block_stat(x, b, &st[b], buf);
        T M, c;
        double rest, count;
        fold(st, nb, &M, &rest, &count);
        if (!finish(M, rest, count, y, &c)) return;
        for (int64_t b = 0; b < nb; ++b) block_write(x, y, b, M, c, buf);
    }
};

template <class T> int run_rows(Plan<T> &p, const T *x, T *y, const Outer &o, int nthreads) {
    const int64_t total = o.count * p.n;
    const bool split_slices = p.long_slices && o.count < 2 * (int64_t)nthreads;
    int error = 0;
    if (!split_slices) {
        const bool small = !p.long_slices && p.n <= p.k->small_max && p.xsn == 1 && (p.op == FS_LOGSUMEXP || p.ysn == 1);
        const int t = thread_count(nthreads, total, o.count);
        const int64_t nb = (p.n + p.block - 1) / p.block;
        parallel(t, [&]() {
            T *buf = nullptr;
            typename Plan<T>::Stat *st = nullptr;
            const bool contiguous = p.xsn == 1 && (p.op == FS_LOGSUMEXP || p.ysn == 1);
            const bool need_buf = p.long_slices ? (p.xsn != 1 || p.ysn != 1) : !contiguous || (p.stream && p.op == FS_SOFTMAX);
            if (need_buf) buf = (T *)malloc(sizeof(T) * (p.long_slices ? p.block : p.n));
            if (p.long_slices) st = (typename Plan<T>::Stat *)malloc(sizeof(*st) * nb);
            if ((need_buf && !buf) || (p.long_slices && !st)) {
#ifdef _OPENMP
#pragma omp atomic write
#endif
                error = 1;
            } else {
                int64_t lo, hi;
                thread_range(o.count, &lo, &hi);
                Odometer it;
                it.start(&o, lo);
                if (small && o.nd <= 1) {  /* evenly spaced short rows: one kernel call */
                    const int64_t xs = o.nd ? o.xs[0] : 0, ys = o.nd ? o.ys[0] : 0;
                    p.k->small_rows(p.op, x + lo * xs, xs, y + lo * ys, ys, p.n, hi - lo);
                    hi = lo;
                }
                for (int64_t r = lo; r < hi; ++r, it.next()) {
                    if (small) {
                        p.k->small_rows(p.op, x + it.xoff, 0, y + it.yoff, 0, p.n, 1);
                        continue;
                    }
                    if (p.long_slices) {
                        p.long_slice(x + it.xoff, y + it.yoff, st, buf);
                    } else if (contiguous) {
                        p.short_contiguous(x + it.xoff, y + it.yoff, r + 1 < hi ? x + it.next_x() : nullptr,
                                           p.stream ? buf : nullptr);
                    } else {
                        p.short_slice(x + it.xoff, y + it.yoff, buf);
                    }
                }
            }
            free(buf);
            free(st);
        });
        return error ? -1 : 0;
    }

    /* Few long slices: split each one across threads by its fixed blocks. */
    const int64_t nb = (p.n + p.block - 1) / p.block;
    const int t = thread_count(nthreads, p.n, nb);
    typename Plan<T>::Stat *st = (typename Plan<T>::Stat *)malloc(sizeof(*st) * nb);
    if (!st) return -1;
    Odometer it;
    it.start(&o, 0);
    for (int64_t r = 0; r < o.count && !error; ++r, it.next()) {
        const T *xr = x + it.xoff;
        T *yr = y + it.yoff;
        T M, c = 0;
        double rest, count;
        bool write = true;
        parallel(t, [&]() {
            T *buf = nullptr;
            if (p.xsn != 1 || p.ysn != 1) buf = (T *)malloc(sizeof(T) * p.block);
            if ((p.xsn != 1 || p.ysn != 1) && !buf) {
#ifdef _OPENMP
#pragma omp atomic write
#endif
                error = 1;
            }
#ifdef _OPENMP
#pragma omp barrier
#endif
            if (!error) {
                int64_t lo, hi;
                thread_range(nb, &lo, &hi);
                for (int64_t b = lo; b < hi; ++b) p.block_stat(xr, b, &st[b], buf);
#ifdef _OPENMP
#pragma omp barrier
#pragma omp single
#endif
                {
                    p.fold(st, nb, &M, &rest, &count);
                    write = p.finish(M, rest, count, yr, &c);
                }  /* implicit barrier */
                if (write)
                    for (int64_t b = lo; b < hi; ++b) p.block_write(xr, yr, b, M, c, buf);
            }
            free(buf);
        });
    }
    free(st);
    return error ? -1 : 0;
}

/* Column plan: `inner` (unit x stride, length ni) is vectorised in tiles of
 * w columns; y's stride along it is ys_inner (1 unless logsumexp).
 * Short columns (n <= COL_SHORT_BYTES / 64 / itemsize rows) take three sweeps
 * over a tile that stays in cache (max, exp stored and summed, scale); taller
 * ones two streaming sweeps: blocks of COL_BLOCK_ROWS rows give per-column
 * (max, sum) that are merged in order, then one writing sweep. A column's
 * result depends on n only, never on w, so tiles can be cut to fit the threads. */
template <class T> struct ColumnTile {
    enum { TW = COL_TILE_BYTES / sizeof(T) };
    T m[TW], off[TW], bm[TW];
    double sum[TW], lo[TW], count[TW], bsum[TW], bcount[TW];

    static bool short_columns(int64_t n) { return n * 64 * (int64_t)sizeof(T) <= COL_SHORT_BYTES; }

    void run(const Plan<T> &p, const T *x, T *y, int64_t w, int64_t ys_inner) {
        const KernelTable<T> *k = p.k;
        const int64_t n = p.n;
        if (short_columns(n)) {
            k->col_max(x, n, p.xsn, w, m);
            if (p.op == FS_SOFTMAX) {
                k->col_rexp_store(x, n, p.xsn, w, m, y, p.ysn, sum);
                for (int64_t c = 0; c < w; ++c) off[c] = (T)(1.0 / sum[c]);
                k->col_scale(y, n, p.ysn, w, off);
                return;
            }
            k->col_rexp_sum(x, n, p.xsn, w, m, sum, count, nullptr, 1);
        } else {
            /* softmax takes plain block sums; log_softmax and logsumexp leave out
             * x == block max and count it (for log1p). A column block of only
             * -inf is summed against 0 instead of its max: it adds 0, not NaN. */
            const bool softmax = p.op == FS_SOFTMAX;
            for (int64_t c = 0; c < w; ++c) {
                m[c] = -__builtin_inf();
                sum[c] = lo[c] = count[c] = 0.0;
            }
            for (int64_t r = 0; r < n; r += COL_BLOCK_ROWS) {
                const int64_t len = n - r < COL_BLOCK_ROWS ? n - r : COL_BLOCK_ROWS;
                k->col_max(x + r * p.xsn, len, p.xsn, w, bm);
                const T *next = r + COL_BLOCK_ROWS < n ? x + (r + COL_BLOCK_ROWS) * p.xsn : nullptr;
                if (softmax) {
                    for (int64_t c = 0; c < w; ++c) {
                        off[c] = bm[c] == -__builtin_inf() ? T(0) : bm[c];
                        bcount[c] = 0.0;
                    }
                    k->col_rexp_sum(x + r * p.xsn, len, p.xsn, w, off, bsum, nullptr, next, 0);
                } else {
                    k->col_rexp_sum(x + r * p.xsn, len, p.xsn, w, bm, bsum, bcount, next, 1);
                }
                k->col_merge(w, bm, bsum, bcount, m, sum, lo, count);
            }
            for (int64_t c = 0; c < w; ++c) sum[c] += lo[c];
            if (softmax) {
                for (int64_t c = 0; c < w; ++c)  /* +inf in the column: NaN, as inf - inf */
                    off[c] = m[c] == (T)__builtin_inf() ? (T)__builtin_nan("") : (T)(1.0 / (sum[c] + count[c]));
                k->col_rexp_scale_store[p.stream](x, n, p.xsn, w, m, off, y, p.ysn);
                return;
            }
        }
        if (p.op == FS_LOG_SOFTMAX) {
            for (int64_t c = 0; c < w; ++c) off[c] = (T)log_softmax_offset(m[c], sum[c], count[c]);
            k->col_shift_store[p.stream](x, n, p.xsn, w, m, off, y, p.ysn);
        } else {
            for (int64_t c = 0; c < w; ++c) y[c * ys_inner] = (T)((double)m[c] + log_sum(sum[c], count[c]));
        }
    }
};

template <class T> int run_columns(Plan<T> &p, const T *x, T *y, const Outer &o, int64_t ni, int64_t ys_inner,
                                   int nthreads) {
    typedef ColumnTile<T> Tile;
    const int64_t line = 64 / (int64_t)sizeof(T);
    /* Widest tile: all of a short column tile in cache, or TW for tall ones. */
    int64_t tile = Tile::short_columns(p.n) ? COL_SHORT_BYTES / (p.n * (int64_t)sizeof(T)) / line * line : Tile::TW;
    if (tile > Tile::TW) tile = Tile::TW;
    const int t = thread_count(nthreads, o.count * ni * p.n, o.count * ((ni + line - 1) / line));
    if (o.count * ((ni + tile - 1) / tile) < t) {  /* too few tiles: narrow them, whole lines */
        const int64_t per_outer = (t + o.count - 1) / o.count;
        tile = ((ni + per_outer - 1) / per_outer + line - 1) / line * line;
    }
    const int64_t ntiles = (ni + tile - 1) / tile;
    const int64_t items = o.count * ntiles;
    int error = 0;
    parallel(t, [&]() {
        Tile *ct = (Tile *)malloc(sizeof(Tile));
        if (!ct) {
#ifdef _OPENMP
#pragma omp atomic write
#endif
            error = 1;
        } else {
            int64_t lo, hi;
            thread_range(items, &lo, &hi);
            Odometer it;
            it.start(&o, lo / ntiles);
            int64_t j = lo % ntiles;
            for (int64_t i = lo; i < hi; ++i) {
                const int64_t c0 = j * tile;
                const int64_t w = ni - c0 < tile ? ni - c0 : tile;
                ct->run(p, x + it.xoff + c0, y + it.yoff + c0 * ys_inner, w, ys_inner);
                if (++j == ntiles) {
                    j = 0;
                    it.next();
                }
            }
            free(ct);
        }
    });
    return error ? -1 : 0;
}

template <class T>
int run(int op, const KernelTable<T> *k, const char *xb, char *yb, int ndim, const int64_t *shape,
        const int64_t *xst, const int64_t *yst, int axis, int nthreads) {
    const int64_t isz = (int64_t)sizeof(T);
    const bool lse = op == FS_LOGSUMEXP;
    Plan<T> p;
    p.k = k;
    p.op = op;
    p.n = shape[axis];
    p.xsn = xst[axis] / isz;
    p.ysn = lse ? 0 : yst[axis] / isz;
    const T *x = (const T *)xb;
    T *y = (T *)yb;

    /* Outer dims: drop length-1 ones; flip those where both x and y run backwards. */
    Outer o;
    o.nd = 0;
    o.count = 1;
    for (int d = 0; d < ndim; ++d) {
        if (d == axis) continue;
        if (shape[d] == 0) return 0;
        if (shape[d] == 1) continue;
        int64_t xs = xst[d] / isz, ys = yst[d] / isz;
        if (xs < 0 && ys < 0) {
            x += (shape[d] - 1) * xs;
            y += (shape[d] - 1) * ys;
            xs = -xs;
            ys = -ys;
        }
        o.shape[o.nd] = shape[d];
        o.xs[o.nd] = xs;
        o.ys[o.nd] = ys;
        o.count *= shape[d];
        o.nd++;
    }
    if (p.n == 0) {  /* empty slices: softmax has nothing to write, logsumexp is -inf */
        if (lse) {
            Odometer it;
            it.start(&o, 0);
            for (int64_t r = 0; r < o.count; ++r, it.next()) y[it.yoff] = -__builtin_inf();
        }
        return 0;
    }
    if (p.xsn < 0 && (lse || p.ysn < 0)) {  /* reverse the axis too: same slice, other order */
        x += (p.n - 1) * p.xsn;
        p.xsn = -p.xsn;
        if (!lse) {
            y += (p.n - 1) * p.ysn;
            p.ysn = -p.ysn;
        }
    }
    /* Order outer dims by x stride, largest first, then merge neighbours that
     * step evenly, so rows are visited in memory order with few dimensions. */
    for (int i = 1; i < o.nd; ++i)
        for (int j = i; j > 0 && llabs(o.xs[j]) > llabs(o.xs[j - 1]); --j) {
            int64_t t;
            t = o.shape[j]; o.shape[j] = o.shape[j - 1]; o.shape[j - 1] = t;
            t = o.xs[j]; o.xs[j] = o.xs[j - 1]; o.xs[j - 1] = t;
            t = o.ys[j]; o.ys[j] = o.ys[j - 1]; o.ys[j - 1] = t;
        }
    int nd = 0;
    for (int d = 0; d < o.nd; ++d) {
        if (nd > 0 && o.xs[nd - 1] == o.xs[d] * o.shape[d] && o.ys[nd - 1] == o.ys[d] * o.shape[d]) {
            o.shape[nd - 1] *= o.shape[d];
            o.xs[nd - 1] = o.xs[d];
            o.ys[nd - 1] = o.ys[d];
        } else {
            o.shape[nd] = o.shape[d];
            o.xs[nd] = o.xs[d];
            o.ys[nd] = o.ys[d];
            nd++;
        }
    }
    o.nd = nd;

    p.block = BLOCK_BYTES / isz;
    p.long_slices = p.n * isz > LONG_BYTES;
    p.stream = !lse && o.count * p.n * isz >= STREAM_BYTES;

    /* Column plan: the axis is strided and an outer dim has unit stride. */
    if (p.xsn != 1) {
        for (int d = o.nd - 1; d >= 0; --d) {
            if (o.xs[d] == 1 && (lse || o.ys[d] == 1)) {
                const int64_t ni = o.shape[d], ys_inner = o.ys[d];
                for (int e = d; e + 1 < o.nd; ++e) {
                    o.shape[e] = o.shape[e + 1];
                    o.xs[e] = o.xs[e + 1];
                    o.ys[e] = o.ys[e + 1];
                }
                o.nd--;
                o.count /= ni;
                return run_columns(p, x, y, o, ni, ys_inner, nthreads);
            }
        }
    }
    return run_rows(p, x, y, o, nthreads);
}

}  // namespace

extern "C" int64_t fs_long_slice_bytes(void) { return LONG_BYTES; }

extern "C" void fs_exp_nonpos(int dtype, const char *x, char *y, int64_t n) {
    const Tier *tier = fs_current_tier();
    if (dtype == FS_FLOAT32)
        tier->f32.exp_nonpos((const float *)x, n, (float *)y);
    else
        tier->f64.exp_nonpos((const double *)x, n, (double *)y);
}

extern "C" int fs_run(int op, int dtype, const char *x, char *y, int ndim, const int64_t *shape,
                      const int64_t *x_strides, const int64_t *y_strides, int axis, int num_threads) {
    const Tier *tier = fs_current_tier();
    if (dtype == FS_FLOAT32)
        return run<float>(op, &tier->f32, x, y, ndim, shape, x_strides, y_strides, axis, num_threads);
    return run<double>(op, &tier->f64, x, y, ndim, shape, x_strides, y_strides, axis, num_threads);
}
