/* lhv3.bin - L1 test hypervisor, phase 3: L2 guests with EPT, VPID and unrestricted guest.
 *
 * Built on the library's L1 scaffolding (l1.h: vm_enter/vm_exit_stub, L1's GDT with a 64-bit TSS,
 * a VMCS rebuilt from scratch for each run), BSP only. L2 runs 64-bit on L1's page tables (or a
 * copy with extra L2-only mappings) whose addresses are L2-physical; the EPT maps L2-physical to L1-physical:
 *   0 - 1 GiB     identity, 2 MiB leaves, WB, RWX (4 KiB leaves for the image when the EPT has
 *                 no 2 MiB pages), so L1's page tables, code, stacks and data work for L2 as is;
 *   WIN = 1 GiB   test window: 4 KiB leaves to L1 pages (the PT of the first 2 MiB), a 2 MiB leaf;
 *   2 GiB - 3 GiB one 1 GiB leaf onto L1-physical 0 (when the EPT has 1 GiB pages).
 * L1's page tables identity-map 0-4 GiB with 2 MiB pages, so a linear address below 4 GiB is the
 * same L2-physical address. EPT tables come from a page pool rebuilt by each check (after INVEPT
 * all-context, so no translation survives from an earlier check with the same EPTP).
 * Exception bitmap = all ones: a fault in L2 is a VM exit (reason 0) instead of a triple fault.
 *
 * Checks (SDM Vol. 3 ch. 29 (EPT, VPID), 28.2.1 (exit qualification), A.10, INVEPT/INVVPID):
 *  ept-identity         identity EPT: CPUID exits (10), L1 emulates it, L2 reads an L1 variable
 *                       through EPT, VMCALL exits (18).
 *  ept-remap            L2-physical page P -> L1 page Q (4 KiB leaf in a split 2 MiB range): L2
 *                       reads Q's value at P and writes one; Q has it, P is untouched. The same
 *                       through a 2 MiB leaf (WIN + 2 MiB) and a 1 GiB leaf (2 GiB -> 0) if the
 *                       EPT supports 1 GiB pages (IA32_VMX_EPT_VPID_CAP bit 17; else that part is
 *                       left out).
 *  ept-violation-read   not-present 4 KiB leaf: reason 48, qualification read | linear valid |
 *                       translation, bits 3-5 = 0, GUEST_PHYSICAL_ADDRESS / GUEST_LINEAR_ADDRESS /
 *                       GUEST_RIP; fixed + INVEPT single-context, VMRESUME reads the value. Same for
 *                       a not-present EPT PDE, an execute-only leaf (bits 3-5 = X, if supported)
 *                       and a guest paging-structure read (L2's PDPT in a not-present page: bit 8
 *                       clear, GPA = the PDPTE's address).
 *  ept-violation-write  read-only leaf: the read works, the write exits (write, bits 3-5 = R); made
 *                       writable + INVEPT, VMRESUME redoes the write and L1 sees it.
 *  ept-violation-exec   RW leaf without X: a jump into it exits (fetch, bits 3-5 = RW, GUEST_RIP =
 *                       target); with X the code there runs (VMCALL). An execute-only page runs too
 *                       (if supported).
 *  ept-apic-store       L2 stores to the local APIC's TPR through an EPT leaf onto L1's APIC page (UC),
 *                       from code in a page the EPT remaps (its L2-physical address is not L1
 *                       memory): `movabs %eax, moffs64` (A3), `lock orl $0x10, (%rbx)`, `xchg`;
 *                       L2 reads back 0x21, 0x31 then the old value, L1 reads the TPR (issue 14:
 *                       L0 emulates each store, fetching the instruction through EPT12).
 *  ept-misconfig        W-only leaf, a leaf with memory type 2, a non-leaf entry with bit 3 set:
 *                       reason 49 with GUEST_PHYSICAL_ADDRESS; fixed + INVEPT, the read works.
 *  ept-invept           a mapping changed while L2 is stopped: after INVEPT single-context and
 *                       after all-context L2 reads the new page; INVEPT types 0 and 3, and
 *                       single-context with an invalid EPTP (memory type 5, walk length 3):
 *                       VMfailValid(28).
 *  ept-switch-32-eptps  32 hierarchies mapping one L2-physical page to 32 L1 pages (a distinct
 *                       marker in each): EPT_POINTER changed between VMRESUMEs (1 0 1 0, then 1..31
 *                       in order, then all 32 again 13 apart); L2 reads the right marker and
 *                       EPT_POINTER reads back each time. Then hierarchy 9 is remapped to a 33rd
 *                       page while hierarchy 22 is current, with INVEPT single-context of EPTP 9
 *                       only (all-context if single is not supported): entries with 22, 9, 9, 3, 9
 *                       read 22, new, new, 3, new (a stale EPTP-9 translation gives 9); remapped
 *                       back while current + INVEPT, entries with 9, 22, 9 read 9, 22, 9.
 *  vpid                 two VMCSs with VPID 1 and 2, L2 on its own page tables: after each PTE
 *                       change, INVVPID of each supported type (individual-address, single-context,
 *                       all-context, single-context-retaining-globals) succeeds and L2 reads the new
 *                       page; VMfailValid(28) for VPID 0 with types 0/1/3, descriptor bits 63:16,
 *                       a non-canonical address (type 0) and unsupported types; all-context with
 *                       VPID 0 succeeds.
 *  ept-unrestricted-guest  L2 in real mode (CR0.PE = PG = 0, CS 0x800 base 0x8000, code in an L1
 *                       page that the EPT maps at 0x8000): `mov $0x1234, %ax; vmcall` exits with
 *                       reason 18 at IP 3 and AX = 0x1234.
 * When IA32_VMX_PROCBASED_CTLS2 does not allow a feature, its checks verify the absence instead and
 * pass: INVEPT / INVVPID raise #UD, VMLAUNCH with the control set gives VMfailValid(7), and
 * IA32_VMX_EPT_VPID_CAP raises #GP when neither EPT nor VPID is allowed (SDM A.10). An INFO line
 * says which path ran.
 *
 * Bochs 2.7 (corei7_skylake_x) passes all of it bare with 1 and 2 CPUs (about 6.7 M ticks in the
 * kernel, half of them building the 32 hierarchies of ept-switch-32-eptps); no EPT-violation or misconfiguration qualification case checked here differs from the
 * SDM there. Also passing bare: corei5_lynnfield_750 (no 1 GiB EPT pages, no unrestricted guest)
 * and corei7_sandy_bridge_2600k. Bochs difference: on a model without EPT/VPID
 * (core2_penryn_t9600) INVEPT and INVVPID do not raise #UD (Bochs checks only VMX operation and
 * the mode; SDM: #UD when IA32_VMX_PROCBASED_CTLS2 bit 33 / 37 is 0), so the absence checks of all
 * but ept-unrestricted-guest fail there; they stay strict because they verify a hypervisor that
 * hides EPT/VPID, and the default model never takes that path.
 */
#include "lib.h"
#include "vmx.h"
#include "l1.h"

/* EPT paging-structure entries (SDM Vol. 3 29.3.2) and the EPTP (25.6.11) */
#define EPTE_R          (1ull << 0)
#define EPTE_W          (1ull << 1)
#define EPTE_X          (1ull << 2)
#define EPTE_RWX        (EPTE_R | EPTE_W | EPTE_X)
#define EPTE_MT(t)      ((uint64_t)(t) << 3)     /* leaf memory type */
#define EPTE_WB         EPTE_MT(6)
#define EPTE_PS         (1ull << 7)              /* PDPTE / PDE: maps a page */
#define EPTE_ADDR       0x000ffffffffff000ull
#define EPTP_MT_UC      0ull
#define EPTP_MT_WB      6ull
#define EPTP_WALK4      (3ull << 3)
/* EPT-violation exit qualification (Table 28-7) */
#define EPTQ_READ       (1ull << 0)
#define EPTQ_WRITE      (1ull << 1)
#define EPTQ_FETCH      (1ull << 2)
#define EPTQ_PERM(p)    ((uint64_t)(p) << 3)     /* bits 3-5: R, W, X of the translation */
#define EPTQ_GLA_VALID  (1ull << 7)
#define EPTQ_TRANSLATED (1ull << 8)
/* compared bits: all but 6 (user-execute, undefined without mode-based execute control) and 9-11
 * (advanced VM-exit information, which depends on the guest's paging entries) */
