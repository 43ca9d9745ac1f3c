/* sanitize.hpp: make AddressSanitizer see the memory that masked and
 * streaming intrinsics touch.
 *
 * GCC and Clang instrument plain loads and stores, which covers the unmasked
 * vector loads/stores (they are plain dereferences in the intrinsic headers),
 * but not builtins such as vmaskmov, masked AVX-512 loads/stores or streaming
 * stores. In a build with -fsanitize=address (setup.py, FASTSOFTMAX_SANITIZE)
 * the vector layers call FS_ASAN_READ / FS_ASAN_WRITE with the bytes a tail
 * or streaming access really touches, so ASan reports an out-of-bounds lane
 * with its stack. In any other build the macros are empty.
 */
#ifndef FS_SANITIZE_HPP
#define FS_SANITIZE_HPP
#include <stddef.h>
#include <stdint.h>

#if defined(__SANITIZE_ADDRESS__)
#define FS_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FS_ASAN 1
#endif
#endif

#ifdef FS_ASAN
extern "C" void __asan_loadN(void *p, size_t size);   /* the ASan runtime's checks */
extern "C" void __asan_storeN(void *p, size_t size);
/* p points to elements; n elements from p are read / written (n <= 0: none) */
#define FS_ASAN_READ(p, n) \
    do { if ((n) > 0) __asan_loadN((void *)(p), (size_t)(n) * sizeof(*(p))); } while (0)
#define FS_ASAN_WRITE(p, n) \
    do { if ((n) > 0) __asan_storeN((void *)(p), (size_t)(n) * sizeof(*(p))); } while (0)
#else
#define FS_ASAN_READ(p, n) do { } while (0)
#define FS_ASAN_WRITE(p, n) do { } while (0)
#endif

#endif
