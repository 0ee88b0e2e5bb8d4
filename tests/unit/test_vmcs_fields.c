#include <lib/vmcs-fields.h>
#include <x86/vmx.h>
#include <string.h>
#include "unit.h"

/* Every row of the table obeys the SDM's encoding rules (Appendix B) and the class in the row matches
 * the type bits of the encoding. */
TEST(vmcs_fields_encoding_rules)
{
	for (u32 i = 0; i < VMCS_FIELD_COUNT; i++) {
		u32 e = vmcs_fields[i].encoding;
		u32 type = (e >> 10) & 3;
		CHECK_EQ(e & 1, 0);           /* full access */
		CHECK_EQ(e >> 15, 0);         /* reserved bits */
		CHECK_EQ((e >> 12) & 1, 0);   /* bit 12 reserved */
		CHECK_EQ(type, (u32)vmcs_fields[i].cls);
		CHECK_EQ(vmcs_field_index(e), (int)i);
	}
}

TEST(vmcs_fields_unique)
{
	for (u32 i = 0; i < VMCS_FIELD_COUNT; i++)
		for (u32 j = i + 1; j < VMCS_FIELD_COUNT; j++) {
			CHECK(vmcs_fields[i].encoding != vmcs_fields[j].encoding);
			CHECK(strcmp(vmcs_fields[i].name, vmcs_fields[j].name) != 0);
		}
}

TEST(vmcs_fields_high_halves)
{
	/* The high half of a 64-bit field maps to the field; other odd encodings are invalid. */
	CHECK_EQ(vmcs_field_index(0x2801), vmcs_field_index(0x2800));
	CHECK_EQ(vmcs_field_bytes(0x2801), 4);
	CHECK_EQ(vmcs_field_bytes(0x2800), 8);
	CHECK_EQ(vmcs_field_index(0x0801), -1);
	CHECK_EQ(vmcs_field_index(0x4801), -1);
	CHECK_EQ(vmcs_field_index(0x6801), -1);
}

TEST(vmcs_fields_known_encodings)
{
	CHECK_EQ(vmcs_field_index(0x681e), VMCS_IDX_GUEST_RIP);
	CHECK_EQ(vmcs_field_index(0x4002), VMCS_IDX_PROC_BASED_CONTROLS);
	CHECK_EQ(vmcs_field_index(0x201a), VMCS_IDX_EPT_POINTER);
	CHECK_EQ(vmcs_field_index(0x4402), VMCS_IDX_EXIT_REASON);
	CHECK(vmcs_field_read_only(0x4402));
	CHECK(vmcs_field_read_only(0x6400));
	CHECK(!vmcs_field_read_only(0x681e));
	CHECK_EQ(vmcs_field_index(0x7fff), -1);
	CHECK_EQ(vmcs_field_index(0x10000), -1);
	CHECK_EQ(vmcs_field_bytes(0x0800), 2);
	CHECK_EQ(vmcs_field_bytes(0x4800), 4);
	CHECK_EQ(vmcs_field_bytes(0x6800), 8);
	CHECK_EQ(strcmp(vmcs_fields[VMCS_IDX_GUEST_CR0].name, "GUEST_CR0"), 0);
}

TEST(vmcs_fields_classes_cover_all_types)
{
	u32 n[4] = { 0 };
	for (u32 i = 0; i < VMCS_FIELD_COUNT; i++)
		n[vmcs_fields[i].cls]++;
	for (int t = 0; t < 4; t++)
		CHECK(n[t] > 0);
	/* Every host-state field is owned by L0 (or not offered) when L1 runs a guest. */
	for (u32 i = 0; i < VMCS_FIELD_COUNT; i++)
		if (vmcs_fields[i].cls == VMCS_CLASS_HOST)
			CHECK(vmcs_fields[i].nested == VMCS_NESTED_L0 || vmcs_fields[i].nested == VMCS_NESTED_UNSUPP);
}

/* IA32_VMX_VMCS_ENUM follows the fields offered: TSC_MULTIPLIER (0x2032, index 0x19) with TSC
 * scaling, GUEST_PREEMPTION_TIMER (0x482e, index 0x17) with the timer, XSS_EXIT_BITMAP (0x202c,
 * index 0x16) without it, GUEST_IA32_SYSENTER_CS (0x482a, index 0x15) with no optional feature; never
 * an unsupported field (tertiary controls 0x2034, index 0x1a). */
TEST(vmcs_fields_enum_msr)
{
	struct vmcs_feature_caps all = { .pin1 = ~0U, .proc1 = ~0U, .proc2_1 = ~0U, .exit1 = ~0U, .entry1 = ~0U };
	struct vmcs_feature_caps no_scaling = all, no_timer, none = { 0 };

	no_scaling.proc2_1 &= ~(u32)PROC2_TSC_SCALING;
	no_timer = no_scaling;
	no_timer.pin1 &= ~(u32)PIN_PREEMPTION_TIMER;
	CHECK_EQ(vmcs_enum_msr(&all), 0x19 << 1);
	CHECK_EQ(vmcs_enum_msr(&no_scaling), 0x17 << 1);
	CHECK_EQ(vmcs_enum_msr(&no_timer), 0x16 << 1);
	CHECK_EQ(vmcs_enum_msr(&none), 0x15 << 1);
}
