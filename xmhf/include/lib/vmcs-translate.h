/* VMCS12 <-> VMCS02 copies for nested VMX, driven by the field table (xmhf/arch/x86/vmcs-fields.def).
 * Pure logic: VMCS12 is an array of values (in L1 memory at run time), VMCS02 is reached through
 * callbacks (VMREAD/VMWRITE at run time; an array in the host unit tests). The field lists are
 * computed once, so a copy costs one VMREAD or VMWRITE per field and nothing else. */
#ifndef LIB_VMCS_TRANSLATE_H
#define LIB_VMCS_TRANSLATE_H
#include <xmhf/types.h>
#include <lib/vmcs-fields.h>
#include <lib/nested-logic.h>
#include <x86/vmx.h>

struct vmcs_pair {
	/* VMCS12's values by field-table index, each at its width (runtime/nested/vmcs12.c). */
	u64 *slots12;
	/* VMCS02 (the CPU's current VMCS at run time). */
	u64 (*read02)(void *ctx, u32 encoding);
	void (*write02)(void *ctx, u32 encoding, u64 value);
	void *ctx;
	/* Field lists from vmcs_field_list for what L1 is offered: guest state, exit information. */
	const u16 *guest;
	u32 nguest;
	const u16 *exit_info;
	u32 nexit_info;
	/* Optional (NULL: read02 per field): VMCS02's fields idx[0..n) into slots12 in one call, a plain
	 * loop of VMREADs at run time, where a call per field costs more than the VMREAD. */
	void (*read02_list)(void *ctx, const u16 *idx, u32 n, u64 *slots12);
	/* Optional (NULL: guest, filtered field by field): the guest fields every reflected exit saves,
	 * from vmcs_guest_saved_list. */
	const u16 *guest_saved;
	u32 nguest_saved;
};

/* The fields of a class L1 has (vmcs_field_exists) and nested VMX translates, in table order, but the
 * VMCS link pointer, the exit reason and the VM-instruction error, which the copies below set
 * themselves, and the guest interrupt status, which the caller copies when virtual-interrupt delivery
 * is on. out holds VMCS_FIELD_COUNT entries; returns the count. */
u32 vmcs_field_list(const struct vmcs_feature_caps *offered, enum vmcs_class cls, u16 *out);

/* Of the guest fields `guest` (a vmcs_field_list), those saved at every exit whatever L1's exit
 * controls (all but DEBUGCTL, DR7, EFER, PAT and the preemption timer); out holds n entries. */
u32 vmcs_guest_saved_list(const u16 *guest, u32 n, u16 *out);

/* VM entry (SDM 27.3.2): VMCS12's guest state into VMCS02. Every guest field L1 has and L0 translates
 * is copied as it is, except: the VMCS link pointer (VMCS02 has no shadow VMCS: ~0), the preemption
 * timer (only when L1 activates it). CR0/CR4 masks and shadows, EFER/PAT without their load
 * controls and the controls themselves are the caller's. */
void vmcs_guest_12_to_02(const struct vmcs_pair *p);

/* A reflected VM exit (SDM 28.3): L2's guest state from VMCS02 into VMCS12 as L1 must see it: the
 * controls L1 chose decide what is saved (DR7 and DEBUGCTL with "save debug controls", PAT, EFER and
 * the preemption timer with theirs); CR0/CR4 bits only L0 owns come from VMCS02's read shadow
 * (VMCS02's masks are L0's | L1's); "IA-32e mode guest" in VMCS12's entry controls follows EFER.LMA. */
void vmcs_guest_02_to_12(const struct vmcs_pair *p);

/* The saved guest fields (vmcs_guest_saved_list) split into those a shadow VMCS holds
 * (vmcs_field_shadowed: L1 reads them without an exit, so every reflected exit saves them) and the
 * rest, which L0 saves only when something reads them (runtime/nested/exit.c); returns the number of
 * hot ones, *nrare the others'. */
u32 vmcs_guest_split_list(const u16 *saved, u32 n, u16 *hot, u16 *rare, u32 *nrare);

/* The exit information of the exit being reflected (SDM 28.2), with `reason` as its exit reason;
 * every exit clears the valid bit of VMCS12's VM-entry interruption information. */
void vmcs_exit_info_02_to_12(const struct vmcs_pair *p, u32 reason);

/* Can a VMWRITE of L1 to this field reach a VMCS02 in sync with VMCS12 as it is (VMRESUME without a
 * rebuild)? Only for fields copied unchanged into VMCS02 (COPY), not host or read-only ones. */
bool vmcs_field_resume_copy(u32 index);

