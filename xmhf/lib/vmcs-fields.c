/* VMCS field table lookups (SDM Vol. 3, Appendix B: field encodings). */
#include <lib/vmcs-fields.h>
#include <x86/vmx.h>

const struct vmcs_field_info vmcs_fields[VMCS_FIELD_COUNT] = {
#define VMCS_FIELD(name, enc, class, nested, exists)                                                \
	{ enc, #name, VMCS_CLASS_##class, VMCS_NESTED_##nested, VMCS_EXISTS_##exists },
#include <x86/vmcs-fields.def>
#undef VMCS_FIELD
};

/* Encodings (SDM Vol. 3, 25.11.2) as a dense key: width (bits 14:13), type (11:10), index (5:1; every
 * field's index is below 32). Two fields with one key would be a -Woverride-init error. */
#define VMCS_KEY(e) (((((e) >> 13) & 3) << 7) | ((((e) >> 10) & 3) << 5) | (((e) >> 1) & 31))
static const u8 index_of_key[512] = {
#define VMCS_FIELD(name, e, class, nested, exists) [VMCS_KEY(e)] = VMCS_IDX_##name + 1,
#include <x86/vmcs-fields.def>
#undef VMCS_FIELD
};
_Static_assert(VMCS_FIELD_COUNT < 255, "field indices fit index_of_key");

/* O(1): it runs for every VMCS12 field L0 reads or writes by encoding (a few hundred per nested
 * round trip), where the switch over every encoding cost about a tenth of the round trip. */
int vmcs_field_index(u32 enc)
{
	u32 i;

	/* Bits 31:15 and 12 are reserved, and no field has an index (bits 9:1) of 32 or more. */
	if ((enc >> 15) || (enc & (1U << 12)) || (enc & (0x1e0U << 1)))
		return -1;
	/* Bit 0 selects the high half; only 64-bit fields have one. */
	if (enc & 1) {
		if (((enc >> 13) & 3) != 1)
			return -1;
		enc &= ~1U;
	}
	i = index_of_key[VMCS_KEY(enc)];
	return (int)i - 1;
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
	case VMCS_EXISTS_SHADOWING:
		return proc2 & PROC2_VMCS_SHADOWING;
	case VMCS_EXISTS_PLE:
		return proc2 & PROC2_PAUSE_LOOP_EXITING;
	case VMCS_EXISTS_TSC_SCALING:
		return proc2 & PROC2_TSC_SCALING;
	case VMCS_EXISTS_PML:
		return proc2 & PROC2_PML;
	case VMCS_EXISTS_EPT_VE:
		return proc2 & PROC2_EPT_VE;
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
