/* backward.cpp: gradients of softmax and log_softmax over one axis.
 *
 *   softmax:      dx = y * (g - sum(g * y))      y = softmax(x)
 *   log_softmax:  dx = g - exp(y) * sum(g)       y = log_softmax(x)  (y <= 0)
 *
 * Each slice (y, g, dx along the axis) takes two sweeps: the sum, then the
 * writing sweep. Plans, as the forward ones (driver.cpp):
 *   row     the axis has unit stride in y, g and dx: slices in place.
 *   column  another dimension has unit stride in all three (axis=0 of C
 *           order, middle axes, transposed views): tiles of w contiguous
 *           columns; sweep 1 sums every column of the tile at once (SIMD
 *           across columns) in fixed blocks of rows, sweep 2 writes dx.
 *           Short columns take tiles small enough for y and g to stay in
 *           cache between the sweeps; tall, narrow ones (fewer tiles than
 *           threads) are split over threads by row blocks.
 *   gather  anything else (e.g. a transposed g beside a C-order y): each
 *           slice is copied into a per-thread buffer and dx copied out; when
 *           one of the three is contiguous across the slices, runs of slices
 *           at a time, so that its copy walks it by 1.
 * Slices (or column tiles) run in parallel; each sum is formed in an order
 * fixed by n and the plan, so results are the same at any thread count.
 * log_softmax's y is checked (every y <= 0, NaN allowed) in a pass of its
 * own before anything is written: a y above 0 is not a log_softmax output.
 *
 * where= (the forward's mask) takes the row plan with masked kernels, strided
 * slices gathered. The sums run over the elements that take part only, dx is
 * 0 at the others and in slices where none does, and only the y that take part
 * are checked. A mask constant along the axis is settled per slice; one
 * strided along it is gathered into a per-thread byte buffer.
 */
#include <math.h>
#include <stdlib.h>

#include "fastsoftmax.h"
#include "dispatch.h"
#include "dims.hpp"
#include "threads.hpp"

