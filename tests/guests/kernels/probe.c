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
            addr = e820_reserved_hole();
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
