/* lhv4.bin - L1 test hypervisor, phase 4: conditional VM exits of a 64-bit L2 guest (bitmaps,
 * CR guest/host masks and read shadows, #PF error-code mask/match, RDTSC/MOV DR/INVLPG exiting)
 * and a 32-bit protected-mode L2.
 *
 * L1 scaffolding from the library, as lhv2 (l1.h: vm_enter/vm_exit_stub, L1 GDT with a TSS,
 * vmcs_build from the TRUE capability MSRs). No EPT: L2 runs on L1's page tables (64-bit) or on its
 * own 32-bit PSE page directory (l2-protected-mode). Everything on the BSP.
 *
 * Checks (SDM Vol. 3 25.6, 26.1.3, 28.2.1):
 *  l2-msr-bitmap-quarters  one bit in each quarter of the MSR bitmap: RDMSR 0x174 (read-low) and
 *                       0xC0000100 (read-high) exit (31), WRMSR 0x175 (write-low) and 0xC0000102
 *                       (write-high) exit (32), RCX/RAX/RDX as L2 had them; RDMSR 0x175, 0xC0000101,
 *                       0xC0000102 and WRMSR 0x174, 0xC0000101 (bits clear) do not exit.
 *  l2-cr-masks          CR0 mask = TS, guest CR0.TS = 1, shadow TS = 0: MOV from CR0 reads TS = 0;
 *                       MOV to CR0 setting TS exits (28, qualification 0x300: CR0, MOV to CR, RBX);
 *                       with shadow TS = 1, CLTS exits (0x20); MOV to CR0 keeping the shadow's TS
 *                       does not exit (guest CR0.TS stays 1); LMSW setting TS exits (0x30 | source
 *                       << 16); CR4 mask = PCE, guest PCE = 1, shadow 0: MOV from CR4 reads PCE = 0,
 *                       MOV to CR4 setting PCE exits (0x104: CR4, MOV to CR, RCX).
 *  l2-io-bitmaps        bitmap A bit 0x80, bitmap B bit 0x8080: OUT %al,$0x80 exits (0x800040),
 *                       IN %al,(%dx) from 0x8080 exits (0x80800008), OUT %ax,(%dx) to 0x7F (covers
 *                       0x80) exits (0x7f0001); IN from 0x81 and OUT to 0x8081 do not exit.
 *  l2-pf-mask-match     bit 14 set, mask = match = 2 (write): a read #PF (not present, 6 GiB) goes
 *                       to L2's IDT (error code 0, CR2); a write #PF exits (0, vector 14, error
 *                       code 2, qualification = the address). Bit 14 clear, same mask/match: the
 *                       read #PF exits (PFEC & mask != match), the write #PF goes to L2's IDT.
 *  l2-rdtsc-movdr-invlpg  RDTSC exiting (16, length 2); MOV DR exiting: MOV RDX<-DR7 exits (29,
 *                       0x217), MOV DR1<-RBX exits (29, 0x301); INVLPG exiting (14, qualification =
 *                       the linear address).
 *  l2-preemption-timer  pin-based VMX-preemption timer with "save timer value": armed at 2^32-1, an
 *                       L2 CPUID exits first (10) and the saved value is not 0; armed at 200 in an
 *                       L2 loop without exits, it exits (52, qualification 0, RIP in the loop) and
 *                       the saved value is 0; without the save control, the field keeps 300.
 *  l2-protected-mode    IA-32e mode guest off, CS = 32-bit flat code (selector 0x08), CR0.PE=PG=1
 *                       with 32-bit paging (CR4.PSE, 4 MiB pages, identity; PG=0 needs unrestricted
 *                       guest, i.e. EPT): CPUID exits (10, RIP, length 2), VMCALL exits (18);
 *                       0x48 decodes as DEC EAX (32-bit code, not REX.W).
 *  l2-all-cpus          every online CPU at once (APs through smp_call_async): own GDT/TSS, VMXON,
 *                       VMCS, L2 stack; L2 CPUID(0) exits (10, RIP, length 2), VMCALL exits (18).
 *
 * Bochs 2.7 passes all of it bare with 1 and 2 CPUs (about 2.1 M ticks in the kernel).
 */
#include "lib.h"
#include "vmx.h"
#include "l1.h"

/* ------------------------------------------------------------------------------------------
 * L2 code (64-bit, CPL 0, IF = 0 unless said otherwise). Each program ends in VMCALL.
 */
#define MARK_PF      0x0f14ull      /* L2's #PF handler */
#define PF_ADDR      0x180000000ull /* 6 GiB: not present in L1's page tables */

extern char l2_msr[], l2_msr_r174[], l2_msr_rc100[], l2_msr_w175[], l2_msr_wc102[],
    l2_msr_vmcall[];
extern char l2_cr[], l2_cr_mov0[], l2_cr_clts[], l2_cr_lmsw[], l2_cr_mov4[], l2_cr_vmcall[];
extern char l2_io[], l2_io_out80[], l2_io_in8080[], l2_io_outw7f[], l2_io_vmcall[];
extern char l2_sio[], l2_sio_insb[], l2_sio_vmcall[];
extern char l2_outs_poweroff[];
extern char l2_gp[], l2_gp_wrmsr[], l2_gp_vmcall[];
uint8_t sio_buf[32];
extern char l2_pf_read[], l2_pf_read_insn[], l2_pf_write[], l2_pf_write_insn[];
extern char l2_misc[], l2_misc_rdtsc[], l2_misc_movdr7[], l2_misc_movdr1[], l2_misc_invlpg[],
    l2_misc_vmcall[];
extern char l2_pm[], l2_pm_cpuid[], l2_pm_vmcall[];
extern char l2_spin[], l2_spin_cpuid[], l2_spin_loop[], l2_spin_end[];
extern char l2_pf_handler[];

