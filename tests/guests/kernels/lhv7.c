/* lhv7.bin - L1 test hypervisor, phase 7: TPR shadow, APIC-access virtualization, IA32_VMX_VMFUNC,
 * EPTP switching, and a replay of Hyper-V's first VM entries (issue 8).
 *
 * L1 scaffolding from the library, as lhv4 (l1.h). L2 runs on L1's identity-mapped page tables, with
 * an identity EPT12 in the EPT checks (2 MiB pages). Everything on the BSP.
 *
 * Checks (SDM Vol. 3 25.5.6, 25.6.8, 26.1.3, 27.2.1.1, 28.2.1, 29.1-29.4, A.11):
 *  l2-tpr-shadow-cr8      use TPR shadow, VTPR = 0x12340050: MOV from CR8 reads 5, MOV to CR8 of 9 and a
 *                         read back give 9 without exits; the virtual-APIC page holds 0x90 at 080H
 *                         (bytes 081H-083H cleared) when L2's VMCALL exits.
 *  l2-cr8-exiting         with CR8-store and CR8-load exiting as well: MOV RAX <- CR8 exits (28,
 *                         qualification 0x18), MOV CR8 <- RBX exits (0x308); VTPR unchanged.
 *  l2-tpr-below-threshold threshold 4, VTPR 0x60: MOV to CR8 of 5 does not exit, of 2 exits (43,
 *                         trap-like: RIP after the MOV, qualification 0) with VTPR = 0x20.
 *  l2-tpr-entry-failures  VMLAUNCH fails with VMfailValid(7) for a virtual-APIC address that is not
 *                         4 KiB aligned or beyond the physical-address width, a threshold with bits
 *                         31:4 set, a threshold above VTPR[7:4]; then it succeeds (VMCALL exit).
 *  l2-apic-access         virtualize APIC accesses (APIC-access page in L1's RAM) with TPR shadow:
 *                         a read of 080H is virtualized (VTPR, no exit); a read of 300H exits (44,
 *                         qualification 0x300: linear read), a write of 310H exits (0x1310: linear
 *                         write), a write of 080H is virtualized (VTPR = 0x40); without TPR shadow
 *                         the read of 080H exits (0x080). L2's writes to the real xAPIC page (not
 *                         the APIC-access page) reach the real APIC's TPR.
 *  l2-apic-access-at-apic-base  the APIC-access address = IA32_APIC_BASE's page (XMHF keeps it read-only
 *                         in EPT01), no TPR shadow: reads of 080H and 300H and writes of 310H and 080H
 *                         each exit (44; 0x80, 0x300, 0x1310, 0x1080); the real APIC's TPR and ICR
 *                         high are unchanged.
 *  l2-apic-access-at-apic-base-ept  the same with EPT12 (identity, 2 MiB pages; XMHF's EPT02 takes
 *                         the read-only xAPIC page from EPT01).
 *  l2-apic-access-at-apic-base-tpr  the same page with TPR shadow, threshold 1, VTPR 0x70: a read of
 *                         080H gives 0x70, 300H and 310H exit as above, stores of 0x40, 0x20 and 0 to
 *                         080H are virtualized (no exit; a read between gives 0x20), the last one
 *                         with a TPR-below-threshold exit after it (43, VTPR 0); the real APIC's TPR
 *                         and ICR high are unchanged.
 *  vmx-vmfunc-msr         IA32_VMX_VMFUNC reads without #GP; it is 0 unless "enable VM functions"
 *                         (secondary bit 13) may be 1.
 *  l2-vmfunc-eptp-switch  EPTP switching: VMLAUNCH fails with VMfailValid(7) for an unaligned EPTP-list
 *                         address, VM-function control bit 1, EPTP switching without EPT; L2 reads a
 *                         page through EPT12 A, VMFUNC(0, 1) to B (the page remapped), VMFUNC(0, 0)
 *                         back, again to B: no exits, EPT_POINTER reads B; VMFUNC with index 512, with
 *                         an entry of reserved memory type, and function 1 each exit (59, RIP at it).
 *  hyperv-replay-cap-msrs the capability MSRs in Hyper-V's order (480H, 48DH-490H, 486H-489H, 48BH,
 *                         48CH, 491H, 485H) read without #GP.
 *  hyperv-replay-controls primary controls 0xb6a06dfa (plus what the TRUE MSR forces) and secondary
 *                         EPT, VPID, unrestricted guest, RDTSCP, INVPCID, XSAVES, virtualize APIC
 *                         accesses are allowed.
 *  hyperv-replay-launch   VMLAUNCH with those controls (as Hyper-V writes them, not masked): the
 *                         "root partition" L2 on EPT12 (identity, 2 MiB pages), I/O bitmaps of
 *                         zeros, an MSR bitmap that exits on everything except FS/GS/KERNEL_GS_BASE:
 *                         CPUID exits (10) and takes L1's values, CR8 goes to the virtual-APIC page
 *                         without exits, FS base write/read without exits, RDMSR 10H exits (31),
 *                         VMCALL exits (18). Then a second VMCS on the same EPT12: VMLAUNCH with
 *                         RFLAGS bit 1 clear fails (reason 0x80000021), VMLAUNCH after the fix runs
 *                         L2 to its VMCALL.
 */
