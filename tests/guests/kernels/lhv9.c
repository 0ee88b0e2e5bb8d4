/* lhv9.bin - L1 test hypervisor, phase 9: VMCS shadowing for L1's own use, IA32_VMX_MISC bits 29 and
 * 30, TSC scaling, PAUSE-loop exiting (issue 8).
 *
 * L1 scaffolding from the library (l1.h), as lhv7. L2 runs 64-bit at CPL 0 on L1's page tables (no
 * EPT12), with an MSR bitmap of zeros. Everything on the BSP.
 *
 * Checks (SDM Vol. 3 25.2, 25.6.5, 25.6.13, 25.6.15, 25.10, 26.1.3, 26.3, 27.2.1.1, 27.3.1.5, 31.3,
 * A.6):
 *  vmx-caps-issue8        secondary controls allow VMCS shadowing (14), PAUSE-loop exiting (10) and TSC
 *                         scaling (25); IA32_VMX_MISC bits 29 and 30 are set.
 *  vmptrld-shadow-vmcs    VMPTRLD of a VMCS whose revision has bit 31 set (shadow-VMCS indicator)
 *                         succeeds; VMPTRST gives it; VMWRITE/VMREAD of GUEST_CS_LIMIT on it work; VMXON
 *                         is not involved (L1 is in VMX operation already).
 *  vmlaunch-shadow-vmcs   VMLAUNCH with that shadow VMCS current: VMfailInvalid (SDM 31.3 VMLAUNCH; bare
 *                         Bochs 2.7 omits the check, docs/known-bugs.md).
 *  l1-vmwrite-exit-info   (MISC bit 29) VMWRITE of EXIT_QUALIFICATION and EXIT_REASON of the current VMCS
 *                         succeeds and VMREAD gives the values back.
 *  vmcs-shadowing-entry-failures  with VMCS shadowing: VMLAUNCH fails with VMfailValid(7) for a VMREAD
 *                         bitmap not 4 KiB aligned or beyond the physical-address width, and the same
 *                         for the VMWRITE bitmap; VM-entry failure (0x80000021, qualification 4) for a
 *                         link pointer to a VMCS without the shadow indicator, not 4 KiB aligned, equal
 *                         to the current VMCS; without shadowing, for a link pointer to a shadow VMCS;
 *                         then VMLAUNCH with the link pointer on the shadow VMCS runs L2 to VMCALL.
 *  l2-vmcs-shadowing      L2's VMREAD/VMWRITE with VMCS shadowing, bitmaps all zero except GUEST_ES_LIMIT
 *                         (read) and GUEST_SS_LIMIT (write): VMREAD of GUEST_CS_LIMIT gives the shadow
 *                         VMCS's 0x1234 (register and memory forms), VMWRITE of GUEST_DS_LIMIT = 0x5678
 *                         and of EXIT_QUALIFICATION = 0xabcd (read-only, MISC bit 29) succeed, VMREAD of
 *                         encoding 7FFEH fails with ZF (VMfailValid; VMCS12's VM-instruction error 12);
 *                         VMREAD of GUEST_ES_LIMIT exits (23, instruction information reg1 RAX,
 *                         register form, reg2 RBX; the qualification, a memory operand's displacement,
 *                         is undefined for a register operand and Bochs leaves stale bits in it),
 *                         VMWRITE of GUEST_SS_LIMIT exits (25, reg1 RCX, reg2 RDX), VMREAD of an
 *                         encoding above 7FFFH exits (23); no other exits.
 *                         After VMPTRLD of the shadow VMCS, L1 reads 0x5678, 0xabcd and 0x1234 there;
 *                         VMCS12's GUEST_DS_LIMIT is unchanged.
 *  l2-vmcs-shadowing-faults  L2's VMREAD (bitmap bit 0) into memory at a non-canonical address with
 *                         exception-bitmap bit 13: exception exit (0, interruption information
 *                         0x80000b0d, error code 0, RIP at the VMREAD); at an address L2's paging does not
 *                         map (4000_0000_0000H) with bit 14: exit 0 (0x80000b0e, error code 2,
 *                         qualification = the address); without bit 14: L2's own #PF handler (error code
 *                         2, pushed RIP at the VMREAD).
 *  l2-vmcs-shadowing-ept12  L2 on EPT12 (identity; the page of the operand 4 KiB, read-only, then not
 *                         present, then read/write; INVEPT after each change): L2's VMREAD (bitmap bit 0)
 *                         into that page exits with an EPT violation (48; qualification bits 8:0 0x18a,
 *                         then 0x182; guest-physical and guest-linear address = the operand's), then
 *                         writes the shadow VMCS's GUEST_CS_LIMIT there and reaches VMCALL.
 *  l2-vmcs-shadowing-no-link  shadowing with link pointer FFFFFFFF_FFFFFFFFH: L2's VMREAD with bitmap bit
 *                         0 fails with CF (VMfailInvalid), no exit.
 *  l2-tsc-scaling         TSC multiplier 0 with TSC scaling: VMfailValid(7). L2 runs a fixed loop between
 *                         two RDTSCs: with TSC offsetting and multiplier 1.0 (2^48) the delta is D; with
 *                         multiplier 2.0 it is 2D (within 2 ticks), RDTSCP and RDMSR IA32_TSC after it
 *                         do not go back (with 2 CPUs Bochs advances its clock per quantum) and stay
 *                         below 2 * L1's TSC after the exit + offset; L2's first RDTSC lies between
 *                         2 * L1's TSC before VMLAUNCH and 2 * L1's TSC after the exit, plus the offset;
 *                         with multiplier 0.5 the delta is D/2 (within 2); TSC scaling without TSC
 *                         offsetting does not scale (delta D).
 *  l2-pause-loop-exiting  PAUSE-loop exiting, gap 1000, window 0: L2's loop of PAUSEs exits (40, RIP at a
 *                         PAUSE, qualification 0) within 10 PAUSEs; with window FFFFFFFFH the loop of
 *                         1000 PAUSEs runs to VMCALL; with PAUSE exiting (primary bit 30) the first
 *                         PAUSE exits.
 *  l2-inject-ilen0        (MISC bit 30) VM entry injecting a software interrupt (vector 30H) and a
 *                         software exception (#BP) with instruction length 0: L2's handler sees the
 *                         pushed RIP = GUEST_RIP.
 */
