/* TPM 2.0 command bytes (TPM 2.0 Library Parts 2 and 3, worked out by hand) and the TCG event log. */
#include <lib/tpm2.h>
#include <lib/tcg-log.h>
#include "unit.h"

static int unhex(const char *s, u8 *out)
{
	int n = 0;

	for (; s[0] && s[1]; s += 2) {
		if (*s == ' ') {
			s--;
			continue;
		}
		sscanf(s, "%2hhx", &out[n++]);
	}
	return n;
}

TEST(tpm2_commands)
{
	u8 cmd[TPM2_MAX_COMMAND], want[TPM2_MAX_COMMAND], d[32];
	int n;

	n = unhex("8001 0000000c 00000144 0000", want);
	CHECK_EQ(tpm2_cmd_startup(cmd), n);
	CHECK(memcmp(cmd, want, n) == 0);

	memset(d, 0x11, 32);
	n = unhex("8002 00000041 00000182 0000000d 00000009 40000009 0000 00 0000 00000001 000b "
		  "1111111111111111111111111111111111111111111111111111111111111111", want);
	CHECK_EQ(n, 65);
	CHECK_EQ(tpm2_cmd_pcr_extend_sha256(cmd, 13, d), n);
	CHECK(memcmp(cmd, want, n) == 0);

	n = unhex("8001 00000014 0000017e 00000001 000b 03 002000", want);
	CHECK_EQ(tpm2_cmd_pcr_read_sha256(cmd, 13), n);
	CHECK(memcmp(cmd, want, n) == 0);
	tpm2_cmd_pcr_read_sha256(cmd, 0);
	CHECK_EQ(cmd[17], 1);
	tpm2_cmd_pcr_read_sha256(cmd, 23);
	CHECK_EQ(cmd[19], 0x80);
}

TEST(tpm2_responses)
{
	u8 r[128], v[32];
	int n;

	n = unhex("8001 0000000a 00000000", r);
	CHECK_EQ(tpm2_response_code(r, n), 0);
	n = unhex("8001 0000000a 00000100", r);
	CHECK_EQ(tpm2_response_code(r, n), TPM2_RC_INITIALIZE);
	CHECK_EQ(tpm2_response_code(r, n - 1), -1);        /* size field is not the length */
	n = unhex("c4 00 0000000a 00000000", r);
	CHECK_EQ(tpm2_response_code(r, n), -1);            /* TPM 1.2 tag */
	CHECK_EQ(tpm2_response_code(r, 4), -1);

	n = unhex("8001 0000003e 00000000 00000005 00000001 000b 03 002000 00000001 0020 "
		  "a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a501", r);
	CHECK_EQ(n, 62);
	memset(v, 0, 32);
	CHECK_EQ(tpm2_parse_pcr_read_sha256(r, n, 13, v), 0);
	CHECK_EQ(v[0], 0xa5);
	CHECK_EQ(v[31], 0x01);
	CHECK_EQ(tpm2_parse_pcr_read_sha256(r, n - 1, 13, v), -1);
	CHECK_EQ(tpm2_parse_pcr_read_sha256(r, n, 12, v), 1);  /* selection bit of 12 not set */
	/* No SHA-256 bank: selection cleared, no digest. */
	n = unhex("8001 0000001c 00000000 00000005 00000001 000b 03 000000 00000000", r);
	CHECK_EQ(tpm2_parse_pcr_read_sha256(r, n, 13, v), 1);
	/* A digest of the wrong size. */
	n = unhex("8001 0000002e 00000000 00000005 00000001 000b 03 002000 00000001 0010 "
		  "a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5", r);
	CHECK_EQ(tpm2_parse_pcr_read_sha256(r, n, 13, v), -1);
	/* An error response. */
	n = unhex("8001 0000000a 000001c4", r);
	CHECK_EQ(tpm2_parse_pcr_read_sha256(r, n, 13, v), -1);
}

TEST(tcg_log_layout)
{
	u8 buf[256], d[32];
	struct tcg_log l;

	CHECK_EQ(tcg_log_init(&l, buf, 40), -1);
	REQUIRE(tcg_log_init(&l, buf, sizeof(buf)) == 0);
	/* Header event: pcr 0, EV_NO_ACTION, 20 zero bytes, eventSize 33, "Spec ID Event03". */
	CHECK_EQ(l.size, 32 + 33);
	CHECK_EQ(buf[4], 3);
	CHECK_EQ(buf[28], 33);
	CHECK(memcmp(buf + 32, "Spec ID Event03\0", 16) == 0);
	CHECK_EQ(buf[32 + 24], 1);     /* one algorithm */
	CHECK_EQ(buf[32 + 28], 0x0b);  /* SHA-256 */
	CHECK_EQ(buf[32 + 30], 32);

	memset(d, 0x5a, 32);
	REQUIRE(tcg_log_add(&l, 13, EV_IPL, d, "runtime", 7) == 0);
	const u8 *e = buf + 65;
	CHECK_EQ(e[0], 13);
	CHECK_EQ(e[4], EV_IPL);
	CHECK_EQ(e[8], 1);
	CHECK_EQ(e[12], 0x0b);
	CHECK_EQ(e[14], 0x5a);
	CHECK_EQ(e[46], 7);
	CHECK(memcmp(e + 50, "runtime", 7) == 0);
	CHECK_EQ(l.size, 65 + 57);
	CHECK_EQ(l.events, 1);
	/* Does not fit: the log is left as it was. */
	CHECK_EQ(tcg_log_add(&l, 14, EV_IPL, d, buf, 200), -1);
	CHECK_EQ(l.size, 65 + 57);
}
