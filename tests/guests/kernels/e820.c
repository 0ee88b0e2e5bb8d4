/* e820.bin - the memory map GRUB passed (multiboot mmap, from BIOS E820).
 *
 * Prints the map as INFO lines. Checks: a map is present; entries sorted and not overlapping;
 * at least 16 MiB usable; no usable RAM over the EBDA at 0x9fc00-0xa0000 nor in 0xa0000-0x100000;
 * the library's AP trampoline page (0x8000) is usable;
 * the kernel image (2 MiB..) lies in usable RAM; mem_lower/mem_upper agree with the map.
 * Command line: hidden=0xBASE-0xEND (repeatable) - no usable entry may overlap [BASE, END).
 * END is exclusive, except that an END whose low 12 bits are all ones is taken as the last byte.
 * Without hidden= the e820-hidden-ranges test is not run (an INFO line says so).
 */
#include "lib.h"

extern char __image_start[], __bss_end[];

static const char *type_name(uint32_t t)
{
    switch (t) {
    case 1: return "usable";
    case 2: return "reserved";
    case 3: return "acpi";
    case 4: return "nvs";
    case 5: return "bad";
    default: return "other";
    }
}

static bool usable_overlap(uint64_t lo, uint64_t hi, int *which)
{
    for (int i = 0; i < boot_mmap_count; i++) {
        const struct mmap_entry *m = &boot_mmap[i];
        if (m->type == 1 && m->len && m->base < hi && lo < m->base + m->len) {
            *which = i;
            return true;
        }
    }
    return false;
}

static bool usable_covers(uint64_t lo, uint64_t hi)
{
    /* [lo, hi) inside the union of usable entries (adjacent entries may split it). */
    uint64_t a = lo;
    for (int pass = 0; pass < boot_mmap_count && a < hi; pass++)
        for (int i = 0; i < boot_mmap_count; i++) {
            const struct mmap_entry *m = &boot_mmap[i];
            if (m->type == 1 && m->base <= a && a < m->base + m->len)
                a = m->base + m->len;
        }
    return a >= hi;
}

void test_main(void)
{
    test_begin("e820-present");
    test_check(boot_mmap_count > 0, "no multiboot memory map (count %d)", boot_mmap_count);
    test_end();

    uint64_t usable = 0;
    for (int i = 0; i < boot_mmap_count; i++) {
        const struct mmap_entry *m = &boot_mmap[i];
        info("e820 0x%016llx-0x%016llx %s (%u)", (unsigned long long)m->base,
             (unsigned long long)(m->base + m->len), type_name(m->type), m->type);
        if (m->type == 1)
            usable += m->len;
    }
    info("usable %llu KiB; mem_lower %u KiB, mem_upper %u KiB", (unsigned long long)(usable >> 10),
         boot_mem_lower, boot_mem_upper);

    test_begin("e820-sorted");
    for (int i = 1; i < boot_mmap_count; i++) {
        const struct mmap_entry *p = &boot_mmap[i - 1], *m = &boot_mmap[i];
        test_check(m->base >= p->base + p->len,
                   "entry %d (0x%llx) starts before the end of entry %d (0x%llx)", i,
                   (unsigned long long)m->base, i - 1, (unsigned long long)(p->base + p->len));
    }
    for (int i = 0; i < boot_mmap_count; i++)
        test_check(boot_mmap[i].len != 0, "entry %d has length 0", i);
    test_end();

    test_begin("e820-usable-16mib");
    test_check(usable >= (16ull << 20), "only %llu KiB usable", (unsigned long long)(usable >> 10));
    test_end();

    test_begin("e820-low-reserved");
    int w = -1;
    bool bad = usable_overlap(0x9fc00, 0xa0000, &w);
    test_check(!bad, "usable entry %d covers the EBDA 0x9fc00", w);
    bad = usable_overlap(0xa0000, 0x100000, &w);
    test_check(!bad, "usable entry %d inside 0xa0000-0x100000", w);
    test_check(usable_covers(TRAMPOLINE_BASE, TRAMPOLINE_BASE + 0x1000),
               "AP trampoline page 0x%x not usable", TRAMPOLINE_BASE);
    test_end();

    test_begin("e820-kernel-in-ram");
    uint64_t klo = (uint64_t)(uintptr_t)__image_start, khi = (uint64_t)(uintptr_t)__bss_end;
    test_check(usable_covers(klo, khi), "kernel 0x%llx-0x%llx not in usable RAM",
               (unsigned long long)klo, (unsigned long long)khi);
    test_end();

    test_begin("e820-mem-upper");
    test_check(boot_mem_valid, "multiboot mem_lower/mem_upper missing");
    if (boot_mem_valid) {
        /* mem_upper: KiB of contiguous usable RAM from 1 MiB. */
        uint64_t end = 0x100000;
        for (int pass = 0; pass < boot_mmap_count; pass++)
            for (int i = 0; i < boot_mmap_count; i++) {
                const struct mmap_entry *m = &boot_mmap[i];
                if (m->type == 1 && m->base <= end && end < m->base + m->len)
                    end = m->base + m->len;
            }
        uint64_t upper = (end - 0x100000) >> 10;
        test_check(boot_mem_upper == upper || (upper > 0xffffffffull && boot_mem_upper >= 0xfffffc00u),
                   "mem_upper %u KiB, map says %llu KiB", boot_mem_upper, (unsigned long long)upper);
        test_check(boot_mem_lower >= 512 && boot_mem_lower <= 640, "mem_lower %u KiB", boot_mem_lower);
    }
    test_end();

    /* Only with hidden= ranges (run-kernel.sh): without them there is nothing to check, and the runner
     * checks the hypervisor's region against the map the guest printed (check_guest_map_hides_region). */
    char buf[64];
    if (!cmdline_get("hidden", 0, buf, sizeof(buf))) {
        info("no hidden= range given: e820-hidden-ranges not run");
        return;
    }
    test_begin("e820-hidden-ranges");
    for (int n = 0; cmdline_get("hidden", n, buf, sizeof(buf)); n++) {
        uint64_t lo, hi;
        const char *p;
        if (!test_check(parse_u64(buf, &p, &lo) && *p == '-' && parse_u64(p + 1, &p, &hi) && !*p &&
                        hi > lo, "bad hidden=%s", buf))
            continue;
        if ((hi & 0xfff) == 0xfff)
            hi++;
        info("hidden range 0x%llx-0x%llx", (unsigned long long)lo, (unsigned long long)hi);
        w = -1;
        bad = usable_overlap(lo, hi, &w);
        test_check(!bad, "usable entry %d (0x%llx-0x%llx) overlaps hidden 0x%llx-0x%llx",
                   w, (unsigned long long)(w >= 0 ? boot_mmap[w].base : 0),
                   (unsigned long long)(w >= 0 ? boot_mmap[w].base + boot_mmap[w].len : 0),
                   (unsigned long long)lo, (unsigned long long)hi);
    }
    test_end();
}
