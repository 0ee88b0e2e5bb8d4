/* L1's MSR lists (SDM Vol. 3, 25.7.2, 25.8.2, 27.4, 28.4, 28.6). The VM-entry MSR-load and VM-exit
 * MSR-store lists run in hardware on copies in L0's memory (VMCS02 points at them): the CPU itself loads
 * L2's MSRs and stores them at the exit; the stored values are copied back into L1's list. The
 * VM-exit MSR-load list (L1's own MSRs after the exit) is applied by L0 in software, so a bad entry
 * cannot VMX-abort L0: it VMX-aborts L1 instead. MSRs L0 keeps for itself (guest/msr-policy.c, with those
 * the SDM forbids in lists) are refused in the load lists; the exit-store list stores what L1 would
 * read of them (store_kind). */
#include <xmhf/runtime.h>
#include <xmhf/vcpu.h>
#include <lib/string.h>
#include <x86/msr.h>
#include "nested.h"

#define MAX_ENTRIES 512 /* IA32_VMX_MISC[27:25] = 0: 512 entries (SDM A.6) */
#define LIST_PAGES (MAX_ENTRIES * 16 / PAGE_SIZE_4K)

struct msr_entry {
	u32 index;
	u32 reserved;
	u64 data;
};

u32 nested_msr_list_max(void)
{
	return MAX_ENTRIES;
}

/* L1's list in its memory, or NULL. L1 may rewrite it at any time, from another CPU too: every
 * entry is read once (read_entry) and only that copy is judged and used. */
static volatile struct msr_entry *l1_list(u64 gpa, u32 count)
{
	if (!count || count > MAX_ENTRIES || (gpa & 15))
		return NULL;
	return guestmem_ptr(gpa, (u64)count * sizeof(struct msr_entry));
}

static struct msr_entry read_entry(volatile struct msr_entry *e)
{
	return (struct msr_entry){ .index = e->index, .reserved = e->reserved, .data = e->data };
}

/* Checks L1's lists at VM entry (a control check: error 7 if not). */
bool nested_msr_lists_valid(u64 load_gpa, u32 load_n, u64 store_gpa, u32 store_n, u64 exit_gpa, u32 exit_n)
{
	return (!load_n || l1_list(load_gpa, load_n)) && (!store_n || l1_list(store_gpa, store_n)) &&
	       (!exit_n || l1_list(exit_gpa, exit_n));
}

/* Where an exit-store entry's value comes from (SDM 28.4): the CPU's store through VMCS02's list;
 * L0's emulation of an MSR L1 does not read from the hardware (VMX capabilities, feature control);
 * or nowhere: an entry the SDM makes a VMX abort (reserved bits set, an x2APIC-range MSR, an MSR
 * RDMSR cannot read). VMCS02's list names only MSRs L0 can read, so no entry of L1's can make the
 * CPU VMX-abort L0 itself. */
enum { STORE_HW, STORE_EMULATED, STORE_ABORT };
struct msr_store_src {
	u32 index;
	u32 kind;
};
_Static_assert(MAX_ENTRIES * sizeof(struct msr_store_src) <= PAGE_SIZE_4K, "one page of sources");

static u32 store_kind(struct msr_entry e)
{
	u64 value;

	if (e.reserved || (e.index >> 8) == 0x8)
		return STORE_ABORT;
	switch (msr_policy(e.index, false)) {
	case MSR_PASS:
		/* The SDM forbids IA32_SMBASE; any MSR the CPU cannot read would VMX-abort L0. */
		return e.index == 0x9e || rdmsr_safe(e.index, &value) ? STORE_ABORT : STORE_HW;
	case MSR_EMULATE:
		return nested_rdmsr(e.index, &value) ? STORE_EMULATED : STORE_ABORT;
	default:
		return STORE_ABORT; /* hidden: #GP for L1 as on a CPU without it */
	}
}

/* Builds VMCS02's entry-load and exit-store lists. An entry-load entry L0 refuses becomes the last
 * of VMCS02's list, with reserved bits set: the CPU refuses it at the same index (a VM-entry failure
 * due to MSR loading, SDM 27.4), after its own guest-state checks, as it would L1's list. The
 * addresses and counts are VMCS12's checked ones (nested_msr_lists_valid); the bound below is L0's
 * own buffers'. */
