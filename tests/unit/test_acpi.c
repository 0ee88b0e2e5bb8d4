/* ACPI and MP table discovery on synthetic firmware tables. Physical memory is a 1 MiB buffer for
 * [0, 1 MiB) plus one exactly-sized heap buffer per high table, so ASan catches reads past a table. */
#include <stdlib.h>
#include <lib/acpi.h>
#include "unit.h"

#define LOW_SIZE 0x100000

struct mem {
	u8 *low;
	int n;
	struct {
		u64 pa;
		u32 size;
		u8 *buf;
	} r[8];
};

static const void *mem_map(void *ctx, u64 pa, u64 len)
{
	struct mem *m = ctx;

	if (pa < LOW_SIZE && len <= LOW_SIZE - pa)
		return m->low + pa;
	for (int i = 0; i < m->n; i++)
		if (pa >= m->r[i].pa && pa - m->r[i].pa <= m->r[i].size &&
		    len <= m->r[i].size - (pa - m->r[i].pa))
			return m->r[i].buf + (pa - m->r[i].pa);
	return NULL;
}

static struct mem *mem_new(void)
{
	struct mem *m = calloc(1, sizeof(*m));

	m->low = calloc(1, LOW_SIZE);
	return m;
}

static void mem_free(struct mem *m)
{
	for (int i = 0; i < m->n; i++)
		free(m->r[i].buf);
	free(m->low);
	free(m);
}

static void wr16(u8 *p, u16 v)
{
	p[0] = (u8)v;
	p[1] = (u8)(v >> 8);
}

static void wr32(u8 *p, u32 v)
{
	wr16(p, (u16)v);
	wr16(p + 2, (u16)(v >> 16));
}

static void wr64(u8 *p, u64 v)
{
	wr32(p, (u32)v);
	wr32(p + 4, (u32)(v >> 32));
}

static void fix_sum(u8 *p, u32 len, u32 at)
{
	u8 s = 0;

	p[at] = 0;
	for (u32 i = 0; i < len; i++)
		s += p[i];
	p[at] = (u8)-s;
}

/* Places bytes at pa: in low memory, or as a new high region. */
static void mem_put(struct mem *m, u64 pa, const void *data, u32 len)
{
	if (pa < LOW_SIZE) {
		memcpy(m->low + pa, data, len);
		return;
	}
	m->r[m->n].pa = pa;
	m->r[m->n].size = len;
	m->r[m->n].buf = malloc(len);
	memcpy(m->r[m->n].buf, data, len);
	m->n++;
}

static u8 *mem_at(struct mem *m, u64 pa, u32 len)
{
	return (u8 *)mem_map(m, pa, len);
}

static void set_ebda(struct mem *m, u64 pa)
{
	wr16(m->low + 0x40e, (u16)(pa >> 4));
}

static void put_rsdp(struct mem *m, u64 pa, u8 rev, u32 rsdt, u64 xsdt)
{
	u8 r[36] = { 0 };

	memcpy(r, "RSD PTR ", 8);
	memcpy(r + 9, "XMHFT ", 6);
	r[15] = rev;
	wr32(r + 16, rsdt);
	fix_sum(r, 20, 8);
	if (rev >= 2) {
		wr32(r + 20, 36);
		wr64(r + 24, xsdt);
		fix_sum(r, 36, 32);
	}
	mem_put(m, pa, r, rev >= 2 ? 36 : 20);
}

/* A table under construction. */
struct tbl {
	u8 b[1024];
	u32 len;
};

static void tbl_start(struct tbl *t, const char *sig, u32 hdr_len)
{
	memset(t, 0, sizeof(*t));
	memcpy(t->b, sig, 4);
	t->b[8] = 1;
	memcpy(t->b + 10, "XMHFT ", 6);
	t->len = hdr_len;
}

static void tbl_bytes(struct tbl *t, const u8 *d, u32 n)
{
	memcpy(t->b + t->len, d, n);
	t->len += n;
}

static void tbl_u32(struct tbl *t, u32 v)
{
	wr32(t->b + t->len, v);
	t->len += 4;
}

