/* l1.h - scaffolding for L1 test hypervisors (lhv2, lhv3, lhv4): kernels that use VMX themselves
 * and run L2 guests. Include after lib.h and vmx.h; the code is in l1.c, linked only into kernels
 * that use it (see the Makefile's LIB_TOPICS).
 *
 * What it gives, all on the BSP unless said otherwise:
 *  - L1's descriptor tables: the library's GDT entries plus a 64-bit TSS loaded into TR (the
 *    library never loads TR, and VM entry refuses HOST_TR_SELECTOR = 0), per CPU (struct
 *    l1_tables; l1_bsp is the BSP's);
 *  - VMX operation: l1_init() reads the capability MSRs (TRUE ones when IA32_VMX_BASIC[55]),
 *    l1_vmxon() enters VMX operation;
 *  - a VMCS builder: vmcs_build() VMCLEARs and VMPTRLDs a page and writes every field of a valid
 *    VMCS for an L2 described by struct l2_setup (64-bit flat CPL 0 by default, on L1's CR3, its
 *    stack l2_stack, IF = 0), with controls from the capability MSRs (required bits plus what
 *    the setup asks for); the host state is this kernel as it runs, HOST_RIP = vm_exit_stub;
 *  - VM entries: l2_enter() loads L2's GPRs (l2_regs), VMLAUNCHes or VMRESUMEs, and after a VM
 *    exit saves them back and reads the exit information into `ex`; run_expect() and
 *    enter_expect_fail() turn the outcome into test checks.
 */
#ifndef GUEST_L1_H
#define GUEST_L1_H

#include "lib.h"
#include "vmx.h"

#define PAGE 4096
#define U64(x) ((unsigned long long)(x))
#define PA(p) ((uint64_t)(uintptr_t)(p))

/* ---------------------------------------------------------------------------------------------
 * Descriptor tables
 */
#define SEL_TSS 0x20                /* after the library's null, code32, data, code64 */

struct tss64 {
    uint32_t rsvd0;
    uint64_t rsp[3];
    uint64_t rsvd1;
    uint64_t ist[7];
    uint64_t rsvd2;
    uint16_t rsvd3, iomap_base;
} __attribute__((packed));

/* SGDT/SIDT image; the padding puts base on an 8-byte boundary. */
struct dtr { uint16_t pad[3]; uint16_t limit; uint64_t base; } __attribute__((packed, aligned(8)));

struct idt_gate {
    uint16_t off0, sel;
    uint8_t ist, type;
    uint16_t off1;
    uint32_t off2, zero;
} __attribute__((packed));

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

enum { SREG_CS, SREG_SS, SREG_DS, SREG_ES, SREG_FS, SREG_GS, SREG_TR };
static inline uint16_t read_sel(int which)
{
    uint16_t s = 0;
    switch (which) {
    case SREG_CS: asm volatile("mov %%cs, %0" : "=r"(s)); break;
    case SREG_SS: asm volatile("mov %%ss, %0" : "=r"(s)); break;
    case SREG_DS: asm volatile("mov %%ds, %0" : "=r"(s)); break;
    case SREG_ES: asm volatile("mov %%es, %0" : "=r"(s)); break;
    case SREG_FS: asm volatile("mov %%fs, %0" : "=r"(s)); break;
    case SREG_GS: asm volatile("mov %%gs, %0" : "=r"(s)); break;
    default: asm volatile("str %0" : "=r"(s)); break;
    }
    return s;
}

/* One CPU's L1 tables. idtr is the library's IDT (SIDT); VM exits cut both limits to 0xFFFF, so
 * l2_enter() reloads gdtr and idtr after each. */
struct l1_tables {
    uint64_t gdt[6];                /* null, code32, data, code64, TSS (two slots) */
    struct tss64 tss;
    struct dtr gdtr, idtr;
};
extern struct l1_tables l1_bsp;

/* Fill t from the current GDT, add its TSS, LGDT + LTR, SIDT. Any CPU. */
void l1_tables_load(struct l1_tables *t);

/* L2's own IDT (64-bit interrupt gates, CS = SEL_CODE64); empty until the kernel sets gates:
 * l2_idt_init() points all 256 at one handler, l2_idt_set() one vector. */
extern struct idt_gate l2_idt[256];
void l2_idt_init(void *handler);
/* A handler for vectors L2 does not expect: RAX = L2_MARK_UNEXPECTED, RBX, RCX, RDX = the three
 * words on top of the stack (RIP, CS, RFLAGS without an error code), VMCALL. */
