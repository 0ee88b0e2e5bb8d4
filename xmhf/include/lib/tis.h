/* The TPM's FIFO (TIS) interface protocol, locality 0 (TCG PC Client Platform TPM Profile (PTP) 2.0,
 * section 6.5 "FIFO Interface"): probe, claim the locality, send a command in bursts, read the
 * response. Registers are reached through callbacks, so host unit tests drive it against a model of
 * the device (including one that stops answering). init's MMIO accessors: xmhf/boot/tpm-tis.c. */
#ifndef LIB_TIS_H
#define LIB_TIS_H
#include <xmhf/types.h>

#define TIS_ACCESS 0x000
#define TIS_INTF_CAPABILITY 0x014
#define TIS_STS 0x018
#define TIS_DATA_FIFO 0x024
#define TIS_DID_VID 0xf00
#define TIS_RID 0xf04

#define TIS_ACCESS_VALID 0x80            /* tpmRegValidSts */
#define TIS_ACCESS_ACTIVE_LOCALITY 0x20
#define TIS_ACCESS_REQUEST_USE 0x02
#define TIS_STS_VALID 0x80
#define TIS_STS_COMMAND_READY 0x40
#define TIS_STS_GO 0x20
#define TIS_STS_DATA_AVAIL 0x10
#define TIS_STS_EXPECT 0x08

struct tis_io {
	u8 (*rd8)(void *ctx, u32 off);
	u32 (*rd32)(void *ctx, u32 off);
	void (*wr8)(void *ctx, u32 off, u8 v);
	void (*delay_us)(void *ctx);     /* about a microsecond */
	void *ctx;
};

enum tis_probe { TIS_ABSENT, TIS_TPM12, TIS_TPM20, TIS_NO_ANSWER };

struct tis {
	u32 did_vid;   /* vendor id in bits 15:0, device id in bits 31:16 */
	u8 rid;
	u8 access;     /* TPM_ACCESS as first read (0xff: nothing there) */
};

/* Looks for a TPM and, for a TPM 2.0, claims locality 0. */
enum tis_probe tis_probe(const struct tis_io *io, struct tis *t);

/* Sends a command and reads the response into resp (cap bytes). Returns the response's length, or 0
 * with the reason in *why (a timeout, a TPM that wants more command bytes, a response that does not
 * fit); the command is then aborted. */
u32 tis_transmit(const struct tis_io *io, const u8 *cmd, u32 len, u8 *resp, u32 cap, const char **why);

/* Gives locality 0 back. */
void tis_release(const struct tis_io *io);

#endif