/* Hardware VMCS shadowing of VMCS12 (runtime/nested/shadow.c): may L1's VMREAD (write = false) or
 * VMWRITE (write = true) of this field run on the shadow VMCS, without a VM exit? The fields a
 * hypervisor touches around most L2 exits: the exit information (read only: VMWRITE exits, for the
 * SDM's error 13), RIP/RSP/RFLAGS, control registers, interruptibility and activity, CS/SS rights
 * (CPL), the event-injection fields, CR read shadows and the primary processor-based controls
 * (interrupt/NMI-window exiting), HOST_RSP and the host FS/GS bases; HOST_CR4 for reads only. Each
 * field an exit writes costs a copy at every L1<->L2 transition, so the set stays small; the rest
 * exits and is emulated. Whether L1
 * has the field at all (vmcs_field_exists) is the caller's to add. */
bool vmcs_field_shadowed(u32 index, bool write);

/* The shadowed fields by name, X(name) each, for copies unrolled with constant encodings (runtime/
 * nested/shadow.c, entry.c: a loop over a table costs two to three times the VMREAD or VMWRITE per
 * field). Users check once that the lists are what vmcs_field_shadowed and vmcs_field_list give for
 * L1 and fall back to the tables otherwise. The guest fields every reflected exit saves (KVM's and
 * Hyper-V's hot set: guest state a hypervisor reads or advances at most exits): */
#define VMCS_HOT_GUEST_FIELDS(X)                                                                        \
	X(GUEST_RIP) X(GUEST_RSP) X(GUEST_RFLAGS) X(GUEST_CR0) X(GUEST_CR3) X(GUEST_CR4)                \
	X(GUEST_INTERRUPTIBILITY) X(GUEST_ACTIVITY_STATE) X(GUEST_CS_ACCESS_RIGHTS)                     \
	X(GUEST_SS_ACCESS_RIGHTS) X(GUEST_CS_BASE) X(GUEST_FS_BASE) X(GUEST_GS_BASE)
/* The other writable shadowed fields an exit to L1 may change (EFER with "save IA32_EFER", the valid
 * bit of the entry's event): */
#define VMCS_SHADOW_EXIT_WRITABLE(X) X(GUEST_IA32_EFER) X(ENTRY_INTR_INFO)
/* The writable shadowed fields only L1 changes: the event's error code and length, CR shadows and
 * masks (XMHF as L1 reads its masks at each CPUID exit: guest_cr4()'s OSXSAVE bit), the
 * window-exiting controls, the TPR threshold, and the host state KVM rewrites when its stack or
 * per-CPU bases move. */
#define VMCS_SHADOW_L1_WRITABLE(X)                                                                      \
	X(ENTRY_EXCEPTION_ERROR_CODE) X(ENTRY_INSTRUCTION_LENGTH) X(CR0_READ_SHADOW) X(CR4_READ_SHADOW) \
	X(CR0_GUEST_HOST_MASK) X(CR4_GUEST_HOST_MASK) X(PROC_BASED_CONTROLS) X(TPR_THRESHOLD)           \
	X(HOST_RSP) X(HOST_FS_BASE) X(HOST_GS_BASE)
/* Host state L1 reads often and writes rarely: shadowed for VMREAD only (its VMWRITE exits, and L0
 * writes the shadow too). Xen reads HOST_CR4 before many of its VM entries (2,131 exits in the
 * dom0 phase of `xen.bench()` before it was shadowed). */
#define VMCS_SHADOW_READ_HOST(X) X(HOST_CR4)
/* The exit information every reflected exit copies (vmcs_field_list's VMCS_CLASS_RO list with EPT
 * offered): read-only for L1, like the exit reason and the VM-instruction error. */
#define VMCS_EXIT_INFO_FIELDS(X)                                                                        \
	X(GUEST_PHYSICAL_ADDRESS) X(EXIT_INTR_INFO) X(EXIT_INTR_ERROR_CODE) X(IDT_VECTORING_INFO)       \
	X(IDT_VECTORING_ERROR_CODE) X(EXIT_INSTRUCTION_LENGTH) X(EXIT_INSTRUCTION_INFO)                 \
	X(EXIT_QUALIFICATION) X(GUEST_LINEAR_ADDRESS)
/* The exit information only SMI exits write (I/O RCX, RSI, RDI, RIP: SDM 28.2.5, 32.15.2), which L0
 * never reflects (L1 is offered no dual-monitor treatment): no exit copies it, VMCS12 keeps what L1
 * wrote there (VMWRITE to any field), as on a CPU; the shadow VMCS holds it for L1's reads. */
#define VMCS_SMI_EXIT_INFO_FIELDS(X) X(IO_RCX) X(IO_RSI) X(IO_RDI) X(IO_RIP)

/* The guest fields an exit saves only when L1's exit controls ask (SDM 28.3.1), X(field, control)
 * each; every other guest field is saved at every exit. */
