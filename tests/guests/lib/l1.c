/* l1.c - scaffolding for L1 test hypervisors (see l1.h). */
#include "lib.h"
#include "vmx.h"
#include "l1.h"

struct l1_tables l1_bsp __attribute__((aligned(16)));
struct idt_gate l2_idt[256] __attribute__((aligned(16)));
struct dtr l2_idtr;

bool has_vmx, in_vmx;
uint64_t cap_pin, cap_proc, cap_exit, cap_entry, cap_proc2;
bool has_proc2;
uint32_t revision;

static uint8_t vmxon_page[PAGE] __attribute__((aligned(PAGE)));
uint8_t l1_vmcs_pages[L1_NVMCS][PAGE] __attribute__((aligned(PAGE)));
uint8_t l1_msr_bitmap[PAGE] __attribute__((aligned(PAGE)));
uint8_t l2_stack[L2_STACK_SIZE] __attribute__((aligned(16)));

static unsigned vmcs_built;             /* l1_vmcs_pages that vmcs_build() used: bit i */
struct vmcs_log vmcs_log;
struct gregs l2_regs;
uint64_t vm_entry_rsp, vm_host_rsp_bias;
uint64_t vm_probe_hits, vm_probe_rsp, vm_probe_rflags;
struct exit_info ex;
struct dtr exit_gdtr, exit_idtr;
uint64_t exit_cr3;

/* ------------------------------------------------------------------------------------------
 * vm_enter / vm_exit_stub / vm_exit_probe and vm_enter_bare / vm_exit_bare (see l1.h).
 * VM_ENTER (macro): HOST_RSP = %rax, then VMLAUNCH (%edi != 0) or VMRESUME, with the arithmetic
 * flags set right before it so that VMfail* can be told from VMsucceed by the flags alone (as in
 * vmx.h); with load = 1 L2's GPRs are loaded last, as every register is L2's from then on.
 * Falls through with RFLAGS in %rax when the instruction fails (or faults: extable).
 */