extern char l2_unexpected_handler[];
#define L2_MARK_UNEXPECTED 0x0bad0ull
void l2_idt_set(int vector, void *handler);
/* The IDT every L2 starts with (vmcs_build): l2_idt after l1_init(); a kernel may point it at
 * L1's own (l1_bsp.idtr). */
extern struct dtr l2_idtr;

/* IRET to the instruction after the call (clobbers RAX, RCX): lifts NMI blocking, or in VMX non-root
 * operation what the controls say IRET lifts (SDM 26.3, 27.7.1). Callable from L1 and from L2 code. */
void iret_to_self(void);

/* ---------------------------------------------------------------------------------------------
 * VMX operation
 */
extern bool has_vmx, in_vmx;                /* CPUID.1:ECX.VMX; the BSP did VMXON */
extern uint64_t cap_pin, cap_proc, cap_exit, cap_entry;    /* TRUE_* MSRs when they exist */
extern bool has_proc2;                      /* secondary controls allowed, CTLS2 readable */
extern uint64_t cap_proc2;                  /* IA32_VMX_PROCBASED_CTLS2, 0 without has_proc2 */
extern uint32_t revision;                   /* VMCS revision identifier */

static inline bool proc2_allowed(uint32_t bits)
{
    return has_proc2 && vmx_ctl_allowed(cap_proc2, bits);
}

/* CPUID check, l1_tables_load(&l1_bsp), capability MSRs (INFO line). False without VMX. */
bool l1_init(void);
/* Lock IA32_FEATURE_CONTROL with VMX outside SMX if unlocked, set CR4.VMXE. Any CPU. */
bool l1_enable_vmx(void);
/* l1_enable_vmx() and VMXON on the BSP's VMXON region; sets in_vmx (INFO line on failure). */
bool l1_vmxon(void);
/* A test's precondition: VMX present and the BSP in VMX operation (a failed check if not). */
bool l1_need_vmx(void);
/* End of the kernel: VMCLEAR of the VMCSs vmcs_build() used, VMXOFF (if in VMX operation). */
void l1_done(void);

/* ---------------------------------------------------------------------------------------------
 * VMCS fields: vmw()/vmr() count failures in vmcs_log (BSP); a CPU of its own passes its own log.
 */
struct vmcs_log {
    int errors;
    uint32_t first_bad;             /* encoding of the first field that failed */
};
extern struct vmcs_log vmcs_log;

void vmcs_write(struct vmcs_log *l, uint32_t enc, uint64_t val);
uint64_t vmcs_read(struct vmcs_log *l, uint32_t enc);  /* 0xdeadbeefdeadbeef if it failed */
static inline void vmw(uint32_t enc, uint64_t val) { vmcs_write(&vmcs_log, enc, val); }
static inline uint64_t vmr(uint32_t enc) { return vmcs_read(&vmcs_log, enc); }

/* ---------------------------------------------------------------------------------------------
 * L2 set-up
 */
#define L2_STACK_SIZE 8192
extern uint8_t l2_stack[L2_STACK_SIZE];
#define L2_STACK_TOP PA(l2_stack + L2_STACK_SIZE)
#define L2_SYSENTER_CS 0x4321       /* GUEST_SYSENTER_CS: a value L2 can recognise */

#define L1_NVMCS 2                  /* VMCS pages for the BSP (vmcs_build's s->vmcs) */
extern uint8_t l1_vmcs_pages[L1_NVMCS][PAGE];
extern uint8_t l1_msr_bitmap[PAGE];         /* all zero after vmcs_build() */

struct l2_setup {
    uint64_t rip;
    uint64_t rsp;                   /* 0: L2_STACK_TOP */
    uint64_t cr3;                   /* 0: L1's CR3 */
    uint32_t pin, proc, exit, entry;    /* optional controls wanted (required ones are added) */
    uint32_t proc2;                 /* secondary controls ("activate secondary controls" with it) */
    uint32_t exc_bitmap;
    uint64_t eptp;                  /* with PROC2_ENABLE_EPT */
    uint16_t vpid;                  /* with PROC2_ENABLE_VPID */
    bool real_mode;                 /* unrestricted guest in real mode, CS 0x800 (base 0x8000) */
    bool unchecked;                 /* controls as given even if not allowed (absence checks) */
    int vmcs;                       /* vmcs_build: index into l1_vmcs_pages */
    uint64_t host_rip;              /* 0: vm_exit_stub */
};

