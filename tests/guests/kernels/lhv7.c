/* lhv7.bin - L1 test hypervisor, phase 7: TPR shadow (issue 8).
 *
 * L1 scaffolding from the library, as lhv4 (l1.h). No EPT; L2 runs on L1's identity-mapped page
 * tables. Everything on the BSP.
 *
 * Checks (SDM Vol. 3 25.6.8, 26.1.3, 27.2.1.1, 28.2.1, 29.1-29.3):
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
 */
#include "lib.h"
#include "vmx.h"
#include "l1.h"

#define APIC_TPR 0x80

static uint8_t vapic[PAGE] __attribute__((aligned(PAGE)));        /* virtual-APIC page */

extern char l2_cr8[], l2_cr8x[], l2_cr8x_store[], l2_cr8x_load[], l2_cr8x_vmcall[];
extern char l2_tpr[], l2_tpr_low[], l2_tpr_after[];

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
    "  ud2\n");

static unsigned maxphy;

static void vmx_init(void)
{
    l2_idt_init(l2_unexpected_handler);
    if (l1_init())
        l1_vmxon();
    maxphy = cpuid(0x80000000).a >= 0x80000008 ? cpuid(0x80000008).a & 0xff : 36;
}

static bool step(bool launch, uint32_t reason, const void *rip, const char *what)
{
    if (!run_expect(launch, reason, what))
        return false;
    return test_check(ex.rip == PA(rip), "%s: GUEST_RIP 0x%llx, expected 0x%llx", what,
                      U64(ex.rip), U64(PA(rip)));
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
            if (step(true, EXIT_REASON_CR_ACCESS, l2_cr8x_store, "MOV RAX <- CR8")) {
                check_u64(ex.qual, 0x18, "CR8 store qualification (CR8, MOV from CR, RAX)");
                l2_regs.rax = 0xc;
                advance_rip();
            }
            if (step(false, EXIT_REASON_CR_ACCESS, l2_cr8x_load, "MOV CR8 <- RBX")) {
                check_u64(ex.qual, 0x308, "CR8 load qualification (CR8, MOV to CR, RBX)");
                check_u64(l2_regs.rax, 0xc, "L2's RAX after the emulated CR8 store");
                advance_rip();
            }
            if (step(false, EXIT_REASON_VMCALL, l2_cr8x_vmcall, "VMCALL after the CR8 exits"))
                check_u64(vtpr(), 0x30, "VTPR after intercepted CR8 accesses");
        }
    }
    test_end();

    if (test_begin("l2-tpr-below-threshold") && l1_need_vmx() && tpr_shadow_allowed("l2-tpr-below-threshold")) {
        set_vtpr(0x60);
        if (build_tpr(PA(l2_tpr), 0, 0, 4) &&
            step(true, EXIT_REASON_TPR_BELOW_THRESHOLD, l2_tpr_after, "MOV to CR8 of 2, threshold 4")) {
            check_u64(ex.qual, 0, "TPR-below-threshold qualification");
            check_u64(vtpr(), 0x20, "VTPR after the TPR-below-threshold exit");
            vmw(VMCS_TPR_THRESHOLD, 0);
            step(false, EXIT_REASON_VMCALL, l2_tpr_after, "VMCALL after the TPR exit");
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

void test_main(void)
{
    vmx_init();
    t_tpr_shadow();
    l1_done();
}
