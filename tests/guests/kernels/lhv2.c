/* lhv2.bin - L1 test hypervisor, phase 2: VM entries and VM exits of a simple L2 guest.
 *
 * No EPT, no unrestricted guest: L2 runs in 64-bit mode on L1's page tables (same CR3, except in
 * l2-state-after-exit), its own stack, code inside this image, L1's GDT, its own IDT. The L1
 * scaffolding is the library's (l1.h): the VMCS is rebuilt from scratch (vmcs_build: VMCLEAR,
 * VMPTRLD, every field) for each run: controls from the TRUE capability MSRs (required bits only,
 * plus "host address-space size", "IA-32e mode guest" and what the check needs), host state = this
 * kernel's state with HOST_RIP at vm_exit_stub (saves L2's GPRs, returns into C from vm_enter()),
 * guest state = 64-bit flat segments, TR a busy 64-bit TSS, LDTR unusable, link pointer ~0,
 * activity active. Everything on the BSP.
 *
 * Checks (SDM Vol. 3 ch. 25, 27, 28, Appendix C):
 *  l2-cpuid-exit        CPUID(0) exits (10, length 2, GUEST_RIP = the CPUID, L2's 15 GPRs as L2
 *                       had them); L1 emulates it (EAX..EDX, RIP += length), VMRESUME; L2 sees the
 *                       emulated values; VMCALL exits (18, length 3).
 *  l2-hlt-exit          HLT exiting: HLT exits (12, length 1, RIP at the HLT, activity state
 *                       active); RIP += 1, VMRESUME, VMCALL exits.
 *  l2-exception-bitmap  bit 6 set: UD2 exits (0, interruption info valid, type 3, vector 6, no
 *                       error code, RIP at the UD2); bit 6 clear: UD2 goes through L2's IDT (the
 *                       handler does VMCALL with a marker; pushed RIP, CS, RFLAGS with RF, RSP).
 *  l2-rdmsr-exit        no MSR bitmaps: RDMSR exits (31, RCX = 0x174, length 2), L1 emulates it,
 *                       VMRESUME, VMCALL; all-zero MSR bitmap: RDMSR of IA32_SYSENTER_CS does not
 *                       exit and reads GUEST_SYSENTER_CS; L1 has HOST_SYSENTER_CS after the exit.
 *  l2-io-exit           unconditional I/O exiting: OUT %al,$0x80 exits (30, qualification 0x800040:
 *                       size 1, out, not string, not REP, immediate, port 0x80; length 2).
 *  l2-state-after-exit  L1 resumes at HOST_RIP (a probe stub) with RSP = HOST_RSP (128 below the
 *                       entry RSP), RFLAGS = 2, CR3 = HOST_CR3 (L2 ran on a copy of the PML4),
 *                       CS/SS/DS/TR selectors, GDTR/IDTR bases and limits 0xFFFF, SYSENTER_CS;
 *                       VMREAD of GUEST_RIP/RSP/RFLAGS/CR3 = L2's values; VMRESUME works after
 *                       VMLAUNCH; a second VMLAUNCH gives VMfailValid(4) and no exit.
 *  l2-entry-fail-controls  a must-be-1 pin-based control cleared: VMLAUNCH VMfailValid(7), no VM
 *                       exit, VMRESUME then VMfailValid(5); repaired, VMLAUNCH runs L2. Then a
 *                       CR3-target count above IA32_VMX_MISC[24:16] and a non-canonical host FS
 *                       base written between exit and VMRESUME: VMfailValid(7), the controls come
 *                       first; both repaired, VMRESUME runs L2.
 *  l2-entry-fail-host   HOST_CR4 without VMXE: VMfailValid(8), no VM exit, VMRESUME VMfailValid(5);
 *                       repaired, VMLAUNCH runs L2. Then one bad host field at a time, each
 *                       VMfailValid(8) and L2 running once repaired: non-canonical HOST_SYSENTER_ESP
 *                       and _EIP, HOST_TR_SELECTOR 0, HOST_CS_SELECTOR with RPL 3, and with the
 *                       load controls (when allowed) HOST_IA32_PAT with type 2, HOST_IA32_EFER with
 *                       LMA clear and with reserved bit 1. A "save preemption timer" exit control
 *                       without the timer: VMfailValid(7).
 *  l2-entry-fail-guest  GUEST_CS type 3 (data), then GUEST_RFLAGS bit 1 clear: VMLAUNCH ends in a
 *                       VM exit to HOST_RIP with reason 33 | 0x80000000, qualification 0; the VMCS
 *                       stays clear (VMRESUME VMfailValid(5)); repaired, VMLAUNCH runs L2.
 *  l2-vectoring-left-to-l1  injected #UD with GUEST_IDTR_LIMIT 0 and #GP intercepted: exit 0 (#GP,
 *                       error code 0x33), IDT-vectoring information = the #UD; VMRESUME without
 *                       re-injecting: L2 runs its VMCALL (nothing re-injects the #UD behind L1).
 *  l2-event-injection   VM-entry interruption info = hardware exception #UD: delivered through L2's
 *                       IDT at GUEST_RIP (handler VMCALL with marker; pushed RIP = GUEST_RIP,
 *                       RFLAGS = GUEST_RFLAGS without RF), no exit for it even with
 *                       exception-bitmap bit 6 set (SDM 27.6.1.2); the valid bit is clear after
 *                       the exit.
 *  l2-nmi-blocking-iret  NMI exiting without virtual NMIs: blocking by NMI at the entry, or an
 *                       injected NMI whose L2 handler returns with IRET, is still reported (bit 3)
 *                       at the VMCALL exit after L2's IRET (SDM 27.7.1: it lasts while in VMX
 *                       non-root operation); with virtual NMIs, or without NMI exiting, L2's IRET
 *                       lifts it (bit 3 clear). L1 IRETs after each run: Bochs 2.7 keeps NMI
 *                       blocking across exits and entries (docs/known-bugs.md).
 *
 * Bochs 2.7 (corei7_skylake_x) passes all of it bare with 1 and 2 CPUs (about 1.25 M ticks in the
 * kernel). No Bochs difference from the SDM met here; the checks stay clear of the known ones
 * ("load IA32_PERF_GLOBAL_CTRL", external-interrupt exits, the TSC stored on exit, HLT activity
 * state waits): L2 runs with IF = 0 and every program ends in VMCALL.
 */
#include "lib.h"
#include "vmx.h"
#include "l1.h"

static uint64_t l2_pml4[512] __attribute__((aligned(PAGE)));   /* copy of L1's PML4 */

/* ------------------------------------------------------------------------------------------
 * L2 code (64-bit, CPL 0, IF = 0). Each program ends in VMCALL; nothing after it runs.
 */
#define MARK_UD      0x0dd06ull     /* L2's #UD handler */
#define L2_RFLAGS    0x8d7ull       /* OF SF ZF AF PF CF, bit 1 */
#define L2_RSP_OFF   0x100          /* l2-state-after-exit: L2's RSP = stack top - this */

extern char l2_cpuid[], l2_cpuid_insn[], l2_cpuid_vmcall[];
extern char l2_hlt[], l2_hlt_insn[], l2_hlt_vmcall[];
extern char l2_ud[], l2_ud_insn[];
extern char l2_rdmsr[], l2_rdmsr_insn[], l2_rdmsr_vmcall[];
extern char l2_io[], l2_io_insn[], l2_io_vmcall[];
extern char l2_state[], l2_state_vmcall1[], l2_state_vmcall2[];
extern char l2_vmcall[];
extern char l2_inject_target[];
extern char l2_ud_handler[];

