/* kernels_avx512.cpp: the avx512 tier: softmax, log_softmax and logsumexp kernels
 * for float32 and float64 rows and column tiles.
 *
 * ISA: AVX-512 F/BW/DQ/VL (Skylake-X, Zen 4 and later). setup.py compiles this file, and only this file, with the flags
 * of its tier; dispatch.cpp calls into it only when the CPU has them.
 * Algorithm: kernels.hpp (loops) over vec_avx512.hpp (vector layer and exp).
 * Error of the whole softmax: the bounds in README.md "Accuracy", asserted by tests/ (_helpers.py).
 */
#include <stdint.h>
#include <string.h>
/* GCC 12's AVX-512 headers start some intrinsics from an undefined vector
 * (_mm512_undefined_ps) and then warn about it; the lanes are all overwritten. */
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#include "kernels.h"
#include "exp_constants.hpp"
#include "sanitize.hpp"

namespace fs_avx512 {
#include "vec_avx512.hpp"
#include "kernels.hpp"
}

extern const Tier fs_tier_avx512 = {
    "avx512f",
    fs_avx512::Kernels<fs_avx512::VecF32>::table(),
    fs_avx512::Kernels<fs_avx512::VecF64>::table(),
};
