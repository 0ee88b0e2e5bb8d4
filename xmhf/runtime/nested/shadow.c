/* Hardware VMCS shadowing of VMCS12 (SDM Vol. 3, 25.10 "VMCS types", 25.6.15 "VMCS shadowing bitmap
 * addresses", and VMREAD/VMWRITE in chapter 31). While L1 runs with a current VMCS12, VMCS01 links this CPU's shadow VMCS, which holds
 * VMCS12's hot fields (lib/vmcs-translate.c: vmcs_field_shadowed); L1's VMREAD/VMWRITE of those run on
 * it without a VM exit. The shadow is the truth for those fields while it is live; VMCS12 in L1's
 * memory is brought up to date (shadow_flush) before anything reads it: L1's VMLAUNCH/VMRESUME,
 * VMCLEAR or VMPTRLD of another VMCS, VMXOFF. Fields that changed are marked dirty for the VMCS02
 * cache (entry.c). After an exit to L1, shadow_load copies VMCS12 into the shadow again: only the
 * fields the exit wrote (guest state, exit information) when the shadow in memory still holds the
 * others (shadow_synced; KVM's copy_vmcs12_to_shadow copies all, its dirty_vmcs12 only skips the
 * whole copy), with constant encodings when the shadowed fields are the ones vmcs-translate.h
 * names (fixed_lists).
 * Used only when the CPU has VMCS shadowing and can VMWRITE the exit-information fields (IA32_VMX_MISC
 * bit 29); otherwise every VMREAD/VMWRITE exits and is emulated (vmx-insn.c). */
#include <xmhf/runtime.h>
#include <xmhf/vcpu.h>
#include <lib/vmcs-fields.h>
#include <lib/vmcs-translate.h>
#include <lib/string.h>
#include <xmhf/spinlock.h>
#include <x86/cpu.h>
#include "nested.h"

#define MISC_VMWRITE_ANY_FIELD (1ULL << 29)

static u8 *read_bitmap, *write_bitmap;     /* shared by all CPUs; 1 = exit */
static u16 fields[VMCS_FIELD_COUNT];        /* indices of the shadowed fields, writable ones first */
static u32 encodings[VMCS_FIELD_COUNT];     /* their encodings, for the copy loops */
static u32 nfields, nwritable;
static u32 fixed_lists;                     /* fields[] are vmcs-translate.h's lists: the unrolled copies */
static volatile u32 ready;                  /* 0 unknown, 1 shadowing used, 2 not available */
static spinlock_t setup_lock;

/* Are fields[0..nwritable) and fields[nwritable..nfields) the writable and read-only fields the
 * unrolled copies below name, exactly? (Not when L1 lacks one of them, e.g. without EPT offered.) */
static bool lists_are_fixed(void)
{
	u64 writable[VMCS_FIELD_SET_WORDS], readonly[VMCS_FIELD_SET_WORDS];

	vmcs_shadow_writable_set(writable);
	vmcs_shadow_readonly_set(readonly);
	return vmcs_list_is_set(fields, nwritable, writable) &&
	       vmcs_list_is_set(fields + nwritable, nfields - nwritable, readonly);
}

/* The unrolled copies: VMCS12's slots into the current (shadow) VMCS, the fields an exit to L1 writes
 * and the others; and back, the writable ones, marking the changed ones dirty. */
#define TO_SHADOW(name) vmcs_write(VMCS_##name, slot[VMCS_IDX_##name]);
static void write_exit_fields(const u64 *slot)
{
	VMCS_HOT_GUEST_FIELDS(TO_SHADOW)
	VMCS_SHADOW_EXIT_WRITABLE(TO_SHADOW)
	VMCS_EXIT_INFO_FIELDS(TO_SHADOW)
	TO_SHADOW(EXIT_REASON)
}

static void write_other_fields(const u64 *slot)
{
	VMCS_SHADOW_L1_WRITABLE(TO_SHADOW)
	VMCS_SMI_EXIT_INFO_FIELDS(TO_SHADOW)
	VMCS_SHADOW_READ_HOST(TO_SHADOW)
	TO_SHADOW(VM_INSTRUCTION_ERROR)
}
#undef TO_SHADOW

