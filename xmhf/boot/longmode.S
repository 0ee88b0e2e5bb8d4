/* init_enter_longmode(pml4, entry_lo, entry_hi, bootinfo): from 32-bit protected mode without paging to
 * 64-bit mode (SDM Vol. 3, 10.8.5: PAE, CR3, EFER.LME, then CR0.PG), then jump to the runtime's 64-bit
 * entry with RDI = bootinfo. Does not return. */
	.text
	.code32
	.globl init_enter_longmode
init_enter_longmode:
	cli
	movl 4(%esp), %eax       /* pml4 */
	movl 8(%esp), %esi       /* entry low */
	movl 12(%esp), %edi      /* entry high */
	movl 16(%esp), %ebp      /* bootinfo */
	movl %eax, %cr3
	movl %cr4, %eax
	orl $(1 << 5), %eax      /* PAE */
	movl %eax, %cr4
	movl $0xc0000080, %ecx   /* EFER */
	rdmsr
	orl $(1 << 8), %eax      /* LME */
	wrmsr
	lgdt lm_gdtr
	movl %cr0, %eax
	orl $0x80000001, %eax    /* PG | PE */
	movl %eax, %cr0
	ljmp $0x08, $lm_64

	.code64
lm_64:
	movl $0x10, %eax
	movl %eax, %ds
	movl %eax, %es
	movl %eax, %ss
	movl %eax, %fs
	movl %eax, %gs
	movl %esi, %eax
	shlq $32, %rdi
	orq %rax, %rdi           /* rdi = entry */
	movq %rdi, %rax
	movl %ebp, %edi          /* rdi = bootinfo (zero-extended) */
	xorl %esp, %esp          /* the runtime sets its own stack */
	jmp *%rax

	.data
	.align 16
lm_gdt:
	.quad 0
	.quad 0x00af9a000000ffff /* 0x08: 64-bit code */
	.quad 0x00cf92000000ffff /* 0x10: data */
lm_gdt_end:
lm_gdtr:
	.word lm_gdt_end - lm_gdt - 1
	.long lm_gdt
