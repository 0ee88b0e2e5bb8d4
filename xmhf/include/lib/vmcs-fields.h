/* The VMCS field table (xmhf/arch/x86/vmcs-fields.def) as data: lookup by encoding, names, classes and
 * nested-translation properties. Pure logic, unit-tested on the host. */
#ifndef LIB_VMCS_FIELDS_H
#define LIB_VMCS_FIELDS_H
#include <xmhf/types.h>

enum vmcs_class { VMCS_CLASS_CTRL, VMCS_CLASS_RO, VMCS_CLASS_GUEST, VMCS_CLASS_HOST };
enum vmcs_nested { VMCS_NESTED_COPY, VMCS_NESTED_GPA, VMCS_NESTED_L0, VMCS_NESTED_CUSTOM, VMCS_NESTED_UNSUPP };
enum vmcs_exists {
	VMCS_EXISTS_ALWAYS, VMCS_EXISTS_EPT, VMCS_EXISTS_VPID, VMCS_EXISTS_PREEMPT, VMCS_EXISTS_PAT, VMCS_EXISTS_EFER,
	VMCS_EXISTS_PERF, VMCS_EXISTS_TPR_SHADOW, VMCS_EXISTS_APIC_ACCESS, VMCS_EXISTS_XSAVES, VMCS_EXISTS_VMFUNC,
	VMCS_EXISTS_SHADOWING, VMCS_EXISTS_PLE, VMCS_EXISTS_TSC_SCALING, VMCS_EXISTS_PML, VMCS_EXISTS_EPT_VE,
	VMCS_EXISTS_VID, VMCS_EXISTS_NEVER
};

struct vmcs_field_info {
	u32 encoding;        /* full-field encoding (access type 0) */
	const char *name;
	enum vmcs_class cls;
	enum vmcs_nested nested;
	enum vmcs_exists exists;
};

enum vmcs_field_index {
#define VMCS_FIELD(name, enc, class, nested, exists) VMCS_IDX_##name,
#include <x86/vmcs-fields.def>
#undef VMCS_FIELD
	VMCS_FIELD_COUNT
};

extern const struct vmcs_field_info vmcs_fields[VMCS_FIELD_COUNT];

/* Index of the field an encoding names (the high half of a 64-bit field maps to its field), or -1. */
int vmcs_field_index(u32 encoding);

/* vmcs_field_index for an encoding known at compile time, folded to a constant (the table as a
 * switch); any other encoding takes the table lookup. */
static inline __attribute__((always_inline)) int vmcs_field_index_fast(u32 enc)
{
	if (!__builtin_constant_p(enc))
		return vmcs_field_index(enc);
	switch ((enc & 0x6001) == 0x2001 ? enc & ~1U : enc) { /* a 64-bit field's high half: its field */
#define VMCS_FIELD(name, encoding, class, nested, exists) \
	case encoding:                                     \
		return VMCS_IDX_##name;
#include <x86/vmcs-fields.def>
#undef VMCS_FIELD
	default:
		return -1;
	}
}

/* Width in bytes of a field's value as VMREAD/VMWRITE move it: 2, 4, 8, or 8 for natural width;
 * 4 for the high half of a 64-bit field. */
static inline u32 vmcs_field_bytes(u32 encoding)
{
	static const u8 bytes[4] = { 2, 8, 4, 8 }; /* width bits 14:13: 16-bit, 64-bit, 32-bit, natural */

	return (encoding & 0x6001) == 0x2001 ? 4 : bytes[(encoding >> 13) & 3]; /* a 64-bit field's high half: 4 */
}

/* The allowed-1 settings of the VMX controls (bits 63:32 of the capability MSRs, the TRUE ones where
 * they exist) of a processor: they decide which fields it has. */
struct vmcs_feature_caps {
	u32 pin1, proc1, proc2_1, exit1, entry1;
};

/* True if field `index` exists on a processor with these controls (SDM Vol. 3, Appendix B). */
bool vmcs_field_exists(u32 index, const struct vmcs_feature_caps *caps);

/* IA32_VMX_VMCS_ENUM for these controls (SDM A.9): bits 9:1 the highest index (encoding bits 9:1) of
 * the fields that exist and that nested VMX handles (not UNSUPP), the rest 0. */
u64 vmcs_enum_msr(const struct vmcs_feature_caps *caps);

/* True if the encoding is a read-only (VM-exit information) field. */
bool vmcs_field_read_only(u32 encoding);

#endif