#include "lib.h"
#include "vmx.h"
#include "l1.h"

#define MISC_VMWRITE_ANY  (1ull << 29)
#define MISC_INJECT_ILEN0 (1ull << 30)
#define REASON_ENTRY_GUEST_STATE (VMX_EXIT_REASON_ENTRY_FAIL | EXIT_REASON_INVALID_GUEST_STATE)
#define REASON_PAUSE EXIT_REASON_PAUSE
#define MARK_INT30 0x3030ull
#define MARK_BP 0xb0b0ull

static uint8_t shadow_vmcs[PAGE] __attribute__((aligned(PAGE)));
static uint8_t plain_vmcs[PAGE] __attribute__((aligned(PAGE)));
static uint8_t rd_bitmap[PAGE] __attribute__((aligned(PAGE)));
static uint8_t wr_bitmap[PAGE] __attribute__((aligned(PAGE)));
static uint64_t l2_mem;
/* l2-vmcs-shadowing-ept12: EPT12 identity with 2 MiB pages, 4 KiB ones around ept_target */
static uint64_t ept_pml4[512] __attribute__((aligned(PAGE)));
static uint64_t ept_pdpt[512] __attribute__((aligned(PAGE)));
static uint64_t ept_pd[4][512] __attribute__((aligned(PAGE)));
static uint64_t ept_pt[512] __attribute__((aligned(PAGE)));
static uint64_t ept_target[512] __attribute__((aligned(PAGE)));

extern char l2_sh[], l2_sh_rdexit[], l2_sh_wrexit[], l2_sh_bigexit[], l2_sh_vmcall[];
extern char l2_nolink[];
extern char l2_shf[], l2_shf_vmread[];
extern char l2_tsc[];
extern char l2_ple[], l2_ple_vmcall[];
extern char l2_inj[], l2_int30_handler[], l2_bp_handler[];

