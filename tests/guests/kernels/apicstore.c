/* apicstore.bin - every store form a compiler or OS may use on the xAPIC page (issue 14).
 *
 * The hypervisor emulates each guest write to the APIC page from the instruction bytes, so each form
 * is written here with an explicit encoding (GNU as spelling; the bytes, from objdump -d, are in the
 * comments). Only 32-bit stores at 16-byte aligned offsets: those are the accesses SDM Vol. 3 11.4.1
 * defines, and bare Bochs 2.7 stops (BX_PANIC) on any other width or offset, so no other kind can be
 * compared here (the unit tests cover them).
 *
 * Checks: the TPR read back after each MOV/MOVNTI/XCHG/STOS form (and the registers XCHG and STOS
 * change), in 64-bit code and in 32-bit code (compatibility mode: A3's moffs is 4 bytes there); every read-modify-write ALU form on the TPR against the same instruction on RAM (result
 * and OF SF ZF AF PF CF); OR/AND/XOR/BTS/BTR/BTC on the LVT timer; BTS with a register bit offset
 * outside the addressed dword; a fixed self-IPI through the ICR (destination written with
 * `mov %eax, 0xfee00310`, opcode A3, as the outside kernel of issue 14 does) for each store form;
 * with 2 CPUs, stores on each AP reach that AP's APIC and leave the BSP's alone.
 */
#include "lib.h"

#define APIC 0xfee00000ull
#define VEC 0x50
#define ARITH_FLAGS 0x8d5ull /* OF SF ZF AF PF CF */
#define FL_CF 1ull
#define FL_IF 0x200ull
#define FL_DF 0x400ull

struct st {
    uint64_t rax, rbx, rcx, rdi, r9, r10, fl;
};

/* Runs INSN with the registers of s (flags in s->fl, IF=0) and stores them back with the flags. */
#define RUN(insn, s)                                                                      \
    do {                                                                                  \
        register uint64_t r9_ asm("r9") = (s)->r9;                                        \
        register uint64_t r10_ asm("r10") = (s)->r10;                                     \
        asm volatile("push %%rdx; popfq\n\t" insn "\n\tpushfq; pop %%rdx; cld"            \
                     : "+a"((s)->rax), "+b"((s)->rbx), "+c"((s)->rcx), "+D"((s)->rdi),    \
                       "+d"((s)->fl), "+r"(r9_), "+r"(r10_)                               \
                     :                                                                    \
                     : "memory", "cc");                                                   \
        (s)->r9 = r9_;                                                                    \
        (s)->r10 = r10_;                                                                  \
    } while (0)

static uint32_t rd(uint32_t reg)
{
    return *(volatile uint32_t *)(uintptr_t)(APIC + reg);
}

static void wr(uint32_t reg, uint32_t v)
{
    *(volatile uint32_t *)(uintptr_t)(APIC + reg) = v;
}

/* ---- plain stores to the TPR (bits 7:0 writable) ---------------------------------------------- */

#define TPR_STORE(name, insn, init)                                                       \
    do {                                                                                  \
        struct st s = init;                                                               \
        wr(APIC_TPR, 0x11);                                                               \
        test_begin("tpr-" name);                                                          \
        RUN(insn, &s);                                                                    \
        test_check(rd(APIC_TPR) == 0xa5, "TPR 0x%x, expected 0xa5", rd(APIC_TPR));        \
        check_regs(&s);                                                                   \
        test_end();                                                                       \
    } while (0)

static struct st expect;
static bool expect_set;

static void check_regs(const struct st *s)
{
    if (!expect_set)
        return;
    test_check(s->rax == expect.rax && s->rcx == expect.rcx && s->rdi == expect.rdi,
               "rax 0x%llx rcx 0x%llx rdi 0x%llx, expected 0x%llx 0x%llx 0x%llx", (unsigned long long)s->rax,
               (unsigned long long)s->rcx, (unsigned long long)s->rdi, (unsigned long long)expect.rax,
               (unsigned long long)expect.rcx, (unsigned long long)expect.rdi);
    expect_set = false;
}

