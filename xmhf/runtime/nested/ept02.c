/* EPT02 = EPT01 ∘ EPT12, built on demand (SDM Vol. 3, 29.3). While L2 runs with L1's EPT, VMCS02 uses
 * an EPT02 of L0's: empty at first; each EPT violation walks L1's EPT12 for the L2 guest-physical
 * address and, if L1 allows the access, maps the page (2 MiB where EPT12 and EPT01 both have large
 * pages, else 4 KiB) to the L1 guest-physical page with L1's permissions and memory type, limited by
 * EPT01 (the hypervisor's region is never mapped: L1 pointing L2 at it is a security event). An access
 * EPT12 does not allow is reflected to L1 as an EPT violation with the SDM's qualification, a bad
 * EPT12 entry as an EPT misconfiguration. With accessed and dirty flags in EPTP12, L0 sets them in
 * EPT12 as it fills EPT02 (ept-ad.c), and EPTP02 enables them too, so the CPU treats L2's guest
 * paging-structure accesses as writes; execute-only EPT12 pages map execute-only where the CPU has
 * them.
 *
 * Each CPU caches EPT02S_PER_CPU EPT02s keyed by the EPTP12 address and A/D bit, so L1 switching among its EPTPs
 * (KVM's VMs, Hyper-V's partitions) keeps what was built. L1's INVEPT drops the EPT02 of that EPTP
 * (single-context) or all of this CPU's (all-context; INVEPT acts on the executing processor only);
 * an EPT01 change drops them all (their rights came from EPT01). A CPU's EPT02 tables are bounded by a
 * share of the heap: beyond it the least recently used EPT02s are dropped, then the current one starts
 * afresh, so an L1 cannot exhaust L0's memory. */
#include <xmhf/runtime.h>
#include <xmhf/vcpu.h>
#include <xmhf/app.h>
#include <lib/string.h>
#include <x86/cpu.h>
#include <lib/nested-logic.h>
#include "nested.h"

#define ADDR_MASK 0x000ffffffffff000ULL
#define EPT02S_PER_CPU 32

/* Tables one CPU's EPT02s may hold: a share of the heap free when nested VMX first builds one. */
static u32 page_budget;

/* An EPT02's key: EPTP12's address and its A/D enable (their EPT02s differ in their write rights). */
#define EPTP12_KEY (ADDR_MASK | EPTP_AD)

static u64 eptp02_of(const struct ept02_slot *s)
{
	return s->pml4 | EPTP_WB | EPTP_WALK_4 | (s->eptp12 & EPTP_AD);
}

/* Frees a table and what it points to; returns the number of tables freed. */
static u32 free_tree(u64 table_pa, int level)
{
	u64 *t = (u64 *)(uintptr_t)table_pa;
	u32 n = 1;

	if (level > 1)
		for (u32 i = 0; i < 512; i++)
			if ((t[i] & EPT_RWX) && !(t[i] & EPT_LARGE))
				n += free_tree(t[i] & ADDR_MASK, level - 1);
	page_free(t, 1);
	return n;
}

/* Flushes what the CPU cached through an EPT02 (its PML4 page may be reused for another one). */
static void flush_eptp02(u64 eptp02)
{
	if (vmx_caps.ept_vpid & EPT_CAP_INVEPT_SINGLE ? invept(1, eptp02) : invept(2, 0))
		panic("INVEPT of an EPT02 failed");
}

static void drop_slot(struct vcpu *v, struct ept02_slot *s)
{
	if (!s->pml4)
		return;
	flush_eptp02(eptp02_of(s));
	free_tree(s->pml4, 4);
	v->ept02_pages -= s->pages;
	s->pml4 = 0;
	s->pages = 0;
	v->eptp02_key = ~0ULL; /* VMCS02's EPT pointer may be this one: the next entry asks again */
}

/* L1's INVEPT (SDM 31.3): single-context for the EPT02 of eptp12, or all-context. */
void ept02_invept(struct vcpu *v, bool all, u64 eptp12)
{
	if (!v->ept02)
		return;
	for (u32 i = 0; i < EPT02S_PER_CPU; i++)
		if (all || (v->ept02[i].eptp12 & ADDR_MASK) == (eptp12 & ADDR_MASK))
			drop_slot(v, &v->ept02[i]);
}

