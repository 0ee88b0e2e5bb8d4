/* DMAR parsing on synthetic tables (VT-d spec chapter 8), each in an exactly-sized heap buffer so ASan
 * catches reads past the table. */
#include <stdlib.h>
#include <lib/dmar.h>
#include "unit.h"

#define TABLE_PA 0x7fe0000ULL

struct table {
	u8 *buf;
	u32 len;
};

static const void *tmap(void *ctx, u64 pa, u64 len)
{
	struct table *t = ctx;

	if (pa != TABLE_PA || len > t->len)
		return NULL;
	return t->buf;
}

static void put16(u8 *p, u16 v) { p[0] = (u8)v; p[1] = (u8)(v >> 8); }
static void put32(u8 *p, u32 v) { put16(p, (u16)v); put16(p + 2, (u16)(v >> 16)); }
static void put64(u8 *p, u64 v) { put32(p, (u32)v); put32(p + 4, (u32)(v >> 32)); }

/* A DMAR with the given structures after the 48-byte header; fixes length and checksum. */
static struct table make(const u8 *structs, u32 n)
{
	struct table t = { calloc(1, 48 + n), 48 + n };
	u8 sum = 0;

	memcpy(t.buf, "DMAR", 4);
	put32(t.buf + 4, t.len);
	t.buf[36] = 38; /* HAW: 39 bits */
	memcpy(t.buf + 48, structs, n);
	for (u32 i = 0; i < t.len; i++)
		sum += t.buf[i];
	t.buf[9] = (u8)-sum;
	return t;
}

static u32 drhd(u8 *p, u64 base, u8 flags)
{
	memset(p, 0, 16);
	put16(p, 0);
	put16(p + 2, 16);
	p[4] = flags;
	put64(p + 8, base);
	return 16;
}

static u32 rmrr(u8 *p, u64 base, u64 limit)
{
	memset(p, 0, 24);
	put16(p, 1);
	put16(p + 2, 24);
	put64(p + 8, base);
	put64(p + 16, limit);
	return 24;
}

TEST(dmar_qemu_like)
{
	u8 s[128];
	u32 n = 0;
	struct dmar_info d;
	char err[96] = "";

	n += drhd(s + n, 0xfed90000, DMAR_DRHD_INCLUDE_PCI_ALL);
	s[5] = 2;
	n += rmrr(s + n, 0xbf000, 0xbffff);
	/* An ATSR (type 2), skipped. */
	put16(s + n, 2);
	put16(s + n + 2, 8);
	memset(s + n + 4, 0, 4);
	n += 8;
	struct table t = make(s, n);
	REQUIRE(dmar_parse(tmap, &t, TABLE_PA, &d, err, sizeof(err)) == 0);
	CHECK_EQ(d.host_address_width, 38);
	CHECK_EQ(d.n_drhd, 1);
	CHECK_EQ(d.drhd[0].reg_base, 0xfed90000);
	CHECK_EQ(d.drhd[0].flags, DMAR_DRHD_INCLUDE_PCI_ALL);
	CHECK_EQ(d.drhd[0].reg_pages, 4); /* Size field 2 */
	CHECK_EQ(d.n_rmrr, 1);
	CHECK_EQ(d.rmrr[0].limit, 0xbffff);
	free(t.buf);
}

static void expect_error(const char *file, int line, const u8 *s, u32 n, const char *want)
{
	struct table t = make(s, n);
	struct dmar_info d;
	char err[96] = "";

	if (dmar_parse(tmap, &t, TABLE_PA, &d, err, sizeof(err)) != -1 || !strstr(err, want))
		unit_fail(file, line, "want an error with '%s', got '%s'", want, err);
	if (d.n_drhd || d.n_rmrr)
		unit_fail(file, line, "a failed parse left %u DRHDs and %u RMRRs", d.n_drhd, d.n_rmrr);
	free(t.buf);
}
#define EXPECT_ERROR(s, n, want) expect_error(__FILE__, __LINE__, s, n, want)

TEST(dmar_garbage)
{
	u8 s[64] = { 0 };

	EXPECT_ERROR(s, 0, "no DRHD");
	drhd(s, 0xfed90000, 0);
	put16(s + 2, 0);
	EXPECT_ERROR(s, 16, "bad length 0");
	drhd(s, 0xfed90000, 0);
	put16(s + 2, 40);
	EXPECT_ERROR(s, 16, "bad length 40");        /* runs past the table */
	drhd(s, 0xfed90000, 0);
	put16(s + 2, 8);
	EXPECT_ERROR(s, 8, "too short");
	drhd(s, 0, 0);
	EXPECT_ERROR(s, 16, "bad register base 0x0");
	drhd(s, 0xfed90010, 0);
	EXPECT_ERROR(s, 16, "bad register base 0xfed90010");
	drhd(s, 0xfed90000, 0);
	EXPECT_ERROR(s, 18, "cut off");
	drhd(s, 0xfed90000, 0);
	rmrr(s + 16, 0x2000, 0x1000);
	EXPECT_ERROR(s, 40, "ends below its base");

	/* A bad checksum or a wrong signature. */
	u32 n = drhd(s, 0xfed90000, 0);
	struct table t = make(s, n);
	struct dmar_info d;
	char err[96];
	t.buf[40] ^= 1;
	CHECK_EQ(dmar_parse(tmap, &t, TABLE_PA, &d, err, sizeof(err)), -1);
	CHECK(strstr(err, "checksum") != NULL);
	memcpy(t.buf, "XMHF", 4);
	CHECK_EQ(dmar_parse(tmap, &t, TABLE_PA, &d, err, sizeof(err)), -1);
	CHECK(strstr(err, "signature") != NULL);
	free(t.buf);
}

TEST(dmar_too_many_units)
{
	u8 s[16 * (DMAR_MAX_DRHD + 1)];
	u32 n = 0;

	for (u32 i = 0; i <= DMAR_MAX_DRHD; i++)
		n += drhd(s + n, 0xfed90000 + 0x1000 * i, 0);
	EXPECT_ERROR(s, n, "more than 8 DRHDs");
	struct table t = make(s, n - 16);
	struct dmar_info d;
	char err[96];
	CHECK_EQ(dmar_parse(tmap, &t, TABLE_PA, &d, err, sizeof(err)), 0);
	CHECK_EQ(d.n_drhd, DMAR_MAX_DRHD);
	CHECK_EQ(d.drhd[7].reg_base, 0xfed97000);
	free(t.buf);
}
