/* lhv2.bin - L1 test hypervisor, phase 2: VM entries and VM exits of a simple L2 guest.
 *
 * No EPT, no unrestricted guest: L2 runs in 64-bit mode on L1's page tables (same CR3, except in
 * l2-state-after-exit), its own stack, code inside this image, L1's GDT, its own IDT. The VMCS is
 * rebuilt from scratch (VMCLEAR, VMPTRLD, every field) for each run: controls from the TRUE
 * capability MSRs (required bits only, plus "host address-space size", "IA-32e mode guest" and
 * what the check needs), host state = this kernel's state with HOST_RIP at vm_exit_stub (saves L2's
 * GPRs, returns into C from vm_enter()), guest state = 64-bit flat segments, TR a busy 64-bit TSS,
 * LDTR unusable, link pointer ~0, activity active. Everything on the BSP.
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
 *                       exit, VMRESUME then VMfailValid(5); repaired, VMLAUNCH runs L2.
 *  l2-entry-fail-host   HOST_CR4 without VMXE: VMfailValid(8), no VM exit, VMRESUME VMfailValid(5);
 *                       repaired, VMLAUNCH runs L2.
 *  l2-entry-fail-guest  GUEST_CS type 3 (data), then GUEST_RFLAGS bit 1 clear: VMLAUNCH ends in a
 *                       VM exit to HOST_RIP with reason 33 | 0x80000000, qualification 0; the VMCS
 *                       stays clear (VMRESUME VMfailValid(5)); repaired, VMLAUNCH runs L2.
 *  l2-event-injection   VM-entry interruption info = hardware exception #UD: delivered through L2's
 *                       IDT at GUEST_RIP (handler VMCALL with marker; pushed RIP = GUEST_RIP,
 *                       RFLAGS = GUEST_RFLAGS without RF), no exit for it even with
 *                       exception-bitmap bit 6 set (SDM 27.6.1.2); the valid bit is clear after
 *                       the exit.
 *
 * Bochs 2.7 (corei7_skylake_x) passes all of it bare with 1 and 2 CPUs (about 1.25 M ticks in the
 * kernel). No Bochs difference from the SDM met here; the checks stay clear of the known ones
 * ("load IA32_PERF_GLOBAL_CTRL", external-interrupt exits, the TSC stored on exit, HLT activity
 * state waits): L2 runs with IF = 0 and every program ends in VMCALL.
 */
#include "lib.h"
#include "vmx.h"

#define PAGE 4096
#define U64(x) ((unsigned long long)(x))

static uint8_t vmxon_page[PAGE] __attribute__((aligned(PAGE)));
static uint8_t vmcs_page[PAGE] __attribute__((aligned(PAGE)));
static uint8_t msr_bitmap[PAGE] __attribute__((aligned(PAGE)));
static uint64_t l2_pml4[512] __attribute__((aligned(PAGE)));   /* copy of L1's PML4 */

#define L2_STACK_SIZE 8192
static uint8_t l2_stack[L2_STACK_SIZE] __attribute__((aligned(16)));
#define L2_STACK_TOP ((uint64_t)(uintptr_t)(l2_stack + L2_STACK_SIZE))

/* L2's GPRs: loaded by vm_enter() before VMLAUNCH/VMRESUME, saved by vm_exit_stub. */
struct gregs {
    uint64_t rax, rbx, rcx, rdx, rsi, rdi, rbp, r8, r9, r10, r11, r12, r13, r14, r15;
};
struct gregs l2_regs;
/* RSP when vm_enter() wrote HOST_RSP (before the bias), HOST_RSP = that - bias. */
uint64_t vm_entry_rsp, vm_host_rsp_bias;
/* Written by vm_exit_probe (HOST_RIP of l2-state-after-exit). */
uint64_t probe_hits, probe_rsp, probe_rflags;

/* ------------------------------------------------------------------------------------------
 * vm_enter(launch): VMWRITE HOST_RSP, load l2_regs, VMLAUNCH (launch != 0) or VMRESUME.
 * Returns VM_EXITED after a VM exit (or a VM-entry failure that loads host state), else RFLAGS
 * after the instruction (VMfail*), with an exception caught through the extable like the
 * vmx.h wrappers. vm_exit_stub is HOST_RIP: RSP = HOST_RSP = the stack of vm_enter().
 */
#define VM_EXITED (~0ull)
uint64_t vm_enter(int launch);
extern char vm_exit_stub[], vm_exit_probe[];

