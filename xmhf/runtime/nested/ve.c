/* EPT-violation #VE for L2 (SDM Vol. 3, 25.5.7), emulated by L0: VMCS02 never enables it, since every
 * EPT02 violation is L0's first. When L0 finds that an L2 access violates EPT12 (ept02.c) and L1 has
 * "EPT-violation #VE", a convertible violation becomes a virtualization exception (vector 20) in L2
 * instead of an EPT-violation exit to L1: L0 writes L1's virtualization-exception information area and
 * injects the #VE into L2, or gives L1 the exception exit when its exception bitmap has bit 20. */
#include <xmhf/runtime.h>
#include <xmhf/vcpu.h>
#include <lib/nested-logic.h>
#include <lib/vmcs-fields.h>
#include <x86/cpu.h>
#include "nested.h"

#define VECTOR_VE 20
#define EPT_SUPPRESS_VE (1ULL << 63)

/* The virtualization-exception information area (SDM 25.5.7.2). */
struct ve_info {
	u32 reason;          /* 48 */
	u32 busy;            /* 0xffffffff once written; a #VE happens only while it is 0 */
	u64 qualification;
	u64 linear;
	u64 physical;
	u16 eptp_index;
} __attribute__((packed));

/* SDM 27.2.1.1: the information address is 4 KiB aligned and within the physical-address width (and,
 * for L0, in L1's memory). */
bool nested_ve_controls_ok(struct vcpu *v)
{
	u64 pa;

	if (!(nested_proc2_12(v) & PROC2_EPT_VE))
		return true;
	pa = r12(v, VMCS_VE_INFO_ADDR);
	return !(pa & 0xfff) && !(pa >> vmx_caps.maxphyaddr) && guestmem_ptr(pa, PAGE_SIZE_4K);
}

/* An EPT12 violation of L2 (qualification qual12, VMCS02 current): a #VE if it is convertible (SDM
 * 25.5.7.1): the control on, bit 63 of the EPT12 entry that caused it clear, not during event
 * delivery, L2 in protected mode, the area's busy word 0. Returns true if so (L2 resumes with the #VE
 * injected, or L1 has the exception exit). */
bool nested_ve_convert(struct vcpu *v, const struct ept12_walk *walk, u64 qual12, u64 gpa2)
{
	volatile struct ve_info *ve;

	if (!(nested_proc2_12(v) & PROC2_EPT_VE) || (walk->entry[walk->last] & EPT_SUPPRESS_VE) ||
	    (vmcs_read(VMCS_IDT_VECTORING_INFO) & INTR_INFO_VALID) || !(vmcs_read(VMCS_GUEST_CR0) & CR0_PE))
		return false;
	/* Checked at entry and kept in L0's VMCS12 copy; gone only if L0's own map changed. */
	ve = guestmem_ptr(r12(v, VMCS_VE_INFO_ADDR), PAGE_SIZE_4K);
	if (!ve || ve->busy)
		return false;
	ve->reason = EXIT_REASON_EPT_VIOLATION;
	ve->busy = 0xffffffff;
	ve->qualification = qual12;
	ve->linear = vmcs_read(VMCS_GUEST_LINEAR_ADDRESS);
	ve->physical = gpa2;
	ve->eptp_index = (u16)r12(v, VMCS_EPTP_INDEX);
	/* Delivered as any exception (SDM 25.5.7.3): L1's exception bitmap may intercept it. */
	if (r12(v, VMCS_EXCEPTION_BITMAP) & (1U << VECTOR_VE)) {
		nested_reflect_exception(v, INTR_INFO_VALID | INTR_TYPE_HW_EXCEPTION | VECTOR_VE, 0, 0);
		return true;
	}
	vmcs_write(VMCS_ENTRY_INTR_INFO, INTR_INFO_VALID | INTR_TYPE_HW_EXCEPTION | VECTOR_VE);
	return true;
}
