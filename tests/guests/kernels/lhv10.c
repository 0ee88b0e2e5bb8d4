/* lhv10.bin - L1 test hypervisor, phase 10: APIC virtualization beyond the TPR shadow (issue 8):
 * x2APIC-mode virtualization, APIC-register virtualization, virtual-interrupt delivery.
 *
 * L1 scaffolding from the library, as lhv7 (l1.h): L2 runs on L1's identity-mapped page tables, its
 * own IDT (l2_idt), everything on the BSP.
 *
 * Checks (SDM Vol. 3 25.4.2, 25.6.3, 25.6.8, 27.2.1.1, 29.1-29.5, A.3.3):
 *  vmx-apicv-caps           secondary controls 4 (virtualize x2APIC mode), 8 (APIC-register
 *                           virtualization) and 9 (virtual-interrupt delivery) may be 1; the guest
 *                           interrupt status and the EOI-exit bitmaps exist (VMWRITE/VMREAD).
 *  l2-x2apic-virt-tpr       TPR shadow and virtualized x2APIC mode, L1's MSR bitmap exiting on RDMSR
 *                           803H and WRMSR 80BH only: RDMSR 808H reads VTPR (EDX = the dword at
 *                           084H), WRMSR 808H of 0x30 writes it (084H cleared) without exits; RDMSR
 *                           803H and WRMSR 80BH exit (31, 32) as the bitmap says.
 *  l2-x2apic-virt-icr       WRMSR 830H (not virtualized) in xAPIC mode with L1's bitmap letting it
 *                           through and #GP in L1's exception bitmap: an exception exit (0, #GP,
 *                           error code 0, RIP at the WRMSR), not a #GP inside L2.
 *  l2-x2apic-virt-regs      with APIC-register virtualization too: RDMSR 803H and 830H read the 8
 *                           bytes at 030H and 300H of the virtual-APIC page without exits; RDMSR 839H
 *                           exits per the bitmap.
 *  l2-apic-reg-virt[-at-apic-base]  virtualized APIC accesses with APIC-register virtualization
 *                           (APIC-access page in L1's RAM, or on the real xAPIC page, where XMHF
 *                           emulates the writes): reads of 030H and 300H come from the virtual-APIC
 *                           page, a read of 390H exits (44, qualification 0x390); a write of 310H
 *                           clears bytes 2:0 of VICR_HI without an exit; a write of 380H lands in the
 *                           virtual-APIC page and exits after the store (56, trap-like, qualification
 *                           0x380); a write of 300H without virtual-interrupt delivery likewise
 *                           (0x300), a LOCK OR to 350H too (0x350, the old value from the
 *                           virtual-APIC page); the real APIC's registers unchanged.
 *  l2-vid-delivery          virtual-interrupt delivery with virtualized x2APIC mode: VIRR bit 0x40 and
 *                           RVI 0x40 from L1 are delivered through L2's IDT (by the evaluation at the
 *                           entry or, on Bochs 2.7, after L2's MOV to CR8), a self IPI through WRMSR
 *                           83FH of vector 0x42 too; each handler's virtual EOI (WRMSR 80BH) clears
 *                           VISR and SVI; no exit until L2's VMCALL; guest interrupt status 0 at the
 *                           end; WRMSR 83FH of vector 5 exits (56, qualification 0x3F0, trap-like).
 *  l2-vid-eoi-exit          EOI-exit bitmap bit 0x41: the handler's virtual EOI of 0x41 exits (45,
 *                           qualification 0x41, RIP after the WRMSR) with VISR and SVI already
 *                           cleared; L2 then returns from its handler to its VMCALL.
 *  l2-vid[-eoi-exit]-at-apic-base  virtual-interrupt delivery with the APIC-access page on the real
 *                           xAPIC page: TPR, EOI and ICR-low stores virtualized (delivery, virtual
 *                           EOIs, self IPI 0x42, the EOI-exit bitmap's exit 45 at the store), a self
 *                           IPI of vector 5 an APIC-write exit (0x300), an ICR-high store an
 *                           APIC-access exit (not virtualized without APIC-register virtualization).
 *  l2-apicv-entry-failures  VMLAUNCH fails with VMfailValid(7) for: x2APIC-mode virtualization,
 *                           APIC-register virtualization or virtual-interrupt delivery without the TPR
 *                           shadow; x2APIC-mode virtualization with virtualized APIC accesses;
 *                           virtual-interrupt delivery without external-interrupt exiting. With
 *                           virtual-interrupt delivery the TPR threshold is not checked (0x10 with
 *                           VTPR 0 enters).
 *
 * Argument ept=1: every L2 runs with EPT, an identity map of 4 GiB in 2 MiB pages of L1's (WB, the
 * top GiB UC), the same checks otherwise. Under an XMHF with ept02_drop=1 each entry then starts
 * with an empty EPT02, so L2's first accesses, the delivery of its virtual interrupts included, take
 * EPT violations that L0 handles (docs/known-bugs.md: what Bochs 2.7 reports for them).
 */
