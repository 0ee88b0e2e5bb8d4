/* TPM FIFO interface protocol (PTP 2.0 section 6.5). Every wait has the PTP time limit, so a TPM that
 * stops answering costs seconds and one message, not the boot. */
#include <lib/tis.h>

/* INTF_CAPABILITY bits 30:28: 3 = FIFO interface of a TPM 2.0; 0 and 2 are TIS 1.2/1.3 (TPM 1.2). */
#define INTF_VERSION(c) (((c) >> 28) & 7)

/* PTP table 17: A (750 ms) for register handshakes, B (2 s) for locality and ready; commands get 5 s
 * (extends and reads take milliseconds). */
#define TIMEOUT_A_US 750000u
#define TIMEOUT_B_US 2000000u
#define TIMEOUT_EXEC_US 5000000u

/* Waits until (rd8(off) & mask) == want; false on timeout. */
static bool wait8(const struct tis_io *io, u32 off, u8 mask, u8 want, u32 us)
{
	for (u32 i = 0; i < us; i++) {
		if ((io->rd8(io->ctx, off) & mask) == want)
			return true;
		io->delay_us(io->ctx);
	}
	return (io->rd8(io->ctx, off) & mask) == want;
}

static u32 burst_count(const struct tis_io *io, u32 us)
{
	for (u32 i = 0; i < us; i++) {
		u32 b = (io->rd32(io->ctx, TIS_STS) >> 8) & 0xffff;
		if (b)
			return b;
		io->delay_us(io->ctx);
	}
	return 0;
}

enum tis_probe tis_probe(const struct tis_io *io, struct tis *t)
{
	const u8 both = TIS_ACCESS_VALID | TIS_ACCESS_ACTIVE_LOCALITY;

	t->access = io->rd8(io->ctx, TIS_ACCESS);
	t->did_vid = io->rd32(io->ctx, TIS_DID_VID);
	t->rid = io->rd8(io->ctx, TIS_RID);
	if (t->access == 0xff || t->did_vid == 0xffffffffu || t->did_vid == 0)
		return TIS_ABSENT;
	if (!(t->access & TIS_ACCESS_VALID))
		return TIS_NO_ANSWER;
	if (INTF_VERSION(io->rd32(io->ctx, TIS_INTF_CAPABILITY)) != 3)
		return TIS_TPM12;
	if (!(t->access & TIS_ACCESS_ACTIVE_LOCALITY)) {
		io->wr8(io->ctx, TIS_ACCESS, TIS_ACCESS_REQUEST_USE);
		if (!wait8(io, TIS_ACCESS, both, both, TIMEOUT_B_US))
			return TIS_NO_ANSWER;
	}
	return TIS_TPM20;
}

void tis_release(const struct tis_io *io)
{
	io->wr8(io->ctx, TIS_ACCESS, TIS_ACCESS_ACTIVE_LOCALITY);
}

static u32 fail(const struct tis_io *io, const char **why, const char *what)
{
	*why = what;
	io->wr8(io->ctx, TIS_STS, TIS_STS_COMMAND_READY); /* abort whatever is in progress */
	return 0;
}

u32 tis_transmit(const struct tis_io *io, const u8 *cmd, u32 len, u8 *resp, u32 cap, const char **why)
{
	u32 i, n, size;

	io->wr8(io->ctx, TIS_STS, TIS_STS_COMMAND_READY);
	if (!wait8(io, TIS_STS, TIS_STS_COMMAND_READY, TIS_STS_COMMAND_READY, TIMEOUT_B_US))
		return fail(io, why, "the TPM did not become ready for a command (timeout)");
	for (i = 0; i < len;) {
		u32 b = burst_count(io, TIMEOUT_A_US);
		if (!b)
			return fail(io, why, "the TPM took no command bytes (burst count 0, timeout)");
		for (; b && i < len; b--)
			io->wr8(io->ctx, TIS_DATA_FIFO, cmd[i++]);
	}
	if (!wait8(io, TIS_STS, TIS_STS_VALID, TIS_STS_VALID, TIMEOUT_A_US) ||
	    (io->rd8(io->ctx, TIS_STS) & TIS_STS_EXPECT))
		return fail(io, why, "the TPM expects more command bytes than the command has");
	io->wr8(io->ctx, TIS_STS, TIS_STS_GO);
	if (!wait8(io, TIS_STS, TIS_STS_VALID | TIS_STS_DATA_AVAIL, TIS_STS_VALID | TIS_STS_DATA_AVAIL,
		   TIMEOUT_EXEC_US))
		return fail(io, why, "no response from the TPM (timeout)");
	/* The header (tag, size, code) first, then the rest as its size says. */
	size = 10;
	for (n = 0; n < size;) {
		u32 b = burst_count(io, TIMEOUT_A_US);
		if (!b)
			return fail(io, why, "the TPM's response stopped short (burst count 0, timeout)");
		for (; b && n < size; b--) {
			resp[n++] = io->rd8(io->ctx, TIS_DATA_FIFO);
			if (n == 10) {
				size = (u32)resp[2] << 24 | (u32)resp[3] << 16 | (u32)resp[4] << 8 | resp[5];
				if (size < 10 || size > cap)
					return fail(io, why, "the TPM's response size is out of range");
			}
		}
	}
	io->wr8(io->ctx, TIS_STS, TIS_STS_COMMAND_READY);
	return size;
}