static void tbl_u64(struct tbl *t, u64 v)
{
	wr64(t->b + t->len, v);
	t->len += 8;
}

static void sdt_finish(struct tbl *t)
{
	wr32(t->b + 4, t->len);
	fix_sum(t->b, t->len, 9);
}

/* An SDT with no payload beyond the header (enough for signature searches). */
static void put_dummy_sdt(struct mem *m, u64 pa, const char *sig)
{
	struct tbl t;

	tbl_start(&t, sig, 36);
	tbl_u32(&t, 0x12345678);
	sdt_finish(&t);
	mem_put(m, pa, t.b, t.len);
}

static void put_rsdt(struct mem *m, u64 pa, const u32 *entries, int n)
{
	struct tbl t;

	tbl_start(&t, "RSDT", 36);
	for (int i = 0; i < n; i++)
		tbl_u32(&t, entries[i]);
	sdt_finish(&t);
	mem_put(m, pa, t.b, t.len);
}

static void put_xsdt(struct mem *m, u64 pa, const u64 *entries, int n)
{
	struct tbl t;

	tbl_start(&t, "XSDT", 36);
	for (int i = 0; i < n; i++)
		tbl_u64(&t, entries[i]);
	sdt_finish(&t);
	mem_put(m, pa, t.b, t.len);
}

static void madt_start(struct tbl *t)
{
	tbl_start(t, "APIC", 44);
	wr32(t->b + 36, 0xfee00000);
	wr32(t->b + 40, 1);
}

static void madt_lapic(struct tbl *t, u8 uid, u8 id, u32 flags)
{
	u8 e[8] = { 0, 8, uid, id };

	wr32(e + 4, flags);
	tbl_bytes(t, e, sizeof(e));
}

static void madt_x2apic(struct tbl *t, u32 id, u32 flags)
{
	u8 e[16] = { 9, 16 };

	wr32(e + 4, id);
	wr32(e + 8, flags);
	wr32(e + 12, id + 1000);
	tbl_bytes(t, e, sizeof(e));
}

static void madt_ioapic(struct tbl *t)
{
	u8 e[12] = { 1, 12, 8, 0 };

	wr32(e + 4, 0xfec00000);
	tbl_bytes(t, e, sizeof(e));
}

static void madt_override(struct tbl *t, u64 addr)
{
	u8 e[12] = { 5, 12 };

	wr64(e + 4, addr);
	tbl_bytes(t, e, sizeof(e));
}

#define LAPIC_EN 1
#define LAPIC_ONLINE_CAPABLE 2

/* --- RSDP --- */

TEST(acpi_rsdp_in_ebda)
{
	struct mem *m = mem_new();
	u64 pa = 0;

	set_ebda(m, 0x9fc00);
	put_rsdp(m, 0x9fc00 + 0x30, 0, 0x7fe0000, 0);
	put_rsdp(m, 0xf0000, 0, 0x7fe0000, 0);
	CHECK_EQ(acpi_find_rsdp(mem_map, m, &pa), 0);
	CHECK_EQ(pa, 0x9fc30);
	mem_free(m);
}

TEST(acpi_rsdp_ebda_only_first_kib)
{
	struct mem *m = mem_new();
	u64 pa = 0;

	set_ebda(m, 0x9f000);
	put_rsdp(m, 0x9f000 + 0x400, 0, 0x7fe0000, 0);
	CHECK_EQ(acpi_find_rsdp(mem_map, m, &pa), -1);
	put_rsdp(m, 0x9f000 + 0x3f0, 0, 0x7fe0000, 0);
	CHECK_EQ(acpi_find_rsdp(mem_map, m, &pa), 0);
	CHECK_EQ(pa, 0x9f3f0);
	mem_free(m);
}

TEST(acpi_rsdp_in_bios_area)
{
	struct mem *m = mem_new();
	u64 pa = 0;

	put_rsdp(m, 0xfa230, 2, 0x7fe0000, 0x7fe1000);
	CHECK_EQ(acpi_find_rsdp(mem_map, m, &pa), 0);
	CHECK_EQ(pa, 0xfa230);
	mem_free(m);

	/* The very last paragraph of the area. */
	m = mem_new();
	put_rsdp(m, 0xfffe0, 0, 0x7fe0000, 0);
	CHECK_EQ(acpi_find_rsdp(mem_map, m, &pa), 0);
	CHECK_EQ(pa, 0xfffe0);
	mem_free(m);
}