#define EPTQ_COMPARED   (~0xe40ull)

#define WIN       0x40000000ull     /* L2-physical (and linear) test window */
#define WIN_2M    (WIN + 0x200000)  /* a 2 MiB leaf */
#define GB2       0x80000000ull     /* a 1 GiB leaf onto L1-physical 0 */
#define L2_X      0x10000000000ull  /* vpid: linear address mapped only by L2's own tables */
#define L2_WALK   (0x18000000000ull + (5ull << 30) + 0x18)   /* PML4 slot 3, PDPT index 5 */

/* ept-switch-32-eptps needs the most: 32 hierarchies of 5 pages (7 without 2 MiB EPT pages) */
#define POOL_PAGES 256
static uint64_t ept_pool[POOL_PAGES][512] __attribute__((aligned(PAGE)));
static int pool_used;

/* L1 pages that L2 sees through special EPT mappings */
#define NDATA 15
static uint64_t data[NDATA][512] __attribute__((aligned(PAGE)));
static uint64_t pg_p[512] __attribute__((aligned(PAGE)));    /* ept-remap: P (L2-physical) */
static uint64_t pg_q[512] __attribute__((aligned(PAGE)));    /* ept-remap: Q (what P maps to) */
static uint8_t rm_page[PAGE] __attribute__((aligned(PAGE))); /* real-mode code */
/* L2's own page tables (vpid, the guest-paging-structure violation) */
static uint64_t l2_pml4[512] __attribute__((aligned(PAGE)));
static uint64_t l2_pdpt[512] __attribute__((aligned(PAGE)));
static uint64_t l2_pd[512] __attribute__((aligned(PAGE)));
static uint64_t l2_pt[512] __attribute__((aligned(PAGE)));
static uint64_t walk_pdpt[512] __attribute__((aligned(PAGE)));   /* mapped at WIN + 0x5000 */
static uint64_t walk_pd[512] __attribute__((aligned(PAGE)));
static uint64_t walk_pt[512] __attribute__((aligned(PAGE)));
static volatile uint64_t ident_cookie = 0x1de171171de17ull;

extern char __image_end[];

/* ------------------------------------------------------------------------------------------
 * L2 code. 64-bit programs run at CPL 0 with IF = 0; the loops let L1 change RBX/RCX (the
 * address and the value) and VMRESUME after each VMCALL.
 */
extern char l2_ident[], l2_ident_cpuid[], l2_ident_vmcall[];
extern char l2_read[], l2_read_vmcall[];
extern char l2_rw[], l2_rw_store[], l2_rw_vmcall[];
extern char l2_sio[], l2_sio_insn[];
extern char l2_jump[];
extern char exec_tmpl[], exec_tmpl_vmcall[], exec_tmpl_end[];
extern char rm_code[], rm_code_vmcall[], rm_code_end[];
extern char apic_tmpl[], apic_tmpl_vmcall[], apic_tmpl_end[];

asm(".text\n"
    "l2_ident:\n"
    "  xor %eax, %eax\n"
    "  xor %ecx, %ecx\n"
    "l2_ident_cpuid:\n"
    "  cpuid\n"
    "  mov (%rbx), %rdx\n"
    "l2_ident_vmcall:\n"
    "  vmcall\n"
    "  ud2\n"

    "l2_read:\n"
    "  mov (%rbx), %rax\n"
    "l2_read_vmcall:\n"
    "  vmcall\n"
    "  jmp l2_read\n"

    "l2_rw:\n"
    "  mov (%rbx), %rax\n"
    "l2_rw_store:\n"
    "  mov %rcx, (%rbx)\n"
    "  mov (%rbx), %rdx\n"
    "l2_rw_vmcall:\n"
    "  vmcall\n"
    "  jmp l2_rw\n"

    "l2_jump:\n"
    "  jmp *%rbx\n"

    /* ept-string-io: REP INSB of RCX bytes from port 0xf4 to RDI */
    "l2_sio:\n"
    "  cld\n"
    "  mov $0xf4, %edx\n"
    "l2_sio_insn:\n"
    "  rep insb\n"
    "  vmcall\n"
    "  ud2\n"

    /* copied into a test page: runs at the address L2 jumps to */
    "exec_tmpl:\n"
    "  mov $0xe8ec, %eax\n"
    "exec_tmpl_vmcall:\n"
    "  vmcall\n"
    "  ud2\n"
    "exec_tmpl_end:\n"

    /* copied into a test page (ept-apic-store): stores to the TPR at WIN + 0x8080 */
    "apic_tmpl:\n"
    "  mov $0x40008080, %ebx\n"
    "  mov $0x21, %eax\n"
    "  movabs %eax, 0x40008080\n"          /* a3 80 80 00 40 00 00 00 00 */
    "  mov (%rbx), %ecx\n"
    "  lock orl $0x10, (%rbx)\n"           /* f0 83 0b 10 */
    "  mov (%rbx), %edx\n"
    "  mov $0x5, %esi\n"
    "  xchg %esi, (%rbx)\n"                /* 87 33 */
    "apic_tmpl_vmcall:\n"
    "  vmcall\n"
    "  ud2\n"
    "apic_tmpl_end:\n"

    /* real-mode L2 (ept-unrestricted-guest), copied to the page at L2-physical 0x8000 */
    "rm_code:\n"
    "  .code16\n"
    "  mov $0x1234, %ax\n"
    "rm_code_vmcall:\n"
    "  vmcall\n"
    "1: hlt\n"
    "  jmp 1b\n"
    "  .code64\n"
    "rm_code_end:\n");

#define EXEC_MARK 0xe8ec

/* ------------------------------------------------------------------------------------------
 * Capabilities, VMX operation
 */
static uint64_t cap_ept;
static bool has_ept, has_vpid, has_ug, ept_usable;
static uint64_t eptp_mt;

static bool ept_cap(uint64_t bit) { return (cap_ept & bit) != 0; }

static void vmx_init(void)
{
    if (!l1_init())
        return;
    /* L2 shares L1's IDT: with every exception exiting (vmcs_build_all_exits) L2 never uses it */
    l2_idtr = l1_bsp.idtr;
    has_ept = proc2_allowed(PROC2_ENABLE_EPT);
    has_vpid = proc2_allowed(PROC2_ENABLE_VPID);
    has_ug = proc2_allowed(PROC2_UNRESTRICTED_GUEST);
    cap_ept = 0;
    if ((has_ept || has_vpid) &&
        rdmsr_safe(MSR_IA32_VMX_EPT_VPID_CAP, &cap_ept) != NO_EXCEPTION) {
        info("IA32_VMX_EPT_VPID_CAP raised %s although EPT or VPID is allowed",
             exception_name(this_cpu()->fault_vector));
        cap_ept = 0;
    }
    eptp_mt = ept_cap(EPT_CAP_MEMTYPE_WB) ? EPTP_MT_WB : EPTP_MT_UC;
    ept_usable = has_ept && ept_cap(EPT_CAP_WALK_4) &&
                 (ept_cap(EPT_CAP_MEMTYPE_WB) || ept_cap(EPT_CAP_MEMTYPE_UC));
    info("secondary controls %s, PROCBASED_CTLS2 0x%016llx, EPT_VPID_CAP 0x%016llx: EPT %s, "
         "VPID %s, unrestricted guest %s", has_proc2 ? "allowed" : "not allowed", U64(cap_proc2),
         U64(cap_ept), has_ept ? "yes" : "no", has_vpid ? "yes" : "no", has_ug ? "yes" : "no");

    l1_vmxon();
}

/* vmcs_build() with the exception bitmap all ones: a fault in L2 is a VM exit (reason 0) instead
 * of a delivery through an IDT meant for L1. */
static bool vmcs_build_all_exits(struct l2_setup *s)
{
    s->exc_bitmap = 0xffffffffu;
    return vmcs_build(s);
}

/* VMRESUME after a VMCALL exit of a looping program: next L2 read at addr. */
static bool resume_read(uint64_t addr, uint64_t want, const char *what)
{
    char buf[96];
    advance_rip();
    l2_regs.rbx = addr;
    snprintf(buf, sizeof(buf), "%s: L2 read", what);
    if (!run_expect(false, EXIT_REASON_VMCALL, buf))
        return false;
    return test_check(l2_regs.rax == want, "%s: L2 read 0x%llx at 0x%llx, expected 0x%llx", what,
                      U64(l2_regs.rax), U64(addr), U64(want));
}

