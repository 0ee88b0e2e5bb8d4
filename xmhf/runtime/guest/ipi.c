/* Guest INIT and SIPI, emulated. The hypervisor sees every INIT/SIPI IPI the guest sends (xAPIC ICR
 * writes trap in EPT01, x2APIC ICR writes exit: lapic-trap.c) and never lets a real INIT reach a CPU
 * that runs the guest: an INIT becomes "init_pending" plus an NMI to the target, which then waits in
 * the hypervisor for a SIPI and enters the guest in real mode at vector * 4096 (SDM Vol. 3, 9.4,
 * 11.6.1). This works the same for one CPU (physical or logical destination), all-excluding-self and
 * broadcast, xAPIC or x2APIC, once or twice, and it keeps the guest from resetting a CPU out of VMX
 * operation (XMHF64 bugs 075/086).
 * Other IPIs go to the real APIC unchanged. */
#include <xmhf/runtime.h>
#include <xmhf/vcpu.h>
#include <x86/cpu.h>
#include <x86/lapic.h>
#include <lib/apic-dest.h>

#define DELIVERY(icr) (((icr) >> 8) & 7)
#define DELIVERY_INIT 5
#define DELIVERY_SIPI 6
#define DEST_LOGICAL (1U << 11)
#define LEVEL_ASSERT (1U << 14)
#define TRIGGER_LEVEL (1U << 15)
#define SHORTHAND(icr) (((icr) >> 18) & 3)

static void deliver(struct vcpu *src, struct cpu *target, u32 icr_low)
{
	struct vcpu *t = target->vcpu;

	if (!t || target == src->cpu)
		return; /* INIT/SIPI to oneself is not a valid request (SDM 11.6.1) */
	if (target->index == 0) {
		/* INIT to the BSP would restart the firmware; nobody does it to a running OS. */
		return;
	}
	/* Under the target's ipi_lock, so that the target tells an INIT sent before a SIPI from one
	 * sent after it (ap_wait_for_sipi). */
	if (DELIVERY(icr_low) == DELIVERY_INIT) {
		bool kick;
		if ((icr_low & TRIGGER_LEVEL) && !(icr_low & LEVEL_ASSERT))
			return; /* INIT level de-assert: no effect on current processors */
		spin_lock(&t->ipi_lock);
		t->sipi_pending = 0; /* a SIPI before this INIT is void */
		t->init_pending = 1;
		kick = !t->wait_sipi;
		spin_unlock(&t->ipi_lock);
		if (kick)
			ipi_kick(t); /* make it leave the guest */
	} else {
		/* A SIPI counts only for a CPU in wait-for-SIPI (or about to be, its INIT on the way). */
		spin_lock(&t->ipi_lock);
		if (t->wait_sipi || t->init_pending || t->l2_init_taken) {
			t->sipi_vector = icr_low & 0xff;
			t->sipi_pending = 1;
		}
		spin_unlock(&t->ipi_lock);
	}
}

/* A logical destination (SDM Vol. 3, 11.6.2.2): the target's logical ID, fixed by its x2APIC ID in
 * x2APIC mode, else its LDR and DFR as the guest last wrote them. */
static bool logical_match(struct cpu *c, u32 dest, bool x2apic)
{
	struct vcpu *t = c->vcpu;

	if (x2apic)
		return x2apic_logical_match(dest, c->apic_id);
	return t && xapic_logical_match(dest, t->apic_ldr, t->apic_dfr);
}

void ipi_emulate(struct vcpu *src, u32 dest, u32 icr_low, bool x2apic)
{
	u32 sh = SHORTHAND(icr_low);
	u32 broadcast = x2apic ? 0xffffffffU : 0xffU;

	if (sh == 1)
		return; /* self */
	for (u32 i = 0; i < ncpus; i++) {
		struct cpu *c = cpu_table[i];
		if (sh == 0 && !(icr_low & DEST_LOGICAL) && dest != broadcast && c->apic_id != dest)
			continue;
		if (sh == 0 && (icr_low & DEST_LOGICAL) && !logical_match(c, dest, x2apic))
			continue;
		if (sh == 3 && c == src->cpu)
			continue;
		deliver(src, c, icr_low);
	}
}

/* Sends the target CPU an NMI that makes it leave the guest, marked as such (kick_nmi) so that its
 * NMI handling does not take it for the guest's, however late it arrives. One is enough while one is
 * on its way: NMIs to a CPU collapse anyway. */
void ipi_kick(struct vcpu *t)
{
	if (!__atomic_exchange_n(&t->kick_nmi, 1, __ATOMIC_ACQ_REL))
		lapic_send_ipi(t->cpu->apic_id, ICR_DELIVERY_NMI);
}

/* Called for every NMI the CPU takes: true if it is the kick ipi_kick sent. */
bool nmi_is_kick(struct vcpu *v)
{
	return __atomic_exchange_n(&v->kick_nmi, 0, __ATOMIC_ACQ_REL) != 0;
}

