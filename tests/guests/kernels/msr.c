/* msr.bin - RDMSR/WRMSR behaviour.
 *
 * Checks: #GP on RDMSR/WRMSR of MSRs that do not exist; #GP on WRMSR to read-only MSRs and
 * with reserved bits or non-canonical addresses; round trips of SYSENTER_*, TSC_AUX (with
 * RDTSCP), PAT, FS/GS/KERNEL_GS base (the FS base is also checked through an %fs access);
 * EFER has LME and LMA set, SCE/NXE toggle, LME cannot change while paging; IA32_APIC_BASE has
 * EN, the expected base and BSP set on the BSP only (APs are started to check); x2APIC MSRs
 * fault in xAPIC mode.
 * On bare Bochs the unknown-MSR checks need "cpu: ignore_bad_msrs=0" in bochsrc (Bochs's
 * default silently reads 0 and ignores writes).
 */
#include "lib.h"

static bool has_rdtscp, has_nx, has_mtrr, has_pat;

static void check_gp_rd(uint32_t msr)
{
    uint64_t v;
    int e = rdmsr_safe(msr, &v);
    test_check(e == EXC_GP, "RDMSR 0x%x: %s (value 0x%llx), expected #GP", msr, exception_name(e),
               (unsigned long long)v);
}

static void check_gp_wr(uint32_t msr, uint64_t val)
{
    int e = wrmsr_safe(msr, val);
    test_check(e == EXC_GP, "WRMSR 0x%x <- 0x%llx: %s, expected #GP", msr, (unsigned long long)val,
               exception_name(e));
}

static void check_roundtrip(uint32_t msr, uint64_t val)
{
    uint64_t got = 0;
    int e1 = wrmsr_safe(msr, val);
    int e2 = rdmsr_safe(msr, &got);
    test_check(e1 == NO_EXCEPTION && e2 == NO_EXCEPTION && got == val,
               "MSR 0x%x: wrote 0x%llx (%s), read 0x%llx (%s)", msr, (unsigned long long)val,
               exception_name(e1), (unsigned long long)got, exception_name(e2));
}

/* ------------------------------------------------------------------------------------------ */

static void t_nonexistent(void)
{
    test_begin("msr-rdmsr-nonexistent-gp");
    check_gp_rd(0x12345678);
    check_gp_rd(0xc0011fff);
    check_gp_rd(0x40001234);
    test_end();

    test_begin("msr-wrmsr-nonexistent-gp");
    check_gp_wr(0x12345678, 0);
    check_gp_wr(0xc0011fff, 1);
    test_end();
}

static void t_readonly(void)
{
    test_begin("msr-wrmsr-readonly-gp");
    uint64_t cap = 0;
    int e = rdmsr_safe(MSR_IA32_MTRRCAP, &cap);
    if (has_mtrr)
        test_check(e == NO_EXCEPTION, "RDMSR MTRRCAP: %s", exception_name(e));
    check_gp_wr(MSR_IA32_MTRRCAP, cap);
    /* IA32_VMX_BASIC is read-only whether or not VMX is reported. */
    check_gp_wr(0x480, 0);
    test_end();
}

static void t_x2apic_range(void)
{
    test_begin("msr-x2apic-range");
    uint64_t v = 0;
    if (apic_x2apic_mode()) {
        int e = rdmsr_safe(0x802, &v);
        test_check(e == NO_EXCEPTION && v == apic_id(), "x2APIC mode: RDMSR 0x802 %s value 0x%llx",
                   exception_name(e), (unsigned long long)v);
        check_gp_wr(0x802, 0);          /* APIC ID is read-only in x2APIC mode */
    } else {
        check_gp_rd(0x802);             /* x2APIC MSRs fault in xAPIC mode */
        check_gp_rd(0x808);
        check_gp_wr(0x808, 0);
    }
    test_end();
}