#include "lib.h"
#include "vmx.h"
#include "l1.h"

#define APIC_TPR 0x80
#define HV_PROC 0xb6a06dfau           /* Hyper-V's primary controls (XMHF64 bug 104) */
#define HV_PROC2 (PROC2_ENABLE_EPT | PROC2_ENABLE_VPID | PROC2_UNRESTRICTED_GUEST | PROC2_ENABLE_RDTSCP | \
                  PROC2_ENABLE_INVPCID | PROC2_ENABLE_XSAVES | PROC2_VIRT_APIC_ACCESSES)

static uint8_t vapic[PAGE] __attribute__((aligned(PAGE)));        /* virtual-APIC page */
static uint8_t apic_access[PAGE] __attribute__((aligned(PAGE)));  /* APIC-access page */
static uint8_t io_zero[2][PAGE] __attribute__((aligned(PAGE)));
static uint64_t ept_pml4[512] __attribute__((aligned(PAGE)));    /* EPT12: identity, 2 MiB pages */
static uint64_t ept_pdpt[512] __attribute__((aligned(PAGE)));
static uint64_t ept_pd[4][512] __attribute__((aligned(PAGE)));
/* l2-vmfunc-eptp-switch: EPT12 B = A with page vf_p mapped to vf_q; the EPTP list */
static uint64_t eptb_pml4[512] __attribute__((aligned(PAGE)));
static uint64_t eptb_pdpt[512] __attribute__((aligned(PAGE)));
static uint64_t eptb_pd[512] __attribute__((aligned(PAGE)));
static uint64_t eptb_pt[512] __attribute__((aligned(PAGE)));
static uint64_t eptp_list[512] __attribute__((aligned(PAGE)));
static uint64_t vf_p[512] __attribute__((aligned(PAGE)));
static uint64_t vf_q[512] __attribute__((aligned(PAGE)));

extern char l2_cr8[], l2_cr8x[], l2_cr8x_store[], l2_cr8x_load[], l2_cr8x_vmcall[];
extern char l2_tpr[], l2_tpr_low[], l2_tpr_after[];
extern char l2_aa[], l2_aa_read[], l2_aa_read_end[], l2_aa_write[], l2_aa_write_end[], l2_aa_vmcall[];
extern char l2_vf[], l2_vf_index[], l2_vf_eptp[], l2_vf_leaf[], l2_vf_vmcall[];
extern char l2_hv[], l2_hv_cpuid[], l2_hv_rdmsr[], l2_hv_vmcall[], l2_hv2[];

