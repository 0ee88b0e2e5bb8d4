/* TPM 2.0 command marshalling (TPM 2.0 Library Part 3 sections 9.3, 22.2, 22.4; Part 2 for the types). */
#include <lib/tpm2.h>
#include <lib/string.h>

static void put16(u8 *p, u16 v)
{
	p[0] = (u8)(v >> 8);
	p[1] = (u8)v;
}

static void put32(u8 *p, u32 v)
{
	put16(p, (u16)(v >> 16));
	put16(p + 2, (u16)v);
}

static u16 get16(const u8 *p)
{
	return (u16)(p[0] << 8 | p[1]);
}

static u32 get32(const u8 *p)
{
	return (u32)get16(p) << 16 | get16(p + 2);
}

static u32 header(u8 *buf, u16 tag, u32 size, u32 cc)
{
	put16(buf, tag);
	put32(buf + 2, size);
	put32(buf + 6, cc);
	return TPM2_HEADER_SIZE;
}

u32 tpm2_cmd_startup(u8 *buf)
{
	u32 n = header(buf, TPM2_ST_NO_SESSIONS, 12, TPM2_CC_STARTUP);

	put16(buf + n, TPM2_SU_CLEAR);
	return 12;
}

u32 tpm2_cmd_pcr_extend_sha256(u8 *buf, u32 pcr, const u8 digest[32])
{
	/* header, pcrHandle, authorizationSize, TPMS_AUTH_COMMAND {TPM_RS_PW, empty nonce, attributes 0,
	 * empty password}, TPML_DIGEST_VALUES {count 1, TPMT_HA {SHA-256, digest}} */
	const u32 size = TPM2_HEADER_SIZE + 4 + 4 + 9 + 4 + 2 + 32;
	u32 n = header(buf, TPM2_ST_SESSIONS, size, TPM2_CC_PCR_EXTEND);

	put32(buf + n, pcr);
	put32(buf + n + 4, 9);
	put32(buf + n + 8, TPM2_RS_PW);
	put16(buf + n + 12, 0);
	buf[n + 14] = 0;
	put16(buf + n + 15, 0);
	put32(buf + n + 17, 1);
	put16(buf + n + 21, TPM2_ALG_SHA256);
	memcpy(buf + n + 23, digest, 32);
	return size;
}

u32 tpm2_cmd_pcr_read_sha256(u8 *buf, u32 pcr)
{
	/* header, TPML_PCR_SELECTION {count 1, TPMS_PCR_SELECTION {SHA-256, sizeofSelect 3, pcrSelect}} */
	const u32 size = TPM2_HEADER_SIZE + 4 + 2 + 1 + 3;
	u32 n = header(buf, TPM2_ST_NO_SESSIONS, size, TPM2_CC_PCR_READ);

	put32(buf + n, 1);
	put16(buf + n + 4, TPM2_ALG_SHA256);
	buf[n + 6] = 3;
	buf[n + 7] = buf[n + 8] = buf[n + 9] = 0;
	if (pcr < 24)
		buf[n + 7 + pcr / 8] = (u8)(1u << (pcr % 8));
	return size;
}

s64 tpm2_response_code(const u8 *buf, u32 len)
{
	u16 tag;

	if (len < TPM2_HEADER_SIZE || get32(buf + 2) != len)
		return -1;
	tag = get16(buf);
	if (tag != TPM2_ST_NO_SESSIONS && tag != TPM2_ST_SESSIONS)
		return -1;
	return get32(buf + 6);
}

int tpm2_parse_pcr_read_sha256(const u8 *buf, u32 len, u32 pcr, u8 out[32])
{
	/* header, pcrUpdateCounter, TPML_PCR_SELECTION (as selected), TPML_DIGEST {count, TPM2B_DIGEST...} */
	u32 n = TPM2_HEADER_SIZE + 4, count, sel_size;

	if (tpm2_response_code(buf, len) != TPM2_RC_SUCCESS || len < n + 4)
		return -1;
	count = get32(buf + n);
	n += 4;
	if (count > 1)
		return -1;
	if (count == 1) {
		if (len < n + 3)
			return -1;
		sel_size = buf[n + 2];
		if (get16(buf + n) != TPM2_ALG_SHA256 || sel_size > 4 || len < n + 3 + sel_size)
			return -1;
		/* The TPM clears the selection bits of PCRs it did not read (no such bank). */
		if (pcr / 8 >= sel_size || !(buf[n + 3 + pcr / 8] & (1u << (pcr % 8))))
			count = 0;
		n += 3 + sel_size;
	}
	if (len < n + 4)
		return -1;
	if (get32(buf + n) == 0 || count == 0)
		return 1;
	if (get32(buf + n) != 1 || len < n + 4 + 2 + 32 || get16(buf + n + 4) != 32)
		return -1;
	memcpy(out, buf + n + 6, 32);
	return 0;
}
