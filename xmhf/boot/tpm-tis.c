/* MMIO accessors of the TPM's locality-0 FIFO registers (PTP 2.0 section 6.5). */
#include "tpm-tis.h"
#include <x86/io.h>

static u8 rd8(void *ctx, u32 off)
{
	(void)ctx;
	return *(volatile u8 *)(uintptr_t)(TIS_BASE + off);
}

static u32 rd32(void *ctx, u32 off)
{
	(void)ctx;
	return *(volatile u32 *)(uintptr_t)(TIS_BASE + off);
}

static void wr8(void *ctx, u32 off, u8 v)
{
	(void)ctx;
	*(volatile u8 *)(uintptr_t)(TIS_BASE + off) = v;
}

/* About a microsecond: an I/O to the POST port, the classic ISA delay. */
static void delay_us(void *ctx)
{
	(void)ctx;
	outb(0x80, 0);
}

const struct tis_io tis_mmio = { rd8, rd32, wr8, delay_us, NULL };