static void t_sysenter(void)
{
    test_begin("msr-sysenter");
    uint64_t cs = rdmsr(MSR_IA32_SYSENTER_CS), esp = rdmsr(MSR_IA32_SYSENTER_ESP),
             eip = rdmsr(MSR_IA32_SYSENTER_EIP);
    check_roundtrip(MSR_IA32_SYSENTER_CS, 0x10);
    check_roundtrip(MSR_IA32_SYSENTER_CS, 0xfff8);
    check_roundtrip(MSR_IA32_SYSENTER_ESP, 0xffff800012345678ull);
    check_roundtrip(MSR_IA32_SYSENTER_EIP, 0x00007fffdeadbee0ull);
    check_gp_wr(MSR_IA32_SYSENTER_ESP, 0x0000800000000000ull);   /* non-canonical */
    check_gp_wr(MSR_IA32_SYSENTER_EIP, 0x8000000000000000ull);
    wrmsr(MSR_IA32_SYSENTER_CS, cs);
    wrmsr(MSR_IA32_SYSENTER_ESP, esp);
    wrmsr(MSR_IA32_SYSENTER_EIP, eip);
    test_end();
}

static void t_tsc_aux(void)
{
    test_begin("msr-tsc-aux");
    if (has_rdtscp) {
        uint64_t old = rdmsr(MSR_TSC_AUX);
        check_roundtrip(MSR_TSC_AUX, 0x1234);
        uint32_t lo, hi, aux;
        asm volatile("rdtscp" : "=a"(lo), "=d"(hi), "=c"(aux));
        test_check(aux == 0x1234, "RDTSCP returned ECX=0x%x after TSC_AUX=0x1234", aux);
        check_roundtrip(MSR_TSC_AUX, 0xfedcba98);
        wrmsr(MSR_TSC_AUX, old);
    } else {
        check_gp_rd(MSR_TSC_AUX);
    }
    test_end();
}

static void t_efer(void)
{
    test_begin("msr-efer");
    uint64_t efer = rdmsr(MSR_EFER);
    test_check((efer & (EFER_LME | EFER_LMA)) == (EFER_LME | EFER_LMA),
               "EFER 0x%llx lacks LME|LMA in long mode", (unsigned long long)efer);
    check_roundtrip(MSR_EFER, efer | EFER_SCE);
    check_roundtrip(MSR_EFER, efer & ~EFER_SCE);
    if (has_nx) {
        check_roundtrip(MSR_EFER, efer | EFER_NXE);
        check_roundtrip(MSR_EFER, efer & ~EFER_NXE);
    } else {
        check_gp_wr(MSR_EFER, efer | EFER_NXE);
    }
    check_gp_wr(MSR_EFER, efer & ~EFER_LME);         /* LME change with CR0.PG=1 */
    check_gp_wr(MSR_EFER, efer | (1ull << 1));       /* reserved */
    check_gp_wr(MSR_EFER, efer | (1ull << 63));      /* reserved */
    wrmsr(MSR_EFER, efer);
    test_check(rdmsr(MSR_EFER) == efer, "EFER not restored");
    test_end();
}

static void t_pat(void)
{
    test_begin("msr-pat");
    if (has_pat) {
        uint64_t old = rdmsr(MSR_IA32_PAT);
        test_check(old == 0x0007040600070406ull, "PAT after reset 0x%llx, expected 0x0007040600070406",
                   (unsigned long long)old);
        check_roundtrip(MSR_IA32_PAT, 0x0001050607040600ull);
        check_gp_wr(MSR_IA32_PAT, 0x0007040600070402ull);   /* type 2 is reserved */
        check_gp_wr(MSR_IA32_PAT, 0x0007040600070403ull);   /* type 3 is reserved */
        check_gp_wr(MSR_IA32_PAT, 0x0007040600070416ull);   /* reserved bits 7:3 */
        wrmsr(MSR_IA32_PAT, old);
        test_check(rdmsr(MSR_IA32_PAT) == old, "PAT not restored");
    } else {
        check_gp_rd(MSR_IA32_PAT);
    }
    test_end();
}

static volatile uint64_t fs_target = 0x1122334455667788ull;