/* A table for the current EPT02, within this CPU's budget; NULL if even dropping the other EPT02s
 * leaves none (the caller then starts the current one afresh). */
static u64 *alloc_table(struct vcpu *v)
{
	struct ept02_slot *cur = &v->ept02[v->ept02_cur];
	void *p;

	for (;;) {
		if (v->ept02_pages < page_budget && (p = page_try_alloc(1)) != NULL)
			break;
		/* Over budget or heap empty: drop the least recently used other EPT02. */
		struct ept02_slot *victim = NULL;
		for (u32 i = 0; i < EPT02S_PER_CPU; i++)
			if (&v->ept02[i] != cur && v->ept02[i].pml4 &&
			    (!victim || v->ept02[i].last_use < victim->last_use))
				victim = &v->ept02[i];
		if (!victim)
			return NULL;
		drop_slot(v, victim);
	}
	v->ept02_pages++;
	cur->pages++;
	return p;
}

/* The EPT pointer VMCS02 uses for L1's EPTP12 (the current EPT02 slot from now on). */
u64 ept02_eptp(struct vcpu *v, u64 eptp12)
{
	u32 gen = v->cpu->ept_generation;
	struct ept02_slot *s;
	bool hit;

	/* The common case, a VMRESUME with the same EPTP12 and no EPT01 change: the current slot. Older
	 * generations' slots are dropped the next time this takes the long way. */
	if (v->ept02) {
		s = &v->ept02[v->ept02_cur];
		if (s->pml4 && s->generation == gen && s->eptp12 == (eptp12 & EPTP12_KEY)) {
			s->last_use = ++v->ept02_clock;
			v->eptp02_key = eptp12;
			v->eptp02_gen = gen;
			return eptp02_of(s);
		}
	}
	if (!v->ept02) {
		if (!page_budget) {
			u64 share = heap_free_bytes() / PAGE_SIZE_4K / (2 * (u64)ncpus);
			page_budget = share < 16 ? 16 : (u32)share;
		}
		_Static_assert(EPT02S_PER_CPU * sizeof(struct ept02_slot) <= PAGE_SIZE_4K, "slots fit a page");
		v->ept02 = page_alloc(1);
	}
	/* EPT02's rights come from EPT01: after a change of EPT01 every EPT02 starts afresh. */
	for (u32 i = 0; i < EPT02S_PER_CPU; i++)
		if (v->ept02[i].pml4 && v->ept02[i].generation != gen)
			drop_slot(v, &v->ept02[i]);
	v->ept02_cur = ept02_cache_pick(v->ept02, EPT02S_PER_CPU, eptp12 & EPTP12_KEY, &hit);
	s = &v->ept02[v->ept02_cur];
	if (!hit) {
		drop_slot(v, s);
		s->eptp12 = eptp12 & EPTP12_KEY;
		s->generation = gen;
		u64 *pml4 = alloc_table(v);
		if (!pml4)
			panic("no memory for an EPT02 PML4 (budget %u tables)", page_budget);
		memset(pml4, 0, PAGE_SIZE_4K);
		s->pml4 = (u64)(uintptr_t)pml4;
	}
	s->last_use = ++v->ept02_clock;
	v->eptp02_key = eptp12;
	v->eptp02_gen = gen;
	return eptp02_of(s);
}

/* The EPT pointer for L1's VMLAUNCH/VMRESUME. With ept02_drop=1 (a test knob) the entry first drops
 * this CPU's EPT02s, as a page-rights change of EPT01 does at every entry (an L1 rewriting a watched
 * bitmap page each time): L2's accesses then miss EPT02 again, event deliveries included. */
u64 ept02_eptp_at_entry(struct vcpu *v, u64 eptp12)
{
	u64 eptp02;

	if (boot_info->cmdline.ept02_drop)
		ept02_invept(v, true, 0);
	eptp02 = ept02_eptp(v, eptp12);
	if (boot_info->cmdline.ept02_drop)
		v->eptp02_key = ~0ULL; /* no shortcut at the next entry (nested_ept02_current) */
	return eptp02;
}