TEST(acpi_rsdp_alignment_and_absence)
{
	struct mem *m = mem_new();
	u64 pa = 0;

	CHECK_EQ(acpi_find_rsdp(mem_map, m, &pa), -1);
	/* Not on a 16-byte boundary: not found. */
	put_rsdp(m, 0xe0008, 0, 0x7fe0000, 0);
	CHECK_EQ(acpi_find_rsdp(mem_map, m, &pa), -1);
	/* Below the BIOS area and outside the EBDA: not searched. */
	put_rsdp(m, 0xd0000, 0, 0x7fe0000, 0);
	CHECK_EQ(acpi_find_rsdp(mem_map, m, &pa), -1);
	mem_free(m);
}

TEST(acpi_rsdp_bad_checksum_skipped)
{
	struct mem *m = mem_new();
	u64 pa = 0;

	put_rsdp(m, 0xe0000, 0, 0x7fe0000, 0);
	m->low[0xe0000 + 8] ^= 1;                     /* v1 checksum */
	put_rsdp(m, 0xe0100, 2, 0x7fe0000, 0x7fe1000);
	m->low[0xe0100 + 32] ^= 1;                    /* extended checksum only */
	put_rsdp(m, 0xe0200, 2, 0x7fe0000, 0x7fe1000);
	CHECK_EQ(acpi_find_rsdp(mem_map, m, &pa), 0);
	CHECK_EQ(pa, 0xe0200);
	mem_free(m);
}

/* --- RSDT / XSDT --- */

TEST(acpi_find_table_rsdt)
{
	struct mem *m = mem_new();
	u32 ents[] = { 0x7fe1000, 0x7fe2000, 0, 0x7fe3000, 0x7fe4000 };
	u64 pa = 0;

	put_rsdp(m, 0xf0000, 0, 0x7fe0000, 0);
	put_rsdt(m, 0x7fe0000, ents, 5);
	put_dummy_sdt(m, 0x7fe1000, "FACP");
	put_dummy_sdt(m, 0x7fe2000, "APIC");
	mem_at(m, 0x7fe2000, 40)[36] ^= 0xff;          /* bad checksum: skipped */
	put_dummy_sdt(m, 0x7fe3000, "APIC");
	/* 0x7fe4000 is unmapped: skipped */

	CHECK_EQ(acpi_find_table(mem_map, m, 0xf0000, "APIC", &pa), 0);
	CHECK_EQ(pa, 0x7fe3000);
	CHECK_EQ(acpi_find_table(mem_map, m, 0xf0000, "FACP", &pa), 0);
	CHECK_EQ(pa, 0x7fe1000);
	CHECK_EQ(acpi_find_table(mem_map, m, 0xf0000, "HPET", &pa), -1);
	/* A broken RSDT: nothing. */
	mem_at(m, 0x7fe0000, 36)[10] ^= 1;
	CHECK_EQ(acpi_find_table(mem_map, m, 0xf0000, "APIC", &pa), -1);
	mem_free(m);
}

