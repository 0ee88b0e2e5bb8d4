/* lib.h - the guest test-kernel library (64-bit, freestanding).
 *
 * A test kernel is one C file that includes this header and defines
 *     void test_main(void);
 * The library boots (multiboot v1, long mode, identity map of the first 4 GiB), sets up serial,
 * the IDT, the local APIC of the BSP, then calls test_main() on the BSP and finally prints
 * "TESTS DONE: <n> passed, <m> failed" and powers off.
 *
 * Output protocol (COM1 unless the command line says serial=0xPORT):
 *     TEST <name>: PASS
 *     TEST <name>: FAIL <reason>
 *     TEST <name>: SKIP   (only when the command line asks: skip=<name>[,<name>...])
 *     INFO ...            (informational, not compared between bare and virtualised runs)
 *     TESTS DONE: <n> passed, <m> failed
 */
#ifndef GUEST_LIB_H
#define GUEST_LIB_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "defs.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define PRINTF_FMT(f, a) __attribute__((format(printf, f, a)))
#define NORETURN __attribute__((noreturn))

/* Exception vectors. */
enum {
    EXC_DE = 0, EXC_DB = 1, EXC_NMI = 2, EXC_BP = 3, EXC_OF = 4, EXC_BR = 5, EXC_UD = 6, EXC_NM = 7,
    EXC_DF = 8, EXC_TS = 10, EXC_NP = 11, EXC_SS = 12, EXC_GP = 13, EXC_PF = 14, EXC_MF = 16,
    EXC_AC = 17, EXC_MC = 18, EXC_XM = 19, EXC_VE = 20, EXC_CP = 21,
};
#define NO_EXCEPTION (-1)

/* ---------------------------------------------------------------------------------------------
 * Basic instructions
 */
static inline void outb(uint16_t port, uint8_t v) { asm volatile("outb %0, %1" : : "a"(v), "Nd"(port)); }
static inline void outw(uint16_t port, uint16_t v) { asm volatile("outw %0, %1" : : "a"(v), "Nd"(port)); }
static inline void outl(uint16_t port, uint32_t v) { asm volatile("outl %0, %1" : : "a"(v), "Nd"(port)); }
static inline uint8_t inb(uint16_t port) { uint8_t v; asm volatile("inb %1, %0" : "=a"(v) : "Nd"(port)); return v; }
static inline uint16_t inw(uint16_t port) { uint16_t v; asm volatile("inw %1, %0" : "=a"(v) : "Nd"(port)); return v; }
static inline uint32_t inl(uint16_t port) { uint32_t v; asm volatile("inl %1, %0" : "=a"(v) : "Nd"(port)); return v; }

/* A pointer to a physical (= virtual, identity map) address. The empty asm hides the constant
 * from GCC, which otherwise warns about dereferencing small addresses (-Warray-bounds). */
static inline void *phys(uint64_t a)
{
    void *p;
    asm("" : "=r"(p) : "0"(a));
    return p;
}

static inline void cpu_relax(void) { asm volatile("pause" ::: "memory"); }
static inline void barrier(void) { asm volatile("" ::: "memory"); }
static inline void cli(void) { asm volatile("cli" ::: "memory"); }
static inline void sti(void) { asm volatile("sti" ::: "memory"); }

static inline uint64_t read_flags(void)
{
    uint64_t f;
    asm volatile("pushfq; popq %0" : "=r"(f) :: "memory");
    return f;
}

struct cpuid_regs { uint32_t a, b, c, d; };

static inline struct cpuid_regs cpuid2(uint32_t leaf, uint32_t subleaf)
{
    struct cpuid_regs r;
    asm volatile("cpuid" : "=a"(r.a), "=b"(r.b), "=c"(r.c), "=d"(r.d) : "a"(leaf), "c"(subleaf));
    return r;
}
static inline struct cpuid_regs cpuid(uint32_t leaf) { return cpuid2(leaf, 0); }

static inline uint64_t rdmsr(uint32_t msr)
{
    uint32_t lo, hi;
    asm volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr) : "memory");
    return ((uint64_t)hi << 32) | lo;
}
static inline void wrmsr(uint32_t msr, uint64_t v)
{
    asm volatile("wrmsr" : : "c"(msr), "a"((uint32_t)v), "d"((uint32_t)(v >> 32)) : "memory");
}
static inline uint64_t rdtsc(void)
{
    uint32_t lo, hi;
    asm volatile("rdtsc" : "=a"(lo), "=d"(hi) :: "memory");
    return ((uint64_t)hi << 32) | lo;
}

#define DEFINE_CR(n)                                                                             \
    static inline uint64_t read_cr##n(void)                                                      \
    { uint64_t v; asm volatile("mov %%cr" #n ", %0" : "=r"(v) :: "memory"); return v; }         \
    static inline void write_cr##n(uint64_t v)                                                   \
    { asm volatile("mov %0, %%cr" #n : : "r"(v) : "memory"); }
DEFINE_CR(0)
DEFINE_CR(2)
DEFINE_CR(3)
DEFINE_CR(4)
DEFINE_CR(8)
#undef DEFINE_CR

static inline void invlpg(uint64_t va) { asm volatile("invlpg (%0)" : : "r"(va) : "memory"); }

/* MSRs and bits used by the library and the kernels. */
#define MSR_IA32_TSC            0x10
#define MSR_IA32_APIC_BASE      0x1b
#define MSR_IA32_SYSENTER_CS    0x174
#define MSR_IA32_SYSENTER_ESP   0x175
#define MSR_IA32_SYSENTER_EIP   0x176
#define MSR_IA32_MTRRCAP        0xfe
#define MSR_IA32_PAT            0x277
#define MSR_EFER                0xc0000080
#define MSR_FS_BASE             0xc0000100
#define MSR_GS_BASE             0xc0000101
#define MSR_KERNEL_GS_BASE      0xc0000102
#define MSR_TSC_AUX             0xc0000103
#define APIC_BASE_BSP           (1ull << 8)
#define APIC_BASE_EXTD          (1ull << 10)
#define APIC_BASE_EN            (1ull << 11)
#define EFER_SCE                (1ull << 0)
#define EFER_LME                (1ull << 8)
#define EFER_LMA                (1ull << 10)
#define EFER_NXE                (1ull << 11)

#define CR0_PE  (1ull << 0)
#define CR0_MP  (1ull << 1)
#define CR0_ET  (1ull << 4)
#define CR0_NE  (1ull << 5)
#define CR0_WP  (1ull << 16)
#define CR0_NW  (1ull << 29)
#define CR0_CD  (1ull << 30)
#define CR0_PG  (1ull << 31)
#define CR4_DE          (1ull << 3)
#define CR4_PAE         (1ull << 5)
#define CR4_PGE         (1ull << 7)
#define CR4_OSFXSR      (1ull << 9)
#define CR4_OSXMMEXCPT  (1ull << 10)
#define CR4_UMIP        (1ull << 11)
#define CR4_VMXE        (1ull << 13)
#define CR4_FSGSBASE    (1ull << 16)
#define CR4_OSXSAVE     (1ull << 18)
#define CR4_SMEP        (1ull << 20)
#define CR4_SMAP        (1ull << 21)
#define CR4_PKE         (1ull << 22)

/* ---------------------------------------------------------------------------------------------
 * Per-CPU data (reached through the GS base, set by the library on every CPU)
 */
struct regs {
    uint64_t r15, r14, r13, r12, r11, r10, r9, r8, rbp, rdi, rsi, rdx, rcx, rbx, rax;
    uint64_t vector, error;
    uint64_t rip, cs, rflags, rsp, ss;    /* hardware interrupt frame */
};

struct cpu;
typedef void (*nmi_hook_t)(struct cpu *c, struct regs *r);
typedef void (*irq_handler_t)(struct regs *r);

struct cpu {
    struct cpu *self;                 /* CPU_OFF_SELF */
    uint64_t catch_rsp;               /* CPU_OFF_CATCH_RSP: catch_exception() resume stack */
    volatile int32_t fault_vector;    /* CPU_OFF_FAULT_VEC: vector caught by a fixup, or -1 */
    volatile int32_t catch_armed;     /* CPU_OFF_CATCH_ARMED */
    volatile uint64_t fault_error;    /* error code of the caught exception (0 if none) */
    volatile uint64_t fault_rip;      /* RIP of the caught exception */
    volatile uint64_t fault_cr2;      /* CR2 when the caught exception was a #PF */
    int idx;                          /* 0 = BSP */
    uint32_t apic_id;
    volatile uint32_t nmi_count;      /* NMIs taken on this CPU */
    volatile uint32_t in_nmi;         /* inside the NMI handler */
    volatile uint32_t nmi_nested;     /* NMI handler entered while already in it */
    nmi_hook_t volatile nmi_hook;     /* called (after counting) from the NMI handler */
    volatile uint32_t irq_count[256]; /* external interrupts per vector */
    /* smp_call mailbox */
    void (*volatile call_fn)(void *);
    void *volatile call_arg;
    volatile uint32_t call_seq, done_seq;
    volatile uint32_t online;         /* set by the AP at the end of its start-up */
    volatile uint32_t boot_count;     /* times this AP went through start-up */
    uint32_t x2apic;                  /* this CPU's local APIC is in x2APIC mode */
};
_Static_assert(__builtin_offsetof(struct cpu, self) == CPU_OFF_SELF, "cpu layout");
_Static_assert(__builtin_offsetof(struct cpu, catch_rsp) == CPU_OFF_CATCH_RSP, "cpu layout");
_Static_assert(__builtin_offsetof(struct cpu, fault_vector) == CPU_OFF_FAULT_VEC, "cpu layout");
_Static_assert(__builtin_offsetof(struct cpu, catch_armed) == CPU_OFF_CATCH_ARMED, "cpu layout");

extern struct cpu cpus[MAX_CPUS];

static inline struct cpu *this_cpu(void)
{
    struct cpu *c;
    asm volatile("movq %%gs:0, %0" : "=r"(c));
    return c;
}

/* ---------------------------------------------------------------------------------------------
 * Spinlocks
 */
typedef struct { volatile uint32_t v; volatile int32_t owner; } spinlock_t;
#define SPINLOCK_INIT { 0, -1 }

static inline bool spin_trylock(spinlock_t *l)
{
    return __atomic_exchange_n(&l->v, 1, __ATOMIC_ACQUIRE) == 0;
}
static inline void spin_lock(spinlock_t *l)
{
    while (!spin_trylock(l))
        while (l->v)
            cpu_relax();
    l->owner = this_cpu()->idx;
}
static inline void spin_unlock(spinlock_t *l)
{
    l->owner = -1;
    __atomic_store_n(&l->v, 0, __ATOMIC_RELEASE);
}

/* ---------------------------------------------------------------------------------------------
 * Expected exceptions
 *
 * The *_safe() helpers run one instruction under an exception-table fixup: when it faults, the
 * handler records the vector and resumes after the instruction. They return the vector caught
 * or NO_EXCEPTION (-1); this_cpu()->fault_error holds the error code.
 * catch_exception(fn, arg) runs fn(arg); if any exception is raised inside it, the handler
 * unwinds to catch_exception(), which returns the vector (else NO_EXCEPTION). No nesting.
 */
#define EXTABLE_ENTRY(from, to) \
    ".pushsection .extable, \"a\"\n\t.balign 8\n\t.quad " #from ", " #to "\n\t.popsection\n\t"

static inline int fault_begin(void)
{
    struct cpu *c = this_cpu();
    c->fault_vector = NO_EXCEPTION;
    c->fault_error = 0;
    return 0;
}
static inline int fault_result(void) { barrier(); return this_cpu()->fault_vector; }

static inline int rdmsr_safe(uint32_t msr, uint64_t *val)
{
    uint32_t lo = 0, hi = 0;
    fault_begin();
    asm volatile("1: rdmsr\n2:\n\t" EXTABLE_ENTRY(1b, 2b) : "+a"(lo), "+d"(hi) : "c"(msr) : "memory");
    *val = ((uint64_t)hi << 32) | lo;
    return fault_result();
}
static inline int wrmsr_safe(uint32_t msr, uint64_t v)
{
    fault_begin();
    asm volatile("1: wrmsr\n2:\n\t" EXTABLE_ENTRY(1b, 2b)
                 : : "c"(msr), "a"((uint32_t)v), "d"((uint32_t)(v >> 32)) : "memory");
    return fault_result();
}
#define DEFINE_CR_SAFE(n)                                                                        \
    static inline int write_cr##n##_safe(uint64_t v)                                             \
    {                                                                                            \
        fault_begin();                                                                           \
        asm volatile("1: mov %0, %%cr" #n "\n2:\n\t" EXTABLE_ENTRY(1b, 2b) : : "r"(v) : "memory"); \
        return fault_result();                                                                   \
    }
DEFINE_CR_SAFE(0)
DEFINE_CR_SAFE(3)
DEFINE_CR_SAFE(4)
DEFINE_CR_SAFE(8)
#undef DEFINE_CR_SAFE

static inline int xgetbv_safe(uint32_t idx, uint64_t *val)
{
    uint32_t lo = 0, hi = 0;
    fault_begin();
    asm volatile("1: xgetbv\n2:\n\t" EXTABLE_ENTRY(1b, 2b) : "+a"(lo), "+d"(hi) : "c"(idx) : "memory");
    *val = ((uint64_t)hi << 32) | lo;
    return fault_result();
}
static inline int xsetbv_safe(uint32_t idx, uint64_t v)
{
    fault_begin();
    asm volatile("1: xsetbv\n2:\n\t" EXTABLE_ENTRY(1b, 2b)
                 : : "c"(idx), "a"((uint32_t)v), "d"((uint32_t)(v >> 32)) : "memory");
    return fault_result();
}
static inline int ud2_safe(void)
{
    fault_begin();
    asm volatile("1: ud2\n2:\n\t" EXTABLE_ENTRY(1b, 2b) ::: "memory");
    return fault_result();
}
/* 32-bit store that may fault (e.g. #PF on a read-only page). */
static inline int write32_safe(volatile uint32_t *p, uint32_t v)
{
    fault_begin();
    asm volatile("1: movl %1, (%0)\n2:\n\t" EXTABLE_ENTRY(1b, 2b) : : "r"(p), "r"(v) : "memory");
    return fault_result();
}

int catch_exception(void (*fn)(void *), void *arg);
/* true when fn(arg) raised exactly `vector` */
static inline bool expect_exception(int vector, void (*fn)(void *), void *arg)
{
    return catch_exception(fn, arg) == vector;
}
const char *exception_name(int vector);    /* "#GP", "#UD", ... or "none" for -1 */

void set_irq_handler(int vector, irq_handler_t h);

/* ---------------------------------------------------------------------------------------------
 * Output and the test-result API (BSP only, except printf/info which any CPU may use; never call
 * them from an NMI handler)
 */
int vsnprintf(char *buf, size_t size, const char *fmt, va_list ap);
int snprintf(char *buf, size_t size, const char *fmt, ...) PRINTF_FMT(3, 4);
void printf(const char *fmt, ...) PRINTF_FMT(1, 2);
void info(const char *fmt, ...) PRINTF_FMT(1, 2);         /* "INFO <text>\n" */

/* Starts a test; the name may be formatted. Returns false (after printing "TEST <name>: SKIP")
 * when the command line has skip=<name>; test_check/test_end are then no-ops, and a test whose
 * body could crash the kernel on a broken platform should not run it. */
bool test_begin(const char *fmt, ...) PRINTF_FMT(1, 2);
bool test_check(bool cond, const char *fmt, ...) PRINTF_FMT(2, 3);
bool test_end(void);                                       /* prints PASS/FAIL, returns pass */
NORETURN void tests_done(void);                            /* summary line, then power off */
NORETURN void panic(const char *fmt, ...) PRINTF_FMT(1, 2);
NORETURN void poweroff(void);

void serial_init(uint16_t port);
void serial_putc(char c);
void serial_flush(void);

void *memset(void *d, int c, size_t n);
void *memcpy(void *d, const void *s, size_t n);
void *memmove(void *d, const void *s, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
int strncmp(const char *a, const char *b, size_t n);

/* ---------------------------------------------------------------------------------------------
 * Multiboot information (copied at boot) and command line
 */
struct mmap_entry { uint64_t base, len; uint32_t type; };
#define MMAP_MAX 128
extern struct mmap_entry boot_mmap[MMAP_MAX];
extern int boot_mmap_count;          /* -1 when GRUB gave no map */
extern uint32_t boot_mem_lower, boot_mem_upper;   /* KiB; valid when boot_mem_valid */
extern bool boot_mem_valid;
extern char boot_cmdline[1024];
extern uint32_t boot_mb_magic;

/* Value of the n-th (0-based) `key=value` word on the command line, copied into buf;
 * false when absent. */
bool cmdline_get(const char *key, int n, char *buf, size_t size);
bool parse_u64(const char *s, const char **end, uint64_t *v);    /* 0x.. hex or decimal */
/* First reserved E820 entry between two usable ones above 1 MiB (XMHF's region), 0 if none. */
uint64_t e820_reserved_hole(void);

/* ---------------------------------------------------------------------------------------------
 * Paging: the library identity-maps 0..4 GiB with 2 MiB pages. The 1 GiB at 4 GiB
 * (ALIAS_BASE) is free for tests: map_alias_2m() maps one 2 MiB page there.
 */
#define ALIAS_BASE 0x100000000ull
#define PTE_P   (1ull << 0)
#define PTE_W   (1ull << 1)
#define PTE_U   (1ull << 2)
#define PTE_PS  (1ull << 7)
void map_alias_2m(uint64_t va, uint64_t pa, uint64_t flags);

/* ---------------------------------------------------------------------------------------------
 * Local APIC (xAPIC MMIO or x2APIC MSRs, whichever mode this CPU is in)
 */
#define APIC_ID         0x20
#define APIC_VERSION    0x30
#define APIC_TPR        0x80
#define APIC_EOI        0xb0
#define APIC_SVR        0xf0
#define APIC_ESR        0x280
#define APIC_ICR_LO     0x300
#define APIC_ICR_HI     0x310
#define APIC_LVT_TIMER  0x320
#define APIC_LVT_LINT0  0x350
#define APIC_LVT_LINT1  0x360

#define APIC_DM_FIXED   0x000
#define APIC_DM_NMI     0x400
#define APIC_DM_INIT    0x500
#define APIC_DM_SIPI    0x600
#define APIC_ICR_BUSY   0x1000
#define APIC_LEVEL_ASSERT 0x4000
#define APIC_SH_NONE    0x00000
#define APIC_SH_SELF    0x40000
#define APIC_SH_ALL     0x80000
#define APIC_SH_OTHERS  0xc0000

#define SPURIOUS_VECTOR 0xff

bool apic_x2apic_mode(void);
uint32_t apic_read(uint32_t reg);
void apic_write(uint32_t reg, uint32_t val);
uint32_t apic_id(void);                          /* this CPU's APIC ID (8 bits in xAPIC mode) */
void apic_eoi(void);
/* Send an IPI: icr_lo = delivery mode | shorthand | level | vector; dest = APIC ID
 * (ignored with a shorthand). Waits for the xAPIC ICR to be idle. */
void apic_send_ipi(uint32_t dest, uint32_t icr_lo);
static inline void apic_send_nmi(uint32_t dest) { apic_send_ipi(dest, APIC_DM_NMI | APIC_LEVEL_ASSERT); }
void apic_send_self_fixed(uint8_t vector);      /* x2APIC SELF IPI MSR or the self shorthand */
void apic_cpu_init(void);                        /* SVR enable; x2APIC if `x2apic=1` */
extern bool want_x2apic;

/* ---------------------------------------------------------------------------------------------
 * ACPI and SMP
 */
extern int ncpus;                       /* CPUs found in the MADT (>= 1; BSP is index 0) */
extern uint32_t cpu_apic_ids[MAX_CPUS];
extern bool madt_found;
extern bool madt_lists_bsp;
void acpi_find_cpus(void);              /* fills ncpus/cpu_apic_ids; called by smp_init() */

#define SMP_TWICE     1u                /* send INIT-SIPI-SIPI twice (as OVMF does) */
#define SMP_SHORTHAND 2u                /* INIT/SIPI to all-excluding-self (smp_start_all only) */
void smp_init(void);                    /* MADT, trampoline; idempotent */
bool smp_start_ap(int idx, unsigned flags);     /* true when the AP came online in time */
bool smp_start_ap_seq(int idx, const char *seq); /* 'I' INIT, 'S' SIPI, e.g. "IS"; no other IPIs */
int smp_start_all(unsigned flags);      /* returns the number of CPUs online, BSP included */
bool smp_wait_online(int idx, uint32_t timeout_ms);
/* Run fn(arg) on CPU idx (an online AP); smp_call waits for it to finish. */
bool smp_call(int idx, void (*fn)(void *), void *arg, uint32_t timeout_ms);
void smp_call_async(int idx, void (*fn)(void *), void *arg);
bool smp_call_wait(int idx, uint32_t timeout_ms);
extern volatile uint32_t ap_online_apic_id[MAX_CPUS];   /* written by each AP when it is up */
extern uint64_t ap_stack_by_apic[256];

/* ---------------------------------------------------------------------------------------------
 * PIT delays (channel 2 gated by port 0x61; BSP only). Emulated time.
 */
void udelay(uint32_t us);
static inline void mdelay(uint32_t ms) { udelay(ms * 1000); }
/* Poll cond(arg) every ~100 us for up to timeout_ms; true when it became true. */
bool wait_until(bool (*cond)(void *), void *arg, uint32_t timeout_ms);
bool wait_u32_eq(volatile uint32_t *p, uint32_t val, uint32_t timeout_ms);

/* Provided by each test kernel. */
void test_main(void);

#endif