/* ------------------------------------------------------------------------------------------
 * EPT tables
 */
static uint64_t *ept_page(void)
{
    if (pool_used >= POOL_PAGES)
        panic("lhv3: EPT page pool exhausted");
    uint64_t *p = ept_pool[pool_used++];
    memset(p, 0, PAGE);
    return p;
}

/* INVEPT that must succeed: single-context for eptp if supported, else all-context. */
static bool ept_flush(uint64_t eptp, const char *what)
{
    char buf[48];
    int o;
    if (ept_cap(EPT_CAP_INVEPT_SINGLE))
        o = vmx_outcome(invept(INVEPT_SINGLE, eptp));
    else
        o = vmx_outcome(invept(INVEPT_ALL, 0));
    return test_check(o == VMX_SUCCEED, "%s: INVEPT %s-context: %s", what,
                      ept_cap(EPT_CAP_INVEPT_SINGLE) ? "single" : "all",
                      vmx_outcome_name(o, buf, sizeof(buf)));
}

/* Start of a check: empty pool, and no cached translation from an earlier check (the pool's
 * pages, hence EPTPs, are reused). */
static void ept_reset(void)
{
    if (ept_cap(EPT_CAP_INVEPT_ALL)) {
        int o = invept(INVEPT_ALL, 0);
        test_check(o == VMX_SUCCEED, "INVEPT all-context before the check: outcome 0x%x", o);
    } else {
        for (int i = 0; i < pool_used; i++)
            invept(INVEPT_SINGLE, PA(ept_pool[i]) | eptp_mt | EPTP_WALK4);
    }
    pool_used = 0;
}

/* The entry for gpa at level (1 = PTE, 2 = PDE, 3 = PDPTE) of the hierarchy at pml4: missing
 * tables are created (RWX), large leaves on the way are split into identical smaller ones. */
static uint64_t *ept_entry(uint64_t *pml4, uint64_t gpa, int level)
{
    uint64_t *t = pml4;
    for (int l = 4; l > level; l--) {
        uint64_t *e = &t[(gpa >> (12 + 9 * (l - 1))) & 511];
        if (!(*e & EPTE_RWX)) {
            *e = PA(ept_page()) | EPTE_RWX;
        } else if (*e & EPTE_PS) {
            uint64_t *n = ept_page(), base = *e & EPTE_ADDR, flags = *e & 0x7f;
            uint64_t size = 1ull << (12 + 9 * (l - 2));
            for (int i = 0; i < 512; i++)
                n[i] = (base + i * size) | flags | (l - 1 > 1 ? EPTE_PS : 0);
            *e = PA(n) | EPTE_RWX;
        }
        t = phys(*e & EPTE_ADDR);
    }
    return &t[(gpa >> (12 + 9 * (level - 1))) & 511];
}

static uint64_t eptp_of(uint64_t *pml4) { return PA(pml4) | eptp_mt | EPTP_WALK4; }

/* A new hierarchy: identity map of 0-1 GiB (2 MiB leaves, or 4 KiB leaves up to the end of
 * the image when the EPT has no 2 MiB pages), RWX, WB. */
static uint64_t *ept_new(void)
{
    uint64_t *pml4 = ept_page();
    if (ept_cap(EPT_CAP_2M_PAGE)) {
        for (uint64_t a = 0; a < 0x40000000ull; a += 0x200000)
            *ept_entry(pml4, a, 2) = a | EPTE_RWX | EPTE_WB | EPTE_PS;
    } else {
        uint64_t end = (PA(__image_end) + 0x1fffff) & ~0x1fffffull;
        for (uint64_t a = 0; a < end; a += PAGE)
            *ept_entry(pml4, a, 1) = a | EPTE_RWX | EPTE_WB;
    }
    return pml4;
}

/* 4 KiB leaf at gpa */
static void ept_map(uint64_t *pml4, uint64_t gpa, uint64_t hpa, uint64_t perm)
{
    *ept_entry(pml4, gpa, 1) = (hpa & EPTE_ADDR) | perm | EPTE_WB;
}

static void fill(uint64_t *page, uint64_t v)
{
    for (int i = 0; i < 512; i++)
        page[i] = v + i;
}

/* ------------------------------------------------------------------------------------------
 * Absence checks (feature not allowed by IA32_VMX_PROCBASED_CTLS2)
 */
static void absent_ept_vpid_cap(void)
{
    if (has_proc2 && !has_ept && !has_vpid) {
        uint64_t v;
        int x = rdmsr_safe(MSR_IA32_VMX_EPT_VPID_CAP, &v);
        test_check(x == EXC_GP, "RDMSR IA32_VMX_EPT_VPID_CAP without EPT and VPID: %s (0x%llx), "
                   "expected #GP", exception_name(x), U64(v));
    }
}

static void absent_invept(void)
{
    char buf[48];
    int o = vmx_outcome(invept(INVEPT_SINGLE, 0));
    test_check(o == VMX_EXC(EXC_UD), "INVEPT single-context without EPT: %s, expected #UD",
               vmx_outcome_name(o, buf, sizeof(buf)));
    o = vmx_outcome(invept(INVEPT_ALL, 0));
    test_check(o == VMX_EXC(EXC_UD), "INVEPT all-context without EPT: %s, expected #UD",
               vmx_outcome_name(o, buf, sizeof(buf)));
}

/* VMLAUNCH with secondary controls proc2 (not all allowed): VMfailValid(7). */
static void absent_launch(uint32_t proc2, const char *what)
{
    if (!has_proc2)
        return;     /* no secondary controls at all: nothing to set */
    struct l2_setup s = { .rip = PA(l2_read), .proc2 = proc2, .vpid = 1, .unchecked = true };
    if (proc2 & PROC2_ENABLE_EPT) {
        if (has_ept)
            ept_reset();        /* INVEPT only where it exists */
        else
            pool_used = 0;
        s.eptp = eptp_of(ept_new());
    }
    l2_regs.rbx = PA(&ident_cookie);
    if (vmcs_build_all_exits(&s))
        enter_expect_fail(true, VMX_FAIL_VALID_ERR(VMXERR_ENTRY_INVALID_CONTROLS), what);
}

static void ept_absent(bool launch)
{
    info("EPT not allowed by IA32_VMX_PROCBASED_CTLS2: checking its absence");
    absent_ept_vpid_cap();
    absent_invept();
    if (launch)
        absent_launch(PROC2_ENABLE_EPT, "VMLAUNCH with \"enable EPT\"");
}

/* EPT checks: VMX present and EPT usable, or the absence checked (false then). */
static bool ept_begin(const char *name, bool launch_absent)
{
    if (!test_begin("%s", name) || !l1_need_vmx())
        return false;
    if (!has_ept) {
        ept_absent(launch_absent);
        return false;
    }
    if (!test_check(ept_usable, "EPT allowed but IA32_VMX_EPT_VPID_CAP 0x%016llx has no 4-level "
                    "walk or no WB/UC EPTP memory type", U64(cap_ept)))
        return false;
    if (!test_check(ept_cap(EPT_CAP_INVEPT) &&
                    (ept_cap(EPT_CAP_INVEPT_SINGLE) || ept_cap(EPT_CAP_INVEPT_ALL)),
                    "EPT allowed but no INVEPT type (IA32_VMX_EPT_VPID_CAP 0x%016llx)",
                    U64(cap_ept)))
        return false;
    ept_reset();
    return true;
}

static bool ept_launch(uint64_t *pml4, uint64_t rip, const struct gregs *g, uint32_t reason,
                       const char *what)
{
    struct l2_setup s = { .rip = rip, .proc2 = PROC2_ENABLE_EPT, .eptp = eptp_of(pml4) };
    if (!vmcs_build_all_exits(&s))
        return false;
    l2_regs = *g;
    return run_expect(true, reason, what);
}

