/* INIT and SIPI VM exits (SDM Vol. 3, 26.2). While the guest's xAPIC page is trapped, its INIT/SIPI
 * IPIs of every destination (physical and logical) are emulated (ipi.c). A real INIT reaches a CPU
 * running the guest when the guest sends it as it is: after apic=init-exit stopped trapping xAPIC
 * writes (lapic-trap.c). The CPU then waits for its SIPI in the wait-for-SIPI activity state, where
 * INIT and NMI are blocked and a SIPI is a SIPI VM exit (SDM Vol. 3, 25.4.2, 26.2); the SIPI starts it
 * in real mode at vector * 4096. An INIT exit never resets the CPU: it stays in VMX operation (XMHF64
 * rebooted here, bugs 075/086). */
#include <xmhf/runtime.h>
#include <xmhf/vcpu.h>
#include <x86/cpu.h>

/* The guest waits for its SIPI in the wait-for-SIPI activity state (the CPU takes a real SIPI as a
 * SIPI exit); events pending for the old guest context are gone with the INIT. */
void guest_enter_wait_for_sipi(struct vcpu *v)
{
	guest_state_after_init(v, false);
	vmcs_write(VMCS_ENTRY_INTR_INFO, 0);
	v->nmi_pending = 0;
	vmcs_clear_bits(VMCS_PROC_BASED_CONTROLS, PROC_NMI_WINDOW_EXITING | PROC_INTR_WINDOW_EXITING);
	quiesce_park(v);
}

void handle_init(struct vcpu *v)
{
	static u32 warned;

	/* The BSP ignores INIT: it would restart the firmware, and no OS does it to a running system. */
	if (v->cpu->index == 0)
		return;
	/* A guest in VMX operation: blocked in its root operation, an INIT exit of its own when it
	 * enters its guest (nested/exit.c), taken at its VMXOFF (ipi_check_init). */
	if (v->l1_vmx_on) {
		__atomic_store_n(&v->init_pending, 1, __ATOMIC_RELEASE);
		return;
	}
	/* Twice in a row the first exit after a SIPI exit is an INIT exit, still at the SIPI's start
	 * address: most likely this CPU keeps the INIT pending after its exit (Bochs 2.7,
	 * docs/known-bugs.md), and the AP will never run; said once. */
	if (v->sipi_exit_at && v->exits == v->sipi_exit_at + 1 && vmcs_read(VMCS_GUEST_RIP) == 0 &&
	    vmcs_read(VMCS_GUEST_CS_BASE) == (u64)v->sipi_exit_vector << 12) {
		if (++v->init_at_sipi >= 2 && !__atomic_exchange_n(&warned, 1, __ATOMIC_RELAXED))
			printf("XMHF: WARNING: CPU %u: INIT VM exits before the first instruction after each SIPI: this "
			       "CPU seems to keep INIT pending after an INIT exit (Bochs 2.7); boot with apic=trap\n",
			       v->cpu->index);
	} else {
		v->init_at_sipi = 0;
	}
	guest_enter_wait_for_sipi(v);
}

void handle_sipi(struct vcpu *v)
{
	u32 vector = (u32)vmcs_read(VMCS_EXIT_QUALIFICATION) & 0xff;

	quiesce_unpark(v);
	v->sipi_exit_at = v->exits;
	v->sipi_exit_vector = vector;
	guest_state_sipi(v, vector);
	vmcs_write(VMCS_GUEST_ACTIVITY_STATE, ACTIVITY_ACTIVE);
	lapic_trap_ap_started(v);
}