asm(".text\n"
    /* l2-preemption-timer: one CPUID, then a loop without exits */
    "l2_spin:\n"
    "  xor %eax, %eax\n"
    "l2_spin_cpuid:\n"
    "  cpuid\n"
    "l2_spin_loop:\n"
    "  inc %rax\n"
    "  jmp l2_spin_loop\n"
    "l2_spin_end:\n"
    /* l2-msr-bitmap-quarters */
    "l2_msr:\n"
    "  mov $0x174, %ecx\n"
    "l2_msr_r174:\n"
    "  rdmsr\n"                                 /* exits: read-low */
    "  mov %rax, %r12\n"
    "  mov $0x175, %ecx\n"
    "  rdmsr\n"                                 /* no exit: GUEST_SYSENTER_ESP */
    "  mov %rax, %r8\n"
    "  mov $0xc0000100, %ecx\n"
    "l2_msr_rc100:\n"
    "  rdmsr\n"                                 /* exits: read-high */
    "  mov %rax, %r13\n"
    "  mov $0xc0000101, %ecx\n"
    "  rdmsr\n"                                 /* no exit: GUEST_GS_BASE */
    "  mov %rax, %r9\n"
    "  mov $0xc0000102, %ecx\n"
    "  rdmsr\n"                                 /* no exit (read-high bit clear) */
    "  mov $0x175, %ecx\n"
    "  mov $0x5000, %eax\n"
    "  mov $0x5, %edx\n"
    "l2_msr_w175:\n"
    "  wrmsr\n"                                 /* exits: write-low */
    "  mov $0x174, %ecx\n"
    "  mov $0x6174, %eax\n"
    "  xor %edx, %edx\n"
    "  wrmsr\n"                                 /* no exit: L2's SYSENTER_CS */
    "  mov $0x174, %ecx\n"
    "  xor %eax, %eax\n"                        /* read-low 0x174 exits again: skip it */
    "  mov $0xc0000102, %ecx\n"
    "  mov $0x1234, %eax\n"
    "  mov $0xffff8000, %edx\n"
    "l2_msr_wc102:\n"
    "  wrmsr\n"                                 /* exits: write-high */
    "  mov $0xc0000101, %ecx\n"
    "  xor %eax, %eax\n"
    "  xor %edx, %edx\n"
    "  wrmsr\n"                                 /* no exit: L2's GS base = 0 */
    "l2_msr_vmcall:\n"
    "  vmcall\n"
    "  ud2\n"

    /* l2-exception-from-l0-to-l1: WRMSR of IA32_MTRR_DEF_TYPE with reserved bit 12 (#GP); L1 lets
     * the MSR through, L0 intercepts it (EPT memory types) */
    "l2_gp:\n"
    "  mov $0x2ff, %ecx\n"
    "  mov $0x1c06, %eax\n"
    "  xor %edx, %edx\n"
    "l2_gp_wrmsr:\n"
    "  wrmsr\n"
    "l2_gp_vmcall:\n"
    "  vmcall\n"
    "  ud2\n"

    /* l2-cr-masks */
    "l2_cr:\n"
    "  mov %cr0, %r8\n"                         /* shadow: TS = 0 */
    "  mov %r8, %rbx\n"
    "  or $8, %rbx\n"
    "l2_cr_mov0:\n"
    "  mov %rbx, %cr0\n"                        /* exits: TS differs from the shadow */
    "  mov %cr0, %r10\n"                        /* L1 set shadow TS = 1 */
    "l2_cr_clts:\n"
    "  clts\n"                                  /* exits: shadow TS = 1 */
    "  mov %cr0, %r11\n"                        /* L1 set shadow TS = 0 */
    "  mov %r11, %cr0\n"                        /* no exit: TS as the shadow */
    "  mov %r11, %rax\n"
    "  or $8, %eax\n"
    "l2_cr_lmsw:\n"
    "  lmsw %ax\n"                              /* exits: TS differs from the shadow */
    "  mov %cr4, %r9\n"                         /* shadow: PCE = 0 */
    "  mov %r9, %rcx\n"
    "  or $0x100, %rcx\n"
    "l2_cr_mov4:\n"
    "  mov %rcx, %cr4\n"                        /* exits */
    "  mov %r9, %cr4\n"                         /* no exit: PCE as the shadow */
    "l2_cr_vmcall:\n"
    "  vmcall\n"
    "  ud2\n"

    /* l2-io-bitmaps */
    "l2_io:\n"
    "  mov $0x5a, %eax\n"
    "l2_io_out80:\n"
    "  out %al, $0x80\n"                        /* exits: bitmap A */
    "  mov $0x8080, %edx\n"
    "l2_io_in8080:\n"
    "  in (%dx), %al\n"                         /* exits: bitmap B */
    "  in $0x81, %al\n"                         /* no exit */
    "  mov $0x8081, %edx\n"
    "  out %al, (%dx)\n"                        /* no exit */
    "  mov $0x7f, %edx\n"
    "  mov $0x1234, %eax\n"
    "l2_io_outw7f:\n"
    "  out %ax, (%dx)\n"                        /* exits: 0x7f-0x80, 0x80 set */
    "l2_io_vmcall:\n"
    "  vmcall\n"
    "  ud2\n"

    /* l2-string-io: INS from port 0xf4, which XMHF watches (QEMU's exit port; nothing on Bochs) */
    "l2_sio:\n"
    "  cld\n"
    "  lea sio_buf(%rip), %rdi\n"
    "  mov $4, %ecx\n"
    "  mov $0xf4, %edx\n"
    "l2_sio_insb:\n"
    "  rep insb\n"                             /* 4 bytes up */
    "  mov %rdi, %r8\n"
    "  mov %rcx, %r9\n"
    "  lea sio_buf+14(%rip), %rdi\n"
    "  mov $2, %ecx\n"
    "  std\n"
    "  rep insw\n"                             /* 2 words down: 14-15, 12-13 */
    "  cld\n"
    "  mov %rdi, %r10\n"
    "  mov %rcx, %r11\n"
    "  lea sio_buf+16(%rip), %rdi\n"
    "  movabs $0x100000002, %rcx\n"
    "  addr32 rep insb\n"                      /* ECX counts: 2 bytes */
    "  mov %rdi, %r12\n"
    "  mov %rcx, %r13\n"
    "  lea sio_buf+20(%rip), %rdi\n"
    "  mov $7, %ecx\n"
    "  insl\n"                                 /* no REP: one dword, RCX untouched */
    "  mov %rdi, %r14\n"
    "  mov %rcx, %r15\n"
    "l2_sio_vmcall:\n"
    "  vmcall\n"
    "  ud2\n"

    /* outs_poweroff=: "Shutdown" to Bochs's power-off port with one REP OUTSB */
    "l2_outs_poweroff:\n"
    "  lea shutdown_str(%rip), %rsi\n"
    "  mov $8, %ecx\n"
    "  mov $0x8900, %edx\n"
    "  cld\n"
    "  rep outsb\n"
    "  vmcall\n"
    "  ud2\n"
    "shutdown_str: .ascii \"Shutdown\"\n"

    /* l2-pf-mask-match */
    "l2_pf_read:\n"
    "  movabs $0x180000000, %rsi\n"
    "l2_pf_read_insn:\n"
    "  mov (%rsi), %eax\n"
    "  vmcall\n"
    "  ud2\n"
    "l2_pf_write:\n"
    "  movabs $0x180000000, %rsi\n"
    "l2_pf_write_insn:\n"
    "  movl $1, (%rsi)\n"
    "  vmcall\n"
    "  ud2\n"

    /* l2-rdtsc-movdr-invlpg */
    "l2_misc:\n"
    "l2_misc_rdtsc:\n"
    "  rdtsc\n"
    "  mov $0x11, %ebx\n"
    "l2_misc_movdr7:\n"
    "  mov %dr7, %rdx\n"
    "l2_misc_movdr1:\n"
    "  mov %rbx, %dr1\n"
    "  mov $0x12345000, %esi\n"
    "l2_misc_invlpg:\n"
    "  invlpg (%rsi)\n"
    "l2_misc_vmcall:\n"
    "  vmcall\n"
    "  ud2\n"

    /* L2's #PF handler (the others: l2_unexpected_handler): RBX = error code, RCX = pushed RIP,
     * RDX = CR2 */
    "  .balign 16\n"
    "l2_pf_handler:\n"
    "  mov $0x0f14, %eax\n"                     /* MARK_PF */
    "  mov (%rsp), %rbx\n  mov 8(%rsp), %rcx\n  mov %cr2, %rdx\n"
    "  vmcall\n"
    "  ud2\n"

    /* l2-protected-mode: 32-bit code */
    ".code32\n"
    "l2_pm:\n"
    "  xor %eax, %eax\n"
    "  xor %ecx, %ecx\n"
    "l2_pm_cpuid:\n"
    "  cpuid\n"
    "  mov %eax, %esi\n"
    "  xor %eax, %eax\n"
    "  .byte 0x48, 0xff, 0xc0\n"               /* 32-bit: DEC EAX; INC EAX. 64-bit: INC RAX */
    "  mov %eax, %edi\n"
    "l2_pm_vmcall:\n"
    "  vmcall\n"
    "  ud2\n"
    ".code64\n");

