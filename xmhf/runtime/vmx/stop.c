/* Stopping the machine after a report (guest triple fault, security violation, hypervisor bug): every
 * other CPU is parked by an NMI, then the cmdline's on_stop decides: halt, reset or power off. */
#include <xmhf/runtime.h>
#include <xmhf/vcpu.h>
#include <x86/cpu.h>
#include <x86/io.h>
#include <x86/lapic.h>

extern volatile u32 xmhf_stopping;

NORETURN void xmhf_stop(const char *why)
{
	printf("XMHF: stopping the machine: %s\n", why);
	if (__atomic_exchange_n(&xmhf_stopping, 1, __ATOMIC_ACQ_REL)) {
		/* Another CPU is already stopping the machine (or this one failed while doing so). */
		printf("XMHF: CPU halted.\n");
		cpu_halt_forever();
	}
	if (ncpus > 1 && cpu_table && cpu_table[0]->online)
		lapic_send_ipi(0, ICR_DELIVERY_NMI | ICR_SHORTHAND_OTHERS);
	switch (boot_info->cmdline.on_stop) {
	case ON_STOP_POWEROFF:
		platform_poweroff();
	case ON_STOP_RESET:
		printf("XMHF: resetting\n");
		console_flush();
		outb(0xcf9, 0x06); /* PCI reset control: hard reset */
		outb(0x64, 0xfe);  /* keyboard controller reset line */
		cpu_halt_forever();
	default:
		printf("XMHF: CPU halted.\n");
		cpu_halt_forever();
	}
}