asm(".text\n"
    ".macro L2_LOAD\n"
    "  mov l2_regs+0(%rip), %rax\n  mov l2_regs+8(%rip), %rbx\n  mov l2_regs+16(%rip), %rcx\n"
    "  mov l2_regs+24(%rip), %rdx\n  mov l2_regs+32(%rip), %rsi\n  mov l2_regs+40(%rip), %rdi\n"
    "  mov l2_regs+48(%rip), %rbp\n  mov l2_regs+56(%rip), %r8\n  mov l2_regs+64(%rip), %r9\n"
    "  mov l2_regs+72(%rip), %r10\n  mov l2_regs+80(%rip), %r11\n  mov l2_regs+88(%rip), %r12\n"
    "  mov l2_regs+96(%rip), %r13\n  mov l2_regs+104(%rip), %r14\n  mov l2_regs+112(%rip), %r15\n"
    ".endm\n"
    ".macro VM_ENTER load\n"
    "  mov $0x6c14, %edx\n"                 /* VMCS_HOST_RSP */
    "  vmwrite %rax, %rdx\n"
    "  test %edi, %edi\n"
    "  jnz 1f\n"
    "  pushfq\n  orq $0x8d5, (%rsp)\n  popfq\n"
    "  .if \\load\n  L2_LOAD\n  .endif\n"
    "10: vmresume\n"
    "  jmp 12f\n"
    "1:\n"
    "  pushfq\n  orq $0x8d5, (%rsp)\n  popfq\n"
    "  .if \\load\n  L2_LOAD\n  .endif\n"
    "11: vmlaunch\n"
    "12:\n"
    "  pushfq\n  pop %rax\n"
    "  .pushsection .extable, \"a\"\n  .balign 8\n"
    "  .quad 10b, 12b\n  .quad 11b, 12b\n"
    "  .popsection\n"
    ".endm\n"
    ".macro SAVE_CALLEE\n"
    "  push %rbx\n  push %rbp\n  push %r12\n  push %r13\n  push %r14\n  push %r15\n"
    ".endm\n"
    ".macro RESTORE_CALLEE_RET\n"
    "  pop %r15\n  pop %r14\n  pop %r13\n  pop %r12\n  pop %rbp\n  pop %rbx\n"
    "  ret\n"
    ".endm\n"

    "  .globl vm_enter, vm_exit_stub, vm_exit_probe\n"
    "vm_enter:\n"
    "  SAVE_CALLEE\n"
    "  mov %rsp, vm_entry_rsp(%rip)\n"
    "  mov %rsp, %rax\n"
    "  sub vm_host_rsp_bias(%rip), %rax\n"
    "  VM_ENTER 1\n"
    "  jmp 20f\n"
    "vm_exit_probe:\n"                      /* touches no GPR: they are still L2's */
    "  incq vm_probe_hits(%rip)\n"
    "  mov %rsp, vm_probe_rsp(%rip)\n"
    "  pushfq\n  popq vm_probe_rflags(%rip)\n"
    "  add vm_host_rsp_bias(%rip), %rsp\n"
    "vm_exit_stub:\n"
    "  mov %rax, l2_regs+0(%rip)\n  mov %rbx, l2_regs+8(%rip)\n  mov %rcx, l2_regs+16(%rip)\n"
    "  mov %rdx, l2_regs+24(%rip)\n  mov %rsi, l2_regs+32(%rip)\n  mov %rdi, l2_regs+40(%rip)\n"
    "  mov %rbp, l2_regs+48(%rip)\n  mov %r8, l2_regs+56(%rip)\n  mov %r9, l2_regs+64(%rip)\n"
    "  mov %r10, l2_regs+72(%rip)\n  mov %r11, l2_regs+80(%rip)\n  mov %r12, l2_regs+88(%rip)\n"
    "  mov %r13, l2_regs+96(%rip)\n  mov %r14, l2_regs+104(%rip)\n  mov %r15, l2_regs+112(%rip)\n"
    "  mov $-1, %rax\n"
    "20:\n"
    "  RESTORE_CALLEE_RET\n"

    "  .globl vm_enter_bare, vm_exit_bare\n"
    "vm_enter_bare:\n"
    "  SAVE_CALLEE\n"
    "  mov %rsp, %rax\n"
    "  VM_ENTER 0\n"
    "  jmp 20f\n"
    "vm_exit_bare:\n"
    "  mov $-1, %rax\n"
    "20:\n"
    "  RESTORE_CALLEE_RET\n");

/* iret_to_self (l1.h): an IRET frame for the next instruction, same CS, SS, RSP and RFLAGS. */
asm(".text\n"
    "  .globl iret_to_self\n"
    "iret_to_self:\n"
    "  mov %rsp, %rax\n  mov %ss, %ecx\n  push %rcx\n  push %rax\n  pushfq\n"
    "  mov %cs, %ecx\n  push %rcx\n  lea 1f(%rip), %rax\n  push %rax\n  iretq\n"
    "1: ret\n");

/* L2 code, runs in L2 on l2_idt */
asm(".text\n"
    "  .balign 16\n"
    "  .globl l2_unexpected_handler\n"
    "l2_unexpected_handler:\n"
    "  mov $0x0bad0, %eax\n"                    /* L2_MARK_UNEXPECTED */
    "  mov (%rsp), %rbx\n  mov 8(%rsp), %rcx\n  mov 16(%rsp), %rdx\n"
    "  vmcall\n"
    "  ud2\n");
_Static_assert(L2_MARK_UNEXPECTED == 0x0bad0, "l2_unexpected_handler's marker");

_Static_assert(sizeof(struct gregs) == 15 * 8, "vm_enter's offsets into l2_regs");

/* ------------------------------------------------------------------------------------------
 * Descriptor tables
 */
void l1_tables_load(struct l1_tables *t)
{
    struct dtr cur;
    sgdt(&cur);
    memcpy(t->gdt, phys(cur.base), 4 * 8);     /* null, code32, data, code64 */
    memset(&t->tss, 0, sizeof(t->tss));
    t->tss.iomap_base = sizeof(t->tss);        /* no I/O permission bitmap */
    uint64_t base = PA(&t->tss), limit = sizeof(t->tss) - 1;
    t->gdt[SEL_TSS / 8] = (limit & 0xffff) | ((base & 0xffffff) << 16) | (0x89ull << 40) |
                          (((limit >> 16) & 0xf) << 48) | (((base >> 24) & 0xff) << 56);
    t->gdt[SEL_TSS / 8 + 1] = base >> 32;
    t->gdtr.limit = sizeof(t->gdt) - 1;
    t->gdtr.base = PA(t->gdt);
    lgdt(&t->gdtr);
    asm volatile("ltr %w0" : : "r"((uint16_t)SEL_TSS) : "memory");
    sidt(&t->idtr);
}

void l2_idt_init(void *handler)
{
    for (int v = 0; v < 256; v++)
        l2_idt_set(v, handler);
}

void l2_idt_set(int v, void *handler)
{
    uint64_t a = PA(handler);
    l2_idt[v].off0 = a & 0xffff;
    l2_idt[v].sel = SEL_CODE64;
    l2_idt[v].ist = 0;
    l2_idt[v].type = 0x8e;                      /* present, DPL 0, 64-bit interrupt gate */
    l2_idt[v].off1 = (a >> 16) & 0xffff;
    l2_idt[v].off2 = a >> 32;
    l2_idt[v].zero = 0;
}

/* ------------------------------------------------------------------------------------------
 * VMX operation
 */
bool l1_init(void)
{
    has_vmx = cpuid(1).c & CPUID1_ECX_VMX;
    if (!has_vmx) {
        info("no VMX (CPUID.1:ECX.VMX clear)");
        return false;
    }
    l1_tables_load(&l1_bsp);
    l2_idtr.limit = sizeof(l2_idt) - 1;
    l2_idtr.base = PA(l2_idt);

    uint64_t basic = rdmsr(MSR_IA32_VMX_BASIC);
    bool tr = basic & VMX_BASIC_TRUE_CTLS;
    revision = VMX_BASIC_REVISION(basic);
    cap_pin = rdmsr(tr ? MSR_IA32_VMX_TRUE_PINBASED_CTLS : MSR_IA32_VMX_PINBASED_CTLS);
    cap_proc = rdmsr(tr ? MSR_IA32_VMX_TRUE_PROCBASED_CTLS : MSR_IA32_VMX_PROCBASED_CTLS);
    cap_exit = rdmsr(tr ? MSR_IA32_VMX_TRUE_EXIT_CTLS : MSR_IA32_VMX_EXIT_CTLS);
    cap_entry = rdmsr(tr ? MSR_IA32_VMX_TRUE_ENTRY_CTLS : MSR_IA32_VMX_ENTRY_CTLS);
    /* CTLS2 exists only when "activate secondary controls" may be 1 (SDM A.3.3) */
    has_proc2 = vmx_ctl_allowed(cap_proc, PROC_SECONDARY_CONTROLS) &&
                rdmsr_safe(MSR_IA32_VMX_PROCBASED_CTLS2, &cap_proc2) == NO_EXCEPTION;
    if (!has_proc2)
        cap_proc2 = 0;
    info("controls from %s MSRs: pin 0x%016llx proc 0x%016llx exit 0x%016llx entry 0x%016llx",
         tr ? "TRUE" : "non-TRUE", U64(cap_pin), U64(cap_proc), U64(cap_exit), U64(cap_entry));
    return true;
}

bool l1_enable_vmx(void)
{
    uint64_t fc = 0;
    rdmsr_safe(MSR_IA32_FEATURE_CONTROL, &fc);
    if (!(fc & FEATURE_CONTROL_LOCK))
        wrmsr_safe(MSR_IA32_FEATURE_CONTROL,
                   fc | FEATURE_CONTROL_LOCK | FEATURE_CONTROL_VMX_OUTSIDE_SMX);
    return write_cr4_safe(read_cr4() | CR4_VMXE) == NO_EXCEPTION;
}