/* ------------------------------------------------------------------------------------------
 * L1: the library's scaffolding (l1.h); L2 gets its own IDT
 */
static void vmx_init(void)
{
    l2_idt_init(l2_unexpected_handler);   /* any vector: VMCALL with L2_MARK_UNEXPECTED */
    l2_idt_set(EXC_PF, l2_pf_handler);
    if (l1_init())
        l1_vmxon();
}

static void set_bit(uint8_t *map, unsigned bit) { map[bit / 8] |= (uint8_t)(1u << (bit % 8)); }

/* ------------------------------------------------------------------------------------------
 * l2-msr-bitmap-quarters
 */
static void t_msr_bitmap(void)
{
    if (test_begin("l2-msr-bitmap-quarters") && l1_need_vmx()) {
        struct l2_setup s = { .rip = PA(l2_msr), .proc = PROC_USE_MSR_BITMAPS };
        uint64_t host_kgs = rdmsr(MSR_KERNEL_GS_BASE);
        if (vmcs_build(&s)) {
            set_bit(l1_msr_bitmap, 0x174);                     /* read low */
            set_bit(l1_msr_bitmap + 0x400, 0x100);             /* read high: 0xC0000100 */
            set_bit(l1_msr_bitmap + 0x800, 0x175);             /* write low */
            set_bit(l1_msr_bitmap + 0xc00, 0x102);             /* write high: 0xC0000102 */
            vmw(VMCS_GUEST_SYSENTER_ESP, 0x5175);
            vmw(VMCS_GUEST_GS_BASE, 0x6101);
            if (run_expect_at(true, EXIT_REASON_RDMSR, l2_msr_r174, "RDMSR 0x174 (read-low bit)")) {
                check_u64(l2_regs.rcx, 0x174, "RDMSR exit: RCX");
                check_u64(ex.len, 2, "RDMSR exit: instruction length");
                l2_regs.rax = 0xa174;
                l2_regs.rdx = 0;
                advance_rip();
            }
            if (run_expect_at(false, EXIT_REASON_RDMSR, l2_msr_rc100, "RDMSR 0xC0000100 (read-high bit)")) {
                check_u64(l2_regs.rcx, 0xc0000100, "RDMSR exit: RCX");
                check_u64(l2_regs.r8, 0x5175, "RDMSR 0x175 without exit (GUEST_SYSENTER_ESP)");
                check_u64(l2_regs.r12, 0xa174, "L2's RAX from the emulated RDMSR 0x174");
                l2_regs.rax = 0xa100;
                l2_regs.rdx = 0;
                advance_rip();
            }
            if (run_expect_at(false, EXIT_REASON_WRMSR, l2_msr_w175, "WRMSR 0x175 (write-low bit)")) {
                check_u64(l2_regs.rcx, 0x175, "WRMSR exit: RCX");
                check_u64(l2_regs.rax, 0x5000, "WRMSR exit: RAX");
                check_u64(l2_regs.rdx, 0x5, "WRMSR exit: RDX");
                check_u64(l2_regs.r9, 0x6101, "RDMSR 0xC0000101 without exit (GUEST_GS_BASE)");
                check_u64(l2_regs.r13, 0xa100, "L2's RAX from the emulated RDMSR 0xC0000100");
                check_u64(ex.len, 2, "WRMSR exit: instruction length");
                advance_rip();
            }
            if (run_expect_at(false, EXIT_REASON_WRMSR, l2_msr_wc102, "WRMSR 0xC0000102 (write-high bit)")) {
                check_u64(l2_regs.rcx, 0xc0000102, "WRMSR exit: RCX");
                check_u64(l2_regs.rax, 0x1234, "WRMSR exit: RAX");
                check_u64(l2_regs.rdx, 0xffff8000, "WRMSR exit: RDX");
                advance_rip();
            }
            if (run_expect_at(false, EXIT_REASON_VMCALL, l2_msr_vmcall, "VMCALL after the MSR accesses")) {
                check_u64(vmr(VMCS_GUEST_SYSENTER_CS), 0x6174,
                          "GUEST_SYSENTER_CS after WRMSR 0x174 without exit");
                check_u64(vmr(VMCS_GUEST_GS_BASE), 0, "GUEST_GS_BASE after WRMSR 0xC0000101");
                check_u64(rdmsr(MSR_KERNEL_GS_BASE), host_kgs,
                          "L1's IA32_KERNEL_GS_BASE (the write exited)");
            }
        }
    }
    test_end();
}

