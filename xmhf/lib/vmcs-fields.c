/* VMCS field table lookups (SDM Vol. 3, Appendix B: field encodings). */
#include <lib/vmcs-fields.h>
#include <x86/vmx.h>

const struct vmcs_field_info vmcs_fields[VMCS_FIELD_COUNT] = {
#define VMCS_FIELD(name, enc, class, nested, exists)                                                \
	{ enc, #name, VMCS_CLASS_##class, VMCS_NESTED_##nested, VMCS_EXISTS_##exists },
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
#define VMCS_FIELD(name, e, class, nested, exists) \
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

bool vmcs_field_exists(u32 index, const struct vmcs_feature_caps *c)
{
	u32 proc2 = (c->proc1 & PROC_SECONDARY_CONTROLS) ? c->proc2_1 : 0;

	if (index >= VMCS_FIELD_COUNT)
		return false;
	switch (vmcs_fields[index].exists) {
	case VMCS_EXISTS_ALWAYS:
		return true;
	case VMCS_EXISTS_EPT:
		return proc2 & PROC2_EPT;
	case VMCS_EXISTS_VPID:
		return proc2 & PROC2_VPID;
	case VMCS_EXISTS_PREEMPT:
		return c->pin1 & PIN_PREEMPTION_TIMER;
	case VMCS_EXISTS_PAT:
		return (c->exit1 & (EXIT_SAVE_PAT | EXIT_LOAD_PAT)) || (c->entry1 & ENTRY_LOAD_PAT);
	case VMCS_EXISTS_EFER:
		return (c->exit1 & (EXIT_SAVE_EFER | EXIT_LOAD_EFER)) || (c->entry1 & ENTRY_LOAD_EFER);
	case VMCS_EXISTS_PERF:
		return (c->exit1 & EXIT_LOAD_PERF_GLOBAL_CTRL) || (c->entry1 & ENTRY_LOAD_PERF_GLOBAL_CTRL);
	case VMCS_EXISTS_TPR_SHADOW:
		return c->proc1 & PROC_TPR_SHADOW;
	case VMCS_EXISTS_APIC_ACCESS:
		return proc2 & PROC2_VIRTUALIZE_APIC;
	case VMCS_EXISTS_XSAVES:
		return proc2 & PROC2_XSAVES;
	case VMCS_EXISTS_VMFUNC:
		return proc2 & PROC2_VMFUNC;
	case VMCS_EXISTS_VID:
		return proc2 & PROC2_VIRTUAL_INTR_DELIVERY;
	case VMCS_EXISTS_NEVER:
		break;
	}
	return false;
}

u64 vmcs_enum_msr(const struct vmcs_feature_caps *c)
{
	u32 highest = 0;

	for (u32 i = 0; i < VMCS_FIELD_COUNT; i++)
		if (vmcs_fields[i].nested != VMCS_NESTED_UNSUPP && vmcs_field_exists(i, c) &&
		    ((vmcs_fields[i].encoding >> 1) & 0x1ff) > highest)
			highest = (vmcs_fields[i].encoding >> 1) & 0x1ff;
	return (u64)highest << 1;
}