bool l1_vmxon(void)
{
    if (!l1_enable_vmx()) {
        info("setting CR4.VMXE faulted");
        return false;
    }
    vmx_region_init(vmxon_page, revision);
    int r = vmxon(vmx_pa(vmxon_page));
    char buf[48];
    in_vmx = r == VMX_SUCCEED;
    if (!in_vmx)
        info("VMXON: %s", vmx_outcome_name(vmx_outcome(r), buf, sizeof(buf)));
    return in_vmx;
}

void l1_done(void)
{
    if (!in_vmx)
        return;
    for (int i = 0; i < L1_NVMCS; i++)
        if (vmcs_built & (1u << i))
            vmclear(vmx_pa(l1_vmcs_pages[i]));
    vmxoff();
    in_vmx = false;
}

bool l1_need_vmx(void)
{
    return test_check(has_vmx, "no VMX (CPUID.1:ECX.VMX clear)") &&
           test_check(in_vmx, "not in VMX operation (VMXON failed)");
}

/* ------------------------------------------------------------------------------------------
 * VMCS construction
 */
void vmcs_write(struct vmcs_log *l, uint32_t enc, uint64_t val)
{
    if (vmwrite_reg(enc, val) != VMX_SUCCEED && l->errors++ == 0)
        l->first_bad = enc;
}

uint64_t vmcs_read(struct vmcs_log *l, uint32_t enc)
{
    uint64_t v = 0xdeadbeefdeadbeefull;
    if (vmread_reg(enc, &v) != VMX_SUCCEED && l->errors++ == 0)
        l->first_bad = enc;
    return v;
}

/* ES, SS, DS, FS, GS: the data segments, set alike */
static const uint32_t data_sel_f[] = { VMCS_GUEST_ES_SELECTOR, VMCS_GUEST_SS_SELECTOR,
                                       VMCS_GUEST_DS_SELECTOR, VMCS_GUEST_FS_SELECTOR,
                                       VMCS_GUEST_GS_SELECTOR };
static const uint32_t data_lim_f[] = { VMCS_GUEST_ES_LIMIT, VMCS_GUEST_SS_LIMIT,
                                       VMCS_GUEST_DS_LIMIT, VMCS_GUEST_FS_LIMIT,
                                       VMCS_GUEST_GS_LIMIT };
static const uint32_t data_ar_f[] = { VMCS_GUEST_ES_AR, VMCS_GUEST_SS_AR, VMCS_GUEST_DS_AR,
                                      VMCS_GUEST_FS_AR, VMCS_GUEST_GS_AR };
static const uint32_t data_base_f[] = { VMCS_GUEST_ES_BASE, VMCS_GUEST_SS_BASE,
                                        VMCS_GUEST_DS_BASE, VMCS_GUEST_FS_BASE,
                                        VMCS_GUEST_GS_BASE };

/* "activate secondary controls" is forced on with s->proc2 even when not allowed, so that an
 * absence check (s->unchecked) reaches the VM entry that must refuse it. */
static uint32_t proc_wanted(const struct l2_setup *s)
{
    return s->proc | (s->proc2 ? PROC_SECONDARY_CONTROLS : 0);
}
static uint32_t entry_wanted(const struct l2_setup *s)
{
    return s->entry | (s->real_mode ? 0 : ENTRY_IA32E_MODE_GUEST);
}