/* MSR lists: RDMSR IA32_SYSENTER_CS into RBX, WRMSR it with 0x8888, VMCALL. */
extern char l2_msr_lists[];
asm(".text\n"
    "l2_msr_lists:\n"
    "  mov $0x174, %ecx\n"
    "  rdmsr\n"
    "  mov %rax, %rbx\n"
    "  mov $0x8888, %eax\n"
    "  xor %edx, %edx\n"
    "  wrmsr\n"
    "  vmcall\n"
    "  ud2\n");

/* Benchmark programs (bench=N, N in R15), each ending in VMCALL: CPUID(0) N times; N EOI writes
 * (offset 0B0H of the page at RSI); N OUTs to port 80H; a read of N fresh pages from RSI on. */
extern char l2_cpuid_loop[], l2_eoi_loop[], l2_io_loop[], l2_touch_loop[];
asm(".text\n"
    "l2_cpuid_loop:\n"
    "1: xor %eax, %eax\n"
    "  cpuid\n"
    "  dec %r15\n"
    "  jnz 1b\n"
    "  vmcall\n"
    "l2_eoi_loop:\n"
    "1: movl $0, 0xb0(%rsi)\n"
    "  dec %r15\n"
    "  jnz 1b\n"
    "  vmcall\n"
    "l2_io_loop:\n"
    "1: out %al, $0x80\n"
    "  dec %r15\n"
    "  jnz 1b\n"
    "  vmcall\n"
    "l2_touch_loop:\n"
    "1: mov (%rsi), %rax\n"
    "  add $4096, %rsi\n"
    "  dec %r15\n"
    "  jnz 1b\n"
    "  vmcall\n");

asm(".text\n"
    "l2_cpuid:\n"
    "  mov $0x1234, %ebx\n"
    "  mov $0x5555, %edx\n"
    "  movabs $0x5151515151515151, %rsi\n"
    "  movabs $0xd1d1d1d1d1d1d1d1, %rdi\n"
    "  movabs $0xbbbbbbbb0000bbbb, %rbp\n"
    "  movabs $0x0808080808080808, %r8\n"
    "  movabs $0x0909090909090909, %r9\n"
    "  movabs $0x1010101010101010, %r10\n"
    "  movabs $0x1111111111111111, %r11\n"
    "  movabs $0x1212121212121212, %r12\n"
    "  movabs $0x1313131313131313, %r13\n"
    "  movabs $0x1414141414141414, %r14\n"
    "  movabs $0x1515151515151515, %r15\n"
    "  xor %eax, %eax\n"
    "  xor %ecx, %ecx\n"
    "l2_cpuid_insn:\n"
    "  cpuid\n"
    "  mov %rax, %r8\n  mov %rbx, %r9\n  mov %rcx, %r10\n  mov %rdx, %r11\n"
    "l2_cpuid_vmcall:\n"
    "  vmcall\n"
    "  ud2\n"

    "l2_hlt:\n"
    "l2_hlt_insn:\n"
    "  hlt\n"
    "l2_hlt_vmcall:\n"
    "  vmcall\n"
    "  ud2\n"

    "l2_ud:\n"
    "  mov $0x7777, %eax\n"
    "l2_ud_insn:\n"
    "  ud2\n"
    "  vmcall\n"

    "l2_rdmsr:\n"
    "  mov $0x174, %ecx\n"                  /* IA32_SYSENTER_CS */
    "  movabs $0xaaaaaaaaaaaaaaaa, %rax\n"
    "  movabs $0xdddddddddddddddd, %rdx\n"
    "l2_rdmsr_insn:\n"
    "  rdmsr\n"
    "l2_rdmsr_vmcall:\n"
    "  vmcall\n"
    "  ud2\n"

    "l2_io:\n"
    "  mov $0x5a, %eax\n"
    "l2_io_insn:\n"
    "  out %al, $0x80\n"
    "l2_io_vmcall:\n"
    "  vmcall\n"
    "  ud2\n"

    "l2_state:\n"
    "  lea l2_stack+8192-0x100(%rip), %rsp\n"   /* L2_STACK_SIZE - L2_RSP_OFF */
    "  pushq $0x8d7\n"                          /* L2_RFLAGS */
    "  popfq\n"
    "l2_state_vmcall1:\n"
    "  vmcall\n"
    "l2_state_vmcall2:\n"
    "  vmcall\n"
    "  ud2\n"

    "l2_vmcall:\n"
    "  vmcall\n"
    "  ud2\n"

    "l2_inject_target:\n"
    "  mov $0x4444, %eax\n"
    "  vmcall\n"
    "  ud2\n"

    /* L2's #UD handler (the others: l2_unexpected_handler): RBX = pushed RIP, RCX = pushed CS,
     * RDX = pushed RFLAGS. */
    "  .balign 16\n"
    "l2_ud_handler:\n"
    "  mov $0x0dd06, %eax\n"                    /* MARK_UD */
    "  mov (%rsp), %rbx\n  mov 8(%rsp), %rcx\n  mov 16(%rsp), %rdx\n"
    "  vmcall\n"
    "  ud2\n");

/* l2-nmi-blocking-iret: an IRET (to the VMCALL), and an NMI handler that returns with IRET. */
#define MARK_NMI 0x2222ull
extern char l2_nmi_iret[], l2_nmi_handler[];
asm(".text\n"
    "l2_nmi_iret:\n"
    "  call iret_to_self\n"
    "  vmcall\n"
    "  ud2\n"
    "l2_nmi_handler:\n"
    "  mov $0x2222, %ebx\n"                      /* MARK_NMI */
    "  iretq\n");

_Static_assert(L2_STACK_SIZE == 8192 && L2_RSP_OFF == 0x100, "l2_state's RSP");

/* ------------------------------------------------------------------------------------------
 * L1: the library's scaffolding (l1.h); L2 gets its own IDT
 */
static void vmx_init(void)
{
    l2_idt_init(l2_unexpected_handler);   /* any vector: VMCALL with L2_MARK_UNEXPECTED */
    l2_idt_set(EXC_UD, l2_ud_handler);
    l2_idt_set(EXC_NMI, l2_nmi_handler);
    if (l1_init())
        l1_vmxon();
}

/* ------------------------------------------------------------------------------------------
 * l2-cpuid-exit
 */
