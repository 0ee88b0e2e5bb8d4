/* The EFI loader's two switches: into the runtime, and back. The firmware's callee-saved registers
 * (UEFI 2.10, 2.3.4: RBX, RBP, RDI, RSI, R12-R15, XMM6-15) are kept: efi_main, an ms_abi function,
 * saves RDI and RSI around its SysV callees, this file the rest; no code of the loader or the runtime
 * touches an XMM register (-mgeneral-regs-only). */
#include <xmhf/uefi.h>

/* u64 uefi_enter_runtime(u64 entry, u64 bootinfo): SysV ABI. Saves the firmware's CPU state in uefi_fw
 * and the callee-saved registers on the firmware stack, switches to the bridge page tables (the runtime's
 * pages are not executable in the firmware's: OVMF maps reserved and free memory NX) and jumps to the
 * runtime with interrupts off. The runtime comes back through uefi_resume_dryrun (dry run) or starts the
 * guest at uefi_resume; either way this function then returns uefi_fw.outcome. */
	.text
	.code64
	.globl uefi_enter_runtime
uefi_enter_runtime:
	pushq %rbx
	pushq %rbp
	pushq %r12
	pushq %r13
	pushq %r14
	pushq %r15
	pushfq
	leaq uefi_fw(%rip), %r8
	movq %rsp, UEFI_FW_RSP(%r8)
	movq (%rsp), %rax
	movq %rax, UEFI_FW_RFLAGS(%r8)
	movq %cr0, %rax
	movq %rax, UEFI_FW_CR0(%r8)
	movq %cr3, %rax
	movq %rax, UEFI_FW_CR3(%r8)
	movq %cr4, %rax
	movq %rax, UEFI_FW_CR4(%r8)
	movq %rdi, %r9               /* entry */
	movl $0xc0000080, %ecx       /* IA32_EFER */
	rdmsr
	movl %eax, UEFI_FW_EFER(%r8)
	movl %edx, UEFI_FW_EFER+4(%r8)
	movl $0x277, %ecx            /* IA32_PAT */
	rdmsr
	movl %eax, UEFI_FW_PAT(%r8)
	movl %edx, UEFI_FW_PAT+4(%r8)
	movl $0xc0000100, %ecx       /* IA32_FS_BASE */
	rdmsr
	movl %eax, UEFI_FW_FS_BASE(%r8)
	movl %edx, UEFI_FW_FS_BASE+4(%r8)
	movl $0xc0000101, %ecx       /* IA32_GS_BASE */
	rdmsr
	movl %eax, UEFI_FW_GS_BASE(%r8)
	movl %edx, UEFI_FW_GS_BASE+4(%r8)
	sgdt UEFI_FW_GDTR(%r8)
	sidt UEFI_FW_IDTR(%r8)
	movw %cs, UEFI_FW_CS(%r8)
	movw %ss, UEFI_FW_SS(%r8)
	movw %ds, UEFI_FW_DS(%r8)
	movw %es, UEFI_FW_ES(%r8)
	movw %fs, UEFI_FW_FS(%r8)
	movw %gs, UEFI_FW_GS(%r8)
	str UEFI_FW_TR(%r8)
	sldt UEFI_FW_LDTR(%r8)
	leaq uefi_resume(%rip), %rax
	movq %rax, UEFI_FW_RESUME_RIP(%r8)
	leaq uefi_resume_dryrun(%rip), %rax
	movq %rax, UEFI_FW_RESUME_DRYRUN_RIP(%r8)
	movq $UEFI_FW_STATE_MAGIC, %rax
	movq %rax, UEFI_FW_MAGIC(%r8)
	cli
	movq UEFI_FW_BRIDGE_CR3(%r8), %rax
	movq %rax, %cr3
	movq %rsi, %rdi              /* the runtime's argument: the boot-info block */
	jmp *%r9

/* Dry run: the runtime comes here on the bridge page tables, with the firmware's GDT, IDT and data
 * selectors loaded and CS = the firmware's, interrupts off. EFER, CR4 and CR0 as the firmware had them,
 * then its CR3: this page is loader code, executable in both maps. */
	.globl uefi_resume_dryrun
uefi_resume_dryrun:
	leaq uefi_fw(%rip), %r8
	movl $0xc0000080, %ecx
	movl UEFI_FW_EFER(%r8), %eax
	movl UEFI_FW_EFER+4(%r8), %edx
	wrmsr
	movq UEFI_FW_CR4(%r8), %rax
	movq %rax, %cr4
	movq UEFI_FW_CR0(%r8), %rax
	movq %rax, %cr0
	movq UEFI_FW_CR3(%r8), %rax
	movq %rax, %cr3
	movl $0x277, %ecx
	movl UEFI_FW_PAT(%r8), %eax
	movl UEFI_FW_PAT+4(%r8), %edx
	wrmsr
	movl $0xc0000100, %ecx
	movl UEFI_FW_FS_BASE(%r8), %eax
	movl UEFI_FW_FS_BASE+4(%r8), %edx
	wrmsr
	movl $0xc0000101, %ecx
	movl UEFI_FW_GS_BASE(%r8), %eax
	movl UEFI_FW_GS_BASE+4(%r8), %edx
	wrmsr
	/* fall through */

/* The guest starts here after VMLAUNCH (the VMCS holds the firmware's state; RSP does not matter):
 * back on the firmware's stack, its flags (interrupts on again) and registers, return to the caller. */
	.globl uefi_resume
uefi_resume:
	leaq uefi_fw(%rip), %r8
	movq UEFI_FW_RSP(%r8), %rsp
	popfq
	popq %r15
	popq %r14
	popq %r13
	popq %r12
	popq %rbp
	popq %rbx
	movq UEFI_FW_OUTCOME(%r8), %rax
	ret

