/* smp.c - AP start-up (INIT-SIPI-SIPI through the trampoline below 1 MiB) and cross-CPU calls. */
#include "lib.h"

#define AP_ONLINE_TIMEOUT_MS 1000

struct cpu cpus[MAX_CPUS];
volatile uint32_t ap_online_apic_id[MAX_CPUS];
uint64_t ap_stack_by_apic[256];
static uint8_t ap_stacks[MAX_CPUS][STACK_SIZE] __attribute__((aligned(4096)));
static bool smp_ready;

extern char tramp_start[], tramp_end[], tramp_cr3[], tramp_entry[], ap_entry64[];
void cpu_setup(struct cpu *c);     /* main.c: GS base, IDT */

void smp_init(void)
{
    if (smp_ready)
        return;
    smp_ready = true;
    acpi_find_cpus();
    for (int i = 1; i < ncpus; i++) {
        cpus[i].idx = i;
        cpus[i].apic_id = cpu_apic_ids[i];
        ap_stack_by_apic[cpu_apic_ids[i]] = (uint64_t)(uintptr_t)&ap_stacks[i][STACK_SIZE];
        ap_online_apic_id[i] = 0xffffffff;
    }
    uint8_t *t = phys(TRAMPOLINE_BASE);
    memcpy(t, tramp_start, (size_t)(tramp_end - tramp_start));
    *(uint64_t *)(t + (tramp_cr3 - tramp_start)) = read_cr3();
    *(uint64_t *)(t + (tramp_entry - tramp_start)) = (uint64_t)(uintptr_t)ap_entry64;
}

static int idx_by_apic(uint32_t id)
{
    for (int i = 1; i < ncpus; i++)
        if (cpu_apic_ids[i] == id)
            return i;
    return -1;
}

/* C entry of every AP (on its own stack, interrupts off). */
void ap_main(void)
{
    uint32_t initial_id = cpuid(1).b >> 24;
    int idx = idx_by_apic(initial_id);
    if (idx < 0)
        for (;;)
            asm volatile("cli; hlt");
    struct cpu *c = &cpus[idx];
    cpu_setup(c);
    apic_cpu_init();
    c->done_seq = c->call_seq;        /* forget calls that an INIT interrupted */
    c->in_nmi = 0;
    c->boot_count++;
    ap_online_apic_id[idx] = apic_id();
    c->online = 1;
    /* Idle loop: interrupts on, run smp_call() requests. */
    for (;;) {
        sti();
        while (c->call_seq == c->done_seq)
            cpu_relax();
        uint32_t seq = c->call_seq;
        c->call_fn(c->call_arg);
        c->done_seq = seq;
    }
}

static void reset_online(int idx)
{
    cpus[idx].online = 0;
    ap_online_apic_id[idx] = 0xffffffff;
}

/* INIT, 10 ms, SIPI, 200 us, SIPI to one APIC ID or (dest == ~0u) to all-excluding-self. */
static void init_sipi_sipi(uint32_t dest)
{
    uint32_t sh = dest == ~0u ? APIC_SH_OTHERS : APIC_SH_NONE;
    uint32_t d = dest == ~0u ? 0 : dest;
    uint32_t vec = TRAMPOLINE_BASE >> 12;
    apic_send_ipi(d, sh | APIC_DM_INIT | APIC_LEVEL_ASSERT);
    mdelay(10);
    apic_send_ipi(d, sh | APIC_DM_SIPI | APIC_LEVEL_ASSERT | vec);
    udelay(200);
    apic_send_ipi(d, sh | APIC_DM_SIPI | APIC_LEVEL_ASSERT | vec);
}

bool smp_wait_online(int idx, uint32_t timeout_ms)
{
    return wait_u32_eq(&cpus[idx].online, 1, timeout_ms);
}

bool smp_start_ap(int idx, unsigned flags)
{
    smp_init();
    if (idx <= 0 || idx >= ncpus)
        return false;
    reset_online(idx);
    init_sipi_sipi(cpu_apic_ids[idx]);
    if (flags & SMP_TWICE) {
        /* Back to back, as OVMF does. The first round may already have brought the AP online when
         * the second INIT stops it again, so "online" is only trusted once no restart can still be in
         * flight: after the second round, wait, let any restart settle, and wait again. */
        init_sipi_sipi(cpu_apic_ids[idx]);
        if (!smp_wait_online(idx, AP_ONLINE_TIMEOUT_MS))
            return false;
        mdelay(20);
    }
    return smp_wait_online(idx, AP_ONLINE_TIMEOUT_MS);
}

/* Sends the AP the IPIs seq names, in order ('I' INIT then 10 ms, 'S' SIPI then 200 us), and waits
 * for it to come online; no INIT-SIPI-SIPI around it. seq without an 'S' only parks the AP in
 * wait-for-SIPI (the result is then false). */
bool smp_start_ap_seq(int idx, const char *seq)
{
    smp_init();
    if (idx <= 0 || idx >= ncpus)
        return false;
    reset_online(idx);
    uint32_t d = cpu_apic_ids[idx];
    for (; *seq; seq++) {
        if (*seq == 'I') {
            apic_send_ipi(d, APIC_DM_INIT | APIC_LEVEL_ASSERT);
            mdelay(10);
        } else {
            apic_send_ipi(d, APIC_DM_SIPI | APIC_LEVEL_ASSERT | (TRAMPOLINE_BASE >> 12));
            udelay(200);
        }
    }
    return smp_wait_online(idx, AP_ONLINE_TIMEOUT_MS);
}

int smp_start_all(unsigned flags)
{
    smp_init();
    int online = 1;
    if (flags & SMP_SHORTHAND) {
        for (int i = 1; i < ncpus; i++)
            reset_online(i);
        init_sipi_sipi(~0u);
        if (flags & SMP_TWICE)
            init_sipi_sipi(~0u);
        for (int i = 1; i < ncpus; i++)
            online += smp_wait_online(i, AP_ONLINE_TIMEOUT_MS);
        return online;
    }
    for (int i = 1; i < ncpus; i++)
        online += smp_start_ap(i, flags);
    return online;
}

void smp_call_async(int idx, void (*fn)(void *), void *arg)
{
    struct cpu *c = &cpus[idx];
    c->call_fn = fn;
    c->call_arg = arg;
    barrier();
    c->call_seq = c->done_seq + 1;
}

bool smp_call_wait(int idx, uint32_t timeout_ms)
{
    struct cpu *c = &cpus[idx];
    return wait_u32_eq(&c->done_seq, c->call_seq, timeout_ms);
}

bool smp_call(int idx, void (*fn)(void *), void *arg, uint32_t timeout_ms)
{
    if (idx <= 0 || idx >= ncpus || !cpus[idx].online)
        return false;
    smp_call_async(idx, fn, arg);
    return smp_call_wait(idx, timeout_ms);
}
