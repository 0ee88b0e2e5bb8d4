/* acpi.c - find the CPUs: RSDP (EBDA, 0xE0000-0xFFFFF) -> RSDT/XSDT -> MADT. */
#include "lib.h"

int ncpus = 1;
uint32_t cpu_apic_ids[MAX_CPUS];
bool madt_found;
bool madt_lists_bsp;

struct sdt_header {
    char sig[4];
    uint32_t length;
    uint8_t revision, checksum;
    char oem[6], oem_table[8];
    uint32_t oem_rev, creator, creator_rev;
} __attribute__((packed));

static bool checksum_ok(const void *p, size_t n)
{
    const uint8_t *b = p;
    uint8_t sum = 0;
    while (n--)
        sum += *b++;
    return sum == 0;
}

static const uint8_t *rsdp_scan(uint64_t start, uint64_t len)
{
    for (uint64_t a = start; a + 20 <= start + len; a += 16) {
        const uint8_t *p = phys(a);
        if (memcmp(p, "RSD PTR ", 8) == 0 && checksum_ok(p, 20))
            return p;
    }
    return NULL;
}

static const struct sdt_header *find_table(const char *sig)
{
    uint64_t ebda = (uint64_t)*(volatile uint16_t *)phys(0x40e) << 4;
    const uint8_t *rsdp = NULL;
    if (ebda >= 0x80000 && ebda < 0xa0000)
        rsdp = rsdp_scan(ebda, 1024);
    if (!rsdp)
        rsdp = rsdp_scan(0xe0000, 0x20000);
    if (!rsdp)
        return NULL;

    uint32_t rsdt = *(const uint32_t *)(rsdp + 16);
    uint64_t xsdt = 0;
    if (rsdp[15] >= 2 && checksum_ok(rsdp, *(const uint32_t *)(rsdp + 20)))
        xsdt = *(const uint64_t *)(rsdp + 24);
    if (xsdt >= (4ull << 30))
        xsdt = 0;                         /* outside the identity map */

    const struct sdt_header *root = phys(xsdt ? xsdt : rsdt);
    size_t esz = xsdt ? 8 : 4;
    if (!root || !checksum_ok(root, root->length))
        return NULL;
    size_t n = (root->length - sizeof(*root)) / esz;
    const uint8_t *ents = (const uint8_t *)(root + 1);
    for (size_t i = 0; i < n; i++) {
        uint64_t a = esz == 8 ? *(const uint64_t *)(ents + 8 * i) : *(const uint32_t *)(ents + 4 * i);
        if (!a || a >= (4ull << 30))
            continue;
        const struct sdt_header *t = phys(a);
        if (memcmp(t->sig, sig, 4) == 0 && checksum_ok(t, t->length))
            return t;
    }
    return NULL;
}

static void add_cpu(uint32_t id, uint32_t bsp_id)
{
    if (id == bsp_id) {
        madt_lists_bsp = true;
        return;
    }
    if (id > 255)
        return;                           /* the AP entry indexes stacks by 8-bit APIC ID */
    for (int i = 1; i < ncpus; i++)
        if (cpu_apic_ids[i] == id)
            return;
    if (ncpus < MAX_CPUS)
        cpu_apic_ids[ncpus++] = id;
}

void acpi_find_cpus(void)
{
    uint32_t bsp = apic_id();
    ncpus = 1;
    cpu_apic_ids[0] = bsp;
    madt_found = false;
    madt_lists_bsp = false;

    const struct sdt_header *madt = find_table("APIC");
    if (!madt)
        return;
    madt_found = true;
    const uint8_t *p = (const uint8_t *)madt + sizeof(*madt) + 8;   /* LAPIC address, flags */
    const uint8_t *end = (const uint8_t *)madt + madt->length;
    while (p + 2 <= end && p[1] >= 2 && p + p[1] <= end) {
        if (p[0] == 0 && p[1] >= 8) {            /* processor local APIC */
            uint32_t flags = *(const uint32_t *)(p + 4);
            if (flags & 1)
                add_cpu(p[3], bsp);
        } else if (p[0] == 9 && p[1] >= 16) {    /* processor local x2APIC */
            uint32_t flags = *(const uint32_t *)(p + 8);
            if (flags & 1)
                add_cpu(*(const uint32_t *)(p + 4), bsp);
        }
        p += p[1];
    }
}
