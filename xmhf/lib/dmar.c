/* DMAR parsing (VT-d specification 8.1 "DMA Remapping Reporting Structure", 8.3 DRHD, 8.4 RMRR). */
#include <lib/dmar.h>
#include <lib/printf.h>
#include <lib/string.h>

#define DMAR_HEADER_LEN 48     /* ACPI header (36), HAW, flags, 10 reserved */
#define DMAR_TYPE_DRHD 0
#define DMAR_TYPE_RMRR 1

static u16 rd16(const u8 *p)
{
	return (u16)(p[0] | p[1] << 8);
}

static u32 rd32(const u8 *p)
{
	return rd16(p) | (u32)rd16(p + 2) << 16;
}

static u64 rd64(const u8 *p)
{
	return rd32(p) | (u64)rd32(p + 4) << 32;
}

static int bad(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int bad(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	lib_vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

static int parse(phys_map_fn map, void *ctx, u64 dmar_pa, struct dmar_info *out, char *err, size_t errlen)
{
	const u8 *t = map(ctx, dmar_pa, 36);
	u32 len, sum = 0;

	memset(out, 0, sizeof(*out));
	if (!t || memcmp(t, "DMAR", 4) != 0)
		return bad(err, errlen, "no DMAR signature");
	len = rd32(t + 4);
	if (len < DMAR_HEADER_LEN || len > (1u << 20))
		return bad(err, errlen, "table length %u is out of range", len);
	t = map(ctx, dmar_pa, len);
	if (!t)
		return bad(err, errlen, "table of %u bytes is unreadable", len);
	for (u32 i = 0; i < len; i++)
		sum += t[i];
	if (sum & 0xff)
		return bad(err, errlen, "checksum of %u bytes is wrong", len);
	out->host_address_width = t[36];
	out->flags = t[37];
	for (u32 off = DMAR_HEADER_LEN; off < len;) {
		u16 type, slen;

		if (len - off < 4)
			return bad(err, errlen, "structure at offset %u is cut off by the table end", off);
		type = rd16(t + off);
		slen = rd16(t + off + 2);
		if (slen < 4 || slen > len - off)
			return bad(err, errlen, "structure at offset %u has a bad length %u", off, slen);
		if (type == DMAR_TYPE_DRHD) {
			u64 base;
			if (slen < 16)
				return bad(err, errlen, "DRHD at offset %u is too short (%u bytes)", off, slen);
			base = rd64(t + off + 8);
			if (base == 0 || (base & 0xfff))
				return bad(err, errlen, "DRHD at offset %u has a bad register base 0x%llx", off,
					   (unsigned long long)base);
			if (out->n_drhd == DMAR_MAX_DRHD)
				return bad(err, errlen, "more than %u DRHDs", DMAR_MAX_DRHD);
			out->drhd[out->n_drhd].flags = t[off + 4];
			out->drhd[out->n_drhd].segment = rd16(t + off + 6);
			out->drhd[out->n_drhd].reg_base = base;
			out->drhd[out->n_drhd].reg_pages = 1u << (t[off + 5] & 0xf);
			out->n_drhd++;
		} else if (type == DMAR_TYPE_RMRR) {
			u64 base, limit;
			if (slen < 24)
				return bad(err, errlen, "RMRR at offset %u is too short (%u bytes)", off, slen);
			base = rd64(t + off + 8);
			limit = rd64(t + off + 16);
			if (limit < base)
				return bad(err, errlen, "RMRR at offset %u ends below its base (limit 0x%llx)", off,
					   (unsigned long long)limit);
			if (out->n_rmrr < DMAR_MAX_RMRR) {
				out->rmrr[out->n_rmrr].base = base;
				out->rmrr[out->n_rmrr].limit = limit;
				out->n_rmrr++;
			}
		}
		/* ATSR, RHSA, ANDD, SATC, SIDP: not needed for DMA protection. */
		off += slen;
	}
	if (!out->n_drhd)
		return bad(err, errlen, "no DRHD (remapping hardware unit) listed");
	return 0;
}

int dmar_parse(phys_map_fn map, void *ctx, u64 dmar_pa, struct dmar_info *out, char *err, size_t errlen)
{
	if (parse(map, ctx, dmar_pa, out, err, errlen) == 0)
		return 0;
	/* No half-read unit list: a caller must not program units from a table that failed. */
	memset(out, 0, sizeof(*out));
	return -1;
}
