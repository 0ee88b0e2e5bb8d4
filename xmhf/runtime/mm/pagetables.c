/* The runtime's page tables: an identity map (virtual = physical) of [0, phys_top), with 1 GiB pages
 * where the CPU has them (CPUID 80000001h:EDX[26]) and 2 MiB pages otherwise, and the same map again
 * at GUESTMEM_ALIAS (the upper half), through which the hypervisor reaches guest memory: a guest
 * page at physical address 0 is then not a NULL pointer (guestmem_ptr). Memory types come from the
 * MTRRs (PAT entry 0, WB), so MMIO such as the local APIC stays uncached. */
#include <xmhf/runtime.h>
#include <x86/cpu.h>

#define PTE_P (1ULL << 0)
#define PTE_RW (1ULL << 1)
#define PTE_PS (1ULL << 7)

u64 guestmem_top;

void pagetables_init(u64 phys_top)
{
	bool gib_pages = cpuid(0x80000000, 0).eax >= 0x80000001 && (cpuid(0x80000001, 0).edx & CPUIDX1_EDX_PDPE1GB);
	u64 gibs = ALIGN_UP(phys_top, PAGE_SIZE_1G) / PAGE_SIZE_1G;
	u64 *pml4 = page_alloc(1);

	BUG_ON(gibs > 256ULL * 512); /* the lower half; the alias takes the upper */
	for (u64 g = 0; g < gibs; g++) {
		u64 *pdpt;
		if (!(pml4[g / 512] & PTE_P))
			pml4[g / 512] = (u64)(uintptr_t)page_alloc(1) | PTE_P | PTE_RW;
		pdpt = (u64 *)(uintptr_t)(pml4[g / 512] & ~0xfffULL);
		if (gib_pages) {
			pdpt[g % 512] = (g << 30) | PTE_P | PTE_RW | PTE_PS;
		} else {
			u64 *pd = page_alloc(1);
			for (u64 j = 0; j < 512; j++)
				pd[j] = (g << 30) | (j << 21) | PTE_P | PTE_RW | PTE_PS;
			pdpt[g % 512] = (u64)(uintptr_t)pd | PTE_P | PTE_RW;
		}
	}
	/* The alias shares the page-directory-pointer tables. */
	for (u64 i = 0; i < 256; i++)
		pml4[(GUESTMEM_ALIAS >> 39) % 512 + i] = pml4[i];
	write_cr3((u64)(uintptr_t)pml4);
	guestmem_top = gibs << 30;
	printf("XMHF: page tables: identity map of %llu GiB with %s pages\n", (unsigned long long)gibs,
	       gib_pages ? "1 GiB" : "2 MiB");
}
