/* apic.c - local APIC access in xAPIC (MMIO) or x2APIC (MSR) mode. */
#include "lib.h"

#define X2APIC_MSR(reg) (0x800 + ((reg) >> 4))

bool want_x2apic;
static uint64_t apic_mmio = 0xfee00000;

/* Cached per CPU by apic_cpu_init(). */
bool apic_x2apic_mode(void)
{
    return this_cpu()->x2apic != 0;
}

uint32_t apic_read(uint32_t reg)
{
    if (apic_x2apic_mode())
        return (uint32_t)rdmsr(X2APIC_MSR(reg));
    return *(volatile uint32_t *)phys(apic_mmio + reg);
}

void apic_write(uint32_t reg, uint32_t val)
{
    if (apic_x2apic_mode())
        wrmsr(X2APIC_MSR(reg), val);
    else
        *(volatile uint32_t *)phys(apic_mmio + reg) = val;
}

uint32_t apic_id(void)
{
    if (apic_x2apic_mode())
        return (uint32_t)rdmsr(X2APIC_MSR(APIC_ID));
    return apic_read(APIC_ID) >> 24;
}

void apic_eoi(void)
{
    apic_write(APIC_EOI, 0);
}

static void xapic_wait_idle(void)
{
    for (uint32_t i = 0; i < 1000000; i++)
        if (!(apic_read(APIC_ICR_LO) & APIC_ICR_BUSY))
            return;
}

void apic_send_ipi(uint32_t dest, uint32_t icr_lo)
{
    if (apic_x2apic_mode()) {
        wrmsr(X2APIC_MSR(APIC_ICR_LO), ((uint64_t)dest << 32) | icr_lo);
        return;
    }
    uint64_t flags = read_flags();
    cli();
    xapic_wait_idle();
    apic_write(APIC_ICR_HI, dest << 24);
    apic_write(APIC_ICR_LO, icr_lo);
    xapic_wait_idle();
    if (flags & 0x200)
        sti();
}

void apic_send_self_fixed(uint8_t vector)
{
    if (apic_x2apic_mode())
        wrmsr(0x83f, vector);                     /* SELF IPI */
    else
        apic_send_ipi(0, APIC_SH_SELF | APIC_DM_FIXED | vector);
}

/* Per-CPU set-up: switch to x2APIC mode when asked (and supported), software-enable the APIC. */
void apic_cpu_init(void)
{
    uint64_t base = rdmsr(MSR_IA32_APIC_BASE);
    apic_mmio = base & 0xfffff000ull & ((1ull << 52) - 1);
    if (want_x2apic && !(base & APIC_BASE_EXTD) && (cpuid(1).c & (1u << 21)))
        wrmsr(MSR_IA32_APIC_BASE, base | APIC_BASE_EN | APIC_BASE_EXTD);
    this_cpu()->x2apic = (rdmsr(MSR_IA32_APIC_BASE) & APIC_BASE_EXTD) != 0;
    apic_write(APIC_TPR, 0);
    apic_write(APIC_SVR, 0x100 | SPURIOUS_VECTOR);
}