void vmcs_fill(struct vmcs_log *l, const struct l1_tables *t, const struct l2_setup *s)
{
#define W(enc, val) vmcs_write(l, enc, val)
    uint32_t proc = vmx_ctl_value(cap_proc, proc_wanted(s)) |
                    (s->proc2 ? PROC_SECONDARY_CONTROLS : 0);
    if (proc & PROC_SECONDARY_CONTROLS)
        W(VMCS_SECONDARY_PROC_CTLS, s->unchecked ? s->proc2 : vmx_ctl_value(cap_proc2, s->proc2));
    /* absence checks: the fields of a feature not supported need not exist (VMfailValid(12)) */
    if ((s->proc2 & PROC2_ENABLE_EPT) && s->unchecked)
        vmwrite_reg(VMCS_EPT_POINTER, s->eptp);
    else if (s->proc2 & PROC2_ENABLE_EPT)
        W(VMCS_EPT_POINTER, s->eptp);
    if ((s->proc2 & PROC2_ENABLE_VPID) && s->unchecked)
        vmwrite_reg(VMCS_VPID, s->vpid);
    else if (s->proc2 & PROC2_ENABLE_VPID)
        W(VMCS_VPID, s->vpid);

    /* controls */
    W(VMCS_PIN_BASED_CTLS, vmx_ctl_value(cap_pin, s->pin));
    W(VMCS_PROC_BASED_CTLS, proc);
    W(VMCS_EXIT_CTLS, vmx_ctl_value(cap_exit, s->exit | EXIT_HOST_ADDR_SPACE_SIZE));
    W(VMCS_ENTRY_CTLS, vmx_ctl_value(cap_entry, entry_wanted(s)));
    W(VMCS_EXCEPTION_BITMAP, s->exc_bitmap);
    W(VMCS_PF_ERROR_CODE_MASK, 0);
    W(VMCS_PF_ERROR_CODE_MATCH, 0);
    W(VMCS_CR3_TARGET_COUNT, 0);
    W(VMCS_EXIT_MSR_STORE_COUNT, 0);
    W(VMCS_EXIT_MSR_LOAD_COUNT, 0);
    W(VMCS_ENTRY_MSR_LOAD_COUNT, 0);
    W(VMCS_ENTRY_INTR_INFO, 0);
    W(VMCS_ENTRY_EXCEPTION_ERROR_CODE, 0);
    W(VMCS_ENTRY_INSTRUCTION_LEN, 0);
    W(VMCS_TSC_OFFSET, 0);
    W(VMCS_CR0_GUEST_HOST_MASK, 0);
    W(VMCS_CR4_GUEST_HOST_MASK, 0);
    W(VMCS_CR0_READ_SHADOW, read_cr0());
    W(VMCS_CR4_READ_SHADOW, read_cr4());
    W(VMCS_MSR_BITMAP, PA(l1_msr_bitmap));

    /* host state: this kernel as it runs now */
    W(VMCS_HOST_CR0, read_cr0());
    W(VMCS_HOST_CR3, read_cr3());
    W(VMCS_HOST_CR4, read_cr4());
    W(VMCS_HOST_CS_SELECTOR, read_sel(SREG_CS));
    W(VMCS_HOST_SS_SELECTOR, read_sel(SREG_SS));
    W(VMCS_HOST_DS_SELECTOR, read_sel(SREG_DS));
    W(VMCS_HOST_ES_SELECTOR, read_sel(SREG_ES));
    W(VMCS_HOST_FS_SELECTOR, read_sel(SREG_FS));
    W(VMCS_HOST_GS_SELECTOR, read_sel(SREG_GS));
    W(VMCS_HOST_TR_SELECTOR, read_sel(SREG_TR));
    W(VMCS_HOST_FS_BASE, rdmsr(MSR_FS_BASE));
    W(VMCS_HOST_GS_BASE, rdmsr(MSR_GS_BASE));
    W(VMCS_HOST_TR_BASE, PA(&t->tss));
    W(VMCS_HOST_GDTR_BASE, t->gdtr.base);
    W(VMCS_HOST_IDTR_BASE, t->idtr.base);
    W(VMCS_HOST_SYSENTER_CS, rdmsr(MSR_IA32_SYSENTER_CS));
    W(VMCS_HOST_SYSENTER_ESP, rdmsr(MSR_IA32_SYSENTER_ESP));
    W(VMCS_HOST_SYSENTER_EIP, rdmsr(MSR_IA32_SYSENTER_EIP));
    W(VMCS_HOST_RSP, 0);                    /* the entry stub writes it */
    W(VMCS_HOST_RIP, s->host_rip ? s->host_rip : PA(vm_exit_stub));

    /* guest state: 64-bit flat, CPL 0, L1's GDT and TSS */
    W(VMCS_GUEST_CR0, read_cr0());
    W(VMCS_GUEST_CR3, s->cr3 ? s->cr3 : read_cr3());
    W(VMCS_GUEST_CR4, read_cr4());
    W(VMCS_GUEST_DR7, 0x400);
    W(VMCS_GUEST_RSP, s->rsp ? s->rsp : L2_STACK_TOP);
    W(VMCS_GUEST_RIP, s->rip);
    W(VMCS_GUEST_RFLAGS, 0x2);
    for (unsigned i = 0; i < ARRAY_SIZE(data_sel_f); i++) {
        W(data_sel_f[i], SEL_DATA);
        W(data_lim_f[i], 0xffffffff);
        W(data_ar_f[i], VMX_AR_DATA);
        W(data_base_f[i], 0);
    }
    W(VMCS_GUEST_CS_SELECTOR, SEL_CODE64);
    W(VMCS_GUEST_CS_LIMIT, 0xffffffff);
    W(VMCS_GUEST_CS_AR, VMX_AR_CODE64);
    W(VMCS_GUEST_CS_BASE, 0);
    W(VMCS_GUEST_TR_SELECTOR, SEL_TSS);
    W(VMCS_GUEST_TR_LIMIT, sizeof(t->tss) - 1);
    W(VMCS_GUEST_TR_AR, VMX_AR_TSS64_BUSY);
    W(VMCS_GUEST_TR_BASE, PA(&t->tss));
    W(VMCS_GUEST_LDTR_SELECTOR, 0);
    W(VMCS_GUEST_LDTR_LIMIT, 0);
    W(VMCS_GUEST_LDTR_AR, VMX_AR_UNUSABLE);
    W(VMCS_GUEST_LDTR_BASE, 0);
    W(VMCS_GUEST_GDTR_BASE, t->gdtr.base);
    W(VMCS_GUEST_GDTR_LIMIT, t->gdtr.limit);
    W(VMCS_GUEST_IDTR_BASE, l2_idtr.base);
    W(VMCS_GUEST_IDTR_LIMIT, l2_idtr.limit);
    W(VMCS_GUEST_IA32_DEBUGCTL, 0);
    W(VMCS_GUEST_SYSENTER_CS, L2_SYSENTER_CS);
    W(VMCS_GUEST_SYSENTER_ESP, 0);
    W(VMCS_GUEST_SYSENTER_EIP, 0);
    W(VMCS_GUEST_INTERRUPTIBILITY, 0);
    W(VMCS_GUEST_ACTIVITY_STATE, GUEST_ACTIVITY_ACTIVE);
    W(VMCS_GUEST_PENDING_DBG, 0);
    W(VMCS_LINK_POINTER, ~0ull);

    if (s->real_mode) {
        /* real-address mode under "unrestricted guest": PE = PG = 0 (exempt from CR0_FIXED0),
         * 16-bit segments with real-mode limits, CS 0x800 (base 0x8000), a 32-bit busy TSS */
        uint64_t cr0 = (rdmsr(MSR_IA32_VMX_CR0_FIXED0) & ~(CR0_PE | CR0_PG)) | CR0_ET | CR0_NE;
        W(VMCS_GUEST_CR0, cr0);
        W(VMCS_GUEST_CR3, 0);
        W(VMCS_GUEST_CR4, rdmsr(MSR_IA32_VMX_CR4_FIXED0));
        W(VMCS_CR0_READ_SHADOW, cr0);
        for (unsigned i = 0; i < ARRAY_SIZE(data_sel_f); i++) {
            W(data_sel_f[i], 0);
            W(data_lim_f[i], 0xffff);
            W(data_ar_f[i], 0x93);
            W(data_base_f[i], 0);
        }
        W(VMCS_GUEST_CS_SELECTOR, 0x800);
        W(VMCS_GUEST_CS_LIMIT, 0xffff);
        W(VMCS_GUEST_CS_AR, 0x9b);
        W(VMCS_GUEST_CS_BASE, 0x8000);
        W(VMCS_GUEST_TR_SELECTOR, 0);
        W(VMCS_GUEST_TR_LIMIT, 0xffff);
        W(VMCS_GUEST_TR_AR, 0x8b);
        W(VMCS_GUEST_TR_BASE, 0);
        W(VMCS_GUEST_GDTR_BASE, 0);
        W(VMCS_GUEST_GDTR_LIMIT, 0xffff);
        W(VMCS_GUEST_IDTR_BASE, 0);
        W(VMCS_GUEST_IDTR_LIMIT, 0x3ff);
        W(VMCS_GUEST_RSP, 0x7ff0);
        W(VMCS_GUEST_RIP, 0);
    }
#undef W
}