/* ------------------------------------------------------------------------------------------
 * l2-exception-from-l0-to-l1: a #GP that L0 raises while it handles an exit of L2 (here an MSR
 * write L1 lets through but L0 intercepts) goes through L1's exception bitmap like any #GP of L2:
 * an exception exit (reason 0, #GP, error code 0) at the WRMSR; without the bit, L2 takes it.
 */
static void t_l0_exception_to_l1(void)
{
    if (test_begin("l2-exception-from-l0-to-l1") && l1_need_vmx()) {
        struct l2_setup s = { .rip = PA(l2_gp), .proc = PROC_USE_MSR_BITMAPS, .exc_bitmap = 1u << EXC_GP };
        if (vmcs_build(&s) &&
            run_expect_at(true, EXIT_REASON_EXCEPTION_NMI, l2_gp_wrmsr, "WRMSR 0x2ff with a reserved bit")) {
            check_u64(ex.intr_info, 0x80000b0d, "exit interruption information (#GP, error code)");
            check_u64(ex.intr_err, 0, "exit interruption error code");
            check_u64(ex.qual, 0, "exit qualification");
            check_u64(l2_regs.rcx, 0x2ff, "L2's RCX");
            check_u64(rdmsr(0x2ff) & 0x1000, 0, "IA32_MTRR_DEF_TYPE bit 12");
            vmw(VMCS_GUEST_RIP, PA(l2_gp_vmcall)); /* ex.len is undefined for exception exits */
            run_expect_at(false, EXIT_REASON_VMCALL, l2_gp_vmcall, "VMCALL after the #GP exit");
        }
    }
    test_end();
}

/* ------------------------------------------------------------------------------------------
 * l2-cr-masks
 */
#define CR0_TS  (1ull << 3)
#define CR4_PCE (1ull << 8)

static void t_cr_masks(void)
{
    if (test_begin("l2-cr-masks") && l1_need_vmx()) {
        struct l2_setup s = { .rip = PA(l2_cr) };
        if (vmcs_build(&s)) {
            uint64_t cr0 = read_cr0() & ~CR0_TS, cr4 = read_cr4() & ~CR4_PCE;
            vmw(VMCS_GUEST_CR0, cr0 | CR0_TS);
            vmw(VMCS_CR0_GUEST_HOST_MASK, CR0_TS);
            vmw(VMCS_CR0_READ_SHADOW, cr0);
            vmw(VMCS_GUEST_CR4, cr4 | CR4_PCE);
            vmw(VMCS_CR4_GUEST_HOST_MASK, CR4_PCE);
            vmw(VMCS_CR4_READ_SHADOW, cr4);
            if (run_expect_at(true, EXIT_REASON_CR_ACCESS, l2_cr_mov0, "MOV RBX to CR0 setting TS")) {
                check_u64(ex.qual, 0x300, "MOV to CR0 exit qualification (CR0, MOV to CR, RBX)");
                check_u64(l2_regs.r8, cr0, "L2's MOV from CR0 (shadow TS = 0, guest TS = 1)");
                check_u64(l2_regs.rbx, cr0 | CR0_TS, "MOV to CR0 exit: L2's RBX");
                check_u64(ex.len, 3, "MOV to CR0 exit: instruction length");
                vmw(VMCS_CR0_READ_SHADOW, cr0 | CR0_TS);
                advance_rip();
            }
            if (run_expect_at(false, EXIT_REASON_CR_ACCESS, l2_cr_clts, "CLTS with shadow TS = 1")) {
                check_u64(ex.qual, 0x20, "CLTS exit qualification (CR0, access type 2)");
                check_u64(l2_regs.r10, cr0 | CR0_TS, "L2's MOV from CR0 (shadow TS = 1)");
                check_u64(ex.len, 2, "CLTS exit: instruction length");
                vmw(VMCS_CR0_READ_SHADOW, cr0);
                advance_rip();
            }
            if (run_expect_at(false, EXIT_REASON_CR_ACCESS, l2_cr_lmsw, "LMSW setting TS")) {
                uint64_t src = (cr0 | CR0_TS) & 0xffff;
                check_u64(ex.qual, 0x30 | (src << 16),
                          "LMSW exit qualification (CR0, access type 3, register operand, source)");
                check_u64(l2_regs.r11, cr0, "L2's MOV from CR0 (shadow TS = 0 again)");
                check_u64(vmr(VMCS_GUEST_CR0), cr0 | CR0_TS,
                          "GUEST_CR0 after MOV to CR0 without exit (TS owned by L1)");
                check_u64(ex.len, 3, "LMSW exit: instruction length");
                advance_rip();
            }
            if (run_expect_at(false, EXIT_REASON_CR_ACCESS, l2_cr_mov4, "MOV RCX to CR4 setting PCE")) {
                check_u64(ex.qual, 0x104, "MOV to CR4 exit qualification (CR4, MOV to CR, RCX)");
                check_u64(l2_regs.r9, cr4, "L2's MOV from CR4 (shadow PCE = 0, guest PCE = 1)");
                advance_rip();
            }
            if (run_expect_at(false, EXIT_REASON_VMCALL, l2_cr_vmcall, "VMCALL after the CR accesses"))
                check_u64(vmr(VMCS_GUEST_CR4), cr4 | CR4_PCE,
                          "GUEST_CR4 after MOV to CR4 without exit (PCE owned by L1)");
        }
    }
    test_end();
}

/* ------------------------------------------------------------------------------------------
 * l2-io-bitmaps
 */