static const u64 *l1_table(void *ctx, u64 pa)
{
	(void)ctx;
	return guestmem_ptr(pa & ~0xfffULL, PAGE_SIZE_4K);
}

/* Execute-only EPT12 entries are offered (caps.c) where EPT02 can map them. */
static struct ept12_env l1_env(void)
{
	return (struct ept12_env){ .table = l1_table, .ctx = NULL, .maxphyaddr = vmx_caps.maxphyaddr,
				   .exec_only = (vmx_caps.ept_vpid & EPT_CAP_EXEC_ONLY) != 0 };
}

/* An L2 guest-physical address as L1 guest-physical through EPT12 (for L0 reading L2's page tables
 * and instruction, e.g. an L2 store to the APIC page); false if EPT12 does not map it or its tables
 * are not L1 memory. Without EPT12 the two are the same. */
bool nested_l2_gpa_to_l1(struct vcpu *v, u64 gpa2, u64 *gpa1)
{
	struct ept12_env env = l1_env();
	struct ept12_walk walk;

	if (!v->in_l2 || !nested_l2_uses_ept(v)) {
		*gpa1 = gpa2;
		return true;
	}
	if (ept12_walk(&env, nested_eptp12(v), gpa2, 0, &walk) != EPT12_OK)
		return false;
	*gpa1 = walk.gpa1;
	return true;
}

/* Installs an EPT02 leaf in the current EPT02, allocating tables; false if out of budget. */
static bool ept02_install(struct vcpu *v, const struct ept02_leaf *leaf)
{
	struct ept02_slot *s = &v->ept02[v->ept02_cur];
	u64 table = s->pml4;

	for (int level = 4; level > leaf->level; level--) {
		u64 *e = &((u64 *)(uintptr_t)table)[(leaf->gpa2 >> (12 + 9 * (level - 1))) & 511];
		if (!(*e & EPT_RWX) || (*e & EPT_LARGE)) {
			/* Not present, or a 2 MiB leaf L1 has since split without INVEPT: a new table. */
			u64 *p = alloc_table(v);
			if (!p)
				return false;
			memset(p, 0, PAGE_SIZE_4K);
			*e = (u64)(uintptr_t)p | EPT_RWX;
		}
		table = *e & ADDR_MASK;
	}
	u64 *e = &((u64 *)(uintptr_t)table)[(leaf->gpa2 >> (12 + 9 * (leaf->level - 1))) & 511];
	if (leaf->level == 2 && (*e & EPT_RWX) && !(*e & EPT_LARGE)) {
		/* 4 KiB leaves there before: the 2 MiB leaf replaces their table. */
		u32 n = free_tree(*e & ADDR_MASK, 1);
		s->pages -= n;
		v->ept02_pages -= n;
	}
	*e = leaf->entry;
	return true;
}

/* An EPT violation while L2 runs on EPT02. Returns true if L0 dealt with it (L2 resumes); otherwise
 * it has been reflected to L1. */
