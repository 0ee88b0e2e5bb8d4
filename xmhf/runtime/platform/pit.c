/* Delays with the 8254 PIT's channel 2 (gate and output on port 61h), polled: needs no interrupts and
 * no TSC calibration, and works the same on hardware, QEMU and Bochs. Not re-entrant across CPUs: the
 * runtime only waits this way on the BSP during start-up. */
#include <xmhf/runtime.h>
#include <x86/io.h>

#define PIT_HZ 1193182U
#define PIT_CH2 0x42
#define PIT_CMD 0x43
#define PORT_61 0x61

static void pit_wait_ticks(u16 ticks)
{
	u8 v = inb(PORT_61);

	outb(PORT_61, (u8)((v & ~0x03) | 0x00)); /* gate low, speaker off */
	outb(PIT_CMD, 0xb0);                      /* channel 2, lobyte/hibyte, mode 0 */
	outb(PIT_CH2, (u8)ticks);
	outb(PIT_CH2, (u8)(ticks >> 8));
	outb(PORT_61, (u8)((v & ~0x03) | 0x01)); /* gate high: count */
	for (u32 i = 0; i < 100000000; i++)
		if (inb(PORT_61) & 0x20)          /* OUT2 goes high at terminal count */
			break;
}

void udelay(u32 us)
{
	while (us) {
		u32 chunk = us > 50000 ? 50000 : us;
		u32 ticks = (u32)(((u64)chunk * PIT_HZ) / 1000000U);

		pit_wait_ticks((u16)(ticks ? ticks : 1));
		us -= chunk;
	}
}
