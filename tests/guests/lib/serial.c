/* serial.c - polled 16550 UART, 115200 8N1. */
#include "lib.h"

static uint16_t uart = 0x3f8;

void serial_init(uint16_t port)
{
    uart = port;
    outb(uart + 1, 0x00);   /* no interrupts */
    outb(uart + 3, 0x80);   /* DLAB */
    outb(uart + 0, 1);      /* divisor 1: 115200 baud */
    outb(uart + 1, 0);
    outb(uart + 3, 0x03);   /* 8N1 */
    outb(uart + 2, 0x07);   /* FIFO on, cleared */
    outb(uart + 4, 0x03);   /* DTR, RTS */
}

void serial_putc(char c)
{
    for (uint32_t i = 0; i < 10000000; i++)
        if (inb(uart + 5) & 0x20)   /* THR empty */
            break;
    outb(uart, (uint8_t)c);
}

/* Wait until the transmitter is completely empty (before power-off). */
void serial_flush(void)
{
    for (uint32_t i = 0; i < 10000000; i++)
        if (inb(uart + 5) & 0x40)
            break;
}