namespace {

/* Outputs of at least this many bytes are written with non-temporal stores. */
const int64_t STREAM_BYTES = 32 * 1024 * 1024;
/* Widest column tile, bytes per row (kernels.h says why 16 KiB). */
const int64_t COL_TILE_BYTES = FS_COL_TILE_BYTES;
/* Narrowest column tile, bytes per row: narrower tiles read each row in
 * pieces too short for the memory system (4096x4096 float32 axis=0 measured
 * 3x slower at one cache line per row than at 2-4 KiB). */
const int64_t COL_MIN_TILE_BYTES = 2 * 1024;
/* Column tiles whose y and g (g alone for log_softmax) fit in this many
 * bytes are summed and written while they are still in cache; taller
 * columns take the widest tiles (whole rows up to COL_TILE_BYTES), read
 * twice: DRAM runs far faster in whole rows than in pieces a row apart.
 * Interleaved A/B against 2 KiB tiles, Zen 4, one thread, medians, float32
 * axis=0: (4096, 4096) softmax_backward 19.0 -> 13.7 ms, (2048, 8192)
 * 16.4 -> 15.1 ms, log_softmax_backward 20.4 -> 17.5 ms. */
const int64_t COL_SHORT_BYTES = 512 * 1024;
/* Columns are summed in blocks of this many rows, added in order: tall,
 * narrow columns (fewer tiles than threads) can then be split by blocks. */
const int64_t COL_SUM_ROWS = 4096;

struct Dims {  /* the non-reduced dimensions: strides in elements of y, g, dx; in bytes of the mask */
    int nd;
    int64_t shape[FS_MAX_DIMS], ys[FS_MAX_DIMS], gs[FS_MAX_DIMS], ds[FS_MAX_DIMS], ws[FS_MAX_DIMS];
    int64_t count;
    /* offsets of index r (row-major over shape) in y, g, dx and the mask */
    void offsets(int64_t r, int64_t *oy, int64_t *og, int64_t *od, int64_t *ow) const {
        *oy = *og = *od = *ow = 0;
        for (int d = nd - 1; d >= 0; --d) {
            const int64_t i = r % shape[d];
            r /= shape[d];
            *oy += i * ys[d];
            *og += i * gs[d];
            *od += i * ds[d];
            *ow += i * ws[d];
        }
    }
};

/* Walks the index space of Dims from any start, adding strides like an odometer. */
struct Odometer {
    const Dims *o;
    int64_t idx[FS_MAX_DIMS];
    int64_t oy, og, od;
    void start(const Dims *dims, int64_t linear) {
        o = dims;
        for (int d = o->nd - 1; d >= 0; --d) {
            idx[d] = linear % o->shape[d];
            linear /= o->shape[d];
        }
        oy = og = od = 0;
        for (int d = 0; d < o->nd; ++d) {
            oy += idx[d] * o->ys[d];
            og += idx[d] * o->gs[d];
            od += idx[d] * o->ds[d];
        }
    }
    void next() {
        for (int d = o->nd - 1; d >= 0; --d) {
            oy += o->ys[d];
            og += o->gs[d];
            od += o->ds[d];
            if (++idx[d] < o->shape[d]) return;
            oy -= o->shape[d] * o->ys[d];
            og -= o->shape[d] * o->gs[d];
            od -= o->shape[d] * o->ds[d];
            idx[d] = 0;
        }
    }
};

template <class T> struct Problem {
    int op;
    const KernelTable<T> *k;
    const T *y, *g;
    T *dx;
    const uint8_t *w;       /* the where= mask, or null */
    int64_t n, sy, sg, sd;  /* axis length and strides (elements) */
    int64_t sw;             /* the mask's stride along the axis (bytes) */
    bool nt;                /* non-temporal stores (output far larger than the caches) */
};

template <class T> struct ColumnTile {
    enum { TW = COL_TILE_BYTES / sizeof(T) };
    double hi[TW], lo[TW], bsum[TW];
    T d[TW];
};

/* Adds the block sums b[0, w) into the running (hi, lo) (Neumaier: lo keeps
 * what each add loses). Blocks are added in row order, whoever summed them. */
inline void merge_sums(int64_t w, const double *b, double *hi, double *lo, bool first) {
    for (int64_t c = 0; c < w; ++c) {
        if (first) {
            hi[c] = b[c];
            lo[c] = 0.0;
            continue;
        }
        const double h = hi[c], v = b[c], t = h + v;
        lo[c] += fabs(h) >= fabs(v) ? (h - t) + v : (v - t) + h;
        hi[c] = t;
    }
}

/* Column plan: `ni` columns of unit stride in y, g and dx (the inner
 * dimension), times the outer index space o, in tiles of `tile` columns.
 * A column is summed in blocks of COL_SUM_ROWS rows (col_dot each), the block
 * sums added in row order, so its result depends on n only: not on the tile
 * cut, nor on who sums which block. Work goes to threads by whole tiles, or,
 * with fewer tiles than threads (tall, narrow columns), by (tile, block) pairs:
 * block sums into a shared array, merged in order, then the writing sweep. */
template <class T> int run_columns(const Problem<T> &p, const Dims &o, int64_t ni, int nthreads) {
    typedef ColumnTile<T> Tile;
    const int64_t isz = (int64_t)sizeof(T), line = 64 / isz, n = p.n;
    const int64_t arrays = p.op == FS_SOFTMAX ? 2 : 1;  /* kept in cache for sweep 2 */
    int64_t tile = COL_SHORT_BYTES / (arrays * n * isz) / line * line;
    if (tile < COL_MIN_TILE_BYTES / isz) tile = Tile::TW;
    if (tile > Tile::TW) tile = Tile::TW;
    const int64_t nb = (n + COL_SUM_ROWS - 1) / COL_SUM_ROWS;  /* row blocks */
    const int t = thread_count(nthreads, o.count * ni * n, o.count * ((ni + line - 1) / line) * nb);
    if (o.count * ((ni + tile - 1) / tile) < t) {  /* too few tiles: narrow them, whole lines */
        const int64_t per_outer = (t + o.count - 1) / o.count;
        tile = ((ni + per_outer - 1) / per_outer + line - 1) / line * line;
    }
    const int64_t ntiles = (ni + tile - 1) / tile, items = o.count * ntiles, units = items * nb;
    const KernelTable<T> *k = p.k;
    const bool softmax = p.op == FS_SOFTMAX;

    /* Tile i (outer index i / ntiles, columns from (i % ntiles) * tile): offsets and width. */
    struct Where { int64_t oy, og, od, w; };
    auto where = [&](int64_t i) {
        Odometer it;
        it.start(&o, i / ntiles);
        const int64_t c0 = i % ntiles * tile;
        return Where{it.oy + c0, it.og + c0, it.od + c0, ni - c0 < tile ? ni - c0 : tile};
    };
    /* rows [b * COL_SUM_ROWS, +len) */
    auto rows = [&](int64_t b) { return n - b * COL_SUM_ROWS < COL_SUM_ROWS ? n - b * COL_SUM_ROWS : COL_SUM_ROWS; };
    auto block_sum = [&](const Where &x, int64_t b, double *out) {
        const int64_t r0 = b * COL_SUM_ROWS;
        k->col_dot(p.g + x.og + r0 * p.sg, p.sg, softmax ? p.y + x.oy + r0 * p.sy : nullptr, p.sy, rows(b), x.w, out);
    };
    auto write = [&](const Where &x, int64_t r0, int64_t len, const T *d) {
        const T *y = p.y + x.oy + r0 * p.sy, *g = p.g + x.og + r0 * p.sg;
        T *dx = p.dx + x.od + r0 * p.sd;
        if (softmax)
            k->col_softmax_grad[p.nt](y, p.sy, g, p.sg, len, x.w, d, dx, p.sd);
        else
            k->col_log_softmax_grad[p.nt](y, p.sy, g, p.sg, len, x.w, d, dx, p.sd);
    };

    if (!softmax) {  /* check every y <= 0 first: nothing is written for a bad y */
        int bad = 0;
        parallel(t, [&]() {
            int64_t lo, hi;
            thread_range(units, &lo, &hi);
            for (int64_t u = lo; u < hi && !__atomic_load_n(&bad, __ATOMIC_RELAXED); ++u) {
                const Where x = where(u / nb);
                const int64_t b = u % nb;
                if (k->col_pos_max(p.y + x.oy + b * COL_SUM_ROWS * p.sy, rows(b), p.sy, x.w) > T(0))
                    __atomic_store_n(&bad, 1, __ATOMIC_RELAXED);
            }
        });
        if (bad) return FS_BAD_LOG_SOFTMAX_INPUT;
    }

    int error = 0;
    if (items >= t || nb == 1) {  /* whole tiles per thread: sum, then write while the tile may be in cache */
        parallel(t, [&]() {
            Tile *ct = (Tile *)malloc(sizeof(Tile));
            if (!ct) {
                __atomic_store_n(&error, 1, __ATOMIC_RELAXED);
                return;
            }
            int64_t lo, hi;
            thread_range(items, &lo, &hi);
            for (int64_t i = lo; i < hi; ++i) {
                const Where x = where(i);
                for (int64_t b = 0; b < nb; ++b) {
                    block_sum(x, b, ct->bsum);
                    merge_sums(x.w, ct->bsum, ct->hi, ct->lo, b == 0);
                }
                for (int64_t c = 0; c < x.w; ++c) ct->d[c] = (T)(ct->hi[c] + ct->lo[c]);
                write(x, 0, n, ct->d);
            }
            free(ct);
        });
        return error ? -1 : 0;
    }

    /* Fewer tiles than threads: split by (tile, row block). */
    double *bs = (double *)malloc(sizeof(double) * units * tile);
    T *d = (T *)malloc(sizeof(T) * items * tile);
    Tile *ct = (Tile *)malloc(sizeof(Tile));
    if (bs && d && ct) {
        parallel(t, [&]() {
            int64_t lo, hi;
            thread_range(units, &lo, &hi);
            for (int64_t u = lo; u < hi; ++u) block_sum(where(u / nb), u % nb, bs + u * tile);
        });
        for (int64_t i = 0; i < items; ++i) {
            const int64_t w = where(i).w;
            for (int64_t b = 0; b < nb; ++b) merge_sums(w, bs + (i * nb + b) * tile, ct->hi, ct->lo, b == 0);
            for (int64_t c = 0; c < w; ++c) d[i * tile + c] = (T)(ct->hi[c] + ct->lo[c]);
        }
        parallel(t, [&]() {
            int64_t lo, hi;
            thread_range(units, &lo, &hi);
            for (int64_t u = lo; u < hi; ++u) {
                const int64_t i = u / nb, b = u % nb;
                write(where(i), b * COL_SUM_ROWS, rows(b), d + i * tile);
            }
        });
    } else {
        error = 1;
    }
    free(bs);
    free(d);
    free(ct);
    return error ? -1 : 0;
}

/* The mask of a slice as the kernels take it (see driver.cpp's slice_mask):
 * null if every element takes part, or contiguous (gathered into wbuf when
 * strided); returns false when no element takes part. */
inline bool slice_mask(const uint8_t *&w, int64_t sw, int64_t n, uint8_t *wbuf) {
    if (!w) return true;
    if (sw == 0) {
        if (!*w) return false;
        w = nullptr;
        return true;
    }
    if (sw != 1) {
        for (int64_t i = 0; i < n; ++i) wbuf[i] = w[i * sw];
        w = wbuf;
    }
    return true;
}

/* Row and gather plans: one slice after another, with the mask if there is one. */
template <class T> int run_rows(const Problem<T> &p, const Dims &s, int nthreads) {
    const int64_t n = p.n, sy = p.sy, sg = p.sg, sd = p.sd, sw = p.sw;
    const KernelTable<T> *k = p.k;
    const bool contiguous = sy == 1 && sg == 1 && sd == 1;
    const bool need_wbuf = p.w && sw != 0 && sw != 1;
    const int t = thread_count(nthreads, s.count * n, s.count);
    int error = 0;

    if (p.op == FS_LOG_SOFTMAX) {  /* check y <= 0 first: nothing is written for a bad y */
        int bad = 0;
        parallel(t, [&]() {
            int64_t lo, hi, oy, og, od, ow;
            thread_range(s.count, &lo, &hi);
            T *buf = sy == 1 ? nullptr : (T *)malloc(sizeof(T) * n);
            uint8_t *wbuf = need_wbuf ? (uint8_t *)malloc(n) : nullptr;
            if ((sy != 1 && !buf) || (need_wbuf && !wbuf)) {
                __atomic_store_n(&error, 1, __ATOMIC_RELAXED);
                free(buf);
                free(wbuf);
                return;
            }
            for (int64_t r = lo; r < hi && !__atomic_load_n(&bad, __ATOMIC_RELAXED); ++r) {
                s.offsets(r, &oy, &og, &od, &ow);
                const uint8_t *wr = p.w ? p.w + ow : nullptr;
                if (!slice_mask(wr, sw, n, wbuf)) continue;  /* nothing taking part: nothing to check */
                const T *yr = p.y + oy;
                if (buf) {
                    for (int64_t i = 0; i < n; ++i) buf[i] = yr[i * sy];
                    yr = buf;
                }
                bool pos = false;
                if (wr)  /* element by element: only the y that take part count */
                    for (int64_t i = 0; i < n; ++i) pos |= wr[i] && yr[i] > T(0);
                else
                    pos = k->col_pos_max(yr, 1, 0, n) > T(0);
                if (pos) __atomic_store_n(&bad, 1, __ATOMIC_RELAXED);
            }
            free(buf);
            free(wbuf);
        });
        if (error) return -1;
        if (bad) return FS_BAD_LOG_SOFTMAX_INPUT;
    }

    /* Runs of rows (along the last outer dim) when y, g or dx steps by 1
     * there and not along the axis (a transposed g, an F-ordered out= beside
     * C-ordered y and g): they are copied into per-thread buffers and dx out
     * of one, each with its unit stride innermost. Slice by slice, every
     * element was a page apart: (4096, 4096) float32 softmax_backward into an
     * F-ordered out= took 152 ms against 9.4 ms into a C-ordered one. The
     * pitch is padded: a column of a buffer does not sit in one L1 set. */
    const int L = s.nd - 1;
    const bool runs = !contiguous && !p.w && s.nd >= 1 &&
                      ((sy != 1 && s.ys[L] == 1) || (sg != 1 && s.gs[L] == 1) || (sd != 1 && s.ds[L] == 1));
    const int64_t pitch = n + 64 / (int64_t)sizeof(T);
    int64_t run_rows_max = 1024 * 1024 / (3 * (int64_t)sizeof(T) * pitch) / 16 * 16;
    run_rows_max = run_rows_max < 16 ? 16 : run_rows_max > 256 ? 256 : run_rows_max;
    /* dst[b * db + i * di] = src[b * sb + i * si], b < rows, i < n: the inner
     * loop runs along the array in memory (mb, mi: its strides), by 1 if it can */
    auto copy2d = [n](const T *src, int64_t sb, int64_t si, T *dst, int64_t db, int64_t di, int64_t rows,
                      int64_t mb, int64_t mi) {
        if (mi == 1 || mb != 1) {
            for (int64_t b = 0; b < rows; ++b)
                for (int64_t i = 0; i < n; ++i) dst[b * db + i * di] = src[b * sb + i * si];
        } else {
            for (int64_t i = 0; i < n; ++i)
                for (int64_t b = 0; b < rows; ++b) dst[b * db + i * di] = src[b * sb + i * si];
        }
    };

    parallel(t, [&]() {
        int64_t lo, hi, oy, og, od, ow;
        thread_range(s.count, &lo, &hi);
        if (runs) {
            T *rb = (T *)malloc(sizeof(T) * 3 * pitch * run_rows_max);
            if (!rb) {
                __atomic_store_n(&error, 1, __ATOMIC_RELAXED);
                return;
            }
            T *by = rb, *bg = rb + pitch * run_rows_max, *bd = rb + 2 * pitch * run_rows_max;
            for (int64_t r = lo; r < hi;) {
                s.offsets(r, &oy, &og, &od, &ow);
                const int64_t left = s.shape[L] - r % s.shape[L];
                int64_t cnt = hi - r < left ? hi - r : left;
                cnt = cnt < run_rows_max ? cnt : run_rows_max;
                copy2d(p.y + oy, s.ys[L], sy, by, pitch, 1, cnt, s.ys[L], sy);
                copy2d(p.g + og, s.gs[L], sg, bg, pitch, 1, cnt, s.gs[L], sg);
                for (int64_t b = 0; b < cnt; ++b) {
                    const T *yr = by + b * pitch, *gr = bg + b * pitch;
                    if (p.op == FS_SOFTMAX)
                        k->softmax_grad[0](yr, gr, n, (T)k->dot(gr, yr, n), bd + b * pitch);
                    else
                        k->log_softmax_grad[0](yr, gr, n, (T)k->dot(gr, nullptr, n), bd + b * pitch);
                }
                copy2d(bd, pitch, 1, p.dx + od, s.ds[L], sd, cnt, s.ds[L], sd);
                r += cnt;
            }
            free(rb);
            return;
        }
        T *buf = contiguous ? nullptr : (T *)malloc(sizeof(T) * 3 * n);
        uint8_t *wbuf = need_wbuf ? (uint8_t *)malloc(n) : nullptr;
        if ((!contiguous && !buf) || (need_wbuf && !wbuf)) {
            __atomic_store_n(&error, 1, __ATOMIC_RELAXED);
            free(buf);
            free(wbuf);
            return;
        }
        const bool nt = p.nt && contiguous;
        for (int64_t r = lo; r < hi; ++r) {
            s.offsets(r, &oy, &og, &od, &ow);
            const uint8_t *wr = p.w ? p.w + ow : nullptr;
            if (!slice_mask(wr, sw, n, wbuf)) {  /* nothing taking part: a zero gradient */
                for (int64_t i = 0; i < n; ++i) p.dx[od + i * sd] = T(0);
                continue;
            }
            const T *yr = p.y + oy, *gr = p.g + og;
            T *dr = p.dx + od;
            if (!contiguous) {  /* gather: y, g into buffers; dx computed in the third */
                T *by = buf, *bg = buf + n;
                for (int64_t i = 0; i < n; ++i) {
                    by[i] = yr[i * sy];
                    bg[i] = gr[i * sg];
                }
                yr = by;
                gr = bg;
                dr = buf + 2 * n;
            }
            if (wr) {
                if (p.op == FS_SOFTMAX)
                    k->softmax_grad_w[nt](yr, gr, wr, n, (T)k->dot_w(gr, yr, wr, n), dr);
                else
                    k->log_softmax_grad_w[nt](yr, gr, wr, n, (T)k->dot_w(gr, nullptr, wr, n), dr);
            } else if (p.op == FS_SOFTMAX) {
                k->softmax_grad[nt](yr, gr, n, (T)k->dot(gr, yr, n), dr);
            } else {
                k->log_softmax_grad[nt](yr, gr, n, (T)k->dot(gr, nullptr, n), dr);
            }
            if (!contiguous)
                for (int64_t i = 0; i < n; ++i) (p.dx + od)[i * sd] = dr[i];
        }
        free(buf);
        free(wbuf);
    });
    return error ? -1 : 0;
}

/* w (the mask, or null) and wst: its byte strides. */
template <class T>
int run(int op, const KernelTable<T> *k, const char *yb, const char *gb, char *db, const uint8_t *w, int ndim,
        const int64_t *shape, const int64_t *yst, const int64_t *gst, const int64_t *dst, const int64_t *wst, int axis,
        int nthreads) {
    const int64_t isz = (int64_t)sizeof(T);
    Problem<T> p;
    p.op = op;
    p.k = k;
    p.y = (const T *)yb;
    p.g = (const T *)gb;
    p.dx = (T *)db;
    p.w = w;
    p.sw = w ? wst[axis] : 0;
    p.n = shape[axis];
    p.sy = yst[axis] / isz;
    p.sg = gst[axis] / isz;
    p.sd = dst[axis] / isz;

    /* Outer dims: drop length-1 ones; flip those that run backwards in all three. */
    Dims s;
    s.nd = 0;
    s.count = 1;
    for (int d = 0; d < ndim; ++d) {
        if (d == axis) continue;
        if (shape[d] == 0) return 0;
        if (shape[d] == 1) continue;
        int64_t ys = yst[d] / isz, gs = gst[d] / isz, ds = dst[d] / isz, ws = w ? wst[d] : 0;
        if (ys < 0 && gs < 0 && ds < 0) {  /* the mask flips along: any index order is valid */
            p.y += (shape[d] - 1) * ys;
            p.g += (shape[d] - 1) * gs;
            p.dx += (shape[d] - 1) * ds;
            p.w += (shape[d] - 1) * ws;
            ys = -ys;
            gs = -gs;
            ds = -ds;
            ws = -ws;
        }
        s.shape[s.nd] = shape[d];
        s.ys[s.nd] = ys;
        s.gs[s.nd] = gs;
        s.ds[s.nd] = ds;
        s.ws[s.nd] = ws;
        s.count *= shape[d];
        s.nd++;
    }
    if (p.n == 0) return 0;
    if (p.sy < 0 && p.sg < 0 && p.sd < 0) {  /* reverse the axis too: same slice, other order */
        p.y += (p.n - 1) * p.sy;
        p.g += (p.n - 1) * p.sg;
        p.dx += (p.n - 1) * p.sd;
        p.w += (p.n - 1) * p.sw;
        p.sy = -p.sy;
        p.sg = -p.sg;
        p.sd = -p.sd;
        p.sw = -p.sw;
    }
    p.nt = s.count * p.n * isz >= STREAM_BYTES;

    /* Column plan (unmasked): the axis is strided somewhere and an outer dim has
     * unit stride in y, g and dx alike (the last such dim: usually the innermost). */
    if (!w && !(p.sy == 1 && p.sg == 1 && p.sd == 1)) {
        for (int d = s.nd - 1; d >= 0; --d) {
            if (s.ys[d] == 1 && s.gs[d] == 1 && s.ds[d] == 1) {
                const int64_t ni = s.shape[d];
                /* the rest in memory order of y, merged where all three step evenly */
                int64_t *const st[3] = {s.ys, s.gs, s.ds};
                drop_dim(s.nd--, s.shape, st, 3, d);
                s.count /= ni;
                s.nd = sort_merge_dims(s.nd, s.shape, st, 3);
                return run_columns(p, s, ni, nthreads);
            }
        }
    }
    return run_rows(p, s, nthreads);
}

}  // namespace

extern "C" int fs_run_backward(int op, int dtype, const char *y, const char *g, char *dx, const uint8_t *where,
                               int ndim, const int64_t *shape, const int64_t *y_strides, const int64_t *g_strides,
                               const int64_t *dx_strides, const int64_t *where_strides, int axis, int num_threads) {
    const Tier *tier = fs_current_tier();
    if (dtype == FS_FLOAT32)
        return run<float>(op, &tier->f32, y, g, dx, where, ndim, shape, y_strides, g_strides, dx_strides, where_strides,
                          axis, num_threads);
    return run<double>(op, &tier->f64, y, g, dx, where, ndim, shape, y_strides, g_strides, dx_strides, where_strides,
                       axis, num_threads);
}
