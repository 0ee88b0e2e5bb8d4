/* Virtualized writes to an APIC-access page the CPU cannot virtualize itself (SDM Vol. 3, 29.4.3):
 * L1's APIC-access page on the real xAPIC page, which EPT01 keeps read-only for L0's trap, so an L2
 * write there is an EPT violation instead. L0 then does what the CPU would have done: the store,
 * emulated from the instruction (lib/mmio-store.c), goes to L1's virtual-APIC page, and APIC-write
 * emulation follows (TPR, EOI and self-IPI virtualization, VICR_HI, or an APIC-write exit to L1).
 * Reads need nothing: EPT01 lets them through, and the CPU virtualizes them. */
#include <xmhf/runtime.h>
#include <xmhf/vcpu.h>
#include <lib/mmio-store.h>
#include <lib/nested-logic.h>
#include <lib/string.h>
#include <lib/vmcs-fields.h>
#include <x86/cpu.h>
#include "nested.h"

#define APIC_TPR 0x80
#define APIC_PPR 0xa0
#define APIC_EOI 0xb0
#define APIC_ISR 0x100
#define APIC_IRR 0x200
#define APIC_ICR_LO 0x300
#define APIC_ICR_HI 0x310

struct vapic_at {
	u8 *vapic;
	u32 off;
};

/* The old value at the store's offset, for read-modify-write forms: the virtual-APIC page's. */
static u64 read_old(void *ctx, u32 size)
{
	const struct vapic_at *at = ctx;
	u64 v = 0;

	memcpy(&v, at->vapic + at->off, size);
	return v;
}

static u32 vreg(const u8 *vapic, u32 off)
{
	return *(const volatile u32 *)(vapic + off);
}

static void set_vreg(u8 *vapic, u32 off, u32 value)
{
	*(volatile u32 *)(vapic + off) = value;
}

/* PPR virtualization (SDM 29.1.3): VPPR from VTPR and SVI. The evaluation of pending virtual
 * interrupts that follows TPR, EOI and self-IPI virtualization is the CPU's at the VM entry that
 * resumes L2 (SDM 27.3.2.5; Bochs 2.7 omits it, docs/known-bugs.md). */
static void ppr_virtualize(u8 *vapic, u16 intr_status)
{
	set_vreg(vapic, APIC_PPR, apicv_vppr(vapic[APIC_TPR], (u8)(intr_status >> 8)));
}

/* EOI virtualization (SDM 29.1.4): SVI's bit leaves VISR, SVI becomes the highest one left, VPPR
 * follows; the EOI-exit bitmap may make it a trap-like virtualized-EOI exit (45) with the vector. */
static void eoi_virtualize(struct vcpu *v, u8 *vapic)
{
	u16 status = (u16)vmcs_read(VMCS_GUEST_INTR_STATUS);
	u8 vector = (u8)(status >> 8);
	u32 isr = APIC_ISR + 16 * (vector / 32);

	set_vreg(vapic, isr, vreg(vapic, isr) & ~(1U << (vector % 32)));
	status = (u16)((status & 0xff) | (apicv_highest_vector(vapic, APIC_ISR) << 8));
	vmcs_write(VMCS_GUEST_INTR_STATUS, status);
	ppr_virtualize(vapic, status);
	if ((r12(v, VMCS_EOI_EXIT_BITMAP0 + 2 * (vector / 64)) >> (vector % 64)) & 1)
		nested_reflect_with(v, EXIT_REASON_VIRTUALIZED_EOI, vector);
}

/* Self-IPI virtualization (SDM 29.1.5): the vector's VIRR bit, RVI raised to it. */
static void self_ipi_virtualize(u8 *vapic, u8 vector)
{
	u32 irr = APIC_IRR + 16 * (vector / 32);
	u16 status = (u16)vmcs_read(VMCS_GUEST_INTR_STATUS);

	set_vreg(vapic, irr, vreg(vapic, irr) | (1U << (vector % 32)));
	if (vector > (u8)status)
		vmcs_write(VMCS_GUEST_INTR_STATUS, (status & 0xff00) | vector);
}

/* APIC-write emulation (SDM 29.4.3.2) after a virtualized write at `off`; RIP is past the store. */
static void apic_write_emulate(struct vcpu *v, u8 *vapic, u32 off)
{
	u32 proc2 = nested_proc2_12(v);
	u8 vector;

	switch (off & ~3U) {
	case APIC_TPR:
		if (proc2 & PROC2_VIRTUAL_INTR_DELIVERY)
			ppr_virtualize(vapic, (u16)vmcs_read(VMCS_GUEST_INTR_STATUS));
		else if ((vapic[APIC_TPR] >> 4) < (r12(v, VMCS_TPR_THRESHOLD) & 0xf))
			nested_reflect_with(v, EXIT_REASON_TPR_BELOW_THRESHOLD, 0);
		return;
	case APIC_EOI:
		if (proc2 & PROC2_VIRTUAL_INTR_DELIVERY) {
			eoi_virtualize(v, vapic);
			return;
		}
		break;
	case APIC_ICR_LO:
		vector = apicv_self_ipi_vector(vreg(vapic, APIC_ICR_LO));
		if ((proc2 & PROC2_VIRTUAL_INTR_DELIVERY) && vector) {
			self_ipi_virtualize(vapic, vector);
			return;
		}
		break;
	case APIC_ICR_HI:
		set_vreg(vapic, APIC_ICR_HI, vreg(vapic, APIC_ICR_HI) & 0xff000000);
		return;
	default:
		break;
	}
	nested_reflect_with(v, EXIT_REASON_APIC_WRITE, off); /* trap-like, qualification = offset */
}

/* L2's linear write at page offset `off` of the APIC-access page (the TPR shadow on): true if the CPU
 * would virtualize it and L0 did (L2 resumes, or a trap-like exit went to L1); false for an
 * APIC-access exit: an offset or size not virtualized, or a store the emulator does not know. A
 * store to 080H writes the whole dword of VTPR (bytes 081H-083H cleared, as Bochs 2.7 does). */
bool nested_apicv_virtualize_write(struct vcpu *v, u32 off)
{
	u8 bytes[15];
	struct vapic_at at = { .vapic = guestmem_ptr(r12(v, VMCS_VIRTUAL_APIC_ADDR), PAGE_SIZE_4K), .off = off };
	struct mmio_cpu cpu;
	struct mmio_store st;
	u32 n;

	if (!at.vapic || !apicv_write_virtualized(nested_proc2_12(v), off, 1))
		return false;
	if (guest_store_decode(v, read_old, &at, &cpu, &st, bytes, &n) || !st.length ||
	    !apicv_write_virtualized(nested_proc2_12(v), off, st.size))
		return false;
	if (st.write && off == APIC_TPR)
		set_vreg(at.vapic, APIC_TPR, (u8)st.value);
	else if (st.write)
		memcpy(at.vapic + off, &st.value, st.size);
	guest_store_commit(v, &cpu, &st);
	if (st.write)
		apic_write_emulate(v, at.vapic, off);
	return true;
}
