/* probe.bin - reaches for memory the guest must not have, for the hypervisor's security tests.
 *
 * Command line:
 *   probe=hole   read the first reserved E820 range that lies between two usable ranges above 1 MiB
 *                (under XMHF: its region, which the guest map marks reserved). Bare machines have no
 *                such hole: the kernel says so and passes.
 *   probe=ADDR   read the 8 bytes at physical ADDR.
 *   triple=1     triple-fault on purpose (load an empty IDT, raise #UD).
 * Under XMHF a read of its region must never return: the hypervisor reports a security violation and
 * stops the machine; the runner checks that report. Bare, the read returns and the test passes.
 */
#include "lib.h"

static uint64_t find_hole(void)
{
    for (int i = 1; i + 1 < boot_mmap_count; i++) {
        const struct mmap_entry *p = &boot_mmap[i - 1], *m = &boot_mmap[i], *n = &boot_mmap[i + 1];
        if (m->type != 1 && m->base >= 0x100000 && p->type == 1 && n->type == 1 &&
            p->base + p->len == m->base && m->base + m->len == n->base)
            return m->base;
    }
    return 0;
}

static void triple_fault(void)
{
    struct { uint16_t limit; uint64_t base; } __attribute__((packed)) empty = { 0, 0 };
    asm volatile("lidt %0; ud2" : : "m"(empty));
}

void test_main(void)
{
    char buf[32];
    uint64_t addr = 0;

    if (cmdline_get("triple", 0, buf, sizeof(buf))) {
        info("triple fault now");
        serial_flush();
        triple_fault();
    }
    test_begin("probe");
    if (cmdline_get("probe", 0, buf, sizeof(buf))) {
        if (!strncmp(buf, "hole", 5))
            addr = find_hole();
        else
            parse_u64(buf, NULL, &addr);
    }
    if (!addr) {
        info("no reserved hole inside RAM: nothing to probe");
    } else {
        info("reading physical 0x%llx", (unsigned long long)addr);
        serial_flush();
        volatile uint64_t *p = phys(addr);
        uint64_t v = *p;
        info("read 0x%llx", (unsigned long long)v);
    }
    test_end();
    tests_done();
}