void nested_msr_lists_setup(struct vcpu *v, u64 load_gpa, u32 load_n, u64 store_gpa, u32 store_n)
{
	volatile struct msr_entry *load = l1_list(load_gpa, load_n), *store = l1_list(store_gpa, store_n);
	struct msr_entry *l02, *s02;

	BUG_ON(load_n > MAX_ENTRIES || store_n > MAX_ENTRIES || (load_n && !load) || (store_n && !store));
	if (!v->msr_load02) {
		v->msr_load02 = page_alloc(LIST_PAGES);
		v->msr_store02 = page_alloc(LIST_PAGES);
		v->msr_store_src = page_alloc(1);
	}
	l02 = v->msr_load02;
	s02 = v->msr_store02;
	for (u32 i = 0; i < load_n; i++) {
		struct msr_entry e = read_entry(&load[i]);
		if (msr_policy_refused_in_lists(e.index) || e.reserved) {
			l02[i] = (struct msr_entry){ .index = MSR_IA32_FEATURE_CONTROL, .reserved = 1 };
			load_n = i + 1;
			break;
		}
		l02[i] = e;
	}
	for (u32 i = 0; i < store_n; i++) {
		struct msr_entry e = read_entry(&store[i]);
		u32 kind = store_kind(e);
		v->msr_store_src[i] = (struct msr_store_src){ .index = e.index, .kind = kind };
		s02[i] = (struct msr_entry){ .index = kind == STORE_HW ? e.index : MSR_IA32_FEATURE_CONTROL /* harmless read */ };
	}
	vmcs_write(VMCS_ENTRY_MSR_LOAD_ADDR, (u64)(uintptr_t)l02);
	vmcs_write(VMCS_ENTRY_MSR_LOAD_COUNT, load_n);
	vmcs_write(VMCS_EXIT_MSR_STORE_ADDR, (u64)(uintptr_t)s02);
	vmcs_write(VMCS_EXIT_MSR_STORE_COUNT, store_n);
}

/* After an L2 exit: L2's stored MSR values into L1's exit-store list (the MSRs VMCS02's list read,
 * whatever L1 wrote into its list since), in order. Returns false at an entry that is a VMX abort
 * (the entries before it are stored, as the CPU does). */
bool nested_msr_store_copy_back(struct vcpu *v, u64 store_gpa, u32 store_n)
{
	volatile struct msr_entry *store = l1_list(store_gpa, store_n);

	for (u32 i = 0; store && i < store_n; i++) {
		const struct msr_store_src *src = &v->msr_store_src[i];
		u64 value;

		if (src->kind == STORE_ABORT)
			return false;
		if (src->kind == STORE_EMULATED && !nested_rdmsr(src->index, &value))
			return false;
		store[i].data = src->kind == STORE_HW ? v->msr_store02[i].data : value;
	}
	return true;
}

/* L1's VM-exit MSR-load list, applied in software after L1's host state (SDM 28.5, 28.6; VMCS01
 * current). Returns false on a failure (L1 gets a VMX abort). The MSRs VMCS01 loads into L1 at every
 * entry from its guest state (SYSENTER_CS/ESP/EIP, DEBUGCTL, PAT) go into those fields too: written
 * to the CPU alone they would be overwritten on the way back to L1 (the WRMSR checks the value). */
bool nested_msr_exit_load(u64 gpa, u32 n)
{
	static const struct { u32 msr, field; } in_vmcs01[] = {
		{ 0x174, VMCS_GUEST_IA32_SYSENTER_CS }, { 0x175, VMCS_GUEST_IA32_SYSENTER_ESP },
		{ 0x176, VMCS_GUEST_IA32_SYSENTER_EIP }, { 0x1d9, VMCS_GUEST_IA32_DEBUGCTL },
		{ 0x277, VMCS_GUEST_IA32_PAT },
	};
	volatile struct msr_entry *list = l1_list(gpa, n);

	for (u32 i = 0; list && i < n; i++) {
		struct msr_entry e = read_entry(&list[i]);
		if (msr_policy_refused_in_lists(e.index) || e.reserved || wrmsr_safe(e.index, e.data))
			return false;
		for (u32 k = 0; k < ARRAY_SIZE(in_vmcs01); k++)
			if (in_vmcs01[k].msr == e.index)
				vmcs_write(in_vmcs01[k].field, e.data);
	}
	return true;
}
