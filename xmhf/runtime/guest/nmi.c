/* NMIs. The hypervisor runs the guest with NMI exiting and virtual NMIs (SDM Vol. 3, 25.3 and 26.7):
 * a physical NMI always exits (or, in the hypervisor, reaches its IDT), and the guest gets it back by
 * injection at an NMI window, so the guest's "blocking by NMI" is the CPU's own virtual-NMI blocking,
 * exact through IRET, with no software copy that could go stale (XMHF64 bug 104). NMIs the hypervisor
 * sends itself (to stop the machine) are told apart by a flag set before sending them. */
#include <xmhf/runtime.h>
#include <xmhf/vcpu.h>
#include <x86/cpu.h>

volatile u32 xmhf_stopping;

/* A guest NMI: at most two can be pending architecturally (one in service, one latched). */
static void guest_nmi_arrived(struct vcpu *v)
{
	if (v->nmi_pending < 2)
		__atomic_add_fetch(&v->nmi_pending, 1, __ATOMIC_SEQ_CST);
}

static bool hypervisor_nmi(void)
{
	if (__atomic_load_n(&xmhf_stopping, __ATOMIC_ACQUIRE)) {
		/* Another CPU is stopping the machine: park here for good. */
		cpu_halt_forever();
	}
	return quiesce_nmi();
}

void nmi_host(void)
{
	struct cpu *c = this_cpu();
	struct vcpu *v = c->vcpu;

	if (hypervisor_nmi() || !v)
		return;
	/* An INIT request's NMI is handled when this exit ends (ipi_check_init); a guest NMI is injected
	 * at the next NMI window. Asking for an NMI-window exit now makes the guest exit again at once if
	 * the NMI came after the last check before VM entry. */
	if (!nmi_is_kick(v))
		guest_nmi_arrived(v);
	/* The current VMCS is VMCS01 or, while L2 runs, VMCS02; never the shadow VMCS (nested/shadow.c),
	 * which holds L1's own controls: the end of the exit asks for the window then. */
	if (!v->shadow_current)
		vmcs_set_bits(VMCS_PROC_BASED_CONTROLS, PROC_NMI_WINDOW_EXITING);
}

/* A VM exit caused by an NMI leaves NMIs blocked in the hypervisor until the next IRET (SDM Vol. 3,
 * 27.2.3 and 26.7.1 (NMI blocking after VM exits caused by NMIs)); VM entry does not lift it when "virtual NMIs"
 * is set. An IRET to the next instruction unblocks them, or the next NMI (another INIT request, a
 * guest NMI) would never arrive. */
static void unblock_nmis(void)
{
	__asm__ volatile("movq %%rsp, %%rax\n\t"
			 "pushq %[ss]\n\t"
			 "pushq %%rax\n\t"
			 "pushfq\n\t"
			 "pushq %[cs]\n\t"
			 "leaq 1f(%%rip), %%rax\n\t"
			 "pushq %%rax\n\t"
			 "iretq\n"
			 "1:"
			 :
			 : [ss] "i"((u64)GDT_SEL_DATA), [cs] "i"((u64)GDT_SEL_CODE64)
			 : "rax", "memory", "cc");
}

void handle_exception_nmi(struct vcpu *v)
{
	u32 info = (u32)vmcs_read(VMCS_EXIT_INTR_INFO);

	if ((info & INTR_TYPE_MASK) == INTR_TYPE_NMI && (info & 0xff) == 2) {
		unblock_nmis();
		/* The NMI of an INIT request (ipi_kick) is not the guest's. */
		if (!hypervisor_nmi() && !nmi_is_kick(v))
			guest_nmi_arrived(v);
		return;
	}
	/* The exception bitmap is empty: any other exception exit is unexpected. */
	panic("unexpected exception exit, interruption information 0x%x", info);
}

/* An NMI exit while L2 runs: L0's own NMIs stay here; a guest NMI goes to L1 if L1 asked for NMI
 * exiting (reflected: returns false), else into L2 at its next NMI window. */
bool nested_l0_nmi(struct vcpu *v)
{
	unblock_nmis();
	if (hypervisor_nmi() || nmi_is_kick(v))
		return true;
	if (vmcs12_read_pin_nmi_exiting(v))
		return false;
	guest_nmi_arrived(v);
	return true;
}

void handle_nmi_window(struct vcpu *v)
{
	/* The guest can take an NMI now (no virtual-NMI blocking, not in an STI/MOV SS shadow). If an
	 * event is already being injected, wait for the next window. */
	if (v->nmi_pending && !(vmcs_read(VMCS_ENTRY_INTR_INFO) & INTR_INFO_VALID)) {
		vmcs_write(VMCS_ENTRY_INTR_INFO, INTR_INFO_VALID | INTR_TYPE_NMI | 2);
		__atomic_sub_fetch(&v->nmi_pending, 1, __ATOMIC_SEQ_CST);
	}
	if (!v->nmi_pending)
		vmcs_clear_bits(VMCS_PROC_BASED_CONTROLS, PROC_NMI_WINDOW_EXITING);
}
