/* Identity EPT (SDM Vol. 3, 29.3.2): ept_build_identity, ept_lookup, ept_leaf, ept_update_memtypes on
 * tables that are aligned_alloc'd 4 KiB blocks whose "physical address" is the pointer value. Every
 * map is checked by an independent walk (identity, entry format, leaf sizes, memory types, holes, top,
 * all memory mapped, large pages wherever possible) and by ept_lookup at chosen addresses. */
#include <stdint.h>
#include <stdlib.h>
#include <lib/ept.h>
#include "unit.h"

#define KiB 1024ULL
#define MiB (1024 * KiB)
#define GiB (1024 * MiB)
#define VALID (1ULL << 11)

#define R (1ULL << 0)
#define W (1ULL << 1)
#define X (1ULL << 2)
#define RWX (R | W | X)
#define IPAT (1ULL << 6)
#define PS (1ULL << 7)
#define ADDR_MASK 0x000ffffffffff000ULL

/* ------------------------------------------------------------------------------------------------ */
/* Environment: a pool of tables with an optional limit. */

struct pool {
	void **t;
	u32 n, cap, limit;
	u32 calls; /* alloc_table calls, including failed ones */
};

struct tenv {
	struct ept_env env;
	struct mtrr_state m;
	struct pool pool;
	struct phys_range holes[8];
	u64 top;
};

static u64 alloc_cb(void *ctx)
{
	struct pool *p = ctx;
	void *t;

	p->calls++;
	if (p->n >= p->limit)
		return 0;
	if (p->n == p->cap) {
		p->cap = p->cap ? 2 * p->cap : 64;
		p->t = realloc(p->t, p->cap * sizeof(*p->t));
		if (!p->t)
			abort();
	}
	t = aligned_alloc(4096, 4096);
	if (!t)
		abort();
	/* Not zeroed memory would show up as garbage entries: fill with a pattern, then zero as promised. */
	memset(t, 0xa5, 4096);
	memset(t, 0, 4096);
	p->t[p->n++] = t;
	return (u64)(uintptr_t)t;
}

static u64 *table_cb(void *ctx, u64 pa)
{
	(void)ctx;
	if (pa == 0 || (pa & 0xfff))
		abort(); /* the library followed a bad table address */
	return (u64 *)(uintptr_t)pa;
}

static bool pool_has(const struct pool *p, u64 pa)
{
	for (u32 i = 0; i < p->n; i++)
		if ((u64)(uintptr_t)p->t[i] == pa)
			return true;
	return false;
}

static void pool_free(struct pool *p)
{
	for (u32 i = 0; i < p->n; i++)
		free(p->t[i]);
	free(p->t);
	memset(p, 0, sizeof(*p));
	p->limit = UINT32_MAX;
}

static void init_mtrr(struct mtrr_state *m, int def, bool fe, int fixtype, u32 maxphy)
{
	memset(m, 0, sizeof(*m));
	m->enabled = true;
	m->fixed_enabled = fe;
	m->def_type = (u8)def;
	memset(m->fixed, fixtype, sizeof(m->fixed));
	m->nvar = 8;
	m->phys_mask = (1ULL << maxphy) - 1;
}

static void set_var(struct mtrr_state *m, u32 n, u64 base, u64 size, int type)
{
	m->var[n].base = base | (u64)type;
	m->var[n].mask = (~(size - 1) & m->phys_mask & ~0xfffULL) | VALID;
}

/* Default: WB everywhere, fixed ranges enabled and WB, 1 GiB and 2 MiB pages, no holes. */
static void setup(struct tenv *t, bool fe, bool p1g, bool p2m)
{
	memset(t, 0, sizeof(*t));
	init_mtrr(&t->m, MT_WB, fe, MT_WB, 39);
	t->pool.limit = UINT32_MAX;
	t->env.alloc_table = alloc_cb;
	t->env.table = table_cb;
	t->env.ctx = &t->pool;
	t->env.page_1g = p1g;
	t->env.page_2m = p2m;
	t->env.mtrr = &t->m;
	t->env.holes = t->holes;
	t->env.nholes = 0;
}

static void add_hole(struct tenv *t, u64 base, u64 len)
{
	t->holes[t->env.nholes].base = base;
	t->holes[t->env.nholes].length = len;
	t->env.nholes++;
}

static u64 build(struct tenv *t, u64 top)
{
	t->top = top;
	return ept_build_identity(&t->env, top);
}

static u64 level_size(int level)
{
	return 1ULL << (12 + 9 * (level - 1));
}

static u64 leaf_entry(u64 addr, int level, int type)
{
	return addr | RWX | ((u64)type << 3) | (level > 1 ? PS : 0);
}

/* ------------------------------------------------------------------------------------------------ */
/* Checks at one address. */

/* want_level 0: not present. */
static void check_at(const char *file, int line, struct tenv *t, u64 pml4, u64 gpa, int want_level,
		     int want_type)
{
	int level = -1;
	u64 e = ept_lookup(&t->env, pml4, gpa, &level);

	if (want_level == 0) {
		if (e != 0)
			unit_fail(file, line, "gpa %#llx: want not present, got entry %#llx level %d",
				  (unsigned long long)gpa, (unsigned long long)e, level);
		return;
	}
	u64 want = leaf_entry(gpa & ~(level_size(want_level) - 1), want_level, want_type);
	if (e != want || level != want_level)
		unit_fail(file, line, "gpa %#llx: got entry %#llx level %d, want %#llx level %d",
			  (unsigned long long)gpa, (unsigned long long)e, level, (unsigned long long)want,
			  want_level);
}

#define AT(t, pml4, gpa, level, type) check_at(__FILE__, __LINE__, (t), (pml4), (gpa), (level), (type))
#define ABSENT(t, pml4, gpa) check_at(__FILE__, __LINE__, (t), (pml4), (gpa), 0, 0)

/* ------------------------------------------------------------------------------------------------ */
/* An independent walk of the whole map. */

struct walk {
	struct tenv *t;
	bool maximal; /* large pages wherever possible (true right after ept_build_identity) */
	u64 mapped;
	u32 tables;
	u32 leaves[5];
	int fails;
	const char *file;
	int line;
};

static void wfail(struct walk *w, const char *what, u64 addr, int level, u64 e)
{
	if (w->fails++ < 8)
		unit_fail(w->file, w->line, "walk: %s at %#llx (level %d, entry %#llx)", what,
			  (unsigned long long)addr, level, (unsigned long long)e);
}

static bool leaf_ok(const struct tenv *t, int level)
{
	return level == 1 || (level == 2 && t->env.page_2m) || (level == 3 && t->env.page_1g);
}

static bool overlaps_hole(const struct tenv *t, u64 base, u64 size)
{
	for (u32 i = 0; i < t->env.nholes; i++) {
		u64 hb = t->holes[i].base & ~0xfffULL;
		u64 he = ALIGN_UP(t->holes[i].base + t->holes[i].length, 4 * KiB);

		if (t->holes[i].length && hb < base + size && he > base)
			return true;
	}
	return false;
}

