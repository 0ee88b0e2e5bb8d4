/* smp.bin - AP start-up and inter-processor interrupts.
 *
 * Checks: the MADT lists the BSP; every AP comes online after INIT-SIPI-SIPI (one by one) and
 * reports the APIC ID the MADT gave it; cross-CPU calls work; each AP restarts after a second
 * INIT-SIPI-SIPI, after a doubled INIT-SIPI-SIPI-INIT-SIPI-SIPI (as OVMF does) and after INIT and
 * SIPIs sent with the all-excluding-self shorthand; a spinlock shared by all CPUs counts exactly;
 * INIT with a single SIPI starts an AP (running, or already waiting for a SIPI), as do INIT, SIPI, SIPI
 * and INIT, INIT, SIPI;
 * fixed IPIs are delivered once to each AP (physical destination) and to the BSP itself (self
 * shorthand, or the SELF IPI MSR in x2APIC mode).
 */
#include "lib.h"

#define VEC_TEST 0x40
#define LOCK_ROUNDS 2000

static void check_ids(void)
{
    for (int i = 1; i < ncpus; i++)
        test_check(ap_online_apic_id[i] == cpu_apic_ids[i], "cpu %d reports APIC ID 0x%x, MADT 0x%x", i,
                   ap_online_apic_id[i], cpu_apic_ids[i]);
}

static void check_all_online(const char *how)
{
    for (int i = 1; i < ncpus; i++)
        test_check(cpus[i].online, "cpu %d (APIC ID 0x%x) not online after %s", i, cpu_apic_ids[i], how);
    check_ids();
}

static volatile uint32_t answer[MAX_CPUS];

static void report_id(void *arg)
{
    (void)arg;
    answer[this_cpu()->idx] = apic_id() | 0x80000000u;
}

static void check_calls(void)
{
    for (int i = 1; i < ncpus; i++) {
        answer[i] = 0;
        bool ok = smp_call(i, report_id, NULL, 1000);
        test_check(ok && answer[i] == (cpu_apic_ids[i] | 0x80000000u),
                   "call on cpu %d: %s, answer 0x%x", i, ok ? "done" : "timeout", answer[i]);
    }
}

static spinlock_t count_lock = SPINLOCK_INIT;
static volatile uint32_t shared_count;

static void count_up(void *arg)
{
    (void)arg;
    for (int i = 0; i < LOCK_ROUNDS; i++) {
        spin_lock(&count_lock);
        uint32_t v = shared_count;
        cpu_relax();
        shared_count = v + 1;
        spin_unlock(&count_lock);
    }
}

