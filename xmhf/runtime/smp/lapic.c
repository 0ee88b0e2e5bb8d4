/* Local APIC access for the runtime: xAPIC through MMIO, or x2APIC through MSRs when the firmware left
 * the APIC in x2APIC mode (SDM Vol. 3, 11.12). */
#include <xmhf/runtime.h>
#include <x86/cpu.h>
#include <x86/lapic.h>
#include <x86/msr.h>

static volatile u32 *lapic_mmio;

/* The guest may switch its (that is, the real) APIC to x2APIC mode at any time: ask the CPU. */
static bool x2apic_mode(void)
{
	return (rdmsr(MSR_IA32_APIC_BASE) & APIC_BASE_EXTD) != 0;
}

static u32 lapic_read(u32 reg)
{
	if (x2apic_mode())
		return (u32)rdmsr(MSR_X2APIC_BASE + (reg >> 4));
	return lapic_mmio[reg / 4];
}

void lapic_init_bsp(u64 base)
{
	u64 apic_base = rdmsr(MSR_IA32_APIC_BASE);

	lapic_mmio = (volatile u32 *)(uintptr_t)(base ? base : (apic_base & ~0xfffULL));
	if (!(apic_base & APIC_BASE_EN))
		panic("the BSP's local APIC is disabled (IA32_APIC_BASE=0x%llx)", (unsigned long long)apic_base);
}

u32 lapic_read_id(void)
{
	return x2apic_mode() ? lapic_read(LAPIC_ID) : lapic_read(LAPIC_ID) >> 24;
}

bool lapic_wait_idle(void)
{
	if (x2apic_mode())
		return true; /* x2APIC ICR writes complete synchronously */
	for (u32 i = 0; i < 1000; i++) {
		if (!(lapic_mmio[LAPIC_ICR_LO / 4] & ICR_SEND_PENDING))
			return true;
		udelay(10);
	}
	return false;
}

/* xAPIC: the ICR's high half is the guest's too (it writes it, then ICR_LO to send; lapic-trap.c), so
 * it gets back what it held: the hypervisor runs with interrupts off and sends nothing from NMI
 * context, so nothing of the guest's comes between. */
void lapic_send_ipi(u32 apic_id, u32 icr_low)
{
	u32 guest_hi;

	if (x2apic_mode()) {
		wrmsr(MSR_X2APIC_BASE + (LAPIC_ICR_LO >> 4), ((u64)apic_id << 32) | icr_low);
		return;
	}
	guest_hi = lapic_mmio[LAPIC_ICR_HI / 4];
	lapic_mmio[LAPIC_ICR_HI / 4] = apic_id << 24;
	lapic_mmio[LAPIC_ICR_LO / 4] = icr_low;
	if (!lapic_wait_idle())
		panic("the local APIC did not send an IPI (ICR 0x%x to APIC id %u)", icr_low, apic_id);
	lapic_mmio[LAPIC_ICR_HI / 4] = guest_hi;
}