/* Every field of a valid VMCS for s into the current VMCS, host state from t: no checks, no
 * shared state (any CPU; HOST_RSP is left for the entry stub). */
void vmcs_fill(struct vmcs_log *l, const struct l1_tables *t, const struct l2_setup *s);
/* BSP: VMCLEAR + VMPTRLD of l1_vmcs_pages[s->vmcs], checks the controls against the capability
 * MSRs (unless s->unchecked), clears l2_regs, l2_stack and the MSR bitmap, vmcs_fill(). False (a
 * failed check) when a VMX instruction or VMWRITE failed. */
bool vmcs_build(const struct l2_setup *s);
/* VMPTRLD of l1_vmcs_pages[idx] again (it keeps its launch state). */
bool vmcs_load(int idx);

/* ---------------------------------------------------------------------------------------------
 * Entering L2
 */
/* L2's GPRs: loaded by vm_enter() before VMLAUNCH/VMRESUME, saved by vm_exit_stub. */
struct gregs {
    uint64_t rax, rbx, rcx, rdx, rsi, rdi, rbp, r8, r9, r10, r11, r12, r13, r14, r15;
};
extern struct gregs l2_regs;

/* vm_enter(launch) (assembly): VMWRITE HOST_RSP = its own RSP - vm_host_rsp_bias, load l2_regs,
 * VMLAUNCH (launch != 0) or VMRESUME. Returns VM_EXITED after a VM exit (or a VM-entry failure
 * that loads host state), else RFLAGS after the instruction (VMfail*), with an exception caught
 * through the extable like the vmx.h wrappers. vm_exit_stub is the HOST_RIP that saves L2's GPRs
 * and returns from vm_enter(); vm_exit_probe, placed before it, records RSP and RFLAGS at HOST_RIP
 * (vm_probe_*) and undoes the bias. */
#define VM_EXITED (~0ull)
uint64_t vm_enter(int launch);
extern char vm_exit_stub[], vm_exit_probe[];
extern uint64_t vm_entry_rsp;               /* RSP when vm_enter() wrote HOST_RSP (before bias) */
extern uint64_t vm_host_rsp_bias;           /* vmcs_build() resets it to 0 */
extern uint64_t vm_probe_hits, vm_probe_rsp, vm_probe_rflags;

/* vm_enter_bare(launch) / vm_exit_bare: the same without L2's GPRs (neither loaded nor saved)
 * and without shared state, for several CPUs entering their L2s at once. */
uint64_t vm_enter_bare(int launch);
extern char vm_exit_bare[];

/* After the last VM exit (l2_enter): exit information, and L1's state as the exit left it. */
struct exit_info {
    uint32_t reason, intr_info, intr_err, len, idt_vec, entry_intr;
    uint64_t qual, rip, rsp, rflags;
    uint64_t gpa, gla;              /* EPT violation / misconfiguration only */
};
extern struct exit_info ex;
extern struct dtr exit_gdtr, exit_idtr;
extern uint64_t exit_cr3;

#define ENTER_EXITED 0x20000        /* outcome: a VM exit (or VM-entry failure) to HOST_RIP */
/* VMLAUNCH/VMRESUME: ENTER_EXITED (ex filled in) or the vmx_outcome() of the failure. */
int l2_enter(bool launch);
const char *enter_outcome_name(int o, char *buf, size_t n);
/* Enter L2 and expect a VM exit with this (full) exit reason; false (a check failed) if not. */
bool run_expect(bool launch, uint32_t reason, const char *what);
/* The same, and the exit's GUEST_RIP must be rip (the exiting instruction). */
bool run_expect_at(bool launch, uint32_t reason, const void *rip, const char *what);
/* Enter and expect a VMX failure outcome (no VM exit). */
bool enter_expect_fail(bool launch, int want, const char *what);
/* GUEST_RIP past the exiting instruction. */
static inline void advance_rip(void) { vmw(VMCS_GUEST_RIP, ex.rip + ex.len); }

bool check_u64(uint64_t got, uint64_t want, const char *what);
/* A VMX instruction's outcome (vmx_outcome form) against the expected one. */
bool check_outcome(int o, int want, const char *what);

#endif