asm(".text\n"
    ".macro L2_LOAD\n"
    "  mov l2_regs+0(%rip), %rax\n  mov l2_regs+8(%rip), %rbx\n  mov l2_regs+16(%rip), %rcx\n"
    "  mov l2_regs+24(%rip), %rdx\n  mov l2_regs+32(%rip), %rsi\n  mov l2_regs+40(%rip), %rdi\n"
    "  mov l2_regs+48(%rip), %rbp\n  mov l2_regs+56(%rip), %r8\n  mov l2_regs+64(%rip), %r9\n"
    "  mov l2_regs+72(%rip), %r10\n  mov l2_regs+80(%rip), %r11\n  mov l2_regs+88(%rip), %r12\n"
    "  mov l2_regs+96(%rip), %r13\n  mov l2_regs+104(%rip), %r14\n  mov l2_regs+112(%rip), %r15\n"
    ".endm\n"
    "  .globl vm_enter, vm_exit_stub, vm_exit_probe\n"
    "vm_enter:\n"
    "  push %rbx\n  push %rbp\n  push %r12\n  push %r13\n  push %r14\n  push %r15\n"
    "  mov %rsp, vm_entry_rsp(%rip)\n"
    "  mov %rsp, %rax\n"
    "  sub vm_host_rsp_bias(%rip), %rax\n"
    "  mov $0x6c14, %edx\n"                 /* VMCS_HOST_RSP */
    "  vmwrite %rax, %rdx\n"
    "  test %edi, %edi\n"
    "  jnz 1f\n"
    "  pushfq\n  orq $0x8d5, (%rsp)\n  popfq\n"
    "  L2_LOAD\n"
    "10: vmresume\n"
    "  jmp 12f\n"
    "1:\n"
    "  pushfq\n  orq $0x8d5, (%rsp)\n  popfq\n"
    "  L2_LOAD\n"
    "11: vmlaunch\n"
    "12:\n"
    "  pushfq\n  pop %rax\n"
    "  jmp 20f\n"
    "  .pushsection .extable, \"a\"\n  .balign 8\n"
    "  .quad 10b, 12b\n  .quad 11b, 12b\n"
    "  .popsection\n"
    "vm_exit_probe:\n"                      /* touches no GPR */
    "  incq probe_hits(%rip)\n"
    "  mov %rsp, probe_rsp(%rip)\n"
    "  pushfq\n  popq probe_rflags(%rip)\n"
    "  add vm_host_rsp_bias(%rip), %rsp\n"
    "vm_exit_stub:\n"
    "  mov %rax, l2_regs+0(%rip)\n  mov %rbx, l2_regs+8(%rip)\n  mov %rcx, l2_regs+16(%rip)\n"
    "  mov %rdx, l2_regs+24(%rip)\n  mov %rsi, l2_regs+32(%rip)\n  mov %rdi, l2_regs+40(%rip)\n"
    "  mov %rbp, l2_regs+48(%rip)\n  mov %r8, l2_regs+56(%rip)\n  mov %r9, l2_regs+64(%rip)\n"
    "  mov %r10, l2_regs+72(%rip)\n  mov %r11, l2_regs+80(%rip)\n  mov %r12, l2_regs+88(%rip)\n"
    "  mov %r13, l2_regs+96(%rip)\n  mov %r14, l2_regs+104(%rip)\n  mov %r15, l2_regs+112(%rip)\n"
    "  mov $-1, %rax\n"
    "20:\n"
    "  pop %r15\n  pop %r14\n  pop %r13\n  pop %r12\n  pop %rbp\n  pop %rbx\n"
    "  ret\n");

/* ------------------------------------------------------------------------------------------
 * L2 code (64-bit, CPL 0, IF = 0). Each program ends in VMCALL; nothing after it runs.
 */
#define MARK_UD      0x0dd06ull     /* L2's #UD handler */
#define MARK_UNEXP   0x0bad0ull     /* L2's handler for any other vector */
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
extern char l2_ud_handler[], l2_unexpected_handler[];

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

/* Benchmark program (bench=N): CPUID(0) N times (N in R15), then VMCALL. */
extern char l2_cpuid_loop[];
asm(".text\n"
    "l2_cpuid_loop:\n"
    "1: xor %eax, %eax\n"
    "  cpuid\n"
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

    /* L2's IDT handlers: RBX = pushed RIP, RCX = pushed CS, RDX = pushed RFLAGS. */
    "  .balign 16\n"
    "l2_ud_handler:\n"
    "  mov $0x0dd06, %eax\n"                    /* MARK_UD */
    "  mov (%rsp), %rbx\n  mov 8(%rsp), %rcx\n  mov 16(%rsp), %rdx\n"
    "  vmcall\n"
    "  ud2\n"
    "  .balign 16\n"
    "l2_unexpected_handler:\n"
    "  mov $0x0bad0, %eax\n"                    /* MARK_UNEXP */
    "  mov (%rsp), %rbx\n  mov 8(%rsp), %rcx\n  mov 16(%rsp), %rdx\n"
    "  vmcall\n"
    "  ud2\n");

_Static_assert(L2_STACK_SIZE == 8192 && L2_RSP_OFF == 0x100, "l2_state's RSP");

/* ------------------------------------------------------------------------------------------
 * L1's descriptor tables: the library's GDT entries plus a 64-bit TSS at SEL_TSS (the library
 * never loads TR, and HOST_TR_SELECTOR must not be 0). L2 uses the same GDT and its own IDT.
 */
#define SEL_TSS 0x20
struct tss64 {
    uint32_t rsvd0;
    uint64_t rsp[3];
    uint64_t rsvd1;
    uint64_t ist[7];
    uint64_t rsvd2;
    uint16_t rsvd3, iomap_base;
} __attribute__((packed));
static struct tss64 l1_tss __attribute__((aligned(16)));
static uint64_t l1_gdt[6] __attribute__((aligned(16)));

struct dtr { uint16_t pad[3]; uint16_t limit; uint64_t base; } __attribute__((packed, aligned(8)));
static struct dtr l1_gdtr, l1_idtr;

struct idt_gate {
    uint16_t off0, sel;
    uint8_t ist, type;
    uint16_t off1;
    uint32_t off2, zero;
} __attribute__((packed));
static struct idt_gate l2_idt[256] __attribute__((aligned(16)));