/* Each 4 KiB page's type at the leaf's ends and at every variable range boundary inside it. */
static bool leaf_type_ok(const struct tenv *t, u64 addr, u64 size, int type)
{
	const struct mtrr_state *m = &t->m;
	u64 pts[2 + 4 * MTRR_MAX_VAR];
	u32 n = 0;

	pts[n++] = addr;
	pts[n++] = addr + size - 4 * KiB;
	for (u32 i = 0; i < m->nvar; i++) {
		u64 mask = m->var[i].mask & m->phys_mask & ~0xfffULL;
		u64 vb = m->var[i].base & mask, ve = vb + (mask & -mask);

		pts[n++] = vb;
		pts[n++] = vb - 4 * KiB;
		pts[n++] = ve;
		pts[n++] = ve - 4 * KiB;
	}
	for (u32 i = 0; i < n; i++)
		if (pts[i] >= addr && pts[i] < addr + size && mtrr_range_type(m, pts[i], 4 * KiB) != type)
			return false;
	if (mtrr_range_type(m, addr, size) != type)
		return false;
	if (m->enabled && m->fixed_enabled && addr < 1 * MiB)
		for (u64 a = addr; a < addr + size; a += 4 * KiB)
			if (mtrr_range_type(m, a, 4 * KiB) != type)
				return false;
	return true;
}

static void walk_table(struct walk *w, u64 pa, int level, u64 base)
{
	struct tenv *t = w->t;
	u64 size = level_size(level);
	const u64 *tab;

	w->tables++;
	if (!pool_has(&t->pool, pa)) {
		wfail(w, "table not allocated from the pool", base, level, pa);
		return;
	}
	tab = (const u64 *)(uintptr_t)pa;
	for (u32 i = 0; i < 512; i++) {
		u64 e = tab[i], addr = base + i * size;

		if (e == 0)
			continue;
		if ((e & RWX) != RWX) {
			wfail(w, "entry not RWX", addr, level, e);
			continue;
		}
		if (addr >= t->top) {
			wfail(w, "entry at or above top", addr, level, e);
			continue;
		}
		if (level == 4 || (level > 1 && !(e & PS))) {
			/* Bits 7:3 of a non-leaf entry are reserved (PS = 0), as are 51:MAXPHYADDR. */
			if (e & 0xf8)
				wfail(w, "reserved bits set in non-leaf entry", addr, level, e);
			if (e & ~(ADDR_MASK | 0xfffULL))
				wfail(w, "high bits set in non-leaf entry", addr, level, e);
			walk_table(w, e & ADDR_MASK, level - 1, addr);
			continue;
		}
		/* A leaf. */
		int type = (int)((e >> 3) & 7);

		w->leaves[level]++;
		w->mapped += size;
		if (e != leaf_entry(addr, level, type))
			wfail(w, "leaf is not an identity RWX entry", addr, level, e);
		if (!leaf_ok(t, level))
			wfail(w, "leaf size not supported", addr, level, e);
		if (addr + size > t->top)
			wfail(w, "leaf reaches past top", addr, level, e);
		if (overlaps_hole(t, addr, size))
			wfail(w, "leaf overlaps a hole", addr, level, e);
		if (!leaf_type_ok(t, addr, size, type))
			wfail(w, "wrong memory type", addr, level, e);
		if (w->maximal && level < 3 && leaf_ok(t, level + 1)) {
			u64 ps = level_size(level + 1), pb = addr & ~(ps - 1);

			if (pb + ps <= t->top && !overlaps_hole(t, pb, ps) &&
			    mtrr_range_type(&t->m, pb, ps) != MT_MIXED)
				wfail(w, "could have been a larger page", addr, level, e);
		}
	}
}

/* Bytes that must be mapped: [0, top) less the holes (pages they touch), holes disjoint. */
static u64 expected_mapped(const struct tenv *t)
{
	u64 n = t->top;

	for (u32 i = 0; i < t->env.nholes; i++) {
		u64 hb = t->holes[i].base & ~0xfffULL;
		u64 he = ALIGN_UP(t->holes[i].base + t->holes[i].length, 4 * KiB);

		if (!t->holes[i].length || hb >= t->top)
			continue;
		n -= MIN(he, t->top) - hb;
	}
	return n;
}

static struct walk check_map_(const char *file, int line, struct tenv *t, u64 pml4, bool maximal)
{
	struct walk w = { .t = t, .maximal = maximal, .file = file, .line = line };

	walk_table(&w, pml4, 4, 0);
	if (w.mapped != expected_mapped(t))
		unit_fail(file, line, "walk: %#llx bytes mapped, want %#llx", (unsigned long long)w.mapped,
			  (unsigned long long)expected_mapped(t));
	if (w.tables != t->pool.n)
		unit_fail(file, line, "walk: %u tables reachable, %u allocated", w.tables, t->pool.n);
	return w;
}

#define CHECK_MAP(t, pml4) check_map_(__FILE__, __LINE__, (t), (pml4), true)
#define CHECK_MAP_TYPES(t, pml4) check_map_(__FILE__, __LINE__, (t), (pml4), false)

/* ------------------------------------------------------------------------------------------------ */

TEST(ept_identity_4g_1g_pages)
{
	struct tenv t;
	u64 pml4;

	/* Fixed ranges disabled, WB everywhere: PML4 + one PDPT with four 1 GiB leaves. */
	setup(&t, false, true, true);
	pml4 = build(&t, 4 * GiB);
	REQUIRE(pml4 != 0);
	CHECK_EQ(t.pool.n, 2);
	for (u64 a = 0; a < 4 * GiB; a += 256 * MiB - 4 * KiB)
		AT(&t, pml4, a, 3, MT_WB);
	AT(&t, pml4, 0, 3, MT_WB);
	AT(&t, pml4, 4 * GiB - 4 * KiB, 3, MT_WB);
	AT(&t, pml4, 0xd2345000, 3, MT_WB);
	ABSENT(&t, pml4, 4 * GiB);
	ABSENT(&t, pml4, 5 * GiB);
	ABSENT(&t, pml4, 512 * GiB);
	ABSENT(&t, pml4, 0x0000ff8000000000ULL);
	{
		const u64 *p4 = (const u64 *)(uintptr_t)pml4;
		const u64 *p3 = (const u64 *)(uintptr_t)(p4[0] & ADDR_MASK);

		CHECK_EQ(p4[0] & 0xfff, RWX);
		CHECK_EQ(p4[1], 0);
		CHECK_EQ(p3[0], 0 | RWX | (MT_WB << 3) | PS);
		CHECK_EQ(p3[3], 3 * GiB | RWX | (MT_WB << 3) | PS);
		CHECK_EQ(p3[4], 0);
	}
	struct walk w = CHECK_MAP(&t, pml4);
	CHECK_EQ(w.leaves[3], 4);
	CHECK_EQ(w.leaves[2] + w.leaves[1], 0);
	pool_free(&t.pool);
}

TEST(ept_count_tables_4g)
{
	struct tenv t;
	u64 pml4;

	/* With fixed ranges enabled the first GiB and the first 2 MiB reach below 1 MiB: split
	 * down to 4 KiB there, even though all types are WB. PML4 + PDPT + PD + PT. */
	setup(&t, true, true, true);
	pml4 = build(&t, 4 * GiB);
	REQUIRE(pml4 != 0);
	CHECK(t.pool.n <= 4);
	CHECK_EQ(t.pool.n, 4);
	AT(&t, pml4, 0, 1, MT_WB);
	AT(&t, pml4, 0xff000, 1, MT_WB);
	AT(&t, pml4, 0x100000, 1, MT_WB);
	AT(&t, pml4, 0x1ff000, 1, MT_WB);
	AT(&t, pml4, 0x200000, 2, MT_WB);
	AT(&t, pml4, 1 * GiB - 2 * MiB, 2, MT_WB);
	AT(&t, pml4, 1 * GiB, 3, MT_WB);
	AT(&t, pml4, 4 * GiB - 4 * KiB, 3, MT_WB);
	ABSENT(&t, pml4, 4 * GiB);
	struct walk w = CHECK_MAP(&t, pml4);
	CHECK_EQ(w.leaves[3], 3);
	CHECK_EQ(w.leaves[2], 511);
	CHECK_EQ(w.leaves[1], 512);
	pool_free(&t.pool);
}