TEST(acpi_xsdt_preferred)
{
	struct mem *m = mem_new();
	u32 rents[] = { 0x7fe2000 };
	u64 xents[] = { 0x7fe4000, 0x100001000ULL };
	u64 pa = 0;

	put_rsdp(m, 0xf0000, 2, 0x7fe0000, 0x7fe1000);
	put_rsdt(m, 0x7fe0000, rents, 1);
	put_xsdt(m, 0x7fe1000, xents, 2);
	put_dummy_sdt(m, 0x7fe2000, "APIC");
	put_dummy_sdt(m, 0x7fe4000, "FACP");
	put_dummy_sdt(m, 0x100001000ULL, "APIC");

	CHECK_EQ(acpi_find_table(mem_map, m, 0xf0000, "APIC", &pa), 0);
	CHECK_EQ(pa, 0x100001000ULL);
	/* Revision 0: the XSDT field is not there; the RSDT is used. */
	put_rsdp(m, 0xf0100, 0, 0x7fe0000, 0);
	CHECK_EQ(acpi_find_table(mem_map, m, 0xf0100, "APIC", &pa), 0);
	CHECK_EQ(pa, 0x7fe2000);
	/* Revision 2 with a zero XSDT address. */
	put_rsdp(m, 0xf0200, 2, 0x7fe0000, 0);
	CHECK_EQ(acpi_find_table(mem_map, m, 0xf0200, "APIC", &pa), 0);
	CHECK_EQ(pa, 0x7fe2000);
	/* XSDT with a bad checksum: fall back to the RSDT. */
	mem_at(m, 0x7fe1000, 36)[9] ^= 1;
	CHECK_EQ(acpi_find_table(mem_map, m, 0xf0000, "APIC", &pa), 0);
	CHECK_EQ(pa, 0x7fe2000);
	/* ... which has no FACP. */
	CHECK_EQ(acpi_find_table(mem_map, m, 0xf0000, "FACP", &pa), -1);
	mem_free(m);
}

/* --- MADT --- */

static void build_madt(struct tbl *t)
{
	madt_start(t);
	madt_lapic(t, 0, 0, LAPIC_EN);
	madt_ioapic(t);
	madt_lapic(t, 1, 1, LAPIC_EN);
	madt_lapic(t, 2, 2, 0);                        /* disabled */
	madt_lapic(t, 3, 3, LAPIC_ONLINE_CAPABLE);     /* hot-pluggable, not running */
	madt_lapic(t, 4, 1, LAPIC_EN);                 /* duplicate id */
	madt_x2apic(t, 0x100, LAPIC_EN);
	madt_x2apic(t, 1, LAPIC_EN);                   /* duplicate of a local APIC id */
	madt_x2apic(t, 0x101, 0);
	madt_lapic(t, 5, 4, LAPIC_EN | LAPIC_ONLINE_CAPABLE);
	madt_x2apic(t, 0x100, LAPIC_EN);               /* duplicate x2APIC id */
}

TEST(acpi_madt_enumeration)
{
	struct mem *m = mem_new();
	struct tbl t;
	u32 ids[8];
	struct cpu_list cl = { .max = 8, .apic_ids = ids };

	build_madt(&t);
	sdt_finish(&t);
	mem_put(m, 0x7fe3000, t.b, t.len);
	REQUIRE_EQ(madt_enum_cpus(mem_map, m, 0x7fe3000, &cl), 0);
	REQUIRE_EQ(cl.count, 4);
	CHECK_EQ(ids[0], 0);
	CHECK_EQ(ids[1], 1);
	CHECK_EQ(ids[2], 0x100);
	CHECK_EQ(ids[3], 4);
	CHECK_EQ(cl.lapic_base, 0xfee00000);
	mem_free(m);
}

TEST(acpi_madt_count_only_and_capacity)
{
	struct mem *m = mem_new();
	struct tbl t;
	u32 ids[3] = { 0xaaaa, 0xaaaa, 0xaaaa };
	struct cpu_list cl = { .count = 99, .max = 0, .apic_ids = NULL };

	build_madt(&t);
	sdt_finish(&t);
	mem_put(m, 0x7fe3000, t.b, t.len);
	REQUIRE_EQ(madt_enum_cpus(mem_map, m, 0x7fe3000, &cl), 0);
	CHECK_EQ(cl.count, 4);

	cl.max = 2;
	cl.apic_ids = ids;
	REQUIRE_EQ(madt_enum_cpus(mem_map, m, 0x7fe3000, &cl), 0);
	CHECK_EQ(cl.count, 4);
	CHECK_EQ(ids[0], 0);
	CHECK_EQ(ids[1], 1);
	CHECK_EQ(ids[2], 0xaaaa);
	mem_free(m);
}