static inline void sgdt(struct dtr *d) { asm volatile("sgdt %0" : "=m"(d->limit) :: "memory"); }
static inline void sidt(struct dtr *d) { asm volatile("sidt %0" : "=m"(d->limit) :: "memory"); }
static inline void lgdt(const struct dtr *d)
{
    asm volatile("lgdt %0" : : "m"(d->limit) : "memory");
}
static inline void lidt(const struct dtr *d)
{
    asm volatile("lidt %0" : : "m"(d->limit) : "memory");
}
static inline uint16_t read_sel(int which)
{
    uint16_t s = 0;
    switch (which) {
    case 0: asm volatile("mov %%cs, %0" : "=r"(s)); break;
    case 1: asm volatile("mov %%ss, %0" : "=r"(s)); break;
    case 2: asm volatile("mov %%ds, %0" : "=r"(s)); break;
    case 3: asm volatile("mov %%es, %0" : "=r"(s)); break;
    case 4: asm volatile("mov %%fs, %0" : "=r"(s)); break;
    case 5: asm volatile("mov %%gs, %0" : "=r"(s)); break;
    default: asm volatile("str %0" : "=r"(s)); break;
    }
    return s;
}

static void set_gate(int v, void *handler)
{
    uint64_t a = (uint64_t)(uintptr_t)handler;
    l2_idt[v].off0 = a & 0xffff;
    l2_idt[v].sel = SEL_CODE64;
    l2_idt[v].ist = 0;
    l2_idt[v].type = 0x8e;
    l2_idt[v].off1 = (a >> 16) & 0xffff;
    l2_idt[v].off2 = a >> 32;
    l2_idt[v].zero = 0;
}

static void tables_init(void)
{
    struct dtr cur;
    sgdt(&cur);
    memcpy(l1_gdt, (void *)(uintptr_t)cur.base, 4 * 8);  /* null, code32, data, code64 */
    memset(&l1_tss, 0, sizeof(l1_tss));
    l1_tss.iomap_base = sizeof(l1_tss);
    uint64_t base = (uint64_t)(uintptr_t)&l1_tss, limit = sizeof(l1_tss) - 1;
    l1_gdt[SEL_TSS / 8] = (limit & 0xffff) | ((base & 0xffffff) << 16) | (0x89ull << 40) |
                          (((limit >> 16) & 0xf) << 48) | (((base >> 24) & 0xff) << 56);
    l1_gdt[SEL_TSS / 8 + 1] = base >> 32;
    l1_gdtr.limit = sizeof(l1_gdt) - 1;
    l1_gdtr.base = (uint64_t)(uintptr_t)l1_gdt;
    lgdt(&l1_gdtr);
    asm volatile("ltr %w0" : : "r"((uint16_t)SEL_TSS) : "memory");
    sidt(&l1_idtr);

    for (int v = 0; v < 256; v++)
        set_gate(v, l2_unexpected_handler);
    set_gate(EXC_UD, l2_ud_handler);
}

/* ------------------------------------------------------------------------------------------
 * Capabilities, VMX operation
 */
static bool has_vmx, in_vmx;
static uint64_t basic, cap_pin, cap_proc, cap_exit, cap_entry;
static uint32_t revision;

static void vmx_init(void)
{
    has_vmx = cpuid(1).c & CPUID1_ECX_VMX;
    if (!has_vmx) {
        info("no VMX (CPUID.1:ECX.VMX clear)");
        return;
    }
    tables_init();
    basic = rdmsr(MSR_IA32_VMX_BASIC);
    bool tr = basic & VMX_BASIC_TRUE_CTLS;
    revision = VMX_BASIC_REVISION(basic);
    cap_pin = rdmsr(tr ? MSR_IA32_VMX_TRUE_PINBASED_CTLS : MSR_IA32_VMX_PINBASED_CTLS);
    cap_proc = rdmsr(tr ? MSR_IA32_VMX_TRUE_PROCBASED_CTLS : MSR_IA32_VMX_PROCBASED_CTLS);
    cap_exit = rdmsr(tr ? MSR_IA32_VMX_TRUE_EXIT_CTLS : MSR_IA32_VMX_EXIT_CTLS);
    cap_entry = rdmsr(tr ? MSR_IA32_VMX_TRUE_ENTRY_CTLS : MSR_IA32_VMX_ENTRY_CTLS);
    info("controls from %s MSRs: pin 0x%016llx proc 0x%016llx exit 0x%016llx entry 0x%016llx",
         tr ? "TRUE" : "non-TRUE", (unsigned long long)cap_pin, (unsigned long long)cap_proc,
         (unsigned long long)cap_exit, (unsigned long long)cap_entry);

    uint64_t fc = 0;
    rdmsr_safe(MSR_IA32_FEATURE_CONTROL, &fc);
    if (!(fc & FEATURE_CONTROL_LOCK))
        wrmsr_safe(MSR_IA32_FEATURE_CONTROL,
                   fc | FEATURE_CONTROL_LOCK | FEATURE_CONTROL_VMX_OUTSIDE_SMX);
    if (write_cr4_safe(read_cr4() | CR4_VMXE) != NO_EXCEPTION) {
        info("setting CR4.VMXE faulted");
        return;
    }
    memset(vmxon_page, 0, PAGE);
    *(volatile uint32_t *)vmxon_page = revision;
    int r = vmxon(vmx_pa(vmxon_page));
    char buf[48];
    in_vmx = r == VMX_SUCCEED;
    if (!in_vmx)
        info("VMXON: %s", vmx_outcome_name(vmx_outcome(r), buf, sizeof(buf)));
}

