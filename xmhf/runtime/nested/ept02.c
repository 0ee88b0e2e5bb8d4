/* EPT02 = EPT01 ∘ EPT12, built on demand (SDM Vol. 3, 29.3). While L2 runs with L1's EPT, VMCS02 uses
 * an EPT02 of L0's: empty at first; each EPT violation walks L1's EPT12 for the L2 guest-physical
 * address and, if L1 allows the access, maps the 4 KiB page to the L1 guest-physical page with L1's
 * permissions and memory type, limited by EPT01 (the hypervisor's region is never mapped: L1 pointing
 * L2 at it is a security event). An access EPT12 does not allow is reflected to L1 as an EPT
 * violation with the SDM's qualification, a bad EPT12 entry as an EPT misconfiguration.
 * One EPT02 per CPU, for the last EPTP12 used; L1's INVEPT on this CPU drops it (INVEPT acts on the
 * executing processor only). */
#include <xmhf/runtime.h>
#include <xmhf/vcpu.h>
#include <lib/string.h>
#include <x86/cpu.h>
#include <lib/nested-logic.h>
#include "nested.h"

#define ADDR_MASK 0x000ffffffffff000ULL
#define EPT_PS (1ULL << 7)

static void free_tree(u64 table_pa, int level)
{
	u64 *t = (u64 *)(uintptr_t)table_pa;

	if (level > 1)
		for (u32 i = 0; i < 512; i++)
			if ((t[i] & EPT_RWX) && !(t[i] & EPT_PS))
				free_tree(t[i] & ADDR_MASK, level - 1);
	page_free(t, 1);
}

void ept02_drop(struct vcpu *v)
{
	if (v->ept02_pml4) {
		free_tree(v->ept02_pml4, 4);
		v->ept02_pml4 = 0;
	}
	v->ept02_of = ~0ULL;
}

/* The EPT pointer VMCS02 uses for L1's EPTP12. */
u64 ept02_eptp(struct vcpu *v, u64 eptp12)
{
	/* EPT02's rights come from EPT01: a change of EPT01 since it was built starts it afresh. */
	if (!v->ept02_pml4 || v->ept02_of != (eptp12 & ADDR_MASK) || v->ept02_gen != v->cpu->ept_generation) {
		ept02_drop(v);
		v->ept02_pml4 = (u64)(uintptr_t)page_alloc(1);
		v->ept02_of = eptp12 & ADDR_MASK;
		v->ept02_gen = v->cpu->ept_generation;
	}
	return v->ept02_pml4 | EPTP_WB | EPTP_WALK_4;
}

static const u64 *l1_table(void *ctx, u64 pa)
{
	(void)ctx;
	return guestmem_ptr(pa & ~0xfffULL, PAGE_SIZE_4K);
}

/* The EPT02 leaf slot for gpa2, allocating tables; NULL if the heap is exhausted. */
static u64 *ept02_slot(struct vcpu *v, u64 gpa2)
{
	u64 table = v->ept02_pml4;

	for (int level = 4; level > 1; level--) {
		u64 *t = (u64 *)(uintptr_t)table;
		u64 *e = &t[(gpa2 >> (12 + 9 * (level - 1))) & 511];
		if (!(*e & EPT_RWX)) {
			void *p = page_try_alloc(1);
			if (!p)
				return NULL;
			*e = (u64)(uintptr_t)p | EPT_RWX;
		}
		table = *e & ADDR_MASK;
	}
	return &((u64 *)(uintptr_t)table)[(gpa2 >> 12) & 511];
}

static void reflect_ept_exit(struct vcpu *v, u32 reason, u64 qual)
{
	nested_reflect_with(v, reason, qual);
}

/* An EPT violation while L2 runs on EPT02. Returns true if L0 dealt with it (L2 resumes); otherwise
 * it has been reflected to L1. */
bool ept02_violation(struct vcpu *v)
{
	u64 qual = vmcs_read(VMCS_EXIT_QUALIFICATION);
	u64 gpa2 = vmcs_read(VMCS_GUEST_PHYSICAL_ADDRESS);
	u32 access = (u32)(qual & 7); /* read, write, fetch: the same bit order as R, W, X */
	struct ept12_env env = { .table = l1_table, .ctx = NULL, .maxphyaddr = vmx_caps.maxphyaddr };
	struct ept12_walk walk;
	u64 gpa1, leaf, *slot;
	u32 rights;

	switch (ept12_walk(&env, nested_eptp12(v), gpa2, access, &walk)) {
	case EPT12_OK:
		break;
	case EPT12_VIOLATION:
		/* Bits 5:3: the permissions of the translation; bits 2:0, 7, 8, 12 as the CPU gave them. */
		reflect_ept_exit(v, EXIT_REASON_EPT_VIOLATION,
				 (qual & ~(7ULL << 3) & 0x1fffULL) | ((u64)walk.rights << 3));
		return false;
	case EPT12_MISCONFIG:
		reflect_ept_exit(v, EXIT_REASON_EPT_MISCONFIG, 0);
		return false;
	case EPT12_BAD_TABLE:
		printf("XMHF: SECURITY: CPU %u: L1's EPT for L2 has a table in hypervisor memory (L2 GPA 0x%llx)\n",
		       v->cpu->index, (unsigned long long)gpa2);
		xmhf_stop("L1's EPT reaches into hypervisor memory");
	}
	gpa1 = walk.gpa1;
	leaf = walk.leaf;
	rights = walk.rights;
	if (!guestmem_ptr(gpa1 & ~0xfffULL, PAGE_SIZE_4K)) {
		printf("XMHF: SECURITY: CPU %u: L1 maps L2 GPA 0x%llx to hypervisor memory at 0x%llx\n", v->cpu->index,
		       (unsigned long long)gpa2, (unsigned long long)gpa1);
		xmhf_stop("L1 mapped hypervisor memory into L2");
	}
	/* What EPT01 allows for the L1 page limits L2 too (the APIC page: read-only, writes are L0's). */
	u64 rights01 = ept01_page_rights(gpa1);
	if (access & ~rights01 & rights) {
		if (lapic_trap_handle_ept(v, gpa1))
			return true;
		panic("L2 access to GPA 0x%llx (L1 0x%llx) that EPT01 forbids", (unsigned long long)gpa2,
		      (unsigned long long)gpa1);
	}
	slot = ept02_slot(v, gpa2);
	if (!slot) {
		/* The heap is full: an L1 cannot exhaust L0's memory this way. Start EPT02 afresh (the
		 * access faults again and maps its page into the new one). */
		ept02_drop(v);
		vmcs_write(VMCS_EPT_POINTER, ept02_eptp(v, nested_eptp12(v)));
		return true;
	}
	*slot = (gpa1 & ADDR_MASK) | (rights & rights01) | (leaf & ((7ULL << 3) | EPT_IGNORE_PAT));
	/* The entry was not present (or had fewer rights): a single-context INVEPT makes it visible. */
	invept(1, ept02_eptp(v, nested_eptp12(v)));
	return true;
}

/* EPT01 changed (a hypapp protection, MTRR types): EPT02 leaves took their rights from it, so the
 * running L2 starts over with an empty EPT02. */
void nested_ept01_changed(struct vcpu *v)
{
	if (!nested_l2_uses_ept(v))
		return;
	ept02_drop(v);
	vmcs_write(VMCS_EPT_POINTER, ept02_eptp(v, nested_eptp12(v)));
}