TEST(ept_identity_fixed_types_first_mib)
{
	struct tenv t;
	u64 pml4;

	setup(&t, true, true, true);
	memset(t.m.fixed + 16, MT_UC, 8);  /* VGA 0xA0000-0xBFFFF */
	memset(t.m.fixed + 24, MT_WP, 64); /* ROMs 0xC0000-0xFFFFF */
	t.m.fixed[24 + 0x10] = MT_WT;      /* 0xD0000 */
	pml4 = build(&t, 4 * GiB);
	REQUIRE(pml4 != 0);
	CHECK_EQ(t.pool.n, 4);
	AT(&t, pml4, 0, 1, MT_WB);
	AT(&t, pml4, 0x9f000, 1, MT_WB);
	AT(&t, pml4, 0xa0000, 1, MT_UC);
	AT(&t, pml4, 0xbf000, 1, MT_UC);
	AT(&t, pml4, 0xc0000, 1, MT_WP);
	AT(&t, pml4, 0xcf000, 1, MT_WP);
	AT(&t, pml4, 0xd0000, 1, MT_WT);
	AT(&t, pml4, 0xd1000, 1, MT_WP);
	AT(&t, pml4, 0xff000, 1, MT_WP);
	AT(&t, pml4, 0x100000, 1, MT_WB);
	AT(&t, pml4, 0x200000, 2, MT_WB);
	CHECK_MAP(&t, pml4);
	pool_free(&t.pool);
}

TEST(ept_identity_2m_pages_only)
{
	struct tenv t;
	u64 pml4;

	/* No 1 GiB pages: PML4 + PDPT + 4 PDs + the PT for the first 2 MiB. */
	setup(&t, true, false, true);
	pml4 = build(&t, 4 * GiB);
	REQUIRE(pml4 != 0);
	CHECK_EQ(t.pool.n, 7);
	AT(&t, pml4, 0x1000, 1, MT_WB);
	AT(&t, pml4, 0x200000, 2, MT_WB);
	AT(&t, pml4, 1 * GiB, 2, MT_WB);
	AT(&t, pml4, 2 * GiB + 0x345000, 2, MT_WB);
	AT(&t, pml4, 4 * GiB - 4 * KiB, 2, MT_WB);
	ABSENT(&t, pml4, 4 * GiB);
	struct walk w = CHECK_MAP(&t, pml4);
	CHECK_EQ(w.leaves[3], 0);
	CHECK_EQ(w.leaves[2], 4 * 512 - 1);
	pool_free(&t.pool);
}

TEST(ept_identity_4k_pages_only)
{
	struct tenv t;
	u64 pml4;

	setup(&t, false, false, false);
	pml4 = build(&t, 32 * MiB);
	REQUIRE(pml4 != 0);
	CHECK_EQ(t.pool.n, 3 + 16);
	for (u64 a = 0; a < 32 * MiB; a += 1 * MiB + 4 * KiB)
		AT(&t, pml4, a, 1, MT_WB);
	AT(&t, pml4, 32 * MiB - 4 * KiB, 1, MT_WB);
	ABSENT(&t, pml4, 32 * MiB);
	struct walk w = CHECK_MAP(&t, pml4);
	CHECK_EQ(w.leaves[1], 32 * MiB / (4 * KiB));
	pool_free(&t.pool);
}

TEST(ept_identity_bios_layout)
{
	struct tenv t;
	u64 pml4;

	/* Default UC; WB 0-2G, 2G-3G, 4G-8G, 8G-8.25G; PCI hole 3G-4G UC; PC fixed layout. RAM ends
	 * at 8.25 GiB, but the map covers 4 GiB of MMIO too: top = 8.25 GiB. */
	setup(&t, true, true, true);
	init_mtrr(&t.m, MT_UC, true, MT_WB, 39);
	memset(t.m.fixed + 16, MT_UC, 8);
	memset(t.m.fixed + 24, MT_WP, 64);
	set_var(&t.m, 0, 0, 2 * GiB, MT_WB);
	set_var(&t.m, 1, 2 * GiB, 1 * GiB, MT_WB);
	set_var(&t.m, 2, 4 * GiB, 4 * GiB, MT_WB);
	set_var(&t.m, 3, 8 * GiB, 256 * MiB, MT_WB);
	pml4 = build(&t, 8 * GiB + 256 * MiB);
	REQUIRE(pml4 != 0);
	CHECK_EQ(t.pool.n, 5); /* PML4, PDPT, PD 0, PT 0, PD 8 */
	AT(&t, pml4, 0x9f000, 1, MT_WB);
	AT(&t, pml4, 0xa0000, 1, MT_UC);
	AT(&t, pml4, 0xc0000, 1, MT_WP);
	AT(&t, pml4, 0x100000, 1, MT_WB);
	AT(&t, pml4, 0x200000, 2, MT_WB);
	AT(&t, pml4, 1 * GiB, 3, MT_WB);
	AT(&t, pml4, 2 * GiB, 3, MT_WB);
	AT(&t, pml4, 3 * GiB, 3, MT_UC);
	AT(&t, pml4, 0xfec00000, 3, MT_UC);
	AT(&t, pml4, 0xfee00000, 3, MT_UC);
	AT(&t, pml4, 4 * GiB, 3, MT_WB);
	AT(&t, pml4, 7 * GiB + 0x5000, 3, MT_WB);
	AT(&t, pml4, 8 * GiB, 2, MT_WB);
	AT(&t, pml4, 8 * GiB + 254 * MiB, 2, MT_WB);
	AT(&t, pml4, 8 * GiB + 256 * MiB - 4 * KiB, 2, MT_WB);
	ABSENT(&t, pml4, 8 * GiB + 256 * MiB);
	ABSENT(&t, pml4, 9 * GiB);
	CHECK_MAP(&t, pml4);
	pool_free(&t.pool);

	/* Default WB, UC 3.5G-4G, fixed disabled: GiB 3 in 2 MiB pages, the rest 1 GiB. */
	setup(&t, false, true, true);
	set_var(&t.m, 0, 0xe0000000, 512 * MiB, MT_UC);
	pml4 = build(&t, 6 * GiB);
	REQUIRE(pml4 != 0);
	CHECK_EQ(t.pool.n, 3);
	AT(&t, pml4, 0, 3, MT_WB);
	AT(&t, pml4, 3 * GiB, 2, MT_WB);
	AT(&t, pml4, 0xdfe00000, 2, MT_WB);
	AT(&t, pml4, 0xe0000000, 2, MT_UC);
	AT(&t, pml4, 0xfee00000, 2, MT_UC);
	AT(&t, pml4, 4 * GiB, 3, MT_WB);
	AT(&t, pml4, 6 * GiB - 4 * KiB, 3, MT_WB);
	ABSENT(&t, pml4, 6 * GiB);
	CHECK_MAP(&t, pml4);
	pool_free(&t.pool);
}

