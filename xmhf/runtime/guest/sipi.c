/* INIT and SIPI VM exits (SDM Vol. 3, 26.2). The guest's INIT/SIPI IPIs are intercepted and emulated
 * (ipi.c), so these exits only come from IPIs sent as they are (logical destinations): an AP then
 * waits for its SIPI in the hypervisor like after an emulated INIT. A SIPI exit needs the guest in the
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

	guest_state_real_mode((u16)(vector << 8), (u64)vector << 12, 0);
	vmcs_write(VMCS_GUEST_CR0, vmcs_read(VMCS_GUEST_CR0) | CR0_CD | CR0_NW);
	vmcs_write(VMCS_CR0_READ_SHADOW, CR0_CD | CR0_NW | CR0_ET);
	guest_cr0_sync_cache_bits(CR0_CD | CR0_NW);
	v->regs.gpr[REG_RDX] = 0x600;
}
