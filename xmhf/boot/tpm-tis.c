/* TPM FIFO interface driver (PTP 2.0 section 6.5): claim locality 0, send a command through the data
 * FIFO in bursts, start it, read the response. Every wait has a time limit, so a TPM that stops
 * answering costs a few seconds and one message, not the boot. */
#include "tpm-tis.h"
#include <xmhf/console.h>
#include <x86/io.h>

#define TIS_ACCESS 0x000
#define TIS_INTF_CAPABILITY 0x014
#define TIS_STS 0x018
#define TIS_DATA_FIFO 0x024
#define TIS_DID_VID 0xf00
#define TIS_RID 0xf04

#define ACCESS_VALID 0x80            /* tpmRegValidSts */
#define ACCESS_ACTIVE_LOCALITY 0x20
#define ACCESS_REQUEST_USE 0x02
#define STS_VALID 0x80
#define STS_COMMAND_READY 0x40
#define STS_GO 0x20
#define STS_DATA_AVAIL 0x10
#define STS_EXPECT 0x08
/* INTF_CAPABILITY bits 30:28: 3 = FIFO interface of a TPM 2.0; 0 and 2 are TIS 1.2/1.3 (TPM 1.2). */
#define INTF_VERSION(c) (((c) >> 28) & 7)

/* PTP table 17 timeouts: A (750 ms) for register handshakes, B (2 s) for locality and ready, and a
 * generous 5 s for command execution (extends and reads take milliseconds). */
#define TIMEOUT_A_US 750000u
#define TIMEOUT_B_US 2000000u
#define TIMEOUT_EXEC_US 5000000u

static volatile u8 *reg8(u32 off)
{
	return (volatile u8 *)(uintptr_t)(TIS_BASE + off);
}

static u8 rd8(u32 off)
{
	return *reg8(off);
}

static u32 rd32(u32 off)
{
	return *(volatile u32 *)(uintptr_t)(TIS_BASE + off);
}

static void wr8(u32 off, u8 v)
{
	*reg8(off) = v;
}

/* About a microsecond: an I/O to the POST port, as in the classic ISA delay. */
static void udelay1(void)
{
	outb(0x80, 0);
}

/* Waits until (reg8(off) & mask) == want; false on timeout. */
static bool wait8(u32 off, u8 mask, u8 want, u32 us)
{
	for (u32 i = 0; i < us; i++) {
		if ((rd8(off) & mask) == want)
			return true;
		udelay1();
	}
	return (rd8(off) & mask) == want;
}

static u32 burst_count(u32 us)
{
	for (u32 i = 0; i < us; i++) {
		u32 b = (rd32(TIS_STS) >> 8) & 0xffff;
		if (b)
			return b;
		udelay1();
	}
	return 0;
}

enum tis_probe tis_probe(struct tis *t)
{
	t->access = rd8(TIS_ACCESS);
	t->did_vid = rd32(TIS_DID_VID);
	t->rid = rd8(TIS_RID);
	if (t->access == 0xff || t->did_vid == 0xffffffffu || t->did_vid == 0)
		return TIS_ABSENT;
	if (!(t->access & ACCESS_VALID))
		return TIS_NO_ANSWER;
	if (INTF_VERSION(rd32(TIS_INTF_CAPABILITY)) != 3)
		return TIS_TPM12;
	if (!(t->access & ACCESS_ACTIVE_LOCALITY)) {
		wr8(TIS_ACCESS, ACCESS_REQUEST_USE);
		if (!wait8(TIS_ACCESS, ACCESS_VALID | ACCESS_ACTIVE_LOCALITY, ACCESS_VALID | ACCESS_ACTIVE_LOCALITY,
			   TIMEOUT_B_US))
			return TIS_NO_ANSWER;
	}
	return TIS_TPM20;
}

void tis_release(void)
{
	wr8(TIS_ACCESS, ACCESS_ACTIVE_LOCALITY);
}

static u32 tis_fail(const char *what)
{
	printf("XMHF: TPM: %s\n", what);
	wr8(TIS_STS, STS_COMMAND_READY); /* abort whatever is in progress */
	return 0;
}

u32 tis_transmit(const u8 *cmd, u32 len, u8 *resp, u32 cap)
{
	u32 i, n, size;

	wr8(TIS_STS, STS_COMMAND_READY);
	if (!wait8(TIS_STS, STS_COMMAND_READY, STS_COMMAND_READY, TIMEOUT_B_US))
		return tis_fail("the TPM did not become ready for a command (timeout)");
	for (i = 0; i < len;) {
		u32 b = burst_count(TIMEOUT_A_US);
		if (!b)
			return tis_fail("the TPM took no command bytes (burst count 0, timeout)");
		for (; b && i < len; b--)
			wr8(TIS_DATA_FIFO, cmd[i++]);
	}
	if (!wait8(TIS_STS, STS_VALID, STS_VALID, TIMEOUT_A_US) || (rd8(TIS_STS) & STS_EXPECT))
		return tis_fail("the TPM expects more command bytes than the command has");
	wr8(TIS_STS, STS_GO);
	if (!wait8(TIS_STS, STS_VALID | STS_DATA_AVAIL, STS_VALID | STS_DATA_AVAIL, TIMEOUT_EXEC_US))
		return tis_fail("no response from the TPM (timeout)");
	/* The header (tag, size, code) first, then the rest as its size says. */
	size = 10;
	for (n = 0; n < size;) {
		u32 b = burst_count(TIMEOUT_A_US);
		if (!b)
			return tis_fail("the TPM's response stopped short (burst count 0, timeout)");
		for (; b && n < size; b--)
			resp[n++] = rd8(TIS_DATA_FIFO);
		if (n == 10 && size == 10) {
			size = (u32)resp[2] << 24 | (u32)resp[3] << 16 | (u32)resp[4] << 8 | resp[5];
			if (size < 10 || size > cap)
				return tis_fail("the TPM's response size is out of range");
		}
	}
	wr8(TIS_STS, STS_COMMAND_READY);
	return size;
}