static bool need_vmx(void)
{
    return test_check(has_vmx, "no VMX (CPUID.1:ECX.VMX clear)") &&
           test_check(in_vmx, "not in VMX operation (VMXON failed)");
}

/* ------------------------------------------------------------------------------------------
 * VMCS construction
 */
static int vmcs_errors;
static uint32_t vmcs_first_bad;

static void w(uint32_t enc, uint64_t val)
{
    if (vmwrite_reg(enc, val) != VMX_SUCCEED && vmcs_errors++ == 0)
        vmcs_first_bad = enc;
}

static uint64_t r(uint32_t enc)
{
    uint64_t v = 0xdeadbeefdeadbeefull;
    if (vmread_reg(enc, &v) != VMX_SUCCEED && vmcs_errors++ == 0)
        vmcs_first_bad = enc;
    return v;
}

struct l2_setup {
    void *rip;
    uint32_t pin, proc, exit, entry;    /* optional controls wanted (required ones are added) */
    uint32_t exc_bitmap;
};

/* VMCLEAR + VMPTRLD of vmcs_page and every field of a valid VMCS for L2 at s->rip. */
static bool vmcs_build(const struct l2_setup *s)
{
    uint64_t pa = vmx_pa(vmcs_page);
    memset(vmcs_page, 0, PAGE);
    *(volatile uint32_t *)vmcs_page = revision;
    char buf[48];
    int o = vmx_outcome(vmclear(pa));
    if (!test_check(o == VMX_SUCCEED, "VMCLEAR: %s", vmx_outcome_name(o, buf, sizeof(buf))))
        return false;
    o = vmx_outcome(vmptrld(pa));
    if (!test_check(o == VMX_SUCCEED, "VMPTRLD: %s", vmx_outcome_name(o, buf, sizeof(buf))))
        return false;
    vmcs_errors = 0;
    memset(&l2_regs, 0, sizeof(l2_regs));
    memset(l2_stack, 0, sizeof(l2_stack));
    vm_host_rsp_bias = 0;

    uint32_t pin = vmx_ctl_value(cap_pin, s->pin);
    uint32_t proc = vmx_ctl_value(cap_proc, s->proc);
    uint32_t exit = vmx_ctl_value(cap_exit, s->exit | EXIT_HOST_ADDR_SPACE_SIZE);
    uint32_t entry = vmx_ctl_value(cap_entry, s->entry | ENTRY_IA32E_MODE_GUEST);
    test_check(vmx_ctl_allowed(cap_pin, s->pin), "pin-based controls 0x%x not allowed", s->pin);
    test_check(vmx_ctl_allowed(cap_proc, s->proc), "processor-based controls 0x%x not allowed",
               s->proc);
    test_check(vmx_ctl_allowed(cap_exit, s->exit | EXIT_HOST_ADDR_SPACE_SIZE),
               "VM-exit controls 0x%x not allowed", s->exit | EXIT_HOST_ADDR_SPACE_SIZE);
    test_check(vmx_ctl_allowed(cap_entry, s->entry | ENTRY_IA32E_MODE_GUEST),
               "VM-entry controls 0x%x not allowed", s->entry | ENTRY_IA32E_MODE_GUEST);
    if (proc & PROC_SECONDARY_CONTROLS)
        w(VMCS_SECONDARY_PROC_CTLS, 0);

    /* controls */
    w(VMCS_PIN_BASED_CTLS, pin);
    w(VMCS_PROC_BASED_CTLS, proc);
    w(VMCS_EXIT_CTLS, exit);
    w(VMCS_ENTRY_CTLS, entry);
    w(VMCS_EXCEPTION_BITMAP, s->exc_bitmap);
    w(VMCS_PF_ERROR_CODE_MASK, 0);
    w(VMCS_PF_ERROR_CODE_MATCH, 0);
    w(VMCS_CR3_TARGET_COUNT, 0);
    w(VMCS_EXIT_MSR_STORE_COUNT, 0);
    w(VMCS_EXIT_MSR_LOAD_COUNT, 0);
    w(VMCS_ENTRY_MSR_LOAD_COUNT, 0);
    w(VMCS_ENTRY_INTR_INFO, 0);
    w(VMCS_ENTRY_EXCEPTION_ERROR_CODE, 0);
    w(VMCS_ENTRY_INSTRUCTION_LEN, 0);
    w(VMCS_TSC_OFFSET, 0);
    w(VMCS_CR0_GUEST_HOST_MASK, 0);
    w(VMCS_CR4_GUEST_HOST_MASK, 0);
    w(VMCS_CR0_READ_SHADOW, read_cr0());
    w(VMCS_CR4_READ_SHADOW, read_cr4());
    memset(msr_bitmap, 0, PAGE);
    w(VMCS_MSR_BITMAP, vmx_pa(msr_bitmap));

    /* host state: this kernel as it runs now */
    w(VMCS_HOST_CR0, read_cr0());
    w(VMCS_HOST_CR3, read_cr3());
    w(VMCS_HOST_CR4, read_cr4());
    w(VMCS_HOST_CS_SELECTOR, read_sel(0));
    w(VMCS_HOST_SS_SELECTOR, read_sel(1));
    w(VMCS_HOST_DS_SELECTOR, read_sel(2));
    w(VMCS_HOST_ES_SELECTOR, read_sel(3));
    w(VMCS_HOST_FS_SELECTOR, read_sel(4));
    w(VMCS_HOST_GS_SELECTOR, read_sel(5));
    w(VMCS_HOST_TR_SELECTOR, read_sel(6));
    w(VMCS_HOST_FS_BASE, rdmsr(MSR_FS_BASE));
    w(VMCS_HOST_GS_BASE, rdmsr(MSR_GS_BASE));
    w(VMCS_HOST_TR_BASE, (uint64_t)(uintptr_t)&l1_tss);
    w(VMCS_HOST_GDTR_BASE, l1_gdtr.base);
    w(VMCS_HOST_IDTR_BASE, l1_idtr.base);
    w(VMCS_HOST_SYSENTER_CS, rdmsr(MSR_IA32_SYSENTER_CS));
    w(VMCS_HOST_SYSENTER_ESP, rdmsr(MSR_IA32_SYSENTER_ESP));
    w(VMCS_HOST_SYSENTER_EIP, rdmsr(MSR_IA32_SYSENTER_EIP));
    w(VMCS_HOST_RSP, 0);                  /* vm_enter() writes it */
    w(VMCS_HOST_RIP, (uint64_t)(uintptr_t)vm_exit_stub);

    /* guest state: 64-bit flat, CPL 0 */
    w(VMCS_GUEST_CR0, read_cr0());
    w(VMCS_GUEST_CR3, read_cr3());
    w(VMCS_GUEST_CR4, read_cr4());
    w(VMCS_GUEST_DR7, 0x400);
    w(VMCS_GUEST_RSP, L2_STACK_TOP);
    w(VMCS_GUEST_RIP, (uint64_t)(uintptr_t)s->rip);
    w(VMCS_GUEST_RFLAGS, 0x2);
    static const uint32_t sel_f[] = { VMCS_GUEST_ES_SELECTOR, VMCS_GUEST_SS_SELECTOR,
                                      VMCS_GUEST_DS_SELECTOR, VMCS_GUEST_FS_SELECTOR,
                                      VMCS_GUEST_GS_SELECTOR };
    static const uint32_t lim_f[] = { VMCS_GUEST_ES_LIMIT, VMCS_GUEST_SS_LIMIT, VMCS_GUEST_DS_LIMIT,
                                      VMCS_GUEST_FS_LIMIT, VMCS_GUEST_GS_LIMIT };
    static const uint32_t ar_f[] = { VMCS_GUEST_ES_AR, VMCS_GUEST_SS_AR, VMCS_GUEST_DS_AR,
                                     VMCS_GUEST_FS_AR, VMCS_GUEST_GS_AR };
    static const uint32_t base_f[] = { VMCS_GUEST_ES_BASE, VMCS_GUEST_SS_BASE, VMCS_GUEST_DS_BASE,
                                       VMCS_GUEST_FS_BASE, VMCS_GUEST_GS_BASE };
    for (unsigned i = 0; i < ARRAY_SIZE(sel_f); i++) {
        w(sel_f[i], SEL_DATA);
        w(lim_f[i], 0xffffffff);
        w(ar_f[i], VMX_AR_DATA);
        w(base_f[i], 0);
    }
    w(VMCS_GUEST_CS_SELECTOR, SEL_CODE64);
    w(VMCS_GUEST_CS_LIMIT, 0xffffffff);
    w(VMCS_GUEST_CS_AR, VMX_AR_CODE64);
    w(VMCS_GUEST_CS_BASE, 0);
    w(VMCS_GUEST_TR_SELECTOR, SEL_TSS);
    w(VMCS_GUEST_TR_LIMIT, sizeof(l1_tss) - 1);
    w(VMCS_GUEST_TR_AR, VMX_AR_TSS64_BUSY);
    w(VMCS_GUEST_TR_BASE, (uint64_t)(uintptr_t)&l1_tss);
    w(VMCS_GUEST_LDTR_SELECTOR, 0);
    w(VMCS_GUEST_LDTR_LIMIT, 0);
    w(VMCS_GUEST_LDTR_AR, VMX_AR_UNUSABLE);
    w(VMCS_GUEST_LDTR_BASE, 0);
    w(VMCS_GUEST_GDTR_BASE, l1_gdtr.base);
    w(VMCS_GUEST_GDTR_LIMIT, l1_gdtr.limit);
    w(VMCS_GUEST_IDTR_BASE, (uint64_t)(uintptr_t)l2_idt);
    w(VMCS_GUEST_IDTR_LIMIT, sizeof(l2_idt) - 1);
    w(VMCS_GUEST_IA32_DEBUGCTL, 0);
    w(VMCS_GUEST_SYSENTER_CS, 0x4321);
    w(VMCS_GUEST_SYSENTER_ESP, 0);
    w(VMCS_GUEST_SYSENTER_EIP, 0);
    w(VMCS_GUEST_INTERRUPTIBILITY, 0);
    w(VMCS_GUEST_ACTIVITY_STATE, GUEST_ACTIVITY_ACTIVE);
    w(VMCS_GUEST_PENDING_DBG, 0);
    w(VMCS_LINK_POINTER, ~0ull);

    return test_check(vmcs_errors == 0, "%d VMWRITEs failed (first field 0x%x)", vmcs_errors,
                      vmcs_first_bad);
}