void test_main(void)
{
    smp_init();

    test_begin("smp-madt");
    test_check(madt_found, "no MADT found");
    test_check(madt_lists_bsp, "MADT does not list the BSP (APIC ID 0x%x)", cpu_apic_ids[0]);
    test_end();
    for (int i = 0; i < ncpus; i++)
        info("cpu %d: APIC ID 0x%x%s", i, cpu_apic_ids[i], i == 0 ? " (BSP)" : "");

    /* One by one. */
    int online = 1;
    for (int i = 1; i < ncpus; i++)
        online += smp_start_ap(i, 0);
    test_begin("smp-%d-cpus-online", ncpus);
    test_check(online == ncpus, "%d of %d CPUs online", online, ncpus);
    check_all_online("INIT-SIPI-SIPI");
    test_end();

    test_begin("smp-call");
    check_calls();
    test_end();

    test_begin("smp-restart-each");
    for (int i = 1; i < ncpus; i++)
        test_check(smp_start_ap(i, 0), "cpu %d did not come back", i);
    check_all_online("a second INIT-SIPI-SIPI");
    check_calls();
    test_end();

    test_begin("smp-restart-twice");
    for (int i = 1; i < ncpus; i++)
        test_check(smp_start_ap(i, SMP_TWICE), "cpu %d did not come back", i);
    check_all_online("INIT-SIPI-SIPI twice");
    check_calls();
    test_end();

    test_begin("smp-restart-shorthand");
    online = smp_start_all(SMP_SHORTHAND);
    test_check(online == ncpus, "%d of %d CPUs online", online, ncpus);
    check_all_online("INIT/SIPI to all-excluding-self");
    check_calls();
    test_end();

    /* xAPIC: the ICR's high half keeps what the guest wrote while the hypervisor sends IPIs of its own
     * from this CPU (its INIT emulation kicks each running AP from here). Else a guest that writes
     * ICR_HI and then ICR_LO could have its IPI go where the hypervisor's last one went. */
    if (!apic_x2apic_mode()) {
        test_begin("apic-icr-high-kept");
        apic_write(APIC_ICR_HI, 0xabu << 24);
        apic_write(APIC_ICR_LO, APIC_SH_OTHERS | APIC_DM_INIT | APIC_LEVEL_ASSERT);
        while (apic_read(APIC_ICR_LO) & APIC_ICR_BUSY)
            cpu_relax();
        mdelay(10);
        test_check(apic_read(APIC_ICR_HI) == 0xabu << 24, "ICR_HI 0x%x after an INIT to all-excluding-self, "
                   "expected 0xab000000", apic_read(APIC_ICR_HI));
        online = smp_start_all(SMP_SHORTHAND);
        test_check(online == ncpus, "%d of %d CPUs online again", online, ncpus);
        check_all_online("INIT/SIPI to all-excluding-self");
        test_end();
    }

    /* MP start-up without the second SIPI (SDM Vol. 3, 9.4: it may be omitted when the AP answers
     * the first): from a running AP, from an AP already parked in wait-for-SIPI by an earlier INIT,
     * and with two INITs before the SIPI. Each AP must come online with no other IPI sent. */
    test_begin("smp-init-one-sipi");
    for (int i = 1; i < ncpus; i++)
        test_check(smp_start_ap_seq(i, "IS"), "cpu %d not online after INIT, SIPI", i);
    check_all_online("INIT, SIPI");
    check_calls();
    test_end();

    test_begin("smp-parked-init-one-sipi");
    for (int i = 1; i < ncpus; i++) {
        smp_start_ap_seq(i, "I");
        test_check(smp_start_ap_seq(i, "IS"), "cpu %d (waiting for a SIPI) not online after INIT, SIPI", i);
    }
    check_all_online("INIT; INIT, SIPI");
    check_calls();
    test_end();

    test_begin("smp-init-sipi-sipi");
    for (int i = 1; i < ncpus; i++)
        test_check(smp_start_ap_seq(i, "ISS"), "cpu %d not online after INIT, SIPI, SIPI", i);
    check_all_online("INIT, SIPI, SIPI");
    check_calls();
    test_end();

    test_begin("smp-init-init-sipi");
    for (int i = 1; i < ncpus; i++)
        test_check(smp_start_ap_seq(i, "IIS"), "cpu %d not online after INIT, INIT, SIPI", i);
    check_all_online("INIT, INIT, SIPI");
    check_calls();
    test_end();

    test_begin("smp-spinlock");
    shared_count = 0;
    for (int i = 1; i < ncpus; i++)
        smp_call_async(i, count_up, NULL);
    count_up(NULL);
    for (int i = 1; i < ncpus; i++)
        test_check(smp_call_wait(i, 2000), "cpu %d did not finish", i);
    test_check(shared_count == (uint32_t)ncpus * LOCK_ROUNDS, "count %u, expected %u", shared_count,
               (uint32_t)ncpus * LOCK_ROUNDS);
    test_end();

    /* Fixed IPIs: APs idle with interrupts enabled; the library counts per vector and EOIs. */
    test_begin("apic-fixed-ipi-to-ap");
    for (int i = 1; i < ncpus; i++) {
        uint32_t before = cpus[i].irq_count[VEC_TEST];
        apic_send_ipi(cpu_apic_ids[i], APIC_DM_FIXED | APIC_LEVEL_ASSERT | VEC_TEST);
        bool got = wait_u32_eq(&cpus[i].irq_count[VEC_TEST], before + 1, 100);
        udelay(2000);
        test_check(got && cpus[i].irq_count[VEC_TEST] == before + 1, "cpu %d: %u interrupts, expected 1", i,
                   cpus[i].irq_count[VEC_TEST] - before);
    }
    test_end();

    test_begin("apic-self-ipi");
    {
        struct cpu *c = this_cpu();
        uint32_t before = c->irq_count[VEC_TEST + 1];
        apic_send_self_fixed(VEC_TEST + 1);        /* IF=0: pending until STI */
        udelay(100);
        test_check(c->irq_count[VEC_TEST + 1] == before, "self IPI delivered with IF=0");
        sti();
        wait_u32_eq(&c->irq_count[VEC_TEST + 1], before + 1, 100);
        udelay(2000);
        cli();
        test_check(c->irq_count[VEC_TEST + 1] == before + 1, "%u self IPIs taken, expected 1",
                   c->irq_count[VEC_TEST + 1] - before);
    }
    test_end();
}
