/* UEFI boot: the firmware's CPU state as the EFI loader (xmhf/boot/uefi) found it when it called into the
 * runtime. The runtime starts the guest from it (VMX non-root, 64-bit, at resume_rip: the loader then
 * returns to its caller, GRUB or the boot manager), or, in a dry run, goes back to the firmware itself
 * through resume_dryrun_rip. The assembly on both sides uses the UEFI_FW_* offsets. */
#ifndef XMHF_UEFI_H
#define XMHF_UEFI_H

#define UEFI_FW_STATE_MAGIC 0x4657534946454658 /* "XFEFISWF" */

#define UEFI_FW_MAGIC 0
#define UEFI_FW_RSP 8
#define UEFI_FW_RFLAGS 16
#define UEFI_FW_CR0 24
#define UEFI_FW_CR3 32
#define UEFI_FW_CR4 40
#define UEFI_FW_EFER 48
#define UEFI_FW_PAT 56
#define UEFI_FW_FS_BASE 64
#define UEFI_FW_GS_BASE 72
#define UEFI_FW_GDTR 80   /* limit (2 bytes), base (8 bytes): the SGDT image */
#define UEFI_FW_IDTR 96   /* the SIDT image */
#define UEFI_FW_CS 112
#define UEFI_FW_SS 114
#define UEFI_FW_DS 116
#define UEFI_FW_ES 118
#define UEFI_FW_FS 120
#define UEFI_FW_GS 122
#define UEFI_FW_TR 124
#define UEFI_FW_LDTR 126
#define UEFI_FW_RESUME_RIP 128        /* where the guest starts (firmware CR3 already loaded) */
#define UEFI_FW_RESUME_DRYRUN_RIP 136 /* dry run: restores EFER, CR4, CR0, CR3, then resume_rip */
#define UEFI_FW_BRIDGE_CR3 144        /* the loader's identity map: executable everywhere, no NX */
#define UEFI_FW_OUTCOME 152           /* set by the runtime: UEFI_OUTCOME_* */
#define UEFI_FW_SIZE 160

#define UEFI_OUTCOME_NONE 0
#define UEFI_OUTCOME_DRYRUN 1
#define UEFI_OUTCOME_LAUNCHED 2

#ifndef __ASSEMBLER__
#include <xmhf/types.h>

struct uefi_fw_state {
	u64 magic;
	u64 rsp, rflags;
	u64 cr0, cr3, cr4, efer, pat, fs_base, gs_base;
	struct {
		u16 limit;
		u64 base;
	} PACKED gdtr;
	u8 pad0[6];
	struct {
		u16 limit;
		u64 base;
	} PACKED idtr;
	u8 pad1[6];
	u16 cs, ss, ds, es, fs, gs, tr, ldtr;
	u64 resume_rip;
	u64 resume_dryrun_rip;
	u64 bridge_cr3;
	u64 outcome;
};

_Static_assert(__builtin_offsetof(struct uefi_fw_state, gdtr) == UEFI_FW_GDTR, "uefi_fw_state layout");
_Static_assert(__builtin_offsetof(struct uefi_fw_state, idtr) == UEFI_FW_IDTR, "uefi_fw_state layout");
_Static_assert(__builtin_offsetof(struct uefi_fw_state, cs) == UEFI_FW_CS, "uefi_fw_state layout");
_Static_assert(__builtin_offsetof(struct uefi_fw_state, ldtr) == UEFI_FW_LDTR, "uefi_fw_state layout");
_Static_assert(__builtin_offsetof(struct uefi_fw_state, resume_rip) == UEFI_FW_RESUME_RIP, "uefi_fw_state layout");
_Static_assert(__builtin_offsetof(struct uefi_fw_state, outcome) == UEFI_FW_OUTCOME, "uefi_fw_state layout");
_Static_assert(sizeof(struct uefi_fw_state) == UEFI_FW_SIZE, "uefi_fw_state layout");

/* The runtime's side (xmhf/runtime/uefi/uefi.c). */
struct vcpu;
void uefi_check_firmware_state(void);
void uefi_guest_state(struct vcpu *v);
NORETURN void uefi_dryrun(void);
#endif

#endif