static uint8_t io_bitmap_a[PAGE] __attribute__((aligned(PAGE)));
static uint8_t io_bitmap_b[PAGE] __attribute__((aligned(PAGE)));

static void t_io_bitmaps(void)
{
    if (test_begin("l2-io-bitmaps") && l1_need_vmx()) {
        struct l2_setup s = { .rip = PA(l2_io), .proc = PROC_USE_IO_BITMAPS };
        if (vmcs_build(&s)) {
            memset(io_bitmap_a, 0, PAGE);
            memset(io_bitmap_b, 0, PAGE);
            set_bit(io_bitmap_a, 0x80);
            set_bit(io_bitmap_b, 0x8080 - 0x8000);
            vmw(VMCS_IO_BITMAP_A, PA(io_bitmap_a));
            vmw(VMCS_IO_BITMAP_B, PA(io_bitmap_b));
            if (run_expect_at(true, EXIT_REASON_IO, l2_io_out80, "OUT %al,$0x80 (bitmap A)")) {
                check_u64(ex.qual, (0x80u << 16) | IO_QUAL_IMMEDIATE,
                          "I/O qualification (size 1, out, immediate, port 0x80)");
                check_u64(ex.len, 2, "OUT exit: instruction length");
                advance_rip();
            }
            if (run_expect_at(false, EXIT_REASON_IO, l2_io_in8080, "IN %al,(%dx) from 0x8080 (bitmap B)")) {
                check_u64(ex.qual, (0x8080ull << 16) | IO_QUAL_IN,
                          "I/O qualification (size 1, in, DX, port 0x8080)");
                check_u64(ex.len, 1, "IN exit: instruction length");
                l2_regs.rax = (l2_regs.rax & ~0xffull) | 0x42;
                advance_rip();
            }
            if (run_expect_at(false, EXIT_REASON_IO, l2_io_outw7f, "OUT %ax,(%dx) to 0x7f (covers 0x80)")) {
                check_u64(ex.qual, (0x7full << 16) | 1,
                          "I/O qualification (size 2, out, DX, port 0x7f)");
                check_u64(ex.len, 2, "OUT word exit: instruction length");
                advance_rip();
            }
            run_expect_at(false, EXIT_REASON_VMCALL, l2_io_vmcall, "VMCALL after the I/O accesses");
        }
    }
    test_end();
}

/* ------------------------------------------------------------------------------------------
 * l2-string-io: INS/OUTS from L2 to a port L1 lets through but XMHF watches (0xf4), so XMHF
 * performs them one element per exit (RSI/RDI, RCX, DF, address size as the CPU would); then the same
 * INS with L1 intercepting the port: the exit goes to L1 with the string exit information.
 */
static void sio_fill(void)
{
    memset(sio_buf, 0x33, sizeof(sio_buf));
}

static void t_string_io(void)
{
    if (test_begin("l2-string-io") && l1_need_vmx()) {
        struct l2_setup s = { .rip = PA(l2_sio), .proc = PROC_USE_IO_BITMAPS };
        uint64_t buf = PA(sio_buf);
        sio_fill();
        if (vmcs_build(&s)) {
            memset(io_bitmap_a, 0, PAGE);
            memset(io_bitmap_b, 0, PAGE);
            vmw(VMCS_IO_BITMAP_A, PA(io_bitmap_a));
            vmw(VMCS_IO_BITMAP_B, PA(io_bitmap_b));
            uint8_t v = inb(0xf4);
            if (run_expect_at(true, EXIT_REASON_VMCALL, l2_sio_vmcall, "INS from port 0xf4, L1 not intercepting")) {
                check_u64(l2_regs.r8, buf + 4, "RDI after REP INSB (4 bytes)");
                check_u64(l2_regs.r9, 0, "RCX after REP INSB");
                check_u64(l2_regs.r10, buf + 10, "RDI after STD; REP INSW (2 words)");
                check_u64(l2_regs.r11, 0, "RCX after REP INSW");
                check_u64(l2_regs.r12, buf + 18, "RDI after ADDR32 REP INSB");
                /* ECX counts and, written as a 32-bit register, clears RCX's upper half */
                check_u64(l2_regs.r13, 0, "RCX after ADDR32 REP INSB (ECX counted)");
                check_u64(l2_regs.r14, buf + 24, "RDI after INSL");
                check_u64(l2_regs.r15, 7, "RCX after INSL (no REP)");
                for (int i = 0; i < 32; i++) {
                    bool filled = i < 4 || (i >= 12 && i < 18) || (i >= 20 && i < 24);
                    test_check(sio_buf[i] == (filled ? v : 0x33), "buffer byte %d: 0x%x", i, sio_buf[i]);
                }
            }
        }
        /* L1 intercepts 0xf4: the first INS exits to L1 with the string I/O information. */
        sio_fill();
        if (vmcs_build(&s)) {
            memset(io_bitmap_a, 0, PAGE);
            memset(io_bitmap_b, 0, PAGE);
            set_bit(io_bitmap_a, 0xf4);
            vmw(VMCS_IO_BITMAP_A, PA(io_bitmap_a));
            vmw(VMCS_IO_BITMAP_B, PA(io_bitmap_b));
            if (run_expect_at(true, EXIT_REASON_IO, l2_sio_insb, "REP INSB from 0xf4, L1 intercepting")) {
                check_u64(ex.qual, (0xf4ull << 16) | IO_QUAL_IN | IO_QUAL_STRING | IO_QUAL_REP,
                          "I/O qualification (size 1, in, string, REP, DX, port 0xf4)");
                check_u64(ex.len, 2, "REP INSB exit: instruction length");
                check_u64(vmr(VMCS_GUEST_LINEAR_ADDRESS), buf, "REP INSB exit: guest-linear address");
                check_u64((vmr(VMCS_EXIT_INSTRUCTION_INFO) >> 7) & 7, 2,
                          "REP INSB exit: instruction information address size (64-bit)");
                check_u64(l2_regs.rcx, 4, "REP INSB exit: L2's RCX (nothing done yet)");
                test_check(sio_buf[0] == 0x33, "buffer byte 0 written before the exit: 0x%x", sio_buf[0]);
            }
        }
        /* L1 itself (XMHF watches 0xf4 in its own bitmaps too). */
        sio_fill();
        {
            uint64_t rdi = buf, rcx = 3;
            asm volatile("cld; rep insb" : "+D"(rdi), "+c"(rcx) : "d"(0xf4) : "memory");
            check_u64(rdi, buf + 3, "L1's RDI after REP INSB");
            check_u64(rcx, 0, "L1's RCX after REP INSB");
            test_check(sio_buf[2] == inb(0xf4) && sio_buf[3] == 0x33, "L1's buffer after REP INSB: %x %x",
                       sio_buf[2], sio_buf[3]);
        }
    }
    test_end();
}