#include "lib.h"
#include "vmx.h"
#include "l1.h"

#define VIRR(v) (0x200 + ((v) / 32) * 16)
#define VISR(v) (0x100 + ((v) / 32) * 16)

static uint8_t vapic[PAGE] __attribute__((aligned(PAGE)));        /* virtual-APIC page */
static uint8_t apic_access[PAGE] __attribute__((aligned(PAGE)));  /* APIC-access page */
/* ept=1: L2's EPT (PML4, PDPT, four page directories) and its pointer (0: L2 without EPT). */
static uint64_t ept_tables[6][512] __attribute__((aligned(PAGE)));
static uint64_t l2_eptp;

extern char l2_x2tpr[], l2_x2tpr_rd803[], l2_x2tpr_wr80b[], l2_x2tpr_vmcall[];
extern char l2_x2icr[], l2_x2icr_wrmsr[];
extern char l2_x2regs[], l2_x2regs_839[], l2_x2regs_vmcall[];
extern char l2_arv[], l2_arv_rd390[], l2_arv_rd390_end[], l2_arv_wr380_end[], l2_arv_wr300_end[];
extern char l2_vid[], l2_vid_vmcall[], l2_vid_ipi5_end[], l2_vid_h40[], l2_vid_h41[], l2_vid_h42[];
extern char l2_vid_eoi_end[], l2_arv_or350_end[];
extern char l2_vidx[], l2_vidx_vmcall[], l2_vidx_ipi5_end[], l2_vidx_h40[], l2_vidx_h41[], l2_vidx_h42[];
extern char l2_vidx_eoi_end[];

