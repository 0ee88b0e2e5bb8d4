/* TCG crypto-agile event log writer (PC Client Platform Firmware Profile 2.0, section 10.2; structures
 * in little-endian, unlike TPM commands). */
#include <lib/tcg-log.h>
#include <lib/string.h>

static void le16(u8 *p, u16 v)
{
	p[0] = (u8)v;
	p[1] = (u8)(v >> 8);
}

static void le32(u8 *p, u32 v)
{
	le16(p, (u16)v);
	le16(p + 2, (u16)(v >> 16));
}

/* TCG_EfiSpecIDEventStruct with one algorithm: signature[16], platformClass, specVersionMinor/Major,
 * specErrata, uintnSize, numberOfAlgorithms, {algorithmId, digestSize}, vendorInfoSize. */
#define SPEC_ID_SIZE (16 + 4 + 1 + 1 + 1 + 1 + 4 + 4 + 1)
/* TCG_PCClientPCREvent: pcrIndex, eventType, digest[20], eventSize, event. */
#define HEADER_EVENT_SIZE (4 + 4 + 20 + 4 + SPEC_ID_SIZE)

int tcg_log_init(struct tcg_log *l, u8 *buf, u32 cap)
{
	u8 *p = buf, *s;

	l->buf = buf;
	l->cap = cap;
	l->size = 0;
	l->events = 0;
	if (cap < HEADER_EVENT_SIZE)
		return -1;
	memset(buf, 0, HEADER_EVENT_SIZE);
	le32(p, 0);
	le32(p + 4, EV_NO_ACTION);
	le32(p + 28, SPEC_ID_SIZE);
	s = p + 32;
	memcpy(s, "Spec ID Event03", 16);
	le32(s + 16, 0);  /* platformClass: client */
	s[20] = 0;        /* specVersionMinor */
	s[21] = 2;        /* specVersionMajor */
	s[22] = 0;        /* specErrata */
	s[23] = 2;        /* uintnSize: UINT64 */
	le32(s + 24, 1);  /* numberOfAlgorithms */
	le16(s + 28, 0x000b);
	le16(s + 30, 32);
	s[32] = 0;        /* vendorInfoSize */
	l->size = HEADER_EVENT_SIZE;
	return 0;
}

int tcg_log_add(struct tcg_log *l, u32 pcr, u32 type, const u8 digest[32], const void *data, u32 len)
{
	/* pcrIndex, eventType, TPML_DIGEST_VALUES {count, {hashAlg, digest}}, eventSize, event */
	u32 need = 4 + 4 + 4 + 2 + 32 + 4 + len;
	u8 *p;

	if (len > l->cap || need > l->cap - l->size)
		return -1;
	p = l->buf + l->size;
	le32(p, pcr);
	le32(p + 4, type);
	le32(p + 8, 1);
	le16(p + 12, 0x000b);
	memcpy(p + 14, digest, 32);
	le32(p + 46, len);
	memcpy(p + 50, data, len);
	l->size += need;
	l->events++;
	return 0;
}
