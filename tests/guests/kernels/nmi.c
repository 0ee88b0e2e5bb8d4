/* nmi.bin - NMI delivery and blocking.
 *
 * Self-NMIs are sent with the ICR's physical destination = own APIC ID (the SDM makes the
 * "self" shorthand valid for fixed interrupts only; Bochs turns a self-shorthand NMI into a fixed
 * interrupt with the ICR's vector - see the INFO probe at the end).
 * Checks: a self-NMI is taken exactly once even with IF=0, and again after IRET; an NMI sent from
 * inside the NMI handler stays pending until the handler's IRET and is then taken exactly once
 * (on the BSP and on every AP); the IRET of an exception handler inside the NMI handler also
 * unblocks NMIs (the pending NMI nests); an NMI to each AP (physical destination) and to all
 * excluding self arrives exactly once per AP and not on the sender; an NMI from an AP wakes the
 * BSP from HLT.
 */
#include "lib.h"

#define VEC_WAKE  0x42
#define VEC_PROBE 0x43
#define SPIN      20000

/* Wait (up to 100 ms) for *p to reach val, then a little longer so that extra deliveries show. */
#define SETTLE_US 2000
static bool settle(volatile uint32_t *p, uint32_t val)
{
    bool ok = wait_u32_eq(p, val, 100);
    udelay(SETTLE_US);
    return ok;
}

static void spin(int n)
{
    for (volatile int i = 0; i < n; i++)
        cpu_relax();
}

/* ---- NMI sent from inside the NMI handler ---- */
struct blocked_state {
    volatile uint32_t calls, count_at_entry, count_after_spin, nested_seen;
};
static struct blocked_state bstate[MAX_CPUS];

static void blocked_hook(struct cpu *c, struct regs *r)
{
    (void)r;
    struct blocked_state *s = &bstate[c->idx];
    if (++s->calls == 1) {
        s->count_at_entry = c->nmi_count;
        apic_send_nmi(c->apic_id);
        spin(SPIN);                       /* a wrongly unblocked NMI would nest here */
        s->count_after_spin = c->nmi_count;
    }
}

/* ---- NMI unblocked by the IRET of an exception handler inside the NMI handler ---- */
static volatile uint32_t exc_calls, exc_count_before_fault, exc_count_after_fault, exc_vector;

static void exc_iret_hook(struct cpu *c, struct regs *r)
{
    (void)r;
    if (++exc_calls == 1) {
        apic_send_nmi(c->apic_id);
        spin(SPIN);
        exc_count_before_fault = c->nmi_count;
        /* #UD through an extable fixup: its handler IRETs, which unblocks NMIs. */
        exc_vector = (uint32_t)ud2_safe();
        spin(SPIN);
        exc_count_after_fault = c->nmi_count;
    }
}

/* ---- HLT woken by an NMI from an AP ---- */
static volatile uint32_t bsp_halting, bsp_woke, backup_sent;

static void poke_bsp(void *arg)
{
    (void)arg;
    while (!bsp_halting)
        cpu_relax();
    spin(SPIN);
    apic_send_nmi(cpus[0].apic_id);
    for (int i = 0; i < 200 && !bsp_woke; i++)
        spin(SPIN);
    if (!bsp_woke) {
        backup_sent = 1;
        apic_send_ipi(cpus[0].apic_id, APIC_DM_FIXED | APIC_LEVEL_ASSERT | VEC_WAKE);
    }
}

static void set_ap_hook(void *arg)
{
    this_cpu()->nmi_hook = (nmi_hook_t)arg;
}

static void check_blocked(int i, uint32_t base)
{
    struct blocked_state *s = &bstate[i];
    test_check(s->calls == 2, "cpu %d: handler ran %u times, expected 2", i, s->calls);
    test_check(s->count_after_spin == s->count_at_entry,
               "cpu %d: NMI delivered inside the NMI handler (%u -> %u)", i, s->count_at_entry,
               s->count_after_spin);
    test_check(cpus[i].nmi_count == base + 2, "cpu %d: %u NMIs, expected 2", i, cpus[i].nmi_count - base);
    test_check(cpus[i].nmi_nested == 0, "cpu %d: NMI handler nested", i);
}