asm(".text\n"
    /* l2-tpr-shadow-cr8 */
    "l2_cr8:\n"
    "  mov %cr8, %rax\n"
    "  mov $9, %ebx\n"
    "  mov %rbx, %cr8\n"
    "  mov %cr8, %rcx\n"
    "  vmcall\n"
    "  ud2\n"
    /* l2-cr8-exiting */
    "l2_cr8x:\n"
    "  mov $7, %ebx\n"
    "l2_cr8x_store:\n"
    "  mov %cr8, %rax\n"                        /* exits: CR8 store */
    "l2_cr8x_load:\n"
    "  mov %rbx, %cr8\n"                        /* exits: CR8 load */
    "l2_cr8x_vmcall:\n"
    "  vmcall\n"
    "  ud2\n"
    /* l2-tpr-below-threshold */
    "l2_tpr:\n"
    "  mov $5, %eax\n"
    "  mov %rax, %cr8\n"                        /* 5 >= threshold 4: no exit */
    "  mov $2, %eax\n"
    "l2_tpr_low:\n"
    "  mov %rax, %cr8\n"                        /* 2 < 4: TPR below threshold, after the MOV */
    "l2_tpr_after:\n"
    "  vmcall\n"
    "  ud2\n"
    /* l2-apic-access: RSI = the APIC-access page */
    "l2_aa:\n"
    "  mov 0x80(%rsi), %eax\n"                  /* virtualized with TPR shadow, else exits */
    "  mov %rax, %r8\n"
    "l2_aa_read:\n"
    "  mov 0x300(%rsi), %ebx\n"                 /* exits: linear read */
    "l2_aa_read_end:\n"
    "  mov $0x50, %eax\n"
    "l2_aa_write:\n"
    "  mov %eax, 0x310(%rsi)\n"                 /* exits: linear write */
    "l2_aa_write_end:\n"
    "  mov $0x40, %ecx\n"
    "  mov %ecx, 0x80(%rsi)\n"                  /* virtualized: VTPR */
    "  mov $0xfee00000, %edi\n"                 /* the real APIC's TPR (L0's trap under XMHF) */
    "  movl $0x20, 0x80(%rdi)\n"
    "  mov 0x80(%rdi), %edx\n"
    "  movl $0, 0x80(%rdi)\n"
    "l2_aa_vmcall:\n"
    "  vmcall\n"
    "  ud2\n"
    /* l2-vmfunc-eptp-switch: RSI = vf_p */
    "l2_vf:\n"
    "  mov (%rsi), %r8\n"                       /* EPT12 A: vf_p */
    "  xor %eax, %eax\n"
    "  mov $1, %ecx\n"
    "  vmfunc\n"                                /* to EPT12 B */
    "  mov (%rsi), %r9\n"                       /* vf_q */
    "  xor %ecx, %ecx\n"
    "  vmfunc\n"                                /* back to A */
    "  mov (%rsi), %r10\n"
    "  mov $1, %ecx\n"
    "  vmfunc\n"                                /* B again */
    "  mov $512, %ecx\n"
    "l2_vf_index:\n"
    "  vmfunc\n"                                /* exits: index past the list */
    "  mov $2, %ecx\n"
    "l2_vf_eptp:\n"
    "  vmfunc\n"                                /* exits: entry 2 is not a valid EPTP */
    "  mov $1, %eax\n"
    "  xor %ecx, %ecx\n"
    "l2_vf_leaf:\n"
    "  vmfunc\n"                                /* exits: function 1 not enabled */
    "  mov (%rsi), %r11\n"
    "l2_vf_vmcall:\n"
    "  vmcall\n"
    "  ud2\n"
    /* hyperv-replay-launch: the root partition */
    "l2_hv:\n"
    "  xor %eax, %eax\n"
    "l2_hv_cpuid:\n"
    "  cpuid\n"                                 /* exits */
    "  mov %rax, %r11\n"
    "  mov %cr8, %r8\n"                         /* VTPR, no exit */
    "  mov $0xb, %eax\n"
    "  mov %rax, %cr8\n"
    "  mov %cr8, %r9\n"
    "  mov $0xc0000100, %ecx\n"                 /* FS base: write and read without exits */
    "  mov $0x5000, %eax\n"
    "  xor %edx, %edx\n"
    "  wrmsr\n"
    "  xor %eax, %eax\n"
    "  rdmsr\n"
    "  mov %rax, %r10\n"
    "  mov $0xc0000102, %ecx\n"                 /* KERNEL_GS_BASE write: no exit */
    "  mov $0x6000, %eax\n"
    "  xor %edx, %edx\n"
    "  wrmsr\n"
    "  mov $0x10, %ecx\n"
    "l2_hv_rdmsr:\n"
    "  rdmsr\n"                                 /* exits: IA32_TSC read bit set */
    "l2_hv_vmcall:\n"
    "  vmcall\n"
    "  ud2\n"
    "l2_hv2:\n"
    "  mov %cr8, %rax\n"
    "  vmcall\n"
    "  ud2\n");

static unsigned maxphy;

static void vmx_init(void)
{
    l2_idt_init(l2_unexpected_handler);
    if (l1_init())
        l1_vmxon();
    maxphy = cpuid(0x80000000).a >= 0x80000008 ? cpuid(0x80000008).a & 0xff : 36;
}

static uint32_t vtpr(void) { return *(volatile uint32_t *)(vapic + APIC_TPR); }
static void set_vtpr(uint32_t v) { *(volatile uint32_t *)(vapic + APIC_TPR) = v; }

static bool tpr_shadow_allowed(const char *name)
{
    if (vmx_ctl_allowed(cap_proc, PROC_TPR_SHADOW))
        return true;
    test_check(false, "%s: use TPR shadow not allowed (0x%016llx)", name, U64(cap_proc));
    return false;
}

/* A VMCS with the TPR shadow on vapic (threshold `thr`) for L2 code at rip. */
static bool build_tpr(uint64_t rip, uint32_t proc, uint32_t proc2, uint32_t thr)
{
    struct l2_setup s = { .rip = rip, .proc = PROC_TPR_SHADOW | proc, .proc2 = proc2 };
    if (!vmcs_build(&s))
        return false;
    vmw(VMCS_VIRTUAL_APIC_PAGE_ADDR, PA(vapic));
    vmw(VMCS_TPR_THRESHOLD, thr);
    return test_check(vmcs_log.errors == 0, "VMWRITE of the TPR-shadow fields failed (0x%x)",
                      vmcs_log.first_bad);
}

/* Built once: the replay's second VMCS and EPT02s under XMHF share it. */
static void ept_identity(void)
{
    static bool done;
    if (done)
        return;
    done = true;
    memset(ept_pml4, 0, PAGE);
    memset(ept_pdpt, 0, PAGE);
    ept_pml4[0] = PA(ept_pdpt) | 7;
    for (int g = 0; g < 4; g++) {
        ept_pdpt[g] = PA(ept_pd[g]) | 7;
        for (int i = 0; i < 512; i++) {
            uint64_t pa = ((uint64_t)g << 30) | ((uint64_t)i << 21);
            /* WB below 3 GiB, UC above (the local APIC, PCI holes) */
            ept_pd[g][i] = pa | 7 | (1ull << 7) | ((g < 3 ? 6ull : 0ull) << 3);
        }
    }
}

