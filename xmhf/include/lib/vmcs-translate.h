/* VMCS12 <-> VMCS02 copies for nested VMX, driven by the field table (xmhf/arch/x86/vmcs-fields.def).
 * Pure logic: both VMCSs are reached through callbacks (VMCS12 in L1 memory, VMCS02 through
 * VMREAD/VMWRITE at run time; arrays in the host unit tests). */
#ifndef LIB_VMCS_TRANSLATE_H
#define LIB_VMCS_TRANSLATE_H
#include <xmhf/types.h>
#include <lib/vmcs-fields.h>

struct vmcs_pair {
	u64 (*read12)(void *ctx, u32 encoding);
	void (*write12)(void *ctx, u32 encoding, u64 value); /* any field, read-only ones included */
	u64 (*read02)(void *ctx, u32 encoding);
	void (*write02)(void *ctx, u32 encoding, u64 value);
	void *ctx;
	const struct vmcs_feature_caps *offered; /* what L1 is offered: which fields VMCS12 has */
};

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

/* The exit information of the exit being reflected (SDM 28.2), with `reason` as its exit reason;
 * every exit clears the valid bit of VMCS12's VM-entry interruption information. */
void vmcs_exit_info_02_to_12(const struct vmcs_pair *p, u32 reason);

/* Can a VMWRITE of L1 to this field reach a VMCS02 in sync with VMCS12 as it is (VMRESUME without a
 * rebuild)? Only for fields copied unchanged into VMCS02 (COPY), not host or read-only ones. */
bool vmcs_field_resume_copy(u32 index);

/* Hardware VMCS shadowing of VMCS12 (runtime/nested/shadow.c): may L1's VMREAD (write = false) or
 * VMWRITE (write = true) of this field run on the shadow VMCS, without a VM exit? The fields L1 touches
 * around most L2 exits: the guest state, the exit information (read only: VMWRITE exits, for the
 * SDM's error 13), the event-injection fields, the CR read shadows and the primary processor-based
 * controls (interrupt/NMI-window exiting). Not: the VMCS link pointer (L1 gets no VMCS shadowing of
 * its own), other controls, host state (rarely written, and checked at entry anyway). Whether L1 has
 * the field at all (vmcs_field_exists) is the caller's to add. */
bool vmcs_field_shadowed(u32 index, bool write);

/* Clears the bits of a VMREAD/VMWRITE bitmap (SDM 25.6.15: bit n for encoding n, bits 14:0) for the
 * field and, for a 64-bit field, its high half. */
void vmcs_shadow_bitmap_allow(u8 *bitmap, u32 encoding);

#endif