TEST(acpi_madt_lapic_override)
{
	struct mem *m = mem_new();
	struct tbl t;
	struct cpu_list cl = { 0 };

	madt_start(&t);
	madt_lapic(&t, 0, 0, LAPIC_EN);
	madt_override(&t, 0x1fee00000ULL);
	madt_lapic(&t, 1, 7, LAPIC_EN);
	sdt_finish(&t);
	mem_put(m, 0x7fe3000, t.b, t.len);
	REQUIRE_EQ(madt_enum_cpus(mem_map, m, 0x7fe3000, &cl), 0);
	CHECK_EQ(cl.count, 2);
	CHECK_EQ(cl.lapic_base, 0x1fee00000ULL);
	mem_free(m);
}

/* The MADT built by build_madt, then one more raw entry and a valid checksum; -1 expected. */
static void check_madt_rejects(const char *file, int line, const u8 *entry, u32 n, u32 len_adjust)
{
	struct mem *m = mem_new();
	struct tbl t;
	struct cpu_list cl = { 0 };
	int r;

	build_madt(&t);
	tbl_bytes(&t, entry, n);
	sdt_finish(&t);
	/* Claim a shorter table than what was written (entry then runs past the end). */
	if (len_adjust) {
		wr32(t.b + 4, t.len - len_adjust);
		fix_sum(t.b, t.len - len_adjust, 9);
		t.len -= len_adjust;
	}
	mem_put(m, 0x7fe3000, t.b, t.len);
	r = madt_enum_cpus(mem_map, m, 0x7fe3000, &cl);
	if (r != -1)
		unit_fail(file, line, "malformed MADT accepted (returned %d, count %u)", r, cl.count);
	mem_free(m);
}

TEST(acpi_madt_malformed)
{
	static const u8 zero_len[] = { 0, 0, 0, 0, 0, 0, 0, 0 };
	static const u8 one_len[] = { 7, 1, 0, 0 };
	static const u8 short_lapic[] = { 0, 6, 9, 9, 1, 0 };
	static const u8 short_x2apic[] = { 9, 12, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0 };
	static const u8 short_override[] = { 5, 8, 0, 0, 0, 0, 0, 0 };
	static const u8 lapic[] = { 0, 8, 9, 9, 1, 0, 0, 0 };
	static const u8 lone_byte[] = { 0 };

	check_madt_rejects(__FILE__, __LINE__, zero_len, sizeof(zero_len), 0);
	check_madt_rejects(__FILE__, __LINE__, one_len, sizeof(one_len), 0);
	check_madt_rejects(__FILE__, __LINE__, short_lapic, sizeof(short_lapic), 0);
	check_madt_rejects(__FILE__, __LINE__, short_x2apic, sizeof(short_x2apic), 0);
	check_madt_rejects(__FILE__, __LINE__, short_override, sizeof(short_override), 0);
	check_madt_rejects(__FILE__, __LINE__, lapic, sizeof(lapic), 3);    /* runs past the end */
	check_madt_rejects(__FILE__, __LINE__, lone_byte, sizeof(lone_byte), 0);
}

TEST(acpi_madt_bad_header)
{
	struct mem *m = mem_new();
	struct tbl t;
	struct cpu_list cl = { 0 };
	static const u8 unknown[] = { 0x7f, 4, 0, 0 };

	/* Unknown entry types are skipped by their length. */
	build_madt(&t);
	tbl_bytes(&t, unknown, sizeof(unknown));
	sdt_finish(&t);
	mem_put(m, 0x7fe3000, t.b, t.len);
	CHECK_EQ(madt_enum_cpus(mem_map, m, 0x7fe3000, &cl), 0);
	CHECK_EQ(cl.count, 4);

	mem_at(m, 0x7fe3000, 48)[44] ^= 0x40;           /* checksum now wrong */
	CHECK_EQ(madt_enum_cpus(mem_map, m, 0x7fe3000, &cl), -1);
	CHECK_EQ(madt_enum_cpus(mem_map, m, 0x7fe7000, &cl), -1);     /* unmapped */

	build_madt(&t);
	memcpy(t.b, "APIX", 4);
	sdt_finish(&t);
	mem_put(m, 0x7fe5000, t.b, t.len);
	CHECK_EQ(madt_enum_cpus(mem_map, m, 0x7fe5000, &cl), -1);

	tbl_start(&t, "APIC", 40);                      /* shorter than the MADT header */
	sdt_finish(&t);
	mem_put(m, 0x7fe6000, t.b, t.len);
	CHECK_EQ(madt_enum_cpus(mem_map, m, 0x7fe6000, &cl), -1);
	mem_free(m);
}

