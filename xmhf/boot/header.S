/* init's multiboot v1 header and 32-bit entry. GRUB loads the flat image at its load address (the
 * "a.out kludge" fields, multiboot spec 3.1.3), enters in protected mode with paging off,
 * EAX = 0x2BADB002 and EBX = the multiboot information structure. */
#define MB_MAGIC 0x1BADB002
#define MB_FLAGS ((1 << 0) | (1 << 1) | (1 << 16)) /* page-aligned modules, memory map, load addresses */

	.section .multiboot, "a"
	.align 4
mb_header:
	.long MB_MAGIC
	.long MB_FLAGS
	.long -(MB_MAGIC + MB_FLAGS)
	.long mb_header     /* header_addr */
	.long __init_start  /* load_addr */
	.long __init_data_end /* load_end_addr */
	.long __init_end    /* bss_end_addr */
	.long _start        /* entry_addr */

	.text
	.code32
	.globl _start
_start:
	cli
	cld
	movl $init_stack_top, %esp
	/* TSC first, so boot-time figures count from the boot loader's hand-off. */
	movl %eax, %esi
	rdtsc
	movl %eax, init_tsc_at_entry
	movl %edx, init_tsc_at_entry + 4
	pushl $0
	popfl
	pushl %ebx
	pushl %esi
	call init_main
1:	cli
	hlt
	jmp 1b

	.bss
	.align 16
init_stack:
	.skip 16384
init_stack_top:
