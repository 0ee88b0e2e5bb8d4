/* VM functions for L2 (SDM Vol. 3, 25.5.6): EPTP switching (function 0) only, emulated by L0. VMCS02
 * enables VM functions with no function allowed, so every VMFUNC of L2 exits to L0 (reason 59); L0
 * then loads the EPTP12 L1's EPTP list selects and switches VMCS02 to its EPT02, or reflects the exit
 * to L1 where the CPU would exit (a function L1 did not enable, an index past 511, an invalid EPTP). */
#include <xmhf/runtime.h>
#include <xmhf/vcpu.h>
#include <lib/vmcs-fields.h>
#include <x86/cpu.h>
#include "nested.h"

#define VMFUNC_EPTP_SWITCHING 1ULL
#define EPTP_LIST_ENTRIES 512

static bool vmfunc_on(struct vcpu *v)
{
	return (r12(v, VMCS_PROC_BASED_CONTROLS) & PROC_SECONDARY_CONTROLS) &&
	       (r12(v, VMCS_PROC_BASED_CONTROLS2) & PROC2_VMFUNC);
}

/* SDM 27.2.1.1: only the functions IA32_VMX_VMFUNC offers; EPTP switching needs EPT and an EPTP-list
 * address 4 KiB aligned, within the physical-address width (and in L1's memory, for L0). */
bool nested_vmfunc_controls_ok(struct vcpu *v)
{
	u64 offered = 0, ctl, list;

	if (!vmfunc_on(v))
		return true;
	ctl = r12(v, VMCS_VMFUNC_CONTROLS);
	if (!nested_rdmsr(MSR_IA32_VMX_VMFUNC, &offered) || (ctl & ~offered))
		return false;
	if (!(ctl & VMFUNC_EPTP_SWITCHING))
		return true;
	list = r12(v, VMCS_EPTP_LIST_ADDR);
	return (r12(v, VMCS_PROC_BASED_CONTROLS2) & PROC2_EPT) && !(list & 0xfff) && !(list >> vmx_caps.maxphyaddr) &&
	       guestmem_ptr(list, PAGE_SIZE_4K);
}

/* VMCS02 (current): VM functions on with none allowed, so each VMFUNC exits to L0. */
void nested_vmfunc_setup02(struct vcpu *v)
{
	if (vmfunc_on(v))
		vmcs_write(VMCS_VMFUNC_CONTROLS, 0);
}

/* L2's VMFUNC exit. True if L0 performed the EPTP switch (L2 resumes after VMFUNC), false if it is
 * L1's VMFUNC exit (SDM 25.5.6.3). */
bool nested_vmfunc_exit(struct vcpu *v)
{
	u32 leaf = (u32)v->regs.gpr[REG_RAX], index = (u32)v->regs.gpr[REG_RCX];
	const u64 *list;
	u64 eptp;

	if (leaf != 0 || !(r12(v, VMCS_VMFUNC_CONTROLS) & VMFUNC_EPTP_SWITCHING) || index >= EPTP_LIST_ENTRIES)
		return false;
	list = guestmem_ptr(r12(v, VMCS_EPTP_LIST_ADDR), PAGE_SIZE_4K);
	if (!list)
		return false;
	eptp = list[index];
	if (!nested_eptp_valid(eptp))
		return false;
	/* The EPTP field of the VMCS changes (SDM 25.5.6.3); L2 goes on with that EPT12's EPT02. */
	vmcs12_write_field(v, VMCS_EPT_POINTER, eptp);
	/* With EPT-violation #VE offered, ECX[15:0] becomes the EPTP index (SDM 25.5.6.3). */
	if (nested_offered_caps()->proc2_1 & PROC2_EPT_VE)
		vmcs12_write_field(v, VMCS_EPTP_INDEX, index & 0xffff);
	vmcs_write(VMCS_EPT_POINTER, ept02_eptp(v, eptp));
	guest_skip_instruction();
	return true;
}