/* EPT-violation exit information */
static void check_violation(uint64_t qual, uint64_t gpa, uint64_t gla, uint64_t rip,
                            const char *what)
{
    test_check((ex.qual & EPTQ_COMPARED) == qual, "%s: exit qualification 0x%llx, expected 0x%llx "
               "(bits 6 and 9-11 not compared)", what, U64(ex.qual), U64(qual));
    test_check(ex.gpa == gpa, "%s: GUEST_PHYSICAL_ADDRESS 0x%llx, expected 0x%llx", what,
               U64(ex.gpa), U64(gpa));
    if (qual & EPTQ_GLA_VALID)
        test_check(ex.gla == gla, "%s: GUEST_LINEAR_ADDRESS 0x%llx, expected 0x%llx", what,
                   U64(ex.gla), U64(gla));
    test_check(ex.rip == rip, "%s: GUEST_RIP 0x%llx, expected 0x%llx", what, U64(ex.rip),
               U64(rip));
    test_check(!(ex.idt_vec & INTR_INFO_VALID), "%s: IDT-vectoring information 0x%x valid", what,
               ex.idt_vec);
}

/* ------------------------------------------------------------------------------------------
 * ept-identity
 */
static void t_ept_identity(void)
{
    if (ept_begin("ept-identity", true)) {
        uint64_t *pml4 = ept_new();
        struct gregs g = { .rbx = PA(&ident_cookie) };
        if (ept_launch(pml4, PA(l2_ident), &g, EXIT_REASON_CPUID, "CPUID under an identity EPT")) {
            check_u64(ex.rip, PA(l2_ident_cpuid), "CPUID exit: GUEST_RIP");
            check_u64(ex.len, 2, "CPUID exit: instruction length");
            check_u64(vmr(VMCS_EPT_POINTER), eptp_of(pml4), "VMREAD EPT_POINTER");
            struct cpuid_regs c = cpuid(0);
            l2_regs.rax = c.a;
            l2_regs.rbx = PA(&ident_cookie);
            l2_regs.rcx = c.c;
            l2_regs.rdx = c.d;
            advance_rip();
            if (run_expect(false, EXIT_REASON_VMCALL, "VMCALL after the emulated CPUID")) {
                check_u64(ex.rip, PA(l2_ident_vmcall), "VMCALL exit: GUEST_RIP");
                check_u64(l2_regs.rax, c.a, "L2's EAX after CPUID");
                check_u64(l2_regs.rdx, ident_cookie, "L2's read of an L1 variable through the EPT");
                check_u64(vmr(VMCS_GUEST_CR3), read_cr3(), "VMREAD GUEST_CR3");
            }
        }
    }
    test_end();
}

/* ------------------------------------------------------------------------------------------
 * ept-remap
 */
static void remap_case(uint64_t gpa, uint64_t *q, uint64_t qval, bool launch, const char *what)
{
    char buf[96];
    l2_regs.rbx = gpa;
    l2_regs.rcx = 0xc0ffee0000000000ull | (gpa & 0xffffffff);
    snprintf(buf, sizeof(buf), "%s: L2 read and write at 0x%llx", what, U64(gpa));
    if (!launch)
        advance_rip();
    if (!run_expect(launch, EXIT_REASON_VMCALL, buf))
        return;
    uint64_t off = (gpa & 0xfff) / 8;
    test_check(l2_regs.rax == qval, "%s: L2 read 0x%llx, expected the L1 page's 0x%llx", what,
               U64(l2_regs.rax), U64(qval));
    test_check(q[off] == l2_regs.rcx, "%s: L1 page holds 0x%llx after L2's write, expected 0x%llx",
               what, U64(q[off]), U64(l2_regs.rcx));
    test_check(l2_regs.rdx == l2_regs.rcx, "%s: L2 read back 0x%llx", what, U64(l2_regs.rdx));
}

static void t_ept_remap(void)
{
    if (ept_begin("ept-remap", false)) {
        uint64_t *pml4 = ept_new();
        fill(pg_p, 0x9999000000000000ull);
        fill(pg_q, 0x5151000000000000ull);
        /* 4 KiB leaf: P -> Q inside the identity range */
        ept_map(pml4, PA(pg_p), PA(pg_q), EPTE_RWX);
        struct gregs g = { .rbx = PA(pg_p) + 0x10 * 8, .rcx = 0xabcd0000feedull };
        if (ept_launch(pml4, PA(l2_rw), &g, EXIT_REASON_VMCALL, "4 KiB leaf P -> Q")) {
            check_u64(l2_regs.rax, 0x5151000000000010ull, "4 KiB leaf: L2's read at P (Q's value)");
            check_u64(pg_q[0x10], 0xabcd0000feedull, "4 KiB leaf: Q after L2's write");
            check_u64(pg_p[0x10], 0x9999000000000010ull, "4 KiB leaf: P after L2's write");

            /* 2 MiB leaf: WIN_2M -> the 2 MiB range holding data[1] */
            if (ept_cap(EPT_CAP_2M_PAGE)) {
                uint64_t base = PA(data[1]) & ~0x1fffffull;
                fill(data[1], 0x2020000000000000ull);
                *ept_entry(pml4, WIN_2M, 2) = base | EPTE_RWX | EPTE_WB | EPTE_PS;
                remap_case(WIN_2M + (PA(data[1]) - base) + 0x28, data[1], 0x2020000000000005ull,
                           false, "2 MiB leaf");
            } else {
                info("ept-remap: no 2 MiB EPT pages (IA32_VMX_EPT_VPID_CAP bit 16): 2 MiB part "
                     "left out");
            }
            if (ept_cap(EPT_CAP_1G_PAGE)) {
                fill(data[2], 0x1010000000000000ull);
                *ept_entry(pml4, GB2, 3) = 0 | EPTE_RWX | EPTE_WB | EPTE_PS;
                remap_case(GB2 + PA(data[2]) + 0x38, data[2], 0x1010000000000007ull, false,
                           "1 GiB leaf");
            } else {
                info("ept-remap: no 1 GiB EPT pages (IA32_VMX_EPT_VPID_CAP bit 17): 1 GiB part "
                     "left out");
            }
            check_u64(pg_p[0x10], 0x9999000000000010ull, "P at the end");
        }
    }
    test_end();
}

/* ------------------------------------------------------------------------------------------
 * ept-string-io: L2 on an EPT that maps its page P onto L1's page Q does REP INSB into P from port
 * 0xf4, which L1 lets through (no I/O controls) and the hypervisor under test may watch. Bare, the
 * bytes land in Q. Under XMHF, which emulates string I/O only with L1 addresses, the INS must not
 * write L1's page P behind L1's EPT: it either lands in Q or reaches L1 as an I/O exit.
 */
static void t_ept_string_io(void)
{
    if (ept_begin("ept-string-io", false)) {
        uint64_t *pml4 = ept_new();
        memset(pg_p, 0x33, PAGE);
        memset(pg_q, 0x33, PAGE);
        ept_map(pml4, PA(pg_p), PA(pg_q), EPTE_RWX);
        struct l2_setup s = { .rip = PA(l2_sio), .proc2 = PROC2_ENABLE_EPT, .eptp = eptp_of(pml4) };
        uint8_t v = inb(0xf4);
        if (vmcs_build(&s)) {
            l2_regs = (struct gregs){ .rdi = PA(pg_p) + 8, .rcx = 4 };
            int o = l2_enter(true);
            const uint8_t *p = (const uint8_t *)pg_p, *q = (const uint8_t *)pg_q;
            if (test_check(o == ENTER_EXITED, "no VM exit")) {
                test_check(p[8] == 0x33 && p[11] == 0x33, "L1's page P written through L2's GPA P: %x %x",
                           p[8], p[11]);
                if (ex.reason == EXIT_REASON_IO)
                    check_u64(ex.rip, PA(l2_sio_insn), "the I/O exit's RIP (the INS)");
                else if (test_check(ex.reason == EXIT_REASON_VMCALL, "exit reason 0x%x", ex.reason))
                    test_check(q[8] == v && q[11] == v && q[12] == 0x33, "Q after the INS: %x %x %x",
                               q[8], q[11], q[12]);
            }
        }
    }
    test_end();
}

/* ------------------------------------------------------------------------------------------
 * ept-violation-read / -write / -exec
 */
#define QV (EPTQ_GLA_VALID | EPTQ_TRANSLATED)

