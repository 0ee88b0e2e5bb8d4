/* VMCS12 <-> VMCS02 copies for nested VMX (SDM Vol. 3, 27.3 and 28.3). */
#include <lib/vmcs-translate.h>
#include <lib/string.h>
#include <lib/nested-logic.h>
#include <x86/vmx.h>

#define EFER_LMA (1ULL << 10)

#define S12(p, name) ((p)->slots12[VMCS_IDX_##name])

u32 vmcs_field_list(const struct vmcs_feature_caps *offered, enum vmcs_class cls, u16 *out)
{
	u32 n = 0;

	for (u32 i = 0; i < VMCS_FIELD_COUNT; i++) {
		const struct vmcs_field_info *f = &vmcs_fields[i];
		/* L0's fields are not copied: VMCS12 keeps L1's value (the PML index, nested/pml.c). */
		if (f->cls != cls || f->nested == VMCS_NESTED_UNSUPP || f->nested == VMCS_NESTED_L0 ||
		    !vmcs_field_exists(i, offered))
			continue;
		/* Not copied either way: the link pointer (VMCS02 has none), the VM-instruction error and
		 * the exit reason (set by the caller); nor by the lists the guest interrupt status, which
		 * only virtual-interrupt delivery uses (the caller copies it then: every field in these
		 * lists costs a VMREAD at each exit). */
		if (i == VMCS_IDX_VMCS_LINK_POINTER || i == VMCS_IDX_VM_INSTRUCTION_ERROR || i == VMCS_IDX_EXIT_REASON ||
		    i == VMCS_IDX_GUEST_INTR_STATUS)
			continue;
		/* Nor the exit information only SMI exits write (vmcs-translate.h). */
#define SMI_ONLY(name) i == VMCS_IDX_##name ||
		if (VMCS_SMI_EXIT_INFO_FIELDS(SMI_ONLY) false)
			continue;
#undef SMI_ONLY
		out[n++] = (u16)i;
	}
	return n;
}

void vmcs_guest_12_to_02(const struct vmcs_pair *p)
{
	bool timer = S12(p, PIN_BASED_CONTROLS) & PIN_PREEMPTION_TIMER;

	for (u32 k = 0; k < p->nguest; k++) {
		u32 i = p->guest[k];
		if (i == VMCS_IDX_GUEST_PREEMPTION_TIMER && !timer)
			continue;
		p->write02(p->ctx, vmcs_fields[i].encoding, p->slots12[i]);
	}
	p->write02(p->ctx, VMCS_VMCS_LINK_POINTER, ~0ULL);
}

/* The guest fields saved only when L1's exit controls ask, with their encodings (no lookup at each
 * exit). */
static const struct {
	u16 idx;
	u32 ctl, enc;
} saved_only_with[] = {
#define SAVED_WITH(name, control) { VMCS_IDX_##name, control, VMCS_##name },
	VMCS_SAVED_WITH_EXIT_CONTROL(SAVED_WITH)
#undef SAVED_WITH
};

/* The exit control that saves field i, or 0: saved at every exit. */
static u32 saved_by(u32 i)
{
	for (u32 k = 0; k < sizeof(saved_only_with) / sizeof(saved_only_with[0]); k++)
		if (saved_only_with[k].idx == i)
			return saved_only_with[k].ctl;
	return 0;
}

u32 vmcs_guest_saved_list(const u16 *guest, u32 n, u16 *out)
{
	u32 m = 0;

	for (u32 k = 0; k < n; k++)
		if (!saved_by(guest[k]))
			out[m++] = guest[k];
	return m;
}

u32 vmcs_guest_split_list(const u16 *saved, u32 n, u16 *hot, u16 *rare, u32 *nrare)
{
	u32 nhot = 0;

	*nrare = 0;
	for (u32 k = 0; k < n; k++) {
		if (vmcs_field_shadowed(saved[k], false))
			hot[nhot++] = saved[k];
		else
			rare[(*nrare)++] = saved[k];
	}
	return nhot;
}

static void read_list(const struct vmcs_pair *p, const u16 *idx, u32 n)
{
	if (p->read02_list) {
		p->read02_list(p->ctx, idx, n, p->slots12);
		return;
	}
	for (u32 k = 0; k < n; k++)
		p->slots12[idx[k]] = p->read02(p->ctx, vmcs_fields[idx[k]].encoding);
}

