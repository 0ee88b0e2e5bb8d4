/* head.S - multiboot v1 entry, long-mode switch, AP trampoline, interrupt stubs, catch_exception.
 *
 * GRUB loads the flat image at KERNEL_LOAD_ADDR (a.out kludge) and jumps to _start32 in 32-bit
 * protected mode, paging off, EAX = 0x2BADB002, EBX = multiboot information.
 */
#include "defs.h"

#define MB_MAGIC  0x1BADB002
#define MB_FLAGS  0x00010003      /* page-align modules, memory info, a.out kludge */

    .section .multiboot, "a"
    .balign 4
mb_header:
    .long MB_MAGIC
    .long MB_FLAGS
    .long -(MB_MAGIC + MB_FLAGS)
    .long mb_header               /* header_addr */
    .long __image_start           /* load_addr */
    .long __load_end              /* load_end_addr */
    .long __bss_end               /* bss_end_addr */
    .long _start32                /* entry_addr */

/* ------------------------------------------------------------------------------------------ */
    .section .text.boot, "ax"
    .code32
    .globl _start32
_start32:
    cli
    cld
    mov %eax, %esi
    mov %ebx, %ebp

    /* Zero .bss (GRUB does, but do not rely on it). */
    mov $__bss_start, %edi
    mov $__bss_end, %ecx
    sub %edi, %ecx
    shr $2, %ecx                  /* both ends are 16-byte aligned (link.ld) */
    xor %eax, %eax
    rep stosl
    mov %esi, boot_mb_magic
    mov %ebp, boot_mb_info

    /* PML4[0] -> PDPT; PDPT[0..3] -> 4 PDs of 2 MiB pages: identity map of 0..4 GiB. */
    mov $boot_pdpt, %eax
    or $3, %eax
    mov %eax, boot_pml4
    mov $boot_pd, %eax
    or $3, %eax
    xor %ecx, %ecx
1:  mov %eax, boot_pdpt(,%ecx,8)
    add $0x1000, %eax
    inc %ecx
    cmp $4, %ecx
    jb 1b
    /* PDPT[4] -> alias PD (empty until map_alias_2m()). */
    mov $alias_pd, %eax
    or $3, %eax
    mov %eax, boot_pdpt + 4 * 8

    xor %ecx, %ecx
2:  mov %ecx, %eax
    shl $21, %eax
    or $0x83, %eax                /* P | W | PS */
    cmp $1536, %ecx
    jb 3f
    or $0x18, %eax                /* PWT | PCD above 3 GiB (MMIO: local APIC, IO APIC, ...) */
3:  mov %eax, boot_pd(,%ecx,8)
    inc %ecx
    cmp $2048, %ecx
    jb 2b

    lgdt gdt_desc
    mov $BOOT_CR4, %eax
    mov %eax, %cr4
    mov $boot_pml4, %eax
    mov %eax, %cr3
    mov $0xC0000080, %ecx
    rdmsr
    or $0x100, %eax               /* EFER.LME */
    wrmsr
    mov $BOOT_CR0, %eax
    mov %eax, %cr0
    ljmp $SEL_CODE64, $long64

    .code64
long64:
    mov $SEL_DATA, %eax
    mov %eax, %ds
    mov %eax, %es
    mov %eax, %ss
    mov %eax, %fs
    mov %eax, %gs
    mov $boot_stack_top, %rsp
    xor %ebp, %ebp
    call kmain
4:  cli
    hlt
    jmp 4b

/* AP 64-bit entry (jumped to from the trampoline, still on no stack). The stack comes from
 * ap_stack_by_apic[initial APIC ID]; an AP without one parks. */
    .globl ap_entry64
ap_entry64:
    lgdt gdt_desc
    mov $SEL_DATA, %eax
    mov %eax, %ds
    mov %eax, %es
    mov %eax, %ss
    mov %eax, %fs
    mov %eax, %gs
    mov $1, %eax
    xor %ecx, %ecx
    cpuid
    shr $24, %ebx
    mov ap_stack_by_apic(,%rbx,8), %rsp
    test %rsp, %rsp
    jz 5f
    xor %ebp, %ebp
    call ap_main
5:  cli
    hlt
    jmp 5b

/* ------------------------------------------------------------------------------------------
 * AP trampoline: copied to TRAMPOLINE_BASE; real mode -> protected mode -> long mode.
 * smp_init() fills tramp_cr3 and tramp_entry in the copy.
 */
#define TA(x) (TRAMPOLINE_BASE + ((x) - tramp_start))
    .code16
    .globl tramp_start, tramp_end, tramp_cr3, tramp_entry
tramp_start:
    cli
    cld
    xor %ax, %ax
    mov %ax, %ds
    lgdtl TA(tramp_gdt_desc)
    mov %cr0, %eax
    or $1, %eax
    mov %eax, %cr0
    ljmpl $SEL_CODE32, $TA(tramp_32)

    .code32
