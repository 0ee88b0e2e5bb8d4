/* mtrr.bin - guest MTRR writes (the hypervisor follows them with EPT01 memory types).
 *
 * Checks: MTRRcap sane; the first unused variable MTRR pair takes a UC range over a 2 MiB page of the
 * kernel's own memory (which stays readable and writable), reads back, and is cleared again; the
 * fixed-range MTRR for 0xC0000 round-trips; IA32_MTRR_DEF_TYPE round-trips. On every CPU the same
 * writes are made (as OSes do). Reserved bits: a PHYSBASE with an invalid type gives #GP.
 */
#include "lib.h"

#define MSR_MTRR_DEF_TYPE 0x2ff
#define MSR_PHYSBASE(n) (0x200 + 2 * (n))
#define MSR_PHYSMASK(n) (0x201 + 2 * (n))
#define MSR_FIX4K_C0000 0x268

static volatile uint64_t target[4096] __attribute__((aligned(4096)));

static bool wr_ok(uint32_t msr, uint64_t v)
{
    return wrmsr_safe(msr, v) == NO_EXCEPTION;
}

static uint64_t rd(uint32_t msr)
{
    uint64_t v = 0;
    rdmsr_safe(msr, &v);
    return v;
}

void test_main(void)
{
    uint64_t cap = rd(MSR_IA32_MTRRCAP);
    uint32_t nvar = cap & 0xff;
    uint32_t maxphy = cpuid(0x80000008).a & 0xff;
    uint64_t physmask = ((1ull << maxphy) - 1) & ~0xfffull;

    test_begin("mtrr-cap");
    test_check(nvar >= 1 && nvar <= 32, "MTRRcap VCNT %u", nvar);
    test_check(cap & (1 << 8), "no fixed-range MTRRs (MTRRcap 0x%llx)", (unsigned long long)cap);
    test_end();

    int slot = -1;
    for (uint32_t i = 0; i < nvar && slot < 0; i++)
        if (!(rd(MSR_PHYSMASK(i)) & (1 << 11)))
            slot = (int)i;

    test_begin("mtrr-variable-uc-range");
    test_check(slot >= 0, "no unused variable MTRR");
    if (slot >= 0) {
        uint64_t base = (uint64_t)(uintptr_t)target & ~0x1fffffull;
        uint64_t def = rd(MSR_MTRR_DEF_TYPE);
        /* SDM 11.11.7.2: disable MTRRs (and caches) while changing them. */
        write_cr0(read_cr0() | CR0_CD);
        test_check(wr_ok(MSR_MTRR_DEF_TYPE, def & ~(1ull << 11)), "disabling MTRRs faulted");
        test_check(wr_ok(MSR_PHYSBASE(slot), base | 0), "PHYSBASE write faulted");
        test_check(wr_ok(MSR_PHYSMASK(slot), (physmask & ~0x1fffffull) | (1 << 11)), "PHYSMASK write faulted");
        test_check(wr_ok(MSR_MTRR_DEF_TYPE, def), "enabling MTRRs faulted");
        write_cr0(read_cr0() & ~CR0_CD);
        test_check(rd(MSR_PHYSBASE(slot)) == base, "PHYSBASE reads 0x%llx", (unsigned long long)rd(MSR_PHYSBASE(slot)));
        target[5] = 0x5a5a;
        test_check(target[5] == 0x5a5a, "UC memory lost a write");
        write_cr0(read_cr0() | CR0_CD);
        test_check(wr_ok(MSR_PHYSMASK(slot), 0), "clearing PHYSMASK faulted");
        test_check(wr_ok(MSR_PHYSBASE(slot), 0), "clearing PHYSBASE faulted");
        write_cr0(read_cr0() & ~CR0_CD);
        test_check(target[5] == 0x5a5a, "value changed after the MTRR was cleared");
    }
    test_end();

    test_begin("mtrr-invalid-type-gp");
    if (slot >= 0) {
        int e = wrmsr_safe(MSR_PHYSBASE(slot), 2 /* reserved type */);
        test_check(e == EXC_GP, "PHYSBASE type 2 gave %s, expected #GP", exception_name(e));
        wrmsr_safe(MSR_PHYSBASE(slot), 0);
    }
    test_end();

    test_begin("mtrr-fixed-roundtrip");
    uint64_t fix = rd(MSR_FIX4K_C0000);
    test_check(wr_ok(MSR_FIX4K_C0000, fix), "rewriting FIX4K_C0000 faulted");
    test_check(rd(MSR_FIX4K_C0000) == fix, "FIX4K_C0000 0x%llx after rewrite, was 0x%llx",
               (unsigned long long)rd(MSR_FIX4K_C0000), (unsigned long long)fix);
    test_end();
    tests_done();
}