static void t_segment_bases(void)
{
    test_begin("msr-segment-bases");
    uint64_t kgs = rdmsr(MSR_KERNEL_GS_BASE), fs = rdmsr(MSR_FS_BASE);
    check_roundtrip(MSR_KERNEL_GS_BASE, 0xffff888000001000ull);
    check_gp_wr(MSR_KERNEL_GS_BASE, 0x0000800000000000ull);
    check_gp_wr(MSR_FS_BASE, 0x8000000000000000ull);
    check_roundtrip(MSR_FS_BASE, (uint64_t)(uintptr_t)&fs_target);
    uint64_t via_fs;
    asm volatile("movq %%fs:0, %0" : "=r"(via_fs) : : "memory");
    test_check(via_fs == fs_target, "%%fs:0 read 0x%llx with FS base at fs_target",
               (unsigned long long)via_fs);
    uint64_t gs = rdmsr(MSR_GS_BASE);
    test_check(gs == (uint64_t)(uintptr_t)this_cpu(), "GS base 0x%llx, expected the cpu block",
               (unsigned long long)gs);
    wrmsr(MSR_KERNEL_GS_BASE, kgs);
    wrmsr(MSR_FS_BASE, fs);
    test_end();
}

static void t_tsc(void)
{
    test_begin("msr-tsc");
    uint64_t a = 0, b = 0;
    int e = rdmsr_safe(MSR_IA32_TSC, &a);
    uint64_t c = rdtsc();
    int e2 = rdmsr_safe(MSR_IA32_TSC, &b);
    test_check(e == NO_EXCEPTION && e2 == NO_EXCEPTION, "RDMSR TSC: %s/%s", exception_name(e),
               exception_name(e2));
    test_check(a < c && c < b, "TSC not increasing: msr 0x%llx, rdtsc 0x%llx, msr 0x%llx",
               (unsigned long long)a, (unsigned long long)c, (unsigned long long)b);
    test_end();
}

/* IA32_APIC_BASE on every CPU. */
static volatile uint64_t apic_base_of[MAX_CPUS];

static void read_apic_base(void *arg)
{
    (void)arg;
    apic_base_of[this_cpu()->idx] = rdmsr(MSR_IA32_APIC_BASE);
}

static void check_apic_base(int i, uint64_t v)
{
    bool bsp = i == 0;
    test_check(!!(v & APIC_BASE_BSP) == bsp, "cpu %d: APIC_BASE 0x%llx has BSP=%d", i,
               (unsigned long long)v, !!(v & APIC_BASE_BSP));
    test_check(v & APIC_BASE_EN, "cpu %d: APIC_BASE 0x%llx not enabled", i, (unsigned long long)v);
    test_check((v & ~0xfffull) == 0xfee00000ull, "cpu %d: APIC_BASE 0x%llx base not 0xfee00000", i,
               (unsigned long long)v);
    test_check((v & 0x2ffull) == 0, "cpu %d: APIC_BASE 0x%llx reserved bits set", i,
               (unsigned long long)v);
}

static void t_apic_base(void)
{
    int online = smp_start_all(0);
    test_begin("msr-apic-base");
    test_check(online == ncpus, "%d of %d CPUs online", online, ncpus);
    read_apic_base(NULL);
    check_apic_base(0, apic_base_of[0]);
    for (int i = 1; i < ncpus; i++)
        if (test_check(smp_call(i, read_apic_base, NULL, 1000), "cpu %d did not answer", i))
            check_apic_base(i, apic_base_of[i]);
    /* Reserved bits and an unsupported x2APIC-without-EN combination fault. */
    uint64_t b = apic_base_of[0];
    check_gp_wr(MSR_IA32_APIC_BASE, b | 1);
    check_gp_wr(MSR_IA32_APIC_BASE, (b & ~APIC_BASE_EN) | APIC_BASE_EXTD);
    test_check(rdmsr(MSR_IA32_APIC_BASE) == b, "APIC_BASE changed by faulting writes");
    test_end();
    info("%d CPUs, BSP APIC_BASE 0x%llx", ncpus, (unsigned long long)b);
}

/* MSRs whose outputs are physical addresses (Intel PT's trace buffer, the debug store's BTS/PEBS
 * buffers) exist only with their CPUID bit: a hypervisor that hides the feature must fault them too,
 * or the guest could aim the hardware's writes anywhere (docs/threat-model.md). */
