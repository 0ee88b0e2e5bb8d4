/* AP start-up code, copied by the BSP to a free page below 1 MiB (bootinfo ap_trampoline_pa). An AP
 * starts here after SIPI in real mode with CS = page >> 4, IP = 0 (SDM Vol. 3, 9.4.4). It goes through
 * 32-bit protected mode into 64-bit mode on the runtime's page tables and jumps to ap_entry64 with the
 * stack and struct cpu * the BSP left in the parameter block. Position independent: every address is
 * computed from the page base in EBX. */
#define TP(x) ((x) - tramp_start)

	.section .rodata.trampoline, "a"
	.code16
	.globl tramp_start, tramp_end, tramp_params
tramp_start:
	cli
	cld
	movw %cs, %ax
	movw %ax, %ds
	xorl %ebx, %ebx
	movw %ax, %bx
	shll $4, %ebx                    /* ebx = page base (linear) */
	lgdtl TP(tramp_gdtr)
	movl %cr0, %eax
	orl $1, %eax                     /* PE */
	movl %eax, %cr0
	ljmpl *TP(tramp_far32)

	.code32
tramp_32:
	movl $0x10, %eax
	movl %eax, %ds
	movl %eax, %es
	movl %eax, %ss
	movl %cr4, %eax
	orl $(1 << 5), %eax              /* PAE */
	movl %eax, %cr4
	movl TP(tramp_cr3)(%ebx), %eax
	movl %eax, %cr3
	movl $0xc0000080, %ecx           /* EFER.LME, and NXE if the page tables use NX */
	rdmsr
	orl $(1 << 8), %eax
	orl TP(tramp_efer)(%ebx), %eax
	wrmsr
	movl %cr0, %eax
	orl $0x80010000, %eax            /* PG, WP (read-only pages bind ring 0 too) */
	movl %eax, %cr0
	ljmpl *TP(tramp_far64)(%ebx)

	.code64
tramp_64:
	movq TP(tramp_stack)(%rbx), %rsp
	movq TP(tramp_cpu)(%rbx), %rdi
	movq TP(tramp_entry)(%rbx), %rax
	jmp *%rax

	.align 16
tramp_gdt:
	.quad 0
	.quad 0x00cf9a000000ffff         /* 0x08: 32-bit code */
	.quad 0x00cf92000000ffff         /* 0x10: data */
	.quad 0x00af9a000000ffff         /* 0x18: 64-bit code */
tramp_gdt_end:

/* Parameter block, filled by the BSP (struct tramp_params in smp.c). */
	.align 16
tramp_params:
tramp_gdtr:
	.word tramp_gdt_end - tramp_gdt - 1
	.long 0                          /* linear address of tramp_gdt */
	.word 0
tramp_far32:
	.long 0                          /* linear address of tramp_32 */
	.word 0x08
	.word 0
tramp_far64:
	.long 0                          /* linear address of tramp_64 */
	.word 0x18
	.word 0
tramp_cr3:
	.long 0
tramp_efer:
	.long 0
tramp_stack:
	.quad 0
tramp_cpu:
	.quad 0
tramp_entry:
	.quad 0
tramp_offsets:
	.long TP(tramp_gdt)
	.long TP(tramp_32)
	.long TP(tramp_64)
tramp_end:
