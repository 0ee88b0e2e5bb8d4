/* Power-off for emulators (cmdline on_ready=poweroff): the Bochs shutdown port, QEMU's isa-debug-exit
 * device (tools/bios-qemu.sh adds it at port 0xf4) and the ACPI PM1a control ports QEMU's and Bochs's
 * firmware use. Real machines get ACPI S5 from the guest OS, not from here. */
#include <xmhf/runtime.h>
#include <x86/cpu.h>
#include <x86/io.h>

NORETURN void platform_poweroff(void)
{
	static const char bochs[] = "Shutdown";

	printf("XMHF: powering off\n");
	console_flush();
	for (const char *s = bochs; *s; s++)
		outb(0x8900, (u8)*s);
	outb(0xf4, 0x31);         /* QEMU isa-debug-exit: exit status (0x31 << 1) | 1 */
	outw(0x604, 0x2000);      /* QEMU PM1a_CNT: SLP_TYP=0, SLP_EN */
	outw(0xb004, 0x2000);     /* Bochs BIOS PM1a_CNT */
	cpu_halt_forever();
}
