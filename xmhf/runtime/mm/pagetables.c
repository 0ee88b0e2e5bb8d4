/* The runtime's page tables: an identity map (virtual = physical) of [0, phys_top), with 1 GiB pages
 * where the CPU has them (CPUID 80000001h:EDX[26]) and 2 MiB pages otherwise, and the same map again
 * at GUESTMEM_ALIAS (the upper half), through which the hypervisor reaches guest memory: a guest
 * page at physical address 0 is then not a NULL pointer (guestmem_ptr). Memory types come from the
 * MTRRs (PAT entry 0, WB), so MMIO such as the local APIC stays uncached.
 *
 * Hardening (SDM Vol. 3, 4.5, 4.6): in the identity map page 0 is not present, so a NULL dereference
 * faults; with NX (CPUID 80000001h:EDX[20], EFER.NXE on every CPU) the runtime's text is the only
 * executable memory besides the AP trampoline page, and its text is read-only (W^X; CR0.WP makes that
 * hold in ring 0). The alias has no executable page. */
#include <xmhf/runtime.h>
#include <x86/cpu.h>
#include <x86/msr.h>

#define PTE_P (1ULL << 0)
#define PTE_RW (1ULL << 1)
#define PTE_PS (1ULL << 7)
#define PTE_NX (1ULL << 63)
#define PTE_ADDR 0x000ffffffffff000ULL
#define CPUIDX1_EDX_NX (1U << 20)

extern const u8 __image_start[], __text_end[];

u64 guestmem_top;
static u64 nx; /* PTE_NX if the CPU has it */

/* Maps [0, gibs GiB) at slots pml4[first ...] with large pages, every page RW and non-executable. */
static void map_all(u64 *pml4, u64 first, u64 gibs, bool gib_pages)
{
	for (u64 g = 0; g < gibs; g++) {
		u64 *pdpt;
		if (!(pml4[first + g / 512] & PTE_P))
			pml4[first + g / 512] = (u64)(uintptr_t)page_alloc(1) | PTE_P | PTE_RW;
		pdpt = (u64 *)(uintptr_t)(pml4[first + g / 512] & PTE_ADDR);
		if (gib_pages) {
			pdpt[g % 512] = (g << 30) | PTE_P | PTE_RW | PTE_PS | nx;
		} else {
			u64 *pd = page_alloc(1);
			for (u64 j = 0; j < 512; j++)
				pd[j] = (g << 30) | (j << 21) | PTE_P | PTE_RW | PTE_PS | nx;
			pdpt[g % 512] = (u64)(uintptr_t)pd | PTE_P | PTE_RW;
		}
	}
}

/* The table below *e, splitting a large leaf into the next level's pages with its rights. Non-leaf
 * entries are P|RW: the leaves alone decide. */
static u64 *next_table(u64 *e, int level)
{
	if (!(*e & PTE_PS))
		return (u64 *)(uintptr_t)(*e & PTE_ADDR);
	u64 *t = page_alloc(1);
	u64 step = 1ULL << (12 + 9 * (level - 2)), base = *e & PTE_ADDR & ~(step * 512 - 1);
	u64 attrs = *e & (PTE_RW | PTE_NX | PTE_P);
	for (u64 i = 0; i < 512; i++)
		t[i] = (base + i * step) | attrs | (level > 2 ? PTE_PS : 0);
	*e = (u64)(uintptr_t)t | PTE_P | PTE_RW;
	return t;
}

/* Sets the 4 KiB page at pa of the identity map to flags (0: not present). */
static void set_page(u64 *pml4, u64 pa, u64 flags)
{
	u64 *pdpt = (u64 *)(uintptr_t)(pml4[(pa >> 39) & 511] & PTE_ADDR);
	u64 *pd = next_table(&pdpt[(pa >> 30) & 511], 3);
	u64 *pt = next_table(&pd[(pa >> 21) & 511], 2);

	pt[(pa >> 12) & 511] = flags ? (pa | flags) : 0;
}

/* EFER.NXE before CR3 points at tables with NX bits (reserved bits without it); the trampoline does
 * the same on the APs (pagetables_efer_bits). */
u32 pagetables_efer_bits(void)
{
	return nx ? (u32)EFER_NXE : 0;
}

void pagetables_init(u64 phys_top)
{
	bool ext = cpuid(0x80000000, 0).eax >= 0x80000001;
	bool gib_pages = ext && (cpuid(0x80000001, 0).edx & CPUIDX1_EDX_PDPE1GB);
	u64 gibs = ALIGN_UP(phys_top, PAGE_SIZE_1G) / PAGE_SIZE_1G;
	u64 *pml4 = page_alloc(1);
	u64 text = (u64)(uintptr_t)__image_start, text_end = (u64)(uintptr_t)__text_end;

	nx = ext && (cpuid(0x80000001, 0).edx & CPUIDX1_EDX_NX) ? PTE_NX : 0;
	BUG_ON(gibs > 256ULL * 512); /* the lower half; the alias takes the upper */
	map_all(pml4, 0, gibs, gib_pages);
	map_all(pml4, (GUESTMEM_ALIAS >> 39) % 512, gibs, gib_pages);
	set_page(pml4, 0, 0);
	for (u64 pa = text; pa < text_end; pa += PAGE_SIZE_4K)
		set_page(pml4, pa, PTE_P);
	/* The AP trampoline runs from its page below 1 MiB (smp.c writes it first). */
	if (boot_info->ap_trampoline_pa)
		set_page(pml4, boot_info->ap_trampoline_pa, PTE_P | PTE_RW);
	if (nx)
		wrmsr(MSR_IA32_EFER, rdmsr(MSR_IA32_EFER) | EFER_NXE);
	write_cr3((u64)(uintptr_t)pml4);
	write_cr0(read_cr0() | CR0_WP); /* read-only pages bind the hypervisor too (the APs: trampoline.S) */
	guestmem_top = gibs << 30;
	printf("XMHF: page tables: identity map of %llu GiB with %s pages; page 0 absent, text 0x%llx-0x%llx "
	       "read-only, %s\n",
	       (unsigned long long)gibs, gib_pages ? "1 GiB" : "2 MiB", (unsigned long long)text,
	       (unsigned long long)text_end, nx ? "the rest non-executable" : "no NX on this CPU");
}