TEST(acpi_full_discovery_path)
{
	/* RSDP in the EBDA -> XSDT -> MADT, as init does it. */
	struct mem *m = mem_new();
	u64 xents[] = { 0x7fe4000, 0x7fe3000 };
	struct tbl t;
	u32 ids[8];
	struct cpu_list cl = { .max = 8, .apic_ids = ids };
	u64 rsdp = 0, madt = 0;

	set_ebda(m, 0x9fc00);
	put_rsdp(m, 0x9fc10, 2, 0, 0x7fe1000);
	put_xsdt(m, 0x7fe1000, xents, 2);
	put_dummy_sdt(m, 0x7fe4000, "FACP");
	build_madt(&t);
	sdt_finish(&t);
	mem_put(m, 0x7fe3000, t.b, t.len);
	REQUIRE_EQ(acpi_find_rsdp(mem_map, m, &rsdp), 0);
	REQUIRE_EQ(acpi_find_table(mem_map, m, rsdp, "APIC", &madt), 0);
	CHECK_EQ(madt, 0x7fe3000);
	REQUIRE_EQ(madt_enum_cpus(mem_map, m, madt, &cl), 0);
	CHECK_EQ(cl.count, 4);
	mem_free(m);
}

/* --- MP table --- */

static void put_mp_fp(struct mem *m, u64 pa, u32 cfg)
{
	u8 fp[16] = { '_', 'M', 'P', '_' };

	wr32(fp + 4, cfg);
	fp[8] = 1;
	fp[9] = 4;
	fix_sum(fp, 16, 10);
	mem_put(m, pa, fp, 16);
}

static void mp_start(struct tbl *t)
{
	memset(t, 0, sizeof(*t));
	memcpy(t->b, "PCMP", 4);
	t->b[6] = 4;
	memcpy(t->b + 8, "XMHFTEST", 8);
	memcpy(t->b + 16, "UNIT TEST   ", 12);
	wr32(t->b + 36, 0xfee00000);
	t->len = 44;
}

static void mp_cpu(struct tbl *t, u8 id, u8 flags)
{
	u8 e[20] = { 0, id, 0x14, flags };

	wr32(e + 4, 0x000306a9);
	tbl_bytes(t, e, sizeof(e));
	wr16(t->b + 34, (u16)(t->b[34] + 1));
}

static void mp_short(struct tbl *t, u8 type)
{
	u8 e[8] = { type, 1, 2, 3, 4, 5, 6, 7 };

	tbl_bytes(t, e, sizeof(e));
	wr16(t->b + 34, (u16)(t->b[34] + 1));
}

static void mp_finish(struct tbl *t)
{
	wr16(t->b + 4, (u16)t->len);
	fix_sum(t->b, t->len, 7);
}

static void build_mp(struct tbl *t)
{
	mp_start(t);
	mp_cpu(t, 0, 3);          /* enabled, bootstrap processor */
	mp_short(t, 1);           /* bus */
	mp_cpu(t, 2, 1);
	mp_cpu(t, 3, 0);          /* disabled */
	mp_short(t, 2);           /* I/O APIC */
	mp_short(t, 3);           /* I/O interrupt */
	mp_short(t, 4);           /* local interrupt */
	mp_cpu(t, 2, 1);          /* duplicate */
	mp_cpu(t, 6, 1);
	mp_finish(t);
}

