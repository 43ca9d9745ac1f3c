/* dispatch.h: the kernel table in use (set by fs_tier_set). */
#ifndef FS_DISPATCH_H
#define FS_DISPATCH_H
#include "kernels.h"
const Tier *fs_current_tier(void);
#endif