/* ------------------------------------------------------------------------------------------
 * Entering L2
 */
#define ENTER_EXITED 0x20000    /* outcome: a VM exit (or VM-entry failure) returned to HOST_RIP */

static struct dtr exit_gdtr, exit_idtr;   /* as found right after the last vm_enter() */
static uint64_t exit_cr3;

struct exit_info {
    uint32_t reason, intr_info, intr_err, len, idt_vec, entry_intr;
    uint64_t qual, rip, rsp, rflags;
};
static struct exit_info ex;

static int enter(bool launch)
{
    fault_begin();
    uint64_t f = vm_enter(launch);
    exit_cr3 = read_cr3();
    sgdt(&exit_gdtr);
    sidt(&exit_idtr);
    lgdt(&l1_gdtr);                     /* VM exits set the limits to 0xFFFF */
    lidt(&l1_idtr);
    if (f == VM_EXITED && fault_result() == NO_EXCEPTION) {
        memset(&ex, 0, sizeof(ex));
        vmcs_errors = 0;
        ex.reason = r(VMCS_EXIT_REASON);
        ex.qual = r(VMCS_EXIT_QUALIFICATION);
        ex.intr_info = r(VMCS_EXIT_INTR_INFO);
        ex.intr_err = r(VMCS_EXIT_INTR_ERROR_CODE);
        ex.len = r(VMCS_EXIT_INSTRUCTION_LEN);
        ex.idt_vec = r(VMCS_IDT_VECTORING_INFO);
        ex.entry_intr = r(VMCS_ENTRY_INTR_INFO);
        ex.rip = r(VMCS_GUEST_RIP);
        ex.rsp = r(VMCS_GUEST_RSP);
        ex.rflags = r(VMCS_GUEST_RFLAGS);
        test_check(vmcs_errors == 0, "VMREAD after the VM exit failed (field 0x%x)",
                   vmcs_first_bad);
        return ENTER_EXITED;
    }
    return vmx_outcome(vmx_result(f));
}