asm(".text\n"
    /* l2-x2apic-virt-tpr */
    "l2_x2tpr:\n"
    "  mov $0x808, %ecx\n"
    "  rdmsr\n"                                 /* virtualized: the 8 bytes at 080H */
    "  mov %rax, %r8\n"
    "  mov %rdx, %r12\n"
    "  mov $0x30, %eax\n"
    "  xor %edx, %edx\n"
    "  wrmsr\n"                                 /* virtualized: VTPR = 0x30 */
    "  rdmsr\n"
    "  mov %rax, %r9\n"
    "  mov $0x803, %ecx\n"
    "l2_x2tpr_rd803:\n"
    "  rdmsr\n"                                 /* exits: L1's bitmap */
    "  mov %rax, %r10\n"
    "  mov $0x80b, %ecx\n"
    "  xor %eax, %eax\n"
    "  xor %edx, %edx\n"
    "l2_x2tpr_wr80b:\n"
    "  wrmsr\n"                                 /* exits: L1's bitmap */
    "l2_x2tpr_vmcall:\n"
    "  vmcall\n"
    "  ud2\n"
    /* l2-x2apic-virt-icr: RAX:RDX a fixed self IPI of vector 0x43 */
    "l2_x2icr:\n"
    "  mov $0x830, %ecx\n"
    "l2_x2icr_wrmsr:\n"
    "  wrmsr\n"                                 /* not virtualized: the real APIC's (#GP in xAPIC mode) */
    "  vmcall\n"
    "  ud2\n"
    /* l2-x2apic-virt-regs */
    "l2_x2regs:\n"
    "  mov $0x803, %ecx\n"
    "  rdmsr\n"
    "  mov %rax, %r8\n"
    "  mov %rdx, %r9\n"
    "  mov $0x830, %ecx\n"
    "  rdmsr\n"
    "  mov %rax, %r10\n"
    "  mov %rdx, %r11\n"
    "  mov $0x839, %ecx\n"
    "l2_x2regs_839:\n"
    "  rdmsr\n"                                 /* exits: L1's bitmap */
    "l2_x2regs_vmcall:\n"
    "  vmcall\n"
    "  ud2\n"
    /* l2-apic-reg-virt: RSI = the APIC-access page */
    "l2_arv:\n"
    "  mov 0x30(%rsi), %eax\n"
    "  mov %rax, %r8\n"
    "  mov 0x300(%rsi), %eax\n"
    "  mov %rax, %r9\n"
    "l2_arv_rd390:\n"
    "  mov 0x390(%rsi), %eax\n"                 /* exits: not a virtualized read */
    "l2_arv_rd390_end:\n"
    "  movl $0xffffffff, 0x310(%rsi)\n"         /* VICR_HI[23:0] cleared, no exit */
    "  movl $0x1234, 0x380(%rsi)\n"             /* APIC-write exit after the store */
    "l2_arv_wr380_end:\n"
    "  movl $0x4041, 0x300(%rsi)\n"             /* APIC-write exit (no virtual-interrupt delivery) */
    "l2_arv_wr300_end:\n"
    "  lock orl $0x10000, 0x350(%rsi)\n"        /* read-modify-write: the old value is VLVT's */
    "l2_arv_or350_end:\n"
    "  vmcall\n"
    "  ud2\n"
    /* l2-vid-at-apic-base: RSI = the APIC-access page (the xAPIC page); each store to it is followed
     * by a MOV to CR8, whose TPR virtualization evaluates pending virtual interrupts (Bochs 2.7 does
     * not at VM entry, so after XMHF's emulated store it would wait) */
    "l2_vidx:\n"
    "  movl $0, 0x80(%rsi)\n"                   /* TPR virtualization */
    "  mov %cr8, %rax\n"
    "  mov %rax, %cr8\n"
    "  movl $0x40042, 0x300(%rsi)\n"            /* self-IPI virtualization: fixed, self, vector 0x42 */
    "  mov %rax, %cr8\n"
    "  nop\n"
    "l2_vidx_vmcall:\n"
    "  vmcall\n"
    "  movl $0x40005, 0x300(%rsi)\n"            /* vector 5: APIC-write exit */
    "l2_vidx_ipi5_end:\n"
    "  movl $0xffffffff, 0x310(%rsi)\n"         /* exits: not virtualized without APIC-register virt. */
    "  vmcall\n"
    "  ud2\n"
    "l2_vidx_h40:\n"
    "  push $0x40\n"
    "  jmp 1f\n"
    "l2_vidx_h41:\n"
    "  push $0x41\n"
    "  jmp 1f\n"
    "l2_vidx_h42:\n"
    "  push $0x42\n"
    "1:\n"
    "  shl $8, %r14\n"
    "  or (%rsp), %r14\n"
    "  movl $0, 0xb0(%rsi)\n"                   /* virtual EOI through the APIC-access page */
    "l2_vidx_eoi_end:\n"
    "  mov %cr8, %rax\n"
    "  mov %rax, %cr8\n"
    "  add $8, %rsp\n"
    "  iretq\n"
    /* l2-vid-delivery and l2-vid-eoi-exit: R14 collects the vectors delivered */
    "l2_vid:\n"
    "  xor %eax, %eax\n"
    "  mov %rax, %cr8\n"                        /* TPR virtualization: evaluation (Bochs 2.7) */
    "  nop\n"
    "  mov $0x42, %eax\n"
    "  xor %edx, %edx\n"
    "  mov $0x83f, %ecx\n"
    "  wrmsr\n"                                 /* self-IPI virtualization */
    "  nop\n"
    "l2_vid_vmcall:\n"
    "  vmcall\n"
    "  mov $5, %eax\n"
    "  xor %edx, %edx\n"
    "  mov $0x83f, %ecx\n"
    "  wrmsr\n"                                 /* vector 5: APIC-write exit */
    "l2_vid_ipi5_end:\n"
    "  vmcall\n"
    "  ud2\n"
    "l2_vid_h40:\n"
    "  push $0x40\n"
    "  jmp 1f\n"
    "l2_vid_h41:\n"
    "  push $0x41\n"
    "  jmp 1f\n"
    "l2_vid_h42:\n"
    "  push $0x42\n"
    "1:\n"
    "  shl $8, %r14\n"
    "  or (%rsp), %r14\n"
    "  push %rax\n"
    "  push %rcx\n"
    "  push %rdx\n"
    "  mov $0x80b, %ecx\n"
    "  xor %eax, %eax\n"
    "  xor %edx, %edx\n"
    "  wrmsr\n"                                 /* virtual EOI */
    "l2_vid_eoi_end:\n"
    "  pop %rdx\n"
    "  pop %rcx\n"
    "  pop %rax\n"
    "  add $8, %rsp\n"
    "  iretq\n");

/* ept=1: an identity EPT of 0-4 GiB in 2 MiB pages (RWX; WB below 3 GiB, UC above), if the CPU has
 * 2 MiB EPT pages and WB EPT structures; else L2 runs without EPT and a check says so. */
