/* lhv4.bin - L1 test hypervisor, phase 4: conditional VM exits of a 64-bit L2 guest (bitmaps,
 * CR guest/host masks and read shadows, #PF error-code mask/match, RDTSC/MOV DR/INVLPG exiting)
 * and a 32-bit protected-mode L2.
 *
 * Framework copied from lhv2.c (vm_enter/vm_exit_stub, L1 GDT with a TSS, vmcs_build from the TRUE
 * capability MSRs). No EPT: L2 runs on L1's page tables (64-bit) or on its own 32-bit PSE page
 * directory (l2-protected-mode). Everything on the BSP.
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

#define PAGE 4096
#define U64(x) ((unsigned long long)(x))

static uint8_t vmxon_page[PAGE] __attribute__((aligned(PAGE)));
static uint8_t vmcs_page[PAGE] __attribute__((aligned(PAGE)));
static uint8_t msr_bitmap[PAGE] __attribute__((aligned(PAGE)));

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
 * L2 code (64-bit, CPL 0, IF = 0 unless said otherwise). Each program ends in VMCALL.
 */
#define MARK_PF      0x0f14ull      /* L2's #PF handler */
#define MARK_UNEXP   0x0bad0ull     /* L2's handler for any other vector */
#define PF_ADDR      0x180000000ull /* 6 GiB: not present in L1's page tables */

extern char l2_msr[], l2_msr_r174[], l2_msr_rc100[], l2_msr_w175[], l2_msr_wc102[],
    l2_msr_vmcall[];
extern char l2_cr[], l2_cr_mov0[], l2_cr_clts[], l2_cr_lmsw[], l2_cr_mov4[], l2_cr_vmcall[];
extern char l2_io[], l2_io_out80[], l2_io_in8080[], l2_io_outw7f[], l2_io_vmcall[];
extern char l2_pf_read[], l2_pf_read_insn[], l2_pf_write[], l2_pf_write_insn[];
extern char l2_misc[], l2_misc_rdtsc[], l2_misc_movdr7[], l2_misc_movdr1[], l2_misc_invlpg[],
    l2_misc_vmcall[];
extern char l2_pm[], l2_pm_cpuid[], l2_pm_vmcall[];
extern char l2_pf_handler[], l2_unexpected_handler[];

