/* Programming one VT-d remapping unit (legacy mode): shared by init (a deny-all table for the hand-off)
 * and the runtime (the real table). */
#ifndef LIB_VTD_UNIT_H
#define LIB_VTD_UNIT_H
#include <xmhf/types.h>

/* Points the unit at the root table at root_pa, flushes and invalidates its caches, masks fault
 * interrupts, turns translation on (or keeps it on: the switch is atomic for DMA) and drops the
 * protected memory ranges. Returns NULL, or what did not work. */
const char *vtd_unit_set_root(u64 base, u64 root_pa);

/* Turns translation off (when the runtime gives up on VT-d under vtd=auto, init's deny-all table must
 * not stay: the guest's devices would get no DMA at all). Returns false on timeout. */
bool vtd_unit_disable(u64 base);

#endif
