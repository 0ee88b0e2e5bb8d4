/* vmxfuzz.bin - a differential VMX fuzzer: an L1 test hypervisor whose VMX operations come from a
 * seeded PRNG. The runner (tests/runner/fuzz.py) boots it bare and under XMHF with the same seed and
 * compares every operation's outcome.
 *
 * Command line: seed=N (default 1), ops=N per CPU (default 1000), block=N (ops per hash line,
 * default 100), show=A-B (print the result line of ops A..B-1: what the runner asks for to name the
 * first differing operation).
 *
 * Each CPU (all CPUs found, concurrently, each with its own PRNG stream seed * 1000 + cpu) does `ops`
 * operations: VMXON/VMXOFF, VMCLEAR, VMPTRLD, VMPTRST, VMREAD, VMWRITE (register and memory forms,
 * operands on mapped, unmapped, non-canonical and unaligned addresses), INVEPT, INVVPID, VMFUNC, VM
 * entries (VMLAUNCH/VMRESUME) into L2 code that exits for many reasons, edits of the EPT12 trees and
 * of the MSR lists. A VM entry starts most of the time from a freshly built valid VMCS with random
 * allowed controls and then changes a few fields from a list of valid and invalid values, so that
 * entries get past the first checks. Each operation makes one deterministic line (the instruction,
 * its operands, RFLAGS outcome, VM-instruction error, exception vector and error code, exit reason,
 * qualification, values read back); lines are hashed per block and the block hashes printed as
 *     FUZZ cpu=C block=B hash=H
 * then "FUZZ cpu=C ops=N stops=0" and the usual TEST/TESTS DONE lines.
 *
 * Comparability: features come from the capability MSRs intersected with FUZZ_* masks below (the set
 * XMHF offers L1, docs/nested.md "Capability bits L1 sees"), so both runs make the same choices; the
 * masked capabilities are printed ("FUZZ caps ...") and compared. Operations aimed at the hypervisor's
 * region (the reserved E820 hole under XMHF; a scratch page bare) are run but not compared: their
 * lines start with "X" and are left out of the hash. Nothing that could let L2 or L1 touch memory
 * other than this kernel's own (random guest CR3, GDTR, RIP, bitmap addresses...) reaches a VM entry:
 * sanitize() puts back a valid value unless the value is certainly refused (unaligned, beyond
 * MAXPHYADDR, non-canonical), and HLT/MWAIT exiting stay on so that L2 cannot sleep forever.
 * Bochs 2.7 keeps NMI blocking from one entry to the next (docs/known-bugs.md): after an entry with
 * blocking by NMI or an injected NMI, nmi_scrub() clears it in both runs.
 */
#include "lib.h"
#include "vmx.h"
#include "l1.h"

/* ---------------------------------------------------------------------------------------------
 * What the fuzzer may use: XMHF's offer to L1 (docs/nested.md), minus the preemption timer (its
 * saved value depends on time) and PAUSE-loop exiting / TSC scaling etc. that XMHF hides.
 */
#define FUZZ_PIN   (PIN_EXT_INT_EXITING | PIN_NMI_EXITING | PIN_VIRTUAL_NMIS)
#define FUZZ_PROC  0xfff9fffeu          /* every primary control but 0, 17 and 18 (reserved, tertiary) */
#define FUZZ_PROC2 (PROC2_VIRT_APIC_ACCESSES | PROC2_ENABLE_EPT | PROC2_DESC_TABLE_EXITING | \
                    PROC2_ENABLE_RDTSCP | PROC2_ENABLE_VPID | PROC2_WBINVD_EXITING |              \
                    PROC2_UNRESTRICTED_GUEST | PROC2_RDRAND_EXITING | PROC2_ENABLE_INVPCID |      \
                    PROC2_ENABLE_VMFUNC | PROC2_RDSEED_EXITING | PROC2_ENABLE_XSAVES)
#define FUZZ_EXIT  (EXIT_SAVE_DEBUG_CTLS | EXIT_HOST_ADDR_SPACE_SIZE | EXIT_ACK_INTR_ON_EXIT |     \
                    EXIT_SAVE_PAT | EXIT_LOAD_PAT | EXIT_SAVE_EFER | EXIT_LOAD_EFER | 0x36dffu)
#define FUZZ_ENTRY (ENTRY_LOAD_DEBUG_CTLS | ENTRY_IA32E_MODE_GUEST | ENTRY_LOAD_PAT |             \
                    ENTRY_LOAD_EFER | 0x11ffu)
#define FUZZ_EPT   (EPT_CAP_WALK_4 | EPT_CAP_MEMTYPE_UC | EPT_CAP_MEMTYPE_WB | EPT_CAP_2M_PAGE |   \
                    EPT_CAP_1G_PAGE | EPT_CAP_INVEPT | EPT_CAP_INVEPT_SINGLE | EPT_CAP_INVEPT_ALL | \
                    VPID_CAP_INVVPID | VPID_CAP_INVVPID_ADDR | VPID_CAP_INVVPID_SINGLE |           \
                    VPID_CAP_INVVPID_ALL | VPID_CAP_INVVPID_SINGLE_NOGLOB)

static uint64_t m_pin, m_proc, m_proc2, m_exit, m_entry, m_ept, m_vmfunc;   /* masked caps */
static unsigned maxphy;
static uint64_t region;                 /* XMHF's region (reserved E820 hole) or 0 */

/* ---------------------------------------------------------------------------------------------
 * Per-CPU memory
 */
#define NCPU 2
#define NVMCS 4                         /* 0-2: VMCSs; 3: link-pointer target, never loaded */
#define NPOOL 8                         /* data pages L2 reads and writes */
#define LIST_PAGES 2                    /* 512 MSR-list entries */

struct ept_tree {
    uint64_t pml4[512], pdpt[512], pd[512], pdw[512], ptw[512];
};

struct fzmem {
    uint8_t vmxon[PAGE];
    uint8_t vmcs[NVMCS][PAGE];
    uint8_t msr_bitmap[PAGE], io_a[PAGE], io_b[PAGE], vapic[PAGE], apic_access[PAGE];
    uint64_t eptp_list[512];
    uint64_t entry_load[LIST_PAGES * 256 * 2], exit_store[LIST_PAGES * 256 * 2],
             exit_load[LIST_PAGES * 256 * 2];
    struct ept_tree ept[2];
    uint8_t pool[NPOOL][PAGE];
    uint8_t scratch[PAGE];              /* bare stand-in for the region */
    uint8_t opbuf[2 * PAGE];            /* memory operands */
    uint8_t stack[2 * PAGE];            /* L2's stack */
    uint8_t scrub_vmcs[PAGE];           /* nmi_scrub()'s VMCS */
} __attribute__((aligned(PAGE)));
static struct fzmem mem[NCPU] __attribute__((aligned(PAGE)));

/* L2 reads its parameters through GS (GUEST_GS_BASE): address to read/write, MSR, VMFUNC index */
struct l2_param { uint64_t addr, msr, vmfunc_idx, pad; };
static struct l2_param params[NCPU] __attribute__((aligned(64)));
static struct l1_tables tables[NCPU] __attribute__((aligned(16)));

#define MAX_BLOCKS 1024
struct fzcpu {
    int cpu;
    uint64_t rng;
    bool in_vmx;
    bool has_current;                   /* what the fuzzer believes (for op choice only) */
    int nops;
    char line[256];
    int len;
    bool excluded;
    uint64_t hash, total;
    uint64_t block_hash[MAX_BLOCKS];
    int nblocks;
    struct vmcs_log log;
    volatile int done;
};
static struct fzcpu fz[NCPU];
static uint64_t seed = 1, nops = 1000, block = 100, show_from = ~0ull, show_to = 0;

/* ---------------------------------------------------------------------------------------------
 * PRNG (splitmix64), line building and hashing
 */
