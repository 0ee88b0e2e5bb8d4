/* Measured boot into a TPM 2.0 (SHA-256 bank) with a TCG crypto-agile event log; see measure.h and
 * docs/trusted-boot.md for what goes where and what a verifier checks. */
#include "measure.h"
#include "tpm-tis.h"
#include <xmhf/console.h>
#include <lib/cmdline.h>
#include <lib/sha256.h>
#include <lib/string.h>
#include <lib/tcg-log.h>
#include <lib/tpm2.h>

#define LOG_BYTES 4096
#define FOUR_GIB (1ULL << 32)

static u8 log_buf[LOG_BYTES];

static void print_hex(const u8 *d, u32 n)
{
	for (u32 i = 0; i < n; i++)
		printf("%02x", d[i]);
}

/* One command, one response code; -1 on a transport failure or a malformed response. */
static s64 tpm_call(const u8 *cmd, u32 len, u8 *resp, u32 cap, u32 *rlen)
{
	const char *why = NULL;
	u32 n = tis_transmit(&tis_mmio, cmd, len, resp, cap, &why);

	if (!n)
		printf("XMHF: TPM: %s\n", why);
	if (rlen)
		*rlen = n;
	return n ? tpm2_response_code(resp, n) : -1;
}

struct pending {
	u32 pcr;
	u8 digest[32];
	char what[80];
	u32 what_len;
};

static int extend_and_log(struct tcg_log *log, const struct pending *p)
{
	u8 cmd[TPM2_MAX_COMMAND], resp[64];
	s64 rc = tpm_call(cmd, tpm2_cmd_pcr_extend_sha256(cmd, p->pcr, p->digest), resp, sizeof(resp), NULL);

	if (rc != TPM2_RC_SUCCESS) {
		printf("XMHF: TPM: PCR_Extend of PCR %u failed (response code 0x%llx)\n", p->pcr, (long long)rc);
		return -1;
	}
	if (tcg_log_add(log, p->pcr, EV_IPL, p->digest, p->what, p->what_len)) {
		printf("XMHF: TPM: the event log is full\n");
		return -1;
	}
	printf("XMHF: TPM: PCR %u extended with SHA-256 ", p->pcr);
	print_hex(p->digest, 32);
	printf(" (%.*s)\n", (int)p->what_len, p->what);
	return 0;
}

static void pending_set(struct pending *p, u32 pcr, const void *data, u32 len, const char *what)
{
	p->pcr = pcr;
	sha256(data, len, p->digest);
	p->what_len = MIN(strlen(what), sizeof(p->what));
	memcpy(p->what, what, p->what_len);
}

/* "prefix" + s into a pending description, cut to size. */
static const char *describe(char *buf, size_t size, const char *prefix, const char *s)
{
	size_t n = 0;

	for (; *prefix && n + 1 < size; prefix++)
		buf[n++] = *prefix;
	for (; s && *s && n + 1 < size; s++)
		buf[n++] = *s;
	buf[n] = 0;
	return buf;
}

static int give_up(const struct measure_input *in, const char *why)
{
	printf("XMHF: TPM: %s; nothing measured%s\n", why,
	       in->policy == TRUST_REQUIRED ? "" : ", booting on (tpm=required would stop here)");
	return in->policy == TRUST_REQUIRED ? -1 : 0;
}

