/* APIC virtualization for L2 (SDM Vol. 3, 25.6.8 and chapter 29): TPR shadow, APIC-access
 * virtualization, x2APIC-mode virtualization, APIC-register virtualization and virtual-interrupt
 * delivery, run by the CPU on VMCS02: the virtual-APIC and APIC-access addresses are L1
 * guest-physical addresses, which are host-physical (EPT01 is an identity map), so VMCS02 takes them
 * as they are once checked to be L1's memory. CR8 accesses, x2APIC MSR accesses L1's bitmap lets
 * through and virtualized APIC-page accesses then reach L1's virtual-APIC page without exits, and
 * the CPU's TPR-below-threshold (43), APIC-access (44), virtualized-EOI (45) and APIC-write (56)
 * exits are reflected to L1 like any other. L0's MSR intercepts in 800H-8FFH are only ICR writes
 * (guest/msr-policy.c), which x2APIC-mode virtualization never virtualizes (SDM 29.5), so L0 handles
 * them for L2 as the CPU would: as an access to L1's APIC. */
#include <xmhf/runtime.h>
#include <xmhf/vcpu.h>
#include <lib/vmcs-fields.h>
#include <x86/cpu.h>
#include <lib/nested-logic.h>
#include "nested.h"

#define APIC_OFFSET_TPR 0x80

/* A page address the CPU will use (SDM 27.2.1.1): 4 KiB aligned, within the physical-address width;
 * and, for L0, L1's own memory, never the hypervisor's. */
static bool page_ok(u64 pa)
{
	return !(pa & 0xfff) && !(pa >> vmx_caps.maxphyaddr) && guestmem_ptr(pa, PAGE_SIZE_4K);
}

/* The checks of SDM 27.2.1.1 on the APIC-virtualization controls and addresses (with the other
 * controls, when they changed). Virtualizing APIC accesses needs no TPR shadow; x2APIC-mode
 * virtualization, APIC-register virtualization and virtual-interrupt delivery do, and the first
 * excludes APIC-access virtualization; virtual-interrupt delivery needs external-interrupt exiting. */
bool nested_apicv_controls_ok(struct vcpu *v)
{
	u32 pin = (u32)r12(v, VMCS_PIN_BASED_CONTROLS), proc = (u32)r12(v, VMCS_PROC_BASED_CONTROLS);
	u32 proc2 = nested_proc2_12(v);

	if (proc & PROC_TPR_SHADOW) {
		if (!page_ok(r12(v, VMCS_VIRTUAL_APIC_ADDR)))
			return false;
	} else if (proc2 & (PROC2_VIRTUALIZE_X2APIC | PROC2_APIC_REGISTER_VIRT | PROC2_VIRTUAL_INTR_DELIVERY)) {
		return false;
	}
	if ((proc2 & PROC2_VIRTUAL_INTR_DELIVERY) && !(pin & PIN_EXTINT_EXITING))
		return false;
	if ((proc2 & PROC2_VIRTUALIZE_APIC) &&
	    (!page_ok(r12(v, VMCS_APIC_ACCESS_ADDR)) || (proc2 & PROC2_VIRTUALIZE_X2APIC)))
		return false;
	return true;
}

/* nested_apicv_tpr_ok's last rule: the threshold against VTPR in L1's virtual-APIC page. */
bool nested_apicv_tpr_vapic_ok(struct vcpu *v)
{
	const u8 *vapic = guestmem_ptr(r12(v, VMCS_VIRTUAL_APIC_ADDR), PAGE_SIZE_4K);

	return vapic && (r12(v, VMCS_TPR_THRESHOLD) & 0xf) <= (u64)(vapic[APIC_OFFSET_TPR] >> 4);
}

/* VMCS02's APIC-virtualization fields, as checked (VMCS02 current; its controls already hold L1's
 * "use TPR shadow" and secondary APIC controls, and its guest state the guest interrupt status).
 * A VMRESUME after L1 changed only the threshold or an EOI-exit bitmap copies just that field
 * (entry.c: they copy as they are). */
void nested_apicv_setup02(struct vcpu *v)
{
	u32 proc2 = nested_proc2_12(v);

	if (r12(v, VMCS_PROC_BASED_CONTROLS) & PROC_TPR_SHADOW) {
		vmcs_write(VMCS_VIRTUAL_APIC_ADDR, r12(v, VMCS_VIRTUAL_APIC_ADDR));
		vmcs_write(VMCS_TPR_THRESHOLD, r12(v, VMCS_TPR_THRESHOLD));
	}
	if (proc2 & PROC2_VIRTUALIZE_APIC)
		vmcs_write(VMCS_APIC_ACCESS_ADDR, r12(v, VMCS_APIC_ACCESS_ADDR));
	v->l2_vid = (proc2 & PROC2_VIRTUAL_INTR_DELIVERY) != 0;
	if (proc2 & PROC2_VIRTUAL_INTR_DELIVERY) {
		for (u32 i = 0; i < 4; i++)
			vmcs_write(VMCS_EOI_EXIT_BITMAP0 + 2 * i, r12(v, VMCS_EOI_EXIT_BITMAP0 + 2 * i));
		vmcs_write(VMCS_GUEST_INTR_STATUS, r12(v, VMCS_GUEST_INTR_STATUS));
	}
}

