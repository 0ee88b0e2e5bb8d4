/* Polled 16550 UART (PC16550D data sheet). */
#include <xmhf/console.h>
#include <x86/io.h>

#define UART_THR 0 /* transmit holding (DLAB=0) */
#define UART_DLL 0 /* divisor latch low (DLAB=1) */
#define UART_IER 1
#define UART_DLM 1
#define UART_FCR 2
#define UART_LCR 3
#define UART_MCR 4
#define UART_LSR 5
#define LSR_THRE 0x20
#define LSR_TEMT 0x40
#define LCR_DLAB 0x80

/* Waits (bounded) until every byte has left the shift register, so that reprogramming the UART or
 * powering off loses no output. */
void uart16550_flush(u16 port)
{
	for (u32 i = 0; i < 1000000; i++)
		if (inb(port + UART_LSR) & LSR_TEMT)
			break;
}

void uart16550_init(u16 port, u32 baud, u8 data_bits, char parity, u8 stop_bits)
{
	u32 divisor = baud ? 115200 / baud : 1;
	u8 lcr = (u8)((data_bits - 5) & 3);

	if (divisor == 0)
		divisor = 1;
	uart16550_flush(port);
	if (stop_bits == 2)
		lcr |= 1 << 2;
	if (parity == 'o')
		lcr |= 1 << 3;
	else if (parity == 'e')
		lcr |= 3 << 3;
	outb(port + UART_IER, 0);    /* polled: no interrupts */
	outb(port + UART_LCR, LCR_DLAB);
	outb(port + UART_DLL, (u8)divisor);
	outb(port + UART_DLM, (u8)(divisor >> 8));
	outb(port + UART_LCR, lcr);
	outb(port + UART_FCR, 0x07); /* enable and clear FIFOs */
	outb(port + UART_MCR, 0x03); /* DTR, RTS */
}

void uart16550_putc(u16 port, char c)
{
	/* Bounded wait: a missing UART (LSR reads 0xff, or never ready) must not hang the boot. */
	for (u32 i = 0; i < 1000000; i++)
		if (inb(port + UART_LSR) & LSR_THRE)
			break;
	outb(port + UART_THR, (u8)c);
}