bool vmcs_build(const struct l2_setup *s)
{
    uint8_t *page = l1_vmcs_pages[s->vmcs];
    uint64_t pa = vmx_pa(page);
    vmx_region_init(page, revision);
    vmcs_built |= 1u << s->vmcs;
    char buf[48];
    int o = vmx_outcome(vmclear(pa));
    if (!test_check(o == VMX_SUCCEED, "VMCLEAR: %s", vmx_outcome_name(o, buf, sizeof(buf))))
        return false;
    o = vmx_outcome(vmptrld(pa));
    if (!test_check(o == VMX_SUCCEED, "VMPTRLD: %s", vmx_outcome_name(o, buf, sizeof(buf))))
        return false;
    vmcs_log.errors = 0;
    memset(&l2_regs, 0, sizeof(l2_regs));
    memset(l2_stack, 0, sizeof(l2_stack));
    memset(l1_msr_bitmap, 0, PAGE);
    vm_host_rsp_bias = 0;

    if (!s->unchecked) {
        uint32_t exit = s->exit | EXIT_HOST_ADDR_SPACE_SIZE;
        test_check(vmx_ctl_allowed(cap_pin, s->pin), "pin-based controls 0x%x not allowed", s->pin);
        test_check(vmx_ctl_allowed(cap_proc, proc_wanted(s)),
                   "processor-based controls 0x%x not allowed", proc_wanted(s));
        test_check(!s->proc2 || vmx_ctl_allowed(cap_proc2, s->proc2),
                   "secondary controls 0x%x not allowed (0x%016llx)", s->proc2, U64(cap_proc2));
        test_check(vmx_ctl_allowed(cap_exit, exit), "VM-exit controls 0x%x not allowed", exit);
        test_check(vmx_ctl_allowed(cap_entry, entry_wanted(s)),
                   "VM-entry controls 0x%x not allowed", entry_wanted(s));
    }
    vmcs_fill(&vmcs_log, &l1_bsp, s);
    return test_check(vmcs_log.errors == 0, "%d VMWRITEs failed (first field 0x%x)",
                      vmcs_log.errors, vmcs_log.first_bad);
}

