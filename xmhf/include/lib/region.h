/* Size of the hypervisor's physical region, computed at boot (no compile-time machine size). */
#ifndef LIB_REGION_H
#define LIB_REGION_H
#include <xmhf/types.h>

/* Per-CPU bytes set aside: stacks (main, NMI, double fault, machine check), GDT/TSS page, and the
 * VMX pages the VMX core will need (VMXON, VMCS, MSR bitmap, MSR areas). */
#define REGION_PER_CPU_BYTES (256ULL * 1024)
/* Fixed heap for tables whose size does not scale (I/O bitmaps, IDT, guest E820 copy, ...). */
#define REGION_BASE_HEAP_BYTES (4ULL * 1024 * 1024)

/* Bytes of the region: runtime image (with bss) + boot-info block, page tables for the identity map of
 * [0, phys_top) (2 MiB pages: one page directory per GiB, plus PML4 and PDPTs) counted twice (host page
 * tables and EPT01), per-CPU areas, the base heap, and a share of memory (1/1024 of ram_bytes) for
 * later splitting of large pages and nested structures; rounded up to 2 MiB. */
u64 region_size(u64 runtime_mem_bytes, u64 bootinfo_bytes, u32 ncpus, u64 phys_top, u64 ram_bytes);

#endif