static void t_cpuid_exit(void)
{
    if (test_begin("l2-cpuid-exit") && l1_need_vmx()) {
        struct l2_setup s = { .rip = PA(l2_cpuid) };
        if (vmcs_build(&s) && run_expect(true, EXIT_REASON_CPUID, "CPUID")) {
            check_u64(ex.len, 2, "CPUID exit: instruction length");
            check_u64(ex.rip, PA(l2_cpuid_insn), "CPUID exit: GUEST_RIP");
            const struct gregs want = {
                .rax = 0, .rbx = 0x1234, .rcx = 0, .rdx = 0x5555,
                .rsi = 0x5151515151515151ull, .rdi = 0xd1d1d1d1d1d1d1d1ull,
                .rbp = 0xbbbbbbbb0000bbbbull, .r8 = 0x0808080808080808ull,
                .r9 = 0x0909090909090909ull, .r10 = 0x1010101010101010ull,
                .r11 = 0x1111111111111111ull, .r12 = 0x1212121212121212ull,
                .r13 = 0x1313131313131313ull, .r14 = 0x1414141414141414ull,
                .r15 = 0x1515151515151515ull,
            };
            static const char *const names[15] = { "RAX", "RBX", "RCX", "RDX", "RSI", "RDI", "RBP",
                                                   "R8", "R9", "R10", "R11", "R12", "R13", "R14",
                                                   "R15" };
            const uint64_t *g = &l2_regs.rax, *wv = &want.rax;
            for (int i = 0; i < 15; i++)
                test_check(g[i] == wv[i], "CPUID exit: L2's %s 0x%llx, expected 0x%llx", names[i],
                           U64(g[i]), U64(wv[i]));

            /* emulate CPUID(0) */
            struct cpuid_regs c = cpuid(0);
            l2_regs.rax = c.a;
            l2_regs.rbx = c.b;
            l2_regs.rcx = c.c;
            l2_regs.rdx = c.d;
            advance_rip();
            if (run_expect(false, EXIT_REASON_VMCALL, "VMCALL after the emulated CPUID")) {
                check_u64(ex.len, 3, "VMCALL exit: instruction length");
                check_u64(ex.rip, PA(l2_cpuid_vmcall), "VMCALL exit: GUEST_RIP");
                check_u64(l2_regs.r8, c.a, "L2's EAX after CPUID");
                check_u64(l2_regs.r9, c.b, "L2's EBX after CPUID");
                check_u64(l2_regs.r10, c.c, "L2's ECX after CPUID");
                check_u64(l2_regs.r11, c.d, "L2's EDX after CPUID");
                check_u64(l2_regs.r12, 0x1212121212121212ull, "L2's R12 after VMRESUME");
                check_u64(l2_regs.rsi, 0x5151515151515151ull, "L2's RSI after VMRESUME");
            }
        }
    }
    test_end();
}

/* ------------------------------------------------------------------------------------------
 * l2-hlt-exit
 */
static void t_hlt_exit(void)
{
    if (test_begin("l2-hlt-exit") && l1_need_vmx()) {
        struct l2_setup s = { .rip = PA(l2_hlt), .proc = PROC_HLT_EXITING };
        if (vmcs_build(&s) && run_expect(true, EXIT_REASON_HLT, "HLT")) {
            check_u64(ex.len, 1, "HLT exit: instruction length");
            check_u64(ex.rip, PA(l2_hlt_insn), "HLT exit: GUEST_RIP");
            check_u64(vmr(VMCS_GUEST_ACTIVITY_STATE), GUEST_ACTIVITY_ACTIVE,
                      "HLT exit: guest activity state");
            advance_rip();
            if (run_expect(false, EXIT_REASON_VMCALL, "VMCALL after the HLT"))
                check_u64(ex.rip, PA(l2_hlt_vmcall), "VMCALL exit: GUEST_RIP");
        }
    }
    test_end();
}

/* ------------------------------------------------------------------------------------------
 * l2-exception-bitmap
 */
static void t_exception_bitmap(void)
{
    if (test_begin("l2-exception-bitmap") && l1_need_vmx()) {
        struct l2_setup s = { .rip = PA(l2_ud), .exc_bitmap = 1u << EXC_UD };
        if (vmcs_build(&s) &&
            run_expect(true, EXIT_REASON_EXCEPTION_NMI, "UD2 with bitmap bit 6")) {
            check_u64(ex.intr_info, INTR_INFO(INTR_TYPE_HW_EXCEPTION, EXC_UD),
                      "UD2 exit: VM-exit interruption information");
            check_u64(ex.rip, PA(l2_ud_insn), "UD2 exit: GUEST_RIP");
            check_u64(ex.idt_vec & INTR_INFO_VALID, 0, "UD2 exit: IDT-vectoring information valid");
            check_u64(l2_regs.rax, 0x7777, "UD2 exit: L2's RAX");
        }
        s.exc_bitmap = 0;
        if (vmcs_build(&s) &&
            run_expect(true, EXIT_REASON_VMCALL, "UD2 without bitmap bit 6 (L2's #UD handler)")) {
            check_u64(l2_regs.rax, MARK_UD, "L2's handler marker (RAX)");
            check_u64(l2_regs.rbx, PA(l2_ud_insn), "RIP pushed by L2's #UD delivery");
            check_u64(l2_regs.rcx, SEL_CODE64, "CS pushed by L2's #UD delivery");
            /* a fault: RF set in the pushed image (SDM Vol. 3 18.3.1.1) */
            check_u64(l2_regs.rdx, 0x10002, "RFLAGS pushed by L2's #UD delivery");
            check_u64(ex.rsp, L2_STACK_TOP - 40, "L2's RSP in the handler");
        }
    }
    test_end();
}

/* ------------------------------------------------------------------------------------------
 * l2-rdmsr-exit
 */
static void t_rdmsr_exit(void)
{
    if (test_begin("l2-rdmsr-exit") && l1_need_vmx()) {
        uint64_t host_cs = rdmsr(MSR_IA32_SYSENTER_CS);
        struct l2_setup s = { .rip = PA(l2_rdmsr) };
        if (vmcs_build(&s) && run_expect(true, EXIT_REASON_RDMSR, "RDMSR without MSR bitmaps")) {
            check_u64(l2_regs.rcx, MSR_IA32_SYSENTER_CS, "RDMSR exit: L2's RCX");
            check_u64(ex.len, 2, "RDMSR exit: instruction length");
            check_u64(ex.rip, PA(l2_rdmsr_insn), "RDMSR exit: GUEST_RIP");
            check_u64(ex.qual, 0, "RDMSR exit: qualification");
            l2_regs.rax = 0x600d;
            l2_regs.rdx = 0;
            advance_rip();
            if (run_expect(false, EXIT_REASON_VMCALL, "VMCALL after the emulated RDMSR")) {
                check_u64(ex.rip, PA(l2_rdmsr_vmcall), "VMCALL exit: GUEST_RIP");
                check_u64(l2_regs.rax, 0x600d, "L2's RAX after the emulated RDMSR");
            }
        }
        s.proc = PROC_USE_MSR_BITMAPS;
        if (vmcs_build(&s) &&
            run_expect(true, EXIT_REASON_VMCALL,
                       "RDMSR IA32_SYSENTER_CS with an all-zero MSR bitmap")) {
            check_u64(ex.rip, PA(l2_rdmsr_vmcall), "VMCALL exit: GUEST_RIP");
            check_u64(l2_regs.rax, L2_SYSENTER_CS, "L2's RAX from RDMSR (GUEST_SYSENTER_CS)");
            check_u64(l2_regs.rdx, 0, "L2's RDX from RDMSR");
            check_u64(rdmsr(MSR_IA32_SYSENTER_CS), host_cs,
                      "L1's IA32_SYSENTER_CS after the exit (HOST_SYSENTER_CS)");
        }
    }
    test_end();
}

/* ------------------------------------------------------------------------------------------
 * l2-msr-lists: the VM-entry MSR-load list gives L2 IA32_SYSENTER_CS = 0x7777 (over the guest-state
 * field), the VM-exit MSR-store list records L2's 0x8888, the VM-exit MSR-load list sets L1's
 * IA32_TSC_AUX; an entry-load list with IA32_FS_BASE (forbidden, SDM 27.4) fails the entry with
 * reason 34 | 0x80000000 and the entry's 1-based index as qualification.
 */