TEST(ept_holes)
{
	struct tenv t;
	u64 pml4;

	/* A 6 MiB hypervisor region at 0xF800000 (2 MiB aligned) and a 4 KiB trap page. */
	setup(&t, false, true, true);
	add_hole(&t, 0xf800000, 6 * MiB);
	add_hole(&t, 0x40001000, 4 * KiB);
	pml4 = build(&t, 4 * GiB);
	REQUIRE(pml4 != 0);
	CHECK_EQ(t.pool.n, 5); /* PML4, PDPT, PD 0, PD 1, PT 1G */
	AT(&t, pml4, 0, 2, MT_WB);
	AT(&t, pml4, 0xf600000, 2, MT_WB);
	AT(&t, pml4, 0xf7ff000, 2, MT_WB);
	ABSENT(&t, pml4, 0xf800000);
	ABSENT(&t, pml4, 0xfa00000);
	ABSENT(&t, pml4, 0xfc00000);
	ABSENT(&t, pml4, 0xfdff000);
	AT(&t, pml4, 0xfe00000, 2, MT_WB);
	AT(&t, pml4, 1 * GiB - 4 * KiB, 2, MT_WB);
	AT(&t, pml4, 0x40000000, 1, MT_WB);
	ABSENT(&t, pml4, 0x40001000);
	AT(&t, pml4, 0x40002000, 1, MT_WB);
	AT(&t, pml4, 0x401ff000, 1, MT_WB);
	AT(&t, pml4, 0x40200000, 2, MT_WB);
	AT(&t, pml4, 2 * GiB, 3, MT_WB);
	AT(&t, pml4, 3 * GiB, 3, MT_WB);
	CHECK_MAP(&t, pml4);
	/* ept_leaf finds no entry inside a 2 MiB hole, split or not, and allocates nothing. */
	CHECK(ept_leaf(&t.env, pml4, 0xf900000, false) == NULL);
	CHECK(ept_leaf(&t.env, pml4, 0xf900000, true) == NULL);
	CHECK_EQ(t.pool.n, 5);
	/* Inside a 4 KiB table the hole's entry is empty (the library may return it, to be filled). */
	{
		u64 *e = ept_leaf(&t.env, pml4, 0x40001000, true);

		CHECK(e == NULL || *e == 0);
	}
	pool_free(&t.pool);

	/* The same region 1 MiB higher: its ends cut 2 MiB pages, mapped with 4 KiB pages up to it. */
	setup(&t, false, true, true);
	add_hole(&t, 0xf900000, 6 * MiB);
	pml4 = build(&t, 4 * GiB);
	REQUIRE(pml4 != 0);
	CHECK_EQ(t.pool.n, 5); /* PML4, PDPT, PD 0, two PTs */
	AT(&t, pml4, 0xf600000, 2, MT_WB);
	AT(&t, pml4, 0xf800000, 1, MT_WB);
	AT(&t, pml4, 0xf8ff000, 1, MT_WB);
	ABSENT(&t, pml4, 0xf900000);
	ABSENT(&t, pml4, 0xfa00000);
	ABSENT(&t, pml4, 0xfeff000);
	AT(&t, pml4, 0xff00000, 1, MT_WB);
	AT(&t, pml4, 0xffff000, 1, MT_WB);
	AT(&t, pml4, 0x10000000, 2, MT_WB);
	AT(&t, pml4, 1 * GiB, 3, MT_WB);
	CHECK_MAP(&t, pml4);
	pool_free(&t.pool);

	/* A hole across a 1 GiB boundary; one covering a whole GiB; one above top. */
	setup(&t, false, true, true);
	add_hole(&t, 0xbff00000, 2 * MiB);
	add_hole(&t, 1 * GiB, 1 * GiB);
	add_hole(&t, 5 * GiB, 1 * GiB);
	pml4 = build(&t, 4 * GiB);
	REQUIRE(pml4 != 0);
	CHECK_EQ(t.pool.n, 6); /* PML4, PDPT, PD 2, PT, PD 3, PT */
	AT(&t, pml4, 0, 3, MT_WB);
	AT(&t, pml4, 1 * GiB - 4 * KiB, 3, MT_WB);
	ABSENT(&t, pml4, 1 * GiB);
	ABSENT(&t, pml4, 2 * GiB - 4 * KiB);
	AT(&t, pml4, 2 * GiB, 2, MT_WB);
	AT(&t, pml4, 0xbfe00000, 1, MT_WB);
	AT(&t, pml4, 0xbfeff000, 1, MT_WB);
	ABSENT(&t, pml4, 0xbff00000);
	ABSENT(&t, pml4, 0xc00ff000);
	AT(&t, pml4, 0xc0100000, 1, MT_WB);
	AT(&t, pml4, 0xc0200000, 2, MT_WB);
	AT(&t, pml4, 4 * GiB - 4 * KiB, 2, MT_WB);
	{
		const u64 *p4 = (const u64 *)(uintptr_t)pml4;
		const u64 *p3 = (const u64 *)(uintptr_t)(p4[0] & ADDR_MASK);

		CHECK_EQ(p3[1], 0); /* no table for a GiB that is all hole */
	}
	CHECK_MAP(&t, pml4);
	pool_free(&t.pool);

	/* Two adjacent holes that together cover a 2 MiB page, a hole not aligned to pages (the pages
	 * it touches stay unmapped), a one-page hole at address 0. */
	setup(&t, false, true, true);
	add_hole(&t, 0x1000000, 1 * MiB);
	add_hole(&t, 0x1100000, 1 * MiB);
	add_hole(&t, 0x5000800, 4 * KiB);
	add_hole(&t, 0, 4 * KiB);
	pml4 = build(&t, 2 * GiB);
	REQUIRE(pml4 != 0);
	ABSENT(&t, pml4, 0);
	AT(&t, pml4, 0x1000, 1, MT_WB);
	AT(&t, pml4, 0x200000, 2, MT_WB);
	AT(&t, pml4, 0xfff000, 2, MT_WB);
	ABSENT(&t, pml4, 0x1000000);
	ABSENT(&t, pml4, 0x10ff000);
	ABSENT(&t, pml4, 0x1100000);
	ABSENT(&t, pml4, 0x11ff000);
	AT(&t, pml4, 0x1200000, 2, MT_WB);
	AT(&t, pml4, 0x4fff000, 2, MT_WB); /* block 0x4e00000 has no hole */
	AT(&t, pml4, 0x4e00000, 2, MT_WB);
	ABSENT(&t, pml4, 0x5000000);
	ABSENT(&t, pml4, 0x5001000);
	AT(&t, pml4, 0x5002000, 1, MT_WB);
	AT(&t, pml4, 1 * GiB, 3, MT_WB);
	CHECK_MAP(&t, pml4);
	pool_free(&t.pool);
}

TEST(ept_holes_with_fixed_and_2m_only)
{
	struct tenv t;
	u64 pml4;

	setup(&t, true, false, true);
	memset(t.m.fixed + 16, MT_UC, 8);
	add_hole(&t, 0xf800000, 6 * MiB);
	add_hole(&t, 0xb8000, 4 * KiB);
	add_hole(&t, 0xfee00000, 4 * KiB);
	pml4 = build(&t, 4 * GiB);
	REQUIRE(pml4 != 0);
	AT(&t, pml4, 0xb7000, 1, MT_UC);
	ABSENT(&t, pml4, 0xb8000);
	AT(&t, pml4, 0xb9000, 1, MT_UC);
	ABSENT(&t, pml4, 0xfa00000);
	AT(&t, pml4, 0xfe00000, 2, MT_WB);
	AT(&t, pml4, 0xfedff000, 2, MT_WB);
	ABSENT(&t, pml4, 0xfee00000);
	AT(&t, pml4, 0xfee01000, 1, MT_WB);
	AT(&t, pml4, 0xff000000, 2, MT_WB);
	CHECK_MAP(&t, pml4);
	pool_free(&t.pool);
}