static void t_ept_violation_read(void)
{
    if (ept_begin("ept-violation-read", false)) {
        uint64_t *pml4 = ept_new();
        uint64_t eptp = eptp_of(pml4);
        fill(data[3], 0x3333000000000000ull);
        ept_map(pml4, WIN, PA(data[0]), EPTE_RWX);      /* creates the window's PD and PT */
        *ept_entry(pml4, WIN + 0x2000, 1) = 0;          /* not present */
        uint64_t a = WIN + 0x2010;
        struct gregs g = { .rbx = a };
        if (ept_launch(pml4, PA(l2_read), &g, EXIT_REASON_EPT_VIOLATION,
                       "read of a not-present 4 KiB page")) {
            check_violation(EPTQ_READ | QV, a, a, PA(l2_read), "not-present PTE");
            ept_map(pml4, WIN + 0x2000, PA(data[3]), EPTE_R);
            ept_flush(eptp, "not-present PTE fixed");
            if (run_expect(false, EXIT_REASON_VMCALL, "read after the PTE was fixed"))
                check_u64(l2_regs.rax, data[3][2], "L2's read after the fix");

            /* not-present EPT PDE (WIN + 6 MiB) */
            fill(data[4], 0x4444000000000000ull);
            a = WIN + 0x600000 + 0x1238;
            advance_rip();
            l2_regs.rbx = a;
            if (run_expect(false, EXIT_REASON_EPT_VIOLATION, "read under a not-present PDE")) {
                check_violation(EPTQ_READ | QV, a, a, PA(l2_read), "not-present PDE");
                ept_map(pml4, WIN + 0x601000, PA(data[4]), EPTE_R | EPTE_W);
                ept_flush(eptp, "not-present PDE fixed");
                if (run_expect(false, EXIT_REASON_VMCALL, "read after the PDE was fixed"))
                    check_u64(l2_regs.rax, data[4][0x238 / 8], "L2's read after the PDE fix");
            }

            /* execute-only leaf */
            if (ept_cap(EPT_CAP_EXEC_ONLY)) {
                fill(data[5], 0x5555000000000000ull);
                ept_map(pml4, WIN + 0x3000, PA(data[5]), EPTE_X);
                a = WIN + 0x3040;
                advance_rip();
                l2_regs.rbx = a;
                if (run_expect(false, EXIT_REASON_EPT_VIOLATION, "read of an execute-only page")) {
                    check_violation(EPTQ_READ | EPTQ_PERM(EPTE_X) | QV, a, a, PA(l2_read),
                                    "execute-only PTE");
                    ept_map(pml4, WIN + 0x3000, PA(data[5]), EPTE_X | EPTE_R);
                    ept_flush(eptp, "execute-only PTE made readable");
                    if (run_expect(false, EXIT_REASON_VMCALL, "read after adding R"))
                        check_u64(l2_regs.rax, data[5][8], "L2's read after adding R");
                }
            }
        }

        /* a guest paging-structure read: L2's PDPT is in a not-present page */
        memcpy(l2_pml4, phys(read_cr3() & ~0xfffull), PAGE);
        l2_pml4[3] = (WIN + 0x5000) | PTE_P | PTE_W | 0x20;       /* A set: walks only read */
        memset(walk_pdpt, 0, PAGE);
        memset(walk_pd, 0, PAGE);
        memset(walk_pt, 0, PAGE);
        walk_pdpt[5] = PA(walk_pd) | PTE_P | PTE_W | 0x20;
        walk_pd[0] = PA(walk_pt) | PTE_P | PTE_W | 0x20;
        walk_pt[0] = PA(data[6]) | PTE_P | PTE_W | 0x20;
        fill(data[6], 0x6666000000000000ull);
        *ept_entry(pml4, WIN + 0x5000, 1) = 0;
        ept_flush(eptp, "guest paging-structure case");
        struct l2_setup s = { .rip = PA(l2_read), .proc2 = PROC2_ENABLE_EPT, .eptp = eptp,
                              .cr3 = PA(l2_pml4) };
        if (vmcs_build_all_exits(&s)) {
            l2_regs.rbx = L2_WALK;
            if (run_expect(true, EXIT_REASON_EPT_VIOLATION,
                           "read through an L2 PDPT in a not-present page")) {
                /* bit 7 set, bit 8 clear: the access was to a paging-structure entry */
                check_violation(EPTQ_READ | EPTQ_GLA_VALID, WIN + 0x5000 + 5 * 8, L2_WALK,
                                PA(l2_read), "guest PDPTE read");
                ept_map(pml4, WIN + 0x5000, PA(walk_pdpt), EPTE_R | EPTE_W);
                ept_flush(eptp, "L2 PDPT page mapped");
                if (run_expect(false, EXIT_REASON_VMCALL, "read after mapping L2's PDPT"))
                    check_u64(l2_regs.rax, data[6][3], "L2's read through its own page tables");
            }
        }
    }
    test_end();
}

static void t_ept_violation_write(void)
{
    if (ept_begin("ept-violation-write", false)) {
        uint64_t *pml4 = ept_new();
        uint64_t eptp = eptp_of(pml4);
        fill(data[7], 0x7777000000000000ull);
        ept_map(pml4, WIN + 0x1000, PA(data[7]), EPTE_R);
        uint64_t a = WIN + 0x1008;
        struct gregs g = { .rbx = a, .rcx = 0x5a5a5a5a00000001ull };
        if (ept_launch(pml4, PA(l2_rw), &g, EXIT_REASON_EPT_VIOLATION,
                       "write to a read-only page")) {
            check_violation(EPTQ_WRITE | EPTQ_PERM(EPTE_R) | QV, a, a, PA(l2_rw_store),
                            "read-only PTE");
            check_u64(l2_regs.rax, data[7][1], "L2's read of the read-only page before the write");
            check_u64(data[7][1], 0x7777000000000001ull, "the page after the blocked write");
            ept_map(pml4, WIN + 0x1000, PA(data[7]), EPTE_R | EPTE_W);
            ept_flush(eptp, "read-only PTE made writable");
            if (run_expect(false, EXIT_REASON_VMCALL, "write after adding W")) {
                check_u64(ex.rip, PA(l2_rw_vmcall), "VMCALL exit: GUEST_RIP");
                check_u64(data[7][1], 0x5a5a5a5a00000001ull, "L1's view of the page after L2's write");
                check_u64(l2_regs.rdx, 0x5a5a5a5a00000001ull, "L2's read back");
            }
        }
    }
    test_end();
}

static void t_ept_violation_exec(void)
{
    if (ept_begin("ept-violation-exec", false)) {
        uint64_t *pml4 = ept_new();
        uint64_t eptp = eptp_of(pml4);
        size_t n = exec_tmpl_end - exec_tmpl;
        memset(data[8], 0xcc, PAGE);
        memcpy((uint8_t *)data[8] + 0x40, exec_tmpl, n);
        ept_map(pml4, WIN + 0x3000, PA(data[8]), EPTE_R | EPTE_W);
        uint64_t a = WIN + 0x3040;
        uint64_t vmcall_rip = a + (exec_tmpl_vmcall - exec_tmpl);
        struct gregs g = { .rbx = a };
        if (ept_launch(pml4, PA(l2_jump), &g, EXIT_REASON_EPT_VIOLATION,
                       "jump into a page without X")) {
            check_violation(EPTQ_FETCH | EPTQ_PERM(EPTE_R | EPTE_W) | QV, a, a, a, "RW PTE");
            ept_map(pml4, WIN + 0x3000, PA(data[8]), EPTE_RWX);
            ept_flush(eptp, "X added");
            if (run_expect(false, EXIT_REASON_VMCALL, "fetch after adding X")) {
                check_u64(ex.rip, vmcall_rip, "VMCALL in the page: GUEST_RIP");
                check_u64(l2_regs.rax, EXEC_MARK, "L2's RAX from the code in the page");
            }
        }
        if (ept_cap(EPT_CAP_EXEC_ONLY)) {
            memset(data[9], 0xcc, PAGE);
            memcpy((uint8_t *)data[9] + 0x80, exec_tmpl, n);
            ept_map(pml4, WIN + 0x4000, PA(data[9]), EPTE_X);
            ept_flush(eptp, "execute-only page");
            g.rbx = WIN + 0x4080;
            if (ept_launch(pml4, PA(l2_jump), &g, EXIT_REASON_VMCALL, "jump into an execute-only page")) {
                check_u64(ex.rip, WIN + 0x4080 + (exec_tmpl_vmcall - exec_tmpl),
                          "VMCALL in the execute-only page: GUEST_RIP");
                check_u64(l2_regs.rax, EXEC_MARK, "L2's RAX from the execute-only page");
            }
        }
    }
    test_end();
}

/* ------------------------------------------------------------------------------------------
 * ept-apic-store
 */