struct msr_list_entry { uint32_t index, reserved; uint64_t data; };
static struct msr_list_entry msr_load[2] __attribute__((aligned(16)));
static struct msr_list_entry msr_store[1] __attribute__((aligned(16)));
static struct msr_list_entry msr_exit_load[1] __attribute__((aligned(16)));

static void t_msr_lists(void)
{
    if (test_begin("l2-msr-lists") && l1_need_vmx()) {
        struct l2_setup s = { .rip = PA(l2_msr_lists), .proc = PROC_USE_MSR_BITMAPS };
        uint64_t aux = 0;
        rdmsr_safe(MSR_TSC_AUX, &aux);
        msr_load[0] = (struct msr_list_entry){ MSR_IA32_SYSENTER_CS, 0, 0x7777 };
        msr_store[0] = (struct msr_list_entry){ MSR_IA32_SYSENTER_CS, 0, 0 };
        msr_exit_load[0] = (struct msr_list_entry){ MSR_TSC_AUX, 0, 0x42 };
        if (vmcs_build(&s)) {
            vmw(VMCS_ENTRY_MSR_LOAD_ADDR, PA(msr_load));
            vmw(VMCS_ENTRY_MSR_LOAD_COUNT, 1);
            vmw(VMCS_EXIT_MSR_STORE_ADDR, PA(msr_store));
            vmw(VMCS_EXIT_MSR_STORE_COUNT, 1);
            vmw(VMCS_EXIT_MSR_LOAD_ADDR, PA(msr_exit_load));
            vmw(VMCS_EXIT_MSR_LOAD_COUNT, 1);
            if (run_expect(true, EXIT_REASON_VMCALL, "L2 with MSR lists")) {
                check_u64(l2_regs.rbx, 0x7777, "L2's IA32_SYSENTER_CS from the entry MSR-load list");
                check_u64(msr_store[0].data, 0x8888, "exit MSR-store list: L2's IA32_SYSENTER_CS");
                uint64_t now = 0;
                rdmsr_safe(MSR_TSC_AUX, &now);
                check_u64(now, 0x42, "L1's IA32_TSC_AUX from the exit MSR-load list");
            }
        }
        wrmsr_safe(MSR_TSC_AUX, aux);
        msr_load[1] = (struct msr_list_entry){ MSR_FS_BASE, 0, 0 };
        if (vmcs_build(&s)) {
            vmw(VMCS_ENTRY_MSR_LOAD_ADDR, PA(msr_load));
            vmw(VMCS_ENTRY_MSR_LOAD_COUNT, 2);
            if (run_expect(true, 0x80000000u | 34, "entry MSR-load list with IA32_FS_BASE"))
                check_u64(ex.qual, 2, "MSR-loading failure: qualification (1-based entry index)");
        }
    }
    test_end();
}

/* ------------------------------------------------------------------------------------------
 * attack_vmcs12=1 (a security test of the hypervisor under test, not compared with bare runs): L1
 * writes its current VMCS region in memory behind VMWRITE's back, in XMHF's layout (revision, abort,
 * launch state, then one 8-byte slot per row of vmcs-fields.def from offset 64): an MSR-load count
 * of 0xffff over a list whose entry 521 is an MSR L0 refuses (once read from memory after the
 * entry checks, that copied 521 entries into L0's 512-entry buffer and failed the entry with
 * qualification 521), then a non-canonical HOST_RIP (loaded unchecked into L1's state at the exit,
 * that failed L0's own VM entry). The SDM leaves such writes undefined; XMHF keeps the current
 * VMCS in its own memory, so both go unseen: L2 runs with the checked list, L1 resumes at its real
 * HOST_RIP, and VMCLEAR writes the VMCS back over L1's scribbles.
 */
enum {
#define VMCS_FIELD(name, enc, cls, nested, exists) XMHF_SLOT_##name,
#include "../../../xmhf/arch/x86/vmcs-fields.def"
#undef VMCS_FIELD
};
#define XMHF_SLOT(name) ((volatile uint64_t *)(l1_vmcs_pages[0] + 64) + XMHF_SLOT_##name)
static struct msr_list_entry attack_list[600] __attribute__((aligned(16)));

static void t_attack_vmcs12(void)
{
    if (test_begin("attack-vmcs12-in-memory") && l1_need_vmx()) {
        struct l2_setup s = { .rip = PA(l2_msr_lists), .proc = PROC_USE_MSR_BITMAPS };
        msr_load[0] = (struct msr_list_entry){ MSR_IA32_SYSENTER_CS, 0, 0x7777 };
        for (int i = 0; i < 600; i++)
            attack_list[i] = (struct msr_list_entry){ MSR_IA32_SYSENTER_CS, 0, 0x9999 };
        attack_list[520] = (struct msr_list_entry){ 0x480 /* IA32_VMX_BASIC: L0's */, 0, 0 };
        if (vmcs_build(&s)) {
            vmw(VMCS_ENTRY_MSR_LOAD_ADDR, PA(msr_load));
            vmw(VMCS_ENTRY_MSR_LOAD_COUNT, 1);
            if (run_expect(true, EXIT_REASON_VMCALL, "L2 with a one-entry MSR-load list")) {
                check_u64(l2_regs.rbx, 0x7777, "L2's IA32_SYSENTER_CS from the list");
                *XMHF_SLOT(ENTRY_MSR_LOAD_ADDR) = PA(attack_list);
                *XMHF_SLOT(ENTRY_MSR_LOAD_COUNT) = 0xffff;
                vmw(VMCS_GUEST_RIP, PA(l2_msr_lists)); /* a resume that changes only a guest field */
                if (run_expect(false, EXIT_REASON_VMCALL, "VMRESUME after L1 wrote the MSR-load count in memory")) {
                    check_u64(l2_regs.rbx, 0x7777, "L2's IA32_SYSENTER_CS from the checked list");
                    *XMHF_SLOT(HOST_RIP) = 0x8000000000000000ull;
                    vmw(VMCS_GUEST_RIP, PA(l2_msr_lists));
                    if (run_expect(false, EXIT_REASON_VMCALL, "VMRESUME after L1 wrote HOST_RIP in memory"))
                        check_u64(ex.len, 3, "the VMCALL exit after L1 resumed at its real HOST_RIP");
                }
            }
            test_check(vmclear(PA(l1_vmcs_pages[0])) == VMX_SUCCEED, "VMCLEAR");
            check_u64(*XMHF_SLOT(ENTRY_MSR_LOAD_COUNT), 1, "the MSR-load count in memory after VMCLEAR");
            check_u64(*XMHF_SLOT(ENTRY_MSR_LOAD_ADDR), PA(msr_load), "the MSR-load address in memory after VMCLEAR");
            vmcs_load(0);
        }
    }
    test_end();
}

/* vmx_abort=1|store (a test of the hypervisor under test, not compared with bare runs: Bochs resets
 * the machine): L1's VM-exit MSR-load list (or with "store", its VM-exit MSR-store list) names an MSR
 * that does not exist, so L2's first exit is a VMX abort (SDM 28.7; indicator 4 for the load list, 1
 * for the store list): L1's vCPU shuts down for good, and the hypervisor must go on running. */