static void ept_init(void)
{
    char arg[8];
    uint64_t cap = 0;

    if (!cmdline_get("ept", 0, arg, sizeof(arg)) || strncmp(arg, "1", 2))
        return;
    if (!proc2_allowed(PROC2_ENABLE_EPT) || rdmsr_safe(MSR_IA32_VMX_EPT_VPID_CAP, &cap) != NO_EXCEPTION ||
        !(cap & EPT_CAP_2M_PAGE) || !(cap & EPT_CAP_MEMTYPE_WB) || !(cap & EPT_CAP_WALK_4)) {
        info("ept=1: EPT with 2 MiB pages and WB not offered (EPT_VPID_CAP 0x%016llx)", U64(cap));
        return;
    }
    ept_tables[0][0] = PA(ept_tables[1]) | 7;
    for (uint64_t g = 0; g < 4; g++) {
        ept_tables[1][g] = PA(ept_tables[2 + g]) | 7;
        for (uint64_t i = 0; i < 512; i++)
            ept_tables[2 + g][i] = ((g << 30) + (i << 21)) | 7 | (g < 3 ? 6u << 3 : 0) | (1u << 7);
    }
    l2_eptp = PA(ept_tables[0]) | 6 | (3 << 3); /* WB, 4-level walk */
    info("ept=1: L2 runs on an identity EPT, EPTP 0x%llx", U64(l2_eptp));
}

static void vmx_init(void)
{
    l2_idt_init(l2_unexpected_handler);
    l2_idt_set(0x40, l2_vid_h40);
    l2_idt_set(0x41, l2_vid_h41);
    l2_idt_set(0x42, l2_vid_h42);
    if (l1_init()) {
        ept_init();
        l1_vmxon();
    }
}

static uint32_t vreg(uint32_t off) { return *(volatile uint32_t *)(vapic + off); }
static void set_vreg(uint32_t off, uint32_t v) { *(volatile uint32_t *)(vapic + off) = v; }

/* L1's MSR bitmap: reads at 0, writes at 2048, MSRs 0-1FFFH. */
static void msr_exit(uint32_t msr, bool write)
{
    l1_msr_bitmap[(write ? 2048 : 0) + msr / 8] |= (uint8_t)(1u << (msr & 7));
}

static bool allowed(uint32_t proc2, const char *name)
{
    if (vmx_ctl_allowed(cap_proc, PROC_TPR_SHADOW) && proc2_allowed(proc2))
        return true;
    test_check(false, "%s: TPR shadow or secondary controls 0x%x not allowed (0x%016llx)", name, proc2,
               U64(cap_proc2));
    return false;
}

/* A VMCS with the TPR shadow on vapic, L1's MSR bitmap (all zero) and these controls. */
static bool build(uint64_t rip, uint32_t pin, uint32_t proc2)
{
    struct l2_setup s = { .rip = rip, .pin = pin, .proc = PROC_TPR_SHADOW | PROC_USE_MSR_BITMAPS,
                          .proc2 = proc2 | (l2_eptp ? PROC2_ENABLE_EPT : 0), .eptp = l2_eptp };
    if (!vmcs_build(&s))
        return false;
    vmw(VMCS_VIRTUAL_APIC_PAGE_ADDR, PA(vapic));
    vmw(VMCS_TPR_THRESHOLD, 0);
    return test_check(vmcs_log.errors == 0, "VMWRITE of the TPR-shadow fields failed (0x%x)",
                      vmcs_log.first_bad);
}

static void t_caps(void)
{
    if (test_begin("vmx-apicv-caps") && l1_need_vmx()) {
        info("secondary allowed-1 0x%08x, pin-based allowed-1 0x%08x (posted interrupts %s)",
             (uint32_t)(cap_proc2 >> 32), (uint32_t)(cap_pin >> 32),
             (cap_pin >> 32) & PIN_POSTED_INTR ? "allowed" : "not allowed");
        test_check(proc2_allowed(PROC2_VIRT_X2APIC), "virtualize x2APIC mode not allowed");
        test_check(proc2_allowed(PROC2_APIC_REGISTER_VIRT), "APIC-register virtualization not allowed");
        test_check(proc2_allowed(PROC2_VIRT_INTR_DELIVERY), "virtual-interrupt delivery not allowed");
        if (proc2_allowed(PROC2_VIRT_INTR_DELIVERY) &&
            build(PA(l2_vid), PIN_EXT_INT_EXITING, PROC2_VIRT_INTR_DELIVERY | PROC2_VIRT_X2APIC)) {
            vmw(VMCS_GUEST_INTR_STATUS, 0x3040);
            for (uint32_t i = 0; i < 4; i++)
                vmw(VMCS_EOI_EXIT_BITMAP0 + 2 * i, 0x1111ull << i);
            if (test_check(vmcs_log.errors == 0, "VMWRITE of 0x%x failed", vmcs_log.first_bad)) {
                check_u64(vmr(VMCS_GUEST_INTR_STATUS), 0x3040, "guest interrupt status");
                for (uint32_t i = 0; i < 4; i++)
                    check_u64(vmr(VMCS_EOI_EXIT_BITMAP0 + 2 * i), 0x1111ull << i, "EOI-exit bitmap");
            }
        }
    }
    test_end();
}