asm(".text\n"
    /* l2-vmcs-shadowing: RSI = &l2_mem */
    "l2_sh:\n"
    "  mov $0x4802, %ebx\n"
    "  vmread %rbx, %r8\n"                      /* GUEST_CS_LIMIT from the shadow VMCS */
    "  mov $0x4806, %ebx\n"
    "  mov $0x5678, %ecx\n"
    "  vmwrite %rcx, %rbx\n"                    /* GUEST_DS_LIMIT into it */
    "  pushf\n"
    "  pop %r11\n"
    "  mov $0x6400, %ebx\n"
    "  mov $0xabcd, %ecx\n"
    "  vmwrite %rcx, %rbx\n"                    /* EXIT_QUALIFICATION (read-only, MISC bit 29) */
    "  pushf\n"
    "  pop %r12\n"
    "  mov $0x4802, %ebx\n"
    "  vmread %rbx, (%rsi)\n"                   /* memory form */
    "  mov $0x7ffe, %ebx\n"
    "  vmread %rbx, %r9\n"                      /* no such field: VMfailValid */
    "  pushf\n"
    "  pop %r10\n"
    "  mov $0x4800, %ebx\n"
    "l2_sh_rdexit:\n"
    "  vmread %rbx, %rax\n"                     /* read bitmap bit 1: exit */
    "  mov $0x4804, %edx\n"
    "  mov $0x99, %ecx\n"
    "l2_sh_wrexit:\n"
    "  vmwrite %rcx, %rdx\n"                    /* write bitmap bit 1: exit */
    "  mov $0x8000, %ebx\n"
    "l2_sh_bigexit:\n"
    "  vmread %rbx, %rax\n"                     /* encoding above 7FFFH: exit */
    "l2_sh_vmcall:\n"
    "  vmcall\n"
    "  ud2\n"
    /* l2-vmcs-shadowing-faults: RSI = the memory operand */
    "l2_shf:\n"
    "  mov $0x4802, %ebx\n"
    "l2_shf_vmread:\n"
    "  vmread %rbx, (%rsi)\n"
    "  vmcall\n"
    "  ud2\n"
    /* l2-vmcs-shadowing-no-link */
    "l2_nolink:\n"
    "  mov $0x4802, %ebx\n"
    "  vmread %rbx, %r8\n"
    "  pushf\n"
    "  pop %r10\n"
    "  vmcall\n"
    "  ud2\n"
    /* l2-tsc-scaling: R8 = first RDTSC, R9 = second, R10 = RDTSCP, R11 = RDMSR IA32_TSC after */
    "l2_tsc:\n"
    "  rdtsc\n"
    "  shl $32, %rdx\n"
    "  or %rax, %rdx\n"
    "  mov %rdx, %r8\n"
    "  mov $2000, %ecx\n"
    "1:\n"
    "  dec %ecx\n"
    "  jnz 1b\n"
    "  rdtsc\n"
    "  shl $32, %rdx\n"
    "  or %rax, %rdx\n"
    "  mov %rdx, %r9\n"
    "  rdtscp\n"
    "  shl $32, %rdx\n"
    "  or %rax, %rdx\n"
    "  mov %rdx, %r10\n"
    "  mov $0x10, %ecx\n"
    "  rdmsr\n"
    "  shl $32, %rdx\n"
    "  or %rax, %rdx\n"
    "  mov %rdx, %r11\n"
    "  vmcall\n"
    "  ud2\n"
    /* l2-pause-loop-exiting: RCX counts the PAUSEs */
    "l2_ple:\n"
    "  xor %ecx, %ecx\n"
    "1:\n"
    "  inc %ecx\n"
    "  pause\n"
    "  cmp $1000, %ecx\n"
    "  jb 1b\n"
    "l2_ple_vmcall:\n"
    "  vmcall\n"
    "  ud2\n"
    /* l2-inject-ilen0: the handlers give the pushed RIP in RBX */
    "l2_inj:\n"
    "  vmcall\n"
    "  ud2\n"
    "l2_int30_handler:\n"
    "  mov (%rsp), %rbx\n"
    "  mov $0x3030, %eax\n"
    "  vmcall\n"
    "  ud2\n"
    "l2_bp_handler:\n"
    "  mov (%rsp), %rbx\n"
    "  mov $0xb0b0, %eax\n"
    "  vmcall\n"
    "  ud2\n");

static unsigned maxphy;
static uint64_t misc;

static void vmx_init(void)
{
    l2_idt_init(l2_unexpected_handler);
    l2_idt_set(0x30, l2_int30_handler);
    l2_idt_set(3, l2_bp_handler);
    if (l1_init())
        l1_vmxon();
    maxphy = cpuid(0x80000000).a >= 0x80000008 ? cpuid(0x80000008).a & 0xff : 36;
    misc = rdmsr(MSR_IA32_VMX_MISC);
}

static uint64_t rdtsc64(void)
{
    uint32_t lo, hi;
    asm volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return ((uint64_t)hi << 32) | lo;
}

static bool need_proc2(uint32_t bits, const char *what)
{
    if (proc2_allowed(bits))
        return true;
    test_check(false, "%s: secondary controls 0x%x not allowed (0x%016llx)", what, bits, U64(cap_proc2));
    return false;
}

/* The shadow VMCS: VMCLEAR with the shadow-VMCS indicator in its revision, GUEST_CS_LIMIT = 0x1234,
 * GUEST_DS_LIMIT = 0x1111, EXIT_QUALIFICATION = 0 (through VMPTRLD, so in the CPU's format), then
 * VMCS `vmcs` is current again. */
static bool shadow_prepare(int vmcs)
{
    char buf[48];
    memset(shadow_vmcs, 0, PAGE);
    *(uint32_t *)shadow_vmcs = revision | (1u << 31);
    int o = vmx_outcome(vmclear(PA(shadow_vmcs)));
    if (!test_check(o == VMX_SUCCEED, "VMCLEAR of the shadow VMCS: %s", vmx_outcome_name(o, buf, sizeof(buf))))
        return false;
    o = vmx_outcome(vmptrld(PA(shadow_vmcs)));
    if (!test_check(o == VMX_SUCCEED, "VMPTRLD of the shadow VMCS: %s", vmx_outcome_name(o, buf, sizeof(buf))))
        return false;
    vmcs_log.errors = 0;
    vmw(VMCS_GUEST_CS_LIMIT, 0x1234);
    vmw(VMCS_GUEST_DS_LIMIT, 0x1111);
    vmw(VMCS_EXIT_QUALIFICATION, 0);
    test_check(vmcs_log.errors == 0, "VMWRITEs into the shadow VMCS failed (0x%x)", vmcs_log.first_bad);
    return vmcs_load(vmcs);
}

static void t_caps(void)
{
    if (test_begin("vmx-caps-issue8") && l1_need_vmx()) {
        info("IA32_VMX_PROCBASED_CTLS2=0x%016llx IA32_VMX_MISC=0x%016llx", U64(cap_proc2), U64(misc));
        test_check(proc2_allowed(PROC2_VMCS_SHADOWING), "VMCS shadowing not allowed");
        test_check(proc2_allowed(PROC2_PAUSE_LOOP_EXITING), "PAUSE-loop exiting not allowed");
        test_check(proc2_allowed(PROC2_TSC_SCALING), "TSC scaling not allowed");
        test_check(misc & MISC_VMWRITE_ANY, "IA32_VMX_MISC[29] clear");
        test_check(misc & MISC_INJECT_ILEN0, "IA32_VMX_MISC[30] clear");
    }
    test_end();
}

static void t_shadow_l1(void)
{
    char buf[48];
    if (test_begin("vmptrld-shadow-vmcs") && l1_need_vmx()) {
        memset(shadow_vmcs, 0, PAGE);
        *(uint32_t *)shadow_vmcs = revision | (1u << 31);
        check_outcome(vmx_outcome(vmclear(PA(shadow_vmcs))), VMX_SUCCEED, "VMCLEAR of a shadow VMCS");
        check_outcome(vmx_outcome(vmptrld(PA(shadow_vmcs))), VMX_SUCCEED, "VMPTRLD of a shadow VMCS");
        uint64_t cur = 0;
        check_outcome(vmx_outcome(vmptrst(&cur)), VMX_SUCCEED, "VMPTRST");
        check_u64(cur, PA(shadow_vmcs), "current VMCS after VMPTRLD of the shadow VMCS");
        check_outcome(vmx_outcome(vmwrite_reg(VMCS_GUEST_CS_LIMIT, 0x4321)), VMX_SUCCEED,
                      "VMWRITE GUEST_CS_LIMIT into the shadow VMCS");
        uint64_t v = 0;
        check_outcome(vmx_outcome(vmread_reg(VMCS_GUEST_CS_LIMIT, &v)), VMX_SUCCEED, "VMREAD GUEST_CS_LIMIT");
        check_u64(v, 0x4321, "GUEST_CS_LIMIT of the shadow VMCS");
    }
    test_end();

    if (test_begin("vmlaunch-shadow-vmcs") && l1_need_vmx()) {
        /* The shadow VMCS of the check above is current. */
        int o = l2_enter(true);
        test_check(o == VMX_FAIL_INVALID, "VMLAUNCH of a shadow VMCS: %s, expected VMfailInvalid",
                   enter_outcome_name(o, buf, sizeof(buf)));
        check_outcome(vmx_outcome(vmclear(PA(shadow_vmcs))), VMX_SUCCEED, "VMCLEAR of the shadow VMCS");
    }
    test_end();

    if (test_begin("l1-vmwrite-exit-info") && l1_need_vmx()) {
        struct l2_setup s = { .rip = PA(l2_inj) };
        if (vmcs_build(&s)) {
            uint64_t v = 0;
            check_outcome(vmx_outcome(vmwrite_reg(VMCS_EXIT_QUALIFICATION, 0x5a5a)), VMX_SUCCEED,
                          "VMWRITE EXIT_QUALIFICATION");
            check_outcome(vmx_outcome(vmread_reg(VMCS_EXIT_QUALIFICATION, &v)), VMX_SUCCEED, "VMREAD");
            check_u64(v, 0x5a5a, "EXIT_QUALIFICATION read back");
            check_outcome(vmx_outcome(vmwrite_reg(VMCS_EXIT_REASON, 0x1e)), VMX_SUCCEED, "VMWRITE EXIT_REASON");
            check_outcome(vmx_outcome(vmread_reg(VMCS_EXIT_REASON, &v)), VMX_SUCCEED, "VMREAD");
            check_u64(v, 0x1e, "EXIT_REASON read back");
            /* An entry and exit later the CPU's values replace them. */
            if (run_expect(true, EXIT_REASON_VMCALL, "VMCALL after the VMWRITEs"))
                check_u64(vmr(VMCS_EXIT_QUALIFICATION), 0, "EXIT_QUALIFICATION after the VMCALL exit");
        }
    }
    test_end();
}

/* VMCS 0 for L2 code at rip with VMCS shadowing on the bitmaps, the link pointer on the shadow VMCS. */
static bool build_shadowing(uint64_t rip, uint64_t link)
{
    struct l2_setup s = { .rip = rip, .proc2 = PROC2_VMCS_SHADOWING };
    if (!vmcs_build(&s) || !shadow_prepare(0))
        return false;
    vmw(VMCS_VMREAD_BITMAP, PA(rd_bitmap));
    vmw(VMCS_VMWRITE_BITMAP, PA(wr_bitmap));
    vmw(VMCS_LINK_POINTER, link);
    return test_check(vmcs_log.errors == 0, "VMWRITE of the shadowing fields failed (0x%x)", vmcs_log.first_bad);
}

static void t_shadow_entry(void)
{
    if (test_begin("vmcs-shadowing-entry-failures") && l1_need_vmx() &&
        need_proc2(PROC2_VMCS_SHADOWING, "vmcs-shadowing-entry-failures")) {
        memset(rd_bitmap, 0, PAGE);
        memset(wr_bitmap, 0, PAGE);
        memset(plain_vmcs, 0, PAGE);
        *(uint32_t *)plain_vmcs = revision;
        if (build_shadowing(PA(l2_inj), PA(shadow_vmcs))) {
            uint64_t beyond = 1ull << maxphy;
            vmw(VMCS_VMREAD_BITMAP, PA(rd_bitmap) + 0x800);
            enter_expect_fail(true, VMX_FAIL_VALID_ERR(7), "VMREAD bitmap not 4 KiB aligned");
            vmw(VMCS_VMREAD_BITMAP, beyond);
            enter_expect_fail(true, VMX_FAIL_VALID_ERR(7), "VMREAD bitmap beyond the physical-address width");
            vmw(VMCS_VMREAD_BITMAP, PA(rd_bitmap));
            vmw(VMCS_VMWRITE_BITMAP, PA(wr_bitmap) + 8);
            enter_expect_fail(true, VMX_FAIL_VALID_ERR(7), "VMWRITE bitmap not 4 KiB aligned");
            vmw(VMCS_VMWRITE_BITMAP, beyond);
            enter_expect_fail(true, VMX_FAIL_VALID_ERR(7), "VMWRITE bitmap beyond the physical-address width");
            vmw(VMCS_VMWRITE_BITMAP, PA(wr_bitmap));
            vmw(VMCS_LINK_POINTER, PA(plain_vmcs));
            if (run_expect(true, REASON_ENTRY_GUEST_STATE, "link pointer to a VMCS without the shadow indicator"))
                check_u64(ex.qual, 4, "VM-entry failure qualification (link pointer)");
            vmw(VMCS_LINK_POINTER, PA(shadow_vmcs) + 0x10);
            if (run_expect(true, REASON_ENTRY_GUEST_STATE, "link pointer not 4 KiB aligned"))
                check_u64(ex.qual, 4, "VM-entry failure qualification (link pointer)");
            vmw(VMCS_LINK_POINTER, PA(l1_vmcs_pages[0]));
            if (run_expect(true, REASON_ENTRY_GUEST_STATE, "link pointer = the current VMCS"))
                check_u64(ex.qual, 4, "VM-entry failure qualification (link pointer)");
            vmw(VMCS_SECONDARY_PROC_CTLS, vmx_ctl_value(cap_proc2, 0));
            vmw(VMCS_LINK_POINTER, PA(shadow_vmcs));
            if (run_expect(true, REASON_ENTRY_GUEST_STATE, "link pointer to a shadow VMCS without shadowing"))
                check_u64(ex.qual, 4, "VM-entry failure qualification (link pointer)");
            vmw(VMCS_SECONDARY_PROC_CTLS, vmx_ctl_value(cap_proc2, PROC2_VMCS_SHADOWING));
            run_expect_at(true, EXIT_REASON_VMCALL, l2_inj, "VMLAUNCH with a good link pointer");
        }
    }
    test_end();
}

static void t_shadow_l2(void)
{
    if (test_begin("l2-vmcs-shadowing") && l1_need_vmx() && need_proc2(PROC2_VMCS_SHADOWING, "l2-vmcs-shadowing")) {
        memset(rd_bitmap, 0, PAGE);
        memset(wr_bitmap, 0, PAGE);
        rd_bitmap[0x4800 >> 3] |= 1 << (0x4800 & 7);
        wr_bitmap[0x4804 >> 3] |= 1 << (0x4804 & 7);
        l2_mem = 0;
        if (build_shadowing(PA(l2_sh), PA(shadow_vmcs))) {
            vmw(VMCS_GUEST_DS_LIMIT, 0xffff);
            l2_regs.rsi = PA(&l2_mem);
            if (run_expect_at(true, EXIT_REASON_VMREAD, l2_sh_rdexit, "VMREAD with read-bitmap bit 1")) {
                check_u64(l2_regs.r8, 0x1234, "VMREAD GUEST_CS_LIMIT through the shadow VMCS");
                check_u64(l2_mem, 0x1234, "VMREAD GUEST_CS_LIMIT into memory");
                check_u64(l2_regs.r11 & VMX_ARITH_FLAGS, 0, "flags after VMWRITE GUEST_DS_LIMIT (VMsucceed)");
                check_u64(l2_regs.r12 & VMX_ARITH_FLAGS, 0, "flags after VMWRITE EXIT_QUALIFICATION (VMsucceed)");
                check_u64(l2_regs.r10 & VMX_ARITH_FLAGS, VMX_FLAG_ZF, "flags after VMREAD of 7FFEH (VMfailValid)");
                check_u64(vmr(VMCS_VM_INSTRUCTION_ERROR), 12, "VMCS12's VM-instruction error");
                check_u64(vmr(VMCS_EXIT_INSTRUCTION_INFO) & 0xf0000478u, (3u << 28) | (1u << 10),
                          "VMREAD instruction information (reg2 RBX, register form, reg1 RAX)");
                advance_rip();
            }
            if (run_expect_at(false, EXIT_REASON_VMWRITE, l2_sh_wrexit, "VMWRITE with write-bitmap bit 1")) {
                check_u64(vmr(VMCS_EXIT_INSTRUCTION_INFO) & 0xf0000478u, (2u << 28) | (1u << 10) | (1u << 3),
                          "VMWRITE instruction information (reg2 RDX, register form, reg1 RCX)");
                advance_rip();
            }
            if (run_expect_at(false, EXIT_REASON_VMREAD, l2_sh_bigexit, "VMREAD of encoding 8000H"))
                advance_rip();
            run_expect_at(false, EXIT_REASON_VMCALL, l2_sh_vmcall, "VMCALL");
            check_u64(vmr(VMCS_GUEST_DS_LIMIT), 0xffff, "VMCS12's GUEST_DS_LIMIT");
            uint64_t v = 0;
            if (check_outcome(vmx_outcome(vmptrld(PA(shadow_vmcs))), VMX_SUCCEED, "VMPTRLD of the shadow VMCS")) {
                vmread_reg(VMCS_GUEST_DS_LIMIT, &v);
                check_u64(v, 0x5678, "shadow VMCS GUEST_DS_LIMIT written by L2");
                vmread_reg(VMCS_EXIT_QUALIFICATION, &v);
                check_u64(v, 0xabcd, "shadow VMCS EXIT_QUALIFICATION written by L2");
                vmread_reg(VMCS_GUEST_CS_LIMIT, &v);
                check_u64(v, 0x1234, "shadow VMCS GUEST_CS_LIMIT");
                vmread_reg(VMCS_GUEST_SS_LIMIT, &v);
                check_u64(v, 0, "shadow VMCS GUEST_SS_LIMIT (L2's VMWRITE exited)");
                vmcs_load(0);
            }
        }
    }
    test_end();

    if (test_begin("l2-vmcs-shadowing-faults") && l1_need_vmx() &&
        need_proc2(PROC2_VMCS_SHADOWING, "l2-vmcs-shadowing-faults")) {
        const uint64_t unmapped = 0x400000000000ull;
        memset(rd_bitmap, 0, PAGE);
        memset(wr_bitmap, 0, PAGE);
        if (build_shadowing(PA(l2_shf), PA(shadow_vmcs))) {
            vmw(VMCS_EXCEPTION_BITMAP, 1u << 13);
            l2_regs.rsi = 0x8000000000000000ull;
            if (run_expect_at(true, EXIT_REASON_EXCEPTION_NMI, l2_shf_vmread, "VMREAD to a non-canonical address")) {
                check_u64(ex.intr_info, 0x80000b0d, "exit interruption information (#GP)");
                check_u64(ex.intr_err, 0, "#GP error code");
            }
            vmw(VMCS_EXCEPTION_BITMAP, 1u << 14);
            l2_regs.rsi = unmapped;
            if (run_expect_at(false, EXIT_REASON_EXCEPTION_NMI, l2_shf_vmread, "VMREAD to an unmapped address")) {
                check_u64(ex.intr_info, 0x80000b0e, "exit interruption information (#PF)");
                check_u64(ex.intr_err, 2, "#PF error code (write, not present)");
                check_u64(ex.qual, unmapped, "#PF exit qualification (the address)");
            }
            vmw(VMCS_EXCEPTION_BITMAP, 0);
            if (run_expect(false, EXIT_REASON_VMCALL, "VMREAD to an unmapped address, #PF to L2")) {
                check_u64(l2_regs.rax, L2_MARK_UNEXPECTED, "L2's exception handler ran");
                check_u64(l2_regs.rbx, 2, "error code L2's handler sees");
                check_u64(l2_regs.rcx, PA(l2_shf_vmread), "RIP L2's handler sees");
            }
        }
    }
    test_end();

    if (test_begin("l2-vmcs-shadowing-ept12") && l1_need_vmx() &&
        need_proc2(PROC2_VMCS_SHADOWING | PROC2_ENABLE_EPT, "l2-vmcs-shadowing-ept12")) {
        uint64_t p = PA(ept_target), eptp = PA(ept_pml4) | 6 | (3 << 3);
        uint64_t *pte = &ept_pt[(p >> 12) & 511];
        memset(ept_pml4, 0, PAGE);
        ept_pml4[0] = PA(ept_pdpt) | 7;
        for (int g = 0; g < 4; g++) {
            ept_pdpt[g] = PA(ept_pd[g]) | 7;
            for (int i = 0; i < 512; i++)
                ept_pd[g][i] = ((uint64_t)g << 30) | ((uint64_t)i << 21) | 7 | (1ull << 7) | ((g < 3 ? 6ull : 0ull) << 3);
        }
        for (int i = 0; i < 512; i++)
            ept_pt[i] = ((p & ~0x1fffffull) + ((uint64_t)i << 12)) | 7 | (6ull << 3);
        ept_pd[p >> 30][(p >> 21) & 511] = PA(ept_pt) | 7;
        *pte = p | 1 | (6ull << 3);                          /* read-only */
        ept_target[0] = 0;
        invept(INVEPT_ALL, 0);
        memset(rd_bitmap, 0, PAGE);
        memset(wr_bitmap, 0, PAGE);
        struct l2_setup s = { .rip = PA(l2_shf), .proc2 = PROC2_VMCS_SHADOWING | PROC2_ENABLE_EPT, .eptp = eptp };
        if (vmcs_build(&s) && shadow_prepare(0)) {
            vmw(VMCS_VMREAD_BITMAP, PA(rd_bitmap));
            vmw(VMCS_VMWRITE_BITMAP, PA(wr_bitmap));
            vmw(VMCS_LINK_POINTER, PA(shadow_vmcs));
            l2_regs.rsi = p;
            if (run_expect_at(true, EXIT_REASON_EPT_VIOLATION, l2_shf_vmread, "VMREAD into a read-only EPT12 page")) {
                check_u64(ex.qual & 0x1ff, 0x18a, "EPT violation qualification (write; R; linear address, translation)");
                check_u64(ex.gpa, p, "guest-physical address");
                check_u64(ex.gla, p, "guest-linear address");
            }
            *pte = 0;
            invept(INVEPT_ALL, 0);
            if (run_expect_at(false, EXIT_REASON_EPT_VIOLATION, l2_shf_vmread, "VMREAD into a page EPT12 does not map"))
                check_u64(ex.qual & 0x1ff, 0x182, "EPT violation qualification (write; no rights)");
            *pte = p | 3 | (6ull << 3);
            invept(INVEPT_ALL, 0);
            if (run_expect(false, EXIT_REASON_VMCALL, "VMREAD into a read/write EPT12 page"))
                check_u64(ept_target[0], 0x1234, "GUEST_CS_LIMIT of the shadow VMCS in the page");
        }
    }
    test_end();

    if (test_begin("l2-vmcs-shadowing-no-link") && l1_need_vmx() &&
        need_proc2(PROC2_VMCS_SHADOWING, "l2-vmcs-shadowing-no-link")) {
        memset(rd_bitmap, 0, PAGE);
        memset(wr_bitmap, 0, PAGE);
        if (build_shadowing(PA(l2_nolink), ~0ull) &&
            run_expect(true, EXIT_REASON_VMCALL, "L2's VMREAD without a shadow VMCS"))
            check_u64(l2_regs.r10 & VMX_ARITH_FLAGS, VMX_FLAG_CF, "flags after VMREAD (VMfailInvalid)");
    }
    test_end();
}

/* One L2 run of l2_tsc with the given controls; false if it did not reach its VMCALL. */
static bool tsc_run(uint32_t proc, uint64_t mult, uint64_t offset, uint64_t *t0, uint64_t *t1)
{
    struct l2_setup s = { .rip = PA(l2_tsc), .proc = proc | PROC_USE_MSR_BITMAPS,
                          .proc2 = PROC2_TSC_SCALING | PROC2_ENABLE_RDTSCP };
    if (!vmcs_build(&s))
        return false;
    vmw(VMCS_TSC_MULTIPLIER, mult);
    vmw(VMCS_TSC_OFFSET, offset);
    *t0 = rdtsc64();
    bool ok = run_expect(true, EXIT_REASON_VMCALL, "L2's TSC reads");
    *t1 = rdtsc64();
    return ok;
}

static bool near(uint64_t got, uint64_t want, uint64_t tol, const char *what)
{
    uint64_t d = got > want ? got - want : want - got;
    return test_check(d <= tol, "%s: %llu, expected %llu (within %llu)", what, U64(got), U64(want), U64(tol));
}

static void t_tsc(void)
{
    if (test_begin("l2-tsc-scaling") && l1_need_vmx() &&
        need_proc2(PROC2_TSC_SCALING | PROC2_ENABLE_RDTSCP, "l2-tsc-scaling")) {
        const uint64_t one = 1ull << 48, off = 1ull << 40;
        uint64_t t0, t1;
        struct l2_setup s = { .rip = PA(l2_tsc), .proc = PROC_TSC_OFFSETTING, .proc2 = PROC2_TSC_SCALING };
        if (vmcs_build(&s)) {
            vmw(VMCS_TSC_MULTIPLIER, 0);
            enter_expect_fail(true, VMX_FAIL_VALID_ERR(7), "TSC multiplier 0");
        }
        if (tsc_run(PROC_TSC_OFFSETTING, one, 0, &t0, &t1)) {
            uint64_t d = l2_regs.r9 - l2_regs.r8;
            info("multiplier 1.0: L2 delta %llu ticks", U64(d));
            test_check(d > 2000, "L2's loop took %llu ticks", U64(d));
            if (tsc_run(PROC_TSC_OFFSETTING, 2 * one, off, &t0, &t1)) {
                near(l2_regs.r9 - l2_regs.r8, 2 * d, 2, "L2 delta with multiplier 2.0");
                test_check(l2_regs.r8 >= 2 * t0 + off && l2_regs.r8 <= 2 * t1 + off,
                           "L2's RDTSC 0x%llx outside [0x%llx, 0x%llx] (2 * L1's TSC + offset)", U64(l2_regs.r8),
                           U64(2 * t0 + off), U64(2 * t1 + off));
                test_check(l2_regs.r10 >= l2_regs.r9 && l2_regs.r11 >= l2_regs.r10 && l2_regs.r11 <= 2 * t1 + off,
                           "RDTSCP 0x%llx and IA32_TSC 0x%llx after RDTSC 0x%llx (scaled clock)", U64(l2_regs.r10),
                           U64(l2_regs.r11), U64(l2_regs.r9));
            }
            if (tsc_run(PROC_TSC_OFFSETTING, one / 2, off, &t0, &t1))
                near(l2_regs.r9 - l2_regs.r8, d / 2, 2, "L2 delta with multiplier 0.5");
            if (tsc_run(0, 2 * one, 0, &t0, &t1))
                near(l2_regs.r9 - l2_regs.r8, d, 2, "L2 delta with TSC scaling but no TSC offsetting");
        }
    }
    test_end();
}