static void t_vmx_abort(bool store)
{
    if (test_begin("vmx-abort") && l1_need_vmx()) {
        struct l2_setup s = { .rip = PA(l2_msr_lists), .proc = PROC_USE_MSR_BITMAPS };
        msr_exit_load[0] = (struct msr_list_entry){ 0x12345678, 0, 0 };
        if (vmcs_build(&s)) {
            vmw(store ? VMCS_EXIT_MSR_STORE_ADDR : VMCS_EXIT_MSR_LOAD_ADDR, PA(msr_exit_load));
            vmw(store ? VMCS_EXIT_MSR_STORE_COUNT : VMCS_EXIT_MSR_LOAD_COUNT, 1);
            info("VMX abort now");
            l2_enter(true);
            test_check(false, "L1 ran on after a VMX abort (exit reason 0x%x)", (unsigned)ex.reason);
        }
    }
    test_end();
}

/* ------------------------------------------------------------------------------------------
 * l2-io-exit
 */
static void t_io_exit(void)
{
    if (test_begin("l2-io-exit") && l1_need_vmx()) {
        struct l2_setup s = { .rip = PA(l2_io), .proc = PROC_UNCOND_IO_EXITING };
        if (vmcs_build(&s) && run_expect(true, EXIT_REASON_IO, "OUT to port 0x80")) {
            check_u64(ex.qual, (0x80u << 16) | IO_QUAL_IMMEDIATE,
                      "I/O exit qualification (size 1, out, immediate, port 0x80)");
            check_u64(ex.len, 2, "I/O exit: instruction length");
            check_u64(ex.rip, PA(l2_io_insn), "I/O exit: GUEST_RIP");
            check_u64(l2_regs.rax, 0x5a, "I/O exit: L2's RAX");
            advance_rip();
            if (run_expect(false, EXIT_REASON_VMCALL, "VMCALL after the emulated OUT"))
                check_u64(ex.rip, PA(l2_io_vmcall), "VMCALL exit: GUEST_RIP");
        }
    }
    test_end();
}

/* ------------------------------------------------------------------------------------------
 * l2-state-after-exit
 */
static void t_state_after_exit(void)
{
    if (test_begin("l2-state-after-exit") && l1_need_vmx()) {
        struct l2_setup s = { .rip = PA(l2_state) };
        if (vmcs_build(&s)) {
            uint64_t host_cr3 = read_cr3();
            memcpy(l2_pml4, phys(host_cr3 & ~0xfffull), PAGE);
            vmw(VMCS_GUEST_CR3, PA(l2_pml4));
            vmw(VMCS_HOST_RIP, PA(vm_exit_probe));
            uint64_t host_cs = rdmsr(MSR_IA32_SYSENTER_CS);
            vm_host_rsp_bias = 128;
            vm_probe_hits = 0;
            if (run_expect(true, EXIT_REASON_VMCALL, "first VMCALL")) {
                check_u64(vm_probe_hits, 1, "exits through HOST_RIP (the probe stub)");
                check_u64(vm_probe_rsp, vm_entry_rsp - 128, "RSP at HOST_RIP (HOST_RSP)");
                check_u64(vm_probe_rflags, 0x2, "RFLAGS after the VM exit");
                check_u64(exit_cr3, host_cr3, "CR3 after the VM exit (HOST_CR3)");
                check_u64(vmr(VMCS_GUEST_CR3), PA(l2_pml4), "VMREAD GUEST_CR3");
                check_u64(vmr(VMCS_HOST_RSP), vm_entry_rsp - 128, "VMREAD HOST_RSP");
                check_u64(exit_gdtr.limit, 0xffff, "GDTR limit after the VM exit");
                check_u64(exit_idtr.limit, 0xffff, "IDTR limit after the VM exit");
                check_u64(exit_gdtr.base, l1_bsp.gdtr.base, "GDTR base after the VM exit");
                check_u64(exit_idtr.base, l1_bsp.idtr.base, "IDTR base after the VM exit");
                check_u64(read_sel(SREG_CS), SEL_CODE64, "CS after the VM exit");
                check_u64(read_sel(SREG_SS), SEL_DATA, "SS after the VM exit");
                check_u64(read_sel(SREG_DS), SEL_DATA, "DS after the VM exit");
                check_u64(read_sel(SREG_TR), SEL_TSS, "TR after the VM exit");
                check_u64(rdmsr(MSR_IA32_SYSENTER_CS), host_cs,
                          "IA32_SYSENTER_CS after the VM exit");
                check_u64(ex.rip, PA(l2_state_vmcall1), "VMREAD GUEST_RIP");
                check_u64(ex.rsp, L2_STACK_TOP - L2_RSP_OFF, "VMREAD GUEST_RSP");
                check_u64(ex.rflags, L2_RFLAGS, "VMREAD GUEST_RFLAGS");
                check_u64(ex.len, 3, "VMCALL exit: instruction length");

                advance_rip();
                vm_probe_hits = 0;
                if (run_expect(false, EXIT_REASON_VMCALL, "VMRESUME after VMLAUNCH")) {
                    check_u64(vm_probe_hits, 1, "second exit through HOST_RIP");
                    check_u64(ex.rip, PA(l2_state_vmcall2), "VMREAD GUEST_RIP after VMRESUME");
                    check_u64(ex.rsp, L2_STACK_TOP - L2_RSP_OFF, "VMREAD GUEST_RSP after VMRESUME");
                    check_u64(ex.rflags, L2_RFLAGS, "VMREAD GUEST_RFLAGS after VMRESUME");
                    vm_probe_hits = 0;
                    enter_expect_fail(true, VMX_FAIL_VALID_ERR(VMXERR_VMLAUNCH_NONCLEAR),
                                      "second VMLAUNCH");
                    check_u64(vm_probe_hits, 0, "exits through HOST_RIP after the second VMLAUNCH");
                }
            }
            vm_host_rsp_bias = 0;
        }
    }
    test_end();
}

/* ------------------------------------------------------------------------------------------
 * l2-entry-fail-controls, l2-entry-fail-host, l2-entry-fail-guest
 */
static void t_entry_fail_controls(void)
{
    if (test_begin("l2-entry-fail-controls") && l1_need_vmx()) {
        struct l2_setup s = { .rip = PA(l2_vmcall) };
        uint32_t must1 = (uint32_t)cap_pin;
        if (vmcs_build(&s) && test_check(must1 != 0, "no must-be-1 pin-based control (0x%016llx)",
                                         U64(cap_pin))) {
            uint32_t pin = must1 & ~(must1 & -must1);   /* lowest required bit cleared */
            vmw(VMCS_PIN_BASED_CTLS, pin);
            enter_expect_fail(true, VMX_FAIL_VALID_ERR(VMXERR_ENTRY_INVALID_CONTROLS),
                              "VMLAUNCH with a required pin-based control clear");
            enter_expect_fail(false, VMX_FAIL_VALID_ERR(VMXERR_VMRESUME_NONLAUNCHED),
                              "VMRESUME after the failed VMLAUNCH");
            vmw(VMCS_PIN_BASED_CTLS, must1);
            if (run_expect(true, EXIT_REASON_VMCALL, "VMLAUNCH with the controls repaired")) {
                check_u64(ex.rip, PA(l2_vmcall), "VMCALL exit: GUEST_RIP");
                /* changed between VMRESUMEs: a CR3-target count above IA32_VMX_MISC[24:16] and a
                 * non-canonical HOST_FS_BASE: the controls are checked first (SDM 27.2) */
                uint64_t n = (rdmsr(MSR_IA32_VMX_MISC) >> 16) & 0x1ff, fs = vmr(VMCS_HOST_FS_BASE);
                vmw(VMCS_CR3_TARGET_COUNT, n + 1);
                vmw(VMCS_HOST_FS_BASE, 0x0000800000000000ull);
                enter_expect_fail(false, VMX_FAIL_VALID_ERR(VMXERR_ENTRY_INVALID_CONTROLS),
                                  "VMRESUME with a CR3-target count above the supported one and a bad host FS base");
                vmw(VMCS_CR3_TARGET_COUNT, 0);
                vmw(VMCS_HOST_FS_BASE, fs);
                run_expect(false, EXIT_REASON_VMCALL, "VMRESUME with both repaired");
            }
        }
    }
    test_end();
}

