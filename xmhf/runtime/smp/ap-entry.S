/* 64-bit entry of an AP from the trampoline: RSP = its stack, RDI = its struct cpu. */
	.text
	.code64
	.globl ap_entry64
ap_entry64:
	cld
	xorl %ebp, %ebp
	call ap_main
1:	cli
	hlt
	jmp 1b
