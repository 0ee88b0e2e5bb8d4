/* ACPI (RSDP, RSDT/XSDT, MADT) and Intel MP table discovery of the CPUs (see acpi.h). All reads of
 * firmware tables go through the map callback and byte-wise little-endian loads: the tables are not
 * necessarily aligned. */
#include <lib/acpi.h>
#include <lib/string.h>

#define SDT_HDR_LEN 36
#define MADT_HDR_LEN 44
#define RSDP_V1_LEN 20
#define RSDP_V2_LEN 36
/* Sanity bound on a table's length: refuse to map absurd sizes from corrupt headers. */
#define TABLE_MAX_LEN (1u << 20)

static u16 rd16(const u8 *p)
{
	return (u16)(p[0] | p[1] << 8);
}

static u32 rd32(const u8 *p)
{
	return (u32)p[0] | (u32)p[1] << 8 | (u32)p[2] << 16 | (u32)p[3] << 24;
}

static u64 rd64(const u8 *p)
{
	return (u64)rd32(p) | (u64)rd32(p + 4) << 32;
}

static bool sum_ok(const u8 *p, u32 len)
{
	u8 s = 0;

	while (len--)
		s += *p++;
	return s == 0;
}

static const u8 *map(phys_map_fn fn, void *ctx, u64 pa, u64 len)
{
	if (pa + len < pa)
		return NULL;
	return fn(ctx, pa, len);
}

/* Maps a whole system description table if its signature is sig (NULL: any) and its length and
 * checksum are valid; returns NULL otherwise. */
static const u8 *map_sdt(phys_map_fn fn, void *ctx, u64 pa, const char *sig, u32 min_len, u32 *len_out)
{
	const u8 *h = map(fn, ctx, pa, SDT_HDR_LEN);
	u32 len;

	if (!h || (sig && memcmp(h, sig, 4) != 0))
		return NULL;
	len = rd32(h + 4);
	if (len < min_len || len > TABLE_MAX_LEN)
		return NULL;
	h = map(fn, ctx, pa, len);
	if (!h || !sum_ok(h, len))
		return NULL;
	*len_out = len;
	return h;
}

static bool rsdp_ok(phys_map_fn fn, void *ctx, u64 pa)
{
	const u8 *p = map(fn, ctx, pa, RSDP_V1_LEN);
	u32 len;

	if (!p || memcmp(p, "RSD PTR ", 8) != 0 || !sum_ok(p, RSDP_V1_LEN))
		return false;
	if (p[15] < 2)
		return true;
	len = rd32(p + 20);
	if (len < RSDP_V2_LEN || len > 4096)
		return false;
	p = map(fn, ctx, pa, len);
	return p && sum_ok(p, len);
}

/* Returns the EBDA's physical address from the BIOS data area, or 0. */
static u64 ebda_base(phys_map_fn fn, void *ctx)
{
	const u8 *p = map(fn, ctx, 0x40e, 2);

	return p ? (u64)rd16(p) << 4 : 0;
}

int acpi_find_rsdp(phys_map_fn fn, void *ctx, u64 *rsdp_pa)
{
	u64 ebda = ebda_base(fn, ctx);
	u64 pa;

	if (ebda) {
		for (pa = ebda; pa < ebda + 1024; pa += 16) {
			if (rsdp_ok(fn, ctx, pa)) {
				*rsdp_pa = pa;
				return 0;
			}
		}
	}
	for (pa = 0xe0000; pa < 0x100000; pa += 16) {
		if (rsdp_ok(fn, ctx, pa)) {
			*rsdp_pa = pa;
			return 0;
		}
	}
	return -1;
}

int acpi_find_table(phys_map_fn fn, void *ctx, u64 rsdp_pa, const char *sig, u64 *table_pa)
{
	const u8 *r = map(fn, ctx, rsdp_pa, RSDP_V1_LEN);
	u64 rsdt, xsdt = 0, sdt_pa;
	u32 len, esz;

	/* Values are read out right away: a callback may reuse one mapping window for each call. */
	if (!r)
		return -1;
	rsdt = rd32(r + 16);
	if (r[15] >= 2) {
		r = map(fn, ctx, rsdp_pa, RSDP_V2_LEN);
		if (r)
			xsdt = rd64(r + 24);
	}
	if (xsdt && map_sdt(fn, ctx, xsdt, "XSDT", SDT_HDR_LEN, &len)) {
		sdt_pa = xsdt;
		esz = 8;
	} else if (rsdt && map_sdt(fn, ctx, rsdt, "RSDT", SDT_HDR_LEN, &len)) {
		sdt_pa = rsdt;
		esz = 4;
	} else {
		return -1;
	}

	for (u32 off = SDT_HDR_LEN; off + esz <= len; off += esz) {
		const u8 *e = map(fn, ctx, sdt_pa + off, esz);
		u64 pa;
		u32 tlen;

		if (!e)
			return -1;
		pa = esz == 8 ? rd64(e) : rd32(e);
		if (pa && map_sdt(fn, ctx, pa, sig, SDT_HDR_LEN, &tlen)) {
			*table_pa = pa;
			return 0;
		}
	}
	return -1;
}

/* Whether an enabled processor entry before offset `upto` already had this id. Scanning the table
 * again (instead of looking at out->apic_ids) also deduplicates when only counting. */
typedef bool (*cpu_entry_fn)(const u8 *e, u32 elen, u32 *id);
typedef u32 (*entry_len_fn)(const u8 *e);

