/* Size of the hypervisor's physical region (see region.h). */
#include <lib/region.h>

u64 region_size(u64 runtime_mem_bytes, u64 bootinfo_bytes, u32 ncpus, u64 phys_top, u64 ram_bytes)
{
	/* Identity map of [0, phys_top) with 2 MiB pages: a page directory per GiB, a PDPT per 512 GiB,
	 * one PML4. Shifts, not division: 32-bit builds have no 64-bit divide helper. */
	u64 gibs = (phys_top >> 30) + ((phys_top & (PAGE_SIZE_1G - 1)) != 0);
	u64 pdpts = (gibs >> 9) + ((gibs & 511) != 0);
	u64 pt_bytes = 2 * (1 + pdpts + gibs) * PAGE_SIZE_4K;   /* host page tables and EPT01 */
	u64 total;

	total = runtime_mem_bytes + bootinfo_bytes + pt_bytes + (u64)ncpus * REGION_PER_CPU_BYTES +
		REGION_BASE_HEAP_BYTES + (ram_bytes >> 10);
	return ALIGN_UP(total, PAGE_SIZE_2M);
}
