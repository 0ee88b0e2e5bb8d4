/* VMCS12 <-> VMCS02 copies for nested VMX (SDM Vol. 3, 27.3 and 28.3). */
#include <lib/vmcs-translate.h>
#include <lib/nested-logic.h>
#include <x86/vmx.h>

#define EFER_LMA (1ULL << 10)

/* A guest-state field L1 has and nested VMX translates. */
static bool guest_field(const struct vmcs_pair *p, u32 i)
{
	const struct vmcs_field_info *f = &vmcs_fields[i];

	return f->cls == VMCS_CLASS_GUEST && f->nested != VMCS_NESTED_UNSUPP && vmcs_field_exists(i, p->offered);
}

void vmcs_guest_12_to_02(const struct vmcs_pair *p)
{
	u32 pin12 = (u32)p->read12(p->ctx, VMCS_PIN_BASED_CONTROLS);

	for (u32 i = 0; i < VMCS_FIELD_COUNT; i++) {
		u32 enc = vmcs_fields[i].encoding;
		if (!guest_field(p, i) || enc == VMCS_VMCS_LINK_POINTER)
			continue;
		if (enc == VMCS_GUEST_PREEMPTION_TIMER && !(pin12 & PIN_PREEMPTION_TIMER))
			continue;
		p->write02(p->ctx, enc, p->read12(p->ctx, enc));
	}
	p->write02(p->ctx, VMCS_VMCS_LINK_POINTER, ~0ULL);
}

void vmcs_guest_02_to_12(const struct vmcs_pair *p)
{
	u32 exit12 = (u32)p->read12(p->ctx, VMCS_EXIT_CONTROLS);

	for (u32 i = 0; i < VMCS_FIELD_COUNT; i++) {
		u32 enc = vmcs_fields[i].encoding;
		if (!guest_field(p, i) || enc == VMCS_VMCS_LINK_POINTER)
			continue;
		/* Saved only when L1's exit controls ask (SDM 28.3.1). */
		if ((enc == VMCS_GUEST_IA32_DEBUGCTL || enc == VMCS_GUEST_DR7) && !(exit12 & EXIT_SAVE_DEBUG_CONTROLS))
			continue;
		if (enc == VMCS_GUEST_IA32_EFER && !(exit12 & EXIT_SAVE_EFER))
			continue;
		if (enc == VMCS_GUEST_IA32_PAT && !(exit12 & EXIT_SAVE_PAT))
			continue;
		if (enc == VMCS_GUEST_PREEMPTION_TIMER && !(exit12 & EXIT_SAVE_PREEMPTION_TIMER))
			continue;
		p->write12(p->ctx, enc, p->read02(p->ctx, enc));
	}
	p->write12(p->ctx, VMCS_GUEST_CR0,
		   nested_cr_guest12(p->read02(p->ctx, VMCS_CR0_GUEST_HOST_MASK),
				     p->read12(p->ctx, VMCS_CR0_GUEST_HOST_MASK), p->read02(p->ctx, VMCS_GUEST_CR0),
				     p->read02(p->ctx, VMCS_CR0_READ_SHADOW)));
	p->write12(p->ctx, VMCS_GUEST_CR4,
		   nested_cr_guest12(p->read02(p->ctx, VMCS_CR4_GUEST_HOST_MASK),
				     p->read12(p->ctx, VMCS_CR4_GUEST_HOST_MASK), p->read02(p->ctx, VMCS_GUEST_CR4),
				     p->read02(p->ctx, VMCS_CR4_READ_SHADOW)));
	/* "IA-32e mode guest" is saved from EFER.LMA (SDM 28.2). */
	u64 entry12 = p->read12(p->ctx, VMCS_ENTRY_CONTROLS) & ~(u64)ENTRY_IA32E_MODE_GUEST;
	if (p->read02(p->ctx, VMCS_GUEST_IA32_EFER) & EFER_LMA)
		entry12 |= ENTRY_IA32E_MODE_GUEST;
	p->write12(p->ctx, VMCS_ENTRY_CONTROLS, entry12);
}

void vmcs_exit_info_02_to_12(const struct vmcs_pair *p, u32 reason)
{
	for (u32 i = 0; i < VMCS_FIELD_COUNT; i++) {
		u32 enc = vmcs_fields[i].encoding;
		if (vmcs_fields[i].cls != VMCS_CLASS_RO || !vmcs_field_exists(i, p->offered) ||
		    enc == VMCS_EXIT_REASON || enc == VMCS_VM_INSTRUCTION_ERROR)
			continue;
		p->write12(p->ctx, enc, p->read02(p->ctx, enc));
	}
	p->write12(p->ctx, VMCS_EXIT_REASON, reason);
	p->write12(p->ctx, VMCS_ENTRY_INTR_INFO, p->read12(p->ctx, VMCS_ENTRY_INTR_INFO) & ~(u64)INTR_INFO_VALID);
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
	switch (f->cls) {
	case VMCS_CLASS_GUEST:
		return f->encoding != VMCS_VMCS_LINK_POINTER;
	case VMCS_CLASS_RO:
		return !write;
	case VMCS_CLASS_CTRL:
		return f->encoding == VMCS_ENTRY_INTR_INFO || f->encoding == VMCS_ENTRY_EXCEPTION_ERROR_CODE ||
		       f->encoding == VMCS_ENTRY_INSTRUCTION_LENGTH || f->encoding == VMCS_CR0_READ_SHADOW ||
		       f->encoding == VMCS_CR4_READ_SHADOW || f->encoding == VMCS_PROC_BASED_CONTROLS ||
		       f->encoding == VMCS_TPR_THRESHOLD;
	case VMCS_CLASS_HOST:
		break;
	}
	return false;
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