static bool seen_before(const u8 *t, u32 start, u32 upto, cpu_entry_fn get, entry_len_fn elen_of,
			u32 id)
{
	u32 off = start;

	while (off < upto) {
		u32 elen = elen_of(t + off);
		u32 other;

		if (get(t + off, elen, &other) && other == id)
			return true;
		off += elen;
	}
	return false;
}

static void add_cpu(struct cpu_list *out, u32 id)
{
	if (out->count < out->max)
		out->apic_ids[out->count] = id;
	out->count++;
}

static u32 madt_entry_len(const u8 *e)
{
	return e[1];
}

/* MADT processor entries: type 0 (local APIC) and 9 (local x2APIC), flags bit 0 = enabled. */
static bool madt_cpu(const u8 *e, u32 elen, u32 *id)
{
	if (e[0] == 0 && elen >= 8 && (rd32(e + 4) & 1)) {
		*id = e[3];
		return true;
	}
	if (e[0] == 9 && elen >= 16 && (rd32(e + 8) & 1)) {
		*id = rd32(e + 4);
		return true;
	}
	return false;
}

int madt_enum_cpus(phys_map_fn fn, void *ctx, u64 madt_pa, struct cpu_list *out)
{
	const u8 *t;
	u32 len, off;

	out->count = 0;
	t = map_sdt(fn, ctx, madt_pa, "APIC", MADT_HDR_LEN, &len);
	if (!t)
		return -1;
	out->lapic_base = rd32(t + 36);

	/* Validate every entry first so that a malformed table yields no partial list. */
	for (off = MADT_HDR_LEN; off < len; off += t[off + 1]) {
		u8 type, elen;

		if (len - off < 2)
			return -1;
		type = t[off];
		elen = t[off + 1];
		if (elen < 2 || elen > len - off)
			return -1;
		if ((type == 0 && elen < 8) || (type == 9 && elen < 16) || (type == 5 && elen < 12))
			return -1;
	}

	for (off = MADT_HDR_LEN; off < len; off += t[off + 1]) {
		u32 id;

		if (t[off] == 5)
			out->lapic_base = rd64(t + off + 4);
		else if (madt_cpu(t + off, t[off + 1], &id) &&
			 !seen_before(t, MADT_HDR_LEN, off, madt_cpu, madt_entry_len, id))
			add_cpu(out, id);
	}
	return 0;
}

/* MP floating pointer: "_MP_", physical address of the configuration table, length in 16-byte
 * units, revision, checksum, feature bytes. */
static bool mpfp_ok(phys_map_fn fn, void *ctx, u64 pa)
{
	const u8 *p = map(fn, ctx, pa, 16);

	if (!p || memcmp(p, "_MP_", 4) != 0 || p[8] == 0)
		return false;
	if (p[8] != 1) {
		p = map(fn, ctx, pa, (u64)p[8] * 16);
		if (!p)
			return false;
	}
	return sum_ok(p, (u32)p[8] * 16);
}

static int mpfp_find(phys_map_fn fn, void *ctx, u64 *fp_pa)
{
	u64 areas[3][2] = {
		{ ebda_base(fn, ctx), 1024 },
		{ 639 * 1024, 1024 },
		{ 0xf0000, 0x10000 },
	};

	for (int a = 0; a < 3; a++) {
		if (areas[a][0] == 0)
			continue;
		for (u64 pa = areas[a][0]; pa < areas[a][0] + areas[a][1]; pa += 16) {
			if (mpfp_ok(fn, ctx, pa)) {
				*fp_pa = pa;
				return 0;
			}
		}
	}
	return -1;
}

/* MP configuration table entry lengths by type: processor 20, the others (bus, I/O APIC, I/O and
 * local interrupt assignment) 8. */
static u32 mp_entry_len(const u8 *e)
{
	return e[0] == 0 ? 20 : e[0] <= 4 ? 8 : 0;
}

static bool mp_cpu(const u8 *e, u32 elen, u32 *id)
{
	if (e[0] == 0 && elen >= 20 && (e[3] & 1)) {
		*id = e[1];
		return true;
	}
	return false;
}

int mptable_enum_cpus(phys_map_fn fn, void *ctx, struct cpu_list *out)
{
	const u8 *fp, *t;
	u64 fp_pa, cfg_pa;
	u32 len, n, off, i;

	out->count = 0;
	if (mpfp_find(fn, ctx, &fp_pa))
		return -1;
	fp = map(fn, ctx, fp_pa, 16);
	if (!fp)
		return -1;
	cfg_pa = rd32(fp + 4);
	/* A zero pointer means one of the "default configurations" (feature byte 1): not supported. */
	if (!cfg_pa)
		return -1;

	t = map(fn, ctx, cfg_pa, 44);
	if (!t || memcmp(t, "PCMP", 4) != 0)
		return -1;
	len = rd16(t + 4);
	n = rd16(t + 34);
	if (len < 44)
		return -1;
	t = map(fn, ctx, cfg_pa, len);
	if (!t || !sum_ok(t, len))
		return -1;
	out->lapic_base = rd32(t + 36);

	/* Entries are variable-length by type, so validate the walk before using it. */
	for (i = 0, off = 44; i < n; i++) {
		u32 elen;

		if (off >= len)
			return -1;
		elen = mp_entry_len(t + off);
		if (elen == 0 || elen > len - off)
			return -1;
		off += elen;
	}
	for (i = 0, off = 44; i < n; i++) {
		u32 elen = mp_entry_len(t + off), id;

		if (mp_cpu(t + off, elen, &id) && !seen_before(t, 44, off, mp_cpu, mp_entry_len, id))
			add_cpu(out, id);
		off += elen;
	}
	return 0;
}
