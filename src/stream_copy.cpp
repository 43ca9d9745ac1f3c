/* stream_copy.cpp: the benchmarks' memory floor (fastsoftmax.h fs_stream_copy).
 *
 * Copies bytes reading each source line once and writing each destination
 * line once, with non-temporal stores: nothing reads the destination before
 * writing it (np.copyto's plain stores do, a third pass over memory) and
 * nothing is left in the caches. Every softmax must read x and write y at
 * least once, so on arrays far larger than the caches no implementation can
 * beat this copy of the same bytes at the same thread count; in cache it is
 * no floor (its stores go to memory). SSE2 (every x86-64 CPU): 16-byte
 * streaming stores fill whole lines in the write-combining buffers, as fast
 * here as AVX-512's 64-byte ones (64 MiB, one Zen 4 core: 3.2 and 3.4 ms,
 * minutes apart). Other architectures: memcpy. Threads take page-aligned
 * pieces of dst.
 */
#include <string.h>
#include "fastsoftmax.h"
#include "threads.hpp"
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

static void copy_piece(const char *src, char *dst, int64_t n) {
#if defined(__SSE2__)
    int64_t h = (int64_t)((64 - (uintptr_t)dst % 64) % 64);  /* to dst's first whole line */
    if (h > n) h = n;
    memcpy(dst, src, (size_t)h);
    int64_t i = h;
    for (; i + 64 <= n; i += 64) {
        const __m128i a = _mm_loadu_si128((const __m128i *)(src + i)), b = _mm_loadu_si128((const __m128i *)(src + i + 16));
        const __m128i c = _mm_loadu_si128((const __m128i *)(src + i + 32)), d = _mm_loadu_si128((const __m128i *)(src + i + 48));
        _mm_stream_si128((__m128i *)(dst + i), a);
        _mm_stream_si128((__m128i *)(dst + i + 16), b);
        _mm_stream_si128((__m128i *)(dst + i + 32), c);
        _mm_stream_si128((__m128i *)(dst + i + 48), d);
    }
    memcpy(dst + i, src + i, (size_t)(n - i));
    _mm_sfence();
#else
    memcpy(dst, src, (size_t)n);
#endif
}

extern "C" int fs_stream_copy(const char *src, char *dst, int64_t bytes, int num_threads) {
    /* pieces are dst's pages: page k covers [k page - v, (k + 1) page - v) of the copy */
    const int64_t page = 4096, v = (int64_t)((uintptr_t)dst % page);
    const int64_t pages = bytes > 0 ? (bytes + v + page - 1) / page : 0;
    const int t = thread_count(num_threads, bytes / 4, pages);  /* the drivers' rule, in float32 elements */
    parallel(t, [&]() {
        int64_t lo, hi;
        thread_range(pages, &lo, &hi);
        const int64_t a = lo * page - v > 0 ? lo * page - v : 0, b = hi * page - v < bytes ? hi * page - v : bytes;
        if (b > a) copy_piece(src + a, dst + a, b - a);
    });
    return t;
}