static void t_tpr_shadow(void)
{
    if (test_begin("l2-tpr-shadow-cr8") && l1_need_vmx() && tpr_shadow_allowed("l2-tpr-shadow-cr8")) {
        memset(vapic, 0, PAGE);
        set_vtpr(0x12340050);                               /* bytes 081H-083H: cleared by MOV to CR8 */
        *(volatile uint32_t *)(vapic + 0x84) = 0x12345678;  /* not VTPR: untouched */
        if (build_tpr(PA(l2_cr8), 0, 0, 0) && run_expect(true, EXIT_REASON_VMCALL, "CR8 through the TPR shadow")) {
            check_u64(l2_regs.rax, 5, "MOV from CR8 with VTPR 0x50");
            check_u64(l2_regs.rcx, 9, "MOV from CR8 after MOV to CR8 of 9");
            check_u64(vtpr(), 0x90, "VTPR (dword at 080H) after MOV to CR8 of 9");
            check_u64(*(volatile uint32_t *)(vapic + 0x84), 0x12345678, "virtual-APIC page at 084H");
        }
    }
    test_end();

    if (test_begin("l2-cr8-exiting") && l1_need_vmx() && tpr_shadow_allowed("l2-cr8-exiting")) {
        set_vtpr(0x30);
        if (build_tpr(PA(l2_cr8x), PROC_CR8_LOAD_EXITING | PROC_CR8_STORE_EXITING, 0, 0)) {
            if (run_expect_at(true, EXIT_REASON_CR_ACCESS, l2_cr8x_store, "MOV RAX <- CR8")) {
                check_u64(ex.qual, 0x18, "CR8 store qualification (CR8, MOV from CR, RAX)");
                l2_regs.rax = 0xc;
                advance_rip();
            }
            if (run_expect_at(false, EXIT_REASON_CR_ACCESS, l2_cr8x_load, "MOV CR8 <- RBX")) {
                check_u64(ex.qual, 0x308, "CR8 load qualification (CR8, MOV to CR, RBX)");
                check_u64(l2_regs.rax, 0xc, "L2's RAX after the emulated CR8 store");
                advance_rip();
            }
            if (run_expect_at(false, EXIT_REASON_VMCALL, l2_cr8x_vmcall, "VMCALL after the CR8 exits"))
                check_u64(vtpr(), 0x30, "VTPR after intercepted CR8 accesses");
        }
    }
    test_end();

    if (test_begin("l2-tpr-below-threshold") && l1_need_vmx() && tpr_shadow_allowed("l2-tpr-below-threshold")) {
        set_vtpr(0x60);
        if (build_tpr(PA(l2_tpr), 0, 0, 4) &&
            run_expect_at(true, EXIT_REASON_TPR_BELOW_THRESHOLD, l2_tpr_after, "MOV to CR8 of 2, threshold 4")) {
            check_u64(ex.qual, 0, "TPR-below-threshold qualification");
            check_u64(vtpr(), 0x20, "VTPR after the TPR-below-threshold exit");
            vmw(VMCS_TPR_THRESHOLD, 0);
            run_expect_at(false, EXIT_REASON_VMCALL, l2_tpr_after, "VMCALL after the TPR exit");
        }
    }
    test_end();

    if (test_begin("l2-tpr-entry-failures") && l1_need_vmx() && tpr_shadow_allowed("l2-tpr-entry-failures")) {
        set_vtpr(0x60);
        if (build_tpr(PA(l2_cr8), 0, 0, 0)) {
            vmw(VMCS_VIRTUAL_APIC_PAGE_ADDR, PA(vapic) + 0x10);
            enter_expect_fail(true, VMX_FAIL_VALID_ERR(7), "virtual-APIC address not 4 KiB aligned");
            vmw(VMCS_VIRTUAL_APIC_PAGE_ADDR, 1ull << maxphy);
            enter_expect_fail(true, VMX_FAIL_VALID_ERR(7), "virtual-APIC address beyond the physical-address width");
            vmw(VMCS_VIRTUAL_APIC_PAGE_ADDR, PA(vapic));
            vmw(VMCS_TPR_THRESHOLD, 0x10);
            enter_expect_fail(true, VMX_FAIL_VALID_ERR(7), "TPR threshold 0x10 (bits 31:4 set)");
            vmw(VMCS_TPR_THRESHOLD, 7);
            enter_expect_fail(true, VMX_FAIL_VALID_ERR(7), "TPR threshold 7 above VTPR[7:4] = 6");
            vmw(VMCS_TPR_THRESHOLD, 6);
            if (run_expect(true, EXIT_REASON_VMCALL, "TPR threshold 6 = VTPR[7:4]"))
                check_u64(l2_regs.rax, 6, "MOV from CR8 after the failed entries");
        }
    }
    test_end();
}