static void t_x2apic(void)
{
    if (test_begin("l2-x2apic-virt-tpr") && l1_need_vmx() && allowed(PROC2_VIRT_X2APIC, "l2-x2apic-virt-tpr") &&
        build(PA(l2_x2tpr), 0, PROC2_VIRT_X2APIC)) {
        memset(vapic, 0, PAGE);
        set_vreg(0x80, 0x50);
        set_vreg(0x84, 0x11);
        msr_exit(0x803, false);
        msr_exit(0x80b, true);
        if (run_expect_at(true, EXIT_REASON_RDMSR, l2_x2tpr_rd803, "RDMSR 803H (bitmap)")) {
            check_u64(l2_regs.r8, 0x50, "RDMSR 808H: EAX = VTPR");
            check_u64(l2_regs.r12, 0x11, "RDMSR 808H: EDX = the dword at 084H");
            check_u64(l2_regs.r9, 0x30, "RDMSR 808H after WRMSR 808H of 0x30");
            check_u64(vreg(0x80), 0x30, "VTPR after WRMSR 808H");
            check_u64(vreg(0x84), 0, "dword at 084H after WRMSR 808H");
            l2_regs.rax = 0x777;
            advance_rip();
        }
        if (run_expect_at(false, EXIT_REASON_WRMSR, l2_x2tpr_wr80b, "WRMSR 80BH (bitmap)")) {
            check_u64(l2_regs.r10, 0x777, "RDMSR 803H as L1 emulated it");
            advance_rip();
        }
        run_expect_at(false, EXIT_REASON_VMCALL, l2_x2tpr_vmcall, "VMCALL after the x2APIC accesses");
    }
    test_end();

    /* WRMSR 830H is not virtualized (SDM 29.5): it is the real APIC's, #GP while that is in xAPIC
     * mode (XMHF intercepts it for its INIT/SIPI emulation and injects the #GP), which L1's exception
     * bitmap turns into an exception exit. */
    if (test_begin("l2-x2apic-virt-icr") && l1_need_vmx() && allowed(PROC2_VIRT_X2APIC, "l2-x2apic-virt-icr")) {
        if (apic_x2apic_mode()) {
            info("l2-x2apic-virt-icr: the APIC is in x2APIC mode; the check needs xAPIC mode");
        } else {
            struct l2_setup s = { .rip = PA(l2_x2icr), .proc = PROC_TPR_SHADOW | PROC_USE_MSR_BITMAPS,
                                  .proc2 = PROC2_VIRT_X2APIC, .exc_bitmap = 1u << 13 };
            if (vmcs_build(&s)) {
                vmw(VMCS_VIRTUAL_APIC_PAGE_ADDR, PA(vapic));
                vmw(VMCS_TPR_THRESHOLD, 0);
                memset(vapic, 0, PAGE);
                l2_regs.rax = 0x40043;
                l2_regs.rdx = 0;
                if (run_expect_at(true, EXIT_REASON_EXCEPTION_NMI, l2_x2icr_wrmsr, "WRMSR 830H in xAPIC mode")) {
                    check_u64(ex.intr_info, INTR_INFO(3, 13) | INTR_INFO_ERROR_CODE, "exit interruption information (#GP)");
                    check_u64(ex.intr_err, 0, "#GP error code");
                }
            }
        }
    }
    test_end();

    if (test_begin("l2-x2apic-virt-regs") && l1_need_vmx() &&
        allowed(PROC2_VIRT_X2APIC | PROC2_APIC_REGISTER_VIRT, "l2-x2apic-virt-regs") &&
        build(PA(l2_x2regs), 0, PROC2_VIRT_X2APIC | PROC2_APIC_REGISTER_VIRT)) {
        memset(vapic, 0, PAGE);
        set_vreg(0x30, 0x12345678);
        set_vreg(0x34, 0x9abcdef0);
        set_vreg(0x300, 0x4031);
        set_vreg(0x304, 0x55);
        msr_exit(0x839, false);
        if (run_expect_at(true, EXIT_REASON_RDMSR, l2_x2regs_839, "RDMSR 839H (bitmap)")) {
            check_u64(l2_regs.r8, 0x12345678, "RDMSR 803H: EAX = dword at 030H");
            check_u64(l2_regs.r9, 0x9abcdef0, "RDMSR 803H: EDX = dword at 034H");
            check_u64(l2_regs.r10, 0x4031, "RDMSR 830H: EAX = dword at 300H");
            check_u64(l2_regs.r11, 0x55, "RDMSR 830H: EDX = dword at 304H");
            advance_rip();
        }
        run_expect_at(false, EXIT_REASON_VMCALL, l2_x2regs_vmcall, "VMCALL after the x2APIC reads");
    }
    test_end();
}

