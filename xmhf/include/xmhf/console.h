/* Serial console shared by init and the runtime: a polled 16550 UART and printf with whole-line
 * output under a lock, so lines from several CPUs never interleave. */
#ifndef XMHF_CONSOLE_H
#define XMHF_CONSOLE_H
#include <xmhf/types.h>

void uart16550_init(u16 port, u32 baud, u8 data_bits, char parity, u8 stop_bits);
void uart16550_putc(u16 port, char c);
void uart16550_flush(u16 port);

/* Selects the UART used by printf (0 = none: output dropped). */
void console_init(u16 port, u32 baud, u8 data_bits, char parity, u8 stop_bits);
void console_write(const char *s, size_t n);
void console_flush(void);

int printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int vprintf(const char *fmt, va_list ap);

#endif
