/* Building and editing an identity EPT (EPT01): large pages where the MTRR type is uniform and no
 * hole (the hypervisor's region, a trapped page) cuts the range. Pure logic: tables are reached through
 * callbacks, so host unit tests run it on malloc'd memory. */
#ifndef LIB_EPT_H
#define LIB_EPT_H
#include <xmhf/types.h>
#include <lib/e820.h>
#include <lib/mtrr.h>

struct ept_env {
	/* A zeroed 4 KiB table: returns its address as the EPT sees it (physical), 0 if out of memory. */
	u64 (*alloc_table)(void *ctx);
	/* Pointer through which the table at physical address pa is read and written. */
	u64 *(*table)(void *ctx, u64 pa);
	void *ctx;
	bool page_1g, page_2m;          /* leaf sizes the CPU supports (IA32_VMX_EPT_VPID_CAP) */
	const struct mtrr_state *mtrr;
	const struct phys_range *holes; /* not present in the map */
	u32 nholes;
};

/* Builds an identity map of [0, top) (top a multiple of 4 KiB) with RWX permissions and MTRR memory
 * types. Returns the physical address of the PML4, or 0 if a table could not be allocated. */
u64 ept_build_identity(const struct ept_env *env, u64 top);

/* Adds the identity map of [lo, hi) (multiples of 4 KiB) to an existing map, leaving what is already
 * mapped as it is. Returns 0, or -1 if a table could not be allocated. */
int ept_map_identity(const struct ept_env *env, u64 pml4_pa, u64 lo, u64 hi);

/* Finds the leaf entry mapping gpa (splitting large pages down to 4 KiB if split is set, keeping
 * their permissions and types). Returns a pointer to the entry, or NULL (not mapped, or no memory). */
u64 *ept_leaf(const struct ept_env *env, u64 pml4_pa, u64 gpa, bool split);

/* Recomputes the memory type of every leaf from env->mtrr (after a guest MTRR write), splitting large
 * leaves whose range is no longer uniform. Returns 0, or -1 if a table could not be allocated. */
int ept_update_memtypes(const struct ept_env *env, u64 pml4_pa);

/* Walks gpa: returns the leaf entry value (0 if not present) and sets *level (1 = 4 KiB, 2 = 2 MiB,
 * 3 = 1 GiB). */
u64 ept_lookup(const struct ept_env *env, u64 pml4_pa, u64 gpa, int *level);

#endif