int measure_boot(const struct measure_input *in, struct e820_map *guest_map, const struct phys_range *avoid,
		 u32 navoid)
{
	struct tis t;
	struct tcg_log log;
	struct pending p;
	u8 cmd[TPM2_MAX_COMMAND], resp[128];
	char desc[80];
	u32 rlen;
	s64 rc;
	u64 log_pa;

	if (in->policy == TRUST_OFF) {
		printf("XMHF: TPM: tpm=off, nothing measured\n");
		return 0;
	}
	switch (tis_probe(&tis_mmio, &t)) {
	case TIS_ABSENT:
		return give_up(in, "no TPM at 0xfed40000 (TIS)");
	case TIS_NO_ANSWER:
		return give_up(in, "the TPM at 0xfed40000 does not answer (no valid access register or locality 0)");
	case TIS_TPM12:
		return give_up(in, "the TPM at 0xfed40000 is a TPM 1.2, which this build does not drive");
	case TIS_TPM20:
		break;
	}
	printf("XMHF: TPM 2.0 at 0xfed40000 (TIS, vendor 0x%04x device 0x%04x rev %u)\n", t.did_vid & 0xffff,
	       t.did_vid >> 16, t.rid);

	/* The BIOS normally started the TPM; if it did not, start it (TPM_RC_INITIALIZE: already started). */
	rc = tpm_call(cmd, tpm2_cmd_startup(cmd), resp, sizeof(resp), NULL);
	if (rc != TPM2_RC_SUCCESS && rc != TPM2_RC_INITIALIZE) {
		tis_release(&tis_mmio);
		return give_up(in, rc < 0 ? "TPM2_Startup got no answer" : "TPM2_Startup failed");
	}
	tcg_log_init(&log, log_buf, sizeof(log_buf));

	/* Order matters to a verifier replaying the log: configuration, code, then the guest. */
	pending_set(&p, PCR_XMHF_CONFIG, in->cmdline, strlen(in->cmdline), in->cmdline);
	if (extend_and_log(&log, &p))
		goto failed;
	pending_set(&p, PCR_XMHF_CODE, in->runtime, in->runtime_size, "XMHF runtime image");
	if (extend_and_log(&log, &p))
		goto failed;
	for (u32 i = 0; i < in->n_extra; i++) {
		char prefix[24] = "XMHF module 2 ";
		prefix[12] = (char)('2' + i); /* module numbers 2..9 (BOOTINFO_MAX_EXTRA_MODULES) */
		pending_set(&p, PCR_XMHF_CODE, (const void *)(uintptr_t)in->extra[i].base, (u32)in->extra[i].size,
			    describe(desc, sizeof(desc), prefix, in->extra[i].string));
		if (extend_and_log(&log, &p))
			goto failed;
	}
	pending_set(&p, PCR_XMHF_GUEST, in->boot_sector, 512, "XMHF guest boot sector");
	if (extend_and_log(&log, &p))
		goto failed;

	/* Read the PCRs back: what a verifier would quote. */
	for (u32 pcr = PCR_XMHF_CONFIG; pcr <= PCR_XMHF_GUEST; pcr++) {
		u8 v[32];
		rc = tpm_call(cmd, tpm2_cmd_pcr_read_sha256(cmd, pcr), resp, sizeof(resp), &rlen);
		int r = rc == TPM2_RC_SUCCESS ? tpm2_parse_pcr_read_sha256(resp, rlen, pcr, v) : -1;
		if (r < 0) {
			printf("XMHF: TPM: PCR_Read of PCR %u failed (response code 0x%llx)\n", pcr, (long long)rc);
			goto failed;
		}
		if (r > 0) {
			printf("XMHF: TPM: PCR %u has no SHA-256 bank\n", pcr);
			continue;
		}
		printf("XMHF: TPM: PCR %u (SHA-256) = ", pcr);
		print_hex(v, 32);
		printf("\n");
	}
	tis_release(&tis_mmio);

	/* The log goes to a reserved page the guest can read (the region itself is hidden). */
	if (e820_find_highest(guest_map, LOG_BYTES, LOG_BYTES, 1ULL << 20, FOUR_GIB, avoid, navoid, &log_pa) ||
	    e820_reserve(guest_map, log_pa, LOG_BYTES, E820_RESERVED)) {
		printf("XMHF: TPM: no page for the event log; the measurements stand without it\n");
	} else {
		memcpy((void *)(uintptr_t)log_pa, log_buf, log.size);
		memset((void *)(uintptr_t)(log_pa + log.size), 0, LOG_BYTES - log.size);
		printf("XMHF: TPM: event log at 0x%llx, %u bytes, %u events (TCG crypto-agile, SHA-256), reserved "
		       "in the guest's memory map\n", (unsigned long long)log_pa, log.size, log.events);
	}
	if (in->dump_log) {
		for (u32 i = 0; i < log.size; i += 32) {
			printf("XMHF: TPM: log %04x: ", i);
			print_hex(log_buf + i, MIN(32u, log.size - i));
			printf("\n");
		}
	}
	return 0;

failed:
	tis_release(&tis_mmio);
	printf("XMHF: TPM: measurements incomplete: the PCRs cannot be trusted for this boot\n");
	return in->policy == TRUST_REQUIRED ? -1 : 0;
}