/* One bad host-state field (with extra exit controls): VMfailValid(8); a good value (0: the one
 * vmcs_build wrote) back, L2 runs. */
static void host_fail_case(uint32_t field, uint64_t bad, uint64_t good, uint32_t exit, const char *what)
{
    struct l2_setup s = { .rip = PA(l2_vmcall), .exit = exit };
    char buf[96];

    if (!vmcs_build(&s))
        return;
    if (!good)
        good = vmr(field);
    vmw(field, bad);
    snprintf(buf, sizeof(buf), "VMLAUNCH with %s", what);
    enter_expect_fail(true, VMX_FAIL_VALID_ERR(VMXERR_ENTRY_INVALID_HOST_STATE), buf);
    vmw(field, good);
    snprintf(buf, sizeof(buf), "VMLAUNCH with %s repaired", what);
    if (run_expect(true, EXIT_REASON_VMCALL, buf))
        check_u64(ex.rip, PA(l2_vmcall), "VMCALL exit: GUEST_RIP");
}

static void t_entry_fail_host(void)
{
    if (test_begin("l2-entry-fail-host") && l1_need_vmx()) {
        struct l2_setup s = { .rip = PA(l2_vmcall) };
        if (vmcs_build(&s)) {
            vmw(VMCS_HOST_CR4, read_cr4() & ~CR4_VMXE);
            enter_expect_fail(true, VMX_FAIL_VALID_ERR(VMXERR_ENTRY_INVALID_HOST_STATE),
                              "VMLAUNCH with HOST_CR4.VMXE clear");
            enter_expect_fail(false, VMX_FAIL_VALID_ERR(VMXERR_VMRESUME_NONLAUNCHED),
                              "VMRESUME after the failed VMLAUNCH");
            check_u64(read_cr4() & CR4_VMXE, CR4_VMXE, "L1's CR4.VMXE");
            vmw(VMCS_HOST_CR4, read_cr4());
            if (run_expect(true, EXIT_REASON_VMCALL, "VMLAUNCH with the host state repaired"))
                check_u64(ex.rip, PA(l2_vmcall), "VMCALL exit: GUEST_RIP");
        }
        host_fail_case(VMCS_HOST_SYSENTER_ESP, 0x0000800000000000ull, 0, 0, "non-canonical HOST_SYSENTER_ESP");
        host_fail_case(VMCS_HOST_SYSENTER_EIP, 0xffff000000001000ull, 0, 0, "non-canonical HOST_SYSENTER_EIP");
        host_fail_case(VMCS_HOST_TR_SELECTOR, 0, 0, 0, "HOST_TR_SELECTOR 0");
        host_fail_case(VMCS_HOST_CS_SELECTOR, SEL_CODE64 | 3, 0, 0, "HOST_CS_SELECTOR with RPL 3");
        if (vmx_ctl_allowed(cap_exit, EXIT_LOAD_PAT))
            host_fail_case(VMCS_HOST_IA32_PAT, 0x0007040600070402ull, rdmsr(0x277), EXIT_LOAD_PAT, "HOST_IA32_PAT with type 2");
        if (vmx_ctl_allowed(cap_exit, EXIT_LOAD_EFER)) {
            uint64_t efer = rdmsr(MSR_EFER);
            host_fail_case(VMCS_HOST_IA32_EFER, efer & ~EFER_LMA, efer, EXIT_LOAD_EFER, "HOST_IA32_EFER without LMA");
            host_fail_case(VMCS_HOST_IA32_EFER, efer | 2, efer, EXIT_LOAD_EFER, "HOST_IA32_EFER with reserved bit 1");
        }
        if (vmx_ctl_allowed(cap_exit, EXIT_SAVE_PREEMPTION_TIMER)) {
            struct l2_setup s2 = { .rip = PA(l2_vmcall), .exit = EXIT_SAVE_PREEMPTION_TIMER, .unchecked = true };
            if (vmcs_build(&s2))
                enter_expect_fail(true, VMX_FAIL_VALID_ERR(VMXERR_ENTRY_INVALID_CONTROLS),
                                  "VMLAUNCH saving a preemption timer that is not active");
        }
    }
    test_end();
}

static void guest_fail_case(uint32_t field, uint64_t bad, uint64_t good, const char *what)
{
    struct l2_setup s = { .rip = PA(l2_vmcall) };
    char buf[96];
    if (!vmcs_build(&s))
        return;
    vmw(field, bad);
    snprintf(buf, sizeof(buf), "VMLAUNCH with %s", what);
    if (run_expect(true, VMX_EXIT_REASON_ENTRY_FAIL | EXIT_REASON_INVALID_GUEST_STATE, buf)) {
        test_check(ex.qual == 0, "%s: exit qualification 0x%llx, expected 0", buf, U64(ex.qual));
        snprintf(buf, sizeof(buf), "VMRESUME after the failed VMLAUNCH with %s", what);
        enter_expect_fail(false, VMX_FAIL_VALID_ERR(VMXERR_VMRESUME_NONLAUNCHED), buf);
    }
    vmw(field, good);
    snprintf(buf, sizeof(buf), "VMLAUNCH with %s repaired", what);
    if (run_expect(true, EXIT_REASON_VMCALL, buf))
        check_u64(ex.rip, PA(l2_vmcall), "VMCALL exit: GUEST_RIP");
}

static void t_entry_fail_guest(void)
{
    if (test_begin("l2-entry-fail-guest") && l1_need_vmx()) {
        guest_fail_case(VMCS_GUEST_CS_AR, (VMX_AR_CODE64 & ~0xfu) | 3, VMX_AR_CODE64,
                        "GUEST_CS type 3 (data)");
        guest_fail_case(VMCS_GUEST_RFLAGS, 0, 0x2, "GUEST_RFLAGS bit 1 clear");
    }
    test_end();
}

/* ------------------------------------------------------------------------------------------
 * l2-event-injection
 */
