/* printf on the serial console. Each call formats into a buffer and writes it under a lock, so a line
 * printed by one CPU is never mixed with another's. The lock is given up after a bounded spin: a CPU that
 * faults or takes an NMI while printing must not deadlock every other CPU's output. */
#include <xmhf/console.h>
#include <lib/printf.h>

static u16 console_port;
static volatile u32 console_lock;

void console_init(u16 port, u32 baud, u8 data_bits, char parity, u8 stop_bits)
{
	console_port = port;
	if (port)
		uart16550_init(port, baud, data_bits, parity, stop_bits);
}

static void lock(void)
{
	for (u32 spins = 0; spins < 50000000; spins++) {
		if (!__atomic_exchange_n(&console_lock, 1, __ATOMIC_ACQUIRE))
			return;
		__asm__ volatile("pause");
	}
	/* Holder is presumably dead: take the lock anyway. */
}

static void unlock(void)
{
	__atomic_store_n(&console_lock, 0, __ATOMIC_RELEASE);
}

static void write_unlocked(const char *s, size_t n)
{
	if (!console_port)
		return;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '\n')
			uart16550_putc(console_port, '\r');
		uart16550_putc(console_port, s[i]);
	}
}

void console_write(const char *s, size_t n)
{
	lock();
	write_unlocked(s, n);
	unlock();
}

void console_flush(void)
{
	if (console_port)
		uart16550_flush(console_port);
}

int vprintf(const char *fmt, va_list ap)
{
	char buf[512];
	int n = lib_vsnprintf(buf, sizeof(buf), fmt, ap);
	size_t len = n < 0 ? 0 : (size_t)n;

	if (len >= sizeof(buf))
		len = sizeof(buf) - 1;
	console_write(buf, len);
	return n;
}

int printf(const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vprintf(fmt, ap);
	va_end(ap);
	return n;
}