#define VMCS_SAVED_WITH_EXIT_CONTROL(X)                                                                 \
	X(GUEST_IA32_DEBUGCTL, EXIT_SAVE_DEBUG_CONTROLS) X(GUEST_DR7, EXIT_SAVE_DEBUG_CONTROLS)         \
	X(GUEST_IA32_EFER, EXIT_SAVE_EFER) X(GUEST_IA32_PAT, EXIT_SAVE_PAT)                              \
	X(GUEST_PREEMPTION_TIMER, EXIT_SAVE_PREEMPTION_TIMER)

/* A reflected exit's save for callers whose hot guest list and exit-information list are exactly
 * VMCS_HOT_GUEST_FIELDS and VMCS_EXIT_INFO_FIELDS (runtime/nested/entry.c checks it once): what
 * vmcs_guest_02_to_12 with the hot list, then vmcs_exit_info_02_to_12, do, unrolled, with `read02`
 * (VMREAD at run time) inlined at each field with its constant encoding: a round trip's save costs
 * its 30-odd VMREADs and little else. s is VMCS12's slots. */
static inline __attribute__((always_inline)) void vmcs_exit_02_to_12_hot(u64 *s, u32 reason, u64 (*read02)(u32 enc))
{
	u32 exit12 = (u32)s[VMCS_IDX_EXIT_CONTROLS];
	u64 efer02 = read02(VMCS_GUEST_IA32_EFER);

#define VMCS_HOT_FROM_02(name) s[VMCS_IDX_##name] = read02(VMCS_##name);
	VMCS_HOT_GUEST_FIELDS(VMCS_HOT_FROM_02)
	VMCS_EXIT_INFO_FIELDS(VMCS_HOT_FROM_02)
#undef VMCS_HOT_FROM_02
	if (exit12 & (EXIT_SAVE_DEBUG_CONTROLS | EXIT_SAVE_EFER | EXIT_SAVE_PAT | EXIT_SAVE_PREEMPTION_TIMER)) {
#define VMCS_SAVE_WITH(name, ctl)                                                                      \
	if (exit12 & (ctl))                                                                            \
		s[VMCS_IDX_##name] = VMCS_##name == VMCS_GUEST_IA32_EFER ? efer02 : read02(VMCS_##name);
		VMCS_SAVED_WITH_EXIT_CONTROL(VMCS_SAVE_WITH)
#undef VMCS_SAVE_WITH
	}
	s[VMCS_IDX_GUEST_CR0] = nested_cr_guest12(read02(VMCS_CR0_GUEST_HOST_MASK), s[VMCS_IDX_CR0_GUEST_HOST_MASK],
						  s[VMCS_IDX_GUEST_CR0], read02(VMCS_CR0_READ_SHADOW));
	s[VMCS_IDX_GUEST_CR4] = nested_cr_guest12(read02(VMCS_CR4_GUEST_HOST_MASK), s[VMCS_IDX_CR4_GUEST_HOST_MASK],
						  s[VMCS_IDX_GUEST_CR4], read02(VMCS_CR4_READ_SHADOW));
	/* "IA-32e mode guest" is saved from EFER.LMA (SDM 28.2). */
	s[VMCS_IDX_ENTRY_CONTROLS] = (s[VMCS_IDX_ENTRY_CONTROLS] & ~(u64)ENTRY_IA32E_MODE_GUEST) |
				     ((efer02 & (1ULL << 10)) ? ENTRY_IA32E_MODE_GUEST : 0);
	s[VMCS_IDX_EXIT_REASON] = reason;
	s[VMCS_IDX_ENTRY_INTR_INFO] &= ~(u64)INTR_INFO_VALID;
}

/* The named lists as sets of field-table indices (a bit each, VMCS_FIELD_SET_WORDS words): the hot
 * guest fields, the exit information, the writable shadowed fields (the three writable lists) and the
 * read-only ones (the exit information, the exit reason, the VM-instruction error). The set is
 * cleared first. */
#define VMCS_FIELD_SET_WORDS 4
void vmcs_hot_guest_set(u64 *set);
void vmcs_exit_info_set(u64 *set);
void vmcs_shadow_writable_set(u64 *set);
void vmcs_shadow_readonly_set(u64 *set);
/* Does list[0..n) hold exactly the fields of `set`, each once? */
bool vmcs_list_is_set(const u16 *list, u32 n, const u64 *set);

/* Clears the bits of a VMREAD/VMWRITE bitmap (SDM 25.6.15: bit n for encoding n, bits 14:0) for the
 * field and, for a 64-bit field, its high half. */
void vmcs_shadow_bitmap_allow(u8 *bitmap, u32 encoding);

#endif