static void want(uint64_t rax, uint64_t rcx, uint64_t rdi)
{
    expect = (struct st){ .rax = rax, .rcx = rcx, .rdi = rdi };
    expect_set = true;
}

static void tpr_stores(void)
{
    const uint64_t T = APIC + APIC_TPR;

    TPR_STORE("mov-89", "mov %%eax, (%%rbx)" /* 89 03 */, ((struct st){ .rax = 0xa5, .rbx = T }));
    TPR_STORE("mov-89-disp32", "mov %%eax, 0x80(%%rbx)" /* 89 83 80 00 00 00 */,
              ((struct st){ .rax = 0xffffffa5, .rbx = APIC }));
    TPR_STORE("mov-89-sib-disp8", "mov %%eax, 0x40(%%rbx,%%rcx,4)" /* 89 44 8b 40 */,
              ((struct st){ .rax = 0xa5, .rbx = APIC, .rcx = 0x10 }));
    TPR_STORE("mov-89-rex-b", "mov %%r9d, (%%r10)" /* 45 89 0a */,
              ((struct st){ .r9 = 0xa5, .r10 = T }));
    TPR_STORE("mov-89-rex-rx", "mov %%r9d, (%%rbx,%%r10,2)" /* 46 89 0c 53 */,
              ((struct st){ .r9 = 0x1234a5, .rbx = APIC, .r10 = 0x40 }));
    TPR_STORE("mov-89-ss", "mov %%eax, %%ss:(%%rbx)" /* 36 89 03 */, ((struct st){ .rax = 0xa5, .rbx = T }));
    TPR_STORE("mov-89-addr32", "addr32 mov %%eax, (%%ebx)" /* 67 89 03 */,
              ((struct st){ .rax = 0xa5, .rbx = T }));
    TPR_STORE("mov-a3-moffs64", "movabs %%eax, 0xfee00080" /* a3 80 00 e0 fe 00 00 00 00 */,
              ((struct st){ .rax = 0xa5 }));
    TPR_STORE("mov-a3-moffs32", "addr32 movabs %%eax, 0xfee00080" /* 67 a3 80 00 e0 fe */,
              ((struct st){ .rax = 0xa5 }));
    TPR_STORE("mov-c7", "movl $0xa5, (%%rbx)" /* c7 03 a5 00 00 00 */, ((struct st){ .rbx = T }));
    TPR_STORE("mov-c7-disp32", "movl $0x777777a5, 0x80(%%rbx)" /* c7 83 80 00 00 00 a5 77 77 77 */,
              ((struct st){ .rbx = APIC }));
    TPR_STORE("movnti", "movnti %%eax, (%%rbx)" /* 0f c3 03 */, ((struct st){ .rax = 0xa5, .rbx = T }));
    TPR_STORE("movnti-rex", "movnti %%r9d, (%%r10)" /* 45 0f c3 0a */, ((struct st){ .r9 = 0xa5, .r10 = T }));

    want(0x11, 0, 0);
    TPR_STORE("xchg-87", "xchg %%eax, (%%rbx)" /* 87 03 */,
              ((struct st){ .rax = 0xffffffff000000a5ull, .rbx = T }));
    want(0x11, 0, 0);
    TPR_STORE("xchg-87-lock", "lock xchg %%eax, (%%rbx)" /* f0 87 03 */,
              ((struct st){ .rax = 0xa5, .rbx = T }));
    want(0xa5, 0, T + 4);
    TPR_STORE("stos-ab", "stosl" /* ab */, ((struct st){ .rax = 0xa5, .rdi = T }));
    want(0xa5, 0, T + 4);
    TPR_STORE("rep-stos-ab", "rep stosl" /* f3 ab */, ((struct st){ .rax = 0xa5, .rcx = 1, .rdi = T }));
    want(0xa5, 0, T - 4);
    TPR_STORE("rep-stos-ab-df", "rep stosl" /* f3 ab, DF=1 */,
              ((struct st){ .rax = 0xa5, .rcx = 1, .rdi = T, .fl = FL_DF }));
    want(0xa5, 0, T + 4); /* ECX and EDI written as 32-bit registers: zero-extended */
    TPR_STORE("rep-stos-ab-addr32", "addr32 rep stosl" /* 67 f3 ab: ECX and EDI */,
              ((struct st){ .rax = 0xa5, .rcx = 0xffffffff00000001ull, .rdi = 0xabcd000000000000ull | T }));
    wr(APIC_TPR, 0);
}

