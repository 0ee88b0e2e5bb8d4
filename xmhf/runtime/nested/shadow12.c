/* VMCS shadowing for L1's own use (SDM Vol. 3, 25.10 "VMCS types", 25.6.15 "VMCS shadowing bitmap
 * addresses", 27.3.1.5 the VMCS link pointer, VMREAD/VMWRITE in 31.3). L1 may VMPTRLD a VMCS whose
 * revision has bit 31 set (vmx-insn.c) and run L2 with "VMCS shadowing": L2's VMREAD/VMWRITE of a
 * field whose bit in L1's VMREAD/VMWRITE bitmap is 0 then reads or writes the shadow VMCS that
 * VMCS12's link pointer names, without a VM exit to L1; a bit of 1 is a VMREAD (23) / VMWRITE (25)
 * exit to L1.
 *
 * Design: VMCS02 never enables shadowing (entry.c), so each VMREAD/VMWRITE of L2 exits to L0, which
 * decides by L1's bitmaps and performs the access on the shadow VMCS in L1's memory, in this
 * hypervisor's VMCS12 layout (vmcs12.c), like any VMCS12 that is not current. The alternative, a
 * second hardware shadow VMCS linked from VMCS02, would need L1's bitmaps merged with the fields L1
 * is not offered (else L2 reads fields that do not exist for it), the whole shadow VMCS copied in and
 * out of the hardware one around every L2 entry and exit, and the hardware's VMfailValid moved from
 * VMCS02 into VMCS12: more state for a path that is not hot (L2 is a hypervisor's guest that itself
 * uses VMX instructions). Shadowing for L1's own VMREAD/VMWRITE (shadow.c) is separate and stays. */
#include <xmhf/runtime.h>
#include <xmhf/vcpu.h>
#include <lib/vmcs-fields.h>
#include <x86/cpu.h>
#include <lib/nested-logic.h>
#include "nested.h"

/* A VMREAD/VMWRITE bitmap address: 4 KiB aligned, within the physical-address width (SDM 27.2.1.1),
 * and in L1's memory (as the other bitmaps, entry.c). */
static bool bitmap_ok(u64 pa)
{
	return !(pa & 0xfff) && !(pa >> vmx_caps.maxphyaddr) && guestmem_ptr(pa, PAGE_SIZE_4K);
}

/* VM-entry control checks for VMCS shadowing (error 7 if false). */
bool nested_shadow12_controls_ok(struct vcpu *v)
{
	if (!(nested_proc2_12(v) & PROC2_VMCS_SHADOWING))
		return true;
	return bitmap_ok(r12(v, VMCS_VMREAD_BITMAP)) && bitmap_ok(r12(v, VMCS_VMWRITE_BITMAP));
}

/* The VMCS link pointer check of VM entry (SDM 27.3.1.5; bare Bochs: VMenterLoadCheckGuestState):
 * ~0, or a 4 KiB aligned address within the physical-address width whose revision identifier is
 * this CPU's with bit 31 equal to "VMCS shadowing", and not the current VMCS. VMCS02 has no link
 * pointer, so the CPU never sees L1's: the check is L0's. */
bool nested_shadow12_link_ok(struct vcpu *v)
{
	/* At every entry: the slot by its constant index (no encoding lookup on the VMRESUME path). */
	u64 link = vmcs12_slots(v)[VMCS_IDX_VMCS_LINK_POINTER];

	if (link == ~0ULL)
		return true;
	if ((link & 0xfff) || (link >> vmx_caps.maxphyaddr) || link == v->l1_current_vmcs)
		return false;
	const u32 *rev = guestmem_ptr(link, PAGE_SIZE_4K);
	u32 want = nested_vmcs_revision() | ((nested_proc2_12(v) & PROC2_VMCS_SHADOWING) ? 1U << 31 : 0);
	return rev && *rev == want;
}

/* Does L2's VMREAD/VMWRITE of field `enc` (its register value, 32 bits outside 64-bit mode) exit to L1?
 * Yes without VMCS shadowing, for an encoding above 7FFFH, and where the field's bit in L1's bitmap
 * is 1 (SDM 26.1.3). */
bool nested_shadow12_exits_to_l1(struct vcpu *v, bool write, u64 enc)
{
	if (!(nested_proc2_12(v) & PROC2_VMCS_SHADOWING) || enc > 0x7fff)
		return true;
	const u8 *bitmap = guestmem_ptr(r12(v, write ? VMCS_VMWRITE_BITMAP : VMCS_VMREAD_BITMAP), PAGE_SIZE_4K);
	return !bitmap || ((bitmap[enc >> 3] >> (enc & 7)) & 1);
}

static const u64 *l1_table(void *ctx, u64 pa)
{
	(void)ctx;
	return guestmem_ptr(pa & ~0xfffULL, PAGE_SIZE_4K);
}

/* L2's operand at gpa2 through EPT12 with the access's rights (SDM 29.3.3): a refusal is L1's EPT
 * violation (qualification: the access, the translation's rights in bits 5:3, a valid linear address
 * that translated to gpa2: bits 7 and 8) or misconfiguration. L2's paging structures are read
 * through EPT12 without rights checks (nested_l2_gpa_to_l1). */
bool nested_l2_operand_gpa(struct vcpu *v, u64 gpa2, u64 linear, bool write, u64 *gpa1)
{
	struct ept12_env env = { .table = l1_table, .ctx = NULL, .maxphyaddr = vmx_caps.maxphyaddr };
	struct ept12_walk walk;
	u32 access = write ? 2 : 1;

	if (!nested_l2_uses_ept(v)) {
		*gpa1 = gpa2;
		return true;
	}
	switch (ept12_walk(&env, nested_eptp12(v), gpa2, access, &walk)) {
	case EPT12_OK:
		*gpa1 = walk.gpa1;
		return true;
	case EPT12_VIOLATION:
		nested_reflect_ept12(v, EXIT_REASON_EPT_VIOLATION,
				     access | ((u64)walk.rights << 3) | (1ULL << 7) | (1ULL << 8), gpa2, linear);
		return false;
	case EPT12_MISCONFIG:
		nested_reflect_ept12(v, EXIT_REASON_EPT_MISCONFIG, 0, gpa2, linear);
		return false;
	case EPT12_BAD_TABLE:
	default:
		printf("XMHF: SECURITY: CPU %u: L1's EPT for L2 has a table in hypervisor memory (L2 GPA 0x%llx)\n",
		       v->cpu->index, (unsigned long long)gpa2);
		xmhf_stop("L1's EPT reaches into hypervisor memory");
	}
}