tramp_32:
    mov $SEL_DATA, %eax
    mov %eax, %ds
    mov %eax, %es
    mov %eax, %ss
    mov $BOOT_CR4, %eax
    mov %eax, %cr4
    mov TA(tramp_cr3), %eax
    mov %eax, %cr3
    mov $0xC0000080, %ecx
    rdmsr
    or $0x100, %eax
    wrmsr
    mov $BOOT_CR0, %eax
    mov %eax, %cr0
    ljmp $SEL_CODE64, $TA(tramp_64)

    .code64
tramp_64:
    mov TA(tramp_entry), %rax
    jmp *%rax

    .balign 8
tramp_gdt:
    .quad 0
    .quad 0x00cf9a000000ffff      /* 0x08: 32-bit code */
    .quad 0x00cf92000000ffff      /* 0x10: data */
    .quad 0x00af9a000000ffff      /* 0x18: 64-bit code */
tramp_gdt_desc:
    .word 4 * 8 - 1
    .long TA(tramp_gdt)
    .balign 8
tramp_cr3:
    .quad 0
tramp_entry:
    .quad 0
tramp_end:

/* ------------------------------------------------------------------------------------------
 * Interrupt stubs: 256 stubs of 16 bytes each at isr_stubs + 16 * vector. Each pushes a dummy
 * error code where the CPU does not push one, then the vector.
 */
    .text
    .balign 16
    .globl isr_stubs
isr_stubs:
    .set vec, 0
    .rept 256
    .balign 16
    .if (vec == 8) || ((vec >= 10) && (vec <= 14)) || (vec == 17) || (vec == 21) || (vec == 29) || (vec == 30)
    .else
    pushq $0
    .endif
    pushq $vec
    jmp isr_common
    .set vec, vec + 1
    .endr

isr_common:
    push %rax
    push %rbx
    push %rcx
    push %rdx
    push %rsi
    push %rdi
    push %rbp
    push %r8
    push %r9
    push %r10
    push %r11
    push %r12
    push %r13
    push %r14
    push %r15
    mov %rsp, %rdi
    cld
    call trap_dispatch
    pop %r15
    pop %r14
    pop %r13
    pop %r12
    pop %r11
    pop %r10
    pop %r9
    pop %r8
    pop %rbp
    pop %rdi
    pop %rsi
    pop %rdx
    pop %rcx
    pop %rbx
    pop %rax
    add $16, %rsp
    iretq

/* int catch_exception(void (*fn)(void *), void *arg)
 * Runs fn(arg). An exception inside it (not handled by an extable fixup) makes trap_dispatch()
 * resume at catch_resume with RSP = cpu->catch_rsp; the vector is returned. */
    .globl catch_exception, catch_resume
catch_exception:
    push %rbx
    push %rbp
    push %r12
    push %r13
    push %r14
    push %r15
    sub $8, %rsp
    mov %gs:CPU_OFF_SELF, %rax
    mov %rsp, CPU_OFF_CATCH_RSP(%rax)
    movl $-1, CPU_OFF_FAULT_VEC(%rax)
    movl $1, CPU_OFF_CATCH_ARMED(%rax)
    mov %rdi, %rax
    mov %rsi, %rdi
    call *%rax
    mov %gs:CPU_OFF_SELF, %rax
    movl $0, CPU_OFF_CATCH_ARMED(%rax)
catch_resume:
    mov %gs:CPU_OFF_SELF, %rax
    movl CPU_OFF_FAULT_VEC(%rax), %eax
    add $8, %rsp
    pop %r15
    pop %r14
    pop %r13
    pop %r12
    pop %rbp
    pop %rbx
    ret

/* ------------------------------------------------------------------------------------------ */
    .data
    .balign 16
    .globl gdt, gdt_desc
gdt:
    .quad 0
    .quad 0x00cf9a000000ffff      /* 0x08: 32-bit code */
    .quad 0x00cf92000000ffff      /* 0x10: data */
    .quad 0x00af9a000000ffff      /* 0x18: 64-bit code */
gdt_end:
    .balign 8
    .word 0, 0, 0
gdt_desc:
    .word gdt_end - gdt - 1
    .quad gdt

    .globl boot_mb_magic, boot_mb_info
    .bss
    .balign 4096
    .globl boot_pml4, boot_pdpt, boot_pd, alias_pd
boot_pml4:  .skip 4096
boot_pdpt:  .skip 4096
boot_pd:    .skip 4 * 4096
alias_pd:   .skip 4096
    .balign 16
boot_stack: .skip STACK_SIZE
boot_stack_top:
boot_mb_info: .skip 8

    .section .note.GNU-stack, "", @progbits