/* ---- 32-bit code: compatibility mode (CS 0x08, D=1), so the instruction decodes as 32-bit ------- */

/* A stub of 32-bit code: INSN, then a far return to the 64-bit caller. */
#define STUB32(name, insn) \
    extern char name[];    \
    asm(".text\n.code32\n" #name ":\n\t" insn "\n\tlret\n.code64\n")

STUB32(c32_a3, "movl %eax, 0xfee00080");                 /* a3 80 00 e0 fe: moffs32 */
STUB32(c32_89, "movl %ecx, 0xfee00080");                 /* 89 0d 80 00 e0 fe */
STUB32(c32_c7, "movl $0xa5, 0x80(%ebx)");                /* c7 83 80 00 00 00 a5 00 00 00 */
STUB32(c32_stos, "stosl");                               /* ab: EDI */
STUB32(c32_xchg, "xchgl %eax, (%ebx)");                  /* 87 03 */
STUB32(c32_lock_or, "lock orl $0xa0, (%ebx)");           /* f0 81 0b a0 00 00 00 */

struct far32 {
    uint32_t offset;
    uint16_t selector;
} __attribute__((packed));

/* As RUN, through a far call into a 32-bit stub; the far return leaves RFLAGS as INSN left them. */
#define RUN32(stub, s)                                                                    \
    do {                                                                                  \
        struct far32 fp = { (uint32_t)(uintptr_t)(stub), 0x08 };                          \
        asm volatile("push %%rdx; popfq\n\tlcall *(%[fp])\n\tpushfq; pop %%rdx; cld"      \
                     : "+a"((s)->rax), "+b"((s)->rbx), "+c"((s)->rcx), "+D"((s)->rdi),    \
                       "+d"((s)->fl)                                                      \
                     : [fp] "r"(&fp)                                                      \
                     : "memory", "cc");                                                   \
    } while (0)

#define TPR_STORE32(name, stub, init, want_tpr)                                           \
    do {                                                                                  \
        struct st s = init;                                                               \
        wr(APIC_TPR, 0x11);                                                               \
        test_begin("c32-tpr-" name);                                                      \
        RUN32(stub, &s);                                                                  \
        test_check(rd(APIC_TPR) == (want_tpr), "TPR 0x%x, expected 0x%x", rd(APIC_TPR),   \
                   (uint32_t)(want_tpr));                                                 \
        check_regs32(&s);                                                                 \
        test_end();                                                                       \
    } while (0)

/* The low halves only: 64-bit registers' upper halves are undefined after compatibility mode. */
static void check_regs32(const struct st *s)
{
    if (!expect_set)
        return;
    test_check((uint32_t)s->rax == (uint32_t)expect.rax && (uint32_t)s->rdi == (uint32_t)expect.rdi,
               "eax 0x%x edi 0x%x, expected 0x%x 0x%x", (uint32_t)s->rax, (uint32_t)s->rdi,
               (uint32_t)expect.rax, (uint32_t)expect.rdi);
    expect_set = false;
}

static void compat_stores(void)
{
    const uint64_t T = APIC + APIC_TPR;

    TPR_STORE32("mov-a3-moffs32", c32_a3, ((struct st){ .rax = 0xa5 }), 0xa5);
    TPR_STORE32("mov-89-disp32", c32_89, ((struct st){ .rcx = 0xa5 }), 0xa5);
    TPR_STORE32("mov-c7", c32_c7, ((struct st){ .rbx = APIC }), 0xa5);
    want(0xa5, 0, T + 4);
    TPR_STORE32("stos-ab", c32_stos, ((struct st){ .rax = 0xa5, .rdi = T }), 0xa5);
    want(0x11, 0, 0);
    TPR_STORE32("xchg-87", c32_xchg, ((struct st){ .rax = 0xa5, .rbx = T }), 0xa5);
    TPR_STORE32("lock-or-81", c32_lock_or, ((struct st){ .rbx = T }), 0xb1);
    wr(APIC_TPR, 0);
}

/* ---- read-modify-write ALU forms: the TPR against RAM ------------------------------------------ */

static uint32_t ram[8];

/* INSN runs on the TPR (rbx = its address) and on ram[0] with TPR = ram[0] = x, eax = y, flags fl. */
#define ALU(name, insn, x, y, fl_in)                                                      \
    do {                                                                                  \
        struct st a = { .rax = (y), .rbx = APIC + APIC_TPR, .fl = (fl_in) };              \
        struct st b = { .rax = (y), .rbx = (uintptr_t)&ram[0], .fl = (fl_in) };           \
        wr(APIC_TPR, (x));                                                                \
        ram[0] = (x);                                                                     \
        test_begin("alu-" name);                                                          \
        RUN(insn, &a);                                                                    \
        RUN(insn, &b);                                                                    \
        alu_check(&a, &b);                                                                \
        test_end();                                                                       \
    } while (0)

static void alu_check(const struct st *a, const struct st *b)
{
    uint32_t tpr = rd(APIC_TPR);

    test_check(tpr == (ram[0] & 0xff), "TPR 0x%x, expected 0x%x (RAM 0x%x)", tpr, ram[0] & 0xff, ram[0]);
    test_check((a->fl & ARITH_FLAGS) == (b->fl & ARITH_FLAGS), "flags 0x%llx, on RAM 0x%llx",
               (unsigned long long)(a->fl & ARITH_FLAGS), (unsigned long long)(b->fl & ARITH_FLAGS));
    test_check(a->rax == b->rax, "rax 0x%llx, on RAM 0x%llx", (unsigned long long)a->rax,
               (unsigned long long)b->rax);
}

static void alu_forms(void)
{
    ALU("add-01", "add %%eax, (%%rbx)" /* 01 03 */, 0x7f, 0x7fffff90, 0);      /* OF SF */
    ALU("add-01-carry", "add %%eax, (%%rbx)", 0x80, 0xffffff80, 0);            /* CF, low byte 0 */
    ALU("or-09", "or %%eax, (%%rbx)" /* 09 03 */, 0x41, 0x80000002, FL_CF);
    ALU("adc-11", "adc %%eax, (%%rbx)" /* 11 03 */, 0x0f, 0xfffffff0, FL_CF);   /* carry in */
    ALU("sbb-19", "sbb %%eax, (%%rbx)" /* 19 03 */, 0x10, 0x0f, FL_CF);
    ALU("and-21", "and %%eax, (%%rbx)" /* 21 03 */, 0xf0, 0x0f, FL_CF);         /* ZF, CF cleared */
    ALU("sub-29", "sub %%eax, (%%rbx)" /* 29 03 */, 0x10, 0x11, 0);             /* borrow */
    ALU("xor-31", "xor %%eax, (%%rbx)" /* 31 03 */, 0x5a, 0xff, 0);
    ALU("lock-or-09", "lock or %%eax, (%%rbx)" /* f0 09 03 */, 0x01, 0x30, 0);
    ALU("add-81", "addl $0x7fffff90, (%%rbx)" /* 81 03 90 ff ff 7f */, 0x7f, 0, 0);
    ALU("sub-81", "subl $0x80000000, (%%rbx)" /* 81 2b 00 00 00 80 */, 0x01, 0, 0);
    ALU("and-81", "andl $0x3c, (%%rbx)" /* 81 23 3c 00 00 00 */, 0x77, 0, 0);
    ALU("or-83", "orl $0x10, (%%rbx)" /* 83 0b 10 */, 0x22, 0, 0);
    ALU("and-83-sx", "andl $-16, (%%rbx)" /* 83 23 f0 */, 0x9b, 0, 0);
    ALU("sub-83", "subl $1, (%%rbx)" /* 83 2b 01 */, 0x00, 0, 0);
    ALU("adc-83", "adcl $0x7f, (%%rbx)" /* 83 13 7f */, 0x80, 0, FL_CF);
    ALU("sbb-83", "sbbl $-1, (%%rbx)" /* 83 1b ff */, 0x80, 0, FL_CF);
    ALU("xor-83", "xorl $0x7f, (%%rbx)" /* 83 33 7f */, 0x7f, 0, 0);
    ALU("lock-add-83", "lock addl $8, (%%rbx)" /* f0 83 03 08 */, 0xf8, 0, 0);
    ALU("inc-ff", "incl (%%rbx)" /* ff 03 */, 0x0f, 0, FL_CF);                 /* AF, CF kept */
    ALU("dec-ff", "decl (%%rbx)" /* ff 0b */, 0x00, 0, 0);
    ALU("lock-dec-ff", "lock decl (%%rbx)" /* f0 ff 0b */, 0x01, 0, FL_CF);
    ALU("not-f7", "notl (%%rbx)" /* f7 13 */, 0x3c, 0, FL_CF);
    ALU("neg-f7", "negl (%%rbx)" /* f7 1b */, 0x01, 0, 0);
    ALU("neg-f7-zero", "negl (%%rbx)", 0x00, 0, FL_CF);
    ALU("bts-0fab", "bts %%eax, (%%rbx)" /* 0f ab 03 */, 0x04, 3, 0);
    ALU("bts-0fab-set", "bts %%eax, (%%rbx)", 0x08, 3, FL_CF);                 /* already set: CF */
    ALU("btr-0fb3", "btr %%eax, (%%rbx)" /* 0f b3 03 */, 0x84, 7, 0);
    ALU("btc-0fbb", "btc %%eax, (%%rbx)" /* 0f bb 03 */, 0x84, 2, FL_CF);
    ALU("bts-0fba", "btsl $5, (%%rbx)" /* 0f ba 2b 05 */, 0x00, 0, 0);
    ALU("btr-0fba", "btrl $6, (%%rbx)" /* 0f ba 33 06 */, 0x40, 0, 0);
    ALU("btc-0fba", "btcl $0x27, (%%rbx)" /* 0f ba 3b 27: bit 7 (offset mod 32) */, 0x80, 0, 0);
    ALU("lock-bts-0fba", "lock btsl $1, (%%rbx)" /* f0 0f ba 2b 01 */, 0x02, 0, FL_CF);
    wr(APIC_TPR, 0);
}

/* BTS with a register bit offset addresses the dword EA + 4 * (offset >> 5) (SDM Vol. 2, BT): the
 * store lands on the TPR although rbx points 16 bytes below it. */
static void bts_far(void)
{
    struct st a = { .rax = 4 * 32 + 6, .rbx = APIC + APIC_TPR - 16 };
    struct st b = { .rax = 4 * 32 + 6, .rbx = (uintptr_t)&ram[0] };

    wr(APIC_TPR, 0x01);
    memset(ram, 0, sizeof(ram));
    ram[4] = 0x01;
    test_begin("alu-bts-0fab-far");
    RUN("bts %%eax, (%%rbx)", &a);
    RUN("bts %%eax, (%%rbx)", &b);
    test_check(rd(APIC_TPR) == 0x41 && ram[4] == 0x41, "TPR 0x%x, RAM 0x%x, expected 0x41", rd(APIC_TPR), ram[4]);
    test_check((a.fl & FL_CF) == (b.fl & FL_CF), "CF %llu, on RAM %llu", (unsigned long long)(a.fl & FL_CF),
               (unsigned long long)(b.fl & FL_CF));
    test_end();
    wr(APIC_TPR, 0);
}

/* ---- the LVT timer (masked; vector bits 7:0 and the mask bit 16 writable) ----------------------- */

#define LVT(name, insn, x, y, expect_v)                                                   \
    do {                                                                                  \
        struct st a = { .rax = (y), .rbx = APIC + APIC_LVT_TIMER };                       \
        wr(APIC_LVT_TIMER, (x));                                                          \
        test_begin("lvt-" name);                                                          \
        RUN(insn, &a);                                                                    \
        test_check(rd(APIC_LVT_TIMER) == (expect_v), "LVT timer 0x%x, expected 0x%x",     \
                   rd(APIC_LVT_TIMER), (uint32_t)(expect_v));                             \
        test_end();                                                                       \
    } while (0)

static void lvt_forms(void)
{
    LVT("or", "orl $0xc0, (%%rbx)", 0x10030, 0, 0x100f0);
    LVT("and", "and %%eax, (%%rbx)", 0x100f3, 0xffffff3f, 0x10033);
    LVT("xor", "xorl $0x11, (%%rbx)", 0x10044, 0, 0x10055);
    LVT("bts", "btsl $7, (%%rbx)", 0x10031, 0, 0x100b1);
    LVT("btr", "btr %%eax, (%%rbx)", 0x100f1, 4, 0x100e1);
    LVT("btc", "btcl $6, (%%rbx)", 0x10031, 0, 0x10071);
    LVT("mov-a3", "movabs %%eax, 0xfee00320", 0x10031, 0x100e2, 0x100e2);
    wr(APIC_LVT_TIMER, 0x10000);
}

/* ---- a fixed self-IPI through the ICR with each store form ------------------------------------ */

#define ICR_LO_VALUE (APIC_DM_FIXED | APIC_SH_NONE | VEC)

static uint32_t ipi_before;

static void ipi_wait(void)
{
    struct cpu *c = this_cpu();

    test_check(rd(APIC_ICR_HI) >> 24 == apic_id(), "ICR destination 0x%x, expected 0x%x", rd(APIC_ICR_HI) >> 24,
               apic_id());
    sti();
    wait_u32_eq(&c->irq_count[VEC], ipi_before + 1, 100);
    udelay(500);
    cli();
    test_check(c->irq_count[VEC] == ipi_before + 1, "%u interrupts, expected 1", c->irq_count[VEC] - ipi_before);
    test_end();
}

static void icr_forms(void)
{
    const uint64_t I = APIC + APIC_ICR_LO;
    struct st s;

#define SEND(name, insn, ...)                                                             \
    do {                                                                                  \
        struct st d = { .rax = (uint64_t)apic_id() << 24 };                               \
        test_begin("icr-" name);                                                          \
        RUN("movabs %%eax, 0xfee00310" /* a3 10 03 e0 fe 00 00 00 00 */, &d);             \
        s = (struct st){ __VA_ARGS__ };                                                   \
        ipi_before = this_cpu()->irq_count[VEC];                                          \
        RUN(insn, &s);                                                                    \
        ipi_wait();                                                                       \
    } while (0)

    SEND("mov-a3-moffs64", "movabs %%eax, 0xfee00300" /* a3 00 03 e0 fe 00 00 00 00 */, .rax = ICR_LO_VALUE);
    SEND("mov-a3-moffs32", "addr32 movabs %%eax, 0xfee00300" /* 67 a3 00 03 e0 fe */, .rax = ICR_LO_VALUE);
    SEND("mov-89", "mov %%eax, (%%rbx)", .rax = ICR_LO_VALUE, .rbx = I);
    SEND("mov-89-rex", "mov %%r9d, (%%r10)", .r9 = ICR_LO_VALUE, .r10 = I);
    SEND("mov-c7", "movl $0x50, (%%rbx)" /* c7 03 50 00 00 00: ICR_LO_VALUE */, .rbx = I);
    SEND("xchg-87", "xchg %%eax, (%%rbx)", .rax = ICR_LO_VALUE, .rbx = I);
    SEND("stos-ab", "stosl", .rax = ICR_LO_VALUE, .rdi = I);
    SEND("rep-stos-ab", "rep stosl", .rax = ICR_LO_VALUE, .rcx = 1, .rdi = I);
    SEND("movnti", "movnti %%eax, (%%rbx)", .rax = ICR_LO_VALUE, .rbx = I);
    /* Read-modify-write: the ICR reads back the vector just sent (delivery status idle), so an OR
     * with 0 sends it again. */
    SEND("or-83-resend", "orl $0, (%%rbx)" /* 83 0b 00 */, .rbx = I);
    SEND("lock-bts-resend", "lock btsl $6, (%%rbx)" /* f0 0f ba 2b 06: bit 6 of 0x50 is set */, .rbx = I);
#undef SEND
}

/* ---- the same on each AP: its own APIC ----------------------------------------------------------- */

static volatile uint32_t ap_seen[MAX_CPUS][4];

static void ap_stores(void *arg)
{
    volatile uint32_t *seen = ap_seen[this_cpu()->idx];
    struct st s = { .rax = 0x40 + this_cpu()->idx, .fl = FL_IF }; /* APs idle with IF=1 */

    (void)arg;
    RUN("movabs %%eax, 0xfee00080", &s);
    seen[0] = rd(APIC_TPR);
    s = (struct st){ .rbx = APIC + APIC_TPR, .fl = FL_IF };
    RUN("lock orl $0x0c, (%%rbx)", &s);
    seen[1] = rd(APIC_TPR);
    s = (struct st){ .rax = 0x7, .rcx = 1, .rdi = APIC + APIC_TPR, .fl = FL_IF };
    RUN("rep stosl", &s);
    seen[2] = rd(APIC_TPR);
    seen[3] = (uint32_t)s.rcx;
    wr(APIC_TPR, 0);
}

static void ap_forms(void)
{
    if (ncpus < 2)
        return;
    test_begin("ap-tpr-forms");
    wr(APIC_TPR, 0x22);
    for (int i = 1; i < ncpus; i++) {
        if (!test_check(smp_call(i, ap_stores, NULL, 1000), "cpu %d did not answer", i))
            continue;
        test_check(ap_seen[i][0] == 0x40u + i && ap_seen[i][1] == ((0x40u + i) | 0xc) &&
                       ap_seen[i][2] == 0x7 && ap_seen[i][3] == 0,
                   "cpu %d: TPR 0x%x 0x%x 0x%x, RCX %u, expected 0x%x 0x%x 0x7, 0", i, ap_seen[i][0],
                   ap_seen[i][1], ap_seen[i][2], ap_seen[i][3], 0x40u + i, (0x40u + i) | 0xc);
    }
    test_check(rd(APIC_TPR) == 0x22, "BSP's TPR 0x%x, expected 0x22 (unchanged)", rd(APIC_TPR));
    wr(APIC_TPR, 0);
    test_end();
}

/* eoibench=N: the cost of an xAPIC EOI write (N of them, nothing in service), as INFO lines only;
 * the runner's APIC bench (tests/runner/apic_bench.py) reads them bare, as L1 and as L2. */
static void bench_eoi(uint64_t n)
{
    uint64_t t0 = rdtsc();
    for (uint64_t i = 0; i < n; i++)
        wr(APIC_EOI, 0);
    uint64_t t1 = rdtsc();
    info("bench: %llu EOI writes, %llu ticks, %llu ticks each", (unsigned long long)n,
         (unsigned long long)(t1 - t0), (unsigned long long)((t1 - t0) / n));
}

void test_main(void)
{
    char arg[24];
    uint64_t n;

    smp_init();
    smp_start_all(0);
    if (apic_x2apic_mode()) {
        info("x2APIC mode: no xAPIC page to store to");
        tests_done();
    }
    if (cmdline_get("eoibench", 0, arg, sizeof(arg)) && parse_u64(arg, NULL, &n) && n) {
        bench_eoi(n);
        tests_done();
    }
    wr(APIC_LVT_TIMER, 0x10000);
    tpr_stores();
    compat_stores();
    alu_forms();
    bts_far();
    lvt_forms();
    icr_forms();
    ap_forms();
    tests_done();
}
