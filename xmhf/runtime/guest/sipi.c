/* INIT and SIPI VM exits (SDM Vol. 3, 26.2). The guest's INIT/SIPI IPIs are intercepted and emulated
 * (ipi.c), physical and logical destinations alike, so these exits only come from an INIT the guest
 * did not send: an AP then waits for its SIPI in the hypervisor like after an emulated INIT. A SIPI exit needs the guest in the
 * wait-for-SIPI activity state, which the hypervisor does not use; it is handled all the same. */
#include <xmhf/runtime.h>
#include <xmhf/vcpu.h>
#include <x86/cpu.h>

void handle_init(struct vcpu *v)
{
	/* Only INITs the hypervisor did not intercept get here (ipi.c). The BSP ignores them. */
	if (v->cpu->index == 0)
		return;
	ap_wait_for_sipi(v);
}

void handle_sipi(struct vcpu *v)
{
	u32 vector = (u32)vmcs_read(VMCS_EXIT_QUALIFICATION) & 0xff;

	guest_state_sipi(v, vector);
}