asm(".text\n"
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

    /* L2's IDT handlers: RBX = error code, RCX = pushed RIP, RDX = CR2 */
    "  .balign 16\n"
    "l2_pf_handler:\n"
    "  mov $0x0f14, %eax\n"                     /* MARK_PF */
    "  mov (%rsp), %rbx\n  mov 8(%rsp), %rcx\n  mov %cr2, %rdx\n"
    "  vmcall\n"
    "  ud2\n"
    "  .balign 16\n"
    "l2_unexpected_handler:\n"
    "  mov $0x0bad0, %eax\n"                    /* MARK_UNEXP */
    "  mov (%rsp), %rbx\n  mov 8(%rsp), %rcx\n  mov 16(%rsp), %rdx\n"
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
    set_gate(EXC_PF, l2_pf_handler);
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

static void advance_rip(void)
{
    w(VMCS_GUEST_RIP, ex.rip + ex.len);
}

#define PA(p) ((uint64_t)(uintptr_t)(p))

static bool check_u64(uint64_t got, uint64_t want, const char *what)
{
    return test_check(got == want, "%s: 0x%llx, expected 0x%llx", what, U64(got), U64(want));
}

/* Enter (or re-enter) L2 and expect an exit with this reason at this RIP. */
static bool step(bool launch, uint32_t reason, const void *rip, const char *what)
{
    if (!run_expect(launch, reason, what))
        return false;
    return test_check(ex.rip == PA(rip), "%s: GUEST_RIP 0x%llx, expected 0x%llx", what,
                      U64(ex.rip), U64(PA(rip)));
}

static void set_bit(uint8_t *map, unsigned bit) { map[bit / 8] |= (uint8_t)(1u << (bit % 8)); }

/* ------------------------------------------------------------------------------------------
 * l2-msr-bitmap-quarters
 */
static void t_msr_bitmap(void)
{
    if (test_begin("l2-msr-bitmap-quarters") && need_vmx()) {
        struct l2_setup s = { .rip = l2_msr, .proc = PROC_USE_MSR_BITMAPS };
        uint64_t host_kgs = rdmsr(MSR_KERNEL_GS_BASE);
        if (vmcs_build(&s)) {
            set_bit(msr_bitmap, 0x174);                     /* read low */
            set_bit(msr_bitmap + 0x400, 0x100);             /* read high: 0xC0000100 */
            set_bit(msr_bitmap + 0x800, 0x175);             /* write low */
            set_bit(msr_bitmap + 0xc00, 0x102);             /* write high: 0xC0000102 */
            w(VMCS_GUEST_SYSENTER_ESP, 0x5175);
            w(VMCS_GUEST_GS_BASE, 0x6101);
            if (step(true, EXIT_REASON_RDMSR, l2_msr_r174, "RDMSR 0x174 (read-low bit)")) {
                check_u64(l2_regs.rcx, 0x174, "RDMSR exit: RCX");
                check_u64(ex.len, 2, "RDMSR exit: instruction length");
                l2_regs.rax = 0xa174;
                l2_regs.rdx = 0;
                advance_rip();
            }
            if (step(false, EXIT_REASON_RDMSR, l2_msr_rc100, "RDMSR 0xC0000100 (read-high bit)")) {
                check_u64(l2_regs.rcx, 0xc0000100, "RDMSR exit: RCX");
                check_u64(l2_regs.r8, 0x5175, "RDMSR 0x175 without exit (GUEST_SYSENTER_ESP)");
                check_u64(l2_regs.r12, 0xa174, "L2's RAX from the emulated RDMSR 0x174");
                l2_regs.rax = 0xa100;
                l2_regs.rdx = 0;
                advance_rip();
            }
            if (step(false, EXIT_REASON_WRMSR, l2_msr_w175, "WRMSR 0x175 (write-low bit)")) {
                check_u64(l2_regs.rcx, 0x175, "WRMSR exit: RCX");
                check_u64(l2_regs.rax, 0x5000, "WRMSR exit: RAX");
                check_u64(l2_regs.rdx, 0x5, "WRMSR exit: RDX");
                check_u64(l2_regs.r9, 0x6101, "RDMSR 0xC0000101 without exit (GUEST_GS_BASE)");
                check_u64(l2_regs.r13, 0xa100, "L2's RAX from the emulated RDMSR 0xC0000100");
                check_u64(ex.len, 2, "WRMSR exit: instruction length");
                advance_rip();
            }
            if (step(false, EXIT_REASON_WRMSR, l2_msr_wc102, "WRMSR 0xC0000102 (write-high bit)")) {
                check_u64(l2_regs.rcx, 0xc0000102, "WRMSR exit: RCX");
                check_u64(l2_regs.rax, 0x1234, "WRMSR exit: RAX");
                check_u64(l2_regs.rdx, 0xffff8000, "WRMSR exit: RDX");
                advance_rip();
            }
            if (step(false, EXIT_REASON_VMCALL, l2_msr_vmcall, "VMCALL after the MSR accesses")) {
                check_u64(r(VMCS_GUEST_SYSENTER_CS), 0x6174,
                          "GUEST_SYSENTER_CS after WRMSR 0x174 without exit");
                check_u64(r(VMCS_GUEST_GS_BASE), 0, "GUEST_GS_BASE after WRMSR 0xC0000101");
                check_u64(rdmsr(MSR_KERNEL_GS_BASE), host_kgs,
                          "L1's IA32_KERNEL_GS_BASE (the write exited)");
            }
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
    if (test_begin("l2-cr-masks") && need_vmx()) {
        struct l2_setup s = { .rip = l2_cr };
        if (vmcs_build(&s)) {
            uint64_t cr0 = read_cr0() & ~CR0_TS, cr4 = read_cr4() & ~CR4_PCE;
            w(VMCS_GUEST_CR0, cr0 | CR0_TS);
            w(VMCS_CR0_GUEST_HOST_MASK, CR0_TS);
            w(VMCS_CR0_READ_SHADOW, cr0);
            w(VMCS_GUEST_CR4, cr4 | CR4_PCE);
            w(VMCS_CR4_GUEST_HOST_MASK, CR4_PCE);
            w(VMCS_CR4_READ_SHADOW, cr4);
            if (step(true, EXIT_REASON_CR_ACCESS, l2_cr_mov0, "MOV RBX to CR0 setting TS")) {
                check_u64(ex.qual, 0x300, "MOV to CR0 exit qualification (CR0, MOV to CR, RBX)");
                check_u64(l2_regs.r8, cr0, "L2's MOV from CR0 (shadow TS = 0, guest TS = 1)");
                check_u64(l2_regs.rbx, cr0 | CR0_TS, "MOV to CR0 exit: L2's RBX");
                check_u64(ex.len, 3, "MOV to CR0 exit: instruction length");
                w(VMCS_CR0_READ_SHADOW, cr0 | CR0_TS);
                advance_rip();
            }
            if (step(false, EXIT_REASON_CR_ACCESS, l2_cr_clts, "CLTS with shadow TS = 1")) {
                check_u64(ex.qual, 0x20, "CLTS exit qualification (CR0, access type 2)");
                check_u64(l2_regs.r10, cr0 | CR0_TS, "L2's MOV from CR0 (shadow TS = 1)");
                check_u64(ex.len, 2, "CLTS exit: instruction length");
                w(VMCS_CR0_READ_SHADOW, cr0);
                advance_rip();
            }
            if (step(false, EXIT_REASON_CR_ACCESS, l2_cr_lmsw, "LMSW setting TS")) {
                uint64_t src = (cr0 | CR0_TS) & 0xffff;
                check_u64(ex.qual, 0x30 | (src << 16),
                          "LMSW exit qualification (CR0, access type 3, register operand, source)");
                check_u64(l2_regs.r11, cr0, "L2's MOV from CR0 (shadow TS = 0 again)");
                check_u64(r(VMCS_GUEST_CR0), cr0 | CR0_TS,
                          "GUEST_CR0 after MOV to CR0 without exit (TS owned by L1)");
                check_u64(ex.len, 3, "LMSW exit: instruction length");
                advance_rip();
            }
            if (step(false, EXIT_REASON_CR_ACCESS, l2_cr_mov4, "MOV RCX to CR4 setting PCE")) {
                check_u64(ex.qual, 0x104, "MOV to CR4 exit qualification (CR4, MOV to CR, RCX)");
                check_u64(l2_regs.r9, cr4, "L2's MOV from CR4 (shadow PCE = 0, guest PCE = 1)");
                advance_rip();
            }
            if (step(false, EXIT_REASON_VMCALL, l2_cr_vmcall, "VMCALL after the CR accesses"))
                check_u64(r(VMCS_GUEST_CR4), cr4 | CR4_PCE,
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
    if (test_begin("l2-io-bitmaps") && need_vmx()) {
        struct l2_setup s = { .rip = l2_io, .proc = PROC_USE_IO_BITMAPS };
        if (vmcs_build(&s)) {
            memset(io_bitmap_a, 0, PAGE);
            memset(io_bitmap_b, 0, PAGE);
            set_bit(io_bitmap_a, 0x80);
            set_bit(io_bitmap_b, 0x8080 - 0x8000);
            w(VMCS_IO_BITMAP_A, PA(io_bitmap_a));
            w(VMCS_IO_BITMAP_B, PA(io_bitmap_b));
            if (step(true, EXIT_REASON_IO, l2_io_out80, "OUT %al,$0x80 (bitmap A)")) {
                check_u64(ex.qual, (0x80u << 16) | IO_QUAL_IMMEDIATE,
                          "I/O qualification (size 1, out, immediate, port 0x80)");
                check_u64(ex.len, 2, "OUT exit: instruction length");
                advance_rip();
            }
            if (step(false, EXIT_REASON_IO, l2_io_in8080, "IN %al,(%dx) from 0x8080 (bitmap B)")) {
                check_u64(ex.qual, (0x8080ull << 16) | IO_QUAL_IN,
                          "I/O qualification (size 1, in, DX, port 0x8080)");
                check_u64(ex.len, 1, "IN exit: instruction length");
                l2_regs.rax = (l2_regs.rax & ~0xffull) | 0x42;
                advance_rip();
            }
            if (step(false, EXIT_REASON_IO, l2_io_outw7f, "OUT %ax,(%dx) to 0x7f (covers 0x80)")) {
                check_u64(ex.qual, (0x7full << 16) | 1,
                          "I/O qualification (size 2, out, DX, port 0x7f)");
                check_u64(ex.len, 2, "OUT word exit: instruction length");
                advance_rip();
            }
            step(false, EXIT_REASON_VMCALL, l2_io_vmcall, "VMCALL after the I/O accesses");
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
    struct l2_setup s = { .rip = prog, .exc_bitmap = bitmap };
    char buf[120];
    if (!vmcs_build(&s))
        return;
    w(VMCS_PF_ERROR_CODE_MASK, 2);
    w(VMCS_PF_ERROR_CODE_MATCH, 2);
    if (exits) {
        snprintf(buf, sizeof(buf), "%s: exits", what);
        if (step(true, EXIT_REASON_EXCEPTION_NMI, insn, buf)) {
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
    if (test_begin("l2-pf-mask-match") && need_vmx()) {
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
    if (test_begin("l2-rdtsc-movdr-invlpg") && need_vmx()) {
        struct l2_setup s = { .rip = l2_misc,
                              .proc = PROC_RDTSC_EXITING | PROC_MOV_DR_EXITING |
                                      PROC_INVLPG_EXITING };
        if (vmcs_build(&s)) {
            if (step(true, EXIT_REASON_RDTSC, l2_misc_rdtsc, "RDTSC")) {
                check_u64(ex.len, 2, "RDTSC exit: instruction length");
                l2_regs.rax = 0x1111;
                l2_regs.rdx = 0x2222;
                advance_rip();
            }
            if (step(false, EXIT_REASON_DR_ACCESS, l2_misc_movdr7, "MOV RDX <- DR7")) {
                check_u64(ex.qual, 0x217, "MOV from DR7 qualification (DR7, from DR, RDX)");
                check_u64(ex.len, 3, "MOV DR exit: instruction length");
                check_u64(l2_regs.rax, 0x1111, "L2's RAX after the emulated RDTSC");
                l2_regs.rdx = 0x400;
                advance_rip();
            }
            if (step(false, EXIT_REASON_DR_ACCESS, l2_misc_movdr1, "MOV DR1 <- RBX")) {
                check_u64(ex.qual, 0x301, "MOV to DR1 qualification (DR1, to DR, RBX)");
                check_u64(l2_regs.rbx, 0x11, "MOV to DR1 exit: L2's RBX");
                advance_rip();
            }
            if (step(false, EXIT_REASON_INVLPG, l2_misc_invlpg, "INVLPG")) {
                check_u64(ex.qual, 0x12345000, "INVLPG qualification (linear address)");
                check_u64(ex.len, 3, "INVLPG exit: instruction length");
                advance_rip();
            }
            step(false, EXIT_REASON_VMCALL, l2_misc_vmcall, "VMCALL after INVLPG");
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
    if (test_begin("l2-protected-mode") && need_vmx()) {
        struct l2_setup s = { .rip = l2_pm };
        for (uint32_t i = 0; i < 1024; i++)
            l2_pd32[i] = (i << 22) | 0x83 | (i >= 768 ? 0x18 : 0);  /* P RW PS, PCD|PWT >= 3G */
        if (vmcs_build(&s)) {
            w(VMCS_ENTRY_CTLS, r(VMCS_ENTRY_CTLS) & ~ENTRY_IA32E_MODE_GUEST);
            w(VMCS_GUEST_CR4, (read_cr4() & ~CR4_PAE) | CR4_PSE);
            w(VMCS_CR4_READ_SHADOW, (read_cr4() & ~CR4_PAE) | CR4_PSE);
            w(VMCS_GUEST_CR3, PA(l2_pd32));
            w(VMCS_GUEST_CS_SELECTOR, SEL_CODE32);
            w(VMCS_GUEST_CS_AR, VMX_AR_CODE32);
            w(VMCS_GUEST_RSP, L2_STACK_TOP);
            if (step(true, EXIT_REASON_CPUID, l2_pm_cpuid, "CPUID in 32-bit protected mode")) {
                check_u64(ex.len, 2, "CPUID exit: instruction length");
                check_u64(l2_regs.rax & 0xffffffff, 0, "CPUID exit: L2's EAX");
                l2_regs.rax = 0x32;
                advance_rip();
            }
            if (step(false, EXIT_REASON_VMCALL, l2_pm_vmcall, "VMCALL in 32-bit protected mode")) {
                check_u64(ex.len, 3, "VMCALL exit: instruction length");
                check_u64(l2_regs.rsi & 0xffffffff, 0x32, "L2's ESI (emulated CPUID EAX)");
                check_u64(r(VMCS_GUEST_CS_SELECTOR), SEL_CODE32, "GUEST_CS selector");
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
 * happened; the BSP checks afterwards. vm_enter_mp saves nothing of L2 (no shared state).
 */
uint64_t vm_enter_mp(int launch);
extern char vm_exit_mp[], l2_mp[], l2_mp_cpuid[], l2_mp_vmcall[];
asm(".text\n"
    "  .globl vm_enter_mp, vm_exit_mp\n"
    "vm_enter_mp:\n"
    "  push %rbx\n  push %rbp\n  push %r12\n  push %r13\n  push %r14\n  push %r15\n"
    "  mov %rsp, %rax\n"
    "  mov $0x6c14, %edx\n"                 /* VMCS_HOST_RSP */
    "  vmwrite %rax, %rdx\n"
    "  pushfq\n  orq $0x8d5, (%rsp)\n  popfq\n"
    "  test %edi, %edi\n"
    "  jnz 1f\n"
    "10: vmresume\n"
    "  jmp 12f\n"
    "1:\n"
    "11: vmlaunch\n"
    "12:\n"
    "  pushfq\n  pop %rax\n"
    "  jmp 20f\n"
    "  .pushsection .extable, \"a\"\n  .balign 8\n"
    "  .quad 10b, 12b\n  .quad 11b, 12b\n"
    "  .popsection\n"
    "vm_exit_mp:\n"
    "  mov $-1, %rax\n"
    "20:\n"
    "  pop %r15\n  pop %r14\n  pop %r13\n  pop %r12\n  pop %rbp\n  pop %rbx\n"
    "  ret\n"
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
    uint64_t gdt[6];
    struct tss64 tss;
    struct dtr gdtr;
    int stage;                      /* how far it got; MP_DONE when all went well */
    int vmx_err;                    /* outcome of the failing step */
    uint32_t reason[2];
    uint64_t rip[2], len0;
    int vmwrite_errors;            /* VMWRITE/VMREAD failures */
} __attribute__((aligned(PAGE)));
static struct mp_cpu mp_cpus[MAX_CPUS];
#define MP_DONE 100

static void mw_(struct mp_cpu *m, uint32_t enc, uint64_t val)
{
    if (vmwrite_reg(enc, val) != VMX_SUCCEED)
        m->vmwrite_errors++;
}
static uint64_t mr_(struct mp_cpu *m, uint32_t enc)
{
    uint64_t v = ~0ull;
    if (vmread_reg(enc, &v) != VMX_SUCCEED)
        m->vmwrite_errors++;
    return v;
}
#define mw(e, v) mw_(m, e, v)
#define mr(e) mr_(m, e)

static void mp_worker(void *arg)
{
    struct mp_cpu *m = arg;
    bool bsp = m == &mp_cpus[0];
    uint64_t fl;
    asm volatile("pushfq; pop %0; cli" : "=r"(fl) :: "memory");
    m->stage = 1;
    uint64_t tss_base = (uint64_t)(uintptr_t)&m->tss;
    if (bsp) {
        tss_base = (uint64_t)(uintptr_t)&l1_tss;
        m->gdtr = l1_gdtr;
    } else {
        struct dtr cur;
        sgdt(&cur);
        memcpy(m->gdt, (void *)(uintptr_t)cur.base, 4 * 8);
        memset(&m->tss, 0, sizeof(m->tss));
        m->tss.iomap_base = sizeof(m->tss);
        uint64_t limit = sizeof(m->tss) - 1;
        m->gdt[SEL_TSS / 8] = (limit & 0xffff) | ((tss_base & 0xffffff) << 16) | (0x89ull << 40) |
                              (((limit >> 16) & 0xf) << 48) | (((tss_base >> 24) & 0xff) << 56);
        m->gdt[SEL_TSS / 8 + 1] = tss_base >> 32;
        m->gdtr.limit = sizeof(m->gdt) - 1;
        m->gdtr.base = (uint64_t)(uintptr_t)m->gdt;
        lgdt(&m->gdtr);
        asm volatile("ltr %w0" : : "r"((uint16_t)SEL_TSS) : "memory");
        uint64_t fc = 0;
        rdmsr_safe(MSR_IA32_FEATURE_CONTROL, &fc);
        if (!(fc & FEATURE_CONTROL_LOCK))
            wrmsr_safe(MSR_IA32_FEATURE_CONTROL,
                       fc | FEATURE_CONTROL_LOCK | FEATURE_CONTROL_VMX_OUTSIDE_SMX);
        m->stage = 2;
        if (write_cr4_safe(read_cr4() | CR4_VMXE) != NO_EXCEPTION)
            goto out;
        memset(m->vmxon, 0, PAGE);
        *(volatile uint32_t *)m->vmxon = revision;
        m->stage = 3;
        if ((m->vmx_err = vmx_outcome(vmxon(vmx_pa(m->vmxon)))) != VMX_SUCCEED)
            goto out;
    }
    struct dtr idtr;
    sidt(&idtr);
    m->stage = 4;
    memset(m->vmcs, 0, PAGE);
    *(volatile uint32_t *)m->vmcs = revision;
    if ((m->vmx_err = vmx_outcome(vmclear(vmx_pa(m->vmcs)))) != VMX_SUCCEED)
        goto out_off;
    m->stage = 5;
    if ((m->vmx_err = vmx_outcome(vmptrld(vmx_pa(m->vmcs)))) != VMX_SUCCEED)
        goto out_off;
    m->stage = 6;
    mw(VMCS_PIN_BASED_CTLS, vmx_ctl_value(cap_pin, 0));
    uint32_t proc = vmx_ctl_value(cap_proc, 0);
    mw(VMCS_PROC_BASED_CTLS, proc);
    if (proc & PROC_SECONDARY_CONTROLS)
        mw(VMCS_SECONDARY_PROC_CTLS, 0);
    mw(VMCS_EXIT_CTLS, vmx_ctl_value(cap_exit, EXIT_HOST_ADDR_SPACE_SIZE));
    mw(VMCS_ENTRY_CTLS, vmx_ctl_value(cap_entry, ENTRY_IA32E_MODE_GUEST));
    static const uint32_t zero_f[] = {
        VMCS_EXCEPTION_BITMAP, VMCS_PF_ERROR_CODE_MASK, VMCS_PF_ERROR_CODE_MATCH,
        VMCS_CR3_TARGET_COUNT, VMCS_EXIT_MSR_STORE_COUNT, VMCS_EXIT_MSR_LOAD_COUNT,
        VMCS_ENTRY_MSR_LOAD_COUNT, VMCS_ENTRY_INTR_INFO, VMCS_TSC_OFFSET,
        VMCS_CR0_GUEST_HOST_MASK, VMCS_CR4_GUEST_HOST_MASK, VMCS_GUEST_IA32_DEBUGCTL,
        VMCS_GUEST_SYSENTER_CS, VMCS_GUEST_SYSENTER_ESP, VMCS_GUEST_SYSENTER_EIP,
        VMCS_GUEST_INTERRUPTIBILITY, VMCS_GUEST_PENDING_DBG, VMCS_GUEST_LDTR_SELECTOR,
        VMCS_GUEST_LDTR_LIMIT, VMCS_GUEST_LDTR_BASE,
    };
    for (unsigned i = 0; i < ARRAY_SIZE(zero_f); i++)
        mw(zero_f[i], 0);
    mw(VMCS_CR0_READ_SHADOW, read_cr0());
    mw(VMCS_CR4_READ_SHADOW, read_cr4());
    mw(VMCS_HOST_CR0, read_cr0());
    mw(VMCS_HOST_CR3, read_cr3());
    mw(VMCS_HOST_CR4, read_cr4());
    mw(VMCS_HOST_CS_SELECTOR, read_sel(0));
    mw(VMCS_HOST_SS_SELECTOR, read_sel(1));
    mw(VMCS_HOST_DS_SELECTOR, read_sel(2));
    mw(VMCS_HOST_ES_SELECTOR, read_sel(3));
    mw(VMCS_HOST_FS_SELECTOR, read_sel(4));
    mw(VMCS_HOST_GS_SELECTOR, read_sel(5));
    mw(VMCS_HOST_TR_SELECTOR, read_sel(6));
    mw(VMCS_HOST_FS_BASE, rdmsr(MSR_FS_BASE));
    mw(VMCS_HOST_GS_BASE, rdmsr(MSR_GS_BASE));
    mw(VMCS_HOST_TR_BASE, tss_base);
    mw(VMCS_HOST_GDTR_BASE, m->gdtr.base);
    mw(VMCS_HOST_IDTR_BASE, idtr.base);
    mw(VMCS_HOST_SYSENTER_CS, rdmsr(MSR_IA32_SYSENTER_CS));
    mw(VMCS_HOST_SYSENTER_ESP, rdmsr(MSR_IA32_SYSENTER_ESP));
    mw(VMCS_HOST_SYSENTER_EIP, rdmsr(MSR_IA32_SYSENTER_EIP));
    mw(VMCS_HOST_RIP, PA(vm_exit_mp));
    mw(VMCS_GUEST_CR0, read_cr0());
    mw(VMCS_GUEST_CR3, read_cr3());
    mw(VMCS_GUEST_CR4, read_cr4());
    mw(VMCS_GUEST_DR7, 0x400);
    mw(VMCS_GUEST_RSP, PA(m->stack + PAGE));
    mw(VMCS_GUEST_RIP, PA(l2_mp));
    mw(VMCS_GUEST_RFLAGS, 0x2);
    for (uint32_t i = 0; i < 6; i++) {      /* ES CS SS DS FS GS: selector, limit, AR, base */
        bool cs = i == 1;
        mw(VMCS_GUEST_ES_SELECTOR + 2 * i, cs ? SEL_CODE64 : SEL_DATA);
        mw(VMCS_GUEST_ES_LIMIT + 2 * i, 0xffffffff);
        mw(VMCS_GUEST_ES_AR + 2 * i, cs ? VMX_AR_CODE64 : VMX_AR_DATA);
        mw(VMCS_GUEST_ES_BASE + 2 * i, 0);
    }
    mw(VMCS_GUEST_TR_SELECTOR, SEL_TSS);
    mw(VMCS_GUEST_TR_LIMIT, sizeof(struct tss64) - 1);
    mw(VMCS_GUEST_TR_AR, VMX_AR_TSS64_BUSY);
    mw(VMCS_GUEST_TR_BASE, tss_base);
    mw(VMCS_GUEST_LDTR_AR, VMX_AR_UNUSABLE);
    mw(VMCS_GUEST_GDTR_BASE, m->gdtr.base);
    mw(VMCS_GUEST_GDTR_LIMIT, m->gdtr.limit);
    mw(VMCS_GUEST_IDTR_BASE, PA(l2_idt));
    mw(VMCS_GUEST_IDTR_LIMIT, sizeof(l2_idt) - 1);
    mw(VMCS_GUEST_ACTIVITY_STATE, GUEST_ACTIVITY_ACTIVE);
    mw(VMCS_LINK_POINTER, ~0ull);
    m->stage = 7;
    for (int n = 0; n < 2; n++) {
        uint64_t f = vm_enter_mp(n == 0);
        lgdt(&m->gdtr);
        lidt(&idtr);
        if (f != VM_EXITED) {
            m->vmx_err = vmx_outcome(vmx_result(f));
            goto out_clear;
        }
        m->reason[n] = mr(VMCS_EXIT_REASON);
        m->rip[n] = mr(VMCS_GUEST_RIP);
        if (n == 0) {
            m->len0 = mr(VMCS_EXIT_INSTRUCTION_LEN);
            mw(VMCS_GUEST_RIP, m->rip[0] + m->len0);
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
    if (test_begin("l2-all-cpus") && need_vmx()) {
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
                            m->vmwrite_errors))
                continue;
            test_check(m->vmwrite_errors == 0, "CPU %d: %d VMWRITEs failed", i, m->vmwrite_errors);
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

void test_main(void)
{
    vmx_init();
    t_msr_bitmap();
    t_cr_masks();
    t_io_bitmaps();
    t_pf_mask_match();
    t_misc_exits();
    t_protected_mode();
    t_all_cpus();
    if (in_vmx) {
        vmclear(vmx_pa(vmcs_page));
        vmxoff();
    }
}
