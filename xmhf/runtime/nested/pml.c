/* Page-modification logging for L2 (SDM Vol. 3, 29.3.6), emulated by L0. VMCS02 never enables PML:
 * EPT12's dirty flags are set by L0 (ept-ad.c), so L0 is also the one that logs each clean-to-dirty
 * transition into L1's log: the 4 KiB-aligned guest-physical address at the entry the PML index
 * names, then the index decremented. The index lives in VMCS12 (L0's copy), where L1 reads it after
 * an exit; VMCS02's is unused. When a flag must be set and the index is not in 0-511 (it underflowed
 * past 0), the access does not happen and L1 gets the page-modification log-full exit (reason 62). */
#include <xmhf/runtime.h>
#include <xmhf/vcpu.h>
#include <lib/vmcs-fields.h>
#include <x86/cpu.h>
#include "nested.h"

#define PML_ENTRIES 512
#define QUAL_NMI_UNBLOCKING (1ULL << 12)

static bool pml_on(struct vcpu *v)
{
	return nested_proc2_12(v) & PROC2_PML;
}

/* SDM 27.2.1.1: "enable PML" needs "enable EPT", and the PML address is 4 KiB aligned and within the
 * physical-address width (for L0 also L1's own memory, as for the other pages VM entry takes). */
bool nested_pml_controls_ok(struct vcpu *v)
{
	u64 pa;

	if (!pml_on(v))
		return true;
	pa = r12(v, VMCS_PML_ADDRESS);
	return (nested_proc2_12(v) & PROC2_EPT) && !(pa & 0xfff) && !(pa >> vmx_caps.maxphyaddr) &&
	       guestmem_ptr(pa, PAGE_SIZE_4K);
}

/* L0 is about to set an accessed or dirty flag in EPT12 for L2: with PML on and the index out of
 * range, that is a log-full event instead (SDM 29.3.6): L1 gets exit 62, whose qualification has only
 * bit 12 (NMI unblocking due to IRET) from the EPT02 violation L0 is handling (SDM 28.2.1). True if
 * the exit went to L1. */
bool nested_pml_full(struct vcpu *v, u64 qual02)
{
	if (!pml_on(v) || r12(v, VMCS_GUEST_PML_INDEX) < PML_ENTRIES)
		return false;
	nested_reflect_with(v, EXIT_REASON_PML_FULL, qual02 & QUAL_NMI_UNBLOCKING);
	return true;
}

/* L0 set a dirty flag in EPT12 (clean to dirty) for L2's access to gpa2: log it (index checked by
 * nested_pml_full just before). */
void nested_pml_log(struct vcpu *v, u64 gpa2)
{
	u64 index = r12(v, VMCS_GUEST_PML_INDEX);
	volatile u64 *log;

	if (!pml_on(v) || index >= PML_ENTRIES)
		return;
	/* Checked at entry and kept in L0's VMCS12 copy; gone only if L0's own map changed. */
	log = guestmem_ptr(r12(v, VMCS_PML_ADDRESS), PAGE_SIZE_4K);
	if (log)
		log[index] = gpa2 & ~0xfffULL;
	vmcs12_write_field(v, VMCS_GUEST_PML_INDEX, (index - 1) & 0xffff);
}
