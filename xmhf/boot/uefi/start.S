/* The entry of an EFI application built here (the loader, the test application): UEFI 2.10, 2.3.4 x64
 * convention, RCX = image handle, RDX = system table. The image is linked at 0 and relocates itself
 * (efi_relocate) before any C code uses an absolute address: the PE .reloc section below is the empty
 * block firmware wants to see before it loads an image anywhere. efi_main returns to the firmware. */

	.section .text.efi_entry, "ax"
	.code64
	.globl _efi_start
_efi_start:
	pushq %rcx
	pushq %rdx
	subq $8, %rsp                /* 16-byte aligned for the call */
	leaq __image_base(%rip), %rdi
	call efi_relocate
	addq $8, %rsp
	popq %rdx
	popq %rcx
	jmp efi_main                 /* same arguments, same stack: efi_main returns to the firmware */

/* An empty base-relocation block (PE/COFF 6.6: page RVA 0, block size 10, one IMAGE_REL_BASED_ABSOLUTE
 * entry that does nothing): firmware refuses to relocate an image without a relocation directory. */
	.section .reloc, "a"
	.long 0
	.long 10
	.word 0