static const char *outcome_name(int o, char *buf, size_t n)
{
    if (o == ENTER_EXITED)
        snprintf(buf, n, "VM exit (reason 0x%x, qualification 0x%llx, RIP 0x%llx)", ex.reason,
                 (unsigned long long)ex.qual, (unsigned long long)ex.rip);
    else
        vmx_outcome_name(o, buf, n);
    return buf;
}

/* Enter L2 and expect a VM exit with this (full) exit reason; false (a check failed) if not. */
static bool run_expect(bool launch, uint32_t reason, const char *what)
{
    char buf[120];
    int o = enter(launch);
    if (!test_check(o == ENTER_EXITED, "%s (%s): %s, expected a VM exit with reason %u", what,
                    launch ? "VMLAUNCH" : "VMRESUME", outcome_name(o, buf, sizeof(buf)),
                    reason & 0xffff))
        return false;
    return test_check(ex.reason == reason, "%s: exit reason 0x%x (qualification 0x%llx, "
                      "RIP 0x%llx, RAX 0x%llx), expected 0x%x", what, ex.reason, U64(ex.qual),
                      U64(ex.rip), U64(l2_regs.rax), reason);
}

/* Enter and expect a VMX failure outcome (no VM exit). */
static bool enter_expect_fail(bool launch, int want, const char *what)
{
    char got[120], exp[48];
    int o = enter(launch);
    return test_check(o == want, "%s: %s, expected %s", what, outcome_name(o, got, sizeof(got)),
                      vmx_outcome_name(want, exp, sizeof(exp)));
}

static void advance_rip(void)
{
    w(VMCS_GUEST_RIP, ex.rip + ex.len);
}

#define PA(p) ((uint64_t)(uintptr_t)(p))

static bool check_u64(uint64_t got, uint64_t want, const char *what)
{
    return test_check(got == want, "%s: 0x%llx, expected 0x%llx", what, U64(got), U64(want));
}

/* ------------------------------------------------------------------------------------------
 * l2-cpuid-exit
 */
