/* The VMCS field table (xmhf/arch/x86/vmcs-fields.def) as data: lookup by encoding, names, classes and
 * nested-translation properties. Pure logic, unit-tested on the host. */
#ifndef LIB_VMCS_FIELDS_H
#define LIB_VMCS_FIELDS_H
#include <xmhf/types.h>

enum vmcs_class { VMCS_CLASS_CTRL, VMCS_CLASS_RO, VMCS_CLASS_GUEST, VMCS_CLASS_HOST };
enum vmcs_nested { VMCS_NESTED_COPY, VMCS_NESTED_GPA, VMCS_NESTED_L0, VMCS_NESTED_CUSTOM, VMCS_NESTED_UNSUPP };

struct vmcs_field_info {
	u32 encoding;        /* full-field encoding (access type 0) */
	const char *name;
	enum vmcs_class cls;
	enum vmcs_nested nested;
};

enum vmcs_field_index {
#define VMCS_FIELD(name, enc, class, nested) VMCS_IDX_##name,
#include <x86/vmcs-fields.def>
#undef VMCS_FIELD
	VMCS_FIELD_COUNT
};

extern const struct vmcs_field_info vmcs_fields[VMCS_FIELD_COUNT];

/* Index of the field an encoding names (the high half of a 64-bit field maps to its field), or -1. */
int vmcs_field_index(u32 encoding);

/* Width in bytes of a field's value as VMREAD/VMWRITE move it: 2, 4, 8, or 8 for natural width;
 * 4 for the high half of a 64-bit field. */
u32 vmcs_field_bytes(u32 encoding);

/* True if the encoding is a read-only (VM-exit information) field. */
bool vmcs_field_read_only(u32 encoding);

#endif
