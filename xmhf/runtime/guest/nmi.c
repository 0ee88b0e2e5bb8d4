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
	return false;
}

void nmi_host(void)
{
	struct cpu *c = this_cpu();

	if (hypervisor_nmi())
		return;
	if (c->vcpu)
		guest_nmi_arrived(c->vcpu);
}

void handle_exception_nmi(struct vcpu *v)
{
	u32 info = (u32)vmcs_read(VMCS_EXIT_INTR_INFO);

	if ((info & INTR_TYPE_MASK) == INTR_TYPE_NMI && (info & 0xff) == 2) {
		if (!hypervisor_nmi())
			guest_nmi_arrived(v);
		return;
	}
	/* The exception bitmap is empty: any other exception exit is unexpected. */
	panic("unexpected exception exit, interruption information 0x%x", info);
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
