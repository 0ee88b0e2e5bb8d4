/* TSC scaling and PAUSE-loop exiting for L2 (SDM Vol. 3, 25.6.5 "Time-stamp counter offset and
 * multiplier", 25.6.13 "Controls for PAUSE-loop exiting", 26.3 RDTSC/RDTSCP/RDMSR in VMX non-root
 * operation). L0 neither offsets nor scales L1's TSC (VMCS01 uses neither control), so L2's TSC as L1
 * asks for it, ((TSC * multiplier12) >> 48) + offset12, is what the CPU computes from VMCS02 with
 * L1's multiplier and offset as they are: no composition is needed. PAUSE-loop exiting runs in
 * hardware on VMCS02 with L1's gap and window; its PAUSE exits (40) are L1's (exit.c reflects them). */
#include <xmhf/runtime.h>
#include <xmhf/vcpu.h>
#include <lib/vmcs-fields.h>
#include "nested.h"

/* VM-entry control check: a TSC multiplier of 0 with TSC scaling fails with error 7, as on bare
 * Bochs (cpu/vmx.cc, VMenterLoadCheckVmControls). */
bool nested_timing_controls_ok(struct vcpu *v)
{
	return !(nested_proc2_12(v) & PROC2_TSC_SCALING) || vmcs12_read(v, VMCS_TSC_MULTIPLIER) != 0;
}

/* VMCS02's multiplier, gap and window: L1's (the controls themselves come with VMCS12's secondary
 * controls). */
void nested_timing_setup02(struct vcpu *v)
{
	u32 proc2 = nested_proc2_12(v);

	if (proc2 & PROC2_TSC_SCALING)
		vmcs_write(VMCS_TSC_MULTIPLIER, vmcs12_read(v, VMCS_TSC_MULTIPLIER));
	if (proc2 & PROC2_PAUSE_LOOP_EXITING) {
		vmcs_write(VMCS_PLE_GAP, vmcs12_read(v, VMCS_PLE_GAP));
		vmcs_write(VMCS_PLE_WINDOW, vmcs12_read(v, VMCS_PLE_WINDOW));
	}
}