bool vmcs_load(int idx)
{
    char buf[48];
    int o = vmx_outcome(vmptrld(vmx_pa(l1_vmcs_pages[idx])));
    return test_check(o == VMX_SUCCEED, "VMPTRLD of VMCS %d: %s", idx,
                      vmx_outcome_name(o, buf, sizeof(buf)));
}

/* ------------------------------------------------------------------------------------------
 * Entering L2
 */
int l2_enter(bool launch)
{
    fault_begin();
    uint64_t f = vm_enter(launch);
    exit_cr3 = read_cr3();
    sgdt(&exit_gdtr);
    sidt(&exit_idtr);
    lgdt(&l1_bsp.gdtr);                 /* VM exits set the limits to 0xFFFF */
    lidt(&l1_bsp.idtr);
    if (f == VM_EXITED && fault_result() == NO_EXCEPTION) {
        memset(&ex, 0, sizeof(ex));
        vmcs_log.errors = 0;
        ex.reason = vmr(VMCS_EXIT_REASON);
        ex.qual = vmr(VMCS_EXIT_QUALIFICATION);
        ex.intr_info = vmr(VMCS_EXIT_INTR_INFO);
        ex.intr_err = vmr(VMCS_EXIT_INTR_ERROR_CODE);
        ex.len = vmr(VMCS_EXIT_INSTRUCTION_LEN);
        ex.idt_vec = vmr(VMCS_IDT_VECTORING_INFO);
        ex.entry_intr = vmr(VMCS_ENTRY_INTR_INFO);
        ex.rip = vmr(VMCS_GUEST_RIP);
        ex.rsp = vmr(VMCS_GUEST_RSP);
        ex.rflags = vmr(VMCS_GUEST_RFLAGS);
        /* these two exist only with EPT: read them only when an EPT exit says they are valid */
        if (ex.reason == EXIT_REASON_EPT_VIOLATION || ex.reason == EXIT_REASON_EPT_MISCONFIG) {
            ex.gpa = vmr(VMCS_GUEST_PHYSICAL_ADDRESS);
            ex.gla = vmr(VMCS_GUEST_LINEAR_ADDRESS);
        }
        test_check(vmcs_log.errors == 0, "VMREAD after the VM exit failed (field 0x%x)",
                   vmcs_log.first_bad);
        return ENTER_EXITED;
    }
    return vmx_outcome(vmx_result(f));
}

