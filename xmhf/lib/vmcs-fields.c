/* VMCS field table lookups (SDM Vol. 3, Appendix B: field encodings). */
#include <lib/vmcs-fields.h>

const struct vmcs_field_info vmcs_fields[VMCS_FIELD_COUNT] = {
#define VMCS_FIELD(name, enc, class, nested) { enc, #name, VMCS_CLASS_##class, VMCS_NESTED_##nested },
#include <x86/vmcs-fields.def>
#undef VMCS_FIELD
};

int vmcs_field_index(u32 enc)
{
	u32 full = enc;

	if (enc >> 15)
		return -1; /* bits 31:15 are reserved */
	/* Bit 0 selects the high half; only 64-bit fields have one. */
	if ((enc & 1) && ((enc >> 13) & 3) == 1)
		full = enc & ~1U;
	else if (enc & 1)
		return -1;
	switch (full) {
#define VMCS_FIELD(name, e, class, nested) \
	case e:                            \
		return VMCS_IDX_##name;
#include <x86/vmcs-fields.def>
#undef VMCS_FIELD
	default:
		return -1;
	}
}

u32 vmcs_field_bytes(u32 enc)
{
	switch ((enc >> 13) & 3) {
	case 0:
		return 2;
	case 1:
		return (enc & 1) ? 4 : 8;
	case 2:
		return 4;
	default:
		return 8;
	}
}

bool vmcs_field_read_only(u32 enc)
{
	return ((enc >> 10) & 3) == 1;
}
