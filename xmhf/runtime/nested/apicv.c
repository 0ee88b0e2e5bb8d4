/* The TPR shadow for L2 (SDM Vol. 3, 25.6.8 and 29.1-29.3), run by the CPU on VMCS02: the
 * virtual-APIC address is an L1 guest-physical address, which is host-physical (EPT01 is an identity
 * map), so VMCS02 takes it as it is once checked to be L1's memory. CR8 accesses then go to L1's
 * virtual-APIC page without exits, and the CPU's TPR-below-threshold exits (43) are reflected to L1
 * like any other. */
#include <xmhf/runtime.h>
#include <xmhf/vcpu.h>
#include <lib/vmcs-fields.h>
#include <x86/cpu.h>
#include "nested.h"

#define APIC_OFFSET_TPR 0x80

static u64 r12(struct vcpu *v, u32 enc)
{
	return vmcs12_read(v, enc);
}

/* A page address the CPU will use (SDM 27.2.1.1): 4 KiB aligned, within the physical-address width;
 * and, for L0, L1's own memory, never the hypervisor's. */
static bool page_ok(u64 pa)
{
	return !(pa & 0xfff) && !(pa >> vmx_caps.maxphyaddr) && guestmem_ptr(pa, PAGE_SIZE_4K);
}

/* The address check of SDM 27.2.1.1 (with the other controls, when they changed). */
bool nested_apicv_controls_ok(struct vcpu *v)
{
	return !(r12(v, VMCS_PROC_BASED_CONTROLS) & PROC_TPR_SHADOW) || page_ok(r12(v, VMCS_VIRTUAL_APIC_ADDR));
}

/* The TPR threshold (SDM 27.2.1.1), at every entry: it is a field a VMRESUME copies without the
 * other checks, and L1 may write its virtual-APIC page between entries. Bits 31:4 must be 0 (no
 * virtual-interrupt delivery is offered); bits 3:0 must not exceed VTPR[7:4] (APIC-access
 * virtualization, which lifts this, is not offered). */
bool nested_apicv_tpr_ok(struct vcpu *v)
{
	const u8 *vapic;

	if (!(r12(v, VMCS_PROC_BASED_CONTROLS) & PROC_TPR_SHADOW))
		return true;
	if (r12(v, VMCS_TPR_THRESHOLD) & ~0xfULL)
		return false;
	vapic = guestmem_ptr(r12(v, VMCS_VIRTUAL_APIC_ADDR), PAGE_SIZE_4K);
	return vapic && (r12(v, VMCS_TPR_THRESHOLD) & 0xf) <= (u64)(vapic[APIC_OFFSET_TPR] >> 4);
}

/* VMCS02's TPR-shadow fields, as checked (VMCS02 current; its controls already hold L1's "use TPR
 * shadow"). */
void nested_apicv_setup02(struct vcpu *v)
{
	if (r12(v, VMCS_PROC_BASED_CONTROLS) & PROC_TPR_SHADOW) {
		vmcs_write(VMCS_VIRTUAL_APIC_ADDR, r12(v, VMCS_VIRTUAL_APIC_ADDR));
		vmcs_write(VMCS_TPR_THRESHOLD, r12(v, VMCS_TPR_THRESHOLD));
	}
}