/* APIC-register virtualization through an APIC-access page in L1's RAM or on the real xAPIC page
 * (which XMHF keeps read-only in EPT01: it emulates the virtualized writes there). */
static void t_apic_reg_virt(bool at_base)
{
    uint32_t proc2 = PROC2_VIRT_APIC_ACCESSES | PROC2_APIC_REGISTER_VIRT;
    const char *name = at_base ? "l2-apic-reg-virt-at-apic-base" : "l2-apic-reg-virt";

    if (test_begin("%s", name) && l1_need_vmx() && allowed(proc2, name) && build(PA(l2_arv), 0, proc2)) {
        uint64_t page = at_base ? rdmsr(0x1b) & ~0xfffull : PA(apic_access);
        uint32_t tpr = apic_read(0x80), icr_hi = apic_read(0x310), tmict = apic_read(0x380);
        uint32_t lint0 = apic_read(0x350);
        memset(vapic, 0, PAGE);
        memset(apic_access, 0, PAGE);
        set_vreg(0x30, 0x50014);
        set_vreg(0x300, 0x4030);
        set_vreg(0x310, 0x01000000);
        set_vreg(0x350, 0x700);
        vmw(VMCS_APIC_ACCESS_ADDR, page);
        l2_regs.rsi = page;
        if (run_expect_at(true, EXIT_REASON_APIC_ACCESS, l2_arv_rd390, "read of offset 390H")) {
            check_u64(ex.qual, 0x390, "APIC-access qualification (offset 390H, linear read)");
            check_u64(l2_regs.r8, 0x50014, "virtualized read of 030H");
            check_u64(l2_regs.r9, 0x4030, "virtualized read of 300H");
            vmw(VMCS_GUEST_RIP, PA(l2_arv_rd390_end));
        }
        if (run_expect_at(false, EXIT_REASON_APIC_WRITE, l2_arv_wr380_end, "write of offset 380H")) {
            check_u64(ex.qual, 0x380, "APIC-write qualification (offset 380H)");
            check_u64(vreg(0x380), 0x1234, "virtual-APIC page at 380H");
            check_u64(vreg(0x310), 0xff000000, "VICR_HI after writing 0xffffffff");
        }
        if (run_expect_at(false, EXIT_REASON_APIC_WRITE, l2_arv_wr300_end, "write of offset 300H")) {
            check_u64(ex.qual, 0x300, "APIC-write qualification (offset 300H)");
            check_u64(vreg(0x300), 0x4041, "virtual-APIC page at 300H");
        }
        if (run_expect_at(false, EXIT_REASON_APIC_WRITE, l2_arv_or350_end, "LOCK OR to offset 350H")) {
            check_u64(ex.qual, 0x350, "APIC-write qualification (offset 350H)");
            check_u64(vreg(0x350), 0x10700, "virtual-APIC page at 350H (old value OR 0x10000)");
        }
        run_expect(false, EXIT_REASON_VMCALL, "VMCALL after the APIC writes");
        check_u64(*(volatile uint32_t *)(apic_access + 0x380), 0, "APIC-access page in RAM unwritten");
        check_u64(apic_read(0x80), tpr, "real APIC TPR");
        check_u64(apic_read(0x310), icr_hi, "real APIC ICR high");
        check_u64(apic_read(0x380), tmict, "real APIC initial count");
        check_u64(apic_read(0x350), lint0, "real APIC LVT LINT0");
    }
    test_end();
}

/* A VMCS for l2_vid: virtual-interrupt delivery, virtualized x2APIC mode, IF = 1; `vector` pending in
 * VIRR and RVI. */
static bool build_vid(uint8_t vector)
{
    if (!build(PA(l2_vid), PIN_EXT_INT_EXITING, PROC2_VIRT_INTR_DELIVERY | PROC2_VIRT_X2APIC))
        return false;
    memset(vapic, 0, PAGE);
    set_vreg(VIRR(vector), 1u << (vector % 32));
    vmw(VMCS_GUEST_INTR_STATUS, vector);
    for (uint32_t i = 0; i < 4; i++)
        vmw(VMCS_EOI_EXIT_BITMAP0 + 2 * i, 0);
    vmw(VMCS_GUEST_RFLAGS, 0x202);
    l2_regs.r14 = 0;
    return test_check(vmcs_log.errors == 0, "VMWRITE of 0x%x failed", vmcs_log.first_bad);
}

static bool vapic_vectors_clear(const char *what)
{
    bool ok = true;
    for (uint32_t i = 0; i < 8; i++)
        ok &= check_u64(vreg(0x100 + 16 * i) | vreg(0x200 + 16 * i), 0, what);
    return ok;
}

