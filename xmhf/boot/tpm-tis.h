/* The TPM's FIFO (TIS) interface at its fixed address, locality 0 (TCG PC Client Platform TPM Profile
 * (PTP) 2.0, section 6.5 "FIFO Interface"). init runs with paging off, so the registers are read
 * directly. */
#ifndef BOOT_TPM_TIS_H
#define BOOT_TPM_TIS_H
#include <xmhf/types.h>

#define TIS_BASE 0xfed40000u

enum tis_probe { TIS_ABSENT, TIS_TPM12, TIS_TPM20, TIS_NO_ANSWER };

struct tis {
	u32 did_vid;   /* vendor id in bits 15:0, device id in bits 31:16 */
	u8 rid;
	u8 access;     /* TPM_ACCESS as first read (0xff: nothing there) */
};

/* Looks for a TPM at TIS_BASE and, for a TPM 2.0, claims locality 0. */
enum tis_probe tis_probe(struct tis *t);

/* Sends a command and reads the response into resp (cap bytes). Returns the response's length, or 0
 * after printing why (a timeout, a TPM that wants more or fewer bytes, a response that does not fit). */
u32 tis_transmit(const u8 *cmd, u32 len, u8 *resp, u32 cap);

/* Gives locality 0 back. */
void tis_release(void);

#endif
