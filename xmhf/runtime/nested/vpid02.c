/* VPIDs for L2 (SDM Vol. 3, 29.4). When L1 enables VPID for L2 and the CPU has VPIDs, VMCS02 runs L2
 * with VPID02 (0 is the host's VPID, 1 L1's), so L2's translations survive VM entries and exits as L1
 * expects, and L1's INVVPID decides when they go. One VPID02 serves every VPID12 of a CPU (as KVM
 * does): an L2 entry with another VPID12 than the last one on this CPU flushes VPID02 first, so
 * translations made for one VPID12 never serve another. L1's INVVPID for the VPID12 last used becomes
 * the same INVVPID of VPID02; other VPID12s have nothing cached. Without VPID for L2, VMCS02 runs
 * without VPID and every entry and exit flushes L2's linear translations (SDM 29.4.3.3 for VPID 0). */
#include <xmhf/runtime.h>
#include <xmhf/vcpu.h>
#include <x86/cpu.h>
#include "nested.h"

#define VPID02 2

/* INVVPID of VPID02 (vmx_invvpid widens a type the CPU lacks). */
static void invvpid02(u32 type, u64 linear)
{
	vmx_invvpid(type, VPID02, linear);
}

/* VMCS02's VPID set-up for L1's controls: returns PROC2_VPID if VMCS02 uses VPID02, else 0. */
u32 vpid02_setup(struct vcpu *v, u32 proc2_12, u16 vpid12)
{
	if (!(proc2_12 & PROC2_VPID) || !(vmx_caps.proc2_1 & PROC2_VPID))
		return 0;
	if (v->vpid02_of != vpid12) {
		if (v->vpid02_of)
			invvpid02(INVVPID_SINGLE, 0);
		v->vpid02_of = vpid12;
	}
	vmcs_write(VMCS_VPID, VPID02);
	return PROC2_VPID;
}

/* L1's INVVPID of a type L1 may use, already checked (vmx-insn.c). */
void vpid02_invvpid(struct vcpu *v, u32 type, u16 vpid12, u64 linear)
{
	if (!v->vpid02_of)
		return; /* VPID02 holds nothing since its last flush */
	if (type == INVVPID_ALL)
		invvpid02(INVVPID_SINGLE, 0);
	else if (vpid12 == v->vpid02_of)
		invvpid02(type, linear);
}