void test_main(void)
{
    struct cpu *c = this_cpu();
    uint32_t me = c->apic_id;

    test_begin("nmi-self");
    c->nmi_count = 0;
    apic_send_nmi(me);                    /* IF=0 throughout: NMIs ignore it */
    settle(&c->nmi_count, 1);
    test_check(c->nmi_count == 1, "%u NMIs taken, expected 1", c->nmi_count);
    test_check(!(read_flags() & 0x200), "IF got set");
    test_end();

    test_begin("nmi-self-after-iret");
    apic_send_nmi(me);
    settle(&c->nmi_count, 2);
    test_check(c->nmi_count == 2, "%u NMIs taken in total, expected 2", c->nmi_count);
    test_check(c->nmi_nested == 0, "NMI handler nested");
    test_end();

    test_begin("nmi-blocked-in-handler");
    {
        uint32_t base = c->nmi_count;
        c->nmi_hook = blocked_hook;
        apic_send_nmi(me);
        settle(&c->nmi_count, base + 2);
        c->nmi_hook = NULL;
        check_blocked(0, base);
        apic_send_nmi(me);
        settle(&c->nmi_count, base + 3);
        test_check(c->nmi_count == base + 3, "NMI after the blocked pair: %u NMIs, expected 3",
                   c->nmi_count - base);
    }
    test_end();

    test_begin("nmi-unblocked-by-exception-iret");
    {
        uint32_t base = c->nmi_count;
        c->nmi_nested = 0;
        c->nmi_hook = exc_iret_hook;
        apic_send_nmi(me);
        settle(&c->nmi_count, base + 2);
        c->nmi_hook = NULL;
        test_check(exc_vector == EXC_UD, "UD2 gave %s, expected #UD", exception_name((int)exc_vector));
        test_check(exc_count_before_fault == base + 1, "NMI delivered before the exception (%u)",
                   exc_count_before_fault - base);
        test_check(exc_count_after_fault == base + 2, "pending NMI not taken after the #UD handler's IRET (%u)",
                   exc_count_after_fault - base);
        test_check(c->nmi_count == base + 2, "%u NMIs, expected 2", c->nmi_count - base);
        test_check(c->nmi_nested == 1, "NMI nested %u times, expected 1", c->nmi_nested);
        c->nmi_nested = 0;
    }
    test_end();

    int online = smp_start_all(0);
    info("%d CPUs, %d online", ncpus, online);

    test_begin("nmi-to-each-ap");
    uint32_t bsp_before = c->nmi_count;
    test_check(online == ncpus, "%d of %d CPUs online", online, ncpus);
    for (int i = 1; i < ncpus; i++) {
        uint32_t before = cpus[i].nmi_count;
        apic_send_nmi(cpu_apic_ids[i]);
        bool got = settle(&cpus[i].nmi_count, before + 1);
        test_check(got && cpus[i].nmi_count == before + 1, "cpu %d: %u NMIs, expected 1", i,
                   cpus[i].nmi_count - before);
    }
    test_check(c->nmi_count == bsp_before, "BSP took %u NMIs meant for APs", c->nmi_count - bsp_before);
    test_end();

    test_begin("nmi-all-excluding-self");
    {
        uint32_t before[MAX_CPUS];
        for (int i = 0; i < ncpus; i++)
            before[i] = cpus[i].nmi_count;
        apic_send_ipi(0, APIC_SH_OTHERS | APIC_DM_NMI | APIC_LEVEL_ASSERT);
        for (int i = 1; i < ncpus; i++)
            wait_u32_eq(&cpus[i].nmi_count, before[i] + 1, 100);
        udelay(SETTLE_US);
        for (int i = 1; i < ncpus; i++)
            test_check(cpus[i].nmi_count == before[i] + 1, "cpu %d: %u NMIs, expected 1", i,
                       cpus[i].nmi_count - before[i]);
        test_check(c->nmi_count == before[0], "sender took %u NMIs", c->nmi_count - before[0]);
    }
    test_end();

    test_begin("nmi-blocked-in-handler-ap");
    for (int i = 1; i < ncpus; i++) {
        if (!test_check(smp_call(i, set_ap_hook, (void *)blocked_hook, 1000), "cpu %d: no answer", i))
            continue;
        uint32_t base = cpus[i].nmi_count;
        apic_send_nmi(cpu_apic_ids[i]);
        settle(&cpus[i].nmi_count, base + 2);
        smp_call(i, set_ap_hook, NULL, 1000);
        check_blocked(i, base);
    }
    test_end();

    test_begin("nmi-wakes-hlt");
    if (ncpus < 2 || !cpus[1].online) {
        info("nmi-wakes-hlt: needs an AP, nothing to check");
    } else {
        uint32_t nmi_before = c->nmi_count, wake_before = c->irq_count[VEC_WAKE];
        bsp_halting = bsp_woke = backup_sent = 0;
        smp_call_async(1, poke_bsp, NULL);
        bsp_halting = 1;
        asm volatile("sti; hlt; cli" ::: "memory");
        bsp_woke = 1;
        test_check(smp_call_wait(1, 1000), "AP did not finish");
        udelay(100);
        test_check(c->nmi_count == nmi_before + 1, "%u NMIs taken, expected 1", c->nmi_count - nmi_before);
        test_check(!backup_sent && c->irq_count[VEC_WAKE] == wake_before,
                   "HLT not ended by the NMI (backup IPI sent)");
    }
    test_end();

    /* INFO probe: the self shorthand with delivery mode NMI (not a valid combination per SDM). */
    {
        uint32_t n0 = c->nmi_count, f0 = c->irq_count[VEC_PROBE];
        apic_send_ipi(0, APIC_SH_SELF | APIC_DM_NMI | APIC_LEVEL_ASSERT | VEC_PROBE);
        sti();
        udelay(1000);
        cli();
        info("self-shorthand NMI: nmi=%u fixed-vector-0x%x=%u", c->nmi_count - n0, VEC_PROBE,
             c->irq_count[VEC_PROBE] - f0);
    }
}
