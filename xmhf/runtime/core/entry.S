/* The runtime's 64-bit entry from init: RDI = boot-info physical address (identity mapped).
 * Runs on a boot stack until the BSP's per-CPU stack exists. */
	.section .text.entry, "ax"
	.code64
	.globl runtime_entry
runtime_entry:
	cli
	cld
	leaq boot_stack_top(%rip), %rsp
	xorl %ebp, %ebp
	call runtime_main
1:	cli
	hlt
	jmp 1b

	.bss
	.align 16
boot_stack:
	.skip 16384
boot_stack_top:
