/* lhv8.bin - L1 test hypervisor, phase 8: accessed and dirty flags for EPT, execute-only EPT pages,
 * page-modification logging (issue 8).
 *
 * L1 scaffolding from the library (l1.h), BSP only. L2 runs 64-bit at CPL 0 on its own page tables:
 * a copy of L1's PML4 (linear 0-4 GiB identity, 2 MiB pages) plus PML4 slot 1 (linear LIN = 512 GiB)
 * through a PDPT, PD and PT that are themselves in the EPT12 window, so L2's walks of them are
 * guest paging-structure accesses through 4 KiB EPT12 leaves of their own. EPT12 (rebuilt for each
 * check, after INVEPT all-context):
 *   0 - 1 GiB      identity, 2 MiB leaves, RWX, WB, accessed and dirty already (L1's code, stack,
 *                  page tables: nothing to set, nothing logged);
 *   WIN = 1 GiB    4 KiB leaves: data pages WIN + k * 4 KiB (L2 linear LIN + k * 4 KiB), and L2's PDPT,
 *                  PD and PT at WIN + 0x10000, 0x11000, 0x12000.
 * Exception bitmap all ones: a fault in L2 is a VM exit.
 *
 * Checks (SDM Vol. 3 29.3.3.2, 29.3.5, 29.3.6, 27.2.1.1, 28.2.1, A.10):
 *  ept-ad-read          EPTP bit 6: L2 reads a data page: A in every EPT12 entry of its walk (PML4E,
 *                       PDPTE, PDE, PTE), D not in its PTE; L2's PDPT, PD and PT pages (guest paging
 *                       structures, written for EPT purposes) get A and D. Without bit 6 nothing is set.
 *                       L2 reads its PT page as data first (linear = GPA through L1's identity tables:
 *                       A, no D), then reads through it: the walk makes it dirty.
 *  ept-ad-write         then L2 writes it, and reads then writes another: D set in both PTEs, L1 sees the
 *                       values.
 *  ept-ad-cleared       L1 clears A and D of a page that L2 wrote, INVEPT single-context: an L2 read sets
 *                       A again and not D; a write then sets D.
 *  ept-ad-paging-write  L2's PT page read-only in EPT12: with bit 6 the read through it is an EPT
 *                       violation as a write (bits 2:0 = 3, or 2 as Bochs 2.7 gives it; bits 5:3 =
 *                       R|X; bit 7 set, bit 8 clear; GPA = the PTE's; linear address = L2's); without
 *                       bit 6 the same read works.
 *  ept-exec-only        an execute-only EPT12 leaf (IA32_VMX_EPT_VPID_CAP bit 0): L2 runs code there
 *                       (VMCALL exit with its marker), a read of it is an EPT violation (read, bits 5:3
 *                       = X, bits 7-8); with A/D the leaf gets A, not D. Without the capability the
 *                       leaf is a misconfiguration (49).
 *  pml-log              enable PML, index 511: L2 reads one page and writes three (one twice): the log
 *                       holds L2's PDPT, PD, PT pages, then the three data pages, once each, in order
 *                       at 511 down to 506 (the page address; Bochs 2.7 logs the address accessed, a
 *                       difference of its own), index 505, the entry below untouched. A VMRESUME
 *                       that writes them again logs nothing.
 *  pml-full             index 1, paging structures already dirty: writes to pages A, B, C: A and B
 *                       logged at 1 and 0, the write to C is a page-modification log-full exit (62,
 *                       qualification 0, RIP at the store), index 0xffff, C unchanged, its PTE without
 *                       A and D. L1 sets the index to 511, VMRESUME: C written and logged at 511.
 *  pml-entry-failures   VMLAUNCH fails with VMfailValid(7) for PML without EPT, a PML address not 4 KiB
 *                       aligned, one beyond the physical-address width; EPTP with bit 8 (reserved); then
 *                       it works. Without A/D or PML offered: EPTP bit 6 resp. "enable PML" fails (7).
 *  ept-ve               EPT-violation #VE (secondary bit 18): a read of a not-present page is a #VE in L2
 *                       (vector 20 through L2's IDT, no error code, RIP of the read) with the information
 *                       area written (reason 48, busy 0xffffffff, qualification, linear and physical
 *                       addresses, EPTP index); busy already: an EPT-violation exit; bit 63 (suppress
 *                       #VE) in the entry: an exit; exception bitmap bit 20: an exception exit (0,
 *                       vector 20) with the area written. VMLAUNCH fails with VMfailValid(7) for an
 *                       information address not 4 KiB aligned or beyond the physical-address width.
 *                       Without the control offered: VMLAUNCH with it fails (7).
 * A check whose feature is not offered is named <check>-absent (the refusal checked instead), so a
 * hypervisor hiding what bare Bochs has fails check by check. An INFO "features" line gives A/D,
 * execute-only, PML and #VE as offered; tests/runner/guest.py requires
 * the same under XMHF as bare.
 */
#include "lib.h"
#include "vmx.h"
#include "l1.h"

#define EPTE_R          (1ull << 0)
#define EPTE_W          (1ull << 1)
#define EPTE_X          (1ull << 2)
#define EPTE_RWX        (EPTE_R | EPTE_W | EPTE_X)
#define EPTE_WB         (6ull << 3)
#define EPTE_PS         (1ull << 7)
#define EPTE_A          (1ull << 8)
#define EPTE_D          (1ull << 9)
#define EPTE_ADDR       0x000ffffffffff000ull
#define EPTP_WALK4      (3ull << 3)
#define EPTP_AD         (1ull << 6)
#define EPTQ_READ       (1ull << 0)
#define EPTQ_WRITE      (1ull << 1)
#define EPTQ_FETCH      (1ull << 2)
#define EPTQ_GLA_VALID  (1ull << 7)
#define EPTQ_TRANSLATED (1ull << 8)
#define EXIT_REASON_PML_FULL 62

#define WIN      0x40000000ull            /* GPA window (PDPTE 1 of EPT12) */
#define LIN      0x8000000000ull          /* L2 linear window (PML4 slot 1 of L2's tables) */
#define PT_GPA   (WIN + 0x10000)          /* L2's PDPT, PD, PT at PT_GPA + 0, 0x1000, 0x2000 */
#define XO_OFF   0x20                     /* data page index of the execute-only page */

#define POOL_PAGES 16
static uint64_t ept_pool[POOL_PAGES][512] __attribute__((aligned(PAGE)));
static int pool_used;
#define NDATA 6
static uint64_t data[NDATA][512] __attribute__((aligned(PAGE)));
static uint8_t xo_page[PAGE] __attribute__((aligned(PAGE)));
static uint64_t l2_pml4[512] __attribute__((aligned(PAGE)));
static uint64_t l2_pt[3][512] __attribute__((aligned(PAGE)));  /* PDPT, PD, PT of LIN */
static uint64_t pml_log[512] __attribute__((aligned(PAGE)));

static uint64_t cap_ept, eptp_mt;
static bool ept_ok, has_ad, has_xo, has_pml, has_ve;
static uint8_t ve_area[PAGE] __attribute__((aligned(PAGE)));
static uint32_t maxphyaddr;

extern char l2_read2[], l2_read[], l2_write[], l2_rw[], l2_rw_store[], l2_w3[], l2_w3_c[], l2_jump[];
extern char xo_tmpl[], xo_tmpl_end[], l2_ve_handler[];

asm(".text\n"
    "l2_read:\n"
    "  mov (%rbx), %rax\n"
    "  vmcall\n"
    "  jmp l2_read\n"
    "l2_read2:\n"
    "  mov (%rbx), %rax\n"
    "  mov (%rsi), %rdx\n"
    "  vmcall\n"
    "  ud2\n"
    "l2_write:\n"
    "  mov %rcx, (%rbx)\n"
    "  vmcall\n"
    "  jmp l2_write\n"
    "l2_rw:\n"
    "  mov (%rbx), %rax\n"
    "l2_rw_store:\n"
    "  mov %rcx, (%rbx)\n"
    "  vmcall\n"
    "  jmp l2_rw\n"
    /* writes RCX to (RBX), (RSI), (RDI), then (R8) */
    "l2_w3:\n"
    "  mov %rcx, (%rbx)\n"
    "  mov %rcx, (%rsi)\n"
    "l2_w3_c:\n"
    "  mov %rcx, (%rdi)\n"
    "  mov %rcx, (%r8)\n"
    "  vmcall\n"
    "  jmp l2_w3\n"
    "l2_jump:\n"
    "  jmp *%rbx\n"
    /* L2's #VE handler: RAX = 0x7e7e, VMCALL (L1 reads the frame at RSP) */
    "l2_ve_handler:\n"
    "  mov $0x7e7e, %eax\n"
    "  vmcall\n"
    "  ud2\n"
    "xo_tmpl:\n"
    "  mov $0x8e8e, %eax\n"
    "  vmcall\n"
    "  ud2\n"
    "xo_tmpl_end:\n");

static bool cap(uint64_t bit) { return (cap_ept & bit) != 0; }

static void vmx_init(void)
{
    if (!l1_init())
        return;
    l2_idtr = l1_bsp.idtr;
    bool has_ept = proc2_allowed(PROC2_ENABLE_EPT);
    if (has_ept && rdmsr_safe(MSR_IA32_VMX_EPT_VPID_CAP, &cap_ept) != NO_EXCEPTION)
        cap_ept = 0;
    eptp_mt = cap(EPT_CAP_MEMTYPE_WB) ? 6 : 0;
    ept_ok = has_ept && cap(EPT_CAP_WALK_4) && cap(EPT_CAP_INVEPT) && cap(EPT_CAP_INVEPT_ALL) &&
             cap(EPT_CAP_INVEPT_SINGLE) && cap(EPT_CAP_2M_PAGE);
    has_ad = ept_ok && cap(EPT_CAP_AD);
    has_xo = ept_ok && cap(EPT_CAP_EXEC_ONLY);
    has_pml = ept_ok && proc2_allowed(PROC2_ENABLE_PML);
    has_ve = ept_ok && proc2_allowed(PROC2_EPT_VE);
    maxphyaddr = cpuid(0x80000008).a & 0xff;
    info("features: ept-ad %d exec-only %d pml %d ve %d", has_ad, has_xo, has_pml, has_ve);
    info("EPT_VPID_CAP 0x%016llx, PROCBASED_CTLS2 0x%016llx, MAXPHYADDR %u", U64(cap_ept), U64(cap_proc2),
         maxphyaddr);
    l1_vmxon();
}

/* ------------------------------------------------------------------------------------------
 * EPT12 and L2's page tables
 */
static uint64_t *ept_page(void)
{
    if (pool_used >= POOL_PAGES)
        panic("lhv8: EPT page pool exhausted");
    uint64_t *p = ept_pool[pool_used++];
    memset(p, 0, PAGE);
    return p;
}

/* The entry for gpa at level (1 = PTE .. 4 = PML4E); missing tables are created (RWX, no A). */
static uint64_t *ept_entry(uint64_t *pml4, uint64_t gpa, int level)
{
    uint64_t *t = pml4;
    for (int l = 4; l > level; l--) {
        uint64_t *e = &t[(gpa >> (12 + 9 * (l - 1))) & 511];
        if (!(*e & EPTE_RWX))
            *e = PA(ept_page()) | EPTE_RWX;
        t = phys(*e & EPTE_ADDR);
    }
    return &t[(gpa >> (12 + 9 * (level - 1))) & 511];
}

static uint64_t eptp_of(uint64_t *pml4, bool ad) { return PA(pml4) | eptp_mt | EPTP_WALK4 | (ad ? EPTP_AD : 0); }

/* L2 linear LIN + 4 KiB * k -> GPA WIN + 4 KiB * k; the data page k (or xo_page) -> L1's page. */
static uint64_t gpa_of(int k) { return WIN + 0x1000ull * k; }
static uint64_t lin_of(int k) { return LIN + 0x1000ull * k; }

/* A fresh EPT12 (see the top) and L2's tables. Data pages get RWX leaves without A/D; the page-table
 * pages too unless pt_dirty (then A and D, and A in the window's upper entries). */
static uint64_t *ept_build(bool pt_dirty)
{
    if (cap(EPT_CAP_INVEPT_ALL))
        invept(INVEPT_ALL, 0);
    pool_used = 0;
    uint64_t *pml4 = ept_page();
    for (uint64_t a = 0; a < WIN; a += 0x200000)
        *ept_entry(pml4, a, 2) = a | EPTE_RWX | EPTE_WB | EPTE_PS | EPTE_A | EPTE_D;
    *ept_entry(pml4, 0, 3) |= EPTE_A;
    for (int k = 0; k < NDATA; k++)
        *ept_entry(pml4, gpa_of(k), 1) = PA(data[k]) | EPTE_RWX | EPTE_WB;
    for (int i = 0; i < 3; i++)
        *ept_entry(pml4, PT_GPA + 0x1000 * i, 1) =
            PA(l2_pt[i]) | EPTE_RWX | EPTE_WB | (pt_dirty ? EPTE_A | EPTE_D : 0);
    if (pt_dirty) {
        for (int l = 4; l >= 2; l--)
            *ept_entry(pml4, WIN, l) |= EPTE_A;
    }
    /* L2's tables: A and D set in its own entries, so its walks write nothing there. */
    memcpy(l2_pml4, phys(read_cr3() & ~0xfffull), PAGE);
    memset(l2_pt, 0, sizeof(l2_pt));
    l2_pml4[(LIN >> 39) & 511] = PT_GPA | PTE_P | PTE_W | 0x20;
    l2_pt[0][0] = (PT_GPA + 0x1000) | PTE_P | PTE_W | 0x20;
    l2_pt[1][0] = (PT_GPA + 0x2000) | PTE_P | PTE_W | 0x20;
    for (int k = 0; k < NDATA; k++)
        l2_pt[2][k] = gpa_of(k) | PTE_P | PTE_W | 0x60;
    l2_pt[2][XO_OFF] = gpa_of(XO_OFF) | PTE_P | PTE_W | 0x60;
    for (int k = 0; k < NDATA; k++)
        for (int i = 0; i < 512; i++)
            data[k][i] = 0xda7a000000000000ull | ((uint64_t)k << 32) | i;
    return pml4;
}

static bool launch(uint64_t eptp, uint64_t rip, uint32_t proc2, const struct gregs *g, uint32_t reason,
                   const char *what)
{
    struct l2_setup s = { .rip = rip, .proc2 = PROC2_ENABLE_EPT | proc2, .eptp = eptp, .cr3 = PA(l2_pml4),
                          .exc_bitmap = 0xffffffffu };
    if (!vmcs_build(&s))
        return false;
    l2_regs = *g;
    return run_expect(true, reason, what);
}

/* A check whose feature the CPU lacks is named name-absent (it verifies the refusal instead), so a
 * hypervisor that hides a feature bare Bochs has fails the comparison check by check. */
static bool ad_begin(const char *name, bool present)
{
    if (!test_begin("%s%s", name, present ? "" : "-absent") || !l1_need_vmx())
        return false;
    if (!test_check(ept_ok, "EPT with 4-level walks, 2 MiB pages and both INVEPT types needed "
                    "(EPT_VPID_CAP 0x%llx)", U64(cap_ept)))
        return false;
    return true;
}

/* EPTP bit 6 not offered: VMLAUNCH with it fails with VMfailValid(7). */
static void ad_absent(void)
{
    info("EPT A/D not offered: checking that EPTP bit 6 is refused");
    uint64_t *pml4 = ept_build(false);
    struct l2_setup s = { .rip = PA(l2_read), .proc2 = PROC2_ENABLE_EPT, .eptp = eptp_of(pml4, true),
                          .cr3 = PA(l2_pml4), .exc_bitmap = ~0u };
    if (vmcs_build(&s))
        enter_expect_fail(true, VMX_FAIL_VALID_ERR(VMXERR_ENTRY_INVALID_CONTROLS), "VMLAUNCH with EPTP bit 6");
}

static void check_flags(uint64_t *pml4, uint64_t gpa, int level, uint64_t want, uint64_t mask, const char *what)
{
    uint64_t e = *ept_entry(pml4, gpa, level);
    test_check((e & mask) == want, "%s: EPT12 level-%d entry for GPA 0x%llx is 0x%llx: A/D 0x%llx, expected 0x%llx",
               what, level, U64(gpa), U64(e), U64(e & mask), U64(want));
}

/* ------------------------------------------------------------------------------------------
 * ept-ad-read, ept-ad-write, ept-ad-cleared
 */
static void t_ad_read_write(void)
{
    const uint64_t AD = EPTE_A | EPTE_D;

    if (ad_begin("ept-ad-read", has_ad)) {
        if (!has_ad) {
            ad_absent();
        } else {
            /* Without EPTP bit 6 the flags are not touched. */
            uint64_t *pml4 = ept_build(false);
            struct gregs g = { .rbx = lin_of(1) + 8 };
            if (launch(eptp_of(pml4, false), PA(l2_read), 0, &g, EXIT_REASON_VMCALL, "L2 read, EPTP without A/D")) {
                check_u64(l2_regs.rax, data[1][1], "L2's read without A/D");
                check_flags(pml4, gpa_of(1), 1, 0, AD, "without A/D: data PTE");
                check_flags(pml4, PT_GPA + 0x2000, 1, 0, AD, "without A/D: L2's PT page");
                check_flags(pml4, WIN, 3, 0, AD, "without A/D: window PDPTE");
            }
            pml4 = ept_build(false);
            if (launch(eptp_of(pml4, true), PA(l2_read), 0, &g, EXIT_REASON_VMCALL, "L2 read, EPTP with A/D")) {
                check_u64(l2_regs.rax, data[1][1], "L2's read with A/D");
                check_flags(pml4, gpa_of(1), 1, EPTE_A, AD, "data PTE after a read");
                check_flags(pml4, gpa_of(1), 2, EPTE_A, EPTE_A, "window PDE");
                check_flags(pml4, gpa_of(1), 3, EPTE_A, EPTE_A, "window PDPTE");
                check_flags(pml4, gpa_of(1), 4, EPTE_A, EPTE_A, "PML4E");
                check_flags(pml4, gpa_of(2), 1, 0, AD, "an untouched data PTE");
                for (int i = 0; i < 3; i++)
                    check_flags(pml4, PT_GPA + 0x1000 * i, 1, AD, AD, "L2's paging-structure page");
            }
            pml4 = ept_build(false);
            g = (struct gregs){ .rbx = PT_GPA + 0x2000 + 8, .rsi = lin_of(1) + 16 };
            if (launch(eptp_of(pml4, true), PA(l2_read2), 0, &g, EXIT_REASON_VMCALL,
                       "L2 reads its PT page, then through it")) {
                check_u64(l2_regs.rax, l2_pt[2][1], "L2's read of its PT page");
                check_u64(l2_regs.rdx, data[1][2], "L2's read through its PT page");
                check_flags(pml4, PT_GPA + 0x2000, 1, AD, AD, "L2's PT page read, then walked");
                check_flags(pml4, gpa_of(1), 1, EPTE_A, AD, "data PTE after the read");
            }
        }
    }
    test_end();

    if (ad_begin("ept-ad-write", has_ad) && has_ad) {
        uint64_t *pml4 = ept_build(false);
        struct gregs g = { .rbx = lin_of(1) + 8 };
        uint64_t eptp = eptp_of(pml4, true);
        if (launch(eptp, PA(l2_read), 0, &g, EXIT_REASON_VMCALL, "L2 read")) {
            check_flags(pml4, gpa_of(1), 1, EPTE_A, AD, "data PTE after the read");
            /* the same page written, then another read and written by one program */
            struct l2_setup s = { .rip = PA(l2_write), .proc2 = PROC2_ENABLE_EPT, .eptp = eptp,
                                  .cr3 = PA(l2_pml4), .exc_bitmap = ~0u };
            if (vmcs_build(&s)) {
                l2_regs = (struct gregs){ .rbx = lin_of(1) + 16, .rcx = 0x11110000beefull };
                if (run_expect(true, EXIT_REASON_VMCALL, "L2 write")) {
                    check_u64(data[1][2], 0x11110000beefull, "L1's view of L2's write");
                    check_flags(pml4, gpa_of(1), 1, AD, AD, "data PTE after the write");
                }
            }
            s.rip = PA(l2_rw);
            if (vmcs_build(&s)) {
                l2_regs = (struct gregs){ .rbx = lin_of(3) + 24, .rcx = 0x33330000beefull };
                if (run_expect(true, EXIT_REASON_VMCALL, "L2 read then write")) {
                    check_u64(l2_regs.rax, 0xda7a000300000003ull, "L2's read before its write");
                    check_u64(data[3][3], 0x33330000beefull, "L1's view of the second write");
                    check_flags(pml4, gpa_of(3), 1, AD, AD, "second data PTE after read + write");
                    check_flags(pml4, gpa_of(2), 1, 0, AD, "an untouched data PTE");
                }
            }
        }
    }
    test_end();

    if (ad_begin("ept-ad-cleared", has_ad) && has_ad) {
        uint64_t *pml4 = ept_build(false);
        uint64_t eptp = eptp_of(pml4, true);
        struct gregs g = { .rbx = lin_of(4), .rcx = 0x44440000beefull };
        if (launch(eptp, PA(l2_write), 0, &g, EXIT_REASON_VMCALL, "L2 write")) {
            check_flags(pml4, gpa_of(4), 1, AD, AD, "data PTE after the write");
            *ept_entry(pml4, gpa_of(4), 1) &= ~AD;
            check_outcome(vmx_outcome(invept(INVEPT_SINGLE, eptp)), VMX_SUCCEED, "INVEPT single-context");
            struct l2_setup s = { .rip = PA(l2_read), .proc2 = PROC2_ENABLE_EPT, .eptp = eptp,
                                  .cr3 = PA(l2_pml4), .exc_bitmap = ~0u };
            if (vmcs_build(&s)) {
                l2_regs = (struct gregs){ .rbx = lin_of(4) };
                if (run_expect(true, EXIT_REASON_VMCALL, "L2 read after L1 cleared A and D")) {
                    check_u64(l2_regs.rax, 0x44440000beefull, "L2's read");
                    check_flags(pml4, gpa_of(4), 1, EPTE_A, AD, "data PTE after the read");
                }
            }
            s.rip = PA(l2_write);
            if (vmcs_build(&s)) {
                l2_regs = (struct gregs){ .rbx = lin_of(4) + 8, .rcx = 0x4444000100000000ull };
                if (run_expect(true, EXIT_REASON_VMCALL, "L2 write again"))
                    check_flags(pml4, gpa_of(4), 1, AD, AD, "data PTE after the write");
            }
        }
    }
    test_end();
}

/* ------------------------------------------------------------------------------------------
 * ept-ad-paging-write
 */
static void t_ad_paging_write(void)
{
    if (ad_begin("ept-ad-paging-write", has_ad) && has_ad) {
        uint64_t *pml4 = ept_build(false);
        /* L2's PT page read and execute only */
        *ept_entry(pml4, PT_GPA + 0x2000, 1) = PA(l2_pt[2]) | EPTE_R | EPTE_X | EPTE_WB;
        struct gregs g = { .rbx = lin_of(2) + 0x28 };
        if (launch(eptp_of(pml4, true), PA(l2_read), 0, &g, EXIT_REASON_EPT_VIOLATION,
                   "L2 read through a read-only PT page, A/D on")) {
            uint64_t acc = ex.qual & 7;
            test_check(acc == (EPTQ_READ | EPTQ_WRITE) || acc == EPTQ_WRITE,
                       "qualification bits 2:0 = %llu, expected 3 (a write; Bochs 2.7: 2)", U64(acc));
            if (acc == EPTQ_WRITE)
                info("ept-ad-paging-write: bits 2:0 = 2 (the SDM says 3 for a paging-structure access)");
            check_u64(ex.qual & 0x1f8, (5ull << 3) | EPTQ_GLA_VALID, "qualification bits 8:3");
            check_u64(ex.gpa, PT_GPA + 0x2000 + 2 * 8, "GUEST_PHYSICAL_ADDRESS (L2's PTE)");
            check_u64(ex.gla, lin_of(2) + 0x28, "GUEST_LINEAR_ADDRESS");
            check_u64(ex.rip, PA(l2_read), "GUEST_RIP");
            check_flags(pml4, PT_GPA + 0x2000, 1, 0, EPTE_A | EPTE_D, "the read-only PT page");
        }
        pml4 = ept_build(false);
        *ept_entry(pml4, PT_GPA + 0x2000, 1) = PA(l2_pt[2]) | EPTE_R | EPTE_X | EPTE_WB;
        if (launch(eptp_of(pml4, false), PA(l2_read), 0, &g, EXIT_REASON_VMCALL,
                   "L2 read through a read-only PT page, A/D off"))
            check_u64(l2_regs.rax, data[2][5], "L2's read");
    }
    test_end();
}

/* ------------------------------------------------------------------------------------------
 * ept-exec-only
 */
static void t_exec_only(void)
{
    if (ad_begin("ept-exec-only", has_xo)) {
        uint64_t *pml4 = ept_build(false);
        memset(xo_page, 0xcc, PAGE);
        memcpy(xo_page, xo_tmpl, xo_tmpl_end - xo_tmpl);
        *ept_entry(pml4, gpa_of(XO_OFF), 1) = PA(xo_page) | EPTE_X | EPTE_WB;
        struct gregs g = { .rbx = lin_of(XO_OFF) };
        uint64_t eptp = eptp_of(pml4, has_ad);
        if (!has_xo) {
            info("execute-only EPT pages not offered: the leaf must be a misconfiguration");
            if (launch(eptp, PA(l2_jump), 0, &g, EXIT_REASON_EPT_MISCONFIG, "jump to an execute-only page"))
                check_u64(ex.gpa, gpa_of(XO_OFF), "GUEST_PHYSICAL_ADDRESS");
        } else if (launch(eptp, PA(l2_jump), 0, &g, EXIT_REASON_VMCALL, "code in an execute-only page")) {
            check_u64(l2_regs.rax & 0xffff, 0x8e8e, "L2 ran the execute-only page");
            check_u64(ex.rip, lin_of(XO_OFF) + 5, "VMCALL exit: GUEST_RIP");
            if (has_ad)
                check_flags(pml4, gpa_of(XO_OFF), 1, EPTE_A, EPTE_A | EPTE_D, "execute-only PTE after the fetch");
            struct l2_setup s = { .rip = PA(l2_read), .proc2 = PROC2_ENABLE_EPT, .eptp = eptp,
                                  .cr3 = PA(l2_pml4), .exc_bitmap = ~0u };
            if (vmcs_build(&s)) {
                l2_regs = (struct gregs){ .rbx = lin_of(XO_OFF) + 0x10 };
                if (run_expect(true, EXIT_REASON_EPT_VIOLATION, "read of an execute-only page")) {
                    check_u64(ex.qual & ~0xe40ull, EPTQ_READ | (EPTE_X << 3) | EPTQ_GLA_VALID | EPTQ_TRANSLATED,
                              "qualification (bits 6, 9-11 not compared)");
                    check_u64(ex.gpa, gpa_of(XO_OFF) + 0x10, "GUEST_PHYSICAL_ADDRESS");
                    check_u64(ex.rip, PA(l2_read), "GUEST_RIP");
                }
            }
        }
    }
    test_end();
}

/* ------------------------------------------------------------------------------------------
 * pml-log, pml-full
 */
#define PML_MARK 0x5e5e5e5e5e5e5e5eull

/* Log entry i holds page gpa (bits 11:0 clear; Bochs 2.7 logs the address accessed, `exact`). */
static void check_pml(int i, uint64_t gpa, uint64_t exact, const char *what)
{
    uint64_t e = pml_log[i];
    test_check(e == gpa || e == exact, "PML entry %d: 0x%llx, expected %s 0x%llx", i, U64(e), what, U64(gpa));
    if (e == exact && exact != gpa)
        info("PML entry %d: 0x%llx, the address accessed (the SDM logs the page, 0x%llx)", i, U64(e), U64(gpa));
}

static bool pml_begin(const char *name)
{
    if (!ad_begin(name, has_pml && has_ad))
        return false;
    if (!has_pml || !has_ad) {
        info("PML %s, A/D %s: %s", has_pml ? "offered" : "not offered", has_ad ? "offered" : "not offered",
             has_pml ? "nothing to log into" : "checking that \"enable PML\" is refused");
        if (!has_pml) {
            uint64_t *pml4 = ept_build(false);
            struct l2_setup s = { .rip = PA(l2_read), .proc2 = PROC2_ENABLE_EPT | PROC2_ENABLE_PML,
                                  .eptp = eptp_of(pml4, false), .cr3 = PA(l2_pml4), .exc_bitmap = ~0u,
                                  .unchecked = true };
            if (vmcs_build(&s)) {
                vmw(VMCS_PML_ADDRESS, PA(pml_log));
                enter_expect_fail(true, VMX_FAIL_VALID_ERR(VMXERR_ENTRY_INVALID_CONTROLS),
                                  "VMLAUNCH with \"enable PML\"");
            }
        }
        return false;
    }
    for (int i = 0; i < 512; i++)
        pml_log[i] = PML_MARK;
    return true;
}

static bool pml_launch(uint64_t *pml4, uint16_t index, const struct gregs *g, uint32_t reason, const char *what)
{
    struct l2_setup s = { .rip = PA(l2_w3), .proc2 = PROC2_ENABLE_EPT | PROC2_ENABLE_PML,
                          .eptp = eptp_of(pml4, true), .cr3 = PA(l2_pml4), .exc_bitmap = ~0u };
    if (!vmcs_build(&s))
        return false;
    vmw(VMCS_PML_ADDRESS, PA(pml_log));
    vmw(VMCS_GUEST_PML_INDEX, index);
    l2_regs = *g;
    return run_expect(true, reason, what);
}