/* At an exit of L2 with L2's state saved, when VMCS02 has virtual-interrupt delivery (v->l2_vid;
 * VMCS02 current): RVI and SVI as the CPU left them (SDM 28.3.1). Outside the guest-state lists,
 * whose every field costs a VMREAD at each exit. */
void nested_apicv_save12(struct vcpu *v)
{
	vmcs12_slots(v)[VMCS_IDX_GUEST_INTR_STATUS] = vmcs_read(VMCS_GUEST_INTR_STATUS);
}

/* Before an entry into L2 with virtual-interrupt delivery: the event injected, for
 * nested_apicv_vectoring. */
void nested_apicv_entering(struct vcpu *v)
{
	if (v->in_l2 && v->l2_vid)
		v->l2_entry_intr = (u32)vmcs_read(VMCS_ENTRY_INTR_INFO);
}

/* An exit of L2 with virtual-interrupt delivery that L0 handles itself (an EPT02 miss) interrupted an
 * event's delivery: L0 delivers it again (reinject_interrupted_event). Where the exit interrupted the
 * delivery of a virtual interrupt, Bochs 2.7 reports a stale event (docs/known-bugs.md), and injecting
 * that would lose the virtual interrupt (VISR left set) and deliver something L2 never raised: then
 * external interrupt SVI is injected instead, as the SDM has it (apicv_vectoring_info says when). */
void nested_apicv_vectoring(struct vcpu *v, bool ept_violation)
{
	u32 idt = (u32)vmcs_read(VMCS_IDT_VECTORING_INFO), fixed;
	u64 qual = ept_violation ? vmcs_read(VMCS_EXIT_QUALIFICATION) : 0;
	u32 size = (vmcs_read(VMCS_ENTRY_CONTROLS) & ENTRY_IA32E_MODE_GUEST) ? 16 :
		   (vmcs_read(VMCS_GUEST_CR0) & CR0_PE)			? 8 :
										  4;
	u16 gis = (u16)vmcs_read(VMCS_GUEST_INTR_STATUS);

	fixed = apicv_vectoring_info(idt, v->l2_entry_intr, gis, (qual >> 7) & 1,
				     (qual >> 7) & 1 ? vmcs_read(VMCS_GUEST_LINEAR_ADDRESS) : 0,
				     vmcs_read(VMCS_GUEST_IDTR_BASE) + (u64)size * (gis >> 8), size);
	/* As reinject_interrupted_event: an event the exit's handler injected itself stands. */
	if (fixed != idt && !(vmcs_read(VMCS_ENTRY_INTR_INFO) & INTR_INFO_VALID))
		vmcs_write(VMCS_ENTRY_INTR_INFO, fixed);
}

/* An EPT violation of L2 at L1 guest-physical address gpa1, which EPT01 forbids (L0's read-only
 * xAPIC page): if it is on the APIC-access page L1 virtualizes, it is L1's APIC-access exit, not
 * L0's APIC write (SDM 29.4: the access never reaches the APIC): a virtualized write
 * (apicv-write.c), or an APIC-access exit reflected with the qualification of SDM 28.2.1 (Table 28-6: page offset in bits
 * 11:0, access type in bits 15:12). Returns true if it was L1's (L2 may have resumed or exited). */
bool nested_apicv_access_exit(struct vcpu *v, u64 gpa1, u64 qual)
{
	bool vectoring = vmcs_read(VMCS_IDT_VECTORING_INFO) & INTR_INFO_VALID;
	u64 type;

	if (!(nested_proc2_12(v) & PROC2_VIRTUALIZE_APIC) || (gpa1 & ~0xfffULL) != r12(v, VMCS_APIC_ACCESS_ADDR))
		return false;
	if ((qual & (1ULL << 7)) && (qual & (1ULL << 8))) /* a linear access */
		type = vectoring ? 3 : (qual & 2) ? 1 : (qual & 4) ? 2 : 0;
	else /* a guest-physical access (a paging-structure entry on the page) */
		type = vectoring ? 10 : 15;
	if (type == 1 && (r12(v, VMCS_PROC_BASED_CONTROLS) & PROC_TPR_SHADOW) &&
	    nested_apicv_virtualize_write(v, (u32)(gpa1 & 0xfff)))
		return true;
	nested_reflect_with(v, EXIT_REASON_APIC_ACCESS, (type << 12) | (type < 10 ? (gpa1 & 0xfff) : 0));
	return true;
}