static void t_cpuid_exit(void)
{
    if (test_begin("l2-cpuid-exit") && need_vmx()) {
        struct l2_setup s = { .rip = l2_cpuid };
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
    if (test_begin("l2-hlt-exit") && need_vmx()) {
        struct l2_setup s = { .rip = l2_hlt, .proc = PROC_HLT_EXITING };
        if (vmcs_build(&s) && run_expect(true, EXIT_REASON_HLT, "HLT")) {
            check_u64(ex.len, 1, "HLT exit: instruction length");
            check_u64(ex.rip, PA(l2_hlt_insn), "HLT exit: GUEST_RIP");
            check_u64(r(VMCS_GUEST_ACTIVITY_STATE), GUEST_ACTIVITY_ACTIVE,
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
    if (test_begin("l2-exception-bitmap") && need_vmx()) {
        struct l2_setup s = { .rip = l2_ud, .exc_bitmap = 1u << EXC_UD };
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
    if (test_begin("l2-rdmsr-exit") && need_vmx()) {
        uint64_t host_cs = rdmsr(MSR_IA32_SYSENTER_CS);
        struct l2_setup s = { .rip = l2_rdmsr };
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
            check_u64(l2_regs.rax, 0x4321, "L2's RAX from RDMSR (GUEST_SYSENTER_CS)");
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
    if (test_begin("l2-msr-lists") && need_vmx()) {
        struct l2_setup s = { .rip = l2_msr_lists, .proc = PROC_USE_MSR_BITMAPS };
        uint64_t aux = 0;
        rdmsr_safe(MSR_TSC_AUX, &aux);
        msr_load[0] = (struct msr_list_entry){ MSR_IA32_SYSENTER_CS, 0, 0x7777 };
        msr_store[0] = (struct msr_list_entry){ MSR_IA32_SYSENTER_CS, 0, 0 };
        msr_exit_load[0] = (struct msr_list_entry){ MSR_TSC_AUX, 0, 0x42 };
        if (vmcs_build(&s)) {
            w(VMCS_ENTRY_MSR_LOAD_ADDR, PA(msr_load));
            w(VMCS_ENTRY_MSR_LOAD_COUNT, 1);
            w(VMCS_EXIT_MSR_STORE_ADDR, PA(msr_store));
            w(VMCS_EXIT_MSR_STORE_COUNT, 1);
            w(VMCS_EXIT_MSR_LOAD_ADDR, PA(msr_exit_load));
            w(VMCS_EXIT_MSR_LOAD_COUNT, 1);
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
            w(VMCS_ENTRY_MSR_LOAD_ADDR, PA(msr_load));
            w(VMCS_ENTRY_MSR_LOAD_COUNT, 2);
            if (run_expect(true, 0x80000000u | 34, "entry MSR-load list with IA32_FS_BASE"))
                check_u64(ex.qual, 2, "MSR-loading failure: qualification (1-based entry index)");
        }
    }
    test_end();
}

/* ------------------------------------------------------------------------------------------
 * l2-io-exit
 */
static void t_io_exit(void)
{
    if (test_begin("l2-io-exit") && need_vmx()) {
        struct l2_setup s = { .rip = l2_io, .proc = PROC_UNCOND_IO_EXITING };
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
    if (test_begin("l2-state-after-exit") && need_vmx()) {
        struct l2_setup s = { .rip = l2_state };
        if (vmcs_build(&s)) {
            uint64_t host_cr3 = read_cr3();
            memcpy(l2_pml4, phys(host_cr3 & ~0xfffull), PAGE);
            w(VMCS_GUEST_CR3, PA(l2_pml4));
            w(VMCS_HOST_RIP, PA(vm_exit_probe));
            uint64_t host_cs = rdmsr(MSR_IA32_SYSENTER_CS);
            vm_host_rsp_bias = 128;
            probe_hits = 0;
            if (run_expect(true, EXIT_REASON_VMCALL, "first VMCALL")) {
                check_u64(probe_hits, 1, "exits through HOST_RIP (the probe stub)");
                check_u64(probe_rsp, vm_entry_rsp - 128, "RSP at HOST_RIP (HOST_RSP)");
                check_u64(probe_rflags, 0x2, "RFLAGS after the VM exit");
                check_u64(exit_cr3, host_cr3, "CR3 after the VM exit (HOST_CR3)");
                check_u64(r(VMCS_GUEST_CR3), PA(l2_pml4), "VMREAD GUEST_CR3");
                check_u64(r(VMCS_HOST_RSP), vm_entry_rsp - 128, "VMREAD HOST_RSP");
                check_u64(exit_gdtr.limit, 0xffff, "GDTR limit after the VM exit");
                check_u64(exit_idtr.limit, 0xffff, "IDTR limit after the VM exit");
                check_u64(exit_gdtr.base, l1_gdtr.base, "GDTR base after the VM exit");
                check_u64(exit_idtr.base, l1_idtr.base, "IDTR base after the VM exit");
                check_u64(read_sel(0), SEL_CODE64, "CS after the VM exit");
                check_u64(read_sel(1), SEL_DATA, "SS after the VM exit");
                check_u64(read_sel(2), SEL_DATA, "DS after the VM exit");
                check_u64(read_sel(6), SEL_TSS, "TR after the VM exit");
                check_u64(rdmsr(MSR_IA32_SYSENTER_CS), host_cs,
                          "IA32_SYSENTER_CS after the VM exit");
                check_u64(ex.rip, PA(l2_state_vmcall1), "VMREAD GUEST_RIP");
                check_u64(ex.rsp, L2_STACK_TOP - L2_RSP_OFF, "VMREAD GUEST_RSP");
                check_u64(ex.rflags, L2_RFLAGS, "VMREAD GUEST_RFLAGS");
                check_u64(ex.len, 3, "VMCALL exit: instruction length");

                advance_rip();
                probe_hits = 0;
                if (run_expect(false, EXIT_REASON_VMCALL, "VMRESUME after VMLAUNCH")) {
                    check_u64(probe_hits, 1, "second exit through HOST_RIP");
                    check_u64(ex.rip, PA(l2_state_vmcall2), "VMREAD GUEST_RIP after VMRESUME");
                    check_u64(ex.rsp, L2_STACK_TOP - L2_RSP_OFF, "VMREAD GUEST_RSP after VMRESUME");
                    check_u64(ex.rflags, L2_RFLAGS, "VMREAD GUEST_RFLAGS after VMRESUME");
                    probe_hits = 0;
                    enter_expect_fail(true, VMX_FAIL_VALID_ERR(VMXERR_VMLAUNCH_NONCLEAR),
                                      "second VMLAUNCH");
                    check_u64(probe_hits, 0, "exits through HOST_RIP after the second VMLAUNCH");
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
    if (test_begin("l2-entry-fail-controls") && need_vmx()) {
        struct l2_setup s = { .rip = l2_vmcall };
        uint32_t must1 = (uint32_t)cap_pin;
        if (vmcs_build(&s) && test_check(must1 != 0, "no must-be-1 pin-based control (0x%016llx)",
                                         U64(cap_pin))) {
            uint32_t pin = must1 & ~(must1 & -must1);   /* lowest required bit cleared */
            w(VMCS_PIN_BASED_CTLS, pin);
            enter_expect_fail(true, VMX_FAIL_VALID_ERR(VMXERR_ENTRY_INVALID_CONTROLS),
                              "VMLAUNCH with a required pin-based control clear");
            enter_expect_fail(false, VMX_FAIL_VALID_ERR(VMXERR_VMRESUME_NONLAUNCHED),
                              "VMRESUME after the failed VMLAUNCH");
            w(VMCS_PIN_BASED_CTLS, must1);
            if (run_expect(true, EXIT_REASON_VMCALL, "VMLAUNCH with the controls repaired"))
                check_u64(ex.rip, PA(l2_vmcall), "VMCALL exit: GUEST_RIP");
        }
    }
    test_end();
}

static void t_entry_fail_host(void)
{
    if (test_begin("l2-entry-fail-host") && need_vmx()) {
        struct l2_setup s = { .rip = l2_vmcall };
        if (vmcs_build(&s)) {
            w(VMCS_HOST_CR4, read_cr4() & ~CR4_VMXE);
            enter_expect_fail(true, VMX_FAIL_VALID_ERR(VMXERR_ENTRY_INVALID_HOST_STATE),
                              "VMLAUNCH with HOST_CR4.VMXE clear");
            enter_expect_fail(false, VMX_FAIL_VALID_ERR(VMXERR_VMRESUME_NONLAUNCHED),
                              "VMRESUME after the failed VMLAUNCH");
            check_u64(read_cr4() & CR4_VMXE, CR4_VMXE, "L1's CR4.VMXE");
            w(VMCS_HOST_CR4, read_cr4());
            if (run_expect(true, EXIT_REASON_VMCALL, "VMLAUNCH with the host state repaired"))
                check_u64(ex.rip, PA(l2_vmcall), "VMCALL exit: GUEST_RIP");
        }
    }
    test_end();
}

static void guest_fail_case(uint32_t field, uint64_t bad, uint64_t good, const char *what)
{
    struct l2_setup s = { .rip = l2_vmcall };
    char buf[96];
    if (!vmcs_build(&s))
        return;
    w(field, bad);
    snprintf(buf, sizeof(buf), "VMLAUNCH with %s", what);
    if (run_expect(true, VMX_EXIT_REASON_ENTRY_FAIL | EXIT_REASON_INVALID_GUEST_STATE, buf)) {
        test_check(ex.qual == 0, "%s: exit qualification 0x%llx, expected 0", buf, U64(ex.qual));
        snprintf(buf, sizeof(buf), "VMRESUME after the failed VMLAUNCH with %s", what);
        enter_expect_fail(false, VMX_FAIL_VALID_ERR(VMXERR_VMRESUME_NONLAUNCHED), buf);
    }
    w(field, good);
    snprintf(buf, sizeof(buf), "VMLAUNCH with %s repaired", what);
    if (run_expect(true, EXIT_REASON_VMCALL, buf))
        check_u64(ex.rip, PA(l2_vmcall), "VMCALL exit: GUEST_RIP");
}

static void t_entry_fail_guest(void)
{
    if (test_begin("l2-entry-fail-guest") && need_vmx()) {
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
    struct l2_setup s = { .rip = l2_inject_target, .exc_bitmap = bitmap };
    char buf[96];
    if (!vmcs_build(&s))
        return;
    w(VMCS_ENTRY_INTR_INFO, INTR_INFO(INTR_TYPE_HW_EXCEPTION, EXC_UD));
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
    if (test_begin("l2-event-injection") && need_vmx()) {
        inject_case(0, "exception bitmap 0");
        inject_case(1u << EXC_UD, "exception bitmap bit 6 set");
    }
    test_end();
}

/* bench=N: the cost of an L2 CPUID exit handled by L1 (round trip: L2 exit, L1's reads of the exit
 * information, its own CPUID, RIP update, VMRESUME). INFO lines only; the runner's nested bench reads
 * them (bare against under XMHF). */
static void bench_cpuid(uint64_t n)
{
    struct l2_setup s = { .rip = l2_cpuid_loop };
    uint64_t trips = 0, t0, t1;

    if (!need_vmx() || !n || !vmcs_build(&s))
        return;
    memset(&l2_regs, 0, sizeof(l2_regs));
    l2_regs.r15 = n;
    t0 = rdtsc();
    bool launch = true;
    for (;;) {
        if (enter(launch) != ENTER_EXITED)
            break;
        launch = false;
        if (ex.reason != EXIT_REASON_CPUID)
            break;
        struct cpuid_regs c = cpuid((uint32_t)l2_regs.rax);
        l2_regs.rax = c.a;
        l2_regs.rbx = c.b;
        l2_regs.rcx = c.c;
        l2_regs.rdx = c.d;
        advance_rip();
        trips++;
    }
    t1 = rdtsc();
    info("bench: %llu L2 CPUID round trips, %llu ticks, %llu ticks each, last exit %u", U64(trips), U64(t1 - t0),
         U64(trips ? (t1 - t0) / trips : 0), (unsigned)ex.reason);
}

void test_main(void)
{
    char arg[24];
    uint64_t n = 0;

    vmx_init();
    if (cmdline_get("bench", 0, arg, sizeof(arg)) && parse_u64(arg, NULL, &n) && n) {
        bench_cpuid(n);
        tests_done();
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
    if (in_vmx) {
        vmclear(vmx_pa(vmcs_page));
        vmxoff();
    }
}
