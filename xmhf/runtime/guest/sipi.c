/* Guest INIT and SIPI (SDM Vol. 3, 9.4 and 26.2/27.1): INIT always exits in VMX non-root operation;
 * the CPU then waits for SIPI in the wait-for-SIPI activity state, and a SIPI to a CPU in that state
 * exits with the vector, which starts it in real mode at vector * 4096. Whatever way the guest sent
 * them (xAPIC, x2APIC, shorthands, twice) the CPU delivers them: no APIC trapping is needed. */
#include <xmhf/runtime.h>
#include <xmhf/vcpu.h>
#include <x86/cpu.h>

void handle_init(struct vcpu *v)
{
	guest_state_after_init(v, v->cpu->index == 0);
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