/* ------------------------------------------------------------------------------------------
 * l2-pf-mask-match
 */
static void pf_case(uint32_t bitmap, void *prog, void *insn, uint32_t err, bool exits,
                    const char *what)
{
    struct l2_setup s = { .rip = PA(prog), .exc_bitmap = bitmap };
    char buf[120];
    if (!vmcs_build(&s))
        return;
    vmw(VMCS_PF_ERROR_CODE_MASK, 2);
    vmw(VMCS_PF_ERROR_CODE_MATCH, 2);
    if (exits) {
        snprintf(buf, sizeof(buf), "%s: exits", what);
        if (run_expect_at(true, EXIT_REASON_EXCEPTION_NMI, insn, buf)) {
            test_check(ex.intr_info == (INTR_INFO(INTR_TYPE_HW_EXCEPTION, EXC_PF) |
                                        INTR_INFO_ERROR_CODE),
                       "%s: interruption information 0x%x", what, ex.intr_info);
            test_check(ex.intr_err == err, "%s: error code 0x%x, expected 0x%x", what,
                       ex.intr_err, err);
            test_check(ex.qual == PF_ADDR, "%s: qualification 0x%llx, expected 0x%llx", what,
                       U64(ex.qual), U64(PF_ADDR));
        }
    } else {
        snprintf(buf, sizeof(buf), "%s: L2's #PF handler", what);
        if (run_expect(true, EXIT_REASON_VMCALL, buf)) {
            test_check(l2_regs.rax == MARK_PF, "%s: L2's RAX 0x%llx, expected the #PF marker",
                       what, U64(l2_regs.rax));
            test_check(l2_regs.rbx == err, "%s: error code 0x%llx, expected 0x%x", what,
                       U64(l2_regs.rbx), err);
            test_check(l2_regs.rcx == PA(insn), "%s: pushed RIP 0x%llx, expected 0x%llx", what,
                       U64(l2_regs.rcx), U64(PA(insn)));
            test_check(l2_regs.rdx == PF_ADDR, "%s: CR2 0x%llx", what, U64(l2_regs.rdx));
        }
    }
}

static void t_pf_mask_match(void)
{
    if (test_begin("l2-pf-mask-match") && l1_need_vmx()) {
        pf_case(1u << EXC_PF, l2_pf_read, l2_pf_read_insn, 0, false,
                "bit 14 set, read #PF (error code 0, no match)");
        pf_case(1u << EXC_PF, l2_pf_write, l2_pf_write_insn, 2, true,
                "bit 14 set, write #PF (error code 2, match)");
        pf_case(0, l2_pf_read, l2_pf_read_insn, 0, true,
                "bit 14 clear, read #PF (error code 0, no match)");
        pf_case(0, l2_pf_write, l2_pf_write_insn, 2, false,
                "bit 14 clear, write #PF (error code 2, match)");
    }
    test_end();
}

/* ------------------------------------------------------------------------------------------
 * l2-rdtsc-movdr-invlpg
 */
static void t_misc_exits(void)
{
    if (test_begin("l2-rdtsc-movdr-invlpg") && l1_need_vmx()) {
        struct l2_setup s = { .rip = PA(l2_misc),
                              .proc = PROC_RDTSC_EXITING | PROC_MOV_DR_EXITING |
                                      PROC_INVLPG_EXITING };
        if (vmcs_build(&s)) {
            if (run_expect_at(true, EXIT_REASON_RDTSC, l2_misc_rdtsc, "RDTSC")) {
                check_u64(ex.len, 2, "RDTSC exit: instruction length");
                l2_regs.rax = 0x1111;
                l2_regs.rdx = 0x2222;
                advance_rip();
            }
            if (run_expect_at(false, EXIT_REASON_DR_ACCESS, l2_misc_movdr7, "MOV RDX <- DR7")) {
                check_u64(ex.qual, 0x217, "MOV from DR7 qualification (DR7, from DR, RDX)");
                check_u64(ex.len, 3, "MOV DR exit: instruction length");
                check_u64(l2_regs.rax, 0x1111, "L2's RAX after the emulated RDTSC");
                l2_regs.rdx = 0x400;
                advance_rip();
            }
            if (run_expect_at(false, EXIT_REASON_DR_ACCESS, l2_misc_movdr1, "MOV DR1 <- RBX")) {
                check_u64(ex.qual, 0x301, "MOV to DR1 qualification (DR1, to DR, RBX)");
                check_u64(l2_regs.rbx, 0x11, "MOV to DR1 exit: L2's RBX");
                advance_rip();
            }
            if (run_expect_at(false, EXIT_REASON_INVLPG, l2_misc_invlpg, "INVLPG")) {
                check_u64(ex.qual, 0x12345000, "INVLPG qualification (linear address)");
                check_u64(ex.len, 3, "INVLPG exit: instruction length");
                advance_rip();
            }
            run_expect_at(false, EXIT_REASON_VMCALL, l2_misc_vmcall, "VMCALL after INVLPG");
        }
    }
    test_end();
}

/* ------------------------------------------------------------------------------------------
 * l2-preemption-timer
 */
static bool in_spin_loop(uint64_t rip) { return rip >= PA(l2_spin_loop) && rip < PA(l2_spin_end); }