static void read_back_fixed(struct vcpu *v, u64 *slot)
{
#define FROM_SHADOW(name)                                                                          \
	{                                                                                          \
		u64 val = vmread(VMCS_##name);                                                     \
		if (val != slot[VMCS_IDX_##name]) {                                                \
			slot[VMCS_IDX_##name] = val;                                               \
			nested_vmcs12_dirty(v, VMCS_IDX_##name);                                   \
		}                                                                                  \
	}
	VMCS_HOT_GUEST_FIELDS(FROM_SHADOW)
	VMCS_SHADOW_EXIT_WRITABLE(FROM_SHADOW)
	VMCS_SHADOW_L1_WRITABLE(FROM_SHADOW)
#undef FROM_SHADOW
}

static bool set_up(void);

static inline bool available(void)
{
	u32 r = __atomic_load_n(&ready, __ATOMIC_ACQUIRE);

	return r ? r == 1 : set_up();
}

static bool set_up(void)
{
	spin_lock(&setup_lock);
	if (!ready) {
		u32 r = 2;
		if ((vmx_caps.proc2_1 & PROC2_VMCS_SHADOWING) && (vmx_caps.misc & MISC_VMWRITE_ANY_FIELD)) {
			read_bitmap = page_alloc(1);
			write_bitmap = page_alloc(1);
			memset(read_bitmap, 0xff, PAGE_SIZE_4K);
			memset(write_bitmap, 0xff, PAGE_SIZE_4K);
			for (int pass = 0; pass < 2; pass++)
				for (u32 i = 0; i < VMCS_FIELD_COUNT; i++) {
					if (!nested_field_supported(i) || !vmcs_field_shadowed(i, false) ||
					    vmcs_field_shadowed(i, true) != (pass == 0))
						continue;
					encodings[nfields] = vmcs_fields[i].encoding;
					fields[nfields++] = (u16)i;
					vmcs_shadow_bitmap_allow(read_bitmap, vmcs_fields[i].encoding);
					if (pass == 0)
						vmcs_shadow_bitmap_allow(write_bitmap, vmcs_fields[i].encoding);
				}
			for (nwritable = 0; nwritable < nfields && vmcs_field_shadowed(fields[nwritable], true);)
				nwritable++;
			fixed_lists = lists_are_fixed();
			r = 1;
		}
		__atomic_store_n(&ready, r, __ATOMIC_RELEASE);
	}
	spin_unlock(&setup_lock);
	return ready == 1;
}

static void alloc_shadow(struct vcpu *v)
{
	u32 *p = page_alloc(1);

	p[0] = ((u32)vmx_caps.basic & 0x7fffffff) | (1U << 31); /* shadow-VMCS indicator (SDM 25.2) */
	v->shadow_vmcs_pa = (u64)(uintptr_t)p;
	if (vmclear(v->shadow_vmcs_pa))
		panic("VMCLEAR of the shadow VMCS failed");
}

/* Makes the shadow VMCS current (VMCS01 is current before and after). Inline with leave_shadow:
 * each round trip enters the shadow twice. */
static inline void enter_shadow(struct vcpu *v)
{
	if (!v->shadow_vmcs_pa)
		alloc_shadow(v);
	v->shadow_current = 1;
	if (vmptrld(v->shadow_vmcs_pa))
		panic("VMPTRLD of the shadow VMCS failed");
}

/* Back to VMCS01. The shadow is VMCLEARed after each use (as KVM does), so its data is in memory and
 * it is not the current VMCS of this CPU while VMCS01 links it. */
static inline void leave_shadow(struct vcpu *v)
{
	if (vmclear(v->shadow_vmcs_pa) || vmptrld(v->vmcs_pa))
		panic("VMCLEAR of the shadow VMCS / VMPTRLD of VMCS01 failed");
	v->shadow_current = 0;
}

/* L1 runs with VMCS12 current from now on: the shadow gets VMCS12's values (after an exit of L2's,
 * the fields exits write alone, if the shadow holds the rest) and VMCS01 links it. VMCS01 must be
 * current. */
static void load(struct vcpu *v, bool after_exit)
{
	if (v->shadow_live || v->l1_current_vmcs == ~0ULL || !available())
		return;
	const u64 *slot = vmcs12_slots(v);
	enter_shadow(v);
	if (fixed_lists) {
		write_exit_fields(slot);
		if (!after_exit || !v->shadow_synced)
			write_other_fields(slot);
	} else {
		for (u32 k = 0; k < nfields; k++)
			vmcs_write(encodings[k], slot[fields[k]]);
	}
	leave_shadow(v);
	v->shadow_synced = 1;
	if (!v->shadow_linked) {
		vmcs_write(VMCS_VMREAD_BITMAP, (u64)(uintptr_t)read_bitmap);
		vmcs_write(VMCS_VMWRITE_BITMAP, (u64)(uintptr_t)write_bitmap);
		vmcs_write(VMCS_VMCS_LINK_POINTER, v->shadow_vmcs_pa);
		vmcs_set_bits(VMCS_PROC_BASED_CONTROLS2, PROC2_VMCS_SHADOWING);
		v->shadow_linked = 1;
	}
	v->shadow_live = 1;
}

void shadow_load(struct vcpu *v)
{
	load(v, false);
}

/* Since the shadow was last in sync (shadow_flush at L1's VMLAUNCH/VMRESUME), L0 wrote only what an
 * exit writes: L2's guest fields, the exit information, the valid bit of the entry's event (exit.c;
 * VMCS12's other shadowed fields change only with the shadow live, or they unsync it:
 * shadow_write_field, vmcs12.c). */
void shadow_load_after_exit(struct vcpu *v)
{
	load(v, true);
}

/* VMCS12 in L1's memory brought up to date from the shadow, the changed fields marked dirty; if
 * `unlink`, VMCS01 stops using the shadow (L1 has no current VMCS, or another one is coming). VMCS01
 * must be current. */
void shadow_flush(struct vcpu *v, bool unlink)
{
	if (!v->shadow_live)
		return;
	u64 *slot = vmcs12_slots(v);
	enter_shadow(v);
	/* Only the fields L1 can write through the shadow can have changed. */
	if (fixed_lists) {
		read_back_fixed(v, slot);
	} else {
		for (u32 k = 0; k < nwritable; k++) {
			u32 i = fields[k];
			u64 val = vmcs_read(encodings[k]);
			if (val != slot[i]) {
				slot[i] = val;
				nested_vmcs12_dirty(v, i);
			}
		}
	}
	leave_shadow(v);
	v->shadow_live = 0;
	if (unlink) {
		vmcs_clear_bits(VMCS_PROC_BASED_CONTROLS2, PROC2_VMCS_SHADOWING);
		vmcs_write(VMCS_VMCS_LINK_POINTER, ~0ULL);
		v->shadow_linked = 0;
	}
}

/* L0 writes a field of the current VMCS12 while the shadow is live (VM-instruction error). */
void shadow_write_field(struct vcpu *v, u32 enc, u64 value)
{
	int i = vmcs_field_index(enc);

	if (i < 0 || !vmcs_field_shadowed((u32)i, false))
		return;
	if (!v->shadow_live) {
		v->shadow_synced = 0; /* the next load writes it */
		return;
	}
	enter_shadow(v);
	vmcs_write(enc, value);
	leave_shadow(v);
}
