/* main.c - boot flow, multiboot information, command line, test-result API, power-off. */
#include "lib.h"

void idt_init(void);
void idt_load(void);

uint32_t boot_mb_magic;
extern uint32_t boot_mb_info;

struct mmap_entry boot_mmap[MMAP_MAX];
int boot_mmap_count = -1;
uint32_t boot_mem_lower, boot_mem_upper;
bool boot_mem_valid;
char boot_cmdline[1024];

extern uint64_t boot_pdpt[512], alias_pd[512];

/* ------------------------------------------------------------------------------------------ */

struct mb_info {
    uint32_t flags, mem_lower, mem_upper, boot_device, cmdline, mods_count, mods_addr;
    uint32_t syms[4];
    uint32_t mmap_length, mmap_addr;
} __attribute__((packed));

struct mb_mmap {
    uint32_t size;
    uint64_t base, len;
    uint32_t type;
} __attribute__((packed));

static void copy_multiboot(void)
{
    if (boot_mb_magic != 0x2badb002)
        return;
    const struct mb_info *mbi = phys(boot_mb_info);
    if (mbi->flags & (1u << 0)) {
        boot_mem_valid = true;
        boot_mem_lower = mbi->mem_lower;
        boot_mem_upper = mbi->mem_upper;
    }
    if ((mbi->flags & (1u << 2)) && mbi->cmdline) {
        const char *s = phys(mbi->cmdline);
        size_t i = 0;
        for (; s[i] && i + 1 < sizeof(boot_cmdline); i++)
            boot_cmdline[i] = s[i];
        boot_cmdline[i] = 0;
    }
    if (mbi->flags & (1u << 6)) {
        boot_mmap_count = 0;
        uint64_t a = mbi->mmap_addr, end = a + mbi->mmap_length;
        while (a < end && boot_mmap_count < MMAP_MAX) {
            const struct mb_mmap *m = phys(a);
            boot_mmap[boot_mmap_count].base = m->base;
            boot_mmap[boot_mmap_count].len = m->len;
            boot_mmap[boot_mmap_count].type = m->type;
            boot_mmap_count++;
            a += m->size + 4;
        }
    }
}

bool parse_u64(const char *s, const char **end, uint64_t *v)
{
    uint64_t x = 0;
    const char *p = s;
    if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
        p += 2;
        const char *q = p;
        for (;; p++) {
            int d;
            if (*p >= '0' && *p <= '9') d = *p - '0';
            else if (*p >= 'a' && *p <= 'f') d = *p - 'a' + 10;
            else if (*p >= 'A' && *p <= 'F') d = *p - 'A' + 10;
            else break;
            x = x * 16 + d;
        }
        if (p == q)
            return false;
    } else {
        const char *q = p;
        while (*p >= '0' && *p <= '9')
            x = x * 10 + (*p++ - '0');
        if (p == q)
            return false;
    }
    if (end)
        *end = p;
    *v = x;
    return true;
}

bool cmdline_get(const char *key, int n, char *buf, size_t size)
{
    size_t klen = strlen(key);
    const char *p = boot_cmdline;
    while (*p) {
        while (*p == ' ')
            p++;
        const char *w = p;
        while (*p && *p != ' ')
            p++;
        if ((size_t)(p - w) > klen && strncmp(w, key, klen) == 0 && w[klen] == '=') {
            if (n-- == 0) {
                const char *v = w + klen + 1;
                size_t len = (size_t)(p - v);
                if (size) {
                    if (len >= size)
                        len = size - 1;
                    memcpy(buf, v, len);
                    buf[len] = 0;
                }
                return true;
            }
        }
    }
    return false;
}

/* ------------------------------------------------------------------------------------------ */

void map_alias_2m(uint64_t va, uint64_t pa, uint64_t flags)
{
    if (va < ALIAS_BASE || va >= ALIAS_BASE + (1ull << 30))
        panic("map_alias_2m: 0x%llx outside the alias window", (unsigned long long)va);
    alias_pd[(va - ALIAS_BASE) >> 21] = (pa & ~0x1fffffull) | flags | PTE_PS;
    invlpg(va);
}

/* GS base -> struct cpu, IDT. Used by the BSP and every AP. */
void cpu_setup(struct cpu *c)
{
    c->self = c;
    wrmsr(MSR_GS_BASE, (uint64_t)(uintptr_t)c);
    idt_load();
}

/* ------------------------------------------------------------------------------------------ */

static int n_pass, n_fail, n_skip;
static bool in_test, skipping;
static char test_name[96];
static char fail_reason[200];
static int fail_count;

/* skip=NAME[,NAME...] (repeatable) on the command line names tests not to run. */
static bool skip_requested(const char *name)
{
    char buf[256];
    size_t len = strlen(name);
    for (int n = 0; cmdline_get("skip", n, buf, sizeof(buf)); n++) {
        for (char *p = buf; *p;) {
            char *e = p;
            while (*e && *e != ',')
                e++;
            if ((size_t)(e - p) == len && strncmp(p, name, len) == 0)
                return true;
            p = *e ? e + 1 : e;
        }
    }
    return false;
}

bool test_begin(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(test_name, sizeof(test_name), fmt, ap);
    va_end(ap);
    fail_count = 0;
    fail_reason[0] = 0;
    skipping = skip_requested(test_name);
    in_test = !skipping;
    if (skipping) {
        n_skip++;
        printf("TEST %s: SKIP\n", test_name);
    }
    return !skipping;
}

bool test_check(bool cond, const char *fmt, ...)
{
    if (cond || skipping)
        return cond;
    if (fail_count++ == 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(fail_reason, sizeof(fail_reason), fmt, ap);
        va_end(ap);
    }
    return false;
}

bool test_end(void)
{
    in_test = false;
    if (skipping) {
        skipping = false;
        return true;
    }
    if (fail_count == 0) {
        n_pass++;
        printf("TEST %s: PASS\n", test_name);
        return true;
    }
    n_fail++;
    if (fail_count > 1)
        printf("TEST %s: FAIL %s (+%d more)\n", test_name, fail_reason, fail_count - 1);
    else
        printf("TEST %s: FAIL %s\n", test_name, fail_reason);
    return false;
}

NORETURN void poweroff(void)
{
    serial_flush();
    for (const char *s = "Shutdown"; *s; s++)
        outb(0x8900, (uint8_t)*s);            /* Bochs */
    outb(0xf4, 0x31);                         /* QEMU isa-debug-exit */
    for (;;)
        asm volatile("cli; hlt");
}

static uint64_t tsc_start;

NORETURN void tests_done(void)
{
    uint64_t now = rdtsc();
    printf("INFO tsc: start %llu end %llu (%llu in the kernel)\n", (unsigned long long)tsc_start,
           (unsigned long long)now, (unsigned long long)(now - tsc_start));
    if (n_skip)
        printf("INFO %d tests skipped\n", n_skip);
    printf("TESTS DONE: %d passed, %d failed\n", n_pass, n_fail);
    poweroff();
}

NORETURN void panic(const char *fmt, ...)
{
    static volatile uint32_t panicking;
    char msg[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    cli();
    if (__atomic_exchange_n(&panicking, 1, __ATOMIC_ACQUIRE)) {
        for (;;)
            asm volatile("cli; hlt");     /* another CPU is already reporting */
    }
    if (in_test) {
        fail_count = 1;
        snprintf(fail_reason, sizeof(fail_reason), "%s", msg);
        test_end();
    } else {
        printf("INFO panic: %s\n", msg);
        n_fail++;
        printf("TEST panic: FAIL %s\n", msg);
    }
    tests_done();
}

/* ------------------------------------------------------------------------------------------ */

void kmain(void)
{
    tsc_start = rdtsc();
    struct cpu *bsp = &cpus[0];
    bsp->idx = 0;
    idt_init();
    cpu_setup(bsp);
    copy_multiboot();

    char buf[32];
    uint64_t port = 0x3f8;
    if (cmdline_get("serial", 0, buf, sizeof(buf)))
        parse_u64(buf, NULL, &port);
    serial_init((uint16_t)port);

    /* Mask the 8259 PICs: nothing may arrive on vectors 0x08-0x0f (exception vectors). */
    outb(0x21, 0xff);
    outb(0xa1, 0xff);

    if (cmdline_get("x2apic", 0, buf, sizeof(buf)) && buf[0] == '1')
        want_x2apic = true;
    apic_cpu_init();
    bsp->apic_id = apic_id();
    bsp->online = 1;

    info("cmdline: %s", boot_cmdline);
    if (boot_mb_magic != 0x2badb002)
        info("not booted by a multiboot loader (eax=0x%x)", boot_mb_magic);
    info("apic mode: %s%s", bsp->x2apic ? "x2apic" : "xapic",
         want_x2apic && !bsp->x2apic ? " (x2apic=1 asked, CPU has no x2APIC)" : "");

    test_main();
    tests_done();
}

/* The first reserved E820 entry lying between two usable ones above 1 MiB: under a hypervisor that
 * hides its memory (XMHF), its region. 0 if there is none (bare machines). */
uint64_t e820_reserved_hole(void)
{
    for (int i = 1; i + 1 < boot_mmap_count; i++) {
        const struct mmap_entry *p = &boot_mmap[i - 1], *m = &boot_mmap[i], *n = &boot_mmap[i + 1];
        if (m->type != 1 && m->base >= 0x100000 && p->type == 1 && n->type == 1 &&
            p->base + p->len == m->base && m->base + m->len == n->base)
            return m->base;
    }
    return 0;
}