TEST(ept_top)
{
	struct tenv t;
	u64 pml4;

	/* top not a multiple of 2 MiB or 1 GiB. */
	setup(&t, false, true, true);
	pml4 = build(&t, 4 * GiB + 6 * MiB + 12 * KiB);
	REQUIRE(pml4 != 0);
	CHECK_EQ(t.pool.n, 4);
	AT(&t, pml4, 3 * GiB, 3, MT_WB);
	AT(&t, pml4, 4 * GiB, 2, MT_WB);
	AT(&t, pml4, 4 * GiB + 4 * MiB, 2, MT_WB);
	AT(&t, pml4, 4 * GiB + 6 * MiB, 1, MT_WB);
	AT(&t, pml4, 4 * GiB + 6 * MiB + 8 * KiB, 1, MT_WB);
	ABSENT(&t, pml4, 4 * GiB + 6 * MiB + 12 * KiB);
	ABSENT(&t, pml4, 4 * GiB + 8 * MiB);
	ABSENT(&t, pml4, 5 * GiB);
	CHECK_MAP(&t, pml4);
	pool_free(&t.pool);

	/* A small top inside the first MiB. */
	setup(&t, true, true, true);
	pml4 = build(&t, 0x9f000);
	REQUIRE(pml4 != 0);
	CHECK_EQ(t.pool.n, 4);
	AT(&t, pml4, 0, 1, MT_WB);
	AT(&t, pml4, 0x9e000, 1, MT_WB);
	ABSENT(&t, pml4, 0x9f000);
	ABSENT(&t, pml4, 0x100000);
	CHECK_MAP(&t, pml4);
	pool_free(&t.pool);

	/* top 0: an empty PML4. */
	setup(&t, true, true, true);
	pml4 = build(&t, 0);
	REQUIRE(pml4 != 0);
	CHECK_EQ(t.pool.n, 1);
	ABSENT(&t, pml4, 0);
	CHECK_MAP(&t, pml4);
	pool_free(&t.pool);

	/* Beyond 512 GiB: a second PML4 entry. */
	setup(&t, false, true, true);
	init_mtrr(&t.m, MT_WB, false, MT_WB, 46);
	pml4 = build(&t, 513 * GiB);
	REQUIRE(pml4 != 0);
	CHECK_EQ(t.pool.n, 3);
	AT(&t, pml4, 511 * GiB, 3, MT_WB);
	AT(&t, pml4, 512 * GiB, 3, MT_WB);
	AT(&t, pml4, 513 * GiB - 4 * KiB, 3, MT_WB);
	ABSENT(&t, pml4, 513 * GiB);
	ABSENT(&t, pml4, 1024 * GiB);
	CHECK_MAP(&t, pml4);
	pool_free(&t.pool);
}

TEST(ept_out_of_memory)
{
	struct tenv t;
	u64 pml4;
	u32 need;

	/* A map that needs several levels of tables: fixed ranges, holes, 2 MiB pages only. */
	setup(&t, true, false, true);
	memset(t.m.fixed + 16, MT_UC, 8);
	set_var(&t.m, 0, 0xe0000000, 512 * MiB, MT_UC);
	add_hole(&t, 0xf900000, 6 * MiB);
	add_hole(&t, 0x40001000, 4 * KiB);
	pml4 = build(&t, 5 * GiB);
	REQUIRE(pml4 != 0);
	CHECK_MAP(&t, pml4);
	need = t.pool.n;
	CHECK(need > 8);
	pool_free(&t.pool);

	for (u32 lim = 0; lim < need; lim++) {
		t.pool.limit = lim;
		pml4 = build(&t, 5 * GiB);
		CHECK_EQ(pml4, 0);
		CHECK_EQ(t.pool.n, lim);         /* it used what it could get ... */
		CHECK_EQ(t.pool.calls, lim + 1); /* ... and stopped at the first failure */
		pool_free(&t.pool);
	}
	t.pool.limit = need;
	pml4 = build(&t, 5 * GiB);
	CHECK(pml4 != 0);
	CHECK_EQ(t.pool.n, need);
	CHECK_MAP(&t, pml4);
	pool_free(&t.pool);
}

TEST(ept_leaf_no_split_and_split_1g)
{
	struct tenv t;
	u64 pml4, *e, *e4, before;
	u32 n0;

	setup(&t, false, true, true);
	set_var(&t.m, 0, 3 * GiB, 1 * GiB, MT_UC);
	pml4 = build(&t, 4 * GiB);
	REQUIRE(pml4 != 0);
	n0 = t.pool.n;
	CHECK_EQ(n0, 2);

	/* split = false: the 1 GiB leaf itself, nothing allocated. */
	e = ept_leaf(&t.env, pml4, 2 * GiB + 0x123000, false);
	REQUIRE(e != NULL);
	CHECK_EQ(*e, leaf_entry(2 * GiB, 3, MT_WB));
	CHECK(ept_leaf(&t.env, pml4, 3 * GiB - 4 * KiB, false) == e);
	CHECK_EQ(t.pool.n, n0);
	e = ept_leaf(&t.env, pml4, 3 * GiB + 0x5000, false);
	REQUIRE(e != NULL);
	CHECK_EQ(*e, leaf_entry(3 * GiB, 3, MT_UC));

	/* split = true: a 4 KiB leaf, same type and rights; the GiB is now a PD of 2 MiB leaves and one
	 * PT. */
	e4 = ept_leaf(&t.env, pml4, 2 * GiB + 0x123000, true);
	REQUIRE(e4 != NULL);
	CHECK_EQ(*e4, leaf_entry(2 * GiB + 0x123000, 1, MT_WB));
	CHECK_EQ(t.pool.n, n0 + 2);
	AT(&t, pml4, 2 * GiB + 0x123000, 1, MT_WB);
	AT(&t, pml4, 2 * GiB + 0x122000, 1, MT_WB);
	AT(&t, pml4, 2 * GiB + 0x124000, 1, MT_WB);
	AT(&t, pml4, 2 * GiB, 1, MT_WB);
	AT(&t, pml4, 2 * GiB + 0x1ff000, 1, MT_WB);
	AT(&t, pml4, 2 * GiB + 0x200000, 2, MT_WB);
	AT(&t, pml4, 3 * GiB - 2 * MiB, 2, MT_WB);
	AT(&t, pml4, 1 * GiB, 3, MT_WB);
	AT(&t, pml4, 3 * GiB, 3, MT_UC);
	CHECK_MAP_TYPES(&t, pml4);

	/* The same page again: the same entry, nothing allocated. A 2 MiB leaf splits with one table. */
	CHECK(ept_leaf(&t.env, pml4, 2 * GiB + 0x123000, true) == e4);
	CHECK(ept_leaf(&t.env, pml4, 2 * GiB + 0x123fff, false) == e4);
	CHECK_EQ(t.pool.n, n0 + 2);
	e = ept_leaf(&t.env, pml4, 2 * GiB + 0x400000, false);
	REQUIRE(e != NULL);
	CHECK_EQ(*e, leaf_entry(2 * GiB + 0x400000, 2, MT_WB));
	e = ept_leaf(&t.env, pml4, 2 * GiB + 0x5ff000, true);
	REQUIRE(e != NULL);
	CHECK_EQ(*e, leaf_entry(2 * GiB + 0x5ff000, 1, MT_WB));
	CHECK_EQ(t.pool.n, n0 + 3);
	AT(&t, pml4, 2 * GiB + 0x400000, 1, MT_WB);
	AT(&t, pml4, 2 * GiB + 0x600000, 2, MT_WB);

	/* Write-protecting the page through the entry touches only that page. */
	before = *e4;
	*e4 &= ~W;
	{
		int level;

		CHECK_EQ(ept_lookup(&t.env, pml4, 2 * GiB + 0x123000, &level), before & ~W);
		CHECK_EQ(level, 1);
	}
	AT(&t, pml4, 2 * GiB + 0x122000, 1, MT_WB);
	AT(&t, pml4, 2 * GiB + 0x124000, 1, MT_WB);
	/* Trapping it (no rights) makes it not present to ept_lookup; restoring makes it come back. */
	*e4 &= ~RWX;
	ABSENT(&t, pml4, 2 * GiB + 0x123000);
	AT(&t, pml4, 2 * GiB + 0x124000, 1, MT_WB);
	{
		u64 *again = ept_leaf(&t.env, pml4, 2 * GiB + 0x123000, true);

		CHECK(again == NULL || again == e4);
	}
	*e4 = before;
	AT(&t, pml4, 2 * GiB + 0x123000, 1, MT_WB);
	CHECK_MAP_TYPES(&t, pml4);

	/* Splitting at 0 with fixed ranges off: the 1 GiB page at 0. */
	e = ept_leaf(&t.env, pml4, 0, true);
	REQUIRE(e != NULL);
	CHECK_EQ(*e, leaf_entry(0, 1, MT_WB));
	AT(&t, pml4, 0x1000, 1, MT_WB);
	AT(&t, pml4, 0x200000, 2, MT_WB);
	CHECK_MAP_TYPES(&t, pml4);

	/* Not mapped: NULL. */
	CHECK(ept_leaf(&t.env, pml4, 4 * GiB, false) == NULL);
	CHECK(ept_leaf(&t.env, pml4, 4 * GiB, true) == NULL);
	CHECK(ept_leaf(&t.env, pml4, 600 * GiB, true) == NULL);
	pool_free(&t.pool);
}

