/* uefi_return_to_firmware(const struct uefi_fw_state *st): the dry run's way back. On the EFI loader's
 * bridge page tables (everything executable: this page is the runtime's text, the next one is loader
 * code), the firmware's GDT, IDT and selectors, then a far return into the loader's uefi_resume_dryrun,
 * which restores the firmware's control registers and returns to the loader's caller. Interrupts stay
 * off until the loader's POPF. Does not return. */
#include <xmhf/uefi.h>

	.text
	.code64
	.globl uefi_return_to_firmware
uefi_return_to_firmware:
	cli
	movq UEFI_FW_BRIDGE_CR3(%rdi), %rax
	movq %rax, %cr3
	lgdt UEFI_FW_GDTR(%rdi)
	lidt UEFI_FW_IDTR(%rdi)
	movw UEFI_FW_SS(%rdi), %ss
	movw UEFI_FW_DS(%rdi), %ds
	movw UEFI_FW_ES(%rdi), %es
	movw UEFI_FW_FS(%rdi), %fs
	movw UEFI_FW_GS(%rdi), %gs
	/* The firmware's stack below the loader's saved RSP is free: the far return's frame goes there. */
	movq UEFI_FW_RSP(%rdi), %rsp
	movzwl UEFI_FW_CS(%rdi), %eax
	pushq %rax
	pushq UEFI_FW_RESUME_DRYRUN_RIP(%rdi)
	lretq