static void inject_case(uint32_t bitmap, const char *what)
{
    struct l2_setup s = { .rip = PA(l2_inject_target), .exc_bitmap = bitmap };
    char buf[96];
    if (!vmcs_build(&s))
        return;
    vmw(VMCS_ENTRY_INTR_INFO, INTR_INFO(INTR_TYPE_HW_EXCEPTION, EXC_UD));
    snprintf(buf, sizeof(buf), "injected #UD, %s", what);
    if (run_expect(true, EXIT_REASON_VMCALL, buf)) {
        test_check(l2_regs.rax == MARK_UD, "%s: L2's RAX 0x%llx, expected the #UD handler's marker "
                   "0x%llx", buf, U64(l2_regs.rax), U64(MARK_UD));
        test_check(l2_regs.rbx == PA(l2_inject_target), "%s: pushed RIP 0x%llx, expected GUEST_RIP "
                   "0x%llx", buf, U64(l2_regs.rbx), U64(PA(l2_inject_target)));
        test_check(l2_regs.rcx == SEL_CODE64, "%s: pushed CS 0x%llx", buf, U64(l2_regs.rcx));
        /* injection pushes GUEST_RFLAGS as is: no RF for an injected fault (the VMM sets it) */
        test_check(l2_regs.rdx == 0x2, "%s: pushed RFLAGS 0x%llx, expected GUEST_RFLAGS 0x2", buf,
                   U64(l2_regs.rdx));
        test_check(ex.rsp == L2_STACK_TOP - 40,
                   "%s: L2's RSP in the handler 0x%llx, expected 0x%llx", buf, U64(ex.rsp),
                   U64(L2_STACK_TOP - 40));
        test_check(!(ex.entry_intr & INTR_INFO_VALID), "%s: VM-entry interruption information "
                   "0x%x still valid after the exit", buf, ex.entry_intr);
        test_check(!(ex.idt_vec & INTR_INFO_VALID), "%s: IDT-vectoring information 0x%x valid", buf,
                   ex.idt_vec);
    }
}

static void t_event_injection(void)
{
    if (test_begin("l2-event-injection") && l1_need_vmx()) {
        inject_case(0, "exception bitmap 0");
        inject_case(1u << EXC_UD, "exception bitmap bit 6 set");
    }
    test_end();
}

/* An injected #UD whose delivery faults (IDT limit 0: #GP, intercepted) exits with the #UD in the
 * IDT-vectoring information; re-injecting it is L1's choice. L1 does not: L2 resumes at the VMCALL. */
static void t_vectoring_left_to_l1(void)
{
    if (test_begin("l2-vectoring-left-to-l1") && l1_need_vmx()) {
        struct l2_setup s = { .rip = PA(l2_vmcall), .exc_bitmap = 1u << EXC_GP };
        if (vmcs_build(&s)) {
            vmw(VMCS_GUEST_IDTR_LIMIT, 0);
            vmw(VMCS_ENTRY_INTR_INFO, INTR_INFO(INTR_TYPE_HW_EXCEPTION, EXC_UD));
            if (run_expect(true, EXIT_REASON_EXCEPTION_NMI, "injected #UD with IDT limit 0")) {
                check_u64(ex.intr_info, INTR_INFO(INTR_TYPE_HW_EXCEPTION, EXC_GP) | INTR_INFO_ERROR_CODE,
                          "exit interruption information (#GP with an error code)");
                /* IDT entry 6 (bit 1) and EXT (bit 0): the fault came while delivering an injected event */
                check_u64(ex.intr_err, EXC_UD * 8 + 3, "#GP error code (IDT entry 6, EXT)");
                check_u64(ex.idt_vec, INTR_INFO(INTR_TYPE_HW_EXCEPTION, EXC_UD),
                          "IDT-vectoring information (the injected #UD)");
                check_u64(ex.rip, PA(l2_vmcall), "GUEST_RIP (nothing delivered)");
                if (run_expect(false, EXIT_REASON_VMCALL, "VMRESUME without re-injecting the #UD"))
                    check_u64(ex.rip, PA(l2_vmcall), "VMCALL exit: GUEST_RIP");
            }
        }
    }
    test_end();
}

/* One L2 run for l2-nmi-blocking-iret: pin-based controls `pin`, blocking by NMI at the entry or an
 * injected NMI, an IRET in L2, then VMCALL; blocking by NMI at the exit must be `want`. */
static void nmi_iret_case(uint32_t pin, bool inject, bool want, const char *what)
{
    struct l2_setup s = { .rip = inject ? PA(l2_inject_target) : PA(l2_nmi_iret), .pin = pin };
    if (!vmcs_build(&s))
        return;
    if (inject)
        vmw(VMCS_ENTRY_INTR_INFO, INTR_INFO(INTR_TYPE_NMI, EXC_NMI));
    else
        vmw(VMCS_GUEST_INTERRUPTIBILITY, INTERRUPTIBILITY_NMI);
    if (run_expect(true, EXIT_REASON_VMCALL, what)) {
        uint64_t is = vmr(VMCS_GUEST_INTERRUPTIBILITY);
        test_check(!!(is & INTERRUPTIBILITY_NMI) == want, "%s: interruptibility 0x%llx after L2's IRET, expected "
                   "blocking by NMI %s", what, U64(is), want ? "kept" : "lifted");
        if (inject)
            test_check(l2_regs.rbx == MARK_NMI && l2_regs.rax == 0x4444, "%s: L2's NMI handler did not run "
                       "and return (RBX 0x%llx, RAX 0x%llx)", what, U64(l2_regs.rbx), U64(l2_regs.rax));
    }
    iret_to_self();     /* L1's own blocking left by the exit (Bochs 2.7 keeps it: docs/known-bugs.md) */
}

/* With "NMI exiting" and without "virtual NMIs", blocking by NMI lasts as long as L2 runs: IRET does
 * not lift it (SDM 27.7.1, 26.6.1 in older editions); with virtual NMIs IRET lifts virtual-NMI
 * blocking, without NMI exiting it lifts blocking by NMI. */
static void t_nmi_blocking_iret(void)
{
    if (test_begin("l2-nmi-blocking-iret") && l1_need_vmx()) {
        nmi_iret_case(PIN_NMI_EXITING, false, true, "NMI exiting, blocking by NMI, IRET");
        nmi_iret_case(PIN_NMI_EXITING, true, true, "NMI exiting, injected NMI, its handler's IRET");
        if (vmx_ctl_allowed(cap_pin, PIN_NMI_EXITING | PIN_VIRTUAL_NMIS))
            nmi_iret_case(PIN_NMI_EXITING | PIN_VIRTUAL_NMIS, false, false, "virtual NMIs, blocking, IRET");
        nmi_iret_case(0, false, false, "no NMI exiting, blocking by NMI, IRET");
    }
    test_end();
}

/* bench=N [bench_mode=M]: the cost of one L2 event that L1 (or L0 alone) handles, N times in a row.
 * INFO lines only; the runner's nested bench reads them (bare against under XMHF):
 *  cpuid        L2 CPUID exits; L1 reads the exit information, executes CPUID itself, moves RIP,
 *               VMRESUMEs (L1's CPUID is an exit of its own under any L0: SDM 26.1.2);
 *  cpuid-table  the same with L1 answering from values it read once, as KVM answers from its CPUID
 *               table: the round trip is the L2 exit and L1's VMRESUME;
 *  eoi          L2's xAPIC EOI write (MOV to offset 0B0H of its APIC page) as KVM without APICv (no
 *               posted interrupts, as on Bochs 2.7) handles it: "virtualize APIC accesses" with a TPR
 *               shadow on an ordinary page, no APIC-register virtualization; each EOI is an APIC-access
 *               exit (44, linear write at 0B0H) that L1 completes and skips;
 *  io           L2's OUT to port 80H, which L1's I/O bitmap intercepts (30); L1 skips it;
 *  ept02        L2 reads N fresh pages that EPT12 maps with 4 KiB leaves: bare, no exit at all (the
 *               CPU walks EPT12); under XMHF each is an EPT02 miss L0 fills without L1. */