const char *enter_outcome_name(int o, char *buf, size_t n)
{
    if (o == ENTER_EXITED)
        snprintf(buf, n, "VM exit (reason 0x%x, qualification 0x%llx, RIP 0x%llx)", ex.reason,
                 U64(ex.qual), U64(ex.rip));
    else
        vmx_outcome_name(o, buf, n);
    return buf;
}

bool run_expect_at(bool launch, uint32_t reason, const void *rip, const char *what)
{
    if (!run_expect(launch, reason, what))
        return false;
    return test_check(ex.rip == PA(rip), "%s: GUEST_RIP 0x%llx, expected 0x%llx", what,
                      U64(ex.rip), U64(PA(rip)));
}

bool run_expect(bool launch, uint32_t reason, const char *what)
{
    char buf[120];
    int o = l2_enter(launch);
    if (!test_check(o == ENTER_EXITED, "%s (%s): %s, expected a VM exit with reason %u", what,
                    launch ? "VMLAUNCH" : "VMRESUME", enter_outcome_name(o, buf, sizeof(buf)),
                    reason & 0xffff))
        return false;
    return test_check(ex.reason == reason, "%s: exit reason 0x%x (qualification 0x%llx, "
                      "RIP 0x%llx, interruption info 0x%x, GPA 0x%llx, RAX 0x%llx), expected 0x%x",
                      what, ex.reason, U64(ex.qual), U64(ex.rip), ex.intr_info, U64(ex.gpa),
                      U64(l2_regs.rax), reason);
}

bool enter_expect_fail(bool launch, int want, const char *what)
{
    char got[120], exp[48];
    int o = l2_enter(launch);
    return test_check(o == want, "%s: %s, expected %s", what,
                      enter_outcome_name(o, got, sizeof(got)),
                      vmx_outcome_name(want, exp, sizeof(exp)));
}

bool check_u64(uint64_t got, uint64_t want, const char *what)
{
    return test_check(got == want, "%s: 0x%llx, expected 0x%llx", what, U64(got), U64(want));
}

bool check_outcome(int o, int want, const char *what)
{
    char got[48], exp[48];
    return test_check(o == want, "%s: %s, expected %s", what, vmx_outcome_name(o, got, sizeof(got)),
                      vmx_outcome_name(want, exp, sizeof(exp)));
}