static void t_preemption_timer(void)
{
    if (test_begin("l2-preemption-timer") && l1_need_vmx()) {
        bool save = vmx_ctl_allowed(cap_exit, EXIT_SAVE_PREEMPTION_TIMER);
        struct l2_setup s = { .rip = PA(l2_spin), .pin = PIN_PREEMPTION_TIMER,
                              .exit = save ? EXIT_SAVE_PREEMPTION_TIMER : 0 };
        if (!vmx_ctl_allowed(cap_pin, PIN_PREEMPTION_TIMER)) {
            info("l2-preemption-timer: no VMX-preemption timer (pin-based bit 6 not allowed)");
        } else if (vmcs_build(&s)) {
            /* A timer far from expiring does not hold up the CPUID exit. */
            vmw(VMCS_PREEMPTION_TIMER_VALUE, 0xffffffffull);
            if (run_expect_at(true, EXIT_REASON_CPUID, l2_spin_cpuid, "CPUID with the timer armed") && save) {
                uint64_t left = vmr(VMCS_PREEMPTION_TIMER_VALUE);
                test_check(left != 0 && left <= 0xffffffffull,
                           "saved timer after the CPUID exit: 0x%llx, expected 1..0xffffffff", U64(left));
            }
            advance_rip();
            /* Then it expires in L2's loop: exit 52, qualification 0, saved value 0. */
            vmw(VMCS_PREEMPTION_TIMER_VALUE, 200);
            if (run_expect(false, EXIT_REASON_PREEMPTION_TIMER, "timer of 200 in an L2 loop")) {
                test_check(in_spin_loop(ex.rip), "timer exit: GUEST_RIP 0x%llx not in the loop", U64(ex.rip));
                check_u64(ex.qual, 0, "timer exit: qualification");
                if (save)
                    check_u64(vmr(VMCS_PREEMPTION_TIMER_VALUE), 0, "saved timer after it expired");
            }
            /* Without "save VMX-preemption-timer value" the field keeps what L1 wrote. */
            if (save) {
                vmw(VMCS_EXIT_CTLS, vmr(VMCS_EXIT_CTLS) & ~(uint64_t)EXIT_SAVE_PREEMPTION_TIMER);
                vmw(VMCS_PREEMPTION_TIMER_VALUE, 300);
                if (run_expect(false, EXIT_REASON_PREEMPTION_TIMER, "timer of 300 without saving")) {
                    test_check(in_spin_loop(ex.rip), "timer exit: GUEST_RIP 0x%llx not in the loop",
                               U64(ex.rip));
                    check_u64(vmr(VMCS_PREEMPTION_TIMER_VALUE), 300, "timer field without the save control");
                }
            }
        }
    }
    test_end();
}

/* ------------------------------------------------------------------------------------------
 * l2-protected-mode
 */
static uint32_t l2_pd32[1024] __attribute__((aligned(PAGE)));
#define CR4_PSE (1ull << 4)
#define CR4_PAE (1ull << 5)
#define VMX_AR_CODE32 0xc09bu

static void t_protected_mode(void)
{
    if (test_begin("l2-protected-mode") && l1_need_vmx()) {
        struct l2_setup s = { .rip = PA(l2_pm) };
        for (uint32_t i = 0; i < 1024; i++)
            l2_pd32[i] = (i << 22) | 0x83 | (i >= 768 ? 0x18 : 0);  /* P RW PS, PCD|PWT >= 3G */
        if (vmcs_build(&s)) {
            vmw(VMCS_ENTRY_CTLS, vmr(VMCS_ENTRY_CTLS) & ~ENTRY_IA32E_MODE_GUEST);
            vmw(VMCS_GUEST_CR4, (read_cr4() & ~CR4_PAE) | CR4_PSE);
            vmw(VMCS_CR4_READ_SHADOW, (read_cr4() & ~CR4_PAE) | CR4_PSE);
            vmw(VMCS_GUEST_CR3, PA(l2_pd32));
            vmw(VMCS_GUEST_CS_SELECTOR, SEL_CODE32);
            vmw(VMCS_GUEST_CS_AR, VMX_AR_CODE32);
            vmw(VMCS_GUEST_RSP, L2_STACK_TOP);
            if (run_expect_at(true, EXIT_REASON_CPUID, l2_pm_cpuid, "CPUID in 32-bit protected mode")) {
                check_u64(ex.len, 2, "CPUID exit: instruction length");
                check_u64(l2_regs.rax & 0xffffffff, 0, "CPUID exit: L2's EAX");
                l2_regs.rax = 0x32;
                advance_rip();
            }
            if (run_expect_at(false, EXIT_REASON_VMCALL, l2_pm_vmcall, "VMCALL in 32-bit protected mode")) {
                check_u64(ex.len, 3, "VMCALL exit: instruction length");
                check_u64(l2_regs.rsi & 0xffffffff, 0x32, "L2's ESI (emulated CPUID EAX)");
                check_u64(vmr(VMCS_GUEST_CS_SELECTOR), SEL_CODE32, "GUEST_CS selector");
                check_u64(l2_regs.rdi & 0xffffffff, 0,
                          "L2's EDI (0x48 decoded as DEC EAX, not REX.W: 32-bit code)");
            }
        }
    }
    test_end();
}

/* ------------------------------------------------------------------------------------------
 * l2-all-cpus: every CPU (BSP included, concurrently) runs its own L1 with its own VMXON region,
 * VMCS, GDT/TSS and L2 stack; L2 does CPUID(0) then VMCALL. The CPUs keep quiet and record what
 * happened; the BSP checks afterwards. vm_enter_bare saves nothing of L2 (no shared state).
 */
extern char l2_mp[], l2_mp_cpuid[], l2_mp_vmcall[];
asm(".text\n"
    "l2_mp:\n"
    "  xor %eax, %eax\n"
    "  xor %ecx, %ecx\n"
    "l2_mp_cpuid:\n"
    "  cpuid\n"
    "l2_mp_vmcall:\n"
    "  vmcall\n"
    "  ud2\n");

struct mp_cpu {
    uint8_t vmxon[PAGE], vmcs[PAGE], stack[PAGE];
    struct l1_tables tables;        /* an AP's own (the BSP keeps l1_bsp) */
    int stage;                      /* how far it got; MP_DONE when all went well */
    int vmx_err;                    /* outcome of the failing step */
    uint32_t reason[2];
    uint64_t rip[2], len0;
    struct vmcs_log log;            /* VMWRITE/VMREAD failures */
} __attribute__((aligned(PAGE)));
static struct mp_cpu mp_cpus[MAX_CPUS];
#define MP_DONE 100