#define BENCH_PAGES 1024
#define EPTE_RWX    7ull
#define EPTE_WB     (6ull << 3)
#define EPTE_PS     (1ull << 7)
#define EPTP_MT_WB  6ull
#define EPTP_WALK4  (3ull << 3)
static uint8_t bench_pages[BENCH_PAGES][PAGE] __attribute__((aligned(PAGE)));
static uint8_t bench_apic[PAGE] __attribute__((aligned(PAGE)));   /* APIC-access page */
static uint8_t bench_vapic[PAGE] __attribute__((aligned(PAGE)));  /* virtual-APIC page */
static uint8_t bench_io[2][PAGE] __attribute__((aligned(PAGE)));  /* I/O bitmaps A and B */
static uint64_t bench_ept[6][512] __attribute__((aligned(PAGE))); /* PML4, PDPT, PD, 2 PTs, spare */

/* EPT12 for the ept02 mode: identity map of 0-1 GiB with 2 MiB leaves, except bench_pages' 4 MiB,
 * mapped with 4 KiB leaves (each page a separate EPT02 miss). Returns the EPTP, 0 if not possible. */
static uint64_t bench_ept12(void)
{
    uint64_t cap = 0, first = PA(bench_pages), *pml4 = bench_ept[0], *pdpt = bench_ept[1], *pd = bench_ept[2];

    if (!proc2_allowed(PROC2_ENABLE_EPT) || rdmsr_safe(MSR_IA32_VMX_EPT_VPID_CAP, &cap) != NO_EXCEPTION ||
        !(cap & EPT_CAP_2M_PAGE) || !(cap & EPT_CAP_MEMTYPE_WB) || !(cap & EPT_CAP_WALK_4) ||
        first + sizeof(bench_pages) > 0x40000000ull)
        return 0;
    memset(bench_ept, 0, sizeof(bench_ept));
    pml4[0] = PA(pdpt) | EPTE_RWX;
    pdpt[0] = PA(pd) | EPTE_RWX;
    for (uint64_t i = 0; i < 512; i++)
        pd[i] = (i << 21) | EPTE_RWX | EPTE_WB | EPTE_PS;
    uint64_t end = (first + sizeof(bench_pages) + 0x1fffff) & ~0x1fffffull;
    for (uint64_t a = first & ~0x1fffffull; a < end; a += PAGE) {
        uint64_t pdi = a >> 21, *pt = bench_ept[3 + (pdi - (first >> 21))];
        pd[pdi] = PA(pt) | EPTE_RWX;
        pt[(a >> 12) & 511] = a | EPTE_RWX | EPTE_WB;
    }
    return PA(pml4) | EPTP_MT_WB | EPTP_WALK4;
}

static void bench(uint64_t n, const char *mode)
{
    struct l2_setup s = { .rip = PA(l2_cpuid_loop) };
    uint32_t want = EXIT_REASON_CPUID;
    bool table = !strncmp(mode, "cpuid-table", 12);
    struct cpuid_regs leaf0 = cpuid(0);
    uint64_t trips = 0, t0, t1, rsi = 0;

    if (!strncmp(mode, "eoi", 4)) {
        if (!vmx_ctl_allowed(cap_proc, PROC_TPR_SHADOW) || !proc2_allowed(PROC2_VIRT_APIC_ACCESSES))
            return;
        s = (struct l2_setup){ .rip = PA(l2_eoi_loop), .proc = PROC_TPR_SHADOW, .proc2 = PROC2_VIRT_APIC_ACCESSES };
        want = EXIT_REASON_APIC_ACCESS;
        rsi = PA(bench_apic);
    } else if (!strncmp(mode, "io", 3)) {
        s = (struct l2_setup){ .rip = PA(l2_io_loop), .proc = PROC_USE_IO_BITMAPS };
        want = EXIT_REASON_IO;
    } else if (!strncmp(mode, "ept02", 6)) {
        uint64_t eptp = bench_ept12();
        if (!eptp)
            return;
        s = (struct l2_setup){ .rip = PA(l2_touch_loop), .proc2 = PROC2_ENABLE_EPT, .eptp = eptp };
        want = EXIT_REASON_VMCALL; /* no exit reaches L1 before the end */
        rsi = PA(bench_pages);
    } else if (strncmp(mode, "cpuid", 6) && !table) {
        info("bench: unknown bench_mode %s", mode);
        return;
    }
    if (!l1_need_vmx() || !n || (rsi == PA(bench_pages) && n > BENCH_PAGES) || !vmcs_build(&s))
        return;
    if (want == EXIT_REASON_APIC_ACCESS) {
        vmw(VMCS_VIRTUAL_APIC_PAGE_ADDR, PA(bench_vapic));
        vmw(VMCS_TPR_THRESHOLD, 0);
        vmw(VMCS_APIC_ACCESS_ADDR, PA(bench_apic));
    } else if (want == EXIT_REASON_IO) {
        memset(bench_io, 0, sizeof(bench_io));
        bench_io[0][0x80 / 8] |= 1u << (0x80 % 8);
        vmw(VMCS_IO_BITMAP_A, PA(bench_io[0]));
        vmw(VMCS_IO_BITMAP_B, PA(bench_io[1]));
    }
    memset(&l2_regs, 0, sizeof(l2_regs));
    l2_regs.r15 = n;
    l2_regs.rsi = rsi;
    t0 = rdtsc();
    bool launch = true;
    for (;;) {
        if (l2_enter(launch) != ENTER_EXITED)
            break;
        launch = false;
        if (ex.reason != want || want == EXIT_REASON_VMCALL)
            break;
        if (want == EXIT_REASON_CPUID) {
            struct cpuid_regs c = table ? leaf0 : cpuid((uint32_t)l2_regs.rax);
            l2_regs.rax = c.a;
            l2_regs.rbx = c.b;
            l2_regs.rcx = c.c;
            l2_regs.rdx = c.d;
        } else if (want == EXIT_REASON_APIC_ACCESS && ex.qual != 0x10b0) {
            break; /* only a linear write at 0B0H (the EOI) is expected */
        }
        advance_rip();
        trips++;
    }
    t1 = rdtsc();
    if (want == EXIT_REASON_VMCALL && ex.reason == EXIT_REASON_VMCALL)
        trips = n - l2_regs.r15; /* the pages read (R15 counts down to 0) */
    info("bench %s: %llu round trips, %llu ticks, %llu ticks each, last exit %u", mode, U64(trips), U64(t1 - t0),
         U64(trips ? (t1 - t0) / trips : 0), (unsigned)ex.reason);
}

void test_main(void)
{
    char arg[24];
    uint64_t n = 0;

    vmx_init();
    if (cmdline_get("bench", 0, arg, sizeof(arg)) && parse_u64(arg, NULL, &n) && n) {
        char mode[16] = "cpuid";
        cmdline_get("bench_mode", 0, mode, sizeof(mode));
        bench(n, mode);
        tests_done();
    }
    if (cmdline_get("vmx_abort", 0, arg, sizeof(arg))) {
        t_vmx_abort(!strncmp(arg, "store", 6));
        return;
    }
    if (cmdline_get("attack_vmcs12", 0, arg, sizeof(arg))) {
        t_attack_vmcs12();
        l1_done();
        return;
    }
    t_cpuid_exit();
    t_hlt_exit();
    t_exception_bitmap();
    t_rdmsr_exit();
    t_msr_lists();
    t_io_exit();
    t_state_after_exit();
    t_entry_fail_controls();
    t_entry_fail_host();
    t_entry_fail_guest();
    t_event_injection();
    t_vectoring_left_to_l1();
    t_nmi_blocking_iret();
    l1_done();
}
