/* VT-d second-level page tables (VT-d spec 9.8) for DMA protection: an identity map of [0, top) with
 * 2 MiB pages and 4 KiB pages only where the hypervisor's region edge cuts a 2 MiB page; the region is
 * not present. Pure logic: tables are reached through callbacks, so host unit tests run it on malloc'd
 * memory. */
#ifndef LIB_VTD_PT_H
#define LIB_VTD_PT_H
#include <xmhf/types.h>

#define VTD_SL_R (1ULL << 0)
#define VTD_SL_W (1ULL << 1)
#define VTD_SL_PS (1ULL << 7)
#define VTD_SL_ADDR 0x000ffffffffff000ULL

struct vtd_pt_env {
	u64 (*alloc_table)(void *ctx);        /* a zeroed 4 KiB table's physical address, 0 if none */
	u64 *(*table)(void *ctx, u64 pa);     /* pointer to the table at pa */
	void *ctx;
};

/* Builds the map for a 3- or 4-level walk (levels); top a multiple of 1 GiB, at most 512 GiB;
 * [hole_lo, hole_hi) is left out (4 KiB aligned). Returns the top table's address, or 0 (no memory, or
 * bad arguments). */
u64 vtd_pt_build(const struct vtd_pt_env *env, u32 levels, u64 top, u64 hole_lo, u64 hole_hi);

/* Walks the map: the leaf entry for addr (0 if not present) and its size in *page_size. */
u64 vtd_pt_lookup(const struct vtd_pt_env *env, u64 root, u32 levels, u64 addr, u64 *page_size);

#endif