static void t_ept_apic_store(void)
{
    if (ept_begin("ept-apic-store", false)) {
        uint64_t *pml4 = ept_new();
        size_t n = apic_tmpl_end - apic_tmpl;
        uint64_t a = WIN + 0x3040;
        memset(data[8], 0xcc, PAGE);
        memcpy((uint8_t *)data[8] + 0x40, apic_tmpl, n);
        ept_map(pml4, WIN + 0x3000, PA(data[8]), EPTE_RWX);
        *ept_entry(pml4, WIN + 0x8000, 1) = 0xfee00000ull | EPTE_R | EPTE_W;    /* memory type UC */
        ept_flush(eptp_of(pml4), "APIC page mapped");
        apic_write(APIC_TPR, 0);
        struct gregs g = { .rbx = a };
        if (ept_launch(pml4, PA(l2_jump), &g, EXIT_REASON_VMCALL, "L2 stores to the TPR")) {
            check_u64(ex.rip, a + (apic_tmpl_vmcall - apic_tmpl), "VMCALL after the stores: GUEST_RIP");
            check_u64(l2_regs.rcx, 0x21, "TPR after movabs %eax, moffs64 (A3)");
            check_u64(l2_regs.rdx, 0x31, "TPR after lock orl $0x10");
            check_u64(l2_regs.rsi, 0x31, "XCHG's old TPR");
            check_u64(apic_read(APIC_TPR), 0x5, "TPR read by L1 after the XCHG");
        }
        apic_write(APIC_TPR, 0);
    }
    test_end();
}

/* ------------------------------------------------------------------------------------------
 * ept-misconfig
 */
static void misconfig_case(uint64_t *pml4, uint64_t *entry, uint64_t bad, uint64_t good,
                           uint64_t a, uint64_t want, bool launch, const char *what)
{
    char buf[96];
    *entry = bad;
    ept_flush(eptp_of(pml4), what);
    if (!launch)
        advance_rip();
    l2_regs.rbx = a;
    snprintf(buf, sizeof(buf), "read through %s", what);
    if (!run_expect(launch, EXIT_REASON_EPT_MISCONFIG, buf))
        return;
    test_check(ex.gpa == a, "%s: GUEST_PHYSICAL_ADDRESS 0x%llx, expected 0x%llx", what,
               U64(ex.gpa), U64(a));
    test_check(ex.rip == PA(l2_read), "%s: GUEST_RIP 0x%llx, expected 0x%llx", what, U64(ex.rip),
               U64(PA(l2_read)));
    *entry = good;
    ept_flush(eptp_of(pml4), what);
    snprintf(buf, sizeof(buf), "read after fixing %s", what);
    if (run_expect(false, EXIT_REASON_VMCALL, buf))
        test_check(l2_regs.rax == want, "%s fixed: L2 read 0x%llx, expected 0x%llx", what,
                   U64(l2_regs.rax), U64(want));
}

static void t_ept_misconfig(void)
{
    if (ept_begin("ept-misconfig", false)) {
        uint64_t *pml4 = ept_new();
        fill(data[10], 0xaaaa000000000000ull);
        fill(data[11], 0xbbbb000000000000ull);
        ept_map(pml4, WIN + 0x4000, PA(data[10]), EPTE_R | EPTE_W);
        ept_map(pml4, WIN + 0x7000, PA(data[11]), EPTE_R | EPTE_W);
        uint64_t *pte = ept_entry(pml4, WIN + 0x4000, 1);
        uint64_t *pte2 = ept_entry(pml4, WIN + 0x7000, 1);
        uint64_t *pde = ept_entry(pml4, WIN, 2);
        struct l2_setup s = { .rip = PA(l2_read), .proc2 = PROC2_ENABLE_EPT, .eptp = eptp_of(pml4) };
        if (vmcs_build_all_exits(&s)) {
            uint64_t good = *pte;
            misconfig_case(pml4, pte, (good & ~EPTE_RWX) | EPTE_W, good, WIN + 0x4018,
                           data[10][3], true, "a write-only leaf (W=1, R=0)");
            good = *pte2;
            misconfig_case(pml4, pte2, (good & ~EPTE_MT(7)) | EPTE_MT(2), good, WIN + 0x7ff8,
                           data[11][511], false, "a leaf with memory type 2");
            good = *pde;
            misconfig_case(pml4, pde, good | (1ull << 3), good, WIN + 0x4020, data[10][4], false,
                           "a non-leaf PDE with bit 3 set");
        }
    }
    test_end();
}

/* ------------------------------------------------------------------------------------------
 * ept-invept
 */
static void t_ept_invept(void)
{
    if (ept_begin("ept-invept", false)) {
        char buf[64];
        uint64_t *pml4 = ept_new();
        uint64_t eptp = eptp_of(pml4);
        fill(data[12], 0xc0c0000000000000ull);
        fill(data[13], 0xc1c1000000000000ull);
        fill(data[14], 0xc2c2000000000000ull);
        uint64_t a = WIN + 0x6100;
        ept_map(pml4, WIN + 0x6000, PA(data[12]), EPTE_R | EPTE_W);
        struct gregs g = { .rbx = a };
        if (ept_launch(pml4, PA(l2_read), &g, EXIT_REASON_VMCALL, "read of the first mapping")) {
            check_u64(l2_regs.rax, data[12][0x20], "L2's read of the first mapping");
            if (ept_cap(EPT_CAP_INVEPT_SINGLE)) {
                ept_map(pml4, WIN + 0x6000, PA(data[13]), EPTE_R | EPTE_W);
                check_outcome(vmx_outcome(invept(INVEPT_SINGLE, eptp)), VMX_SUCCEED,
                              "INVEPT single-context");
                resume_read(a, data[13][0x20], "after INVEPT single-context");
            } else {
                check_outcome(vmx_outcome(invept(INVEPT_SINGLE, eptp)),
                              VMX_FAIL_VALID_ERR(VMXERR_INVEPT_INVVPID_INVALID),
                              "INVEPT single-context (not supported)");
            }
            if (ept_cap(EPT_CAP_INVEPT_ALL)) {
                ept_map(pml4, WIN + 0x6000, PA(data[14]), EPTE_R | EPTE_W);
                check_outcome(vmx_outcome(invept(INVEPT_ALL, 0)), VMX_SUCCEED,
                              "INVEPT all-context");
                resume_read(a, data[14][0x20], "after INVEPT all-context");
            } else {
                check_outcome(vmx_outcome(invept(INVEPT_ALL, 0)),
                              VMX_FAIL_VALID_ERR(VMXERR_INVEPT_INVVPID_INVALID),
                              "INVEPT all-context (not supported)");
            }
            /* types never supported, and an EPTP VM entry would refuse */
            static const uint64_t bad_types[] = { 0, 3 };
            for (unsigned i = 0; i < ARRAY_SIZE(bad_types); i++) {
                snprintf(buf, sizeof(buf), "INVEPT type %llu", U64(bad_types[i]));
                check_outcome(vmx_outcome(invept(bad_types[i], eptp)),
                              VMX_FAIL_VALID_ERR(VMXERR_INVEPT_INVVPID_INVALID), buf);
            }
            if (ept_cap(EPT_CAP_INVEPT_SINGLE)) {
                check_outcome(vmx_outcome(invept(INVEPT_SINGLE, PA(pml4) | 5 | EPTP_WALK4)),
                              VMX_FAIL_VALID_ERR(VMXERR_INVEPT_INVVPID_INVALID),
                              "INVEPT single-context, EPTP memory type 5");
                check_outcome(vmx_outcome(invept(INVEPT_SINGLE, PA(pml4) | eptp_mt | (2ull << 3))),
                              VMX_FAIL_VALID_ERR(VMXERR_INVEPT_INVVPID_INVALID),
                              "INVEPT single-context, EPTP walk length 3");
            }
            /* still the last mapping, L2 resumes normally */
            resume_read(a + 8, ept_cap(EPT_CAP_INVEPT_ALL) ? data[14][0x21] :
                        ept_cap(EPT_CAP_INVEPT_SINGLE) ? data[13][0x21] : data[12][0x21],
                        "after the failing INVEPTs");
        }
    }
    test_end();
}