TEST(ept_leaf_split_keeps_rights_and_type)
{
	struct tenv t;
	u64 pml4, *e, attrs;

	setup(&t, false, true, true);
	set_var(&t.m, 0, 1 * GiB, 1 * GiB, MT_WT);
	pml4 = build(&t, 4 * GiB);
	REQUIRE(pml4 != 0);
	e = ept_leaf(&t.env, pml4, 1 * GiB, false);
	REQUIRE(e != NULL);
	CHECK_EQ(*e, leaf_entry(1 * GiB, 3, MT_WT));
	/* Read/execute only, with IPAT set: every piece keeps exactly that. */
	*e = (*e & ~W) | IPAT;
	attrs = *e & (RWX | IPAT | (7ULL << 3));
	e = ept_leaf(&t.env, pml4, 1 * GiB + 0x2345000, true);
	REQUIRE(e != NULL);
	CHECK_EQ(*e, (1 * GiB + 0x2345000) | attrs);
	for (u64 a = 1 * GiB; a < 2 * GiB; a += 2 * MiB) {
		int level;
		u64 x = ept_lookup(&t.env, pml4, a, &level);
		bool in_pt = a == 1 * GiB + 0x2200000;

		if (!CHECK_EQ(x, a | attrs | (in_pt ? 0 : PS)) || !CHECK_EQ(level, in_pt ? 1 : 2))
			break;
	}
	for (u64 a = 1 * GiB + 0x2200000; a < 1 * GiB + 0x2400000; a += 4 * KiB) {
		int level;
		u64 x = ept_lookup(&t.env, pml4, a, &level);

		if (!CHECK_EQ(x, a | attrs) || !CHECK_EQ(level, 1))
			break;
	}
	AT(&t, pml4, 0, 3, MT_WB);
	AT(&t, pml4, 2 * GiB, 3, MT_WB);
	pool_free(&t.pool);
}

TEST(ept_leaf_split_out_of_memory)
{
	struct tenv t;
	u64 pml4, *e;
	u32 n0;

	setup(&t, false, true, true);
	pml4 = build(&t, 4 * GiB);
	REQUIRE(pml4 != 0);
	n0 = t.pool.n;

	/* No memory: NULL, nothing changed. */
	t.pool.limit = n0;
	CHECK(ept_leaf(&t.env, pml4, 2 * GiB + 0x3000, true) == NULL);
	AT(&t, pml4, 2 * GiB, 3, MT_WB);
	CHECK_MAP(&t, pml4);
	/* Memory for one level only: NULL, the map still identity with the same types. */
	t.pool.limit = n0 + 1;
	CHECK(ept_leaf(&t.env, pml4, 2 * GiB + 0x3000, true) == NULL);
	AT(&t, pml4, 2 * GiB + 0x3000, 2, MT_WB);
	AT(&t, pml4, 2 * GiB + 0x200000, 2, MT_WB);
	CHECK_MAP_TYPES(&t, pml4);
	/* split = false still works without memory. */
	e = ept_leaf(&t.env, pml4, 2 * GiB + 0x3000, false);
	REQUIRE(e != NULL);
	CHECK_EQ(*e, leaf_entry(2 * GiB, 2, MT_WB));
	/* With memory again it completes. */
	t.pool.limit = UINT32_MAX;
	e = ept_leaf(&t.env, pml4, 2 * GiB + 0x3000, true);
	REQUIRE(e != NULL);
	CHECK_EQ(*e, leaf_entry(2 * GiB + 0x3000, 1, MT_WB));
	CHECK_EQ(t.pool.n, n0 + 2);
	CHECK_MAP_TYPES(&t, pml4);
	pool_free(&t.pool);
}