static void t_apic_access(void)
{
    if (test_begin("l2-apic-access") && l1_need_vmx() && tpr_shadow_allowed("l2-apic-access")) {
        if (!proc2_allowed(PROC2_VIRT_APIC_ACCESSES)) {
            test_check(false, "virtualize APIC accesses not allowed (0x%016llx)", U64(cap_proc2));
        } else if (build_tpr(PA(l2_aa), 0, PROC2_VIRT_APIC_ACCESSES, 0)) {
            memset(apic_access, 0, PAGE);
            set_vtpr(0x70);
            vmw(VMCS_APIC_ACCESS_ADDR, PA(apic_access));
            l2_regs.rsi = PA(apic_access);
            if (run_expect_at(true, EXIT_REASON_APIC_ACCESS, l2_aa_read, "read of APIC-access page offset 300H")) {
                check_u64(ex.qual, 0x300, "APIC-access qualification (offset 300H, linear read)");
                check_u64(l2_regs.r8, 0x70, "virtualized read of offset 080H");
                l2_regs.rbx = 0x1234;
                vmw(VMCS_GUEST_RIP, PA(l2_aa_read_end));
            }
            if (run_expect_at(false, EXIT_REASON_APIC_ACCESS, l2_aa_write, "write of APIC-access page offset 310H")) {
                check_u64(ex.qual, 0x1310, "APIC-access qualification (offset 310H, linear write)");
                check_u64(l2_regs.rbx, 0x1234, "L2's RBX after the emulated read");
                vmw(VMCS_GUEST_RIP, PA(l2_aa_write_end));
            }
            if (run_expect_at(false, EXIT_REASON_VMCALL, l2_aa_vmcall, "VMCALL after the APIC accesses")) {
                check_u64(vtpr(), 0x40, "VTPR after the virtualized write of offset 080H");
                check_u64(*(volatile uint32_t *)(apic_access + 0x310), 0, "APIC-access page itself unwritten");
                check_u64(l2_regs.rdx & 0xff, 0x20, "real APIC TPR written by L2 (not the APIC-access page)");
            }
            /* Without the TPR shadow, offset 080H is not virtualized: it exits. */
            struct l2_setup s = { .rip = PA(l2_aa), .proc2 = PROC2_VIRT_APIC_ACCESSES };
            if (vmcs_build(&s)) {
                vmw(VMCS_APIC_ACCESS_ADDR, PA(apic_access));
                l2_regs.rsi = PA(apic_access);
                if (run_expect_at(true, EXIT_REASON_APIC_ACCESS, l2_aa, "read of offset 080H without TPR shadow"))
                    check_u64(ex.qual, 0x80, "APIC-access qualification (offset 080H, linear read)");
            }
        }
    }
    test_end();
}

/* The APIC-access page on the real xAPIC page, which XMHF keeps read-only in EPT01 for its own trap:
 * L2's writes there are L1's APIC-access exits all the same, and never reach the APIC. */
static void t_apic_access_apic_base(bool ept)
{
    if (test_begin(ept ? "l2-apic-access-at-apic-base-ept" : "l2-apic-access-at-apic-base") && l1_need_vmx()) {
        uint64_t base = rdmsr(0x1b) & ~0xfffull;
        uint32_t tpr = apic_read(APIC_TPR), icr_hi = apic_read(0x310);
        struct l2_setup s = { .rip = PA(l2_aa), .proc2 = PROC2_VIRT_APIC_ACCESSES };
        if (ept) {
            ept_identity();
            invept(INVEPT_ALL, 0);
            s.proc2 |= PROC2_ENABLE_EPT;
            s.eptp = PA(ept_pml4) | 6 | (3 << 3);
        }
        if (!proc2_allowed(s.proc2)) {
            test_check(false, "secondary controls 0x%x not allowed (0x%016llx)", s.proc2, U64(cap_proc2));
        } else if (vmcs_build(&s)) {
            vmw(VMCS_APIC_ACCESS_ADDR, base);
            l2_regs.rsi = base;
            if (run_expect_at(true, EXIT_REASON_APIC_ACCESS, l2_aa, "read of offset 080H")) {
                check_u64(ex.qual, 0x80, "APIC-access qualification (offset 080H, linear read)");
                vmw(VMCS_GUEST_RIP, PA(l2_aa_read));
            }
            if (run_expect_at(false, EXIT_REASON_APIC_ACCESS, l2_aa_read, "read of offset 300H")) {
                check_u64(ex.qual, 0x300, "APIC-access qualification (offset 300H, linear read)");
                vmw(VMCS_GUEST_RIP, PA(l2_aa_read_end));
            }
            if (run_expect_at(false, EXIT_REASON_APIC_ACCESS, l2_aa_write, "write of offset 310H")) {
                check_u64(ex.qual, 0x1310, "APIC-access qualification (offset 310H, linear write)");
                vmw(VMCS_GUEST_RIP, PA(l2_aa_write_end));
            }
            if (run_expect(false, EXIT_REASON_APIC_ACCESS, "write of offset 080H"))
                check_u64(ex.qual, 0x1080, "APIC-access qualification (offset 080H, linear write)");
            check_u64(apic_read(APIC_TPR), tpr, "real APIC TPR after L2's writes");
            check_u64(apic_read(0x310), icr_hi, "real APIC ICR high after L2's writes");
        }
    }
    test_end();
}

