/* cpuid.bin - CPUID sanity and consistency across CPUs.
 *
 * Checks: max basic leaf >= 1; vendor printable; family plausible; the feature bits this kernel
 * relies on (FPU, TSC, MSR, PAE, APIC, long mode); leaf 1 EBX[31:24] (and leaf 0xB EDX) match
 * the local APIC ID on every CPU; leaves 0, 1, 7, 0xB, 0x80000000, 0x80000001 identical on
 * every CPU except the APIC-ID fields. The hypervisor-present and VMX bits are INFO only.
 */
#include "lib.h"

struct snap {
    uint32_t max, emax;
    struct cpuid_regs l0, l1, l7, lb0, lb1, e0, e1;
    uint32_t lapic_id;
    bool x2apic;
};

static struct snap snaps[MAX_CPUS];

static void take_snap(void *arg)
{
    struct snap *s = arg;
    s->l0 = cpuid(0);
    s->max = s->l0.a;
    s->l1 = cpuid(1);
    if (s->max >= 7)
        s->l7 = cpuid2(7, 0);
    if (s->max >= 0xb) {
        s->lb0 = cpuid2(0xb, 0);
        s->lb1 = cpuid2(0xb, 1);
    }
    s->e0 = cpuid(0x80000000);
    s->emax = s->e0.a;
    if (s->emax >= 0x80000001)
        s->e1 = cpuid(0x80000001);
    s->lapic_id = apic_id();
    s->x2apic = apic_x2apic_mode();
}

static bool regs_eq(struct cpuid_regs a, struct cpuid_regs b)
{
    return a.a == b.a && a.b == b.b && a.c == b.c && a.d == b.d;
}

/* Compare CPU i's snapshot with the BSP's; returns a leaf name on mismatch. */
static const char *diff(const struct snap *b, const struct snap *s)
{
    if (!regs_eq(b->l0, s->l0)) return "leaf 0";
    struct cpuid_regs x = b->l1, y = s->l1;
    x.b &= 0x00ffffff;
    y.b &= 0x00ffffff;
    if (!regs_eq(x, y)) return "leaf 1";
    if (!regs_eq(b->l7, s->l7)) return "leaf 7";
    x = b->lb0; y = s->lb0; x.d = y.d = 0;
    if (!regs_eq(x, y)) return "leaf 0xb.0";
    x = b->lb1; y = s->lb1; x.d = y.d = 0;
    if (!regs_eq(x, y)) return "leaf 0xb.1";
    if (!regs_eq(b->e0, s->e0)) return "leaf 0x80000000";
    if (!regs_eq(b->e1, s->e1)) return "leaf 0x80000001";
    return NULL;
}

static void check_apic_ids(int i, const struct snap *s)
{
    uint32_t initial = s->l1.b >> 24;
    test_check(initial == (s->lapic_id & 0xff),
               "cpu %d: CPUID.1:EBX[31:24]=0x%x but local APIC ID 0x%x", i, initial, s->lapic_id);
    if (s->max >= 0xb && s->lb0.b != 0)
        test_check(s->x2apic ? s->lb0.d == s->lapic_id : (s->lb0.d & 0xff) == s->lapic_id,
                   "cpu %d: CPUID.0xB:EDX=0x%x but local APIC ID 0x%x", i, s->lb0.d, s->lapic_id);
}

void test_main(void)
{
    struct snap *b = &snaps[0];
    take_snap(b);

    test_begin("cpuid-max-leaf");
    test_check(b->max >= 1, "max basic leaf 0x%x", b->max);
    test_check(b->emax >= 0x80000001 && b->emax < 0x80000100, "max extended leaf 0x%x", b->emax);
    test_end();
    info("max leaf 0x%x, max extended leaf 0x%x", b->max, b->emax);

    char vendor[13];
    memcpy(vendor + 0, &b->l0.b, 4);
    memcpy(vendor + 4, &b->l0.d, 4);
    memcpy(vendor + 8, &b->l0.c, 4);
    vendor[12] = 0;
    test_begin("cpuid-vendor");
    for (int i = 0; i < 12; i++)
        test_check(vendor[i] >= 0x20 && vendor[i] < 0x7f, "vendor byte %d is 0x%02x", i,
                   (unsigned char)vendor[i]);
    test_end();

    uint32_t fam = (b->l1.a >> 8) & 0xf, model = (b->l1.a >> 4) & 0xf, step = b->l1.a & 0xf;
    if (fam == 0xf)
        fam += (b->l1.a >> 20) & 0xff;
    if (fam == 6 || fam >= 0xf)
        model |= ((b->l1.a >> 16) & 0xf) << 4;
    test_begin("cpuid-family-model");
    test_check(fam >= 5 && fam <= 0x1f, "family 0x%x (leaf 1 EAX 0x%08x)", fam, b->l1.a);
    test_check((b->l1.a >> 28) == 0 && ((b->l1.a >> 14) & 3) == 0,
               "reserved bits set in leaf 1 EAX 0x%08x", b->l1.a);
    test_end();
    info("vendor \"%s\" family 0x%x model 0x%x stepping %u", vendor, fam, model, step);

    test_begin("cpuid-required-features");
    static const struct { int bit; const char *name; } need[] = {
        { 0, "FPU" }, { 4, "TSC" }, { 5, "MSR" }, { 6, "PAE" }, { 8, "CX8" }, { 9, "APIC" },
    };
    for (unsigned i = 0; i < ARRAY_SIZE(need); i++)
        test_check(b->l1.d & (1u << need[i].bit), "CPUID.1:EDX.%s clear (EDX 0x%08x)",
                   need[i].name, b->l1.d);
    test_check(b->e1.d & (1u << 29), "CPUID.80000001H:EDX.LM clear in long mode (EDX 0x%08x)", b->e1.d);
    test_end();

    info("hypervisor-bit=%u", (b->l1.c >> 31) & 1);
    info("vmx-bit=%u", (b->l1.c >> 5) & 1);

    /* Start the APs and take their snapshots. */
    smp_init();
    int online = smp_start_all(0);
    test_begin("cpuid-aps-online");
    test_check(online == ncpus, "%d of %d CPUs online", online, ncpus);
    test_end();
    info("%d CPUs", ncpus);

    bool called[MAX_CPUS] = { true };
    for (int i = 1; i < ncpus; i++)
        called[i] = cpus[i].online && smp_call(i, take_snap, &snaps[i], 1000);

    test_begin("cpuid-apic-id");
    check_apic_ids(0, b);
    for (int i = 1; i < ncpus; i++) {
        if (test_check(called[i], "cpu %d did not run the snapshot", i))
            check_apic_ids(i, &snaps[i]);
    }
    test_end();

    test_begin("cpuid-same-on-all-cpus");
    for (int i = 1; i < ncpus; i++) {
        if (!test_check(called[i], "cpu %d did not run the snapshot", i))
            continue;
        const char *d = diff(b, &snaps[i]);
        test_check(d == NULL, "cpu %d differs from the BSP in %s", i, d ? d : "");
    }
    test_end();
}
