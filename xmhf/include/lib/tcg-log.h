/* A TCG event log in the crypto-agile format of the TCG PC Client Platform Firmware Profile (section
 * 10.2 "Event Log Format"): a first TCG_PCClientPCREvent (SHA-1 layout, EV_NO_ACTION) holding the
 * "Spec ID Event03" header that lists the one algorithm used here, SHA-256; then one TCG_PCR_EVENT2
 * per measurement. tpm2_eventlog (tpm2-tools) reads it. */
#ifndef LIB_TCG_LOG_H
#define LIB_TCG_LOG_H
#include <xmhf/types.h>

#define EV_NO_ACTION 0x00000003
#define EV_IPL 0x0000000d

struct tcg_log {
	u8 *buf;
	u32 size;   /* bytes written */
	u32 cap;    /* bytes available */
	u32 events; /* TCG_PCR_EVENT2 records after the header */
};

/* Starts a log in buf (cap bytes) with the Spec ID header. Returns 0, or -1 if cap is too small. */
int tcg_log_init(struct tcg_log *l, u8 *buf, u32 cap);

/* Appends a TCG_PCR_EVENT2 {pcr, type, SHA-256 digest, data}. Returns 0, or -1 if it does not fit. */
int tcg_log_add(struct tcg_log *l, u32 pcr, u32 type, const u8 digest[32], const void *data, u32 len);

#endif