TEST(acpi_mptable_fallback)
{
	/* No RSDP anywhere, an MP table in the BIOS area. */
	struct mem *m = mem_new();
	struct tbl t;
	u32 ids[8];
	struct cpu_list cl = { .max = 8, .apic_ids = ids };
	u64 rsdp;

	build_mp(&t);
	mem_put(m, 0xf8000, t.b, t.len);
	put_mp_fp(m, 0xf5b40, 0xf8000);
	CHECK_EQ(acpi_find_rsdp(mem_map, m, &rsdp), -1);
	REQUIRE_EQ(mptable_enum_cpus(mem_map, m, &cl), 0);
	REQUIRE_EQ(cl.count, 3);
	CHECK_EQ(ids[0], 0);
	CHECK_EQ(ids[1], 2);
	CHECK_EQ(ids[2], 6);
	CHECK_EQ(cl.lapic_base, 0xfee00000);

	cl.max = 0;
	cl.apic_ids = NULL;
	REQUIRE_EQ(mptable_enum_cpus(mem_map, m, &cl), 0);
	CHECK_EQ(cl.count, 3);
	mem_free(m);
}

TEST(acpi_mptable_search_areas)
{
	struct mem *m;
	struct tbl t;
	struct cpu_list cl = { 0 };

	build_mp(&t);

	/* First KiB of the EBDA. */
	m = mem_new();
	set_ebda(m, 0x9ac00);
	mem_put(m, 0x10000, t.b, t.len);
	put_mp_fp(m, 0x9ac00 + 0x3f0, 0x10000);
	CHECK_EQ(mptable_enum_cpus(mem_map, m, &cl), 0);
	CHECK_EQ(cl.count, 3);
	mem_free(m);

	/* Last KiB of 640 KiB base memory. */
	m = mem_new();
	mem_put(m, 0x10000, t.b, t.len);
	put_mp_fp(m, 639 * 1024 + 0x100, 0x10000);
	CHECK_EQ(mptable_enum_cpus(mem_map, m, &cl), 0);
	CHECK_EQ(cl.count, 3);
	mem_free(m);

	/* Outside every area, or unaligned: not found. */
	m = mem_new();
	mem_put(m, 0x10000, t.b, t.len);
	put_mp_fp(m, 0xe0000, 0x10000);
	put_mp_fp(m, 0xf0008, 0x10000);
	CHECK_EQ(mptable_enum_cpus(mem_map, m, &cl), -1);
	mem_free(m);
}

TEST(acpi_mptable_bad)
{
	struct mem *m;
	struct tbl t;
	struct cpu_list cl = { 0 };

	/* Floating pointer with a bad checksum is skipped; a later good one is used. */
	m = mem_new();
	build_mp(&t);
	mem_put(m, 0x10000, t.b, t.len);
	put_mp_fp(m, 0xf0000, 0x10000);
	m->low[0xf0000 + 10] ^= 1;
	CHECK_EQ(mptable_enum_cpus(mem_map, m, &cl), -1);
	put_mp_fp(m, 0xf0010, 0x10000);
	CHECK_EQ(mptable_enum_cpus(mem_map, m, &cl), 0);
	CHECK_EQ(cl.count, 3);

	/* Configuration table checksum broken. */
	m->low[0x10000 + 50] ^= 1;
	CHECK_EQ(mptable_enum_cpus(mem_map, m, &cl), -1);
	mem_free(m);

	/* Unknown entry type: the walk cannot continue. */
	m = mem_new();
	build_mp(&t);
	t.b[44 + 20] = 9;
	mp_finish(&t);
	mem_put(m, 0x10000, t.b, t.len);
	put_mp_fp(m, 0xf0000, 0x10000);
	CHECK_EQ(mptable_enum_cpus(mem_map, m, &cl), -1);
	mem_free(m);

	/* Entry count larger than the table. */
	m = mem_new();
	build_mp(&t);
	wr16(t.b + 34, 20);
	mp_finish(&t);
	mem_put(m, 0x10000, t.b, t.len);
	put_mp_fp(m, 0xf0000, 0x10000);
	CHECK_EQ(mptable_enum_cpus(mem_map, m, &cl), -1);
	mem_free(m);

	/* Default configuration (no table pointer). */
	m = mem_new();
	put_mp_fp(m, 0xf0000, 0);
	CHECK_EQ(mptable_enum_cpus(mem_map, m, &cl), -1);
	mem_free(m);
}