/* Waits (wait_sipi set) until a SIPI for this CPU arrives and takes it: its vector. An INIT voids an
 * earlier SIPI (deliver), so any INIT seen then came before this SIPI, while the CPU was already
 * waiting, and has no effect. From here an INIT kicks this CPU again. */
static u32 take_sipi(struct vcpu *v)
{
	u32 vector;

	for (;;) {
		while (!__atomic_load_n(&v->sipi_pending, __ATOMIC_ACQUIRE))
			cpu_relax();
		spin_lock(&v->ipi_lock);
		if (v->sipi_pending) {
			vector = v->sipi_vector;
			v->sipi_pending = 0;
			v->init_pending = 0;
			v->wait_sipi = 0;
			v->l2_init_taken = 0;
			spin_unlock(&v->ipi_lock);
			return vector;
		}
		spin_unlock(&v->ipi_lock);
	}
}

/* In the hypervisor, until a SIPI for this CPU arrives; then the guest resumes in real mode at the
 * SIPI vector. An INIT while waiting leaves the CPU waiting (it is already in wait-for-SIPI), so
 * INIT-SIPI, INIT-SIPI-SIPI and INIT-INIT-SIPI all start it with the first SIPI (SDM Vol. 3, 9.4:
 * the second SIPI may be omitted). Only an INIT that comes after the SIPI was taken restarts it. */
void ap_wait_for_sipi(struct vcpu *v)
{
	for (;;) {
		spin_lock(&v->ipi_lock);
		v->wait_sipi = 1;
		v->init_pending = 0; /* the INIT that sent the CPU here */
		spin_unlock(&v->ipi_lock);
		guest_state_sipi(v, take_sipi(v));
		lapic_trap_ap_started(v);
		/* Events pending for the old guest context are gone with the INIT. */
		vmcs_write(VMCS_ENTRY_INTR_INFO, 0);
		v->nmi_pending = 0;
		vmcs_clear_bits(VMCS_PROC_BASED_CONTROLS, PROC_NMI_WINDOW_EXITING);
		/* An INIT after the SIPI was taken: back to waiting. */
		if (!__atomic_load_n(&v->init_pending, __ATOMIC_SEQ_CST))
			break;
	}
}

/* L1 entered L2 in the wait-for-SIPI activity state (after an INIT exit) while L0 still emulates the
 * guest's SIPIs, which therefore never reach the CPU: L0 waits for one here, as the CPU would in that
 * state, and returns its vector for the SIPI exit to L1. An INIT meanwhile is blocked (SDM 26.2) and
 * has no effect, as KVM treats it: INIT-INIT-SIPI starts L2's AP as it would start a CPU. */
u32 ipi_wait_sipi_nested(struct vcpu *v)
{
	spin_lock(&v->ipi_lock);
	v->wait_sipi = 1;
	spin_unlock(&v->ipi_lock);
	return take_sipi(v);
}

/* L1 entered L2 active after all: a SIPI kept since its INIT exit is not L2's any more. */
void ipi_l2_active(struct vcpu *v)
{
	if (!__atomic_load_n(&v->l2_init_taken, __ATOMIC_ACQUIRE))
		return;
	spin_lock(&v->ipi_lock);
	v->l2_init_taken = 0;
	v->sipi_pending = 0;
	spin_unlock(&v->ipi_lock);
}

/* L1 leaves VMX operation (its VMXOFF). An INIT blocked in its root operation is taken next
 * (ipi_check_init), but the SIPIs sent since reached a CPU that was not waiting for one, which ignores
 * them (a SIPI counts only in wait-for-SIPI: SDM Vol. 3, 9.4, 26.2); a SIPI kept for an L2 that L1 never
 * resumed after its INIT exit is void too. Kept, one would start the CPU at once and the guest's own
 * INIT-SIPI-SIPI would start it a second time (stress: "CPU 1 started 2 times"). */
void ipi_vmxoff(struct vcpu *v)
{
	spin_lock(&v->ipi_lock);
	v->sipi_pending = 0;
	v->l2_init_taken = 0;
	spin_unlock(&v->ipi_lock);
}

/* At the end of every exit: an INIT sent to this CPU takes it out of the guest. */
void ipi_check_init(struct vcpu *v)
{
	/* INIT is blocked while L1 is in VMX root operation (SDM 24.8); it stays pending until L1's
	 * VMXOFF (then this check takes it) or its next entry to L2 (an INIT exit: nested/exit.c). */
	if (v->l1_vmx_on)
		return;
	if (!__atomic_load_n(&v->init_pending, __ATOMIC_ACQUIRE))
		return;
	/* Once INIT/SIPI are no longer trapped, the SIPI that follows reaches the CPU: wait for it in
	 * the wait-for-SIPI activity state, where it becomes a SIPI exit (sipi.c). */
	if (lapic_trap_delinked()) {
		__atomic_store_n(&v->init_pending, 0, __ATOMIC_RELEASE);
		guest_enter_wait_for_sipi(v);
		return;
	}
	ap_wait_for_sipi(v);
}
