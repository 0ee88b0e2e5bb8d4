/* VMCS12 regions. L1 gives each VMCS a 4 KiB region; the format inside is the implementation's (SDM
 * 25.2), here: the revision identifier (offset 0), the VMX-abort indicator (4), the launch state (8),
 * then one 8-byte slot per field of the table (vmcs-fields.def) from offset 64. Keeping the values in
 * L1's memory makes VMCLEAR's write-back and VMPTRLD's load trivially consistent (KVM and Hyper-V move
 * VMCSs between CPUs relying on that). L1 writing the region directly is undefined behaviour by the
 * SDM; nothing read from it is trusted (VM entry will check every value). */
#include <xmhf/runtime.h>
#include <xmhf/vcpu.h>
#include <lib/vmcs-fields.h>
#include "nested.h"

#define LAUNCH_STATE_OFFSET 8
#define FIELDS_OFFSET 64

_Static_assert(FIELDS_OFFSET + VMCS_FIELD_COUNT * 8 <= 4096, "VMCS12 fields fit in one page");

static u64 *slot(u64 vmcs12_pa, u32 encoding)
{
	int idx = vmcs_field_index(encoding);
	u64 *region = guestmem_ptr(vmcs12_pa, PAGE_SIZE_4K);

	BUG_ON(idx < 0 || !region);
	return &region[FIELDS_OFFSET / 8 + idx];
}

u64 *vmcs12_slots(u64 vmcs12_pa)
{
	u64 *region = guestmem_ptr(vmcs12_pa, PAGE_SIZE_4K);

	BUG_ON(!region);
	return &region[FIELDS_OFFSET / 8];
}

u64 vmcs12_read(u64 vmcs12_pa, u32 encoding)
{
	u64 v = *slot(vmcs12_pa, encoding);

	switch (vmcs_field_bytes(encoding)) {
	case 2:
		return (u16)v;
	case 4:
		return (encoding & 1) ? v >> 32 : (u32)v;
	default:
		return v;
	}
}

void vmcs12_write_field(u64 vmcs12_pa, u32 encoding, u64 value)
{
	u64 *s = slot(vmcs12_pa, encoding);

	switch (vmcs_field_bytes(encoding)) {
	case 2:
		*s = (u16)value;
		break;
	case 4:
		if (encoding & 1) /* high half of a 64-bit field */
			*s = (*s & 0xffffffffULL) | ((u64)(u32)value << 32);
		else
			*s = (u32)value;
		break;
	default:
		*s = value;
	}
}

bool vmcs12_launched(u64 vmcs12_pa)
{
	const u32 *region = guestmem_ptr(vmcs12_pa, PAGE_SIZE_4K);

	BUG_ON(!region);
	return region[LAUNCH_STATE_OFFSET / 4] != 0;
}

void vmcs12_set_launched(u64 vmcs12_pa, bool launched)
{
	u32 *region = guestmem_ptr(vmcs12_pa, PAGE_SIZE_4K);

	BUG_ON(!region);
	region[LAUNCH_STATE_OFFSET / 4] = launched;
}