TEST(ept_update_memtypes_after_mtrr_writes)
{
	struct tenv t;
	u64 pml4, *e;
	u32 n;

	setup(&t, false, true, true);
	add_hole(&t, 0xf800000, 6 * MiB);
	pml4 = build(&t, 4 * GiB);
	REQUIRE(pml4 != 0);
	n = t.pool.n;
	CHECK_EQ(n, 3);
	/* Unchanged MTRRs: nothing changes. */
	CHECK_EQ(ept_update_memtypes(&t.env, pml4), 0);
	CHECK_EQ(t.pool.n, n);
	CHECK_MAP(&t, pml4);

	/* UC for the first 256 MiB of GiB 3: only GiB 3 splits, into 2 MiB pages. */
	REQUIRE_EQ(mtrr_state_write(&t.m, 0x200, 3 * GiB | MT_UC), 0);
	REQUIRE_EQ(mtrr_state_write(&t.m, 0x201, (~(256 * MiB - 1) & t.m.phys_mask) | VALID), 0);
	CHECK_EQ(ept_update_memtypes(&t.env, pml4), 0);
	CHECK_EQ(t.pool.n, n + 1);
	AT(&t, pml4, 3 * GiB, 2, MT_UC);
	AT(&t, pml4, 3 * GiB + 254 * MiB, 2, MT_UC);
	AT(&t, pml4, 3 * GiB + 256 * MiB, 2, MT_WB);
	AT(&t, pml4, 4 * GiB - 4 * KiB, 2, MT_WB);
	AT(&t, pml4, 1 * GiB, 3, MT_WB);
	AT(&t, pml4, 2 * GiB, 3, MT_WB);
	ABSENT(&t, pml4, 0xfa00000);
	CHECK_MAP(&t, pml4);

	/* The same range becomes WT: types change, nothing splits. */
	REQUIRE_EQ(mtrr_state_write(&t.m, 0x200, 3 * GiB | MT_WT), 0);
	CHECK_EQ(ept_update_memtypes(&t.env, pml4), 0);
	CHECK_EQ(t.pool.n, n + 1);
	AT(&t, pml4, 3 * GiB, 2, MT_WT);
	AT(&t, pml4, 3 * GiB + 256 * MiB, 2, MT_WB);
	CHECK_MAP(&t, pml4);

	/* A 4 KiB WP range in GiB 1: one PD and one PT. */
	REQUIRE_EQ(mtrr_state_write(&t.m, 0x202, 0x40001000 | MT_WP), 0);
	REQUIRE_EQ(mtrr_state_write(&t.m, 0x203, (~(4 * KiB - 1) & t.m.phys_mask) | VALID), 0);
	CHECK_EQ(ept_update_memtypes(&t.env, pml4), 0);
	CHECK_EQ(t.pool.n, n + 3);
	AT(&t, pml4, 0x40000000, 1, MT_WB);
	AT(&t, pml4, 0x40001000, 1, MT_WP);
	AT(&t, pml4, 0x40002000, 1, MT_WB);
	AT(&t, pml4, 0x40200000, 2, MT_WB);
	AT(&t, pml4, 2 * GiB, 3, MT_WB);
	CHECK_MAP(&t, pml4);

	/* A write-protected page keeps its rights when its type changes. */
	e = ept_leaf(&t.env, pml4, 0x40002000, false);
	REQUIRE(e != NULL);
	*e &= ~W;
	REQUIRE_EQ(mtrr_state_write(&t.m, 0x202, 0x40002000 | MT_WP), 0);
	REQUIRE_EQ(mtrr_state_write(&t.m, 0x203, (~(8 * KiB - 1) & t.m.phys_mask) | VALID), 0);
	CHECK_EQ(ept_update_memtypes(&t.env, pml4), 0);
	CHECK_EQ(*e, 0x40002000 | R | X | (MT_WP << 3));
	AT(&t, pml4, 0x40001000, 1, MT_WB);
	AT(&t, pml4, 0x40003000, 1, MT_WP);
	AT(&t, pml4, 0x40004000, 1, MT_WB);
	*e |= W;

	/* Fixed ranges on (DEF_TYPE.FE) with a UC VGA window: GiB 0 (2 MiB leaves because of the
	 * hole) gets a PT for its first 2 MiB. */
	REQUIRE_EQ(mtrr_state_write(&t.m, MSR_MTRR_FIX64K_00000, 0x0606060606060606ULL), 0);
	REQUIRE_EQ(mtrr_state_write(&t.m, MSR_MTRR_FIX16K_80000, 0x0606060606060606ULL), 0);
	REQUIRE_EQ(mtrr_state_write(&t.m, MSR_MTRR_FIX16K_A0000, 0), 0);
	for (u32 k = 0; k < 8; k++)
		REQUIRE_EQ(mtrr_state_write(&t.m, MSR_MTRR_FIX4K_C0000 + k, 0x0505050505050505ULL), 0);
	REQUIRE_EQ(mtrr_state_write(&t.m, MSR_MTRR_DEF_TYPE, 0xc00 | MT_WB), 0);
	CHECK_EQ(ept_update_memtypes(&t.env, pml4), 0);
	CHECK_EQ(t.pool.n, n + 4);
	AT(&t, pml4, 0, 1, MT_WB);
	AT(&t, pml4, 0x9f000, 1, MT_WB);
	AT(&t, pml4, 0xa0000, 1, MT_UC);
	AT(&t, pml4, 0xc0000, 1, MT_WP);
	AT(&t, pml4, 0x100000, 1, MT_WB);
	AT(&t, pml4, 0x200000, 2, MT_WB);
	ABSENT(&t, pml4, 0xf800000);
	CHECK_MAP(&t, pml4);

	/* Undoing the variable ranges: types back to WB, leaves stay split (no merging). */
	REQUIRE_EQ(mtrr_state_write(&t.m, 0x201, 0), 0);
	REQUIRE_EQ(mtrr_state_write(&t.m, 0x203, 0), 0);
	CHECK_EQ(ept_update_memtypes(&t.env, pml4), 0);
	CHECK_EQ(t.pool.n, n + 4);
	AT(&t, pml4, 3 * GiB, 2, MT_WB);
	AT(&t, pml4, 0x40003000, 1, MT_WB);
	CHECK_MAP_TYPES(&t, pml4);

	/* MTRRs disabled: everything UC. */
	REQUIRE_EQ(mtrr_state_write(&t.m, MSR_MTRR_DEF_TYPE, MT_WB), 0);
	CHECK_EQ(ept_update_memtypes(&t.env, pml4), 0);
	CHECK_EQ(t.pool.n, n + 4);
	AT(&t, pml4, 0, 1, MT_UC);
	AT(&t, pml4, 0xc0000, 1, MT_UC);
	AT(&t, pml4, 0x200000, 2, MT_UC);
	AT(&t, pml4, 2 * GiB, 3, MT_UC);
	AT(&t, pml4, 3 * GiB, 2, MT_UC);
	ABSENT(&t, pml4, 0xf800000);
	ABSENT(&t, pml4, 4 * GiB);
	CHECK_MAP_TYPES(&t, pml4);
	pool_free(&t.pool);
}

/* Leaves whose rights were removed (trapped pages, as ept_leaf hands them out) keep their place in the
 * map; their memory type must follow the MTRRs too, so that it is right when the rights come back. */
TEST(ept_update_memtypes_trapped_leaves)
{
	struct tenv t;
	u64 pml4, *p4k, *p1g, *e;

	setup(&t, false, true, true);
	pml4 = build(&t, 4 * GiB);
	REQUIRE(pml4 != 0);
	p4k = ept_leaf(&t.env, pml4, 2 * GiB + 0x5000, true);
	p1g = ept_leaf(&t.env, pml4, 3 * GiB, false);
	REQUIRE(p4k != NULL && p1g != NULL);
	CHECK_EQ(*p1g & PS, PS);
	*p4k &= ~RWX;
	*p1g &= ~RWX;
	ABSENT(&t, pml4, 2 * GiB + 0x5000);
	ABSENT(&t, pml4, 3 * GiB);

	/* UC for 2G-4G, and a WT 2 MiB range that makes the trapped GiB mixed. */
	set_var(&t.m, 0, 2 * GiB, 2 * GiB, MT_UC);
	set_var(&t.m, 1, 3 * GiB + 2 * MiB, 2 * MiB, MT_WC);
	CHECK_EQ(ept_update_memtypes(&t.env, pml4), 0);
	/* Still trapped ... */
	ABSENT(&t, pml4, 2 * GiB + 0x5000);
	ABSENT(&t, pml4, 3 * GiB);
	ABSENT(&t, pml4, 3 * GiB + 2 * MiB);
	ABSENT(&t, pml4, 4 * GiB - 4 * KiB);
	AT(&t, pml4, 2 * GiB + 0x4000, 1, MT_UC);
	/* ... with the new types. */
	CHECK_EQ(*p4k, (2 * GiB + 0x5000) | (MT_UC << 3));
	e = ept_leaf(&t.env, pml4, 3 * GiB, false);
	REQUIRE(e != NULL);
	CHECK_EQ(*e, 3 * GiB | (MT_UC << 3) | PS);
	e = ept_leaf(&t.env, pml4, 3 * GiB + 2 * MiB, false);
	REQUIRE(e != NULL);
	/* WC + UC overlap: UC. */
	CHECK_EQ(*e, (3 * GiB + 2 * MiB) | (MT_UC << 3) | PS);
	t.m.var[0].mask = 0;
	CHECK_EQ(ept_update_memtypes(&t.env, pml4), 0);
	CHECK_EQ(*e, (3 * GiB + 2 * MiB) | (MT_WC << 3) | PS);
	CHECK_EQ(*p4k, (2 * GiB + 0x5000) | (MT_WB << 3));

	/* Rights restored: right types. */
	*p4k |= RWX;
	AT(&t, pml4, 2 * GiB + 0x5000, 1, MT_WB);
	for (u64 a = 3 * GiB; a < 4 * GiB; a += 2 * MiB) {
		e = ept_leaf(&t.env, pml4, a, false);
		REQUIRE(e != NULL);
		*e |= RWX;
	}
	AT(&t, pml4, 3 * GiB, 2, MT_WB);
	AT(&t, pml4, 3 * GiB + 2 * MiB, 2, MT_WC);
	AT(&t, pml4, 3 * GiB + 4 * MiB, 2, MT_WB);
	CHECK_MAP_TYPES(&t, pml4);
	pool_free(&t.pool);
}