static void mp_worker(void *arg)
{
    struct mp_cpu *m = arg;
    bool bsp = m == &mp_cpus[0];
    struct l1_tables *t = bsp ? &l1_bsp : &m->tables;
    uint64_t fl;
    asm volatile("pushfq; pop %0; cli" : "=r"(fl) :: "memory");
    m->stage = 1;
    if (!bsp) {
        l1_tables_load(t);
        m->stage = 2;
        if (!l1_enable_vmx())
            goto out;
        vmx_region_init(m->vmxon, revision);
        m->stage = 3;
        if ((m->vmx_err = vmx_outcome(vmxon(vmx_pa(m->vmxon)))) != VMX_SUCCEED)
            goto out;
    }
    m->stage = 4;
    vmx_region_init(m->vmcs, revision);
    if ((m->vmx_err = vmx_outcome(vmclear(vmx_pa(m->vmcs)))) != VMX_SUCCEED)
        goto out_off;
    m->stage = 5;
    if ((m->vmx_err = vmx_outcome(vmptrld(vmx_pa(m->vmcs)))) != VMX_SUCCEED)
        goto out_off;
    m->stage = 6;
    /* the same VMCS as vmcs_build() but for this CPU's tables, stack and exit stub */
    struct l2_setup s = { .rip = PA(l2_mp), .rsp = PA(m->stack + PAGE),
                          .host_rip = PA(vm_exit_bare) };
    vmcs_fill(&m->log, t, &s);
    m->stage = 7;
    for (int n = 0; n < 2; n++) {
        uint64_t f = vm_enter_bare(n == 0);
        lgdt(&t->gdtr);
        lidt(&t->idtr);
        if (f != VM_EXITED) {
            m->vmx_err = vmx_outcome(vmx_result(f));
            goto out_clear;
        }
        m->reason[n] = vmcs_read(&m->log, VMCS_EXIT_REASON);
        m->rip[n] = vmcs_read(&m->log, VMCS_GUEST_RIP);
        if (n == 0) {
            m->len0 = vmcs_read(&m->log, VMCS_EXIT_INSTRUCTION_LEN);
            vmcs_write(&m->log, VMCS_GUEST_RIP, m->rip[0] + m->len0);
        }
        m->stage = 8 + n;
    }
    m->stage = MP_DONE;
out_clear:
    vmclear(vmx_pa(m->vmcs));
out_off:
    if (!bsp)
        vmxoff();
out:
    asm volatile("push %0; popfq" : : "r"(fl) : "memory", "cc");
}

static void t_all_cpus(void)
{
    if (test_begin("l2-all-cpus") && l1_need_vmx()) {
        smp_init();
        int online = smp_start_all(0);
        info("l2-all-cpus: %d CPUs online", online);
        memset(mp_cpus, 0, sizeof(mp_cpus));
        for (int i = 1; i < ncpus; i++)
            if (cpus[i].online)
                smp_call_async(i, mp_worker, &mp_cpus[i]);
        mp_worker(&mp_cpus[0]);
        for (int i = 0; i < ncpus; i++) {
            if (i && !test_check(cpus[i].online, "CPU %d not online", i))
                continue;
            if (i && !test_check(smp_call_wait(i, 5000), "CPU %d did not finish", i))
                continue;
            struct mp_cpu *m = &mp_cpus[i];
            char buf[48];
            if (!test_check(m->stage == MP_DONE, "CPU %d stopped at stage %d (%s, %d VMWRITE "
                            "errors)", i, m->stage, vmx_outcome_name(m->vmx_err, buf, sizeof(buf)),
                            m->log.errors))
                continue;
            test_check(m->log.errors == 0, "CPU %d: %d VMWRITEs failed", i, m->log.errors);
            test_check(m->reason[0] == EXIT_REASON_CPUID && m->rip[0] == PA(l2_mp_cpuid) &&
                       m->len0 == 2, "CPU %d: first exit reason 0x%x RIP 0x%llx length %llu, "
                       "expected CPUID at 0x%llx", i, m->reason[0], U64(m->rip[0]), U64(m->len0),
                       U64(PA(l2_mp_cpuid)));
            test_check(m->reason[1] == EXIT_REASON_VMCALL && m->rip[1] == PA(l2_mp_vmcall),
                       "CPU %d: second exit reason 0x%x RIP 0x%llx, expected VMCALL at 0x%llx", i,
                       m->reason[1], U64(m->rip[1]), U64(PA(l2_mp_vmcall)));
        }
    }
    test_end();
}

/* outs_poweroff=l1|l2|l2-none (a test of the hypervisor under test, not compared with bare runs: the
 * machine powers off): the power-off goes to port 0x8900 with REP OUTSB from L1, or from L2 with L1's
 * I/O bitmaps not intercepting it, or with no I/O controls at all. XMHF watches that port in its own
 * bitmaps, so its shutdown hooks must run whichever level writes it, and the string form must work. */
static void outs_poweroff(const char *how)
{
    struct l2_setup s = { .rip = PA(l2_outs_poweroff) };

    info("power-off with REP OUTSB from %s", how);
    if (!strncmp(how, "l1", 3))
        asm volatile("jmp l2_outs_poweroff");
    if (!strncmp(how, "l2", 3))
        s.proc = PROC_USE_IO_BITMAPS;
    if (vmcs_build(&s)) {
        memset(io_bitmap_a, 0, PAGE);
        memset(io_bitmap_b, 0, PAGE);
        vmw(VMCS_IO_BITMAP_A, PA(io_bitmap_a));
        vmw(VMCS_IO_BITMAP_B, PA(io_bitmap_b));
        run_expect(true, EXIT_REASON_VMCALL, "L2's power-off");
    }
    test_check(false, "still running after the power-off");
}

void test_main(void)
{
    char arg[16];

    vmx_init();
    if (cmdline_get("outs_poweroff", 0, arg, sizeof(arg))) {
        if (test_begin("outs-poweroff") && l1_need_vmx())
            outs_poweroff(arg);
        test_end();
        l1_done();
        return;
    }
    t_msr_bitmap();
    t_l0_exception_to_l1();
    t_cr_masks();
    t_io_bitmaps();
    t_string_io();
    t_pf_mask_match();
    t_misc_exits();
    t_preemption_timer();
    t_protected_mode();
    t_all_cpus();
    l1_done();
}