static uint64_t rnd64(struct fzcpu *f)
{
    uint64_t z = (f->rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static uint32_t rnd(struct fzcpu *f, uint32_t n) { return n ? (uint32_t)(rnd64(f) % n) : 0; }
static bool chance(struct fzcpu *f, uint32_t pct) { return rnd(f, 100) < pct; }

static void out(struct fzcpu *f, const char *fmt, ...) PRINTF_FMT(2, 3);
static void out(struct fzcpu *f, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (f->len < (int)sizeof(f->line) - 1)
        f->len += vsnprintf(f->line + f->len, sizeof(f->line) - f->len, fmt, ap);
    va_end(ap);
    if (f->len > (int)sizeof(f->line) - 1)
        f->len = sizeof(f->line) - 1;
}

static void outcome(struct fzcpu *f, int r)
{
    int o = vmx_outcome(r);
    if (o == VMX_SUCCEED)
        out(f, " ok");
    else if (o == VMX_FAIL_INVALID)
        out(f, " finv");
    else if (o & 0x10000)
        out(f, " fval(%d)", o & 0xffff);
    else if (VMX_IS_EXC(o)) {
        struct cpu *c = this_cpu();
        out(f, " exc(%d,%llx", o & 0xff, U64(c->fault_error));
        if ((o & 0xff) == EXC_PF)
            out(f, ",cr2=%llx", U64(c->fault_cr2));
        out(f, ")");
    } else
        out(f, " flags(%x)", o & 0xfff);
}

static void op_end(struct fzcpu *f)
{
    if (!f->excluded) {
        for (int i = 0; i < f->len; i++) {
            f->hash = (f->hash ^ (uint8_t)f->line[i]) * 0x100000001b3ull;
            f->total = (f->total ^ (uint8_t)f->line[i]) * 0x100000001b3ull;
        }
    }
    if ((uint64_t)f->nops >= show_from && (uint64_t)f->nops < show_to)
        printf("OP c%d n%d %s%s\n", f->cpu, f->nops, f->excluded ? "X " : "", f->line);
    f->nops++;
    if ((uint64_t)f->nops % block == 0 && f->nblocks < MAX_BLOCKS) {
        f->block_hash[f->nblocks++] = f->hash;
        f->hash = 0xcbf29ce484222325ull;
    }
    f->len = 0;
    f->line[0] = 0;
    f->excluded = false;
}

/* ---------------------------------------------------------------------------------------------
 * Addresses and values
 */
static uint64_t noncanon(struct fzcpu *f) { return 0x0000800000000000ull | (rnd64(f) & 0x7ffffffff000ull); }
static uint64_t beyond(struct fzcpu *f) { return (1ull << (maxphy + rnd(f, 64 - maxphy))) | (rnd64(f) & 0xfffff000ull); }

enum { A_OK, A_OTHER, A_UNALIGNED, A_BEYOND, A_NONRAM, A_REGION, A_VMXON, A_ZERO, A_N };
/* A physical address of one of the classes; region: under XMHF the reserved hole (not compared) */
static uint64_t addr_of(struct fzcpu *f, int cls, uint64_t good)
{
    struct fzmem *m = &mem[f->cpu];
    switch (cls) {
    case A_OK: return good;
    case A_OTHER: return PA(m->vmcs[rnd(f, 3)]);       /* page 3 may carry bit 31: never a VMCS */
    case A_UNALIGNED: return good + 1 + rnd(f, 0xfff);
    case A_BEYOND: return beyond(f);
    case A_NONRAM: return 0x20000000ull + rnd(f, 16) * PAGE;       /* above the 256 MiB of RAM */
    case A_REGION: {
        uint64_t pg = rnd(f, 4);        /* drawn in both runs: the streams stay in step */
        f->excluded = true;
        return region ? region + pg * PAGE : PA(m->scratch);
    }
    case A_VMXON: return PA(m->vmxon);
    default: return 0;
    }
}

/* An address for a VMCS field: the region's class becomes "beyond MAXPHYADDR" (same draws in both
 * runs): a field holding it would read back differently bare and under XMHF ever after. */
static uint64_t field_addr(struct fzcpu *f, uint64_t good)
{
    int cls = rnd(f, A_N);
    return addr_of(f, cls == A_REGION ? A_BEYOND : cls, good);
}

/* a VMCS page, or any address class (fuzzing VMPTRLD / VMCLEAR / VMXON operands) */
static uint64_t ptr_operand(struct fzcpu *f)
{
    struct fzmem *m = &mem[f->cpu];
    uint32_t r = rnd(f, 100);
    if (r < 70)
        return PA(m->vmcs[rnd(f, 3)]);
    return addr_of(f, rnd(f, A_N), PA(m->vmcs[rnd(f, 3)]));
}

/* Linear address of a memory operand of size n: mostly good, sometimes unmapped (above 4 GiB: the
 * library maps 0-4 GiB), non-canonical, crossing into an unmapped page, or unaligned. */
static uint64_t lin_operand(struct fzcpu *f, unsigned n, const char **what)
{
    struct fzmem *m = &mem[f->cpu];
    uint32_t r = rnd(f, 100);
    *what = "m";
    if (r < 80)
        return PA(m->opbuf) + 8 * rnd(f, 64);
    if (r < 85) {
        *what = "m+";
        return PA(m->opbuf) + rnd(f, PAGE);
    }
    if (r < 90) {
        *what = "unmapped";
        return 0x200000000ull + rnd(f, 0x100000) * 16;
    }
    if (r < 95) {
        *what = "noncanon";
        return noncanon(f);
    }
    *what = "cross";
    return 0x100000000ull - (n - 1 - rnd(f, n - 1));
}

static uint64_t rand_value(struct fzcpu *f, uint64_t cur)
{
    switch (rnd(f, 8)) {
    case 0: return 0;
    case 1: return ~0ull;
    case 2: return rnd64(f);
    case 3: return rnd(f, 0x100);
    case 4: return cur ^ (1ull << rnd(f, 64));
    case 5: return cur ^ (1ull << rnd(f, 32));
    case 6: return noncanon(f);
    default: return cur;
    }
}

/* ---------------------------------------------------------------------------------------------
 * Fields used by VMREAD/VMWRITE: the ones every offered feature has (docs/nested.md), and encodings
 * that exist on neither side. Fields of hidden features (posted interrupts, #VE, PML, VMCS
 * shadowing, PLE, TSC scaling, virtual-interrupt delivery, PERF_GLOBAL_CTRL) are left out: they
 * exist bare and not under XMHF, on purpose.
 */
static const uint32_t fields[] = {
    VMCS_VPID, 0x0800, 0x0802, 0x0804, 0x0806, 0x0808, 0x080a, 0x080c, 0x080e,
    0x0c00, 0x0c02, 0x0c04, 0x0c06, 0x0c08, 0x0c0a, 0x0c0c,
    VMCS_IO_BITMAP_A, VMCS_IO_BITMAP_B, VMCS_MSR_BITMAP, VMCS_EXIT_MSR_STORE_ADDR,
    VMCS_EXIT_MSR_LOAD_ADDR, VMCS_ENTRY_MSR_LOAD_ADDR, VMCS_TSC_OFFSET, VMCS_VIRTUAL_APIC_PAGE_ADDR,
    VMCS_APIC_ACCESS_ADDR, VMCS_VM_FUNCTION_CONTROLS, VMCS_EPT_POINTER, VMCS_EPTP_LIST_ADDR,
    VMCS_XSS_EXIT_BITMAP, VMCS_GUEST_PHYSICAL_ADDRESS, VMCS_LINK_POINTER, VMCS_GUEST_IA32_DEBUGCTL,
    VMCS_GUEST_IA32_PAT, VMCS_GUEST_IA32_EFER, VMCS_GUEST_PDPTE0, VMCS_GUEST_PDPTE1,
    VMCS_GUEST_PDPTE2, VMCS_GUEST_PDPTE3, VMCS_HOST_IA32_PAT, VMCS_HOST_IA32_EFER,
    0x4000, 0x4002, 0x4004, 0x4006, 0x4008, 0x400a, 0x400c, 0x400e, 0x4010, 0x4012, 0x4014, 0x4016,
    0x4018, 0x401a, 0x401c, 0x401e,
    0x4400, 0x4402, 0x4404, 0x4406, 0x4408, 0x440a, 0x440c, 0x440e,
    0x4800, 0x4802, 0x4804, 0x4806, 0x4808, 0x480a, 0x480c, 0x480e, 0x4810, 0x4812, 0x4814, 0x4816,
    0x4818, 0x481a, 0x481c, 0x481e, 0x4820, 0x4822, 0x4824, 0x4826, 0x482a, 0x4c00,
    0x6000, 0x6002, 0x6004, 0x6006, 0x6008, 0x600a, 0x600c, 0x600e,
    0x6400, 0x6402, 0x6404, 0x6406, 0x6408, 0x640a,
    0x6800, 0x6802, 0x6804, 0x6806, 0x6808, 0x680a, 0x680c, 0x680e, 0x6810, 0x6812, 0x6814, 0x6816,
    0x6818, 0x681a, 0x681c, 0x681e, 0x6820, 0x6822, 0x6824, 0x6826,
    0x6c00, 0x6c02, 0x6c04, 0x6c06, 0x6c08, 0x6c0a, 0x6c0c, 0x6c0e, 0x6c10, 0x6c12, 0x6c14, 0x6c16,
};
#define NFIELDS ARRAY_SIZE(fields)

static bool field_read_only(uint32_t enc) { return ((enc >> 10) & 3) == 1; }

static uint64_t rand_field(struct fzcpu *f)
{
    uint32_t r = rnd(f, 100);
    uint32_t enc = fields[rnd(f, NFIELDS)];
    if (r < 85)
        return enc;
    if (r < 92 && ((enc >> 13) & 3) == 1)
        return enc | 1;                         /* the high half of a 64-bit field */
    if (r < 96)
        return 0x7ffe & ~0x0c00u;               /* exists nowhere */
    if (r < 98)
        return (uint64_t)enc | (1ull << (32 + rnd(f, 32)));     /* bits 63:32 set */
    return enc | (1u << (15 + rnd(f, 17)));     /* bits 31:15 set */
}

/* ---------------------------------------------------------------------------------------------
 * Raw VMX instructions on arbitrary operands (vmx.h's wrappers take kernel objects)
 */
#define PRE VMX_ASM_PRE
#define POST VMX_ASM_POST

static int ptr_insn(int which, uint64_t linear)
{
    uint64_t fl;
    fault_begin();
    switch (which) {
    case 0: asm volatile(PRE "1: vmptrld (%[p])" POST : [fl] "=r"(fl) : [p] "r"(linear) : "memory", "cc"); break;
    case 1: asm volatile(PRE "1: vmclear (%[p])" POST : [fl] "=r"(fl) : [p] "r"(linear) : "memory", "cc"); break;
    case 2: asm volatile(PRE "1: vmxon (%[p])" POST : [fl] "=r"(fl) : [p] "r"(linear) : "memory", "cc"); break;
    default: asm volatile(PRE "1: vmptrst (%[p])" POST : [fl] "=r"(fl) : [p] "r"(linear) : "memory", "cc"); break;
    }
    return vmx_result(fl);
}

/* the register forms (mod = 11) of VMPTRLD, VMCLEAR, VMXON, VMPTRST, INVEPT, INVVPID: #UD */
static int reg_form(int which)
{
    uint64_t fl;
    fault_begin();
    switch (which) {
    case 0: asm volatile(PRE "1: .byte 0x0f, 0xc7, 0xf0" POST : [fl] "=r"(fl) : : "memory", "cc"); break;
    case 1: asm volatile(PRE "1: .byte 0x66, 0x0f, 0xc7, 0xf0" POST : [fl] "=r"(fl) : : "memory", "cc"); break;
    case 2: asm volatile(PRE "1: .byte 0xf3, 0x0f, 0xc7, 0xf0" POST : [fl] "=r"(fl) : : "memory", "cc"); break;
    case 3: asm volatile(PRE "1: .byte 0x0f, 0xc7, 0xf8" POST : [fl] "=r"(fl) : : "memory", "cc"); break;
    case 4: asm volatile(PRE "1: .byte 0x66, 0x0f, 0x38, 0x80, 0xc0" POST : [fl] "=r"(fl) : : "memory", "cc"); break;
    default: asm volatile(PRE "1: .byte 0x66, 0x0f, 0x38, 0x81, 0xc0" POST : [fl] "=r"(fl) : : "memory", "cc"); break;
    }
    return vmx_result(fl);
}

static int vmread_at(uint64_t enc, uint64_t linear)
{
    uint64_t fl;
    fault_begin();
    asm volatile(PRE "1: vmread %[e], (%[p])" POST : [fl] "=&r"(fl) : [e] "r"(enc), [p] "r"(linear) : "memory", "cc");
    return vmx_result(fl);
}

static int vmwrite_at(uint64_t enc, uint64_t linear)
{
    uint64_t fl;
    fault_begin();
    asm volatile(PRE "1: vmwrite (%[p]), %[e]" POST : [fl] "=&r"(fl) : [e] "r"(enc), [p] "r"(linear) : "memory", "cc");
    return vmx_result(fl);
}

static int inv_at(bool ept, uint64_t type, uint64_t linear)
{
    uint64_t fl;
    fault_begin();
    if (ept)
        asm volatile(PRE "1: invept (%[p]), %[t]" POST : [fl] "=&r"(fl) : [t] "r"(type), [p] "r"(linear) : "memory", "cc");
    else
        asm volatile(PRE "1: invvpid (%[p]), %[t]" POST : [fl] "=&r"(fl) : [t] "r"(type), [p] "r"(linear) : "memory", "cc");
    return vmx_result(fl);
}

static int vmfunc_root(uint32_t idx)
{
    uint64_t fl;
    fault_begin();
    asm volatile(PRE "1: vmfunc" POST : [fl] "=&r"(fl) : "a"(0), "c"(idx) : "memory", "cc");
    return vmx_result(fl);
}

/* the safe memory read/write of an operand buffer (it may be unmapped) */
static uint64_t peek(uint64_t linear, bool *ok)
{
    uint64_t v = 0;
    fault_begin();
    asm volatile("1: mov (%1), %0\n2:\n\t" EXTABLE_ENTRY(1b, 2b) : "+r"(v) : "r"(linear) : "memory");
    *ok = fault_result() == NO_EXCEPTION;
    return v;
}
static void poke(uint64_t linear, uint64_t v)
{
    fault_begin();
    asm volatile("1: mov %1, (%0)\n2:\n\t" EXTABLE_ENTRY(1b, 2b) : : "r"(linear), "r"(v) : "memory");
}

/* ---------------------------------------------------------------------------------------------
 * L2 code: snippets, each loading its parameters through GS, then one instruction that may exit;
 * the last one (VMCALL) always exits, so L2 never loops without an exit.
 */
#define L2P "mov %gs:0, %rbx\n mov %gs:8, %rcx\n xor %eax, %eax\n"
extern char l2_code[], l2_end[];
asm(".text\n .balign 16\n"
    "l2_code:\n"
    L2P " cpuid\n"
    L2P " mov (%rbx), %rax\n"
    L2P " hlt\n"
    L2P " rdmsr\n"
    L2P " inb $0x80, %al\n"
    L2P " mov %cr3, %rax\n mov %rax, %cr3\n"
    L2P " invlpg (%rbx)\n"
    L2P " rdtsc\n"
    L2P " pause\n"
    L2P " mov %cr0, %rax\n mov %rax, %cr0\n"
    L2P " mov %gs:16, %rcx\n vmfunc\n"
    L2P " ud2\n"
    L2P " int3\n"
    L2P " wbinvd\n"
    L2P " xor %ecx, %ecx\n rdpmc\n"
    L2P " mov %dr7, %rax\n"
    L2P " sub $16, %rsp\n sgdt (%rsp)\n add $16, %rsp\n"
    L2P " mov %cr8, %rax\n mov %rax, %cr8\n"
    L2P " rdrand %rax\n"
    L2P " movb %al, (%rbx)\n"
    L2P " mov %cr4, %rax\n mov %rax, %cr4\n"
    L2P " vmcall\n"
    " jmp l2_code\n"
    "l2_end:\n");
/* entry points: the snippets' starts (found by scanning for the 65 48 8b 1c 25 prefix of L2P) */
#define MAX_SNIPS 32
static uint64_t snips[MAX_SNIPS];
static int nsnips;

static void find_snippets(void)
{
    static const uint8_t pat[] = { 0x65, 0x48, 0x8b, 0x1c, 0x25, 0, 0, 0, 0 };
    for (uint8_t *p = (uint8_t *)l2_code; p + sizeof(pat) < (uint8_t *)l2_end && nsnips < MAX_SNIPS; p++)
        if (!memcmp(p, pat, sizeof(pat)))
            snips[nsnips++] = PA(p);
}

/* L2 starts only at a snippet's start: vm_enter_bare() does not load L2's GPRs, so L2 has L1's, and
 * from any other byte (a GUEST_RIP read back and changed by a few, or past an exit in a two-instruction
 * snippet) it runs on them: `add %ah, 0x48(%rbp)` (bytes 00 65 48 of a prologue) wrote into L1's stack
 * frame and `mov %rax, %cr3` took L1's RSP for a CR3 (seed 4, 2 CPUs: L1 faulted after the exit). */
static bool is_snip(uint64_t rip)
{
    for (int i = 0; i < nsnips; i++)
        if (snips[i] == rip)
            return true;
    return false;
}

/* ---------------------------------------------------------------------------------------------
 * EPT12 trees: 0-1 GiB identity with 2 MiB leaves, the window at 1 GiB with 4 KiB leaves onto the
 * pool pages (tree 1 maps them in reverse order).
 */
#define WINDOW 0x40000000ull
#define EPT_RWX 7ull
#define EPT_WB (6ull << 3)

static void ept_build(struct fzcpu *f, int t)
{
    struct ept_tree *e = &mem[f->cpu].ept[t];
    memset(e, 0, sizeof(*e));
    e->pml4[0] = PA(e->pdpt) | EPT_RWX;
    e->pdpt[0] = PA(e->pd) | EPT_RWX;
    e->pdpt[1] = PA(e->pdw) | EPT_RWX;
    for (int i = 0; i < 512; i++)
        e->pd[i] = ((uint64_t)i << 21) | EPT_RWX | EPT_WB | (1ull << 7);
    e->pdw[0] = PA(e->ptw) | EPT_RWX;
    for (int i = 0; i < NPOOL; i++)
        e->ptw[i] = PA(mem[f->cpu].pool[t ? NPOOL - 1 - i : i]) | EPT_RWX | EPT_WB;
}

/* EPTP with bit b flipped; bit 6 (A/D enable) only when offered (hidden under XMHF): bit 7 instead */
static uint64_t eptp_flip(uint64_t eptp, unsigned b)
{
    if (b == 6 && !(m_ept & EPT_CAP_AD))
        b = 7;
    return eptp ^ (1ull << b);
}

static uint64_t eptp_of(struct fzcpu *f, int t)
{
    uint64_t mt = (m_ept & EPT_CAP_MEMTYPE_WB) ? 6 : 0;
    return PA(mem[f->cpu].ept[t].pml4) | mt | (3 << 3);
}

/* ---------------------------------------------------------------------------------------------
 * A valid VMCS with random allowed controls
 */
static uint32_t rand_ctl(struct fzcpu *f, uint64_t cap, uint32_t force)
{
    return vmx_ctl_value(cap, ((uint32_t)rnd64(f) & (uint32_t)(cap >> 32)) | force);
}

#define VW(enc, v) vmcs_write(&f->log, enc, v)

static const uint32_t safe_msrs[] = { 0x174, 0x175, 0x176, 0xc0000102 };

static void msr_lists(struct fzcpu *f)
{
    struct fzmem *m = &mem[f->cpu];
    for (int i = 0; i < 16; i++) {
        uint32_t idx = safe_msrs[rnd(f, ARRAY_SIZE(safe_msrs))];
        uint64_t v = idx == 0x174 ? rnd(f, 0x10000) : PA(m->stack) + 8 * rnd(f, 100);
        m->entry_load[2 * i] = idx;
        m->entry_load[2 * i + 1] = v;
        m->exit_store[2 * i] = safe_msrs[rnd(f, ARRAY_SIZE(safe_msrs))];
        m->exit_store[2 * i + 1] = 0;
        idx = safe_msrs[rnd(f, 3)];
        m->exit_load[2 * i] = idx;
        m->exit_load[2 * i + 1] = idx == 0x174 ? rnd(f, 0x10000) : PA(m->stack) + 8 * rnd(f, 100);
    }
}

static void bitmaps(struct fzcpu *f)
{
    struct fzmem *m = &mem[f->cpu];
    memset(m->msr_bitmap, 0, PAGE);
    memset(m->io_a, 0, PAGE);
    memset(m->io_b, 0, PAGE);
    if (chance(f, 50))
        m->msr_bitmap[0x174 / 8] |= 1 << (0x174 % 8);           /* read, low MSRs */
    if (chance(f, 50))
        m->msr_bitmap[0x400 + (0x102 / 8)] |= 1 << (0x102 % 8);  /* read, high MSRs */
    if (chance(f, 50))
        m->io_a[0x80 / 8] |= 1 << (0x80 % 8);
    for (int i = 0; i < 4; i++)
        m->io_b[rnd(f, PAGE)] = (uint8_t)rnd64(f);
    memset(m->vapic, 0, PAGE);
    m->vapic[0x80] = (uint8_t)(rnd(f, 16) << 4);                /* VTPR */
}

static bool build_vmcs(struct fzcpu *f, int page)
{
    struct fzmem *m = &mem[f->cpu];
    uint64_t pa = PA(m->vmcs[page]);
    /* the region is written only while not active (SDM 25.11.1): VMCLEAR first */
    int r0 = vmclear(pa);
    vmx_region_init(m->vmcs[page], revision);
    int r1 = vmclear(pa), r2 = vmptrld(pa);
    out(f, " build(%d)", page);
    if (r0 != VMX_SUCCEED || r1 != VMX_SUCCEED || r2 != VMX_SUCCEED) {
        outcome(f, r0);
        outcome(f, r1);
        outcome(f, r2);
        return false;
    }
    f->has_current = true;
    uint32_t pin = rand_ctl(f, m_pin, 0);
    if (!(pin & PIN_NMI_EXITING))
        pin &= ~PIN_VIRTUAL_NMIS;
    uint32_t proc = rand_ctl(f, m_proc, PROC_HLT_EXITING | PROC_MWAIT_EXITING);
    if (!(pin & PIN_VIRTUAL_NMIS))
        proc &= ~PROC_NMI_WINDOW_EXITING;
    uint32_t proc2 = (proc & PROC_SECONDARY_CONTROLS) ? rand_ctl(f, m_proc2, 0) : 0;
    if (!(proc2 & PROC2_ENABLE_EPT))
        proc2 &= ~PROC2_UNRESTRICTED_GUEST;
    if (!(proc & PROC_TPR_SHADOW))
        proc2 &= ~PROC2_VIRT_X2APIC;
    uint32_t exit = rand_ctl(f, m_exit, EXIT_HOST_ADDR_SPACE_SIZE);
    uint32_t entry = rand_ctl(f, m_entry, ENTRY_IA32E_MODE_GUEST) & ~(ENTRY_SMM | ENTRY_DEACT_DUAL_MONITOR);

    struct l2_setup s = { .rip = snips[rnd(f, nsnips)], .rsp = PA(m->stack) + sizeof(m->stack) - 64,
                          .host_rip = PA(vm_exit_bare) };
    f->log.errors = 0;
    vmcs_fill(&f->log, &tables[f->cpu], &s);
    VW(VMCS_PIN_BASED_CTLS, pin);
    VW(VMCS_PROC_BASED_CTLS, proc);
    if (proc & PROC_SECONDARY_CONTROLS)
        VW(VMCS_SECONDARY_PROC_CTLS, proc2);
    VW(VMCS_EXIT_CTLS, exit);
    VW(VMCS_ENTRY_CTLS, entry);
    VW(VMCS_EXCEPTION_BITMAP, chance(f, 80) ? ~0u : (uint32_t)rnd64(f));
    VW(VMCS_PF_ERROR_CODE_MASK, chance(f, 70) ? 0 : rnd(f, 32));
    VW(VMCS_PF_ERROR_CODE_MATCH, chance(f, 70) ? 0 : rnd(f, 32));
    VW(VMCS_GUEST_GS_BASE, PA(&params[f->cpu]));
    VW(VMCS_HOST_GS_BASE, rdmsr(MSR_GS_BASE));
    bitmaps(f);
    VW(VMCS_MSR_BITMAP, PA(m->msr_bitmap));
    VW(VMCS_IO_BITMAP_A, PA(m->io_a));
    VW(VMCS_IO_BITMAP_B, PA(m->io_b));
    if (proc & PROC_TPR_SHADOW) {
        VW(VMCS_VIRTUAL_APIC_PAGE_ADDR, PA(m->vapic));
        /* without APIC-access virtualization, bits 3:0 may not exceed VTPR bits 7:4 (SDM 26.2.1.1) */
        VW(VMCS_TPR_THRESHOLD, rnd(f, (m->vapic[0x80] >> 4) + 1));
    }
    if (proc2 & PROC2_VIRT_APIC_ACCESSES)
        VW(VMCS_APIC_ACCESS_ADDR, PA(m->apic_access));
    if (proc2 & PROC2_ENABLE_EPT)
        VW(VMCS_EPT_POINTER, eptp_of(f, rnd(f, 2)));
    if (proc2 & PROC2_ENABLE_VPID)
        VW(VMCS_VPID, 1 + rnd(f, 3));
    if (proc2 & PROC2_ENABLE_VMFUNC) {
        VW(VMCS_VM_FUNCTION_CONTROLS, m_vmfunc & 1);
        for (int i = 0; i < 512; i++)
            m->eptp_list[i] = i < 2 ? eptp_of(f, i) : 0;
        VW(VMCS_EPTP_LIST_ADDR, PA(m->eptp_list));
    }
    if (proc2 & PROC2_ENABLE_XSAVES)
        VW(VMCS_XSS_EXIT_BITMAP, rnd64(f));
    if (proc & PROC_CR3_LOAD_EXITING && chance(f, 50)) {
        VW(VMCS_CR3_TARGET_COUNT, 1);
        VW(VMCS_CR3_TARGET0, read_cr3());
    }
    if (entry & ENTRY_LOAD_EFER)
        VW(VMCS_GUEST_IA32_EFER, rdmsr(MSR_EFER));
    if (entry & ENTRY_LOAD_PAT)
        VW(VMCS_GUEST_IA32_PAT, rdmsr(MSR_IA32_PAT));
    if (exit & EXIT_LOAD_EFER)
        VW(VMCS_HOST_IA32_EFER, rdmsr(MSR_EFER));
    if (exit & EXIT_LOAD_PAT)
        VW(VMCS_HOST_IA32_PAT, rdmsr(MSR_IA32_PAT));
    VW(VMCS_CR0_GUEST_HOST_MASK, chance(f, 50) ? 0 : rnd64(f) & 0xe005003f);
    VW(VMCS_CR4_GUEST_HOST_MASK, chance(f, 50) ? 0 : rnd64(f) & 0x3fffff);
    if (chance(f, 30)) {
        msr_lists(f);
        VW(VMCS_ENTRY_MSR_LOAD_ADDR, PA(m->entry_load));
        VW(VMCS_EXIT_MSR_STORE_ADDR, PA(m->exit_store));
        VW(VMCS_EXIT_MSR_LOAD_ADDR, PA(m->exit_load));
        VW(VMCS_ENTRY_MSR_LOAD_COUNT, rnd(f, 4));
        VW(VMCS_EXIT_MSR_STORE_COUNT, rnd(f, 4));
        VW(VMCS_EXIT_MSR_LOAD_COUNT, rnd(f, 4));
    }
    out(f, " %x/%x/%x/%x/%x", pin, proc, proc2, exit, entry);
    if (f->log.errors)
        out(f, " werr(%d,%x)", f->log.errors, f->log.first_bad);
    return true;
}

/* ---------------------------------------------------------------------------------------------
 * Mutations before an entry: a field and a value, valid or not (the entry checks of SDM 26.2-26.4)
 */
static uint64_t rd(struct fzcpu *f, uint32_t enc) { return vmcs_read(&f->log, enc); }

static void mutate(struct fzcpu *f)
{
    struct fzmem *m = &mem[f->cpu];
    uint32_t enc;
    uint64_t v;
    switch (rnd(f, 40)) {
    case 0: enc = VMCS_PIN_BASED_CTLS; v = rd(f, enc) | (1u << (8 + rnd(f, 24))); break;  /* reserved */
    case 1: enc = VMCS_PIN_BASED_CTLS; v = rd(f, enc) & ~0x16u; break;      /* default1 */
    case 2: enc = VMCS_PROC_BASED_CTLS; v = rd(f, enc) | 1; break;
    case 3: enc = VMCS_EXIT_CTLS; v = rd(f, enc) & ~(1u << rnd(f, 9)); break;
    case 4: enc = VMCS_ENTRY_CTLS; v = rd(f, enc) & ~(1u << rnd(f, 9)); break;
    case 5: enc = VMCS_ENTRY_CTLS; v = rd(f, enc) ^ ENTRY_IA32E_MODE_GUEST; break;
    case 6: enc = VMCS_EXIT_CTLS; v = rd(f, enc) ^ EXIT_HOST_ADDR_SPACE_SIZE; break;
    case 7: enc = VMCS_SECONDARY_PROC_CTLS; v = rd(f, enc) | (1u << 31); break;
    case 8: enc = VMCS_ENTRY_INTR_INFO; {
        /* no type 7 (other event): Bochs 2.7 panics on it (docs/known-bugs.md) */
        static const uint32_t types[] = { 0, 2, 3, 3, 3, 4, 5, 6, 1 };
        uint32_t t = types[rnd(f, ARRAY_SIZE(types))], vec = chance(f, 70) ? rnd(f, 32) : rnd(f, 256);
        if (t == 2)
            vec = chance(f, 80) ? 2 : vec;
        v = INTR_INFO_VALID | (t << 8) | vec | (chance(f, 30) ? INTR_INFO_ERROR_CODE : 0) |
            (chance(f, 5) ? (1u << (12 + rnd(f, 19))) : 0);
        VW(VMCS_ENTRY_EXCEPTION_ERROR_CODE, chance(f, 80) ? rnd(f, 0x10000) : rnd64(f));
        VW(VMCS_ENTRY_INSTRUCTION_LEN, rnd(f, 17));
        break;
    }
    case 9: enc = VMCS_GUEST_RIP; v = chance(f, 20) ? noncanon(f) : snips[rnd(f, nsnips)]; break;
    case 10: enc = VMCS_GUEST_RFLAGS; {
        static const uint64_t fl[] = { 0x2, 0x202, 0x102, 0x302, 0x0, 0x8002, 0x20002, 0x40002, 0x10002, 0x3002 };
        v = fl[rnd(f, ARRAY_SIZE(fl))];
        break;
    }
    case 11: enc = VMCS_GUEST_CR0; v = rd(f, enc) ^ (1ull << rnd(f, 32)); break;
    case 12: enc = VMCS_GUEST_CR4; v = rd(f, enc) ^ (1ull << rnd(f, 24)); break;
    case 13: enc = VMCS_GUEST_CR3; v = beyond(f); break;
    case 14: enc = VMCS_GUEST_DR7; v = chance(f, 50) ? (1ull << (32 + rnd(f, 32))) | 0x400 : rnd(f, 0x10000) | 0x400; break;
    case 15: enc = VMCS_GUEST_IA32_DEBUGCTL; v = chance(f, 50) ? 1ull << rnd(f, 64) : 0; break;
    case 16: enc = 0x4814 + 2 * rnd(f, 8); v = rd(f, enc) ^ (1ull << rnd(f, 17)); break;     /* AR */
    case 17: enc = 0x0800 + 2 * rnd(f, 8); v = rd(f, enc) ^ (1ull << rnd(f, 16)); break;     /* selector */
    case 18: enc = 0x4800 + 2 * rnd(f, 10); v = rand_value(f, rd(f, enc)) & 0xffffffff; break; /* limits */
    case 19: enc = VMCS_GUEST_INTERRUPTIBILITY; v = chance(f, 70) ? rnd(f, 16) : 1u << rnd(f, 32); break;
    case 20: enc = VMCS_GUEST_ACTIVITY_STATE; v = chance(f, 50) ? 0 : 4 + rnd(f, 100); break;
    case 21: enc = VMCS_GUEST_PENDING_DBG; v = chance(f, 50) ? 0x4000 : 1ull << rnd(f, 64); break;
    case 22: enc = VMCS_GUEST_IA32_EFER; v = rd(f, enc) ^ (1ull << rnd(f, 16)); break;
    case 23: enc = VMCS_GUEST_IA32_PAT; v = rd(f, enc) ^ (1ull << rnd(f, 64)); break;
    case 24: enc = VMCS_LINK_POINTER; {
        uint64_t pg = PA(m->vmcs[3]);
        *(volatile uint32_t *)m->vmcs[3] = revision | (chance(f, 30) ? 0x80000000u : 0);
        v = chance(f, 50) ? pg : field_addr(f, pg);
        break;
    }
    case 25: enc = VMCS_MSR_BITMAP; v = field_addr(f, PA(m->msr_bitmap)); break;
    case 26: enc = VMCS_IO_BITMAP_A + 2 * rnd(f, 2); v = field_addr(f, PA(m->io_a)); break;
    case 27: enc = VMCS_ENTRY_MSR_LOAD_COUNT; {
        msr_lists(f);
        int i = rnd(f, 4);
        uint32_t r = rnd(f, 6);
        if (r == 0)
            m->entry_load[2 * i] = 0x800 + rnd(f, 0x100);           /* x2APIC: refused */
        else if (r == 1)
            m->entry_load[2 * i] = 0xdeadbeef;
        else if (r == 2)
            m->entry_load[2 * i] |= 1ull << (32 + rnd(f, 32));      /* reserved */
        else if (r == 3)
            m->entry_load[2 * i + 1] = noncanon(f);
        VW(VMCS_ENTRY_MSR_LOAD_ADDR, chance(f, 70) ? PA(m->entry_load) : field_addr(f, PA(m->entry_load)));
        VW(VMCS_EXIT_MSR_STORE_ADDR, PA(m->exit_store));
        VW(VMCS_EXIT_MSR_LOAD_ADDR, PA(m->exit_load));
        VW(VMCS_EXIT_MSR_STORE_COUNT, rnd(f, 5));
        VW(VMCS_EXIT_MSR_LOAD_COUNT, rnd(f, 5));
        v = chance(f, 90) ? rnd(f, 5) : 512;
        break;
    }
    case 28: enc = VMCS_EXIT_MSR_STORE_ADDR + 2 * rnd(f, 2); v = field_addr(f, PA(m->exit_store)); break;
    case 29: enc = VMCS_EPT_POINTER; v = chance(f, 50) ? eptp_flip(eptp_of(f, rnd(f, 2)), rnd(f, 12)) :
                                             (eptp_of(f, 0) & 0xfff) | field_addr(f, PA(m->ept[0].pml4)); break;
    case 30: enc = VMCS_VPID; v = rnd(f, 4); break;
    case 31: enc = VMCS_CR3_TARGET_COUNT; v = rnd(f, 6); break;
    case 32: enc = VMCS_TPR_THRESHOLD; v = chance(f, 70) ? rnd(f, 16) : rnd64(f) & 0xffffffff; break;
    case 33: enc = VMCS_VIRTUAL_APIC_PAGE_ADDR; v = field_addr(f, PA(m->vapic)); break;
    case 34: enc = VMCS_APIC_ACCESS_ADDR; v = field_addr(f, PA(m->apic_access)); break;
    case 35: enc = VMCS_VM_FUNCTION_CONTROLS; v = rnd(f, 4); break;
    case 36: enc = VMCS_EPTP_LIST_ADDR; v = field_addr(f, PA(m->eptp_list)); break;
    case 37: {                          /* an invalid host-state value (SDM 26.2.2-26.2.4) */
        static const uint32_t hf[] = { VMCS_HOST_CR0, VMCS_HOST_CR4, VMCS_HOST_CR3, VMCS_HOST_RIP,
                                       VMCS_HOST_CS_SELECTOR, VMCS_HOST_TR_SELECTOR, VMCS_HOST_SS_SELECTOR,
                                       VMCS_HOST_FS_BASE, VMCS_HOST_GDTR_BASE, VMCS_HOST_IA32_EFER,
                                       VMCS_HOST_IA32_PAT, VMCS_HOST_TR_BASE };
        enc = hf[rnd(f, ARRAY_SIZE(hf))];
        switch (enc) {
        case VMCS_HOST_CR0: v = rd(f, enc) & ~(chance(f, 50) ? CR0_PE : CR0_NE); break;
        case VMCS_HOST_CR4: v = rd(f, enc) & ~(chance(f, 50) ? CR4_VMXE : CR4_PAE); break;
        case VMCS_HOST_CR3: v = beyond(f); break;
        case VMCS_HOST_CS_SELECTOR: v = chance(f, 50) ? 0 : rd(f, enc) | 3; break;
        case VMCS_HOST_TR_SELECTOR: v = chance(f, 50) ? 0 : rd(f, enc) | 4; break;
        case VMCS_HOST_SS_SELECTOR: v = rd(f, enc) | 1; break;
        case VMCS_HOST_IA32_EFER: v = rd(f, enc) ^ (chance(f, 50) ? EFER_LMA : 1ull << (12 + rnd(f, 50))); break;
        case VMCS_HOST_IA32_PAT: v = rd(f, enc) | (2ull << (8 * rnd(f, 8))); break;
        default: v = noncanon(f); break;
        }
        break;
    }
    case 38: enc = VMCS_EXCEPTION_BITMAP; v = rnd64(f) & 0xffffffff; break;
    default: enc = VMCS_GUEST_RSP; v = chance(f, 50) ? noncanon(f) : PA(m->stack) + 1024 + rnd(f, PAGE); break;
    }
    int r = vmwrite_reg(enc, v);
    out(f, " w%x=%llx", enc, U64(v));
    if (r != VMX_SUCCEED)
        outcome(f, r);
}

/* ---------------------------------------------------------------------------------------------
 * Before an entry: put back what could make L1 or L2 touch memory that is not this kernel's, or
 * make L2 sleep forever. Certainly-invalid values are kept (the entry must refuse them).
 */
static bool certainly_bad_pa(uint64_t pa, uint64_t align_mask)
{
    return (pa & align_mask) || (pa >> maxphy);
}
static bool canonical(uint64_t a) { return (uint64_t)((int64_t)(a << 16) >> 16) == a; }

static void fix_pa(struct fzcpu *f, uint32_t enc, uint64_t good, uint64_t align_mask)
{
    uint64_t v = rd(f, enc);
    if (v != good && !certainly_bad_pa(v, align_mask))
        VW(enc, good);
}

static void sanitize(struct fzcpu *f, struct l1_tables *t)
{
    struct fzmem *m = &mem[f->cpu];
    f->log.errors = 0;
    uint64_t proc = rd(f, VMCS_PROC_BASED_CTLS), pin = rd(f, VMCS_PIN_BASED_CTLS);
    uint64_t proc2 = (proc & PROC_SECONDARY_CONTROLS) ? rd(f, VMCS_SECONDARY_PROC_CTLS) : 0;
    if ((proc & (PROC_HLT_EXITING | PROC_MWAIT_EXITING)) != (PROC_HLT_EXITING | PROC_MWAIT_EXITING))
        VW(VMCS_PROC_BASED_CTLS, proc | PROC_HLT_EXITING | PROC_MWAIT_EXITING);
    if (pin & PIN_PREEMPTION_TIMER)
        VW(VMCS_PIN_BASED_CTLS, pin & ~PIN_PREEMPTION_TIMER);
    uint64_t act = rd(f, VMCS_GUEST_ACTIVITY_STATE);
    if (act >= 1 && act <= 3)
        VW(VMCS_GUEST_ACTIVITY_STATE, 0);
    /* Bochs 2.7 does not check "IA-32e mode guest => CR0.PG = 1" (SDM 27.3.1.1): with unrestricted
     * guest it panics the emulator on such an entry (docs/known-bugs.md). Never asked bare; XMHF's
     * own check is tested by case=ia32e-pg0. */
    uint64_t cr0 = rd(f, VMCS_GUEST_CR0);
    if ((rd(f, VMCS_ENTRY_CTLS) & ENTRY_IA32E_MODE_GUEST) && !(cr0 & CR0_PG))
        VW(VMCS_GUEST_CR0, cr0 | CR0_PG | CR0_PE);
    /* no real-mode L2 (unrestricted guest, CR0.PE = 0): the 64-bit snippets decoded as 16-bit code
     * write through SS:SP and DS:BX into low memory, L1's own */
    else if (!(cr0 & CR0_PE))
        VW(VMCS_GUEST_CR0, cr0 | CR0_PE);
    uint64_t rip = rd(f, VMCS_GUEST_RIP);
    if (canonical(rip) && !is_snip(rip))
        VW(VMCS_GUEST_RIP, snips[0]);
    uint64_t rsp = rd(f, VMCS_GUEST_RSP);
    if (canonical(rsp) && (rsp < PA(m->stack) + 1024 || rsp > PA(m->stack) + sizeof(m->stack) - 64))
        VW(VMCS_GUEST_RSP, PA(m->stack) + sizeof(m->stack) - 64);
    VW(VMCS_GUEST_GS_BASE, PA(&params[f->cpu]));
    uint64_t cr3 = rd(f, VMCS_GUEST_CR3);
    if (cr3 != read_cr3() && !certainly_bad_pa(cr3, 0))
        VW(VMCS_GUEST_CR3, read_cr3());
    /* unrestricted guest with paging off: L2-physical = L2-linear, i.e. the kernel's identity */
    uint64_t b;
    if (canonical(b = rd(f, VMCS_GUEST_GDTR_BASE)) && b != t->gdtr.base)
        VW(VMCS_GUEST_GDTR_BASE, t->gdtr.base);
    if (canonical(b = rd(f, VMCS_GUEST_IDTR_BASE)) && b != l2_idtr.base)
        VW(VMCS_GUEST_IDTR_BASE, l2_idtr.base);
    if (canonical(b = rd(f, VMCS_GUEST_TR_BASE)) && b != PA(&t->tss))
        VW(VMCS_GUEST_TR_BASE, PA(&t->tss));
    /* descriptor-table limits: ours, 0 (faults become a triple fault) or refused (bits 31:16) */
    uint64_t lim = rd(f, VMCS_GUEST_GDTR_LIMIT);
    if (lim && lim < 0x10000)
        VW(VMCS_GUEST_GDTR_LIMIT, t->gdtr.limit);
    lim = rd(f, VMCS_GUEST_IDTR_LIMIT);
    if (lim && lim < 0x10000)
        VW(VMCS_GUEST_IDTR_LIMIT, l2_idtr.limit);
    for (int i = 0; i < 6; i++)         /* ES CS SS DS FS GS bases: 0 (FS/GS: GS is the params) */
        if (i != 5)
            VW(VMCS_GUEST_ES_BASE + 2 * i, 0);
    VW(VMCS_GUEST_LDTR_BASE, 0);
    fix_pa(f, VMCS_MSR_BITMAP, PA(m->msr_bitmap), 0xfff);
    fix_pa(f, VMCS_IO_BITMAP_A, PA(m->io_a), 0xfff);
    fix_pa(f, VMCS_IO_BITMAP_B, PA(m->io_b), 0xfff);
    fix_pa(f, VMCS_VIRTUAL_APIC_PAGE_ADDR, PA(m->vapic), 0xfff);
    fix_pa(f, VMCS_APIC_ACCESS_ADDR, PA(m->apic_access), 0xfff);
    fix_pa(f, VMCS_ENTRY_MSR_LOAD_ADDR, PA(m->entry_load), 0xf);
    fix_pa(f, VMCS_EXIT_MSR_STORE_ADDR, PA(m->exit_store), 0xf);
    fix_pa(f, VMCS_EXIT_MSR_LOAD_ADDR, PA(m->exit_load), 0xf);
    uint64_t link = rd(f, VMCS_LINK_POINTER);
    if (link != ~0ull && link != PA(m->vmcs[3]) && !certainly_bad_pa(link, 0xfff))
        VW(VMCS_LINK_POINTER, ~0ull);
    /* more than 512 entries is undefined (SDM A.6) */
    if (rd(f, VMCS_ENTRY_MSR_LOAD_COUNT) > 512)
        VW(VMCS_ENTRY_MSR_LOAD_COUNT, 512);
    if (rd(f, VMCS_EXIT_MSR_STORE_COUNT) > 512)
        VW(VMCS_EXIT_MSR_STORE_COUNT, 512);
    if (rd(f, VMCS_EXIT_MSR_LOAD_COUNT) > 512)
        VW(VMCS_EXIT_MSR_LOAD_COUNT, 512);
    /* exit store/load lists only hold safe MSRs (a failing one is a VMX abort of L1) */
    for (int i = 16; i < 512; i++) {
        m->exit_store[2 * i] = 0x174;
        m->exit_load[2 * i] = 0x174;
        m->exit_load[2 * i + 1] = 0;
    }
    if (proc2 & PROC2_ENABLE_EPT) {
        uint64_t e = rd(f, VMCS_EPT_POINTER), a = e & ~0xfffull;
        if (a != PA(m->ept[0].pml4) && a != PA(m->ept[1].pml4) && !certainly_bad_pa(a, 0))
            VW(VMCS_EPT_POINTER, eptp_of(f, 0));
    }
    if (proc2 & PROC2_ENABLE_VMFUNC) {
        fix_pa(f, VMCS_EPTP_LIST_ADDR, PA(m->eptp_list), 0xfff);
        for (int i = 0; i < 512; i++) {
            uint64_t a = m->eptp_list[i] & ~0xfffull;
            if (a && a != PA(m->ept[0].pml4) && a != PA(m->ept[1].pml4) && !certainly_bad_pa(a, 0))
                m->eptp_list[i] = 0;
        }
    }
    /* host state: this kernel's (the mutations put only values the entry refuses) */
    uint64_t h;
    if (canonical(h = rd(f, VMCS_HOST_RIP)) && h != PA(vm_exit_bare))
        VW(VMCS_HOST_RIP, PA(vm_exit_bare));
    if ((h = rd(f, VMCS_HOST_CR3)) != read_cr3() && !certainly_bad_pa(h, 0))
        VW(VMCS_HOST_CR3, read_cr3());
    if (canonical(h = rd(f, VMCS_HOST_GDTR_BASE)))
        VW(VMCS_HOST_GDTR_BASE, t->gdtr.base);
    if (canonical(h = rd(f, VMCS_HOST_IDTR_BASE)))
        VW(VMCS_HOST_IDTR_BASE, t->idtr.base);
    if (canonical(h = rd(f, VMCS_HOST_TR_BASE)))
        VW(VMCS_HOST_TR_BASE, PA(&t->tss));
    if (canonical(h = rd(f, VMCS_HOST_FS_BASE)))
        VW(VMCS_HOST_FS_BASE, rdmsr(MSR_FS_BASE));
    if (canonical(h = rd(f, VMCS_HOST_GS_BASE)))
        VW(VMCS_HOST_GS_BASE, rdmsr(MSR_GS_BASE));
    uint64_t sel = rd(f, VMCS_HOST_CS_SELECTOR);
    if (sel && !(sel & 7) && sel != read_sel(SREG_CS))
        VW(VMCS_HOST_CS_SELECTOR, read_sel(SREG_CS));
    sel = rd(f, VMCS_HOST_TR_SELECTOR);
    if (sel && !(sel & 7) && sel != read_sel(SREG_TR))
        VW(VMCS_HOST_TR_SELECTOR, read_sel(SREG_TR));
    static const int sregs[] = { SREG_ES, SREG_CS, SREG_SS, SREG_DS, SREG_FS, SREG_GS };
    for (int i = 0; i < 6; i++) {       /* ES CS SS DS FS GS (CS above) */
        sel = rd(f, VMCS_HOST_ES_SELECTOR + 2 * i);
        if (i != 1 && !(sel & 7) && sel != read_sel(sregs[i]))
            VW(VMCS_HOST_ES_SELECTOR + 2 * i, read_sel(sregs[i]));
    }
    /* host CR0/CR4: the kernel's, unless a fixed bit is broken (refused) */
    h = rd(f, VMCS_HOST_CR0);
    if ((h & (CR0_PE | CR0_NE | CR0_PG)) == (CR0_PE | CR0_NE | CR0_PG) && !(h >> 32))
        VW(VMCS_HOST_CR0, read_cr0());
    h = rd(f, VMCS_HOST_CR4);
    if ((h & (CR4_VMXE | CR4_PAE)) == (CR4_VMXE | CR4_PAE) && !(h >> 32))
        VW(VMCS_HOST_CR4, read_cr4());
    h = rd(f, VMCS_HOST_IA32_PAT);
    bool pat_ok = true;
    for (int i = 0; i < 8; i++)
        pat_ok &= ((0xf3u >> ((h >> (8 * i)) & 7)) & 1) && !((h >> (8 * i)) & 0xf8);
    if (pat_ok)
        VW(VMCS_HOST_IA32_PAT, rdmsr(MSR_IA32_PAT));
    h = rd(f, VMCS_HOST_IA32_EFER);
    if (!(h & ~(EFER_SCE | EFER_LME | EFER_LMA | EFER_NXE)) && (h & EFER_LMA))
        VW(VMCS_HOST_IA32_EFER, rdmsr(MSR_EFER));
    VW(VMCS_HOST_SYSENTER_EIP, 0);
    VW(VMCS_HOST_SYSENTER_ESP, 0);
}

/* ---------------------------------------------------------------------------------------------
 * Operations
 */
static const uint32_t insn_exits[] = { 10, 12, 14, 15, 16, 18, 28, 29, 30, 31, 40, 46, 51, 54, 57, 59 };
static bool in_list(uint32_t v, const uint32_t *l, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        if (l[i] == v)
            return true;
    return false;
}

/* The exit's information, only the fields the SDM defines for this exit (28.2: the others are
 * undefined and hold whatever the CPU left there) */
static void rec_exit(struct fzcpu *f)
{
    static const uint32_t with_qual[] = { 9, 14, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 33,
                                          34, 44, 45, 46, 47, 48, 50, 53, 56, 58 };
    static const uint32_t with_info[] = { 19, 21, 22, 23, 25, 26, 27, 46, 47, 50, 53, 57, 58, 61 };
    uint32_t reason = rd(f, VMCS_EXIT_REASON), b = reason & 0xffff;
    out(f, " exit(%x", reason);
    uint32_t ii = 0;
    if (b == 0 || b == 1) {
        ii = rd(f, VMCS_EXIT_INTR_INFO);
        out(f, ",ii=%x", ii);
        if ((ii & INTR_INFO_VALID) && (ii & INTR_INFO_ERROR_CODE))
            out(f, ",ie=%llx", U64(rd(f, VMCS_EXIT_INTR_ERROR_CODE)));
    }
    uint64_t q = 0;
    if (in_list(b, with_qual, ARRAY_SIZE(with_qual)) ||
        (b == 0 && (INTR_INFO_VECTOR(ii) == EXC_DB || INTR_INFO_VECTOR(ii) == EXC_PF)))
        out(f, ",q=%llx", U64(q = rd(f, VMCS_EXIT_QUALIFICATION)));
    if (reason & VMX_EXIT_REASON_ENTRY_FAIL) {
        out(f, ")");
        return;
    }
    uint32_t t = INTR_INFO_TYPE(ii);
    if (in_list(b, insn_exits, ARRAY_SIZE(insn_exits)) || (b >= 19 && b <= 27) || b == 50 || b == 53 ||
        b == 55 || b == 58 || b == 61 || (b == 0 && (t == 4 || t == 5 || t == 6)))
        out(f, ",len=%llx", U64(rd(f, VMCS_EXIT_INSTRUCTION_LEN)));
    if (in_list(b, with_info, ARRAY_SIZE(with_info)))
        out(f, ",info=%llx", U64(rd(f, VMCS_EXIT_INSTRUCTION_INFO)));
    uint32_t idt = rd(f, VMCS_IDT_VECTORING_INFO);
    out(f, ",idt=%x", idt);
    if ((idt & INTR_INFO_VALID) && (idt & INTR_INFO_ERROR_CODE))
        out(f, ",idte=%llx", U64(rd(f, VMCS_IDT_VECTORING_ERROR_CODE)));
    out(f, ",rip=%llx,rsp=%llx,rfl=%llx,int=%llx,pd=%llx", U64(rd(f, VMCS_GUEST_RIP)),
        U64(rd(f, VMCS_GUEST_RSP)), U64(rd(f, VMCS_GUEST_RFLAGS)),
        U64(rd(f, VMCS_GUEST_INTERRUPTIBILITY)), U64(rd(f, VMCS_GUEST_PENDING_DBG)));
    if (b == EXIT_REASON_EPT_VIOLATION || b == EXIT_REASON_EPT_MISCONFIG)
        out(f, ",gpa=%llx", U64(rd(f, VMCS_GUEST_PHYSICAL_ADDRESS)));
    if (b == EXIT_REASON_EPT_VIOLATION && (q & (1u << 7)))
        out(f, ",gla=%llx", U64(rd(f, VMCS_GUEST_LINEAR_ADDRESS)));
    out(f, ",cr0=%llx,cr3=%llx,cr4=%llx,ent=%llx)", U64(rd(f, VMCS_GUEST_CR0)), U64(rd(f, VMCS_GUEST_CR3)),
        U64(rd(f, VMCS_GUEST_CR4)), U64(rd(f, VMCS_ENTRY_INTR_INFO)));
    if (f->log.errors)
        out(f, " rerr(%x)", f->log.first_bad);
}

/* Bochs 2.7 does not clear NMI blocking at VM entry when the interruptibility state says none (SDM
 * 27.7.1; its vmx.cc only sets it, fixed after 2.7 by "fixed SF #1456 Bochs does not handle NMI
 * blocking correctly when running virtual machines"): blocking left by an entry with blocking by NMI
 * or an injected NMI stays, physical or virtual, until an IRET, across VM exits and later entries.
 * Bare and under XMHF (whose VMCS02 always uses virtual NMIs) it stays in different places, so later
 * entries would see it differently (docs/known-bugs.md). After such an entry both runs IRET here
 * (physical NMI blocking) and in an L2 with NMI exiting and virtual NMIs (virtual-NMI blocking),
 * then make the fuzzed VMCS current again; the VMCS under test is neither cleared nor written. */
extern char l2_scrub[];
asm(".text\n"
    "l2_scrub:\n call iret_to_self\n vmcall\n");

static bool nmi_blocking_entry(void)
{
    uint64_t ii = 0, is = 0;
    vmread_reg(VMCS_ENTRY_INTR_INFO, &ii);
    vmread_reg(VMCS_GUEST_INTERRUPTIBILITY, &is);
    return (is & INTERRUPTIBILITY_NMI) || ((ii & INTR_INFO_VALID) && INTR_INFO_TYPE(ii) == INTR_TYPE_NMI);
}

static void nmi_scrub(struct fzcpu *f)
{
    struct fzmem *m = &mem[f->cpu];
    struct l1_tables *t = &tables[f->cpu];
    struct vmcs_log log = { 0 };
    uint64_t cur = ~0ull, pa = PA(m->scrub_vmcs);
    iret_to_self();
    vmptrst(&cur);
    vmx_region_init(m->scrub_vmcs, revision);
    if (vmclear(pa) != VMX_SUCCEED || vmptrld(pa) != VMX_SUCCEED) {
        out(f, " scrub-load-failed");
        return;
    }
    struct l2_setup s = { .rip = PA(l2_scrub), .rsp = PA(m->stack) + sizeof(m->stack) - 64,
                          .pin = PIN_NMI_EXITING | PIN_VIRTUAL_NMIS, .exc_bitmap = ~0u,
                          .host_rip = PA(vm_exit_bare) };
    vmcs_fill(&log, t, &s);
    fault_begin();
    uint64_t fl = vm_enter_bare(1);
    lgdt(&t->gdtr);
    lidt(&t->idtr);
    uint64_t reason = 0;
    vmread_reg(VMCS_EXIT_REASON, &reason);
    if (log.errors || fl != VM_EXITED || fault_result() != NO_EXCEPTION || reason != EXIT_REASON_VMCALL)
        out(f, " scrub-failed(%d,%llx,%llx)", log.errors, U64(fl), U64(reason));
    vmclear(pa);
    if (cur != ~0ull)
        vmptrld(cur);
}

static void op_enter(struct fzcpu *f)
{
    struct fzmem *m = &mem[f->cpu];
    struct l1_tables *t = &tables[f->cpu];
    bool fresh = f->in_vmx && chance(f, 60);
    out(f, "enter");
    if (fresh && !build_vmcs(f, rnd(f, 3)))
        return;
    if (!fresh && f->in_vmx && f->has_current && chance(f, 70)) {
        /* resume after the last exit: past the exiting instruction, or to another snippet */
        uint32_t reason = rd(f, VMCS_EXIT_REASON) & 0xffff;
        uint64_t rip = rd(f, VMCS_GUEST_RIP);
        if (in_list(reason, insn_exits, ARRAY_SIZE(insn_exits)) && chance(f, 80))
            VW(VMCS_GUEST_RIP, rip + rd(f, VMCS_EXIT_INSTRUCTION_LEN));
        else
            VW(VMCS_GUEST_RIP, snips[rnd(f, nsnips)]);
        VW(VMCS_ENTRY_INTR_INFO, 0);
    }
    int nmut = fresh ? rnd(f, 4) : rnd(f, 2);
    for (int i = 0; i < nmut && f->in_vmx; i++)
        mutate(f);
    if (f->in_vmx && f->has_current)
        sanitize(f, t);
    /* L2's operand: a window page through EPT12, else a pool page (L1-physical) */
    uint64_t proc = 0, proc2 = 0;
    if (f->in_vmx && f->has_current) {
        uint64_t v = 0;
        vmread_reg(VMCS_PROC_BASED_CTLS, &v);
        proc = v;
        v = 0;
        if (proc & PROC_SECONDARY_CONTROLS)
            vmread_reg(VMCS_SECONDARY_PROC_CTLS, &v);
        proc2 = v;
    }
    uint32_t pg = rnd(f, NPOOL + 2), off = rnd(f, PAGE / 8) * 8;
    params[f->cpu].addr = (proc2 & PROC2_ENABLE_EPT) ? WINDOW + pg * PAGE + off : PA(m->pool[pg % NPOOL]) + off;
    static const uint32_t msrs[] = { 0x174, 0xc0000102, 0x10, 0xdeadbeef, 0x1b, 0xc0000080 };
    params[f->cpu].msr = msrs[rnd(f, ARRAY_SIZE(msrs))];
    params[f->cpu].vmfunc_idx = chance(f, 80) ? rnd(f, 2) : rnd(f, 600);
    /* VM-exit MSR-store of TSC would differ; our lists never hold it */
    bool launch = fresh ? !chance(f, 10) : chance(f, 10);
    out(f, " %s a=%llx m=%llx", launch ? "L" : "R", U64(params[f->cpu].addr), U64(params[f->cpu].msr));
    if (!f->in_vmx) {                   /* vm_enter_bare's VMWRITE of HOST_RSP would #UD unguarded */
        outcome(f, launch ? vmlaunch() : vmresume());
        return;
    }
    bool nmi_blocked = nmi_blocking_entry();
    fault_begin();
    uint64_t fl = vm_enter_bare(launch);
    lgdt(&t->gdtr);
    lidt(&t->idtr);
    if (fl == VM_EXITED && fault_result() == NO_EXCEPTION)
        rec_exit(f);
    else
        outcome(f, vmx_result(fl));
    if (nmi_blocked)
        nmi_scrub(f);
}

static void op_ptr(struct fzcpu *f)
{
    static const char *const names[] = { "vmptrld", "vmclear", "vmxon" };
    int which = rnd(f, 10) < 5 ? 0 : 1;
    if (!f->in_vmx && chance(f, 70))
        which = 2;
    if (f->in_vmx && chance(f, 3))
        which = 2;
    if (chance(f, 3)) {
        int w = rnd(f, 6);
        out(f, "regform%d", w);
        outcome(f, reg_form(w));
        return;
    }
    uint64_t pa = which == 2 ? (chance(f, 80) ? PA(mem[f->cpu].vmxon) : ptr_operand(f)) : ptr_operand(f);
    if (which == 2 && !f->in_vmx)       /* the region is L1's to write only outside VMX operation */
        vmx_region_init(mem[f->cpu].vmxon, chance(f, 90) ? revision : revision ^ (1u << rnd(f, 31)));
    const char *how = "m";
    uint64_t lin = PA(mem[f->cpu].opbuf) + 8 * rnd(f, 64);
    if (chance(f, 10))
        lin = lin_operand(f, 8, &how);
    poke(lin, pa);
    out(f, "%s %s %llx", names[which], how, U64(pa));
    int r = ptr_insn(which, lin);
    outcome(f, r);
    if (r == VMX_SUCCEED && which == 2) {
        f->in_vmx = true;
        f->has_current = false;
    }
    if (r == VMX_SUCCEED && which == 0)
        f->has_current = true;
}

static void op_vmptrst(struct fzcpu *f)
{
    const char *how;
    uint64_t lin = lin_operand(f, 8, &how);
    poke(lin, 0x1111);
    out(f, "vmptrst %s", how);
    outcome(f, ptr_insn(3, lin));
    bool ok;
    uint64_t v = peek(lin, &ok);
    if (ok)
        out(f, " =%llx", U64(v));
}

/* VM-exit information fields that the SDM leaves undefined after most exits (28.2: instruction
 * information, length, qualification, I/O RCX..RIP, guest linear/physical address, error codes):
 * VMREAD of them is not compared (rec_exit() compares them after the exits that define them). */
static bool undefined_after_exit(uint32_t enc)
{
    static const uint32_t l[] = { 0x2400, 0x2401, 0x4406, 0x440a, 0x440c, 0x440e, 0x6400, 0x6402,
                                  0x6404, 0x6406, 0x6408, 0x640a };
    for (unsigned i = 0; i < ARRAY_SIZE(l); i++)
        if (l[i] == enc)
            return true;
    return false;
}

static void op_vmread(struct fzcpu *f)
{
    uint64_t enc = rand_field(f);
    if (undefined_after_exit((uint32_t)enc))
        f->excluded = true;
    out(f, "vmread %llx", U64(enc));
    if (chance(f, 50)) {
        uint64_t v = 0x5a5a5a5a5a5a5a5aull;
        outcome(f, vmread_reg(enc, &v));
        out(f, " =%llx", U64(v));
    } else {
        const char *how;
        uint64_t lin = lin_operand(f, 8, &how);
        poke(lin, 0x5a5a5a5a5a5a5a5aull);
        out(f, " %s", how);
        outcome(f, vmread_at(enc, lin));
        bool ok;
        uint64_t v = peek(lin, &ok);
        if (ok)
            out(f, " =%llx", U64(v));
    }
}

static void op_vmwrite(struct fzcpu *f)
{
    uint64_t enc = rand_field(f);
    if (field_read_only((uint32_t)enc))
        enc = VMCS_GUEST_RIP;           /* IA32_VMX_MISC[29] differs bare / under XMHF (docs/nested.md) */
    if (enc == VMCS_HOST_RIP || enc == VMCS_HOST_RSP)
        enc = VMCS_GUEST_RIP;
    uint64_t cur = 0;
    vmread_reg(enc, &cur);
    uint64_t v = rand_value(f, cur);
    out(f, "vmwrite %llx=%llx", U64(enc), U64(v));
    if (chance(f, 50)) {
        outcome(f, vmwrite_reg(enc, v));
    } else {
        const char *how;
        uint64_t lin = lin_operand(f, 8, &how);
        poke(lin, v);
        out(f, " %s", how);
        outcome(f, vmwrite_at(enc, lin));
    }
    uint64_t back = 0x5a5a;
    outcome(f, vmread_reg(enc, &back));
    out(f, " =%llx", U64(back));
}

static void op_inv(struct fzcpu *f)
{
    bool ept = chance(f, 50);
    uint64_t type = chance(f, 80) ? rnd(f, 4) : (chance(f, 50) ? rnd64(f) & 0xffffffff : rnd64(f));
    const char *how = "m";
    uint64_t lin = PA(mem[f->cpu].opbuf) + 16 * rnd(f, 32);
    if (chance(f, 10))
        lin = lin_operand(f, 16, &how);
    uint64_t lo, hi;
    if (ept) {
        lo = chance(f, 70) ? eptp_of(f, rnd(f, 2)) : eptp_flip(eptp_of(f, 0), rnd(f, 64));
        hi = chance(f, 90) ? 0 : rnd64(f);
    } else {
        lo = chance(f, 80) ? rnd(f, 4) : rnd64(f);
        hi = chance(f, 80) ? PA(mem[f->cpu].pool[0]) : noncanon(f);
    }
    poke(lin, lo);
    poke(lin + 8, hi);
    /* Bochs 2.7 reads a 32-bit type register in 64-bit mode (docs/known-bugs.md): only types
     * whose bits 63:32 are clear are compared */
    if (type >> 32)
        f->excluded = true;
    out(f, "%s %s t=%llx %llx,%llx", ept ? "invept" : "invvpid", how, U64(type), U64(lo), U64(hi));
    outcome(f, inv_at(ept, type, lin));
}

static void op_ept_edit(struct fzcpu *f)
{
    if (!f->in_vmx) {                   /* edits are followed by INVEPT: only in VMX operation */
        out(f, "ept-skip");
        return;
    }
    struct ept_tree *e = &mem[f->cpu].ept[rnd(f, 2)];
    uint64_t *ent;
    bool leaf_pool = false, big = false;
    switch (rnd(f, 6)) {
    case 0: ent = &e->pml4[0]; break;
    case 1: ent = &e->pdpt[rnd(f, 2)]; break;
    case 2: ent = &e->pdw[0]; break;
    case 3: ent = &e->pd[PA(l2_code) >> 21]; big = true; break;
    default: ent = &e->ptw[rnd(f, NPOOL + 2)]; leaf_pool = true; break;
    }
    uint64_t v = *ent;
    uint32_t r = rnd(f, 10);
    if (r < 4) {
        v ^= 1ull << rnd(f, 3);                 /* permissions */
    } else if (r < 5) {
        v ^= (uint64_t)rnd(f, 8) << 3;          /* memory type (leaves) or reserved bits 5:3 */
    } else if (r < 6) {
        v ^= 1ull << (maxphy + rnd(f, 52 - maxphy));    /* reserved address bits */
    } else if (r < 7) {
        if (!big)
            v ^= 1ull << 7;                     /* PS: reserved in a PML4E, misaligned address otherwise */
    } else if (r < 8) {
        v ^= 1ull << (6 + rnd(f, 6)) | (1ull << (52 + rnd(f, 12)));     /* ignore-PAT, A, D, ignored */
    } else if (leaf_pool) {
        v = PA(mem[f->cpu].pool[rnd(f, NPOOL)]) | (v & 0xfff);
    } else {
        v = 0;
    }
    /* execute-only leaves: not offered under XMHF (allowed bare) */
    if ((v & 7) == 4)
        v &= ~7ull;
    *ent = v;
    out(f, "ept %llx=%llx", U64(PA(ent) & 0xfffff), U64(v));
    if (f->in_vmx && (m_ept & EPT_CAP_INVEPT_ALL))
        outcome(f, invept(INVEPT_ALL, 0));
    if (chance(f, 5)) {
        ept_build(f, 0);
        ept_build(f, 1);
        out(f, " rebuilt");
        if (f->in_vmx && (m_ept & EPT_CAP_INVEPT_ALL))
            outcome(f, invept(INVEPT_ALL, 0));
    }
}

static void op_misc(struct fzcpu *f)
{
    switch (rnd(f, 4)) {
    case 0:
        out(f, "vmfunc");
        outcome(f, vmfunc_root(rnd(f, 2)));
        break;
    case 1:
        out(f, "vmxoff");
        {
            int r = vmxoff();
            outcome(f, r);
            if (r == VMX_SUCCEED)
                f->in_vmx = false;
        }
        break;
    case 2: {
        /* a VMCS page with a wrong revision identifier, loaded (VMfailValid(11)) and put back */
        struct fzmem *m = &mem[f->cpu];
        uint32_t bad = revision ^ (1u << rnd(f, 31));
        *(volatile uint32_t *)m->vmcs[3] = bad;
        out(f, "vmptrld-badrev %x", bad);
        outcome(f, vmptrld(PA(m->vmcs[3])));
        *(volatile uint32_t *)m->vmcs[3] = revision;
        break;
    }
    default:
        out(f, "vmclear-current");
        {
            uint64_t cur = ~0ull;
            vmptrst(&cur);
            if (cur == ~0ull)
                out(f, " none");
            else
                outcome(f, vmclear(cur));
            f->has_current = false;
        }
        break;
    }
}

static void fuzz_cpu(void *arg)
{
    struct fzcpu *f = arg;
    int cpu = f->cpu;
    struct l1_tables *t = &tables[cpu];
    uint64_t fl;
    asm volatile("pushfq; pop %0; cli" : "=r"(fl) :: "memory");
    (void)fl;
    l1_tables_load(t);
    f->hash = f->total = 0xcbf29ce484222325ull;
    f->rng = seed * 1000 + cpu;
    ept_build(f, 0);
    ept_build(f, 1);
    l1_enable_vmx();
    vmx_region_init(mem[cpu].vmxon, revision);
    out(f, "vmxon");
    int r = vmxon(PA(mem[cpu].vmxon));
    outcome(f, r);
    f->in_vmx = r == VMX_SUCCEED;
    op_end(f);
    while ((uint64_t)f->nops < nops) {
        uint32_t k = rnd(f, 100);
        if (!f->in_vmx && k >= 10 && chance(f, 80))
            k = 0;                          /* mostly back into VMX operation */
        if (k < 12)
            op_ptr(f);
        else if (k < 16)
            op_vmptrst(f);
        else if (k < 32)
            op_vmread(f);
        else if (k < 46)
            op_vmwrite(f);
        else if (k < 80)
            op_enter(f);
        else if (k < 88)
            op_inv(f);
        else if (k < 94)
            op_ept_edit(f);
        else
            op_misc(f);
        op_end(f);
    }
    if (f->in_vmx) {
        vmclear(PA(mem[cpu].vmcs[0]));
        vmclear(PA(mem[cpu].vmcs[1]));
        vmclear(PA(mem[cpu].vmcs[2]));
        vmxoff();
    }
    f->done = 1;
}

/* case=ia32e-pg0 (under XMHF only: bare Bochs 2.7 panics, docs/known-bugs.md): an entry with
 * "IA-32e mode guest", unrestricted guest and CR0.PG = PE = 0 must fail with reason 33 (SDM 27.3.1.1). */
static void case_ia32e_pg0(void)
{
    struct fzcpu *f = &fz[0];
    test_begin("ia32e-pg0");
    ept_build(f, 0);
    if (!test_check((m_proc2 >> 32 & (PROC2_ENABLE_EPT | PROC2_UNRESTRICTED_GUEST)) ==
                    (PROC2_ENABLE_EPT | PROC2_UNRESTRICTED_GUEST), "no unrestricted guest offered") ||
        !test_check(l1_vmxon(), "VMXON failed")) {
        test_end();
        return;
    }
    struct l2_setup s = { .rip = snips[0], .rsp = PA(mem[0].stack) + sizeof(mem[0].stack) - 64,
                          .proc = PROC_HLT_EXITING, .proc2 = PROC2_ENABLE_EPT | PROC2_UNRESTRICTED_GUEST,
                          .eptp = eptp_of(f, 0), .exc_bitmap = ~0u, .vmcs = 0 };
    if (vmcs_build(&s)) {
        vmw(VMCS_GUEST_GS_BASE, PA(&params[0]));
        vmw(VMCS_GUEST_CR0, read_cr0() & ~(CR0_PG | CR0_PE));
        int o = l2_enter(true);
        char b[120];
        test_check(o == ENTER_EXITED && ex.reason == (VMX_EXIT_REASON_ENTRY_FAIL | EXIT_REASON_INVALID_GUEST_STATE) &&
                   ex.qual == 0, "VMLAUNCH: %s, expected a VM-entry failure (reason 0x80000021, qualification 0)",
                   enter_outcome_name(o, b, sizeof(b)));
    }
    l1_done();
    test_end();
}

/* a control capability MSR with allowed-1 cut to mask (the required bits stay allowed) */
static uint64_t masked(uint64_t cap, uint32_t mask)
{
    uint32_t a0 = (uint32_t)cap, a1 = (uint32_t)(cap >> 32) & (mask | a0);
    return ((uint64_t)a1 << 32) | a0;
}

void test_main(void)
{
    char buf[64];
    if (cmdline_get("seed", 0, buf, sizeof(buf)))
        parse_u64(buf, NULL, &seed);
    if (cmdline_get("ops", 0, buf, sizeof(buf)))
        parse_u64(buf, NULL, &nops);
    if (cmdline_get("block", 0, buf, sizeof(buf)) && parse_u64(buf, NULL, &block) && !block)
        block = 100;
    if (cmdline_get("show", 0, buf, sizeof(buf))) {
        const char *end;
        if (parse_u64(buf, &end, &show_from) && *end == '-')
            parse_u64(end + 1, NULL, &show_to);
    }
    test_begin("vmxfuzz");
    if (!l1_init()) {
        test_end();
        return;
    }
    l2_idt_init(l2_unexpected_handler);
    find_snippets();
    maxphy = cpuid(0x80000000).a >= 0x80000008 ? cpuid(0x80000008).a & 0xff : 36;
    region = e820_reserved_hole();
    /* masked capabilities: allowed-0 as read, allowed-1 within the fuzz masks */
    m_pin = masked(cap_pin, FUZZ_PIN);
    m_proc = masked(cap_proc, FUZZ_PROC);
    m_proc2 = has_proc2 ? masked(cap_proc2, FUZZ_PROC2) : 0;
    m_exit = masked(cap_exit, FUZZ_EXIT);
    m_entry = masked(cap_entry, FUZZ_ENTRY);
    uint64_t ev = 0;
    if (m_proc2 >> 32 & (PROC2_ENABLE_EPT | PROC2_ENABLE_VPID))
        rdmsr_safe(MSR_IA32_VMX_EPT_VPID_CAP, &ev);
    m_ept = ev & FUZZ_EPT;
    uint64_t vf = 0;
    if (m_proc2 >> 32 & PROC2_ENABLE_VMFUNC)
        rdmsr_safe(MSR_IA32_VMX_VMFUNC, &vf);
    m_vmfunc = vf & 1;
    printf("FUZZ caps pin=%llx proc=%llx proc2=%llx exit=%llx entry=%llx ept=%llx vmfunc=%llx maxphy=%u snippets=%d\n",
           U64(m_pin), U64(m_proc), U64(m_proc2), U64(m_exit), U64(m_entry), U64(m_ept), U64(m_vmfunc),
           maxphy, nsnips);
    info("seed %llu, %llu ops per CPU, region 0x%llx", U64(seed), U64(nops), U64(region));

    if (cmdline_get("case", 0, buf, sizeof(buf)) && !strncmp(buf, "ia32e-pg0", 10)) {
        case_ia32e_pg0();
        return;
    }
    smp_init();
    int n = smp_start_all(0);
    if (n > NCPU)
        n = NCPU;
    for (int i = 0; i < n; i++)
        fz[i].cpu = i;
    for (int i = 1; i < n; i++)
        smp_call_async(i, fuzz_cpu, &fz[i]);
    fuzz_cpu(&fz[0]);
    for (int i = 1; i < n; i++)
        test_check(smp_call_wait(i, 600000), "CPU %d did not finish", i);
    for (int i = 0; i < n; i++) {
        struct fzcpu *f = &fz[i];
        if (!f->done)
            continue;
        for (int b = 0; b < f->nblocks; b++)
            printf("FUZZ cpu=%d block=%d hash=%016llx\n", i, b, U64(f->block_hash[b]));
        printf("FUZZ cpu=%d ops=%d total=%016llx\n", i, f->nops, U64(f->total));
    }
    test_end();
}