static void t_ple(void)
{
    if (test_begin("l2-pause-loop-exiting") && l1_need_vmx() &&
        need_proc2(PROC2_PAUSE_LOOP_EXITING, "l2-pause-loop-exiting")) {
        struct l2_setup s = { .rip = PA(l2_ple), .proc2 = PROC2_PAUSE_LOOP_EXITING };
        if (vmcs_build(&s)) {
            vmw(VMCS_PLE_GAP, 1000);
            vmw(VMCS_PLE_WINDOW, 0);
            if (run_expect(true, REASON_PAUSE, "PAUSE loop, window 0")) {
                info("PAUSE-loop exit after %llu PAUSEs", U64(l2_regs.rcx));
                test_check(l2_regs.rcx >= 1 && l2_regs.rcx <= 10, "PAUSE-loop exit after %llu PAUSEs",
                           U64(l2_regs.rcx));
                check_u64(ex.qual, 0, "PAUSE exit qualification");
                check_u64(*(uint8_t *)ex.rip == 0xf3 && ((uint8_t *)ex.rip)[1] == 0x90, 1, "exit RIP at a PAUSE");
            }
        }
        if (vmcs_build(&s)) {
            vmw(VMCS_PLE_GAP, 1000);
            vmw(VMCS_PLE_WINDOW, 0xffffffffu);
            if (run_expect_at(true, EXIT_REASON_VMCALL, l2_ple_vmcall, "PAUSE loop, window FFFFFFFFH"))
                check_u64(l2_regs.rcx, 1000, "PAUSEs without an exit");
        }
        struct l2_setup p = { .rip = PA(l2_ple), .proc = PROC_PAUSE_EXITING };
        if (vmcs_build(&p) && run_expect(true, REASON_PAUSE, "PAUSE exiting"))
            check_u64(l2_regs.rcx, 1, "PAUSE exiting: exit at the first PAUSE");
    }
    test_end();
}

static void t_inject_ilen0(void)
{
    if (test_begin("l2-inject-ilen0") && l1_need_vmx()) {
        struct l2_setup s = { .rip = PA(l2_inj) };
        if (vmcs_build(&s)) {
            vmw(VMCS_ENTRY_INTR_INFO, (1u << 31) | (4u << 8) | 0x30);  /* software interrupt 30H */
            vmw(VMCS_ENTRY_INSTRUCTION_LEN, 0);
            if (run_expect(true, EXIT_REASON_VMCALL, "software interrupt injected with length 0")) {
                check_u64(l2_regs.rax, MARK_INT30, "L2's vector 30H handler ran");
                check_u64(l2_regs.rbx, PA(l2_inj), "pushed RIP (GUEST_RIP + 0)");
            }
        }
        if (vmcs_build(&s)) {
            vmw(VMCS_ENTRY_INTR_INFO, (1u << 31) | (6u << 8) | 3);     /* software exception #BP */
            vmw(VMCS_ENTRY_INSTRUCTION_LEN, 0);
            if (run_expect(true, EXIT_REASON_VMCALL, "#BP injected with length 0")) {
                check_u64(l2_regs.rax, MARK_BP, "L2's #BP handler ran");
                check_u64(l2_regs.rbx, PA(l2_inj), "pushed RIP (GUEST_RIP + 0)");
            }
        }
    }
    test_end();
}

void test_main(void)
{
    vmx_init();
    t_caps();
    t_shadow_l1();
    t_shadow_entry();
    t_shadow_l2();
    t_tsc();
    t_ple();
    t_inject_ilen0();
    l1_done();
}