/* ------------------------------------------------------------------------------------------
 * ept-switch-32-eptps: 32 hierarchies that differ only in where they map one L2-physical page,
 * SWITCH_GPA: hierarchy i maps it (read-only) to switch_pages[i], whose words carry marker i. L1
 * changes EPT_POINTER between VMRESUMEs of L2's read loop, in an order that comes back to every
 * hierarchy several times, so that a hypervisor keeping translations (or whole EPT02s) per EPTP
 * must keep 32 of them apart and pick the right one each time. Then one hierarchy's mapping
 * changes (+ INVEPT of that EPTP only) while another is current: an entry with it must read the
 * new page, where a stale translation would still give the old marker; the others keep theirs.
 */
#define NEPT        32
#define SWITCH_GPA  (WIN + 0x7000)
#define SWITCH_WORD 0x30                    /* the word of the page L2 reads */
#define SWITCH_V    9                       /* the hierarchy remapped */
#define SWITCH_W    22                      /* current while SWITCH_V is remapped */
/* switch_pages[NEPT]: where SWITCH_V is remapped to */
static uint64_t switch_pages[NEPT + 1][512] __attribute__((aligned(PAGE)));

struct eptp_switch {
    uint64_t *pml4[NEPT];
    int page[NEPT];                         /* switch_pages index hierarchy i maps SWITCH_GPA to */
    unsigned entries;
};

/* EPT_POINTER <- hierarchy i, VMRESUME: L2 reads the marker of i's page, EPT_POINTER reads back. */
static bool switch_to(struct eptp_switch *sw, int i, const char *phase)
{
    char what[80];
    uint64_t eptp = eptp_of(sw->pml4[i]);
    vmw(VMCS_EPT_POINTER, eptp);
    snprintf(what, sizeof(what), "%s, entry %u with EPTP %d", phase, ++sw->entries, i);
    if (!resume_read(SWITCH_GPA + SWITCH_WORD * 8, switch_pages[sw->page[i]][SWITCH_WORD], what))
        return false;
    uint64_t got = vmr(VMCS_EPT_POINTER);
    return test_check(got == eptp, "%s: VMREAD EPT_POINTER 0x%llx, expected 0x%llx", what,
                      U64(got), U64(eptp));
}

/* Hierarchy i maps SWITCH_GPA to switch_pages[page] from now on: PTE, then INVEPT of i's EPTP
 * (single-context when supported, else all-context). */
static bool switch_remap(struct eptp_switch *sw, int i, int page, const char *what)
{
    sw->page[i] = page;
    ept_map(sw->pml4[i], SWITCH_GPA, PA(switch_pages[page]), EPTE_R);
    return ept_flush(eptp_of(sw->pml4[i]), what);
}

static void t_ept_switch_32_eptps(void)
{
    if (ept_begin("ept-switch-32-eptps", false)) {
        struct eptp_switch sw = { .entries = 1 };
        for (int i = 0; i <= NEPT; i++)
            fill(switch_pages[i], 0x5e00000000000000ull | ((uint64_t)i << 40));
        for (int i = 0; i < NEPT; i++) {
            sw.pml4[i] = ept_new();
            sw.page[i] = i;
            ept_map(sw.pml4[i], SWITCH_GPA, PA(switch_pages[i]), EPTE_R);
        }
        struct gregs g = { .rbx = SWITCH_GPA + SWITCH_WORD * 8 };
        bool ok = ept_launch(sw.pml4[0], PA(l2_read), &g, EXIT_REASON_VMCALL, "read with EPTP 0") &&
                  check_u64(l2_regs.rax, switch_pages[0][SWITCH_WORD], "L2's read with EPTP 0");
        /* back and forth between two, then every one in order */
        static const int pingpong[] = { 1, 0, 1, 0 };
        for (unsigned k = 0; k < ARRAY_SIZE(pingpong) && ok; k++)
            ok = switch_to(&sw, pingpong[k], "ping-pong");
        for (int i = 1; i < NEPT && ok; i++)
            ok = switch_to(&sw, i, "in order");
        /* all again, 13 apart (13 is coprime to 32: each once, in an order far from the last) */
        for (int k = 0; k < NEPT && ok; k++)
            ok = switch_to(&sw, (k * 13) % NEPT, "stride 13");

        /* SWITCH_V used last but one, then remapped while SWITCH_W is current: only INVEPT of
         * SWITCH_V's EPTP tells the hypervisor; SWITCH_W and 3 keep their pages */
        ok = ok && switch_to(&sw, SWITCH_V, "before the remap") &&
             switch_to(&sw, SWITCH_W, "before the remap") &&
             switch_remap(&sw, SWITCH_V, NEPT, "EPTP 9 remapped while EPTP 22 is current");
        static const int after[] = { SWITCH_W, SWITCH_V, SWITCH_V, 3, SWITCH_V };
        for (unsigned k = 0; k < ARRAY_SIZE(after) && ok; k++)
            ok = switch_to(&sw, after[k], "after the remap of EPTP 9");
        /* remapped back while it is the current one */
        ok = ok && switch_remap(&sw, SWITCH_V, SWITCH_V, "EPTP 9 remapped back while current") &&
             switch_to(&sw, SWITCH_V, "after the remap back") &&
             switch_to(&sw, SWITCH_W, "after the remap back") &&
             switch_to(&sw, SWITCH_V, "after the remap back");
    }
    test_end();
}

/* ------------------------------------------------------------------------------------------
 * vpid
 */
static void vpid_tables(void)
{
    memcpy(l2_pml4, phys(read_cr3() & ~0xfffull), PAGE);
    memset(l2_pdpt, 0, PAGE);
    memset(l2_pd, 0, PAGE);
    memset(l2_pt, 0, PAGE);
    l2_pml4[(L2_X >> 39) & 511] = PA(l2_pdpt) | PTE_P | PTE_W | 0x20;
    l2_pdpt[(L2_X >> 30) & 511] = PA(l2_pd) | PTE_P | PTE_W | 0x20;
    l2_pd[(L2_X >> 21) & 511] = PA(l2_pt) | PTE_P | PTE_W | 0x20;
}

static void vpid_absent(void)
{
    char buf[48];
    info("VPID not allowed by IA32_VMX_PROCBASED_CTLS2: checking its absence");
    absent_ept_vpid_cap();
    for (int t = 0; t < 4; t++) {
        int o = vmx_outcome(invvpid(t, 1, 0));
        test_check(o == VMX_EXC(EXC_UD), "INVVPID type %d without VPID: %s, expected #UD", t,
                   vmx_outcome_name(o, buf, sizeof(buf)));
    }
    absent_launch(PROC2_ENABLE_VPID, "VMLAUNCH with \"enable VPID\"");
}