/* The same page with the TPR shadow (threshold 1): stores to 080H are virtualized into VTPR, the last
 * one (0) with a TPR-below-threshold exit after it; reads of 080H give VTPR. */
static void t_apic_access_apic_base_tpr(void)
{
    if (test_begin("l2-apic-access-at-apic-base-tpr") && l1_need_vmx() &&
        tpr_shadow_allowed("l2-apic-access-at-apic-base-tpr")) {
        uint64_t base = rdmsr(0x1b) & ~0xfffull;
        uint32_t tpr = apic_read(APIC_TPR), icr_hi = apic_read(0x310);
        if (!proc2_allowed(PROC2_VIRT_APIC_ACCESSES)) {
            test_check(false, "virtualize APIC accesses not allowed (0x%016llx)", U64(cap_proc2));
        } else if (build_tpr(PA(l2_aa), 0, PROC2_VIRT_APIC_ACCESSES, 1)) {
            set_vtpr(0x70);
            vmw(VMCS_APIC_ACCESS_ADDR, base);
            l2_regs.rsi = base;
            if (run_expect_at(true, EXIT_REASON_APIC_ACCESS, l2_aa_read, "read of offset 300H")) {
                check_u64(ex.qual, 0x300, "APIC-access qualification (offset 300H, linear read)");
                check_u64(l2_regs.r8, 0x70, "virtualized read of offset 080H");
                vmw(VMCS_GUEST_RIP, PA(l2_aa_read_end));
            }
            if (run_expect_at(false, EXIT_REASON_APIC_ACCESS, l2_aa_write, "write of offset 310H")) {
                check_u64(ex.qual, 0x1310, "APIC-access qualification (offset 310H, linear write)");
                vmw(VMCS_GUEST_RIP, PA(l2_aa_write_end));
            }
            if (run_expect_at(false, EXIT_REASON_TPR_BELOW_THRESHOLD, l2_aa_vmcall, "virtualized write of 0 to 080H")) {
                check_u64(vtpr(), 0, "VTPR after the virtualized writes");
                check_u64(l2_regs.rdx, 0x20, "virtualized read of 080H after writing 0x20");
                check_u64(l2_regs.rcx, 0x40, "L2's ECX after the virtualized write");
            }
            /* With VTPR 0 < threshold 1 the next entry would exit again at once (bare Bochs does). */
            vmw(VMCS_TPR_THRESHOLD, 0);
            run_expect_at(false, EXIT_REASON_VMCALL, l2_aa_vmcall, "VMCALL after the TPR exit");
            check_u64(apic_read(APIC_TPR), tpr, "real APIC TPR after L2's writes");
            check_u64(apic_read(0x310), icr_hi, "real APIC ICR high after L2's writes");
        }
    }
    test_end();
}

static void t_vmfunc_msr(void)
{
    if (test_begin("vmx-vmfunc-msr") && l1_need_vmx()) {
        uint64_t v = 0;
        int e = rdmsr_safe(MSR_IA32_VMX_VMFUNC, &v);
        bool allowed = proc2_allowed(PROC2_ENABLE_VMFUNC);
        info("IA32_VMX_VMFUNC: %s 0x%llx, VM functions %sallowed", e == NO_EXCEPTION ? "" : "fault",
             U64(v), allowed ? "" : "not ");
        if (test_check(e == NO_EXCEPTION, "RDMSR IA32_VMX_VMFUNC: exception %d", e))
            test_check((v != 0) == allowed, "IA32_VMX_VMFUNC 0x%llx with VM functions %sallowed", U64(v),
                       allowed ? "" : "not ");
    }
    test_end();
}

/* EPTP switching (VM function 0): L2 switches between two EPT12s through L1's EPTP list without
 * exits; a bad index, an invalid list entry and a function not enabled exit to L1 (59). */