TEST(ept_update_memtypes_out_of_memory)
{
	struct tenv t;
	u64 pml4;
	u32 n;

	setup(&t, false, true, true);
	pml4 = build(&t, 4 * GiB);
	REQUIRE(pml4 != 0);
	n = t.pool.n;
	set_var(&t.m, 0, 2 * GiB + 0x5000, 4 * KiB, MT_UC);
	t.pool.limit = n + 1;
	CHECK_EQ(ept_update_memtypes(&t.env, pml4), -1);
	/* Still an identity map of the same memory (some types may be stale). */
	AT(&t, pml4, 2 * GiB + 0x200000, 2, MT_WB);
	AT(&t, pml4, 3 * GiB, 3, MT_WB);
	t.pool.limit = UINT32_MAX;
	CHECK_EQ(ept_update_memtypes(&t.env, pml4), 0);
	CHECK_EQ(t.pool.n, n + 2);
	AT(&t, pml4, 2 * GiB + 0x5000, 1, MT_UC);
	AT(&t, pml4, 2 * GiB + 0x4000, 1, MT_WB);
	CHECK_MAP(&t, pml4);
	pool_free(&t.pool);
}

/* ------------------------------------------------------------------------------------------------ */
/* Randomised: build, split, retype, each followed by the full walk. */

static u64 rng_state;

static u64 rnd64(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static u64 rnd(u64 n)
{
	return rnd64() % n;
}

static const int rand_types[] = { MT_UC, MT_WC, MT_WT, MT_WP, MT_WB };

static void random_mtrrs(struct mtrr_state *m, u64 span)
{
	init_mtrr(m, rand_types[rnd(5)], rnd(2), MT_WB, 39);
	m->enabled = rnd(10) != 0;
	for (u32 i = 0; i < MTRR_FIXED_COUNT; i++)
		if (rnd(8) == 0)
			m->fixed[i] = rand_types[rnd(5)];
	for (u32 i = 0; i < m->nvar; i++) {
		u64 size = 1ULL << (12 + rnd(22));

		if (size > span || rnd(2))
			continue;
		set_var(m, i, rnd(span / size) * size, size, rand_types[rnd(5)]);
	}
}

TEST(ept_random_build_split_update)
{
	struct tenv t;

	rng_state = 0x243f6a8885a308d3ULL;
	for (int iter = 0; iter < 150; iter++) {
		bool p1g = rnd(2), p2m = p1g || rnd(4), fe = rnd(2);
		u64 span = p2m ? 16 * GiB : 64 * MiB;
		u64 top = (rnd(span) & ~0xfffULL) + (rnd(4) ? 0 : 4 * KiB), pml4;

		setup(&t, fe, p1g, p2m);
		random_mtrrs(&t.m, span);
		/* Disjoint holes: in increasing order with gaps. */
		for (u64 at = rnd(span / 4) & ~0xfffULL, k = rnd(4); k > 0 && at < span; k--) {
			u64 len = (1 + rnd(1ULL << (12 + rnd(20)))) & ~0xfffULL;

			if (!len)
				len = 4 * KiB;
			add_hole(&t, at, len);
			at += len + (rnd(span / 4) & ~0xfffULL) + 4 * KiB;
		}
		pml4 = build(&t, top);
		if (!CHECK(pml4 != 0))
			break;
		struct walk w = CHECK_MAP(&t, pml4);
		if (w.fails) {
			printf("    iteration %d (top %#llx)\n", iter, (unsigned long long)top);
			pool_free(&t.pool);
			break;
		}
		/* ept_lookup agrees with the walk at random addresses. */
		for (int q = 0; q < 200; q++) {
			u64 a = rnd(span + span / 8) & ~0xfffULL;
			int level;
			u64 e = ept_lookup(&t.env, pml4, a, &level);

			if (a >= top || overlaps_hole(&t, a, 4 * KiB)) {
				if (!CHECK_EQ(e, 0))
					break;
				continue;
			}
			if (!CHECK_EQ(e & ~(level_size(level) - 1) & ADDR_MASK,
				      a & ~(level_size(level) - 1)) ||
			    !CHECK_EQ((e >> 3) & 7, mtrr_range_type(&t.m, a, 4 * KiB)))
				break;
		}
		/* Split a few pages. */
		for (int q = 0; q < 4 && top; q++) {
			u64 a = rnd(top) & ~0xfffULL;
			u64 *e = ept_leaf(&t.env, pml4, a, true);

			if (overlaps_hole(&t, a, 4 * KiB))
				CHECK(e == NULL || *e == 0);
			else if (CHECK(e != NULL))
				CHECK_EQ(*e, leaf_entry(a, 1, mtrr_range_type(&t.m, a, 4 * KiB)));
		}
		CHECK_MAP_TYPES(&t, pml4);
		/* New MTRRs, retype. */
		random_mtrrs(&t.m, span);
		if (!CHECK_EQ(ept_update_memtypes(&t.env, pml4), 0))
			break;
		w = CHECK_MAP_TYPES(&t, pml4);
		pool_free(&t.pool);
		if (w.fails) {
			printf("    iteration %d after update\n", iter);
			break;
		}
	}
}

TEST(ept_map_identity_extends)
{
	struct tenv t;
	u64 pml4;

	/* Built to 2 GiB, then 3 GiB..4 GiB added (on-demand MMIO): large pages, the gap stays absent,
	 * the first map is untouched; adding an already mapped range changes nothing. */
	setup(&t, false, true, true);
	pml4 = build(&t, 2 * GiB);
	REQUIRE(pml4 != 0);
	CHECK_EQ(t.pool.n, 2);
	REQUIRE(ept_map_identity(&t.env, pml4, 3 * GiB, 4 * GiB) == 0);
	CHECK_EQ(t.pool.n, 2);
	AT(&t, pml4, 1 * GiB, 3, MT_WB);
	ABSENT(&t, pml4, 2 * GiB);
	AT(&t, pml4, 3 * GiB + 0x123000, 3, MT_WB);
	ABSENT(&t, pml4, 4 * GiB);
	REQUIRE(ept_map_identity(&t.env, pml4, 0, 1 * GiB) == 0);
	CHECK_EQ(t.pool.n, 2);
	pool_free(&t.pool);

	/* 2 MiB pages only, a range beyond 512 GiB: new tables, 2 MiB leaves, a hole respected. */
	setup(&t, false, false, true);
	init_mtrr(&t.m, MT_WB, false, MT_WB, 46);
	add_hole(&t, 600 * GiB + 4 * MiB, 2 * MiB);
	pml4 = build(&t, 4 * GiB);
	REQUIRE(pml4 != 0);
	REQUIRE(ept_map_identity(&t.env, pml4, 600 * GiB, 600 * GiB + 8 * MiB) == 0);
	AT(&t, pml4, 600 * GiB, 2, MT_WB);
	AT(&t, pml4, 600 * GiB + 2 * MiB, 2, MT_WB);
	ABSENT(&t, pml4, 600 * GiB + 4 * MiB);
	AT(&t, pml4, 600 * GiB + 6 * MiB, 2, MT_WB);
	ABSENT(&t, pml4, 600 * GiB + 8 * MiB);
	AT(&t, pml4, 4 * GiB - 4 * KiB, 2, MT_WB);
	pool_free(&t.pool);
}