void vmcs_guest_02_to_12(const struct vmcs_pair *p)
{
	u32 exit12 = (u32)S12(p, EXIT_CONTROLS);

	if (p->guest_saved) {
		read_list(p, p->guest_saved, p->nguest_saved);
		/* A control L1 was offered and set: its field exists (the entry checked the controls). */
		for (u32 k = 0; k < sizeof(saved_only_with) / sizeof(saved_only_with[0]); k++)
			if (exit12 & saved_only_with[k].ctl)
				p->slots12[saved_only_with[k].idx] = p->read02(p->ctx, saved_only_with[k].enc);
	} else {
		for (u32 k = 0; k < p->nguest; k++) {
			u32 i = p->guest[k], ctl = saved_by(i);
			if (!ctl || (exit12 & ctl))
				p->slots12[i] = p->read02(p->ctx, vmcs_fields[i].encoding);
		}
	}
	S12(p, GUEST_CR0) = nested_cr_guest12(p->read02(p->ctx, VMCS_CR0_GUEST_HOST_MASK), S12(p, CR0_GUEST_HOST_MASK),
					       p->read02(p->ctx, VMCS_GUEST_CR0), p->read02(p->ctx, VMCS_CR0_READ_SHADOW));
	S12(p, GUEST_CR4) = nested_cr_guest12(p->read02(p->ctx, VMCS_CR4_GUEST_HOST_MASK), S12(p, CR4_GUEST_HOST_MASK),
					       p->read02(p->ctx, VMCS_GUEST_CR4), p->read02(p->ctx, VMCS_CR4_READ_SHADOW));
	/* "IA-32e mode guest" is saved from EFER.LMA (SDM 28.2). */
	u64 entry12 = S12(p, ENTRY_CONTROLS) & ~(u64)ENTRY_IA32E_MODE_GUEST;
	if (p->read02(p->ctx, VMCS_GUEST_IA32_EFER) & EFER_LMA)
		entry12 |= ENTRY_IA32E_MODE_GUEST;
	S12(p, ENTRY_CONTROLS) = entry12;
}

void vmcs_exit_info_02_to_12(const struct vmcs_pair *p, u32 reason)
{
	read_list(p, p->exit_info, p->nexit_info);
	S12(p, EXIT_REASON) = reason;
	S12(p, ENTRY_INTR_INFO) &= ~(u64)INTR_INFO_VALID;
}

bool vmcs_field_resume_copy(u32 index)
{
	if (index >= VMCS_FIELD_COUNT)
		return false;
	const struct vmcs_field_info *f = &vmcs_fields[index];
	return f->nested == VMCS_NESTED_COPY && f->cls != VMCS_CLASS_HOST &&
	       f->cls != VMCS_CLASS_RO;
}

bool vmcs_field_shadowed(u32 index, bool write)
{
	if (index >= VMCS_FIELD_COUNT)
		return false;
	const struct vmcs_field_info *f = &vmcs_fields[index];
	if (f->nested == VMCS_NESTED_UNSUPP)
		return false;
	if (f->cls == VMCS_CLASS_RO)
		return !write;
#define SHADOWED_CASE(name) case VMCS_##name:
	switch (f->encoding) {
	VMCS_SHADOW_READ_HOST(SHADOWED_CASE)
		return !write;
	VMCS_HOT_GUEST_FIELDS(SHADOWED_CASE)
	VMCS_SHADOW_EXIT_WRITABLE(SHADOWED_CASE)
	VMCS_SHADOW_L1_WRITABLE(SHADOWED_CASE)
		return true;
	default:
		return false;
	}
#undef SHADOWED_CASE
}

_Static_assert(VMCS_FIELD_COUNT <= VMCS_FIELD_SET_WORDS * 64, "a field set has a bit per field");

#define SET_ADD(name) set[VMCS_IDX_##name / 64] |= 1ULL << (VMCS_IDX_##name % 64);
void vmcs_hot_guest_set(u64 *set)
{
	memset(set, 0, VMCS_FIELD_SET_WORDS * sizeof(u64));
	VMCS_HOT_GUEST_FIELDS(SET_ADD)
}

void vmcs_exit_info_set(u64 *set)
{
	memset(set, 0, VMCS_FIELD_SET_WORDS * sizeof(u64));
	VMCS_EXIT_INFO_FIELDS(SET_ADD)
}

void vmcs_shadow_writable_set(u64 *set)
{
	memset(set, 0, VMCS_FIELD_SET_WORDS * sizeof(u64));
	VMCS_HOT_GUEST_FIELDS(SET_ADD)
	VMCS_SHADOW_EXIT_WRITABLE(SET_ADD)
	VMCS_SHADOW_L1_WRITABLE(SET_ADD)
}

void vmcs_shadow_readonly_set(u64 *set)
{
	vmcs_exit_info_set(set);
	VMCS_SMI_EXIT_INFO_FIELDS(SET_ADD)
	VMCS_SHADOW_READ_HOST(SET_ADD)
	SET_ADD(EXIT_REASON)
	SET_ADD(VM_INSTRUCTION_ERROR)
}
#undef SET_ADD

bool vmcs_list_is_set(const u16 *list, u32 n, const u64 *set)
{
	u64 got[VMCS_FIELD_SET_WORDS] = { 0 };

	for (u32 k = 0; k < n; k++) {
		if (got[list[k] / 64] & (1ULL << (list[k] % 64)))
			return false;
		got[list[k] / 64] |= 1ULL << (list[k] % 64);
	}
	return !memcmp(got, set, sizeof(got));
}

void vmcs_shadow_bitmap_allow(u8 *bitmap, u32 encoding)
{
	u32 e = encoding & 0x7fff;

	bitmap[e / 8] &= (u8)~(1U << (e % 8));
	if (((encoding >> 13) & 3) == 1) { /* 64-bit: the high half, encoding | 1 */
		e |= 1;
		bitmap[e / 8] &= (u8)~(1U << (e % 8));
	}
}
