/* lhv6.bin - L1 test hypervisor, phase 6: conformance details an outside VMX test kernel found
 * (issue 15), each compared with bare Bochs.
 *
 * L1 scaffolding from the library, as lhv2/lhv4 (l1.h: vm_enter/vm_exit_stub, L1 GDT with a TSS,
 * vmcs_build from the TRUE capability MSRs). No EPT: L2 runs in 64-bit mode on L1's page tables.
 * Everything on the BSP.
 *
 * Checks (SDM Vol. 3):
 *  l2-secondary-ud      with #UD intercepted: RDTSCP with "enable RDTSCP" clear, INVPCID with
 *                       "enable INVPCID" clear and XSAVES with "enable XSAVES/XRSTORS" clear each
 *                       exit with #UD (0, vector 6, RIP at the instruction); with the control set
 *                       (where allowed) each runs and L2 reaches its VMCALL (SDM 26.3, 25.6.2).
 */
#include "lib.h"
#include "vmx.h"
#include "l1.h"

#define CR4_OSXSAVE (1ull << 18)

/* ------------------------------------------------------------------------------------------
 * L2 code (64-bit, CPL 0, IF = 0). Each program ends in VMCALL.
 */
extern char l2_rdtscp[], l2_rdtscp_insn[], l2_rdtscp_vmcall[];
extern char l2_invpcid[], l2_invpcid_insn[], l2_invpcid_vmcall[];
extern char l2_xsaves[], l2_xsaves_insn[], l2_xsaves_vmcall[];

struct inv_desc invpcid_desc;            /* used by the L2 code below */
uint8_t xsave_area[4096] __attribute__((aligned(64)));

asm(".text\n"
    /* l2-secondary-ud */
    "l2_rdtscp:\n"
    "l2_rdtscp_insn:\n"
    "  rdtscp\n"
    "l2_rdtscp_vmcall:\n"
    "  vmcall\n"
    "  ud2\n"
    "l2_invpcid:\n"
    "  mov $2, %eax\n"                          /* all contexts, globals included */
    "  lea invpcid_desc(%rip), %rsi\n"
    "l2_invpcid_insn:\n"
    "  invpcid (%rsi), %rax\n"
    "l2_invpcid_vmcall:\n"
    "  vmcall\n"
    "  ud2\n"
    "l2_xsaves:\n"
    "  lea xsave_area(%rip), %rdi\n"
    "  xor %eax, %eax\n"                        /* RFBM 0: the header only */
    "  xor %edx, %edx\n"
    "l2_xsaves_insn:\n"
    "  xsaves (%rdi)\n"
    "l2_xsaves_vmcall:\n"
    "  vmcall\n"
    "  ud2\n");

static void vmx_init(void)
{
    l2_idt_init(l2_unexpected_handler);   /* any vector: VMCALL with L2_MARK_UNEXPECTED */
    if (l1_init())
        l1_vmxon();
}

/* Enter L2 and expect an exit with this reason at this RIP. */
static bool step(bool launch, uint32_t reason, const void *rip, const char *what)
{
    if (!run_expect(launch, reason, what))
        return false;
    return test_check(ex.rip == PA(rip), "%s: GUEST_RIP 0x%llx, expected 0x%llx", what,
                      U64(ex.rip), U64(PA(rip)));
}

/* ------------------------------------------------------------------------------------------
 * l2-secondary-ud: a secondary control that enables an instruction, clear, makes it #UD in L2.
 */
static void secondary_case(const char *name, uint32_t ctl, void *prog, void *insn, void *vmcall,
                           uint64_t cr4_extra)
{
    char what[64];
    struct l2_setup s = { .rip = PA(prog), .exc_bitmap = 1u << EXC_UD };

    if (!has_proc2) {
        info("l2-secondary-ud: no secondary controls");
        return;
    }
    /* The control clear (secondary controls on, with another one so that the field is used). */
    s.proc2 = proc2_allowed(PROC2_DESC_TABLE_EXITING) ? PROC2_DESC_TABLE_EXITING : 0;
    if (vmcs_build(&s)) {
        if (!s.proc2)
            vmw(VMCS_PROC_BASED_CTLS, vmr(VMCS_PROC_BASED_CTLS) | PROC_SECONDARY_CONTROLS);
        vmw(VMCS_SECONDARY_PROC_CTLS, s.proc2);
        vmw(VMCS_GUEST_CR4, vmr(VMCS_GUEST_CR4) | cr4_extra);
        snprintf(what, sizeof(what), "%s with its control clear", name);
        if (step(true, EXIT_REASON_EXCEPTION_NMI, insn, what))
            check_u64(ex.intr_info, INTR_INFO(INTR_TYPE_HW_EXCEPTION, EXC_UD), what);
    }
    if (!proc2_allowed(ctl)) {
        info("l2-secondary-ud: %s control not allowed", name);
        return;
    }
    s.proc2 = ctl;
    if (vmcs_build(&s)) {
        if (ctl == PROC2_ENABLE_XSAVES)
            vmw(VMCS_XSS_EXIT_BITMAP, 0);
        vmw(VMCS_GUEST_CR4, vmr(VMCS_GUEST_CR4) | cr4_extra);
        snprintf(what, sizeof(what), "%s with its control set", name);
        step(true, EXIT_REASON_VMCALL, vmcall, what);
    }
}

static void t_secondary_ud(void)
{
    if (test_begin("l2-secondary-ud") && l1_need_vmx()) {
        if (cpuid(0x80000000).a >= 0x80000001 && (cpuid(0x80000001).d & (1u << 27)))
            secondary_case("RDTSCP", PROC2_ENABLE_RDTSCP, l2_rdtscp, l2_rdtscp_insn, l2_rdtscp_vmcall, 0);
        else
            info("l2-secondary-ud: no RDTSCP");
        if (cpuid(0).a >= 7 && (cpuid2(7, 0).b & (1u << 10)))
            secondary_case("INVPCID", PROC2_ENABLE_INVPCID, l2_invpcid, l2_invpcid_insn, l2_invpcid_vmcall, 0);
        else
            info("l2-secondary-ud: no INVPCID");
        if (cpuid(0).a >= 0xd && (cpuid(1).c & (1u << 26)) && (cpuid2(0xd, 1).a & (1u << 3)))
            secondary_case("XSAVES", PROC2_ENABLE_XSAVES, l2_xsaves, l2_xsaves_insn, l2_xsaves_vmcall,
                           CR4_OSXSAVE);
        else
            info("l2-secondary-ud: no XSAVES");
    }
    test_end();
}

void test_main(void)
{
    vmx_init();
    t_secondary_ud();
    l1_done();
}