static void t_pml(void)
{
    if (pml_begin("pml-log")) {
        uint64_t *pml4 = ept_build(false);
        /* a read first: A only, nothing logged */
        struct l2_setup s = { .rip = PA(l2_read), .proc2 = PROC2_ENABLE_EPT | PROC2_ENABLE_PML,
                              .eptp = eptp_of(pml4, true), .cr3 = PA(l2_pml4), .exc_bitmap = ~0u };
        if (vmcs_build(&s)) {
            vmw(VMCS_PML_ADDRESS, PA(pml_log));
            vmw(VMCS_GUEST_PML_INDEX, 511);
            l2_regs = (struct gregs){ .rbx = lin_of(5) + 0x30 };
            if (run_expect(true, EXIT_REASON_VMCALL, "L2 read with PML")) {
                /* the walk wrote (for EPT) L2's PDPT, PD and PT pages */
                check_u64(vmr(VMCS_GUEST_PML_INDEX), 508, "PML index after the read");
                /* the entries used: index 0 of the PDPT and PD (LIN), 5 of the PT */
                for (int i = 0; i < 3; i++)
                    check_pml(511 - i, PT_GPA + 0x1000 * i, PT_GPA + 0x1000 * i + (i == 2 ? 5 * 8 : 0),
                              "L2's paging-structure page");
                check_u64(pml_log[508], PML_MARK, "PML entry 508 after the read");
                check_flags(pml4, gpa_of(5), 1, EPTE_A, EPTE_A | EPTE_D, "the read page's PTE");
            }
        }
        /* writes of pages 1, 2, 3, then 1 again, from index 508 */
        struct gregs g = { .rbx = lin_of(1) + 0x18, .rsi = lin_of(2) + 0x20, .rdi = lin_of(3) + 0x28,
                           .r8 = lin_of(1) + 0x30, .rcx = 0x9999000012345678ull };
        s.rip = PA(l2_w3);
        if (vmcs_build(&s)) {
            vmw(VMCS_PML_ADDRESS, PA(pml_log));
            vmw(VMCS_GUEST_PML_INDEX, 508);
            l2_regs = g;
            if (run_expect(true, EXIT_REASON_VMCALL, "L2 writes with PML")) {
                check_u64(vmr(VMCS_GUEST_PML_INDEX), 505, "PML index after three pages written");
                check_pml(508, gpa_of(1), gpa_of(1) + 0x18, "page 1");
                check_pml(507, gpa_of(2), gpa_of(2) + 0x20, "page 2");
                check_pml(506, gpa_of(3), gpa_of(3) + 0x28, "page 3");
                check_u64(pml_log[505], PML_MARK, "PML entry 505");
                check_u64(data[1][6], 0x9999000012345678ull, "page 1 written");
                check_u64(data[3][5], 0x9999000012345678ull, "page 3 written");
                /* again: every page dirty already, nothing logged */
                l2_regs = g;
                vmw(VMCS_GUEST_RIP, PA(l2_w3));
                if (run_expect(false, EXIT_REASON_VMCALL, "L2 writes the same pages again"))
                    check_u64(vmr(VMCS_GUEST_PML_INDEX), 505, "PML index after writing dirty pages");
                check_u64(pml_log[505], PML_MARK, "PML entry 505 at the end");
            }
        }
    }
    test_end();

    if (pml_begin("pml-full")) {
        uint64_t *pml4 = ept_build(true);
        struct gregs g = { .rbx = lin_of(1), .rsi = lin_of(2) + 8, .rdi = lin_of(3) + 0x10, .r8 = lin_of(1) + 8,
                           .rcx = 0x7777000087654321ull };
        if (pml_launch(pml4, 1, &g, EXIT_REASON_PML_FULL, "third page written with the index out of range")) {
            check_u64(ex.qual, 0, "exit qualification");
            check_u64(ex.rip, PA(l2_w3_c), "GUEST_RIP (the store to the third page)");
            check_u64(vmr(VMCS_GUEST_PML_INDEX), 0xffff, "PML index");
            check_pml(1, gpa_of(1), gpa_of(1), "page 1");
            check_pml(0, gpa_of(2), gpa_of(2) + 8, "page 2");
            check_u64(data[3][2], 0xda7a000300000002ull, "the third page, not written");
            check_flags(pml4, gpa_of(3), 1, 0, EPTE_A | EPTE_D, "the third page's PTE");
            check_flags(pml4, gpa_of(2), 1, EPTE_A | EPTE_D, EPTE_A | EPTE_D, "the second page's PTE");
            test_check(!(ex.idt_vec & INTR_INFO_VALID), "IDT-vectoring information 0x%x valid", ex.idt_vec);
            vmw(VMCS_GUEST_PML_INDEX, 511);
            if (run_expect(false, EXIT_REASON_VMCALL, "VMRESUME with index 511")) {
                check_u64(data[3][2], 0x7777000087654321ull, "the third page written");
                check_pml(511, gpa_of(3), gpa_of(3) + 0x10, "page 3");
                check_u64(vmr(VMCS_GUEST_PML_INDEX), 510, "PML index at the end");
                check_u64(pml_log[510], PML_MARK, "PML entry 510");
            }
        }
    }
    test_end();
}

/* ------------------------------------------------------------------------------------------
 * pml-entry-failures
 */
static void t_pml_entry_failures(void)
{
    if (ad_begin("pml-entry-failures", has_pml) && has_pml) {
        uint64_t *pml4 = ept_build(false);
        static const struct { uint32_t proc2; uint64_t addr, eptp_extra; const char *what; } bad[] = {
            { PROC2_ENABLE_PML, 0, 0, "PML without EPT" },
            { PROC2_ENABLE_EPT | PROC2_ENABLE_PML, 0x800, 0, "PML address not 4 KiB aligned" },
            { PROC2_ENABLE_EPT | PROC2_ENABLE_PML, 1, 0, "PML address beyond the physical-address width" },
            { PROC2_ENABLE_EPT, 0, 1ull << 8, "EPTP bit 8 (reserved)" },
            { PROC2_ENABLE_EPT | PROC2_ENABLE_PML, 0, 0, NULL },
        };
        for (unsigned i = 0; i < ARRAY_SIZE(bad); i++) {
            struct l2_setup s = { .rip = PA(l2_read), .proc2 = bad[i].proc2, .eptp = eptp_of(pml4, true) | bad[i].eptp_extra,
                                  .cr3 = PA(l2_pml4), .exc_bitmap = ~0u, .unchecked = true };
            if (!(bad[i].proc2 & PROC2_ENABLE_EPT))
                s.cr3 = 0;          /* no EPT12: L2 on L1's tables */
            if (!vmcs_build(&s))
                break;
            uint64_t addr = PA(pml_log);
            if (bad[i].addr == 1)
                addr = 1ull << maxphyaddr;
            else
                addr |= bad[i].addr;
            vmw(VMCS_PML_ADDRESS, addr);
            vmw(VMCS_GUEST_PML_INDEX, 511);
            l2_regs = (struct gregs){ .rbx = lin_of(1) };
            if (bad[i].what) {
                char buf[96];
                snprintf(buf, sizeof(buf), "VMLAUNCH with %s", bad[i].what);
                enter_expect_fail(true, VMX_FAIL_VALID_ERR(VMXERR_ENTRY_INVALID_CONTROLS), buf);
            } else if (run_expect(true, EXIT_REASON_VMCALL, "VMLAUNCH with valid PML settings")) {
                check_u64(l2_regs.rax, data[1][0], "L2's read");
            }
        }
    }
    test_end();
}

/* ------------------------------------------------------------------------------------------
 * ept-ve
 */
struct ve_info {
    uint32_t reason, busy;
    uint64_t qual, gla, gpa;
    uint16_t eptp_index;
} __attribute__((packed));