static void t_vmfunc_eptp_switch(void)
{
    if (test_begin("l2-vmfunc-eptp-switch") && l1_need_vmx()) {
        uint64_t vmfunc = 0;
        uint32_t proc2 = PROC2_ENABLE_EPT | PROC2_ENABLE_VMFUNC;
        rdmsr_safe(MSR_IA32_VMX_VMFUNC, &vmfunc);
        if (!proc2_allowed(proc2) || !(vmfunc & 1)) {
            test_check(false, "EPTP switching not offered (secondary 0x%016llx, VMFUNC 0x%llx)", U64(cap_proc2),
                       U64(vmfunc));
            test_end();
            return;
        }
        uint64_t eptp_a = PA(ept_pml4) | 6 | (3 << 3), eptp_b = PA(eptb_pml4) | 6 | (3 << 3);
        ept_identity();
        /* B: A with a 4 KiB table for vf_p's 2 MiB, vf_p -> vf_q */
        memset(eptb_pml4, 0, PAGE);
        memcpy(eptb_pdpt, ept_pdpt, PAGE);
        memcpy(eptb_pd, ept_pd[0], PAGE);
        eptb_pml4[0] = PA(eptb_pdpt) | 7;
        eptb_pdpt[0] = PA(eptb_pd) | 7;
        uint64_t region = PA(vf_p) & ~0x1fffffull;
        for (int i = 0; i < 512; i++)
            eptb_pt[i] = (region + ((uint64_t)i << 12)) | 7 | (6ull << 3);
        eptb_pt[(PA(vf_p) >> 12) & 511] = PA(vf_q) | 7 | (6ull << 3);
        eptb_pd[(PA(vf_p) >> 21) & 511] = PA(eptb_pt) | 7;
        memset(eptp_list, 0, PAGE);
        eptp_list[0] = eptp_a;
        eptp_list[1] = eptp_b;
        eptp_list[2] = PA(eptb_pml4) | 2 | (3 << 3);      /* memory type 2: reserved */
        vf_p[0] = 0x1111;
        vf_q[0] = 0x2222;
        invept(INVEPT_ALL, 0);
        struct l2_setup s = { .rip = PA(l2_vf), .proc2 = proc2, .eptp = eptp_a };
        if (vmcs_build(&s)) {
            vmw(VMCS_VM_FUNCTION_CONTROLS, 1);
            vmw(VMCS_EPTP_LIST_ADDR, PA(eptp_list) + 8);
            enter_expect_fail(true, VMX_FAIL_VALID_ERR(7), "EPTP-list address not 4 KiB aligned");
            vmw(VMCS_EPTP_LIST_ADDR, PA(eptp_list));
            vmw(VMCS_VM_FUNCTION_CONTROLS, 3);
            enter_expect_fail(true, VMX_FAIL_VALID_ERR(7), "VM-function control bit 1 (not offered)");
            vmw(VMCS_VM_FUNCTION_CONTROLS, 1);
            vmw(VMCS_SECONDARY_PROC_CTLS, vmx_ctl_value(cap_proc2, PROC2_ENABLE_VMFUNC));
            enter_expect_fail(true, VMX_FAIL_VALID_ERR(7), "EPTP switching without EPT");
            vmw(VMCS_SECONDARY_PROC_CTLS, vmx_ctl_value(cap_proc2, proc2));
            l2_regs.rsi = PA(vf_p);
            if (run_expect_at(true, EXIT_REASON_VMFUNC, l2_vf_index, "VMFUNC with index 512")) {
                check_u64(l2_regs.r8, 0x1111, "read through EPT12 A");
                check_u64(l2_regs.r9, 0x2222, "read through EPT12 B after VMFUNC(0, 1)");
                check_u64(l2_regs.r10, 0x1111, "read through EPT12 A after VMFUNC(0, 0)");
                check_u64(ex.qual, 0, "VMFUNC exit qualification");
                check_u64(vmr(VMCS_EPT_POINTER), eptp_b, "EPT_POINTER after switching to B");
                advance_rip();
            }
            if (run_expect_at(false, EXIT_REASON_VMFUNC, l2_vf_eptp, "VMFUNC to an invalid EPTP"))
                advance_rip();
            if (run_expect_at(false, EXIT_REASON_VMFUNC, l2_vf_leaf, "VMFUNC function 1"))
                advance_rip();
            if (run_expect_at(false, EXIT_REASON_VMCALL, l2_vf_vmcall, "VMCALL after the VMFUNC exits"))
                check_u64(l2_regs.r11, 0x2222, "read through EPT12 B at the end");
            check_u64(vmr(VMCS_EPT_POINTER), eptp_b, "EPT_POINTER at the end");
        }
    }
    test_end();
}

/* ------------------------------------------------------------------------------------------
 * The Hyper-V replay
 */
static const uint32_t hv_msrs[] = { 0x480, 0x48d, 0x48e, 0x48f, 0x490, 0x486, 0x487, 0x488, 0x489,
                                    0x48b, 0x48c, 0x491, 0x485 };

static void hv_setup_fields(uint32_t proc)
{
    vmw(VMCS_PROC_BASED_CTLS, proc);
    vmw(VMCS_SECONDARY_PROC_CTLS, HV_PROC2);
    vmw(VMCS_EPT_POINTER, PA(ept_pml4) | 6 | (3 << 3));
    vmw(VMCS_VPID, 1);
    vmw(VMCS_VIRTUAL_APIC_PAGE_ADDR, PA(vapic));
    vmw(VMCS_TPR_THRESHOLD, 0);
    vmw(VMCS_APIC_ACCESS_ADDR, PA(apic_access));
    vmw(VMCS_IO_BITMAP_A, PA(io_zero[0]));
    vmw(VMCS_IO_BITMAP_B, PA(io_zero[1]));
    vmw(VMCS_MSR_BITMAP, PA(l1_msr_bitmap));
    vmw(VMCS_TSC_OFFSET, 0);
    vmw(VMCS_XSS_EXIT_BITMAP, 0);
}