static void t_vid(void)
{
    uint32_t proc2 = PROC2_VIRT_INTR_DELIVERY | PROC2_VIRT_X2APIC;

    if (test_begin("l2-vid-delivery") && l1_need_vmx() && allowed(proc2, "l2-vid-delivery") && build_vid(0x40)) {
        if (run_expect_at(true, EXIT_REASON_VMCALL, l2_vid_vmcall, "VMCALL after the virtual interrupts")) {
            check_u64(l2_regs.r14, 0x4042, "vectors delivered to L2 (0x40, then the self IPI 0x42)");
            check_u64(vmr(VMCS_GUEST_INTR_STATUS), 0, "guest interrupt status (SVI, RVI)");
            vapic_vectors_clear("VISR/VIRR after the virtual EOIs");
            check_u64(vreg(0xa0), 0, "VPPR after the virtual EOIs");
            advance_rip();
        }
        if (run_expect_at(false, EXIT_REASON_APIC_WRITE, l2_vid_ipi5_end, "WRMSR 83FH of vector 5")) {
            check_u64(ex.qual, 0x3f0, "APIC-write qualification (offset 3F0H)");
            check_u64(vreg(0x3f0), 5, "virtual-APIC page at 3F0H");
            check_u64(l2_regs.r14, 0x4042, "no vector 5 delivered");
            run_expect(false, EXIT_REASON_VMCALL, "VMCALL after the APIC-write exit");
        }
    }
    test_end();

    if (test_begin("l2-vid-eoi-exit") && l1_need_vmx() && allowed(proc2, "l2-vid-eoi-exit") && build_vid(0x41)) {
        vmw(VMCS_EOI_EXIT_BITMAP1, 1ull << (0x41 - 64));
        if (run_expect_at(true, EXIT_REASON_EOI_INDUCED, l2_vid_eoi_end, "virtual EOI of 0x41")) {
            check_u64(ex.qual, 0x41, "virtualized-EOI qualification (the vector)");
            check_u64(l2_regs.r14, 0x41, "vector delivered to L2");
            check_u64(vmr(VMCS_GUEST_INTR_STATUS), 0, "guest interrupt status after the EOI");
            vapic_vectors_clear("VISR/VIRR after the EOI");
        }
        if (run_expect_at(false, EXIT_REASON_VMCALL, l2_vid_vmcall, "VMCALL after the handler returned"))
            check_u64(l2_regs.r14, 0x4142, "vectors delivered (0x41, then the self IPI 0x42)");
    }
    test_end();
}

/* Virtual-interrupt delivery with the APIC-access page on the real xAPIC page: the TPR, ICR and EOI
 * stores of L2 are virtualized as the CPU would (XMHF emulates them: EPT01 write-protects the page). */
static void t_vid_apic_base(void)
{
    uint32_t proc2 = PROC2_VIRT_INTR_DELIVERY | PROC2_VIRT_APIC_ACCESSES;
    uint64_t base = rdmsr(0x1b) & ~0xfffull;
    static const uint8_t vec[] = { 0x40, 0x41 };

    l2_idt_set(0x40, l2_vidx_h40);
    l2_idt_set(0x41, l2_vidx_h41);
    l2_idt_set(0x42, l2_vidx_h42);
    for (int t = 0; t < 2; t++) {
        const char *name = t ? "l2-vid-eoi-exit-at-apic-base" : "l2-vid-at-apic-base";
        if (test_begin("%s", name) && l1_need_vmx() && allowed(proc2, name) &&
            build(PA(l2_vidx), PIN_EXT_INT_EXITING, proc2)) {
            uint32_t tpr = apic_read(0x80), icr_hi = apic_read(0x310);
            memset(vapic, 0, PAGE);
            set_vreg(VIRR(vec[t]), 1u << (vec[t] % 32));
            vmw(VMCS_GUEST_INTR_STATUS, vec[t]);
            for (uint32_t i = 0; i < 4; i++)
                vmw(VMCS_EOI_EXIT_BITMAP0 + 2 * i, 0);
            if (t)
                vmw(VMCS_EOI_EXIT_BITMAP1, 1ull << (0x41 - 64));
            vmw(VMCS_GUEST_RFLAGS, 0x202);
            vmw(VMCS_APIC_ACCESS_ADDR, base);
            l2_regs.rsi = base;
            l2_regs.r14 = 0;
            if (t && run_expect_at(true, EXIT_REASON_EOI_INDUCED, l2_vidx_eoi_end, "virtual EOI of 0x41")) {
                check_u64(ex.qual, 0x41, "virtualized-EOI qualification (the vector)");
                check_u64(vmr(VMCS_GUEST_INTR_STATUS), 0, "guest interrupt status after the EOI");
                vapic_vectors_clear("VISR/VIRR after the EOI");
            }
            if (run_expect_at(!t, EXIT_REASON_VMCALL, l2_vidx_vmcall, "VMCALL after the virtual interrupts")) {
                check_u64(l2_regs.r14, t ? 0x4142 : 0x4042, "vectors delivered to L2");
                check_u64(vmr(VMCS_GUEST_INTR_STATUS), 0, "guest interrupt status (SVI, RVI)");
                vapic_vectors_clear("VISR/VIRR after the virtual EOIs");
                check_u64(vreg(0x300), 0x40042, "VICR_LO");
                advance_rip();
            }
            if (!t && run_expect_at(false, EXIT_REASON_APIC_WRITE, l2_vidx_ipi5_end, "self IPI of vector 5")) {
                check_u64(ex.qual, 0x300, "APIC-write qualification (offset 300H)");
                check_u64(vreg(0x300), 0x40005, "VICR_LO");
                /* Without APIC-register virtualization ICR high is not virtualized. */
                if (run_expect_at(false, EXIT_REASON_APIC_ACCESS, l2_vidx_ipi5_end, "store to ICR high")) {
                    check_u64(ex.qual, 0x1310, "APIC-access qualification (offset 310H, linear write)");
                    check_u64(vreg(0x310), 0, "VICR_HI");
                }
            }
            check_u64(apic_read(0x80), tpr, "real APIC TPR");
            check_u64(apic_read(0x310), icr_hi, "real APIC ICR high");
        }
        test_end();
    }
    l2_idt_set(0x40, l2_vid_h40);
    l2_idt_set(0x41, l2_vid_h41);
    l2_idt_set(0x42, l2_vid_h42);
}