static bool ve_launch(uint64_t *pml4, uint64_t info_addr, uint32_t exc_bitmap, uint32_t reason, const char *what)
{
    struct l2_setup s = { .rip = PA(l2_read), .proc2 = PROC2_ENABLE_EPT | PROC2_EPT_VE, .eptp = eptp_of(pml4, false),
                          .cr3 = PA(l2_pml4), .exc_bitmap = exc_bitmap, .unchecked = true };
    if (!vmcs_build(&s))
        return false;
    vmw(VMCS_VE_INFO_ADDR, info_addr);
    vmw(VMCS_EPTP_INDEX, 0);    /* Bochs 2.7 does not load the field at VM entry: 0 agrees */
    l2_regs = (struct gregs){ .rbx = lin_of(2) + 0x38 };
    if (reason == ~0u)
        return enter_expect_fail(true, VMX_FAIL_VALID_ERR(VMXERR_ENTRY_INVALID_CONTROLS), what);
    return run_expect(true, reason, what);
}

static void check_ve_info(const char *what)
{
    const volatile struct ve_info *ve = (const volatile struct ve_info *)ve_area;
    char buf[96];
    snprintf(buf, sizeof(buf), "%s: #VE information reason", what);
    check_u64(ve->reason, EXIT_REASON_EPT_VIOLATION, buf);
    snprintf(buf, sizeof(buf), "%s: #VE information busy word", what);
    check_u64(ve->busy, 0xffffffffu, buf);
    snprintf(buf, sizeof(buf), "%s: #VE information qualification (bits 6, 9-11 not compared)", what);
    check_u64(ve->qual & ~0xe40ull, EPTQ_READ | EPTQ_GLA_VALID | EPTQ_TRANSLATED, buf);
    snprintf(buf, sizeof(buf), "%s: #VE information linear address", what);
    check_u64(ve->gla, lin_of(2) + 0x38, buf);
    snprintf(buf, sizeof(buf), "%s: #VE information physical address", what);
    check_u64(ve->gpa, gpa_of(2) + 0x38, buf);
    snprintf(buf, sizeof(buf), "%s: #VE information EPTP index", what);
    check_u64(ve->eptp_index, 0, buf);
}

static void t_ve(void)
{
    if (ad_begin("ept-ve", has_ve)) {
        uint64_t *pml4 = ept_build(false);
        struct dtr saved = l2_idtr;
        *ept_entry(pml4, gpa_of(2), 1) = 0;     /* not present, bit 63 clear */
        if (!has_ve) {
            info("EPT-violation #VE not offered: checking that VMLAUNCH refuses it");
            ve_launch(pml4, PA(ve_area), ~0u, ~0u, "VMLAUNCH with \"EPT-violation #VE\"");
            goto out;
        }
        l2_idt_init(l2_unexpected_handler);
        l2_idt_set(20, l2_ve_handler);
        l2_idtr.base = PA(l2_idt);
        l2_idtr.limit = sizeof(l2_idt) - 1;
        memset(ve_area, 0, PAGE);
        if (ve_launch(pml4, PA(ve_area), 0, EXIT_REASON_VMCALL, "read of a not-present page: #VE in L2")) {
            check_u64(l2_regs.rax & 0xffff, 0x7e7e, "L2's #VE handler ran");
            const uint64_t *frame = phys(ex.rsp);
            check_u64(frame[0], PA(l2_read), "#VE frame: RIP (the read)");
            check_u64(frame[1] & 0xffff, vmr(VMCS_GUEST_CS_SELECTOR), "#VE frame: CS (no error code)");
            check_ve_info("first #VE");
            /* busy: an EPT-violation exit */
            ve_area[0] = 0x55;
            if (ve_launch(pml4, PA(ve_area), 0, EXIT_REASON_EPT_VIOLATION, "the same read, area busy")) {
                check_u64(ex.gpa, gpa_of(2) + 0x38, "EPT-violation exit: GUEST_PHYSICAL_ADDRESS");
                check_u64(ve_area[0], 0x55, "the busy area is not written");
            }
        }
        /* bit 63 suppresses the #VE */
        memset(ve_area, 0, PAGE);
        *ept_entry(pml4, gpa_of(2), 1) = 1ull << 63;
        invept(INVEPT_ALL, 0);
        if (ve_launch(pml4, PA(ve_area), 0, EXIT_REASON_EPT_VIOLATION, "not-present entry with bit 63"))
            check_u64(((volatile struct ve_info *)ve_area)->busy, 0, "the area after a suppressed #VE");
        /* L1 intercepts #VE */
        *ept_entry(pml4, gpa_of(2), 1) = 0;
        invept(INVEPT_ALL, 0);
        if (ve_launch(pml4, PA(ve_area), 1u << 20, EXIT_REASON_EXCEPTION_NMI, "#VE with exception bitmap bit 20")) {
            check_u64(ex.intr_info, 0x80000314u, "exit interruption information (vector 20, hardware exception)");
            check_u64(ex.rip, PA(l2_read), "GUEST_RIP");
            check_ve_info("intercepted #VE");
        }
        ve_launch(pml4, PA(ve_area) | 0x10, 0, ~0u, "VMLAUNCH with a #VE information address not 4 KiB aligned");
        ve_launch(pml4, 1ull << maxphyaddr, 0, ~0u,
                  "VMLAUNCH with a #VE information address beyond the physical-address width");
    out:
        l2_idtr = saved;
    }
    test_end();
}

void test_main(void)
{
    vmx_init();
    t_ad_read_write();
    t_ad_paging_write();
    t_exec_only();
    t_pml();
    t_pml_entry_failures();
    t_ve();
    l1_done();
}