bool ept02_violation(struct vcpu *v)
{
	u64 qual = vmcs_read(VMCS_EXIT_QUALIFICATION);
	u64 gpa2 = vmcs_read(VMCS_GUEST_PHYSICAL_ADDRESS);
	u64 eptp12 = nested_eptp12(v);
	/* read, write, fetch: the same bit order as R, W, X */
	u32 access = ept12_access(qual, (eptp12 & EPTP_AD) != 0);
	struct ept12_env env = l1_env();
	struct ept12_walk walk;
	struct ept02_leaf leaf;
	u64 leaf01;
	int level01;

	switch (ept12_walk(&env, eptp12, gpa2, access, &walk)) {
	case EPT12_OK:
		break;
	case EPT12_VIOLATION:
		/* Bits 2:0: the access; bits 5:3: the permissions of the translation; bits 7, 8, 12 as the
		 * CPU gave them. */
		qual = (qual & ~0x3fULL & 0x1fffULL) | access | ((u64)walk.rights << 3);
		/* A convertible violation is a #VE in L2 instead (ve.c). */
		if (nested_ve_convert(v, &walk, qual, gpa2))
			return v->in_l2;
		nested_reflect_with(v, EXIT_REASON_EPT_VIOLATION, qual);
		return false;
	case EPT12_MISCONFIG:
		nested_reflect_with(v, EXIT_REASON_EPT_MISCONFIG, 0);
		return false;
	case EPT12_BAD_TABLE:
		printf("XMHF: SECURITY: CPU %u: L1's EPT for L2 has a table in hypervisor memory (L2 GPA 0x%llx)\n",
		       v->cpu->index, (unsigned long long)gpa2);
		xmhf_stop("L1's EPT reaches into hypervisor memory");
	}
	if ((walk.gpa1 & ~0xfffULL) < boot_info->region_base + boot_info->region_size &&
	    (walk.gpa1 & ~0xfffULL) + PAGE_SIZE_4K > boot_info->region_base) {
		printf("XMHF: SECURITY: CPU %u: L1 maps L2 GPA 0x%llx to hypervisor memory at 0x%llx\n", v->cpu->index,
		       (unsigned long long)gpa2, (unsigned long long)walk.gpa1);
		xmhf_stop("L1 mapped hypervisor memory into L2");
	}
	/* What EPT01 allows for the L1 page limits L2 too (the APIC page: read-only, writes are L0's). */
	leaf01 = ept01_leaf(walk.gpa1, &level01);
	if (!leaf01 && ept01_map_on_demand(walk.gpa1)) /* L1's MMIO beyond EPT01's boot map */
		leaf01 = ept01_leaf(walk.gpa1, &level01);
	if (access & ~leaf01 & walk.rights) {
		if (nested_bitmap_watch_fault(walk.gpa1, access)) /* an L1 bitmap page (bitmap-watch.c) */
			return true;
		if (nested_apicv_access_exit(v, walk.gpa1, qual))
			return v->in_l2; /* L1's APIC-access page, not L0's APIC: L2 resumes or L1 has an exit */
		if (lapic_trap_handle_ept(v, walk.gpa1))
			return true;
		/* A page a hypapp protects: its handler sees the L1 address (VMCS02 is current). */
		if (xmhf_app_handleintercept_hwpgtblviolation(v, &v->regs, walk.gpa1,
							      vmcs_read(VMCS_GUEST_LINEAR_ADDRESS), qual) == APP_SUCCESS)
			return true;
		printf("XMHF: FATAL: CPU %u: L2 access to GPA 0x%llx (L1 GPA 0x%llx, qualification 0x%llx) that EPT01 "
		       "forbids and no hypapp handled\n",
		       v->cpu->index, (unsigned long long)gpa2, (unsigned long long)walk.gpa1, (unsigned long long)qual);
		panic("unhandled EPT violation from L2");
	}
	switch (nested_ept12_ad_update(v, &walk, gpa2, qual)) {
	case EPT12_AD_DONE:
		break;
	case EPT12_AD_RETRY:
		return true;
	case EPT12_AD_EXITED:
		return false;
	}
	ept02_compose(gpa2, &walk, leaf01, level01, (vmx_caps.ept_vpid & EPT_CAP_2M) != 0, &leaf);
	if (!ept02_install(v, &leaf)) {
		/* Nothing left to evict: start this EPT02 afresh (the access faults again and maps its
		 * page into the new one). */
		drop_slot(v, &v->ept02[v->ept02_cur]);
		vmcs_write(VMCS_EPT_POINTER, ept02_eptp(v, nested_eptp12(v)));
		return true;
	}
	/* The entry was not present (or had fewer rights): a single-context INVEPT makes it visible. */
	flush_eptp02(eptp02_of(&v->ept02[v->ept02_cur]));
	return true;
}

/* EPT01 changed (a hypapp protection, MTRR types): EPT02 leaves took their rights from it, so the
 * running L2 starts over with an empty EPT02 (ept02_eptp drops every EPT02 of an older generation). */
void nested_ept01_changed(struct vcpu *v)
{
	if (!nested_l2_uses_ept(v))
		return;
	vmcs_write(VMCS_EPT_POINTER, ept02_eptp(v, nested_eptp12(v)));
}