static void t_entry_failures(void)
{
    uint32_t all = PROC2_VIRT_INTR_DELIVERY | PROC2_VIRT_X2APIC | PROC2_APIC_REGISTER_VIRT;

    if (test_begin("l2-apicv-entry-failures") && l1_need_vmx() &&
        allowed(all | PROC2_VIRT_APIC_ACCESSES, "l2-apicv-entry-failures") && build_vid(0x40)) {
        uint32_t proc = (uint32_t)vmr(VMCS_PROC_BASED_CTLS), pin = (uint32_t)vmr(VMCS_PIN_BASED_CTLS);
        uint32_t proc2 = (uint32_t)vmr(VMCS_SECONDARY_PROC_CTLS);
        static const uint32_t alone[] = { PROC2_VIRT_X2APIC, PROC2_APIC_REGISTER_VIRT, PROC2_VIRT_INTR_DELIVERY };
        static const char *const names[] = { "x2APIC-mode virtualization without TPR shadow",
                                             "APIC-register virtualization without TPR shadow",
                                             "virtual-interrupt delivery without TPR shadow" };
        vmw(VMCS_PROC_BASED_CTLS, proc & ~PROC_TPR_SHADOW);
        for (int i = 0; i < 3; i++) {
            vmw(VMCS_SECONDARY_PROC_CTLS, (proc2 & ~all) | alone[i]);
            enter_expect_fail(true, VMX_FAIL_VALID_ERR(7), names[i]);
        }
        vmw(VMCS_PROC_BASED_CTLS, proc);
        vmw(VMCS_APIC_ACCESS_ADDR, PA(apic_access));
        vmw(VMCS_SECONDARY_PROC_CTLS, proc2 | PROC2_VIRT_APIC_ACCESSES);
        enter_expect_fail(true, VMX_FAIL_VALID_ERR(7), "x2APIC-mode virtualization with virtualized APIC accesses");
        vmw(VMCS_SECONDARY_PROC_CTLS, proc2);
        vmw(VMCS_PIN_BASED_CTLS, pin & ~PIN_EXT_INT_EXITING);
        enter_expect_fail(true, VMX_FAIL_VALID_ERR(7), "virtual-interrupt delivery without external-interrupt exiting");
        vmw(VMCS_PIN_BASED_CTLS, pin);
        vmw(VMCS_TPR_THRESHOLD, 0x10);
        if (run_expect_at(true, EXIT_REASON_VMCALL, l2_vid_vmcall, "TPR threshold 0x10 with virtual-interrupt delivery"))
            check_u64(l2_regs.r14, 0x4042, "vectors delivered after the failed entries");
    }
    test_end();
}

void test_main(void)
{
    vmx_init();
    t_caps();
    t_x2apic();
    t_apic_reg_virt(false);
    t_apic_reg_virt(true);
    t_vid();
    t_vid_apic_base();
    t_entry_failures();
    l1_done();
}
