/* dispatch.cpp: reads the CPU once and picks the kernel table.
 *
 * __builtin_cpu_supports checks both the CPUID bits and that the OS saves the
 * wider registers (XGETBV), so a tier reported here never faults.
 */
#include "fastsoftmax.h"
#include "kernels.h"
#include "dispatch.h"

#if defined(__x86_64__) || defined(_M_X64) || defined(__i386__)
#define FS_X86 1
#endif

static const Tier *const tiers[] = {
    &fs_tier_generic,
#ifdef FS_X86
    &fs_tier_avx2,
    &fs_tier_avx512,
#endif
};
static const int n_tiers = (int)(sizeof tiers / sizeof tiers[0]);
static const char *const tier_names[] = {"generic", "avx2", "avx512f"};

static int cpu_runs(int tier) {
#ifdef FS_X86
    __builtin_cpu_init();
    switch (tier) {
    case 0: return 1;
    case 1: return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c") &&
                   __builtin_cpu_supports("popcnt");
    case 2: return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                   __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") &&
                   __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
                   __builtin_cpu_supports("f16c") && __builtin_cpu_supports("popcnt");
    }
    return 0;
#else
    return tier == 0;
#endif
}

static const Tier *current = &fs_tier_generic;
static int current_index = 0;

const Tier *fs_current_tier(void) { return current; }

extern "C" {
int fs_tier_count(void) { return 3; }
const char *fs_tier_name(int tier) { return tier >= 0 && tier < 3 ? tier_names[tier] : "unknown"; }
int fs_tier_supported(int tier) { return tier >= 0 && tier < n_tiers && cpu_runs(tier); }
int fs_tier_best(void) {
    int best = 0;
    for (int t = 0; t < n_tiers; ++t)
        if (cpu_runs(t)) best = t;
    return best;
}
int fs_tier_get(void) { return current_index; }
int fs_tier_set(int tier) {
    if (!fs_tier_supported(tier)) return -1;
    current = tiers[tier];
    current_index = tier;
    return 0;
}
int fs_openmp_enabled(void) {
#ifdef _OPENMP
    return 1;
#else
    return 0;
#endif
}
}