static void t_vpid(void)
{
    if (!test_begin("vpid") || !l1_need_vmx())
        goto out;
    if (!has_vpid) {
        vpid_absent();
        goto out;
    }
    char buf[96];
    bool use_ept = ept_usable;
    uint64_t eptp = 0;
    if (use_ept) {
        ept_reset();
        eptp = eptp_of(ept_new());
    }
    if (!ept_cap(VPID_CAP_INVVPID)) {
        info("vpid: VPID without INVVPID (IA32_VMX_EPT_VPID_CAP bit 32 clear)");
        for (int t = 0; t < 4; t++) {
            int o = vmx_outcome(invvpid(t, 1, L2_X));
            test_check(o == VMX_EXC(EXC_UD), "INVVPID type %d without INVVPID support: %s, "
                       "expected #UD", t, vmx_outcome_name(o, buf, sizeof(buf)));
        }
    }
    info("vpid: L2 %s EPT", use_ept ? "with" : "without");
    vpid_tables();
    l2_pt[(L2_X >> 12) & 511] = PA(data[0]) | PTE_P | PTE_W | 0x20;
    fill(data[0], 0xd000000000000000ull);

    /* two VMCSs: VPID 1 and VPID 2 */
    uint16_t vpid[2] = { 1, 2 };
    bool ok = true;
    for (int v = 0; v < 2 && ok; v++) {
        struct l2_setup s = { .rip = PA(l2_read), .proc2 = PROC2_ENABLE_VPID |
                              (use_ept ? PROC2_ENABLE_EPT : 0), .eptp = eptp, .vpid = vpid[v],
                              .cr3 = PA(l2_pml4), .vmcs = v };
        ok = vmcs_build_all_exits(&s);
        if (ok) {
            l2_regs.rbx = L2_X;
            snprintf(buf, sizeof(buf), "first run with VPID %u", vpid[v]);
            ok = run_expect(true, EXIT_REASON_VMCALL, buf) &&
                 test_check(l2_regs.rax == data[0][0], "%s: L2 read 0x%llx, expected 0x%llx", buf,
                            U64(l2_regs.rax), U64(data[0][0]));
            if (ok) {
                check_u64(vmr(VMCS_VPID), vpid[v], "VMREAD VPID");
                advance_rip();      /* the next entry resumes at the loop */
            }
        }
    }

    /* each supported type after a PTE change, on both VMCSs */
    static const struct { int type; uint64_t cap; const char *name; } types[] = {
        { INVVPID_ADDR, VPID_CAP_INVVPID_ADDR, "individual-address" },
        { INVVPID_SINGLE, VPID_CAP_INVVPID_SINGLE, "single-context" },
        { INVVPID_ALL, VPID_CAP_INVVPID_ALL, "all-context" },
        { INVVPID_SINGLE_NOGLOBAL, VPID_CAP_INVVPID_SINGLE_NOGLOB,
          "single-context-retaining-globals" },
    };
    int page = 1;
    bool invvpid_ok = ept_cap(VPID_CAP_INVVPID);
    for (unsigned t = 0; t < ARRAY_SIZE(types) && ok && invvpid_ok; t++) {
        if (!ept_cap(types[t].cap)) {
            snprintf(buf, sizeof(buf), "INVVPID %s (type %d, not supported)", types[t].name,
                     types[t].type);
            check_outcome(vmx_outcome(invvpid(types[t].type, 1, L2_X)),
                          VMX_FAIL_VALID_ERR(VMXERR_INVEPT_INVVPID_INVALID), buf);
            continue;
        }
        for (int v = 0; v < 2 && ok; v++, page++) {
            fill(data[page], 0xd000000000000000ull | ((uint64_t)page << 48));
            l2_pt[(L2_X >> 12) & 511] = PA(data[page]) | PTE_P | PTE_W | 0x20;
            snprintf(buf, sizeof(buf), "INVVPID %s for VPID %u", types[t].name, vpid[v]);
            ok = check_outcome(vmx_outcome(invvpid(types[t].type, vpid[v], L2_X)), VMX_SUCCEED, buf);
            ok = ok && vmcs_load(v);
            if (ok) {
                l2_regs.rbx = L2_X + 8;
                snprintf(buf, sizeof(buf), "VPID %u after INVVPID %s", vpid[v], types[t].name);
                ok = run_expect(false, EXIT_REASON_VMCALL, buf) &&
                     test_check(l2_regs.rax == data[page][1], "%s: L2 read 0x%llx, expected "
                                "0x%llx", buf, U64(l2_regs.rax), U64(data[page][1]));
                if (ok)
                    advance_rip();
            }
        }
    }

    /* operand checks: VMfailValid(28) */
    if (invvpid_ok) {
        static const struct { int type; uint64_t lo, la; const char *name; } bad[] = {
            { INVVPID_ADDR, 0, L2_X, "type 0 with VPID 0" },
            { INVVPID_SINGLE, 0, 0, "type 1 with VPID 0" },
            { INVVPID_SINGLE_NOGLOBAL, 0, 0, "type 3 with VPID 0" },
            { INVVPID_ADDR, 1 | (1ull << 16), L2_X, "type 0 with descriptor bit 16 set" },
            { INVVPID_ALL, 1ull << 63, 0, "type 2 with descriptor bit 63 set" },
            { INVVPID_ADDR, 1, 0x0000800000000000ull, "type 0 with a non-canonical address" },
            { 4, 1, 0, "type 4" },
        };
        for (unsigned i = 0; i < ARRAY_SIZE(bad); i++) {
            snprintf(buf, sizeof(buf), "INVVPID %s", bad[i].name);
            check_outcome(vmx_outcome(invvpid(bad[i].type, bad[i].lo, bad[i].la)),
                          VMX_FAIL_VALID_ERR(VMXERR_INVEPT_INVVPID_INVALID), buf);
        }
        if (ept_cap(VPID_CAP_INVVPID_ALL))
            check_outcome(vmx_outcome(invvpid(INVVPID_ALL, 0, 0)), VMX_SUCCEED,
                          "INVVPID all-context with VPID 0");
    }
out:
    test_end();
}

/* ------------------------------------------------------------------------------------------
 * ept-unrestricted-guest
 */
static void t_unrestricted_guest(void)
{
    if (!test_begin("ept-unrestricted-guest") || !l1_need_vmx())
        goto out;
    if (!has_ug || !ept_usable) {
        info("unrestricted guest %s, EPT %s: checking that VMLAUNCH refuses it",
             has_ug ? "allowed" : "not allowed", ept_usable ? "usable" : "not usable");
        if (!has_ug)
            absent_launch(PROC2_UNRESTRICTED_GUEST | (ept_usable ? PROC2_ENABLE_EPT : 0),
                          "VMLAUNCH with \"unrestricted guest\"");
        else
            absent_launch(PROC2_UNRESTRICTED_GUEST,
                          "VMLAUNCH with \"unrestricted guest\" and without \"enable EPT\"");
        goto out;
    }
    ept_reset();
    uint64_t *pml4 = ept_page();        /* only L2-physical 0x8000 is mapped */
    memset(rm_page, 0xf4, PAGE);
    memcpy(rm_page, rm_code, rm_code_end - rm_code);
    ept_map(pml4, 0x8000, PA(rm_page), EPTE_RWX);
    struct l2_setup s = { .rip = 0, .proc2 = PROC2_ENABLE_EPT | PROC2_UNRESTRICTED_GUEST,
                          .eptp = eptp_of(pml4), .real_mode = true };
    if (vmcs_build_all_exits(&s)) {
        l2_regs.rax = 0xabcdabcdabcd0000ull;
        if (run_expect(true, EXIT_REASON_VMCALL, "real-mode L2: mov $0x1234, %ax; vmcall")) {
            check_u64(l2_regs.rax & 0xffff, 0x1234, "L2's AX");
            check_u64(ex.rip, (uint64_t)(rm_code_vmcall - rm_code), "VMCALL exit: GUEST_RIP (IP)");
            check_u64(ex.len, 3, "VMCALL exit: instruction length");
            check_u64(vmr(VMCS_GUEST_CS_SELECTOR), 0x800, "VMREAD GUEST_CS_SELECTOR");
            check_u64(vmr(VMCS_GUEST_CS_BASE), 0x8000, "VMREAD GUEST_CS_BASE");
            check_u64(vmr(VMCS_GUEST_CR0) & (CR0_PE | CR0_PG), 0, "VMREAD GUEST_CR0 PE/PG");
            if ((l2_regs.rax >> 16) != 0xabcdabcdabcdull)
                info("ept-unrestricted-guest: RAX 0x%llx, bits 63:16 not kept", U64(l2_regs.rax));
        }
    }
out:
    test_end();
}

/* probe_region=1 (a security test of the hypervisor under test, not compared with bare runs): L1's EPT
 * maps an L2 page onto the reserved hole in the E820 map (the hypervisor's region when there is one)
 * and L2 reads it. The hypervisor must stop the machine before L2 gets anything. */
static void t_probe_region(void)
{
    if (ept_begin("ept-probe-region", false)) {
        uint64_t hole = e820_reserved_hole();
        if (!hole) {
            info("no reserved hole inside RAM: nothing to probe");
        } else {
            uint64_t *pml4 = ept_new();
            ept_map(pml4, PA(pg_p), hole, EPTE_RWX);
            info("L2 reads its page 0x%llx, mapped by L1's EPT to 0x%llx", U64(PA(pg_p)), U64(hole));
            serial_flush();
            struct gregs g = { .rbx = PA(pg_p), .rcx = 0 };
            if (ept_launch(pml4, PA(l2_rw), &g, EXIT_REASON_VMCALL, "L2 read through the hole"))
                info("L2 read 0x%llx", U64(l2_regs.rax));
        }
    }
    test_end();
}

void test_main(void)
{
    char arg[8];

    vmx_init();
    if (cmdline_get("probe_region", 0, arg, sizeof(arg))) {
        t_probe_region();
        return;
    }
    t_ept_identity();
    t_ept_remap();
    t_ept_string_io();
    t_ept_violation_read();
    t_ept_violation_write();
    t_ept_violation_exec();
    t_ept_apic_store();
    t_ept_misconfig();
    t_ept_invept();
    t_ept_switch_32_eptps();
    t_vpid();
    t_unrestricted_guest();
    l1_done();
}