static void t_hidden_features(void)
{
    struct cpuid_regs l1 = cpuid(1), l7 = cpuid2(7, 0);
    bool has_pt = cpuid(0).a >= 7 && (l7.b & (1u << 25)), has_ds = l1.d & (1u << 21);

    test_begin("msr-hidden-features-gp");
    if (!has_pt) {
        static const uint32_t rtit[] = { 0x560, 0x561, 0x570, 0x571, 0x572, 0x580, 0x581 };
        for (unsigned i = 0; i < sizeof(rtit) / sizeof(rtit[0]); i++) {
            check_gp_rd(rtit[i]);
            check_gp_wr(rtit[i], 0);
        }
    }
    if (!has_ds) {
        check_gp_rd(0x600); /* IA32_DS_AREA */
        check_gp_wr(0x600, 0x100000);
        check_gp_wr(0x3f1, 1); /* IA32_PEBS_ENABLE */
    }
    test_end();
    info("CPUID: Intel PT %d, debug store %d", has_pt, has_ds);
}

/* apic_base_locked=1 (a test of the hypervisor under test, not compared with bare runs: bare Bochs
 * lets the APIC move): relocating or disabling the local APIC through IA32_APIC_BASE gets #GP under
 * XMHF, which keeps using the APIC at its base (a moved or disabled APIC would leave its INIT/NMI
 * emulation and quiesce pointing at nothing), and the MSR is unchanged. */
static void t_apic_base_locked(void)
{
    test_begin("apic-base-locked");
    uint64_t v = rdmsr(MSR_IA32_APIC_BASE);
    int e1 = wrmsr_safe(MSR_IA32_APIC_BASE, (v & 0xfff) | 0xfed00000ull);
    int e2 = wrmsr_safe(MSR_IA32_APIC_BASE, v & ~(uint64_t)APIC_BASE_EN);
    test_check(e1 == EXC_GP, "relocating the APIC: exception %d, expected #GP", e1);
    test_check(e2 == EXC_GP, "disabling the APIC: exception %d, expected #GP", e2);
    test_check(rdmsr(MSR_IA32_APIC_BASE) == v, "APIC_BASE 0x%llx, was 0x%llx",
               (unsigned long long)rdmsr(MSR_IA32_APIC_BASE), (unsigned long long)v);
    test_check(wrmsr_safe(MSR_IA32_APIC_BASE, v) == NO_EXCEPTION, "writing APIC_BASE unchanged faulted");
    test_end();
}

/* msr_writes_locked=1 (the hypervisor's policy, not compared with bare runs: bare Bochs takes these
 * writes): a write of an MSR the policy does not list (IA32_SMM_MONITOR_CTL) gets #GP; IA32_SYSENTER_CS,
 * which the policy passes, is still written. (IA32_MISC_ENABLE's XD-disable mask is not checked:
 * Bochs 2.7 has no IA32_MISC_ENABLE.) */
static void t_msr_writes_locked(void)
{
    test_begin("msr-writes-locked");
    int e = wrmsr_safe(0x9b, 0);
    test_check(e == EXC_GP, "WRMSR IA32_SMM_MONITOR_CTL: exception %d, expected #GP", e);
    wrmsr(MSR_IA32_SYSENTER_CS, 0x1234);
    test_check(rdmsr(MSR_IA32_SYSENTER_CS) == 0x1234, "IA32_SYSENTER_CS not written");
    test_end();
}

void test_main(void)
{
    struct cpuid_regs l1 = cpuid(1), e1 = cpuid(0x80000001);
    char arg[8];

    if (cmdline_get("apic_base_locked", 0, arg, sizeof(arg))) {
        t_apic_base_locked();
        return;
    }
    if (cmdline_get("msr_writes_locked", 0, arg, sizeof(arg))) {
        t_msr_writes_locked();
        return;
    }
    has_rdtscp = e1.d & (1u << 27);
    has_nx = e1.d & (1u << 20);
    has_mtrr = l1.d & (1u << 12);
    has_pat = l1.d & (1u << 16);

    t_nonexistent();
    t_readonly();
    t_x2apic_range();
    t_sysenter();
    t_tsc_aux();
    t_efer();
    t_pat();
    t_segment_bases();
    t_tsc();
    t_apic_base();
    t_hidden_features();
}