static void t_hyperv_replay(void)
{
    uint32_t proc = 0;
    bool ok = false;

    if (test_begin("hyperv-replay-cap-msrs") && l1_need_vmx()) {
        for (unsigned i = 0; i < sizeof(hv_msrs) / sizeof(hv_msrs[0]); i++) {
            uint64_t v;
            int e = rdmsr_safe(hv_msrs[i], &v);
            test_check(e == NO_EXCEPTION, "RDMSR 0x%x: exception %d", hv_msrs[i], e);
        }
    }
    test_end();

    if (test_begin("hyperv-replay-controls") && l1_need_vmx()) {
        proc = HV_PROC | (uint32_t)cap_proc;
        test_check(vmx_ctl_allowed(cap_proc, proc), "primary control bits 0x%x not allowed",
                   proc & ~(uint32_t)(cap_proc >> 32));
        test_check(proc2_allowed(HV_PROC2), "secondary control bits 0x%x not allowed",
                   HV_PROC2 & ~(uint32_t)(cap_proc2 >> 32));
    }
    test_end();

    if (test_begin("hyperv-replay-launch") && l1_need_vmx()) {
        struct l2_setup s = { .rip = PA(l2_hv), .unchecked = true };
        memset(vapic, 0, PAGE);
        memset(apic_access, 0, PAGE);
        memset(io_zero, 0, sizeof(io_zero));
        ept_identity();
        invept(INVEPT_ALL, 0);
        if (vmcs_build(&s)) {
            /* Every MSR access exits except FS/GS/KERNEL_GS_BASE (reads and writes). */
            memset(l1_msr_bitmap, 0xff, PAGE);
            for (int q = 1024; q < 4096; q += 2048)
                l1_msr_bitmap[q + 0x100 / 8] &= (uint8_t)~7u;  /* 0xC0000100-102 */
            hv_setup_fields(proc);
            ok = true;
        }
        /* VMWRITE failures (a field of a feature not offered) are reported after the VMLAUNCH, whose
         * outcome is the first thing this check reports. */
        int werr = vmcs_log.errors;
        uint32_t wbad = vmcs_log.first_bad;
        if (ok && run_expect_at(true, EXIT_REASON_CPUID, l2_hv_cpuid, "root partition CPUID")) {
            l2_regs.rax = 0x40000006;
            advance_rip();
            if (run_expect_at(false, EXIT_REASON_RDMSR, l2_hv_rdmsr, "root partition RDMSR 10H")) {
                check_u64(l2_regs.r11, 0x40000006, "CPUID result L1 gave");
                check_u64(l2_regs.r8, 0, "CR8 read with VTPR 0");
                check_u64(l2_regs.r9, 0xb, "CR8 read after writing 0xb");
                check_u64(vtpr(), 0xb0, "VTPR after CR8 = 0xb");
                check_u64(l2_regs.r10, 0x5000, "FS base read back without exits");
                l2_regs.rax = 1;
                l2_regs.rdx = 0;
                advance_rip();
            }
            run_expect_at(false, EXIT_REASON_VMCALL, l2_hv_vmcall, "root partition VMCALL");
        }
        test_check(werr == 0, "%d VMWRITEs of Hyper-V's fields failed (first 0x%x)", werr, wbad);
        /* Another VMCS on the same EPT12: a VM-entry failure (bad guest state), then a good entry. */
        struct l2_setup s2 = { .rip = PA(l2_hv2), .unchecked = true, .vmcs = 1 };
        if (ok && vmcs_build(&s2)) {
            hv_setup_fields(proc);
            vmw(VMCS_GUEST_RFLAGS, 0);
            if (run_expect(true, VMX_EXIT_REASON_ENTRY_FAIL | EXIT_REASON_INVALID_GUEST_STATE, "RFLAGS bit 1 clear"))
                check_u64(ex.qual, 0, "VM-entry failure qualification");
            vmw(VMCS_GUEST_RFLAGS, 2);
            if (run_expect_at(true, EXIT_REASON_VMCALL, l2_hv2 + 4, "VMLAUNCH after the failed entry"))
                check_u64(l2_regs.rax, 0xb, "CR8 on the second VMCS");
        }
    }
    test_end();
}

void test_main(void)
{
    vmx_init();
    t_tpr_shadow();
    t_apic_access();
    t_apic_access_apic_base(false);
    t_apic_access_apic_base(true);
    t_apic_access_apic_base_tpr();
    t_vmfunc_msr();
    t_vmfunc_eptp_switch();
    t_hyperv_replay();
    l1_done();
}
