/* VMCS12 regions. L1 gives each VMCS a 4 KiB region; the format inside is the implementation's (SDM
 * 25.2), here: the revision identifier (offset 0), the VMX-abort indicator (4), the launch state (8),
 * then one 8-byte slot per field of the table (vmcs-fields.def) from offset 64.
 *
 * The current VMCS12 lives in an L0-private copy per CPU (v->vmcs12), as a real CPU keeps the
 * current VMCS on the processor (SDM 25.11.1) and KVM its cached vmcs12: VMPTRLD loads the copy from
 * L1's region, VMCLEAR, VMPTRLD of another VMCS and VMXOFF write it back. Everything VM entry checks
 * and VM exit uses comes from the copy, so L1 writing its region directly (or from another CPU) while
 * the VMCS is current cannot change a value after it was checked; such writes are lost, which the
 * SDM allows (25.11.1: software must not access the region of an active VMCS). A VMCS moved between
 * CPUs is VMCLEARed first (the SDM's rule, which KVM and Hyper-V follow), so its data follows it. */
#include <xmhf/runtime.h>
#include <xmhf/vcpu.h>
#include <lib/string.h>
#include <lib/vmcs-fields.h>
#include "nested.h"

#define ABORT_OFFSET 4
#define LAUNCH_STATE_OFFSET VMCS12_LAUNCH_STATE_OFFSET
#define FIELDS_OFFSET VMCS12_FIELDS_OFFSET

_Static_assert(FIELDS_OFFSET + VMCS_FIELD_COUNT * 8 <= 4096, "VMCS12 fields fit in one page");

static u64 *region_in_l1(u64 vmcs12_pa)
{
	u64 *region = guestmem_ptr(vmcs12_pa, PAGE_SIZE_4K);

	BUG_ON(!region); /* VMCLEAR/VMPTRLD checked the address */
	return region;
}

void vmcs12_load(struct vcpu *v, u64 vmcs12_pa)
{
	if (!v->vmcs12) {
		v->vmcs12 = page_alloc(1);
		nested_field_kinds_init();
	}
	memcpy(v->vmcs12, region_in_l1(vmcs12_pa), PAGE_SIZE_4K);
	v->l1_current_vmcs = vmcs12_pa;
	v->shadow_synced = 0; /* shadow.c: another VMCS12, or this one anew from memory */
}

/* Writes the copy back from the launch state on (the revision identifier and the abort indicator
 * are L1's, SDM 25.2) and makes no VMCS current. */
void vmcs12_release(struct vcpu *v)
{
	if (v->l1_current_vmcs == ~0ULL)
		return;
	nested_rare12_sync(v);
	memcpy((u8 *)region_in_l1(v->l1_current_vmcs) + LAUNCH_STATE_OFFSET, (u8 *)v->vmcs12 + LAUNCH_STATE_OFFSET,
	       PAGE_SIZE_4K - LAUNCH_STATE_OFFSET);
	v->l1_current_vmcs = ~0ULL;
}

static u64 *slot(struct vcpu *v, u32 encoding)
{
	int idx = vmcs_field_index(encoding);

	BUG_ON(idx < 0 || v->l1_current_vmcs == ~0ULL);
	return &v->vmcs12[FIELDS_OFFSET / 8 + idx];
}

/* By a variable encoding (L1's VMREAD/VMWRITE): any field, a rare guest field too. */
u64 vmcs12_read_any(struct vcpu *v, u32 encoding)
{
	nested_rare12_sync(v);
	return vmcs12_slot_get(slot(v, encoding), encoding);
}

void vmcs12_write_any(struct vcpu *v, u32 encoding, u64 value)
{
	nested_rare12_sync(v);
	if (!v->shadow_live)
		v->shadow_synced = 0; /* a shadowed field written outside an exit's copies (shadow.c) */
	vmcs12_slot_set(slot(v, encoding), encoding, value);
}

/* A field of a VMCS that is not current, in its region in L1's memory (a shadow VMCS L2 reads and
 * writes through VMCS shadowing, shadow12.c). The caller checked the address and the field. */
static u64 *region_slot(u64 vmcs12_pa, u32 encoding)
{
	int idx = vmcs_field_index(encoding);

	BUG_ON(idx < 0);
	return &region_in_l1(vmcs12_pa)[FIELDS_OFFSET / 8 + idx];
}

u64 vmcs12_region_read(u64 vmcs12_pa, u32 encoding)
{
	return vmcs12_slot_get(region_slot(vmcs12_pa, encoding), encoding);
}

void vmcs12_region_write(u64 vmcs12_pa, u32 encoding, u64 value)
{
	vmcs12_slot_set(region_slot(vmcs12_pa, encoding), encoding, value);
}

/* The current VMCS12 is a shadow VMCS: its revision identifier has bit 31 set (SDM 25.2). */
/* VMCLEAR of a VMCS that is not current here: its region in L1's memory is the truth. */
void vmcs12_clear_in_l1(u64 vmcs12_pa)
{
	((u32 *)region_in_l1(vmcs12_pa))[LAUNCH_STATE_OFFSET / 4] = 0;
}

/* A VMX abort (SDM 28.7) writes its indicator into the region in memory. */
void vmcs12_set_abort(struct vcpu *v, u32 indicator)
{
	((volatile u32 *)region_in_l1(v->l1_current_vmcs))[ABORT_OFFSET / 4] = indicator;
}
